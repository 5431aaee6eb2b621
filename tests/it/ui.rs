//! The explorer without a terminal: panes rendered into ratatui's TestBackend, and key
//! sequences applied to the state, on data from the tiny synthetic weights.

use crate::common;

use common::{engine, opts};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::Terminal;
use saescope::analysis::{analyze, Params};
use saescope::corpus::samples::Samples;
use saescope::runtime::progress::{Progress, ProgressSink};
use saescope::ui::app::{Action, App, Pane, Results, RunInfo};
use saescope::ui::{keymap, panes, view};
use std::sync::OnceLock;
use std::time::Duration;

const LAYERS: [usize; 4] = [6, 8, 10, 11];

/// The tiny weights stand in for gpt2-small-res-jb, whose Neuronpedia ids are known.
fn ids() -> saescope::sae::neuronpedia_id::Ids {
    saescope::sae::neuronpedia_id::Ids::from_pairs([
        (common::key(6), "gpt2-small/6-res-jb"),
        (common::key(8), "gpt2-small/8-res-jb"),
        (common::key(10), "gpt2-small/10-res-jb"),
        (common::key(11), "gpt2-small/11-res-jb"),
    ])
}

fn results() -> &'static (saescope::activations::ActivationSet, saescope::analysis::Analysis) {
    static R: OnceLock<(saescope::activations::ActivationSet, saescope::analysis::Analysis)> = OnceLock::new();
    R.get_or_init(|| {
        let mut set =
            saescope::pipeline::compute::run(&engine(&LAYERS), &Samples::bundled().expect("samples"), &opts(false, 2048), &ProgressSink::none()).expect("run");
        set.neuronpedia = ids();
        let a = analyze(&set, Params::default());
        (set, a)
    })
}

fn app(loaded: bool) -> App {
    let s = Samples::bundled().expect("samples");
    let cats = s.categories.iter().map(|c| (c.name.clone(), c.texts.len())).collect();
    let labels = RunInfo { model: "tiny-model".into(), sae: "tiny-saes".into(), device: "cpu".into(), chat: false, ids: ids() };
    let mut app = App::new(cats, common::keys(&LAYERS), labels, std::env::temp_dir());
    if loaded {
        let (set, analysis) = results().clone();
        app.results = Some(Results { set, analysis, elapsed: Duration::from_millis(1234), from_cache: 0, partial: false });
    }
    app
}

thread_local! {
    /// What the key sequence asked of the model thread, until `serve` answers it.
    static PENDING: std::cell::RefCell<Vec<saescope::ui::app::WorkerRequest>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Progress replies `serve` passed on (steering streams its steps).
    static STEPS: std::cell::RefCell<usize> = const { std::cell::RefCell::new(0) };
    /// URLs a real run would have opened in a browser.
    static OPENED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A key's action, with its effects carried out as the event loop does, except that
/// requests wait in PENDING and no browser is started: no model, no terminal, no browser.
fn press(app: &mut App, action: Action) {
    use saescope::ui::app::Effect;
    let mut rest = Vec::new();
    for e in app.update(action) {
        match e {
            Effect::Worker(r) => PENDING.with(|p| p.borrow_mut().push(r)),
            Effect::OpenUrl(u) => OPENED.with(|o| o.borrow_mut().push(u)),
            other => rest.push(other),
        }
    }
    saescope::ui::perform(app, rest, |_| unreachable!("requests were taken above"));
}

/// The main screen's first feature's card, served, with the sample labels.
fn with_card() -> App {
    let mut a = app(true);
    a.labels = sample_labels(&a);
    press(&mut a, Action::NextPane);
    press(&mut a, Action::OpenCard);
    serve(&mut a);
    a
}

/// Types `text` into the open input line, a key at a time.
fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, Action::Type(c));
    }
}

fn pending() -> Vec<saescope::ui::app::WorkerRequest> {
    PENDING.with(|p| p.borrow().clone())
}

fn render(app: &mut App, w: u16, h: u16) -> (String, ratatui::buffer::Buffer) {
    app.size = Rect::new(0, 0, w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| view::draw(f, app)).expect("draw");
    let buf = t.backend().buffer().clone();
    let text = (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>()).collect::<Vec<_>>().join("\n");
    (text, buf)
}

fn render_pane(app: &App, w: u16, h: u16, draw: impl Fn(&mut ratatui::Frame, &App, Rect)) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| draw(f, app, f.area())).expect("draw");
    let buf = t.backend().buffer().clone();
    (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>()).collect::<Vec<_>>().join("\n")
}

#[test]
fn whole_screen_at_80x24_and_160x48() {
    for (w, h) in [(80, 24), (160, 48)] {
        let mut a = app(true);
        let top = a.metrics(0).expect("metrics").top[0].feature;
        let (s, _) = render(&mut a, w, h);
        for needle in [
            " 6 ",
            " 8 ",
            " 10 ",
            " 11 ",
            "Categories",
            "Python",
            "Social",
            "Features · 6 res 512 · Python",
            "Specialist scores",
            "legend",
            "model tiny-model",
            "1.2 s",
        ] {
            assert!(s.contains(needle), "{w}x{h}: {needle:?} missing in\n{s}");
        }
        assert!(s.contains(&format!("#{top}")), "top feature #{top} missing at {w}x{h}\n{s}");
        assert!(s.contains(&format!("6-res-jb/{top}")), "Neuronpedia id missing at {w}x{h}\n{s}");
    }
}

#[test]
fn too_small_terminal_says_so() {
    let (s, _) = render(&mut app(true), 79, 24);
    assert!(s.contains("Terminal too small: 79x24") && s.contains("80x24"), "{s}");
    let (s, _) = render(&mut app(true), 80, 23);
    assert!(s.contains("Terminal too small"), "{s}");
}

#[test]
fn categories_pane_shows_counts_marks_and_focus() {
    let mut a = app(true);
    press(&mut a, Action::Down);
    press(&mut a, Action::ToggleMark);
    let s = render_pane(&a, 22, 10, |f, a, r| panes::categories::draw(f, a, a.main(), &a.hits, r));
    assert!(s.contains("▶[ ] Python       10"), "{s}");
    assert!(s.contains(" [x] Math         10"), "{s}");
}

/// Neuronpedia ids as long as Gemma Scope's (`6-gemmascope-2-res-16k/123`) show whole
/// where they fit and not at all where they do not: never cut.
#[test]
fn features_pane_shows_long_neuronpedia_ids_whole_or_not_at_all() {
    let mut a = app(true);
    a.info.ids = saescope::sae::neuronpedia_id::Ids::from_pairs([
        (common::key(6), "gemma-3-270m/6-gemmascope-2-res-16k"),
        (common::key(8), "gemma-3-270m/8-gemmascope-2-res-16k"),
        (common::key(10), "gemma-3-270m/10-gemmascope-2-res-16k"),
        (common::key(11), "gemma-3-270m/11-gemmascope-2-res-16k"),
    ]);
    let m = a.metrics(0).expect("m");
    let first = format!("6-gemmascope-2-res-16k/{}", m.ranked[0].feature);
    let wide = render_pane(&a, 100, 26, |f, a, r| panes::features::draw(f, a, a.main(), &a.hits, r));
    assert!(wide.contains("neuronpedia") && wide.contains(&first), "{wide}");
    // The features pane of an 80-column explorer.
    let narrow = render_pane(&a, 58, 26, |f, a, r| panes::features::draw(f, a, a.main(), &a.hits, r));
    assert!(!narrow.contains("neuronpedia") && !narrow.contains("6-gemmascope"), "{narrow}");
}

#[test]
fn features_pane_lists_metrics_and_ranked_rows() {
    let a = app(true);
    let m = a.metrics(0).expect("m");
    let s = render_pane(&a, 100, 26, |f, a, r| panes::features::draw(f, a, a.main(), &a.hits, r));
    assert!(s.contains(&format!("Spec {}", m.spec)) && s.contains("Gini") && s.contains("neuronpedia") && s.contains("n≥θ"), "{s}");
    for (i, t) in m.ranked.iter().take(10).enumerate() {
        assert!(s.contains(&format!("{:<3} #{:<6}", i + 1, t.feature)), "row {i} #{} missing\n{s}", t.feature);
    }
}

#[test]
fn features_pane_side_by_side_highlights_shared() {
    let mut a = app(true);
    // Mark two categories that share a listed feature at some layer.
    let (mut pair, mut layer) = (None, 0);
    'find: for li in 0..LAYERS.len() {
        a.sae_idx = li;
        for x in 0..7 {
            for y in x + 1..7 {
                a.marked = [x, y].into_iter().collect();
                if !a.shared_features().is_empty() {
                    pair = Some((x, y));
                    layer = li;
                    break 'find;
                }
            }
        }
    }
    let (x, y) = pair.expect("two categories share a feature somewhere");
    a.sae_idx = layer;
    let shared = *a.shared_features().iter().next().expect("shared");
    let mut t = Terminal::new(TestBackend::new(120, 26)).expect("t");
    t.draw(|f| panes::features::draw(f, &a, a.main(), &a.hits, f.area())).expect("draw");
    let buf = t.backend().buffer();
    let text: Vec<String> = (0..26).map(|r| (0..120).map(|c| buf[(c, r)].symbol()).collect()).collect();
    assert!(text.iter().any(|l| l.contains(&a.categories[x].0)) && text.iter().any(|l| l.contains(&a.categories[y].0)));
    let needle = format!("#{shared}");
    let (row, line) = text.iter().enumerate().find(|(_, l)| l.contains(&needle)).expect("shared row drawn");
    let col = line.find(&needle).map(|b| line[..b].chars().count()).expect("col") as u16;
    assert!(buf[(col, row as u16)].modifier.contains(Modifier::BOLD), "shared feature is bold");
}

/// Partial results fill the panes while the model computes, the gauge stays; the final
/// results replace them, and a late partial never overwrites the final ones.
#[test]
fn partial_results_fill_the_panes_until_the_final_ones() {
    use saescope::ui::app::Results;
    let (set, analysis) = results().clone();
    let mut first = set.clone();
    first.texts.truncate(23);
    let mut a = app(false);
    a.progress = Some(Progress::Fraction { label: "encoding texts".into(), done: 23, total: 70 });
    a.set_results(Results { set: first.clone(), analysis: analysis.clone(), elapsed: Duration::from_millis(500), from_cache: 0, partial: true });
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("23 texts so far") && s.contains("encoding texts 23 of 70") && s.contains("#   feature"), "{s}");
    a.set_results(Results { set: set.clone(), analysis: analysis.clone(), elapsed: Duration::from_millis(900), from_cache: 0, partial: false });
    a.set_results(Results { set: first, analysis, elapsed: Duration::from_millis(950), from_cache: 0, partial: true });
    let (s, _) = render(&mut a, 120, 40);
    assert!(!s.contains("so far") && s.contains("model tiny-model"), "final results stay\n{s}");
}

/// In the token view `<`/`>` move a token cursor over the text on view (reversed), and `a`
/// explains the prediction after the cursor's token rather than after the whole text.
#[test]
fn the_token_view_attributes_the_prediction_at_its_cursor() {
    let mut a = app(true);
    press(&mut a, Action::Tokens);
    serve(&mut a);
    press(&mut a, Action::TokenLeft);
    press(&mut a, Action::TokenLeft);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("a: why the token after"), "the cursor says what `a` explains\n{s}");
    let Some(saescope::ui::screens::Screen::Tokens(view)) = Some(a.screen()) else { panic!("token view") };
    let n = a.ctx.token_cache.get(view.text(&a.ctx).expect("a text")).expect("tokens").tokens.len();
    assert_eq!(view.cursor, Some(n - 2), "from the end: the last token, then the one before");
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Attribute);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Attribute { upto: Some(u), .. }] if *u == n - 1), "{:?}", pending());
    serve(&mut a);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("next token") && s.contains("ablated Δlogit"), "{s}");
    // `g` there graphs the very same prediction (with transcoders given).
    a.transcoders = Some("transcoders".into());
    press(&mut a, Action::Graph);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Graph { upto: Some(u), .. }] if *u == n - 1), "{:?}", pending());
    serve(&mut a);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains(&format!("(first {} tokens)", n - 1)) && s.contains("logits│"), "{s}");
    press(&mut a, Action::Back);
    press(&mut a, Action::Back);
    // And from the token view itself.
    press(&mut a, Action::Graph);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Graph { upto: Some(u), .. }] if *u == n - 1), "{:?}", pending());
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Back);
    // Off the last token to the right: the whole text again.
    press(&mut a, Action::TokenRight);
    press(&mut a, Action::TokenRight);
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Attribute);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Attribute { upto: None, .. }]), "{:?}", pending());
}

/// With BOS on view (--include-bos; under --chat the template's opening) the cursor still
/// asks about the text's own tokens: on BOS (or the template) it says to move, one right of
/// it is the text's first token, for the attribution and the graph alike.
#[test]
fn the_token_cursor_counts_the_texts_own_tokens_when_bos_is_shown() {
    let mut a = app(true);
    a.transcoders = Some("transcoders".into());
    press(&mut a, Action::Tokens);
    serve(&mut a);
    let text = {
        let Some(saescope::ui::screens::Screen::Tokens(view)) = Some(a.screen()) else { panic!("token view") };
        view.text(&a.ctx).expect("a text").to_string()
    };
    let n = {
        let acts = a.ctx.token_cache.get_mut(&text).expect("tokens");
        acts.framing = 1;
        acts.tokens.len()
    };
    for _ in 0..n {
        press(&mut a, Action::TokenLeft);
    }
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Attribute);
    press(&mut a, Action::Graph);
    assert!(pending().is_empty(), "nothing asked from BOS: {:?}", pending());
    assert!(a.ctx.message.as_deref().is_some_and(|m| m.contains("cursor is on BOS")), "{:?}", a.ctx.message);
    // Under --chat more than BOS comes before the text: the message says what.
    a.ctx.token_cache.get_mut(&text).expect("tokens").framing = 3;
    press(&mut a, Action::Attribute);
    assert!(a.ctx.message.as_deref().is_some_and(|m| m.contains("chat template's opening")), "{:?}", a.ctx.message);
    assert!(pending().is_empty(), "nothing asked from the template: {:?}", pending());
    a.ctx.token_cache.get_mut(&text).expect("tokens").framing = 1;
    press(&mut a, Action::TokenRight);
    press(&mut a, Action::Attribute);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Attribute { upto: Some(1), .. }]), "{:?}", pending());
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Back);
    press(&mut a, Action::Graph);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Graph { upto: Some(1), .. }]), "{:?}", pending());
}

/// A gauge label longer than the status line at 80 columns (a long release name while
/// indexing) keeps what is being done and the counts at its end; an error keeps what failed
/// and what to do.
/// Under --chat every figure on screen is of texts in the chat template: the status line
/// says so at the end of the model's label, which keeps its end when cut.
#[test]
fn the_status_line_marks_a_chat_run() {
    let mut a = app(true);
    a.info.chat = true;
    a.info.model = "/home/someone/models/google--gemma-3-270m-it/snapshots/0123456789abcdef".into();
    for w in [80, 120] {
        let (s, _) = render(&mut a, w, 24);
        let bottom = s.lines().last().expect("status line");
        assert!(bottom.contains("0123456789abcdef (chat) · SAEs"), "{w} columns: {bottom}");
    }
}

#[test]
fn the_status_line_keeps_both_ends_of_a_long_line() {
    let mut a = app(false);
    let label = "indexing tokens (gemma-scope-2-270m-pt-res, gemma-scope-2-270m-pt-mlp, gemma-scope-2-270m-pt-att)";
    a.progress = Some(Progress::Fraction { label: label.into(), done: 5000, total: 20000 });
    let (s, _) = render(&mut a, 80, 24);
    let bottom = s.lines().last().expect("status line");
    assert!(bottom.contains("indexing tokens (gemma") && bottom.contains("5000 of 20000") && bottom.contains('…'), "{bottom}");
    a.error = Some("cannot download openai-community/gpt2/config.json from https://huggingface.co (cannot resolve huggingface.co:443); point saescope at local folders with --model-dir DIR".into());
    let (s, _) = render(&mut a, 80, 24);
    let bottom = s.lines().last().expect("status line");
    assert!(bottom.contains("error: cannot download") && bottom.ends_with("--model-dir DIR (q quits)"), "{bottom}");
}

#[test]
fn charts_pane_draws_topk_and_trend() {
    let mut a = app(true);
    a.marked = [0, 6].into_iter().collect();
    let s = render_pane(&a, 60, 12, |f, a, r| panes::charts::draw(f, a, a.main(), r));
    assert!(s.contains("■Pytho") && s.contains("■Socia") && s.contains("•Peak") && s.contains("⣀Sum"), "legend above the trend\n{s}");
    assert!(s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)), "braille lines\n{s}");
    // Bars: every charted category's top-k at this layer, named by category and feature.
    for c in [0usize, 6] {
        let m = a.metrics(c).expect("m");
        let name: String = a.categories[c].0.chars().take(3).collect();
        let top = format!("{name} #{}", m.top[0].feature);
        assert!(s.contains(&top), "{top} missing\n{s}");
    }
    assert!(s.contains('█'), "bars drawn\n{s}");
    // The layers are the x ticks.
    let last = s.lines().rev().nth(1).unwrap_or_default();
    assert!(["6", "8", "10", "11"].iter().all(|l| last.contains(l)), "{last}");
}

#[test]
fn matrix_pane_shows_scores_of_marked_top_features() {
    let mut a = app(true);
    a.marked = [0, 1].into_iter().collect();
    let features = a.matrix_features();
    let la = a.sae_analysis().expect("la");
    let m = la.above.matrix(&features);
    let s = render_pane(&a, 60, 30, |f, a, r| panes::matrix::draw(f, a, a.main(), &a.hits, r));
    assert!(s.contains("Pyt Mat URL Non For Con Soc") && s.contains("legend"), "{s}");
    let line = s.lines().find(|l| l.contains(&format!("#{} ", features[0]))).expect("first feature row");
    let cells: Vec<String> = m[0].iter().map(|v| format!("{v:+}")).collect();
    assert!(line.contains(&cells.iter().map(|c| format!("{c:>4}")).collect::<String>()), "{line} vs {cells:?}");
}

#[test]
fn status_shows_gauge_while_computing_and_errors_after() {
    let mut a = app(false);
    a.progress = Some(Progress::Fraction { label: "encoding texts".into(), done: 23, total: 70 });
    let s = render_pane(&a, 100, 1, panes::status::draw);
    assert!(s.contains("encoding texts 23 of 70") && s.contains("model tiny-model"), "{s}");
    a.error = Some("cannot download".into());
    assert!(render_pane(&a, 100, 1, panes::status::draw).contains("error: cannot download"));
    let (s, _) = render(&mut app(false), 80, 24);
    assert!(s.contains("computing"), "{s}");
}

#[test]
fn selection_is_reversed_not_colour() {
    let mut a = app(true);
    press(&mut a, Action::NextPane); // Features
    press(&mut a, Action::Down);
    let (s, buf) = render(&mut a, 120, 30);
    let want = format!("2   #{}", a.metrics(0).expect("m").ranked[1].feature);
    let (row, line) = s.lines().enumerate().find(|(_, l)| l.contains(&want)).expect("row 2");
    let col = line.find(&want).map(|b| line[..b].chars().count()).expect("col") as u16;
    assert!(buf[(col, row as u16)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn key_sequences_step_layers_mark_and_focus() {
    let mut a = app(true);
    press(&mut a, Action::NextLayer);
    assert_eq!(a.sae().layer(), 8);
    press(&mut a, Action::PrevLayer);
    press(&mut a, Action::PrevLayer);
    assert_eq!(a.sae().layer(), 11, "wraps around");
    press(&mut a, Action::Layer(1));
    assert_eq!(a.sae().layer(), 8);
    press(&mut a, Action::Layer(9));
    assert_eq!(a.sae().layer(), 8, "no such tab: ignored");
    // Row and cursor stay put across layers.
    press(&mut a, Action::NextPane);
    assert_eq!(a.main().pane, Pane::Features);
    press(&mut a, Action::Down);
    press(&mut a, Action::Down);
    press(&mut a, Action::NextLayer);
    assert_eq!(a.main().row, 2);
    press(&mut a, Action::PrevPane);
    press(&mut a, Action::Down);
    press(&mut a, Action::ToggleMark);
    press(&mut a, Action::Down);
    press(&mut a, Action::ToggleMark);
    assert_eq!(a.table_categories(), vec![1, 2]);
    press(&mut a, Action::ToggleMark);
    assert_eq!(a.table_categories(), vec![a.focused], "one mark: back to the focused table");
    press(&mut a, Action::FocusCategory);
    assert_eq!((a.focused, a.marked.len()), (2, 0));
    press(&mut a, Action::End);
    assert_eq!(a.main().cursor, 6);
    press(&mut a, Action::ToggleHelp);
    press(&mut a, Action::Up);
    assert_eq!(a.main().cursor, 6, "help swallows keys");
    press(&mut a, Action::Back);
    assert!(!a.help && !a.quit);
    press(&mut a, Action::Back);
    assert!(a.quit);
}

/// Moving up from the bottom of a long table moves the selection up the screen; the rows
/// scroll only once it reaches the top edge (a table state made afresh each frame pinned it
/// to the bottom edge instead).
#[test]
fn a_tables_selection_moves_up_the_screen_before_it_scrolls() {
    let reversed_row = |buf: &ratatui::buffer::Buffer, x: u16| (0..buf.area.height).find(|&y| buf[(x, y)].modifier.contains(Modifier::REVERSED));
    let mut a = app(true);
    press(&mut a, Action::NextPane);
    assert_eq!(a.main().pane, Pane::Features);
    let (s, _) = render(&mut a, 80, 24);
    let (x, _) = spot(&s, "feature");
    press(&mut a, Action::End);
    let (_, buf) = render(&mut a, 80, 24);
    let bottom = reversed_row(&buf, x).expect("selection drawn");
    press(&mut a, Action::Up);
    press(&mut a, Action::Up);
    let (_, buf) = render(&mut a, 80, 24);
    assert_eq!(reversed_row(&buf, x), Some(bottom - 2), "two rows up the screen");
    // The same in the overview's long list of every feature.
    let mut a = with_index(app(true));
    press(&mut a, Action::Overview);
    render(&mut a, 80, 24);
    for _ in 0..40 {
        press(&mut a, Action::Down);
    }
    let (s, buf) = render(&mut a, 80, 24);
    let (x, _) = spot(&s, "feature max");
    let low = reversed_row(&buf, x).expect("selection drawn");
    for _ in 0..3 {
        press(&mut a, Action::Up);
    }
    let (_, buf) = render(&mut a, 80, 24);
    assert_eq!(reversed_row(&buf, x), Some(low - 3));
}

/// Every binding of the key table can be read in the help at 80x24 (scrolling down to
/// it) and at 120x40, its description whole; the scroll keys move the overlay, not the
/// panes behind it, and the tab bar's hints end on a whole word.
#[test]
fn help_shows_every_key_at_80x24_by_scrolling() {
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let mut a = app(true);
        render(&mut a, w, h);
        press(&mut a, Action::ToggleHelp);
        let (first, _) = render(&mut a, w, h);
        let mut seen_screens = vec![first.clone()];
        for _ in 0..60 {
            press(&mut a, Action::Down);
            seen_screens.push(render(&mut a, w, h).0);
        }
        // Each binding whole, on some scroll position: its keys at the start of a line of the
        // overlay, its description from there and on the lines under it, word for word.
        let overlay_rows = |screen: &str| -> Vec<String> {
            let x = usize::from(w - w.min(96)) / 2;
            screen.lines().map(|l| l.chars().skip(x + 1).take(usize::from(w.min(96)) - 3).collect::<String>()).collect()
        };
        let screens: Vec<Vec<String>> = seen_screens.iter().map(|s| overlay_rows(s)).collect();
        for b in saescope::ui::keys::KEYS {
            let head = format!(" {:<17} ", b.label);
            let whole = screens.iter().any(|rows| {
                rows.iter().enumerate().any(|(i, r)| {
                    let Some(rest) = r.strip_prefix(&head) else { return false };
                    let mut words: Vec<&str> = rest.split_whitespace().collect();
                    words
                        .extend(rows[i + 1..].iter().take_while(|c| c.starts_with(&" ".repeat(19)) && !c.trim().is_empty()).flat_map(|c| c.split_whitespace()));
                    words == b.help.split_whitespace().collect::<Vec<_>>()
                })
            });
            assert!(whole, "{w}x{h}: the help never shows {:?} with its whole description {:?}\n{first}", b.label, b.help);
        }
        assert_eq!(a.main().cursor, 0, "the panes behind did not move");
        if (w, h) == (80, 24) {
            assert!(first.contains("scroll"), "the help says it scrolls\n{first}");
            let (bottom, _) = render(&mut a, w, h);
            assert_ne!(first, bottom, "Down scrolled the help");
            press(&mut a, Action::Home);
            assert_eq!(render(&mut a, w, h).0, first, "Home goes back to the top");
        }
        press(&mut a, Action::Back);
        assert!(!a.help);
        let (s, _) = render(&mut a, w, h);
        let top = s.lines().next().unwrap_or_default().trim_end();
        let hints = saescope::ui::keys::hints(saescope::ui::app::Mode::Main, "  ");
        let last_word = top.rsplit("  ").next().unwrap_or_default();
        assert!(hints.split("  ").any(|h| h == last_word) || last_word == saescope::ui::keys::MORE, "{w}x{h}: tab bar ends in {last_word:?}: {top}");
    }
}

/// Where `needle` is on a rendered screen: (column, row) of its first character.
fn spot(screen: &str, needle: &str) -> (u16, u16) {
    screen
        .lines()
        .enumerate()
        .find_map(|(y, l)| l.find(needle).map(|b| (l[..b].chars().count() as u16, y as u16)))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{screen}"))
}

#[test]
fn mouse_clicks_focus_panes_select_rows_and_tabs() {
    let mut a = app(true);
    let (s, _) = render(&mut a, 80, 24);
    let (x, y) = spot(&s, "Non-English");
    press(&mut a, Action::Click { column: x, row: y });
    assert_eq!((a.main().pane, a.main().cursor), (Pane::Categories, 3));
    // The row that shows rank 3 selects rank 3 (index 2), not the one below it.
    let rank3 = format!("3   #{}", a.metrics(0).expect("m").ranked[2].feature);
    let (x, y) = spot(&s, &rank3);
    press(&mut a, Action::Click { column: x + 2, row: y });
    assert_eq!((a.main().pane, a.main().row), (Pane::Features, 2));
    let (x, y) = spot(&s, "Specialist scores");
    press(&mut a, Action::Click { column: x, row: y + 2 });
    assert_eq!(a.main().pane, Pane::Matrix);
    // A matrix row: the second feature's row selects it, and Enter opens its card.
    let second = a.matrix_features()[1];
    let (x, y) = spot(&s, &format!("│#{second} "));
    press(&mut a, Action::Click { column: x + 1, row: y });
    assert_eq!(a.main().matrix_row, 1);
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.card().map(|c| c.feature), Some(second));
    press(&mut a, Action::Back);
    let (x, y) = spot(&s, " 10 ");
    press(&mut a, Action::Click { column: x + 1, row: y });
    assert_eq!(a.sae().layer(), 10);
    // A click on the column header selects nothing.
    render(&mut a, 80, 24);
    let before = a.main().row;
    let (s, _) = render(&mut a, 80, 24);
    let (x, y) = spot(&s, "#   feature");
    press(&mut a, Action::Click { column: x, row: y });
    assert_eq!(a.main().row, before);
}

/// After scrolling the feature table, a click selects the row under the pointer: the
/// hit-test reads what was drawn, offset included.
#[test]
fn scroll_then_click_selects_the_row_under_the_pointer() {
    let mut a = app(true);
    press(&mut a, Action::NextPane);
    for _ in 0..20 {
        press(&mut a, Action::Down);
    }
    let (s, _) = render(&mut a, 120, 36);
    let ranked: Vec<u32> = a.metrics(0).expect("m").ranked.iter().map(|t| t.feature).collect();
    for rank in [11usize, 10, 20] {
        let (x, y) = spot(&s, &format!("{rank:<3} #{}", ranked[rank - 1]));
        press(&mut a, Action::Click { column: x + 1, row: y });
        assert_eq!(a.main().row, rank - 1, "clicked rank {rank}");
        press(&mut a, Action::OpenCard);
        assert_eq!(a.card().map(|c| c.feature), Some(ranked[rank - 1]));
        press(&mut a, Action::Back);
    }
    // The wheel scrolls the pane under the pointer, whichever has focus.
    press(&mut a, Action::PrevPane);
    assert_eq!(a.main().pane, Pane::Categories);
    let (x, y) = spot(&s, "Specialist scores");
    press(&mut a, Action::Wheel { column: x, row: y + 3, down: true });
    assert_eq!(a.main().pane, Pane::Matrix);
}

#[test]
fn keymap_covers_the_documented_keys() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let k = |c| keymap(KeyEvent::new(c, KeyModifiers::NONE), false);
    assert_eq!(k(KeyCode::Char('l')), Some(Action::NextLayer));
    assert_eq!(k(KeyCode::Char('[')), Some(Action::PrevLayer));
    assert_eq!(k(KeyCode::Char('3')), Some(Action::Layer(2)));
    assert_eq!(k(KeyCode::Char(' ')), Some(Action::ToggleMark));
    assert_eq!(k(KeyCode::BackTab), Some(Action::PrevPane));
    assert_eq!(k(KeyCode::Char('e')), Some(Action::Export));
    assert_eq!(k(KeyCode::Char('t')), Some(Action::Tokens));
    assert_eq!(k(KeyCode::Char('/')), Some(Action::Search));
    assert_eq!(k(KeyCode::Char('i')), Some(Action::InputText));
    assert_eq!(k(KeyCode::Char('f')), Some(Action::Findings));
    assert_eq!(k(KeyCode::Enter), Some(Action::FocusCategory));
    assert_eq!(keymap(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), false), Some(Action::Quit));
    // On the input line letters are text, and Ctrl-C still quits.
    let typing = |c| keymap(KeyEvent::new(c, KeyModifiers::NONE), true);
    assert_eq!(typing(KeyCode::Char('q')), Some(Action::Type('q')));
    assert_eq!(typing(KeyCode::Enter), Some(Action::Submit));
    assert_eq!(typing(KeyCode::Backspace), Some(Action::Erase));
    assert_eq!(keymap(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), true), Some(Action::Quit));
    // Every key the help lists is in the overlay's table.
    let help: String = panes::help::lines().join(" ");
    for key in ["t", "/", "i", "f", "o", "Enter", "e", "?"] {
        assert!(help.split_whitespace().any(|w| w == key), "{key} missing from help: {help}");
    }
    // Every table key maps to its action.
    for b in saescope::ui::keys::KEYS {
        if let saescope::ui::keys::Keys::Codes(codes) = b.keys {
            for &c in codes {
                assert_eq!(k(c), Some(b.action.clone()), "{c:?}");
            }
        }
    }
}

#[test]
fn export_writes_the_visible_tables_and_matrix() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = app(true);
    a.export_dir = dir.path().to_owned();
    a.marked = [0, 3].into_iter().collect();
    press(&mut a, Action::NextLayer);
    press(&mut a, Action::Export);
    let msg = a.message.clone().expect("message");
    assert!(msg.starts_with("exported "), "{msg}");
    let path = std::fs::read_dir(dir.path()).expect("dir").next().expect("one file").expect("entry").path();
    assert!(path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("saescope-8res512-") && n.ends_with(".csv")));
    let mut r = csv::Reader::from_path(&path).expect("csv");
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    let la = a.sae_analysis().expect("la");
    let table: Vec<_> = rows.iter().filter(|r| &r[0] == "table").collect();
    let expect_rows = la.categories[0].ranked.len() + la.categories[3].ranked.len();
    assert_eq!(table.len(), expect_rows);
    for (row, t) in table.iter().zip(la.categories[0].ranked.iter()) {
        assert_eq!((&row[1], &row[2], &row[4]), ("Python", "8 res 512", t.feature.to_string().as_str()));
        assert_eq!(row[5].parse::<f32>().expect("f"), t.activation);
        assert_eq!(row[6].parse::<i64>().expect("i"), t.specialist);
    }
    let features = a.matrix_features();
    let matrix: Vec<_> = rows.iter().filter(|r| &r[0] == "matrix").collect();
    assert_eq!(matrix.len(), features.len() * 7);
    let m = la.above.matrix(&features);
    for (i, row) in matrix.iter().enumerate() {
        assert_eq!(row[6].parse::<i64>().expect("i"), m[i / 7][i % 7]);
    }
}

#[test]
fn export_to_an_unwritable_folder_is_a_message() {
    let mut a = app(true);
    a.export_dir = "/proc/no-such-folder".into();
    press(&mut a, Action::Export);
    assert!(a.message.as_deref().is_some_and(|m| m.starts_with("export failed: cannot write")), "{:?}", a.message);
    assert!(!a.quit);
    let mut b = app(false);
    press(&mut b, Action::Export);
    assert!(b.message.as_deref().is_some_and(|m| m.contains("still computing")));
}

// ---- Views beyond the main panes: card, tokens, findings, search, your own text ----

use saescope::neuronpedia::labels::Labels;
use saescope::ui::app::{Mode, Reply, WorkerRequest};
use saescope::ui::worker;
use std::collections::BTreeSet;

thread_local! {
    /// The whole tiny model, one per test thread: tests that serve requests run side by
    /// side instead of queuing on one lock (it loads in a fraction of a second).
    static ENGINE: saescope::pipeline::Engine = common::full_engine(&LAYERS);
}

fn with_engine<T>(f: impl FnOnce(&saescope::pipeline::Engine) -> T) -> T {
    ENGINE.with(f)
}

/// Answers the app's queued requests with the tiny engine, as the model thread does.
fn serve(a: &mut App) -> usize {
    let requests: Vec<WorkerRequest> = PENDING.with(|p| p.borrow_mut().drain(..).collect());
    let n = requests.len();
    for r in requests {
        let mut progress = Vec::new();
        let knows = worker::Knows {
            labels: a.labels.clone(),
            samples: Some(Samples::bundled().expect("samples")),
            computed: Some(results().clone()),
            opts: opts(false, 2048),
            transcoders: Some(saescope::graph::transcoders::Set::Dir { dir: common::tiny_transcoders(false).to_path_buf(), variant: None }),
            ..Default::default()
        };
        let reply = with_engine(|e| worker::handle(e, &knows, false, r, &mut |p| progress.push(p)));
        STEPS.with(|n| *n.borrow_mut() += progress.len());
        for p in progress {
            a.receive(p);
        }
        a.receive(reply);
    }
    n
}

fn sample_labels(a: &App) -> Labels {
    let top = a.metrics(0).expect("m").ranked[0].feature;
    let src = format!(
        r#"[{{"layer":"6-res-jb","index":"{top}","description":"Python keywords"}},{{"layer":"8-res-jb","index":"3","description":"python imports"}},{{"layer":"10-res-jb","index":"4","description":"dates"}}]"#
    );
    Labels::parse(&src, "test", &saescope::neuronpedia::labels::Scope::new(&common::keys(&LAYERS), &ids())).expect("labels").0
}

#[test]
fn enter_on_a_feature_opens_its_card_with_lens_and_neighbours() {
    let mut a = app(true);
    press(&mut a, Action::NextPane); // Features
    press(&mut a, Action::Down);
    let f = a.selected_feature().expect("feature");
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.mode(), Mode::Card);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains(&format!("https://www.neuronpedia.org/gpt2-small/6-res-jb/{f}")), "{s}");
    assert!(s.contains("computing the logit lens"), "weight parts come from the model thread\n{s}");
    assert_eq!(serve(&mut a), 1);
    let card = a.card().cloned().expect("card");
    let lens = card.logits.as_ref().expect("lens filled in");
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("Logit lens: promotes") && s.contains("suppresses") && s.contains("8 res 512: nearest (cosine)"), "{s}");
    assert!(s.contains(&format!("{:?}", lens.promoted[0].token)), "top promoted token drawn\n{s}");
    assert!(s.contains("Where it fires most") && s.contains(&format!("Activation in {} texts", a.results.as_ref().expect("r").set.texts.len())), "{s}");
    // Neighbours exist only on the sides that have a loaded layer: layer 6 has none below.
    assert_eq!(card.neighbours.iter().map(|n| n.sae.layer()).collect::<Vec<_>>(), vec![8]);
    press(&mut a, Action::Back);
    assert_eq!(a.mode(), Mode::Main);
    assert!(!a.quit);
}

#[test]
fn card_shows_the_url_to_copy_when_no_browser_opens() {
    let mut a = app(true);
    press(&mut a, Action::NextPane);
    press(&mut a, Action::OpenCard);
    press(&mut a, Action::OpenUrl);
    let url = a.card().expect("card").neuronpedia_url.clone().expect("a known release has a URL");
    assert_eq!(OPENED.with(|o| o.borrow().clone()), vec![url.clone()], "o asks for the URL to be opened, and nothing else");
    let (s, _) = render(&mut a, 80, 24);
    assert!(s.contains(&url), "the URL is on the card at 80x24\n{s}");
}

#[test]
fn token_view_shades_tokens_by_activation_and_steps_texts_and_features() {
    let mut a = app(true);
    press(&mut a, Action::NextPane);
    let f = a.selected_feature().expect("f");
    press(&mut a, Action::Tokens);
    assert_eq!((a.mode(), a.tokens_view().expect("token view").feature, a.tokens_view().expect("token view").row), (Mode::Tokens, f, 0));
    let (s, _) = render(&mut a, 120, 30);
    assert!(s.contains("computing tokens"), "{s}");
    assert_eq!(serve(&mut a), 1);
    let text = a.token_text().expect("text").to_string();
    let acts = a.token_cache.get(&text).expect("tokens").clone();
    let values = acts.feature(0, f);
    let (s, buf) = render(&mut a, 120, 30);
    assert!(s.contains(&format!("Tokens · feature #{f} · 6 res 512 · Python")), "{s}");
    // The strongest token is named, and drawn bold and underlined (readable without
    // colour) on a background; tokens that do not fire are plain.
    let (best, _) = values.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).expect("tokens");
    let max = values[best];
    assert!(max > 0.0, "the table's first feature fires in some token of a text that lists it");
    assert!(s.contains(&format!("max {} at token {:?}", panes::num(max), acts.tokens[best])), "{s}");
    let styled = |m: Modifier| {
        (0..buf.area.height)
            .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(x, y)].modifier.contains(m) && buf[(x, y)].bg != ratatui::style::Color::Reset)
            .count()
    };
    assert!(styled(Modifier::BOLD | Modifier::UNDERLINED) > 0, "the strongest token is bold and underlined");
    // Shading is per token: with values off, the cells drawn are the tokens, some firing, some not.
    let firing = values.iter().filter(|&&v| v > 0.0).count();
    if firing < values.len() {
        let plain_text = (0..buf.area.height)
            .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
            .filter(|&(x, y)| y > 3 && x > 50 && buf[(x, y)].bg == ratatui::style::Color::Reset && !buf[(x, y)].symbol().trim().is_empty())
            .count();
        assert!(plain_text > 0, "tokens that do not fire keep the plain background\n{s}");
    }
    // The list holds the focused category's texts with their mean activation.
    assert_eq!(a.focused_texts().len(), 10);
    press(&mut a, Action::ToggleValues);
    let (s, _) = render(&mut a, 120, 30);
    assert!(s.contains(&format!("[{}]", panes::num(max))), "values on demand\n{s}");
    press(&mut a, Action::Down);
    assert_eq!(a.tokens_view().expect("token view").row, 1);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Tokens(t)] if t != &text), "next text asked for");
    press(&mut a, Action::NextFeature);
    assert_eq!(a.tokens_view().expect("token view").feature, a.metrics(0).expect("m").ranked[1].feature);
    press(&mut a, Action::PrevFeature);
    press(&mut a, Action::PrevFeature);
    assert_eq!(a.tokens_view().expect("token view").feature, f, "stops at the first feature");
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.mode(), Mode::Card, "Enter opens the feature's card");
    press(&mut a, Action::Back);
    assert_eq!(a.mode(), Mode::Tokens, "Esc returns to where the card was opened from");
}

#[test]
fn findings_view_states_each_finding_with_numbers() {
    let mut a = app(true);
    press(&mut a, Action::Findings);
    let (s, _) = render(&mut a, 140, 48);
    let verdicts = s.matches("[HOLDS]").count() + s.matches("[DOES NOT HOLD]").count();
    assert_eq!(verdicts, 4, "{s}");
    assert!(s.contains("Python") && s.contains("Gini"), "{s}");
}

#[test]
fn search_finds_features_by_label_and_opens_their_card() {
    let mut a = app(true);
    press(&mut a, Action::Search);
    assert_eq!(a.mode(), Mode::Search);
    assert!(a.message.as_deref().is_some_and(|m| m.contains("--labels")), "no labels: says how to load them");
    press(&mut a, Action::Back);
    a.labels = sample_labels(&a);
    press(&mut a, Action::Search);
    typed(&mut a, "PYTHON");
    let (s, _) = render(&mut a, 120, 30);
    assert!(s.contains("search (label, #id, token): PYTHON") && s.contains("Python keywords") && s.contains("python imports") && !s.contains("dates"), "{s}");
    press(&mut a, Action::Submit);
    assert!(a.input.is_none());
    press(&mut a, Action::Down);
    press(&mut a, Action::FocusCategory);
    let card = a.card().cloned().expect("card");
    assert_eq!((a.mode(), card.sae.layer(), card.feature, card.label.as_deref()), (Mode::Card, 8, 3, Some("python imports")));
    // The label shows in the feature table too.
    press(&mut a, Action::Back);
    press(&mut a, Action::Back);
    let s = render_pane(&a, 110, 20, |f, a, r| panes::features::draw(f, a, a.main(), &a.hits, r));
    assert!(s.contains("label") && s.contains("Python keywords"), "{s}");
}

#[test]
fn input_line_refuses_empty_text_and_takes_a_long_paste_whole() {
    let mut a = app(true);
    press(&mut a, Action::InputText);
    press(&mut a, Action::Type(' '));
    press(&mut a, Action::Submit);
    assert!(a.input.is_none() && pending().is_empty());
    assert!(a.message.as_deref().is_some_and(|m| m.contains("nothing to run")), "{:?}", a.message);

    // A 2,000-token paste: the whole text goes to the model, which runs its first n_ctx tokens.
    let pasted: String = (0..2000).map(|i| format!(" w{}", i % 10)).collect();
    press(&mut a, Action::InputText);
    press(&mut a, Action::Paste(pasted.replace(" w5", "\r w5")));
    assert_eq!(a.input.as_ref().map(|i| i.text.matches('\n').count()), Some(200), "pasted CR line breaks become newlines");
    a.input.as_mut().expect("input").text = pasted.clone();
    let (s, _) = render(&mut a, 100, 30);
    assert!(s.contains("your text: …") && s.contains("w9"), "the end of a long text shows\n{s}");
    press(&mut a, Action::Submit);
    assert_eq!(pending(), vec![WorkerRequest::AdHoc(pasted.clone())]);
    let before = a.categories.len();
    serve(&mut a);
    assert_eq!(a.categories.len(), before + 1);
    assert_eq!(a.categories.last().map(|c| c.0.as_str()), Some("Your text"));
    let msg = a.message.clone().expect("message");
    assert!(msg.contains("past n_ctx") && msg.contains("the first 1023 ran"), "{msg}");
    assert_eq!((a.mode(), a.focused), (Mode::Tokens, before), "its token view opens");
    // It is a category like any other: analysed at every layer, the rest untouched.
    let m = a.metrics(before).expect("your text analysed");
    assert!(!m.ranked.is_empty());
    let r = a.results.as_ref().expect("r");
    assert_eq!(r.set.texts.len(), 71);
    assert_eq!(r.analysis.saes.len(), LAYERS.len());
}

#[test]
fn worker_reports_a_failure_as_a_message() {
    let mut a = app(true);
    press(&mut a, Action::NextPane);
    press(&mut a, Action::OpenCard);
    let asked = PENDING.with(|p| p.borrow_mut().pop()).expect("card request");
    a.receive(Reply::Failed { request: asked, why: "cannot load the model: no network".into() });
    assert_eq!(a.message.as_deref(), Some("cannot load the model: no network"));
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("failed: cannot load the model: no network"), "the card says why, not 'computing' forever\n{s}");
    let bad = with_engine(|e| {
        worker::handle(
            e,
            &worker::Knows::default(),
            false,
            WorkerRequest::Card(Box::new({
                let mut c = saescope::interp::card::Card::from_set(&results().0, &Labels::default(), common::key(6), 1).expect("card");
                c.sae = common::key(7);
                c
            })),
            &mut |_| {},
        )
    });
    assert!(matches!(bad, Reply::Failed { ref why, .. } if why.contains('7')), "a layer that is not loaded is named");
}

#[test]
fn each_view_exports_its_own_table() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = app(true);
    a.export_dir = dir.path().to_owned();
    a.labels = sample_labels(&a);
    let read = |a: &mut App| -> Vec<csv::StringRecord> {
        press(a, Action::Export);
        let msg = a.message.clone().expect("message");
        let path = msg.strip_prefix("exported ").unwrap_or_else(|| panic!("{msg}"));
        csv::Reader::from_path(path).expect("csv").records().map(|r| r.expect("row")).collect()
    };
    press(&mut a, Action::NextPane);
    press(&mut a, Action::OpenCard);
    serve(&mut a);
    let rows = read(&mut a);
    let card = a.card().cloned().expect("card");
    let sections: BTreeSet<&str> = rows.iter().map(|r| r.get(0).expect("section")).collect();
    for s in ["url", "label", "histogram", "top_text", "promotes", "suppresses", "neighbour", "text"] {
        assert!(sections.contains(s), "{s} missing: {sections:?}");
    }
    assert_eq!(rows.iter().filter(|r| &r[0] == "text").count(), 70);
    let first = rows.iter().find(|r| &r[0] == "promotes").expect("promotes");
    assert_eq!(
        (&first[4], first[5].parse::<f32>().expect("f")),
        (card.logits.as_ref().expect("l").promoted[0].token.as_str(), card.logits.as_ref().expect("l").promoted[0].logit)
    );

    press(&mut a, Action::Tokens);
    serve(&mut a);
    let rows = read(&mut a);
    assert_eq!(rows.iter().filter(|r| &r[0] == "text").count(), 10);
    let n_tokens = a.token_cache.get(a.token_text().expect("t")).expect("acts").tokens.len();
    assert_eq!(rows.iter().filter(|r| &r[0] == "token").count(), n_tokens);

    press(&mut a, Action::Findings);
    let rows = read(&mut a);
    assert_eq!(rows.iter().map(|r| r[0].to_string()).collect::<BTreeSet<_>>().len(), 4);

    press(&mut a, Action::Search);
    typed(&mut a, "python");
    press(&mut a, Action::Submit);
    let rows = read(&mut a);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r[3].starts_with("https://www.neuronpedia.org/gpt2-small/")));
    let names: Vec<String> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("e").file_name().to_string_lossy().into_owned()).collect();
    for prefix in ["saescope-card-6res512-", "saescope-tokens-6res512-", "saescope-findings-6res512-", "saescope-search-6res512-"] {
        assert!(names.iter().any(|n| n.starts_with(prefix)), "{prefix} in {names:?}");
    }
}

#[test]
fn token_view_keeps_recent_texts_only() {
    let mut a = app(true);
    let none = || saescope::interp::lens::TokenActivations { tokens: vec![], saes: vec![], truncated: 0, framing: 0 };
    for i in 0..200 {
        a.receive(Reply::Tokens(format!("text {i}"), none()));
    }
    assert!(a.token_cache.len() <= 64, "{}", a.token_cache.len());
    assert!(a.token_cache.contains_key("text 199"));
}

/// The app with a second run (`--versus-model`) whose findings are in: the first run's,
/// with the analysis's top-k cut to 1 so the numbers differ.
fn with_versus(arrived: bool) -> App {
    let mut a = app(true);
    a.versus =
        Some(saescope::ui::context::Versus { labels: ["tiny-model · tiny-saes".into(), "gemma-3 · gemma-scope-2-270m-pt-res".into()], findings: None });
    if arrived {
        let (set, _) = results();
        let other = saescope::analysis::analyze(set, saescope::analysis::Params { top_k: 1, threshold: 0.0 });
        a.set_versus(Ok(saescope::analysis::findings::findings(&other, &set.categories)));
    }
    press(&mut a, Action::Findings);
    a
}

/// With `--versus-model`, the findings view says the second run is computing, then sets
/// each claim on both runs, one under the other, and its CSV names each row's run.
#[test]
fn findings_view_sets_a_second_run_beside_this_one() {
    let mut a = with_versus(false);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("The second run (gemma-3 · gemma-scope-2-270m-pt-res) is computing"), "{s}");
    assert_eq!(s.matches("[HOLDS]").count() + s.matches("[DOES NOT HOLD]").count(), 4, "this run's findings meanwhile\n{s}");
    let mut a = with_versus(true);
    assert!(a.message.as_deref().is_some_and(|m| m.contains("second run is in")), "{:?}", a.message);
    let (s, _) = render(&mut a, 120, 200);
    assert_eq!(s.matches("[HOLDS]").count() + s.matches("[DOES NOT HOLD]").count(), 8, "{s}");
    assert_eq!(s.matches("] tiny-model · tiny-saes").count(), 4, "{s}");
    assert_eq!(s.matches("] gemma-3 · gemma-scope-2-270m-pt-res").count(), 4, "{s}");
    assert!(!s.contains("computing"), "{s}");
    let (csv, name) = saescope::ui::export::view_csv(&a).expect("findings csv");
    assert_eq!(name, "findings");
    assert!(csv.starts_with("finding,claim,run,verdict,summary,subject,detail\n"), "{csv}");
    assert!(csv.contains(",gemma-3 · gemma-scope-2-270m-pt-res,") && csv.contains(",tiny-model · tiny-saes,"), "{csv}");
    a.set_versus(Err("cannot download google/gemma-3-270m/config.json".into()));
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("failed: cannot download google/gemma-3-270m/config.json"), "{s}");
    let (csv, _) = saescope::ui::export::view_csv(&a).expect("findings csv");
    assert!(csv.starts_with("finding,claim,verdict,summary,subject,detail\n"), "one run, the one-run columns\n{csv}");
}

#[test]
fn findings_view_says_why_when_the_run_failed() {
    let mut a = app(false);
    press(&mut a, Action::Findings);
    let (s, _) = render(&mut a, 100, 30);
    assert!(s.contains("computing…"), "{s}");
    a.error = Some("cannot download openai-community/gpt2/config.json".into());
    let (s, _) = render(&mut a, 100, 30);
    assert!(s.contains("failed: cannot download openai-community/gpt2/config.json") && !s.contains("computing…"), "{s}");
}

/// Offline, a failed run leaves every pane of the main screen saying why it is empty, the
/// specialist pane too (it kept saying "waiting for results").
#[test]
fn every_main_pane_says_why_when_the_run_failed() {
    let mut a = app(false);
    a.error = Some("cannot download openai-community/gpt2/config.json".into());
    let (s, _) = render(&mut a, 120, 40);
    assert!(!s.contains("waiting for results") && !s.contains("computing…"), "{s}");
    // The feature table, the trend and the specialist pane each say it (wrapped in their frames).
    assert_eq!(s.matches("failed: cannot").count(), 3, "{s}");
}

// ---- Snapshots: every screen at 80x24 and 120x40, reviewed by eye when they change ----

/// Each screen of the explorer, set up as a user gets there, at both sizes.
#[test]
fn every_screen_at_80x24_and_120x40() {
    type Screen = (&'static str, Box<dyn Fn() -> App>);
    let screens: Vec<Screen> = vec![
        (
            "computing",
            Box::new(|| {
                let mut a = app(false);
                a.progress = Some(Progress::Fraction { label: "encoding texts".into(), done: 23, total: 70 });
                a
            }),
        ),
        ("main", Box::new(|| app(true))),
        (
            "main_marked",
            Box::new(|| {
                let mut a = app(true);
                press(&mut a, Action::ToggleMark);
                press(&mut a, Action::Down);
                press(&mut a, Action::Down);
                press(&mut a, Action::ToggleMark);
                press(&mut a, Action::NextPane);
                a
            }),
        ),
        ("card", Box::new(with_card)),
        (
            "tokens",
            Box::new(|| {
                let mut a = app(true);
                press(&mut a, Action::NextPane);
                press(&mut a, Action::Tokens);
                serve(&mut a);
                a
            }),
        ),
        (
            "findings",
            Box::new(|| {
                let mut a = app(true);
                press(&mut a, Action::Findings);
                serve(&mut a);
                a
            }),
        ),
        (
            "findings_open_questions",
            Box::new(|| {
                let mut a = app(true);
                press(&mut a, Action::Findings);
                serve(&mut a);
                for _ in 0..5 {
                    press(&mut a, Action::PageDown);
                }
                a
            }),
        ),
        (
            "findings_strips",
            Box::new(|| {
                let mut a = app(true);
                press(&mut a, Action::Findings);
                serve(&mut a);
                for _ in 0..10 {
                    press(&mut a, Action::PageDown);
                }
                a
            }),
        ),
        ("findings_versus", Box::new(|| with_versus(true))),
        (
            "search",
            Box::new(|| {
                let mut a = app(true);
                a.labels = sample_labels(&a);
                press(&mut a, Action::Search);
                typed(&mut a, "python");
                press(&mut a, Action::Submit);
                a
            }),
        ),
        (
            "overview",
            Box::new(|| {
                let mut a = with_index(app(true));
                press(&mut a, Action::Overview);
                serve(&mut a);
                a
            }),
        ),
        (
            "card_corpus",
            Box::new(|| {
                let mut a = with_index(app(true));
                press(&mut a, Action::NextPane);
                press(&mut a, Action::OpenCard);
                serve(&mut a);
                press(&mut a, Action::Down);
                a
            }),
        ),
        (
            "context",
            Box::new(|| {
                let mut a = with_index(app(true));
                press(&mut a, Action::NextPane);
                press(&mut a, Action::OpenCard);
                serve(&mut a);
                press(&mut a, Action::FocusCategory);
                a
            }),
        ),
        (
            "steer",
            Box::new(|| {
                let mut a = with_card();
                press(&mut a, Action::Steer);
                press(&mut a, Action::StrengthUp);
                press(&mut a, Action::FocusCategory);
                typed(&mut a, "def mean(xs):");
                press(&mut a, Action::Submit);
                serve(&mut a);
                a
            }),
        ),
        (
            "attribute",
            Box::new(|| {
                let mut a = app(true);
                a.labels = sample_labels(&a);
                press(&mut a, Action::Attribute);
                typed(&mut a, "The cat sat on the");
                press(&mut a, Action::Submit);
                serve(&mut a);
                press(&mut a, Action::Down);
                a
            }),
        ),
        (
            "help",
            Box::new(|| {
                let mut a = app(true);
                press(&mut a, Action::ToggleHelp);
                a
            }),
        ),
        ("graph", Box::new(with_graph)),
        (
            "graph_groups_ablated",
            Box::new(|| {
                // Two features of the last layers in group 1, the target logit in group 2,
                // group 1 ablated.
                let mut a = with_graph();
                for step in [Action::Down, Action::NextLayer, Action::ToggleMark, Action::Down, Action::NextLayer, Action::ToggleMark, Action::StrengthUp] {
                    press(&mut a, step);
                }
                press(&mut a, Action::Home);
                press(&mut a, Action::ToggleMark);
                // Group 1 is the one ablated: the last group is the logit's, so start anew.
                press(&mut a, Action::Down);
                press(&mut a, Action::NextLayer);
                press(&mut a, Action::StrengthUp);
                press(&mut a, Action::ToggleMark);
                press(&mut a, Action::Remove);
                serve(&mut a);
                a
            }),
        ),
        (
            "your_text",
            Box::new(|| {
                let mut a = app(true);
                press(&mut a, Action::InputText);
                typed(&mut a, "def f(x): return x");
                a
            }),
        ),
    ];
    for (name, make) in &screens {
        for (w, h) in [(80, 24), (120, 40)] {
            let mut a = make();
            // Draw twice: the first frame records where things are, as the event loop does.
            render(&mut a, w, h);
            let (s, _) = render(&mut a, w, h);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), steady(&s));
        }
    }
    let (s, _) = render(&mut app(true), 70, 20);
    insta::assert_snapshot!("too_small_70x20", s);
}

/// Screens own their state: a view opens on top of the one it came from, and Esc goes back
/// to exactly that one, its selection intact; marking, focusing and stepping layers keep
/// the main screen's selections.
#[test]
fn esc_returns_where_the_card_came_from_and_selections_stay() {
    let mut a = app(true);
    a.labels = sample_labels(&a);
    press(&mut a, Action::NextPane);
    press(&mut a, Action::Down);
    press(&mut a, Action::Down);
    press(&mut a, Action::NextLayer);
    press(&mut a, Action::PrevLayer);
    assert_eq!((a.main().pane, a.main().row, a.sae().layer()), (Pane::Features, 2, 6), "layer steps keep the row");
    // Main -> tokens -> card -> Esc: back in the token view on the same text.
    press(&mut a, Action::Tokens);
    press(&mut a, Action::Down);
    press(&mut a, Action::Down);
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.mode(), Mode::Card);
    press(&mut a, Action::Back);
    assert_eq!((a.mode(), a.tokens_view().map(|t| t.row)), (Mode::Tokens, Some(2)));
    press(&mut a, Action::Back);
    assert_eq!((a.mode(), a.main().row), (Mode::Main, 2), "the main screen as it was left");
    // Main -> search -> card -> Esc: back in the search, query and hit kept.
    press(&mut a, Action::Search);
    typed(&mut a, "python");
    press(&mut a, Action::Submit);
    press(&mut a, Action::Down);
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.card().map(|c| c.feature), Some(3), "second hit: python imports, #3 at layer 8");
    press(&mut a, Action::Back);
    let s = a.search_view().expect("search again");
    assert_eq!((s.query.as_str(), s.row), ("python", 1));
    press(&mut a, Action::Back);
    // Marking two categories and focusing keep the cursor where it was.
    press(&mut a, Action::PrevPane);
    press(&mut a, Action::ToggleMark);
    press(&mut a, Action::Down);
    press(&mut a, Action::ToggleMark);
    assert_eq!((a.main().cursor, a.marked.len()), (1, 2));
    press(&mut a, Action::FocusCategory);
    assert_eq!((a.main().cursor, a.focused, a.marked.len()), (1, 1, 0));
}

/// On the too-small screen the input line is hidden, so `q` quits instead of typing.
#[test]
fn q_quits_the_too_small_screen_even_with_the_input_line_open() {
    use ratatui::crossterm::event::{Event as Term, KeyCode, KeyEvent, KeyModifiers};
    let q = || saescope::ui::Event::Term(Term::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)));
    let mut a = app(true);
    press(&mut a, Action::InputText);
    render(&mut a, 100, 30);
    saescope::ui::handle(&mut a, q(), &mut None);
    assert_eq!((a.quit, a.input.as_ref().map(|i| i.text.as_str())), (false, Some("q")), "a normal screen types it");
    render(&mut a, 70, 20);
    saescope::ui::handle(&mut a, q(), &mut None);
    assert!(a.quit);
}

/// Steering from a card: `s` adds the feature to the steering set and opens the steer
/// view; strength and mode change by key; Enter asks for a prompt, then the model thread
/// runs both continuations, shown side by side and exported as CSV.
#[test]
fn steer_view_from_a_card_runs_both_continuations() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = app(true);
    a.export_dir = dir.path().to_owned();
    press(&mut a, Action::NextPane);
    press(&mut a, Action::OpenCard);
    let f = a.card().expect("card").feature;
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Steer);
    assert_eq!(a.mode(), Mode::Steer);
    assert_eq!((a.steering.len(), a.steering[0].feature, a.steering[0].strength), (1, f, 20.0));
    press(&mut a, Action::StrengthUp);
    press(&mut a, Action::StrengthUp);
    press(&mut a, Action::StrengthDown);
    assert_eq!(a.steering[0].strength, 25.0);
    press(&mut a, Action::ToggleMode);
    press(&mut a, Action::ToggleMode);
    assert_eq!(a.steer_mode, saescope::interp::steer::Edit::Add);
    press(&mut a, Action::FocusCategory);
    assert!(a.input.as_ref().is_some_and(|i| i.kind == saescope::ui::action::InputKind::SteerPrompt), "Enter without a prompt asks for one");
    typed(&mut a, "def f(x):");
    press(&mut a, Action::Submit);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Steer { prompt, features, .. }] if prompt == "def f(x):" && features[0].feature == f));
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("generating…"), "{s}");
    assert_eq!(serve(&mut a), 1);
    assert_eq!(STEPS.with(|n| *n.borrow()), saescope::ui::screens::steer::TOKENS - 1, "every step but the last streams");
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("default") && s.contains("steered") && s.contains("KL") && s.contains("def f(x):"), "{s}");
    press(&mut a, Action::Export);
    let msg = a.message.clone().expect("message");
    let path = msg.strip_prefix("exported ").unwrap_or_else(|| panic!("{msg}"));
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(path).expect("csv").records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.iter().filter(|r| &r[0] == "step").count(), saescope::ui::screens::steer::TOKENS * 5, "each step's top 5, as the command prints");
    assert_eq!(rows.iter().filter(|r| &r[0] == "step" && &r[2] == "5").count(), saescope::ui::screens::steer::TOKENS);
    press(&mut a, Action::Back);
    assert_eq!(a.mode(), Mode::Card, "Esc returns to the card");
}

/// `a` asks for a prompt and attributes its next token; the token view's `a` does it for
/// the text on view; Enter opens a feature's card and Esc comes back.
#[test]
fn attribute_view_lists_features_and_opens_their_cards() {
    let mut a = app(true);
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Attribute);
    typed(&mut a, "The cat sat on the");
    press(&mut a, Action::Submit);
    assert_eq!(a.mode(), Mode::Attribute);
    assert_eq!(serve(&mut a), 1);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("next token") && s.contains("attribution") && s.contains("ablated Δlogit"), "{s}");
    let Some(saescope::ui::screens::Screen::Attribute(view)) = Some(a.screen()) else { panic!("attribute view") };
    let (layer, f) = view.rows()[1];
    press(&mut a, Action::Down);
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.card().map(|c| (c.sae, c.feature)), Some((layer, f)));
    press(&mut a, Action::Back);
    assert_eq!(a.mode(), Mode::Attribute);
    // Another target token: the same prompt, explained for " mat".
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Target);
    typed(&mut a, " mat");
    press(&mut a, Action::Submit);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Attribute { target: Some(t), .. }] if t == " mat"));
    serve(&mut a);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("next token \" mat\""), "{s}");
    press(&mut a, Action::Back);
    // From the token view: why the next token after the text on view?
    press(&mut a, Action::NextPane);
    press(&mut a, Action::Tokens);
    let text = a.token_text().expect("text").to_string();
    PENDING.with(|p| p.borrow_mut().clear());
    press(&mut a, Action::Attribute);
    assert_eq!(a.mode(), Mode::Attribute);
    assert!(matches!(pending().as_slice(), [WorkerRequest::Attribute { prompt, .. }] if *prompt == text));
}

/// The fixture corpus indexed with the tiny weights (the path relative, as the tests run
/// from the package root, so screens read the same everywhere).
fn corpus_index() -> &'static std::sync::Arc<saescope::dashboard::Index> {
    static I: OnceLock<std::sync::Arc<saescope::dashboard::Index>> = OnceLock::new();
    I.get_or_init(|| {
        with_engine(|engine| {
            let corpus = saescope::corpus::Corpus::open(std::path::Path::new("tests/fixtures/corpus"), "text").expect("corpus");
            let job = saescope::dashboard::build::Job {
                engine,
                corpus: &corpus,
                context: 128,
                max_tokens: None,
                batch_tokens: 1024,
                encode: saescope::dashboard::build::Encode::Screened,
                slice: None,
            };
            std::sync::Arc::new(job.run(None, &mut |_| Ok(()), &ProgressSink::none()).expect("index").0)
        })
    })
}

fn with_index(mut a: App) -> App {
    a.corpus = Some("tests/fixtures/corpus".into());
    a.index = Some(corpus_index().clone());
    a
}

/// The corpus on a card: its statistics and contexts at once from the index, the shading
/// from the model thread; ↑/↓ select a context and Enter opens it whole.
#[test]
fn a_card_shows_the_corpus_and_opens_a_context_whole() {
    let mut a = with_index(app(true));
    press(&mut a, Action::NextPane);
    let f = a.selected_feature().expect("feature");
    press(&mut a, Action::OpenCard);
    let corpus = a.card().and_then(|c| c.corpus.clone()).expect("corpus sections from the index");
    assert_eq!(corpus.count, corpus_index().of(common::key(6)).expect("layer").count[f as usize]);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains(&format!("Corpus: fires on {} of {} tokens", corpus.count, corpus.tokens)), "{s}");
    assert!(s.contains("Top contexts (shading…)") && s.contains("[["), "{s}");
    serve(&mut a);
    let shaded = a.card().and_then(|c| c.corpus.clone()).expect("corpus");
    let first = &shaded.top[0];
    let values = first.values.as_ref().expect("shaded by the model thread");
    // The shading's max is the index's max, at the index's position.
    assert!((values[first.max_index] - first.max_value).abs() <= 1e-4 * first.max_value.max(1.0), "{values:?} {}", first.max_value);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("Top contexts") && !s.contains("shading…"), "{s}");
    press(&mut a, Action::Down);
    press(&mut a, Action::Down);
    let want = shaded.contexts()[2].clone();
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.mode(), Mode::Context);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains(&want.source) && s.contains("[["), "{s}");
    press(&mut a, Action::ToggleValues);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains(&format!("[{}]", panes::num(want.max_value))), "values shown\n{s}");
    press(&mut a, Action::Back);
    assert_eq!(a.mode(), Mode::Card);
}

/// The overview lists every feature of the layer, sorts, follows the layer keys and opens cards.
#[test]
fn the_overview_sorts_every_feature_and_opens_cards() {
    let mut a = with_index(app(true));
    press(&mut a, Action::Overview);
    assert_eq!(a.mode(), Mode::Overview);
    let index = corpus_index();
    let o = index.overview(common::key(6)).expect("overview");
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains(&format!("{} features · {} dead · L0 {:.1}", o.d_sae, o.dead, o.l0)), "{s}");
    assert!(s.contains("by max activation"), "{s}");
    let stats = index.of(common::key(6)).expect("layer");
    let best = (0..stats.d_sae).max_by(|&x, &y| stats.max[x].total_cmp(&stats.max[y]).then(y.cmp(&x))).expect("a feature");
    assert!(s.contains(&format!("#{best} ")), "the strongest feature first\n{s}");
    press(&mut a, Action::Sort);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("by frac_nonzero"), "{s}");
    press(&mut a, Action::NextLayer);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("SAE overview · 8 res 512"), "{s}");
    press(&mut a, Action::PrevLayer);
    press(&mut a, Action::Sort);
    press(&mut a, Action::Sort);
    press(&mut a, Action::Down);
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.card().map(|c| (c.sae.layer(), c.feature)), Some((6, 1)), "sorted by id, the second row is #1");
    assert!(a.card().and_then(|c| c.corpus.as_ref()).is_some());
}

/// `/` also finds features by the token their top contexts peak on.
#[test]
fn search_finds_features_by_the_token_they_peak_on() {
    let mut a = with_index(app(true));
    let index = corpus_index();
    let stats = index.of(common::key(6)).expect("layer");
    let token = (0..stats.d_sae).find_map(|f| stats.top[f].first().and_then(|h| index.token_at(h))).expect("a peak token").trim().to_string();
    press(&mut a, Action::Search);
    for c in token.chars() {
        press(&mut a, Action::Type(c));
    }
    press(&mut a, Action::Submit);
    let hits = a.search_hits();
    assert!(!hits.is_empty() && hits.iter().all(|(_, _, why)| why.contains("top contexts peak on")), "{hits:?}");
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("top contexts peak on"), "{s}");
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.mode(), Mode::Card);
}

/// The new views export what they show.
#[test]
fn overview_and_context_export_their_rows() {
    let mut a = with_index(app(true));
    press(&mut a, Action::Overview);
    let (csv, name) = saescope::ui::export::view_csv(&a).expect("overview csv");
    assert_eq!(name, "overview");
    assert_eq!(csv::Reader::from_reader(csv.as_bytes()).records().count(), 512, "one row per feature");
    assert!(csv.starts_with("sae,feature,max,frac_nonzero,mean_when_firing,count,peaks_on,label,neuronpedia"));
    press(&mut a, Action::FocusCategory);
    let (csv, _) = saescope::ui::export::view_csv(&a).expect("card csv");
    assert!(csv.lines().any(|l| l.starts_with("corpus_top,6 res 512,")), "{csv}");
    serve(&mut a);
    press(&mut a, Action::FocusCategory);
    let (csv, name) = saescope::ui::export::view_csv(&a).expect("context csv");
    assert_eq!(name, "context");
    assert_eq!(csv.lines().filter(|l| l.starts_with("max_token,6 res 512,")).count(), 1, "{csv}");
}

/// While the corpus indexes (after the results), the status line is its gauge.
#[test]
fn the_gauge_shows_indexing_after_the_results() {
    let mut a = app(true);
    a.corpus = Some("corpus.jsonl".into());
    a.index_note = Some(format!("{} corpus.jsonl once the sample results are in", saescope::ui::context::INDEXING));
    a.progress = Some(Progress::Fraction { label: "indexing tokens".into(), done: 5000, total: 20000 });
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("indexing tokens 5000 of 20000"), "{s}");
    assert!(a.indexing());
    a.set_index(Err("disk full".into()));
    let (s, _) = render(&mut a, 120, 40);
    assert!(!a.indexing() && s.contains("corpus index failed: disk full") && !s.contains("indexing tokens"), "{s}");
    press(&mut a, Action::Overview);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("the corpus index failed: disk full"), "the overview says why\n{s}");
}

/// The findings CSV carries every number behind the open questions' answers, a row each,
/// under the answer it is behind.
#[test]
fn findings_csv_carries_every_open_question_number() {
    let mut a = app(true);
    press(&mut a, Action::Findings);
    assert_eq!(serve(&mut a), 1, "the findings view asks for the open questions once");
    press(&mut a, Action::Down);
    assert_eq!(serve(&mut a), 0, "and not again");
    let (csv, _) = saescope::ui::export::view_csv(&a).expect("findings csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows.iter().any(|r| r.starts_with("5,") && r.contains(" · share with 0 before,")), "{csv}");
    assert!(rows.iter().any(|r| r.starts_with("6,") && r.contains(" · n90,")), "{csv}");
    assert!(rows.iter().any(|r| r.starts_with("6,") && r.contains(" · lorenz 1.00,1")), "{csv}");
    assert!(rows.iter().any(|r| r.starts_with("7,") && r.contains("6 res 512 · explained variance,")), "{csv}");
    assert!(rows.iter().any(|r| r.starts_with("7,") && r.contains(" · peak per norm,")), "{csv}");
    let (s, _) = render(&mut a, 120, 400);
    assert!(s.contains("5. Syntax or semantics") && s.contains("Token strips at 6 res 512"), "{s}");
}

/// The findings view scrolls no further than its last line: paging past the end leaves the
/// last page on screen, End goes there, and one Up from there moves one line.
#[test]
fn findings_view_scrolls_to_its_last_line_and_no_further() {
    let mut a = app(true);
    press(&mut a, Action::Findings);
    serve(&mut a);
    let (_, _) = render(&mut a, 80, 24);
    for _ in 0..200 {
        press(&mut a, Action::PageDown);
    }
    let (s, _) = render(&mut a, 80, 24);
    assert!(s.contains("Social ·") && s.contains("shuffled:"), "the last page: the last category's strip\n{s}");
    press(&mut a, Action::Home);
    press(&mut a, Action::End);
    let (end, _) = render(&mut a, 80, 24);
    assert_eq!(end, s, "End shows the same last page");
    press(&mut a, Action::Up);
    let (up, _) = render(&mut a, 80, 24);
    assert_ne!(up, end, "one Up from the end moves at once");
}

/// A screen without the figures that change from run to run: how long a graph took.
fn steady(screen: &str) -> String {
    let mut out = String::new();
    let mut rest = screen;
    while let Some(i) = rest.find("rows in ") {
        let (head, tail) = rest.split_at(i + "rows in ".len());
        out.push_str(head);
        let end = tail.find(" s").unwrap_or(0);
        let figure = &tail[..end];
        // Digits masked, width kept: the frame around stays whole.
        out.extend(figure.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

const GRAPH_PROMPT: &str = "The cat sat on the mat because it was";

/// `g` with the tiny transcoders, a prompt typed, the graph served.
fn with_graph() -> App {
    let mut a = app(true);
    a.transcoders = Some("transcoders".into());
    press(&mut a, Action::Graph);
    typed(&mut a, GRAPH_PROMPT);
    press(&mut a, Action::Submit);
    serve(&mut a);
    a
}

fn graph_view(a: &App) -> &saescope::ui::screens::GraphScreen {
    match a.screen() {
        saescope::ui::screens::Screen::Graph(g) => g,
        _ => panic!("no graph view on top"),
    }
}

/// The graph view as a user walks it: from the target logit down the strongest edges, a
/// group gathered, the threshold lowered, a feature ablated, the view exported.
#[test]
fn the_graph_view_walks_groups_thresholds_ablates_and_exports() {
    let mut a = app(true);
    press(&mut a, Action::Graph);
    assert!(a.input.is_none() && a.message.as_deref().is_some_and(|m| m.contains("--transcoders DIR")), "{:?}", a.message);
    a.transcoders = Some("transcoders".into());
    press(&mut a, Action::Graph);
    typed(&mut a, GRAPH_PROMPT);
    press(&mut a, Action::Submit);
    assert_eq!(a.mode(), Mode::Graph);
    assert_eq!(pending(), vec![WorkerRequest::Graph { prompt: GRAPH_PROMPT.into(), upto: None }]);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("computing the graph"), "{s}");
    serve(&mut a);
    let (s, _) = render(&mut a, 120, 40);
    for want in ["logits│", "L11   │", "emb   │", "replacement 0.", "in, strongest first", "threshold 0.80", "▶ logit"] {
        assert!(s.contains(want), "{want}\n{s}");
    }
    let g = graph_view(&a).clone();
    let r = g.reading.as_deref().expect("read");
    let start = r.start();
    assert!(r.file.nodes[start].is_target_logit);
    // p: along the strongest edge into the logit.
    press(&mut a, Action::PrevFeature);
    let first = graph_view(&a).selected;
    assert_eq!(first, r.incoming(start, 0.8)[0].0);
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains(&format!("▶ {}", r.name(first))), "{s}");
    // A click on a glyph selects that node.
    let (x, y) = (0..40u16)
        .flat_map(|y| (0..120u16).map(move |x| (x, y)))
        .find(|&(x, y)| a.hits.at(x, y) == Some(saescope::ui::hits::Target::GraphNode(start)))
        .expect("logit drawn");
    press(&mut a, Action::Click { column: x, row: y });
    assert_eq!(graph_view(&a).selected, start);
    // Two groups: the logit, and its strongest input.
    press(&mut a, Action::ToggleMark);
    press(&mut a, Action::StrengthUp);
    press(&mut a, Action::PrevFeature);
    press(&mut a, Action::ToggleMark);
    assert_eq!(graph_view(&a).groups, vec![vec![start], vec![first]]);
    let w = r.incoming(start, 0.8)[0].1;
    let (s, _) = render(&mut a, 120, 40);
    assert!(s.contains("[1] 1 node, [2] 1 node") && s.contains(&format!("[2]→[1] {w:+.3}")), "{s}");
    // The threshold hides nodes, as Neuronpedia's slider does; tokens and logits stay.
    for _ in 0..4 {
        press(&mut a, Action::TokenLeft);
    }
    let g2 = graph_view(&a);
    assert!((g2.threshold - 0.6).abs() < 1e-9);
    let shown = |t: f64| (0..r.len()).filter(|&i| r.shown(i, t)).count();
    assert!(shown(0.6) < shown(0.8), "{} vs {}", shown(0.6), shown(0.8));
    // Ablating the second group (one feature, or the error its strongest input may be).
    press(&mut a, Action::Remove);
    let asked = pending();
    if r.kinds[first] == saescope::graph::reading::Kind::Feature {
        assert!(matches!(&asked[..], [WorkerRequest::Intervene { features, .. }] if features.len() == 1), "{asked:?}");
        serve(&mut a);
        let (s, _) = render(&mut a, 120, 40);
        assert!(s.contains("ablated ") && s.contains("frozen attention"), "{s}");
    } else {
        assert!(asked.is_empty() && a.message.as_deref().is_some_and(|m| m.contains("nothing to ablate")));
    }
    // The export: every node shown and every edge between shown nodes.
    let (csv, name) = saescope::ui::export::view_csv(&a).expect("csv");
    assert_eq!(name, "graph");
    let t = graph_view(&a).threshold;
    assert_eq!(csv.lines().filter(|l| l.starts_with("node,")).count(), shown(t));
    assert_eq!(csv.lines().filter(|l| l.starts_with("edge,")).count(), r.edges(t).len());
    assert!(csv.starts_with("section,node,kind,layer,position,token,feature,value,influence,group,target,text"), "{csv}");
    // Enter on a feature whose transcoder is not loaded as an SAE says how to load it.
    press(&mut a, Action::Home);
    while graph_view(&a).reading.as_deref().is_some_and(|r| r.kinds[graph_view(&a).selected] != saescope::graph::reading::Kind::Feature) {
        let before = graph_view(&a).selected;
        press(&mut a, Action::Down);
        if graph_view(&a).selected == before {
            press(&mut a, Action::NextLayer);
        }
    }
    press(&mut a, Action::FocusCategory);
    assert_eq!(a.mode(), Mode::Graph);
    assert!(a.message.as_deref().is_some_and(|m| m.contains("has no card here") && m.contains(".hook_mlp_in")), "{:?}", a.message);
    // Nor a label: the residual SAE at that layer is not the feature's transcoder.
    assert_eq!(saescope::ui::screens::graph::transcoder_sae(&a.ctx, 8, 3), None);
    press(&mut a, Action::Back);
    assert_eq!(a.mode(), Mode::Main);
}

/// A graph file opens in the view (as `--graph FILE` does), and one whose links name nodes
/// it lacks is refused with why.
#[test]
fn a_graph_file_opens_in_the_view_and_a_broken_one_is_refused() {
    let made = with_graph();
    let file = graph_view(&made).reading.as_deref().expect("read").file.clone();
    let mut a = app(true);
    a.open_graph(file.clone(), "read from test".into()).expect("opens");
    assert_eq!(a.mode(), Mode::Graph);
    let (s, _) = render(&mut a, 80, 24);
    assert!(s.contains("read from test") && s.contains("logits│"), "{s}");
    // Its prompt is the one the graph was made of (the file's tokens after BOS), so an
    // ablation runs on the very positions the file names.
    assert_eq!(graph_view(&a).prompt, GRAPH_PROMPT);
    let mut broken = file;
    broken.links[0].source = "99_1_1".into();
    let e = app(true).open_graph(broken, String::new()).expect_err("refused");
    assert!(e.to_string().contains("99_1_1"), "{e}");
}

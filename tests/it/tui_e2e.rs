//! The real binary in a real terminal (tmux), driven as a person would: wait for results,
//! step a layer, mark two categories, export, quit; then check the screen, the CSV and
//! that the terminal was restored.

use crate::common;

use common::{cache_dir, tiny};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux is installed (scripts/test installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "e2e"])
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }
    /// Esc on its own: a key that follows within the same read would make it Alt+key,
    /// as in any terminal program.
    fn escape(&self) {
        self.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    fn wait_for(&self, what: &str, secs: u64) -> String {
        self.wait_until(what, secs, |s| s.contains(what))
    }
    /// Until every needle is on screen at once: a capture can fall in the middle of a
    /// redraw, with the first lines new and the rest old.
    fn wait_all(&self, needles: &[&str], secs: u64) -> String {
        self.wait_until(&needles.join(" + "), secs, |s| needles.iter().all(|n| s.contains(n)))
    }
    fn wait_until(&self, what: &str, secs: u64, done: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(t.elapsed() < Duration::from_secs(secs), "waited {secs} s for {what:?}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// `env` options that drop the machine's Hugging Face settings, so a filled cache, an
/// endpoint or a token of the machine's never changes what a test sees.
const NO_HF: &str = "-u HF_HUB_CACHE -u HF_HOME -u HF_ENDPOINT -u HF_HUB_OFFLINE -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN";

/// The explorer on the tiny weights in a 100x30 tmux session; `extra` goes on its command line.
fn launch(name: &str, cache: &Path, extra: &str) -> Tmux {
    launch_with(name, cache, "", extra)
}

/// `launch` with `env` (`NAME=value ...`) set for saescope.
fn launch_with(name: &str, cache: &Path, env: &str, extra: &str) -> Tmux {
    let cmd = format!(
        "env {NO_HF} {env} {} --model-dir {} --sae-dir {} --cache-dir {} {extra}; echo SAESCOPE-EXIT $?; sleep 30",
        env!("CARGO_BIN_EXE_saescope"),
        quote(&tiny().join("model")),
        quote(&tiny().join("saes")),
        quote(cache),
    );
    run_in_tmux(name, &cmd)
}

/// `cmd` (a shell command line) in a 100x30 tmux session.
fn run_in_tmux(name: &str, cmd: &str) -> Tmux {
    run_in_tmux_at(name, cmd, 100, 30)
}

/// `cmd` in a tmux session of `width` x `height`.
fn run_in_tmux_at(name: &str, cmd: &str, width: u16, height: u16) -> Tmux {
    let t = Tmux { socket: format!("saescope-{name}-{}", std::process::id()) };
    t.cmd(&["new-session", "-d", "-s", "e2e", "-x", &width.to_string(), "-y", &height.to_string(), cmd]);
    t
}

fn assert_restored(t: &Tmux, code: i32) {
    let s = t.wait_all(&["SAESCOPE-EXIT", &format!("SAESCOPE-EXIT {code}")], 30);
    assert!(s.contains(&format!("SAESCOPE-EXIT {code}")), "{s}");
    assert!(!s.contains("Specialist scores"), "the alternate screen was left:\n{s}");
    let modes = t.cmd(&["display-message", "-p", "-t", "e2e", "#{alternate_on} #{mouse_any_flag} #{cursor_flag}"]);
    assert_eq!(modes.trim(), "0 0 1", "alternate screen off, mouse capture off, cursor visible");
}

#[test]
fn explore_step_mark_export_quit_in_tmux() {
    let export = tempfile::tempdir().expect("tmp");
    let t = launch("e2e", cache_dir(), &format!("--export-dir {}", quote(export.path())));

    let s = t.wait_all(&["Peak", "Features · 6 res 512 · Python", "Specialist scores · 6 res 512"], 60);
    assert!(s.contains("Features · 6 res 512 · Python") && s.contains("Specialist scores · 6 res 512"), "{s}");
    t.keys(&["Right"]);
    let s = t.wait_all(&["Features · 8 res 512", "Specialist scores · 8 res 512"], 30);
    assert!(s.contains("Specialist scores · 8 res 512"), "{s}");
    t.keys(&["Space", "j", "Space"]);
    let s = t.wait_all(&["2 categories side by side", "[x] Python", "[x] Math"], 30);
    assert!(s.contains("[x] Python") && s.contains("[x] Math"), "{s}");
    t.keys(&["e"]);
    let s = t.wait_all(&["exported", "saescope-8res512-"], 30);
    assert!(s.contains("saescope-8res512-"), "{s}");
    let files: Vec<_> = std::fs::read_dir(export.path()).expect("dir").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 1, "one export, no temporary files left: {files:?}");
    let csv = std::fs::read_to_string(&files[0]).expect("csv");
    assert!(csv.starts_with("section,category,sae,rank,feature,activation,specialist,share,n_above,neuronpedia\n"));
    assert!(csv.contains("\ntable,Python,8 res 512,1,") && csv.contains("\ntable,Math,8 res 512,1,") && csv.contains("\nmatrix,Social,8 res 512,"), "{csv}");

    // The help at 100x30 is taller than the screen: it says so, and End scrolls to the last key.
    t.keys(&["?"]);
    let s = t.wait_for("↑/↓ PgUp/PgDn scroll", 30);
    assert!(!s.contains("quit, also while typing"), "the last key is below the edge at first\n{s}");
    t.keys(&["End"]);
    t.wait_for("quit, also while typing", 30);
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// A second launch on the same inputs is served from the result cache: the full view
/// appears without the model being loaded (`scripts/bench-launch` times it).
#[test]
fn second_launch_is_served_from_the_cache() {
    let cache = tempfile::tempdir().expect("tmp");
    let t = launch("first", cache.path(), "");
    t.wait_for("Peak", 60);
    t.keys(&["q"]);
    assert_restored(&t, 0);
    drop(t);
    let t = launch("second", cache.path(), "");
    let s = t.wait_all(&["Peak", "70 texts from cache"], 30);
    assert!(s.contains("70 texts from cache"), "{s}");
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// As a user would: scroll the feature table with `j`, click (SGR mouse) a row in the
/// middle of what it shows, open its card: the card is that row's feature.
#[test]
fn scroll_then_click_opens_the_card_of_the_row_clicked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = launch("click", cache_dir(), &format!("--export-dir {}", quote(tmp.path())));
    t.wait_for("Peak", 60);
    t.keys(&["Tab"]);
    for _ in 0..20 {
        t.keys(&["j"]);
    }
    let s = t.wait_for("20  #", 30);
    // The table has scrolled: click a row in the middle of what it shows now.
    let rows: Vec<(usize, &str)> = s
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.split('┃').nth(1).is_some_and(|c| c.get(..4).is_some_and(|r| r.trim().parse::<u32>().is_ok()) && c.get(4..).is_some_and(|r| r.starts_with('#')))
        })
        .collect();
    assert!(rows.len() >= 3 && !s.contains("┃1   #"), "scrolled past rank 1:\n{s}");
    let (y, line) = rows[rows.len() / 2];
    let cell = line.split('┃').nth(1).expect("table cell");
    let rank = cell[..4].trim().to_string();
    let feature: String = cell[5..].chars().take_while(|c| c.is_ascii_digit()).collect();
    let x = line[..line.find(cell).expect("cell")].chars().count();
    // SGR mouse coordinates are 1-based: press and release of the left button.
    let (col, row) = (x + 2, y + 1);
    t.keys(&["-l", &format!("\x1b[<0;{col};{row}M\x1b[<0;{col};{row}m")]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["Enter"]);
    let s = t.wait_all(&["Feature #", &format!("Feature #{feature} · 6 res 512")], 30);
    assert!(s.contains(&format!("Feature #{feature} · 6 res 512")), "clicked rank {rank}, #{feature}:\n{s}");
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// A panic on the model thread (as libtorch's errors arrive through tch) shows its message
/// in the status bar and the panes; the UI stays usable and `q` exits 0, terminal restored.
#[test]
fn a_worker_panic_is_shown_and_q_still_quits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = launch_with("panic", &tmp.path().join("cache"), "SAESCOPE_FAULT=panic-computing", "");
    let s = t.wait_all(&["injected fault", "error: the model thread failed while computing: injected fault (panic-computing)"], 30);
    assert!(s.contains("error: the model thread failed while computing: injected fault (panic-computing)"), "{s}");
    assert!(!s.contains("panicked at"), "the panic is not printed over the UI:\n{s}");
    t.keys(&["f"]);
    let s = t.wait_all(&["Findings", "failed"], 30);
    assert!(s.contains("failed"), "the panes say why\n{s}");
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// A panic while answering a view (here a card) shows in that view and the status bar;
/// the explorer goes on.
#[test]
fn a_worker_panic_while_serving_shows_in_the_view() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = launch_with("panic2", &tmp.path().join("cache"), "SAESCOPE_FAULT=panic-serving", "");
    t.wait_for("Peak", 60);
    t.keys(&["Tab", "Enter"]);
    let s = t.wait_all(&["failed: the model thread failed while", "(panic-serving)"], 30);
    assert!(s.contains("(panic-serving)") && !s.contains("panicked at"), "{s}");
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// Downloading in the explorer: the gauge shows the transfer (bytes, rate), and a
/// SIGTERM while the hub stalls ends it within two seconds with status 143, the terminal
/// restored and the partial download kept.
#[test]
fn sigterm_during_a_stalled_download_in_the_explorer_restores_the_terminal() {
    let hub = common::hub::Hub::start();
    hub.repo("openai-community/gpt2", &tiny().join("model"), &["tokenizer.json"]).repo("jbloom/GPT2-Small-SAEs-Reformatted", &tiny().join("saes"), &[]);
    hub.fault("model.safetensors", common::hub::Fault { stall_at: Some(2_000_000), ..Default::default() });
    let tmp = tempfile::tempdir().expect("tmp");
    let cmd = format!(
        "env {NO_HF} HF_ENDPOINT={} HF_HUB_CACHE={} {} --no-cache --download-timeout 60; echo SAESCOPE-EXIT $?; sleep 30",
        hub.endpoint,
        quote(&tmp.path().join("hf")),
        env!("CARGO_BIN_EXE_saescope"),
    );
    let t = run_in_tmux("download", &cmd);
    let s = t.wait_all(&["downloading model.safetensors: 2.0 MB of 15.5 MB", "B/s"], 30);
    assert!(s.contains("B/s"), "the gauge shows the rate\n{s}");
    let shell = t.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
    let started = Instant::now();
    let ok = Command::new("pkill").args(["-TERM", "-P", shell.trim(), "saescope"]).status().expect("pkill");
    assert!(ok.success(), "signal sent");
    assert_restored(&t, 143);
    // The signal ends the stalled transfer at once, not after its 60 s stall timeout.
    assert!(started.elapsed() < Duration::from_secs(30), "waited {:?}, as for the stall timeout", started.elapsed());
    let blobs = tmp.path().join("hf/models--openai-community--gpt2/blobs");
    let kept = std::fs::read_dir(blobs).expect("blobs").filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().ends_with(".incomplete"));
    assert!(kept, "the partial download is kept for the next run");
}

/// 4,000 generated texts: long enough to act while the model is still computing.
fn big_samples() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let samples = tmp.path().join("big.toml");
    let ok = Command::new(env!("CARGO_BIN_EXE_saescope")).args(["synth-samples", "--texts", "4000", "--out"]).arg(&samples).status().expect("gen");
    assert!(ok.success());
    (tmp, samples)
}

/// SIGINT from outside (not the terminal's Ctrl-C, which is a key in raw mode) while the
/// model is computing: the explorer leaves through its normal path and restores the terminal.
#[test]
fn sigint_while_computing_restores_the_terminal() {
    let (tmp, samples) = big_samples();
    let t = launch("sigint", &tmp.path().join("cache"), &format!("--no-cache --batch-tokens 32 --samples {}", quote(&samples)));
    t.wait_for("encoding texts", 30);
    let shell = t.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
    let ok = Command::new("pkill").args(["-INT", "-P", shell.trim(), "saescope"]).status().expect("pkill");
    assert!(ok.success(), "signal sent");
    assert_restored(&t, 130);
}

/// While the model computes, the panes show the texts done so far; `q` then exits 0 at
/// once and leaves no partial file in the result cache (the worker writing it never unwinds).
#[test]
fn quit_while_computing_leaves_no_partial_cache_file() {
    let (tmp, samples) = big_samples();
    let cache = tmp.path().join("cache");
    let t = launch("quit", &cache, &format!("--batch-tokens 32 --samples {}", quote(&samples)));
    t.wait_for("encoding texts", 30);
    // The panes fill in while the rest computes.
    let s = t.wait_all(&["texts so far", "#   feature"], 30);
    assert!(s.contains("#   feature"), "{s}");
    let partials = || {
        std::fs::read_dir(&cache).map(|r| r.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with(".partial-")).count()).unwrap_or(0)
    };
    assert_eq!(partials(), 1, "the worker is writing its cache file");
    t.keys(&["q"]);
    assert_restored(&t, 0);
    assert_eq!(partials(), 0, "no partial cache file is left behind");
}

/// Beyond the study, as a new user would try it: a feature's card (logit lens, neighbours),
/// its token view, the findings, label search, and a text of one's own.
#[test]
fn card_tokens_findings_search_and_own_text_in_tmux() {
    let tmp = tempfile::tempdir().expect("tmp");
    let labels = tmp.path().join("labels.jsonl");
    let rows: String = (0..512).map(|i| format!("{{\"layer\":\"8-res-jb\",\"index\":\"{i}\",\"description\":\"label number {i}\"}}\n")).collect();
    std::fs::write(&labels, rows).expect("labels");
    let t = launch("views", cache_dir(), &format!("--labels {} --export-dir {}", quote(&labels), quote(tmp.path())));
    let s = t.wait_all(&["Peak", "labels: 512"], 60);
    assert!(s.contains("labels: 512"), "import summary on the status line\n{s}");
    t.keys(&["Right", "Tab", "Enter"]);
    let s = t.wait_for("Logit lens: promotes", 30);
    // Synthetic SAEs have no Neuronpedia page: the card says so rather than link another SAE's.
    assert!(
        s.contains("no Neuronpedia page known for this SAE")
            && s.contains("label: label number")
            && s.contains("6 res 512: nearest")
            && s.contains("10 res 512: nearest"),
        "{s}"
    );
    t.keys(&["t"]);
    let s = t.wait_all(&["max ", "Tokens · feature #", "Python"], 30);
    assert!(s.contains("Tokens · feature #") && s.contains("Python"), "{s}");
    t.keys(&["j", "v", "e"]);
    let s = t.wait_all(&["exported", "saescope-tokens-8res512-"], 30);
    assert!(s.contains("saescope-tokens-8res512-"), "{s}");
    t.escape();
    t.keys(&["f"]);
    let s = t.wait_all(&["Findings of the GPT-2 small SAE study", "HOLD"], 30);
    assert!(s.contains("HOLD"), "{s}");
    t.escape();
    t.keys(&["/"]);
    t.keys(&["-l", "number 42"]);
    t.wait_all(&["label number 420", "search (label, #id, token): number 42"], 30);
    t.keys(&["Enter", "Enter"]);
    let s = t.wait_all(&["Logit lens", "Feature #42 · 8 res 512"], 30);
    assert!(s.contains("Feature #42 · 8 res 512"), "first hit, #42\n{s}");
    t.escape();
    t.escape();
    t.keys(&["i"]);
    t.wait_for("your text:", 30);
    t.keys(&["-l", "def quick(x): return x + 1  # my own text"]);
    t.keys(&["Enter"]);
    let s = t.wait_all(&["Your text", "tokens"], 30);
    assert!(s.contains("tokens"), "{s}");
    t.escape();
    let s = t.wait_all(&["Categories", "Your text"], 30);
    assert!(s.contains("Your text"), "{s}");
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// What a feature does, as a user finds out: open a card, `s` to steer with it, type a
/// prompt, see both continuations; then `a`, a prompt, the attribution table, and a card
/// opened from it.
#[test]
fn steer_from_a_card_and_attribute_a_prompt_in_tmux() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = launch("steer", &tmp.path().join("cache"), "");
    t.wait_for("Peak", 60);
    t.keys(&["Tab", "Enter"]);
    t.wait_for("Logit lens: promotes", 30);
    t.keys(&["s"]);
    t.wait_for("Steer", 30);
    t.keys(&["Enter"]);
    t.wait_for("prompt to steer:", 30);
    t.keys(&["-l", "The weather today is"]);
    t.keys(&["Enter"]);
    let s = t.wait_all(&["steered: top token", "default", "The weather today is"], 60);
    assert!(s.contains("default") && s.contains("The weather today is"), "{s}");
    t.escape();
    t.wait_for("Logit lens: promotes", 30);
    t.escape();
    t.wait_for("Categories", 30);
    t.keys(&["a"]);
    t.wait_for("explain the next token after:", 30);
    t.keys(&["-l", "The cat sat on the"]);
    t.keys(&["Enter"]);
    let s = t.wait_for("ablated Δlogit", 60);
    let row = s.lines().find(|l| l.contains("6 res 512") && l.contains('#')).expect("a layer 6 row");
    let feature: String = row[row.find('#').expect("#") + 1..].chars().take_while(|c| c.is_ascii_digit()).collect();
    t.keys(&["Enter"]);
    let s = t.wait_all(&["Feature #", &format!("Feature #{feature} · 6 res 512")], 30);
    assert!(s.contains(&format!("Feature #{feature} · 6 res 512")), "the first row's card, #{feature}\n{s}");
    t.escape();
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// The corpus in the explorer, as a user meets it on a fresh machine: launched with
/// `--corpus` on a folder, it indexes on the model thread with the gauge, then a card shows
/// the top contexts, Enter opens one whole, and `O` opens the SAE overview; quitting and
/// relaunching finds the stored index at once.
#[test]
fn corpus_index_card_context_and_overview_in_tmux() {
    let cache = tempfile::tempdir().expect("tmp");
    let corpus = common::fixture("corpus");
    let t = launch("corpus", cache.path(), &format!("--corpus {}", quote(&corpus)));
    t.wait_for("Peak", 60);
    t.wait_all(&["corpus indexed:", "5141 tokens in 247 windows"], 60);
    t.keys(&["Tab", "Enter"]);
    t.wait_all(&["Top contexts", "Corpus: fires on", "[["], 30);
    // The model thread fills in the lens and the contexts' shading together.
    t.wait_until("the lens and the shading", 30, |s| s.contains("Logit lens") && s.contains("Top contexts") && !s.contains("shading…"));
    t.keys(&["j", "Enter"]);
    t.wait_all(&["Context · feature #", "tests/fixtures/corpus/", "max ", "[[", "shaded by its activation"], 30);
    t.keys(&["v"]);
    std::thread::sleep(Duration::from_millis(300));
    t.escape();
    t.escape();
    t.keys(&["O"]);
    t.wait_all(&["SAE overview · 6 res 512", "dead", "L0", "peaks on"], 30);
    t.keys(&["S"]);
    t.wait_for("by frac_nonzero", 30);
    t.keys(&["Enter"]);
    t.wait_for("Corpus: fires on", 30);
    t.escape();
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
    drop(t);
    let t = launch("corpus2", cache.path(), &format!("--corpus {}", quote(&corpus)));
    t.wait_all(&["corpus indexed:", "5141 tokens"], 30);
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// SAEs by SAELens's names in the explorer, fetched from the stand-in hub in their
/// releases' real layouts: three feature-splitting widths at one hook are three tabs, a
/// card finds a feature's children in the wider SAEs; OpenAI's v5 resid_post SAEs and the
/// kk hook_z SAEs get tabs by layer under their site, and a hook_z card has its logit lens.
#[test]
fn releases_by_name_in_the_explorer_in_tmux() {
    use common::releases::{hub, FS, FS_IDS, KK, V5};
    let hub = hub();
    let tmp = tempfile::tempdir().expect("tmp");
    let launch = |name: &str, args: &str| {
        let cmd = format!(
            "env {NO_HF} HF_ENDPOINT={} HF_HUB_CACHE={} {} --model org/tiny --no-cache {args}; echo SAESCOPE-EXIT $?; sleep 30",
            hub.endpoint,
            quote(&tmp.path().join("hf")),
            env!("CARGO_BIN_EXE_saescope"),
        );
        run_in_tmux(name, &cmd)
    };

    let t = launch("fs", &format!("--sae-release {FS} --sae {FS_IDS}"));
    let s = t.wait_all(&["Peak", " saescope  SAE  8 res 768 │ 8 res 1.5k │ 8 res 3k │"], 60);
    assert!(s.contains(" saescope  SAE  8 res 768 │ 8 res 1.5k │ 8 res 3k │"), "one tab per SAE, by width\n{s}");
    assert!(s.contains("Features · 8 res 768 · Python"), "{s}");
    t.keys(&["Right"]);
    t.wait_for("Features · 8 res 1.5k · Python", 30);
    t.keys(&["Tab", "Enter"]);
    let s = t.wait_all(&["Logit lens", "Feature #", "· 8 res 1.5k ·"], 30);
    assert!(s.contains("Feature #") && s.contains("· 8 res 1.5k ·"), "{s}");
    t.wait_all(&["8 res 768: nearest (cosine)", "8 res 3k: nearest (cosine)"], 30);
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);

    let t = launch("v5", &format!("--sae-release {V5} --layers 6,8,10,11"));
    let s = t.wait_all(&["Peak", " saescope  layer (post)  6 │ 8 │ 10 │ 11 │", "Features · 6 post 4k · Python"], 60);
    assert!(s.contains(" saescope  layer (post)  6 │ 8 │ 10 │ 11 │") && s.contains("Features · 6 post 4k · Python"), "{s}");
    t.keys(&["q"]);
    assert_restored(&t, 0);

    let t = launch("kk", &format!("--sae-release {KK} --layers 5,8"));
    let s = t.wait_all(&["Peak", " saescope  layer (z)  5 │ 8 │", "Features · 5 z 4k · Python"], 60);
    assert!(s.contains(" saescope  layer (z)  5 │ 8 │") && s.contains("Features · 5 z 4k · Python"), "{s}");
    t.keys(&["Tab", "Enter"]);
    t.wait_all(&["Logit lens: promotes", "8 z 4k: nearest (cosine)"], 30);
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// Gemma 3 as a user meets it: `--model google/gemma-3-270m` from a gated stand-in hub with
/// HF_TOKEN, Gemma Scope 2 tabs by default (here at the tiny model's layers 5 and 9), the
/// findings beside a GPT-2 run's (`--versus-model-dir`), a card with its logit lens, a
/// corpus index, and a steered generation from the card.
#[test]
fn gemma_with_gemma_scope_in_the_explorer_in_tmux() {
    let hub = common::hub::Hub::start();
    hub.repo("google/gemma-3-270m", &common::fixture("gemma_run/model"), &[]).repo(
        "google/gemma-scope-2-270m-pt",
        &common::fixture("gemma_run/saes/google/gemma-scope-2-270m-pt"),
        &[],
    );
    hub.gate("google/gemma-3-270m", "hf_test").gate("google/gemma-scope-2-270m-pt", "hf_test");
    let tmp = tempfile::tempdir().expect("tmp");
    let cmd = format!(
        "env {NO_HF} HF_ENDPOINT={} HF_HUB_CACHE={} HF_TOKEN=hf_test {} --model google/gemma-3-270m --layers 5,9 --cache-dir {} --corpus {} \
         --versus-model-dir {} --versus-sae-dir {} --versus-layers 6,8; echo SAESCOPE-EXIT $?; sleep 30",
        hub.endpoint,
        quote(&tmp.path().join("hf")),
        env!("CARGO_BIN_EXE_saescope"),
        quote(&tmp.path().join("cache")),
        quote(&common::fixture("corpus")),
        quote(&tiny().join("model")),
        quote(&tiny().join("saes")),
    );
    let t = run_in_tmux("gemma", &cmd);
    let s = t.wait_all(&["Peak", " saescope  layer (post)  5 │ 9 │", "Features · 5 post 128 · Python"], 60);
    assert!(s.contains(" saescope  layer (post)  5 │ 9 │") && s.contains("Features · 5 post 128 · Python"), "Gemma Scope 2 tabs\n{s}");
    assert!(s.contains("model google/gemma-3-270m"), "{s}");
    t.wait_for("corpus indexed:", 60);
    // The second run (tiny GPT-2, computed before the index) beside this one, claim by claim.
    t.keys(&["f"]);
    let s = t.wait_all(&["on two runs", "1. The top feature changes at every layer", "gemma-3-270m · gemma-scope-2-270m-pt-res"], 30);
    assert!(!s.contains("is computing"), "{s}");
    t.keys(&["-l", &"j".repeat(9)]);
    t.wait_until("a verdict", 30, |s| s.contains("jbloom/GPT2-Small-SAEs-Reformatted") && (s.contains("[HOLDS]") || s.contains("[DOES NOT HOLD]")));
    t.escape();
    t.keys(&["Tab", "Enter"]);
    let s = t.wait_all(&["Logit lens: promotes", "Top contexts", "9 post 128: nearest (cosine)"], 30);
    assert!(s.contains("neuronpedia.org/gemma-3-270m/5-gemmascope-2-res-16k/"), "its Neuronpedia link\n{s}");
    t.keys(&["s"]);
    t.wait_for("Steer", 30);
    t.keys(&["Enter"]);
    t.wait_for("prompt to steer:", 30);
    t.keys(&["-l", "The cat sat on the mat because"]);
    t.keys(&["Enter"]);
    let s = t.wait_all(&["steered: top token", "default", "The cat sat on the mat because"], 60);
    assert!(s.contains("default") && s.contains("The cat sat on the mat because"), "{s}");
    t.escape();
    t.escape();
    // The token view, your own text, attribution and the SAE overview, on Gemma too.
    t.wait_for("Categories", 30);
    t.keys(&["t"]);
    t.wait_all(&["Tokens · feature #", "max "], 30);
    t.escape();
    t.keys(&["i"]);
    t.wait_for("your text:", 30);
    t.keys(&["-l", "Gemma reads this sentence, naïve café included."]);
    t.keys(&["Enter"]);
    let s = t.wait_all(&["Your text", "tokens"], 60);
    assert!(s.contains("tokens"), "{s}");
    t.escape();
    t.wait_for("Categories", 30);
    t.keys(&["a"]);
    t.wait_for("explain the next token after:", 30);
    t.keys(&["-l", "The capital of France is"]);
    t.keys(&["Enter"]);
    let s = t.wait_for("ablated Δlogit", 60);
    assert!(
        s.contains("5 post 128") && s.contains('#'),
        "Gemma Scope's SAEs attribute the prediction
{s}"
    );
    t.escape();
    t.wait_for("Categories", 30);
    t.keys(&["O"]);
    let s = t.wait_all(&["SAE overview · 5 post 128", "On the samples: L0", "CE score"], 60);
    assert!(
        s.contains("dead"),
        "the corpus's side of the overview
{s}"
    );
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// Neuronpedia's dump in the explorer (`--neuronpedia`, with its explanations as labels):
/// a card shows Neuronpedia's numbers and top activations, labelled as Neuronpedia's, beside
/// saescope's own sections, and the SAE overview its numbers at a glance; the status line
/// says what the dump held and set aside.
#[test]
fn a_neuronpedia_dump_in_the_card_in_tmux() {
    let cache = tempfile::tempdir().expect("tmp");
    let dump = common::fixture("neuronpedia_dump");
    let extra =
        format!("--sae-release gpt2-small-res-jb --layers 6,11 --neuronpedia {} --labels {}", quote(&dump), quote(&dump.join("v1/gpt2-small/6-res-jb")));
    let t = launch("neuronpedia", cache.path(), &extra);
    let s = t.wait_all(&["Peak", "neuronpedia: 12 features from 4 files"], 60);
    assert!(s.contains("neuronpedia: 12 features from 4 files"), "{s}");
    t.keys(&["/"]);
    t.keys(&["-l", "#3"]);
    t.keys(&["Enter"]);
    t.wait_for("#3", 30);
    t.keys(&["Enter"]);
    let s = t.wait_all(&["Feature #3 · 6 res 512", "Neuronpedia: gpt2-small/6-res-jb", "Top activations (20)", "[[ dug]]"], 30);
    assert!(s.contains("label: made-up: the token ' dug' (feature 3)") && s.contains("Logit lens: promotes"), "{s}");
    t.escape();
    t.escape();
    // The SAE overview: Neuronpedia's numbers for the SAE, without a corpus index.
    t.keys(&["O"]);
    let s = t.wait_all(&["Neuronpedia gpt2-small/6-res-jb: 12 features · 0 dead · density", "No corpus."], 30);
    assert!(s.contains("No corpus."), "saescope's own overview still asks for a corpus\n{s}");
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// The open questions as a person reaches them: `f` opens the findings, which measure the
/// open questions on the model thread and show each answer with its numbers and the token
/// strips of the SAE on view (→ shows the next SAE's); `O` shows the SAE's quality on the
/// samples, CE and KL included, once measured.
#[test]
fn open_questions_and_sae_quality_in_tmux() {
    let cache = tempfile::tempdir().expect("tmp");
    let t = launch("questions", cache.path(), "--layers 6,11");
    t.wait_for("Peak", 60);
    t.keys(&["f"]);
    t.wait_for("1. The top feature changes at every layer", 30);
    // The view scrolls no further than its last line: End, until the answers are in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !t.screen().contains("Token strips at 6 res 512") && std::time::Instant::now() < deadline {
        t.keys(&["End"]);
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    t.wait_all(&["Token strips at 6 res 512", "as it is:", "shuffled:"], 30);
    for _ in 0..2 {
        t.keys(&["PageUp"]);
    }
    t.wait_until("question 7's answer", 30, |s| s.contains("7. The late-layer dips") && (s.contains("most dips follow") || s.contains("no dips on this data")));
    t.keys(&["End"]);
    t.keys(&["Right"]);
    t.wait_for("Token strips at 11 res 512", 30);
    for _ in 0..20 {
        if t.screen().contains("5. Syntax or semantics") {
            break;
        }
        t.keys(&["PageUp"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let s = t.wait_all(&["5. Syntax or semantics", "features (each category's top 5 and best specialist per SAE)"], 30);
    assert!(s.contains("features (each category's top 5 and best specialist per SAE)"), "{s}");
    t.keys(&["PageDown"]);
    t.wait_all(&["6. The long tail", "Lorenz"], 30);
    t.escape();
    t.keys(&["O"]);
    let s = t.wait_all(&["On the samples: L0", "CE score", "KL score"], 60);
    assert!(s.contains("SAE overview · 11 res 512"), "{s}");
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// The graph view as a user drives it: transcoders loaded as SAEs and given for graphs, `g`
/// with a prompt, a walk down the strongest edges, a click on the target logit, an ablation,
/// a feature's card, the export; then the same graph opened from its file.
#[test]
fn graph_view_in_tmux() {
    let tmp = tempfile::tempdir().expect("tmp");
    let tc = common::tiny_transcoders(false);
    let cmd = format!(
        "env {NO_HF} {} --model-dir {} --sae-dir {} --sae blocks.3.hook_mlp_in,blocks.11.hook_mlp_in --transcoders {} --no-cache --export-dir {}; echo SAESCOPE-EXIT $?; sleep 30",
        env!("CARGO_BIN_EXE_saescope"),
        quote(&tiny().join("model")),
        quote(tc),
        quote(tc),
        quote(tmp.path()),
    );
    let t = run_in_tmux("graph", &cmd);
    t.wait_all(&["Peak", " saescope  layer (in)  3 │ 11 │"], 60);
    t.keys(&["g"]);
    t.wait_for("graph the next token after:", 30);
    t.keys(&["-l", "The cat sat on the mat because it was"]);
    t.keys(&["Enter"]);
    t.wait_all(&["in, strongest first", "logits│", "L11   │", "▶ logit", "replacement 0.", "completeness 0."], 60);
    // Down the strongest edge into the logit, then a click on a feature's glyph selects it.
    t.keys(&["p"]);
    t.wait_until("a node other than the logit", 30, |s| s.contains("▶ ") && !s.contains("▶ logit"));
    let s = t.screen();
    let (y, line) = s.lines().enumerate().find(|(_, l)| l.starts_with("┃L") && l.contains('●')).expect("a layer row with a feature");
    let lane = line.trim_start_matches('┃').split_whitespace().next().expect("lane").to_string();
    let x = line.chars().position(|c| c == '●').expect("a feature glyph");
    let (col, row) = (x + 1, y + 1);
    t.keys(&["-l", &format!("\x1b[<0;{col};{row}M\x1b[<0;{col};{row}m")]);
    t.wait_for(&format!("▶ {lane} #"), 30);
    t.keys(&["Home"]);
    t.wait_for("▶ logit", 30);
    // To a feature of the last layer, then ablate it.
    t.keys(&["Down"]);
    for _ in 0..10 {
        if t.screen().contains("▶ L11 #") {
            break;
        }
        t.keys(&["Right"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    t.keys(&["x"]);
    t.wait_all(&["ablated 11:", "frozen attention", "free", "▶ L11 #"], 30);
    // Its card: layer 11's transcoder is loaded as an SAE.
    t.keys(&["Enter"]);
    let s = t.wait_all(&["Feature #", "· 11 in 256", "Logit lens"], 30);
    assert!(!s.contains("has no card here"), "{s}");
    t.escape();
    t.keys(&["e"]);
    t.wait_all(&["exported", "saescope-graph-saescope-graph-", "Graph ·"], 30);
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
    let exported = std::fs::read_dir(tmp.path()).expect("dir").filter_map(|e| e.ok()).find(|e| e.file_name().to_string_lossy().starts_with("saescope-graph-"));
    let csv = std::fs::read_to_string(exported.expect("csv written").path()).expect("csv");
    assert!(csv.lines().any(|l| l.starts_with("edge,")) && csv.lines().any(|l| l.starts_with("node,")), "{csv}");

    // The same prompt's graph file, written by `saescope graph`, opens in the view at start.
    let file = tmp.path().join("g.json");
    let out = Command::new(env!("CARGO_BIN_EXE_saescope"))
        .args(["graph", "--model-dir"])
        .arg(tiny().join("model"))
        .arg("--transcoders")
        .arg(tc)
        .args(["--prompt", "The cat sat on the mat because it was", "-o"])
        .arg(&file)
        .output()
        .expect("graph");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = launch("graphfile", &tmp.path().join("cache"), &format!("--graph {}", quote(&file)));
    t.wait_all(&["Graph · The cat sat", "read from", "logits│", "▶ logit"], 60);
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// A cross-layer transcoder's feature in the graph view opens its card when the CLT's
/// layer is loaded as an SAE from the same folder (sae/cross_layer.rs).
#[test]
fn graph_view_opens_a_cross_layer_transcoders_card() {
    let clt = common::tiny_clt();
    let cmd = format!(
        "env {NO_HF} {} --model-dir {} --sae-dir {} --sae blocks.11.hook_mlp_in --transcoders {} --no-cache; echo SAESCOPE-EXIT $?; sleep 30",
        env!("CARGO_BIN_EXE_saescope"),
        quote(&tiny().join("model")),
        quote(clt),
        quote(clt),
    );
    let t = run_in_tmux("cltgraph", &cmd);
    t.wait_all(&["Peak", " saescope  layer (in)  11 │"], 60);
    t.keys(&["g"]);
    t.wait_for("graph the next token after:", 30);
    t.keys(&["-l", "The cat sat on the mat because it was"]);
    t.keys(&["Enter"]);
    t.wait_all(&["in, strongest first", "logits│", "▶ logit"], 60);
    t.keys(&["Down"]);
    for _ in 0..12 {
        if t.screen().contains("▶ L11 #") {
            break;
        }
        t.keys(&["Right"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = t.wait_for("▶ L11 #", 30);
    let feature: String = s.split("▶ L11 #").nth(1).expect("selected").chars().take_while(char::is_ascii_digit).collect();
    t.keys(&["Enter"]);
    let s = t.wait_all(&[&format!("Feature #{feature} · 11 in 256"), "Logit lens"], 30);
    assert!(!s.contains("has no card here"), "{s}");
    t.escape();
    t.escape();
    t.keys(&["q"]);
    assert_restored(&t, 0);
}

/// Gemma 2 (the first Gemma Scope's npz SAEs), Llama 3, Qwen 3 and Pythia (its res-sm
/// folders) as `synth --family` writes them, each opened with the command synth prints, at
/// 80x24 beside the tiny GPT-2: their tabs, a card, steering, the findings on both runs, and
/// the terminal restored.
#[test]
fn gemma_2_llama_qwen_and_pythia_in_the_explorer_at_80x24_in_tmux() {
    for (family, tabs, card) in [
        ("gemma2", "layer (post)  6 │ 13 │ 16 │ 21", "Feature #"),
        ("llama", "layer (res)  2 │ 4 │", "Feature #"),
        ("qwen3", "layer (res)  2 │ 4 │", "Feature #"),
        ("pythia", "layer (post)  1 │ 3 │ 4 │ 5", "Feature #"),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = common::saescope().args(["synth", "--family", family, "--out"]).arg(tmp.path()).output().expect("synth");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cmd = format!(
            "env {NO_HF} {} --model-dir {} --sae-dir {} --cache-dir {} --versus-model-dir {} --versus-sae-dir {} --versus-layers 6,8; echo SAESCOPE-EXIT $?; sleep 30",
            env!("CARGO_BIN_EXE_saescope"),
            quote(&tmp.path().join("model")),
            quote(&tmp.path().join("saes")),
            quote(&tmp.path().join("cache")),
            quote(&tiny().join("model")),
            quote(&tiny().join("saes")),
        );
        let t = run_in_tmux_at(family, &cmd, 80, 24);
        let s = t.wait_all(&["Peak", tabs], 90);
        assert!(s.contains(tabs), "{family}: its SAEs' tabs\n{s}");
        t.keys(&["Tab", "Enter"]);
        let s = t.wait_all(&[card, "Logit lens: promotes"], 30);
        assert!(s.contains("Logit lens: promotes"), "{family}: a card\n{s}");
        t.keys(&["s"]);
        t.wait_for("Steer", 30);
        t.keys(&["Enter"]);
        t.wait_for("prompt to steer:", 30);
        t.keys(&["-l", "The cat sat on"]);
        t.keys(&["Enter"]);
        let s = t.wait_all(&["steered: top tokens", "default", "The cat sat on"], 60);
        assert!(s.contains("steered: top tokens"), "{family}: steering\n{s}");
        t.escape();
        t.escape();
        t.wait_for("Categories", 30);
        t.keys(&["f"]);
        let s = t.wait_all(&["on two runs", "1. The top feature changes at every layer"], 60);
        assert!(s.contains("on two runs"), "{family}: findings beside GPT-2\n{s}");
        t.escape();
        t.wait_for("Categories", 30);
        t.keys(&["q"]);
        assert_restored(&t, 0);
    }
}

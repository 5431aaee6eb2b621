//! `e`: the current view as CSV, written atomically with a timestamped name. Each view
//! has its own columns: the main panes' feature tables and matrix, a card's sections, the
//! token view's texts and tokens, the findings, the search hits, the SAE overview's
//! features, a corpus context's tokens, a graph's nodes and edges.

use crate::ui::action::Mode;
use crate::ui::app::App;
use color_eyre::eyre::{eyre, Result};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub const HEADER: [&str; 10] = ["section", "category", "sae", "rank", "feature", "activation", "specialist", "share", "n_above", "neuronpedia"];
/// Card and token view: one row per item of a section.
pub const ITEM_HEADER: [&str; 8] = ["section", "sae", "feature", "rank", "item", "value", "category", "text"];
pub const FINDINGS_HEADER: [&str; 6] = ["finding", "claim", "verdict", "summary", "subject", "detail"];
pub const SEARCH_HEADER: [&str; 4] = ["sae", "feature", "label", "neuronpedia"];
/// The graph view: a row per node shown, then a row per edge between shown nodes.
pub const GRAPH_HEADER: [&str; 12] = ["section", "node", "kind", "layer", "position", "token", "feature", "value", "influence", "group", "target", "text"];
pub const OVERVIEW_HEADER: [&str; 9] = ["sae", "feature", "max", "frac_nonzero", "mean_when_firing", "count", "peaks_on", "label", "neuronpedia"];

type Rows = Vec<Vec<String>>;

fn not_yet() -> color_eyre::Report {
    eyre!("nothing to export yet: results are still computing")
}

fn main_rows(app: &App) -> Result<Rows> {
    let la = app.sae_analysis().ok_or_else(not_yet)?;
    let layer = app.sae();
    let mut rows = Rows::new();
    for c in app.table_categories() {
        let name = &app.categories[c].0;
        for (rank, t) in la.categories[c].ranked.iter().enumerate() {
            rows.push(vec![
                "table".into(),
                name.clone(),
                layer.to_string(),
                (rank + 1).to_string(),
                t.feature.to_string(),
                t.activation.to_string(),
                t.specialist.to_string(),
                t.share.to_string(),
                t.n_above.to_string(),
                app.info.ids.short(layer, t.feature),
            ]);
        }
    }
    let features = app.matrix_features();
    for (rank, (f, row)) in features.iter().zip(la.above.matrix(&features)).enumerate() {
        for (c, score) in row.iter().enumerate() {
            let (name, rank, feature) = (app.categories[c].0.clone(), (rank + 1).to_string(), f.to_string());
            rows.push(vec![
                "matrix".into(),
                name,
                layer.to_string(),
                rank,
                feature,
                String::new(),
                score.to_string(),
                String::new(),
                String::new(),
                app.info.ids.short(layer, *f),
            ]);
        }
    }
    Ok(rows)
}

/// A value that is only an upper bound (pruned from a big corpus) says so in `item`.
fn bound_item(exact: bool) -> String {
    if exact {
        String::new()
    } else {
        "upper bound".into()
    }
}

fn card_rows(app: &App) -> Result<Rows> {
    let c = app.card().ok_or_else(|| eyre!("no card open"))?;
    let (layer, feature) = (c.sae.to_string(), c.feature.to_string());
    let row = |section: &str, rank: usize, item: String, value: String, category: String, text: String| {
        vec![section.to_string(), layer.clone(), feature.clone(), rank.to_string(), item, value, category, text]
    };
    let mut rows = vec![row("url", 0, String::new(), String::new(), String::new(), c.neuronpedia_url.clone().unwrap_or_default())];
    if let Some(l) = &c.label {
        rows.push(row("label", 0, String::new(), String::new(), String::new(), l.clone()));
    }
    let mut lo = 0.0;
    for (i, (edge, count)) in c.histogram.edges.iter().zip(&c.histogram.counts).enumerate() {
        rows.push(row("histogram", i + 1, format!("{lo}-{edge}"), count.to_string(), String::new(), String::new()));
        lo = *edge;
    }
    for (i, t) in c.top_texts.iter().enumerate() {
        let token = t.top_token.as_ref().map_or(String::new(), |k| k.token.clone());
        rows.push(row("top_text", i + 1, token, t.activation.to_string(), t.category.clone(), t.content.clone()));
    }
    if let Some(lg) = &c.logits {
        for (section, list) in [("promotes", &lg.promoted), ("suppresses", &lg.suppressed)] {
            for (i, t) in list.iter().enumerate() {
                rows.push(row(section, i + 1, t.token.clone(), t.logit.to_string(), String::new(), String::new()));
            }
        }
    }
    for n in &c.neighbours {
        for (i, x) in n.features.iter().enumerate() {
            rows.push(row("neighbour", i + 1, format!("{} #{}", n.sae, x.feature), x.cosine.to_string(), String::new(), x.label.clone().unwrap_or_default()));
        }
    }
    if let Some(corpus) = &c.corpus {
        for (i, x) in corpus.top.iter().enumerate() {
            rows.push(row("corpus_top", i + 1, x.source.clone(), x.max_value.to_string(), String::new(), crate::dashboard::text::strip(x)));
        }
        for iv in &corpus.intervals {
            for (i, x) in iv.contexts.iter().enumerate() {
                let range = format!("{}-{}", iv.from, iv.to);
                rows.push(row("corpus_interval", i + 1, x.source.clone(), x.max_value.to_string(), range, crate::dashboard::text::strip(x)));
            }
        }
    }
    let results = app.results.as_ref().ok_or_else(not_yet)?;
    for t in &c.texts {
        rows.push(row("text", t.text + 1, bound_item(t.exact), t.activation.to_string(), t.category.clone(), results.set.texts[t.text].text.clone()));
    }
    Ok(rows)
}

fn token_rows(app: &App) -> Result<Rows> {
    let r = app.results.as_ref().ok_or_else(not_yet)?;
    let li = r.set.index_of(app.sae()).ok_or_else(not_yet)?;
    let feature = app.tokens_view().ok_or_else(|| eyre!("no token view open"))?.feature;
    let layer = app.sae().to_string();
    let category = app.categories.get(app.focused).map_or(String::new(), |c| c.0.clone());
    let mut rows = Rows::new();
    for (row, &i) in app.focused_texts().iter().enumerate() {
        let t = &r.set.texts[i];
        let (value, exact) = t.value(li, feature).or_bound();
        rows.push(vec![
            "text".into(),
            layer.clone(),
            feature.to_string(),
            (row + 1).to_string(),
            bound_item(exact),
            value.to_string(),
            category.clone(),
            t.text.clone(),
        ]);
    }
    if let Some(acts) = app.token_text().and_then(|t| app.token_cache.get(t)) {
        for (pos, (tok, v)) in acts.tokens.iter().zip(acts.feature(li, feature)).enumerate() {
            rows.push(vec!["token".into(), layer.clone(), feature.to_string(), pos.to_string(), tok.clone(), v.to_string(), category.clone(), String::new()]);
        }
    }
    Ok(rows)
}

/// With a second run (`--versus-model`), each row also names its run.
pub const FINDINGS_VERSUS_HEADER: [&str; 7] = ["finding", "claim", "run", "verdict", "summary", "subject", "detail"];

/// One row per finding, run and category; the run column only when there are two.
fn findings_rows(app: &App) -> Result<(&'static [&'static str], Rows)> {
    let list = app.findings().ok_or_else(not_yet)?;
    let two = list.first().is_some_and(|x| x.runs.len() > 1);
    let mut rows = Rows::new();
    for (i, x) in list.into_iter().enumerate() {
        for r in x.runs {
            let run = if two { vec![r.run.clone()] } else { vec![] };
            let verdict = r.answer.clone().unwrap_or_else(|| r.holds.to_string());
            let head = [vec![(i + 1).to_string(), x.claim.clone()], run, vec![verdict, r.summary.clone()]].concat();
            if r.rows.is_empty() {
                rows.push([head.clone(), vec![String::new(), String::new()]].concat());
            }
            for (subject, detail) in r.rows {
                rows.push([head.clone(), vec![subject, detail]].concat());
            }
        }
    }
    // Every number behind this run's answers, a row each, under the answer it is behind.
    if let Some(crate::ui::context::Asked::Ready(q)) = &app.questions {
        let answers = q.answers();
        let run = if two { vec![list_run(app)] } else { vec![] };
        for (k, subject, value) in q.values() {
            let Some(a) = answers.get(k) else { continue };
            let number = (crate::analysis::findings::FINDINGS + k + 1).to_string();
            rows.push([vec![number, a.claim.clone()], run.clone(), vec![a.verdict().to_string(), a.summary.clone(), subject, value]].concat());
        }
    }
    Ok((if two { &FINDINGS_VERSUS_HEADER } else { &FINDINGS_HEADER }, rows))
}

/// This run's name as the findings view shows it beside a second run.
fn list_run(app: &App) -> String {
    app.versus.as_ref().map_or_else(|| app.info.model.clone(), |v| v.labels[0].clone())
}

pub const STEER_HEADER: [&str; 8] = ["section", "step", "rank", "default", "default_prob", "steered", "steered_prob", "kl"];
pub const ATTRIBUTE_HEADER: [&str; 7] = ["sae", "feature", "attribution", "ablation_logit", "ablation_prob", "label", "target"];

/// The steering set, both continuations, and rows per step: its top tokens by rank (as the
/// command prints them) and the KL.
fn steer_rows(app: &App) -> Result<Rows> {
    let Some(crate::ui::screens::Screen::Steer(view)) = Some(app.screen()) else { return Err(eyre!("no steer view open")) };
    let r = view.result.as_ref().ok_or_else(|| eyre!("nothing to export yet: run the steering first (Enter)"))?;
    let mut rows: Rows = r
        .features
        .iter()
        .map(|f| {
            vec![
                "feature".into(),
                String::new(),
                String::new(),
                format!("{} #{}", f.sae, f.feature),
                f.strength.to_string(),
                format!("{:?}", f.mode_or(r.mode)),
                String::new(),
                String::new(),
            ]
        })
        .collect();
    rows.push(vec!["text".into(), String::new(), String::new(), r.default.text.clone(), String::new(), r.steered.text.clone(), String::new(), String::new()]);
    for (i, s) in r.steps.iter().enumerate() {
        for (rank, (d, st)) in s.default_top.iter().zip(&s.steered_top).enumerate() {
            rows.push(vec![
                "step".into(),
                (i + 1).to_string(),
                (rank + 1).to_string(),
                d.token.clone(),
                d.prob.to_string(),
                st.token.clone(),
                st.prob.to_string(),
                s.kl.to_string(),
            ]);
        }
    }
    Ok(rows)
}

fn attribute_rows(app: &App) -> Result<Rows> {
    let Some(crate::ui::screens::Screen::Attribute(view)) = Some(app.screen()) else { return Err(eyre!("no attribute view open")) };
    let r = view.result.as_ref().ok_or_else(|| eyre!("nothing to export yet: the attribution is still running"))?;
    Ok(r.saes
        .iter()
        .flat_map(|l| {
            l.features.iter().map(move |f| {
                let label = app.labels.get(l.sae, f.feature).unwrap_or("").to_string();
                vec![
                    l.sae.to_string(),
                    f.feature.to_string(),
                    f.attribution.to_string(),
                    f.ablation_logit.to_string(),
                    f.ablation_prob.to_string(),
                    label,
                    r.target.clone(),
                ]
            })
        })
        .collect())
}

/// Every feature of the overview's SAE, in its order.
fn overview_rows(app: &App) -> Result<Rows> {
    let Some(crate::ui::screens::Screen::Overview(view)) = Some(app.screen()) else { return Err(eyre!("no overview open")) };
    let index = app.index.as_ref().ok_or_else(|| eyre!("nothing to export yet: the corpus is not indexed"))?;
    let layer = app.sae();
    let stats = index.of(layer).ok_or_else(|| eyre!("SAE {layer} is not in the index"))?;
    Ok(view
        .rows(app, index)
        .into_iter()
        .map(|r| {
            vec![
                layer.to_string(),
                r.feature.to_string(),
                r.max.to_string(),
                r.frac.to_string(),
                r.mean.to_string(),
                stats.count[r.feature as usize].to_string(),
                r.peak_token.unwrap_or_default(),
                r.label.unwrap_or_default(),
                app.info.ids.url_or_empty(layer, r.feature),
            ]
        })
        .collect())
}

/// The graph view's nodes (value: activation, or a logit's probability) and edges (node:
/// source, value: weight) at the view's threshold.
fn graph_rows(app: &App) -> Result<Rows> {
    let Some(crate::ui::screens::Screen::Graph(view)) = Some(app.screen()) else { return Err(eyre!("no graph open")) };
    let r = view.reading.as_deref().ok_or_else(|| eyre!("nothing to export yet: the graph is still computing"))?;
    use crate::graph::reading::Kind;
    let opt = |x: Option<String>| x.unwrap_or_default();
    let mut rows = Rows::new();
    for i in (0..r.len()).filter(|&i| r.shown(i, view.threshold)) {
        let n = &r.file.nodes[i];
        let kind = match r.kinds[i] {
            Kind::Feature => "feature",
            Kind::Error => "error",
            Kind::Token => "token",
            Kind::Logit => "logit",
        };
        let value = if r.kinds[i] == Kind::Logit { Some(n.token_prob.to_string()) } else { n.activation.map(|a| a.to_string()) };
        let group = view.groups.iter().position(|g| g.contains(&i)).map(|g| format!("group {}", g + 1));
        rows.push(vec![
            "node".into(),
            n.node_id.clone(),
            kind.into(),
            opt(r.layer[i].map(|l| l.to_string())),
            r.places[i].pos.to_string(),
            r.token(r.places[i].pos).to_string(),
            opt(r.feature[i].map(|f| f.to_string())),
            opt(value),
            opt(n.influence.map(|x| x.to_string())),
            opt(group),
            String::new(),
            n.clerp.clone(),
        ]);
    }
    for (s, t, w) in r.edges(view.threshold) {
        let (src, dst) = (&r.file.nodes[s], &r.file.nodes[t]);
        let mut row = vec![String::new(); GRAPH_HEADER.len()];
        row[0] = "edge".into();
        row[1] = src.node_id.clone();
        row[7] = w.to_string();
        row[10] = dst.node_id.clone();
        rows.push(row);
    }
    Ok(rows)
}

/// A context's tokens and their activations (empty values until computed).
fn context_rows(app: &App) -> Result<Rows> {
    let Some(crate::ui::screens::Screen::Context(view)) = Some(app.screen()) else { return Err(eyre!("no context open")) };
    let c = &view.context;
    Ok(c.tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let value = c.values.as_ref().and_then(|v| v.get(i)).map_or(String::new(), |v| v.to_string());
            let section = if i == c.max_index { "max_token" } else { "token" };
            vec![section.into(), view.sae.to_string(), view.feature.to_string(), i.to_string(), t.clone(), value, String::new(), c.source.clone()]
        })
        .collect())
}

fn search_rows(app: &App) -> Rows {
    app.search_hits().into_iter().map(|(l, f, label)| vec![l.to_string(), f.to_string(), label.to_string(), app.info.ids.url_or_empty(l, f)]).collect()
}

/// The view's CSV and the word its file is named with.
pub fn view_csv(app: &App) -> Result<(String, &'static str)> {
    let (name, header, rows): (&str, &[&str], Rows) = match app.mode() {
        Mode::Main => ("view", &HEADER, main_rows(app)?),
        Mode::Card => ("card", &ITEM_HEADER, card_rows(app)?),
        Mode::Tokens => ("tokens", &ITEM_HEADER, token_rows(app)?),
        Mode::Findings => {
            let (header, rows) = findings_rows(app)?;
            ("findings", header, rows)
        }
        Mode::Search => ("search", &SEARCH_HEADER, search_rows(app)),
        Mode::Steer => ("steer", &STEER_HEADER, steer_rows(app)?),
        Mode::Attribute => ("attribute", &ATTRIBUTE_HEADER, attribute_rows(app)?),
        Mode::Overview => ("overview", &OVERVIEW_HEADER, overview_rows(app)?),
        Mode::Context => ("context", &ITEM_HEADER, context_rows(app)?),
        Mode::Graph => ("graph", &GRAPH_HEADER, graph_rows(app)?),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    let text = String::from_utf8(w.into_inner().map_err(|e| eyre!("csv: {e}"))?).map_err(|e| eyre!("csv: {e}"))?;
    Ok((text, name))
}

/// Writes the view to `export_dir/saescope-{sae}-{UTC timestamp}.csv` (the main panes) or
/// `saescope-{card|tokens|findings|search}-{sae}-{stamp}.csv`, where {sae} is the SAE's label
/// without spaces (`8res24k`).
pub fn export(app: &App) -> Result<PathBuf> {
    let (csv, name) = view_csv(app)?;
    let layer = match (app.screen(), app.card()) {
        (_, Some(c)) => format!("{}-{}", tag(c.sae), c.feature),
        (crate::ui::screens::Screen::Context(v), _) => format!("{}-{}-w{}", tag(v.sae), v.feature, v.context.window),
        // A graph is of its transcoders, named by its slug.
        (crate::ui::screens::Screen::Graph(v), _) => {
            let slug = v.reading.as_ref().map_or("graph", |r| r.file.metadata.slug.as_str());
            slug.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
        }
        _ => tag(app.sae()),
    };
    let prefix = if name == "view" { String::new() } else { format!("{name}-") };
    let path = app.export_dir.join(format!("saescope-{prefix}{layer}-{}.csv", utc_stamp(SystemTime::now())));
    crate::runtime::fsio::write_atomic(&path, csv.as_bytes())?;
    Ok(path)
}

/// An SAE's label as a file name part: `8res24k`.
fn tag(key: crate::sae::key::SaeKey) -> String {
    key.to_string().replace(' ', "")
}

/// `YYYYmmdd-HHMMSS` in UTC, from the civil-from-days algorithm (no date crate needed for one name).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

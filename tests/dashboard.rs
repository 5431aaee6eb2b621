//! Feature dashboards (`saescope index`): meaning (the synthetic SAEs' features are found
//! on the tokens they were built for), resuming, storage and bad corpora.

mod common;

use saescope::corpus::Corpus;
use saescope::dashboard::build::{open_or_build, Request};
use saescope::dashboard::store::Store;
use saescope::pipeline::RunOptions;
use saescope::progress::ProgressSink;
use saescope::samples::Samples;
use saescope::source::synth::{Anchor, ANCHORS};
use saescope::source::Source;
use std::path::Path;

const LAYERS: [usize; 4] = [6, 8, 10, 11];

/// The calibration texts synth used (the bundled samples, in order), one file each.
fn calibration_corpus(dir: &Path) {
    for (i, (_, _, text)) in Samples::bundled().expect("bundled samples").texts().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.txt")), text).expect("write corpus file");
    }
}

fn index(corpus: &Corpus, store: &Store, opts: &RunOptions, max_tokens: Option<u64>) -> saescope::dashboard::build::Outcome {
    let d = common::tiny();
    let (model, saes) = (Source::Dir(d.join("model")), Source::Dir(d.join("saes")));
    let req = Request { model: &model, saes: &saes, layers: &LAYERS, device: tch::Device::Cpu, opts, corpus, context: None, max_tokens, store };
    open_or_build(&req, None, &ProgressSink::none()).expect("index")
}

#[derive(serde::Deserialize)]
struct Anchors {
    sample_texts: usize,
    features: Vec<Anchor>,
}

/// synth leans each decoder row toward one calibration token's residual; indexing the
/// calibration texts must find most features' top context at exactly that token.
#[test]
fn top_contexts_peak_on_the_token_each_feature_was_built_for() {
    let (corpus_dir, cache) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    calibration_corpus(corpus_dir.path());
    let corpus = Corpus::open(corpus_dir.path(), "text").expect("corpus");
    let out = index(&corpus, &Store::beside(cache.path()), &RunOptions::default(), None);
    for layer in LAYERS {
        let hook = saescope::config::hook_name(layer, 12);
        let path = common::tiny().join("saes").join(hook).join(ANCHORS);
        let anchors: Anchors = serde_json::from_slice(&std::fs::read(path).expect("anchors.json")).expect("anchors json");
        let stats = out.index.layer(layer).expect("layer indexed");
        let (mut eligible, mut same_place, mut same_token) = (0, 0, 0);
        for (f, a) in anchors.features.iter().enumerate() {
            // BOS is never counted, and random calibration sequences are not in the corpus.
            if a.sequence >= anchors.sample_texts || a.position == 0 {
                continue;
            }
            eligible += 1;
            let Some(top) = stats.top[f].first() else { continue };
            let w = &out.index.contexts[&top.window];
            let token = w.tokens[top.position as usize];
            same_token += usize::from(token == a.token_id);
            same_place += usize::from(w.source.ends_with(&format!("{:03}.txt", a.sequence)) && w.offset == 0 && top.position as usize == a.position);
        }
        let (place, token) = (same_place as f64 / eligible as f64, same_token as f64 / eligible as f64);
        println!("layer {layer}: {eligible} features anchored in the corpus; top context at the anchor {:.1}%, on the anchor's token {:.1}%", place * 100.0, token * 100.0);
        assert!(eligible > 300, "layer {layer}: only {eligible} anchors in the corpus");
        assert!(place >= 0.9, "layer {layer}: top context at the anchor for only {:.1}% of features", place * 100.0);
    }
}

//! The open questions (src/questions/): the pure verdicts on numbers whose answers are
//! known, and the probes on the tiny weights checked against the run's own numbers (the
//! category vectors, the encode of a window computed directly).

use crate::common;

use saescope::analysis::questions::dips::{dips, level, Cause};
use saescope::analysis::questions::probe::{self, shuffled, Probe, CONTEXTS};
use saescope::analysis::questions::syntax::{reads, Reads};
use saescope::analysis::questions::tail::tail;
use saescope::analysis::{analyze, Params};
use saescope::corpus::samples::Samples;
use saescope::runtime::progress::ProgressSink;

#[test]
fn a_feature_reads_the_shortest_context_that_gives_half_its_activation() {
    // Values with 0, 1, 2, 4, 8, 16 tokens before the strongest one; full context gives 10.
    assert_eq!(reads(10.0, &[6.0, 7.0, 8.0, 9.0, 10.0, 10.0]), Reads::Token);
    assert_eq!(reads(10.0, &[1.0, 2.0, 5.0, 9.0, 10.0, 10.0]), Reads::LocalContext);
    assert_eq!(reads(10.0, &[0.0, 0.0, 0.0, 4.9, 5.0, 10.0]), Reads::LongContext);
    assert_eq!(reads(10.0, &[0.0, 0.0, 0.0, 0.0, 0.0, 4.0]), Reads::LongContext, "never within 16 tokens");
    assert_eq!(reads(0.0, &[]), Reads::Silent);
}

#[test]
fn the_tail_counts_its_carriers_and_its_dense_share() {
    // 4, 3, 2, 1 and silent features: the sum is 10.
    let mut c = vec![0f32; 16];
    c[..4].copy_from_slice(&[4.0, 3.0, 2.0, 1.0]);
    let density: Vec<f64> = (0..16).map(|f| if f == 2 { 0.5 } else { 0.001 }).collect();
    let t = tail("s".into(), 0, &c, 1, Some(&density));
    assert_eq!((t.active, t.n50, t.n90), (4, 2, 3));
    assert!((t.total - 10.0).abs() < 1e-9 && (t.top_share - 0.4).abs() < 1e-9);
    // Beyond the top 1 (4), 6 remain; feature 2 (2 of them) fires on half the tokens.
    let dense = t.dense_tail.expect("dense");
    assert!((dense[0] - 2.0 / 6.0).abs() < 1e-9 && (dense[1] - 2.0 / 6.0).abs() < 1e-9, "{dense:?}");
    assert_eq!(t.lorenz.first().copied(), Some(0.0));
    assert!((t.lorenz.last().copied().unwrap_or(0.0) - 1.0).abs() < 1e-9);
    assert!(t.lorenz.windows(2).all(|w| w[0] <= w[1]), "{:?}", t.lorenz);
    assert!(t.gini_all > t.gini_active, "silent features make the whole SAE more unequal");
    assert!(tail("s".into(), 0, &c, 1, None).dense_tail.is_none());
}

#[test]
fn each_dip_goes_with_the_norm_the_fidelity_or_neither() {
    let at = |sae: &str, norm: f64, peak: f32| vec![level(sae.into(), 0, norm, peak, 2.0 * peak)];
    // Peak 10 -> 8 while the norm falls 100 -> 50: per unit of norm it rose.
    let d = dips(&[at("a", 100.0, 10.0), at("b", 50.0, 8.0)], &[0.9, 0.9]);
    assert_eq!(d.len(), 2, "Peak and Sum");
    assert!(d.iter().all(|x| x.cause == Cause::ResidualNorm), "{d:?}");
    // It falls per unit of norm where the SAE reconstructs worse.
    let d = dips(&[at("a", 100.0, 10.0), at("b", 100.0, 8.0)], &[0.9, 0.7]);
    assert!(d.iter().all(|x| x.cause == Cause::Fidelity), "{d:?}");
    let d = dips(&[at("a", 100.0, 10.0), at("b", 100.0, 8.0)], &[0.7, 0.9]);
    assert!(d.iter().all(|x| x.cause == Cause::Neither), "{d:?}");
    assert!(dips(&[at("a", 100.0, 8.0), at("b", 100.0, 10.0)], &[0.9, 0.9]).is_empty(), "growth is no dip");
}

#[test]
fn a_shuffle_keeps_bos_first_and_every_token() {
    let ids: Vec<u32> = (0..30).collect();
    let a = shuffled(&ids, 3, 7);
    assert_eq!(a[0], 0);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ids);
    assert_ne!(a, ids);
    assert_eq!(a, shuffled(&ids, 3, 7), "seeded");
    assert_ne!(a, shuffled(&ids, 4, 7), "another seed, another order");
}

/// The probes on the tiny weights: the category mean equals the run's category vector, the
/// widest window of a token near the start is the full context, and the token-alone value
/// is the encode of [BOS, token] computed here.
#[test]
fn probes_agree_with_the_run_and_with_a_direct_encode() {
    let _guard = tch::no_grad_guard();
    let layers = [6, 10];
    let engine = common::engine(&layers);
    let samples = Samples::bundled().expect("samples");
    let opts = common::opts(false, 256);
    let set = saescope::pipeline::compute::run(&engine, &samples, &opts, &ProgressSink::none()).expect("run");
    let analysis = analyze(&set, Params::default());
    let texts = saescope::analysis::questions::texts(&engine, &samples, &opts, &ProgressSink::none()).expect("texts");
    let probes: Vec<Probe> = analysis
        .saes
        .iter()
        .enumerate()
        .flat_map(|(sae, a)| {
            a.categories.iter().enumerate().flat_map(move |(category, m)| m.top.iter().map(move |t| Probe { sae, category, feature: t.feature }))
        })
        .collect();
    let measured = probe::measure(&engine, &texts, &probes, false, 256, &ProgressSink::none()).expect("measure");
    let mut checked_full = 0;
    for (p, m) in probes.iter().zip(&measured) {
        let want = set.category_mean(p.sae, p.category)[p.feature as usize];
        assert!(common::close(f64::from(m.mean), f64::from(want), 1e-4), "{p:?}: probe mean {} vs the run's {want}", m.mean);
        assert_eq!(m.shuffled.len(), probe::SHUFFLES as usize);
        let (text, pos) = m.strongest.expect("a top feature fires somewhere");
        assert!(pos >= 1, "BOS is never the strongest token");
        assert_eq!(m.context.len(), CONTEXTS.len());
        if pos <= 16 {
            let widest = m.context[CONTEXTS.len() - 1];
            assert!(
                common::close(f64::from(widest), f64::from(m.full), 1e-4),
                "{p:?}: 16 tokens before position {pos} are the whole context: {widest} vs {}",
                m.full
            );
            checked_full += 1;
        }
        let alone = [engine.tokenizer.bos, texts[text].ids[pos]];
        let packed = saescope::pipeline::pack(std::iter::once(&alone[..]), true, engine.tokenizer.bos);
        let x = &engine.inputs(&packed).expect("inputs")[p.sae];
        let direct = engine.saes[p.sae].1.encode_feature(x, p.feature).get(0).get(1).double_value(&[]);
        assert!(common::close(f64::from(m.context[0]), direct, 1e-4), "{p:?}: token alone {} vs {direct}", m.context[0]);
        let strip = m.original.as_ref().expect("strip");
        assert_eq!(strip.tokens.len(), texts[text].ids.len());
        assert!((strip.values[pos] - m.full).abs() < 1e-6);
        assert_eq!(m.shuffle.as_ref().map(|s| s.tokens.len()), Some(strip.tokens.len()));
    }
    assert!(checked_full > 10, "enough strongest tokens within 16 of the start: {checked_full}");
}

/// With `--corpus` indexed, the long tail's dense share is about the corpus: `findings`
/// takes the index's firing rates (each feature's firing count over its tokens) and says
/// so; without an index it uses the samples' rates and says that.
#[test]
fn the_dense_share_takes_the_corpus_index_rates_when_there_is_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = common::fixture("corpus");
    let cache = tmp.path().join("cache");
    let run = |args: &[&str]| {
        let mut c = common::saescope();
        common::tiny_args(&mut c).args(["--layers", "6,8", "--cache-dir"]).arg(&cache).args(args).output().expect("run")
    };
    let json = |o: std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).expect("json")
    };
    let corpus_arg = corpus.to_str().expect("path");
    let before = json(run(&["findings", "--format", "json", "--corpus", corpus_arg]));
    assert_eq!(before["open_questions"][0]["density_source"], "firing rates on these texts", "no index stored yet, and none is built");
    assert!(run(&["index", "--corpus", corpus_arg]).status.success());
    let after = json(run(&["findings", "--format", "json", "--corpus", corpus_arg]));
    let q = &after["open_questions"][0];
    assert!(q["density_source"].as_str().is_some_and(|s| s.starts_with("firing rates over the corpus index")), "{}", q["density_source"]);
    // The figure is the tail computed with the index's rates.
    let index = saescope::dashboard::store::decode_index(
        &std::fs::read(
            std::fs::read_dir(cache.join("index"))
                .expect("index dir")
                .map(|e| e.expect("e").path())
                .find(|p| p.extension().is_some_and(|x| x == "bin"))
                .expect("stored"),
        )
        .expect("read"),
    )
    .expect("decode");
    let layer = &index.layers[0];
    let rates: Vec<f64> = layer.count.iter().map(|&n| n as f64 / layer.tokens as f64).collect();
    let samples = Samples::bundled().expect("samples");
    let set = saescope::pipeline::compute::run(&common::engine(&[6, 8]), &samples, &common::opts(false, 256), &ProgressSink::none()).expect("run");
    let a = analyze(&set, Params { top_k: 5, threshold: 5.0 });
    let want = tail(a.saes[0].sae.to_string(), 0, &set.category_mean(0, 0), 5, Some(&rates)).dense_tail.expect("dense");
    let got: Vec<f64> = q["tails"][0][0]["dense_tail"].as_array().expect("dense_tail").iter().map(|v| v.as_f64().expect("f")).collect();
    assert!(common::close(got[0], want[0], 1e-6) && common::close(got[1], want[1], 1e-6), "{got:?} against {want:?}");
    assert_ne!(before["open_questions"][0]["tails"][0][0]["dense_tail"], q["tails"][0][0]["dense_tail"], "the corpus's rates are not the samples'");
}

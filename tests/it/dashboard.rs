//! Feature dashboards (`saescope index`): meaning (the synthetic SAEs' features are found
//! on the tokens they were built for), resuming, storage and bad corpora.

use crate::common;

use saescope::corpus::samples::Samples;
use saescope::corpus::Corpus;
use saescope::dashboard::build::{open_or_build, IndexRequest};
use saescope::dashboard::store::Store;
use saescope::pipeline::RunOptions;
use saescope::runtime::progress::ProgressSink;
use saescope::synth::gpt2::{Anchor, ANCHORS};
use std::path::{Path, PathBuf};
use std::process::Command;

const LAYERS: [usize; 4] = [6, 8, 10, 11];

/// The calibration texts synth used (the bundled samples, in order), one file each.
fn calibration_corpus(dir: &Path) {
    for (i, (_, _, text)) in Samples::bundled().expect("bundled samples").texts().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.txt")), text).expect("write corpus file");
    }
}

fn index(corpus: &Corpus, store: &Store, opts: &RunOptions, max_tokens: Option<u64>) -> saescope::dashboard::build::Outcome {
    let d = common::tiny();
    let run = common::run_of(&d.join("saes"), &LAYERS).with_opts(opts.clone());
    let req = IndexRequest { run: &run, corpus, context: None, max_tokens, store };
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
        let hook = saescope::model::hooks::hook_name(layer, 12);
        let path = common::tiny().join("saes").join(hook).join(ANCHORS);
        let anchors: Anchors = serde_json::from_slice(&std::fs::read(path).expect("anchors.json")).expect("anchors json");
        let stats = out.index.of(common::key(layer)).expect("layer indexed");
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
        println!(
            "layer {layer}: {eligible} features anchored in the corpus; top context at the anchor {:.1}%, on the anchor's token {:.1}%",
            place * 100.0,
            token * 100.0
        );
        assert!(eligible > 300, "layer {layer}: only {eligible} anchors in the corpus");
        assert!(place >= 0.9, "layer {layer}: top context at the anchor for only {:.1}% of features", place * 100.0);
    }
}

#[derive(serde::Deserialize)]
struct RefLayer {
    count: Vec<u64>,
    max: Vec<f32>,
    hist: Vec<Vec<(usize, u32)>>,
    top: Vec<Vec<(u32, u16, f32)>>,
}

#[derive(serde::Deserialize)]
struct Reference {
    windows: u64,
    tokens: u64,
    layers: std::collections::BTreeMap<String, RefLayer>,
}

/// Within 1e-4 relative for activations of 1 and more, 1e-4 absolute below: a small
/// activation is a pre-activation just past zero, the difference of encoder terms that the
/// synthetic SAEs scale by up to ~100, so its float error is absolute (measured up to
/// 3e-5), not relative.
fn same(a: f32, b: f32) -> bool {
    (a - b).abs() as f64 <= 1e-4 * a.abs().max(b.abs()).max(1.0) as f64
}

/// The index equals TransformerLens + SAELens doing the same job
/// (scripts/reference_index.py, fixture from scripts/gen-fixtures): every feature's
/// firing count, max, histogram and top contexts (windows and positions exactly).
#[test]
fn the_index_equals_the_python_reference() {
    let cache = tempfile::tempdir().expect("tmp");
    let corpus = Corpus::open(&common::fixture("corpus"), "text").expect("corpus");
    let out = index(&corpus, &Store::beside(cache.path()), &RunOptions::default(), None);
    let reference: Reference = serde_json::from_slice(&std::fs::read(common::fixture("index_tiny.json")).expect("fixture")).expect("fixture json");
    assert_eq!((out.index.windows, out.index.tokens), (reference.windows, reference.tokens));
    for layer in LAYERS {
        let r = &reference.layers[&layer.to_string()];
        let s = out.index.of(common::key(layer)).expect("layer");
        let (mut counts_off, mut hist_off, mut tops) = (0u64, 0u64, 0usize);
        for f in 0..s.d_sae {
            let mut want = vec![0u32; saescope::dashboard::stats::HIST_BINS];
            for &(b, n) in &r.hist[f] {
                want[b] = n;
            }
            // Whether a pre-activation within float noise of zero fires is a coin toss, and
            // identical windows toss together; such values are all in bin 0 (below 2^-8).
            let near_zero = u64::from(want[0].max(s.histogram(f)[0]));
            counts_off += s.count[f].abs_diff(r.count[f]);
            assert!(s.count[f].abs_diff(r.count[f]) <= near_zero, "layer {layer} feature {f}: fires {} times, the reference {}", s.count[f], r.count[f]);
            assert!(same(s.max[f], r.max[f]), "layer {layer} feature {f}: max {} vs {}", s.max[f], r.max[f]);
            hist_off += s.histogram(f)[1..].iter().zip(&want[1..]).map(|(a, b)| u64::from(a.abs_diff(*b))).sum::<u64>();
            let got: Vec<(u32, u16)> = s.top[f].iter().map(|h| (h.window, h.position)).collect();
            let expected: Vec<(u32, u16)> = r.top[f].iter().map(|&(w, p, _)| (w, p)).collect();
            assert_eq!(got, expected, "layer {layer} feature {f}: top contexts");
            for (h, &(_, _, v)) in s.top[f].iter().zip(&r.top[f]) {
                assert!(same(h.value, v), "layer {layer} feature {f}: {} vs {v}", h.value);
            }
            tops += got.len();
        }
        println!("layer {layer}: {tops} top contexts equal; firing counts off by {counts_off} (all below 2^-8); histogram above 2^-8: {hist_off} of {} entries in other bins", s.firings);
        // A value within float noise of a bin edge may land on its other side; near zero,
        // where bins are narrow and the noise absolute, that happens to a few in 10^5.
        let allowed = 2 * (s.firings / 10_000).max(1);
        assert!(hist_off <= allowed, "layer {layer}: {hist_off} histogram entries (of {}) in other bins", s.firings);
    }
}

fn index_cmd(corpus: &Path, cache: &Path) -> std::process::Command {
    let mut c = common::saescope();
    common::tiny_args(&mut c).args(["index", "--layers", "6,11", "--batch-tokens", "128"]).arg("--corpus").arg(corpus).arg("--cache-dir").arg(cache);
    c
}

fn stored(cache: &Path) -> saescope::dashboard::Index {
    saescope::dashboard::store::decode_index(&stored_bytes(cache)).expect("decode index")
}

/// Ctrl-C keeps what is done; the same command resumes there, and the result is the
/// same index an uninterrupted run builds.
#[test]
fn an_interrupted_index_resumes_to_the_same_result() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    assert!(common::saescope().args(["synth-samples", "--texts", "6000", "--out"]).arg(&corpus).status().expect("gen").success());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut child = index_cmd(&corpus, &a).stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let going = line.starts_with("indexing tokens:") && !line.contains("(0%)");
        seen.push(line);
        if going {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.starts_with("indexing tokens:")), "{seen:?}");
    common::signal(child.id(), libc::SIGINT);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().expect("wait").code(), Some(130), "{rest:?}");
    let said = rest.join("\n");
    assert!(said.contains("interrupted; the tokens indexed so far are kept in") && said.contains("run the same command again to resume"), "{said}");

    let again = index_cmd(&corpus, &a).output().expect("rerun");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("resuming: ") && err.contains("tokens were indexed by an earlier run"), "{err}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("tokens from an earlier run"));
    let leftover: Vec<_> = std::fs::read_dir(a.join("index")).expect("dir").map(|e| e.expect("e").file_name()).collect();
    let ends = |suffix: &str| leftover.iter().filter(|n| n.to_string_lossy().ends_with(suffix)).count();
    assert_eq!((ends(".bin"), ends(".resume")), (1, 0), "the resume file is gone once the index is stored: {leftover:?}");

    let whole = index_cmd(&corpus, &b).output().expect("uninterrupted");
    assert!(whole.status.success());
    let (resumed, fresh) = (stored(&a), stored(&b));
    assert_eq!(resumed.layers, fresh.layers);
    assert_eq!(resumed.contexts, fresh.contexts);
    assert_eq!(resumed.tokens, fresh.tokens);

    // A second run finds the stored index and computes nothing.
    let third = index_cmd(&corpus, &a).output().expect("third");
    assert!(String::from_utf8_lossy(&third.stdout).contains("already indexed"));
}

/// Bad corpora get one line that says what to do.
#[test]
fn bad_corpora_are_named_with_advice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |corpus: &Path, extra: &[&str]| {
        let out = index_cmd(corpus, &tmp.path().join("cache")).args(extra).output().expect("run");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        err.lines().filter(|l| l.starts_with("error:")).collect::<Vec<_>>().join("\n")
    };
    let err = run(&tmp.path().join("nope"), &[]);
    assert!(err.contains("--corpus") && err.contains("not found"), "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert!(run(&empty, &[]).contains("the folder has no files"));
    let rows = tmp.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"body\": \"hello there\"}\n{\"body\": \"again\"}\n").expect("write");
    let err = run(&rows, &[]);
    assert!(err.contains("no text to index") && err.contains("--text-field") && err.contains("rows.jsonl:1"), "{err}");
    std::fs::write(&rows, "{\"text\": \"fine\"}\n{\"text\": broken\n").expect("write");
    let err = run(&rows, &[]);
    assert!(err.contains("rows.jsonl line 2: not a JSON object"), "{err}");
    let gz = tmp.path().join("cut.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, "{\"text\": \"a row\"}\n".repeat(2000).as_bytes()).expect("gz");
    let bytes = enc.finish().expect("gz");
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).expect("write");
    let err = run(&gz, &[]);
    assert!(err.contains("cut.jsonl.gz") && err.contains("cannot read"), "{err}");
    let bin = tmp.path().join("blob.bin");
    std::fs::write(&bin, [0u8, 1, 2, 255]).expect("write");
    assert!(run(&bin, &[]).contains("not a text file"));
    let err = run(&common::fixture("corpus"), &["--context", "1"]);
    assert!(err.contains("--context"), "{err}");
}

/// The fixture corpus read as documents: hidden files and binaries skipped, rows without
/// the field counted, folders in path order.
#[test]
fn a_folder_corpus_reads_text_jsonl_and_gzip_in_path_order() {
    let corpus = Corpus::open(&common::fixture("corpus"), "text").expect("corpus");
    let mut sources = Vec::new();
    let skipped = corpus
        .documents(|d| {
            sources.push(d.source.rsplit('/').next().unwrap_or_default().to_string());
            Ok(true)
        })
        .expect("read");
    assert_eq!(skipped.binary, 1);
    assert_eq!(skipped.rows_without_text, 1);
    assert_eq!(sources.first().map(String::as_str), Some("stats.py"), "code/ sorts before notes.md");
    assert_eq!(sources[1], "notes.md");
    assert_eq!(sources[2], "rows.jsonl.gz:1");
    assert_eq!(sources.len(), 2 + 240);
}

/// The bf16 screen (src/dashboard/screen.rs) finds every firing the same f32 dots find
/// with nothing screened, with the same values: the index is equal in every part (counts,
/// histograms, maxima, top contexts, interval samples, the windows kept), for ReLU,
/// JumpReLU (whose cut is its threshold) and TopK (which the screen leaves to the plain
/// encode). Against libtorch's matmul, only pre-activations within float noise of zero may
/// fire in one and not the other.
#[test]
fn the_bf16_screen_gives_the_unscreened_index_exactly() {
    use saescope::dashboard::build::{Encode, Job};
    let corpus = Corpus::open(&common::fixture("corpus"), "text").expect("corpus");
    for (arch, saes) in [("relu", common::tiny().join("saes")), ("jumprelu", common::tiny_saes_as("jumprelu")), ("topk", common::tiny_saes_as("topk"))] {
        let engine = common::engine_with(&saes, &LAYERS);
        let run = |encode: Encode| {
            let job = Job { engine: &engine, corpus: &corpus, context: 128, max_tokens: None, batch_tokens: 512, encode, slice: None };
            let mut index = job.run(None, &mut |_| Ok(()), &ProgressSink::none()).expect("index").0;
            index.seconds = 0.0;
            index
        };
        let (screened, unscreened, plain) = (run(Encode::Screened), run(Encode::Unscreened), run(Encode::Plain));
        let fired: u64 = screened.layers.iter().flat_map(|l| l.count.iter()).sum();
        assert!(fired > 10_000, "{arch}: the corpus fires the SAEs ({fired} firings)");
        if arch == "jumprelu" {
            // Thresholds change what fires: a weak firing of a ReLU SAE is gone.
            let relu: u64 = run_relu_count(&corpus);
            assert!(fired < relu, "{arch}: {fired} firings, ReLU {relu}");
        }
        for (s, u) in screened.layers.iter().zip(&unscreened.layers) {
            for f in 0..s.d_sae {
                assert_eq!(s.histogram(f), u.histogram(f), "{arch} layer {} feature {f}: histogram", s.hook);
            }
            assert_eq!(s, u, "{arch} layer {}: the screened index differs from the unscreened one", s.hook);
        }
        assert_eq!(screened, unscreened, "{arch}: the whole index");
        for (s, p) in screened.layers.iter().zip(&plain.layers) {
            for f in 0..s.d_sae {
                let near_zero = u64::from(s.histogram(f)[0].max(p.histogram(f)[0]));
                assert!(s.count[f].abs_diff(p.count[f]) <= near_zero, "{arch} layer {} feature {f}: {} vs {}", s.hook, s.count[f], p.count[f]);
                assert!((s.max[f] - p.max[f]).abs() <= 1e-4 * p.max[f].max(1.0), "{arch} layer {} feature {f}: max {} vs {}", s.hook, s.max[f], p.max[f]);
            }
        }
    }
}

/// Firings of the plain tiny ReLU SAEs over the fixture corpus.
fn run_relu_count(corpus: &Corpus) -> u64 {
    let engine = common::engine(&LAYERS);
    let job = saescope::dashboard::build::Job {
        engine: &engine,
        corpus,
        context: 128,
        max_tokens: None,
        batch_tokens: 512,
        encode: saescope::dashboard::build::Encode::Plain,
        slice: None,
    };
    let index = job.run(None, &mut |_| Ok(()), &ProgressSink::none()).expect("index").0;
    index.layers.iter().flat_map(|l| l.count.iter()).sum()
}

/// At GPT-2 small's size (768 x 24,576), for ReLU and JumpReLU: inputs whose
/// pre-activations sit within 1e-6 of their cut (the screen's hardest case: the bf16 error
/// is far larger than the distance to the cut), and ordinary ones. The screen's firings and
/// values equal the unscreened f32 dots exactly.
#[test]
fn the_bf16_screen_misses_nothing_at_full_size() {
    use saescope::dashboard::screen::Prefilter;
    let (d_in, d_sae) = (768i64, 24_576i64);
    tch::manual_seed(7);
    let dir = tempfile::tempdir().expect("tmp");
    let x = tch::Tensor::randn([48, d_in], (tch::Kind::Float, tch::Device::Cpu)) * 3.0;
    let w_enc = tch::Tensor::randn([d_in, d_sae], (tch::Kind::Float, tch::Device::Cpu)) * (1.0 / (d_in as f64).sqrt());
    // Row 0's pre-activations land within 1e-6 of each cut, either side: b = cut - x0.W + e.
    let threshold = tch::Tensor::rand([d_sae], (tch::Kind::Float, tch::Device::Cpu)) * 0.5;
    let jitter = (tch::Tensor::rand([d_sae], (tch::Kind::Float, tch::Device::Cpu)) - 0.5) * 2e-6;
    for arch in ["standard", "jumprelu"] {
        let cut = if arch == "jumprelu" { threshold.shallow_clone() } else { tch::Tensor::zeros([d_sae], (tch::Kind::Float, tch::Device::Cpu)) };
        let b_enc = &cut - x.get(0).matmul(&w_enc) + &jitter;
        let folder = dir.path().join(arch);
        std::fs::create_dir_all(&folder).expect("mkdir");
        let mut tensors = vec![
            ("W_enc", w_enc.shallow_clone()),
            ("b_enc", b_enc),
            ("W_dec", w_enc.tr().contiguous()),
            ("b_dec", tch::Tensor::zeros([d_in], (tch::Kind::Float, tch::Device::Cpu))),
        ];
        if arch == "jumprelu" {
            tensors.push(("threshold", threshold.shallow_clone()));
        }
        tch::Tensor::write_safetensors(&tensors, folder.join("sae_weights.safetensors")).expect("write");
        let cfg = serde_json::json!({"architecture": arch, "d_in": d_in, "d_sae": d_sae, "apply_b_dec_to_input": true, "normalize_activations": "none"});
        std::fs::write(folder.join("cfg.json"), cfg.to_string()).expect("cfg");
        let files = saescope::source::SaeFiles { cfg: folder.join("cfg.json"), weights: folder.join("sae_weights.safetensors") };
        let sae = saescope::sae::Sae::load(
            &files,
            d_in as usize,
            saescope::model::hooks::HookPoint::new(0, saescope::model::hooks::Site::ResidPre),
            &saescope::sae::Overrides::default(),
            false,
            tch::Device::Cpu,
            tch::Kind::Float,
        )
        .expect("sae");
        let input = sae.normalized(&x);
        let screened = Prefilter::new(&sae).expect("screen").expect("a linear SAE").encode(&input, 2).expect("encode");
        let unscreened = Prefilter::unscreened(&sae).expect("screen").expect("a linear SAE").encode(&input, 2).expect("encode");
        let near = screened.0.iter().filter(|&&i| i < d_sae).count();
        assert!(near > 1000, "{arch}: row 0 has many firings at its cuts ({near})");
        assert_eq!(screened.0, unscreened.0, "{arch}: the same pairs fire");
        assert!(screened.1.iter().zip(&unscreened.1).all(|(a, b)| a.to_bits() == b.to_bits()), "{arch}: the same values, bit for bit");
    }
}

/// Parquet as Hugging Face ships datasets (pyarrow, snappy): rows from the text column,
/// nulls counted, a missing column named with the columns there are.
#[test]
fn parquet_rows_are_documents() {
    let corpus = Corpus::open(&common::fixture("docs.parquet"), "text").expect("corpus");
    let mut texts = Vec::new();
    let skipped = corpus
        .documents(|d| {
            texts.push((d.source.rsplit('/').next().unwrap_or_default().to_string(), d.text));
            Ok(true)
        })
        .expect("read");
    assert_eq!(texts.len(), 3);
    assert_eq!(texts[0], ("docs.parquet:1".to_string(), "The survey team left the station at dawn.".to_string()));
    assert!(texts[1].1.starts_with("def mean(xs):\n"));
    assert_eq!(texts[2].0, "docs.parquet:4");
    assert_eq!((skipped.rows_without_text, skipped.first_row_without_text.map(|s| s.ends_with("docs.parquet:3"))), (1, Some(true)));
    let wrong = Corpus::open(&common::fixture("docs.parquet"), "body").expect("corpus");
    let err = wrong.documents(|_| Ok(true)).expect_err("no such column").to_string();
    assert!(err.contains("no column \"body\"") && err.contains("text, id") && err.contains("--text-field"), "{err}");
}

/// An index folder that cannot be written is refused before any compute, with what to do.
#[test]
fn an_unwritable_index_folder_is_refused_up_front() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A file where the cache folder should be.
    let blocked = tmp.path().join("blocked");
    std::fs::write(&blocked, "not a folder").expect("file");
    let out = index_cmd(&common::fixture("corpus"), &blocked).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot write the index folder") && err.contains("--cache-dir"), "{err}");
    assert!(!err.contains("indexing tokens"), "refused before computing: {err}");
}

/// `feature` with --corpus: the corpus sections once indexed (text and JSON, every context
/// token-shaded), and a note saying how to get them before.
#[test]
fn feature_prints_the_corpus_sections_once_indexed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let feature = |format: &str| {
        let mut c = common::saescope();
        common::tiny_args(&mut c)
            .args(["feature", "--layer", "6", "--id", "5", "--format", format, "--layers", "6,11"])
            .arg("--corpus")
            .arg(common::fixture("corpus"))
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .expect("feature")
    };
    let before = feature("text");
    assert!(before.status.success());
    assert!(String::from_utf8_lossy(&before.stderr).contains("is not indexed for these SAEs with these options yet; run `saescope index`"));
    assert!(!String::from_utf8_lossy(&before.stdout).contains("top contexts"));
    assert!(index_cmd(&common::fixture("corpus"), &cache).status().expect("index").success());
    let text = String::from_utf8_lossy(&feature("text").stdout).to_string();
    assert!(text.contains("corpus ") && text.contains("top contexts (max token in [[ ]]):") && text.contains("interval samples:"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&feature("json").stdout).expect("json");
    let corpus = &json["corpus"];
    let top = corpus["top"].as_array().expect("top contexts");
    assert!(!top.is_empty() && corpus["frac_nonzero"].as_f64().is_some_and(|f| f > 0.0));
    for c in top {
        let (tokens, values) = (c["tokens"].as_array().expect("tokens"), c["values"].as_array().expect("values computed"));
        assert_eq!(tokens.len(), values.len());
        let i = c["max_index"].as_u64().expect("max_index") as usize;
        let (v, max) = (values[i].as_f64().expect("v"), c["max_value"].as_f64().expect("max"));
        assert!((v - max).abs() <= 1e-4 * max.max(1.0), "the max token's value is the context's max: {v} vs {max}");
        assert!(values.iter().all(|x| x.as_f64().is_some_and(|x| x <= max + 1e-4 * max.max(1.0))), "no token above the max");
    }
}

/// The stored index file's bytes.
fn stored_bytes(cache: &Path) -> Vec<u8> {
    let dir = cache.join("index");
    let file =
        std::fs::read_dir(&dir).expect("index dir").map(|e| e.expect("entry").path()).find(|p| p.extension().is_some_and(|e| e == "bin")).expect("index file");
    std::fs::read(file).expect("read index")
}

/// `index --shard K/N -o FILE` on 4 slices, one of them interrupted and rerun and one run
/// from copies of the weights and corpus (as on another machine: other paths, other
/// times), then `index merge`, stores the index file one run stores, byte for byte;
/// `feature --corpus` finds it. A missing, doubled or foreign shard is named.
#[test]
fn four_shards_merge_into_the_single_runs_index() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    assert!(common::saescope().args(["synth-samples", "--texts", "3000", "--out"]).arg(&corpus).status().expect("gen").success());
    let (one, merged) = (tmp.path().join("one"), tmp.path().join("merged"));
    let whole = index_cmd(&corpus, &one).output().expect("single run");
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let shard = |k: usize| tmp.path().join(format!("s{k}.shard"));
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    assert!(Command::new("cp")
        .arg("-r")
        .arg(common::tiny().join("model"))
        .arg(common::tiny().join("saes"))
        .arg(&corpus)
        .arg(&elsewhere)
        .status()
        .expect("cp")
        .success());
    let shard_cmd = |k: usize| {
        let mut c = if k == 3 {
            let mut c = common::saescope();
            c.arg("--model-dir").arg(elsewhere.join("model")).arg("--sae-dir").arg(elsewhere.join("saes"));
            c.args(["index", "--layers", "6,11", "--batch-tokens", "128", "--corpus"]).arg(elsewhere.join("corpus.txt"));
            c.arg("--cache-dir").arg(elsewhere.join("cache"));
            c
        } else {
            index_cmd(&corpus, &tmp.path().join("work"))
        };
        c.args(["--shard", &format!("{k}/4"), "-o"]).arg(shard(k));
        c
    };

    // Shard 2 is stopped once it has indexed a batch, and resumes.
    let mut child = shard_cmd(2).stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.starts_with("indexing tokens (shard 2/4):") && !line.contains("(0%)") {
            break;
        }
    }
    common::signal(child.id(), libc::SIGINT);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().expect("wait").code(), Some(130), "{rest:?}");
    assert!(!shard(2).exists(), "no shard file until the shard is done");
    for k in 0..4 {
        let out = shard_cmd(k).output().expect("shard");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains(&format!("shard {k}/4 written to")), "{err}");
        assert_eq!(k == 2, err.contains("tokens were indexed by an earlier run"), "shard {k} resumes only if interrupted\n{err}");
    }

    let merge = |files: &[PathBuf]| {
        let mut c = common::saescope();
        common::tiny_args(&mut c).args(["index", "--layers", "6,11", "--batch-tokens", "128"]).arg("--corpus").arg(&corpus).arg("--cache-dir").arg(&merged);
        c.args(["merge"]).args(files).output().expect("merge")
    };
    let all: Vec<PathBuf> = (0..4).map(shard).collect();
    let out = merge(&all);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged from 4 shards"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(stored_bytes(&merged) == stored_bytes(&one), "the merged index file differs from the single run's");
    let names = |d: &Path| std::fs::read_dir(d.join("index")).expect("dir").map(|e| e.expect("e").file_name()).collect::<Vec<_>>();
    assert_eq!(names(&merged), names(&one), "stored under the single run's key");
    let feature = common::tiny_args(&mut common::saescope())
        .args(["feature", "--layer", "6", "--id", "3", "--layers", "6,11", "--batch-tokens", "128", "--corpus"])
        .arg(&corpus)
        .arg("--cache-dir")
        .arg(&merged)
        .output()
        .expect("feature");
    let card = String::from_utf8_lossy(&feature.stdout);
    let said = String::from_utf8_lossy(&feature.stderr);
    assert!(feature.status.success() && card.contains("top contexts (max token in [[ ]])"), "{card}\n{said}");
    assert!(!said.contains("indexing tokens"), "the merged index is found, not rebuilt\n{said}");

    let refused = |files: &[PathBuf]| String::from_utf8_lossy(&merge(files).stderr).to_string();
    let err = refused(&all[..3]);
    assert!(err.contains("shard 3/4 missing"), "{err}");
    let err = refused(&[all.clone(), vec![all[1].clone()]].concat());
    assert!(err.contains("shard 1/4 is given twice"), "{err}");
    let other = tmp.path().join("other.shard");
    let out = index_cmd(&corpus, &tmp.path().join("work")).args(["--context", "64", "--shard", "3/4", "-o"]).arg(&other).output().expect("other");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = refused(&[&all[..3], &[other]].concat());
    assert!(err.contains("other.shard was indexed with other weights, corpus or index options"), "{err}");
}

/// Shards made with different encodes (the bf16 screen on one machine, the plain f32 encode
/// on another) merge into an index that says so, and equals the single run's up to float
/// rounding: the same counts, firings, histograms, windows and positions of every top
/// context (but at exact ties) and nearly every sample, values within 1e-5 of the SAE's
/// largest activation (docs/dashboards.md states this).
#[test]
fn shards_of_mixed_encodes_merge_within_float_rounding() {
    let tmp = tempfile::tempdir().expect("tmp");
    let corpus = tmp.path().join("corpus.txt");
    assert!(common::saescope().args(["synth-samples", "--texts", "400", "--out"]).arg(&corpus).status().expect("gen").success());
    let (one, merged) = (tmp.path().join("one"), tmp.path().join("merged"));
    let whole = index_cmd(&corpus, &one).env("SAESCOPE_EXACT_ENCODE", "1").output().expect("single run");
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let shard = |k: usize| tmp.path().join(format!("s{k}.shard"));
    for (k, exact) in [(0, "0"), (1, "1")] {
        let out = index_cmd(&corpus, &tmp.path().join("work"))
            .env("SAESCOPE_EXACT_ENCODE", exact)
            .args(["--shard", &format!("{k}/2"), "-o"])
            .arg(shard(k))
            .output()
            .expect("shard");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = index_cmd(&corpus, &merged).arg("merge").arg(shard(0)).arg(shard(1)).output().expect("merge");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("note: the shards were indexed in 2 ways") && said.contains("screened encode") && said.contains("plain encode"), "{said}");
    let (a, b) = (stored(&one), stored(&merged));
    assert_eq!((a.tokens, a.windows, a.layers.len()), (b.tokens, b.windows, b.layers.len()));
    for (la, lb) in a.layers.iter().zip(&b.layers) {
        // Within 1e-5 of the SAE's largest activation: a dot product's rounding scales with
        // its inputs, not its result, so a small activation carries the same absolute error.
        let scale = la.max.iter().copied().fold(1.0f32, f32::max);
        let near = |x: f32, y: f32| (x - y).abs() <= 1e-5 * scale;
        assert_eq!((la.firings, &la.count), (lb.firings, &lb.count), "{}: counts", la.hook);
        // A value on a histogram bin's edge may round into the next bin: the same number of
        // values per feature, a handful moved.
        let per_feature = |h: &[u32]| h.chunks(h.len() / la.d_sae).map(|c| c.iter().map(|&x| u64::from(x)).sum::<u64>()).collect::<Vec<_>>();
        assert_eq!(per_feature(&la.hist), per_feature(&lb.hist), "{}: histogram totals", la.hook);
        let moved: u64 = la.hist.iter().zip(&lb.hist).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
        assert!(moved <= 4.max(la.firings / 10_000), "{}: {moved} histogram entries differ of {}", la.hook, la.firings);
        assert!(la.max.iter().zip(&lb.max).all(|(x, y)| near(*x, *y)), "{}: maxima", la.hook);
        for (ta, tb) in la.top.iter().zip(&lb.top) {
            assert_eq!(ta.len(), tb.len(), "{}: top contexts", la.hook);
            let worst = ta.iter().zip(tb).map(|(x, y)| (x.value, y.value)).max_by(|a, b| (a.0 - a.1).abs().total_cmp(&(b.0 - b.1).abs()));
            assert!(ta.iter().zip(tb).all(|(x, y)| near(x.value, y.value)), "{}: top values in order, the farthest {worst:?}", la.hook);
            // The same contexts, except which of several tied at the list's end got in (the
            // order among exact ties is the windows' and may differ).
            let last = ta.last().map_or(f32::MIN, |h| h.value);
            let clear = |l: &[saescope::dashboard::stats::Hit]| {
                l.iter().filter(|h| !near(h.value, last)).map(|h| (h.window, h.position)).collect::<std::collections::BTreeSet<_>>()
            };
            assert_eq!(clear(ta), clear(tb), "{}: top contexts", la.hook);
        }
        // Interval samples: a value on an interval's edge may fall in the next one, so the
        // same number, nearly all the same contexts.
        let (mut same, mut all) = (0usize, 0usize);
        for (sa, sb) in la.samples.iter().zip(&lb.samples) {
            assert_eq!(sa.len(), sb.len(), "{}: samples", la.hook);
            let b: std::collections::BTreeSet<_> = sb.iter().map(|s| (s.interval, s.hit.window, s.hit.position)).collect();
            same += sa.iter().filter(|s| b.contains(&(s.interval, s.hit.window, s.hit.position))).count();
            all += sa.len();
        }
        assert!(same * 100 >= all * 99, "{}: {same} of {all} interval samples the same", la.hook);
    }
}

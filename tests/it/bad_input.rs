//! Bad input gets one clear error that says what to do; nothing panics.

use crate::common;

use common::tiny;
use saescope::corpus::samples::Samples;
use saescope::pipeline::Engine;
use saescope::runtime::progress::ProgressSink;
use saescope::source::Source;
use std::path::Path;

fn load(model: &Path, saes: &Path, layers: &[usize]) -> color_eyre::Result<Engine> {
    let saes = saescope::sae::selection::Selection::from_args(saescope::source::DEFAULT_SAE_RELEASE, &[], layers, Some(saes), None)?;
    let run = saescope::pipeline::Run { model: Source::Dir(model.to_owned()), saes, device: tch::Device::Cpu, opts: Default::default() };
    Engine::load(&run, &ProgressSink::none())
}

fn err(r: color_eyre::Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": "),
    }
}

/// A copy of the tiny weights to damage.
fn copy() -> tempfile::TempDir {
    let dst = tempfile::tempdir().expect("tmp");
    let status = std::process::Command::new("cp").arg("-r").arg(tiny().join("model")).arg(tiny().join("saes")).arg(dst.path()).status().expect("cp");
    assert!(status.success());
    dst
}

#[test]
fn samples_errors_name_the_line() {
    let e = err(Samples::parse("[[category]]\nname = \"A\"\ntexts = [\"x\", ]\n\n[[category]]\nname = \"B\"\ntexts = []\n", "f.toml"));
    assert!(e.contains("f.toml: line 7") && e.contains("no texts"), "{e}");
    let e = err(Samples::parse("[[category]]\nname = \"A\"\ntexts = [\"ok\",\n  \"  \"]\n", "f.toml"));
    assert!(e.contains("line 4") && e.contains("empty text"), "{e}");
    let e = err(Samples::parse("[[category]]\nname = \"A\"\ntexts = [\"unterminated]\n", "f.toml"));
    assert!(e.contains("line 3"), "{e}");
    let e = err(Samples::parse("[[category]]\nname = \"A\"\ntext = [\"typo\"]\n", "f.toml"));
    assert!(e.contains("line") && e.contains("text"), "{e}");
    let e = err(Samples::parse("[[category]]\nname = \"A\"\ntexts = [\"a\"]\n[[category]]\nname = \"A\"\ntexts = [\"b\"]\n", "f.toml"));
    assert!(e.contains("line 5") && e.contains("twice"), "{e}");
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("latin1.toml");
    std::fs::write(&p, b"[[category]]\nname = \"caf\xe9\"\ntexts = [\"x\"]\n").expect("write");
    assert!(err(Samples::load(&p)).contains("not UTF-8"));
    assert!(err(Samples::load(&dir.path().join("missing.toml"))).contains("cannot read samples file"));
    // A huge file (sparse, so the test writes nothing) is refused before it is read.
    let huge = dir.path().join("huge.toml");
    std::fs::File::create(&huge).and_then(|f| f.set_len(1 << 30)).expect("sparse file");
    let e = err(Samples::load(&huge));
    assert!(e.contains("is 1024 MiB") && e.contains("split it"), "{e}");
}

#[test]
fn bundled_samples_have_seven_categories_of_ten() {
    let s = Samples::bundled().expect("bundled");
    let names: Vec<_> = s.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Python", "Math", "URLs", "Non-English", "Formal", "Conversational", "Social"]);
    assert!(s.categories.iter().all(|c| c.texts.len() == 10));
}

#[test]
fn truncated_safetensors_is_named_with_advice() {
    let d = copy();
    let w = d.path().join("saes/blocks.6.hook_resid_pre/sae_weights.safetensors");
    let bytes = std::fs::read(&w).expect("read");
    std::fs::write(&w, &bytes[..bytes.len() / 2]).expect("truncate");
    let e = err(load(&d.path().join("model"), &d.path().join("saes"), &[6]));
    assert!(e.contains("sae_weights.safetensors") && e.contains("truncated"), "{e}");
}

#[test]
fn wrong_shaped_sae_names_file_and_tensor() {
    let d = copy();
    let cfg = d.path().join("saes/blocks.8.hook_resid_pre/cfg.json");
    let text = std::fs::read_to_string(&cfg).expect("read").replace("\"d_sae\": 512", "\"d_sae\": 600");
    std::fs::write(&cfg, text).expect("write");
    let e = err(load(&d.path().join("model"), &d.path().join("saes"), &[8]));
    assert!(e.contains("W_enc") && e.contains("[64, 512]") && e.contains("[64, 600]"), "{e}");
    let text = std::fs::read_to_string(&cfg).expect("read").replace("\"d_in\": 64", "\"d_in\": 768");
    std::fs::write(&cfg, text).expect("write");
    let e = err(load(&d.path().join("model"), &d.path().join("saes"), &[8]));
    assert!(e.contains("d_in 768") && e.contains("width 64 at blocks.8.hook_resid_pre"), "{e}");
}

#[test]
fn unknown_architecture_and_wrong_hook_are_refused() {
    let d = copy();
    let cfg = d.path().join("saes/blocks.6.hook_resid_pre/cfg.json");
    let orig = std::fs::read_to_string(&cfg).expect("read");
    std::fs::write(&cfg, orig.replace("\"architecture\": \"standard\"", "\"architecture\": \"matching_pursuit\"")).expect("write");
    assert!(err(load(&d.path().join("model"), &d.path().join("saes"), &[6])).contains("architecture \"matching_pursuit\" is not supported"));
    std::fs::write(&cfg, orig.replace("blocks.6.hook_resid_pre", "blocks.7.hook_resid_pre")).expect("write");
    assert!(err(load(&d.path().join("model"), &d.path().join("saes"), &[6])).contains("reads blocks.7.hook_resid_pre"));
}

#[test]
fn nan_in_weights_is_detected_and_named() {
    let d = copy();
    let w = d.path().join("model/model.safetensors");
    let mut bytes = std::fs::read(&w).expect("read");
    // Poison the last f32 of the file (ln_f or a late block): NaN is 0x7fc00000.
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&w, bytes).expect("write");
    // Load every block so the poisoned tensor is read.
    let e = err(load(&d.path().join("model"), &d.path().join("saes"), &[12]));
    assert!(e.contains("NaN or Inf") && e.contains("model.safetensors"), "{e}");
    // +Inf in an SAE: refused before it could reach a table.
    let d = copy();
    let w = d.path().join("saes/blocks.6.hook_resid_pre/sae_weights.safetensors");
    let mut bytes = std::fs::read(&w).expect("read");
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&f32::INFINITY.to_le_bytes());
    std::fs::write(&w, bytes).expect("write");
    let e = err(load(&d.path().join("model"), &d.path().join("saes"), &[6]));
    assert!(e.contains("NaN or Inf") && e.contains("blocks.6.hook_resid_pre/sae_weights.safetensors"), "{e}");
}

#[test]
fn pickles_are_never_loaded() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path().join("weights.pt");
    std::fs::write(&p, b"not really").expect("write");
    assert!(err(saescope::weights::tensors::SafeFile::open(&p)).contains("pickle"));
}

#[test]
fn missing_files_and_layers_out_of_range_say_what_to_do() {
    let d = tempfile::tempdir().expect("tmp");
    let e = err(load(d.path(), d.path(), &[6]));
    assert!(e.contains("config.json: not found") && e.contains("saescope synth"), "{e}");
    let e = err(load(&tiny().join("model"), &tiny().join("saes"), &[13]));
    assert!(e.contains("layer 13 does not exist"), "{e}");
}

#[test]
fn hf_prefixed_tensor_names_load_the_same() {
    // GPT2LMHeadModel.save_pretrained writes `transformer.h.0...`; the hub's gpt2 has no prefix.
    use safetensors::tensor::TensorView;
    let d = copy();
    let w = d.path().join("model/model.safetensors");
    let bytes = std::fs::read(&w).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let renamed: Vec<(String, TensorView)> = st.tensors().into_iter().map(|(n, v)| (format!("transformer.{n}"), v)).collect();
    let out = safetensors::serialize(renamed, &None).expect("serialize");
    std::fs::write(&w, out).expect("write");
    let a = load(&tiny().join("model"), &tiny().join("saes"), &[10]).expect("plain");
    let b = load(&d.path().join("model"), &d.path().join("saes"), &[10]).expect("prefixed");
    let s = Samples::parse("[[category]]\nname = \"A\"\ntexts = [\"hello there\"]\n", "t").expect("samples");
    let o = saescope::pipeline::RunOptions::default();
    assert_eq!(
        saescope::pipeline::compute::run(&a, &s, &o, &ProgressSink::none()).expect("a"),
        saescope::pipeline::compute::run(&b, &s, &o, &ProgressSink::none()).expect("b")
    );
}

/// A model whose vocabulary is smaller than the tokenizer's (a folder without its own
/// tokenizer.json, so the bundled GPT-2 one applies) is refused at load, naming both sizes,
/// instead of failing inside libtorch on the first token past the embedding.
#[test]
fn a_tokenizer_larger_than_the_models_vocabulary_is_refused() {
    let saes = tempfile::tempdir().expect("tmp");
    let folder = saes.path().join("blocks.1.hook_resid_pre");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let t = |shape: &[i64]| tch::Tensor::zeros(shape, (tch::Kind::Float, tch::Device::Cpu));
    tch::Tensor::write_safetensors(
        &[("W_enc", t(&[48, 64])), ("W_dec", t(&[64, 48])), ("b_enc", t(&[64])), ("b_dec", t(&[48]))],
        folder.join("sae_weights.safetensors"),
    )
    .expect("write");
    std::fs::write(folder.join("cfg.json"), r#"{"d_in": 48, "d_sae": 64, "hook_name": "blocks.1.hook_resid_pre"}"#).expect("cfg");
    let e = err(load(&common::fixture("gpt2_other"), saes.path(), &[1]));
    assert!(e.contains("the bundled GPT-2 tokenizer has 50257 tokens but the model's vocab_size is 512") && e.contains("tokenizer.json"), "{e}");
}

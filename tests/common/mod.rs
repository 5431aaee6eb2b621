//! Shared by the integration tests: the tiny synthetic weights, written once per test binary.
#![allow(dead_code)]

pub mod hub;

use saescope::pipeline::{Engine, RunOptions};
use saescope::progress::ProgressSink;
use saescope::source::synth::{self, Size};
use saescope::source::Source;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `saescope synth --size tiny --seed 0`, the weights the reference fixtures were made on.
pub fn tiny() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        synth::write(&dir, Size::Tiny, 0, &ProgressSink::none()).expect("synth tiny");
        dir
    })
}

pub fn engine(layers: &[usize]) -> Engine {
    let d = tiny();
    Engine::load(&Source::Dir(d.join("model")), &Source::Dir(d.join("saes")), layers, tch::Device::Cpu, false, &RunOptions::default(), &ProgressSink::none())
        .expect("load tiny engine")
}

/// Every block of the tiny model (for generation and gradients) and the SAEs of `layers`.
pub fn full_engine(layers: &[usize]) -> Engine {
    let d = tiny();
    saescope::pipeline::Resolved::new(&Source::Dir(d.join("model")), &Source::Dir(d.join("saes")), layers, &ProgressSink::none())
        .expect("resolve tiny")
        .load_full(tch::Device::Cpu, &RunOptions::default(), &ProgressSink::none())
        .expect("load tiny whole")
}

pub fn opts(include_bos: bool, batch_tokens: usize) -> RunOptions {
    RunOptions { include_bos, batch_tokens, ..Default::default() }
}

/// A result-cache folder private to this test binary, so tests never touch the user's.
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir").keep())
}

/// The binary, with its result cache pointed at `cache_dir()`.
pub fn saescope() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_saescope"));
    c.env("SAESCOPE_CACHE_DIR", cache_dir());
    c
}

/// `--model-dir`/`--sae-dir` of the tiny weights.
pub fn tiny_args(c: &mut std::process::Command) -> &mut std::process::Command {
    c.arg("--model-dir").arg(tiny().join("model")).arg("--sae-dir").arg(tiny().join("saes"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// |a - b| within `rel` of the larger magnitude (absolute floor for values near zero).
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-3)
}

//! `torch.save` checkpoints, read without running code (src/pickle.rs, src/torch_pt.rs;
//! fixtures from scripts/reference_pt.py): the kk attention SAEs' layout loads and encodes
//! as SAELens's own loader does; views, offsets, bf16 and integer tensors come back with
//! their values; a pickle that calls os.system is refused, naming the file and the call;
//! damaged files give an error, never a panic.

use crate::common;

use saescope::sae::Sae;
use saescope::source::SaeFiles;
use tch::{Device, Kind, Tensor};

/// An error as the command line prints it: every cause, outermost first.
fn said(e: &color_eyre::Report) -> String {
    e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("pt/reference.json")).expect("fixture")).expect("json")
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).expect("rows")
}

#[test]
fn a_kk_attention_sae_encodes_as_saelens_does() {
    let files = SaeFiles { cfg: common::fixture("pt/kk_L1_cfg.json"), weights: common::fixture("pt/kk_L1.pt") };
    let sae = Sae::load(
        &files,
        48,
        saescope::model::hooks::HookPoint::parse("blocks.1.attn.hook_z").expect("hook"),
        &saescope::sae::Overrides::default(),
        true,
        Device::Cpu,
        Kind::Float,
    )
    .expect("kk SAE loads");
    assert_eq!((sae.cfg.d_in, sae.d_sae, sae.cfg.hook_name.as_deref()), (48, 96, Some("blocks.1.attn.hook_z")));
    let r = reference();
    let x: Vec<f32> = rows(&r["x"]).into_iter().flatten().map(|v| v as f32).collect();
    let got = sae.encode(&Tensor::from_slice(&x).view([5, 48]));
    let got: Vec<Vec<f32>> = Vec::try_from(got).expect("rows");
    let want = rows(&r["encode"]);
    let mut firing = 0;
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!(common::close(f64::from(*g), *w, 1e-4), "{g} vs SAELens {w}");
        firing += usize::from(*w > 0.0);
    }
    assert!(firing > 50, "the inputs fire the SAE ({firing})");
    assert_eq!(sae.direction(7).expect("decoder").size(), [48]);
}

#[test]
fn views_offsets_and_kinds_come_back_with_their_values() {
    let pt = saescope::weights::torch_pt::open(&common::fixture("pt/views.pt")).expect("views");
    let r = reference();
    for name in ["transposed", "sliced", "whole", "bf16", "ints"] {
        let want = rows(&r["views"][name]);
        let shape = [want.len(), want[0].len()];
        let t = pt.tensor(name, &shape).expect(name).to_kind(Kind::Double);
        let got: Vec<Vec<f64>> = Vec::try_from(t).expect("rows");
        assert_eq!(got, want, "{name}");
    }
    let e = pt.tensor("whole", &[10, 6]).expect_err("wrong shape").to_string();
    assert!(e.contains("whole has shape [6, 10], [10, 6] expected"), "{e}");
}

#[test]
fn a_checkpoint_that_would_run_code_is_refused() {
    let marker = std::path::Path::new("/tmp/saescope-pwned");
    let _ = std::fs::remove_file(marker);
    let files = SaeFiles { cfg: common::fixture("pt/kk_L1_cfg.json"), weights: common::fixture("pt/evil.pt") };
    let e = Sae::load(
        &files,
        48,
        saescope::model::hooks::HookPoint::parse("blocks.1.attn.hook_z").expect("hook"),
        &saescope::sae::Overrides::default(),
        false,
        Device::Cpu,
        Kind::Float,
    )
    .err()
    .expect("refused");
    let chain = said(&e);
    assert!(chain.contains("evil.pt") && chain.contains("posix.system") && chain.contains("never runs code"), "{chain}");
    assert!(!marker.exists(), "nothing ran");
}

#[test]
fn damaged_checkpoints_are_errors_not_panics() {
    let bytes = std::fs::read(common::fixture("pt/kk_L1.pt")).expect("read");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("cut.pt");
    // Cut anywhere (coarsely, then byte by byte near the end where the directory is), or
    // with a byte flipped in the pickle: an error every time.
    let cuts: Vec<usize> = (0..bytes.len()).step_by(997).chain(bytes.len().saturating_sub(300)..bytes.len()).collect();
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).expect("write");
        assert!(saescope::weights::torch_pt::open(&path).is_err(), "cut at {cut} of {}", bytes.len());
    }
    std::fs::write(&path, b"\x80\x02}q\x00.").expect("write");
    let e = said(&saescope::weights::torch_pt::open(&path).err().expect("legacy"));
    assert!(e.contains("legacy"), "{e}");
    let pkl = bytes.windows(8).position(|w| w == b"data.pkl").expect("data.pkl");
    for flip in (pkl..bytes.len()).step_by(131).take(200) {
        let mut b = bytes.clone();
        b[flip] ^= 0x5a;
        std::fs::write(&path, &b).expect("write");
        let _ = saescope::weights::torch_pt::open(&path);
    }
}

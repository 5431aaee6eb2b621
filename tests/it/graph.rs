//! Attribution graphs (src/graph/): the rows are what perturbing each source does in the
//! frozen replacement model, the check circuit-tracer's own tests make.

use crate::common::{model_engine, tiny_transcoders};
use saescope::graph::replacement::{Replacement, Source, Target};
use saescope::graph::transcoders::load_dir;

const PROMPT: &str = "The cat sat on the mat because it was";

#[test]
fn every_row_is_what_perturbing_its_source_does() {
    let e = model_engine();
    for skip in [false, true] {
        let tcs = load_dir(tiny_transcoders(skip), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
        let tokens = e.tokenizer.encode_with_bos(PROMPT).expect("tokens");
        let r = Replacement::new(e.model.as_ref(), &tcs, &tokens, 1).expect("replacement");
        assert!(r.active.len() > 40, "{} active features", r.active.len());
        assert!(r.active.iter().all(|a| a.pos > 0), "BOS carries no feature node");
        // The replacement model computes the model's own logits.
        let logits = Vec::<f32>::try_from(&r.last_logits).expect("logits");
        let top = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).expect("a logit") as u32;
        let mean = logits.iter().map(|&x| f64::from(x)).sum::<f64>() / logits.len() as f64;
        let clean_logit = r.perturbed(None, &[Target::Logit(top)]).expect("clean")[0];
        assert!((clean_logit - (f64::from(logits[top as usize]) - mean)).abs() < 1e-4, "{clean_logit} vs {}", f64::from(logits[top as usize]) - mean);
        let mut targets: Vec<Target> = (0..r.active.len()).step_by(9).map(Target::Feature).collect();
        targets.push(Target::Logit(top));
        let rows = r.rows(&targets, 5).expect("rows");
        let base = r.perturbed(None, &targets).expect("base");
        let mut sources: Vec<Source> = (0..r.active.len()).step_by(11).map(Source::Feature).collect();
        sources.extend((0..r.n_pos()).map(Source::Token));
        sources.extend([Source::Error { layer: 0, pos: 2 }, Source::Error { layer: 5, pos: r.n_pos() - 1 }, Source::Error { layer: 10, pos: 3 }]);
        let scale = rows.iter().flatten().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
        let mut checked = 0;
        // A large push, so the change stands well above the f32 rounding of the values it
        // is the difference of; the model is linear there, so any size is exact.
        const PUSH: f64 = 64.0;
        for s in sources {
            let moved = r.perturbed(Some((s, PUSH)), &targets).expect("perturbed");
            for (j, row) in rows.iter().enumerate() {
                let want = f64::from(row[r.column(s)]);
                let got = (moved[j] - base[j]) / PUSH;
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(scale * 1e-2),
                    "skip={skip} source {s:?} target {:?}: moved {got}, row says {want}",
                    targets[j]
                );
                checked += usize::from(want.abs() > 1e-6);
            }
        }
        assert!(checked > 50, "only {checked} nonzero edges checked");
    }
}

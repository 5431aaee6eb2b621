//! Testing what a graph claims: set chosen features to new values and see the prediction
//! move, as circuit-tracer's `feature_intervention` does. The model itself runs (its MLPs,
//! its norms); at each layer with an intervention the MLP's output moves by
//! (new value - the feature's activation in this run) times the feature's decoder row (a
//! cross-layer transcoder's feature: each later layer's by its row there), so earlier
//! interventions reach later layers' activations. Attention patterns are frozen at
//! the clean run's, as in the graph, or left free.

use crate::graph::replacement::reads_at;
use crate::graph::transcoders::Transcoders;
use crate::model::hooks::{HookPoint, Site};
use crate::model::{Family, Freeze, Frozen, HookEdit};
use color_eyre::eyre::{bail, eyre, Result};
use std::cell::RefCell;
use tch::{Device, Kind, Tensor};

/// One feature set to a value at one position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intervention {
    pub layer: usize,
    pub pos: usize,
    pub feature: u32,
    pub value: f32,
}

impl Intervention {
    /// `L:F@POS` (layer, feature, position), the form `--ablate` takes; value 0.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || eyre!("{s:?} is not LAYER:FEATURE@POSITION (e.g. 3:120@5)");
        let (lf, pos) = s.split_once('@').ok_or_else(bad)?;
        let (layer, feature) = lf.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            layer: layer.trim().parse().map_err(|_| bad())?,
            feature: feature.trim().parse().map_err(|_| bad())?,
            pos: pos.trim().parse().map_err(|_| bad())?,
            value: 0.0,
        })
    }
}

/// An intervention made so far: its position, its decoder rows by the layer each is written
/// to, and how far it moves the feature (its new value less its activation in this run).
type Made = (i64, Vec<(usize, Tensor)>, f64);

/// The logits at the last position [vocab] (f32, CPU) with `interventions` made;
/// `freeze_attention` keeps the clean run's attention patterns. None made: the model's own.
pub fn logits(model: &dyn Family, transcoders: &Transcoders, tokens: &[u32], interventions: &[Intervention], freeze_attention: bool) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let n_layers = model.n_layers();
    for i in interventions {
        if i.layer >= n_layers || i.pos >= tokens.len() || i.feature as usize >= transcoders.layers.get(i.layer).map_or(0, |t| t.d_sae) {
            bail!("no feature {}:{} at position {} here ({} layers, {} positions)", i.layer, i.feature, i.pos, n_layers, tokens.len());
        }
    }
    let t = tokens.len() as i64;
    let input = Tensor::from_slice(&tokens.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).view([1, t]).to_device(model.device());
    let freeze = Freeze::of(if freeze_attention { Frozen::Patterns } else { Frozen::Nothing });
    if freeze_attention {
        // The clean run, whose patterns the intervened run replays.
        let _clean = model.frozen_forward(&input, &freeze, &mut HookEdit::observe(Vec::new(), |_, _| Ok(())))?;
    }
    let mut layers: Vec<usize> = interventions.iter().map(|i| i.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    // A cross-layer transcoder's feature writes every layer from its own on.
    if let (Some(&first), Some(_)) = (layers.first(), &transcoders.cross) {
        layers = (first..n_layers).collect();
    }
    let points: Vec<HookPoint> = layers.iter().flat_map(|&l| [reads_at(&transcoders.layers[l], l), HookPoint::new(l, Site::MlpOut)]).collect();
    let input_of: RefCell<Option<Tensor>> = RefCell::new(None);
    let made: RefCell<Vec<Made>> = RefCell::new(Vec::new());
    let last = {
        let mut edit = HookEdit::new(points, |p: HookPoint, v: Tensor| -> Result<Tensor> {
            if p.site != Site::MlpOut {
                *input_of.borrow_mut() = Some(v.shallow_clone());
                return Ok(v);
            }
            let x = input_of.borrow_mut().take().ok_or_else(|| eyre!("internal: MLP output before its input"))?;
            let here: Vec<&Intervention> = interventions.iter().filter(|i| i.layer == p.layer).collect();
            if !here.is_empty() {
                let acts = transcoders.layers[p.layer].encode(&x.get(0));
                for i in here {
                    let now = acts.get(i.pos as i64).get(i64::from(i.feature)).double_value(&[]);
                    made.borrow_mut().push((i.pos as i64, transcoders.directions(i.layer, i.feature)?, f64::from(i.value) - now));
                }
            }
            let out = v.copy();
            for (pos, rows, delta) in made.borrow().iter() {
                for (_, d) in rows.iter().filter(|(j, _)| *j == p.layer) {
                    let mut row = out.get(0).get(*pos);
                    row += d.to_kind(out.kind()) * *delta;
                }
            }
            Ok(out)
        });
        model.frozen_forward(&input, &freeze, &mut edit)?
    };
    Ok(crate::model::unembed_f32(&last.get(0).get(t - 1).to_kind(Kind::Float), &model.unembedding()?).to_device(Device::Cpu))
}

/// Each wanted feature's activation on the clean prompt: one forward, read at the layers
/// the features are at (checked as `logits` checks them).
fn activations(model: &dyn Family, transcoders: &Transcoders, tokens: &[u32], wanted: &[Intervention]) -> Result<Vec<f32>> {
    let _guard = tch::no_grad_guard();
    let mut layers: Vec<usize> = wanted.iter().map(|i| i.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    let points: Vec<HookPoint> = layers.iter().filter_map(|&l| transcoders.layers.get(l).map(|tc| reads_at(tc, l))).collect();
    let t = tokens.len() as i64;
    let input = Tensor::from_slice(&tokens.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).view([1, t]).to_device(model.device());
    let seen: RefCell<Vec<(usize, Tensor)>> = RefCell::new(Vec::new());
    let _logits = model.frozen_forward(
        &input,
        &Freeze::of(Frozen::Nothing),
        &mut HookEdit::observe(points, |p, v| {
            seen.borrow_mut().push((p.layer, v.get(0)));
            Ok(())
        }),
    )?;
    let seen = seen.into_inner();
    wanted
        .iter()
        .map(|i| {
            let (_, x) = seen.iter().find(|(l, _)| *l == i.layer).ok_or_else(|| eyre!("no transcoder at layer {}", i.layer))?;
            let sae = &transcoders.layers[i.layer];
            if i.pos >= tokens.len() || i.feature as usize >= sae.d_sae {
                bail!("no feature {}:{} at position {} here ({} positions)", i.layer, i.feature, i.pos, tokens.len());
            }
            Ok(sae.encode(&x.get(i.pos as i64)).get(i64::from(i.feature)).double_value(&[]) as f32)
        })
        .collect()
}

/// One token's probability and logit before and after, `[probability, logit]` each.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Moved {
    pub token: u32,
    pub text: String,
    pub clean: [f32; 2],
    pub frozen_attention: [f32; 2],
    pub free_attention: [f32; 2],
}

/// What an intervention did: each feature's clean activation and the value it was set to,
/// and the top tokens of the clean run and of both intervened runs, each once.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub set: Vec<(Intervention, f32)>,
    pub tokens: Vec<Moved>,
}

/// Sets each feature in `wanted` to `scale` times its clean activation and compares the
/// top logits: clean, with attention frozen (as in the graph) and free.
pub fn compare(engine: &crate::pipeline::Engine, transcoders: &Transcoders, ids: &[u32], wanted: &[Intervention], scale: f64) -> Result<Compared> {
    let model = engine.model.as_ref();
    let clean = activations(model, transcoders, ids, wanted)?;
    let set: Vec<(Intervention, f32)> = wanted.iter().zip(clean).map(|(i, a)| (Intervention { value: (f64::from(a) * scale) as f32, ..*i }, a)).collect();
    let applied: Vec<Intervention> = set.iter().map(|s| s.0).collect();
    let run = |wanted: &[Intervention], frozen: bool| -> Result<(Vec<f32>, Vec<f32>)> {
        let l = logits(model, transcoders, ids, wanted, frozen)?;
        Ok((Vec::<f32>::try_from(l.softmax(-1, Kind::Float))?, Vec::<f32>::try_from(&l)?))
    };
    let (clean, frozen, free) = (run(&[], false)?, run(&applied, true)?, run(&applied, false)?);
    let top = |p: &[f32]| -> Vec<usize> {
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        order.truncate(5);
        order
    };
    let mut tokens: Vec<usize> = Vec::new();
    for t in top(&clean.0).into_iter().chain(top(&frozen.0)).chain(top(&free.0)) {
        if !tokens.contains(&t) {
            tokens.push(t);
        }
    }
    let tokens = tokens
        .iter()
        .map(|&t| Moved {
            token: t as u32,
            text: engine.tokenizer.token_strings(&[t as u32]).concat(),
            clean: [clean.0[t], clean.1[t]],
            frozen_attention: [frozen.0[t], frozen.1[t]],
            free_attention: [free.0[t], free.1[t]],
        })
        .collect();
    Ok(Compared { set, tokens })
}

//! A synthetic Gemma Scope 2 `examples.safetensors` beside each synthetic SAE, in the real
//! file's layout (neuronpedia/scope_examples.rs): the calibration texts as its token corpus,
//! and per feature its strongest activations over them, its firing rate and the logits its
//! decoder row writes, all computed from the synthetic model and SAE themselves.

use crate::model::hooks::HookPoint;
use crate::model::Family;
use crate::sae::{Overrides, Sae};
use crate::source::SaeFiles;
use color_eyre::eyre::{eyre, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Examples kept per feature (the real files keep 1,000), and logits per side (10).
const EXAMPLES: usize = 32;
const LOGITS: usize = 10;
/// Features whose logits are computed at once (a [chunk, vocab] product: 0.5 GB of f32 at
/// a 262k vocabulary; fewer, larger products widen a bf16 unembedding fewer times).
const CHUNK: i64 = 512;

/// Writes `dir/examples.safetensors` for the SAE in `dir` (`files`) at `hook`, over `seqs`
/// (token ids, BOS first) whose activations at `hook` are `x` [tokens, d], stacked in order.
pub fn write(dir: &Path, files: &SaeFiles, hook: HookPoint, model: &dyn Family, seqs: &[Vec<u32>], x: &Tensor) -> Result<()> {
    let (_, d) = x.size2()?;
    let sae = Sae::load(files, d as usize, hook, &Overrides::default(), true, Device::Cpu, Kind::Float)?;
    let acts = sae.encode(x);
    let width = sae.d_sae;
    // Each row's (sequence, position); position 0 (BOS) never an example nor counted.
    let at: Vec<(i32, i32)> = seqs.iter().enumerate().flat_map(|(s, ids)| (0..ids.len()).map(move |p| (s as i32, p as i32))).collect();
    let real = Tensor::from_slice(&at.iter().map(|&(_, p)| p > 0).collect::<Vec<_>>());
    let acts = acts * real.unsqueeze(1).to_kind(Kind::Float);
    let n_real = real.sum(Kind::Float).double_value(&[]);
    let k = (EXAMPLES as i64).min(acts.size()[0]);
    let (top, rows) = acts.topk(k, 0, true, true);
    let (top, rows) = (top.tr().contiguous(), rows.tr().contiguous());
    let top_v: Vec<f32> = Vec::try_from(top.view([-1]))?;
    let rows_v: Vec<i64> = Vec::try_from(rows.view([-1]))?;
    let (mut seq_ids, mut positions, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (&v, &r) in top_v.iter().zip(&rows_v) {
        // No example where the feature did not fire: the real files mark it so.
        let (s, p) = if v > 0.0 { at[r as usize] } else { (-1, -1) };
        seq_ids.push(s);
        positions.push(p);
        values.push(v.max(0.0));
    }
    let freq: Vec<f32> = Vec::try_from(acts.gt(0.0).sum_dim_intlist([0i64].as_slice(), false, Kind::Float) / n_real.max(1.0))?;
    let (mut top_tokens, mut top_logits, mut bottom_tokens, mut bottom_logits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let w_dec = sae.decoder()?.shallow_clone();
    for first in (0..width as i64).step_by(CHUNK as usize) {
        // In the model's dtype (a bf16 12B's o_proj maps hook_z rows); the lens reads in f32.
        let dirs = model.to_residual(hook, &w_dec.narrow(0, first, CHUNK.min(width as i64 - first)).to_kind(model.kind()))?;
        let logits = model.logit_lens(&dirs)?.to_kind(Kind::Float);
        for (largest, (ids, vals)) in [(true, (&mut top_tokens, &mut top_logits)), (false, (&mut bottom_tokens, &mut bottom_logits))] {
            let (v, i) = logits.topk(LOGITS as i64, -1, largest, true);
            ids.extend(Vec::<i64>::try_from(i.view([-1]))?.into_iter().map(|t| t as i32));
            vals.extend(Vec::<f32>::try_from(v.view([-1]))?);
        }
    }
    let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
    // Shorter texts padded with <pad> (id 0), as the corpus's fixed-length rows.
    let tokens: Vec<i32> = seqs.iter().flat_map(|s| (0..len).map(|i| s.get(i).map_or(0, |&t| t as i32))).collect();
    let ints = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let kk = k as usize;
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        ("tokens", Dtype::I32, vec![seqs.len(), len], ints(&tokens)),
        ("seq_ids", Dtype::I32, vec![width, kk], ints(&seq_ids)),
        ("positions", Dtype::I32, vec![width, kk], ints(&positions)),
        ("activations", Dtype::F32, vec![width, kk], floats(&values)),
        ("feature_frequencies", Dtype::F32, vec![width], floats(&freq)),
        ("top_tokens", Dtype::I32, vec![width, LOGITS], ints(&top_tokens)),
        ("top_logits", Dtype::F32, vec![width, LOGITS], floats(&top_logits)),
        ("bottom_tokens", Dtype::I32, vec![width, LOGITS], ints(&bottom_tokens)),
        ("bottom_logits", Dtype::F32, vec![width, LOGITS], floats(&bottom_logits)),
    ];
    let path = dir.join(crate::neuronpedia::scope_examples::FILE);
    let views = tensors
        .iter()
        .map(|(n, dt, shape, bytes)| Ok((n.to_string(), TensorView::new(*dt, shape.clone(), bytes)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| eyre!("building {}: {e:?}", path.display()))?;
    safetensors::serialize_to_file(views, &None, &path).map_err(|e| eyre!("writing {}: {e:?}", path.display()))
}

//! Inputs -> activations: tokenise the samples, run the model once per batch for all
//! hooks, SAE-encode every token, and average each text's real tokens (encode-then-mean).

use crate::activations::{ActivationSet, SparseVec, TextActivations};
use crate::config::{hook_name, normalize_layers, Gpt2Config};
use crate::model::Gpt2;
use crate::progress::{Progress, ProgressSink};
use crate::sae::Sae;
use crate::samples::Samples;
use crate::source::Source;
use crate::tensors::SafeFile;
use crate::tokenizer::Gpt2Tokenizer;
use color_eyre::eyre::{bail, Result};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub include_bos: bool,
    /// Cut texts longer than n_ctx instead of failing.
    pub truncate: bool,
    /// Padded tokens per batch; bounds the [tokens, d_sae] activation buffer.
    pub batch_tokens: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { include_bos: false, truncate: false, batch_tokens: 2048 }
    }
}

pub struct Engine {
    pub model: Gpt2,
    pub tokenizer: Gpt2Tokenizer,
    /// (layer, SAE), ascending by layer.
    pub saes: Vec<(usize, Sae)>,
    pub model_label: String,
    pub sae_label: String,
}

pub fn parse_device(s: &str) -> Result<Device> {
    Ok(match s {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => {
            if !tch::Cuda::is_available() {
                bail!("--device cuda: no CUDA device is visible (build with `--features cuda` on a GPU machine, or use --device cpu)");
            }
            Device::Cuda(0)
        }
        other => bail!("--device {other:?}: expected auto, cpu or cuda"),
    })
}

impl Engine {
    /// Resolves (downloading if needed) and loads the model blocks and SAEs `layers` need.
    pub fn load(model: &Source, saes: &Source, layers: &[usize], device: Device, with_decoder: bool, progress: &ProgressSink) -> Result<Self> {
        if layers.is_empty() {
            bail!("no layers requested; pass --layers, e.g. --layers 6,8,10,11");
        }
        progress.stage(format!("resolving model {}", model.label()));
        let files = model.model_files(progress)?;
        let cfg = Gpt2Config::from_file(&files.config)?;
        if let Some(&bad) = layers.iter().find(|&&l| l > cfg.n_layer) {
            bail!("layer {bad} does not exist: the model has {} blocks, so layers are 0..={}", cfg.n_layer, cfg.n_layer);
        }
        let tokenizer = Gpt2Tokenizer::load(files.tokenizer.as_deref())?;
        let n_layer = cfg.n_layer;
        let d_model = cfg.n_embd;
        let n_blocks = layers.iter().copied().max().unwrap_or(0);
        progress.stage(format!("loading model ({n_blocks} of {n_layer} blocks)"));
        let gpt = Gpt2::load(cfg, SafeFile::open(&files.weights)?, n_blocks, device)?;
        let sorted = normalize_layers(layers);
        let mut loaded = Vec::with_capacity(sorted.len());
        for &layer in &sorted {
            progress.stage(format!("loading layer {layer} SAE"));
            let sf = saes.sae_files(layer, n_layer, progress)?;
            loaded.push((layer, Sae::load(&sf, d_model, &hook_name(layer, n_layer), with_decoder, device)?));
        }
        let d_sae = loaded[0].1.d_sae;
        if let Some((l, s)) = loaded.iter().find(|(_, s)| s.d_sae != d_sae) {
            bail!("SAE widths differ: layer {} has {d_sae} features, layer {l} has {}; use one release", loaded[0].0, s.d_sae);
        }
        Ok(Self { model: gpt, tokenizer, saes: loaded, model_label: model.label(), sae_label: saes.label() })
    }

    pub fn layers(&self) -> Vec<usize> {
        self.saes.iter().map(|(l, _)| *l).collect()
    }

    pub fn d_sae(&self) -> usize {
        self.saes.first().map_or(0, |(_, s)| s.d_sae)
    }

    /// Token ids with BOS of every text, checked against n_ctx.
    pub fn tokenize(&self, samples: &Samples, opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<Vec<u32>>> {
        let n_ctx = self.model.cfg.n_positions;
        let mut out = Vec::with_capacity(samples.n_texts());
        for c in &samples.categories {
            for (i, text) in c.texts.iter().enumerate() {
                let mut ids = self.tokenizer.encode_with_bos(text)?;
                if ids.len() > n_ctx {
                    let snippet: String = text.chars().take(40).collect();
                    if !opts.truncate {
                        bail!(
                            "text {} of category {:?} ({snippet:?}...) has {} tokens with BOS, over the model's n_ctx {n_ctx}; shorten it or pass --truncate",
                            i + 1,
                            c.name,
                            ids.len()
                        );
                    }
                    progress.stage(format!("warning: truncated text {} of {:?} from {} to {n_ctx} tokens", i + 1, c.name, ids.len()));
                    ids.truncate(n_ctx);
                }
                out.push(ids);
            }
        }
        Ok(out)
    }

    /// Mean SAE activations per text and layer for every sample text.
    pub fn run(&self, samples: &Samples, opts: &RunOptions, progress: &ProgressSink) -> Result<ActivationSet> {
        let tokens = self.tokenize(samples, opts, progress)?;
        let categories: Vec<usize> =
            samples.categories.iter().enumerate().flat_map(|(ci, c)| std::iter::repeat_n(ci, c.texts.len())).collect();
        let texts: Vec<&String> = samples.categories.iter().flat_map(|c| c.texts.iter()).collect();
        let vectors = self.text_vectors(&tokens, opts, progress)?;
        Ok(ActivationSet {
            layers: self.layers(),
            d_sae: self.d_sae(),
            include_bos: opts.include_bos,
            categories: samples.categories.iter().map(|c| c.name.clone()).collect(),
            texts: vectors
                .into_iter()
                .enumerate()
                .map(|(i, (n_tokens, layers))| TextActivations { category: categories[i], text: texts[i].clone(), n_tokens, layers })
                .collect(),
        })
    }

    /// Per text: (tokens averaged over, one mean vector per layer).
    pub fn text_vectors(&self, tokens: &[Vec<u32>], opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<(usize, Vec<SparseVec>)>> {
        let _guard = tch::no_grad_guard();
        let mut results: Vec<Option<(usize, Vec<SparseVec>)>> = vec![None; tokens.len()];
        let (mut done, total) = (0u64, tokens.len() as u64);
        for batch in plan(tokens, opts.batch_tokens) {
            let packed = pack(batch.iter().map(|&i| tokens[i].as_slice()), opts.include_bos, self.tokenizer.bos);
            for (&i, v) in batch.iter().zip(self.encode_packed(&packed)?) {
                results[i] = Some(v);
            }
            done += batch.len() as u64;
            progress.send(Progress::Fraction { label: "encoding texts".into(), done, total });
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Centred residuals of a packed batch at every loaded layer.
    pub fn residuals(&self, p: &Packed) -> Result<Vec<Tensor>> {
        self.model.residuals(&p.ids, &p.mask, &self.layers())
    }

    /// Per-text mean feature vectors of one packed batch.
    pub fn encode_packed(&self, p: &Packed) -> Result<Vec<(usize, Vec<SparseVec>)>> {
        let weights = p.weights.to_device(self.model.device());
        let mut per_layer: Vec<Vec<SparseVec>> = Vec::with_capacity(self.saes.len());
        for (r, (_, sae)) in self.residuals(p)?.iter().zip(&self.saes) {
            // Weights are 1/n on counted tokens and 0 on padding (and BOS unless asked
            // for): one bmm turns [b, t, d_sae] activations into per-text means.
            let means = weights.bmm(&sae.encode(r)).squeeze_dim(1).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let flat: Vec<f32> = Vec::<f32>::try_from(means.view([-1]))?;
            per_layer.push(flat.chunks(sae.d_sae).map(SparseVec::from_dense).collect());
        }
        Ok((0..p.n_tokens.len()).map(|r| (p.n_tokens[r], per_layer.iter().map(|l| l[r].clone()).collect())).collect())
    }
}

/// Groups text indices into batches of at most `batch_tokens` padded tokens, longest
/// texts first so each batch's padding stays small.
pub fn plan(tokens: &[Vec<u32>], batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].len()));
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let max_len = tokens[order[start]].len().max(1);
        let n = (batch_tokens / max_len).max(1).min(order.len() - start);
        out.push(order[start..start + n].to_vec());
        start += n;
    }
    out
}

/// A right-padded batch ready for the model.
pub struct Packed {
    /// [b, t] i64 token ids; padding repeats `pad`.
    pub ids: Tensor,
    /// [b, t] bool, true on real tokens.
    pub mask: Tensor,
    /// [b, 1, t] f32: 1/n on the tokens each text's mean counts, 0 elsewhere.
    pub weights: Tensor,
    /// Tokens each text's mean counts.
    pub n_tokens: Vec<usize>,
    /// Real (unpadded) tokens in the batch, BOS included.
    pub n_real: usize,
}

pub fn pack<'a>(rows: impl Iterator<Item = &'a [u32]>, include_bos: bool, pad: u32) -> Packed {
    let rows: Vec<&[u32]> = rows.collect();
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let b = rows.len();
    let mut ids = vec![pad as i64; b * t];
    let mut real = vec![false; b * t];
    let mut weights = vec![0f32; b * t];
    let mut n_tokens = Vec::with_capacity(b);
    let first = usize::from(!include_bos);
    for (r, row) in rows.iter().enumerate() {
        let n = row.len().saturating_sub(first);
        n_tokens.push(n);
        for (p, &id) in row.iter().enumerate() {
            ids[r * t + p] = id as i64;
            real[r * t + p] = true;
            if p >= first {
                weights[r * t + p] = 1.0 / n as f32;
            }
        }
    }
    let (bi, ti) = (b as i64, t as i64);
    Packed {
        ids: Tensor::from_slice(&ids).view([bi, ti]),
        mask: Tensor::from_slice(&real).view([bi, ti]),
        weights: Tensor::from_slice(&weights).view([bi, 1, ti]),
        n_tokens,
        n_real: rows.iter().map(|r| r.len()).sum(),
    }
}

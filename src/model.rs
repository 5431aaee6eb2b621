//! GPT-2 forward passes. `residuals` returns the residual stream the SAEs read at the
//! requested hooks and nothing more: it stops after the last block a hook needs and
//! computes no logits (the analysis, the corpus index). `forward_cached` runs every block
//! to next-token logits through GPT-2's tied unembedding, with a KV cache and a hook on the
//! residual at every layer (steering, attribution). `logit_lens` maps decoder directions
//! through ln_f's weight and the unembedding (a feature card's top logits).
//!
//! The SAEs were trained on TransformerLens's `hook_resid_pre` under its default weight
//! processing. `center_writing_weights` makes every write to the residual zero-mean over
//! d_model, so that stream equals HF's hidden state minus its per-token mean; `fold_ln`
//! and `center_unembed` do not change it. We therefore run the plain HF weights and centre
//! the residual at each hook, which is exact up to float rounding (README, "Method").

use crate::config::Gpt2Config;
use crate::hooks::{HookPoint, Processing, Site};
use crate::tensors::SafeFile;
use color_eyre::eyre::{bail, Result};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

struct Linear {
    /// HF's Conv1D layout: [in, out], applied as x @ w + b.
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        let shape = x.size();
        let (n_in, n_out) = (shape[shape.len() - 1], self.w.size()[1]);
        let flat = x.reshape([-1, n_in]);
        let mut out_shape = shape;
        if let Some(last) = out_shape.last_mut() {
            *last = n_out;
        }
        self.b.addmm(&flat, &self.w).reshape(&out_shape[..])
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

struct Block {
    ln_1: LayerNorm,
    c_attn: Linear,
    c_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
}

pub struct Gpt2 {
    pub cfg: Gpt2Config,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    device: Device,
    /// The compute dtype (`--dtype`): every weight is held in it.
    kind: Kind,
    /// Tensors may borrow the mapped file; it lives as long as the model.
    _file: Arc<SafeFile>,
}

/// Reads one tensor, accepting HF's optional `transformer.` prefix.
struct Loader<'a> {
    file: &'a Arc<SafeFile>,
    device: Device,
    kind: Kind,
}

impl Loader<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let candidates = [name.to_string(), format!("transformer.{name}")];
        let Some(found) = self.file.find(&candidates) else {
            bail!("{} has no tensor {name} (nor transformer.{name}); is it a GPT-2 model.safetensors?", self.file.path().display());
        };
        // f32 on CPU stays the zero-copy view of the mapped file (to_kind of the same kind is a no-op).
        Ok(self.file.tensor(&found, shape)?.to_device(self.device).to_kind(self.kind))
    }
    fn linear(&self, prefix: &str, n_in: usize, n_out: usize) -> Result<Linear> {
        Ok(Linear { w: self.get(&format!("{prefix}.weight"), &[n_in, n_out])?, b: self.get(&format!("{prefix}.bias"), &[n_out])? })
    }
    fn ln(&self, prefix: &str, d: usize) -> Result<LayerNorm> {
        Ok(LayerNorm { w: self.get(&format!("{prefix}.weight"), &[d])?, b: self.get(&format!("{prefix}.bias"), &[d])? })
    }
}

impl Gpt2 {
    /// Loads the embeddings and the first `n_blocks` blocks: a hook at layer L needs
    /// blocks 0..L, so later blocks are never read from disk.
    pub fn load(cfg: Gpt2Config, file: Arc<SafeFile>, n_blocks: usize, device: Device, kind: Kind) -> Result<Self> {
        if n_blocks > cfg.n_layer {
            bail!("asked for {n_blocks} blocks but the model has {}", cfg.n_layer);
        }
        let d = cfg.n_embd;
        let l = Loader { file: &file, device, kind };
        let wte = l.get("wte.weight", &[cfg.vocab_size, d])?;
        let wpe = l.get("wpe.weight", &[cfg.n_positions, d])?;
        let blocks = (0..n_blocks)
            .map(|i| {
                let p = format!("h.{i}");
                Ok(Block {
                    ln_1: l.ln(&format!("{p}.ln_1"), d)?,
                    c_attn: l.linear(&format!("{p}.attn.c_attn"), d, 3 * d)?,
                    c_proj: l.linear(&format!("{p}.attn.c_proj"), d, d)?,
                    ln_2: l.ln(&format!("{p}.ln_2"), d)?,
                    c_fc: l.linear(&format!("{p}.mlp.c_fc"), d, 4 * d)?,
                    mlp_proj: l.linear(&format!("{p}.mlp.c_proj"), 4 * d, d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        file.release_if_copied(device, kind);
        Ok(Self { cfg, wte, wpe, blocks, device, kind, _file: file })
    }

    /// Blocks loaded: all of them (`cfg.n_layer`) for generation.
    pub fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Logits that residual directions `dirs` [n, d_model] write directly, the way
    /// Neuronpedia's "top logits" and TransformerLens's `W_dec[f] @ model.W_U` compute them.
    /// TL's default processing builds W_U as `ln_f.w[:, None] * wte^T` (`fold_ln`), minus its
    /// mean over d_model (fold_ln's centring, LayerNorm output being zero-mean), minus its
    /// mean over the vocabulary (`center_unembed`). The d_model centring is the same as
    /// centring `dir`, so: `((dir - mean(dir)) * ln_f.w) @ wte^T`, minus its mean over the
    /// vocabulary. [n, vocab]. ln_f is read on first use only.
    pub fn logit_lens(&self, dirs: &Tensor) -> Result<Tensor> {
        let l = Loader { file: &self._file, device: self.device, kind: self.kind };
        let ln_f = l.get("ln_f.weight", &[self.cfg.n_embd])?;
        let logits = (centre(&dirs.to_device(self.device)) * ln_f).matmul(&self.wte.tr());
        Ok(&logits - logits.mean_dim(-1, true, Kind::Float))
    }

    /// Centred residual streams at `layers` (each in 0..=loaded blocks; layer n_layer is the
    /// final resid_post), in the order given, each [batch, seq, d_model]: TransformerLens's
    /// `hook_resid_pre` under its default processing.
    /// `tokens` [batch, seq] i64, right-padded; `mask` [batch, seq] bool, true on real tokens.
    pub fn residuals(&self, tokens: &Tensor, mask: &Tensor, layers: &[usize]) -> Result<Vec<Tensor>> {
        let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::new(l, Site::ResidPre)).collect();
        self.hooks(tokens, mask, &points, Processing::DEFAULT)
    }

    /// The values at `points`, in the order given, each [batch, seq, d] (`attn.hook_z`:
    /// d = n_head * d_head), as TransformerLens computes them under `processing`, in one
    /// pass that stops inside the last block any point needs. `tokens` [batch, seq] i64,
    /// right-padded; `mask` [batch, seq] bool, true on real tokens.
    pub fn hooks(&self, tokens: &Tensor, mask: &Tensor, points: &[HookPoint], processing: Processing) -> Result<Vec<Tensor>> {
        let each: Vec<(HookPoint, Processing)> = points.iter().map(|&p| (p, processing)).collect();
        self.hooks_each(tokens, mask, &each)
    }

    /// `hooks`, each point under its own processing (SAEs of several releases in one run):
    /// still one pass, as the processings differ only in what is subtracted at the end.
    pub fn hooks_each(&self, tokens: &Tensor, mask: &Tensor, requested: &[(HookPoint, Processing)]) -> Result<Vec<Tensor>> {
        let points: Vec<HookPoint> = requested.iter().map(|(p, _)| *p).collect();
        let needed = points.iter().map(HookPoint::blocks_needed).max().unwrap_or(0);
        if needed > self.blocks.len() {
            bail!("{} needs {needed} blocks but only {} are loaded", points.iter().max().map(ToString::to_string).unwrap_or_default(), self.blocks.len());
        }
        let (b, t) = tokens.size2()?;
        if t as usize > self.cfg.n_positions {
            bail!("sequence of {t} tokens exceeds n_ctx {}", self.cfg.n_positions);
        }
        let tokens = tokens.to_device(self.device);
        // Causal and key-padding masks in one boolean [b, 1, t, t]; query rows of padding
        // still see position 0 (BOS), so no row is fully masked and no NaN appears.
        let causal = Tensor::ones([t, t], (Kind::Bool, self.device)).tril(0);
        let keys = mask.to_device(self.device).view([b, 1, 1, t]);
        let attn_mask = causal.view([1, 1, t, t]).logical_and(&keys);
        let write = |slot: usize, x: &Tensor| as_written(x, requested[slot].1);

        let mut h = self.wte.index_select(0, &tokens.view([-1])).view([b, t, -1]) + self.wpe.narrow(0, 0, t);
        let mut out: Vec<Option<Tensor>> = (0..points.len()).map(|_| None).collect();
        for i in 0..=needed {
            let here = |site: Site| points.iter().enumerate().filter(move |(_, p)| p.layer == i && p.site == site).map(|(slot, _)| slot);
            for slot in here(Site::ResidPre) {
                out[slot] = Some(write(slot, &h));
            }
            if i >= needed {
                break;
            }
            let inside = self.block_inside(&self.blocks[i], &h, &attn_mask);
            for (site, value) in
                [(Site::AttnOut, &inside.attn_out), (Site::ResidMid, &inside.mid), (Site::MlpOut, &inside.mlp_out), (Site::ResidPost, &inside.post)]
            {
                for slot in here(site) {
                    out[slot] = Some(write(slot, value));
                }
            }
            for slot in here(Site::AttnZ) {
                let z = if requested[slot].1.fold_value_biases { &inside.z - self.value_bias(&self.blocks[i]) } else { inside.z.shallow_clone() };
                out[slot] = Some(z.flatten(2, 3));
            }
            // TransformerLens's hook_normalized is before the affine map, folded or not.
            for slot in here(Site::Ln2Normalized) {
                out[slot] = Some(inside.mid.layer_norm([self.cfg.n_embd as i64], None::<&Tensor>, None::<&Tensor>, self.cfg.layer_norm_epsilon, false));
            }
            h = inside.post;
        }
        out.into_iter().map(|o| o.ok_or_else(|| color_eyre::eyre::eyre!("internal: hook not filled"))).collect()
    }

    /// What `fold_value_biases` moves out of each head's values: `ln_1.b @ W_V + b_V`
    /// [n_head, d_head] (ln_1's bias reaches the values through W_V).
    fn value_bias(&self, blk: &Block) -> Tensor {
        let d = self.cfg.n_embd as i64;
        let w_v = blk.c_attn.w.narrow(1, 2 * d, d);
        let b_v = blk.c_attn.b.narrow(0, 2 * d, d);
        (blk.ln_1.b.matmul(&w_v) + b_v).view([self.cfg.n_head as i64, self.cfg.d_head() as i64])
    }

    /// One block, keeping what a hook inside it may read (HF's own values).
    fn block_inside(&self, blk: &Block, h: &Tensor, attn_mask: &Tensor) -> Inside {
        let (b, t, d) = (h.size()[0], h.size()[1], self.cfg.n_embd as i64);
        let (nh, dh) = (self.cfg.n_head as i64, self.cfg.d_head() as i64);
        let eps = self.cfg.layer_norm_epsilon;
        let x = h.layer_norm([d], Some(&blk.ln_1.w), Some(&blk.ln_1.b), eps, false);
        let qkv = blk.c_attn.forward(&x);
        let heads = |i: i64| qkv.narrow(2, i * d, d).view([b, t, nh, dh]).transpose(1, 2);
        let a = Tensor::scaled_dot_product_attention(&heads(0), &heads(1), &heads(2), Some(attn_mask), 0.0, false, None, false);
        let z = a.transpose(1, 2);
        let attn_out = blk.c_proj.forward(&z.contiguous().view([b, t, d]));
        let mid = h + &attn_out;
        let x = mid.layer_norm([d], Some(&blk.ln_2.w), Some(&blk.ln_2.b), eps, false);
        let mlp_out = blk.mlp_proj.forward(&blk.c_fc.forward(&x).gelu("tanh"));
        let post = &mid + &mlp_out;
        Inside { z, attn_out, mid, mlp_out, post }
    }
}

impl Gpt2 {
    /// A direction in `hook`'s space as what it adds to the residual stream: itself for
    /// the residual and what attention and the MLP write, and for `attn.hook_z` (heads
    /// concatenated) through the block's W_O, as TransformerLens reads an attention SAE's
    /// decoder. The MLP's normalised input has no such map.
    pub fn to_residual(&self, hook: HookPoint, dir: &Tensor) -> Result<Tensor> {
        match hook.site {
            Site::AttnZ => {
                let blk = self.blocks.get(hook.layer).ok_or_else(|| color_eyre::eyre::eyre!("internal: block {} is not loaded", hook.layer))?;
                Ok(dir.matmul(&blk.c_proj.w))
            }
            Site::Ln2Normalized => bail!("{hook} is the MLP's normalised input, which the residual stream does not receive: no logit lens"),
            _ => Ok(dir.shallow_clone()),
        }
    }
}

/// A block's values that hooks read, before any processing: `z` [b, t, n_head, d_head].
struct Inside {
    z: Tensor,
    attn_out: Tensor,
    mid: Tensor,
    mlp_out: Tensor,
    post: Tensor,
}

/// Keys and values of every position seen so far, per block, so generation feeds one new
/// token at a time instead of the whole sequence.
#[derive(Default)]
pub struct KvCache {
    /// Per block: [1, n_head, positions, d_head].
    kv: Vec<(Tensor, Tensor)>,
    len: i64,
}

impl KvCache {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A change to the residual entering block `layer` (`layer == n_layer`: after the last
/// block, before ln_f), given the HF residual [positions, d_model] of the new positions.
pub type ResidHook<'a> = dyn FnMut(usize, Tensor) -> Result<Tensor> + 'a;

impl Gpt2 {
    /// Next-token logits [new positions, vocab] for `tokens`, which continue the positions
    /// in `cache` (a fresh cache: a whole prompt). `hook` sees, and may replace, the
    /// residual at every layer on the way (steering). Needs every block: `Gpt2::load` with
    /// `n_layer` blocks. The unembedding is GPT-2's tied one: ln_f, then `wte^T`.
    pub fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, hook: &mut ResidHook) -> Result<Tensor> {
        let n_layer = self.cfg.n_layer;
        if self.blocks.len() < n_layer {
            bail!("generation needs all {n_layer} blocks but {} are loaded", self.blocks.len());
        }
        let (p0, n) = (cache.len, tokens.len() as i64);
        if (p0 + n) as usize > self.cfg.n_positions {
            bail!("{} positions exceed n_ctx {}: ask for fewer tokens or shorten the prompt", p0 + n, self.cfg.n_positions);
        }
        let ids = Tensor::from_slice(&tokens.iter().map(|&t| t as i64).collect::<Vec<_>>()).to_device(self.device);
        let mut h = self.wte.index_select(0, &ids) + self.wpe.narrow(0, p0, n);
        // Query i (at position p0 + i) sees keys 0..=p0 + i.
        let mask = Tensor::ones([n, p0 + n], (Kind::Bool, self.device)).tril(p0).view([1, 1, n, p0 + n]);
        let fresh = cache.kv.is_empty();
        for (i, blk) in self.blocks.iter().enumerate() {
            h = hook(i, h)?;
            let (k_past, v_past) = if fresh { (None, None) } else { (Some(&cache.kv[i].0), Some(&cache.kv[i].1)) };
            let (out, k, v) = self.block_cached(blk, &h, k_past, v_past, &mask);
            if fresh {
                cache.kv.push((k, v));
            } else {
                cache.kv[i] = (k, v);
            }
            h = out;
        }
        h = hook(n_layer, h)?;
        cache.len = p0 + n;
        let l = Loader { file: &self._file, device: self.device, kind: self.kind };
        let (w, b) = (l.get("ln_f.weight", &[self.cfg.n_embd])?, l.get("ln_f.bias", &[self.cfg.n_embd])?);
        let x = h.layer_norm([self.cfg.n_embd as i64], Some(&w), Some(&b), self.cfg.layer_norm_epsilon, false);
        Ok(x.matmul(&self.wte.tr()).to_kind(Kind::Float))
    }

    /// One block over the new positions `h` [n, d], attending to the cached keys and values
    /// too; returns its output and the keys and values of all positions so far.
    fn block_cached(&self, blk: &Block, h: &Tensor, k_past: Option<&Tensor>, v_past: Option<&Tensor>, mask: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (n, d) = (h.size()[0], self.cfg.n_embd as i64);
        let (nh, dh) = (self.cfg.n_head as i64, self.cfg.d_head() as i64);
        let eps = self.cfg.layer_norm_epsilon;
        let x = h.layer_norm([d], Some(&blk.ln_1.w), Some(&blk.ln_1.b), eps, false);
        let qkv = blk.c_attn.forward(&x);
        let heads = |i: i64| qkv.narrow(1, i * d, d).view([1, n, nh, dh]).transpose(1, 2);
        let (q, mut k, mut v) = (heads(0), heads(1), heads(2));
        if let (Some(kp), Some(vp)) = (k_past, v_past) {
            k = Tensor::cat(&[kp, &k], 2);
            v = Tensor::cat(&[vp, &v], 2);
        }
        let a = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, false);
        let a = a.transpose(1, 2).contiguous().view([n, d]);
        let h = h + blk.c_proj.forward(&a);
        let x = h.layer_norm([d], Some(&blk.ln_2.w), Some(&blk.ln_2.b), eps, false);
        (&h + blk.mlp_proj.forward(&blk.c_fc.forward(&x).gelu("tanh")), k, v)
    }
}

/// A residual-stream value (or a write to it) as TransformerLens holds it under `p`: the HF
/// value, minus its mean over d_model where writing weights were centred.
pub fn as_written(x: &Tensor, p: Processing) -> Tensor {
    if p.center_writing_weights {
        centre(x)
    } else {
        x.shallow_clone()
    }
}

/// TransformerLens's residual under center_writing_weights: the HF stream minus its mean over d_model.
pub fn centre(h: &Tensor) -> Tensor {
    h - h.mean_dim(-1, true, h.kind())
}

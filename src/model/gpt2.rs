//! GPT-2, the first model family (family.rs): HF's GPT2 checkpoints of any size (config.json's
//! n_layer, n_embd, n_head), loaded block by block, with every hook point TransformerLens
//! names (hooks.rs). `hooks_each` stops after the last block a hook needs and computes no
//! logits (the analysis, the corpus index); `forward_cached` runs every block to next-token
//! logits through GPT-2's tied unembedding, with a KV cache (steering, attribution).
//!
//! Most SAEs were trained on TransformerLens's hooks under its default weight processing.
//! `center_writing_weights` makes every write to the residual zero-mean over d_model, so
//! that stream equals HF's hidden state minus its per-token mean; `fold_ln` and
//! `center_unembed` do not change it. We therefore run the plain HF weights and centre the
//! value at each hook (`view`), which is exact up to float rounding (docs/method.md, "Method").

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::layer_norm;
use crate::model::{blocks_for, check_generation, collect_hooks, Family, Freeze, HookEdit, KvCache};
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// The subset of HF's GPT2Config the forward pass needs. Field names are HF's own, so the
/// hub's file and `save_pretrained`'s both parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Context length. The hub's gpt2 config has both `n_positions` and `n_ctx`; older
    /// ones only `n_ctx` (so a serde alias would reject the common case as a duplicate).
    #[serde(default)]
    pub n_positions: usize,
    #[serde(default, skip_serializing)]
    pub n_ctx: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_act")]
    pub activation_function: String,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}

impl Gpt2Config {
    pub fn gpt2_small() -> Self {
        Self {
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_positions: 1024,
            vocab_size: 50257,
            layer_norm_epsilon: 1e-5,
            activation_function: "gelu_new".into(),
            n_ctx: None,
        }
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read model config {}", path.display()))?;
        let mut cfg: Self = serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a GPT-2 config.json", path.display()))?;
        if cfg.n_positions == 0 {
            cfg.n_positions = cfg.n_ctx.unwrap_or(0);
        }
        cfg.validate().wrap_err_with(|| format!("in {}", path.display()))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.n_embd == 0 || self.n_layer == 0 || self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            bail!("n_embd {} must be a positive multiple of n_head {}", self.n_embd, self.n_head);
        }
        if self.n_positions == 0 || self.vocab_size == 0 {
            bail!("n_positions (or n_ctx) and vocab_size must be positive");
        }
        if !matches!(self.activation_function.as_str(), "gelu_new" | "gelu_pytorch_tanh") {
            bail!("activation_function {:?} is not supported (GPT-2 uses gelu_new)", self.activation_function);
        }
        Ok(())
    }

    pub fn d_head(&self) -> usize {
        self.n_embd / self.n_head
    }
}

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
    _file: Arc<Checkpoint>,
}

/// Reads one tensor, accepting HF's optional `transformer.` prefix.
struct Loader<'a> {
    file: &'a Arc<Checkpoint>,
    device: Device,
    kind: Kind,
}

impl Loader<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let candidates = [name.to_string(), format!("transformer.{name}")];
        let Some(found) = self.file.find(&candidates) else {
            bail!("{} has no tensor {name} (nor transformer.{name}); is it a GPT-2 checkpoint?", self.file.path().display());
        };
        // f32 on CPU stays the zero-copy view of the mapped file (to_kind of the same kind is a no-op).
        Ok(self.file.tensor_as(&found, shape, self.kind)?.to_device(self.device))
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
    pub fn load(cfg: Gpt2Config, file: Arc<Checkpoint>, n_blocks: usize, device: Device, kind: Kind) -> Result<Self> {
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
        file.release_if_copied(device);
        Ok(Self { cfg, wte, wpe, blocks, device, kind, _file: file })
    }

    /// Centred residual streams at `layers` (each in 0..=loaded blocks; layer n_layer is the
    /// final resid_post), in the order given, each [batch, seq, d_model]: TransformerLens's
    /// `hook_resid_pre` under its default processing.
    /// `tokens` [batch, seq] i64, right-padded; `mask` [batch, seq] bool, true on real tokens.
    pub fn residuals(&self, tokens: &Tensor, mask: &Tensor, layers: &[usize]) -> Result<Vec<Tensor>> {
        let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::new(l, Site::ResidPre)).collect();
        self.hooks(tokens, mask, &points, Processing::DEFAULT)
    }

    /// `Family::hooks_each` with every point under one processing.
    pub fn hooks(&self, tokens: &Tensor, mask: &Tensor, points: &[HookPoint], processing: Processing) -> Result<Vec<Tensor>> {
        let each: Vec<(HookPoint, Processing)> = points.iter().map(|&p| (p, processing)).collect();
        self.hooks_each(tokens, mask, &each)
    }

    /// What `fold_value_biases` moves out of each head's values, heads concatenated:
    /// `ln_1.b @ W_V + b_V` [n_head * d_head] (ln_1's bias reaches the values through W_V).
    fn value_bias(&self, blk: &Block) -> Tensor {
        let d = self.cfg.n_embd as i64;
        let w_v = blk.c_attn.w.narrow(1, 2 * d, d);
        let b_v = blk.c_attn.b.narrow(0, 2 * d, d);
        blk.ln_1.b.matmul(&w_v) + b_v
    }

    fn block(&self, layer: usize) -> Result<&Block> {
        self.blocks.get(layer).ok_or_else(|| eyre!("internal: block {layer} is not loaded"))
    }

    /// One block over `h` [.., t, d], every hook inside it passing through `edit` (HF's
    /// own values). `attend` maps the heads' queries, keys and values [.., n_head, t, d_head]
    /// to their weighted values in the same layout.
    /// The residual after the first `blocks` blocks of a right-padded batch, every hook
    /// point on the way through `edit`: what `hooks_each` and `logits_each` share.
    fn batch_forward(&self, tokens: &Tensor, mask: &Tensor, blocks: usize, edit: &mut HookEdit) -> Result<Tensor> {
        self.batch_forward_as(tokens, mask, blocks, None, edit)
    }

    /// `batch_forward`, or where `frozen` the replacement model's: every LayerNorm's scale
    /// and every attention pattern detached from the graph, so gradients see the model
    /// as linear in the residual (graph.rs).
    fn batch_forward_as(&self, tokens: &Tensor, mask: &Tensor, blocks: usize, frozen: Option<&Freeze>, edit: &mut HookEdit) -> Result<Tensor> {
        let (b, t) = tokens.size2()?;
        let tokens = tokens.to_device(self.device);
        // Causal and key-padding masks in one boolean [b, 1, t, t]; query rows of padding
        // still see position 0 (BOS), so no row is fully masked and no NaN appears.
        let causal = Tensor::ones([t, t], (Kind::Bool, self.device)).tril(0);
        let keys = mask.to_device(self.device).view([b, 1, 1, t]);
        let attn_mask = causal.view([1, 1, t, t]).logical_and(&keys);
        let scale = (self.cfg.d_head() as f64).powf(-0.5);
        let mut attend = |q: Tensor, k: Tensor, v: Tensor| -> Result<Tensor> {
            Ok(match frozen {
                Some(f) => {
                    let pattern =
                        f.pattern(|| (q.matmul(&k.transpose(-1, -2)) * scale).masked_fill(&attn_mask.logical_not(), f64::NEG_INFINITY).softmax(-1, q.kind()))?;
                    pattern.matmul(&v)
                }
                None => Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&attn_mask), 0.0, false, None, false),
            })
        };
        let mut h = self.wte.index_select(0, &tokens.view([-1])).view([b, t, -1]) + self.wpe.narrow(0, 0, t);
        for i in 0..blocks {
            h = edit.apply(HookPoint::new(i, Site::ResidPre), h)?;
            h = self.block_forward(i, h, &mut attend, frozen, edit)?;
        }
        Ok(h)
    }

    fn ln(&self, x: &Tensor, w: &Tensor, b: &Tensor, frozen: Option<&Freeze>) -> Result<Tensor> {
        layer_norm::apply(x, w, b, self.cfg.layer_norm_epsilon, frozen)
    }

    fn block_forward(
        &self,
        layer: usize,
        h: Tensor,
        attend: &mut dyn FnMut(Tensor, Tensor, Tensor) -> Result<Tensor>,
        frozen: Option<&Freeze>,
        edit: &mut HookEdit,
    ) -> Result<Tensor> {
        let blk = self.block(layer)?;
        let at = |site| HookPoint::new(layer, site);
        let shape = h.size();
        let lead = &shape[..shape.len() - 1];
        let (d, nh, dh) = (self.cfg.n_embd as i64, self.cfg.n_head as i64, self.cfg.d_head() as i64);
        let eps = self.cfg.layer_norm_epsilon;
        let heads_shape: Vec<i64> = lead.iter().copied().chain([nh, dh]).collect();
        let x = self.ln(&h, &blk.ln_1.w, &blk.ln_1.b, frozen)?;
        let qkv = blk.c_attn.forward(&x);
        let last = qkv.dim() as i64 - 1;
        let heads = |i: i64| qkv.narrow(last, i * d, d).view(&heads_shape[..]).transpose(-3, -2);
        let a = attend(heads(0), heads(1), heads(2))?;
        let z = edit.apply(at(Site::AttnZ), a.transpose(-3, -2).contiguous().view(&shape[..]))?;
        let attn_out = edit.apply(at(Site::AttnOut), blk.c_proj.forward(&z))?;
        let mid = edit.apply(at(Site::ResidMid), h.f_add(&attn_out)?)?;
        let x = layer_norm::with_normalized_hook(&mid, &blk.ln_2.w, &blk.ln_2.b, eps, frozen, at(Site::Ln2Normalized), edit)?;
        let x = edit.apply(at(Site::MlpIn), x)?;
        let mlp_out = edit.apply(at(Site::MlpOut), blk.mlp_proj.forward(&blk.c_fc.forward(&x).gelu("tanh")))?;
        edit.apply(at(Site::ResidPost), mid.f_add(&mlp_out)?)
    }

    /// ln_f's weight and bias, read on first use only (a run that stops early never needs them).
    fn ln_f(&self) -> Result<(Tensor, Tensor)> {
        let l = Loader { file: &self._file, device: self.device, kind: self.kind };
        Ok((l.get("ln_f.weight", &[self.cfg.n_embd])?, l.get("ln_f.bias", &[self.cfg.n_embd])?))
    }
}

impl Family for Gpt2 {
    fn name(&self) -> &'static str {
        "GPT-2"
    }

    fn n_layers(&self) -> usize {
        self.cfg.n_layer
    }

    fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    fn n_ctx(&self) -> usize {
        self.cfg.n_positions
    }

    fn d_model(&self) -> usize {
        self.cfg.n_embd
    }

    fn block_flops(&self, t: usize) -> f64 {
        // Q, K, V and the output projection (4 d^2) and the MLP at 4 d (8 d^2).
        let d = self.cfg.n_embd as f64;
        24.0 * d * d + 4.0 * t as f64 * d
    }

    fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }

    fn device(&self) -> Device {
        self.device
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    /// One pass that stops after the last block a point needs; the processings differ only
    /// in what is subtracted at the end, so SAEs of several releases share it.
    fn hooks_each(&self, tokens: &Tensor, mask: &Tensor, requested: &[(HookPoint, Processing)]) -> Result<Vec<Tensor>> {
        let needed = blocks_for(requested, self.blocks.len(), tokens.size2()?.1 as usize, self.cfg.n_positions)?;
        collect_hooks(self, requested, |take| {
            let h = self.batch_forward(tokens, mask, needed, take)?;
            take.apply(HookPoint::new(needed, Site::ResidPre), h).map(drop)
        })
    }

    fn logits_each(&self, tokens: &Tensor, mask: &Tensor, edit: &mut HookEdit) -> Result<Tensor> {
        check_generation(self, tokens.size2()?.1 as usize)?;
        let h = self.batch_forward(tokens, mask, self.cfg.n_layer, edit)?;
        let (w, b) = self.ln_f()?;
        let x = h.layer_norm([self.cfg.n_embd as i64], Some(&w), Some(&b), self.cfg.layer_norm_epsilon, false);
        Ok(x.matmul(&self.wte.tr()).to_kind(Kind::Float))
    }

    /// TransformerLens under `processing` (layer_norm.rs).
    fn view(&self, hook: HookPoint, value: &Tensor, processing: Processing) -> Result<Tensor> {
        layer_norm::view(hook, value, processing, || Ok(self.value_bias(self.block(hook.layer)?)))
    }

    fn unview(&self, hook: HookPoint, value: &Tensor, new: &Tensor, processing: Processing) -> Result<Tensor> {
        layer_norm::unview(hook, value, new, processing, || Ok(self.value_bias(self.block(hook.layer)?)))
    }

    /// GPT-2's tied unembedding: ln_f, then `wte^T`.
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, edit: &mut HookEdit) -> Result<Tensor> {
        let n_layer = self.cfg.n_layer;
        let (p0, n) = (cache.len, tokens.len() as i64);
        check_generation(self, (p0 + n) as usize)?;
        let ids = Tensor::from_slice(&tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>()).to_device(self.device);
        let mut h = self.wte.index_select(0, &ids) + self.wpe.narrow(0, p0, n);
        // Query i (at position p0 + i) sees keys 0..=p0 + i.
        let mask = Tensor::ones([n, p0 + n], (Kind::Bool, self.device)).tril(p0).view([1, 1, n, p0 + n]);
        for i in 0..n_layer {
            h = edit.apply(HookPoint::new(i, Site::ResidPre), h)?;
            let past = cache.past(i).map(|(k, v)| (k.shallow_clone(), v.shallow_clone()));
            let mut stored = None;
            let mut attend = |q: Tensor, k: Tensor, v: Tensor| {
                // [n, nh, dh] heads as [1, nh, n, dh], after the cached positions.
                let (q, mut k, mut v) = (q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0));
                if let Some((kp, vp)) = &past {
                    k = Tensor::cat(&[kp, &k], 2);
                    v = Tensor::cat(&[vp, &v], 2);
                }
                let a = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&mask), 0.0, false, None, false);
                stored = Some((k, v));
                Ok(a.squeeze_dim(0))
            };
            h = self.block_forward(i, h, &mut attend, None, edit)?;
            let (k, v) = stored.ok_or_else(|| eyre!("internal: block {i} did not attend"))?;
            cache.store(i, k, v);
        }
        cache.len = p0 + n;
        let (w, b) = self.ln_f()?;
        let x = h.layer_norm([self.cfg.n_embd as i64], Some(&w), Some(&b), self.cfg.layer_norm_epsilon, false);
        Ok(x.matmul(&self.wte.tr()).to_kind(Kind::Float))
    }

    fn frozen_forward(&self, tokens: &Tensor, freeze: &Freeze, edit: &mut HookEdit) -> Result<Tensor> {
        check_generation(self, tokens.size2()?.1 as usize)?;
        freeze.begin();
        let mask = tokens.ones_like().to_kind(Kind::Bool);
        let h = self.batch_forward_as(tokens, &mask, self.cfg.n_layer, Some(freeze), edit)?;
        let (w, b) = self.ln_f()?;
        self.ln(&h, &w, &b, Some(freeze))
    }

    fn unembedding(&self) -> Result<Tensor> {
        Ok(self.wte.shallow_clone())
    }

    /// The token's wte row; the position's wpe row is a constant of the position, as a
    /// bias is, and belongs to no token node (TransformerLens's `hook_embed`).
    fn token_embedding(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.wte.index_select(0, &ids.to_device(self.device)))
    }

    /// TransformerLens's `W_dec[f] @ model.W_U` through GPT-2's tied unembedding (layer_norm.rs).
    fn logit_lens(&self, dirs: &Tensor) -> Result<Tensor> {
        let (ln_f, _) = self.ln_f()?;
        Ok(layer_norm::logit_lens(&dirs.to_device(self.device), &ln_f, &self.wte))
    }

    /// For `attn.hook_z` through the block's W_O, as TransformerLens reads an attention
    /// SAE's decoder. The MLP's normalised input has no such map.
    fn to_residual(&self, hook: HookPoint, dirs: &Tensor) -> Result<Tensor> {
        match hook.site {
            Site::AttnZ => Ok(dirs.matmul(&self.block(hook.layer)?.c_proj.w)),
            Site::Ln2Normalized | Site::MlpIn => bail!("{hook} is the MLP's normalised input, which the residual stream does not receive: no logit lens"),
            _ => Ok(dirs.shallow_clone()),
        }
    }
}

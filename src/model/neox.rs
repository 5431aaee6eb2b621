//! GPT-NeoX, Pythia's architecture (`model_type: gpt_neox`; EleutherAI/pythia-70m-deduped
//! and its siblings): config, weight loading and the forward, as HF transformers'
//! `modeling_gpt_neox.py` computes it (tests/it/neox.rs holds it to that and to
//! TransformerLens on a tiny model).
//!
//! What sets it apart: attention and the MLP read the same residual and both add to it
//! (`use_parallel_residual`, so the block has no `hook_resid_mid`); RoPE turns only the first
//! quarter of each head (`rotary_pct`), the rest passes through; q, k and v come from one
//! fused projection laid out head by head; LayerNorms with biases, an exact-erf GELU MLP and
//! an unembedding of its own (`embed_out`). SAEs on Pythia were trained on TransformerLens
//! under its default processing, as GPT-2's were, so the hooks are read through the same
//! views (layer_norm.rs).

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::layer_norm;
use crate::model::rope::{self, Blocks, RopeScaling, Scores};
use crate::model::{Family, Freeze, HookEdit, KvCache};
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, eyre, Result};
use serde_json::Value;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// What the forward needs of HF's GPTNeoXConfig.
#[derive(Debug, Clone, PartialEq)]
pub struct NeoxConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub layer_norm_eps: f64,
    pub n_ctx: usize,
    pub rope_theta: f64,
    /// Dimensions of each head RoPE turns (`head_dim * rotary_pct`, as HF rounds it down).
    pub rotary_dim: usize,
    /// Attention and MLP side by side on the block's input (Pythia), or one after the other.
    pub parallel: bool,
    /// `gelu` (exact) or a tanh approximation.
    pub gelu_tanh: bool,
    pub tie_word_embeddings: bool,
}

impl NeoxConfig {
    /// The hub's config.json (`rotary_pct`, `rotary_emb_base`) or transformers 5's
    /// (`rope_parameters` with `partial_rotary_factor` and `rope_theta`).
    pub fn from_json(v: &Value) -> Result<Self> {
        let uint = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| eyre!("missing {k}"));
        let rope = v.get("rope_parameters").filter(|p| !p.is_null());
        let num = |new: &str, old: &str, default: f64| rope.and_then(|p| p.get(new)).or_else(|| v.get(old)).and_then(Value::as_f64).unwrap_or(default);
        if !matches!(RopeScaling::from_json(rope.or_else(|| v.get("rope_scaling")))?, RopeScaling::Default) {
            bail!("RoPE scaling is not supported for GPT-NeoX (Pythia has none)");
        }
        let (d, heads) = (uint("hidden_size")?, uint("num_attention_heads")?);
        if heads == 0 || !d.is_multiple_of(heads) {
            bail!("hidden_size {d} is not a positive multiple of num_attention_heads {heads}");
        }
        let gelu_tanh = match v.get("hidden_act").and_then(Value::as_str).unwrap_or("gelu") {
            "gelu" => false,
            "gelu_new" | "gelu_pytorch_tanh" => true,
            other => bail!("hidden_act {other:?} is not supported (Pythia uses gelu)"),
        };
        if v.get("attention_bias").and_then(Value::as_bool) == Some(false) {
            bail!("attention_bias false is not supported (every Pythia has attention biases)");
        }
        let pct = num("partial_rotary_factor", "rotary_pct", 0.25);
        let rotary_dim = ((d / heads) as f64 * pct) as usize;
        if rotary_dim == 0 || !rotary_dim.is_multiple_of(2) {
            bail!("rotary_pct {pct} of a {}-wide head is not a positive even number of dimensions", d / heads);
        }
        Ok(Self {
            vocab_size: uint("vocab_size")?,
            hidden_size: d,
            intermediate_size: uint("intermediate_size")?,
            num_hidden_layers: uint("num_hidden_layers")?,
            num_attention_heads: heads,
            layer_norm_eps: v.get("layer_norm_eps").and_then(Value::as_f64).unwrap_or(1e-5),
            n_ctx: uint("max_position_embeddings")?,
            rope_theta: num("rope_theta", "rotary_emb_base", 10_000.0),
            rotary_dim,
            parallel: v.get("use_parallel_residual").and_then(Value::as_bool).unwrap_or(true),
            gelu_tanh,
            tie_word_embeddings: v.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// A projection's weight [out, in] and bias [out].
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.w.tr()) + &self.b
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

struct Layer {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: LayerNorm,
    up: Linear,
    down: Linear,
}

pub struct Neox {
    pub cfg: NeoxConfig,
    embed: Tensor,
    unembed: Tensor,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    inv_freq: Vec<f64>,
    device: Device,
    kind: Kind,
    _file: Arc<Checkpoint>,
}

impl Neox {
    /// Loads the embeddings, the final norm, the unembedding and the first `n_blocks`
    /// layers as HF's GPTNeoXForCausalLM saves them (`gpt_neox.` prefix, `embed_out`). The
    /// fused `query_key_value` [3 d, d] holds each head's q, k and v rows in turn; it is
    /// split here into three projections with the heads side by side.
    pub fn load(cfg: NeoxConfig, file: Arc<Checkpoint>, n_blocks: usize, device: Device, kind: Kind) -> Result<Self> {
        if n_blocks > cfg.num_hidden_layers {
            bail!("asked for {n_blocks} blocks but the model has {}", cfg.num_hidden_layers);
        }
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let candidates = [format!("gpt_neox.{name}"), name.to_string()];
            let found = file.find(&candidates).ok_or_else(|| eyre!("{} has no tensor gpt_neox.{name}; is it a GPT-NeoX checkpoint?", file.path().display()))?;
            Ok(file.tensor_as(&found, shape, kind)?.to_device(device))
        };
        let (d, ff, nh, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.head_dim());
        let linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
            Ok(Linear { w: get(&format!("{name}.weight"), &[out, inp])?, b: get(&format!("{name}.bias"), &[out])? })
        };
        let ln = |name: &str| -> Result<LayerNorm> { Ok(LayerNorm { w: get(&format!("{name}.weight"), &[d])?, b: get(&format!("{name}.bias"), &[d])? }) };
        let layers = (0..n_blocks)
            .map(|i| {
                let p = format!("layers.{i}");
                let qkv = linear(&format!("{p}.attention.query_key_value"), 3 * d, d)?;
                let (w, b) = (qkv.w.view([nh as i64, 3, hd as i64, d as i64]), qkv.b.view([nh as i64, 3, hd as i64]));
                let part = |j: i64| Linear { w: w.select(1, j).reshape([d as i64, d as i64]), b: b.select(1, j).reshape([d as i64]) };
                Ok(Layer {
                    ln1: ln(&format!("{p}.input_layernorm"))?,
                    q: part(0),
                    k: part(1),
                    v: part(2),
                    o: linear(&format!("{p}.attention.dense"), d, d)?,
                    ln2: ln(&format!("{p}.post_attention_layernorm"))?,
                    up: linear(&format!("{p}.mlp.dense_h_to_4h"), ff, d)?,
                    down: linear(&format!("{p}.mlp.dense_4h_to_h"), d, ff)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let embed = get("embed_in.weight", &[cfg.vocab_size, d])?;
        // The hub's checkpoints name it embed_out; transformers 5.14 and later save lm_head.
        let unembed = match file.find(&["embed_out.weight".to_string(), "lm_head.weight".to_string()]) {
            Some(name) if !cfg.tie_word_embeddings => file.tensor_as(&name, &[cfg.vocab_size, d], kind)?.to_device(device),
            None if !cfg.tie_word_embeddings => {
                bail!("{} has no embed_out.weight (nor lm_head.weight), and its config does not tie the embeddings", file.path().display())
            }
            _ => embed.shallow_clone(),
        };
        let final_norm = ln("final_layer_norm")?;
        file.release_if_copied(device);
        let inv_freq = RopeScaling::Default.inv_freq(cfg.rotary_dim, cfg.rope_theta);
        Ok(Self { embed, unembed, layers, final_norm, inv_freq, cfg, device, kind, _file: file })
    }

    fn layer(&self, i: usize) -> Result<&Layer> {
        self.layers.get(i).ok_or_else(|| eyre!("internal: layer {i} is not loaded"))
    }

    fn ln(&self, x: &Tensor, n: &LayerNorm, frozen: Option<&Freeze>) -> Result<Tensor> {
        layer_norm::apply(x, &n.w, &n.b, self.cfg.layer_norm_eps, frozen)
    }

    /// The final norm and the unembedding: logits [.., vocab] in f32.
    fn logits(&self, h: &Tensor) -> Result<Tensor> {
        Ok(self.ln(h, &self.final_norm, None)?.matmul(&self.unembed.tr()).to_kind(Kind::Float))
    }

    /// What `fold_value_biases` moves out of each head's values, heads side by side: the
    /// first LayerNorm's bias through W_V, plus b_V (layer_norm.rs).
    fn value_bias(&self, layer: usize) -> Result<Tensor> {
        let l = self.layer(layer)?;
        Ok(l.v.forward(&l.ln1.b))
    }

    /// `x` [.., head_dim] with its first `rotary_dim` dimensions turned, the rest as they are.
    fn rotate(&self, x: &Tensor, (cos, sin): &(Tensor, Tensor)) -> Tensor {
        let (hd, rd) = (self.cfg.head_dim() as i64, self.cfg.rotary_dim as i64);
        if rd == hd {
            return rope::rotate(x, cos, sin);
        }
        Tensor::cat(&[rope::rotate(&x.narrow(-1, 0, rd), cos, sin), x.narrow(-1, rd, hd - rd)], -1)
    }
}

impl rope::Blocks for Neox {
    type Rope = (Tensor, Tensor);

    fn window(&self, _i: usize) -> Option<usize> {
        None
    }

    fn scores(&self) -> Scores {
        Scores { scale: (self.cfg.head_dim() as f64).powf(-0.5), softcap: None }
    }

    fn embed(&self, ids: &Tensor) -> Tensor {
        let shape: Vec<i64> = ids.size().into_iter().chain([-1]).collect();
        self.embed.index_select(0, &ids.view([-1])).view(&shape[..])
    }

    fn rope(&self, from: i64, n: i64) -> Self::Rope {
        rope::cos_sin(&Tensor::arange_start(from, from + n, (Kind::Float, self.device)), &self.inv_freq, self.kind)
    }

    fn layer_forward(
        &self,
        i: usize,
        h: Tensor,
        rope: &Self::Rope,
        attend: &mut dyn FnMut(Tensor, Tensor, Tensor) -> Result<Tensor>,
        frozen: Option<&Freeze>,
        edit: &mut HookEdit,
    ) -> Result<Tensor> {
        let (l, c) = (self.layer(i)?, &self.cfg);
        let at = |site| HookPoint::new(i, site);
        let x = self.ln(&h, &l.ln1, frozen)?;
        let heads = |p: &Linear| rope::split_heads(&p.forward(&x), c.head_dim()).transpose(-3, -2);
        let (q, k) = (self.rotate(&heads(&l.q), rope), self.rotate(&heads(&l.k), rope));
        let z = edit.apply(at(Site::AttnZ), rope::merge_heads(&attend(q, k, heads(&l.v))?))?;
        let attn_out = edit.apply(at(Site::AttnOut), l.o.forward(&z))?;
        // The MLP reads the block's input beside attention, or attention's sum after it.
        let mlp_reads = if c.parallel {
            if edit.wants(at(Site::ResidMid)) {
                bail!("{} does not exist: this GPT-NeoX's attention and MLP read the same residual (use_parallel_residual)", at(Site::ResidMid));
            }
            h.shallow_clone()
        } else {
            edit.apply(at(Site::ResidMid), h.f_add(&attn_out)?)?
        };
        let x = layer_norm::with_normalized_hook(&mlp_reads, &l.ln2.w, &l.ln2.b, c.layer_norm_eps, frozen, at(Site::Ln2Normalized), edit)?;
        let x = edit.apply(at(Site::MlpIn), x)?;
        let mlp_out = edit.apply(at(Site::MlpOut), l.down.forward(&l.up.forward(&x).gelu(if c.gelu_tanh { "tanh" } else { "none" })))?;
        let post = if c.parallel { mlp_out.f_add(&attn_out)?.f_add(&h)? } else { mlp_reads.f_add(&mlp_out)? };
        edit.apply(at(Site::ResidPost), post)
    }
}

impl Family for Neox {
    fn name(&self) -> &'static str {
        "Pythia"
    }

    fn n_layers(&self) -> usize {
        self.cfg.num_hidden_layers
    }

    fn n_blocks(&self) -> usize {
        self.layers.len()
    }

    fn n_ctx(&self) -> usize {
        self.cfg.n_ctx
    }

    fn d_model(&self) -> usize {
        self.cfg.hidden_size
    }

    /// 2 per weight of q, k, v and the output projection (4 d^2) and the MLP's two (2 d ff),
    /// 4 t per query dimension for attention's scores and mix.
    fn block_flops(&self, t: usize) -> f64 {
        let (d, ff) = (self.cfg.hidden_size as f64, self.cfg.intermediate_size as f64);
        2.0 * (4.0 * d * d + 2.0 * d * ff) + 4.0 * t as f64 * d
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

    fn hooks_each(&self, tokens: &Tensor, mask: &Tensor, requested: &[(HookPoint, Processing)]) -> Result<Vec<Tensor>> {
        rope::hooks_each(self, tokens, mask, requested)
    }

    fn logits_each(&self, tokens: &Tensor, mask: &Tensor, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::all_blocks(self, tokens, mask, edit)?;
        self.logits(&h)
    }

    /// TransformerLens under `processing` (layer_norm.rs).
    fn view(&self, hook: HookPoint, value: &Tensor, processing: Processing) -> Result<Tensor> {
        layer_norm::view(hook, value, processing, || self.value_bias(hook.layer))
    }

    fn unview(&self, hook: HookPoint, value: &Tensor, new: &Tensor, processing: Processing) -> Result<Tensor> {
        layer_norm::unview(hook, value, new, processing, || self.value_bias(hook.layer))
    }

    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::cached_forward(self, tokens, cache, edit)?;
        self.logits(&h)
    }

    fn frozen_forward(&self, tokens: &Tensor, freeze: &Freeze, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::frozen_blocks(self, tokens, freeze, edit)?;
        self.ln(&h, &self.final_norm, Some(freeze))
    }

    fn unembedding(&self) -> Result<Tensor> {
        Ok(self.unembed.shallow_clone())
    }

    fn token_embedding(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.embed(&ids.to_device(self.device)))
    }

    fn logit_lens(&self, dirs: &Tensor) -> Result<Tensor> {
        Ok(layer_norm::logit_lens(&dirs.to_device(self.device), &self.final_norm.w, &self.unembed))
    }

    /// For `attn.hook_z` through the output projection (its bias is the heads' sum's, not a
    /// direction's).
    fn to_residual(&self, hook: HookPoint, dirs: &Tensor) -> Result<Tensor> {
        match hook.site {
            Site::AttnZ => Ok(dirs.matmul(&self.layer(hook.layer)?.o.w.tr())),
            Site::Ln2Normalized | Site::MlpIn => bail!("{hook} is the MLP's normalised input, which the residual stream does not receive: no logit lens"),
            _ => Ok(dirs.shallow_clone()),
        }
    }
}

//! Which features move a prediction: attribution patching at every loaded SAE, checked by
//! ablation.
//!
//! The target is the next-token prediction at the prompt's last position, measured as
//! TransformerLens measures a logit under its default processing (`center_unembed`): the
//! target's logit minus the mean logit over the vocabulary. One backward pass gives, at each
//! SAE's hook, the gradient `g_p` of that metric with respect to the hook's value at every
//! position p; a feature's attribution is `sum_p a_F(x_p) * (W_dec[F] . g_p)`, the linear
//! estimate of what removing the feature everywhere would change. For the top features the
//! exact effect is computed too: the feature is ablated at every position
//! (`x - a_F(x) * W_dec[F]`) and the model run again.

use crate::model::hooks::HookPoint;
use crate::model::{HookEdit, KvCache};
use crate::pipeline::Engine;
use crate::sae::key::SaeKey;
use color_eyre::eyre::{bail, eyre, Result};
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attributed {
    pub feature: u32,
    /// The feature's contribution by the linear estimate: positive features raise the
    /// target, and removing one changes the metric by about minus this.
    pub attribution: f64,
    /// Removing the feature at every position, run again: the change in the target's
    /// (centred) logit and in its probability.
    pub ablation_logit: f64,
    pub ablation_prob: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaeAttribution {
    pub sae: SaeKey,
    /// The top features by |attribution|.
    pub features: Vec<Attributed>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    pub prompt: String,
    /// The prompt's first tokens the prediction follows (BOS not counted); None: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upto: Option<usize>,
    /// The text of the tokens the prediction follows: the prompt, or its first `upto`.
    pub context: String,
    pub target: String,
    pub target_id: u32,
    /// The target's logit (minus the mean logit) and probability at the last position.
    pub logit: f64,
    pub prob: f64,
    /// Every loaded SAE, in the run's order.
    pub saes: Vec<SaeAttribution>,
}

/// The metric and probability of `target` from last-position logits [vocab].
fn metric(last: &Tensor, target: i64) -> (Tensor, Tensor) {
    let m = last.get(target) - last.mean(Kind::Float);
    let p = last.softmax(-1, Kind::Float).get(target);
    (m, p)
}

/// The token id of `target`, which must be one token (what `--target` names here and in graph/).
pub fn target_id(engine: &Engine, target: &str) -> Result<u32> {
    let ids = engine.tokenizer.encode_with_bos(target)?;
    match ids.as_slice() {
        [_, one] => Ok(*one),
        _ => bail!("--target {target:?} is {} tokens; give one token (e.g. \" the\", with its leading space)", ids.len() - 1),
    }
}

/// Attribution of every loaded layer's features to the prediction after `prompt`.
pub fn attribute(engine: &Engine, prompt: &str, target: Option<&str>, top: usize) -> Result<Attribution> {
    attribute_at(engine, prompt, None, target, top)
}

/// A prompt's tokens with BOS, or its first `upto` after BOS (the token view's cursor, cut
/// from the whole text's tokens so they are the very tokens on view): what the attribution
/// and the graphs (graph/build.rs) explain the next token of. Refused when empty or longer
/// than the model reads.
pub fn prompt_tokens(engine: &Engine, prompt: &str, upto: Option<usize>) -> Result<Vec<u32>> {
    if prompt.trim().is_empty() {
        bail!("--prompt is empty: give the text whose next token to explain, or - to read it from standard input");
    }
    let mut ids = engine.tokenizer.encode_text(prompt)?;
    if let Some(u) = upto {
        // Counted from the prompt's first own token (after BOS, or the chat template's opening).
        let frame = engine.tokenizer.frame(false);
        let own = frame.counted(ids.len()).len();
        if u == 0 || u > own {
            bail!("the prompt has {own} tokens; attribute after 1 to {own} of them");
        }
        ids.truncate(frame.lead + u);
    }
    if ids.len() > engine.model.n_ctx() {
        bail!("the prompt has {} tokens with BOS, over n_ctx {}; shorten it", ids.len(), engine.model.n_ctx());
    }
    Ok(ids)
}

/// `attribute` of the prediction after the prompt's first `upto` tokens (the token view's
/// cursor), cut from the whole prompt's tokens so they are the very tokens on view.
pub fn attribute_at(engine: &Engine, prompt: &str, upto: Option<usize>, target: Option<&str>, top: usize) -> Result<Attribution> {
    let ids = prompt_tokens(engine, prompt, upto)?;
    // The prompt's own tokens as on view: after BOS, or after the chat template's opening.
    let own = engine.tokenizer.frame(false).lead.min(ids.len());
    let context = if upto.is_some() { engine.tokenizer.token_strings(&ids[own..]).concat() } else { prompt.to_string() };
    let n = ids.len() as i64;
    let opts = (engine.model.kind(), engine.model.device());
    // A zero "delta" added at each SAE's hook: its gradient is the gradient with respect to
    // the value there, through everything downstream, for every SAE in one pass.
    let points: Vec<HookPoint> = engine.keys().iter().map(|k| k.hook).collect();
    let mut seen: Vec<(HookPoint, Tensor, Tensor)> = Vec::new();
    let mut hook = HookEdit::new(points, |point: HookPoint, h: Tensor| -> Result<Tensor> {
        let delta = Tensor::zeros(h.size(), opts).set_requires_grad(true);
        seen.push((point, h.detach(), delta.shallow_clone()));
        Ok(h + delta)
    });
    let logits = engine.model.forward_cached(&ids, &mut KvCache::default(), &mut hook)?;
    drop(hook);
    let last = logits.get(n - 1);
    let t = match target {
        Some(s) => target_id(engine, s)? as i64,
        None => last.argmax(-1, false).int64_value(&[]),
    };
    let (m, p) = metric(&last, t);
    m.backward();
    let (base_logit, base_prob) = (m.double_value(&[]), p.double_value(&[]));

    let _guard = tch::no_grad_guard();
    let mut out = Vec::new();
    for (key, sae) in &engine.saes {
        let at = key.hook;
        let (_, h, delta) = seen.iter().find(|(p, ..)| *p == at).ok_or_else(|| eyre!("internal: the forward never reached {key}"))?;
        let g = delta.grad();
        let a = sae.encode(&engine.model.view(at, h, sae.cfg.processing)?);
        let w = sae.decoder()?;
        // [n, d_sae]: a_F(x_p) * (W_dec[F] . g_p), summed over positions.
        let attr: Vec<f64> = Vec::try_from((&a * g.matmul(&w.tr())).sum_dim_intlist(0, false, Kind::Double))?;
        let mut order: Vec<usize> = (0..attr.len()).collect();
        order.sort_by(|&i, &j| attr[j].abs().total_cmp(&attr[i].abs()).then(i.cmp(&j)));
        let mut features = Vec::new();
        for &f in order.iter().take(top) {
            crate::runtime::interrupt::check()?;
            let dir = w.get(f as i64);
            let mut ablate = HookEdit::new(vec![at], |_, h: Tensor| -> Result<Tensor> {
                let af = sae.encode(&engine.model.view(at, &h, sae.cfg.processing)?).select(-1, f as i64).unsqueeze(-1);
                Ok(h - af * &dir)
            });
            let logits = engine.model.forward_cached(&ids, &mut KvCache::default(), &mut ablate)?;
            let (m2, p2) = metric(&logits.get(n - 1), t);
            features.push(Attributed {
                feature: f as u32,
                attribution: attr[f],
                ablation_logit: m2.double_value(&[]) - base_logit,
                ablation_prob: p2.double_value(&[]) - base_prob,
            });
        }
        out.push(SaeAttribution { sae: *key, features });
    }
    let target = engine.tokenizer.token_strings(&[t as u32]).concat();
    Ok(Attribution { prompt: prompt.to_string(), upto, context, target, target_id: t as u32, logit: base_logit, prob: base_prob, saes: out })
}

impl Attribution {
    /// A table per layer: feature, attribution (the estimate), and the ablation's change.
    pub fn text(&self) -> String {
        let p = crate::runtime::printable::printable;
        let mut s = format!(
            "prompt: {}\ntarget: {:?} (id {}), logit {:.4} (minus the mean logit), probability {:.4}\n",
            p(&self.context),
            self.target,
            self.target_id,
            self.logit,
            self.prob
        );
        for l in &self.saes {
            s.push_str(&format!("\nSAE {} ({})\nfeature\tattribution\tablated Δlogit\tablated Δprob\n", l.sae, l.sae.hook));
            for f in &l.features {
                s.push_str(&format!("#{}\t{:+.4}\t{:+.4}\t{:+.5}\n", f.feature, f.attribution, f.ablation_logit, f.ablation_prob));
            }
        }
        s
    }
}

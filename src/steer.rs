//! Steering generation with SAE features, as Neuronpedia's steering and TransformerLens
//! hooks on `blocks.L.hook_resid_pre` do it:
//! - `add`: the residual entering layer L gets `strength * W_dec[F]` at every position,
//!   prompt and generated tokens alike;
//! - `clamp`: feature F's activation is set to `strength` at every position, keeping the
//!   SAE's reconstruction error: `x + (strength - a_F(x)) * W_dec[F]`.
//!
//! Adding to the HF residual equals adding to TransformerLens's centred one: every reader
//! of the residual (each LayerNorm, ln_f) removes its mean first. The SAE reads the
//! centred residual, as everywhere else in saescope.
//!
//! The same prompt runs without steering beside it; each step records the top next tokens
//! of both and the KL divergence between the two distributions.

use crate::model::KvCache;
use crate::pipeline::Engine;
use color_eyre::eyre::{bail, eyre, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Add,
    Clamp,
}

/// One `--feature L:F:STRENGTH`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Steer {
    pub layer: usize,
    pub feature: u32,
    pub strength: f64,
}

impl std::str::FromStr for Steer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [l, f, st] = parts.as_slice() else { return Err(format!("{s:?}: expected LAYER:FEATURE:STRENGTH, e.g. 8:1234:40")) };
        let layer = l.trim().parse().map_err(|_| format!("{s:?}: layer {l:?} is not a number"))?;
        let feature = f.trim().parse().map_err(|_| format!("{s:?}: feature {f:?} is not a number"))?;
        let strength: f64 = st.trim().parse().map_err(|_| format!("{s:?}: strength {st:?} is not a number"))?;
        if !strength.is_finite() {
            return Err(format!("{s:?}: the strength must be a finite number"));
        }
        Ok(Self { layer, feature, strength })
    }
}

/// How to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub tokens: usize,
    /// 0: greedy.
    pub temperature: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenProb {
    pub token: String,
    pub id: u32,
    pub prob: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub default_top: Vec<TokenProb>,
    pub steered_top: Vec<TokenProb>,
    /// KL(steered || default) of the next-token distributions, in nats.
    pub kl: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Continuation {
    pub ids: Vec<u32>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Steered {
    pub prompt: String,
    pub mode: Mode,
    pub features: Vec<Steer>,
    pub temperature: f64,
    pub seed: u64,
    pub default: Continuation,
    pub steered: Continuation,
    pub steps: Vec<Step>,
    /// Generated tokens per second, without and with steering (KV cache, this device).
    pub default_tokens_per_s: f64,
    pub steered_tokens_per_s: f64,
}

const TOP: usize = 5;

/// One generation: its tokens and each step's log-probabilities [vocab].
struct Run {
    ids: Vec<u32>,
    logprobs: Vec<Tensor>,
}

/// Generates `s.tokens` tokens after `prompt`, with `steers` applied in `mode` (none: the
/// plain model). `cached`: one new position per step (false recomputes the whole sequence
/// each step, to check the cache).
fn generate(engine: &Engine, prompt: &[u32], steers: &[Steer], mode: Mode, s: Sampling, cached: bool) -> Result<Run> {
    let _guard = tch::no_grad_guard();
    let mut hook = hook(engine, steers, mode)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed);
    let mut cache = KvCache::default();
    let mut ids = prompt.to_vec();
    let mut logprobs = Vec::with_capacity(s.tokens);
    let mut next_input: Vec<u32> = prompt.to_vec();
    for _ in 0..s.tokens {
        crate::interrupt::check()?;
        let logits = if cached {
            engine.model.forward_cached(&next_input, &mut cache, &mut hook)?
        } else {
            engine.model.forward_cached(&ids, &mut KvCache::default(), &mut hook)?
        };
        let last = logits.get(logits.size()[0] - 1);
        let lp = last.log_softmax(-1, Kind::Double);
        let next = if s.temperature <= 0.0 {
            lp.argmax(-1, false).int64_value(&[]) as u32
        } else {
            let probs: Vec<f64> = Vec::<f64>::try_from((&last.to_kind(Kind::Double) / s.temperature).softmax(-1, Kind::Double))?;
            let u: f64 = rng.gen();
            let mut acc = 0.0;
            probs
                .iter()
                .position(|&p| {
                    acc += p;
                    acc > u
                })
                .unwrap_or(probs.len() - 1) as u32
        };
        logprobs.push(lp);
        ids.push(next);
        next_input = vec![next];
    }
    Ok(Run { ids: ids[prompt.len()..].to_vec(), logprobs })
}

/// The residual hook that applies `steers`; None of them: the identity.
fn hook<'a>(engine: &'a Engine, steers: &'a [Steer], mode: Mode) -> Result<impl FnMut(usize, Tensor) -> Result<Tensor> + 'a> {
    let mut dirs = Vec::new();
    for st in steers {
        let sae = engine.saes.iter().find(|(l, _)| *l == st.layer).map(|(_, s)| s).ok_or_else(|| eyre!("layer {} is not loaded", st.layer))?;
        dirs.push((st, sae, sae.direction(st.feature)?));
    }
    Ok(move |layer: usize, mut h: Tensor| -> Result<Tensor> {
        for (st, sae, dir) in dirs.iter().filter(|(st, _, _)| st.layer == layer) {
            h = match mode {
                Mode::Add => h + dir * st.strength,
                Mode::Clamp => {
                    let a = sae.encode(&crate::model::centre(&h).unsqueeze(0)).squeeze_dim(0).select(-1, st.feature as i64);
                    let by = (a.neg() + st.strength).unsqueeze(-1);
                    h + by * dir
                }
            };
        }
        Ok(h)
    })
}

fn top(engine: &Engine, lp: &Tensor) -> Result<Vec<TokenProb>> {
    let (vals, idx) = lp.topk(TOP as i64, -1, true, true);
    let vals: Vec<f64> = Vec::try_from(vals.exp())?;
    let idx: Vec<i64> = Vec::try_from(idx)?;
    let ids: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
    let strings = engine.tokenizer.token_strings(&ids);
    Ok(ids.iter().zip(strings).zip(vals).map(|((&id, token), p)| TokenProb { token, id, prob: p as f32 }).collect())
}

/// Generation with and without steering, step by step.
pub fn steer(engine: &Engine, prompt: &str, steers: &[Steer], mode: Mode, s: Sampling) -> Result<Steered> {
    if prompt.trim().is_empty() {
        bail!("--prompt is empty: give the text to continue, or - to read it from standard input");
    }
    for st in steers {
        if st.feature as usize >= engine.d_sae() {
            bail!("feature {} does not exist: the SAE of layer {} has features 0..{}", st.feature, st.layer, engine.d_sae());
        }
    }
    let ids = engine.tokenizer.encode_with_bos(prompt)?;
    let n_ctx = engine.model.cfg.n_positions;
    if ids.len() + s.tokens > n_ctx {
        bail!("the prompt's {} tokens with BOS plus {} to generate exceed n_ctx {n_ctx}: shorten the prompt or ask for fewer --tokens", ids.len(), s.tokens);
    }
    let rate = |t: std::time::Instant| s.tokens as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let t0 = std::time::Instant::now();
    let plain = generate(engine, &ids, &[], mode, s, true)?;
    let default_tokens_per_s = rate(t0);
    let t1 = std::time::Instant::now();
    let steered = generate(engine, &ids, steers, mode, s, true)?;
    let steered_tokens_per_s = rate(t1);
    let mut steps = Vec::with_capacity(s.tokens);
    for (d, st) in plain.logprobs.iter().zip(&steered.logprobs) {
        let kl = (st.exp() * (st - d)).sum(Kind::Double).double_value(&[]);
        steps.push(Step { default_top: top(engine, d)?, steered_top: top(engine, st)?, kl: kl.max(0.0) });
    }
    let text = |r: &Run| Continuation { ids: r.ids.clone(), text: engine.tokenizer.token_strings(&r.ids).concat() };
    Ok(Steered {
        prompt: prompt.to_string(),
        mode,
        features: steers.to_vec(),
        temperature: s.temperature,
        seed: s.seed,
        default: text(&plain),
        steered: text(&steered),
        steps,
        default_tokens_per_s,
        steered_tokens_per_s,
    })
}

/// Greedy continuation of the token ids `prompt` (BOS included) with `steers`: the ids and
/// each step's log-probabilities over the vocabulary, for comparing with a reference.
pub fn greedy(engine: &Engine, prompt: &[u32], steers: &[Steer], mode: Mode, tokens: usize) -> Result<(Vec<u32>, Vec<Vec<f64>>)> {
    let run = generate(engine, prompt, steers, mode, Sampling { tokens, temperature: 0.0, seed: 0 }, true)?;
    let lps = run.logprobs.iter().map(|t| Vec::<f64>::try_from(t).map_err(|e| eyre!("{e}"))).collect::<Result<Vec<_>>>()?;
    Ok((run.ids, lps))
}

/// The continuation token ids with the KV cache and without it (every step recomputed),
/// and their last-step logits: for checking the cache.
pub fn check_cache(engine: &Engine, prompt: &str, tokens: usize) -> Result<(Vec<u32>, Vec<u32>, f64)> {
    let ids = engine.tokenizer.encode_with_bos(prompt)?;
    let s = Sampling { tokens, temperature: 0.0, seed: 0 };
    let a = generate(engine, &ids, &[], Mode::Add, s, true)?;
    let b = generate(engine, &ids, &[], Mode::Add, s, false)?;
    let diff = a.logprobs.iter().zip(&b.logprobs).map(|(x, y)| (x - y).abs().max().double_value(&[])).fold(0.0, f64::max);
    Ok((a.ids, b.ids, diff))
}

impl Steered {
    /// Both continuations, then a row per step: default top-5, steered top-5, KL.
    pub fn text(&self) -> String {
        let p = crate::printable::printable;
        let feats: Vec<String> = self.features.iter().map(|f| format!("{}:{}:{}", f.layer, f.feature, f.strength)).collect();
        let mut s = format!("prompt:  {}\nsteering ({:?}): {}\n\n", p(&self.prompt), self.mode, feats.join(", "));
        s.push_str(&format!("default: {}\nsteered: {}\n\n", p(&self.default.text), p(&self.steered.text)));
        s.push_str("step\tdefault top-5\tsteered top-5\tKL\n");
        let prob = |p: f32| if p >= 0.001 { format!("{p:.3}") } else { format!("{p:.1e}") };
        let row = |t: &[TokenProb]| t.iter().map(|x| format!("{:?} {}", x.token, prob(x.prob))).collect::<Vec<_>>().join(", ");
        for (i, st) in self.steps.iter().enumerate() {
            s.push_str(&format!("{}\t{}\t{}\t{:.4}\n", i + 1, p(&row(&st.default_top)), p(&row(&st.steered_top)), st.kl));
        }
        s
    }
}

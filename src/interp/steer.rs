//! Steering generation with SAE features, as Neuronpedia's steering and TransformerLens
//! hooks at the SAE's hook point (`blocks.L.hook_resid_pre`, `hook_attn_out`,
//! `attn.hook_z`...) do it:
//! - `add`: the hook's value gets `strength * W_dec[F]` at every position, prompt and
//!   generated tokens alike;
//! - `clamp`: feature F's activation is set to `strength` at every position, keeping the
//!   SAE's reconstruction error: `x + (strength - a_F(x)) * W_dec[F]`.
//!
//! Adding to the HF value equals adding to TransformerLens's: every reader of the residual
//! (each LayerNorm, ln_f) removes its mean first, and z's folded bias is a constant. A
//! clamp's SAE reads the value as TransformerLens's hook sees it (`Family::view`): for a
//! centred release, the HF value minus its per-token mean, plus the mean of what edits
//! wrote to the residual earlier in the same forward (a `W_dec` row is not mean-zero, and
//! TransformerLens keeps what a hook added; every write after it is centred). So a clamp at
//! layer 8 after an edit at layer 6 encodes what TransformerLens encodes there.
//!
//! Each feature has its own mode (`8:G:=T` clamps, `8:G:T` takes the run's `--mode`).
//!
//! The same prompt runs without steering beside it; each step records the top next tokens
//! of both and the KL divergence between the two distributions.

use crate::model::hooks::{HookPoint, Site};
use crate::model::{HookEdit, KvCache};
use crate::pipeline::Engine;
use crate::sae::key::SaeKey;
use color_eyre::eyre::{bail, eyre, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Edit {
    Add,
    Clamp,
}

/// One `--feature SAE:F:STRENGTH` (the run's mode) or `SAE:F:=STRENGTH` (clamp), where SAE
/// names a loaded SAE as `sae_key::pick` reads it (a layer number, a hook, a tab's label).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Steer {
    pub sae: String,
    pub feature: u32,
    pub strength: f64,
    /// None: the run's mode.
    pub mode: Option<Edit>,
}

impl Steer {
    /// Steering by the run's mode.
    pub fn new(sae: SaeKey, feature: u32, strength: f64) -> Self {
        Self { sae: sae.to_string(), feature, strength, mode: None }
    }

    pub fn mode_or(&self, run: Edit) -> Edit {
        self.mode.unwrap_or(run)
    }

    /// As `--feature` takes it: `L:F:S`, or `L:F:=S` for a clamp in a run of another mode.
    pub fn spec(&self, run: Edit) -> String {
        let clamp = if self.mode_or(run) == Edit::Clamp && run != Edit::Clamp { "=" } else { "" };
        format!("{}:{}:{clamp}{}", self.sae, self.feature, self.strength)
    }
}

impl std::str::FromStr for Steer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [l, f, st] = parts.as_slice() else {
            return Err(format!(
                "{s:?}: expected SAE:FEATURE:STRENGTH, e.g. 8:1234:40 (8:1234:=40 clamps; SAE is a layer, a hook or a label such as '8 res 24k')"
            ));
        };
        let (mode, st) = match st.trim().strip_prefix('=') {
            Some(rest) => (Some(Edit::Clamp), rest),
            None => (None, *st),
        };
        let sae = l.trim().to_string();
        if sae.is_empty() {
            return Err(format!("{s:?}: name the SAE before the first colon (a layer, a hook or a label)"));
        }
        let feature = f.trim().parse().map_err(|_| format!("{s:?}: feature {f:?} is not a number"))?;
        let strength: f64 = st.trim().parse().map_err(|_| format!("{s:?}: strength {st:?} is not a number"))?;
        if !strength.is_finite() {
            return Err(format!("{s:?}: the strength must be a finite number"));
        }
        Ok(Self { sae, feature, strength, mode })
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
    pub mode: Edit,
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
struct Generation {
    ids: Vec<u32>,
    logprobs: Vec<Tensor>,
}

/// One generation, a step at a time: the default and the steered run advance in lockstep so
/// the explorer can show both as they grow.
struct Generator<'a> {
    engine: &'a Engine,
    hook: HookEdit<'a>,
    rng: rand_chacha::ChaCha8Rng,
    cache: KvCache,
    ids: Vec<u32>,
    next_input: Vec<u32>,
    prompt_len: usize,
    logprobs: Vec<Tensor>,
    s: Sampling,
    /// One new position per step (false recomputes the whole sequence, to check the cache).
    cached: bool,
    /// Time spent in steps.
    busy: std::time::Duration,
}

impl<'a> Generator<'a> {
    fn new(engine: &'a Engine, prompt: &[u32], hook: HookEdit<'a>, s: Sampling, cached: bool) -> Self {
        Self {
            engine,
            hook,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(s.seed),
            cache: KvCache::default(),
            ids: prompt.to_vec(),
            next_input: prompt.to_vec(),
            prompt_len: prompt.len(),
            logprobs: Vec::with_capacity(s.tokens),
            s,
            cached,
            busy: std::time::Duration::ZERO,
        }
    }

    fn step(&mut self) -> Result<()> {
        let t0 = std::time::Instant::now();
        let logits = if self.cached {
            self.engine.model.forward_cached(&self.next_input, &mut self.cache, &mut self.hook)?
        } else {
            self.engine.model.forward_cached(&self.ids, &mut KvCache::default(), &mut self.hook)?
        };
        let last = logits.get(logits.size()[0] - 1);
        let lp = last.log_softmax(-1, Kind::Double);
        let next = if self.s.temperature <= 0.0 {
            lp.argmax(-1, false).int64_value(&[]) as u32
        } else {
            let probs: Vec<f64> = Vec::<f64>::try_from((&last.to_kind(Kind::Double) / self.s.temperature).softmax(-1, Kind::Double))?;
            let u: f64 = self.rng.gen();
            let mut acc = 0.0;
            probs
                .iter()
                .position(|&p| {
                    acc += p;
                    acc > u
                })
                .unwrap_or(probs.len() - 1) as u32
        };
        self.logprobs.push(lp);
        self.ids.push(next);
        self.next_input = vec![next];
        self.busy += t0.elapsed();
        Ok(())
    }

    fn generated(&self) -> &[u32] {
        &self.ids[self.prompt_len..]
    }
}

/// Generates `s.tokens` tokens after `prompt`, with `steers` applied in `mode` (none: the
/// plain model).
fn generate(engine: &Engine, prompt: &[u32], steers: &[Steer], mode: Edit, s: Sampling, cached: bool) -> Result<Generation> {
    let _guard = tch::no_grad_guard();
    let mut g = Generator::new(engine, prompt, hook(engine, steers, mode)?, s, cached);
    for _ in 0..s.tokens {
        crate::runtime::interrupt::check()?;
        g.step()?;
    }
    Ok(Generation { ids: g.generated().to_vec(), logprobs: g.logprobs })
}

/// The hook edit that applies `steers`, each at its SAE's hook in its own mode or the run's
/// `mode` (none: the identity).
fn hook<'a>(engine: &'a Engine, steers: &'a [Steer], mode: Edit) -> Result<HookEdit<'a>> {
    let mut dirs = Vec::new();
    for st in steers {
        let (key, sae) = engine.pick(&st.sae)?;
        if sae.sequential() && st.mode_or(mode) == Edit::Clamp {
            bail!(
                "{key} is a temporal SAE: its feature {} depends on the text before it, which a clamp sees only a token at a time while generating; steer it by adding its direction (a strength without =)",
                st.feature
            );
        }
        let dir = sae.direction(st.feature)?;
        let dir_mean = dir.mean(dir.kind());
        dirs.push((st, key.hook, st.mode_or(mode), sae, dir, dir_mean));
    }
    // Per position, the mean over d_model of what this forward's edits wrote to the residual
    // so far: the part of TransformerLens's residual that centring the HF stream removes.
    let mut added: Option<Tensor> = None;
    let sum = |acc: Option<Tensor>, x: &Tensor| Some(acc.map_or_else(|| x.shallow_clone(), |m| m + x));
    // The first hook of every forward starts its tally afresh.
    let first = HookPoint::new(0, Site::ResidPre);
    let at = dirs.iter().map(|d| d.1).chain([first]).collect();
    Ok(HookEdit::new(at, move |point: HookPoint, mut h: Tensor| -> Result<Tensor> {
        if point == first {
            added = None;
        }
        // The same for edits at this hook alone: what a centred attn_out or mlp_out hook
        // holds of the edits made to it before this one.
        let mut here: Option<Tensor> = None;
        for (st, _, mode, sae, dir, dir_mean) in dirs.iter().filter(|(_, at, ..)| *at == point) {
            // The edit as a multiple of the direction: a number, or one per position.
            let by = match mode {
                Edit::Add => Tensor::from(st.strength).to_kind(h.kind()).to_device(h.device()),
                Edit::Clamp => {
                    // An SAE trained on uncentred values reads them as they are.
                    let seen = engine.model.view(point, &h, sae.cfg.processing)?;
                    let offset = if point.site.is_residual() { &added } else { &here };
                    let seen = match offset {
                        Some(m) if sae.cfg.processing.center_writing_weights && point.site.writes_residual() => seen + m,
                        _ => seen,
                    };
                    let a = sae.encode(&seen.unsqueeze(0)).squeeze_dim(0).select(-1, st.feature as i64);
                    (a.neg() + st.strength).unsqueeze(-1)
                }
            };
            if point.site.writes_residual() {
                let mean = &by * dir_mean;
                added = sum(added.take(), &mean);
                here = sum(here.take(), &mean);
            }
            h = h.f_add(&(by * dir))?;
        }
        Ok(h)
    }))
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
pub fn steer(engine: &Engine, prompt: &str, steers: &[Steer], mode: Edit, s: Sampling) -> Result<Steered> {
    steer_streaming(engine, prompt, steers, mode, s, &mut |_| {})
}

/// `steer`, telling `on_step` the continuations so far after every step but the last.
pub fn steer_streaming(engine: &Engine, prompt: &str, steers: &[Steer], mode: Edit, s: Sampling, on_step: &mut dyn FnMut(&Steered)) -> Result<Steered> {
    if prompt.trim().is_empty() {
        bail!("--prompt is empty: give the text to continue, or - to read it from standard input");
    }
    let steers: Vec<Steer> = steers.iter().map(|st| Steer { mode: Some(st.mode_or(mode)), ..st.clone() }).collect();
    let steers = steers.as_slice();
    for st in steers {
        let (_, sae) = engine.pick(&st.sae)?;
        if st.feature as usize >= sae.d_sae {
            bail!("feature {} does not exist: SAE {} has features 0..{}", st.feature, st.sae, sae.d_sae);
        }
    }
    let ids = engine.tokenizer.encode_text(prompt)?;
    let n_ctx = engine.model.n_ctx();
    if ids.len() + s.tokens > n_ctx {
        bail!("the prompt's {} tokens with BOS plus {} to generate exceed n_ctx {n_ctx}: shorten the prompt or ask for fewer --tokens", ids.len(), s.tokens);
    }
    let _guard = tch::no_grad_guard();
    let mut plain = Generator::new(engine, &ids, hook(engine, &[], mode)?, s, true);
    let mut steered = Generator::new(engine, &ids, hook(engine, steers, mode)?, s, true);
    let mut out = Steered {
        prompt: prompt.to_string(),
        mode,
        features: steers.to_vec(),
        temperature: s.temperature,
        seed: s.seed,
        default: Continuation { ids: Vec::new(), text: String::new() },
        steered: Continuation { ids: Vec::new(), text: String::new() },
        steps: Vec::with_capacity(s.tokens),
        default_tokens_per_s: 0.0,
        steered_tokens_per_s: 0.0,
    };
    let text = |ids: &[u32]| Continuation { ids: ids.to_vec(), text: engine.tokenizer.token_strings(ids).concat() };
    for i in 0..s.tokens {
        crate::runtime::interrupt::check()?;
        plain.step()?;
        steered.step()?;
        let (d, st) = (&plain.logprobs[i], &steered.logprobs[i]);
        let kl = (st.exp() * (st - d)).sum(Kind::Double).double_value(&[]);
        out.steps.push(Step { default_top: top(engine, d)?, steered_top: top(engine, st)?, kl: kl.max(0.0) });
        out.default = text(plain.generated());
        out.steered = text(steered.generated());
        if i + 1 < s.tokens {
            on_step(&out);
        }
    }
    let rate = |g: std::time::Duration| s.tokens as f64 / g.as_secs_f64().max(1e-9);
    out.default_tokens_per_s = rate(plain.busy);
    out.steered_tokens_per_s = rate(steered.busy);
    Ok(out)
}

/// Greedy continuation of the token ids `prompt` (BOS included) with `steers`: the ids and
/// each step's log-probabilities over the vocabulary, for comparing with a reference.
pub fn greedy(engine: &Engine, prompt: &[u32], steers: &[Steer], mode: Edit, tokens: usize) -> Result<(Vec<u32>, Vec<Vec<f64>>)> {
    let run = generate(engine, prompt, steers, mode, Sampling { tokens, temperature: 0.0, seed: 0 }, true)?;
    let lps = run.logprobs.iter().map(|t| Vec::<f64>::try_from(t).map_err(|e| eyre!("{e}"))).collect::<Result<Vec<_>>>()?;
    Ok((run.ids, lps))
}

/// The continuation token ids with the KV cache and without it (every step recomputed),
/// and their last-step logits: for checking the cache.
pub fn check_cache(engine: &Engine, prompt: &str, tokens: usize) -> Result<(Vec<u32>, Vec<u32>, f64)> {
    let ids = engine.tokenizer.encode_text(prompt)?;
    let s = Sampling { tokens, temperature: 0.0, seed: 0 };
    let a = generate(engine, &ids, &[], Edit::Add, s, true)?;
    let b = generate(engine, &ids, &[], Edit::Add, s, false)?;
    let diff = a.logprobs.iter().zip(&b.logprobs).map(|(x, y)| (x - y).abs().max().double_value(&[])).fold(0.0, f64::max);
    Ok((a.ids, b.ids, diff))
}

/// A probability in a few characters: 0.123, or 4.2e-5 when small.
pub fn prob_text(p: f32) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

impl Steered {
    /// Both continuations, then a row per step: default top-5, steered top-5, KL.
    pub fn text(&self) -> String {
        let p = crate::runtime::printable::printable;
        let feats: Vec<String> = self.features.iter().map(|f| f.spec(self.mode)).collect();
        let mut s = format!("prompt:  {}\nsteering ({:?}): {}\n\n", p(&self.prompt), self.mode, feats.join(", "));
        s.push_str(&format!("default: {}\nsteered: {}\n\n", p(&self.default.text), p(&self.steered.text)));
        s.push_str("step\tdefault top-5\tsteered top-5\tKL\n");
        let row = |t: &[TokenProb]| t.iter().map(|x| format!("{:?} {}", x.token, prob_text(x.prob))).collect::<Vec<_>>().join(", ");
        for (i, st) in self.steps.iter().enumerate() {
            s.push_str(&format!("{}\t{}\t{}\t{:.4}\n", i + 1, p(&row(&st.default_top)), p(&row(&st.steered_top)), st.kl));
        }
        s
    }
}

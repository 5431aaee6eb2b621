//! How good each loaded SAE is on a set of texts, measured as SAELens's evals.py
//! (`run_evals`) measures it, so a number here means what it means there and on SAEBench:
//! - sparsity and reconstruction over every token but the structural special ones (BOS,
//!   EOS, PAD), at the SAE's hook as TransformerLens holds it: L0, L1, explained variance
//!   (the streaming definition SAELens corrected to, `1 - E||x - x̂||² / (E||x||² -
//!   ||E x||²)`, and the legacy per-token one whose "batch" is the whole set), MSE, cosine,
//!   norms and relative reconstruction bias;
//! - downstream: the reconstruction spliced into the forward at the hook at every position
//!   but the special ones, and zeros at every position for the ablation; next-token cross
//!   entropy over positions whose input is not special, and KL(clean || spliced) over
//!   every such position. Texts run in padded batches; padding enters no loss (a position
//!   whose target is padding is left out, as a text run alone has no target there);
//! - feature density over the same tokens: dead (never fired), dense (> 1%, > 10%).
//!
//! A temporal SAE's reconstruction is what SAELens's `TemporalSAE.forward` returns: the
//! novel codes and those predicted from earlier positions, decoded together
//! (`Sae::reconstruct`). SAELens's `run_evals` calls `decode(encode(x))`, which for it
//! decodes the novel codes alone and warns that the prediction is missing; saescope
//! measures the SAE's whole reconstruction instead. L0, L1 and density count the novel
//! codes, the features it reports.
//!
//! A splice acts on the model's own value `h` through the hook's view `v = view(h)`: the
//! new value is `h + (v' - v)`, which TransformerLens sees as `v'` up to a per-token
//! constant that every reader of the residual (a LayerNorm) removes (family.rs).

use crate::model::hooks::HookPoint;
use crate::model::HookEdit;
use crate::pipeline::{pack, plan, Engine};
use crate::runtime::progress::{Progress, ProgressSink};
use crate::sae::Sae;
use color_eyre::eyre::Result;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// One SAE's quality on the texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// The SAE, as its tab names it (sae_key.rs).
    pub sae: String,
    pub hook: String,
    /// Tokens every sparsity and reconstruction figure is over (special tokens left out).
    pub tokens: u64,
    pub l0: f64,
    pub l1: f64,
    pub explained_variance: f64,
    pub explained_variance_legacy: f64,
    pub mse: f64,
    pub cossim: f64,
    pub l2_norm_in: f64,
    pub l2_norm_out: f64,
    pub l2_ratio: f64,
    pub relative_reconstruction_bias: f64,
    pub ce_loss_without_sae: f64,
    pub ce_loss_with_sae: f64,
    pub ce_loss_with_ablation: f64,
    pub ce_loss_score: f64,
    pub kl_div_with_sae: f64,
    pub kl_div_with_ablation: f64,
    pub kl_div_score: f64,
    /// Positions the cross entropy and the KL are averaged over.
    pub ce_tokens: u64,
    pub kl_tokens: u64,
    pub d_sae: usize,
    /// Features that never fired on these tokens.
    pub dead: usize,
    /// Features firing on more than 1% and 10% of them.
    pub dense_1pct: usize,
    pub dense_10pct: usize,
    /// Per feature, the share of tokens it fired on.
    #[serde(skip)]
    pub density: Vec<f64>,
    /// Per text (in input order), the mean input norm over its counted tokens; NaN for a
    /// text with none.
    #[serde(skip)]
    pub text_norms: Vec<f64>,
}

impl Quality {
    /// The figures the SAE overview shows, each a short phrase.
    pub fn parts(&self) -> Vec<String> {
        let mut parts = vec![format!("L0 {:.1}", self.l0), format!("EV {:.3}", self.explained_variance), format!("cos {:.3}", self.cossim)];
        if self.ce_loss_score.is_finite() || self.kl_div_score.is_finite() {
            parts.push(format!("CE score {:.3}", self.ce_loss_score));
            parts.push(format!("KL score {:.3}", self.kl_div_score));
        }
        parts.push(format!("dead {}/{}", self.dead, self.d_sae));
        parts.push(format!("dense>10% {}", self.dense_10pct));
        parts
    }
}

/// Every figure of the loaded SAEs on the texts, as `text` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Eval {
    /// What the texts were (the samples file, or the corpus and its windows).
    pub texts: String,
    pub n_texts: usize,
    pub saes: Vec<Quality>,
}

/// Sums over tokens for one SAE, in f64 so that a long corpus adds up the same in any
/// batch order to the last digits the comparison needs.
#[derive(Default)]
struct Sums {
    n: u64,
    l0: f64,
    l1: f64,
    sq_norm: f64,
    sq_res: f64,
    sum_x: Vec<f64>,
    cos: f64,
    norm_in: f64,
    norm_out: f64,
    ratio: f64,
    xhat_sq: f64,
    x_dot_xhat: f64,
    fired: Vec<f64>,
    /// Per counted token in pass order: ||x - x̂||², for the legacy variance once the mean
    /// is known.
    residuals: Vec<f64>,
    text_norm: Vec<(f64, u64)>,
    legacy: f64,
    ce: [f64; 3],
    kl: [f64; 2],
    ce_n: u64,
    kl_n: u64,
}

/// `EvalOptions::keep_values` by default: 32M f64, 256 MB.
pub const KEEP_VALUES: usize = 1 << 25;

impl Sums {
    /// The legacy explained variance's terms of the counted inputs `xd` [n, d] (f64) that
    /// start at token `at` of the pass, against the whole set's `mean`.
    fn add_legacy(&mut self, xd: &Tensor, mean: &Tensor, at: usize) -> Result<()> {
        let var = to_f64s(&(xd - mean.to_device(xd.device())).square().sum_dim_intlist(-1, false, Kind::Double))?;
        for (k, v) in var.into_iter().enumerate() {
            self.legacy += 1.0 - self.residuals[at + k] / v;
        }
        Ok(())
    }
}

fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

fn to_f64s(t: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Double).contiguous().view([-1]))?)
}

/// True where a token is not one of `special`.
fn counted(ids: &Tensor, special: &[u32]) -> Tensor {
    let mut keep = ids.ones_like().to_kind(Kind::Bool);
    for &s in special {
        keep = keep.logical_and(&ids.ne(i64::from(s)));
    }
    keep
}

/// Measures every loaded SAE on `texts` (token ids, BOS first). Three passes: the hooks
/// once for sparsity and reconstruction, again for the legacy variance (whose mean is the
/// whole set's), then per text the clean, spliced and ablated forwards.
/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalOptions {
    /// Padded tokens per batch.
    pub batch_tokens: usize,
    /// The CE and KL figures too (each SAE's spliced and ablated forwards through every
    /// block); without them they are NaN (null in JSON).
    pub downstream: bool,
    /// One SAE only (the overview's); None: every loaded SAE.
    pub only: Option<crate::sae::key::SaeKey>,
    /// Values (tokens × widths) of counted inputs kept in memory for the legacy variance,
    /// which needs the whole set's mean first; past it the hooks run a second time.
    pub keep_values: usize,
}

impl EvalOptions {
    /// Every figure of every SAE.
    pub fn all(batch_tokens: usize) -> Self {
        Self { batch_tokens, downstream: true, only: None, keep_values: KEEP_VALUES }
    }

    /// The reconstruction figures alone (no spliced forwards).
    pub fn reconstruction(batch_tokens: usize) -> Self {
        Self { downstream: false, ..Self::all(batch_tokens) }
    }
}

pub fn evaluate(engine: &Engine, texts: &[Vec<u32>], label: String, opts: &EvalOptions, progress: &ProgressSink) -> Result<Eval> {
    let _guard = tch::no_grad_guard();
    let measured = |si: usize| opts.only.is_none_or(|k| engine.saes[si].0 == k);
    let special = engine.tokenizer.special_ids();
    let mut sums: Vec<Sums> = engine
        .saes
        .iter()
        .map(|(_, sae)| Sums { sum_x: vec![0.0; sae.cfg.d_in], fired: vec![0.0; sae.d_sae], text_norm: vec![(0.0, 0); texts.len()], ..Default::default() })
        .collect();
    let batches = plan(texts, opts.batch_tokens);
    let total = texts.len() as u64 * 2;
    let mut done = 0u64;
    // The counted inputs of every batch, where they fit in `keep_values`, so the legacy
    // variance (which needs the whole set's mean first) needs no second forward.
    let width: usize = engine.saes.iter().map(|(_, s)| s.cfg.d_in).sum();
    let counted_tokens: usize = texts.iter().map(|t| t.len()).sum();
    let mut kept: Option<Vec<Vec<(Tensor, usize)>>> = (width * counted_tokens <= opts.keep_values).then(|| engine.saes.iter().map(|_| Vec::new()).collect());
    for (pass, label) in [(0, "eval: encoding"), (1, "eval: legacy variance")] {
        if pass == 1 {
            if let Some(kept) = kept.take() {
                for (si, batches) in kept.iter().enumerate() {
                    let mean = Tensor::from_slice(&sums[si].sum_x) / sums[si].n.max(1) as f64;
                    for (xd, at) in batches {
                        sums[si].add_legacy(xd, &mean, *at)?;
                    }
                }
                break;
            }
        }
        let means: Vec<Tensor> = sums.iter().map(|s| Tensor::from_slice(&s.sum_x) / s.n.max(1) as f64).collect();
        let mut at = 0usize;
        for batch in &batches {
            crate::runtime::interrupt::check()?;
            let p = pack(batch.iter().map(|&i| texts[i].as_slice()), true, engine.tokenizer.bos);
            let keep = counted(&p.ids, &special).logical_and(&p.mask);
            let t = p.ids.size()[1];
            let rows = keep.view([-1]).nonzero().squeeze_dim(1);
            let row_of: Vec<i64> = Vec::try_from(&rows / t)?;
            let inputs = engine.inputs(&p)?;
            for (si, (input, (_, sae))) in inputs.iter().zip(&engine.saes).enumerate().filter(|(si, _)| measured(*si)) {
                let s = &mut sums[si];
                let d = input.size()[2];
                let x = input.view([-1, d]).index_select(0, &rows.to_device(input.device()));
                let xd = x.to_kind(Kind::Double);
                if pass == 1 {
                    s.add_legacy(&xd, &means[si], at)?;
                    continue;
                }
                if let Some(kept) = kept.as_mut() {
                    kept[si].push((xd.to_device(Device::Cpu), at));
                }
                // A temporal SAE reads each text whole from its first position (its codes
                // depend on the positions before): encoded as [texts, t, d], then the
                // counted rows taken, as the others' are.
                let (f, xh) = if sae.sequential() {
                    let (f, xh) = sae.reconstruct(input)?;
                    let rows = rows.to_device(f.device());
                    (f.view([-1, sae.d_sae as i64]).index_select(0, &rows), xh.view([-1, d]).index_select(0, &rows))
                } else {
                    sae.reconstruct(&x)?
                };
                let xh = xh.to_kind(Kind::Double);
                // Per-feature firing counts first: L0 is their sum, so the [tokens, d_sae]
                // activations are read twice (counts, L1), not four times.
                let fired = to_f64s(&f.ne(0.0).sum_dim_intlist(0, false, Kind::Int64))?;
                s.n += x.size()[0] as u64;
                s.l0 += fired.iter().sum::<f64>();
                s.l1 += scalar(&f.abs().sum(Kind::Float));
                for (acc, v) in s.fired.iter_mut().zip(fired) {
                    *acc += v;
                }
                for (acc, v) in s.sum_x.iter_mut().zip(to_f64s(&xd.sum_dim_intlist(0, false, Kind::Double))?) {
                    *acc += v;
                }
                let res = (&xd - &xh).square().sum_dim_intlist(-1, false, Kind::Double);
                s.sq_norm += scalar(&xd.square().sum(Kind::Double));
                s.sq_res += scalar(&res.sum(Kind::Double));
                s.residuals.extend(to_f64s(&res)?);
                let n_in = xd.norm_scalaropt_dim(2, [-1i64].as_slice(), false);
                let n_out = xh.norm_scalaropt_dim(2, [-1i64].as_slice(), false);
                let dot = (&xd * &xh).sum_dim_intlist(-1, false, Kind::Double);
                s.norm_in += scalar(&n_in.sum(Kind::Double));
                s.norm_out += scalar(&n_out.sum(Kind::Double));
                // SAELens divides by 1 where the input's norm is below 1e-4.
                let divisor = n_in.where_scalarother(&n_in.abs().ge(1e-4), 1.0);
                s.ratio += scalar(&(&n_out / divisor).sum(Kind::Double));
                s.cos += scalar(&(&dot / (&n_in * &n_out)).sum(Kind::Double));
                s.xhat_sq += scalar(&n_out.square().sum(Kind::Double));
                s.x_dot_xhat += scalar(&dot.sum(Kind::Double));
                for (r, norm) in row_of.iter().zip(to_f64s(&n_in)?) {
                    let slot = &mut s.text_norm[batch[(*r) as usize]];
                    slot.0 += norm;
                    slot.1 += 1;
                }
            }
            at += row_of.len();
            done += batch.len() as u64;
            progress.send(Progress::Fraction { label: label.into(), done, total });
        }
    }
    if opts.downstream {
        downstream(engine, texts, &special, opts, &mut sums, progress)?;
    }
    let saes = engine
        .saes
        .iter()
        .zip(sums)
        .enumerate()
        .filter(|(si, _)| measured(*si))
        .map(|(_, ((key, sae), s))| finish(key.to_string(), key.hook, sae, s, opts.downstream))
        .collect();
    Ok(Eval { texts: label, n_texts: texts.len(), saes })
}

/// Values of a [.., vocab] tensor at or below this many elements per batch: the logits of
/// the clean, spliced and ablated forwards are alive together (Gemma's vocabulary is 262k).
const LOGIT_ELEMENTS: usize = 1 << 26;

/// Batch by batch: the clean forward once, then for each SAE the spliced and the ablated one.
fn downstream(engine: &Engine, texts: &[Vec<u32>], special: &[u32], opts: &EvalOptions, sums: &mut [Sums], progress: &ProgressSink) -> Result<()> {
    let model = &engine.model;
    let (mut done, total) = (0u64, texts.len() as u64);
    for batch in plan(texts, opts.batch_tokens.min(LOGIT_ELEMENTS / model.vocab_size().max(1)).max(1)) {
        crate::runtime::interrupt::check()?;
        let p = pack(batch.iter().map(|&i| texts[i].as_slice()), true, engine.tokenizer.bos);
        let t = p.ids.size()[1];
        let device = model.device();
        let keep = counted(&p.ids, special).logical_and(&p.mask).to_device(device);
        // Position i predicts token i + 1: its input counts and its target is a real token.
        let ce_keep = keep.narrow(1, 0, t - 1).logical_and(&p.mask.narrow(1, 1, t - 1).to_device(device));
        let targets = p.ids.narrow(1, 1, t - 1).to_device(device).unsqueeze(-1);
        let ce_n = scalar(&ce_keep.sum(Kind::Int64)) as u64;
        let kl_n = scalar(&keep.sum(Kind::Int64)) as u64;
        let run = |edit: &mut HookEdit| -> Result<Tensor> { Ok(model.logits_each(&p.ids, &p.mask, edit)?.log_softmax(-1, Kind::Float)) };
        let ce = |lp: &Tensor| -> f64 {
            let per = lp.narrow(1, 0, t - 1).gather(2, &targets, false).squeeze_dim(-1).neg();
            scalar(&per.to_kind(Kind::Double).masked_select(&ce_keep).sum(Kind::Double))
        };
        let clean = run(&mut HookEdit::observe(Vec::new(), |_, _| Ok(())))?;
        let p_clean = clean.exp();
        let kl = |lp: &Tensor| -> f64 {
            let per = (&p_clean * (&clean - lp)).sum_dim_intlist(-1, false, Kind::Double);
            scalar(&per.masked_select(&keep).sum(Kind::Double))
        };
        let ce_clean = ce(&clean);
        for ((key, sae), s) in engine.saes.iter().zip(sums.iter_mut()).filter(|((k, _), _)| opts.only.is_none_or(|o| o == *k)) {
            let spliced = run(&mut splice(engine, key.hook, sae, Some(&keep)))?;
            let (ce_sae, kl_sae) = (ce(&spliced), kl(&spliced));
            drop(spliced);
            let ablated = run(&mut splice(engine, key.hook, sae, None))?;
            s.ce[0] += ce_clean;
            s.ce[1] += ce_sae;
            s.ce[2] += ce(&ablated);
            s.kl[0] += kl_sae;
            s.kl[1] += kl(&ablated);
            s.ce_n += ce_n;
            s.kl_n += kl_n;
        }
        done += batch.len() as u64;
        progress.send(Progress::Fraction { label: "eval: spliced forwards".into(), done, total });
    }
    Ok(())
}

/// The edit at `hook` that puts the SAE's reconstruction where `keep` is true (None: zeros
/// everywhere), as TransformerLens's hook would see it.
fn splice<'a>(engine: &'a Engine, hook: HookPoint, sae: &'a Sae, keep: Option<&'a Tensor>) -> HookEdit<'a> {
    HookEdit::new(vec![hook], move |point: HookPoint, h: Tensor| -> Result<Tensor> {
        let v = engine.model.view(point, &h, sae.cfg.processing)?;
        // The hook's value is [texts, t, d]: whole sequences, as a temporal SAE needs.
        let new = match keep {
            Some(_) => sae.reconstruct(&v)?.1.to_kind(v.kind()),
            None => v.zeros_like(),
        };
        let spliced = engine.model.unview(point, &h, &new, sae.cfg.processing)?;
        // Positions left out (padding, BOS where SAELens skips it) keep their value exactly.
        Ok(match keep {
            Some(keep) => spliced.where_self(&keep.unsqueeze(-1), &h),
            None => spliced,
        })
    })
}

fn finish(sae: String, hook: HookPoint, s_sae: &Sae, s: Sums, downstream: bool) -> Quality {
    let n = s.n.max(1) as f64;
    let mean_sq = s.sq_norm / n;
    let mean_x2: f64 = s.sum_x.iter().map(|v| (v / n).powi(2)).sum();
    let total_variance = mean_sq - mean_x2;
    let mse = s.sq_res / n;
    let explained_variance = if total_variance < 1e-10 { f64::from(u8::from(mse < 1e-10)) } else { 1.0 - mse / total_variance };
    let density: Vec<f64> = s.fired.iter().map(|c| c / n).collect();
    let count = |f: &dyn Fn(f64) -> bool| density.iter().filter(|&&d| f(d)).count();
    let (ce_n, kl_n) = (s.ce_n.max(1) as f64, s.kl_n.max(1) as f64);
    let unmeasured = |x: f64| if downstream { x } else { f64::NAN };
    let [ce_clean, ce_sae, ce_abl] = s.ce.map(|c| unmeasured(c / ce_n));
    let [kl_sae, kl_abl] = s.kl.map(|k| unmeasured(k / kl_n));
    Quality {
        sae,
        hook: hook.to_string(),
        tokens: s.n,
        l0: s.l0 / n,
        l1: s.l1 / n,
        explained_variance,
        explained_variance_legacy: s.legacy / n,
        mse,
        cossim: s.cos / n,
        l2_norm_in: s.norm_in / n,
        l2_norm_out: s.norm_out / n,
        l2_ratio: s.ratio / n,
        relative_reconstruction_bias: s.xhat_sq / s.x_dot_xhat,
        ce_loss_without_sae: ce_clean,
        ce_loss_with_sae: ce_sae,
        ce_loss_with_ablation: ce_abl,
        ce_loss_score: (ce_abl - ce_sae) / (ce_abl - ce_clean),
        kl_div_with_sae: kl_sae,
        kl_div_with_ablation: kl_abl,
        kl_div_score: (kl_abl - kl_sae) / kl_abl,
        ce_tokens: s.ce_n,
        kl_tokens: s.kl_n,
        d_sae: s_sae.d_sae,
        dead: count(&|d| d == 0.0),
        dense_1pct: count(&|d| d > 0.01),
        dense_10pct: count(&|d| d > 0.1),
        density,
        text_norms: s.text_norm.iter().map(|&(sum, k)| if k == 0 { f64::NAN } else { sum / k as f64 }).collect(),
    }
}

impl Eval {
    /// A table: a row per SAE, then what the columns mean.
    pub fn text(&self) -> String {
        let mut s = format!("SAE quality on {} ({} texts; special tokens left out, as SAELens's run_evals)\n\n", self.texts, self.n_texts);
        s.push_str("SAE\ttokens\tL0\tEV\tEV legacy\tMSE\tcos\tL2 ratio\trel. bias\tCE clean\tCE SAE\tCE ablated\tCE score\tKL SAE\tKL ablated\tKL score\tdead\tdense>1%\tdense>10%\n");
        for q in &self.saes {
            s.push_str(&format!(
                "{}\t{}\t{:.2}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.3}\t{:.3}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{}/{}\t{}\t{}\n",
                q.sae,
                q.tokens,
                q.l0,
                q.explained_variance,
                q.explained_variance_legacy,
                q.mse,
                q.cossim,
                q.l2_ratio,
                q.relative_reconstruction_bias,
                q.ce_loss_without_sae,
                q.ce_loss_with_sae,
                q.ce_loss_with_ablation,
                q.ce_loss_score,
                q.kl_div_with_sae,
                q.kl_div_with_ablation,
                q.kl_div_score,
                q.dead,
                q.d_sae,
                q.dense_1pct,
                q.dense_10pct
            ));
        }
        s.push_str(
            "\nEV: 1 - E||x - x̂||² / total variance; EV legacy: per token against the set's mean. CE score: (CE ablated - CE SAE) / (CE ablated - CE clean); \
             KL score: (KL ablated - KL SAE) / KL ablated; the SAE's reconstruction spliced in at its hook, zeros for the ablation.\n",
        );
        s
    }
}

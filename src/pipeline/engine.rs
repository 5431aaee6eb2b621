//! The loaded model and SAEs, and the loop that streams texts through them batch by batch.

use super::{pack_framed, plan, Packed, Resolved, Run, RunOptions};
use crate::activations::SparseVec;
use crate::corpus::samples::Samples;
use crate::model::hooks::HookPoint;
use crate::model::tokenizer::Tokenizer;
use crate::model::Family;
use crate::runtime::progress::{Progress, ProgressSink};
use crate::sae::key::SaeKey;
use crate::sae::Sae;
use color_eyre::eyre::{bail, eyre, Result};
use tch::{Device, Kind, Tensor};

/// Token ids with their text and logits, as a logit lens lists them.
pub type TokenLogits = Vec<(u32, String, f32)>;

pub struct Engine {
    pub model: Box<dyn Family>,
    pub tokenizer: Tokenizer,
    /// (key, SAE), sorted by key: by depth, then width.
    pub saes: Vec<(SaeKey, Sae)>,
    /// Each SAE's Neuronpedia id, where known.
    pub neuronpedia: crate::sae::neuronpedia_id::Ids,
    pub model_label: String,
    pub sae_label: String,
}

impl Engine {
    /// Resolves (downloading if needed) and loads the model blocks and SAEs `run` names,
    /// in its dtype and within its memory limit; decoders are read when first used.
    pub fn load(run: &Run, progress: &ProgressSink) -> Result<Self> {
        Resolved::new(&run.model, &run.saes, progress)?.load(run.device, false, &run.opts, progress)
    }

    pub fn keys(&self) -> Vec<SaeKey> {
        self.saes.iter().map(|(k, _)| *k).collect()
    }

    /// The loaded SAE `key` names.
    /// The logit lens of `features` of SAE `key`, each as its `k` most promoted and `k`
    /// most suppressed tokens (id, text, logit), descending and ascending: the decoder
    /// rows as what they add to the residual, through the final norm's scale and the
    /// unembedding (TransformerLens's `W_dec @ W_U`). In one matmul for all of them.
    pub fn logit_lens(&self, key: SaeKey, features: &[u32], k: usize) -> Result<Vec<[TokenLogits; 2]>> {
        let logits = self.logit_lens_rows(key, features)?;
        let k = k.min(logits.size()[1] as usize) as i64;
        let pick = |largest: bool| -> Result<Vec<TokenLogits>> {
            let (vals, ids) = logits.topk(k, 1, largest, true);
            let vals = Vec::<f32>::try_from(vals.contiguous().view([-1]))?;
            let ids = Vec::<i64>::try_from(ids.contiguous().view([-1]))?;
            Ok(ids
                .chunks(k as usize)
                .zip(vals.chunks(k as usize))
                .map(|(i, v)| {
                    let ids: Vec<u32> = i.iter().map(|&i| i as u32).collect();
                    let names = self.tokenizer.token_strings(&ids);
                    ids.into_iter().zip(names).zip(v.iter().copied()).map(|((id, name), logit)| (id, name, logit)).collect()
                })
                .collect())
        };
        Ok(pick(true)?.into_iter().zip(pick(false)?).map(|(p, n)| [p, n]).collect())
    }

    /// The whole logit-lens rows of `features` of SAE `key`, [features, vocab] f32 on the
    /// CPU (what `logit_lens` ranks; the Neuronpedia export's logit histogram). A
    /// transcoder's decoder writes its output hook, so its rows are read from there.
    pub fn logit_lens_rows(&self, key: SaeKey, features: &[u32]) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let sae = self.sae(key)?;
        if let Some(&f) = features.iter().find(|&&f| f as usize >= sae.d_sae) {
            bail!("feature {f} does not exist: this SAE has features 0..{}", sae.d_sae);
        }
        let w = sae.decoder()?;
        let idx = Tensor::from_slice(&features.iter().map(|&f| i64::from(f)).collect::<Vec<_>>()).to_device(w.device());
        let dirs = self.model.to_residual(sae.writes().unwrap_or(key.hook), &w.index_select(0, &idx))?;
        Ok(self.model.logit_lens(&dirs)?.to_device(Device::Cpu).to_kind(Kind::Float))
    }

    pub fn sae(&self, key: SaeKey) -> Result<&Sae> {
        self.saes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| s)
            .ok_or_else(|| eyre!("SAE {key} is not loaded (loaded: {})", self.keys().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))
    }

    /// The loaded SAE `name` picks as `sae_key::pick` reads it (a layer number, a hook, a
    /// tab's label), with its key.
    pub fn pick(&self, name: &str) -> Result<(SaeKey, &Sae)> {
        let key = crate::sae::key::pick(&self.keys(), name)?;
        Ok((key, self.sae(key)?))
    }

    /// Token ids with BOS of every text, checked against n_ctx.
    pub fn tokenize(&self, samples: &Samples, opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<Vec<u32>>> {
        let all: Vec<(usize, usize)> = samples.texts().map(|(ci, i, _)| (ci, i)).collect();
        self.tokenize_some(samples, &all, opts, progress)
    }

    /// Token ids of the texts at `(category, index)` positions.
    pub fn tokenize_some(&self, samples: &Samples, which: &[(usize, usize)], opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<Vec<u32>>> {
        let n_ctx = self.model.n_ctx();
        let mut out = Vec::with_capacity(which.len());
        for &(ci, i) in which {
            let c = &samples.categories[ci];
            let text = &c.texts[i];
            let mut ids = self.tokenizer.encode_text(text)?;
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
                self.tokenizer.truncate(&mut ids, n_ctx);
            }
            out.push(ids);
        }
        Ok(out)
    }

    /// Per text: (tokens averaged over, one mean vector per SAE), in input order.
    pub fn text_vectors(&self, tokens: &[Vec<u32>], opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<(usize, Vec<SparseVec>)>> {
        let mut results: Vec<Option<(usize, Vec<SparseVec>)>> = vec![None; tokens.len()];
        self.each_text_vector(tokens, opts, progress, |i, n, v| {
            results[i] = Some((n, v));
            Ok(())
        })?;
        Ok(results.into_iter().flatten().collect())
    }

    /// Streams each text's (index, tokens averaged over, per-SAE vectors) as its batch
    /// finishes, so callers hold one batch of full vectors at a time, not the corpus.
    pub fn each_text_vector(
        &self,
        tokens: &[Vec<u32>],
        opts: &RunOptions,
        progress: &ProgressSink,
        mut each: impl FnMut(usize, usize, Vec<SparseVec>) -> Result<()>,
    ) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let (mut done, total) = (0u64, tokens.len() as u64);
        for batch in plan(tokens, opts.batch_tokens) {
            crate::runtime::interrupt::check()?;
            let packed = pack_framed(batch.iter().map(|&i| tokens[i].as_slice()), self.tokenizer.frame(opts.include_bos), self.tokenizer.bos);
            for (&i, (n, v)) in batch.iter().zip(self.encode_packed(&packed)?) {
                each(i, n, v)?;
            }
            done += batch.len() as u64;
            progress.send(Progress::Fraction { label: "encoding texts".into(), done, total });
        }
        Ok(())
    }

    /// Each loaded SAE's input for a packed batch: its hook as TransformerLens held it
    /// under the processing the SAE was trained with (centred for most releases), all in
    /// one forward that stops at the deepest hook.
    pub fn inputs(&self, p: &Packed) -> Result<Vec<Tensor>> {
        let points: Vec<(HookPoint, crate::model::hooks::Processing)> = self.saes.iter().map(|(k, sae)| (k.hook, sae.cfg.processing)).collect();
        self.model.hooks_each(&p.ids, &p.mask, &points)
    }

    /// Per-text mean feature vectors of one packed batch.
    pub fn encode_packed(&self, p: &Packed) -> Result<Vec<(usize, Vec<SparseVec>)>> {
        self.means(p, &self.inputs(p)?)
    }

    /// Per-text mean feature vectors of a packed batch from its SAEs' `inputs` (as
    /// `inputs` gives them): the encode the report runs, and `saescope bench` times.
    pub fn means(&self, p: &Packed, inputs: &[Tensor]) -> Result<Vec<(usize, Vec<SparseVec>)>> {
        let weights = p.weights.to_device(self.model.device()).to_kind(self.model.kind());
        let mut per_layer: Vec<Vec<SparseVec>> = Vec::with_capacity(self.saes.len());
        for (r, (_, sae)) in inputs.iter().zip(&self.saes) {
            // Weights are 1/n on counted tokens and 0 on padding (and BOS unless asked
            // for): one bmm per block of features turns [b, t, n] activations into
            // per-text means while the block is still in cache.
            let mut blocks = Vec::new();
            sae.encode_blocks(r, |_, a| {
                blocks.push(weights.bmm(&a));
                Ok(())
            })?;
            let means = Tensor::cat(&blocks, -1).squeeze_dim(1).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let flat: Vec<f32> = Vec::<f32>::try_from(means.view([-1]))?;
            per_layer.push(flat.chunks(sae.d_sae).map(SparseVec::from_dense).collect());
        }
        Ok((0..p.n_tokens.len()).map(|r| (p.n_tokens[r], per_layer.iter().map(|l| l[r].clone()).collect())).collect())
    }
}

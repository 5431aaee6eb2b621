//! Inputs -> activations: tokenise the samples, run the model once per batch for all
//! hooks, SAE-encode every token, and average each text's real tokens (encode-then-mean).

use crate::activations::{ActivationSet, Keep, SparseVec};
use crate::config::{hook_name, normalize_layers, Gpt2Config};
use crate::model::Gpt2;
use crate::progress::{Progress, ProgressSink};
use crate::sae::Sae;
use crate::samples::Samples;
use crate::source::{ModelFiles, SaeFiles, Source};
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
    /// What each text keeps of its vectors once folded into the category sums.
    pub keep: Keep,
    /// Refuse to load more than this many bytes (default: the memory available now).
    pub max_memory: Option<u64>,
    /// Weights and compute in this dtype.
    pub dtype: Precision,
}

/// `--dtype`: f32 matches the Python reference to the number; bf16 halves the weights'
/// memory and runs faster where the hardware has bf16 matmul (CUDA, and CPUs with
/// AVX512-BF16 or AMX), at about three significant digits; f16 is for CUDA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
}

impl Precision {
    pub fn kind(self) -> Kind {
        match self {
            Precision::F32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
            Precision::F16 => Kind::Half,
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { include_bos: false, truncate: false, batch_tokens: 256, keep: Keep::ALL, max_memory: None, dtype: Precision::F32 }
    }
}

/// The files a run needs, found (downloaded if need be) but not yet loaded: enough to
/// name the run for the result cache and to check memory before committing to it.
pub struct Resolved {
    pub cfg: Gpt2Config,
    pub model: ModelFiles,
    /// (layer, files), ascending by layer.
    pub saes: Vec<(usize, SaeFiles)>,
    pub d_sae: usize,
    pub model_label: String,
    pub sae_label: String,
}

impl Resolved {
    pub fn new(model: &Source, saes: &Source, layers: &[usize], progress: &ProgressSink) -> Result<Self> {
        if layers.is_empty() {
            bail!("no layers requested; pass --layers, e.g. --layers 6,8,10,11");
        }
        progress.stage(format!("resolving model {}", model.label()));
        let files = model.model_files(progress)?;
        let cfg = Gpt2Config::from_file(&files.config)?;
        if let Some(&bad) = layers.iter().find(|&&l| l > cfg.n_layer) {
            bail!("layer {bad} does not exist: the model has {} blocks, so layers are 0..={}", cfg.n_layer, cfg.n_layer);
        }
        let mut found = Vec::new();
        for layer in normalize_layers(layers) {
            crate::interrupt::check()?;
            found.push((layer, saes.sae_files(layer, cfg.n_layer, progress)?));
        }
        let widths = found.iter().map(|(_, f)| Sae::width(f)).collect::<Result<Vec<_>>>()?;
        if let Some(i) = widths.iter().position(|&w| w != widths[0]) {
            bail!("SAE widths differ: layer {} has {} features, layer {} has {}; use one release", found[0].0, widths[0], found[i].0, widths[i]);
        }
        Ok(Self { cfg, model: files, saes: found, d_sae: widths[0], model_label: model.label(), sae_label: saes.label() })
    }

    pub fn layers(&self) -> Vec<usize> {
        self.saes.iter().map(|(l, _)| *l).collect()
    }

    /// Names these weights and the options that change the numbers, for the result cache.
    pub fn identity(&self, opts: &RunOptions) -> Result<crate::cache::Key> {
        let mut id = crate::cache::IdentityBuilder::default()
            .part("saescope activations")
            .part(env!("CARGO_PKG_VERSION"))
            .file(&self.model.config)?
            .file(&self.model.weights)?;
        id = match &self.model.tokenizer {
            Some(t) => id.file(t)?,
            None => id.part("bundled tokenizer"),
        };
        for (layer, f) in &self.saes {
            id = id.part(layer.to_le_bytes()).file(&f.cfg)?.file(&f.weights)?;
        }
        Ok(id.part([u8::from(opts.include_bos), u8::from(opts.truncate), opts.dtype as u8]).finish())
    }

    /// Bytes the engine will hold: the tensors it loads (f32) plus its largest batch's
    /// working buffers and libtorch's own footprint.
    pub fn memory_needed(&self, opts: &RunOptions, with_decoder: bool) -> Result<MemoryNeed> {
        let model = SafeFile::open(&self.model.weights)?;
        let n_blocks = self.layers().last().copied().unwrap_or(0);
        let mut weights = model.bytes_matching(|n| {
            let n = n.strip_prefix("transformer.").unwrap_or(n);
            n.starts_with("wte.")
                || n.starts_with("wpe.")
                || n.strip_prefix("h.").and_then(|r| r.split('.').next()).and_then(|i| i.parse::<usize>().ok()).is_some_and(|i| i < n_blocks)
        });
        for (_, f) in &self.saes {
            let file = SafeFile::open(&f.weights)?;
            weights += file.bytes_matching(|n| n != "W_dec" || with_decoder);
        }
        let (t, d, s) = (opts.batch_tokens as u64, self.cfg.n_embd as u64, self.d_sae as u64);
        // Per batch: residuals kept for every hook, one block's activations (the MLP's 4d
        // is the widest), and the SAE's pre-activation plus output.
        let working = 4 * t * (d * (self.saes.len() as u64 + 8) + 4 * d + 2 * s) + LIBTORCH_BASE;
        Ok(MemoryNeed { weights, working })
    }

    pub fn load(self, device: Device, with_decoder: bool, opts: &RunOptions, progress: &ProgressSink) -> Result<Engine> {
        if opts.dtype == Precision::F16 && device == Device::Cpu {
            bail!("--dtype f16 is for CUDA: libtorch's f16 matmul on CPU is far slower than f32; use --dtype bf16 (or f32) on CPU");
        }
        let need = self.memory_needed(opts, with_decoder)?;
        if let Some(available) = opts.max_memory.or_else(available_memory) {
            if need.total() > available {
                bail!(
                    "layers {:?} need about {} (weights {} + working memory {}) but only {} is available; \
                     pass fewer --layers or a smaller --batch-tokens (or --max-memory to override)",
                    self.layers(),
                    gib(need.total()),
                    gib(need.weights),
                    gib(need.working),
                    gib(available)
                );
            }
        }
        let n_blocks = self.layers().last().copied().unwrap_or(0);
        let (n_layer, d_model) = (self.cfg.n_layer, self.cfg.n_embd);
        let tokenizer = Gpt2Tokenizer::load(self.model.tokenizer.as_deref())?;
        progress.stage(format!("loading model ({n_blocks} of {n_layer} blocks)"));
        let kind = opts.dtype.kind();
        let gpt = Gpt2::load(self.cfg, SafeFile::open(&self.model.weights)?, n_blocks, device, kind)?;
        let mut loaded = Vec::with_capacity(self.saes.len());
        for (layer, files) in &self.saes {
            crate::interrupt::check()?;
            progress.stage(format!("loading layer {layer} SAE"));
            loaded.push((*layer, Sae::load(files, d_model, &hook_name(*layer, n_layer), with_decoder, device, kind)?));
        }
        Ok(Engine { model: gpt, tokenizer, saes: loaded, model_label: self.model_label, sae_label: self.sae_label })
    }
}

/// libtorch's resident footprint once loaded (measured: ~250 MB on CPU).
const LIBTORCH_BASE: u64 = 300 << 20;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryNeed {
    pub weights: u64,
    pub working: u64,
}

impl MemoryNeed {
    pub fn total(&self) -> u64 {
        self.weights + self.working
    }
}

/// MemAvailable from /proc/meminfo (Linux); elsewhere no check is made.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
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
    /// Resolves (downloading if needed) and loads the model blocks and SAEs `layers` need,
    /// in `opts.dtype` and within `opts.max_memory`.
    pub fn load(
        model: &Source,
        saes: &Source,
        layers: &[usize],
        device: Device,
        with_decoder: bool,
        opts: &RunOptions,
        progress: &ProgressSink,
    ) -> Result<Self> {
        Resolved::new(model, saes, layers, progress)?.load(device, with_decoder, opts, progress)
    }

    pub fn layers(&self) -> Vec<usize> {
        self.saes.iter().map(|(l, _)| *l).collect()
    }

    pub fn d_sae(&self) -> usize {
        self.saes.first().map_or(0, |(_, s)| s.d_sae)
    }

    /// Token ids with BOS of every text, checked against n_ctx.
    pub fn tokenize(&self, samples: &Samples, opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<Vec<u32>>> {
        let all: Vec<(usize, usize)> = samples.texts().map(|(ci, i, _)| (ci, i)).collect();
        self.tokenize_some(samples, &all, opts, progress)
    }

    /// Token ids of the texts at `(category, index)` positions.
    pub fn tokenize_some(&self, samples: &Samples, which: &[(usize, usize)], opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<Vec<u32>>> {
        let n_ctx = self.model.cfg.n_positions;
        let mut out = Vec::with_capacity(which.len());
        for &(ci, i) in which {
            let c = &samples.categories[ci];
            let text = &c.texts[i];
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
        Ok(out)
    }

    /// Mean SAE activations per text and layer for every sample text.
    pub fn run(&self, samples: &Samples, opts: &RunOptions, progress: &ProgressSink) -> Result<ActivationSet> {
        let tokens = self.tokenize(samples, opts, progress)?;
        let texts: Vec<(usize, usize, &String)> = samples.texts().collect();
        let mut set = ActivationSet::new(self.layers(), self.d_sae(), opts.include_bos, samples.names(), opts.keep);
        let mut slots = vec![None; texts.len()];
        self.each_text_vector(&tokens, opts, progress, |i, n, v| {
            slots[i] = Some(set.fold(texts[i].0, texts[i].2.clone(), n, &v));
            Ok(())
        })?;
        set.texts = slots.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| color_eyre::eyre::eyre!("internal: a text was never encoded"))?;
        Ok(set)
    }

    /// Per text: (tokens averaged over, one mean vector per layer), in input order.
    pub fn text_vectors(&self, tokens: &[Vec<u32>], opts: &RunOptions, progress: &ProgressSink) -> Result<Vec<(usize, Vec<SparseVec>)>> {
        let mut results: Vec<Option<(usize, Vec<SparseVec>)>> = vec![None; tokens.len()];
        self.each_text_vector(tokens, opts, progress, |i, n, v| {
            results[i] = Some((n, v));
            Ok(())
        })?;
        Ok(results.into_iter().flatten().collect())
    }

    /// Streams each text's (index, tokens averaged over, per-layer vectors) as its batch
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
            crate::interrupt::check()?;
            let packed = pack(batch.iter().map(|&i| tokens[i].as_slice()), opts.include_bos, self.tokenizer.bos);
            for (&i, (n, v)) in batch.iter().zip(self.encode_packed(&packed)?) {
                each(i, n, v)?;
            }
            done += batch.len() as u64;
            progress.send(Progress::Fraction { label: "encoding texts".into(), done, total });
        }
        Ok(())
    }

    /// Centred residuals of a packed batch at every loaded layer.
    pub fn residuals(&self, p: &Packed) -> Result<Vec<Tensor>> {
        self.model.residuals(&p.ids, &p.mask, &self.layers())
    }

    /// Per-text mean feature vectors of one packed batch.
    pub fn encode_packed(&self, p: &Packed) -> Result<Vec<(usize, Vec<SparseVec>)>> {
        let weights = p.weights.to_device(self.model.device()).to_kind(self.model.kind());
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

//! The files a run needs, found (downloaded if need be) before anything is loaded: the
//! result cache's identity and the memory check come from them.

use super::{Engine, Precision, RunOptions};
use crate::config::{hook_name, normalize_layers, Gpt2Config};
use crate::model::Gpt2;
use crate::progress::ProgressSink;
use crate::sae::Sae;
use crate::source::{ModelFiles, SaeFiles, Source};
use crate::tensors::SafeFile;
use crate::tokenizer::Gpt2Tokenizer;
use color_eyre::eyre::{bail, Result};
use tch::Device;

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
        let id = self.weights(crate::cache::IdentityBuilder::default().part("saescope activations"))?;
        Ok(id.part([u8::from(opts.include_bos), u8::from(opts.truncate), opts.dtype as u8]).finish())
    }

    /// Adds the files that decide the numbers (model, tokenizer, each layer's SAE) and
    /// this version of saescope to an identity.
    pub fn weights(&self, id: crate::cache::IdentityBuilder) -> Result<crate::cache::IdentityBuilder> {
        let mut id = id.part(env!("CARGO_PKG_VERSION")).file(&self.model.config)?.file(&self.model.weights)?;
        id = match &self.model.tokenizer {
            Some(t) => id.file(t)?,
            None => id.part("bundled tokenizer"),
        };
        for (layer, f) in &self.saes {
            id = id.part(layer.to_le_bytes()).file(&f.cfg)?.file(&f.weights)?;
        }
        Ok(id)
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
        let n_blocks = self.layers().last().copied().unwrap_or(0);
        self.load_blocks(n_blocks, device, with_decoder, opts, progress)
    }

    /// The whole model (every block, for generation) and the SAEs with their decoders.
    pub fn load_full(self, device: Device, opts: &RunOptions, progress: &ProgressSink) -> Result<Engine> {
        let n_blocks = self.cfg.n_layer;
        self.load_blocks(n_blocks, device, true, opts, progress)
    }

    /// Every block, SAE decoders loaded when first used: the explorer's engine once it
    /// generates.
    pub fn load_all_blocks(self, device: Device, opts: &RunOptions, progress: &ProgressSink) -> Result<Engine> {
        let n_blocks = self.cfg.n_layer;
        self.load_blocks(n_blocks, device, false, opts, progress)
    }

    fn load_blocks(self, n_blocks: usize, device: Device, with_decoder: bool, opts: &RunOptions, progress: &ProgressSink) -> Result<Engine> {
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
        let (n_layer, d_model) = (self.cfg.n_layer, self.cfg.n_embd);
        let tokenizer = Gpt2Tokenizer::load(self.model.tokenizer.as_deref())?;
        // A token id past the embedding would fail deep in libtorch, mid-run.
        if tokenizer.vocab_size() > self.cfg.vocab_size {
            let which = self.model.tokenizer.as_ref().map_or_else(|| "the bundled GPT-2 tokenizer".to_string(), |p| p.display().to_string());
            bail!(
                "{which} has {} tokens but the model's vocab_size is {}: put the model's own tokenizer.json beside its config.json",
                tokenizer.vocab_size(),
                self.cfg.vocab_size
            );
        }
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

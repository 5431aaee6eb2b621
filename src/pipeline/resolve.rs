//! The files a run needs, found (downloaded if need be) before anything is loaded: the
//! result cache's identity and the memory check come from them.

use super::{Engine, Precision, RunOptions};
use crate::model::config::{ModelConfig, TensorUse};
use crate::model::hooks::hook_name;
use crate::model::tokenizer::Tokenizer;
use crate::runtime::progress::ProgressSink;
use crate::sae::key::SaeKey;
use crate::sae::selection::{Named, Selection, Wanted};
use crate::sae::Overrides;
use crate::sae::Sae;
use crate::source::{ModelFiles, SaeFiles, Source};
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, eyre, Result};
use tch::Device;

/// One SAE of a run, found: what it is called everywhere (`key`), where it came from, and
/// what its registry entry lays over its cfg.
#[derive(Debug, Clone)]
pub struct FoundSae {
    pub key: SaeKey,
    pub files: SaeFiles,
    /// SAELens's id, or the folder it was found in.
    pub id: String,
    pub neuronpedia: Option<crate::sae::neuronpedia_id::SaeId>,
    pub overrides: Overrides,
}

/// The files a run needs, found (downloaded if need be) but not yet loaded: enough to
/// name the run for the result cache and to check memory before committing to it.
pub struct Resolved {
    pub cfg: ModelConfig,
    pub model: ModelFiles,
    /// Where the model came from: its chat template is fetched only under `--chat`.
    pub source: Source,
    /// Sorted by key: by depth, then width.
    pub saes: Vec<FoundSae>,
    pub model_label: String,
    pub sae_label: String,
}

impl Resolved {
    pub fn new(model: &Source, selection: &Selection, progress: &ProgressSink) -> Result<Self> {
        if selection.wanted.is_empty() {
            bail!("no SAEs requested; pass --layers (e.g. --layers 6,8,10,11) or --sae IDs of --sae-release");
        }
        let mut run = Self::model_only(model, progress)?;
        for wanted in &selection.wanted {
            crate::runtime::interrupt::check()?;
            let sae = find(&selection.source, wanted, run.cfg.n_layer(), progress)?;
            if let Some(same) = run.saes.iter().find(|f| f.key == sae.key) {
                bail!("{} and {} both read {} with {} features; load one of them", same.id, sae.id, sae.key.hook, sae.key.width);
            }
            run.saes.push(sae);
        }
        run.saes.sort_by_key(|f| f.key);
        run.sae_label = selection.label();
        Ok(run)
    }

    /// The model alone, for a run that brings its own weights besides (a graph's
    /// transcoders, graph/).
    pub fn model_only(model: &Source, progress: &ProgressSink) -> Result<Self> {
        progress.stage(format!("resolving model {}", model.label()));
        let files = model.model_files(progress)?;
        let cfg = ModelConfig::from_file(&files.config)?;
        Ok(Self { cfg, model: files, source: model.clone(), saes: Vec::new(), model_label: model.label(), sae_label: String::new() })
    }

    /// The model's tokenizer (GPT-2's bundled one where the folder has none and it fits).
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        match (&self.model.tokenizer, self.cfg.bundled_tokenizer_fits()) {
            (Some(path), _) => Tokenizer::load(Some(path), self.cfg.bos_token()),
            (None, true) => Tokenizer::load(None, self.cfg.bos_token()),
            (None, false) => bail!(
                "{} has no tokenizer.json beside {}: a {} model needs its own (download the model's repo whole)",
                self.model_label,
                self.model.config.display(),
                self.cfg.family()
            ),
        }
    }

    pub fn keys(&self) -> Vec<SaeKey> {
        self.saes.iter().map(|f| f.key).collect()
    }

    /// Each SAE's Neuronpedia id, where known.
    pub fn neuronpedia(&self) -> crate::sae::neuronpedia_id::Ids {
        crate::sae::neuronpedia_id::Ids::from_found(self.saes.iter().map(|f| (f.key, f.neuronpedia.clone())))
    }

    /// The SAEs in a message: `SAEs 6 res 24k, 8 res 24k`, or for many the first and last.
    fn names(&self) -> String {
        match self.keys().as_slice() {
            [] => "no SAEs".into(),
            [one] => format!("SAE {one}"),
            keys if keys.len() <= 4 => format!("SAEs {}", keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            keys => format!("{} SAEs ({} to {})", keys.len(), keys[0], keys[keys.len() - 1]),
        }
    }

    /// Blocks the forward runs: up to the deepest hook any SAE reads.
    fn blocks_needed(&self) -> usize {
        self.saes.iter().map(|f| f.key.hook.blocks_needed()).max().unwrap_or(0)
    }

    /// Names these weights and the options that change the numbers, for the result cache.
    pub fn identity(&self, opts: &RunOptions) -> Result<crate::activations::cache::HashKey> {
        let id = self.weights(crate::activations::cache::IdentityBuilder::default().part("saescope activations"))?;
        Ok(id.part([u8::from(opts.include_bos), u8::from(opts.truncate), opts.dtype as u8, u8::from(opts.chat)]).finish())
    }

    /// Adds the files that decide the numbers (model, tokenizer, each layer's SAE) and
    /// this version of saescope to an identity.
    pub fn weights(&self, id: crate::activations::cache::IdentityBuilder) -> Result<crate::activations::cache::IdentityBuilder> {
        let mut id = id.part(env!("CARGO_PKG_VERSION")).file(&self.model.config)?;
        for f in Checkpoint::open(&self.model.weights)?.files() {
            id = id.file(&f)?;
        }
        id = match &self.model.tokenizer {
            Some(t) => id.file(t)?,
            None => id.part("bundled tokenizer"),
        };
        for f in &self.saes {
            let o = &f.overrides;
            let processing = o.processing.map(|p| [u8::from(p.center_writing_weights), u8::from(p.fold_value_biases)]);
            id = id
                .part(f.key.to_string())
                .part(f.key.hook.to_string())
                .part(format!("{:?} {processing:?}", o.norm_scaling_factor))
                .file(&f.files.cfg)?
                .file(&f.files.weights)?;
        }
        Ok(id)
    }

    /// Bytes the engine will hold: the tensors it loads (f32) plus its largest batch's
    /// working buffers and libtorch's own footprint.
    pub fn memory_needed(&self, opts: &RunOptions, with_decoder: bool) -> Result<MemoryNeed> {
        let model = Checkpoint::open(&self.model.weights)?;
        let n_blocks = self.blocks_needed();
        // The hub's checkpoints carry a causal-mask buffer per block (`h.N.attn.bias`,
        // [1, 1, n_ctx, n_ctx]: 4 MiB each), which the model builds itself and never loads.
        let mut weights = model.bytes_matching(|n| match self.cfg.tensor_use(n) {
            TensorUse::Always => true,
            TensorUse::Block(i) => i < n_blocks,
            TensorUse::Never => false,
        });
        for f in &self.saes {
            weights += crate::sae::Sae::bytes(&f.files, with_decoder)?;
        }
        // Counted as f32 above; under --dtype bf16 they are held at half that (a bf16
        // checkpoint as views of its map), so Gemma 3 12B's report is not refused for the
        // 26 GB its blocks would take widened.
        let weights = weights / 4 * opts.dtype.kind().elt_size_in_bytes() as u64;
        let s = self.saes.iter().map(|f| f.key.width as u64).max().unwrap_or(0);
        let (t, d) = (opts.batch_tokens as u64, self.cfg.d_model() as u64);
        // Per batch: residuals kept for every hook, one block's activations (the MLP's 4d
        // is the widest), and the SAE's pre-activation plus output.
        let working = 4 * t * (d * (self.saes.len() as u64 + 8) + 4 * d + 2 * s) + LIBTORCH_BASE;
        Ok(MemoryNeed { weights, working })
    }

    pub fn load(self, device: Device, with_decoder: bool, opts: &RunOptions, progress: &ProgressSink) -> Result<Engine> {
        let n_blocks = self.blocks_needed();
        self.load_blocks(n_blocks, device, with_decoder, opts, progress)
    }

    /// The whole model (every block, for generation) and the SAEs with their decoders.
    pub fn load_full(self, device: Device, opts: &RunOptions, progress: &ProgressSink) -> Result<Engine> {
        let n_blocks = self.cfg.n_layer();
        self.load_blocks(n_blocks, device, true, opts, progress)
    }

    /// Every block, SAE decoders loaded when first used: the explorer's engine once it
    /// generates.
    pub fn load_all_blocks(self, device: Device, opts: &RunOptions, progress: &ProgressSink) -> Result<Engine> {
        let n_blocks = self.cfg.n_layer();
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
                    "{} {} about {} (weights {} + working memory {}) but only {} is available; \
                     pass fewer --layers, narrower SAEs or a smaller --batch-tokens (or --max-memory to override)",
                    self.names(),
                    if self.saes.len() == 1 { "needs" } else { "need" },
                    gib(need.total()),
                    gib(need.weights),
                    gib(need.working),
                    gib(available)
                );
            }
        }
        let n_layer = self.cfg.n_layer();
        let ids = self.neuronpedia();
        let mut tokenizer = self.tokenizer()?;
        if opts.chat {
            let files = self.source.chat_files(progress)?;
            let template = crate::model::chat::ChatTemplate::from_files(&files)?.ok_or_else(|| {
                eyre!(
                    "{} has no chat template (chat_template.jinja, or chat_template in tokenizer_config.json); --chat is for instruction-tuned models such as google/gemma-3-270m-it",
                    self.model_label
                )
            })?;
            tokenizer = tokenizer.with_chat(template)?;
        }
        // A token id past the embedding would fail deep in libtorch, mid-run.
        if tokenizer.vocab_size() > self.cfg.vocab_size() {
            let which = self.model.tokenizer.as_ref().map_or_else(|| "the bundled GPT-2 tokenizer".to_string(), |p| p.display().to_string());
            bail!(
                "{which} has {} tokens but the model's vocab_size is {}: put the model's own tokenizer.json beside its config.json",
                tokenizer.vocab_size(),
                self.cfg.vocab_size()
            );
        }
        progress.stage(format!("loading {} ({n_blocks} of {n_layer} blocks)", self.cfg.family()));
        let kind = opts.dtype.kind();
        let model = self.cfg.load(Checkpoint::open(&self.model.weights)?, n_blocks, device, kind)?;
        // Loading's temporaries (each tensor's finiteness check, dtype copies) leave freed
        // heap that glibc keeps resident: 200+ MB on Qwen 3 0.6B (runtime/memory.rs).
        crate::runtime::memory::trim();
        let mut loaded = Vec::with_capacity(self.saes.len());
        for f in &self.saes {
            crate::runtime::interrupt::check()?;
            progress.stage(format!("loading SAE {} ({})", f.key, f.id));
            loaded.push((f.key, Sae::load(&f.files, self.cfg.d_in(f.key.hook), f.key.hook, &f.overrides, with_decoder, device, kind)?));
        }
        crate::runtime::memory::trim();
        Ok(Engine { model, tokenizer, saes: loaded, neuronpedia: ids, model_label: self.model_label, sae_label: self.sae_label })
    }
}

/// Where `wanted` is in `source`, with its key (the width read from the cfg or the file header).
fn find(source: &Source, wanted: &Wanted, n_layer: usize, progress: &ProgressSink) -> Result<FoundSae> {
    let named = match wanted {
        Wanted::Named(n) => n.clone(),
        Wanted::Layer(layer) => {
            if *layer > n_layer {
                bail!("layer {layer} does not exist: the model has {n_layer} blocks, so layers are 0..={n_layer}");
            }
            let folder = hook_name(*layer, n_layer);
            Named::in_folder(source, &folder).ok_or_else(|| eyre!("internal: {folder} is not a hook name"))?
        }
    };
    if named.hook.blocks_needed() > n_layer {
        bail!("{} reads {}, but the model has {n_layer} blocks", named.id, named.hook);
    }
    let files = named.source.sae_files(&named.path, named.layout, progress)?;
    let width = Sae::width(&files)?;
    // The SAE's own cfg names its Neuronpedia id where SAELens wrote one; else the registry's.
    let neuronpedia =
        crate::sae::neuronpedia_id::SaeId::from_cfg(&files.cfg).or_else(|| named.neuronpedia.as_deref().and_then(crate::sae::neuronpedia_id::SaeId::parse));
    Ok(FoundSae {
        key: SaeKey::new(named.hook, width),
        files,
        id: named.id,
        neuronpedia,
        overrides: Overrides { norm_scaling_factor: named.norm_scaling_factor, k: named.k, processing: named.processing },
    })
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

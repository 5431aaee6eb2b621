//! Command-line interface. Weight, sample and analysis options are global so they read
//! the same before or after the subcommand.

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use saescope::source::{Source, DEFAULT_MODEL, DEFAULT_SAE_RELEASE};
use saescope::synth::gpt2::Size;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "saescope", version, about = "Explore GPT-2 sparse-autoencoder features by category of text, layer by layer")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub versus: VersusArgs,
    #[command(flatten)]
    pub graphs: GraphViewArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the explorer (the default when no subcommand is given).
    Explore {
        #[command(flatten)]
        graphs: GraphViewArgs,
    },
    /// Print the per-category, per-layer figures (the study's Figure 2b) for scripts.
    Report {
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print one feature's card: Neuronpedia URL, label, its activation in every text, top
    /// texts and tokens, logit lens, nearest features in the adjacent loaded SAEs.
    Feature {
        /// The SAE: a layer (8), a hook (blocks.8.hook_resid_pre) or a tab's label (8 res 24k).
        #[arg(long, value_name = "SAE")]
        layer: String,
        #[arg(long)]
        id: u32,
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check the study's four findings on this data: each holds or not, with its numbers;
    /// with --versus-model (or --versus-model-dir), on a second run beside the first.
    Findings {
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// How good each loaded SAE is, as SAELens's run_evals measures it: L0, explained
    /// variance, MSE, cosine, CE and KL scores (its reconstruction spliced into the forward),
    /// dead and dense features; on the samples, or on --corpus (cut into --context windows,
    /// at most --max-tokens).
    Eval {
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Features of the loaded SAEs whose --labels text has every word of QUERY (or #id).
    Search {
        query: String,
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
    },
    /// One text's activation of a feature, token by token (the explorer's token view).
    Tokens {
        /// The SAE: a layer (8), a hook (blocks.8.hook_resid_pre) or a tab's label (8 res 24k).
        #[arg(long, value_name = "SAE")]
        layer: String,
        #[arg(long)]
        id: u32,
        /// The text; `-` reads it from standard input.
        #[arg(long)]
        text: String,
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Generate from a prompt with features steered (added to, or clamped in, the residual at
    /// their layer), beside the same prompt unsteered: both continuations and per step the
    /// top-5 next tokens of each and the KL divergence between them.
    Steer {
        /// The prompt; `-` reads it from standard input.
        #[arg(long)]
        prompt: String,
        /// SAE:FEATURE:STRENGTH, e.g. 8:1234:40 (SAE: a layer, a hook, or a tab's label such as
        /// '8 res 24k'); =STRENGTH clamps; repeat for several features.
        #[arg(long = "feature", value_name = "SAE:F:STRENGTH", required = true)]
        features: Vec<saescope::interp::steer::Steer>,
        /// Tokens to generate.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024).map(|n| n as usize))]
        tokens: usize,
        /// 0 is greedy; above 0 samples, deterministically per --seed.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = non_negative_f64)]
        temperature: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = saescope::interp::steer::Edit::Add)]
        mode: saescope::interp::steer::Edit,
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Which features of the loaded layers move the next-token prediction after a prompt:
    /// attribution (activation x gradient, summed over positions) and, for the top ones, the
    /// exact change when the feature is ablated everywhere.
    Attribute {
        /// The prompt; `-` reads it from standard input.
        #[arg(long)]
        prompt: String,
        /// The predicted token to explain (one token, e.g. " the"); default: the model's top one.
        #[arg(long)]
        target: Option<String>,
        /// Features per layer.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000).map(|n| n as usize))]
        top: usize,
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// An attribution graph of the prediction after a prompt, over a transcoder at every
    /// layer, as circuit-tracer computes it: written in its JSON (Neuronpedia's graph
    /// viewer opens it), with its replacement and completeness scores. `--graph FILE`
    /// reads one back (saescope's or circuit-tracer's) and summarises it.
    Graph {
        /// The prompt; `-` reads it from standard input.
        #[arg(long, required_unless_present = "graph")]
        prompt: Option<String>,
        /// A folder with a transcoder per layer (SAELens folders, Gemma Scope 2's, or a set in
        /// circuit-tracer's own layout: config.yaml, layer_L.safetensors), a SAELens release
        /// with one at every layer (gemma-scope-2-270m-pt-transcoders-all), or circuit-tracer's
        /// set on the hub (org/repo[/folder], llama, gemma), fetched from the hub.
        #[arg(long, value_name = "DIR|RELEASE|HUB-SET", required_unless_present = "graph")]
        transcoders: Option<String>,
        /// Which transcoder to take where a layer has several (the end of its name:
        /// width_262k_l0_big_affine); default width_16k_l0_small_affine.
        #[arg(long, value_name = "NAME")]
        transcoder_variant: Option<String>,
        /// A logit to explain (one token, e.g. " the"); repeat for several. Default: the
        /// most probable tokens until their probabilities sum to 0.95, at most 10.
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Feature rows to compute, the most influential first; default: every active feature.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
        max_features: Option<usize>,
        /// Rows per backward pass.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096).map(|n| n as usize))]
        batch: usize,
        /// Keep the nodes holding this share of the influence on the logits.
        #[arg(long, default_value_t = 0.8, value_parser = fraction)]
        node_threshold: f64,
        /// Keep the edges holding this share of the kept graph's influence.
        #[arg(long, default_value_t = 0.98, value_parser = fraction)]
        edge_threshold: f64,
        /// The graph's name in its metadata (Neuronpedia's slug).
        #[arg(long, default_value = "saescope-graph")]
        slug: String,
        /// Read this graph file instead of computing one.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["prompt", "transcoders"])]
        graph: Option<PathBuf>,
        /// Instead of a graph, test one: set this feature (LAYER:FEATURE@POSITION, as the
        /// graph's node ids read `L_F_POS`) to `--scale` times its activation and show the top
        /// logits before and after, with attention frozen as in the graph and free (as
        /// circuit-tracer's feature_intervention). Repeat for several.
        #[arg(long = "ablate", value_name = "L:F@POS")]
        ablate: Vec<String>,
        /// What `--ablate` multiplies each feature's activation by: 0 switches it off.
        #[arg(long, default_value_t = 0.0, requires = "ablate")]
        scale: f64,
        /// Write the graph's JSON to FILE (atomically); the summary goes to standard error.
        /// Without it, the summary goes to standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// SAELens's SAE releases (its pretrained_saes.yaml; --sae-registry for a newer one):
    /// every release of a model, or one release's SAEs with hook, width, L0, Neuronpedia id
    /// and whether the hub cache holds it.
    Saes {
        /// Only this model's releases (gpt2-small, google/gemma-3-270m...).
        #[arg(long = "of", value_name = "MODEL")]
        of: Option<String>,
        /// List this release's SAEs.
        #[arg(value_name = "RELEASE")]
        release: Option<String>,
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
    },
    /// Write a synthetic model (DIR/model) and SAEs (DIR/saes) in the real layouts.
    Synth {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The model family: GPT-2 (with SAELens's GPT-2 releases), Gemma 3 (with Gemma
        /// Scope 2's; default gemma-scope-2-270m-pt-res at layers 5 and 9, or at 5, 9, 12
        /// and 15 for --size 270m, gemma-scope-2-4b-pt-res at 9 and 17 for 4b,
        /// gemma-scope-2-12b-pt-res at 12 and 24 for 12b), Gemma 2 (tiny, with Gemma Scope's
        /// gemma-scope-2b-pt-res-canonical at 6, 13, 16 and 21), Llama 3 or Qwen 3 (tiny,
        /// with SAELens-folder SAEs at blocks.2 and blocks.4.hook_resid_pre), Pythia (tiny,
        /// with pythia-70m-deduped-res-sm's folders at layers 1, 3, 4 and 5).
        #[arg(long, value_enum, default_value_t = FamilyArg::Gpt2)]
        family: FamilyArg,
        /// tiny (tests), small (GPT-2 small's, Gemma 2 2B's, Pythia 70M's, Llama 3.2 1B's
        /// or Qwen 3 0.6B's shape), 270m, 4b or 12b (Gemma 3's).
        #[arg(long, value_enum, default_value_t = Size::Tiny)]
        size: Size,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also write a transcoder at every layer, for `saescope graph`: `plain` to
        /// DIR/transcoders, `skip` (with an affine skip term) to DIR/transcoders-skip; in
        /// SAELens's layout for GPT-2, Gemma Scope 2's for Gemma 3.
        #[arg(long, value_enum, value_delimiter = ',')]
        transcoders: Vec<TranscoderArg>,
    },
    /// Write a samples file of N generated texts (for scale tests and benchmarks).
    SynthSamples {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=10_000_000).map(|n| n as usize))]
        texts: usize,
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=10_000).map(|n| n as usize))]
        categories: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Index --corpus for feature dashboards: every feature's firing rate, max, mean,
    /// histogram, top contexts and interval samples over every window of the corpus, stored
    /// in the cache folder for `feature` and the explorer. Ctrl-C keeps what is done; the
    /// same command resumes. `--shard K/N -o FILE` indexes every N-th window; `index merge
    /// FILE...` adds the N files into the index one run would store.
    Index {
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
        /// Index only the K-th of N slices of the corpus's windows (K from 0), into -o FILE,
        /// for `index merge`: one per machine, array task or GPU.
        #[arg(long, value_name = "K/N", value_parser = saescope::dashboard::shard::Slice::parse, requires = "output")]
        shard: Option<saescope::dashboard::shard::Slice>,
        /// The shard's file.
        #[arg(short = 'o', long = "output", value_name = "FILE", requires = "shard")]
        output: Option<PathBuf>,
        /// Also write the index in Neuronpedia's dump layout under DIR (v1/MODEL/SOURCE/
        /// features|activations/batch-N.jsonl.gz), for a Neuronpedia instance or
        /// `--neuronpedia DIR`.
        #[arg(long, value_name = "DIR", conflicts_with = "shard")]
        export_neuronpedia: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<IndexAction>,
    },
    /// The shared options as docs/commands.md's Markdown table (for the docs test).
    #[command(hide = true)]
    OptionsTable,
    /// Time weight loading, the model, the SAE encode and a whole run; print peak RSS.
    Bench {
        /// Timed repetitions of each measurement (the median is printed).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000).map(|n| n as usize))]
        repeat: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum IndexAction {
    /// Add the files of `index --shard K/N` (every K of one N, each once) into the index,
    /// stored where `index` stores it; give the weight, corpus and index options the shards
    /// ran with.
    Merge {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = CardFormat::Text)]
        format: CardFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

/// The options every command takes, as the Markdown table docs/commands.md holds between
/// its `options:start` and `options:end` lines (tests/it/docs.rs checks the two agree), so
/// the documented options are the ones the program parses.
pub fn options_markdown() -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Built, so each argument says how many values it takes and what they are called.
    cmd.build();
    let mut out = String::from("| option | default | what it does |\n|---|---|---|\n");
    for a in cmd.get_arguments().filter(|a| a.is_global_set() && !a.is_hide_set()) {
        let Some(long) = a.get_long() else { continue };
        let mut option = format!("`--{long}");
        let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
        if takes_value {
            let values: Vec<String> = a.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_string()).collect();
            let name = if values.is_empty() { a.get_value_names().map_or_else(|| long.to_uppercase(), |n| n.join(" ")) } else { values.join("|") };
            option.push_str(&format!(" {name}"));
            if a.get_value_delimiter().is_some() {
                option.push_str(",...");
            }
        }
        option.push('`');
        if let Some(env) = a.get_env() {
            option.push_str(&format!(" (or `{}`)", env.to_string_lossy()));
        }
        let default: Vec<String> = a.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        let default = if default.is_empty() || !takes_value { String::new() } else { format!("`{}`", default.join(",")) };
        let help = a.get_long_help().or(a.get_help()).map(|h| h.to_string()).unwrap_or_default();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
        out.push_str(&format!("| {} | {default} | {help} |\n", option.replace('|', "\\|")));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CardFormat {
    Text,
    Json,
}

/// A second run for `findings` and the explorer's findings view to set beside the first:
/// its model and SAEs, named as the first run's are (its defaults follow its model:
/// `--versus-model google/gemma-3-270m` takes Gemma Scope 2). Samples and every other
/// option are the first run's.
/// The explorer's graph view. Not global: `graph` and `synth` have a `--transcoders` of their own.
#[derive(Args, Debug, Clone, Default)]
pub struct GraphViewArgs {
    /// A folder with a transcoder per layer, a SAELens release with one at every layer, or
    /// circuit-tracer's hub set (as `saescope graph --transcoders` takes): `g` then draws the
    /// attribution graph of a prompt.
    #[arg(long, value_name = "DIR|RELEASE|HUB-SET")]
    pub transcoders: Option<String>,
    /// Which transcoder to take where a layer has several (as `saescope graph` takes it).
    #[arg(long, value_name = "NAME")]
    pub transcoder_variant: Option<String>,
    /// Open this graph file (saescope's or circuit-tracer's JSON) in the graph view.
    #[arg(long, value_name = "FILE")]
    pub graph: Option<PathBuf>,
}

impl GraphViewArgs {
    /// The explorer's options and the subcommand's, whichever were given.
    pub fn or(&self, other: &GraphViewArgs) -> GraphViewArgs {
        GraphViewArgs {
            transcoders: self.transcoders.clone().or_else(|| other.transcoders.clone()),
            transcoder_variant: self.transcoder_variant.clone().or_else(|| other.transcoder_variant.clone()),
            graph: self.graph.clone().or_else(|| other.graph.clone()),
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct VersusArgs {
    /// Hugging Face model repo of the second run.
    #[arg(long, global = true, value_name = "REPO")]
    pub versus_model: Option<String>,
    /// Local model folder of the second run.
    #[arg(long, global = true, value_name = "DIR")]
    pub versus_model_dir: Option<PathBuf>,
    /// SAELens release (or repo) of the second run.
    #[arg(long, global = true, value_name = "SAE_RELEASE")]
    pub versus_sae_release: Option<String>,
    /// SAE ids of --versus-sae-release.
    #[arg(long, global = true, value_delimiter = ',', value_name = "ID")]
    pub versus_sae: Vec<String>,
    /// Local SAE folder of the second run.
    #[arg(long, global = true, value_name = "DIR")]
    pub versus_sae_dir: Option<PathBuf>,
    /// Layers of the second run.
    #[arg(long, global = true, value_delimiter = ',', value_name = "LAYERS")]
    pub versus_layers: Option<Vec<usize>>,
}

impl VersusArgs {
    pub fn given(&self) -> bool {
        self.versus_model.is_some()
            || self.versus_model_dir.is_some()
            || self.versus_sae_release.is_some()
            || !self.versus_sae.is_empty()
            || self.versus_sae_dir.is_some()
            || self.versus_layers.is_some()
    }

    /// The second run's options: `first`'s, with the model and SAEs these name; None when
    /// no second model is named.
    pub fn common(&self, first: &Common) -> Option<Common> {
        if self.versus_model.is_none() && self.versus_model_dir.is_none() {
            return None;
        }
        let mut c = first.clone();
        c.model = self.versus_model.clone().unwrap_or_else(|| DEFAULT_MODEL.into());
        c.model_dir = self.versus_model_dir.clone();
        c.sae_release_arg = self.versus_sae_release.clone();
        c.sae = self.versus_sae.clone();
        c.sae_dir = self.versus_sae_dir.clone();
        c.layers_arg = self.versus_layers.clone();
        Some(c)
    }
}

/// A share between 0 and 1.
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

/// Which transcoders `synth` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TranscoderArg {
    Plain,
    Skip,
    /// One cross-layer transcoder: circuit-tracer's layout for GPT-2, Gemma Scope 2's for Gemma.
    Clt,
}

/// A model family `synth` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FamilyArg {
    Gpt2,
    Gemma2,
    Gemma3,
    Llama,
    Qwen3,
    /// GPT-NeoX, as Pythia 70M.
    Pythia,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Hugging Face model repo (config.json, model.safetensors, tokenizer.json).
    #[arg(long, global = true, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Local folder with the model's files, instead of the hub.
    #[arg(long, global = true, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// SAELens release name (gpt2-small-res-jb; `saescope saes` lists them; a comma list
    /// mixes releases) or Hugging Face repo of SAEs, one folder per hook
    /// (blocks.L.hook_resid_pre/). Default: the residual release SAELens names for --model
    /// with Neuronpedia dashboards (google/gemma-3-270m: gemma-scope-2-270m-pt-res), else
    /// jbloom/GPT2-Small-SAEs-Reformatted.
    #[arg(long = "sae-release", global = true, value_name = "SAE_RELEASE")]
    pub sae_release_arg: Option<String>,
    /// SAELens SAE ids of --sae-release (repeat, or a comma list), instead of --layers:
    /// e.g. blocks.8.hook_resid_pre.
    #[arg(long = "sae", global = true, value_delimiter = ',', value_name = "ID")]
    pub sae: Vec<String>,
    /// SAELens's pretrained_saes.yaml as it ships, read instead of the bundled registry
    /// (so a newer SAELens's releases work).
    #[arg(long, global = true, value_name = "FILE")]
    pub sae_registry: Option<PathBuf>,
    /// Local folder of SAEs in the same layout, instead of the hub.
    #[arg(long, global = true, value_name = "DIR")]
    pub sae_dir: Option<PathBuf>,
    /// Samples file (TOML); default: the bundled samples/default.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub samples: Option<PathBuf>,
    /// Layers to analyse (12 = after the last block). Default: 6,8,10,11, or for the
    /// default release of another model the layers Neuronpedia hosts it at.
    #[arg(long = "layers", global = true, value_delimiter = ',', value_name = "LAYERS")]
    pub layers_arg: Option<Vec<usize>>,
    /// Top features per category and SAE (the method's k).
    #[arg(long, global = true, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000).map(|n| n as usize))]
    pub top_k: usize,
    /// Mean activation at which a text counts as using a feature (specialist scores).
    #[arg(long, global = true, default_value_t = 5.0, allow_negative_numbers = true, value_parser = non_negative_f32)]
    pub threshold: f32,
    /// Count the BOS token in each text's mean (excluded by default: its norm is huge).
    #[arg(long, global = true)]
    pub include_bos: bool,
    /// Read each text (sample, prompt, the token view's) as a user turn in the model's chat
    /// template, as instruction-tuned models and their SAEs expect; figures count the text's
    /// own tokens, not the template's.
    #[arg(long, global = true)]
    pub chat: bool,
    /// auto picks CUDA when present.
    #[arg(long, global = true, default_value = "auto")]
    pub device: String,
    /// CPU threads for libtorch (default: libtorch's choice, the core count).
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=1024).map(|n| n as usize))]
    pub threads: Option<usize>,
    /// Cut texts longer than the model's context instead of failing.
    #[arg(long, global = true)]
    pub truncate: bool,
    /// Padded tokens per batch; bounds memory. Default: 256 for sample texts, 1024 for
    /// corpus windows (each measured fastest on CPU, BENCHMARKS.md).
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=1_048_576).map(|n| n as usize))]
    pub batch_tokens: Option<usize>,
    /// Weights and compute dtype: f32 is exact against the Python reference; bf16 is faster
    /// where the hardware has bf16 matmul (CUDA, recent CPUs); f16 is for CUDA.
    #[arg(long, global = true, value_enum, default_value_t = saescope::pipeline::Precision::F32)]
    pub dtype: saescope::pipeline::Precision,
    /// Refuse to load more than this many GiB (default: the memory available at start).
    #[arg(long, global = true, value_name = "GIB", allow_negative_numbers = true, value_parser = positive_f64)]
    pub max_memory: Option<f64>,
    /// Seconds without a byte before a download counts as stalled and is resumed.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30.0, env = "SAESCOPE_DOWNLOAD_TIMEOUT", allow_negative_numbers = true, value_parser = positive_f64)]
    pub download_timeout: f64,
    /// Tries after a stall, reset or server error before a download gives up.
    #[arg(long, global = true, value_name = "N", default_value_t = 5, env = "SAESCOPE_DOWNLOAD_RETRIES", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub download_retries: u32,
    /// Folder of the result cache (default: the user cache folder, e.g. ~/.cache/saescope).
    #[arg(long, global = true, value_name = "DIR", env = "SAESCOPE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Neither read nor write the result cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Feature explanations exported from Neuronpedia (JSON or JSONL; docs/formats.md, "Labels").
    #[arg(long, global = true, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Which Neuronpedia source's --labels rows to take where a layer's SAE has no known
    /// Neuronpedia id and the export holds several (e.g. res-jb for 6-res-jb, 8-res-jb...).
    #[arg(long, global = true, value_name = "SOURCE")]
    pub labels_source: Option<String>,
    /// Neuronpedia's dataset dumps (a folder of v1/MODEL/SOURCE/features|activations/
    /// batch-N.jsonl.gz, one source's folder, or files): each card shows Neuronpedia's
    /// numbers and top activations beside saescope's own (docs/formats.md, "Neuronpedia's data").
    #[arg(long, global = true, value_name = "PATH")]
    pub neuronpedia: Option<PathBuf>,
    /// Your corpus for feature dashboards (`index`): a text file, a folder of text files
    /// (recursively), JSON Lines (.jsonl, optionally .gz) or Parquet with the text in
    /// --text-field.
    #[arg(long, global = true, value_name = "PATH")]
    pub corpus: Option<PathBuf>,
    /// The JSON Lines field holding each document's text.
    #[arg(long, global = true, value_name = "NAME", default_value = "text")]
    pub text_field: String,
    /// Index at most this many tokens of the corpus (BOS not counted).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tokens: Option<u64>,
    /// Tokens per window with BOS (default: the SAE's context_size, 128 for gpt2-small-res-jb).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(2..=1_048_576).map(|n| n as usize))]
    pub context: Option<usize>,
    /// Where the explorer's `e` writes CSV exports.
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    pub export_dir: PathBuf,
}

/// The layers a run reads when none are named: the residual SAEs the GPT-2 small SAE study
/// analysed.
const DEFAULT_LAYERS: [usize; 4] = [6, 8, 10, 11];

/// For a folder of SAELens folders named for their hooks (`blocks.L.hook_resid_pre`), the
/// default layers it holds, else every layer it holds; None for any other folder.
fn layers_in_folder(dir: &std::path::Path, gpt2: bool) -> Option<Vec<usize>> {
    let held: Vec<usize> = (0..=256).filter(|&l| saescope::model::hooks::layer_folders(l).iter().any(|f| dir.join(f).is_dir())).collect();
    if held.is_empty() {
        return None;
    }
    // The study's layers for GPT-2 where the folder has them; another family's folder whole
    // (its layers are not GPT-2's: Llama 3.2 1B's at 4, 8, 10, 14 opened at 8 and 10 only).
    let defaults: Vec<usize> = DEFAULT_LAYERS.iter().copied().filter(|l| gpt2 && held.contains(l)).collect();
    Some(if defaults.is_empty() { held } else { defaults })
}

/// A finite number at least 0 (NaN and inf would silently zero every score).
fn non_negative_f32(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be a finite number, 0 or more".into()),
        Err(e) => Err(format!("{e}: give a number, 0 or more")),
    }
}

/// A finite number at least 0.
fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be a finite number, 0 or more".into()),
        Err(e) => Err(format!("{e}: give a number, 0 or more")),
    }
}

/// A finite number above 0.
fn positive_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(v),
        Ok(_) => Err("must be a finite number above 0".into()),
        Err(e) => Err(format!("{e}: give a number above 0")),
    }
}

impl Common {
    /// `--sae-release`, or the default release for `--model` (`model_default`).
    pub fn sae_release(&self) -> String {
        self.sae_release_arg.clone().unwrap_or_else(|| self.model_default().map_or_else(|| DEFAULT_SAE_RELEASE.to_string(), |(r, _)| r))
    }

    /// `--layers`, or those of the default release (`model_default`), or 6,8,10,11.
    pub fn layers(&self) -> Vec<usize> {
        if let Some(l) = &self.layers_arg {
            return l.clone();
        }
        match (&self.sae_release_arg, self.model_default()) {
            (None, Some((_, layers))) => layers,
            (None, None) => self.sae_dir.as_deref().and_then(|d| layers_in_folder(d, self.is_gpt2())).unwrap_or_else(|| DEFAULT_LAYERS.to_vec()),
            // A named release in a folder of another model (what synth writes for
            // `--sae-release gemma-scope-2-270m-it-res`): the layers the folder holds; from
            // the hub, a release of four layers or fewer at all of them (Goodfire's one,
            // the temporal ones).
            (Some(release), _) if !self.is_gpt2() => {
                let reg = saescope::sae::registry::Registry::load(self.sae_registry.as_deref()).ok();
                match self.sae_dir.as_deref() {
                    Some(d) => reg.as_ref().and_then(|r| r.release_layers_in_folder(release, d)),
                    None => reg.as_ref().and_then(|r| r.layers_for(release, &DEFAULT_LAYERS)),
                }
                .unwrap_or_else(|| DEFAULT_LAYERS.to_vec())
            }
            _ => DEFAULT_LAYERS.to_vec(),
        }
    }

    /// Whether the model is a GPT-2 (a `--model-dir` by its config; a hub model by name).
    fn is_gpt2(&self) -> bool {
        match &self.model_dir {
            Some(dir) => saescope::model::config::ModelConfig::from_file(&dir.join("config.json")).map_or(true, |c| c.family() == "GPT-2"),
            None => self.model.to_lowercase().contains("gpt2"),
        }
    }

    /// For a hub model SAELens's registry has SAEs for (not the default GPT-2, whose
    /// res-jb is the default): its residual release with Neuronpedia dashboards, at the
    /// layers Neuronpedia hosts it (Gemma 3 270M: gemma-scope-2-270m-pt-res at 5, 9, 12,
    /// 15, about 25/50/65/85% of its depth).
    fn model_default(&self) -> Option<(String, Vec<usize>)> {
        // A cross-layer transcoder's folder is opened by hook (`--sae blocks.L.hook_mlp_in`),
        // not as a release: SAELens has none for Gemma Scope 2's.
        if self.sae_dir.as_deref().is_some_and(saescope::sae::cross_layer::is_dir) {
            return None;
        }
        let registry = saescope::sae::registry::Registry::load(self.sae_registry.as_deref()).ok()?;
        // The hub model whose releases fit: a local model's by its family and width.
        let model = match &self.model_dir {
            Some(dir) => saescope::model::config::ModelConfig::from_file(&dir.join("config.json")).ok().and_then(|c| c.hub_model()).map(str::to_string),
            None => Some(self.model.clone()),
        };
        // A folder of SAEs in a release's own layout (Gemma Scope's `resid_post/layer_L_...`)
        // says which release it is; one of SAELens folders named for hooks is read by layer.
        if let Some(dir) = self.sae_dir.as_deref().filter(|d| layers_in_folder(d, true).is_none()) {
            if let Some(found) = registry.release_in_folder(dir, model.as_deref()) {
                return Some(found);
            }
        }
        registry.residual_default(&model?)
    }

    /// A run as a side-by-side names it: its model and its SAEs.
    pub fn run_label(&self) -> String {
        format!("{} · {}", self.model_source().label(), self.sae_release())
    }

    pub fn model_source(&self) -> Source {
        self.model_dir.clone().map_or_else(|| Source::Hub(self.model.clone()), Source::Dir)
    }
    /// Where indexes live: beside the result cache (they are not skipped by --no-cache,
    /// which is about the samples' results).
    pub fn index_store(&self) -> color_eyre::Result<saescope::dashboard::store::Store> {
        let dir = self
            .cache_dir
            .clone()
            .or_else(saescope::activations::cache::Cache::default_dir)
            .ok_or_else(|| color_eyre::eyre::eyre!("this system has no user cache folder to keep the index in; pass --cache-dir DIR"))?;
        Ok(saescope::dashboard::store::Store::beside(&dir))
    }

    /// `--batch-tokens` for sample texts.
    pub fn text_batch_tokens(&self) -> usize {
        self.batch_tokens.unwrap_or(256)
    }

    /// `--batch-tokens` for corpus windows: full windows of one shape batch better larger.
    pub fn window_batch_tokens(&self) -> usize {
        self.batch_tokens.unwrap_or(1024)
    }

    pub fn corpus(&self) -> color_eyre::Result<Option<saescope::corpus::Corpus>> {
        self.corpus.as_deref().map(|p| saescope::corpus::Corpus::open(p, &self.text_field)).transpose()
    }

    /// None under --no-cache, or when the platform has no cache folder and none was given.
    pub fn cache(&self) -> Option<saescope::activations::cache::Cache> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(saescope::activations::cache::Cache::default_dir).map(saescope::activations::cache::Cache::at)
    }
}

#[cfg(test)]
mod tests {
    use super::layers_in_folder;

    /// A folder of SAELens SAEs named by hook opens at the study's layers for GPT-2, and
    /// whole for another family (Llama 3.2 1B's at 4, 8, 10, 14 opened at 8 and 10 alone).
    #[test]
    fn a_folder_of_hooks_opens_whole_unless_the_model_is_gpt2() {
        let dir = tempfile::tempdir().expect("tmp");
        for l in [4, 8, 10, 14] {
            std::fs::create_dir(dir.path().join(format!("blocks.{l}.hook_resid_pre"))).expect("folder");
        }
        assert_eq!(layers_in_folder(dir.path(), true), Some(vec![8, 10]));
        assert_eq!(layers_in_folder(dir.path(), false), Some(vec![4, 8, 10, 14]));
        assert_eq!(layers_in_folder(&dir.path().join("none"), false), None);
    }
}

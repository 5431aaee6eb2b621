//! What a run is asked for: the weights, the device, and options that change the numbers or
//! the resources.

use crate::activations::Keep;
use crate::sae::selection::Selection;
use crate::source::Source;
use color_eyre::eyre::{bail, Result};
use tch::{Device, Kind};

/// What to run: the weights (model and SAEs), where, and how. The one value every command,
/// the explorer's model thread, the index builder and the benchmark take.
#[derive(Debug, Clone)]
pub struct Run {
    pub model: Source,
    pub saes: Selection,
    pub device: Device,
    pub opts: RunOptions,
}

impl Run {
    /// The same run with other options (the index's batch size, say).
    pub fn with_opts(&self, opts: RunOptions) -> Self {
        Self { opts, ..self.clone() }
    }
}

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
    /// Read each text as a user turn in the model's chat template (model/chat.rs).
    pub chat: bool,
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
        Self { include_bos: false, truncate: false, batch_tokens: 256, keep: Keep::ALL, max_memory: None, dtype: Precision::F32, chat: false }
    }
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

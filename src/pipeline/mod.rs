//! Inputs -> activations: tokenise the samples, run the model once per batch for all
//! hooks, SAE-encode every token, and average each text's real tokens (encode-then-mean).
//! By job: `options` (what a run is asked for), `resolve` (the files it needs, their
//! identity and memory), `engine` (the loaded model and SAEs, and the batch loop), and
//! `batching` (planning and padding batches). `compute.rs` drives them, through the
//! result cache.

mod batching;
pub mod compute;
mod engine;
mod options;
mod resolve;

pub use batching::{pack, pack_framed, pack_to, plan, Frame, Packed};
pub use engine::{Engine, TokenLogits};
pub use options::{parse_device, Precision, Run, RunOptions};
pub use resolve::{available_memory, gib, FoundSae, MemoryNeed, Resolved};

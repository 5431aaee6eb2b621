//! Synthetic checkpoints, SAEs and sample texts in the real layouts, for tests and
//! benchmarks where the real weights cannot be downloaded.

pub mod gemma3;
pub mod gpt2;
pub mod samples;
pub mod transcoders;

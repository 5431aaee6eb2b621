//! Synthetic checkpoints, SAEs and sample texts in the real layouts, for tests and
//! benchmarks where the real weights cannot be downloaded.

pub mod gemma;
pub mod gpt2;
pub mod llama;
pub mod neox;
pub mod samples;
pub mod scope_examples;
pub mod shards;
pub mod tokenizer;
pub mod transcoders;

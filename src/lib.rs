//! saescope: which GPT-2 SAE features fire for categories of text, layer by layer.
//! Data flows one way: sources -> model + SAE (pipeline) -> activations -> analysis -> views.

pub mod activations;
pub mod analysis;
pub mod attribute;
pub mod bench;
pub mod cache;
pub mod card;
pub mod cli;
pub mod compute;
pub mod config;
pub mod corpus;
pub mod cpu;
pub mod dashboard;
pub mod findings;
pub mod fsio;
pub mod hooks;
pub mod interrupt;
pub mod labels;
pub mod lens;
pub mod memory;
pub mod model;
pub mod neuronpedia;
pub mod pickle;
pub mod pipeline;
pub mod printable;
pub mod progress;
pub mod report;
pub mod sae;
pub mod samples;
pub mod source;
pub mod steer;
pub mod synth_samples;
pub mod tensors;
pub mod tokenizer;
pub mod torch_pt;
pub mod ui;

//! Every integration test in one binary: each libtorch-linked test binary cost a link and
//! ~120 MB, and `common`'s tiny weights and releases were built once per binary.

mod common;

mod analysis;
mod architecture;
mod attribute;
mod bad_input;
mod cache;
mod card;
mod chat;
mod cli;
mod dashboard;
mod deploy;
mod docs;
mod download;
mod eval;
mod findings;
mod formats;
mod fuzz;
mod gemma2;
mod gemma3;
mod llama;
mod neox;
mod gemma_run;
mod graph;
mod hooks;
mod interrupt;
mod labels;
mod lens;
mod neuronpedia_dump;
mod outputs;
mod pipeline;
mod pt;
mod questions;
mod reference;
mod release;
mod scope_examples;
mod sae;
mod scale;
mod steer;
mod steer_hooks;
mod tui_e2e;
mod ui;

//! saescope: which SAE features of a language model fire for categories of text, layer by
//! layer, and what one feature means and does.
//!
//! The folders are floors, each using only those listed before it (docs/architecture.md
//! has a paragraph on each): data flows one way, from weights and texts through the model
//! and its SAEs to activations, then to analysis and the views.

pub mod runtime;
pub mod weights;
pub mod model;
pub mod source;
pub mod sae;
pub mod activations;
pub mod corpus;
pub mod pipeline;
pub mod dashboard;
pub mod neuronpedia;
pub mod analysis;
pub mod interp;
pub mod graph;
pub mod output;
pub mod synth;
pub mod ui;

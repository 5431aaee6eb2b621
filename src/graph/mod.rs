//! Attribution graphs: how the features of per-layer transcoders compose into one
//! prediction, as circuit-tracer computes them.

pub mod replacement;
pub mod transcoders;

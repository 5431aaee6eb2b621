//! Neuronpedia's data: feature labels (explanation exports), whole data dumps read as
//! dashboards, and the export of saescope's own dashboards in Neuronpedia's layout.

pub mod dump;
pub mod export;
pub mod histogram;
pub mod labels;
pub mod scope_examples;

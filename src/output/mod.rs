//! Headless results for scripts and notebooks: the report in text, CSV and JSON.

pub mod report;

//! What every floor above uses and nothing here depends on: the process's cores and heap,
//! signals, progress reports, files written safely and user text made safe to print.

pub mod cpu;
pub mod fsio;
pub mod interrupt;
pub mod memory;
pub mod printable;
pub mod progress;

//! Thresholds and `compare`: evaluation on hand-built summaries, the CLI, the demo.
mod cli;
mod compare;
mod demo;
mod eval;

//! Thresholds (parsed here from k6-like expressions) and, later, their evaluation against a
//! `Summary` and baseline comparison. Owns the one place that turns gate results into exit code 1.

pub mod threshold;

pub use threshold::{Cmp, MetricRef, Stat, Threshold, ThresholdError, parse_threshold};

//! Scenario files: error messages, plans, the shipped scenarios, thresholds.
mod errors;
mod plan;
mod shipped;
mod thresholds;

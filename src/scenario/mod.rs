//! Scenario files: YAML → `Scenario` (with spans for errors) → validated `plan::Plan`.
pub mod error;
pub mod units;
pub mod yaml;

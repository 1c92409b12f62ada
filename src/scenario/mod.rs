//! Scenario files: YAML → `Scenario` (with spans for errors) → validated `plan::Plan`.
// TEMPORARY STUB (lead's branch only): replaced by the real loader at merge.
#![allow(dead_code, unused_variables)]
use crate::plan::Plan;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub target: Option<url::Url>,
    pub env: Option<String>,
    pub vus: Option<u32>,
    pub rate: Option<f64>,
    pub max_vus: Option<u32>,
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    pub thresholds: Vec<String>,
    pub http: Option<crate::plan::HttpOptions>,
}
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct ScenarioError;
pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ScenarioError> {
    Err(ScenarioError)
}
pub fn parse_rate(s: &str) -> Result<f64, String> {
    Err(String::new())
}
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

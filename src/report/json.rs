//! JSON: the full versioned run result (`--out run.json`; with a baseline, the comparison
//! `sonde.compare/v1` instead), and the flat script summary (`--format json` on stdout,
//! `sonde.summary/v1`): percentiles, threshold results and the gate's pass/fail, no histograms.

use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::aggregate::summary::LatencyOrigin;
use crate::aggregate::summary::StepSummary;
use crate::gate::{self, Comparison, ThresholdResult};
use serde::Serialize;

/// The schema of the flat script summary. It holds no histograms: `sonde compare` refuses it
/// and names the full result (`--out run.json`) instead.
pub const SCRIPT_SCHEMA: &str = "sonde.summary/v1";

pub struct JsonReport;

impl Report for JsonReport {
    fn render_with(
        &self,
        summary: &Summary,
        comparison: Option<&Comparison>,
    ) -> Result<Vec<u8>, ReportError> {
        let v = match comparison {
            Some(c) => serde_json::to_vec_pretty(c),
            None => serde_json::to_vec_pretty(summary),
        };
        let mut v = v.map_err(|e| ReportError::Serialize(e.to_string()))?;
        v.push(b'\n');
        Ok(v)
    }
}

/// One row of the script summary: counts and percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct ScriptRow<'a> {
    pub name: &'a str,
    pub requests: u64,
    pub rps: f64,
    pub errors: u64,
    pub error_rate: f64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The slowest requests (and first failures per class), with trace and request ids.
    #[serde(skip_serializing_if = "crate::aggregate::Exemplars::is_empty")]
    pub exemplars: &'a crate::aggregate::Exemplars,
}

impl<'a> ScriptRow<'a> {
    fn of(s: &'a StepSummary) -> ScriptRow<'a> {
        let l = &s.latency;
        ScriptRow {
            name: &s.name,
            requests: s.requests,
            rps: s.rps,
            errors: s.errors,
            error_rate: (s.error_rate() * 10_000.0).round() / 10_000.0,
            min_ms: l.min_ms,
            mean_ms: l.mean_ms,
            p50_ms: l.p50_ms,
            p90_ms: l.p90_ms,
            p95_ms: l.p95_ms,
            p99_ms: l.p99_ms,
            p999_ms: l.p999_ms,
            max_ms: l.max_ms,
            exemplars: &s.exemplars,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ScriptSummary<'a> {
    /// `sonde.summary/v1`.
    pub schema: &'static str,
    /// The gate's decision, as the exit code makes it (exit 1 when false): every threshold
    /// held and, without thresholds, every request met its expectations.
    pub passed: bool,
    /// Why it did not pass, one line each (empty when it passed).
    pub failures: Vec<String>,
    /// Every threshold with its outcome (`pass`, `fail`, `no_data`), limit and measured value.
    pub thresholds: &'a [ThresholdResult],
    pub scenario: &'a str,
    pub target: &'a str,
    pub duration_s: f64,
    pub interrupted: bool,
    pub latency_measured_from: LatencyOrigin,
    pub iterations: u64,
    pub failed_iterations: u64,
    pub dropped_iterations: u64,
    pub requests: u64,
    pub rps: f64,
    pub errors: u64,
    pub http: ScriptRow<'a>,
    pub steps: Vec<ScriptRow<'a>>,
    /// Poll steps' settle times (`STEP.settle`; `requests` counts polls). Absent without polls.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settle: Vec<ScriptRow<'a>>,
}

/// The flat summary scripts read from stdout.
pub fn script_summary(s: &Summary) -> Result<String, ReportError> {
    let settles: Vec<StepSummary> = s
        .steps
        .iter()
        .filter_map(|st| st.settle_row(s.duration_s))
        .collect();
    let v = gate::verdict(s, None);
    let out = ScriptSummary {
        schema: SCRIPT_SCHEMA,
        passed: v.passed,
        failures: v.reasons,
        thresholds: &s.thresholds,
        scenario: &s.scenario,
        target: &s.target.url,
        duration_s: s.duration_s,
        interrupted: s.interrupted,
        latency_measured_from: s.latency_measured_from,
        iterations: s.iterations.count,
        failed_iterations: s.iterations.failed,
        dropped_iterations: s.iterations.dropped,
        requests: s.http.requests,
        rps: s.http.rps,
        errors: s.http.errors,
        http: ScriptRow::of(&s.http),
        steps: s.steps.iter().map(ScriptRow::of).collect(),
        settle: settles.iter().map(ScriptRow::of).collect(),
    };
    serde_json::to_string_pretty(&out).map_err(|e| ReportError::Serialize(e.to_string()))
}

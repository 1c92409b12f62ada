//! Gates: thresholds (parsed in `threshold`, evaluated against a `Summary` in `eval`) and
//! baseline comparison with significance (`compare`). The one place that decides whether a run
//! or a comparison failed its gate; formatting belongs to `report`.

pub mod comparable;
pub mod compare;
pub mod eval;
pub mod stats;
pub mod threshold;

pub use compare::{CompareError, CompareOptions, Comparison, Verdict, compare};
pub use eval::{Outcome, ThresholdResult, Unit, abort_check, all_passed, evaluate};
pub use threshold::{Cmp, MetricRef, Stat, Threshold, ThresholdError, parse_threshold};

use crate::aggregate::Summary;

/// The gate's decision on a run and, when given, its baseline comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct GateVerdict {
    pub passed: bool,
    /// Why it failed, one line each (empty when it passed).
    pub reasons: Vec<String>,
}

/// The one place a run's results become pass/fail (exit code 1 when not passed): thresholds
/// that failed or had no data, requests that failed their expectations, a regression.
#[must_use]
pub fn verdict(summary: &Summary, comparison: Option<&Comparison>) -> GateVerdict {
    let mut reasons = Vec::new();
    for t in summary.thresholds.iter().filter(|t| !t.passed()) {
        reasons.push(format!("threshold `{}` failed: {}", t.threshold, t.message));
    }
    // Thresholds, when declared, decide how many failed requests are acceptable
    // (`http: error_rate < 1%`); without any, every failed expectation fails the gate.
    if summary.thresholds.is_empty() {
        if summary.http.errors > 0 {
            reasons.push(format!(
                "{} of {} requests failed",
                summary.http.errors, summary.http.requests
            ));
        } else if summary.iterations.failed > 0 {
            reasons.push(format!("{} iterations failed", summary.iterations.failed));
        }
    }
    if let Some(c) = comparison {
        for r in c.gating_rows().filter(|r| r.verdict == Verdict::Regressed) {
            reasons.push(format!(
                "regressed against the baseline: {}",
                r.why.clone().unwrap_or_else(|| r.key.clone())
            ));
        }
    }
    GateVerdict {
        passed: reasons.is_empty(),
        reasons,
    }
}

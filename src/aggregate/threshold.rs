//! A threshold's verdict as plain data: what `gate` decides, `Summary` stores and every report
//! renders. Kept below `gate` so that `aggregate` never reads the module that reads it.

use serde::{Deserialize, Serialize};

/// How a threshold's limit and measured value are expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// A fraction in [0, 1] (shown as a percentage).
    Fraction,
    /// Per second.
    PerSecond,
    /// A plain count.
    Count,
}

impl Unit {
    /// The value as a person reads it (`312 ms`, `1.25%`, `40.0/s`, `12`).
    #[must_use]
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Ms => format!("{} ms", crate::units::ms(v)),
            Unit::Fraction => format!("{:.2}%", v * 100.0),
            Unit::PerSecond => format!("{v:.1}/s"),
            Unit::Count => format!("{v:.0}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Nothing was measured for the metric (no such step or phase, another environment, no
    /// requests). Never a silent pass: it fails the gate like `Fail`.
    NoData,
}

/// One threshold's verdict, as stored in `Summary.thresholds` and rendered by every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The threshold as written (`profile: p(95) < 300ms`).
    pub threshold: String,
    /// Normalised metric key: `profile`, `profile.wait`, `profile.server_timing.db{env:whale}`.
    pub metric: String,
    /// `p(95)`, `avg`, `min`, `max`, `med`, `count`, `rate`, `error_rate`, `dropped`.
    pub stat: String,
    /// `<`, `<=`, `>`, `>=`, `==`, `!=`.
    pub op: String,
    /// The limit, in `unit`.
    pub limit: f64,
    pub unit: Unit,
    /// The measured value in `unit`; absent when there was no data.
    pub measured: Option<f64>,
    pub outcome: Outcome,
    /// One line for people: `p(95) 312 ms, limit < 300 ms` or why there was no data.
    pub message: String,
    #[serde(default)]
    pub abort_on_fail: bool,
}

impl ThresholdResult {
    #[must_use]
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

/// True when every threshold passed (an empty list passes).
pub fn all_passed(results: &[ThresholdResult]) -> bool {
    results.iter().all(ThresholdResult::passed)
}

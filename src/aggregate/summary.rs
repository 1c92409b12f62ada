//! `Summary`: the named, serializable result of a run (schema `sonde.run/v1`, documented in
//! `docs/result-schema.json`). Histograms travel inside it encoded, so saved runs can be merged
//! and compared exactly. Built by exec from `Recorder`s; read by reports and gates.

use super::{Hist, PHASES, Recorder, StepStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA: &str = "sonde.run/v1";

/// Percentile digest of one histogram, in milliseconds, plus the encoded histogram itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// `HdrHistogram` V2 + deflate, base64; values in microseconds. Empty when count is 0.
    pub hist: String,
}

impl Stats {
    #[must_use]
    pub fn of(h: &Hist) -> Stats {
        Stats {
            count: h.count(),
            min_ms: ms(h.min_us()),
            mean_ms: round3(h.mean_us() / 1000.0),
            p50_ms: h.quantile_ms(0.50),
            p90_ms: h.quantile_ms(0.90),
            p95_ms: h.quantile_ms(0.95),
            p99_ms: h.quantile_ms(0.99),
            p999_ms: h.quantile_ms(0.999),
            max_ms: ms(h.max_us()),
            // Encoding a valid in-memory histogram does not fail; an empty string would only
            // cost exact merging of this one metric.
            hist: h.encode().unwrap_or_default(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The histogram behind these stats (empty if it was not stored).
    #[must_use]
    pub fn histogram(&self) -> Hist {
        Hist::decode(&self.hist).unwrap_or_default()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepSummary {
    pub name: String,
    /// Requests sent, each once (a redirect chain is one request):
    /// `latency.count + failed_latency.count`.
    pub requests: u64,
    /// Redirect hops followed inside those requests.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redirects: u64,
    pub errors: u64,
    /// Requests per second over the measured duration.
    pub rps: f64,
    pub reused: u64,
    pub tls_resumed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Responses whose body had no length and ended with the connection (HTTP/1.0 style).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub close_delimited: u64,
    pub statuses: BTreeMap<String, u64>,
    pub error_classes: BTreeMap<String, u64>,
    pub error_messages: BTreeMap<String, u64>,
    /// Times the step was not run by design (its `if:` did not hold, or a variable it needs had
    /// no value after an earlier step failed): neither requests nor errors.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_run: u64,
    /// Why it was not run -> count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_run_reasons: BTreeMap<String, u64>,
    /// Successful requests (see `failed_latency`).
    pub latency: Stats,
    /// Latency of the failed requests, apart from `latency`; absent when none failed.
    #[serde(default, skip_serializing_if = "Stats::is_empty")]
    pub failed_latency: Stats,
    /// A poll step's settle time (from `since` to the passing response, waits included), one
    /// sample per settled poll; absent for other steps and `http`.
    #[serde(default, skip_serializing_if = "Stats::is_empty")]
    pub settle: Stats,
    /// Polls that gave up; their time is not in `settle`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unsettled: u64,
    /// dns, connect, tls, send, wait, receive, total.
    pub phases: BTreeMap<String, Stats>,
    pub server_timing: BTreeMap<String, Stats>,
    /// The slowest requests (and first failures per class), to find them in traces and logs.
    #[serde(default, skip_serializing_if = "super::Exemplars::is_empty")]
    pub exemplars: super::Exemplars,
}

impl StepSummary {
    #[must_use]
    pub fn of(name: &str, s: &StepStats, seconds: f64) -> StepSummary {
        if s.zero_connect > 0 {
            let mut settled = s.clone();
            settled.settle();
            return StepSummary::of(name, &settled, seconds);
        }
        StepSummary {
            name: name.to_string(),
            requests: s.requests,
            redirects: s.redirects,
            errors: s.errors,
            rps: rate(s.requests, seconds),
            reused: s.reused,
            tls_resumed: s.tls_resumed,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            close_delimited: s.close_delimited,
            statuses: s
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            error_classes: s.error_classes.clone(),
            error_messages: s.error_messages.clone(),
            not_run: s.not_run,
            not_run_reasons: s.not_run_reasons.clone(),
            latency: Stats::of(&s.latency),
            failed_latency: Stats::of(&s.failed_latency),
            settle: Stats::of(&s.settle),
            unsettled: s.unsettled,
            phases: PHASES
                .iter()
                .zip(s.phases.iter())
                .filter(|(_, h)| !h.is_empty())
                .map(|(p, h)| (p.to_string(), Stats::of(h)))
                .collect(),
            server_timing: s
                .server_timing
                .iter()
                .map(|(k, h)| (k.clone(), Stats::of(h)))
                .collect(),
            exemplars: s.exemplars.clone(),
        }
    }

    /// Back to mergeable stats (for `merge` and `compare`).
    #[must_use]
    pub fn to_stats(&self) -> StepStats {
        let mut s = StepStats {
            latency: self.latency.histogram(),
            failed_latency: self.failed_latency.histogram(),
            settle: self.settle.histogram(),
            unsettled: self.unsettled,
            requests: self.requests,
            redirects: self.redirects,
            errors: self.errors,
            reused: self.reused,
            tls_resumed: self.tls_resumed,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            close_delimited: self.close_delimited,
            statuses: self
                .statuses
                .iter()
                .filter_map(|(k, v)| k.parse().ok().map(|k| (k, *v)))
                .collect(),
            error_classes: self.error_classes.clone(),
            error_messages: self.error_messages.clone(),
            not_run: self.not_run,
            not_run_reasons: self.not_run_reasons.clone(),
            server_timing: self
                .server_timing
                .iter()
                .map(|(k, st)| (k.clone(), st.histogram()))
                .collect(),
            ..StepStats::default()
        };
        s.exemplars.merge(&self.exemplars);
        for (i, p) in PHASES.iter().enumerate() {
            if let Some(st) = self.phases.get(*p) {
                s.phases[i] = st.histogram();
            }
        }
        s
    }

    /// A poll step's settle time as a row of its own, `NAME.settle`: its count is polls
    /// (settled plus given up), its errors the polls that gave up, its percentiles the settled
    /// ones. `None` for a step that does not poll.
    #[must_use]
    pub fn settle_row(&self, seconds: f64) -> Option<StepSummary> {
        let polls = self.polls();
        (polls > 0).then(|| StepSummary {
            name: format!("{}.settle", self.name),
            requests: polls,
            errors: self.unsettled,
            rps: rate(polls, seconds),
            latency: self.settle.clone(),
            ..StepSummary::default()
        })
    }

    /// Polls this step ran to an end: settled plus gave up (0 for a step that does not poll).
    #[must_use]
    pub fn polls(&self) -> u64 {
        self.settle.count + self.unsettled
    }

    #[must_use]
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

#[must_use]
pub fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (n as f64 / seconds * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// One point of the per-interval time series.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IntervalPoint {
    /// Seconds since the run's start (interval end).
    pub t: f64,
    pub requests: u64,
    pub errors: u64,
    pub iterations: u64,
    pub dropped: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `as_str` (the name the result file and messages use, as serde writes it) and `Display` for
/// a kind enum of the result.
macro_rules! named {
    ($t:ident { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The name the result file and messages use.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($t::$v => $s,)*
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What a run was sent to (`url` or `embedded-demo` in the result file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// An explicit target URL.
    #[default]
    Url,
    /// The demo API started inside sonde for the run.
    EmbeddedDemo,
}

named!(TargetKind { Url => "url", EmbeddedDemo => "embedded-demo" });

/// Where each request's latency is measured from (`request_start` or `intended_start` in the
/// result file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyOrigin {
    /// The request's own start (closed model: no coordinated-omission correction).
    #[default]
    RequestStart,
    /// The iteration's intended start (open model: coordinated omission corrected).
    IntendedStart,
}

named!(LatencyOrigin { RequestStart => "request_start", IntendedStart => "intended_start" });

/// How load was offered (`closed`, `open`, or `breakdown` for a traced breakdown's runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadModel {
    /// A fixed number of virtual users, each starting its next iteration when one ends.
    #[default]
    Closed,
    /// Iterations arrive at a rate, whatever the server's latency.
    Open,
    /// One traced user at a time (`sonde breakdown`).
    Breakdown,
}

named!(LoadModel { Closed => "closed", Open => "open", Breakdown => "breakdown" });

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TargetInfo {
    pub kind: TargetKind,
    pub url: String,
    #[serde(default)]
    pub demo_faults: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadInfo {
    pub model: LoadModel,
    pub vus: Option<u32>,
    pub rate_per_s: Option<f64>,
    pub max_vus: Option<u32>,
    pub duration_s: Option<f64>,
    pub iterations: Option<u64>,
    #[serde(default)]
    pub stages: Vec<(f64, f64)>,
    /// Virtual users per HTTP/2 connection (`--streams-per-connection`), when above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams_per_connection: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IterationSummary {
    pub count: u64,
    pub failed: u64,
    pub dropped: u64,
    pub rate: f64,
    pub duration: Stats,
}

/// The run result. Field order is the JSON order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub schema: String,
    pub sonde_version: String,
    pub scenario: String,
    pub scenario_path: Option<String>,
    pub target: TargetInfo,
    pub env: Option<String>,
    pub load: LoadInfo,
    /// RFC 3339 wall clock of the run's start.
    pub started_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    /// Requests still in flight when the grace period ended: cancelled and counted as failed
    /// (class `cancelled`).
    #[serde(default)]
    pub cut_requests: u64,
    /// Seconds virtual users waited in total because a 429 said `Retry-After`.
    #[serde(default)]
    pub rate_limit_wait_s: f64,
    pub insecure: bool,
    pub latency_measured_from: LatencyOrigin,
    pub iterations: IterationSummary,
    /// All requests of all steps (setup excluded).
    pub http: StepSummary,
    /// In plan order.
    pub steps: Vec<StepSummary>,
    pub series: Vec<IntervalPoint>,
    /// Threshold verdicts (`gate::evaluate`), in declaration order; empty when none were declared.
    #[serde(default)]
    pub thresholds: Vec<super::threshold::ThresholdResult>,
    /// Free-form notes the run wants every report to state (e.g. demo seeding time).
    #[serde(default)]
    pub notes: Vec<String>,
    /// `--trace-url`: a link template (`{trace_id}`, `{request_id}`) reports fill in for each
    /// exemplar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_url: Option<String>,
    /// `sonde breakdown` only: the median iteration of each connection mode, as a waterfall.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waterfalls: Vec<super::Waterfall>,
    /// Set when the run was one shard of several (`--shard`) or a merge of shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

/// Which shard a result is, or which shards a merged result holds (`sonde::shard`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ShardInfo {
    /// This shard's index, from 0. Absent in a merged result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// How many shards the run was split into.
    pub count: u32,
    /// `shard::plan_hash` of the unsplit plan: shards merge only with the same hash.
    pub plan_hash: String,
    /// The agreed start (`--start-at`), RFC 3339 UTC, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// The wall clock (RFC 3339 UTC, µs) at which this shard's load started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_clock: Option<String>,
    /// The whole plan's thresholds as written; a shard does not gate, the merge evaluates them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<String>,
    /// Merged result: the shards it holds, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedShard>,
    /// Merged result: the indexes of shards that were absent (`--allow-partial`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u32>,
    /// Merged result: true when shards are missing, so totals cover only part of the plan.
    #[serde(default)]
    pub partial: bool,
}

/// One shard inside a merged result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MergedShard {
    pub index: u32,
    /// The file it was read from, as given to `sonde merge`.
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_clock: Option<String>,
}

impl Summary {
    /// Fills the measured parts from a merged recorder; identity fields are left to the caller.
    #[must_use]
    pub fn measured(names: &[String], rec: &Recorder, seconds: f64) -> Summary {
        let steps: Vec<StepSummary> = names
            .iter()
            .zip(rec.steps.iter())
            .map(|(n, s)| StepSummary::of(n, s, seconds))
            .collect();
        Summary {
            schema: SCHEMA.to_string(),
            sonde_version: env!("CARGO_PKG_VERSION").to_string(),
            duration_s: (seconds * 1000.0).round() / 1000.0,
            cut_requests: rec.cut_requests,
            rate_limit_wait_s: round3(rec.rate_limit_wait.as_secs_f64()),
            iterations: IterationSummary {
                count: rec.iterations,
                failed: rec.failed_iterations,
                dropped: rec.dropped_iterations,
                rate: rate(rec.iterations, seconds),
                duration: Stats::of(&rec.iteration_time),
            },
            http: StepSummary::of("http", &rec.all_requests(), seconds),
            steps,
            ..Summary::default()
        }
    }

    #[must_use]
    pub fn step(&self, name: &str) -> Option<&StepSummary> {
        if name == "http" {
            return Some(&self.http);
        }
        self.steps.iter().find(|s| s.name == name)
    }
}

/// What a command measured: the request steps' names (plan order), the merged recorder and
/// the seconds it took. The first half of `Summary::new`.
pub struct Measured<'a> {
    pub names: &'a [String],
    pub recorder: &'a Recorder,
    pub seconds: f64,
}

/// What a run was, apart from what it measured: the second half of `Summary::new`.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub scenario: String,
    pub scenario_path: Option<String>,
    pub target: TargetInfo,
    pub env: Option<String>,
    pub load: LoadInfo,
    /// Wall clock of the run's start.
    pub started_at: Option<std::time::SystemTime>,
    pub interrupted: bool,
    pub insecure: bool,
    /// `intended_start` (open model) or `request_start`.
    pub latency_measured_from: LatencyOrigin,
    pub notes: Vec<String>,
}

impl Summary {
    /// A run's summary: its measurements and what it was. Thresholds, series, waterfalls and
    /// shard information are the caller's to add.
    #[must_use]
    pub fn new(measured: &Measured<'_>, info: RunInfo) -> Summary {
        let mut s = Summary::measured(measured.names, measured.recorder, measured.seconds);
        s.scenario = info.scenario;
        s.scenario_path = info.scenario_path;
        s.target = info.target;
        s.env = info.env;
        s.load = info.load;
        s.started_at = info
            .started_at
            .map(|t| humantime::format_rfc3339_millis(t).to_string())
            .unwrap_or_default();
        s.interrupted = info.interrupted;
        s.insecure = info.insecure;
        s.latency_measured_from = info.latency_measured_from;
        s.notes = info.notes;
        s
    }
}

#[cfg(test)]
mod kind_names {
    #![allow(clippy::unwrap_used)]
    use super::{LatencyOrigin, LoadModel, TargetKind};

    /// `as_str` names each variant as serde writes it.
    #[test]
    fn as_str_matches_serde() {
        for k in [TargetKind::Url, TargetKind::EmbeddedDemo] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for m in [LoadModel::Closed, LoadModel::Open, LoadModel::Breakdown] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for o in [LatencyOrigin::RequestStart, LatencyOrigin::IntendedStart] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.to_string());
        }
    }
}

//! Exact merge of saved run results (`Summary`s of shards of one run): every histogram decoded,
//! added bucket for bucket and re-encoded; counts, errors, statuses and error classes summed;
//! time series aligned on wall-clock intervals using each part's `started_at`. Checks only what
//! the arithmetic needs (decodable histograms, the same steps); whether the parts belong together
//! (scenario, plan hash, shard indexes) is `shard::merge`'s call.

use super::summary::{IntervalPoint, LoadInfo, Stats, StepSummary, Summary};
use super::{Hist, Recorder, StepStats};
use std::time::{Duration, SystemTime};

/// The time-series interval `exec` records (`RunOptions::interval`).
pub const SERIES_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SummaryMergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("histogram `{metric}` is invalid: {reason}")]
    Hist {
        part: usize,
        metric: String,
        reason: String,
    },
    #[error("`started_at` `{value}` is not an RFC 3339 time")]
    StartedAt { part: usize, value: String },
    #[error("its steps [{got}] are not the first file's [{want}]")]
    Steps {
        part: usize,
        got: String,
        want: String,
    },
}

impl SummaryMergeError {
    /// Which input (index into the slice given to `merge`) the problem is in.
    #[must_use]
    pub fn part(&self) -> Option<usize> {
        match self {
            SummaryMergeError::Empty => None,
            SummaryMergeError::Hist { part, .. }
            | SummaryMergeError::StartedAt { part, .. }
            | SummaryMergeError::Steps { part, .. } => Some(*part),
        }
    }
}

fn check_stats(part: usize, metric: &str, s: &Stats) -> Result<Hist, SummaryMergeError> {
    let bad = |reason: String| SummaryMergeError::Hist {
        part,
        metric: metric.to_string(),
        reason,
    };
    if s.count > 0 && s.hist.is_empty() {
        return Err(bad(format!("{} values but no histogram", s.count)));
    }
    let h = Hist::decode(&s.hist).map_err(|e| bad(e.to_string()))?;
    if h.count() != s.count {
        return Err(bad(format!(
            "it holds {} values but `count` says {}",
            h.count(),
            s.count
        )));
    }
    Ok(h)
}

/// Every histogram of a step decoded and checked against its count.
fn step_stats(part: usize, s: &StepSummary) -> Result<StepStats, SummaryMergeError> {
    let mut out = s.to_stats();
    out.latency = check_stats(part, &s.name, &s.latency)?;
    for (i, p) in super::PHASES.iter().enumerate() {
        if let Some(st) = s.phases.get(*p) {
            out.phases[i] = check_stats(part, &format!("{}.{p}", s.name), st)?;
        }
    }
    for (k, st) in &s.server_timing {
        let h = check_stats(part, &format!("{}.server_timing.{k}", s.name), st)?;
        out.server_timing.insert(k.clone(), h);
    }
    Ok(out)
}

/// Every histogram in `s` decodes and matches its count (a truncated or edited file does not).
pub fn validate(part: usize, s: &Summary) -> Result<(), SummaryMergeError> {
    step_stats(part, &s.http)?;
    for st in &s.steps {
        step_stats(part, st)?;
    }
    check_stats(part, "iterations", &s.iterations.duration)?;
    Ok(())
}

fn started(part: usize, s: &Summary) -> Result<SystemTime, SummaryMergeError> {
    humantime::parse_rfc3339_weak(s.started_at.trim().trim_end_matches(['Z', 'z'])).map_err(|_| {
        SummaryMergeError::StartedAt {
            part,
            value: s.started_at.clone(),
        }
    })
}

fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

fn sum_opt<T: Copy + std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The shards' load shares added back up (rates rounded to 1e-6 against float residue).
fn merge_load(parts: &[Summary]) -> LoadInfo {
    let mut out = parts.first().map(|p| p.load.clone()).unwrap_or_default();
    for p in parts.iter().skip(1) {
        out.vus = sum_opt(out.vus, p.load.vus);
        out.max_vus = sum_opt(out.max_vus, p.load.max_vus);
        out.iterations = sum_opt(out.iterations, p.load.iterations);
        out.rate_per_s = sum_opt(out.rate_per_s, p.load.rate_per_s);
        for (a, b) in out.stages.iter_mut().zip(p.load.stages.iter()) {
            a.1 += b.1;
        }
    }
    let r6 = |x: f64| (x * 1e6).round() / 1e6;
    out.rate_per_s = out.rate_per_s.map(r6);
    for s in &mut out.stages {
        s.1 = r6(s.1);
    }
    out
}

/// Interval points of every part re-keyed on wall-clock slots of `SERIES_INTERVAL` from the
/// earliest start. Counts add exactly; a point carries no histogram, so the merged `p50_ms` is
/// the request-weighted mean of the parts' and `p99_ms` their maximum (an upper bound).
fn merge_series(parts: &[Summary], offsets: &[f64], total_s: f64) -> Vec<IntervalPoint> {
    let iv = SERIES_INTERVAL.as_secs_f64();
    let mut slots: std::collections::BTreeMap<u64, (IntervalPoint, f64)> = Default::default();
    for (p, off) in parts.iter().zip(offsets) {
        let shift = (off / iv).round().max(0.0) as u64;
        for pt in &p.series {
            // A point's `t` is its interval's end: k * iv, or the elapsed time for the last.
            let k = ((pt.t / iv) - 1e-6).ceil().max(1.0) as u64;
            let (acc, weighted) = slots.entry(k + shift).or_default();
            acc.requests += pt.requests;
            acc.errors += pt.errors;
            acc.iterations += pt.iterations;
            acc.dropped += pt.dropped;
            acc.p99_ms = acc.p99_ms.max(pt.p99_ms);
            *weighted += pt.p50_ms * pt.requests as f64;
        }
    }
    slots
        .into_iter()
        .map(|(j, (mut pt, weighted))| {
            pt.t = ((j as f64 * iv).min(total_s) * 1000.0).round() / 1000.0;
            pt.p50_ms = if pt.requests > 0 {
                (weighted / pt.requests as f64 * 1000.0).round() / 1000.0
            } else {
                0.0
            };
            pt
        })
        .collect()
}

/// Merges `parts` exactly (see the module doc). Identity fields come from the first part; the
/// caller fills `shard` and checks that the parts belong together.
pub fn merge(parts: &[Summary]) -> Result<Summary, SummaryMergeError> {
    let first = parts.first().ok_or(SummaryMergeError::Empty)?;
    let names: Vec<String> = first.steps.iter().map(|s| s.name.clone()).collect();
    let mut rec = Recorder::new(names.len());
    let mut http = StepStats::default();
    let mut starts = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let got: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        if got != names.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(SummaryMergeError::Steps {
                part: i,
                got: got.join(", "),
                want: names.join(", "),
            });
        }
        let mut r = Recorder::new(names.len());
        for (slot, s) in r.steps.iter_mut().zip(&p.steps) {
            *slot = step_stats(i, s)?;
        }
        r.iterations = p.iterations.count;
        r.failed_iterations = p.iterations.failed;
        r.dropped_iterations = p.iterations.dropped;
        r.iteration_time = check_stats(i, "iterations", &p.iterations.duration)?;
        rec.merge(&r);
        http.merge(&step_stats(i, &p.http)?);
        starts.push(started(i, p)?);
    }
    let t0 = starts
        .iter()
        .min()
        .copied()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let offsets: Vec<f64> = starts.iter().map(|s| secs_between(t0, *s)).collect();
    let total_s = parts
        .iter()
        .zip(&offsets)
        .map(|(p, o)| o + p.duration_s)
        .fold(0.0, f64::max);

    let mut out = Summary::measured(&names, &rec, total_s);
    out.http = StepSummary::of("http", &http, total_s);
    out.scenario = first.scenario.clone();
    out.scenario_path = first.scenario_path.clone();
    out.target = first.target.clone();
    out.env = first.env.clone();
    out.load = merge_load(parts);
    out.started_at = humantime::format_rfc3339_millis(t0).to_string();
    out.interrupted = parts.iter().any(|p| p.interrupted);
    out.cut_requests = parts.iter().map(|p| p.cut_requests).sum();
    out.rate_limit_wait_s = parts.iter().map(|p| p.rate_limit_wait_s).sum();
    out.insecure = parts.iter().any(|p| p.insecure);
    out.latency_measured_from = first.latency_measured_from;
    out.series = merge_series(parts, &offsets, total_s);
    // Shards of one run share the command line, so the first one's link template holds for all.
    out.trace_url = parts.iter().find_map(|p| p.trace_url.clone());
    let mut notes: Vec<String> = Vec::new();
    for n in parts.iter().flat_map(|p| &p.notes) {
        if !notes.contains(n) {
            notes.push(n.clone());
        }
    }
    out.notes = notes;
    Ok(out)
}

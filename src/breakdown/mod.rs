//! `sonde breakdown`: runs a page's flow `-n` times with one virtual user, keeps every request
//! of every iteration, and answers "which request, which phase, which part of the server", with
//! a second environment interleaved for a side-by-side comparison. Measuring reuses `exec`
//! (tracing enabled); this module only computes and shapes the numbers.

mod measure;
pub mod render;
pub use crate::gate::stats;
pub mod waterfall;

use crate::exec::Traced;
use crate::plan::{Plan, StepNode};
use crate::units::human_ms;
pub use measure::{MeasureError, Measured, Options, measure};
use serde::Serialize;
use stats::{mann_whitney, median, quantile};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

/// Phases in display order (the transport's names).
pub const PHASES: [&str; 7] = crate::aggregate::PHASES;

/// Connection handling of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// A fresh connection for every request: DNS, TCP and TLS show.
    New,
    /// Connections kept warm (one unrecorded warm-up iteration first).
    Reuse,
}

impl Connection {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::New => "new",
            Connection::Reuse => "reuse",
        }
    }
}

/// One request of one iteration, in microseconds relative to the iteration's start.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub step: usize,
    pub offset_us: f64,
    /// dns, connect, tls, send, wait, receive, total.
    pub phases_us: [f64; 7],
    pub reused: bool,
    pub tls_resumed: bool,
    pub status: Option<u16>,
    /// Server-Timing name → milliseconds.
    pub server_timing: Vec<(String, f64)>,
    pub error: Option<String>,
    /// The W3C trace id the request carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Iteration {
    pub total_us: f64,
    pub requests: Vec<Request>,
}

impl Iteration {
    /// The iteration a one-user run traced (`exec::OneUser::iterate`).
    #[must_use]
    pub fn from_run(run: &crate::exec::OneRun) -> Iteration {
        Iteration::from_trace(run.started, run.ended, &run.trace)
    }

    #[must_use]
    pub fn from_trace(start: Instant, end: Instant, trace: &[Traced]) -> Iteration {
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        let requests = trace
            .iter()
            .map(|t| {
                let ti = &t.timing;
                Request {
                    step: t.step,
                    offset_us: us(t.start.saturating_duration_since(start)),
                    phases_us: [
                        us(ti.dns),
                        us(ti.connect),
                        us(ti.tls),
                        us(ti.send),
                        us(ti.wait),
                        us(ti.receive),
                        us(ti.total),
                    ],
                    reused: ti.reused,
                    tls_resumed: ti.tls_resumed,
                    status: t.status,
                    server_timing: t.server_timing.clone(),
                    error: t.error.clone(),
                    trace_id: t.trace_id.clone(),
                }
            })
            .collect();
        Iteration {
            total_us: us(end.saturating_duration_since(start)),
            requests,
        }
    }

    /// Per-step sums of a phase (µs) in this iteration; steps with no request are absent.
    fn step_phase(&self, step: usize, phase: usize) -> Option<f64> {
        let mut any = false;
        let mut sum = 0.0;
        for r in self.requests.iter().filter(|r| r.step == step) {
            any = true;
            sum += r.phases_us[phase];
        }
        any.then_some(sum)
    }

    fn step_server(&self, step: usize, name: &str) -> Option<f64> {
        let mut any = false;
        let mut sum = 0.0;
        for r in self.requests.iter().filter(|r| r.step == step) {
            for (n, v) in &r.server_timing {
                if n == name {
                    any = true;
                    sum += v;
                }
            }
        }
        any.then_some(sum)
    }
}

/// The server's own total for one request: a `total` metric if it sends one, else the sum of
/// its metrics, taken as the non-overlapping parts of its time (as the demo's `db` and `app`).
#[must_use]
pub fn server_total(st: &[(String, f64)]) -> Option<f64> {
    if st.is_empty() {
        return None;
    }
    if let Some((_, v)) = st.iter().find(|(n, _)| n == "total") {
        return Some(*v);
    }
    Some(st.iter().map(|(_, v)| v).sum())
}

/// Percentiles of one phase of one step, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseStats {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// Mean of this phase over the mean of the step's total (0..1).
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerStats {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepBreakdown {
    pub name: String,
    pub requests: usize,
    pub reused: usize,
    pub tls_resumed: usize,
    pub errors: usize,
    /// Requests that got no response at all (refused, DNS, timeout...): their phases are of a
    /// failure, not of an exchange. With every request so, the table says so instead.
    pub no_response: usize,
    /// The first such failure, for the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub phases: BTreeMap<&'static str, PhaseStats>,
    pub server_timing: BTreeMap<String, ServerStats>,
    /// `wait` minus the server's own total: time spent before the server started or after it
    /// finished (network, proxies, queueing). Absent without `Server-Timing`.
    pub network_queueing: Option<ServerStats>,
}

/// The slowest iteration of a pass, by the trace ids it sent.
#[derive(Debug, Clone, Serialize)]
pub struct SlowestIteration {
    pub total_ms: f64,
    pub trace_ids: Vec<String>,
}

/// All iterations of one environment under one connection mode.
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    pub env: String,
    pub connection: Connection,
    pub steps: Vec<StepBreakdown>,
    /// The iteration whose total is the median, for the waterfall.
    pub median_iteration: Option<Iteration>,
    /// The slowest iteration: its total and the trace ids its requests carried, to look it
    /// up in the tracing system and the server's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest_iteration: Option<SlowestIteration>,
    #[serde(skip)]
    pub iterations: Vec<Iteration>,
}

fn ms(us: f64) -> f64 {
    (us / 10.0).round() / 100.0
}

impl Pass {
    #[must_use]
    pub fn compute(
        env: &str,
        connection: Connection,
        names: &[String],
        iterations: Vec<Iteration>,
    ) -> Pass {
        let steps = names
            .iter()
            .enumerate()
            .map(|(i, name)| step_breakdown(&iterations, i, name))
            .collect();
        let median_iteration = median_iteration(&iterations);
        let slowest_iteration = slowest_iteration(&iterations);
        Pass {
            env: env.to_string(),
            connection,
            steps,
            median_iteration,
            slowest_iteration,
            iterations,
        }
    }
}

/// Step `i` (called `name`) over all the iterations.
fn step_breakdown(iterations: &[Iteration], i: usize, name: &str) -> StepBreakdown {
    let phases = phase_stats(iterations, i);
    let reqs: Vec<&Request> = iterations
        .iter()
        .flat_map(|it| it.requests.iter())
        .filter(|r| r.step == i)
        .collect();
    let server_timing = server_timing_stats(iterations, &reqs, i);
    let nq: Vec<f64> = reqs
        .iter()
        .filter_map(|r| server_total(&r.server_timing).map(|s| r.phases_us[4] / 1000.0 - s))
        .collect();
    StepBreakdown {
        name: name.to_string(),
        requests: reqs.len(),
        reused: reqs.iter().filter(|r| r.reused).count(),
        tls_resumed: reqs.iter().filter(|r| r.tls_resumed).count(),
        errors: reqs
            .iter()
            .filter(|r| r.error.is_some() || r.status.is_some_and(|s| s >= 400))
            .count(),
        no_response: reqs.iter().filter(|r| r.status.is_none()).count(),
        first_error: reqs.iter().find_map(|r| r.error.clone()),
        phases,
        server_timing,
        network_queueing: (!nq.is_empty()).then(|| ServerStats {
            p50: round2(quantile(&nq, 0.5)),
            p99: round2(quantile(&nq, 0.99)),
        }),
    }
}

/// Step `i`'s phases: quantiles, and each one's share of the mean total.
fn phase_stats(iterations: &[Iteration], i: usize) -> BTreeMap<&'static str, PhaseStats> {
    let per_phase: Vec<Vec<f64>> = (0..7)
        .map(|p| {
            iterations
                .iter()
                .filter_map(|it| it.step_phase(i, p))
                .collect()
        })
        .collect();
    let mean_total = mean(&per_phase[6]);
    PHASES
        .iter()
        .zip(per_phase.iter())
        .map(|(n, v)| {
            (
                *n,
                PhaseStats {
                    p50: ms(quantile(v, 0.5)),
                    p90: ms(quantile(v, 0.9)),
                    p99: ms(quantile(v, 0.99)),
                    share: if mean_total > 0.0 {
                        (mean(v) / mean_total * 1000.0).round() / 1000.0
                    } else {
                        0.0
                    },
                },
            )
        })
        .collect()
}

/// The slowest iteration, with the distinct trace ids its requests carried in order.
fn slowest_iteration(iterations: &[Iteration]) -> Option<SlowestIteration> {
    iterations
        .iter()
        .max_by(|a, b| a.total_us.total_cmp(&b.total_us))
        .map(|it| {
            let mut trace_ids: Vec<String> = Vec::new();
            for id in it.requests.iter().filter_map(|r| r.trace_id.clone()) {
                if !trace_ids.contains(&id) {
                    trace_ids.push(id);
                }
            }
            SlowestIteration {
                total_ms: ms(it.total_us),
                trace_ids,
            }
        })
}

/// Per Server-Timing name of step `i`: p50 and p99 (ms) over the iterations that sent it.
fn server_timing_stats(
    iterations: &[Iteration],
    reqs: &[&Request],
    i: usize,
) -> BTreeMap<String, ServerStats> {
    let mut st_names: Vec<String> = reqs
        .iter()
        .flat_map(|r| r.server_timing.iter().map(|(n, _)| n.clone()))
        .collect();
    st_names.sort();
    st_names.dedup();
    st_names
        .into_iter()
        .map(|n| {
            let v: Vec<f64> = iterations
                .iter()
                .filter_map(|it| it.step_server(i, &n))
                .collect();
            let stats = ServerStats {
                p50: round2(quantile(&v, 0.5)),
                p99: round2(quantile(&v, 0.99)),
            };
            (n, stats)
        })
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn median_iteration(its: &[Iteration]) -> Option<Iteration> {
    let mut idx: Vec<usize> = (0..its.len()).collect();
    idx.sort_by(|a, b| its[*a].total_us.total_cmp(&its[*b].total_us));
    idx.get(idx.len().saturating_sub(1) / 2)
        .map(|i| its[*i].clone())
}

/// One compared quantity: medians of both sides, the difference, the test's p-value.
#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    pub a_p50: f64,
    pub b_p50: f64,
    pub diff_ms: f64,
    pub p: Option<f64>,
}

fn delta(a: &[f64], b: &[f64], scale: f64) -> Delta {
    let (ma, mb) = (median(a) * scale, median(b) * scale);
    Delta {
        a_p50: round2(ma),
        b_p50: round2(mb),
        diff_ms: round2(ma - mb),
        p: mann_whitney(a, b).map(|r| r.p),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepComparison {
    pub name: String,
    pub total: Delta,
    pub phases: BTreeMap<&'static str, Delta>,
    pub server_timing: BTreeMap<String, Delta>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvComparison {
    pub a: String,
    pub b: String,
    pub connection: Connection,
    pub method: &'static str,
    /// Differences smaller than this are not called out, however consistent.
    pub min_diff_ms: f64,
    pub steps: Vec<StepComparison>,
    pub verdict: String,
    /// The step, phase and server-timing part that explain most of the difference.
    pub culprit: Option<Culprit>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Culprit {
    pub step: String,
    pub phase: String,
    pub server_timing: Option<String>,
    pub diff_ms: f64,
    pub p: f64,
}

pub const METHOD: &str = "Mann-Whitney U test (two-sided, normal approximation with tie correction) on per-iteration samples";

/// Significance level for the verdict.
pub const ALPHA: f64 = 0.05;

/// Compares two passes step by step. A step explains the difference only when its median
/// moved by at least `min_diff_ms` and the test says it is significant (p < `ALPHA`).
// Long on purpose: per step, the same test over the total, each phase and each Server-Timing
// part, tracking the best explanation as it goes; the loop body is the method.
#[must_use]
pub fn compare(a: &Pass, b: &Pass, names: &[String], min_diff_ms: f64) -> EnvComparison {
    let mut steps = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    for (i, name) in names.iter().enumerate() {
        let sample = |p: &Pass, ph: usize| -> Vec<f64> {
            p.iterations
                .iter()
                .filter_map(|it| it.step_phase(i, ph))
                .collect()
        };
        let total = delta(&sample(a, 6), &sample(b, 6), 1e-3);
        let phases = PHASES
            .iter()
            .enumerate()
            .map(|(ph, n)| (*n, delta(&sample(a, ph), &sample(b, ph), 1e-3)))
            .collect();
        let mut st_names: Vec<String> = a
            .steps
            .get(i)
            .map(|s| s.server_timing.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(s) = b.steps.get(i) {
            st_names.extend(s.server_timing.keys().cloned());
        }
        st_names.sort();
        st_names.dedup();
        let server_timing = st_names
            .into_iter()
            .map(|n| {
                let sa: Vec<f64> = a
                    .iterations
                    .iter()
                    .filter_map(|it| it.step_server(i, &n))
                    .collect();
                let sb: Vec<f64> = b
                    .iterations
                    .iter()
                    .filter_map(|it| it.step_server(i, &n))
                    .collect();
                (n, delta(&sa, &sb, 1.0))
            })
            .collect();
        if total.p.is_some_and(|p| p < ALPHA)
            && total.diff_ms.abs() >= min_diff_ms
            && best.is_none_or(|(d, _)| total.diff_ms.abs() > d)
        {
            best = Some((total.diff_ms.abs(), i));
        }
        steps.push(StepComparison {
            name: name.clone(),
            total,
            phases,
            server_timing,
        });
    }
    let culprit = best.map(|(_, i)| {
        let s = &steps[i];
        let sign = s.total.diff_ms.signum();
        // The phase that moved most in the direction of the step's difference.
        let (phase, _) = s
            .phases
            .iter()
            .filter(|(n, _)| **n != "total")
            .max_by(|x, y| (x.1.diff_ms * sign).total_cmp(&(y.1.diff_ms * sign)))
            .map_or_else(
                || ("total".to_string(), s.total.diff_ms),
                |(n, d)| (n.to_string(), d.diff_ms),
            );
        let st = s
            .server_timing
            .iter()
            .filter(|(n, _)| n.as_str() != "total")
            .max_by(|x, y| (x.1.diff_ms * sign).total_cmp(&(y.1.diff_ms * sign)))
            .filter(|(_, d)| d.diff_ms * sign > 0.0)
            .map(|(n, _)| n.clone());
        Culprit {
            step: s.name.clone(),
            phase,
            server_timing: st,
            diff_ms: s.total.diff_ms,
            p: s.total.p.unwrap_or(1.0),
        }
    });
    let verdict = verdict(&a.env, &b.env, &steps, culprit.as_ref(), min_diff_ms);
    EnvComparison {
        a: a.env.clone(),
        b: b.env.clone(),
        connection: a.connection,
        method: METHOD,
        min_diff_ms,
        steps,
        verdict,
        culprit,
    }
}

/// One answer for several connection modes (`--connection both`): the largest significant
/// difference, with the modes that show it, or "no significant difference" in any mode.
/// `None` for a single comparison (its own verdict is the answer).
#[must_use]
pub fn combined_verdict(cs: &[EnvComparison]) -> Option<String> {
    if cs.len() < 2 {
        return None;
    }
    let (a, b) = (&cs[0].a, &cs[0].b);
    let with: Vec<&EnvComparison> = cs.iter().filter(|c| c.culprit.is_some()).collect();
    let best = with.iter().max_by(|x, y| {
        let d = |c: &EnvComparison| c.culprit.as_ref().map_or(0.0, |k| k.diff_ms.abs());
        d(x).total_cmp(&d(y))
    });
    let Some(best) = best else {
        return Some(format!(
            "no significant difference between {a} and {b} with new or reused connections"
        ));
    };
    let modes: Vec<&str> = with.iter().map(|c| c.connection.as_str()).collect();
    let quiet: Vec<&str> = cs
        .iter()
        .filter(|c| c.culprit.is_none())
        .map(|c| c.connection.as_str())
        .collect();
    let mut v = format!(
        "{} (connections: {}",
        best.verdict,
        if quiet.is_empty() {
            "new and reused alike".to_string()
        } else {
            modes.join(", ")
        }
    );
    if !quiet.is_empty() {
        let _ = write!(v, "; not significant with {} connections", quiet.join(", "));
    }
    v.push(')');
    Some(v)
}

/// `profile is 2.41 s slower for whale: wait +2.40 s, of which db +2.38 s (p < 0.001)`.
fn verdict(
    a: &str,
    b: &str,
    steps: &[StepComparison],
    c: Option<&Culprit>,
    min_diff_ms: f64,
) -> String {
    let Some(c) = c else {
        let largest = steps
            .iter()
            .max_by(|x, y| x.total.diff_ms.abs().total_cmp(&y.total.diff_ms.abs()));
        return match largest {
            Some(s) => format!(
                "no significant difference between {a} and {b} (largest: {} {}, {}; a difference must be significant and at least {})",
                s.name,
                signed(s.total.diff_ms),
                fmt_p(s.total.p.unwrap_or(1.0)),
                human_ms(min_diff_ms)
            ),
            None => format!("no significant difference between {a} and {b}"),
        };
    };
    let Some(s) = steps.iter().find(|s| s.name == c.step) else {
        return String::new();
    };
    let dir = if c.diff_ms >= 0.0 { "slower" } else { "faster" };
    let mut out = format!(
        "{} is {} {dir} for {a} than for {b}",
        c.step,
        human_ms(c.diff_ms.abs())
    );
    if let Some(d) = s.phases.get(c.phase.as_str()) {
        let _ = write!(out, ": {} {}", c.phase, signed(d.diff_ms));
        if let Some(st) = &c.server_timing
            && let Some(sd) = s.server_timing.get(st)
        {
            let _ = write!(out, ", of which {st} {}", signed(sd.diff_ms));
        }
    }
    let _ = write!(out, " ({})", fmt_p(c.p));
    out
}

#[must_use]
pub fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {p:.3}")
    }
}

fn signed(v: f64) -> String {
    let s = human_ms(v.abs());
    if v < 0.0 {
        format!("-{s}")
    } else {
        format!("+{s}")
    }
}

/// Indices of request steps grouped as the plan runs them: one group per sequential step, one
/// group for each `parallel:` block.
#[must_use]
pub fn groups(plan: &Plan) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    for n in &plan.steps {
        match n {
            StepNode::Request(_) => {
                out.push(vec![i]);
                i += 1;
            }
            StepNode::Parallel(v) => {
                out.push((i..i + v.len()).collect());
                i += v.len();
            }
            StepNode::Think { .. } => {}
        }
    }
    out
}

/// The breakdown document (`--format json`).
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub schema: &'static str,
    pub scenario: String,
    pub target: String,
    pub iterations: usize,
    pub insecure: bool,
    pub passes: Vec<Pass>,
    pub comparisons: Vec<EnvComparison>,
    /// The one answer when several connection modes were compared (`combined_verdict`); with
    /// one comparison its own `verdict` is the answer and this is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Notes such as malformed Server-Timing entries skipped.
    pub notes: Vec<String>,
}

//! Threshold evaluation: parsed `Threshold`s against a run's `Summary` → one `ThresholdResult`
//! each (measured value, pass / fail / no data), and the `abort_on_fail` decision on a partial
//! summary. Reads only the `Summary`; parsing thresholds and checking names before a run belong
//! to the scenario loader, output formatting to `report`.

use super::threshold::{Cmp, MetricRef, Stat, Threshold};
use crate::aggregate::Summary;
use crate::aggregate::summary::{IterationSummary, Stats, StepSummary};
pub use crate::aggregate::threshold::{Outcome, ThresholdResult, Unit, all_passed};
use std::time::Duration;

/// Evaluates every threshold against the summary, in order.
#[must_use]
pub fn evaluate(thresholds: &[Threshold], summary: &Summary) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| evaluate_one(t, summary))
        .collect()
}

/// `abort_on_fail`: given the summary so far and the time elapsed, the first threshold marked
/// `abort_on_fail` whose `delay` has passed and which currently fails (k6's semantics). A
/// metric with no data yet never aborts: the step may simply not have run.
#[must_use]
pub fn abort_check(
    thresholds: &[Threshold],
    partial: &Summary,
    elapsed: Duration,
) -> Option<ThresholdResult> {
    thresholds
        .iter()
        .filter(|t| t.abort_on_fail && elapsed >= t.delay.unwrap_or(Duration::ZERO))
        .map(|t| evaluate_one(t, partial))
        .find(|r| r.outcome == Outcome::Fail)
}

/// The normalised key of a metric reference.
#[must_use]
pub fn metric_key(m: &MetricRef) -> String {
    let mut k = m.step.clone();
    if let Some(p) = &m.phase {
        k.push('.');
        k.push_str(p);
    }
    if let Some(st) = &m.server_timing {
        k.push_str(".server_timing.");
        k.push_str(st);
    }
    if !m.tags.is_empty() {
        let tags: Vec<String> = m.tags.iter().map(|(a, b)| format!("{a}:{b}")).collect();
        k.push('{');
        k.push_str(&tags.join(","));
        k.push('}');
    }
    k
}

#[must_use]
pub fn stat_name(s: Stat) -> String {
    match s {
        Stat::Percentile(p) => format!("p({p})"),
        Stat::Avg => "avg".into(),
        Stat::Min => "min".into(),
        Stat::Max => "max".into(),
        Stat::Med => "med".into(),
        Stat::Count => "count".into(),
        Stat::Rate => "rate".into(),
        Stat::ErrorRate => "error_rate".into(),
        Stat::Dropped => "dropped".into(),
    }
}

#[must_use]
pub fn op_str(c: Cmp) -> &'static str {
    match c {
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
        Cmp::Eq => "==",
        Cmp::Ne => "!=",
    }
}

fn unit_of(s: Stat) -> Unit {
    match s {
        Stat::Percentile(_) | Stat::Avg | Stat::Min | Stat::Max | Stat::Med => Unit::Ms,
        Stat::Count | Stat::Dropped => Unit::Count,
        Stat::Rate => Unit::PerSecond,
        Stat::ErrorRate => Unit::Fraction,
    }
}

fn holds(op: Cmp, measured: f64, limit: f64) -> bool {
    // Limits come from text such as `1%` (0.01) or `300ms`; compare with a tiny relative slack
    // so a measured 0.01 is not "greater than" a limit stored as 0.010000000000000002.
    let eps = 1e-9 * limit.abs().max(1.0);
    match op {
        Cmp::Lt => measured < limit - eps,
        Cmp::Le => measured <= limit + eps,
        Cmp::Gt => measured > limit + eps,
        Cmp::Ge => measured >= limit - eps,
        Cmp::Eq => (measured - limit).abs() <= eps,
        Cmp::Ne => (measured - limit).abs() > eps,
    }
}

/// What a metric reference resolved to.
enum Source<'a> {
    /// A step (or `http`): latency, requests, errors.
    Step(&'a StepSummary),
    /// A phase or server-timing part of a step.
    Part(&'a Stats),
    /// `iterations` (when no step has that name): whole-iteration time, count, failures.
    Iterations(&'a IterationSummary),
}

fn resolve<'a>(m: &MetricRef, s: &'a Summary) -> Result<Source<'a>, String> {
    for (k, v) in &m.tags {
        if k != "env" {
            return Err(format!(
                "tag `{k}` is not recorded in a run result (only `env` is)"
            ));
        }
        match &s.env {
            Some(e) if e == v => {}
            Some(e) => {
                return Err(format!(
                    "no data: this run used environment `{e}`, not `{v}`"
                ));
            }
            None => {
                return Err(format!(
                    "no data: this run used no named environment, not `{v}`"
                ));
            }
        }
    }
    let step = match s.step(&m.step) {
        Some(st) => st,
        None if m.step == "iterations" || m.step == "iteration" => {
            if m.phase.is_some() || m.server_timing.is_some() {
                return Err("`iterations` has no phases or server timing".into());
            }
            return Ok(Source::Iterations(&s.iterations));
        }
        None => {
            let names: Vec<&str> = s.steps.iter().map(|x| x.name.as_str()).collect();
            return Err(format!(
                "no data: no step named `{}` in this run (steps: {})",
                m.step,
                names.join(", ")
            ));
        }
    };
    if m.phase.as_deref() == Some(super::threshold::SETTLE) {
        return if step.settle.is_empty() {
            Err(format!(
                "no data: no poll of `{}` settled (`settle` is a poll step's settle time)",
                step.name
            ))
        } else {
            Ok(Source::Part(&step.settle))
        };
    }
    if let Some(p) = &m.phase {
        return step
            .phases
            .get(p)
            .map(Source::Part)
            .ok_or_else(|| format!("no data: no `{p}` phase was measured for `{}`", step.name));
    }
    if let Some(t) = &m.server_timing {
        return step.server_timing.get(t).map(Source::Part).ok_or_else(|| {
            let have: Vec<&str> = step.server_timing.keys().map(String::as_str).collect();
            format!(
                "no data: no Server-Timing `{t}` was received for `{}` (received: {})",
                step.name,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )
        });
    }
    Ok(Source::Step(step))
}

/// A latency statistic of one histogram digest, in ms.
fn latency_stat(st: &Stats, stat: Stat) -> Result<f64, String> {
    if st.count == 0 {
        return Err("no data: nothing was measured".into());
    }
    let q = match stat {
        Stat::Avg => return Ok(st.mean_ms),
        Stat::Min => return Ok(st.min_ms),
        Stat::Max => return Ok(st.max_ms),
        Stat::Med => 50.0,
        Stat::Percentile(p) => p,
        _ => return Err("not a latency statistic".into()),
    };
    let h = st.histogram();
    if !h.is_empty() {
        return Ok(h.quantile_ms(q / 100.0));
    }
    // A result written without histograms still carries the usual percentiles.
    let digest = [
        (50.0, st.p50_ms),
        (90.0, st.p90_ms),
        (95.0, st.p95_ms),
        (99.0, st.p99_ms),
        (99.9, st.p999_ms),
        (100.0, st.max_ms),
    ];
    digest
        .iter()
        .find(|(p, _)| (*p - q).abs() < 1e-9)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("no data: the result holds no histogram to compute p({q})"))
}

fn measure(src: &Source<'_>, stat: Stat, s: &Summary) -> Result<f64, String> {
    match (src, stat) {
        (_, Stat::Dropped) => match src {
            Source::Part(_) => {
                Err("`dropped` counts iterations; use it on a step or `http`".into())
            }
            _ => Ok(s.iterations.dropped as f64),
        },
        (Source::Step(st), Stat::Count) => Ok(st.requests as f64),
        (Source::Step(st), Stat::Rate) => Ok(st.rps),
        (Source::Step(st), Stat::ErrorRate) => {
            if st.requests == 0 {
                Err(format!("no data: `{}` sent no requests", st.name))
            } else {
                Ok(st.error_rate())
            }
        }
        (Source::Step(st), _) => latency_stat(&st.latency, stat),
        (Source::Part(p), Stat::Count) => Ok(p.count as f64),
        (Source::Part(p), Stat::Rate) => Ok(if s.duration_s > 0.0 {
            p.count as f64 / s.duration_s
        } else {
            0.0
        }),
        (Source::Part(_), Stat::ErrorRate) => Err(
            "`error_rate` applies to a step or `http`, not to a phase or server-timing part".into(),
        ),
        (Source::Part(p), _) => latency_stat(p, stat),
        (Source::Iterations(it), Stat::Count) => Ok(it.count as f64),
        (Source::Iterations(it), Stat::Rate) => Ok(it.rate),
        (Source::Iterations(it), Stat::ErrorRate) => {
            if it.count == 0 {
                Err("no data: no iteration completed".into())
            } else {
                Ok(it.failed as f64 / it.count as f64)
            }
        }
        (Source::Iterations(it), _) => latency_stat(&it.duration, stat),
    }
}

fn evaluate_one(t: &Threshold, s: &Summary) -> ThresholdResult {
    let unit = unit_of(t.stat);
    let stat = stat_name(t.stat);
    let op = op_str(t.op);
    let measured = resolve(&t.metric, s).and_then(|src| measure(&src, t.stat, s));
    let (measured, outcome, message) = match measured {
        Ok(v) => {
            let ok = holds(t.op, v, t.value);
            (
                Some(v),
                if ok { Outcome::Pass } else { Outcome::Fail },
                format!(
                    "{stat} {}, limit {op} {}",
                    unit.format(v),
                    unit.format(t.value)
                ),
            )
        }
        Err(why) => (None, Outcome::NoData, why),
    };
    ThresholdResult {
        threshold: t.source.clone(),
        metric: metric_key(&t.metric),
        stat,
        op: op.to_string(),
        limit: t.value,
        unit,
        measured,
        outcome,
        message,
        abort_on_fail: t.abort_on_fail,
    }
}

//! What a finished load run says beyond its numbers: the plan's description for the summary
//! (`RunInfo`), the notes a reader needs (Retry-After waits, requests cut at the end, a run
//! that outlasted its plan), and whether anything answered at all. Formats no table.

use crate::aggregate::Summary;
use crate::aggregate::summary::{LoadInfo, RunInfo};
use crate::plan::{LoadModel, Plan};
use std::time::Duration;

/// The load part of a run's summary, from its plan.
#[must_use]
pub fn load_info(plan: &Plan) -> LoadInfo {
    let st = |s: &[crate::plan::Stage]| {
        s.iter()
            .map(|s| (s.duration.as_secs_f64(), s.target))
            .collect::<Vec<_>>()
    };
    let streams =
        (plan.http.streams_per_connection > 1).then_some(plan.http.streams_per_connection);
    let info = match &plan.load {
        LoadModel::Closed {
            vus,
            duration,
            iterations,
            stages,
        } => LoadInfo {
            model: crate::aggregate::summary::LoadModel::Closed,
            vus: Some(*vus),
            duration_s: duration.map(|d| d.as_secs_f64()),
            iterations: *iterations,
            stages: st(stages),
            ..LoadInfo::default()
        },
        LoadModel::Open {
            rate,
            max_vus,
            duration,
            stages,
        } => LoadInfo {
            model: crate::aggregate::summary::LoadModel::Open,
            rate_per_s: Some(*rate),
            max_vus: Some(*max_vus),
            duration_s: Some(duration.as_secs_f64()),
            stages: st(stages),
            ..LoadInfo::default()
        },
    };
    LoadInfo {
        streams_per_connection: streams,
        ..info
    }
}

/// What the plan says about the run, for its summary.
#[must_use]
pub fn run_info(plan: &Plan) -> RunInfo {
    RunInfo {
        scenario: plan.name.clone(),
        scenario_path: plan.source.as_ref().map(|p| p.display().to_string()),
        env: plan.env_name.clone(),
        load: load_info(plan),
        insecure: plan.http.insecure,
        latency_measured_from: match plan.load {
            LoadModel::Open { .. } => crate::aggregate::summary::LatencyOrigin::IntendedStart,
            LoadModel::Closed { .. } => crate::aggregate::summary::LatencyOrigin::RequestStart,
        },
        ..RunInfo::default()
    }
}

/// The notes a finished load states: Retry-After waits, requests cut at the end of the grace
/// period, a run that outlasted its plan.
#[must_use]
pub fn load_notes(
    summary: &Summary,
    plan: &Plan,
    elapsed: Duration,
    grace: Duration,
) -> Vec<String> {
    let mut notes = Vec::new();
    if summary.rate_limit_wait_s > 0.0 {
        notes.push(format!(
            "virtual users waited {:.1}s in total after 429 responses, as their Retry-After asked \
             (each wait capped at 60s; `http.honor_retry_after: false` or --ignore-retry-after \
             turns this off)",
            summary.rate_limit_wait_s
        ));
    }
    if summary.cut_requests > 0 {
        notes.push(format!(
            "{} request(s) were still in flight when the grace period ({}) ended: cancelled and \
             counted as failed (class `cancelled`)",
            summary.cut_requests,
            crate::units::fmt_duration(grace)
        ));
    }
    if plan.http.connection == crate::http::ConnectionMode::New {
        let resumed: u64 = summary.steps.iter().map(|s| s.tls_resumed).sum();
        let tls = if !plan.http.tls_resumption {
            "; TLS session resumption off: every TLS handshake was a full one".to_string()
        } else if resumed > 0 {
            format!(
                "; {resumed} TLS handshake(s) resumed a session, the others were full \
                 (--no-tls-resumption makes every one full)"
            )
        } else {
            String::new()
        };
        notes.push(format!(
            "every request opened its own connection (--connection new){tls}"
        ));
    }
    if let Some(planned) = planned_length(plan)
        && elapsed > planned + Duration::from_secs(1)
    {
        notes.push(format!(
            "ran {:.1}s for a {} load: the rest was waiting for in-flight requests (grace period \
             {}, `graceful_stop`)",
            elapsed.as_secs_f64(),
            crate::units::fmt_duration(planned),
            crate::units::fmt_duration(grace)
        ));
    }
    notes
}

/// A run in which no request got any response is a runtime failure, never "no errors":
/// unreachable (DNS, connect, TLS, refused by the allow-list), or every request hung (timed
/// out or cut at the end), or nothing was sent at all.
#[must_use]
pub fn no_response(s: &Summary, shard: bool) -> Option<String> {
    let classes = || {
        s.http
            .error_classes
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if s.http.requests == 0 {
        // A shard may legitimately get no virtual user of a small plan.
        return (!shard && s.iterations.dropped == 0).then(|| {
            format!(
                "no request was sent to {} in {:.1}s (0 iterations)",
                s.target.url, s.duration_s
            )
        });
    }
    if !s.http.statuses.is_empty() {
        return None;
    }
    let unreachable = s.http.error_classes.keys().all(|c| is_unreachable_class(c));
    Some(if unreachable {
        format!(
            "the target {} could not be reached: every request failed before a response ({})",
            s.target.url,
            classes()
        )
    } else {
        format!(
            "no request to {} got a response: {}",
            s.target.url,
            classes()
        )
    })
}

/// When the early stop for an unreachable target looks.
pub const EARLY_STOP_AFTER: Duration = Duration::from_secs(2);

/// Error classes that mean no server answered at all.
#[must_use]
pub fn is_unreachable_class(c: &str) -> bool {
    matches!(
        c,
        "dns" | "connect_refused" | "connect_timeout" | "connect" | "tls" | "not_allowed"
    )
}

/// How long the load itself was planned to last (`None` for iteration-driven runs).
#[must_use]
pub fn planned_length(plan: &Plan) -> Option<Duration> {
    match &plan.load {
        LoadModel::Closed {
            duration: Some(d), ..
        } => Some(*d),
        LoadModel::Closed { stages, .. } | LoadModel::Open { stages, .. } if !stages.is_empty() => {
            Some(stages.iter().map(|s| s.duration).sum())
        }
        LoadModel::Open { duration, .. } => Some(*duration),
        LoadModel::Closed { .. } => None,
    }
}

/// Early stop: when every request of the first seconds (`t` so far) failed before any
/// response (closed port, unresolvable name, refused by the allow-list), the rest of the run
/// would only repeat that. The note saying so, or `None` to go on.
#[must_use]
pub fn unreachable_so_far(t: f64, so_far: &crate::aggregate::Recorder) -> Option<String> {
    let all = so_far.all_requests();
    let unreachable = all.requests > 0
        && all.statuses.is_empty()
        && all.error_classes.keys().all(|c| is_unreachable_class(c));
    unreachable.then(|| {
        format!(
            "stopped after {t:.1}s: every request so far failed before any response ({}); \
             the rest of the run would only repeat that",
            all.error_classes
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// `abort_on_fail`: the note for the first such threshold that already failed on what was
/// measured so far (`elapsed` into the run), or `None` to go on.
#[must_use]
pub fn threshold_abort(
    plan: &Plan,
    names: &[String],
    so_far: &crate::aggregate::Recorder,
    elapsed: Duration,
) -> Option<String> {
    let partial = Summary::measured(names, so_far, elapsed.as_secs_f64());
    let r = crate::gate::eval::abort_check(&plan.thresholds, &partial, elapsed)?;
    Some(format!(
        "aborted after {:.1}s: threshold `{}` failed ({})",
        elapsed.as_secs_f64(),
        r.threshold,
        r.message
    ))
}

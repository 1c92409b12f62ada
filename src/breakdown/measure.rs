//! Measuring a breakdown: per connection mode, one traced virtual user per environment
//! (`exec::OneUser`), run `n` rounds interleaved (A, B, A, B, … so drift hits both), then the
//! passes, their comparison and one run summary per environment. Prints nothing; progress goes
//! to the caller's callback.

use super::{Breakdown, Connection, Iteration, Pass};
use crate::aggregate::summary::{LoadInfo, Measured as MeasuredRun, RunInfo, TargetInfo};
use crate::aggregate::{Recorder, Summary};
use crate::exec::{OneUser, RunContext, run_setup};
use crate::http::{Client, ConnectionMode};
use crate::plan::Plan;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Why a breakdown could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The client cannot be built from the plan's transport options (`--cacert`).
    #[error(transparent)]
    Client(#[from] crate::http::HttpError),
    /// A setup step failed.
    #[error(transparent)]
    Setup(#[from] crate::exec::ExecError),
}

/// What to measure.
#[derive(Clone)]
pub struct Options {
    /// Iterations per environment and connection mode.
    pub n: usize,
    /// Connection modes, in order.
    pub modes: Vec<Connection>,
    /// The smallest median difference worth calling out.
    pub min_diff_ms: f64,
    /// `-v`: exchanges to print.
    pub verbose: Option<Arc<crate::exec::verbose::Verbose>>,
}

/// The breakdown document and one run summary per environment (for `--out`).
pub struct Measured {
    pub doc: Breakdown,
    pub summaries: Vec<Summary>,
}

/// One environment's traced user in one connection mode.
struct Lane {
    env: String,
    user: OneUser,
    its: Vec<Iteration>,
}

/// Measures `plan` under each of `envs` against `base` (`target_url` is what reports show).
/// `on_round(mode, round)` is called before each round.
pub async fn measure(
    plan: &Plan,
    envs: &[String],
    (base, target_url): (&str, &str),
    opts: &Options,
    mut on_round: impl FnMut(Connection, usize),
) -> Result<Measured, MeasureError> {
    let names: Vec<String> = plan.request_steps().map(|s| s.name.clone()).collect();
    let mut passes: Vec<Pass> = Vec::new();
    let mut comparisons = Vec::new();
    let mut recorders: Vec<Recorder> = envs.iter().map(|_| Recorder::new(names.len())).collect();
    let started = Instant::now();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for &mode in &opts.modes {
        let mut lanes = lanes(plan, envs, base, mode, opts).await?;
        for round in 0..opts.n {
            on_round(mode, round);
            for lane in &mut lanes {
                let run = lane.user.iterate().await;
                for t in run.trace.iter().filter(|t| t.server_timing_skipped > 0) {
                    let step = names.get(t.step).map_or("?", String::as_str);
                    *skipped.entry(step.to_string()).or_default() += t.server_timing_skipped;
                }
                lane.its.push(Iteration::from_run(&run));
            }
        }
        let mut mode_passes = Vec::new();
        for (rec, mut lane) in recorders.iter_mut().zip(lanes) {
            rec.merge(&lane.user.take_recorder());
            mode_passes.push(Pass::compute(&lane.env, mode, &names, lane.its));
        }
        if let [a, b] = mode_passes.as_slice() {
            comparisons.push(super::compare(a, b, &names, opts.min_diff_ms));
        }
        passes.extend(mode_passes);
    }
    let secs = started.elapsed().as_secs_f64();
    let summaries = envs
        .iter()
        .zip(&recorders)
        .map(|(env, rec)| summary(plan, env, rec, &names, &passes, (secs, target_url), opts.n))
        .collect();
    // Comparisons lead with warm connections: they isolate the server from connection set-up.
    comparisons.sort_by_key(|c| c.connection != Connection::Reuse);
    let doc = Breakdown {
        schema: "sonde.breakdown/v1",
        scenario: plan.name.clone(),
        target: crate::redact::redact_url(target_url),
        iterations: opts.n,
        insecure: plan.http.insecure,
        passes,
        verdict: super::combined_verdict(&comparisons),
        comparisons,
        notes: skipped
            .iter()
            .map(|(step, n)| format!("{step}: {n} malformed Server-Timing entries skipped"))
            .collect(),
    };
    Ok(Measured { doc, summaries })
}

/// Per environment: its own plan (env applied), setup, and one traced user; with warm
/// connections, one unrecorded warm-up iteration first.
async fn lanes(
    plan: &Plan,
    envs: &[String],
    base: &str,
    mode: Connection,
    opts: &Options,
) -> Result<Vec<Lane>, MeasureError> {
    let connection = match mode {
        Connection::New => ConnectionMode::New,
        Connection::Reuse => ConnectionMode::Reuse,
    };
    let client = Client::new(crate::exec::client_config(&plan.http, connection))?;
    let mut lanes = Vec::with_capacity(envs.len());
    for env in envs {
        let p = Arc::new(plan_for_env(plan, env));
        let setup = run_setup(&p, base, &client).await?;
        let ctx = RunContext::new(p, base.to_string(), client.clone(), setup)
            .with_verbose(opts.verbose.clone());
        let mut user = OneUser::new(Arc::new(ctx));
        if mode == Connection::Reuse {
            user.iterate().await;
            user.take_recorder();
        }
        lanes.push(Lane {
            env: env.clone(),
            user,
            its: Vec::new(),
        });
    }
    Ok(lanes)
}

/// `plan` with the environment `env` applied (unchanged when it has no such environment).
pub fn plan_for_env(plan: &Plan, env: &str) -> Plan {
    let mut p = plan.clone();
    if let Some(e) = plan.envs.get(env) {
        p.env = e.clone();
        p.env_name = Some(env.to_string());
    }
    p
}

/// One environment's run summary, as `sonde run --out` writes it, with its waterfalls.
fn summary(
    plan: &Plan,
    env: &str,
    rec: &Recorder,
    names: &[String],
    passes: &[Pass],
    (secs, target_url): (f64, &str),
    n: usize,
) -> Summary {
    let groups = super::groups(plan);
    let info = RunInfo {
        scenario: plan.name.clone(),
        scenario_path: plan.source.as_ref().map(|p| p.display().to_string()),
        target: TargetInfo {
            kind: crate::aggregate::summary::TargetKind::Url,
            url: target_url.to_string(),
            demo_faults: Vec::new(),
        },
        env: Some(env.to_string()),
        load: LoadInfo {
            model: crate::aggregate::summary::LoadModel::Breakdown,
            vus: Some(1),
            iterations: Some(n as u64),
            ..LoadInfo::default()
        },
        started_at: Some(SystemTime::now() - Duration::from_secs_f64(secs)),
        interrupted: false,
        insecure: plan.http.insecure,
        latency_measured_from: crate::aggregate::summary::LatencyOrigin::RequestStart,
        notes: Vec::new(),
    };
    let measured = MeasuredRun {
        names,
        recorder: rec,
        seconds: secs,
    };
    let mut s = Summary::new(&measured, info);
    s.waterfalls = passes
        .iter()
        .filter(|p| p.env == env)
        .filter_map(|p| super::waterfall::of_pass(p, names, &groups))
        .collect();
    s
}

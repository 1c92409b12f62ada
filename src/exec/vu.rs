//! A virtual user and one iteration of the scenario's steps: sequential steps, `parallel:`
//! groups, `think` pauses, polling, captures. Records into its load thread's recorder; borrows
//! of the recorder never cross an `await`.

use super::scope::{Builtins, Scope, VarMap};
use super::step::{
    Backoff, BuildError, StepCtx, StepOutcome, build_request, capture, check, record_exchange,
};
use crate::aggregate::{IntervalRecorder, Recorder, StepStats};
use crate::http::{Client, Session};
use crate::plan::{Condition, Plan, Step, StepNode, Template, Test};
use serde_json::Value;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A stop signal shared by every load thread (runtime-agnostic).
#[derive(Default)]
pub(super) struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Resolves once `trigger` has been called (immediately if it already was).
    pub async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_set() {
                return;
            }
            n.await;
        }
    }

    /// Sleeps for `d` unless stopped first; true when the sleep completed.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => !self.is_set(),
            () = self.wait() => false,
        }
    }
}

/// Read-only state of a run (plan, target, client, setup captures, stop signal), shared by all
/// load threads. Its fields are `exec`'s own.
pub struct RunContext {
    pub(super) plan: Arc<Plan>,
    pub(super) base: String,
    pub(super) client: Client,
    pub(super) setup_vars: VarMap,
    pub(super) data: Vec<VarMap>,
    pub(super) stop: Arc<Stop>,
    pub(super) next_iteration: AtomicU64,
    /// Closed model with `iterations`: how many have been handed out.
    pub(super) taken_iterations: AtomicU64,
    interrupted: AtomicBool,
    /// For each request step (plan order): the index of its poll's `since` step.
    pub(super) since: Vec<Option<usize>>,
    /// Requests of steps that use no variable at all, built once (plan order) with their
    /// HTTP/1.1 bytes: the hot path then renders, parses and copies nothing.
    pub(super) prebuilt: Vec<Option<(crate::http::Request, bytes::Bytes)>>,
    /// Per request step (plan order): not prebuilt, yet maybe the same request for the whole
    /// life of a VU (its variables come from the environment or setup only); each VU tries to
    /// build it once (`Vu::built`). `volatile` names the variables that rule that out.
    pub(super) per_vu: Vec<bool>,
    pub(super) volatile: std::collections::HashSet<String>,
    /// Some step's `if:` asks whether an earlier step passed or failed.
    pub(super) track_outcomes: bool,
    /// `-v`: exchanges to print (`None`: off, one check per request).
    pub(super) verbose: Option<Arc<super::verbose::Verbose>>,
    /// With `-v` in a command that runs several environments: which one this is.
    pub(super) verbose_env: Option<String>,
    /// Per request step (plan order): send a `traceparent` (trace context on, and neither the
    /// step nor the environment sets its own).
    pub(super) traced: Vec<bool>,
}

impl RunContext {
    /// The state of a run of `plan` against `base` (no trailing slash) with `client`, every
    /// virtual user seeing `setup_vars` (`run_setup`'s captures).
    #[must_use]
    pub fn new(plan: Arc<Plan>, base: String, client: Client, setup_vars: VarMap) -> RunContext {
        let stop = Arc::new(Stop::default());
        let names: Vec<&str> = plan.request_steps().map(|s| s.name.as_str()).collect();
        let since = plan
            .request_steps()
            .map(|s| {
                s.poll
                    .as_ref()
                    .and_then(|p| p.since.as_deref())
                    .or_else(|| s.stream.as_ref().and_then(|st| st.since.as_deref()))
                    .and_then(|n| names.iter().position(|x| *x == n))
            })
            .collect();
        let data = plan
            .data
            .iter()
            .map(|row| {
                row.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect()
            })
            .collect();
        let ctx = StepCtx {
            base: &base,
            env: &plan.env,
            flags: &plan.flags,
            env_is_plan: true,
        };
        let prebuilt = plan
            .request_steps()
            .map(|s| {
                build_request(s, &super::step::NoVars, &ctx).ok().map(|r| {
                    let wire = r.encode_h1();
                    (r, wire)
                })
            })
            .collect();
        let per_vu = plan
            .request_steps()
            .zip(&prebuilt)
            .map(|(s, p): (&Step, &Option<_>)| p.is_none() && s.stream.is_none())
            .collect();
        let volatile = super::step::volatile_names(&plan);
        let traced = plan
            .request_steps()
            .map(|s| traced(&plan.http.trace, &plan.env, s))
            .collect();
        let track_outcomes = crate::plan::flatten(&plan.steps)
            .chain(crate::plan::flatten(&plan.setup))
            .filter_map(|s| s.condition.as_ref())
            .any(|c| matches!(c.test, Test::Passed(_) | Test::Failed(_)));
        RunContext {
            verbose: None,
            verbose_env: None,
            traced,
            track_outcomes,
            plan,
            base,
            client,
            setup_vars,
            data,
            stop,
            next_iteration: AtomicU64::new(0),
            taken_iterations: AtomicU64::new(0),
            interrupted: AtomicBool::new(false),
            since,
            prebuilt,
            per_vu,
            volatile,
        }
    }
}

impl RunContext {
    /// With `-v`: print exchanges as `verbose` decides.
    pub fn with_verbose(mut self, verbose: Option<Arc<super::verbose::Verbose>>) -> RunContext {
        self.verbose = verbose;
        self
    }

    /// With `-v` in a command that runs several environments: name this one in every
    /// exchange printed.
    pub fn with_verbose_env(mut self, label: Option<String>) -> RunContext {
        self.verbose_env = label;
        self
    }

    /// The plan this run executes.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Stop starting iterations (an early stop or an abort; the result is not interrupted).
    pub fn request_stop(&self) {
        self.stop.trigger();
    }

    /// Ctrl-C: stop starting iterations and mark the result interrupted.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.stop.trigger();
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// Whether requests of `step` carry sonde's `traceparent`: trace context is on and neither the
/// step nor `env` sets one itself (the caller's wins).
fn traced(opts: &crate::trace::TraceOptions, env: &crate::plan::Environment, step: &Step) -> bool {
    opts.context
        && !crate::trace::sets_traceparent(
            env.headers
                .iter()
                .chain(step.headers.iter())
                .map(|(k, _)| k.as_str()),
        )
}

/// The `traceparent` a request of step `idx` carries: the iteration's trace id and a fresh span
/// id, or `None` when trace context is off or the step or environment sets its own.
pub(super) fn trace_parent(
    local: &Local,
    idx: usize,
    step: &Step,
    scope: &Scope<'_>,
    ctx: &StepCtx<'_>,
) -> Option<crate::trace::TraceParent> {
    let on = if ctx.env_is_plan {
        local.shared.traced.get(idx).copied().unwrap_or(false)
    } else {
        traced(&local.shared.plan.http.trace, ctx.env, step)
    };
    on.then(|| crate::trace::TraceParent::new(scope.builtins.trace_id, crate::trace::new_span_id()))
}

/// What one load thread (or one traced user) records into.
pub(super) struct Local {
    pub(super) shared: Arc<RunContext>,
    pub(super) rec: RefCell<Recorder>,
    pub(super) interval: RefCell<IntervalRecorder>,
    /// A one-user run (`exec::OneUser`) keeps every request of every iteration; load runs
    /// leave this `None` and keep only histograms.
    pub(super) trace: Option<RefCell<Vec<Traced>>>,
}

impl Local {
    pub(super) fn new(shared: Arc<RunContext>, steps: usize, trace: bool) -> Local {
        Local {
            shared,
            rec: RefCell::new(Recorder::new(steps)),
            interval: RefCell::new(IntervalRecorder::default()),
            trace: trace.then(|| RefCell::new(Vec::new())),
        }
    }
}

/// One request as `breakdown` sees it: which step, when, its phases and server timing.
#[derive(Debug, Clone)]
pub struct Traced {
    /// Index into `Plan::request_steps`.
    pub step: usize,
    pub start: Instant,
    pub timing: crate::http::Timing,
    pub status: Option<u16>,
    pub server_timing: Vec<(String, f64)>,
    /// Malformed `Server-Timing` entries the parser skipped.
    pub server_timing_skipped: usize,
    pub error: Option<String>,
    /// The W3C trace id the request carried (`None` with trace context off).
    pub trace_id: Option<String>,
}

pub(super) fn trace(
    local: &Local,
    idx: usize,
    ex: &crate::http::Exchange,
    tp: Option<&crate::trace::TraceParent>,
) {
    let Some(t) = &local.trace else { return };
    let trace_id = tp.map(|t| t.trace_id_hex().to_string());
    let mut t = t.borrow_mut();
    let st = |v: &[crate::http::ServerTimingMetric]| {
        v.iter()
            .filter_map(|m| m.dur_ms.map(|d| (m.name.clone(), d)))
            .collect::<Vec<_>>()
    };
    for hop in &ex.hops {
        t.push(Traced {
            step: idx,
            start: hop.timing.start,
            timing: hop.timing,
            status: Some(hop.status.as_u16()),
            server_timing: st(&hop.server_timing),
            server_timing_skipped: 0,
            error: None,
            trace_id: trace_id.clone(),
        });
    }
    // The transport keeps only well-formed entries; count the skipped ones for the notes.
    let mut scratch = Vec::new();
    let skipped = ex
        .headers
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| crate::http::parse_server_timing(v, &mut scratch))
        .sum();
    t.push(Traced {
        step: idx,
        start: ex.timing.start,
        timing: ex.timing,
        status: ex.status.map(|s| s.as_u16()),
        server_timing: st(&ex.server_timing),
        server_timing_skipped: skipped,
        error: ex.error.as_ref().map(|e| e.message.clone()),
        trace_id,
    });
}

/// A virtual user: its session (cookie jar, connections), captures and environment.
pub(super) struct Vu {
    pub(super) id: u64,
    pub(super) session: Session,
    pub(super) captures: VarMap,
    pub(super) env: VarMap,
    /// Set by an iteration whose requests failed before a response or were rate limited: how
    /// long this VU waits before its next iteration (taken by the load loop).
    pub(super) backoff: Option<(Backoff, std::time::Duration)>,
    /// Consecutive iterations that failed before any response.
    fail_streak: u32,
    /// Requests this VU built once for steps whose variables never change in its life
    /// (`RunContext::per_vu`), by request step; empty until its first iteration.
    built: Vec<PerVu>,
}

/// A step's request as one VU builds it once (see `RunContext::per_vu`).
pub(super) enum PerVu {
    Untried,
    /// Uses a variable that may change between iterations (or does not build): built per
    /// request as usual.
    Varies,
    Built(Box<(crate::http::Request, bytes::Bytes)>),
}

impl PerVu {
    fn get(&self) -> Option<&(crate::http::Request, bytes::Bytes)> {
        match self {
            PerVu::Built(b) => Some(b),
            PerVu::Untried | PerVu::Varies => None,
        }
    }
}

/// Builds, once per VU, the requests of steps `first..` (plan order) that `per_vu` allows and
/// that render from the VU's environment and setup's captures alone.
fn build_per_vu<'s>(
    shared: &RunContext,
    built: &mut Vec<PerVu>,
    env: &VarMap,
    ctx: &StepCtx<'_>,
    first: usize,
    steps: impl Iterator<Item = &'s Step>,
) {
    for (i, step) in steps.enumerate() {
        let idx = first + i;
        if !shared.per_vu.get(idx).copied().unwrap_or(false) {
            continue;
        }
        if built.len() <= idx {
            built.resize_with(shared.per_vu.len().max(idx + 1), || PerVu::Untried);
        }
        if !matches!(built[idx], PerVu::Untried) {
            continue;
        }
        let vars = super::step::VuConstant {
            env,
            shared: &shared.setup_vars,
            volatile: &shared.volatile,
        };
        built[idx] = match build_request(step, &vars, ctx) {
            Ok(r) => {
                let wire = r.encode_h1();
                PerVu::Built(Box::new((r, wire)))
            }
            Err(_) => PerVu::Varies,
        };
    }
}

impl Vu {
    pub(super) fn new(id: u64, shared: &RunContext) -> Vu {
        Vu {
            id,
            session: shared.client.session(),
            captures: VarMap::new(),
            env: render_env(&shared.plan.env.vars, &shared.setup_vars),
            backoff: None,
            fail_streak: 0,
            built: Vec::new(),
        }
    }
}

/// Renders the environment's vars, which may refer to setup captures and to each other
/// (the scenario loader rejected cycles). Unresolvable ones are left out and reported by the
/// step that uses them.
pub(super) fn render_env(
    vars: &std::collections::BTreeMap<String, Template>,
    shared: &VarMap,
) -> VarMap {
    render_env_checked(vars, shared).0
}

/// `render_env`, also naming the variables that would expand past the size limit (built from
/// a setup capture: the loader bounds everything it can see), with the error.
pub(super) fn render_env_checked(
    vars: &std::collections::BTreeMap<String, Template>,
    shared: &VarMap,
) -> (VarMap, Vec<(String, String)>) {
    let mut too_large = Vec::new();
    let mut out = VarMap::new();
    let builtins = Builtins::new(0, 0);
    for _ in 0..=vars.len() {
        let mut progressed = false;
        for (k, t) in vars {
            if out.contains_key(k) {
                continue;
            }
            let scope = Scope {
                captures: &VarMap::new(),
                row: None,
                builtins: &builtins,
                env: &out,
                shared,
            };
            match t.render_value(&scope) {
                Ok(v) => {
                    out.insert(k.clone(), v);
                    progressed = true;
                }
                Err(e @ crate::plan::template::TemplateError::TooLarge { .. }) => {
                    if !too_large.iter().any(|(n, _)| n == k) {
                        too_large.push((k.clone(), e.to_string()));
                    }
                }
                Err(_) => {}
            }
        }
        if !progressed {
            break;
        }
    }
    (out, too_large)
}

/// Runs one iteration. `intended` is the open model's scheduled start (coordinated omission).
/// Returns false if the iteration failed.
// Long on purpose: the hot path's control flow over sequential steps, `parallel:` groups,
// `if:` conditions and `think` pauses reads top to bottom here; the per-step work, the tally
// and the backoff are the helpers below. Splitting the loop would move borrows of the VU
// across functions on every iteration.
pub(super) async fn run_iteration(
    local: &Local,
    vu: &mut Vu,
    recorder_for: Recording,
    intended: Option<Instant>,
) -> bool {
    let shared = &local.shared;
    let plan = &shared.plan;
    let started = intended.unwrap_or_else(Instant::now);
    let it = shared.next_iteration.fetch_add(1, Ordering::Relaxed);
    let row = if shared.data.is_empty() {
        None
    } else {
        shared.data.get((it % shared.data.len() as u64) as usize)
    };
    let builtins = Builtins::new(vu.id, it);
    if recorder_for == Recording::Main {
        // A step's captures serve the steps after it in the same iteration: a value left from
        // the previous iteration would stand in for one this iteration failed to capture.
        vu.captures.clear();
    }
    let nodes = match recorder_for {
        Recording::Main => &plan.steps,
        Recording::Setup => &plan.setup,
    };
    // Step start instants matter only to polls that measure `since` an earlier step; without
    // any, the iteration keeps none (no per-iteration allocation on the hot path).
    let track_starts = recorder_for == Recording::Main && shared.since.iter().any(Option::is_some);
    let mut starts: Vec<Option<Instant>> = if track_starts {
        vec![None; shared.since.len()]
    } else {
        Vec::new()
    };
    let mut tally = Tally {
        ok: true,
        backoff: Backoff::None,
        // Outcomes of this iteration's steps, kept only when an `if:` asks for one.
        outcomes: if shared.track_outcomes {
            vec![None; crate::plan::flatten(nodes).count()]
        } else {
            Vec::new()
        },
    };
    let mut idx = 0usize;
    let mut first = intended;
    // The environment (headers, cookies, flags, query) applies to `steps` only: setup runs
    // before it, and env values may be built from setup's captures.
    // Boxed (setup only): held across the steps' awaits, inline it would sit in every
    // virtual user's task.
    let mut no_env: Option<Box<crate::plan::Environment>> = None;
    let ctx = StepCtx {
        base: &shared.base,
        env: match recorder_for {
            Recording::Main => &plan.env,
            Recording::Setup => no_env.insert(Box::default()),
        },
        flags: &plan.flags,
        env_is_plan: recorder_for == Recording::Main,
    };
    for node in nodes {
        if shared.stop.is_set() && matches!(recorder_for, Recording::Main) && idx > 0 {
            // Interrupted: don't start new requests; the iteration is not counted as failed.
            break;
        }
        match node {
            StepNode::Request(step) => {
                if let Some(c) = &step.condition
                    && !holds(
                        c,
                        &scope(vu, row, &builtins, shared),
                        nodes,
                        &tally.outcomes,
                    )
                {
                    not_run(local, idx, c);
                    idx += 1;
                    continue;
                }
                if ctx.env_is_plan {
                    build_per_vu(
                        shared,
                        &mut vu.built,
                        &vu.env,
                        &ctx,
                        idx,
                        std::iter::once(&**step),
                    );
                }
                let out = {
                    let cached = vu.built.get(idx).and_then(PerVu::get);
                    let scope = scope(vu, row, &builtins, shared);
                    let since = match recorder_for {
                        Recording::Main => shared.since.get(idx).copied().flatten(),
                        Recording::Setup => None,
                    };
                    let intended = first.take();
                    let settle_from = since
                        .and_then(|i| starts.get(i).copied().flatten())
                        .or(intended);
                    if let Some(s) = starts.get_mut(idx) {
                        *s = Some(intended.unwrap_or_else(Instant::now));
                    }
                    let from = MeasureFrom {
                        intended,
                        settle: settle_from,
                    };
                    run_step(local, idx, step, &scope, &vu.session, &ctx, from, cached).await
                };
                let abort = tally.absorb(idx, out, &mut vu.captures);
                idx += 1;
                if abort {
                    break;
                }
            }
            StepNode::Parallel(steps) => {
                if ctx.env_is_plan {
                    build_per_vu(shared, &mut vu.built, &vu.env, &ctx, idx, steps.iter());
                }
                let outs = {
                    let built = &vu.built;
                    let scope = scope(vu, row, &builtins, shared);
                    let now = Instant::now();
                    let from = first.take();
                    let (scope, session, ctx) = (&scope, &vu.session, &ctx);
                    let futs = steps.iter().enumerate().filter_map(|(j, step)| {
                        if let Some(c) = &step.condition
                            && !holds(c, scope, nodes, &tally.outcomes)
                        {
                            not_run(local, idx + j, c);
                            return None;
                        }
                        // A poll or stream in a group measures from its `since` step too (an
                        // earlier step, so its start is already known).
                        let settle = match recorder_for {
                            Recording::Main => shared.since.get(idx + j).copied().flatten(),
                            Recording::Setup => None,
                        }
                        .and_then(|i| starts.get(i).copied().flatten())
                        .or(from);
                        if let Some(s) = starts.get_mut(idx + j) {
                            *s = Some(from.unwrap_or(now));
                        }
                        let from = MeasureFrom {
                            intended: from,
                            settle,
                        };
                        let cached = built.get(idx + j).and_then(PerVu::get);
                        Some(async move {
                            (
                                idx + j,
                                run_step(local, idx + j, step, scope, session, ctx, from, cached)
                                    .await,
                            )
                        })
                    });
                    let futs: Vec<_> = futs.collect();
                    futures_util::future::join_all(futs).await
                };
                idx += steps.len();
                let mut abort = false;
                for (i, out) in outs {
                    abort |= tally.absorb(i, out, &mut vu.captures);
                }
                if abort {
                    break;
                }
            }
            StepNode::Think { min, max } => {
                if !think(&shared.stop, *min, *max).await {
                    break;
                }
            }
        }
    }
    settle_backoff(vu, tally.backoff);
    if matches!(recorder_for, Recording::Main) {
        count_iteration(local, tally.ok, started);
    }
    tally.ok
}

/// How long the VU pauses before its next iteration after one that failed before any
/// response (growing with the streak) or was rate limited (the server's Retry-After, capped).
fn settle_backoff(vu: &mut Vu, backoff: Backoff) {
    vu.backoff = match backoff {
        Backoff::None => {
            vu.fail_streak = 0;
            None
        }
        Backoff::Failed | Backoff::RateLimited(None) => {
            vu.fail_streak = vu.fail_streak.saturating_add(1);
            Some((backoff, super::step::failure_backoff(vu.fail_streak)))
        }
        Backoff::RateLimited(Some(d)) => Some((backoff, d.min(super::step::MAX_RETRY_AFTER))),
    };
}

/// Counts a finished main iteration (and its duration) in the thread's recorders.
fn count_iteration(local: &Local, ok: bool, started: Instant) {
    let mut rec = local.rec.borrow_mut();
    rec.iterations += 1;
    if !ok {
        rec.failed_iterations += 1;
    }
    rec.iteration_time.record(started.elapsed());
    local.interval.borrow_mut().iterations += 1;
}

/// A `think` pause of `min..max`; false when the run was stopped meanwhile.
async fn think(stop: &Stop, min: Duration, max: Duration) -> bool {
    let d = min + max.saturating_sub(min).mul_f64(fastrand::f64());
    stop.sleep(d).await
}

/// What an iteration's steps add up to so far: passed, the backoff they ask for, and (when an
/// `if:` asks) each step's outcome.
struct Tally {
    ok: bool,
    backoff: Backoff,
    outcomes: Vec<Option<bool>>,
}

impl Tally {
    /// Takes step `i`'s outcome (its captures go to the VU); true when it aborts the iteration.
    fn absorb(&mut self, i: usize, out: StepOutcome, captures: &mut VarMap) -> bool {
        self.ok &= !out.failed;
        if let Some(o) = self.outcomes.get_mut(i) {
            *o = Some(!out.failed);
        }
        self.backoff = worse(self.backoff, out.backoff);
        captures.extend(out.captures);
        out.abort
    }
}

/// The pause that matters more: a server's `Retry-After` over a failure's, either over none.
fn worse(a: Backoff, b: Backoff) -> Backoff {
    match (a, b) {
        (Backoff::RateLimited(Some(x)), Backoff::RateLimited(Some(y))) => {
            Backoff::RateLimited(Some(x.max(y)))
        }
        (Backoff::RateLimited(Some(x)), _) | (_, Backoff::RateLimited(Some(x))) => {
            Backoff::RateLimited(Some(x))
        }
        (Backoff::RateLimited(None), _) | (_, Backoff::RateLimited(None)) => {
            Backoff::RateLimited(None)
        }
        (Backoff::Failed, _) | (_, Backoff::Failed) => Backoff::Failed,
        _ => Backoff::None,
    }
}

/// Whether a step's `if:` holds now. `outcomes` are this iteration's step outcomes (plan
/// order; `None`: not run yet, or not run at all).
fn holds(c: &Condition, scope: &Scope<'_>, nodes: &[StepNode], outcomes: &[Option<bool>]) -> bool {
    use crate::plan::template::Vars as _;
    let has_value = |name: &str| match scope.get_var(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    };
    let outcome = |name: &str| {
        crate::plan::flatten(nodes)
            .position(|s| s.name == name)
            .and_then(|i| outcomes.get(i).copied().flatten())
    };
    match &c.test {
        Test::Set(v) => has_value(v),
        Test::Empty(v) => !has_value(v),
        Test::Equals(v, want) => match (scope.get_var(v), want.render(scope)) {
            (Some(got), Ok(want)) => crate::plan::template::value_text(got) == want,
            _ => false,
        },
        Test::Passed(s) => outcome(s) == Some(true),
        Test::Failed(s) => outcome(s) == Some(false),
    }
}

fn not_run(local: &Local, idx: usize, c: &Condition) {
    with_stats(local, idx, |s| {
        s.record_not_run(&format!("`{}` did not hold", c.src), false);
    });
}

/// Which recorder a step records into: the load's, or setup's (kept apart from the results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Recording {
    Main,
    Setup,
}

fn scope<'a>(
    vu: &'a Vu,
    row: Option<&'a VarMap>,
    builtins: &'a Builtins,
    shared: &'a RunContext,
) -> Scope<'a> {
    Scope {
        captures: &vu.captures,
        row,
        builtins,
        env: &vu.env,
        shared: &shared.setup_vars,
    }
}

pub(super) fn with_stats<R>(local: &Local, idx: usize, f: impl FnOnce(&mut StepStats) -> R) -> R {
    let mut rec = local.rec.borrow_mut();
    if rec.steps.len() <= idx {
        rec.steps.resize_with(idx + 1, StepStats::default);
    }
    f(&mut rec.steps[idx])
}

/// A step whose request could not be built is not run. A variable without a value means the
/// step that sets it failed (one error, already counted) or did not run: the step is counted
/// as not run, no second error. Any other template error is this step's own.
pub(super) fn not_built(local: &Local, idx: usize, e: &BuildError) -> StepOutcome {
    with_stats(local, idx, |s| {
        if let Some(var) = &e.unset {
            s.record_not_run(
                &format!(
                    "needs `{var}`, which has no value (null, or the step that sets it failed or \
             did not run)"
                ),
                true,
            )
        } else {
            s.skipped += 1;
            *s.error_classes.entry("template".into()).or_default() += 1;
            crate::aggregate::add_message(&mut s.error_messages, &e.message, 1);
        }
    });
    StepOutcome {
        captures: Vec::new(),
        failed: e.unset.is_none(),
        abort: false,
        end: Instant::now(),
        backoff: Backoff::None,
    }
}

/// A failure message with the values of secret variables (captured, env, setup, data: by
/// name, or by looking secret) and any secret-looking token hidden. Runs on failures only.
pub(super) fn scrub_secrets(msg: &str, scope: &Scope<'_>) -> String {
    let mut r = crate::redact::Redactor::new(false);
    let maps = [
        Some(scope.captures),
        Some(scope.env),
        Some(scope.shared),
        scope.row,
    ];
    for map in maps.into_iter().flatten() {
        for (k, v) in map {
            let text = crate::plan::template::value_text(v);
            if crate::redact::is_secret_name(k) || crate::redact::looks_secret(&text) {
                r.add(&text);
            }
        }
    }
    crate::redact::redact_free_text(&r.scrub(msg))
}

/// With `-v`: one exchange of `step` as sent, with its failure if it failed the step.
pub(super) fn show(
    local: &Local,
    step: &Step,
    req: &crate::http::Request,
    ex: &crate::http::Exchange,
    failure: Option<&str>,
) {
    if let Some(v) = &local.shared.verbose {
        let env = local.shared.verbose_env.as_deref();
        v.exchange(env, &step.name, req, ex, failure);
    }
}

/// A step under way. Dropped while still armed, the step's future was cancelled: the run
/// ended (or was interrupted) and its grace period ran out with this request in flight. It is
/// then counted, not forgotten: a failed request of class `cancelled` with the time it had
/// been waiting, and one more cut request in the summary.
struct InFlight<'a> {
    local: &'a Local,
    idx: usize,
    from: Instant,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let waited = self.from.elapsed();
        // A cancelled future is dropped outside any poll: no borrow of the recorder is live.
        if let Ok(mut rec) = self.local.rec.try_borrow_mut() {
            rec.cut_requests += 1;
            drop(rec);
            with_stats(self.local, self.idx, |s| {
                s.requests += 1;
                s.failed_latency.record(waited);
                s.record_error(
                    "cancelled",
                    Some("still in flight when the run's grace period ended"),
                );
            });
        }
        if let Ok(mut iv) = self.local.interval.try_borrow_mut() {
            iv.requests += 1;
            iv.errors += 1;
        }
    }
}

/// Where a step's measurements start, when not at its own first request.
#[derive(Clone, Copy)]
struct MeasureFrom {
    /// The open model's intended start of the iteration: the first request of the iteration
    /// is measured from it (coordinated omission).
    intended: Option<Instant>,
    /// A poll's settle time starts here: the start of its `since` step (or `intended`).
    settle: Option<Instant>,
}

/// Runs one request step: build, send (polling until its condition holds), check, capture,
/// record.
// Long on purpose: the one place a step's request lives from build to record, including the
// poll loop, the in-flight guard that counts a cancelled request, and `-v` printing; the
// recorder borrows it takes must not cross an await, which the linear shape makes visible.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    local: &Local,
    idx: usize,
    step: &Step,
    scope: &Scope<'_>,
    session: &Session,
    ctx: &StepCtx<'_>,
    from: MeasureFrom,
    cached: Option<&(crate::http::Request, bytes::Bytes)>,
) -> StepOutcome {
    if let Some(spec) = &step.stream {
        // Boxed: a stream step's state is large and rare; inline it would sit in every virtual
        // user's task (memory per held connection) whether or not the plan has one.
        return Box::pin(super::stream::run(
            local,
            idx,
            step,
            spec,
            scope,
            session,
            ctx,
            from.settle,
        ))
        .await;
    }
    let step_start = Instant::now();
    let settle_from = from.settle.unwrap_or(step_start);
    // Request latency starts at each request's own start; only the first request of an
    // open-model iteration starts at the intended time.
    let mut attempt_from = from.intended.unwrap_or(step_start);
    let mut in_flight = InFlight {
        local,
        idx,
        from: attempt_from,
        armed: true,
    };
    let deadline = step.poll.as_ref().map(|p| step_start + p.timeout);
    let prebuilt = if ctx.env_is_plan {
        local
            .shared
            .prebuilt
            .get(idx)
            .and_then(Option::as_ref)
            .or(cached)
    } else {
        None
    };
    loop {
        // Boxed, as `shown` below and the poll's pause: whatever is held across the send sits
        // in every virtual user's task for the whole run (memory per held connection).
        let rendered: Box<crate::http::Request>;
        let (req, wire) = match prebuilt {
            Some((r, wire)) => (r, Some(wire)),
            None => match build_request(step, scope, ctx) {
                Ok(r) => {
                    rendered = Box::new(r);
                    (&*rendered, None)
                }
                Err(e) => {
                    in_flight.armed = false;
                    return not_built(local, idx, &e);
                }
            },
        };
        let tp = trace_parent(local, idx, step, scope, ctx);
        // `-v` shows the request as sent, the jar's cookies and the trace context included.
        let shown = match &local.shared.verbose {
            Some(_) => {
                let cookie = session.cookie_line_for(&req.url, &req.headers);
                (cookie.is_some() || tp.is_some()).then(|| {
                    let mut r = req.clone();
                    if let Some(v) = cookie.and_then(|l| http::HeaderValue::from_str(&l).ok()) {
                        r.headers.insert(http::header::COOKIE, v);
                    }
                    if let Some(v) = tp
                        .as_ref()
                        .and_then(|t| http::HeaderValue::from_bytes(t.as_bytes()).ok())
                    {
                        r.headers.insert(crate::trace::TRACEPARENT, v);
                    }
                    Box::new(r)
                })
            }
            None => None,
        };
        let ex = session.send_traced(req, wire, tp.as_ref()).await;
        // `--connection new` adds `Connection: close` to an HTTP/1.x request without its own
        // Connection header: `-v` shows it as sent.
        let shown = if local.shared.verbose.is_some() && ex.said_close {
            let mut r = shown.unwrap_or_else(|| Box::new(req.clone()));
            r.headers.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            Some(r)
        } else {
            shown
        };
        // The trace a kept request names: sonde's, else the caller's own `traceparent` (repro of
        // one specific trace), looked up only when a trace or an exemplar is kept.
        let recorded_tp = || tp.or_else(|| crate::trace::sent_by_caller(&req.headers));
        let end = Instant::now();
        let latency = end.saturating_duration_since(attempt_from);
        let failure = check(step, &ex, scope);
        let captures = if failure.is_none() {
            capture(step, &ex, session)
        } else {
            Ok(Vec::new())
        };
        let polling_again = match (&step.poll, deadline) {
            (Some(p), Some(dl))
                if (failure.is_some() || captures.is_err()) && ex.error.is_none() =>
            {
                end + p.interval < dl
            }
            _ => false,
        };
        // Every request counts in the phases; only the final one decides the outcome.
        with_stats(local, idx, |s| record_exchange(s, &ex));
        if local.trace.is_some() {
            trace(local, idx, &ex, recorded_tp().as_ref());
        }
        {
            let mut iv = local.interval.borrow_mut();
            iv.requests += 1 + ex.hops.len() as u64;
        }
        if polling_again {
            show(local, step, shown.as_deref().unwrap_or(req), &ex, None);
            // An answer that does not pass yet is a request like any other (its latency is
            // request latency), not an error: the poll goes on.
            with_stats(local, idx, |s| s.latency.record(latency));
            local.interval.borrow_mut().latency.record(latency);
            if let Some(p) = &step.poll
                && !Box::pin(local.shared.stop.sleep(p.interval)).await
            {
                // Stopped while waiting to poll again: the step did not finish, nothing hangs.
                in_flight.armed = false;
                return StepOutcome::stopped(end);
            }
            attempt_from = Instant::now();
            in_flight.from = attempt_from;
            continue;
        }
        let failure = match (failure, &captures) {
            (Some(f), _) => Some(f),
            (None, Err(msg)) => Some(("capture".to_string(), msg.clone())),
            (None, Ok(_)) => None,
        };
        let failure = match (failure, &step.poll) {
            (Some((class, msg)), Some(p)) if ex.error.is_none() => Some((
                class,
                format!("poll gave up after {:.1}s: {msg}", p.timeout.as_secs_f64()),
            )),
            (f, _) => f,
        };
        // Response-side secrets (a token echoed in a body, a captured session) never reach a
        // report through a failure message.
        let failure = failure.map(|(class, msg)| (class, scrub_secrets(&msg, scope)));
        let failed = failure.is_some();
        let failure_text = failure.as_ref().map(|(_, m)| m.as_str());
        show(
            local,
            step,
            shown.as_deref().unwrap_or(req),
            &ex,
            failure_text,
        );
        with_stats(local, idx, |s| {
            // Exemplars: one comparison against the step's N-th slowest; built only when kept.
            // The slowest are successful requests, as the percentiles above them are; failures
            // have their own list (the first few per class).
            let latency_us = latency.as_micros() as u64;
            let opts = &local.shared.plan.http.trace;
            if failure.is_none() && s.exemplars.beats(latency_us) {
                let e =
                    super::step::exemplar(step, &ex, latency, recorded_tp().as_ref(), None, opts);
                s.exemplars.offer(opts.exemplars, e);
            }
            match &failure {
                Some((class, msg)) => {
                    if opts.exemplars > 0 && s.exemplars.wants_failure(class) {
                        let e = super::step::exemplar(
                            step,
                            &ex,
                            latency,
                            recorded_tp().as_ref(),
                            Some(class),
                            opts,
                        );
                        s.exemplars.offer_failure(opts.exemplars, e);
                    }
                    s.failed_latency.record(latency);
                    s.record_error(class, Some(msg));
                }
                None => s.latency.record(latency),
            }
            if step.poll.is_some() {
                if failed {
                    s.unsettled += 1;
                } else {
                    s.settle.record(end.saturating_duration_since(settle_from));
                }
            }
        });
        {
            let mut iv = local.interval.borrow_mut();
            iv.latency.record(latency);
            if failed {
                iv.errors += 1;
            }
        }
        in_flight.armed = false;
        let backoff = match (&ex.error, ex.status) {
            (Some(e), _) if e.kind.before_response() => Backoff::Failed,
            (None, Some(st)) if st.as_u16() == 429 && local.shared.plan.http.honor_retry_after => {
                Backoff::RateLimited(super::step::retry_after(&ex.headers))
            }
            _ => Backoff::None,
        };
        return StepOutcome {
            // A failed step never stops the iteration: steps that need one of its captures
            // are not run (see the build error above), the others are.
            abort: false,
            captures: captures.unwrap_or_default(),
            failed,
            end,
            backoff,
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Every virtual user's task holds its whole future for the run: its size is memory per
    /// held connection (10,000 VUs x this), so it must stay small. Nothing is polled here.
    #[test]
    fn vu_future_is_small() {
        // Built as `sonde run --url` builds it (exec sits below `scenario`).
        let step = crate::plan::Step::one_request(
            "one",
            http::Method::GET,
            crate::plan::Template::literal("/"),
            None,
            false,
        );
        let plan = crate::plan::Plan::one_request(
            "one",
            url::Url::parse("http://127.0.0.1:9/").unwrap(),
            step,
            crate::plan::LoadModel::Closed {
                vus: 1,
                duration: None,
                iterations: Some(1),
                stages: Vec::new(),
            },
            crate::plan::HttpOptions::default(),
            std::time::Duration::from_secs(1),
        );
        let client = Client::new(crate::http::ClientConfig::default()).unwrap();
        let shared = Arc::new(RunContext::new(
            Arc::new(plan),
            "http://127.0.0.1:9".into(),
            client,
            VarMap::new(),
        ));
        let local = Local::new(shared.clone(), 1, false);
        let mut vu = Vu::new(1, &shared);
        let session = shared.client.session();
        let it = std::mem::size_of_val(&run_iteration(&local, &mut vu, Recording::Main, None));
        let step = crate::plan::flatten(&shared.plan.steps).next().unwrap();
        let builtins = Builtins::new(1, 0);
        let scope = scope(&vu, None, &builtins, &shared);
        let ctx = StepCtx {
            base: &shared.base,
            env: &shared.plan.env,
            flags: &shared.plan.flags,
            env_is_plan: true,
        };
        let from = MeasureFrom {
            intended: None,
            settle: None,
        };
        let st = std::mem::size_of_val(&run_step(
            &local, 0, step, &scope, &session, &ctx, from, None,
        ));
        let req = &shared.prebuilt[0].as_ref().unwrap().0;
        let send = std::mem::size_of_val(&session.send_traced(req, None, None));
        eprintln!(
            "run_iteration {it} B, run_step {st} B, send_traced {send} B, Vu {} B, Session {} B",
            std::mem::size_of::<Vu>(),
            std::mem::size_of::<Session>()
        );
        // Debug-build sizes (release ones are smaller): 6,816 bytes before the rare paths were
        // boxed (a stream step's state alone was ~2.8 KB), ~3,200 after.
        assert!(
            it <= 4096,
            "a virtual user's iteration future grew to {it} bytes: box what it holds across an \
             await but rarely uses"
        );
        assert!(
            it >= st && st >= send,
            "the future sizes nest: {it} {st} {send}"
        );
        eprintln!(
            "Request {} Exchange {} TraceParent {} StepOutcome {} Environment {} Stop::sleep {}",
            std::mem::size_of::<crate::http::Request>(),
            std::mem::size_of::<crate::http::Exchange>(),
            std::mem::size_of::<crate::trace::TraceParent>(),
            std::mem::size_of::<StepOutcome>(),
            std::mem::size_of::<crate::plan::Environment>(),
            std::mem::size_of_val(&shared.stop.sleep(Duration::from_secs(1))),
        );
    }
}

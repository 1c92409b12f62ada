//! Runs a flow one iteration at a time under a chosen environment, the way `breakdown` does:
//! setup once, then a fresh virtual user (own cookie jar and connections) per run, traced
//! request by request. The flow is a scenario's steps or the one request of a curl/HAR input.
//! Measures and classifies runs; formats nothing.

use super::ddmin::Outcome;
use super::env::{TemplatedKey, to_plan_env};
use crate::aggregate::Recorder;
use crate::exec::scope::{Builtins, Scope, VarMap};
use crate::exec::step::{StepCtx, build_request};
use crate::exec::{Local, Shared, Stop, Target, Vu, run_iteration, run_setup};
use crate::http::{Client, ConnectionMode, Request};
use crate::import::{EnvSpec, Imported};
use crate::plan::{
    BodySpec, Environment, Expectation, FlagTransport, HttpOptions, LoadModel, Plan, Step,
    StepNode, TargetSpec, Template,
};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    Client(String),
    #[error(transparent)]
    Setup(#[from] crate::exec::ExecError),
}

/// What to run, before a target is known.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub plan: Plan,
    /// A scenario-less flow: its one request takes its body from the environment.
    pub body_from_env: bool,
    pub templated: BTreeSet<TemplatedKey>,
}

impl FlowSpec {
    /// A scenario's steps. Think pauses are dropped unless `keep_think`: they change nothing
    /// that is sent, and a bisection runs the flow many times.
    pub fn scenario(mut plan: Plan, keep_think: bool, templated: BTreeSet<TemplatedKey>) -> Self {
        if !keep_think {
            plan.steps.retain(|n| !matches!(n, StepNode::Think { .. }));
        }
        FlowSpec {
            plan,
            body_from_env: false,
            templated,
        }
    }

    /// The one request of a curl command or HAR entry, sent to `target` (or to where the
    /// request went). Without `expect_status` a status of 400 or more or a transport error
    /// fails it.
    pub fn request(
        req: &Imported,
        target: Option<url::Url>,
        expect_status: &[u16],
        http: HttpOptions,
        flags: FlagTransport,
    ) -> Result<FlowSpec, String> {
        let origin = match target {
            Some(t) => t,
            None => url::Url::parse(&req.base).map_err(|e| format!("request URL: {e}"))?,
        };
        let expect = if expect_status.is_empty() {
            Vec::new()
        } else {
            vec![Expectation::Status(expect_status.to_vec())]
        };
        let step = Step {
            name: format!("{} {}", req.method, req.path),
            method: req.method.clone(),
            url: Template::literal(req.path.clone()),
            query: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
            expect,
            capture: Vec::new(),
            timeout: None,
            follow_redirects: req.follow_redirects,
            poll: None,
            stream: None,
            condition: None,
            line: 0,
        };
        Ok(FlowSpec {
            plan: Plan {
                name: "request".into(),
                source: None,
                target: TargetSpec::Url(origin),
                env_name: None,
                envs: Default::default(),
                env: Environment::default(),
                flags,
                data: Vec::new(),
                load: LoadModel::Closed {
                    vus: 1,
                    duration: None,
                    iterations: Some(1),
                    stages: Vec::new(),
                },
                setup: Vec::new(),
                steps: vec![StepNode::Request(Box::new(step))],
                thresholds: Vec::new(),
                http,
                max_duration: Duration::from_secs(600),
                graceful_stop: crate::plan::DEFAULT_GRACEFUL_STOP,
            },
            body_from_env: true,
            templated: BTreeSet::new(),
        })
    }
}

/// One step of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepRun {
    /// A request was sent (or its template failed to render).
    pub ran: bool,
    /// The final response's status, if one came.
    pub status: Option<u16>,
    /// The first failing expectation, status or transport error.
    pub failure: Option<String>,
}

/// One run of the flow.
#[derive(Debug, Clone)]
pub struct Run {
    pub ok: bool,
    pub steps: Vec<StepRun>,
    pub requests: u64,
    /// Requests were sent and none got a response (the target looks unreachable).
    pub unreachable: bool,
}

/// `k` runs under one environment.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    pub runs: Vec<Run>,
    /// Every run's measurements merged (per-step latency, statuses).
    pub rec: Recorder,
}

impl Runs {
    pub fn failed(&self) -> usize {
        self.runs.iter().filter(|r| !r.ok).count()
    }

    pub fn outcome(&self) -> Outcome {
        match self.failed() {
            0 => Outcome::Pass,
            n if n == self.runs.len() => Outcome::Fail,
            _ => Outcome::Flaky,
        }
    }

    /// The first failing step of the first failed run, with its message.
    pub fn first_failure(&self) -> Option<(usize, String)> {
        self.runs.iter().filter(|r| !r.ok).find_map(|r| {
            r.steps
                .iter()
                .enumerate()
                .find_map(|(i, s)| s.failure.clone().map(|m| (i, m)))
        })
    }

    pub fn unreachable(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(|r| r.unreachable)
    }

    pub fn requests(&self) -> u64 {
        self.runs.iter().map(|r| r.requests).sum()
    }
}

/// A flow ready to run against a target: client built, setup done.
pub struct Flow {
    spec: FlowSpec,
    base: String,
    client: Client,
    setup: VarMap,
    set: tokio::task::LocalSet,
    pub step_names: Vec<String>,
    requests: Cell<u64>,
    /// `-v`: exchanges to print, shared by every run of the flow.
    pub verbose: Option<Arc<crate::exec::verbose::Verbose>>,
    /// With `-v`: the environment the next runs are under, named in every exchange printed.
    pub verbose_env: std::cell::RefCell<Option<String>>,
}

impl Flow {
    /// Builds the client and runs the scenario's setup once (its captures serve every run).
    pub async fn start(spec: FlowSpec, base: &str) -> Result<Flow, FlowError> {
        let client = Client::new(crate::exec::client_config(
            &spec.plan.http,
            ConnectionMode::Reuse,
        ))
        .map_err(|e| FlowError::Client(e.to_string()))?;
        let plan = Arc::new(spec.plan.clone());
        let setup = run_setup(&plan, base, &client).await?;
        let step_names = spec.plan.request_steps().map(|s| s.name.clone()).collect();
        let setup_requests = crate::plan::flatten(&spec.plan.setup).count() as u64;
        Ok(Flow {
            spec,
            base: base.to_string(),
            client,
            setup,
            set: tokio::task::LocalSet::new(),
            step_names,
            requests: Cell::new(setup_requests),
            verbose: None,
            verbose_env: std::cell::RefCell::new(None),
        })
    }

    /// Every request sent so far, setup included.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// The setup captures (for a redactor: they may hold tokens).
    pub fn setup_values(&self) -> Vec<String> {
        self.setup
            .values()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    fn plan_for(&self, env: &EnvSpec) -> Plan {
        let mut p = self.spec.plan.clone();
        p.env = to_plan_env(env, &self.spec.templated);
        if self.spec.body_from_env
            && let Some(StepNode::Request(step)) = p.steps.first_mut()
        {
            step.body = env
                .body
                .as_ref()
                .map(|b| BodySpec::exact(&b.text, b.binary.as_deref(), b.content_type.clone()));
            // An imported query that items would not send byte for byte (`?draft`, `%20`)
            // travels verbatim while the bisection has not changed it.
            if let Some(raw) = env.exact_query() {
                step.url = Template::literal(format!("{}?{raw}", step.url.source()));
                p.env.query.clear();
            }
        }
        p
    }

    fn shared(&self, env: &EnvSpec) -> Arc<Shared> {
        let mut shared = Shared::new(
            Arc::new(self.plan_for(env)),
            self.base.clone(),
            self.client.clone(),
            self.setup.clone(),
            Arc::new(Stop::default()),
        )
        .with_verbose(self.verbose.clone());
        shared.verbose_env = self.verbose_env.borrow().clone();
        Arc::new(shared)
    }

    /// Names the environment of the next runs in `-v` output.
    pub fn label_runs(&self, label: impl Into<String>) {
        if self.verbose.is_some() {
            *self.verbose_env.borrow_mut() = Some(label.into());
        }
    }

    /// Runs the flow `k` times, one after another, under `env`.
    pub async fn run(&self, env: &EnvSpec, k: usize) -> Runs {
        let shared = self.shared(env);
        let mut out = Runs {
            // Grown as runs complete: `k` comes from the command line.
            runs: Vec::with_capacity(k.min(64)),
            rec: Recorder::new(self.step_names.len()),
        };
        for _ in 0..k {
            let (run, rec, _) = self.once(&shared).await;
            out.rec.merge(&rec);
            out.runs.push(run);
        }
        out
    }

    async fn once(&self, shared: &Arc<Shared>) -> (Run, Recorder, Vu) {
        let n = self.step_names.len();
        let local = Local::new(shared.clone(), n, true);
        let mut vu = Vu::new(1, shared);
        let ok = self
            .set
            .run_until(run_iteration(&local, &mut vu, Target::Main, None))
            .await;
        let trace = local
            .trace
            .as_ref()
            .map(|t| std::mem::take(&mut *t.borrow_mut()))
            .unwrap_or_default();
        let rec = local.rec.into_inner();
        let mut steps = vec![StepRun::default(); n];
        for (i, s) in rec.steps.iter().enumerate().take(n) {
            steps[i].ran = s.requests > 0 || s.skipped > 0;
            if s.errors > 0 || s.skipped > 0 {
                steps[i].failure = s.error_messages.keys().next().cloned();
            }
        }
        for t in &trace {
            if let Some(st) = steps.get_mut(t.step) {
                st.status = t.status;
            }
        }
        let requests: u64 = rec.steps.iter().map(|s| s.requests).sum();
        let unreachable = requests > 0 && trace.iter().all(|t| t.status.is_none());
        self.requests.set(self.requests.get() + requests);
        let run = Run {
            ok,
            steps,
            requests,
            unreachable,
        };
        (run, rec, vu)
    }

    /// Runs the flow once under `env` and returns that run and the request step `step` would
    /// send (rendered with the run's captures): the material of a reproducing curl command.
    pub async fn witness(&self, env: &EnvSpec, step: usize) -> (Run, Option<Request>) {
        let shared = self.shared(env);
        let (run, _, vu) = self.once(&shared).await;
        let plan = &shared.plan;
        let Some(s) = plan.request_steps().nth(step) else {
            return (run, None);
        };
        let builtins = Builtins::new(vu.id, 0);
        let scope = Scope {
            captures: &vu.captures,
            row: None,
            builtins: &builtins,
            env: &vu.env,
            shared: &shared.setup_vars,
        };
        let ctx = StepCtx {
            base: &shared.base,
            env: &plan.env,
            flags: &plan.flags,
            env_is_plan: true,
        };
        (run, build_request(s, &scope, &ctx).ok())
    }
}

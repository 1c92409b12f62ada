//! Runs a flow one iteration at a time under a chosen environment, the way `breakdown` does:
//! setup once, then a fresh virtual user (own cookie jar and connections) per run, traced
//! request by request. The flow is a scenario's steps or the one request of a curl/HAR input.
//! Measures and classifies runs; formats nothing.

use super::ddmin::Outcome;
use super::env::{LoadedEnv, TemplatedKey, to_plan_env};
use crate::aggregate::Recorder;
use crate::exec::scope::VarMap;
use crate::exec::{OneUser, RunContext, run_setup};
use crate::http::{Client, Request};
use crate::import::{EnvSpec, Imported};
use crate::plan::{
    BodySpec, Expectation, FlagTransport, HttpOptions, LoadModel, Plan, Step, StepNode, Template,
};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The client cannot be built from the options (`--cacert`): invalid input.
    #[error(transparent)]
    Client(#[from] crate::http::HttpError),
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
    #[must_use]
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
        let mut step = Step::one_request(
            format!("{} {}", req.method, req.path),
            req.method.clone(),
            Template::literal(req.path.clone()),
            None,
            req.follow_redirects,
        );
        step.expect = expect;
        Ok(FlowSpec {
            plan: Plan {
                flags,
                ..Plan::one_request(
                    "request",
                    origin,
                    step,
                    LoadModel::Closed {
                        vus: 1,
                        duration: None,
                        iterations: Some(1),
                        stages: Vec::new(),
                    },
                    http,
                    Duration::from_secs(600),
                )
            },
            body_from_env: true,
            templated: BTreeSet::new(),
        })
    }
}

/// How `repro` and `bisect` pick the flow from what they were given: a scenario's steps, or
/// the request of the first curl/HAR environment.
#[derive(Debug, Clone)]
pub struct FlowChoice {
    pub target: Option<url::Url>,
    pub expect_status: Vec<u16>,
    pub keep_think: bool,
    pub http: HttpOptions,
}

/// Why no flow could be picked.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    /// Neither a scenario nor a request to send (a usage error).
    #[error("{0}")]
    NothingToSend(String),
    /// The request of the first environment cannot be sent.
    #[error("{0}")]
    Request(String),
}

impl FlowChoice {
    /// A scenario's steps, with the notes a reader needs (bodies of the environments unused,
    /// `--expect-status` not applying, think pauses skipped).
    #[must_use]
    pub fn scenario(&self, plan: &Plan, envs: &[LoadedEnv]) -> (FlowSpec, Vec<String>) {
        let mut notes = Vec::new();
        let templated: BTreeSet<_> = envs.iter().flat_map(|e| e.templated.clone()).collect();
        let with_body: Vec<&str> = envs
            .iter()
            .filter(|e| e.spec.body.is_some())
            .map(|e| e.label.as_str())
            .collect();
        if !with_body.is_empty() {
            notes.push(format!(
                "request bodies of {} not used: the scenario's steps carry their own",
                with_body.join(", ")
            ));
        }
        if !self.expect_status.is_empty() {
            notes.push("--expect-status applies to a scenario-less flow; the scenario's `expect` decides here".into());
        }
        if !self.keep_think
            && plan
                .steps
                .iter()
                .any(|n| matches!(n, StepNode::Think { .. }))
        {
            notes.push("think pauses skipped (--keep-think keeps them)".into());
        }
        (
            FlowSpec::scenario(plan.clone(), self.keep_think, templated),
            notes,
        )
    }

    /// The request of the first curl/HAR environment, every run sending it.
    pub fn request(&self, envs: &[LoadedEnv]) -> Result<(FlowSpec, Vec<String>), ChoiceError> {
        let mut notes = Vec::new();
        let requests: Vec<_> = envs.iter().filter_map(|e| e.request.as_ref()).collect();
        let Some(first) = requests.first() else {
            return Err(ChoiceError::NothingToSend(
                "nothing to send: give a scenario, or at least one environment that is a curl command file or a HAR entry".into(),
            ));
        };
        for r in &requests[1..] {
            if r.method != first.method || r.path != first.path {
                notes.push(format!(
                    "the environments' requests differ ({} {} and {} {}); every run sends {} {}",
                    r.method, r.path, first.method, first.path, first.method, first.path
                ));
                break;
            }
        }
        let spec = FlowSpec::request(
            first,
            self.target.clone(),
            &self.expect_status,
            self.http.clone(),
            super::env::flag_transport(&requests),
        )
        .map_err(ChoiceError::Request)?;
        Ok((spec, notes))
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
    #[must_use]
    pub fn failed(&self) -> usize {
        self.runs.iter().filter(|r| !r.ok).count()
    }

    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self.failed() {
            0 => Outcome::Pass,
            n if n == self.runs.len() => Outcome::Fail,
            _ => Outcome::Flaky,
        }
    }

    /// The first failing step of the first failed run, with its message.
    #[must_use]
    pub fn first_failure(&self) -> Option<(usize, String)> {
        self.runs.iter().filter(|r| !r.ok).find_map(|r| {
            r.steps
                .iter()
                .enumerate()
                .find_map(|(i, s)| s.failure.clone().map(|m| (i, m)))
        })
    }

    #[must_use]
    pub fn unreachable(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(|r| r.unreachable)
    }

    #[must_use]
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
        // The scenario's `http.connection` holds here too: `new` replays every request of
        // every run on a fresh connection.
        let client = Client::new(crate::exec::client_config(
            &spec.plan.http,
            spec.plan.http.connection,
        ))
        .map_err(FlowError::Client)?;
        let plan = Arc::new(spec.plan.clone());
        let setup = run_setup(&plan, base, &client).await?;
        let step_names = spec.plan.request_steps().map(|s| s.name.clone()).collect();
        let setup_requests = crate::plan::flatten(&spec.plan.setup).count() as u64;
        Ok(Flow {
            spec,
            base: base.to_string(),
            client,
            setup,
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

    fn context(&self, env: &EnvSpec) -> Arc<RunContext> {
        Arc::new(
            RunContext::new(
                Arc::new(self.plan_for(env)),
                self.base.clone(),
                self.client.clone(),
                self.setup.clone(),
            )
            .with_verbose(self.verbose.clone())
            .with_verbose_env(self.verbose_env.borrow().clone()),
        )
    }

    /// Names the environment of the next runs in `-v` output.
    pub fn label_runs(&self, label: impl Into<String>) {
        if self.verbose.is_some() {
            *self.verbose_env.borrow_mut() = Some(label.into());
        }
    }

    /// Runs the flow `k` times, one after another, under `env`.
    pub async fn run(&self, env: &EnvSpec, k: usize) -> Runs {
        let ctx = self.context(env);
        let mut out = Runs {
            // Grown as runs complete: `k` comes from the command line.
            runs: Vec::with_capacity(k.min(64)),
            rec: Recorder::new(self.step_names.len()),
        };
        for _ in 0..k {
            let (run, rec, _) = self.once(&ctx).await;
            out.rec.merge(&rec);
            out.runs.push(run);
        }
        out
    }

    /// One run by a fresh virtual user (own cookie jar and connections), classified.
    async fn once(&self, ctx: &Arc<RunContext>) -> (Run, Recorder, OneUser) {
        let n = self.step_names.len();
        let mut user = OneUser::new(ctx.clone());
        let it = user.iterate().await;
        let rec = user.take_recorder();
        let mut steps = vec![StepRun::default(); n];
        for (i, s) in rec.steps.iter().enumerate().take(n) {
            steps[i].ran = s.requests > 0 || s.skipped > 0;
            if s.errors > 0 || s.skipped > 0 {
                steps[i].failure = s.error_messages.keys().next().cloned();
            }
        }
        for t in &it.trace {
            if let Some(st) = steps.get_mut(t.step) {
                st.status = t.status;
            }
        }
        let requests: u64 = rec.steps.iter().map(|s| s.requests).sum();
        let unreachable = requests > 0 && it.trace.iter().all(|t| t.status.is_none());
        self.requests.set(self.requests.get() + requests);
        let run = Run {
            ok: it.ok,
            steps,
            requests,
            unreachable,
        };
        (run, rec, user)
    }

    /// Runs the flow once under `env` and returns that run and the request step `step` would
    /// send (rendered with the run's captures): the material of a reproducing curl command.
    pub async fn witness(&self, env: &EnvSpec, step: usize) -> (Run, Option<Request>) {
        let ctx = self.context(env);
        let (run, _, user) = self.once(&ctx).await;
        (run, user.request_for(step))
    }
}

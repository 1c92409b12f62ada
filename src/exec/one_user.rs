//! One traced virtual user run through the flow one iteration at a time, outside the load
//! model: `breakdown` (warm or fresh connections, interleaved environments), `repro` and
//! `bisect` (a fresh user per run) and the setup phase all run a flow this way.

use super::scope::{Builtins, Scope, VarMap};
use super::step::{StepCtx, build_request};
use super::vu::{Local, Recording, RunContext, Traced, Vu, run_iteration};
use crate::aggregate::Recorder;
use std::sync::Arc;
use std::time::Instant;

/// One virtual user (id 1) of a run context, keeping its session (cookie jar, connections)
/// and captures across iterations, every request traced.
pub struct OneUser {
    local: Local,
    vu: Vu,
    set: tokio::task::LocalSet,
    recording: Recording,
}

/// One iteration of a `OneUser`: whether it passed, when it ran, and every request (and
/// redirect hop) it sent, in order.
#[derive(Debug, Clone)]
pub struct OneRun {
    pub ok: bool,
    pub started: Instant,
    pub ended: Instant,
    pub trace: Vec<Traced>,
}

impl OneUser {
    /// A traced user of `ctx`'s plan, recording its main steps.
    pub fn new(ctx: Arc<RunContext>) -> OneUser {
        let steps = ctx.plan.request_steps().count();
        let vu = Vu::new(1, &ctx);
        OneUser {
            local: Local::new(ctx, steps, true),
            vu,
            set: tokio::task::LocalSet::new(),
            recording: Recording::Main,
        }
    }

    /// The setup phase's user (id 0): runs the plan's `setup` steps, untraced.
    pub(super) fn setup(ctx: Arc<RunContext>) -> OneUser {
        let steps = crate::plan::flatten(&ctx.plan.setup).count();
        let vu = Vu::new(0, &ctx);
        OneUser {
            local: Local::new(ctx, steps, false),
            vu,
            set: tokio::task::LocalSet::new(),
            recording: Recording::Setup,
        }
    }

    /// Runs the flow once and returns what it sent.
    pub async fn iterate(&mut self) -> OneRun {
        let started = Instant::now();
        let ok = self
            .set
            .run_until(run_iteration(
                &self.local,
                &mut self.vu,
                self.recording,
                None,
            ))
            .await;
        let ended = Instant::now();
        let trace = self
            .local
            .trace
            .as_ref()
            .map(|t| std::mem::take(&mut *t.borrow_mut()))
            .unwrap_or_default();
        OneRun {
            ok,
            started,
            ended,
            trace,
        }
    }

    /// Everything recorded since the user was made or this was last called.
    pub fn take_recorder(&mut self) -> Recorder {
        let steps = self.local.rec.borrow().steps.len();
        self.local.rec.replace(Recorder::new(steps))
    }

    /// The request step `step` (plan order) would send now, rendered with this user's
    /// captures: the material of a reproducing curl command. `None` when it does not render.
    pub fn request_for(&self, step: usize) -> Option<crate::http::Request> {
        let ctx = &self.local.shared;
        let plan = &ctx.plan;
        let s = plan.request_steps().nth(step)?;
        let builtins = Builtins::new(self.vu.id, 0);
        let scope = Scope {
            captures: &self.vu.captures,
            row: None,
            builtins: &builtins,
            env: &self.vu.env,
            shared: &ctx.setup_vars,
        };
        let step_ctx = StepCtx {
            base: &ctx.base,
            env: &plan.env,
            flags: &plan.flags,
            env_is_plan: true,
        };
        build_request(s, &scope, &step_ctx).ok()
    }

    /// The user's captures (the setup phase's become every user's variables).
    pub(super) fn into_captures(self) -> VarMap {
        self.vu.captures
    }
}

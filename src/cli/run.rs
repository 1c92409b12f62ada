//! `sonde run`: args + scenario → `Plan` → (embedded demo if no target) → setup → load →
//! `Summary` → table/JSON/files → exit code. The pipeline reads top to bottom here; what a
//! finished run says beyond its numbers (notes, "nothing answered") is `exec::outcome`'s.

use super::args::{self, HttpArgs, OutputArgs, VerboseArgs};
use super::{Error, Exit, gate_exit, output};
use crate::aggregate::summary::{Measured, RunInfo, TargetInfo};
use crate::aggregate::{IntervalPoint, Recorder, Summary};
use crate::exec::outcome::{EARLY_STOP_AFTER, load_notes, no_response, run_info};
use crate::exec::{self, RunContext, RunOptions};
use crate::export::live::Live;
use crate::http::{Client, ConnectionMode};
use crate::plan::{HttpOptions, LoadModel, Plan};
use crate::shard::Sharding;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (YAML). Omit it with --url for a one-request scenario.
    pub scenario: Option<PathBuf>,
    /// One-URL mode (like hey/oha/wrk): the scenario is this single request.
    #[arg(long, conflicts_with = "scenario")]
    pub url: Option<String>,
    /// Method for --url (as curl's -X; `--method` works too).
    #[arg(
        short = 'X',
        long = "request",
        visible_alias = "method",
        default_value = "GET",
        requires = "url"
    )]
    pub method: String,
    /// Header for --url, as 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", requires = "url")]
    pub headers: Vec<String>,
    /// Request body for --url (curl's -d). Without --url, `-d 2m` is read as --duration.
    #[arg(short = 'd', long = "data")]
    pub data: Option<String>,
    /// Base URL; overrides the scenario's `target`. Also allows its host (see --allow-host).
    #[arg(long)]
    pub target: Option<String>,
    /// Named environment of the scenario.
    #[arg(long)]
    pub env: Option<String>,
    /// Closed model: concurrent virtual users.
    #[arg(long)]
    pub vus: Option<u32>,
    /// Open model: iterations per second (`200/s`, `12000/m`).
    #[arg(long)]
    pub rate: Option<String>,
    /// Open model: most concurrent virtual users.
    #[arg(long = "max-vus")]
    pub max_vus: Option<u32>,
    /// How long to run (`30s`, `2m`).
    #[arg(long, short = 'z')]
    pub duration: Option<String>,
    /// How long in-flight requests may finish after the end or an interrupt (default 30s, as
    /// k6's gracefulStop); what is still in flight then is cancelled and counted as failed.
    #[arg(long = "graceful-stop", value_name = "DURATION")]
    pub graceful_stop: Option<String>,
    /// Total iterations (closed model), shared by all VUs.
    #[arg(long, short = 'n')]
    pub iterations: Option<u64>,
    /// Threshold, e.g. 'profile: p(95) < 300ms' (repeatable).
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub verbose: VerboseArgs,
    /// `reuse`: keep-alive, connections pooled per virtual user (default). `new`: a fresh
    /// connection (DNS, TCP, TLS) for every request, setup steps and redirect hops included,
    /// as oha's --disable-keepalive; HTTP/1.1 requests then say `Connection: close` (unless
    /// the request sets its own Connection header) so the server closes first and the
    /// TIME_WAIT sockets stay on its side. TLS sessions are resumed as a returning browser
    /// does (the result counts resumed handshakes); see --no-tls-resumption.
    #[arg(long, value_enum, value_name = "MODE")]
    pub connection: Option<ConnectionArg>,
    /// Same as --connection new (oha's and hey's name).
    #[arg(long = "disable-keepalive", conflicts_with = "connection")]
    pub disable_keepalive: bool,
    /// Every new TLS connection does a full handshake: no session tickets are kept (by
    /// default they are, in memory, as a returning browser and oha do).
    #[arg(long = "no-tls-resumption")]
    pub no_tls_resumption: bool,
    /// Do not pause a virtual user for a 429's Retry-After (deliberate rate-limit tests).
    #[arg(long = "ignore-retry-after")]
    pub ignore_retry_after: bool,
    /// Slowest requests kept per step, with their trace and request ids (0: none, at most
    /// 1000).
    #[arg(long, value_name = "N", default_value_t = crate::trace::DEFAULT_EXEMPLARS,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub exemplars: u32,
    /// Link each exemplar in reports: a URL with `{trace_id}` (or `{request_id}`), e.g.
    /// 'https://tempo.example/trace/{trace_id}'.
    #[arg(long = "trace-url", value_name = "TEMPLATE")]
    pub trace_url: Option<String>,
    /// Virtual users sharing one HTTP/2 connection, as h2load's -m: `--vus 500
    /// --streams-per-connection 10` holds 50 connections with up to 10 concurrent streams each
    /// (virtual users of one load thread share). HTTPS targets only (HTTP/2 is negotiated with
    /// ALPN); a server that answers with HTTP/1.1 fails each request. Default 1: each virtual
    /// user its own connection.
    #[arg(long = "streams-per-connection", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::plan::MAX_STREAMS_PER_CONNECTION)))]
    pub streams_per_connection: Option<u32>,
    /// Load threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run shard K of N (from 0) of the plan; also from SONDE_SHARD, or JOB_COMPLETION_INDEX
    /// with SONDE_SHARDS. Merge the shards' --out files with `sonde merge`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Start the load at this wall-clock time (RFC 3339, e.g. 2026-12-01T10:00:00Z, or +30s).
    #[arg(long = "start-at")]
    pub start_at: Option<String>,
    /// Print the (shard's) plan and send nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// `--out prometheus=URL`, taken out of `outs`.
    #[arg(skip)]
    pub prometheus: Option<url::Url>,
}

/// `--connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConnectionArg {
    /// Keep-alive: connections pooled per virtual user.
    Reuse,
    /// A fresh connection for every request.
    New,
}

/// `--connection` / `--disable-keepalive`; absent: the scenario's `http.connection` (reuse).
fn connection_mode(a: &RunArgs) -> ConnectionMode {
    match (a.connection, a.disable_keepalive) {
        (Some(ConnectionArg::New), _) | (None, true) => ConnectionMode::New,
        (Some(ConnectionArg::Reuse) | None, _) => ConnectionMode::Reuse,
    }
}

fn http_options(a: &RunArgs) -> Result<HttpOptions, Error> {
    Ok(HttpOptions {
        connection: connection_mode(a),
        tls_resumption: !a.no_tls_resumption,
        honor_retry_after: !a.ignore_retry_after,
        trace: crate::trace::TraceOptions {
            context: !a.http.no_trace_context,
            exemplars: a.exemplars,
            ..crate::trace::TraceOptions::default()
        },
        streams_per_connection: a.streams_per_connection.unwrap_or(1),
        ..a.http.http_options()?
    })
}

fn graceful_stop(a: &RunArgs) -> Result<Option<Duration>, Error> {
    a.graceful_stop
        .as_deref()
        .map(|d| args::duration(d, "graceful-stop"))
        .transpose()
}

/// Builds the plan from the scenario file or the one-URL flags.
fn build_plan(a: &RunArgs) -> Result<Plan, Error> {
    let mut duration = a
        .duration
        .as_deref()
        .map(|d| args::duration(d, "duration"))
        .transpose()?;
    if a.url.is_none()
        && let Some(d) = &a.data
    {
        match crate::scenario::parse_duration(d) {
            Ok(d) if duration.is_none() => duration = Some(d),
            _ => {
                return Err(Error::usage(format!(
                    "-d/--data `{d}` is a request body and needs --url (for a duration use --duration)"
                )));
            }
        }
    }
    let rate = a
        .rate
        .as_deref()
        .map(|r| {
            crate::scenario::parse_rate(r).map_err(|e| Error::usage(format!("--rate `{r}`: {e}")))
        })
        .transpose()?;
    let target = a
        .target
        .as_deref()
        .map(|t| args::url(t, "target"))
        .transpose()?;
    if let Some(url) = &a.url {
        return url_plan(a, url, duration, rate);
    }
    let Some(path) = &a.scenario else {
        return Err(Error::usage(
            "give a scenario file or --url (see `sonde run --help`)",
        ));
    };
    let overrides = crate::scenario::Overrides {
        target,
        env: a.env.clone(),
        vus: a.vus,
        rate,
        max_vus: a.max_vus,
        duration,
        iterations: a.iterations,
        thresholds: a.thresholds.clone(),
        graceful_stop: graceful_stop(a)?,
        http: Some(http_options(a)?),
    };
    Ok(crate::scenario::load(path, &overrides)?)
}

/// One-URL mode: the request from the flags, and everything else (load model, caps,
/// thresholds, transport options) through the scenario loader, so `--url` accepts exactly
/// what a scenario file accepts, with the same messages.
fn url_plan(
    a: &RunArgs,
    raw: &str,
    duration: Option<Duration>,
    rate: Option<f64>,
) -> Result<Plan, Error> {
    // The one-URL defaults (as hey and oha): one pass per VU, or 10 s of an open model.
    let (duration, iterations, max_vus) = if rate.is_some() {
        (
            duration.or(Some(Duration::from_secs(10))),
            a.iterations,
            a.max_vus.or(a.vus).or(Some(100)),
        )
    } else {
        let iterations = match (duration, a.iterations) {
            (None, None) => Some(u64::from(a.vus.unwrap_or(1))),
            (_, it) => it,
        };
        (duration, iterations, a.max_vus)
    };
    let overrides = crate::scenario::Overrides {
        target: None,
        env: None,
        vus: if rate.is_some() {
            None
        } else {
            a.vus.or(Some(1))
        },
        rate,
        max_vus,
        duration,
        iterations,
        thresholds: a.thresholds.clone(),
        graceful_stop: graceful_stop(a)?,
        http: Some(http_options(a)?),
    };
    // A one-step scenario named like the --url plan's step, so thresholds name `request`.
    let skeleton = "name: url\nsteps:\n  - name: request\n    request: { url: / }\n";
    let checked = crate::scenario::load_str(skeleton, std::path::Path::new("--url"), &overrides)?;
    let req = crate::plan::single::SingleRequest {
        method: a.method.clone(),
        url: raw.to_string(),
        headers: a.headers.clone(),
        cookies: Vec::new(),
        body: a.data.clone(),
    };
    let mut plan = crate::plan::single::plan(&req, checked.load.clone(), checked.http.clone())
        .map_err(Error::Plan)?;
    plan.max_duration = checked.max_duration;
    plan.graceful_stop = checked.graceful_stop;
    plan.thresholds = checked.thresholds;
    Ok(plan)
}

/// The `target` line of a `--url` run: the URL as given, path and query kept (the base
/// replaced when `--target` moved it), secrets redacted. `http://h/api/x?page=2`, not `http://h`.
fn url_target(raw: &str, base: &str) -> String {
    let Ok(u) = url::Url::parse(raw) else {
        return crate::redact::redact_url(base);
    };
    let tail = &u[url::Position::BeforePath..url::Position::AfterQuery];
    crate::redact::redact_url(&format!("{}{tail}", base.trim_end_matches('/')))
}

/// Above 1, `--streams-per-connection` (`http.streams_per_connection`) shares HTTP/2
/// connections, which sonde negotiates only over TLS (ALPN): a plain-HTTP target or step URL
/// would quietly get one request per connection, so it is refused before anything is sent.
fn check_streams(plan: &Plan) -> Result<(), Error> {
    let n = plan.http.streams_per_connection;
    if n <= 1 {
        return Ok(());
    }
    if plan.http.connection == ConnectionMode::New {
        return Err(Error::usage(format!(
            "--streams-per-connection {n} (http.streams_per_connection) shares each connection between virtual users, and --connection new (http.connection: new) opens a fresh one for every request: choose one"
        )));
    }
    let mut plain: Vec<String> = Vec::new();
    if matches!(plan.target, crate::plan::TargetSpec::EmbeddedDemo { .. }) {
        plain.push("the embedded demo (no target given) speaks plain http://".into());
    }
    for c in plan.contacts() {
        if let Some(o) = &c.origin
            && o.scheme() == "http"
        {
            plain.push(format!(
                "{} is {}",
                c.what,
                crate::redact::redact_url(o.as_str())
            ));
        }
    }
    if plain.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--streams-per-connection {n} (http.streams_per_connection) applies only to HTTP/2, which sonde negotiates over TLS (https://); {}. Use an https:// target or leave it at 1",
        plain.join("; ")
    )))
}

/// The allow-list of this run: `--allow-host`, `--target` and `--url` are on the command line;
/// a scenario's own `target` and step URLs are not.
fn policy(a: &RunArgs) -> Result<crate::http::HostPolicy, Error> {
    let mut named = Vec::new();
    for t in [&a.target, &a.url].into_iter().flatten() {
        if let Ok(u) = url::Url::parse(t) {
            named.push(u);
        }
    }
    a.http.host_policy(named.iter())
}

pub async fn run(mut a: RunArgs) -> Result<Exit, Error> {
    let (files, prometheus) = crate::export::split_outs(&a.output.outs).map_err(Error::Usage)?;
    a.output.outs = files;
    a.prometheus = prometheus.into_iter().next();
    crate::report::check_outputs(&a.output.outs).map_err(Error::OutputPath)?;
    if let Some(t) = &a.trace_url {
        check_trace_url(t)?;
    }
    let mut plan = build_plan(&a)?;
    // An explicit `--connection reuse` wins over the scenario's `http.connection: new` (the
    // CLI's other options only apply when they differ from the defaults).
    if a.connection == Some(ConnectionArg::Reuse) {
        plan.http.connection = ConnectionMode::Reuse;
    }
    // Likewise an explicit `--streams-per-connection 1` over the scenario's sharing.
    if let Some(n) = a.streams_per_connection {
        plan.http.streams_per_connection = n;
    }
    check_streams(&plan)?;
    plan.http.allow = Arc::new(policy(&a)?);
    if let Some(u) = &a.prometheus {
        // The receiver passes the same allow-list as the target, before anything is sent.
        plan.http.allow.check_url(u).map_err(|e| {
            let u = crate::redact::redact_url(u.as_str());
            Error::usage(format!("--out prometheus={u}: {e}"))
        })?;
    }
    let hosts_ok = plan.check_hosts(&plan.http.allow);
    if !a.dry_run {
        hosts_ok.clone().map_err(Error::Plan)?;
    }
    let env = |k: &str| std::env::var(k).ok();
    let (sharding, plan) = Sharding::prepare(plan, a.shard.as_deref(), a.start_at.as_deref(), &env)
        .map_err(Error::Shard)?;
    if a.dry_run {
        print!("{}", sharding.description);
        print!("{}", super::target::describe_contacts(&plan));
        eprintln!("dry run: nothing was sent");
        hosts_ok.map_err(Error::Plan)?;
        return Ok(Exit::Ok);
    }
    let plan = Arc::new(plan);
    // The pusher starts before setup sends anything, so a receiver it cannot use fails the run
    // while nothing has been sent yet.
    let push = match &a.prometheus {
        Some(url) => Some(start_push(url, &plan, &sharding)?),
        None => None,
    };
    // Listen for SIGTERM before the demo starts and setup runs: a stop then still ends the
    // run the documented way (exit 4, results written) instead of killing it at once.
    let signals = super::signals::Signals::install();

    let target = super::target::start(&plan).await?;
    let mut info = target.info.clone();
    if let Some(raw) = &a.url {
        info.url = url_target(raw, &target.base);
    }
    let result = run_against(
        &a,
        plan.clone(),
        &target.base,
        (info, target.notes.clone()),
        &sharding,
        (signals, push),
    )
    .await;
    target.stop().await;
    result
}

/// Setup, the load, the summary, the outputs and the exit code, against a started target.
async fn run_against(
    a: &RunArgs,
    plan: Arc<Plan>,
    base: &str,
    (target, notes): (TargetInfo, Vec<String>),
    sharding: &Sharding,
    (watch, push): (super::signals::Signals, Option<Live>),
) -> Result<Exit, Error> {
    // Setup steps use the run's connection mode too: with `new`, every request the run sends
    // opens its own connection.
    let client = Client::new(exec::client_config(&plan.http, plan.http.connection))?;
    let setup_vars = exec::run_setup(&plan, base, &client).await?;
    let ctx = Arc::new(
        RunContext::new(plan.clone(), base.to_string(), client, setup_vars)
            .with_verbose(a.verbose.printer()),
    );
    let signals = interrupt_on_signals(ctx.clone(), watch);
    let clock = sharding.wait().await?;
    let opts = RunOptions {
        threads: a.threads.unwrap_or_else(|| RunOptions::default().threads),
        grace: plan.graceful_stop,
        ..RunOptions::default()
    };
    let mut monitor = Monitor::new(a.output.quiet, &plan, ctx.clone());
    let res = exec::run_load(ctx.clone(), &opts, |p, so_far| {
        if let Some(push) = &push {
            push.offer(&plan, p.t, so_far);
        }
        monitor.interval(p, so_far);
    })
    .await?;
    monitor.finish();
    signals.abort();

    let info = RunInfo {
        target,
        notes,
        started_at: Some(res.started_at),
        interrupted: res.interrupted,
        ..run_info(&plan)
    };
    let measured = Measured {
        names: &res.names,
        recorder: &res.recorder,
        seconds: res.elapsed.as_secs_f64(),
    };
    let mut summary = Summary::new(&measured, info);
    summary.trace_url = a.trace_url.clone();
    if let Some(push) = push {
        let (note, warned) = push
            .finish(&plan, &res.names, &res.recorder, res.elapsed)
            .await;
        if warned {
            eprintln!("warning: {note}");
        }
        summary.notes.push(note);
    }
    summary.series = res.series;
    summary.shard = sharding.info(clock);
    summary.notes.extend(monitor.stopped_early);
    summary
        .notes
        .extend(load_notes(&summary, &plan, res.elapsed, opts.grace));
    summary.thresholds = crate::gate::eval::evaluate(&plan.thresholds, &summary);

    output::publish(&summary, a.output.format, &a.output.outs)?;
    exit_for(&summary, sharding)
}

/// Ctrl-C and SIGTERM (how CI runners and Kubernetes stop a job) both stop the load, let
/// in-flight requests finish within the grace period and write every output, marked
/// interrupted (exit 4). A second signal quits at once.
fn interrupt_on_signals(
    ctx: Arc<RunContext>,
    mut watch: super::signals::Signals,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(sig) = watch.next().await {
            eprintln!(
                "\ninterrupted ({sig}): finishing in-flight requests, then writing results (again to quit at once)"
            );
            ctx.interrupt();
            if let Some(sig) = watch.next().await {
                std::process::exit(super::signals::exit_code(sig));
            }
        }
    })
}

/// The exit code of a finished run: interrupted, nothing answered (an error), or the gate's.
fn exit_for(summary: &Summary, sharding: &Sharding) -> Result<Exit, Error> {
    if summary.interrupted {
        return Ok(Exit::Interrupted);
    }
    if let Some(why) = no_response(summary, sharding.spec.is_some()) {
        return Err(Error::Unreachable(why));
    }
    let verdict = crate::gate::verdict(summary, None);
    if !verdict.passed && sharding.spec.is_some() {
        // A shard measures part of the load; `sonde merge` gates the whole.
        eprintln!("shard: failures recorded; the gate is decided by `sonde merge`");
        return Ok(Exit::Ok);
    }
    Ok(gate_exit(&verdict))
}

/// Watches the load interval by interval: the progress line, the early stop when nothing is
/// reachable, and `abort_on_fail` thresholds. Says why it stopped the run, if it did.
struct Monitor {
    bar: Option<ProgressBar>,
    ctx: Arc<RunContext>,
    plan: Arc<Plan>,
    names: Vec<String>,
    open_model: bool,
    watch_abort: bool,
    total_err: u64,
    total_dropped: u64,
    reach_checked: bool,
    aborted: bool,
    started: std::time::Instant,
    /// Why the run stopped before its end (notes for the summary).
    stopped_early: Vec<String>,
}

impl Monitor {
    fn new(quiet: bool, plan: &Arc<Plan>, ctx: Arc<RunContext>) -> Monitor {
        Monitor {
            bar: progress_bar(quiet, plan),
            ctx,
            plan: plan.clone(),
            names: plan.request_steps().map(|s| s.name.clone()).collect(),
            open_model: matches!(plan.load, LoadModel::Open { .. }),
            watch_abort: plan.thresholds.iter().any(|t| t.abort_on_fail),
            total_err: 0,
            total_dropped: 0,
            reach_checked: false,
            aborted: false,
            started: std::time::Instant::now(),
            stopped_early: Vec::new(),
        }
    }

    fn interval(&mut self, p: &IntervalPoint, so_far: &Recorder) {
        self.total_err += p.errors;
        self.total_dropped += p.dropped;
        self.progress(p, so_far);
        if !self.reach_checked && p.t >= EARLY_STOP_AFTER.as_secs_f64() {
            self.reach_checked = true;
            self.stop_if_unreachable(p.t, so_far);
        }
        if self.watch_abort && !self.aborted {
            self.abort_if_failed(so_far);
        }
    }

    fn progress(&self, p: &IntervalPoint, so_far: &Recorder) {
        let Some(b) = &self.bar else { return };
        // p95 of every request so far (the steps' latency histograms merged).
        let mut so_far_latency = crate::aggregate::Hist::default();
        for st in &so_far.steps {
            so_far_latency.merge(&st.latency);
        }
        b.set_position(p.t as u64);
        // The open model drops arrivals that find every VU busy: the one number that says
        // the load asked for is not the load sent.
        let dropped = if self.open_model || self.total_dropped > 0 {
            format!(", {} dropped", self.total_dropped)
        } else {
            String::new()
        };
        b.set_message(format!(
            "{:.0} req/s now, {} errors{dropped}, p95 so far {:.1} ms",
            p.requests as f64,
            self.total_err,
            so_far_latency.quantile_ms(0.95)
        ));
    }

    /// Early stop: when every request of the first seconds failed before any response
    /// (closed port, unresolvable name, refused by the allow-list), the rest of the run would
    /// only repeat that; stop and say so (exit 3).
    fn stop_if_unreachable(&mut self, t: f64, so_far: &Recorder) {
        if let Some(note) = crate::exec::outcome::unreachable_so_far(t, so_far) {
            self.stopped_early.push(note);
            self.ctx.request_stop();
        }
    }

    fn abort_if_failed(&mut self, so_far: &Recorder) {
        let elapsed = self.started.elapsed();
        if let Some(note) =
            crate::exec::outcome::threshold_abort(&self.plan, &self.names, so_far, elapsed)
        {
            self.aborted = true;
            // The abort note comes first, as before the early-stop one.
            self.stopped_early.insert(0, note);
            self.ctx.request_stop();
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `--out prometheus=URL`: the live push, labelled with the run and shard, over a client with
/// the run's TLS options and allow-list.
fn start_push(url: &url::Url, plan: &Plan, sharding: &Sharding) -> Result<Live, Error> {
    let labels = crate::export::prometheus::RunLabels {
        scenario: plan.name.clone(),
        env: plan.env_name.clone().unwrap_or_default(),
        shard: sharding
            .spec
            .map(|s| format!("{}/{}", s.index, s.count))
            .unwrap_or_default(),
        run_id: run_id(sharding),
    };
    let base = exec::client_config(&plan.http, ConnectionMode::Reuse);
    Live::start(url, base, labels).map_err(Error::Usage)
}

/// The `run_id` label: `SONDE_RUN_ID` when set; for a shard, one id all shards of the run
/// share (the unsplit plan's hash and the start time), so one query selects the whole run;
/// otherwise a fresh random id.
fn run_id(sharding: &Sharding) -> String {
    if let Ok(id) = std::env::var("SONDE_RUN_ID")
        && !id.is_empty()
    {
        return id;
    }
    match (&sharding.spec, &sharding.start) {
        (Some(_), Some(start)) => format!(
            "{}-{}",
            sharding.hash.get(..12).unwrap_or(&sharding.hash),
            start.rfc3339()
        ),
        (Some(_), None) => sharding
            .hash
            .get(..16)
            .unwrap_or(&sharding.hash)
            .to_string(),
        (None, _) => crate::export::prometheus::new_run_id(),
    }
}

fn progress_bar(quiet: bool, plan: &Plan) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let len = match &plan.load {
        LoadModel::Closed {
            duration: Some(d), ..
        } => d.as_secs(),
        LoadModel::Open { duration, .. } => duration.as_secs(),
        LoadModel::Closed { .. } => plan.max_duration.as_secs(),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// `--trace-url` must be an http(s) URL template naming `{trace_id}` or `{request_id}`.
pub(crate) fn check_trace_url(t: &str) -> Result<(), Error> {
    let named = t.contains("{trace_id}") || t.contains("{request_id}");
    let filled = t.replace("{trace_id}", "0").replace("{request_id}", "0");
    let ok_url = url::Url::parse(&filled).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if named && ok_url {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "--trace-url `{t}`: expected an http(s) URL with {{trace_id}} or {{request_id}},              e.g. 'https://tempo.example/trace/{{trace_id}}'"
        )))
    }
}

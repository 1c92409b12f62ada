//! `sonde run`: args + scenario → `Plan` → (embedded demo if no target) → setup → load →
//! `Summary` → table/JSON/files → exit code. The pipeline reads top to bottom here.

use super::{CliError, Exit};
use crate::aggregate::Summary;
use crate::aggregate::summary::{LoadInfo, TargetInfo};
use crate::exec::{self, RunOptions, Shared, Stop};
use crate::http::{Client, ConnectionMode};
use crate::plan::{HttpOptions, LoadModel, Plan};
use crate::report::{self, table::TableReport};
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
    /// Method for --url.
    #[arg(short = 'X', long = "method", default_value = "GET", requires = "url")]
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
    /// Allow requests to this host besides loopback: a name, an IP or a CIDR block
    /// (repeatable). A scenario's own hosts (target, absolute step URLs, redirects) are
    /// refused unless named here, in --target or in --url.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
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
    /// Write the result to FILE; the extension picks the format (json, txt). Repeatable.
    /// `prometheus=URL` pushes live metrics with Prometheus remote-write instead (e.g.
    /// prometheus=http://127.0.0.1:9090/api/v1/write).
    #[arg(long = "out", short = 'o')]
    pub outs: Vec<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutFormat,
    /// No progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Do not verify TLS certificates (stated in every report).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Print exchanges on stderr as curl -v does: request line, headers and body excerpt,
    /// response status, headers and body excerpt, secrets redacted. The first
    /// --verbose-limit exchanges, then failed ones only, up to as many again.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// With -v: how many exchanges to show, then how many failed ones.
    #[arg(long, value_name = "N", default_value_t = crate::exec::verbose::DEFAULT_LIMIT, requires = "verbose")]
    pub verbose_limit: u64,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Whole-request timeout, body included (`30s`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Do not pause a virtual user for a 429's Retry-After (deliberate rate-limit tests).
    #[arg(long = "ignore-retry-after")]
    pub ignore_retry_after: bool,
    /// Send no W3C `traceparent` header (sent by default: a fresh trace id per iteration).
    #[arg(long = "no-trace-context")]
    pub no_trace_context: bool,
    /// Slowest requests kept per step, with their trace and request ids (0: none, at most
    /// 1000).
    #[arg(long, value_name = "N", default_value_t = crate::trace::DEFAULT_EXEMPLARS,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub exemplars: u32,
    /// Link each exemplar in reports: a URL with `{trace_id}` (or `{request_id}`), e.g.
    /// 'https://tempo.example/trace/{trace_id}'.
    #[arg(long = "trace-url", value_name = "TEMPLATE")]
    pub trace_url: Option<String>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    Table,
    Json,
}

fn parse_dur(s: &str, what: &str) -> Result<Duration, CliError> {
    crate::scenario::parse_duration(s)
        .map_err(|e| CliError::invalid(format!("--{what} `{s}`: {e}")))
}

fn http_options(a: &RunArgs) -> Result<HttpOptions, CliError> {
    let mut h = HttpOptions {
        insecure: a.insecure,
        cacert: a.cacert.clone(),
        honor_retry_after: !a.ignore_retry_after,
        trace: crate::trace::TraceOptions {
            context: !a.no_trace_context,
            exemplars: a.exemplars,
            ..crate::trace::TraceOptions::default()
        },
        ..HttpOptions::default()
    };
    if let Some(t) = &a.timeout {
        h.request_timeout = parse_dur(t, "timeout")?;
    }
    Ok(h)
}

fn graceful_stop(a: &RunArgs) -> Result<Option<Duration>, CliError> {
    a.graceful_stop
        .as_deref()
        .map(|d| {
            crate::scenario::parse_duration(d)
                .map_err(|e| CliError::invalid(format!("--graceful-stop `{d}`: {e}")))
        })
        .transpose()
}

/// Builds the plan from the scenario file or the one-URL flags.
fn build_plan(a: &RunArgs) -> Result<Plan, CliError> {
    let mut duration = a
        .duration
        .as_deref()
        .map(|d| parse_dur(d, "duration"))
        .transpose()?;
    if a.url.is_none()
        && let Some(d) = &a.data
    {
        match crate::scenario::parse_duration(d) {
            Ok(d) if duration.is_none() => duration = Some(d),
            _ => {
                return Err(CliError::invalid(format!(
                    "-d/--data `{d}` is a request body and needs --url (for a duration use --duration)"
                )));
            }
        }
    }
    let rate = a
        .rate
        .as_deref()
        .map(|r| {
            crate::scenario::parse_rate(r)
                .map_err(|e| CliError::invalid(format!("--rate `{r}`: {e}")))
        })
        .transpose()?;
    let target = a
        .target
        .as_deref()
        .map(|t| url::Url::parse(t).map_err(|e| CliError::invalid(format!("--target `{t}`: {e}"))))
        .transpose()?;
    if let Some(url) = &a.url {
        return url_plan(a, url, duration, rate);
    }
    let Some(path) = &a.scenario else {
        return Err(CliError::invalid(
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
    crate::scenario::load(path, &overrides).map_err(CliError::invalid)
}

/// One-URL mode: the request from the flags, and everything else (load model, caps,
/// thresholds, transport options) through the scenario loader, so `--url` accepts exactly
/// what a scenario file accepts, with the same messages.
fn url_plan(
    a: &RunArgs,
    raw: &str,
    duration: Option<Duration>,
    rate: Option<f64>,
) -> Result<Plan, CliError> {
    // The one-URL defaults (as hey and oha): one pass per VU, or 10 s of an open model.
    let (duration, iterations, max_vus) = match rate {
        Some(_) => (
            duration.or(Some(Duration::from_secs(10))),
            a.iterations,
            a.max_vus.or(a.vus).or(Some(100)),
        ),
        None => {
            let iterations = match (duration, a.iterations) {
                (None, None) => Some(u64::from(a.vus.unwrap_or(1))),
                (_, it) => it,
            };
            (duration, iterations, a.max_vus)
        }
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
    let checked = crate::scenario::load_str(skeleton, std::path::Path::new("--url"), &overrides)
        .map_err(CliError::invalid)?;
    let req = crate::plan::single::SingleRequest {
        method: a.method.clone(),
        url: raw.to_string(),
        headers: a.headers.clone(),
        cookies: Vec::new(),
        body: a.data.clone(),
    };
    let mut plan = crate::plan::single::plan(&req, checked.load.clone(), checked.http.clone())
        .map_err(CliError::invalid)?;
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

/// The allow-list of this run: `--allow-host`, `--target` and `--url` are on the command line;
/// a scenario's own `target` and step URLs are not.
fn policy(a: &RunArgs) -> Result<crate::http::HostPolicy, CliError> {
    let mut named = Vec::new();
    for t in [&a.target, &a.url].into_iter().flatten() {
        if let Ok(u) = url::Url::parse(t) {
            named.push(u);
        }
    }
    super::target::host_policy(&a.allow_hosts, named.iter())
}

fn load_info(plan: &Plan) -> LoadInfo {
    let st = |s: &[crate::plan::Stage]| {
        s.iter()
            .map(|s| (s.duration.as_secs_f64(), s.target))
            .collect::<Vec<_>>()
    };
    match &plan.load {
        LoadModel::Closed {
            vus,
            duration,
            iterations,
            stages,
        } => LoadInfo {
            model: "closed".into(),
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
            model: "open".into(),
            rate_per_s: Some(*rate),
            max_vus: Some(*max_vus),
            duration_s: Some(duration.as_secs_f64()),
            stages: st(stages),
            ..LoadInfo::default()
        },
    }
}

pub async fn run(mut a: RunArgs) -> Result<Exit, CliError> {
    let (files, prometheus) = crate::export::split_outs(&a.outs).map_err(CliError::invalid)?;
    a.outs = files;
    a.prometheus = prometheus.into_iter().next();
    crate::report::check_outputs(&a.outs).map_err(CliError::invalid)?;
    if let Some(t) = &a.trace_url {
        check_trace_url(t)?;
    }
    let mut plan = build_plan(&a)?;
    plan.http.allow = Arc::new(policy(&a)?);
    if let Some(u) = &a.prometheus {
        // The receiver passes the same allow-list as the target, before anything is sent.
        plan.http
            .allow
            .check_url(u)
            .map_err(|e| CliError::invalid(format!("--out prometheus={u}: {e}")))?;
    }
    let hosts_ok = plan.check_hosts(&plan.http.allow);
    if !a.dry_run {
        hosts_ok.clone().map_err(CliError::invalid)?;
    }
    let env = |k: &str| std::env::var(k).ok();
    let (sharding, plan) = Sharding::prepare(plan, a.shard.as_deref(), a.start_at.as_deref(), &env)
        .map_err(CliError::invalid)?;
    if a.dry_run {
        print!("{}", sharding.description);
        print!("{}", super::target::describe_contacts(&plan));
        eprintln!("dry run: nothing was sent");
        hosts_ok.map_err(CliError::invalid)?;
        return Ok(Exit::Ok);
    }
    let plan = Arc::new(plan);
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
        info,
        target.notes.clone(),
        &sharding,
        signals,
    )
    .await;
    target.stop().await;
    result
}

async fn run_against(
    a: &RunArgs,
    plan: Arc<Plan>,
    base: &str,
    target: TargetInfo,
    notes: Vec<String>,
    sharding: &Sharding,
    mut watch: super::signals::Signals,
) -> Result<Exit, CliError> {
    let client = Client::new(exec::client_config(&plan.http, ConnectionMode::Reuse))
        .map_err(CliError::invalid)?;

    let setup_vars = exec::run_setup(&plan, base, &client)
        .await
        .map_err(CliError::runtime)?;

    let stop = Arc::new(Stop::default());
    let shared = Arc::new(
        Shared::new(plan.clone(), base.to_string(), client, setup_vars, stop)
            .with_verbose(crate::exec::verbose::from_flags(a.verbose, a.verbose_limit)),
    );
    // Ctrl-C and SIGTERM (how CI runners and Kubernetes stop a job) both stop the load, let
    // in-flight requests finish within the grace period and write every output, marked
    // interrupted (exit 4). A second signal quits at once.
    let signals = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some(sig) = watch.next().await {
                eprintln!(
                    "\ninterrupted ({sig}): finishing in-flight requests, then writing results (again to quit at once)"
                );
                shared.interrupt();
                if let Some(sig) = watch.next().await {
                    std::process::exit(super::signals::exit_code(sig));
                }
            }
        })
    };

    let clock = sharding.wait().await.map_err(CliError::runtime)?;
    let bar = progress_bar(a.quiet, &plan);
    let mut total_err = 0u64;
    let mut total_dropped = 0u64;
    let open_model = matches!(plan.load, LoadModel::Open { .. });
    let opts = RunOptions {
        threads: a.threads.unwrap_or_else(|| RunOptions::default().threads),
        grace: plan.graceful_stop,
        ..RunOptions::default()
    };
    let names: Vec<String> = plan.request_steps().map(|s| s.name.clone()).collect();
    let watch_abort = plan.thresholds.iter().any(|t| t.abort_on_fail);
    let mut aborted: Option<String> = None;
    // Early stop: when every request of the first seconds failed before any response (closed
    // port, unresolvable name, refused by the allow-list), the rest of the run would only
    // repeat that; stop and say so (exit 3).
    let mut reach_checked = false;
    let mut unreachable_early: Option<String> = None;
    // `--out prometheus=URL`: a task pushes each second's snapshot, off the load threads.
    let prom_labels = crate::export::prometheus::RunLabels {
        scenario: plan.name.clone(),
        env: plan.env_name.clone().unwrap_or_default(),
        shard: sharding
            .spec
            .map(|s| format!("{}/{}", s.index, s.count))
            .unwrap_or_default(),
        run_id: crate::export::prometheus::new_run_id(),
    };
    let pusher = match &a.prometheus {
        Some(url) => Some(
            crate::export::prometheus::Pusher::start(url.clone(), plan.http.allow.clone())
                .map_err(CliError::invalid)?,
        ),
        None => None,
    };
    let run_start = std::time::Instant::now();
    let res = exec::run_load(shared.clone(), &opts, |p, so_far| {
        if let Some(pusher) = &pusher {
            pusher.offer(crate::export::prometheus::snapshot(
                &prom_labels,
                &names,
                so_far,
                planned_vus(&plan.load, p.t),
                crate::export::prometheus::now_ms(),
            ));
        }
        total_err += p.errors;
        total_dropped += p.dropped;
        if let Some(b) = &bar {
            // p95 of every request so far (the steps' latency histograms merged).
            let mut so_far_latency = crate::aggregate::Hist::default();
            for st in &so_far.steps {
                so_far_latency.merge(&st.latency);
            }
            b.set_position(p.t as u64);
            // The open model drops arrivals that find every VU busy: the one number that
            // says the load asked for is not the load sent.
            let dropped = if open_model || total_dropped > 0 {
                format!(", {total_dropped} dropped")
            } else {
                String::new()
            };
            b.set_message(format!(
                "{:.0} req/s now, {} errors{dropped}, p95 so far {:.1} ms",
                p.requests as f64,
                total_err,
                so_far_latency.quantile_ms(0.95)
            ));
        }
        if !reach_checked && p.t >= EARLY_STOP_AFTER.as_secs_f64() {
            reach_checked = true;
            let all = so_far.all_requests();
            if all.requests > 0
                && all.statuses.is_empty()
                && all.error_classes.keys().all(|c| is_unreachable_class(c))
            {
                unreachable_early = Some(format!(
                    "stopped after {:.1}s: every request so far failed before any response ({}); \
                     the rest of the run would only repeat that",
                    p.t,
                    all.error_classes
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                shared.stop.trigger();
            }
        }
        if watch_abort && aborted.is_none() {
            let elapsed = run_start.elapsed();
            let partial = Summary::measured(&names, so_far, elapsed.as_secs_f64());
            if let Some(r) = crate::gate::eval::abort_check(&plan.thresholds, &partial, elapsed) {
                aborted = Some(format!(
                    "aborted after {:.1}s: threshold `{}` failed ({})",
                    elapsed.as_secs_f64(),
                    r.threshold,
                    r.message
                ));
                shared.stop.trigger();
            }
        }
    })
    .await
    .map_err(CliError::runtime)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    signals.abort();

    let secs = res.elapsed.as_secs_f64();
    let mut summary = Summary::measured(&res.names, &res.recorder, secs);
    summary.scenario = plan.name.clone();
    summary.scenario_path = plan.source.as_ref().map(|p| p.display().to_string());
    summary.target = target;
    summary.env = plan.env_name.clone();
    summary.load = load_info(&plan);
    summary.started_at = humantime::format_rfc3339_millis(res.started_at).to_string();
    summary.interrupted = res.interrupted;
    summary.insecure = plan.http.insecure;
    summary.latency_measured_from = match plan.load {
        LoadModel::Open { .. } => "intended_start".into(),
        LoadModel::Closed { .. } => "request_start".into(),
    };
    summary.series = res.series;
    summary.notes = notes;
    summary.trace_url = a.trace_url.clone();
    if let Some(pusher) = pusher {
        let url = pusher.url.clone();
        let last = crate::export::prometheus::snapshot(
            &prom_labels,
            &res.names,
            &res.recorder,
            planned_vus(&plan.load, secs),
            crate::export::prometheus::now_ms(),
        );
        match pusher.finish(last, Duration::from_secs(15)).await {
            Some(warning) => {
                eprintln!("warning: {warning}");
                summary.notes.push(warning);
            }
            None => summary.notes.push(format!(
                "metrics pushed to {url} (Prometheus remote write), run_id=\"{}\"",
                prom_labels.run_id
            )),
        }
    }
    summary.shard = sharding.info(clock);
    if let Some(a) = &aborted {
        summary.notes.push(a.clone());
    }
    if let Some(u) = &unreachable_early {
        summary.notes.push(u.clone());
    }
    if summary.rate_limit_wait_s > 0.0 {
        summary.notes.push(format!(
            "virtual users waited {:.1}s in total after 429 responses, as their Retry-After asked \
             (each wait capped at 60s; `http.honor_retry_after: false` or --ignore-retry-after \
             turns this off)",
            summary.rate_limit_wait_s
        ));
    }
    if summary.cut_requests > 0 {
        summary.notes.push(format!(
            "{} request(s) were still in flight when the grace period ({}) ended: cancelled and \
             counted as failed (class `cancelled`)",
            summary.cut_requests,
            crate::scenario::fmt_duration(opts.grace)
        ));
    }
    if let Some(planned) = planned_length(&plan)
        && res.elapsed > planned + Duration::from_secs(1)
    {
        summary.notes.push(format!(
            "ran {:.1}s for a {} load: the rest was waiting for in-flight requests (grace period \
             {}, `graceful_stop`)",
            secs,
            crate::scenario::fmt_duration(planned),
            crate::scenario::fmt_duration(opts.grace)
        ));
    }
    summary.thresholds = crate::gate::eval::evaluate(&plan.thresholds, &summary);

    publish(&summary, a.format, &a.outs)?;

    if summary.interrupted {
        return Ok(Exit::Interrupted);
    }
    if let Some(why) = no_response(&summary, sharding.spec.is_some()) {
        return Err(CliError::runtime(why));
    }
    let verdict = crate::gate::verdict(&summary, None);
    if verdict.passed {
        Ok(Exit::Ok)
    } else if sharding.spec.is_some() {
        // A shard measures part of the load; `sonde merge` gates the whole.
        eprintln!("shard: failures recorded; the gate is decided by `sonde merge`");
        Ok(Exit::Ok)
    } else {
        for r in &verdict.reasons {
            eprintln!("gate failed: {r}");
        }
        Ok(Exit::GateFailed)
    }
}

/// The virtual users the closed model runs `t` seconds in (stages ramp linearly); `None` for
/// the open model, whose busy VUs are not counted.
fn planned_vus(load: &LoadModel, t: f64) -> Option<f64> {
    let LoadModel::Closed { vus, stages, .. } = load else {
        return None;
    };
    if stages.is_empty() {
        return Some(f64::from(*vus));
    }
    let mut from = 0.0;
    let mut at = 0.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        if t <= at + d && d > 0.0 {
            return Some((from + (s.target - from) * (t - at) / d).round());
        }
        from = s.target;
        at += d;
    }
    Some(from)
}

/// `--trace-url` must be an http(s) URL template naming `{trace_id}` or `{request_id}`.
pub(crate) fn check_trace_url(t: &str) -> Result<(), CliError> {
    let named = t.contains("{trace_id}") || t.contains("{request_id}");
    let filled = t.replace("{trace_id}", "0").replace("{request_id}", "0");
    let ok_url = url::Url::parse(&filled)
        .map(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or(false);
    if named && ok_url {
        Ok(())
    } else {
        Err(CliError::invalid(format!(
            "--trace-url `{t}`: expected an http(s) URL with {{trace_id}} or {{request_id}},              e.g. 'https://tempo.example/trace/{{trace_id}}'"
        )))
    }
}

/// Prints the summary on stdout in `format`, writes every `--out` file, and appends the
/// markdown to `$GITHUB_STEP_SUMMARY` when set (shared by `run` and `merge`).
pub(crate) fn publish(
    summary: &Summary,
    format: OutFormat,
    outs: &[PathBuf],
) -> Result<(), CliError> {
    match format {
        OutFormat::Table => print!("{}", TableReport::for_stdout().render_string(summary)),
        OutFormat::Json => println!(
            "{}",
            report::json::script_summary(summary).map_err(CliError::runtime)?
        ),
    }
    report::write_outputs(summary, outs).map_err(CliError::runtime)?;
    if let Err(e) = report::append_github_step_summary(summary, None) {
        eprintln!("warning: {e}");
    }
    Ok(())
}

/// A run in which no request got any response is a runtime failure, never "no errors":
/// unreachable (DNS, connect, TLS, refused by the allow-list), or every request hung (timed
/// out or cut at the end), or nothing was sent at all.
fn no_response(s: &Summary, shard: bool) -> Option<String> {
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
const EARLY_STOP_AFTER: Duration = Duration::from_secs(2);

/// Error classes that mean no server answered at all.
fn is_unreachable_class(c: &str) -> bool {
    matches!(
        c,
        "dns" | "connect_refused" | "connect_timeout" | "connect" | "tls" | "not_allowed"
    )
}

/// How long the load itself was planned to last (`None` for iteration-driven runs).
fn planned_length(plan: &Plan) -> Option<Duration> {
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

fn progress_bar(quiet: bool, plan: &Plan) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let len = match &plan.load {
        LoadModel::Closed {
            duration: Some(d), ..
        } => d.as_secs(),
        LoadModel::Open { duration, .. } => duration.as_secs(),
        _ => plan.max_duration.as_secs(),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

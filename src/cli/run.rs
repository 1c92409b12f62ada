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
    /// Total iterations (closed model), shared by all VUs.
    #[arg(long, short = 'n')]
    pub iterations: Option<u64>,
    /// Threshold, e.g. 'profile: p(95) < 300ms' (repeatable).
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Write the result to FILE; the extension picks the format (json, txt). Repeatable.
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
    /// Also trust the CA certificates in this PEM file.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Whole-request timeout, body included (`30s`).
    #[arg(long)]
    pub timeout: Option<String>,
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
        ..HttpOptions::default()
    };
    if let Some(t) = &a.timeout {
        h.request_timeout = parse_dur(t, "timeout")?;
    }
    Ok(h)
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
        http: Some(http_options(a)?),
    };
    crate::scenario::load(path, &overrides).map_err(CliError::invalid)
}

fn url_plan(
    a: &RunArgs,
    raw: &str,
    duration: Option<Duration>,
    rate: Option<f64>,
) -> Result<Plan, CliError> {
    let load = match rate {
        Some(rate) => LoadModel::Open {
            rate,
            max_vus: a.max_vus.or(a.vus).unwrap_or(100),
            duration: duration.unwrap_or(Duration::from_secs(10)),
            stages: Vec::new(),
        },
        None => {
            let vus = a.vus.unwrap_or(1);
            LoadModel::Closed {
                vus,
                duration,
                iterations: if duration.is_none() {
                    Some(a.iterations.unwrap_or(u64::from(vus)))
                } else {
                    None
                },
                stages: Vec::new(),
            }
        }
    };
    let req = crate::plan::single::SingleRequest {
        method: a.method.clone(),
        url: raw.to_string(),
        headers: a.headers.clone(),
        cookies: Vec::new(),
        body: a.data.clone(),
    };
    crate::plan::single::plan(&req, load, http_options(a)?).map_err(CliError::invalid)
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

pub async fn run(a: RunArgs) -> Result<Exit, CliError> {
    let mut plan = build_plan(&a)?;
    plan.http.allow = Arc::new(policy(&a)?);
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

    let target = super::target::start(&plan).await?;
    let result = run_against(
        &a,
        plan.clone(),
        &target.base,
        target.info.clone(),
        target.notes.clone(),
        &sharding,
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
) -> Result<Exit, CliError> {
    let client = Client::new(exec::client_config(&plan.http, ConnectionMode::Reuse))
        .map_err(CliError::invalid)?;

    let setup_vars = exec::run_setup(&plan, base, &client)
        .await
        .map_err(CliError::runtime)?;

    let stop = Arc::new(Stop::default());
    let shared = Arc::new(Shared::new(
        plan.clone(),
        base.to_string(),
        client,
        setup_vars,
        stop,
    ));
    let ctrlc = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ninterrupted: finishing in-flight requests, then writing results (Ctrl-C again to quit at once)"
                );
                shared.interrupt();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        })
    };

    let clock = sharding.wait().await.map_err(CliError::runtime)?;
    let bar = progress_bar(a.quiet, &plan);
    let mut total_err = 0u64;
    let opts = RunOptions {
        threads: a.threads.unwrap_or_else(|| RunOptions::default().threads),
        ..RunOptions::default()
    };
    let names: Vec<String> = plan.request_steps().map(|s| s.name.clone()).collect();
    let watch_abort = plan.thresholds.iter().any(|t| t.abort_on_fail);
    let mut aborted: Option<String> = None;
    let run_start = std::time::Instant::now();
    let res = exec::run_load(shared.clone(), &opts, |p, so_far| {
        total_err += p.errors;
        if let Some(b) = &bar {
            // p95 of every request so far (the steps' latency histograms merged).
            let mut so_far_latency = crate::aggregate::Hist::default();
            for st in &so_far.steps {
                so_far_latency.merge(&st.latency);
            }
            b.set_position(p.t as u64);
            b.set_message(format!(
                "{:.0} req/s now, {} errors, p95 so far {:.1} ms",
                p.requests as f64,
                total_err,
                so_far_latency.quantile_ms(0.95)
            ));
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
    ctrlc.abort();

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
    summary.shard = sharding.info(clock);
    if let Some(a) = &aborted {
        summary.notes.push(a.clone());
    }
    summary.thresholds = crate::gate::eval::evaluate(&plan.thresholds, &summary);

    publish(&summary, a.format, &a.outs)?;

    if summary.interrupted {
        return Ok(Exit::Interrupted);
    }
    if unreachable(&summary) {
        return Err(CliError::runtime(format!(
            "the target {} could not be reached: every request failed before a response ({})",
            summary.target.url,
            summary
                .http
                .error_classes
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
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

/// Prints the summary on stdout in `format`, writes every `--out` file, and appends the
/// markdown to `$GITHUB_STEP_SUMMARY` when set (shared by `run` and `merge`).
pub(crate) fn publish(
    summary: &Summary,
    format: OutFormat,
    outs: &[PathBuf],
) -> Result<(), CliError> {
    match format {
        OutFormat::Table => print!("{}", TableReport { width: None }.render_string(summary)),
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

/// Every request failed before any response: a runtime failure, not a slow API.
fn unreachable(s: &Summary) -> bool {
    s.http.requests > 0
        && s.http.statuses.is_empty()
        && s.http.error_classes.keys().all(|c| {
            matches!(
                c.as_str(),
                "dns" | "connect_refused" | "connect_timeout" | "connect" | "tls" | "not_allowed"
            )
        })
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

//! `sonde breakdown TARGET`: a scenario file, a URL (curl-like flags) or a curl command file,
//! run `-n` times with one virtual user per environment, traced request by request.

use super::{CliError, Exit};
use crate::aggregate::Summary;
use crate::breakdown::{self, Breakdown, Connection, Iteration, Pass};
use crate::exec::{Local, Shared, Stop, Target, Vu, run_iteration, run_setup};
use crate::http::{Client, ConnectionMode};
use crate::plan::{HttpOptions, LoadModel, Plan};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BreakdownArgs {
    /// A scenario file (its steps are the page's flow), a URL, or a file holding a curl command.
    pub target: String,
    /// Iterations per environment and connection mode.
    #[arg(short = 'n', long = "iterations", default_value_t = 20)]
    pub n: usize,
    /// Environment (of the scenario) to break down.
    #[arg(long = "as")]
    pub as_env: Option<String>,
    /// A second environment, run interleaved with the first and compared to it.
    #[arg(long, requires = "as_env")]
    pub vs: Option<String>,
    /// Fresh connection per request, warm connections, or each in turn.
    #[arg(long, value_enum, default_value = "both")]
    pub connection: ConnArg,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Fmt,
    /// With --vs: the smallest median difference worth calling out (`25ms`), however
    /// consistent a smaller one is.
    #[arg(long = "min-diff", default_value = "25ms")]
    pub min_diff: String,
    /// Also write the run's JSON result (like `sonde run --out`); with --vs, the second
    /// environment's goes to FILE with `.ENV` before the extension.
    #[arg(long = "out", short = 'o')]
    pub outs: Vec<PathBuf>,
    /// Method (URL targets).
    #[arg(short = 'X', long = "request", default_value = "GET")]
    pub method: String,
    /// Header 'Name: value' (URL targets; repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Cookies 'a=1; b=2' (URL targets; repeatable).
    #[arg(short = 'b', long = "cookie")]
    pub cookies: Vec<String>,
    /// Request body (URL targets).
    #[arg(short = 'd', long = "data")]
    pub data: Option<String>,
    /// Base URL: overrides a scenario's `target` or a curl file's origin (like `run --target`).
    #[arg(long = "target", value_name = "URL")]
    pub base: Option<String>,
    /// Allow requests to this host besides loopback (name, IP or CIDR; repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Do not verify TLS certificates (stamped in the output).
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
    /// Whole-request timeout (`30s`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// No progress line on stderr (it is shown only on a terminal anyway).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConnArg {
    New,
    Reuse,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fmt {
    Table,
    Json,
}

fn http_options(a: &BreakdownArgs) -> Result<HttpOptions, CliError> {
    let mut h = HttpOptions {
        insecure: a.insecure,
        cacert: a.cacert.clone(),
        ..HttpOptions::default()
    };
    if let Some(t) = &a.timeout {
        h.request_timeout = crate::scenario::parse_duration(t)
            .map_err(|e| CliError::invalid(format!("--timeout `{t}`: {e}")))?;
    }
    Ok(h)
}

fn split_cookies(raw: &[String]) -> Vec<(String, String)> {
    raw.iter()
        .flat_map(|c| c.split(';'))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn load_plan(a: &BreakdownArgs) -> Result<Plan, CliError> {
    let load = LoadModel::Closed {
        vus: 1,
        duration: None,
        iterations: Some(a.n as u64),
        stages: Vec::new(),
    };
    let http = http_options(a)?;
    let t = a.target.as_str();
    if t.starts_with("http://") || t.starts_with("https://") {
        let req = crate::plan::single::SingleRequest {
            method: a.method.clone(),
            url: t.to_string(),
            headers: a.headers.clone(),
            cookies: split_cookies(&a.cookies),
            body: a.data.clone(),
        };
        return crate::plan::single::plan(&req, load, http).map_err(CliError::invalid);
    }
    let path = Path::new(t);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "yaml" | "yml" | "json") {
        let target = a
            .base
            .as_deref()
            .map(|b| {
                url::Url::parse(b).map_err(|e| CliError::invalid(format!("--target `{b}`: {e}")))
            })
            .transpose()?;
        let overrides = crate::scenario::Overrides {
            target,
            env: a.as_env.clone(),
            vus: Some(1),
            iterations: Some(a.n as u64),
            http: Some(http),
            ..Default::default()
        };
        return crate::scenario::load(path, &overrides).map_err(CliError::invalid);
    }
    let mut plan = curl_plan(path, load, http)?;
    // `--target` sends the file's request to another base URL, as `repro --target` does.
    if let Some(b) = &a.base {
        let u =
            url::Url::parse(b).map_err(|e| CliError::invalid(format!("--target `{b}`: {e}")))?;
        plan.target = crate::plan::TargetSpec::Url(u);
    }
    Ok(plan)
}

/// The hosts the user named: a URL argument, `--target`, a curl file's request (not a
/// scenario's own target).
fn policy(a: &BreakdownArgs, plan: &Plan) -> Result<crate::http::HostPolicy, CliError> {
    let mut named = Vec::new();
    if let Ok(u) = url::Url::parse(&a.target) {
        named.push(u);
    }
    if let Some(b) = &a.base
        && let Ok(u) = url::Url::parse(b)
    {
        named.push(u);
    }
    let ext = Path::new(&a.target)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let is_scenario = matches!(ext, "yaml" | "yml" | "json");
    if !is_scenario
        && a.base.is_none()
        && let crate::plan::TargetSpec::Url(u) = &plan.target
    {
        named.push(u.clone());
    }
    super::target::host_policy(&a.allow_hosts, named.iter())
}

/// A file holding a browser's "Copy as cURL" (bash or cmd), read by the same parser as
/// `sonde import curl`.
fn curl_plan(path: &Path, load: LoadModel, http: HttpOptions) -> Result<Plan, CliError> {
    let imported = crate::import::import_curl_file(path).map_err(|e| {
        CliError::invalid(format!(
            "{}: not a URL or a scenario file (.yaml), and not a curl command: {}:{e}",
            path.display(),
            path.display()
        ))
    })?;
    crate::import::plan::to_plan(&imported, load, http).map_err(CliError::invalid)
}

fn env_names(plan: &Plan, a: &BreakdownArgs) -> Result<Vec<String>, CliError> {
    let mut names = Vec::new();
    for n in [&a.as_env, &a.vs].into_iter().flatten() {
        if !plan.envs.contains_key(n) {
            let known: Vec<&str> = plan.envs.keys().map(String::as_str).collect();
            let hint = known
                .iter()
                .min_by_key(|k| strsim::levenshtein(k, n))
                .filter(|k| strsim::levenshtein(k, n) <= 3)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(CliError::invalid(format!(
                "no environment `{n}` in the scenario{hint}; it has: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        names.push(n.clone());
    }
    if names.is_empty() {
        names.push(plan.env_name.clone().unwrap_or_else(|| "default".into()));
    }
    Ok(names)
}

fn plan_for_env(plan: &Plan, env: &str) -> Plan {
    let mut p = plan.clone();
    if let Some(e) = plan.envs.get(env) {
        p.env = e.clone();
        p.env_name = Some(env.to_string());
    }
    p
}

pub async fn run(a: BreakdownArgs) -> Result<Exit, CliError> {
    if a.n == 0 {
        return Err(CliError::invalid("-n must be at least 1"));
    }
    crate::report::check_outputs(&a.outs).map_err(CliError::invalid)?;
    let mut plan = load_plan(&a)?;
    let policy = policy(&a, &plan)?;
    super::target::guard(&mut plan, policy)?;
    let envs = env_names(&plan, &a)?;
    let target = super::target::start(&plan).await?;
    let result = measure(&a, &plan, &envs, &target.base, &target.info.url).await;
    target.stop().await;
    let (doc, summaries) = result?;
    let names: Vec<String> = plan.request_steps().map(|s| s.name.clone()).collect();
    match a.format {
        Fmt::Table => {
            // On a terminal, fit it; piped, full-width tables (never wrapped mid-number).
            let width = {
                use std::io::IsTerminal as _;
                std::io::stdout().is_terminal().then(terminal_width)
            };
            print!(
                "{}",
                breakdown::render::render(&doc, &names, &breakdown::groups(&plan), width)
            );
        }
        Fmt::Json => println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(CliError::runtime)?
        ),
    }
    for out in &a.outs {
        for (i, s) in summaries.iter().enumerate() {
            let path = if i == 0 {
                out.clone()
            } else {
                with_suffix(out, s.env.as_deref().unwrap_or("b"))
            };
            crate::report::write_outputs(s, &[path]).map_err(CliError::runtime)?;
        }
    }
    let all_failed = summaries
        .iter()
        .all(|s| s.http.requests > 0 && s.http.statuses.is_empty());
    if all_failed {
        return Err(CliError::runtime(format!(
            "{} could not be reached: every request failed ({})",
            doc.target,
            summaries
                .iter()
                .flat_map(|s| s.http.error_messages.keys().cloned())
                .take(1)
                .collect::<Vec<_>>()
                .join("")
        )));
    }
    Ok(Exit::Ok)
}

fn with_suffix(p: &Path, env: &str) -> PathBuf {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let ext = p.extension().and_then(|s| s.to_str()).unwrap_or("json");
    p.with_file_name(format!("{stem}.{env}.{ext}"))
}

/// Terminal width for tables and the waterfall: the tty's, else `$COLUMNS`, else 100.
pub(crate) fn terminal_width() -> u16 {
    let t = comfy_table::Table::new();
    t.width()
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
        .unwrap_or(100)
        .clamp(60, 240)
}

async fn measure(
    a: &BreakdownArgs,
    plan: &Plan,
    envs: &[String],
    base: &str,
    target_url: &str,
) -> Result<(Breakdown, Vec<Summary>), CliError> {
    let modes: &[Connection] = match a.connection {
        ConnArg::New => &[Connection::New],
        ConnArg::Reuse => &[Connection::Reuse],
        ConnArg::Both => &[Connection::New, Connection::Reuse],
    };
    let names: Vec<String> = plan.request_steps().map(|s| s.name.clone()).collect();
    let n_steps = names.len();
    let min_diff_ms = crate::scenario::parse_duration(&a.min_diff)
        .map_err(|e| CliError::invalid(format!("--min-diff `{}`: {e}", a.min_diff)))?
        .as_secs_f64()
        * 1000.0;
    let verbose = crate::exec::verbose::from_flags(a.verbose, a.verbose_limit);
    let mut passes: Vec<Pass> = Vec::new();
    let mut comparisons = Vec::new();
    let mut recorders: Vec<crate::aggregate::Recorder> = envs
        .iter()
        .map(|_| crate::aggregate::Recorder::new(n_steps))
        .collect();
    let started = Instant::now();
    let progress = Progress::new(a.quiet);
    let mut skipped: std::collections::BTreeMap<String, usize> = Default::default();
    let set = tokio::task::LocalSet::new();
    for mode in modes {
        let connection = match mode {
            Connection::New => ConnectionMode::New,
            Connection::Reuse => ConnectionMode::Reuse,
        };
        let client = Client::new(crate::exec::client_config(&plan.http, connection))
            .map_err(CliError::invalid)?;
        // Per environment: its own plan (env applied), shared state, recorder and one VU.
        let mut lanes = Vec::new();
        for env in envs {
            let p = Arc::new(plan_for_env(plan, env));
            let setup = run_setup(&p, base, &client)
                .await
                .map_err(CliError::runtime)?;
            let shared = Arc::new(
                Shared::new(
                    p,
                    base.to_string(),
                    client.clone(),
                    setup,
                    Arc::new(Stop::default()),
                )
                .with_verbose(verbose.clone()),
            );
            let local = Local::new(shared.clone(), n_steps, true);
            let vu = Vu::new(1, &shared);
            lanes.push((env.clone(), local, vu, Vec::<Iteration>::new()));
        }
        if *mode == Connection::Reuse {
            for (_, local, vu, _) in lanes.iter_mut() {
                set.run_until(run_iteration(local, vu, Target::Main, None))
                    .await;
                take_trace(local);
                *local.rec.borrow_mut() = crate::aggregate::Recorder::new(n_steps);
            }
        }
        // Interleaved: A, B, A, B, ... so drift hits both.
        for round in 0..a.n {
            progress.show(mode.as_str(), envs, round, a.n);
            for (_, local, vu, its) in lanes.iter_mut() {
                let start = Instant::now();
                set.run_until(run_iteration(local, vu, Target::Main, None))
                    .await;
                let end = Instant::now();
                let trace = take_trace(local);
                for t in trace.iter().filter(|t| t.server_timing_skipped > 0) {
                    let step = names.get(t.step).map_or("?", String::as_str);
                    *skipped.entry(step.to_string()).or_default() += t.server_timing_skipped;
                }
                its.push(Iteration::from_trace(start, end, &trace));
            }
        }
        let mut mode_passes = Vec::new();
        for (i, (env, local, _, its)) in lanes.into_iter().enumerate() {
            recorders[i].merge(&local.rec.borrow());
            mode_passes.push(Pass::compute(&env, *mode, &names, its));
        }
        if mode_passes.len() == 2 {
            comparisons.push(breakdown::compare(
                &mode_passes[0],
                &mode_passes[1],
                &names,
                min_diff_ms,
            ));
        }
        passes.extend(mode_passes);
    }
    progress.clear();
    let secs = started.elapsed().as_secs_f64();
    let groups = breakdown::groups(plan);
    let summaries = envs
        .iter()
        .zip(recorders.iter())
        .map(|(env, rec)| {
            let mut s = Summary::measured(&names, rec, secs);
            s.scenario = plan.name.clone();
            s.scenario_path = plan.source.as_ref().map(|p| p.display().to_string());
            s.target.kind = crate::aggregate::summary::TargetKind::Url;
            s.target.url = target_url.to_string();
            s.env = Some(env.clone());
            s.load.model = crate::aggregate::summary::LoadModel::Breakdown;
            s.load.vus = Some(1);
            s.load.iterations = Some(a.n as u64);
            s.started_at = humantime::format_rfc3339_millis(
                std::time::SystemTime::now() - Duration::from_secs_f64(secs),
            )
            .to_string();
            s.insecure = plan.http.insecure;
            s.latency_measured_from = crate::aggregate::summary::LatencyOrigin::RequestStart;
            s.waterfalls = passes
                .iter()
                .filter(|p| &p.env == env)
                .filter_map(|p| breakdown::waterfall::of_pass(p, &names, &groups))
                .collect();
            s
        })
        .collect();
    // Comparisons lead with warm connections: they isolate the server from connection set-up.
    comparisons.sort_by_key(|c| c.connection != Connection::Reuse);
    let doc = Breakdown {
        schema: "sonde.breakdown/v1",
        scenario: plan.name.clone(),
        target: crate::redact::redact_url(target_url),
        iterations: a.n,
        insecure: plan.http.insecure,
        passes,
        verdict: breakdown::combined_verdict(&comparisons),
        comparisons,
        notes: skipped
            .iter()
            .map(|(step, n)| format!("{step}: {n} malformed Server-Timing entries skipped"))
            .collect(),
    };
    Ok((doc, summaries))
}

fn take_trace(local: &Local) -> Vec<crate::exec::Traced> {
    local
        .trace
        .as_ref()
        .map(|t| std::mem::take(&mut *t.borrow_mut()))
        .unwrap_or_default()
}

/// The progress line on stderr: iterations done per environment and connection mode. Only on
/// a terminal and never with `--quiet`; rewritten in place, cleared before the report.
struct Progress {
    on: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        use std::io::IsTerminal as _;
        Progress {
            on: !quiet && std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, mode: &str, envs: &[String], done: usize, n: usize) {
        if !self.on {
            return;
        }
        let per_env: Vec<String> = envs.iter().map(|e| format!("{e} {done}/{n}")).collect();
        eprint!(
            "\r\x1b[2Kbreakdown: connections {mode} · {}",
            per_env.join(" · ")
        );
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}

//! `sonde breakdown TARGET`: a scenario file, a URL (curl-like flags) or a curl command file,
//! run `-n` times with one virtual user per environment, traced request by request.

use super::args::{self, HttpArgs, OutputArgs, OutputFormat, VerboseArgs};
use super::{Error, Exit, output};
use crate::breakdown::{self, Breakdown, Connection, Measured};
use crate::plan::{HttpOptions, LoadModel, Plan};
use clap::Args;
use std::path::Path;

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
    /// With --vs: the smallest median difference worth calling out (`25ms`), however
    /// consistent a smaller one is.
    #[arg(long = "min-diff", default_value = "25ms")]
    pub min_diff: String,
    /// Method (URL targets; as curl's -X; `--method` works too).
    #[arg(
        short = 'X',
        long = "request",
        visible_alias = "method",
        default_value = "GET"
    )]
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
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub verbose: VerboseArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConnArg {
    New,
    Reuse,
    Both,
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

fn load_plan(a: &BreakdownArgs) -> Result<Plan, Error> {
    let load = LoadModel::Closed {
        vus: 1,
        duration: None,
        iterations: Some(a.n as u64),
        stages: Vec::new(),
    };
    let http = a.http.http_options()?;
    let t = a.target.as_str();
    if t.starts_with("http://") || t.starts_with("https://") {
        let req = crate::plan::single::SingleRequest {
            method: a.method.clone(),
            url: t.to_string(),
            headers: a.headers.clone(),
            cookies: split_cookies(&a.cookies),
            body: a.data.clone(),
        };
        return crate::plan::single::plan(&req, load, http).map_err(Error::Plan);
    }
    let path = Path::new(t);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "yaml" | "yml" | "json") {
        let target = a
            .base
            .as_deref()
            .map(|b| args::url(b, "target"))
            .transpose()?;
        let overrides = crate::scenario::Overrides {
            target,
            env: a.as_env.clone(),
            vus: Some(1),
            iterations: Some(a.n as u64),
            http: Some(http),
            ..Default::default()
        };
        return Ok(crate::scenario::load(path, &overrides)?);
    }
    let mut plan = curl_plan(path, load, http)?;
    // `--target` sends the file's request to another base URL, as `repro --target` does.
    if let Some(b) = &a.base {
        let u = args::url(b, "target")?;
        plan.target = crate::plan::TargetSpec::Url(u);
    }
    Ok(plan)
}

/// The hosts the user named: a URL argument, `--target`, a curl file's request (not a
/// scenario's own target).
fn policy(a: &BreakdownArgs, plan: &Plan) -> Result<crate::http::HostPolicy, Error> {
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
    a.http.host_policy(named.iter())
}

/// A file holding a browser's "Copy as cURL" (bash or cmd), read by the same parser as
/// `sonde import curl`.
fn curl_plan(path: &Path, load: LoadModel, http: HttpOptions) -> Result<Plan, Error> {
    let imported = crate::import::import_curl_file(path).map_err(|source| Error::Import {
        message: format!(
            "{}: not a URL or a scenario file (.yaml), and not a curl command: {}:{source}",
            path.display(),
            path.display()
        ),
        source,
    })?;
    crate::import::plan::to_plan(&imported, load, http).map_err(Error::Plan)
}

fn env_names(plan: &Plan, a: &BreakdownArgs) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for n in [&a.as_env, &a.vs].into_iter().flatten() {
        if !plan.envs.contains_key(n) {
            let known: Vec<&str> = plan.envs.keys().map(String::as_str).collect();
            let hint = crate::suggest::did_you_mean(n, known.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(Error::usage(format!(
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

pub async fn run(a: BreakdownArgs) -> Result<Exit, Error> {
    if a.n == 0 {
        return Err(Error::usage("-n must be at least 1"));
    }
    crate::report::check_outputs(&a.output.outs).map_err(Error::OutputPath)?;
    let mut plan = load_plan(&a)?;
    let policy = policy(&a, &plan)?;
    super::target::guard(&mut plan, policy)?;
    super::target::single_user(&plan, "breakdown")?;
    let envs = env_names(&plan, &a)?;
    let opts = options(&a)?;
    let target = super::target::start(&plan).await?;
    let progress = Progress::new(a.output.quiet);
    let result = breakdown::measure(
        &plan,
        &envs,
        (&target.base, &target.info.url),
        &opts,
        |mode, round| progress.show(mode.as_str(), &envs, round, a.n),
    )
    .await;
    progress.clear();
    target.stop().await;
    let Measured { doc, summaries } = result?;
    print_doc(&doc, &plan, a.output.format)?;
    for out in &a.output.outs {
        for (i, s) in summaries.iter().enumerate() {
            let path = if i == 0 {
                out.clone()
            } else {
                output::with_suffix(out, s.env.as_deref().unwrap_or("b"))
            };
            crate::report::write_outputs(s, &[path]).map_err(Error::Output)?;
        }
    }
    let all_failed = summaries
        .iter()
        .all(|s| s.http.requests > 0 && s.http.statuses.is_empty());
    if all_failed {
        return Err(Error::Unreachable(format!(
            "{} could not be reached: every request failed ({})",
            doc.target,
            summaries
                .iter()
                .flat_map(|s| s.http.error_messages.keys().cloned())
                .take(1)
                .collect::<String>()
        )));
    }
    Ok(Exit::Ok)
}

/// What to measure, from the flags.
fn options(a: &BreakdownArgs) -> Result<breakdown::Options, Error> {
    let modes = match a.connection {
        ConnArg::New => vec![Connection::New],
        ConnArg::Reuse => vec![Connection::Reuse],
        ConnArg::Both => vec![Connection::New, Connection::Reuse],
    };
    let min_diff_ms = args::duration(&a.min_diff, "min-diff")?.as_secs_f64() * 1000.0;
    Ok(breakdown::Options {
        n: a.n,
        modes,
        min_diff_ms,
        verbose: a.verbose.printer(),
    })
}

/// The breakdown on stdout: tables and waterfalls (fitted to a terminal), or the JSON document.
fn print_doc(doc: &Breakdown, plan: &Plan, format: OutputFormat) -> Result<(), Error> {
    if format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(doc)?);
        return Ok(());
    }
    let names: Vec<String> = plan.request_steps().map(|s| s.name.clone()).collect();
    // On a terminal, fit it; piped, full-width tables (never wrapped mid-number).
    print!(
        "{}",
        breakdown::render::render(doc, &names, &breakdown::groups(plan), output::fit_width())
    );
    Ok(())
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

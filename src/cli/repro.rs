//! `sonde repro [SCENARIO] --env A --env B [--matrix ITEM=v1,v2]... [-n 3]`: run the flow `n`
//! times under each environment (× each matrix cell) and print pass/fail per step side by side.
//! Also the argument handling `bisect` shares: loading the scenario and environments, the flow,
//! the target and the redactor.

use super::args::{self, HttpArgs, OutputFormat, TABLE_JSON, VerboseArgs, stdout_formats};
use super::{Error, Exit};
use crate::bisect::env::{self, Axis, LoadedEnv};
use crate::bisect::flow::{self, Flow, FlowChoice, FlowSpec};
use crate::bisect::repro::{self as model, ReproDoc};
use crate::plan::Plan;
use crate::redact::{self, Redactor};
use clap::Args;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Largest `-n`: runs per environment (per probe for `bisect`). A huge `-n` made the runs'
/// bookkeeping abort on allocation before the first request.
pub const MAX_RUNS: usize = 1_000;

/// Options `repro` and `bisect` share.
#[derive(Debug, Clone, Args)]
pub struct FlowArgs {
    /// A scenario file whose steps are the flow. Without one, the flow is the request of the
    /// first curl/HAR environment.
    pub scenario: Option<PathBuf>,
    /// Runs per environment (per probe for `bisect`).
    #[arg(short = 'n', long = "runs", value_name = "N", default_value_t = 3)]
    pub k: usize,
    /// Base URL to send to (overrides the scenario's target or the request's origin).
    #[arg(long)]
    pub target: Option<String>,
    /// Statuses that count as success for a scenario-less flow (default: below 400), e.g. `200,201`.
    #[arg(long, value_delimiter = ',')]
    pub expect_status: Vec<u16>,
    /// Keep the scenario's think pauses (skipped by default: they change nothing that is sent).
    #[arg(long)]
    pub keep_think: bool,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Show secret values (and write them into generated commands) instead of redacting them.
    #[arg(long)]
    pub include_sensitive: bool,
    #[command(flatten)]
    pub verbose: VerboseArgs,
    /// What to print on stdout.
    #[arg(long, default_value = "table", value_parser = stdout_formats(TABLE_JSON))]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ReproArgs {
    #[command(flatten)]
    pub flow: FlowArgs,
    /// An environment: a scenario env name, a curl file, a HAR file (`file.har#entry`), an env
    /// YAML file, or an inline item (`header:Accept-Language=de-DE`). Repeatable. Without any,
    /// every env of the scenario.
    #[arg(long = "env")]
    pub envs: Vec<String>,
    /// An axis `KIND:NAME=v1,v2` (quote a value holding a comma: `"de-DE,de;q=0.9"`; `~`
    /// removes the item). Repeatable; rows are the cross product.
    #[arg(long = "matrix")]
    pub matrix: Vec<String>,
    /// Largest number of rows (environments × matrix cells) to run; a bigger cross product
    /// is refused before anything is built or sent.
    #[arg(long = "max-cells", default_value_t = model::DEFAULT_MAX_CELLS, value_name = "N")]
    pub max_cells: u64,
}

/// Everything a command needs before it sends anything.
pub(crate) struct Prepared {
    pub plan: Option<Plan>,
    pub envs: Vec<LoadedEnv>,
    pub spec: FlowSpec,
    pub notes: Vec<String>,
}

fn target_url(a: &FlowArgs) -> Result<Option<url::Url>, Error> {
    a.target
        .as_deref()
        .map(|t| args::url(t, "target"))
        .transpose()
}

/// Loads the scenario (if any) and the environments, and decides what the flow is.
pub(crate) fn prepare(
    a: &FlowArgs,
    env_texts: &[String],
    command: &str,
) -> Result<Prepared, Error> {
    if a.k == 0 {
        return Err(Error::usage("-n/--runs must be at least 1"));
    }
    if a.k > MAX_RUNS {
        return Err(Error::usage(format!(
            "-n/--runs {} is more runs than the cap of {MAX_RUNS} per environment (or probe)",
            a.k
        )));
    }
    let http = a.http.http_options()?;
    let target = target_url(a)?;
    let plan = load_scenario(a, target.as_ref(), &http)?;
    let mut envs = Vec::new();
    for t in env_texts {
        envs.push(env::load(t, plan.as_ref())?);
    }
    let choice = FlowChoice {
        target: target.clone(),
        expect_status: a.expect_status.clone(),
        keep_think: a.keep_think,
        http,
    };
    let (mut spec, mut notes) = match &plan {
        Some(p) => choice.scenario(p, &envs),
        None => choice.request(&envs).map_err(|e| match e {
            flow::ChoiceError::NothingToSend(m) => Error::usage(m),
            flow::ChoiceError::Request(m) => Error::Plan(m),
        })?,
    };
    let mut named: Vec<url::Url> = target.iter().cloned().collect();
    named.extend(
        envs.iter()
            .filter_map(|e| e.request.as_ref())
            .filter_map(|r| url::Url::parse(&r.base).ok()),
    );
    let policy = a.http.host_policy(named.iter())?;
    super::target::guard(&mut spec.plan, policy)?;
    super::target::single_user(&spec.plan, command)?;
    if spec.plan.http.insecure {
        notes.push("TLS certificates are NOT verified (--insecure)".into());
    }
    Ok(Prepared {
        plan,
        envs,
        spec,
        notes,
    })
}

/// The scenario file, if one was given (a curl or HAR file in its place is refused).
fn load_scenario(
    a: &FlowArgs,
    target: Option<&url::Url>,
    http: &crate::plan::HttpOptions,
) -> Result<Option<Plan>, Error> {
    let Some(path) = &a.scenario else {
        return Ok(None);
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "yaml" | "yml" | "json") {
        return Err(Error::usage(format!(
            "{}: the scenario must be a .yaml file; pass curl and HAR files with --env (or --good/--bad)",
            path.display()
        )));
    }
    let overrides = crate::scenario::Overrides {
        target: target.cloned(),
        http: Some(http.clone()),
        ..Default::default()
    };
    Ok(Some(crate::scenario::load(path, &overrides)?))
}

/// A redactor that knows every secret of the environments and of the setup's captures.
pub(crate) fn redactor(a: &FlowArgs, envs: &[&LoadedEnv], flow: Option<&Flow>) -> Redactor {
    let mut r = Redactor::new(a.include_sensitive);
    for e in envs {
        for v in e.spec.secret_values() {
            r.add(&v);
        }
        for (n, v) in &e.spec.headers {
            r.add_header(n, v);
        }
    }
    if let Some(f) = flow {
        for v in f.setup_values() {
            if redact::looks_secret(&v) {
                r.add(&v);
            }
        }
    }
    r
}

/// Starts the target (the embedded demo when the scenario has none) and the flow.
pub(crate) async fn start(spec: FlowSpec) -> Result<(super::target::Endpoint, Flow), Error> {
    let target = super::target::start(&spec.plan).await?;
    match Flow::start(spec, &target.base).await {
        Ok(flow) => Ok((target, flow)),
        Err(e) => {
            target.stop().await;
            Err(Error::Flow(e))
        }
    }
}

/// The environments to run: those given, else every env of the scenario.
fn env_texts(a: &ReproArgs) -> Result<Vec<String>, Error> {
    if !a.envs.is_empty() {
        return Ok(a.envs.clone());
    }
    let plan_envs: Vec<String> = match &a.flow.scenario {
        Some(_) => prepare(&a.flow, &[], "repro")?
            .plan
            .map(|p| p.envs.keys().cloned().collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    if plan_envs.is_empty() && a.flow.scenario.is_none() {
        return Err(Error::usage(
            "give a scenario or at least one --env (a curl file, a HAR file, an env file or an inline item)",
        ));
    }
    Ok(plan_envs)
}

/// The document on stdout (table or JSON), every secret scrubbed.
fn print_doc(doc: &ReproDoc, format: OutputFormat, red: &Redactor) -> Result<(), Error> {
    match format {
        OutputFormat::Json => println!("{}", red.scrub(&serde_json::to_string_pretty(doc)?)),
        _ => print!(
            "{}",
            red.scrub(&model::render(
                doc,
                crate::report::table::terminal_width(),
                crate::report::table::color_on_stdout(),
            ))
        ),
    }
    Ok(())
}

pub async fn run(a: ReproArgs) -> Result<Exit, Error> {
    let axes = a
        .matrix
        .iter()
        .map(|m| Axis::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    // The matrix alone (one environment at least) may already be too big: refuse it before
    // loading anything.
    model::check_row_count(a.envs.len().max(1), &axes, a.max_cells).map_err(Error::Usage)?;
    let env_texts = env_texts(&a)?;
    let mut prep = prepare(&a.flow, &env_texts, "repro")?;
    if prep.envs.is_empty() {
        // A scenario without named envs: its steps as they are.
        prep.envs.push(LoadedEnv {
            label: "(scenario)".into(),
            spec_text: String::new(),
            spec: crate::import::EnvSpec::default(),
            request: None,
            templated: BTreeSet::new(),
        });
    }
    model::check_row_count(prep.envs.len(), &axes, a.max_cells).map_err(Error::Usage)?;
    let rows = model::rows(&prep.envs, &axes);
    let (target, mut flow) = start(prep.spec.clone()).await?;
    flow.verbose = a.flow.verbose.printer();
    let red = redactor(&a.flow, &prep.envs.iter().collect::<Vec<_>>(), Some(&flow));
    let mut docs = Vec::with_capacity(rows.len());
    let mut unreachable = 0;
    for row in &rows {
        let cell = if row.cell.is_empty() {
            String::new()
        } else {
            format!(" × {}", row.cell.join(", "))
        };
        flow.label_runs(red.scrub(&format!("{}{cell}", prep.envs[row.env].label)));
        let runs = flow.run(&row.spec, a.flow.k).await;
        if runs.unreachable() {
            unreachable += 1;
        }
        let label = &prep.envs[row.env].label;
        docs.push(model::row_doc(label, row, &runs, &flow.step_names, &red));
    }
    let target_text = format!(
        "{}{}",
        red.url(&target.info.url),
        if target.info.kind == crate::aggregate::summary::TargetKind::EmbeddedDemo {
            " (embedded demo)"
        } else {
            ""
        }
    );
    target.stop().await;
    let mut notes = prep.notes.clone();
    notes.push(format!("{} requests sent", flow.requests()));
    let doc = ReproDoc {
        schema: "sonde.repro/v1",
        scenario: prep.plan.as_ref().map(|p| p.name.clone()),
        target: target_text,
        k: a.flow.k,
        steps: flow.step_names.clone(),
        matrix: axes
            .iter()
            .map(|x| format!("{}:{}", x.kind, x.name))
            .collect(),
        rows: docs,
        notes,
    };
    print_doc(&doc, a.flow.format, &red)?;
    if unreachable == rows.len() {
        return Err(Error::Unreachable(format!(
            "{} could not be reached: every request failed",
            doc.target
        )));
    }
    Ok(if doc.any_failed() {
        Exit::GateFailed
    } else {
        Exit::Ok
    })
}

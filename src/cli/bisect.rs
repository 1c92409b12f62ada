//! `sonde bisect [SCENARIO] --good G --bad B [-n 3] [--max-probes 200]`: find the minimal set
//! of differences between a good and a bad environment that makes the flow fail. Exit codes:
//! 0 culprit found, 1 premise failed (the bad environment passes, or the good one fails too),
//! 2 invalid input or identical environments (nothing was sent), 3 runtime failure (target
//! unreachable, setup failed).

use super::args::OutputFormat;
use super::repro::{FlowArgs, prepare, redactor, start};
use super::{Error, Exit};
use crate::bisect::report::{self, Context};
use crate::bisect::search::{self, Finding, Options};
use crate::bisect::shell::{self, Placeholders, ReproLine};
use clap::Args;
use std::io::Write as _;

#[derive(Debug, Args)]
pub struct BisectArgs {
    #[command(flatten)]
    pub flow: FlowArgs,
    /// The environment that works (scenario env name, curl, HAR, env file or inline item).
    #[arg(long)]
    pub good: String,
    /// The environment that fails.
    #[arg(long)]
    pub bad: String,
    /// Stop after this many probes (the result then fails but may not be minimal).
    #[arg(long, default_value_t = 200)]
    pub max_probes: usize,
    /// Vary session-like credentials too instead of keeping the bad side's.
    #[arg(long)]
    pub vary_identity: bool,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub async fn run(a: BisectArgs) -> Result<Exit, Error> {
    if a.max_probes == 0 {
        return Err(Error::usage("--max-probes must be at least 1"));
    }
    // Good first: without a scenario, the flow is the good side's request (the same request a
    // generated `sonde repro --env GOOD` line sends).
    let prep = prepare(&a.flow, &[a.good.clone(), a.bad.clone()], "bisect")?;
    let (good, bad) = match prep.envs.as_slice() {
        [g, b] => (g.clone(), b.clone()),
        _ => return Err(Error::Internal("two environments expected")),
    };
    if crate::import::diff(&good.spec, &bad.spec).is_empty() {
        return Err(Error::usage(format!(
            "{} and {} are identical ({} items each): nothing to bisect, nothing was sent",
            good.label,
            bad.label,
            good.spec.items().len()
        )));
    }
    let (target, mut flow) = start(prep.spec.clone()).await?;
    flow.verbose = a.flow.verbose.printer();
    let red = redactor(&a.flow, &[&good, &bad], Some(&flow));
    let opts = Options {
        k: a.flow.k,
        max_probes: a.max_probes,
        vary_identity: a.vary_identity,
    };
    let quiet = a.quiet;
    let b = search::bisect(&flow, &good.spec, &bad.spec, &opts, |p| {
        if !quiet {
            let what = if p.probe == 0 {
                "good + the bad side's identity".to_string()
            } else {
                format!("probe {}: {} of {} differences", p.probe, p.applied, p.of)
            };
            let _ = writeln!(std::io::stderr(), "  {what} → {:?}", p.outcome);
        }
    })
    .await;
    let mut cx = Context {
        scenario: prep.plan.as_ref().map(|p| p.name.clone()),
        target: format!(
            "{}{}",
            red.url(&target.info.url),
            if target.info.kind == crate::aggregate::summary::TargetKind::EmbeddedDemo {
                " (embedded demo, stopped on exit)"
            } else {
                ""
            }
        ),
        good: good.label.clone(),
        bad: bad.label.clone(),
        k: opts.k,
        max_probes: a.max_probes,
        steps: flow.step_names.clone(),
        include_sensitive: a.flow.include_sensitive,
        notes: prep.notes.clone(),
        ..Context::default()
    };
    if let Finding::Found(f) = &b.verdict {
        let sides = Sides {
            good: &good,
            bad: &bad,
            scenario_less: prep.plan.is_none(),
        };
        reproduce(&a, &flow, &b, f, &target.info, &sides, &mut cx).await;
    }
    cx.requests = flow.requests();
    target.stop().await;
    finish(&b, &cx, &red, a.flow.format)
}

/// Prints the bisection (table or JSON) and decides the exit code: 0 culprit found, 1 premise
/// failed, 2 identical environments, 3 unreachable.
fn finish(
    b: &search::Bisection,
    cx: &Context,
    red: &crate::redact::Redactor,
    format: OutputFormat,
) -> Result<Exit, Error> {
    let doc = report::document(b, cx, red);
    let json = format == OutputFormat::Json;
    let text = if json {
        let mut s = serde_json::to_string_pretty(&doc)?;
        s.push('\n');
        s
    } else {
        report::render(&doc, crate::report::table::terminal_width())
    };
    // Unreachable in table form: `main` prints the message once.
    if json || !matches!(b.verdict, Finding::Unreachable { .. }) {
        print!("{}", red.scrub(&text));
    }
    match &b.verdict {
        Finding::Found(_) => Ok(Exit::Ok),
        Finding::NotReproducible | Finding::GoodFails => Ok(Exit::GateFailed),
        Finding::Unreachable { .. } => {
            Err(Error::Unreachable(red.scrub(&doc.message).into_owned()))
        }
        Finding::Identical => Err(Error::Usage(doc.message)),
    }
}

/// The two environments of a bisection, and whether the flow is a scenario's.
struct Sides<'a> {
    good: &'a crate::bisect::env::LoadedEnv,
    bad: &'a crate::bisect::env::LoadedEnv,
    scenario_less: bool,
}

/// What reproduces a found culprit set: the failing request as curl, the `sonde repro` line
/// that toggles the culprits, and (for the embedded demo) how to run it again.
async fn reproduce(
    a: &BisectArgs,
    flow: &crate::bisect::flow::Flow,
    b: &search::Bisection,
    f: &search::Found,
    info: &crate::aggregate::summary::TargetInfo,
    sides: &Sides<'_>,
    cx: &mut Context,
) {
    let (good, bad) = (sides.good, sides.bad);
    let values = |e: &crate::import::EnvSpec| -> Vec<String> {
        e.items().into_iter().map(|i| i.value).collect()
    };
    let mut ph = Placeholders::new(a.flow.include_sensitive)
        .with_sides(values(&good.spec), values(&bad.spec));
    let step = b
        .premise
        .bad_failure
        .as_ref()
        .map_or(flow.step_names.len().saturating_sub(1), |(i, _)| *i);
    let (_, req) = flow.witness(&f.failing, step).await;
    cx.curl = req.map(|r| shell::curl(&r, &mut ph));
    if info.kind == crate::aggregate::summary::TargetKind::EmbeddedDemo {
        cx.reproduce_note = Some(embedded_demo_note(a, info, good, bad));
    }
    let line = ReproLine {
        scenario: a.flow.scenario.as_ref().map(|p| p.display().to_string()),
        good: good.spec_text.clone(),
        target: a.flow.target.clone(),
        k: a.flow.k,
        expect_status: if sides.scenario_less {
            a.flow.expect_status.clone()
        } else {
            Vec::new()
        },
        keep_think: a.flow.keep_think,
        insecure: a.flow.http.insecure,
    };
    let kept = if f.identity_culprit {
        Vec::new()
    } else {
        b.identity.clone()
    };
    cx.repro = Some(shell::repro_line(&line, &kept, &f.culprits, &mut ph));
    cx.placeholders = ph.names();
}

/// The reproduce curl points at the embedded demo, which stops when bisect exits: say so, and
/// give the two commands that make it runnable (a demo on a fixed port, bisect with --target).
fn embedded_demo_note(
    a: &BisectArgs,
    info: &crate::aggregate::summary::TargetInfo,
    good: &crate::bisect::env::LoadedEnv,
    bad: &crate::bisect::env::LoadedEnv,
) -> String {
    const FIXED: &str = "127.0.0.1:8080";
    let url = format!("http://{FIXED}");
    let mut demo = vec!["sonde", "demo", "--listen", FIXED];
    for f in &info.demo_faults {
        demo.push("--fault");
        demo.push(f);
    }
    let scenario = a.flow.scenario.as_ref().map(|p| p.display().to_string());
    let mut rerun = vec!["sonde", "bisect"];
    if let Some(s) = &scenario {
        rerun.push(s);
    }
    rerun.extend([
        "--good",
        &good.spec_text,
        "--bad",
        &bad.spec_text,
        "--target",
        &url,
    ]);
    format!(
        "{} was the embedded demo, stopped on exit: start one with `{}`, then send the curl to \
         {url} or rerun `{}`",
        info.url,
        shell::command(&demo),
        shell::command(&rerun)
    )
}

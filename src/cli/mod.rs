//! The command line: clap definitions, the shared argument groups (`args`), printing
//! (`output`) and dispatch. Each command returns `Result<Exit, sonde::Error>`; `main` prints
//! the error once with its causes and exits with `Error::exit` (README "Exit codes").

pub mod args;
pub mod bisect;
pub mod breakdown;
pub mod compare;
pub mod completions;
pub mod import;
pub mod merge;
pub mod output;
pub mod report;
pub mod repro;
pub mod run;
pub mod signals;
pub mod target;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub use crate::error::{Error, Exit, gate_exit};

#[derive(Debug, Parser)]
#[command(
    name = "sonde",
    version,
    about = "Diagnose and load-test HTTP APIs: percentiles you can trust, phase breakdowns, CI gates",
    after_help = "Exit codes: 0 success, 1 a gate failed, 2 invalid input, 3 runtime failure, 4 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (or one URL) under load and print per-step percentiles.
    Run(Box<run::RunArgs>),
    /// Where a page load spends its time: per request, per phase, per Server-Timing part.
    Breakdown(Box<breakdown::BreakdownArgs>),
    /// Replay a flow under several environments (× a matrix of items) and compare outcomes.
    Repro(Box<repro::ReproArgs>),
    /// Find the minimal set of differences between a good and a bad environment that fails.
    Bisect(Box<bisect::BisectArgs>),
    /// Check scenario files without sending anything.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Merge shard results (`run --shard K/N`) exactly into one result.
    Merge(merge::MergeArgs),
    /// Compare a run with a baseline run: exit 1 on a significant regression, 2 if not comparable.
    Compare(compare::CompareArgs),
    /// Render a saved run as table, json, md, junit or html.
    Report(report::ReportArgs),
    /// Serve the reference investment API the shipped scenarios run against.
    Demo(crate::demo::cli::DemoArgs),
    /// Turn a browser's "Copy as cURL" or HAR export into a scenario (secrets as placeholders).
    Import(import::ImportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: completions::Shell,
    },
    /// Print the man page (roff) on stdout: `sonde man > ~/.local/share/man/man1/sonde.1`.
    Man,
}

/// Runs the parsed command to its exit code.
pub async fn dispatch(cli: Cli) -> Result<Exit, Error> {
    match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Breakdown(args) => breakdown::run(*args).await,
        Command::Repro(args) => repro::run(*args).await,
        // Boxed: bisect's future holds the flow, the search and the report (16 KB).
        Command::Bisect(args) => Box::pin(bisect::run(*args)).await,
        Command::Validate { files } => validate(&files),
        Command::Merge(args) => merge::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Import(args) => import::run(args),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man => completions::man(),
        Command::Demo(args) => crate::demo::cli::run(args)
            .await
            .map(|()| Exit::Ok)
            .map_err(Error::Demo),
    }
}

fn validate(files: &[PathBuf]) -> Result<Exit, Error> {
    let mut bad = Vec::new();
    for f in files {
        match crate::scenario::load(f, &crate::scenario::Overrides::default()) {
            Ok(plan) => println!(
                "ok  {} ({}: {} steps)",
                f.display(),
                plan.name,
                plan.request_steps().count()
            ),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(Error::Scenarios(bad))
    }
}

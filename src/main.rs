//! The `sonde` binary (demo-only stand-in; the lead's main.rs replaces it): parses arguments,
//! calls the library, prints the error once with its causes, exits with the documented code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sonde::demo::cli::DemoArgs;

#[derive(Debug, Parser)]
#[command(
    name = "sonde",
    version,
    about = "Diagnostics and load testing for HTTP APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the demo investment API.
    Demo(DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sonde: cannot start the async runtime: {err}");
            return ExitCode::from(3);
        }
    };
    let result = match cli.command {
        Command::Demo(args) => runtime.block_on(sonde::demo::cli::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut msg = format!("sonde: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                msg.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{msg}");
            ExitCode::from(3)
        }
    }
}

//! `sonde report RUN.json --format F [-o FILE] [--baseline BASE.json]`: render a saved run (and
//! optionally its comparison with a baseline) in any report format. Always exit 0 once written:
//! judging the run is `run`'s and `compare`'s job.

use super::args::{OutputFormat, stdout_formats};
use super::compare::load_run;
use super::{Error, Exit};
use crate::gate::{self, CompareOptions};
use crate::report::{self, Format};
use clap::Args;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A result file written by `sonde run --out run.json`.
    pub run: PathBuf,
    /// Output format (default: from the -o extension, else table).
    #[arg(long, short = 'f', value_parser = stdout_formats(&["table", "json", "md", "junit", "html"]))]
    pub format: Option<OutputFormat>,
    /// Write to FILE instead of stdout.
    #[arg(long = "out", short = 'o')]
    pub out: Option<PathBuf>,
    /// Include the comparison with this baseline run (default tolerance and confidence).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
}

pub fn run(a: &ReportArgs) -> Result<Exit, Error> {
    let format = match (a.format, &a.out) {
        (Some(f), _) => Format::from(f),
        (None, Some(p)) => Format::for_path(p).map_err(Error::OutputPath)?,
        (None, None) => Format::Table,
    };
    let summary = load_run(&a.run)?;
    let cmp = match &a.baseline {
        Some(b) => {
            let base = load_run(b)?;
            Some(
                gate::compare(&base, &summary, &CompareOptions::default()).map_err(|source| {
                    Error::NotComparable {
                        context: String::new(),
                        source,
                    }
                })?,
            )
        }
        None => None,
    };
    let bytes = match (format, &a.out) {
        // The table on stdout fits (and colours) a terminal, as `run` and `compare` do.
        (report::Format::Table, None) => report::table::TableReport::for_stdout()
            .render_full(&summary, cmp.as_ref())
            .into_bytes(),
        _ => format
            .reporter()
            .render_with(&summary, cmp.as_ref())
            .map_err(Error::Output)?,
    };
    if let Some(p) = &a.out {
        report::write_atomic(p, &bytes).map_err(Error::Output)?;
    } else {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a message.
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
    }
    Ok(Exit::Ok)
}

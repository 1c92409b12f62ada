//! `sonde import curl FILE` and `sonde import har FILE [--entry …]`: turn a browser's "Copy as
//! cURL" or HAR export into scenario YAML (stdout or `-o FILE`). Only reads the input and writes
//! the output; secrets become `${SONDE_…}` placeholders unless `--include-sensitive`.

use super::{Error, Exit};
use crate::import::{self, EmitOptions, EntrySelector, ImportError};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub what: ImportWhat,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImportWhat {
    /// A "Copy as cURL" command (Chrome/Firefox; bash, POSIX or Windows cmd dialect).
    Curl {
        /// The file holding the curl command.
        file: PathBuf,
        /// Write the scenario here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Keep secret values in the scenario instead of `${SONDE_…}` placeholders.
        #[arg(long)]
        include_sensitive: bool,
    },
    /// One entry of a HAR 1.2 export (Chrome, Firefox).
    Har {
        /// The HAR file.
        file: PathBuf,
        /// The entry: a 0-based index, or text its URL contains (first match). Required when
        /// the file holds several entries.
        #[arg(long, value_name = "URL-SUBSTRING|INDEX")]
        entry: Option<String>,
        /// Write the scenario here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Keep secret values in the scenario instead of `${SONDE_…}` placeholders.
        #[arg(long)]
        include_sensitive: bool,
    },
}

fn scenario_name(file: &Path) -> String {
    file.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("imported")
        .to_string()
}

fn input_error(file: &Path, source: ImportError) -> Error {
    let message = match &source {
        ImportError::Io { .. } => source.to_string(),
        e if e.position().is_some() => format!("{}:{e}", file.display()),
        e => format!("{}: {e}", file.display()),
    };
    Error::Import { message, source }
}

/// Runs `sonde import …`: exit 0 on success, 2 on an unreadable or invalid input, 3 when the
/// output cannot be written.
pub fn run(args: ImportArgs) -> Result<Exit, Error> {
    let (imported, file, output, include_sensitive, label) = match args.what {
        ImportWhat::Curl {
            file,
            output,
            include_sensitive,
        } => {
            let i = import::read_curl_file(&file).map_err(|e| input_error(&file, e))?;
            let label = format!("curl {}", file.display());
            (i, file, output, include_sensitive, label)
        }
        ImportWhat::Har {
            file,
            entry,
            output,
            include_sensitive,
        } => {
            let sel = entry
                .as_deref()
                .map_or(EntrySelector::Only, EntrySelector::parse);
            let i = import::import_har_file(&file, &sel).map_err(|e| input_error(&file, e))?;
            let idx = match i.source {
                import::Source::Har { entry } => entry,
                import::Source::Curl(_) => 0,
            };
            let label = format!("HAR {} (entry {idx})", file.display());
            (i, file, output, include_sensitive, label)
        }
    };
    let emitted = import::to_scenario_yaml(
        &imported,
        &EmitOptions {
            name: scenario_name(&file),
            source_label: label,
            include_sensitive,
        },
    );
    match output {
        None => print!("{}", emitted.yaml),
        Some(out) => {
            crate::report::write_atomic(&out, emitted.yaml.as_bytes()).map_err(Error::Output)?;
            eprintln!("wrote {}", out.display());
        }
    }
    if !emitted.placeholders.is_empty() {
        let vars: Vec<&str> = emitted
            .placeholders
            .iter()
            .map(|p| p.var.as_str())
            .collect();
        eprintln!(
            "secrets are placeholders; export before running: {}",
            vars.join(" ")
        );
    }
    Ok(Exit::Ok)
}

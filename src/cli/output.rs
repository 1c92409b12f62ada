//! Printing shared by several commands: a run's result on stdout plus its `--out` files and the
//! GitHub step summary (`run`, `merge`), and the width a table may take on a terminal.

use super::Error;
use super::args::OutputFormat;
use crate::aggregate::Summary;
use crate::report::{self, table::TableReport};
use std::path::{Path, PathBuf};

/// Prints the summary on stdout in `format` (table or json), writes every `--out` file, and
/// appends the markdown to `$GITHUB_STEP_SUMMARY` when set (shared by `run` and `merge`).
pub fn publish(summary: &Summary, format: OutputFormat, outs: &[PathBuf]) -> Result<(), Error> {
    match format {
        OutputFormat::Json => println!(
            "{}",
            report::json::script_summary(summary).map_err(Error::Output)?
        ),
        _ => print!("{}", TableReport::for_stdout().render_string(summary)),
    }
    report::write_outputs(summary, outs).map_err(Error::Output)?;
    if let Err(e) = report::append_github_step_summary(summary, None) {
        eprintln!("warning: {e}");
    }
    Ok(())
}

/// The width a wide table may take: on a terminal, its width (else `$COLUMNS`, else 100,
/// within 60..=240); piped, `None`: full width, never wrapped mid-number.
#[must_use]
pub fn fit_width() -> Option<u16> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let t = comfy_table::Table::new();
    Some(
        t.width()
            .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
            .unwrap_or(100)
            .clamp(60, 240),
    )
}

/// `out.json` with `.ENV` before the extension (`out.b.json`): the second environment's file.
#[must_use]
pub fn with_suffix(p: &Path, env: &str) -> PathBuf {
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let ext = p.extension().and_then(|s| s.to_str()).unwrap_or("json");
    p.with_file_name(format!("{stem}.{env}.{ext}"))
}

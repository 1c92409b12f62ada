//! `sonde compare RUN.json --baseline BASE.json`: load two saved runs, compare them
//! (`gate::compare`), print the verdict, write the reports asked for, exit 1 on a regression and
//! 2 when the runs are not comparable. No statistics and no formatting live here.

use super::args::{OutputFormat, stdout_formats};
use super::{Error, Exit, gate_exit};
use crate::aggregate::Summary;
use crate::gate::{self, CompareOptions, GateVerdict};
use crate::report::{self, md::MarkdownReport, table::TableReport};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run to judge (a result file written by `sonde run --out run.json`).
    pub run: PathBuf,
    /// The reference run to compare against.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Smallest relative slowdown that may fail the gate (`5%` or `0.05`).
    #[arg(long, default_value = "5%")]
    pub tolerance: String,
    /// Smallest absolute change of a percentile that may fail the gate (`1ms`, `500us`, `0`):
    /// a phase going from 1 µs to 2 µs is twice as slow and matters to nobody.
    #[arg(long = "min-diff", default_value = "1ms")]
    pub min_diff: String,
    /// Confidence of the significance tests, for all steps together (`99%` or `0.99`).
    #[arg(long, default_value = "99%")]
    pub confidence: String,
    /// Also write the report to FILE; the extension picks the format
    /// (txt, json = the comparison, md, xml = JUnit, html). Repeatable.
    #[arg(long = "out", short = 'o')]
    pub outs: Vec<PathBuf>,
    /// What to print on stdout.
    #[arg(long, default_value = "table", value_parser = stdout_formats(&["table", "json", "md"]))]
    pub format: OutputFormat,
}

/// `5%`, `5 %` or `0.05` → 0.05.
pub fn parse_fraction(s: &str, what: &str) -> Result<f64, Error> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    match v {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(Error::usage(format!(
            "--{what} `{s}`: expected a percentage such as 5% or a fraction such as 0.05"
        ))),
    }
}

/// Reads a saved run result; anything unreadable or of another schema is invalid input. The
/// flat summary of `sonde run --format json` is recognised and named, with what to pass instead.
pub fn load_run(path: &Path) -> Result<Summary, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::SavedRun(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        let schema = v.get("schema").and_then(|s| s.as_str());
        let flat = v.get("http").and_then(|h| h.get("p50_ms")).is_some();
        if schema == Some(crate::report::json::SCRIPT_SCHEMA) || (schema.is_none() && flat) {
            return Err(Error::SavedRun(format!(
                "{}: this is the script summary of `sonde run --format json` ({}), which holds \
                 percentiles but no histograms, so no significance can be tested; compare the \
                 full result instead: `sonde run ... --out run.json`, then `sonde compare \
                 run.json --baseline BASE.json` (both written by --out)",
                path.display(),
                crate::report::json::SCRIPT_SCHEMA
            )));
        }
    }
    let s: Summary = serde_json::from_str(&text).map_err(|e| {
        Error::SavedRun(format!(
            "{}: not a sonde run result ({e}); write one with `sonde run --out run.json`",
            path.display()
        ))
    })?;
    if !s.schema.starts_with("sonde.run/v1") {
        return Err(Error::SavedRun(format!(
            "{}: schema `{}` is not supported (expected sonde.run/v1)",
            path.display(),
            s.schema
        )));
    }
    Ok(s)
}

pub fn run(a: &CompareArgs) -> Result<Exit, Error> {
    let tolerance = parse_fraction(&a.tolerance, "tolerance")?;
    if tolerance >= 10.0 {
        return Err(Error::usage(format!(
            "--tolerance `{}`: must be below 1000%",
            a.tolerance
        )));
    }
    let confidence = parse_fraction(&a.confidence, "confidence")?;
    if !(0.5..1.0).contains(&confidence) {
        return Err(Error::usage(format!(
            "--confidence `{}`: must be at least 50% and below 100%",
            a.confidence
        )));
    }
    let min_diff_ms = crate::scenario::parse_duration(&a.min_diff)
        .map_err(|e| {
            Error::usage(format!(
                "--min-diff `{}`: {e} (a duration such as 1ms, 500us or 0)",
                a.min_diff
            ))
        })?
        .as_secs_f64()
        * 1000.0;
    for p in &a.outs {
        report::Format::for_path(p).map_err(Error::OutputPath)?;
    }
    let baseline = load_run(&a.baseline)?;
    let candidate = load_run(&a.run)?;
    let opts = CompareOptions {
        tolerance,
        confidence,
        min_diff_ms,
    };
    let cmp =
        gate::compare(&baseline, &candidate, &opts).map_err(|source| Error::NotComparable {
            context: format!(
                "cannot compare {} with the baseline {}: ",
                a.run.display(),
                a.baseline.display()
            ),
            source,
        })?;
    match a.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&cmp)?),
        OutputFormat::Md => print!("{}", MarkdownReport.render_string(&candidate, Some(&cmp))),
        _ => print!(
            "{}",
            TableReport::for_stdout().render_full(&candidate, Some(&cmp))
        ),
    }
    report::write_outputs_with(&candidate, Some(&cmp), &a.outs).map_err(Error::Output)?;
    report::append_github_step_summary(&candidate, Some(&cmp)).map_err(Error::Output)?;
    // The same gate as `run` and `merge`, on the comparison: one line per regressed row.
    let verdict = GateVerdict {
        passed: !cmp.regressed(),
        reasons: cmp
            .gating_rows()
            .filter_map(|r| r.why.as_ref())
            .map(|why| format!("regressed: {why}"))
            .collect(),
    };
    Ok(gate_exit(&verdict))
}

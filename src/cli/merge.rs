//! `sonde merge FILE... -o OUT [--allow-partial] [--threshold ...]`: shard results → one exact
//! result → table/JSON/files → the same exit codes as `run`. The checks live in `shard::merge`,
//! the arithmetic in `aggregate::merge`; this file only wires them to the command line.

use super::args::{OutputFormat, TABLE_JSON, stdout_formats};
use super::{Error, Exit, gate_exit, output};
use crate::shard::merge::{self, MergeOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard result files (`sonde run --shard K/N --out shard-K.json`), in any order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged result to FILE; the extension picks the format. Repeatable.
    #[arg(long = "out", short = 'o', required = true)]
    pub outs: Vec<PathBuf>,
    /// Merge even if shards are missing; the result says which and that it is partial.
    #[arg(long)]
    pub allow_partial: bool,
    /// Another threshold on the merged result, e.g. 'profile: p(95) < 300ms' (repeatable).
    /// The plan's own thresholds, recorded in every shard file, always apply.
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// What to print on stdout.
    #[arg(long, default_value = "table", value_parser = stdout_formats(TABLE_JSON))]
    pub format: OutputFormat,
}

pub fn run(a: &MergeArgs) -> Result<Exit, Error> {
    let opts = MergeOptions {
        allow_partial: a.allow_partial,
    };
    // Every output is checked before the merge prints anything, as `run` does before it sends.
    crate::report::check_outputs(&a.outs).map_err(Error::OutputPath)?;
    let mut summary = merge::merge_files(&a.files, &opts)?;
    let thresholds = merge::thresholds(&summary, &a.thresholds)?;
    merge::evaluate_thresholds(&thresholds, &mut summary);
    if let Some(info) = &summary.shard {
        eprintln!(
            "merged {} of {} shard(s) of `{}` (plan hash {}){}",
            info.merged_from.len(),
            info.count,
            summary.scenario,
            info.plan_hash,
            if info.partial {
                format!(" — PARTIAL: missing {:?}", info.missing)
            } else {
                String::new()
            }
        );
    }
    output::publish(&summary, a.format, &a.outs)?;
    if summary.interrupted {
        return Ok(Exit::Interrupted);
    }
    // The same gate as `sonde run`: thresholds, failed requests and iterations.
    Ok(gate_exit(&crate::gate::verdict(&summary, None)))
}

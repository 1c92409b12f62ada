//! `sonde merge`'s checks and bookkeeping: reads shard result files, refuses those that do not
//! belong together (another scenario or plan hash, another shard count, a duplicate index, a
//! missing shard unless allowed, a truncated or invalid file), each naming the file; then adds
//! them with `aggregate::merge` and records which shards the result holds; the plan's thresholds
//! (recorded by every shard) and `--threshold`s are evaluated on the merged result with
//! `gate::evaluate`. Writes nothing and prints nothing.

use crate::aggregate::Summary;
use crate::aggregate::merge::{self as exact, SummaryMergeError};
use crate::aggregate::summary::{MergedShard, SCHEMA, ShardInfo};
use crate::gate::Threshold;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Largest result file read (a run result is kilobytes to a few megabytes).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Merge even when shards are missing; the result then says which (`shard.partial`).
    pub allow_partial: bool,
}

/// Every refusal names the file it is about. All are invalid input (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ShardMergeError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: not a complete sonde result ({reason}); was it truncated or cut short?")]
    Invalid { file: String, reason: String },
    #[error("{file}: schema `{got}` is not `{SCHEMA}`")]
    Schema { file: String, got: String },
    #[error(
        "{file}: not a shard result (no `shard` object): run each part with `sonde run --shard K/N`"
    )]
    NotShard { file: String },
    #[error("{file}: already a merged result (of shards {of}); merge the shard files themselves")]
    AlreadyMerged { file: String, of: String },
    #[error("{file}: scenario `{got}` is not `{want}` of {first}")]
    OtherScenario {
        file: String,
        got: String,
        want: String,
        first: String,
    },
    #[error(
        "{file}: plan hash {got} differs from {want} of {first}: the shards were run with another \
         scenario version, target, load or flags"
    )]
    OtherPlan {
        file: String,
        got: String,
        want: String,
        first: String,
    },
    #[error("{file}: shard {index}/{got} is not one of {want} shards like {first}")]
    OtherCount {
        file: String,
        index: u32,
        got: u32,
        want: u32,
        first: String,
    },
    #[error("{file}: shard {index} is also in {other}")]
    Duplicate {
        file: String,
        index: u32,
        other: String,
    },
    #[error(
        "missing shard(s) {list} of {count}: got {got} of {count} files; merge them all, or pass \
         --allow-partial to merge what is there (the result then says it is partial)"
    )]
    Missing {
        list: String,
        count: u32,
        got: usize,
    },
    #[error("{file}: {source}")]
    Arith {
        file: String,
        source: SummaryMergeError,
    },
    #[error("no result files to merge")]
    Empty,
    #[error("{0}")]
    Threshold(String),
}

fn read(path: &Path) -> Result<Summary, ShardMergeError> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| ShardMergeError::Read {
        file: file.clone(),
        source,
    })?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ShardMergeError::Read {
            file: file.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ShardMergeError::Invalid {
            file,
            reason: format!("larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    let s: Summary = serde_json::from_slice(&bytes).map_err(|e| ShardMergeError::Invalid {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    if s.schema != SCHEMA {
        return Err(ShardMergeError::Schema {
            file,
            got: s.schema,
        });
    }
    Ok(s)
}

fn list(xs: &[u32]) -> String {
    xs.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// Reads and merges the shard files (see the module doc). The result's `shard` says which
/// shards it holds; its notes state a partial merge and the shards' start skew.
pub fn merge_files(files: &[PathBuf], opts: &MergeOptions) -> Result<Summary, ShardMergeError> {
    if files.is_empty() {
        return Err(ShardMergeError::Empty);
    }
    let mut parts: Vec<Part> = Vec::with_capacity(files.len());
    for path in files {
        let part = read_part(path, &parts)?;
        parts.push(part);
    }
    let count = parts.first().map_or(0, |p| p.2.count);
    let missing: Vec<u32> = (0..count)
        .filter(|k| !parts.iter().any(|(_, _, i)| i.index == Some(*k)))
        .collect();
    if !missing.is_empty() && !opts.allow_partial {
        return Err(ShardMergeError::Missing {
            list: list(&missing),
            count,
            got: parts.len(),
        });
    }
    // Shard order, not argument order: the merge is the same however the shell sorts the glob.
    parts.sort_by_key(|(_, _, i)| i.index);
    let summaries: Vec<Summary> = parts.iter().map(|(_, s, _)| s.clone()).collect();
    let mut out = exact::merge(&summaries).map_err(|source| ShardMergeError::Arith {
        file: source
            .part()
            .and_then(|i| parts.get(i))
            .map_or_else(String::new, |p| p.0.clone()),
        source,
    })?;
    let Some((_, _, first)) = parts.first() else {
        return Err(ShardMergeError::Empty);
    };
    let merged_from: Vec<MergedShard> = parts
        .iter()
        .map(|(file, _, i)| MergedShard {
            index: i.index.unwrap_or_default(),
            file: file.clone(),
            started_clock: i.started_clock.clone(),
        })
        .collect();
    out.notes.extend(merge_notes(&parts, &missing, count));
    out.shard = Some(ShardInfo {
        index: None,
        count,
        plan_hash: first.plan_hash.clone(),
        start_at: first.start_at.clone(),
        started_clock: None,
        thresholds: first.thresholds.clone(),
        merged_from,
        missing: missing.clone(),
        partial: !missing.is_empty(),
    });
    Ok(out)
}

/// One shard file: its name as given, its result, its shard info.
type Part = (String, Summary, ShardInfo);

/// Reads one shard file and checks it against the ones read before: a shard (not a merge), of
/// the same scenario, plan and count, not a duplicate.
fn read_part(path: &Path, parts: &[Part]) -> Result<Part, ShardMergeError> {
    let file = path.display().to_string();
    let s = read(path)?;
    let Some(info) = s.shard.clone() else {
        return Err(ShardMergeError::NotShard { file });
    };
    let Some(index) = info.index else {
        let of: Vec<u32> = info.merged_from.iter().map(|m| m.index).collect();
        return Err(ShardMergeError::AlreadyMerged {
            file,
            of: list(&of),
        });
    };
    exact::validate(0, &s).map_err(|source| ShardMergeError::Arith {
        file: file.clone(),
        source,
    })?;
    if let Some((first, f, fi)) = parts.first() {
        if s.scenario != f.scenario {
            return Err(ShardMergeError::OtherScenario {
                file,
                got: s.scenario,
                want: f.scenario.clone(),
                first: first.clone(),
            });
        }
        if info.plan_hash != fi.plan_hash {
            return Err(ShardMergeError::OtherPlan {
                file,
                got: info.plan_hash,
                want: fi.plan_hash.clone(),
                first: first.clone(),
            });
        }
        if info.count != fi.count {
            return Err(ShardMergeError::OtherCount {
                file,
                index,
                got: info.count,
                want: fi.count,
                first: first.clone(),
            });
        }
    }
    if let Some((other, _, _)) = parts.iter().find(|(_, _, i)| i.index == Some(index)) {
        return Err(ShardMergeError::Duplicate {
            file,
            index,
            other: other.clone(),
        });
    }
    Ok((file, s, info))
}

/// What a reader of the merged result must know: a partial merge, how the series were merged,
/// the start skew, differing `--start-at`.
fn merge_notes(parts: &[Part], missing: &[u32], count: u32) -> Vec<String> {
    let mut notes = Vec::new();
    if !missing.is_empty() {
        notes.push(format!(
            "PARTIAL merge: shard(s) {} of {count} missing; the totals cover {} of {count} shards, \
             not the whole plan",
            list(missing),
            parts.len()
        ));
    }
    notes.push(format!(
        "merged from {} shard(s) of {count}: histograms added exactly; per-interval p50/p99 in \
         the time series are the shards' request-weighted mean and maximum",
        parts.len()
    ));
    if let Some(skew) = start_skew(parts) {
        notes.push(format!(
            "shards started within {:.1} ms of each other",
            skew * 1000.0
        ));
    }
    let start_ats: Vec<&Option<String>> = parts.iter().map(|p| &p.2.start_at).collect();
    if start_ats.windows(2).any(|w| w[0] != w[1]) {
        notes.push("the shards were given different --start-at times".to_string());
    }
    notes
}

/// Spread of the shards' recorded start clocks, in seconds (None if fewer than two recorded).
fn start_skew(parts: &[(String, Summary, ShardInfo)]) -> Option<f64> {
    let clocks: Vec<std::time::SystemTime> = parts
        .iter()
        .filter_map(|(_, _, i)| i.started_clock.as_deref())
        .filter_map(|c| humantime::parse_rfc3339_weak(c.trim_end_matches(['Z', 'z'])).ok())
        .collect();
    let (min, max) = (clocks.iter().min()?, clocks.iter().max()?);
    (clocks.len() >= 2).then(|| max.duration_since(*min).map_or(0.0, |d| d.as_secs_f64()))
}

/// Parses `metric: expression` (the `--threshold` form, also how shard files record them) and
/// checks the metric names a step of the merged result, `http` or `iterations`.
pub fn parse_threshold(text: &str, summary: &Summary) -> Result<Threshold, ShardMergeError> {
    let mut depth = 0i32;
    let split = text.char_indices().find(|&(_, c)| {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        c == ':' && depth == 0
    });
    let bad = |m: String| ShardMergeError::Threshold(format!("--threshold `{text}`: {m}"));
    let Some((i, _)) = split else {
        return Err(bad(
            "a threshold is `metric: expression`, e.g. 'profile: p(95) < 300ms'".into(),
        ));
    };
    let t =
        crate::gate::parse_threshold(&text[..i], &text[i + 1..]).map_err(|e| bad(e.to_string()))?;
    let step = t.metric.step.as_str();
    if step != "iterations" && summary.step(step).is_none() {
        let names: Vec<&str> = summary.steps.iter().map(|s| s.name.as_str()).collect();
        return Err(bad(format!(
            "unknown step `{step}` (the result has: {}, http, iterations)",
            names.join(", ")
        )));
    }
    Ok(t)
}

/// The thresholds a merged result must meet: the plan's (recorded by the shards), then `extra`
/// from the command line.
pub fn thresholds(summary: &Summary, extra: &[String]) -> Result<Vec<Threshold>, ShardMergeError> {
    let recorded = summary
        .shard
        .as_ref()
        .map(|s| s.thresholds.clone())
        .unwrap_or_default();
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for text in recorded.iter().chain(extra) {
        let t = parse_threshold(text, summary)?;
        if seen.insert(t.source.clone(), ()).is_none() {
            out.push(t);
        }
    }
    Ok(out)
}

/// Evaluates `thresholds` on the merged `summary` with the gate's evaluator and stores the
/// results in `summary.thresholds`, as `sonde run` does for a single run.
pub fn evaluate_thresholds(thresholds: &[Threshold], summary: &mut Summary) {
    summary.thresholds = crate::gate::evaluate(thresholds, summary);
}

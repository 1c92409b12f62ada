//! `thresholds:` in the file and `--threshold` on the command line: parsed with the gate's
//! grammar, then checked against the scenario's step and env names (a threshold on nothing is
//! an error, never a silent pass). Positions point inside the key or the expression.

use super::error::{Diag, Pos, did_you_mean};
use super::reader::{R, Reader};
use super::yaml::{Node, Value};
use crate::gate::threshold::{self, MetricRef, Problem, Threshold};
use std::time::Duration;

const BUILTIN_METRICS: [&str; 2] = ["http", "iterations"];

/// The names a threshold may refer to.
pub struct Names<'a> {
    /// Request steps of `steps:` (setup steps have no metrics in the run's summary).
    pub steps: &'a [&'a str],
    pub setup: &'a [&'a str],
    /// Steps of `steps:` that poll (the only ones with a `.settle` metric).
    pub polls: &'a [&'a str],
    pub envs: &'a [&'a str],
}

/// The position of bytes `off..off+len` of `text`, which was read from the token at `pos`.
fn sub_pos(r: &Reader<'_>, pos: Pos, text: &str, off: usize, len: usize) -> Pos {
    let base = r.src.find_in(pos, text);
    if text.is_empty() || (base == pos && pos.len != text.chars().count()) {
        return pos;
    }
    char_span(base.line, base.col, text, off, len)
}

fn char_span(line: usize, col: usize, text: &str, off: usize, len: usize) -> Pos {
    let off = off.min(text.len());
    let end = (off + len).min(text.len());
    let (Some(before), Some(tok)) = (text.get(..off), text.get(off..end)) else {
        return Pos { line, col, len: 1 };
    };
    Pos {
        line,
        col: col + before.chars().count(),
        len: tok.chars().count().max(1),
    }
}

fn to_diag(p: Problem, locate: impl Fn(bool, usize, usize) -> Pos) -> Diag {
    Diag::new(locate(p.in_key, p.offset, p.len), p.message).help_opt(p.help)
}

/// Checks the metric's step and env tag against the scenario.
fn check_names(
    m: &MetricRef,
    key: &str,
    names: &Names<'_>,
    locate: &dyn Fn(bool, usize, usize) -> Pos,
) -> R<()> {
    let (steps, envs) = (names.steps, names.envs);
    let lead = key.len() - key.trim_start().len();
    if names.setup.contains(&m.step.as_str()) {
        let pos = locate(true, lead, m.step.len());
        return Err(Diag::new(pos, format!("`{}` is a setup step", m.step))
            .help("thresholds apply to the steps of `steps`, `http` and `iterations`"));
    }
    if !steps.contains(&m.step.as_str()) && !BUILTIN_METRICS.contains(&m.step.as_str()) {
        let pos = locate(true, lead, m.step.len());
        let names = steps.iter().copied().chain(BUILTIN_METRICS);
        return Err(
            Diag::new(pos, format!("unknown step `{}` in threshold", m.step)).help(
                did_you_mean(&m.step, names)
                    .unwrap_or_else(|| "a threshold names a step, `http` or `iterations`".into()),
            ),
        );
    }
    if m.phase.as_deref() == Some(threshold::SETTLE) && !names.polls.contains(&m.step.as_str()) {
        let off = lead + m.step.len() + 1;
        let d = Diag::new(
            locate(true, off, threshold::SETTLE.len()),
            format!("`{}` does not poll: it has no settle time", m.step),
        );
        let help = if names.polls.is_empty() {
            "`.settle` is the settle time of a `poll:` step; this scenario has none".to_string()
        } else {
            format!(
                "`.settle` is the settle time of a `poll:` step: {}",
                names
                    .polls
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(d.help(help));
    }
    if let Some(env) = m.tags.get("env")
        && !envs.contains(&env.as_str())
    {
        let off = key.find(env.as_str()).unwrap_or(lead);
        let d = Diag::new(
            locate(true, off, env.len()),
            format!("unknown env `{env}` in threshold"),
        );
        let help = did_you_mean(env, envs.iter().copied()).unwrap_or_else(|| {
            if envs.is_empty() {
                "the scenario defines no env".into()
            } else {
                format!("the scenario defines `{}`", envs.join("`, `"))
            }
        });
        return Err(d.help(help));
    }
    Ok(())
}

/// Reads the `thresholds:` mapping: `key: [expr, ...]`, `key: expr`, or list items
/// `{threshold: expr, abort_on_fail: true, delay: 10s}`.
pub fn read(r: &Reader<'_>, n: &Node, names: &Names<'_>) -> R<Vec<Threshold>> {
    let m = r.map(n, "`thresholds`")?;
    let mut out = Vec::new();
    for (key, kn, v) in &m.entries {
        let locate_key = |_: bool, off: usize, len: usize| sub_pos(r, kn.pos, key, off, len);
        let metric = threshold::parse_key(key).map_err(|p| to_diag(p, locate_key))?;
        check_names(&metric, key, names, &locate_key)?;
        let items: Vec<&Node> = match &v.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Str(_) | Value::Map(_) => vec![v],
            _ => {
                return Err(Diag::new(
                    v.pos,
                    format!(
                        "expected a list of thresholds for `{key}`, found {}",
                        v.kind()
                    ),
                )
                .help("e.g. `profile: [\"p(95) < 300ms\"]`"));
            }
        };
        if items.is_empty() {
            return Err(Diag::new(v.pos, format!("`{key}` has no thresholds")));
        }
        for item in items {
            let (expr_node, abort, delay) = match &item.value {
                Value::Map(_) => {
                    let im = r.map(item, "a threshold")?;
                    im.allow(&["threshold", "abort_on_fail", "delay"], "a threshold")?;
                    let Some(e) = im.get("threshold") else {
                        return Err(Diag::new(item.pos, "missing `threshold` expression")
                            .help("e.g. `{threshold: \"p(95) < 300ms\", abort_on_fail: true}`"));
                    };
                    let abort = im
                        .get("abort_on_fail")
                        .map(|a| r.bool(a, "`abort_on_fail`"))
                        .transpose()?
                        .unwrap_or(false);
                    let delay = match im.get("delay") {
                        Some(d) if !abort => {
                            return Err(Diag::new(
                                d.pos,
                                "`delay` applies with `abort_on_fail: true`",
                            ));
                        }
                        Some(d) => Some(r.positive_duration(
                            d,
                            "`delay`",
                            Duration::from_secs(24 * 3600),
                        )?),
                        None => None,
                    };
                    (e, abort, delay)
                }
                _ => (item, false, None),
            };
            let expr = r.string(expr_node, "a threshold expression")?;
            let locate = |in_key: bool, off: usize, len: usize| {
                if in_key {
                    sub_pos(r, kn.pos, key, off, len)
                } else {
                    sub_pos(r, expr_node.pos, &expr, off, len)
                }
            };
            let mut t = threshold::parse(key, &expr).map_err(|p| to_diag(p, locate))?;
            t.abort_on_fail = abort;
            t.delay = delay;
            out.push(t);
        }
    }
    Ok(out)
}

/// Parses `--threshold 'profile: p(95) < 300ms'`; positions are columns in that text (line 1).
pub fn from_cli(cli: &str, names: &Names<'_>) -> R<Threshold> {
    let mut depth = 0i32;
    let split = cli.char_indices().find(|&(_, c)| {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        c == ':' && depth == 0
    });
    let Some((i, _)) = split else {
        return Err(Diag::new(
            Pos {
                line: 1,
                col: 1,
                len: cli.chars().count().max(1),
            },
            "a threshold is `metric: expression`",
        )
        .help("e.g. `--threshold 'profile: p(95) < 300ms'`"));
    };
    let (key, expr) = (&cli[..i], &cli[i + 1..]);
    let locate = |in_key: bool, off: usize, len: usize| {
        if in_key {
            char_span(1, 1, key, off, len)
        } else {
            char_span(1, 1 + key.chars().count() + 1, expr, off, len)
        }
    };
    let metric = threshold::parse_key(key).map_err(|p| to_diag(p, locate))?;
    check_names(&metric, key, names, &locate)?;
    threshold::parse(key, expr).map_err(|p| to_diag(p, locate))
}

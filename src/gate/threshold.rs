//! Threshold grammar, close to k6's: `<stat> <op> <value><unit>` on a metric key such as
//! `profile`, `http`, `profile.wait`, `profile.server_timing.db`, `profile{env:whale}`.

use std::collections::BTreeMap;
use std::time::Duration;

/// What a threshold is about.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRef {
    /// A step name, or `http` for all requests.
    pub step: String,
    /// One of dns, connect, tls, send, wait, receive, total, or `settle` (a poll step's settle
    /// time); None: the step's request latency.
    pub phase: Option<String>,
    /// A `Server-Timing` metric name (`profile.server_timing.db`).
    pub server_timing: Option<String>,
    /// `{env:whale}` style tags.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// p(N), N in (0, 100].
    Percentile(f64),
    Avg,
    Min,
    Max,
    Med,
    Count,
    /// Requests (or iterations) per second.
    Rate,
    /// Failed / total, a fraction in [0, 1].
    ErrorRate,
    /// Dropped iterations (open model).
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The text as written, e.g. `profile: p(95) < 300ms`.
    pub source: String,
    pub metric: MetricRef,
    pub stat: Stat,
    pub op: Cmp,
    /// Normalised: durations in milliseconds, percentages as a fraction (1% = 0.01),
    /// rates per second, counts as is.
    pub value: f64,
    pub abort_on_fail: bool,
    /// With `abort_on_fail`: do not evaluate for abort before this much of the run has passed.
    pub delay: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ThresholdError {
    /// Byte offset inside the expression where the problem starts.
    pub offset: usize,
    pub message: String,
}

/// After a poll step's name (`settled.settle`): its settle time, from the start of `since` to
/// the passing response, apart from the latency of its requests.
pub const SETTLE: &str = "settle";

/// The phases a metric key may name after the step (`profile.wait`).
pub const PHASES: [&str; 7] = ["dns", "connect", "tls", "send", "wait", "receive", "total"];

/// Tags a metric key may carry (`profile{env:whale}`).
pub const TAGS: [&str; 1] = ["env"];

const STATS: [&str; 9] = [
    "p(95)",
    "avg",
    "min",
    "max",
    "med",
    "count",
    "rate",
    "error_rate",
    "dropped",
];

/// A parse problem with enough detail for a positioned message (used by the scenario loader).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// True when the problem is in the metric key, false when in the expression.
    pub in_key: bool,
    /// Byte offset inside the key or the expression.
    pub offset: usize,
    /// Byte length of the offending token (at least 1).
    pub len: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    fn new(in_key: bool, offset: usize, len: usize, message: impl Into<String>) -> Problem {
        Problem {
            in_key,
            offset,
            len: len.max(1),
            message: message.into(),
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
}

impl From<Problem> for ThresholdError {
    fn from(p: Problem) -> ThresholdError {
        let message = match &p.help {
            Some(h) => format!("{} ({h})", p.message),
            None => p.message,
        };
        ThresholdError {
            offset: p.offset,
            message,
        }
    }
}

fn closest(word: &str, candidates: &[&str]) -> Option<String> {
    crate::suggest::did_you_mean(word, candidates.iter().copied())
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Parses a metric key: `step`, `step.phase`, `step.server_timing.name`, each optionally
/// followed by `{tag:value,...}`. Step names are not checked against a scenario here.
pub fn parse_metric_key(key: &str) -> Result<MetricRef, ThresholdError> {
    parse_key(key).map_err(ThresholdError::from)
}

/// Like `parse_metric_key`, with the detail the scenario loader renders.
// Long by design: one hand-written parser over the key (step, phase or server_timing part,
// tags), each branch with its own positioned error and suggestion.
pub fn parse_key(key: &str) -> Result<MetricRef, Problem> {
    let lead = key.len() - key.trim_start().len();
    let body = key.trim();
    let (path, tags_src) = match body.find('{') {
        Some(i) => (&body[..i], Some((lead + i, &body[i..]))),
        None => (body, None),
    };
    if path.trim().is_empty() {
        return Err(Problem::new(true, lead, 1, "empty metric name")
            .help("name a step, `http` or `iterations`"));
    }
    let mut parts = Vec::new();
    let mut at = lead;
    for part in path.split('.') {
        if part.is_empty() || !part.chars().all(is_ident_char) {
            return Err(Problem::new(
                true,
                at,
                part.len(),
                format!("invalid metric name part `{part}`"),
            )
            .help("a metric is `step`, `step.phase` or `step.server_timing.name`"));
        }
        parts.push((at, part));
        at += part.len() + 1;
    }
    let mut m = MetricRef {
        step: parts[0].1.to_string(),
        phase: None,
        server_timing: None,
        tags: BTreeMap::new(),
    };
    match parts.as_slice() {
        [_] => {}
        [(_, step), (o, second), rest @ ..] => {
            if *step == "iterations" {
                return Err(Problem::new(
                    true,
                    *o,
                    second.len(),
                    "`iterations` has no phases or server timings",
                ));
            }
            if *second == "server_timing" {
                match rest {
                    [(_, name)] => m.server_timing = Some((*name).to_string()),
                    [] => {
                        return Err(Problem::new(
                            true,
                            *o,
                            second.len(),
                            "`server_timing` needs a metric name",
                        )
                        .help(format!("e.g. `{step}.server_timing.db`")));
                    }
                    [(o2, extra), ..] => {
                        return Err(Problem::new(
                            true,
                            *o2,
                            extra.len(),
                            format!("unexpected `.{extra}` after the server-timing name"),
                        ));
                    }
                }
            } else if PHASES.contains(second) || *second == SETTLE {
                if let Some((o2, extra)) = rest.first() {
                    return Err(Problem::new(
                        true,
                        *o2,
                        extra.len(),
                        format!("unexpected `.{extra}` after the phase"),
                    ));
                }
                m.phase = Some((*second).to_string());
            } else {
                let mut names: Vec<&str> = PHASES.to_vec();
                names.push("server_timing");
                names.push(SETTLE);
                let p = Problem::new(true, *o, second.len(), format!("unknown phase `{second}`"));
                return Err(match closest(second, &names) {
                    Some(h) => p.help(h),
                    None => p.help(format!(
                        "phases are {}; a poll step also has `settle`",
                        PHASES.join(", ")
                    )),
                });
            }
        }
        [] => {}
    }
    if let Some((start, src)) = tags_src {
        let Some(inner) = src.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            return Err(
                Problem::new(true, start, src.len(), "unclosed `{` in metric tags")
                    .help("write tags as `{env:whale}`"),
            );
        };
        let mut off = start + 1;
        for tag in inner.split(',') {
            let Some((k, v)) = tag.split_once(':') else {
                return Err(Problem::new(
                    true,
                    off,
                    tag.len(),
                    format!("invalid tag `{}`", tag.trim()),
                )
                .help("write tags as `{env:whale}`"));
            };
            let (k, v) = (k.trim(), v.trim());
            if !TAGS.contains(&k) {
                let p = Problem::new(true, off, tag.len(), format!("unknown tag `{k}`"));
                return Err(
                    p.help(closest(k, &TAGS).unwrap_or_else(|| "the only tag is `env`".into()))
                );
            }
            if v.is_empty() || !v.chars().all(is_ident_char) {
                return Err(Problem::new(
                    true,
                    off,
                    tag.len(),
                    format!("invalid value `{v}` for tag `{k}`"),
                ));
            }
            if m.tags.insert(k.to_string(), v.to_string()).is_some() {
                return Err(Problem::new(
                    true,
                    off,
                    tag.len(),
                    format!("tag `{k}` given twice"),
                ));
            }
            off += tag.len() + 1;
        }
    }
    Ok(m)
}

/// Parses one expression (`p(95) < 300ms`) for a metric key (`profile.wait{env:whale}`).
/// Name validation against the scenario's steps happens in the scenario loader.
pub fn parse_threshold(metric_key: &str, expr: &str) -> Result<Threshold, ThresholdError> {
    parse(metric_key, expr).map_err(ThresholdError::from)
}

/// Like `parse_threshold`, with the detail the scenario loader renders.
// Long by design: one hand-written parser over the expression (stat, operator, limit, unit),
// each branch with its own positioned error and suggestion.
pub fn parse(metric_key: &str, expr: &str) -> Result<Threshold, Problem> {
    let metric = parse_key(metric_key)?;
    let mut cur = Cursor { s: expr, at: 0 };
    cur.skip_ws();
    let stat_at = cur.at;
    let word = cur.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
    let stat = match word {
        "p" => parse_percentile(&mut cur, stat_at)?,
        "avg" => Stat::Avg,
        "min" => Stat::Min,
        "max" => Stat::Max,
        "med" => Stat::Med,
        "count" => Stat::Count,
        "rate" => Stat::Rate,
        "error_rate" => Stat::ErrorRate,
        "dropped" => Stat::Dropped,
        "" => {
            return Err(Problem::new(false, stat_at, 1, "expected a statistic")
                .help("e.g. `p(95) < 300ms`, `avg < 100ms`, `error_rate < 1%`"));
        }
        other => {
            let p = Problem::new(
                false,
                stat_at,
                other.len(),
                format!("unknown statistic `{other}`"),
            );
            let help = if other.len() > 1
                && other.starts_with('p')
                && other[1..].chars().all(|c| c.is_ascii_digit())
            {
                format!("write percentiles as `p({})`", &other[1..])
            } else {
                closest(other, &STATS).unwrap_or_else(|| {
                    "statistics are p(N), avg, min, max, med, count, rate, error_rate, dropped"
                        .into()
                })
            };
            return Err(p.help(help));
        }
    };
    check_stat_fits(&metric, stat, stat_at, word.len().max(1))?;
    cur.skip_ws();
    let op_at = cur.at;
    let op_src = cur.take_while(|c| matches!(c, '<' | '>' | '=' | '!'));
    let op = match op_src {
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        ">" => Cmp::Gt,
        ">=" => Cmp::Ge,
        "==" => Cmp::Eq,
        "!=" => Cmp::Ne,
        "" => {
            return Err(Problem::new(false, op_at, 1, "expected a comparison")
                .help("use one of <, <=, >, >=, ==, !="));
        }
        other => {
            let p = Problem::new(
                false,
                op_at,
                other.len(),
                format!("unknown comparison `{other}`"),
            );
            return Err(p.help(if other == "=" {
                "did you mean `==`?".to_string()
            } else {
                "use one of <, <=, >, >=, ==, !=".to_string()
            }));
        }
    };
    cur.skip_ws();
    let value_at = cur.at;
    let num = cur.take_while(|c| c.is_ascii_digit() || c == '.');
    let n: f64 = match num.parse() {
        Ok(n) if f64::is_finite(n) => n,
        _ => {
            let shown = cur.rest().split_whitespace().next().unwrap_or("");
            let p = Problem::new(
                false,
                value_at,
                shown.len().max(num.len()),
                "expected a number",
            );
            return Err(p.help("e.g. `300ms`, `1%`, `50/s`, `10`"));
        }
    };
    let unit_at = cur.at;
    let unit = cur.take_while(|c| !c.is_whitespace());
    let value = normalise(stat, n, unit, value_at, unit_at, num.len())?;
    cur.skip_ws();
    if !cur.rest().is_empty() {
        let extra = cur.rest().trim_end();
        return Err(Problem::new(false, cur.at, extra.len(), "unexpected text"));
    }
    Ok(Threshold {
        source: format!("{}: {}", metric_key.trim(), expr.trim()),
        metric,
        stat,
        op,
        value,
        abort_on_fail: false,
        delay: None,
    })
}

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }
    fn skip_ws(&mut self) {
        self.take_while(char::is_whitespace);
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.at += n;
        &rest[..n]
    }
    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }
}

fn parse_percentile(cur: &mut Cursor<'_>, stat_at: usize) -> Result<Stat, Problem> {
    cur.skip_ws();
    if !cur.eat('(') {
        return Err(Problem::new(false, stat_at, 1, "expected `(` after `p`")
            .help("write percentiles as `p(95)`"));
    }
    cur.skip_ws();
    let n_at = cur.at;
    let n_src = cur.take_while(|c| c.is_ascii_digit() || c == '.');
    cur.skip_ws();
    let n: f64 = n_src.parse().map_err(|_| {
        Problem::new(false, n_at, n_src.len(), "expected a percentile number")
            .help("write percentiles as `p(95)` or `p(99.9)`")
    })?;
    if !(n > 0.0 && n <= 100.0) {
        return Err(Problem::new(
            false,
            n_at,
            n_src.len(),
            format!("percentile {n_src} is out of range"),
        )
        .help("a percentile is above 0 and at most 100"));
    }
    if !cur.eat(')') {
        return Err(Problem::new(
            false,
            cur.at,
            1,
            "expected `)` after the percentile",
        ));
    }
    Ok(Stat::Percentile(n))
}

fn is_duration_stat(s: Stat) -> bool {
    matches!(
        s,
        Stat::Percentile(_) | Stat::Avg | Stat::Min | Stat::Max | Stat::Med
    )
}

fn check_stat_fits(m: &MetricRef, stat: Stat, at: usize, len: usize) -> Result<(), Problem> {
    let name = match stat {
        Stat::Count => "count",
        Stat::Rate => "rate",
        Stat::ErrorRate => "error_rate",
        Stat::Dropped => "dropped",
        _ => return Ok(()),
    };
    if stat == Stat::Dropped && (m.step != "iterations") {
        return Err(
            Problem::new(false, at, len, "`dropped` is measured on `iterations`")
                .help("write it as `iterations: [\"dropped == 0\"]`"),
        );
    }
    if m.phase.is_some() || m.server_timing.is_some() {
        return Err(Problem::new(
            false,
            at,
            len,
            format!("`{name}` applies to a step, `http` or `iterations`, not to a phase or server timing"),
        )
        .help("phases, settle times and server timings take p(N), avg, min, max or med"));
    }
    Ok(())
}

fn normalise(
    stat: Stat,
    n: f64,
    unit: &str,
    value_at: usize,
    unit_at: usize,
    num_len: usize,
) -> Result<f64, Problem> {
    let bad_unit = |expected: &str| {
        Problem::new(
            false,
            unit_at,
            unit.len(),
            format!("unexpected unit `{unit}`"),
        )
        .help(expected.to_string())
    };
    if is_duration_stat(stat) {
        return match unit {
            "ms" => Ok(n),
            "s" => Ok(n * 1e3),
            "us" | "µs" => Ok(n / 1e3),
            "m" => Ok(n * 60e3),
            "" => Err(
                Problem::new(false, value_at, num_len, "a latency threshold needs a unit")
                    .help(format!("write `{n}ms` or `{n}s`")),
            ),
            _ => Err(bad_unit("latencies take ms or s")),
        };
    }
    match stat {
        Stat::ErrorRate => match unit {
            "%" if n <= 100.0 => Ok(n / 100.0),
            "" if n <= 1.0 => Ok(n),
            "%" | "" => Err(Problem::new(
                false,
                value_at,
                num_len + unit.len(),
                "an error rate is between 0% and 100%",
            )),
            _ => Err(bad_unit(
                "error_rate takes a percentage like `1%` (or a fraction like `0.01`)",
            )),
        },
        Stat::Rate => match unit {
            "" | "/s" => Ok(n),
            "/m" => Ok(n / 60.0),
            "/h" => Ok(n / 3600.0),
            _ => Err(bad_unit("rate takes /s, /m or /h")),
        },
        _ => match unit {
            "" => Ok(n),
            _ => Err(bad_unit("counts take no unit")),
        },
    }
}

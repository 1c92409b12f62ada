//! The `load:` section and the load-related CLI overrides, merged and validated into a
//! `plan::LoadModel` plus the run's hard cap (`max_duration`). Rules are in docs/scenario.md.

use super::Overrides;
use super::error::{Diag, Pos};
use super::reader::{R, Reader};
use super::yaml::{Node, Value};
use crate::plan::{LoadModel, Stage};
use crate::units::{fmt_duration, parse_rate};
use std::time::Duration;

pub const MAX_VUS: u32 = 100_000;
pub const MAX_RATE: f64 = 1_000_000.0;
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
const MAX_ITERATIONS: i128 = 1_000_000_000;
/// Added to a duration-driven run's length for its hard cap.
pub const GRACE: Duration = Duration::from_secs(30);
/// Hard cap of an iteration-driven run.
pub const ITERATION_CAP: Duration = Duration::from_secs(600);

/// A value and where it came from: a position in the file, or a command-line flag.
#[derive(Debug, Clone)]
struct Field<T> {
    v: T,
    pos: Pos,
    flag: Option<&'static str>,
}

impl<T> Field<T> {
    fn file(v: T, pos: Pos) -> Field<T> {
        Field { v, pos, flag: None }
    }
    fn cli(v: T, flag: &'static str) -> Field<T> {
        Field {
            v,
            pos: Pos::NONE,
            flag: Some(flag),
        }
    }
    /// How to name the field in a message: `vus` or `--vus`.
    fn name(&self, key: &str) -> String {
        match self.flag {
            Some(f) => format!("`{f}`"),
            None => format!("`{key}`"),
        }
    }
}

#[derive(Debug, Clone)]
struct RawStage {
    duration: Duration,
    target: Node,
}

#[derive(Debug, Clone, Default)]
struct Spec {
    pos: Pos,
    vus: Option<Field<u32>>,
    duration: Option<Field<Duration>>,
    iterations: Option<Field<u64>>,
    rate: Option<Field<f64>>,
    max_vus: Option<Field<u32>>,
    stages: Option<Field<Vec<RawStage>>>,
}

fn read(r: &Reader<'_>, n: &Node) -> R<Spec> {
    let m = r.map(n, "`load`")?;
    m.allow(
        &[
            "vus",
            "duration",
            "iterations",
            "rate",
            "max_vus",
            "stages",
            "graceful_stop",
        ],
        "load",
    )?;
    let mut s = Spec {
        pos: n.pos,
        ..Spec::default()
    };
    if let Some(v) = m.get("vus") {
        let vus = r.int(v, "`vus`", 1, i128::from(MAX_VUS))?;
        s.vus = Some(Field::file(u32::try_from(vus).unwrap_or(MAX_VUS), v.pos));
    }
    if let Some(v) = m.get("max_vus") {
        let vus = r.int(v, "`max_vus`", 1, i128::from(MAX_VUS))?;
        s.max_vus = Some(Field::file(u32::try_from(vus).unwrap_or(MAX_VUS), v.pos));
    }
    if let Some(v) = m.get("duration") {
        s.duration = Some(Field::file(r.duration(v, "`duration`")?, v.pos));
    }
    if let Some(v) = m.get("iterations") {
        let it = r.int(v, "`iterations`", 1, MAX_ITERATIONS)?;
        s.iterations = Some(Field::file(u64::try_from(it).unwrap_or(1), v.pos));
    }
    if let Some(v) = m.get("rate") {
        s.rate = Some(Field::file(rate(r, v, "`rate`")?, v.pos));
    }
    if let Some(v) = m.get("stages") {
        let mut stages = Vec::new();
        for st in r.seq(v, "`stages`")? {
            let sm = r.map(st, "a stage")?;
            sm.allow(&["duration", "target"], "a stage")?;
            let (Some(d), Some(t)) = (sm.get("duration"), sm.get("target")) else {
                return Err(Diag::new(st.pos, "a stage needs `duration` and `target`")
                    .help("e.g. `{duration: 30s, target: 50}`"));
            };
            stages.push(RawStage {
                duration: r.positive_duration(d, "stage `duration`", MAX_DURATION)?,
                target: t.clone(),
            });
        }
        if stages.is_empty() {
            return Err(Diag::new(v.pos, "`stages` needs at least one stage"));
        }
        s.stages = Some(Field::file(stages, v.pos));
    }
    Ok(s)
}

fn rate(r: &Reader<'_>, n: &Node, what: &str) -> R<f64> {
    match &n.value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        _ => {
            let s = r.string(n, what)?;
            parse_rate(&s).map_err(|e| Diag::new(n.pos, format!("invalid {what}: {e}")))
        }
    }
}

/// Applies the CLI's load overrides: `--rate` makes the model open, `--vus` closed; either
/// drops the other model's settings. `--duration` or `--iterations` replace the run length.
fn apply(s: &mut Spec, o: &Overrides) -> R<()> {
    if o.vus.is_some() && o.rate.is_some() {
        return Err(Diag::new(Pos::NONE, "`--vus` and `--rate` together")
            .help("an open model (`--rate`) caps virtual users with `--max-vus`"));
    }
    if o.duration.is_some() && o.iterations.is_some() {
        return Err(
            Diag::new(Pos::NONE, "`--duration` and `--iterations` together")
                .help("give one: a closed model runs for a duration or a number of iterations"),
        );
    }
    if let Some(rate) = o.rate {
        if s.rate.is_none() {
            s.stages = None;
            s.iterations = None;
        }
        s.vus = None;
        s.rate = Some(Field::cli(rate, "--rate"));
    }
    if let Some(vus) = o.vus {
        if s.rate.is_some() {
            s.stages = None;
        }
        s.rate = None;
        s.max_vus = None;
        s.vus = Some(Field::cli(vus, "--vus"));
    }
    if let Some(m) = o.max_vus {
        s.max_vus = Some(Field::cli(m, "--max-vus"));
    }
    if let Some(d) = o.duration {
        s.duration = Some(Field::cli(d, "--duration"));
        s.iterations = None;
        s.stages = None;
    }
    if let Some(i) = o.iterations {
        s.iterations = Some(Field::cli(i, "--iterations"));
        s.duration = None;
        s.stages = None;
    }
    Ok(())
}

fn check_duration(d: &Field<Duration>) -> R<Duration> {
    if d.v.is_zero() {
        return Err(Diag::new(
            d.pos,
            format!("{} must be greater than 0", d.name("duration")),
        )
        .help("write a positive duration such as `30s`; for one pass use `iterations: 1`"));
    }
    if d.v > MAX_DURATION {
        return Err(
            Diag::new(d.pos, format!("{} must be at most 24h", d.name("duration")))
                .help(format!("found {}", fmt_duration(d.v))),
        );
    }
    Ok(d.v)
}

fn check_vus(v: &Field<u32>, key: &str) -> R<u32> {
    if v.v == 0 || v.v > MAX_VUS {
        return Err(Diag::new(
            v.pos,
            format!(
                "{} must be between 1 and {MAX_VUS}, found {}",
                v.name(key),
                v.v
            ),
        ));
    }
    Ok(v.v)
}

fn check_rate(v: &Field<f64>, key: &str, zero_ok: bool) -> R<f64> {
    let ok = v.v.is_finite() && v.v <= MAX_RATE && (v.v > 0.0 || zero_ok && v.v == 0.0);
    if !ok {
        return Err(Diag::new(
            v.pos,
            format!("{} must be above 0 and at most 1000000/s", v.name(key)),
        ));
    }
    Ok(v.v)
}

/// The longest `graceful_stop` (k6's `gracefulStop`) a run may wait for in-flight requests.
pub const MAX_GRACEFUL_STOP: Duration = Duration::from_secs(3600);

/// `load.graceful_stop` (or `--graceful-stop`): how long in-flight requests may finish after
/// the load ends or is interrupted. 0 cancels them at once; at most an hour.
pub fn graceful_stop(r: &Reader<'_>, n: Option<&Node>, o: &Overrides) -> R<Duration> {
    let check = |d: Duration, pos: Pos, name: &str| {
        if d > MAX_GRACEFUL_STOP {
            Err(Diag::new(pos, format!("{name} must be at most 1h"))
                .help(format!("found {}", fmt_duration(d))))
        } else {
            Ok(d)
        }
    };
    if let Some(d) = o.graceful_stop {
        return check(d, Pos::NONE, "`--graceful-stop`");
    }
    let Some(n) = n else {
        return Ok(crate::plan::DEFAULT_GRACEFUL_STOP);
    };
    let m = r.map(n, "`load`")?;
    match m.get("graceful_stop") {
        Some(v) => {
            let d = r.duration(v, "`graceful_stop`")?;
            check(d, v.pos, "`graceful_stop`")
        }
        None => Ok(crate::plan::DEFAULT_GRACEFUL_STOP),
    }
}

/// Reads and validates the load model; returns it with the run's hard cap.
pub fn build(r: &Reader<'_>, n: Option<&Node>, o: &Overrides) -> R<(LoadModel, Duration)> {
    let mut s = match n {
        Some(n) => read(r, n)?,
        None => Spec::default(),
    };
    let had_load = n.is_some();
    apply(&mut s, o)?;
    if let Some(rate) = &s.rate {
        return open(r, &s, rate);
    }
    if let Some(m) = &s.max_vus {
        return Err(
            Diag::new(m.pos, format!("{} goes with `rate`", m.name("max_vus")))
                .help("a closed model sets `vus`; an open model sets `rate` and `max_vus`"),
        );
    }
    let vus = s
        .vus
        .as_ref()
        .map(|v| check_vus(v, "vus"))
        .transpose()?
        .unwrap_or(1);
    let lengths = [
        s.duration.is_some(),
        s.iterations.is_some(),
        s.stages.is_some(),
    ];
    let given = lengths.iter().filter(|b| **b).count();
    if given == 0 && !had_load {
        let model = LoadModel::Closed {
            vus,
            duration: None,
            iterations: Some(1),
            stages: Vec::new(),
        };
        return Ok((model, ITERATION_CAP));
    }
    if given == 0 {
        return Err(
            Diag::new(s.pos, "`load` needs `duration`, `iterations` or `stages`")
                .help("e.g. `{vus: 10, duration: 30s}` or `{vus: 1, iterations: 5}`"),
        );
    }
    if given > 1 {
        let (pos, key) = match (&s.iterations, &s.stages) {
            (Some(i), _) if s.duration.is_some() => (i.pos, i.name("iterations")),
            (_, Some(st)) => (st.pos, st.name("stages")),
            _ => (s.pos, "`load`".to_string()),
        };
        return Err(
            Diag::new(pos, format!("{key} conflicts with another run length"))
                .help("a closed model runs for one of `duration`, `iterations` or `stages`"),
        );
    }
    if let Some(d) = &s.duration {
        let d = check_duration(d)?;
        let model = LoadModel::Closed {
            vus,
            duration: Some(d),
            iterations: None,
            stages: Vec::new(),
        };
        return Ok((model, d + GRACE));
    }
    if let Some(i) = &s.iterations {
        let model = LoadModel::Closed {
            vus,
            duration: None,
            iterations: Some(i.v),
            stages: Vec::new(),
        };
        return Ok((model, ITERATION_CAP));
    }
    let (stages, total) = stages(r, &s, false)?;
    let model = LoadModel::Closed {
        vus,
        duration: None,
        iterations: None,
        stages,
    };
    Ok((model, total + GRACE))
}

fn open(r: &Reader<'_>, s: &Spec, rate: &Field<f64>) -> R<(LoadModel, Duration)> {
    if let Some(v) = &s.vus {
        return Err(Diag::new(
            v.pos,
            format!("{} together with {}", v.name("vus"), rate.name("rate")),
        )
        .help("an open model caps virtual users with `max_vus`"));
    }
    let Some(max_vus) = &s.max_vus else {
        let help = if rate.flag.is_some() {
            "`--rate` makes the model open: add `--max-vus N` (or `max_vus` under `load`)"
        } else {
            "add `max_vus: N`, the most iterations in flight at once"
        };
        return Err(
            Diag::new(rate.pos, format!("{} needs `max_vus`", rate.name("rate"))).help(help),
        );
    };
    let max_vus = check_vus(max_vus, "max_vus")?;
    let base = check_rate(rate, "rate", false)?;
    if let Some(i) = &s.iterations {
        return Err(Diag::new(
            i.pos,
            format!("{} applies to closed models", i.name("iterations")),
        )
        .help("an open model runs for a `duration` or `stages`"));
    }
    match (&s.duration, &s.stages) {
        (Some(_), Some(st)) => Err(Diag::new(st.pos, "`stages` together with `duration`")
            .help("an open model runs for a `duration` or for its `stages`, not both")),
        (None, None) => {
            let help = if rate.flag.is_some() {
                "add `--duration`"
            } else {
                "add `duration: 1m` or `stages`"
            };
            Err(Diag::new(rate.pos, "an open model needs a duration").help(help))
        }
        (Some(d), None) => {
            let d = check_duration(d)?;
            let model = LoadModel::Open {
                rate: base,
                max_vus,
                duration: d,
                stages: Vec::new(),
            };
            Ok((model, d + GRACE))
        }
        (None, Some(_)) => {
            let (stages, total) = stages(r, s, true)?;
            let model = LoadModel::Open {
                rate: base,
                max_vus,
                duration: total,
                stages,
            };
            Ok((model, total + GRACE))
        }
    }
}

/// Stage targets are VU counts (closed) or rates (open); the sum of durations is at most 24h.
fn stages(r: &Reader<'_>, s: &Spec, open: bool) -> R<(Vec<Stage>, Duration)> {
    let Some(st) = &s.stages else {
        return Ok((Vec::new(), Duration::ZERO));
    };
    let mut out = Vec::with_capacity(st.v.len());
    let mut total = Duration::ZERO;
    for raw in &st.v {
        let target = if open {
            let v = rate(r, &raw.target, "stage `target`")?;
            check_rate(&Field::file(v, raw.target.pos), "target", true)?
        } else {
            r.int(&raw.target, "stage `target`", 0, i128::from(MAX_VUS))? as f64
        };
        total = total.saturating_add(raw.duration);
        out.push(Stage {
            duration: raw.duration,
            target,
        });
    }
    if total > MAX_DURATION {
        return Err(Diag::new(st.pos, "`stages` last longer than 24h in total")
            .help(format!("they add up to {}", fmt_duration(total))));
    }
    Ok((out, total))
}

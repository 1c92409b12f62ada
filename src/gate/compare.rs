//! Baseline comparison: two saved runs (`Summary`) → a `Comparison` with, per step, phase and
//! server-timing part, p50/p95/p99 ratios with confidence intervals, the error-rate change, a
//! verdict per row and, for a regressed step, *why* (the phase and server-timing part that moved
//! most). Refuses runs that are not comparable. The statistics live in `stats`; rendering in
//! `report`. Method (also in docs/ci-gates.md):
//!
//! * Each quantile's sampling distribution is bootstrapped from the HDR histogram itself
//!   (`stats`: Beta order statistics, 1000 replicates, fixed seed), for both runs; the interval
//!   of the ratio candidate/baseline is ln(ratio) ± z·sd of the replicate log-ratios.
//! * Requests within a run are not independent (a slow minute slows many requests), so the
//!   sample size is divided by each run's design effect: how much more the per-interval p50
//!   wanders than independent requests would (`stats::design_effect`).
//! * z is Bonferroni-corrected over the gating tests (steps × {p50, p95, p99, error rate}).
//! * A row regresses only when the whole interval lies beyond the tolerance: the ratio's lower
//!   bound exceeds 1 + tolerance (significant *and* beyond tolerance) and the quantile moved by
//!   at least `min_diff_ms` (1 ms by default): a receive phase going from 1 µs to 2 µs is twice
//!   as slow and matters to nobody. Phases and server-timing parts get verdicts too, but only
//!   steps gate.

use super::comparable::check_comparable;
use super::stats::{self, Cdf, Sampler};
use crate::aggregate::summary::{Stats, StepSummary};
use crate::aggregate::{PHASES, Summary};
use crate::units::ms;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub const COMPARE_SCHEMA: &str = "sonde.compare/v1";
const QUANTILES: [(f64, &str); 3] = [(0.50, "p50"), (0.95, "p95"), (0.99, "p99")];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// Relative change below which a difference never fails the gate (0.05 = 5 %).
    pub tolerance: f64,
    /// Confidence of the whole family of gating tests (0.99 = 99 %).
    pub confidence: f64,
    /// Absolute change (ms) below which a quantile is never regressed nor improved, however
    /// large the ratio: sub-millisecond phases double by chance.
    pub min_diff_ms: f64,
}

/// The default `--min-diff`: 1 ms.
pub const DEFAULT_MIN_DIFF_MS: f64 = 1.0;

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            tolerance: 0.05,
            confidence: 0.99,
            min_diff_ms: DEFAULT_MIN_DIFF_MS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompareError {
    #[error("the runs are not comparable: {0}")]
    NotComparable(String),
    #[error(
        "the {which} run holds no histogram for `{metric}` ({count} values): cannot test significance"
    )]
    NoHistogram {
        which: &'static str,
        metric: String,
        count: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regressed,
    Improved,
    NoSignificantChange,
    /// One side measured nothing.
    NoData,
}

impl Verdict {
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::NoSignificantChange => "no significant change",
            Verdict::NoData => "no data",
        }
    }
}

/// Identity of one side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    pub scenario: String,
    pub target: String,
    pub started_at: String,
    pub duration_s: f64,
    pub requests: u64,
    /// Sample sizes were divided by this (≥ 1) to account for drift within the run.
    pub design_effect: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileDelta {
    /// `p50`, `p95`, `p99`.
    pub stat: String,
    pub q: f64,
    pub baseline_ms: f64,
    pub candidate_ms: f64,
    /// candidate / baseline, with its confidence interval.
    pub ratio: f64,
    pub ratio_low: f64,
    pub ratio_high: f64,
    pub verdict: Verdict,
}

impl QuantileDelta {
    /// `1.42× ± 0.03 slower` / `1.10× ± 0.02 faster` (faster ratios are baseline/candidate);
    /// `2.38× [1.02, 8.56] slower` when the interval is not symmetric around the ratio (a
    /// log-scale interval of a wide ratio), where `±` would hide how far it reaches.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} {}", self.ratio_text(), self.direction())
    }

    /// `slower` or `faster`.
    #[must_use]
    pub fn direction(&self) -> &'static str {
        if self.ratio >= 1.0 {
            "slower"
        } else {
            "faster"
        }
    }

    /// The ratio and its interval without the direction: `1.42× ± 0.03`, `2.38× [1.02, 8.56]`.
    #[must_use]
    pub fn ratio_text(&self) -> String {
        let (r, lo, hi) = if self.ratio >= 1.0 {
            (self.ratio, self.ratio_low, self.ratio_high)
        } else {
            (
                1.0 / self.ratio.max(1e-9),
                1.0 / self.ratio_high.max(1e-9),
                1.0 / self.ratio_low.max(1e-9),
            )
        };
        let (below, above) = (r - lo, hi - r);
        // A log-scale interval is never exactly symmetric; `±` while the sides differ by at
        // most a quarter, `[low, high]` beyond (where `±` would misstate the reach).
        let symmetric = format!("{below:.2}") == format!("{above:.2}")
            || (below - above).abs() <= 0.25 * below.min(above);
        if symmetric {
            format!("{r:.2}× ± {:.2}", (hi - lo) / 2.0)
        } else {
            format!("{r:.2}× [{lo:.2}, {hi:.2}]")
        }
    }

    #[must_use]
    pub fn delta_ms(&self) -> f64 {
        self.candidate_ms - self.baseline_ms
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRateDelta {
    pub baseline: f64,
    pub candidate: f64,
    /// candidate − baseline (fractions), with its confidence interval.
    pub diff: f64,
    pub diff_low: f64,
    pub diff_high: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// `profile`, `profile.wait`, `profile.server_timing.db`, `http`.
    pub key: String,
    pub step: String,
    /// None for the step itself; `wait`, `server_timing.db` for its parts.
    pub part: Option<String>,
    /// Only step rows decide the exit code.
    pub gating: bool,
    pub baseline_count: u64,
    pub candidate_count: u64,
    pub quantiles: Vec<QuantileDelta>,
    pub error_rate: Option<ErrorRateDelta>,
    pub verdict: Verdict,
    /// For a regressed step: `profile: p95 +410 ms, of which wait +405 ms, db +398 ms`.
    pub why: Option<String>,
    /// For a regressed step: the candidate's slowest requests (trace and request ids), to
    /// open the regression in the tracing system.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemplars: Vec<crate::aggregate::Exemplar>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub schema: String,
    pub method: String,
    pub tolerance: f64,
    /// Absolute floor (ms): a quantile that moved less never regresses nor improves.
    #[serde(default)]
    pub min_diff_ms: f64,
    pub confidence: f64,
    /// Confidence of each single test after the Bonferroni correction.
    pub per_test_confidence: f64,
    pub baseline: RunRef,
    pub candidate: RunRef,
    pub rows: Vec<CompareRow>,
    pub only_in_baseline: Vec<String>,
    pub only_in_candidate: Vec<String>,
    pub notes: Vec<String>,
    /// Regressed when any gating row regressed; improved when one improved and none regressed.
    pub verdict: Verdict,
}

impl Comparison {
    #[must_use]
    pub fn regressed(&self) -> bool {
        self.verdict == Verdict::Regressed
    }

    pub fn gating_rows(&self) -> impl Iterator<Item = &CompareRow> {
        self.rows.iter().filter(|r| r.gating)
    }
}

pub const METHOD: &str = "bootstrap of p50/p95/p99 from the HDR histograms (Beta order statistics, \
1000 replicates, fixed seed), sample sizes divided by the between-interval design effect, \
Bonferroni-corrected over steps × {p50, p95, p99, error rate}; a row regresses when the whole \
confidence interval of the ratio lies beyond the tolerance and the quantile moved by at least \
the minimum difference";

/// One shared step's rows: its latency, each phase, its settle time, each Server-Timing part.
fn step_rows(
    sampler: &mut Sampler,
    ctx: &Ctx,
    b: &StepSummary,
    c: &StepSummary,
    rows: &mut Vec<CompareRow>,
    notes: &mut Vec<String>,
) -> Result<(), CompareError> {
    // A poll step measured before settle time had a metric of its own: the baseline's
    // latency is the settle time, the candidate's is request latency. Shown, not gated.
    let predates_settle = b.settle.is_empty() && !c.settle.is_empty() && b.unsettled == 0;
    if predates_settle {
        notes.push(format!(
            "step `{}`: the baseline predates settle time as its own metric (its latency is \
             the poll's settle time); its latency is shown, not gated: record a new baseline",
            c.name
        ));
    }
    rows.push(step_row(sampler, ctx, b, c, !predates_settle)?);
    for p in PHASES {
        if let (Some(pb), Some(pc)) = (b.phases.get(p), c.phases.get(p)) {
            let key = format!("{}.{p}", c.name);
            rows.push(dist_row(sampler, ctx, &c.name, p, &key, pb, pc)?);
        }
    }
    if !b.settle.is_empty() && !c.settle.is_empty() {
        // A poll step's settle time, apart from its requests' latency.
        let key = format!("{}.settle", c.name);
        rows.push(dist_row(
            sampler, ctx, &c.name, "settle", &key, &b.settle, &c.settle,
        )?);
    }
    for (name, pc) in &c.server_timing {
        if let Some(pb) = b.server_timing.get(name) {
            let part = format!("server_timing.{name}");
            let key = format!("{}.{part}", c.name);
            rows.push(dist_row(sampler, ctx, &c.name, &part, &key, pb, pc)?);
        }
    }
    Ok(())
}

/// The comparison's verdict from its gating rows: a regression anywhere wins, then an
/// improvement.
fn overall(rows: &[CompareRow]) -> Verdict {
    let gating: Vec<Verdict> = rows
        .iter()
        .filter(|r| r.gating)
        .map(|r| r.verdict)
        .collect();
    if gating.contains(&Verdict::Regressed) {
        Verdict::Regressed
    } else if gating.contains(&Verdict::Improved) {
        Verdict::Improved
    } else {
        Verdict::NoSignificantChange
    }
}

/// Compares `candidate` against `baseline`.
pub fn compare(
    baseline: &Summary,
    candidate: &Summary,
    opts: &CompareOptions,
) -> Result<Comparison, CompareError> {
    let mut notes = check_comparable(baseline, candidate)?;
    let common = common_steps(baseline, candidate)?;
    let mut sampler = Sampler::default();
    let deff_b = run_design_effect(&mut sampler, baseline, "baseline")?;
    let deff_c = run_design_effect(&mut sampler, candidate, "candidate")?;
    let tests = common.len() * (QUANTILES.len() + 1);
    let alpha = (1.0 - opts.confidence.clamp(0.5, 0.999_999)) / tests as f64;
    let ctx = Ctx {
        z: stats::normal_quantile(1.0 - alpha / 2.0),
        tolerance: opts.tolerance.max(0.0),
        min_diff_us: opts.min_diff_ms.max(0.0) * 1000.0,
        deff_b,
        deff_c,
    };

    let rows = compare_rows(&mut sampler, &ctx, baseline, candidate, &common, &mut notes)?;
    let verdict = overall(&rows);
    if deff_b > 1.5 || deff_c > 1.5 {
        notes.push(format!(
            "latency drifted within the runs (design effect {deff_b:.1} baseline, {deff_c:.1} \
             candidate): intervals are widened accordingly"
        ));
    }
    Ok(Comparison {
        schema: COMPARE_SCHEMA.into(),
        method: METHOD.into(),
        tolerance: opts.tolerance,
        min_diff_ms: opts.min_diff_ms.max(0.0),
        confidence: opts.confidence,
        per_test_confidence: 1.0 - alpha,
        baseline: run_ref(baseline, deff_b),
        candidate: run_ref(candidate, deff_c),
        rows,
        only_in_baseline: only_in(baseline, candidate),
        only_in_candidate: only_in(candidate, baseline),
        notes,
        verdict,
    })
}

/// The candidate's steps the baseline has too; none is an error.
fn common_steps<'a>(
    baseline: &Summary,
    candidate: &'a Summary,
) -> Result<Vec<&'a StepSummary>, CompareError> {
    let common: Vec<&StepSummary> = candidate
        .steps
        .iter()
        .filter(|s| baseline.steps.iter().any(|b| b.name == s.name))
        .collect();
    if common.is_empty() {
        return Err(CompareError::NotComparable(
            "no step name is shared by the two runs".into(),
        ));
    }
    Ok(common)
}

/// The names of `a`'s steps that `b` does not have.
fn only_in(a: &Summary, b: &Summary) -> Vec<String> {
    a.steps
        .iter()
        .filter(|s| b.step(&s.name).is_none())
        .map(|s| s.name.clone())
        .collect()
}

/// The rows of each common step (the first explained, with the candidate's slowest exemplars
/// when it regressed), then the whole run's HTTP row when there is more than one step.
fn compare_rows(
    sampler: &mut Sampler,
    ctx: &Ctx,
    baseline: &Summary,
    candidate: &Summary,
    common: &[&StepSummary],
    notes: &mut Vec<String>,
) -> Result<Vec<CompareRow>, CompareError> {
    let mut rows = Vec::new();
    for c in common {
        let Some(b) = baseline.step(&c.name) else {
            continue;
        };
        let first = rows.len();
        step_rows(sampler, ctx, b, c, &mut rows, notes)?;
        let why = explain(&rows[first..], b, c);
        if let Some(r) = rows.get_mut(first) {
            r.why = why;
            if r.verdict == Verdict::Regressed {
                r.exemplars = c.exemplars.slowest.iter().take(3).cloned().collect();
            }
        }
    }
    if common.len() > 1 {
        rows.push(step_row(
            sampler,
            ctx,
            &baseline.http,
            &candidate.http,
            false,
        )?);
    }
    Ok(rows)
}

struct Ctx {
    z: f64,
    tolerance: f64,
    /// `min_diff_ms` in µs, the unit of the histograms.
    min_diff_us: f64,
    deff_b: f64,
    deff_c: f64,
}

fn run_ref(s: &Summary, deff: f64) -> RunRef {
    RunRef {
        scenario: s.scenario.clone(),
        target: s.target.url.clone(),
        started_at: s.started_at.clone(),
        duration_s: s.duration_s,
        requests: s.http.requests,
        design_effect: (deff * 100.0).round() / 100.0,
    }
}

fn cdf_of(st: &Stats, which: &'static str, metric: &str) -> Result<Cdf, CompareError> {
    let cdf = Cdf::of(&st.histogram());
    if st.count > 0 && cdf.count() == 0 {
        return Err(CompareError::NoHistogram {
            which,
            metric: metric.to_string(),
            count: st.count,
        });
    }
    Ok(cdf)
}

fn run_design_effect(
    sampler: &mut Sampler,
    s: &Summary,
    which: &'static str,
) -> Result<f64, CompareError> {
    let cdf = cdf_of(&s.http.latency, which, "http")?;
    let n = cdf.count() as f64;
    if n < 2.0 {
        return Ok(1.0);
    }
    let sd1 = stats::log_quantile_sd(sampler, &cdf, 0.5, n) * n.sqrt();
    let intervals: Vec<(u64, f64)> = s.series.iter().map(|p| (p.requests, p.p50_ms)).collect();
    Ok(stats::design_effect(&intervals, sd1))
}

fn quantile_deltas(
    sampler: &mut Sampler,
    ctx: &Ctx,
    b: &Cdf,
    c: &Cdf,
) -> (Vec<QuantileDelta>, Verdict) {
    if b.count() == 0 || c.count() == 0 {
        return (Vec::new(), Verdict::NoData);
    }
    let nb = b.count() as f64 / ctx.deff_b;
    let nc = c.count() as f64 / ctx.deff_c;
    let up = 1.0 + ctx.tolerance;
    let mut out = Vec::new();
    for (q, label) in QUANTILES {
        let pb = b.at(q).max(1) as f64;
        let pc = c.at(q).max(1) as f64;
        let logs: Vec<f64> = (0..stats::REPLICATES)
            .map(|_| {
                let xb = sampler.quantile(b, q, nb).max(1) as f64;
                let xc = sampler.quantile(c, q, nc).max(1) as f64;
                (xc / xb).ln()
            })
            .collect();
        let sd = stats::mean_sd(&logs).1;
        let lr = (pc / pb).ln();
        let (lo, hi) = ((lr - ctx.z * sd).exp(), (lr + ctx.z * sd).exp());
        // Significant, beyond tolerance *and* beyond the absolute floor.
        let verdict = if lo > up && pc - pb >= ctx.min_diff_us {
            Verdict::Regressed
        } else if hi < 1.0 / up && pb - pc >= ctx.min_diff_us {
            Verdict::Improved
        } else {
            Verdict::NoSignificantChange
        };
        out.push(QuantileDelta {
            stat: label.into(),
            q,
            baseline_ms: pb / 1000.0,
            candidate_ms: pc / 1000.0,
            ratio: round4(pc / pb),
            ratio_low: round4(lo),
            ratio_high: round4(hi),
            verdict,
        });
    }
    let v = combine(out.iter().map(|d| d.verdict));
    (out, v)
}

fn error_delta(
    sampler: &mut Sampler,
    ctx: &Ctx,
    b: &StepSummary,
    c: &StepSummary,
) -> Option<ErrorRateDelta> {
    if b.requests == 0 || c.requests == 0 {
        return None;
    }
    let (rb, rc) = (b.error_rate(), c.error_rate());
    let diff = rc - rb;
    let sd = if b.errors == 0 && c.errors == 0 {
        0.0
    } else {
        // Jeffreys posterior draws of each rate at the effective sample size.
        let (nb, eb) = (b.requests as f64 / ctx.deff_b, b.errors as f64 / ctx.deff_b);
        let (nc, ec) = (c.requests as f64 / ctx.deff_c, c.errors as f64 / ctx.deff_c);
        let ds: Vec<f64> = (0..stats::REPLICATES)
            .map(|_| sampler.beta(ec + 0.5, nc - ec + 0.5) - sampler.beta(eb + 0.5, nb - eb + 0.5))
            .collect();
        stats::mean_sd(&ds).1
    };
    let (lo, hi) = (diff - ctx.z * sd, diff + ctx.z * sd);
    let margin = ctx.tolerance * rb;
    let verdict = if lo > margin && lo > 0.0 {
        Verdict::Regressed
    } else if hi < -margin && hi < 0.0 {
        Verdict::Improved
    } else {
        Verdict::NoSignificantChange
    };
    Some(ErrorRateDelta {
        baseline: round6(rb),
        candidate: round6(rc),
        diff: round6(diff),
        diff_low: round6(lo),
        diff_high: round6(hi),
        verdict,
    })
}

fn step_row(
    sampler: &mut Sampler,
    ctx: &Ctx,
    b: &StepSummary,
    c: &StepSummary,
    gating: bool,
) -> Result<CompareRow, CompareError> {
    let cb = cdf_of(&b.latency, "baseline", &b.name)?;
    let cc = cdf_of(&c.latency, "candidate", &c.name)?;
    let (quantiles, qv) = quantile_deltas(sampler, ctx, &cb, &cc);
    let error_rate = error_delta(sampler, ctx, b, c);
    let verdict = combine([
        qv,
        error_rate.as_ref().map_or(Verdict::NoData, |e| e.verdict),
    ]);
    Ok(CompareRow {
        key: c.name.clone(),
        step: c.name.clone(),
        part: None,
        gating,
        baseline_count: b.latency.count,
        candidate_count: c.latency.count,
        quantiles,
        error_rate,
        verdict,
        why: None,
        exemplars: Vec::new(),
    })
}

fn dist_row(
    sampler: &mut Sampler,
    ctx: &Ctx,
    step: &str,
    part: &str,
    key: &str,
    b: &Stats,
    c: &Stats,
) -> Result<CompareRow, CompareError> {
    let cb = cdf_of(b, "baseline", key)?;
    let cc = cdf_of(c, "candidate", key)?;
    let (quantiles, verdict) = quantile_deltas(sampler, ctx, &cb, &cc);
    Ok(CompareRow {
        key: key.to_string(),
        step: step.to_string(),
        part: Some(part.to_string()),
        gating: false,
        baseline_count: b.count,
        candidate_count: c.count,
        quantiles,
        error_rate: None,
        verdict,
        why: None,
        exemplars: Vec::new(),
    })
}

/// Regressed beats improved beats no change; no data only when nothing else is known.
fn combine(vs: impl IntoIterator<Item = Verdict>) -> Verdict {
    let vs: Vec<Verdict> = vs.into_iter().collect();
    if vs.contains(&Verdict::Regressed) {
        Verdict::Regressed
    } else if vs.contains(&Verdict::Improved) {
        Verdict::Improved
    } else if vs.contains(&Verdict::NoSignificantChange) {
        Verdict::NoSignificantChange
    } else {
        Verdict::NoData
    }
}

/// `rows[0]` is the step; the rest its phases and server-timing parts.
fn explain(rows: &[CompareRow], b: &StepSummary, c: &StepSummary) -> Option<String> {
    let step = rows.first()?;
    if step.verdict != Verdict::Regressed {
        return None;
    }
    let mut parts = Vec::new();
    let worst = step
        .quantiles
        .iter()
        .filter(|q| q.verdict == Verdict::Regressed)
        .max_by(|x, y| x.delta_ms().total_cmp(&y.delta_ms()));
    if let Some(w) = worst {
        let moved = |server_timing: bool| {
            rows[1..]
                .iter()
                .filter(|r| {
                    let p = r.part.as_deref().unwrap_or("");
                    p.starts_with("server_timing.") == server_timing && p != "total"
                })
                .filter_map(|r| {
                    let d = r.quantiles.iter().find(|q| q.stat == w.stat)?.delta_ms();
                    let name = r.part.as_deref()?.trim_start_matches("server_timing.");
                    (d > 0.0).then(|| (name.to_string(), d))
                })
                .max_by(|x, y| x.1.total_cmp(&y.1))
        };
        let mut text = format!("{} +{} ms", w.stat, ms(w.delta_ms()));
        let pieces: Vec<String> = [moved(false), moved(true)]
            .into_iter()
            .flatten()
            .map(|(n, d)| format!("{n} +{} ms", ms(d)))
            .collect();
        if !pieces.is_empty() {
            let _ = write!(text, ", of which {}", pieces.join(", "));
        }
        parts.push(text);
    }
    if let Some(e) = step
        .error_rate
        .as_ref()
        .filter(|e| e.verdict == Verdict::Regressed)
    {
        let mut text = format!(
            "error rate {:.2}% → {:.2}%",
            e.baseline * 100.0,
            e.candidate * 100.0
        );
        let grew = c
            .error_classes
            .iter()
            .map(|(k, n)| (k, n.saturating_sub(*b.error_classes.get(k).unwrap_or(&0))))
            .max_by_key(|(_, d)| *d);
        if let Some((class, d)) = grew.filter(|(_, d)| *d > 0) {
            let _ = write!(text, ", mostly {class} (+{d})");
        }
        parts.push(text);
    }
    Some(format!("{}: {}", step.step, parts.join("; ")))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

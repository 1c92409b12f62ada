//! The human table (comfy-table): a header saying what ran and how latency was measured, the
//! per-step percentile table (every time column in milliseconds), errors by class, thresholds
//! and the baseline comparison. Also the small text helpers every format shares.
//!
//! Every table goes through `fit` (never splits a number or a name; see `report::fit`).

pub use super::fit::{Col, Txt, color_allowed, color_on_stdout, fit, put_table, terminal_width};
use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::aggregate::summary::LatencyOrigin;
use crate::aggregate::summary::StepSummary;
use crate::aggregate::summary::TargetKind;
use crate::gate::compare::{CompareRow, ErrorRateDelta, QuantileDelta};
use crate::gate::{Comparison, Outcome, ThresholdResult, Verdict};
use crate::units::ms;
use comfy_table::Color;
use std::fmt::Write as _;

pub struct TableReport {
    /// The width to fit (a terminal's, or fixed for snapshots); `None` prints every table at
    /// its full width (pipes, files).
    pub width: Option<u16>,
    /// Colour FAIL, regressions and failed thresholds (ANSI escapes).
    pub color: bool,
}

/// Red when `cond` holds (errors, failed thresholds).
fn red(cond: bool) -> Option<Color> {
    if cond { Some(Color::Red) } else { None }
}

/// What ran, against what, how long, and every note a reader needs before the numbers.
fn run_header(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "scenario  {}", s.scenario);
    let target = target_text(s);
    let _ = writeln!(out, "target    {target}");
    if let Some(env) = &s.env {
        let _ = writeln!(out, "env       {env}");
    }
    let _ = writeln!(out, "load      {}", describe_load(s));
    let _ = writeln!(
        out,
        "latency   {}",
        if s.latency_measured_from == LatencyOrigin::IntendedStart {
            "measured from each iteration's intended start (coordinated omission corrected); \
                 `total` phase is service time"
        } else {
            "measured from each request's start (closed model: no coordinated-omission correction)"
        }
    );
    if s.insecure {
        let _ = writeln!(
            out,
            "WARNING   --insecure: TLS certificates were NOT verified"
        );
    }
    if s.interrupted {
        let _ = writeln!(out, "INTERRUPTED: partial results");
    }
    for n in &s.notes {
        let _ = writeln!(out, "note      {n}");
    }
    let it = &s.iterations;
    let _ = writeln!(
        out,
        "ran       {:.1}s, {} iterations ({:.1}/s), {} failed",
        s.duration_s, it.count, it.rate, it.failed
    );
    if it.dropped > 0 {
        let _ = writeln!(
            out,
            "DROPPED   {} iterations could not start: every VU was busy (raise max_vus)",
            it.dropped
        );
    }
    for st in s.steps.iter().filter(|st| st.close_delimited > 0) {
        let _ = writeln!(
            out,
            "note      {}: {} response(s) had no length and ended with the connection \
                 (HTTP/1.0 style): a truncated body cannot be detected",
            st.name, st.close_delimited
        );
    }
    for st in s.steps.iter().filter(|st| st.not_run > 0) {
        let why: Vec<String> = st
            .not_run_reasons
            .iter()
            .map(|(r, n)| format!("{r} ({n})"))
            .collect();
        let _ = writeln!(
            out,
            "note      {}: not run {} time(s), not counted as requests or errors: {}",
            st.name,
            st.not_run,
            why.join("; ")
        );
    }
}

impl TableReport {
    /// For stdout: fitted to the terminal and coloured when it is one (and `NO_COLOR` is not
    /// set); full width and plain when piped.
    #[must_use]
    pub fn for_stdout() -> TableReport {
        TableReport {
            width: terminal_width(),
            color: color_on_stdout(),
        }
    }

    /// Full width, no colour: files and fixtures.
    #[must_use]
    pub fn plain() -> TableReport {
        TableReport {
            width: None,
            color: false,
        }
    }
}

fn row(s: &StepSummary) -> Vec<String> {
    let mut r = vec![
        s.name.clone(),
        s.requests.to_string(),
        format!("{:.1}", s.rps),
        if s.errors == 0 {
            "0".to_string()
        } else {
            format!("{} ({:.1}%)", s.errors, s.error_rate() * 100.0)
        },
    ];
    r.extend(latency_cells(&s.latency));
    r
}

/// min, p50, p90, p95, p99, p99.9, max, mean; `-` when nothing was measured (never 0 ms).
fn latency_cells(l: &crate::aggregate::summary::Stats) -> Vec<String> {
    if l.count == 0 {
        return vec!["-".to_string(); 8];
    }
    [
        l.min_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms,
    ]
    .iter()
    .map(|v| ms(*v))
    .collect()
}

/// `0.00% → 2.10%`.
#[must_use]
pub fn error_rate_cell(e: &ErrorRateDelta) -> String {
    format!("{:.2}% → {:.2}%", e.baseline * 100.0, e.candidate * 100.0)
}

/// `pass`, `FAIL`, `NO DATA`.
#[must_use]
pub fn outcome_label(t: &ThresholdResult) -> &'static str {
    match t.outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::NoData => "NO DATA",
    }
}

/// The latency rows a report shows, in order: each step, followed by its settle row when it
/// polls, then `http` (all requests) when there is not exactly one step.
#[must_use]
pub fn step_rows(s: &Summary) -> Vec<std::borrow::Cow<'_, StepSummary>> {
    use std::borrow::Cow;
    let mut rows = Vec::new();
    for st in &s.steps {
        rows.push(Cow::Borrowed(st));
        if let Some(settle) = st.settle_row(s.duration_s) {
            rows.push(Cow::Owned(settle));
        }
    }
    if s.steps.len() != 1 {
        rows.push(Cow::Borrowed(&s.http));
    }
    rows
}

/// One row of a report's errors table: step, error class, count, and the first three messages
/// of the step.
pub struct ErrorRow<'a> {
    pub step: &'a str,
    pub class: &'a str,
    pub count: u64,
    pub first_messages: Vec<&'a str>,
}

/// Every step's error classes, in order.
#[must_use]
pub fn error_rows(s: &Summary) -> Vec<ErrorRow<'_>> {
    s.steps
        .iter()
        .flat_map(|st| {
            st.error_classes.iter().map(move |(class, n)| ErrorRow {
                step: &st.name,
                class,
                count: *n,
                first_messages: st
                    .error_messages
                    .keys()
                    .take(3)
                    .map(String::as_str)
                    .collect(),
            })
        })
        .collect()
}

/// The run's target as every report names it: the URL, marked when it was the embedded demo.
#[must_use]
pub fn target_text(s: &Summary) -> String {
    if s.target.kind == TargetKind::EmbeddedDemo {
        format!("{} (embedded demo)", s.target.url)
    } else {
        s.target.url.clone()
    }
}

/// The comparison rows a report shows: every step (and `http`), plus the parts that moved.
pub fn rows_to_show(c: &Comparison) -> impl Iterator<Item = &CompareRow> {
    c.rows.iter().filter(|r| {
        r.part.is_none()
            || matches!(
                r.verdict,
                crate::gate::Verdict::Regressed | crate::gate::Verdict::Improved
            )
    })
}

/// The quantile cells of a comparison row, in p50, p95, p99 order (`-` when absent).
#[must_use]
pub fn quantile_cells(r: &CompareRow) -> Vec<String> {
    ["p50", "p95", "p99"]
        .iter()
        .map(|stat| {
            r.quantiles
                .iter()
                .find(|q| q.stat == *stat)
                .map_or_else(|| "-".to_string(), quantile_text)
        })
        .collect()
}

/// `20.1 → 35.2 ms (+15.1 ms, 1.75× ± 0.07 slower)`: both sides' milliseconds beside the ratio.
#[must_use]
pub fn quantile_text(q: &QuantileDelta) -> String {
    format!(
        "{} → {} ms ({} ms, {})",
        ms(q.baseline_ms),
        ms(q.candidate_ms),
        signed_ms(q.delta_ms()),
        q.describe()
    )
}

/// One line on the comparison: what was compared with what, the settings and the verdict.
#[must_use]
pub fn comparison_headline(c: &Comparison) -> String {
    format!(
        "compared with the baseline of {} (tolerance {}%, min diff {} ms, confidence {}%): {}",
        if c.baseline.started_at.is_empty() {
            "an earlier run"
        } else {
            c.baseline.started_at.as_str()
        },
        c.tolerance * 100.0,
        c.min_diff_ms,
        c.confidence * 100.0,
        c.verdict.label()
    )
}

impl TableReport {
    #[must_use]
    pub fn render_string(&self, s: &Summary) -> String {
        self.render_full(s, None)
    }

    /// The table with the thresholds section and, when given, the comparison section.
    #[must_use]
    pub fn render_full(&self, s: &Summary, comparison: Option<&Comparison>) -> String {
        let mut out = String::new();
        run_header(&mut out, s);
        self.latency_tables(&mut out, s);
        self.errors(&mut out, s);
        self.thresholds(&mut out, s);
        if let Some(c) = comparison {
            self.comparison(&mut out, c);
        }
        out
    }

    /// Steps (with settle rows and `http`), then failed requests' latency apart.
    fn latency_tables(&self, out: &mut String, s: &Summary) {
        let colored = |st: &StepSummary| -> Vec<Txt> {
            let mut r: Vec<Txt> = row(st).into_iter().map(Txt::from).collect();
            if let Some(c) = r.get_mut(3) {
                c.1 = red(st.errors > 0);
            }
            r
        };
        let mut rows: Vec<Vec<Txt>> = Vec::new();
        let mut polls = Vec::new();
        for st in &s.steps {
            rows.push(colored(st));
            if let Some(settle) = st.settle_row(s.duration_s) {
                rows.push(colored(&settle));
                polls.push(settle.name);
            }
        }
        if s.steps.len() != 1 || !polls.is_empty() {
            rows.push(colored(&s.http));
        }
        put_table(out, &fit(&STEP_COLS, rows, self.width, self.color));
        if !polls.is_empty() {
            let _ = writeln!(
                out,
                "reqs: requests sent (percentiles over the successful ones); {}: settle times, \
                 each from the start of its `since` step to the passing response (poll) or \
                 pushed event (stream), waits included (not in `http`)",
                polls.join(", ")
            );
        }
        let failed: Vec<&StepSummary> = s
            .steps
            .iter()
            .filter(|st| !st.failed_latency.is_empty())
            .collect();
        if !failed.is_empty() {
            // The table above is successful requests; failures' latency is shown apart.
            let rows = failed
                .iter()
                .map(|st| {
                    let mut r = vec![st.name.clone(), st.failed_latency.count.to_string()];
                    r.extend(latency_cells(&st.failed_latency));
                    r.into_iter().map(Txt::from).collect()
                })
                .collect();
            let _ = writeln!(
                out,
                "latency above is of successful requests; failed requests apart:"
            );
            put_table(out, &fit(&FAILED_COLS, rows, self.width, self.color));
        }
        let slowest = super::exemplars::slowest(s);
        if !slowest.is_empty() {
            let _ = writeln!(out, "slowest requests");
            for e in slowest {
                let _ = writeln!(
                    out,
                    "  {}",
                    super::exemplars::line(e, s.trace_url.as_deref())
                );
            }
        }
    }

    fn errors(&self, out: &mut String, s: &Summary) {
        let rows: Vec<Vec<Txt>> = error_rows(s)
            .into_iter()
            .map(|e| {
                vec![
                    e.step.into(),
                    Txt(e.class.to_string(), red(true)),
                    e.count.to_string().into(),
                    e.first_messages.join("; ").into(),
                ]
            })
            .collect();
        if rows.is_empty() {
            let _ = writeln!(out, "no errors");
        } else {
            let _ = writeln!(out, "errors by class");
            let cols = [
                Col::name("step"),
                Col::name("error class"),
                Col::num("count", 0),
                Col::text("first messages"),
            ];
            put_table(out, &fit(&cols, rows, self.width, self.color));
        }
        let failures = super::exemplars::failures(s);
        if !failures.is_empty() {
            let _ = writeln!(out, "first failures (per step and class)");
            for e in failures {
                let _ = writeln!(
                    out,
                    "  {}",
                    super::exemplars::line(e, s.trace_url.as_deref())
                );
            }
        }
    }

    fn thresholds(&self, out: &mut String, s: &Summary) {
        if s.thresholds.is_empty() {
            return;
        }
        let rows = s
            .thresholds
            .iter()
            .map(|r| {
                vec![
                    Txt(outcome_label(r).to_string(), red(!r.passed())),
                    r.threshold.as_str().into(),
                    r.message.as_str().into(),
                ]
            })
            .collect();
        let cols = [
            Col::name("result"),
            Col::text("threshold"),
            Col::text("measured"),
        ];
        let _ = writeln!(out, "thresholds");
        put_table(out, &fit(&cols, rows, self.width, self.color));
    }

    /// The comparison as benchstat prints it: per metric and statistic the baseline and
    /// candidate milliseconds, their difference, the ratio with its interval and the verdict.
    fn comparison(&self, out: &mut String, c: &Comparison) {
        let _ = writeln!(out, "{}", comparison_headline(c));
        let mut rows: Vec<Vec<Txt>> = Vec::new();
        for r in rows_to_show(c) {
            self.metric_rows(&mut rows, r);
        }
        put_table(out, &fit(&COMPARE_COLS, rows, self.width, self.color));
        comparison_notes(out, c);
    }

    /// One metric's rows: one per statistic, then its error rate, or a bare verdict when it
    /// has neither; only the first row names the metric.
    fn metric_rows(&self, rows: &mut Vec<Vec<Txt>>, r: &CompareRow) {
        let mut first = true;
        let mut name = || {
            let n = if first {
                metric_label(r)
            } else {
                String::new()
            };
            first = false;
            Txt::from(n)
        };
        for q in &r.quantiles {
            rows.push(vec![
                name(),
                q.stat.as_str().into(),
                ms(q.baseline_ms).into(),
                ms(q.candidate_ms).into(),
                signed_ms(q.delta_ms()).into(),
                q.describe().into(),
                self.verdict_cell(q.verdict),
            ]);
        }
        // An error-rate row only when either side had errors: `0.00% → 0.00%` is noise.
        let errors = r
            .error_rate
            .as_ref()
            .filter(|e| e.baseline > 0.0 || e.candidate > 0.0);
        if let Some(e) = errors {
            rows.push(vec![
                name(),
                "errors".into(),
                format!("{:.2}%", e.baseline * 100.0).into(),
                format!("{:.2}%", e.candidate * 100.0).into(),
                format!("{:+.2}pp", e.diff * 100.0).into(),
                format!(
                    "[{:+.2}, {:+.2}] pp",
                    e.diff_low * 100.0,
                    e.diff_high * 100.0
                )
                .into(),
                self.verdict_cell(e.verdict),
            ]);
        }
        if r.quantiles.is_empty() && r.error_rate.is_none() {
            rows.push(vec![
                name(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                self.verdict_cell(r.verdict),
            ]);
        }
    }

    fn verdict_cell(&self, v: Verdict) -> Txt {
        let color = match v {
            Verdict::Regressed => Some(Color::Red),
            Verdict::Improved => Some(Color::Green),
            _ => None,
        };
        Txt(v.label().to_string(), color)
    }
}

const STEP_COLS: [Col<'static>; 12] = [
    Col::name("step"),
    Col::num("reqs", 0),
    Col::num("rate/s", 4),
    Col::num("errors", 0),
    Col::num("min ms", 5),
    Col::num("p50 ms", 0),
    Col::num("p90 ms", 3),
    Col::num("p95 ms", 0),
    Col::num("p99 ms", 0),
    Col::num("p99.9 ms", 2),
    Col::num("max ms", 1),
    Col::num("mean ms", 6),
];

const FAILED_COLS: [Col<'static>; 10] = [
    Col::name("failed requests"),
    Col::num("count", 0),
    Col::num("min ms", 5),
    Col::num("p50 ms", 0),
    Col::num("p90 ms", 3),
    Col::num("p95 ms", 0),
    Col::num("p99 ms", 0),
    Col::num("p99.9 ms", 2),
    Col::num("max ms", 1),
    Col::num("mean ms", 6),
];

const COMPARE_COLS: [Col<'static>; 7] = [
    Col::name("metric"),
    Col::name("stat"),
    Col::num("base ms", 1),
    Col::num("cand ms", 1),
    Col::num("diff ms", 2),
    // These two wrap between words in a narrow terminal ("no significant" / "change"), so the
    // baseline and candidate columns can stay.
    Col::text("ratio (interval)"),
    Col::text("verdict"),
];

/// Under the comparison table: each row's `why` and slowest exemplars, the steps only one
/// side has, and the notes.
fn comparison_notes(out: &mut String, c: &Comparison) {
    for r in &c.rows {
        if let Some(why) = &r.why {
            let _ = writeln!(out, "why       {why}");
        }
        for e in &r.exemplars {
            let _ = writeln!(
                out,
                "slowest   {}",
                super::exemplars::line(e, None).trim_start()
            );
        }
    }
    for (which, names) in [
        ("baseline", &c.only_in_baseline),
        ("candidate", &c.only_in_candidate),
    ] {
        if !names.is_empty() {
            let _ = writeln!(out, "only in the {which}: {}", names.join(", "));
        }
    }
    for n in &c.notes {
        let _ = writeln!(out, "note      {n}");
    }
}

/// `profile`, `profile · wait`, `profile · server db`.
fn metric_label(r: &CompareRow) -> String {
    match r.part.as_deref() {
        None => r.step.clone(),
        Some(p) => match p.strip_prefix("server_timing.") {
            Some(name) => format!("{} · server {name}", r.step),
            None => format!("{} · {p}", r.step),
        },
    }
}

/// `+15.1`, `-0.40`, `+0.00`.
#[must_use]
pub fn signed_ms(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", ms(-v))
    } else {
        format!("+{}", ms(v))
    }
}

#[must_use]
pub fn describe_load(s: &Summary) -> String {
    let l = &s.load;
    let mut parts = vec![l.model.to_string()];
    if let Some(v) = l.vus {
        parts.push(format!("{v} VUs"));
    }
    if let Some(r) = l.rate_per_s {
        parts.push(format!("{r}/s"));
    }
    if let Some(m) = l.max_vus {
        parts.push(format!("max {m} VUs"));
    }
    if let Some(d) = l.duration_s {
        parts.push(format!("{d}s"));
    }
    if let Some(i) = l.iterations {
        parts.push(format!("{i} iterations"));
    }
    if !l.stages.is_empty() {
        let st: Vec<String> = l.stages.iter().map(|(d, t)| format!("{d}s→{t}")).collect();
        parts.push(format!("stages [{}]", st.join(", ")));
    }
    if let Some(m) = l.streams_per_connection {
        parts.push(format!("{m} streams per HTTP/2 connection"));
    }
    parts.join(", ")
}

impl Report for TableReport {
    fn render_with(
        &self,
        summary: &Summary,
        comparison: Option<&Comparison>,
    ) -> Result<Vec<u8>, ReportError> {
        Ok(self.render_full(summary, comparison).into_bytes())
    }
}

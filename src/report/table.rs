//! The human table (comfy-table): a header saying what ran and how latency was measured, the
//! per-step percentile table (every time column in milliseconds), errors by class, thresholds
//! and the baseline comparison. Also the small text helpers every format shares.

use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::aggregate::summary::StepSummary;
use crate::gate::compare::{CompareRow, ErrorRateDelta};
use crate::gate::{Comparison, Outcome, ThresholdResult};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};
use std::fmt::Write as _;

pub struct TableReport {
    /// Fixed width (snapshots); `None` adapts to the terminal.
    pub width: Option<u16>,
}

/// The one millisecond formatter of every table: 3 significant digits, at most 2 decimals.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn new_table(width: Option<u16>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    match width {
        Some(w) => {
            t.set_width(w);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
    }
    t
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
pub fn error_rate_cell(e: &ErrorRateDelta) -> String {
    format!("{:.2}% → {:.2}%", e.baseline * 100.0, e.candidate * 100.0)
}

/// `pass`, `FAIL`, `NO DATA`.
pub fn outcome_label(t: &ThresholdResult) -> &'static str {
    match t.outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::NoData => "NO DATA",
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
pub fn quantile_cells(r: &CompareRow) -> Vec<String> {
    ["p50", "p95", "p99"]
        .iter()
        .map(|stat| {
            r.quantiles
                .iter()
                .find(|q| q.stat == *stat)
                .map_or_else(|| "-".to_string(), |q| q.describe())
        })
        .collect()
}

/// One line on the comparison: what was compared with what, the settings and the verdict.
pub fn comparison_headline(c: &Comparison) -> String {
    format!(
        "compared with the baseline of {} (tolerance {}%, confidence {}%): {}",
        if c.baseline.started_at.is_empty() {
            "an earlier run"
        } else {
            c.baseline.started_at.as_str()
        },
        c.tolerance * 100.0,
        c.confidence * 100.0,
        c.verdict.label()
    )
}

impl TableReport {
    pub fn render_string(&self, s: &Summary) -> String {
        self.render_full(s, None)
    }

    /// The table with the thresholds section and, when given, the comparison section.
    pub fn render_full(&self, s: &Summary, comparison: Option<&Comparison>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario  {}", s.scenario);
        let target = if s.target.kind == "embedded-demo" {
            format!("{} (embedded demo)", s.target.url)
        } else {
            s.target.url.clone()
        };
        let _ = writeln!(out, "target    {target}");
        if let Some(env) = &s.env {
            let _ = writeln!(out, "env       {env}");
        }
        let _ = writeln!(out, "load      {}", describe_load(s));
        let _ = writeln!(
            out,
            "latency   {}",
            if s.latency_measured_from == "intended_start" {
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
        let mut t = new_table(self.width);
        t.set_header(vec![
            "step", "reqs", "rate/s", "errors", "min ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms",
            "p99.9 ms", "max ms", "mean ms",
        ]);
        let mut polls = Vec::new();
        for st in &s.steps {
            t.add_row(row(st));
            if let Some(settle) = st.settle_row(s.duration_s) {
                t.add_row(row(&settle));
                polls.push(settle.name);
            }
        }
        if s.steps.len() != 1 || !polls.is_empty() {
            t.add_row(row(&s.http));
        }
        for i in 1..12 {
            if let Some(c) = t.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        let _ = writeln!(out, "{t}");
        if !polls.is_empty() {
            let _ = writeln!(
                out,
                "reqs: requests sent (percentiles over the successful ones); {}: polls, each \
                 from the start of its `since` step to the passing response, waits included \
                 (not in `http`)",
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
            let mut f = new_table(self.width);
            f.set_header(vec![
                "failed requests",
                "count",
                "min ms",
                "p50 ms",
                "p90 ms",
                "p95 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms",
                "mean ms",
            ]);
            for st in failed {
                let mut r = vec![st.name.clone(), st.failed_latency.count.to_string()];
                r.extend(latency_cells(&st.failed_latency));
                f.add_row(r);
            }
            for i in 1..10 {
                if let Some(c) = f.column_mut(i) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
            let _ = writeln!(
                out,
                "latency above is of successful requests; failed requests apart:"
            );
            let _ = writeln!(out, "{f}");
        }

        let mut errors = new_table(self.width);
        errors.set_header(vec!["step", "error class", "count", "first messages"]);
        let mut any = false;
        for st in &s.steps {
            for (class, n) in &st.error_classes {
                any = true;
                let msgs: Vec<&str> = st
                    .error_messages
                    .keys()
                    .map(String::as_str)
                    .take(3)
                    .collect();
                errors.add_row(vec![
                    st.name.clone(),
                    class.clone(),
                    n.to_string(),
                    msgs.join("; "),
                ]);
            }
        }
        if any {
            let _ = writeln!(out, "errors by class");
            let _ = writeln!(out, "{errors}");
        } else {
            let _ = writeln!(out, "no errors");
        }
        if !s.thresholds.is_empty() {
            let mut t = new_table(self.width);
            t.set_header(vec!["result", "threshold", "measured"]);
            for r in &s.thresholds {
                t.add_row(vec![
                    outcome_label(r).to_string(),
                    r.threshold.clone(),
                    r.message.clone(),
                ]);
            }
            let _ = writeln!(out, "thresholds");
            let _ = writeln!(out, "{t}");
        }
        if let Some(c) = comparison {
            self.comparison(&mut out, c);
        }
        out
    }

    fn comparison(&self, out: &mut String, c: &Comparison) {
        let _ = writeln!(out, "{}", comparison_headline(c));
        let mut t = new_table(self.width);
        t.set_header(vec!["metric", "p50", "p95", "p99", "error rate", "verdict"]);
        for r in rows_to_show(c) {
            let mut cells = vec![r.key.clone()];
            cells.extend(quantile_cells(r));
            cells.push(
                r.error_rate
                    .as_ref()
                    .map_or_else(String::new, error_rate_cell),
            );
            cells.push(r.verdict.label().to_string());
            t.add_row(cells);
        }
        let _ = writeln!(out, "{t}");
        for r in c.rows.iter().filter_map(|r| r.why.as_ref()) {
            let _ = writeln!(out, "why       {r}");
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
}

pub fn describe_load(s: &Summary) -> String {
    let l = &s.load;
    let mut parts = vec![l.model.clone()];
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

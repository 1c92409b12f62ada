//! Markdown (GitHub-flavoured): verdict, what ran, percentile table, thresholds, comparison and
//! errors, for pull requests and `$GITHUB_STEP_SUMMARY`. Every value from the run is escaped so
//! a step name or error message cannot break a table or inject HTML.

use super::table::{
    comparison_headline, describe_load, error_rate_cell, error_rows, outcome_label, quantile_cells,
    rows_to_show, step_rows, target_text,
};
use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::aggregate::summary::LatencyOrigin;
use crate::aggregate::summary::StepSummary;
use crate::gate::{self, Comparison};
use crate::units::ms;
use std::fmt::Write as _;

pub struct MarkdownReport;

/// Escapes text for a markdown table cell (also inert as HTML, which GitHub renders).
#[must_use]
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '`' => out.push_str("\\`"),
            '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn step_row(out: &mut String, s: &StepSummary) {
    let l = &s.latency;
    let errors = if s.errors == 0 {
        "0".to_string()
    } else {
        format!("{} ({:.1}%)", s.errors, s.error_rate() * 100.0)
    };
    let _ = writeln!(
        out,
        "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
        esc(&s.name),
        s.requests,
        s.rps,
        errors,
        ms(l.p50_ms),
        ms(l.p90_ms),
        ms(l.p95_ms),
        ms(l.p99_ms),
        ms(l.p999_ms),
        ms(l.max_ms)
    );
}

impl MarkdownReport {
    pub fn render_string(&self, s: &Summary, comparison: Option<&Comparison>) -> String {
        let mut out = String::new();
        head(&mut out, s, &gate::verdict(s, comparison));
        let _ = writeln!(out, "\n### Latency (ms)\n");
        let _ = writeln!(
            out,
            "| step | reqs | rate/s | errors | p50 | p90 | p95 | p99 | p99.9 | max |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for st in step_rows(s) {
            step_row(&mut out, &st);
        }
        let slowest = super::exemplars::slowest(s);
        if !slowest.is_empty() {
            let _ = writeln!(out, "\n### Slowest requests\n");
            let _ = writeln!(
                out,
                "| latency | step | status | trace id | request id | started | where the time went |"
            );
            let _ = writeln!(out, "|--:|---|---|---|---|---|---|");
            for e in slowest {
                let trace =
                    e.trace_id.as_deref().map_or_else(
                        String::new,
                        |t| match super::exemplars::href(e, s.trace_url.as_deref()) {
                            Some(u) => format!(
                                "[`{t}`]({})",
                                u.replace(' ', "%20")
                                    .replace(')', "%29")
                                    .replace('|', "%7C")
                            ),
                            None => format!("`{t}`"),
                        },
                    );
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {trace} | {} | {} | {} |",
                    ms(e.latency_ms),
                    esc(&e.step),
                    esc(&super::exemplars::outcome(e)),
                    esc(e.request_id.as_deref().unwrap_or("")),
                    esc(&e.started_at),
                    esc(&super::exemplars::where_time_went(e))
                );
            }
        }

        thresholds(&mut out, s);
        if let Some(c) = comparison {
            comparison_section(&mut out, c);
        }
        errors(&mut out, s);
        out
    }
}

/// The title with the verdict, the run's facts, and the reasons and warnings.
fn head(out: &mut String, s: &Summary, v: &gate::GateVerdict) {
    let _ = writeln!(
        out,
        "## sonde: {} — {}\n",
        esc(&s.scenario),
        if v.passed { "✅ passed" } else { "❌ failed" }
    );
    let target = target_text(s);
    let _ = write!(
        out,
        "**Target** {} · **Load** {}",
        esc(&target),
        esc(&describe_load(s))
    );
    if let Some(env) = &s.env {
        let _ = write!(out, " · **Env** {}", esc(env));
    }
    let _ = writeln!(
        out,
        " · **Ran** {:.1} s, {} iterations, {} requests\n",
        s.duration_s, s.iterations.count, s.http.requests
    );
    let _ = writeln!(
        out,
        "Latency is measured from {}.",
        if s.latency_measured_from == LatencyOrigin::IntendedStart {
            "each iteration's intended start (coordinated omission corrected)"
        } else {
            "each request's start (closed model)"
        }
    );
    for r in &v.reasons {
        let _ = writeln!(out, "- ❌ {}", esc(r));
    }
    if s.insecure {
        let _ = writeln!(out, "- ⚠️ `--insecure`: TLS certificates were NOT verified");
    }
    if s.interrupted {
        let _ = writeln!(out, "- ⚠️ interrupted: partial results");
    }
    if s.iterations.dropped > 0 {
        let _ = writeln!(
            out,
            "- ⚠️ {} iterations dropped: every VU was busy (raise `max_vus`)",
            s.iterations.dropped
        );
    }
    for n in &s.notes {
        let _ = writeln!(out, "- {}", esc(n));
    }
}

fn thresholds(out: &mut String, s: &Summary) {
    if !s.thresholds.is_empty() {
        let _ = writeln!(out, "\n### Thresholds\n");
        let _ = writeln!(out, "| result | threshold | measured |");
        let _ = writeln!(out, "|---|---|---|");
        for t in &s.thresholds {
            let icon = if t.passed() { "✅" } else { "❌" };
            let _ = writeln!(
                out,
                "| {icon} {} | {} | {} |",
                outcome_label(t),
                esc(&t.threshold),
                esc(&t.message)
            );
        }
    }
}

fn errors(out: &mut String, s: &Summary) {
    let errors = error_rows(s);
    if !errors.is_empty() {
        let _ = writeln!(out, "\n### Errors\n");
        let _ = writeln!(out, "| step | class | count | first messages |");
        let _ = writeln!(out, "|---|---|--:|---|");
        for e in errors {
            let msgs: Vec<String> = e.first_messages.iter().map(|m| esc(m)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                esc(e.step),
                esc(e.class),
                e.count,
                msgs.join("; ")
            );
        }
    }
}

/// The comparison alone (`### Compared with the baseline`, its table, why, notes, method).
fn comparison_section(out: &mut String, c: &Comparison) {
    let _ = writeln!(out, "\n### Compared with the baseline\n");
    let _ = writeln!(out, "{}\n", esc(&comparison_headline(c)));
    let _ = writeln!(out, "| metric | p50 | p95 | p99 | error rate | verdict |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|---|");
    for r in rows_to_show(c) {
        let q = quantile_cells(r);
        let verdict = match r.verdict {
            gate::Verdict::Regressed => "**regressed**",
            other => other.label(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {verdict} |",
            esc(&r.key),
            esc(&q[0]),
            esc(&q[1]),
            esc(&q[2]),
            r.error_rate
                .as_ref()
                .map_or_else(String::new, error_rate_cell)
        );
    }
    let whys: Vec<&String> = c.rows.iter().filter_map(|r| r.why.as_ref()).collect();
    if !whys.is_empty() {
        let _ = writeln!(out, "\n**Why**\n");
        for w in whys {
            let _ = writeln!(out, "- {}", esc(w));
        }
    }
    for n in &c.notes {
        let _ = writeln!(out, "\n> {}", esc(n));
    }
    let _ = writeln!(out, "\n<sub>Method: {}.</sub>", esc(&c.method));
}

/// What `compare` appends to `$GITHUB_STEP_SUMMARY`: a title with the verdict and the
/// comparison only. The run's own report is already on the page (`run` appends it), so the
/// page shows each table once.
#[must_use]
pub fn comparison_only(s: &Summary, c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## sonde: {} vs baseline — {}",
        esc(&s.scenario),
        if c.regressed() {
            "❌ regressed"
        } else {
            "✅ no regression"
        }
    );
    comparison_section(&mut out, c);
    out
}

impl Report for MarkdownReport {
    fn render_with(
        &self,
        summary: &Summary,
        comparison: Option<&Comparison>,
    ) -> Result<Vec<u8>, ReportError> {
        Ok(self.render_string(summary, comparison).into_bytes())
    }
}

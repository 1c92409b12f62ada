//! Terminal rendering of a `Breakdown`: per-step phase tables, Server-Timing, the waterfall of
//! the median iteration, and the side-by-side comparison with its verdict. Pure: takes the
//! numbers and a width (`None` when piped: tables at full width), returns text
//! (snapshot-tested). Tables never split a number or a name (`report::table::fit`).

use super::stats::mark;
use super::{Breakdown, EnvComparison, Iteration, PHASES, Pass};
use crate::report::table::{Col, Txt, fit, put_table};
use std::fmt::Write as _;

/// Glyph of each phase in the waterfall (dns, connect, tls, send, wait, receive).
pub const GLYPHS: [char; 6] = ['D', 'C', 'T', 'S', '~', '#'];

/// The waterfall's width when the output is not a terminal.
const PIPED_WATERFALL_WIDTH: u16 = 100;

fn put(out: &mut String, cols: &[Col<'_>], rows: Vec<Vec<String>>, width: Option<u16>) {
    let rows = rows
        .into_iter()
        .map(|r| r.into_iter().map(Txt::from).collect())
        .collect();
    put_table(out, &fit(cols, rows, width, false));
}

fn f2(v: f64) -> String {
    format!("{v:.2}")
}

#[must_use]
pub fn render(
    b: &Breakdown,
    names: &[String],
    groups: &[Vec<usize>],
    width: Option<u16>,
) -> String {
    let wf_width = width.unwrap_or(PIPED_WATERFALL_WIDTH);
    let mut out = String::new();
    let _ = writeln!(out, "breakdown of {} against {}", b.scenario, b.target);
    let _ = writeln!(
        out,
        "{} iterations per environment and connection mode, one virtual user, sequential",
        b.iterations
    );
    if b.insecure {
        let _ = writeln!(
            out,
            "WARNING: --insecure: TLS certificates were NOT verified"
        );
    }
    for n in &b.notes {
        let _ = writeln!(out, "note: {n}");
    }
    for p in &b.passes {
        out.push('\n');
        out.push_str(&render_pass(p, width));
        if let Some(it) = &p.median_iteration {
            let _ = writeln!(
                out,
                "waterfall of the median iteration ({:.1} ms):",
                it.total_us / 1000.0
            );
            out.push_str(&waterfall(it, names, groups, wf_width));
        }
        if let Some(s) = &p.slowest_iteration
            && !s.trace_ids.is_empty()
        {
            let _ = writeln!(
                out,
                "slowest iteration ({:.1} ms): trace {}",
                s.total_ms,
                s.trace_ids.join(", ")
            );
        }
    }
    for c in &b.comparisons {
        out.push('\n');
        out.push_str(&render_comparison(c, width, b.comparisons.len() > 1));
    }
    if let Some(v) = b
        .verdict
        .clone()
        .or_else(|| super::combined_verdict(&b.comparisons))
    {
        out.push('\n');
        let _ = writeln!(out, "verdict: {v}");
    }
    out
}

/// One pass as text: its header, the per-step phase table and the Server-Timing table.
// Long on purpose: two tables whose columns are built side by side with their rows; the
// column lists are most of the length.
#[must_use]
pub fn render_pass(p: &Pass, width: Option<u16>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== env {} · connections: {} ==",
        p.env,
        p.connection.as_str()
    );
    let mut t: Vec<Vec<String>> = Vec::new();
    for s in &p.steps {
        if s.requests > 0 && s.no_response == s.requests {
            // Phases of requests that never got a response describe failures, not exchanges.
            t.push(vec![
                s.name.clone(),
                "no response".into(),
                format!("{}/{}", s.no_response, s.requests),
                String::new(),
                String::new(),
                String::new(),
            ]);
            t.push(vec![
                String::new(),
                "first error".into(),
                s.first_error.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        }
        let mut first = true;
        for ph in PHASES {
            let Some(st) = s.phases.get(ph) else { continue };
            t.push(vec![
                if first { s.name.clone() } else { String::new() },
                ph.to_string(),
                f2(st.p50),
                f2(st.p90),
                f2(st.p99),
                format!("{:.0}%", st.share * 100.0),
            ]);
            first = false;
        }
        t.push(vec![
            String::new(),
            "reused".into(),
            format!("{}/{}", s.reused, s.requests),
            String::new(),
            String::new(),
            if s.tls_resumed > 0 {
                format!("tls resumed {}", s.tls_resumed)
            } else {
                String::new()
            },
        ]);
        for (name, st) in &s.server_timing {
            t.push(vec![
                String::new(),
                format!("server: {name}"),
                f2(st.p50),
                String::new(),
                f2(st.p99),
                String::new(),
            ]);
        }
        if let Some(nq) = &s.network_queueing {
            t.push(vec![
                String::new(),
                "network + queueing".into(),
                f2(nq.p50),
                String::new(),
                f2(nq.p99),
                String::new(),
            ]);
        }
        if s.errors > 0 {
            t.push(vec![
                String::new(),
                "errors".into(),
                s.errors.to_string(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    let cols = [
        Col::name("step"),
        Col::name("phase"),
        Col::num("p50 ms", 0),
        Col::num("p90 ms", 2),
        Col::num("p99 ms", 0),
        Col::num("share", 1),
    ];
    put(&mut out, &cols, t, width);
    out
}

/// One bar per request on a shared time axis; `*` marks the critical path (every sequential
/// step, and the longest request of each parallel group).
pub fn waterfall(it: &Iteration, names: &[String], groups: &[Vec<usize>], width: u16) -> String {
    let mut out = String::new();
    let label_w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 24);
    let time_w = 10;
    let bar_w = (width as usize)
        .saturating_sub(label_w + time_w + 6)
        .max(20);
    let ends = it.requests.iter().map(|r| r.offset_us + r.phases_us[6]);
    let axis = crate::aggregate::waterfall::axis_end(ends, it.total_us, 1.0);
    let per_cell = axis / bar_w as f64;

    let critical = super::waterfall::critical_path(it, groups);

    for (i, r) in it.requests.iter().enumerate() {
        let mut bar = vec![' '; bar_w];
        let parts: [f64; 6] = std::array::from_fn(|i| r.phases_us[i]);
        for (ph, t, d) in crate::aggregate::waterfall::segments(r.offset_us, parts) {
            let from = (t / per_cell).floor() as usize;
            let to = (((t + d) / per_cell).round() as usize).max(from + 1);
            for cell in bar.iter_mut().take(to.min(bar_w)).skip(from.min(bar_w - 1)) {
                *cell = GLYPHS[ph];
            }
        }
        let name = names.get(r.step).map_or("?", String::as_str);
        let name: String = name.chars().take(label_w).collect();
        let bar: String = bar.into_iter().collect();
        let _ = writeln!(
            out,
            "{} {name:<label_w$} |{bar}| {:>8.1} ms",
            if critical[i] { '*' } else { ' ' },
            r.phases_us[6] / 1000.0,
        );
    }
    let _ = writeln!(
        out,
        "  {:<label_w$} 0{:>w$}",
        "",
        format!("{:.1} ms", axis / 1000.0),
        w = bar_w + 1
    );
    let _ = writeln!(
        out,
        "  legend: D dns  C connect  T tls  S send  ~ wait (to first byte)  # receive   * critical path"
    );
    out
}

/// One comparison; `one_of_many`: its verdict line names its connection mode, and the last
/// line of the report (`verdict:`) combines them.
#[must_use]
pub fn render_comparison(c: &EnvComparison, width: Option<u16>, one_of_many: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} vs {} · connections: {} ==",
        c.a,
        c.b,
        c.connection.as_str()
    );
    let mut t: Vec<Vec<String>> = Vec::new();
    for s in &c.steps {
        let row = |label: &str, d: &super::Delta, first: bool| {
            vec![
                if first { s.name.clone() } else { String::new() },
                label.to_string(),
                f2(d.a_p50),
                f2(d.b_p50),
                format!("{:+.2}", d.diff_ms),
                d.p.map_or_else(String::new, |p| {
                    if p < 0.001 {
                        format!("<0.001 {}", mark(p))
                    } else {
                        format!("{p:.3} {}", mark(p))
                    }
                }),
            ]
        };
        t.push(row("total", &s.total, true));
        for ph in PHASES.iter().take(6) {
            if let Some(d) = s.phases.get(ph)
                && (d.a_p50 > 0.0 || d.b_p50 > 0.0)
            {
                t.push(row(ph, d, false));
            }
        }
        for (n, d) in &s.server_timing {
            t.push(row(&format!("server: {n}"), d, false));
        }
    }
    let (a_head, b_head) = (format!("{} p50 ms", c.a), format!("{} p50 ms", c.b));
    let cols = [
        Col::name("step"),
        Col::name("part"),
        Col::num(&a_head, 0),
        Col::num(&b_head, 0),
        Col::num("diff ms", 0),
        Col::num("p", 0),
    ];
    put(&mut out, &cols, t, width);
    let _ = writeln!(
        out,
        "significance: {} (* p<0.05, ** p<0.01, *** p<0.001)",
        c.method
    );
    if one_of_many {
        let _ = writeln!(
            out,
            "with {} connections: {}",
            c.connection.as_str(),
            c.verdict
        );
    } else {
        let _ = writeln!(out, "verdict: {}", c.verdict);
    }
    out
}

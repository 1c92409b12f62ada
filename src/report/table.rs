//! The human table (comfy-table): a header saying what ran and how latency was measured, the
//! per-step percentile table (every time column in milliseconds), errors by class, thresholds
//! and the baseline comparison. Also the small text helpers every format shares.
//!
//! Tables fit (`fit`): a number or a name is never split across lines. When a terminal is too
//! narrow, columns are dropped by priority (and the table says which); piped or written to a
//! file, a table is printed at its full width. Colour only on a terminal, never with `NO_COLOR`.

use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::aggregate::summary::StepSummary;
use crate::gate::compare::{CompareRow, ErrorRateDelta, QuantileDelta};
use crate::gate::{Comparison, Outcome, ThresholdResult, Verdict};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, Width};
use std::fmt::Write as _;
use unicode_width::UnicodeWidthStr;

pub struct TableReport {
    /// The width to fit (a terminal's, or fixed for snapshots); `None` prints every table at
    /// its full width (pipes, files).
    pub width: Option<u16>,
    /// Colour FAIL, regressions and failed thresholds (ANSI escapes).
    pub color: bool,
}

impl TableReport {
    /// For stdout: fitted to the terminal and coloured when it is one (and `NO_COLOR` is not
    /// set); full width and plain when piped.
    pub fn for_stdout() -> TableReport {
        TableReport {
            width: terminal_width(),
            color: color_on_stdout(),
        }
    }

    /// Full width, no colour: files and fixtures.
    pub fn plain() -> TableReport {
        TableReport {
            width: None,
            color: false,
        }
    }
}

/// The terminal's width when stdout is one; `None` when piped or redirected.
pub fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    Table::new().width().filter(|w| *w >= 20)
}

/// Colour on stdout: a terminal that is not `dumb`, and no `NO_COLOR` (https://no-color.org).
pub fn color_on_stdout() -> bool {
    use std::io::IsTerminal as _;
    color_allowed(std::io::stdout().is_terminal())
}

/// The environment's say on colour for a stream that is (or is not) a terminal.
pub fn color_allowed(is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    is_terminal && !no_color && !dumb
}

/// One column of a fitted table.
#[derive(Debug, Clone, Copy)]
pub struct Col<'a> {
    pub header: &'a str,
    /// Numbers align right.
    pub right: bool,
    /// 0: always shown. Otherwise dropped, highest first, when the table does not fit.
    pub drop_rank: u8,
    /// Free text (messages) may wrap between words; every other cell stays on one line.
    pub wraps: bool,
}

impl<'a> Col<'a> {
    pub const fn name(header: &'a str) -> Col<'a> {
        Col {
            header,
            right: false,
            drop_rank: 0,
            wraps: false,
        }
    }
    pub const fn num(header: &'a str, drop_rank: u8) -> Col<'a> {
        Col {
            header,
            right: true,
            drop_rank,
            wraps: false,
        }
    }
    pub const fn text(header: &'a str) -> Col<'a> {
        Col {
            header,
            right: false,
            drop_rank: 0,
            wraps: true,
        }
    }
}

/// A cell's text and, when coloured, its colour.
#[derive(Debug, Clone, Default)]
pub struct Txt(pub String, pub Option<Color>);

impl From<String> for Txt {
    fn from(s: String) -> Txt {
        Txt(s, None)
    }
}

impl From<&str> for Txt {
    fn from(s: &str) -> Txt {
        Txt(s.to_string(), None)
    }
}

fn text_width(s: &str) -> usize {
    s.lines().map(UnicodeWidthStr::width).max().unwrap_or(0)
}

fn longest_word(s: &str) -> usize {
    s.split_whitespace()
        .map(UnicodeWidthStr::width)
        .max()
        .unwrap_or(0)
}

/// Builds a table that fits `width` without splitting a number or a name: non-text columns
/// keep their full width, free-text columns wrap between words, and when even that does not
/// fit, columns are dropped by `drop_rank`. Returns the table and the headers it dropped.
pub fn fit(
    cols: &[Col<'_>],
    rows: Vec<Vec<Txt>>,
    width: Option<u16>,
    color: bool,
) -> (Table, Vec<String>) {
    let n = cols.len();
    let mut full = vec![0usize; n];
    let mut min = vec![0usize; n];
    for (i, c) in cols.iter().enumerate() {
        full[i] = text_width(c.header);
        min[i] = longest_word(c.header);
    }
    for r in &rows {
        for (i, cell) in r.iter().enumerate().take(n) {
            full[i] = full[i].max(text_width(&cell.0));
            let need = if cols[i].wraps {
                // A word longer than this in a message may break; names and numbers never do.
                longest_word(&cell.0).min(24)
            } else {
                text_width(&cell.0)
            };
            min[i] = min[i].max(need);
        }
    }
    // A header may wrap between its words ("typical" / "p50 ms"); cells of names and numbers
    // never do, so their content is the minimum.
    let mut width_of = min.clone();
    let overhead = |k: usize| 3 * k + 1;
    let mut keep: Vec<usize> = (0..n).collect();
    // Drop columns (by priority) until the rest fit with whole headers; wrapped headers are
    // the last resort, when only columns that must stay are left.
    let need: Vec<usize> = (0..n)
        .map(|i| if cols[i].wraps { min[i] } else { full[i] })
        .collect();
    if let Some(w) = width.map(usize::from) {
        while keep.iter().map(|i| need[*i]).sum::<usize>() + overhead(keep.len()) > w {
            let worst = keep
                .iter()
                .enumerate()
                .filter(|(_, i)| cols[**i].drop_rank > 0)
                .max_by_key(|(pos, i)| (cols[**i].drop_rank, *pos));
            match worst {
                Some((pos, _)) => {
                    keep.remove(pos);
                }
                None => break,
            }
        }
    }
    let dropped: Vec<String> = (0..n)
        .filter(|i| !keep.contains(i))
        .map(|i| cols[i].header.to_string())
        .collect();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(keep.iter().map(|i| Cell::new(cols[*i].header)));
    for r in rows {
        let mut cells = Vec::with_capacity(keep.len());
        for i in &keep {
            let Txt(text, c) = r.get(*i).cloned().unwrap_or_default();
            let mut cell = Cell::new(text);
            if let (true, Some(c)) = (color, c) {
                cell = cell.fg(c);
            }
            cells.push(cell);
        }
        t.add_row(cells);
    }
    let fits_whole = keep.iter().map(|i| full[*i]).sum::<usize>() + overhead(keep.len());
    // Narrow: unwrap headers of fixed columns as far as the room allows, left to right; what
    // is left goes to the free-text columns.
    let mut slack = width
        .map(usize::from)
        .unwrap_or(usize::MAX)
        .saturating_sub(keep.iter().map(|i| min[*i]).sum::<usize>() + overhead(keep.len()));
    for i in keep.iter().filter(|i| !cols[**i].wraps) {
        let extra = (full[*i] - min[*i]).min(slack);
        width_of[*i] = min[*i] + extra;
        slack -= extra;
    }
    // Free-text columns share what is left in proportion to how much each would still need.
    let wrapping: Vec<usize> = keep.iter().copied().filter(|i| cols[*i].wraps).collect();
    let wanted: usize = wrapping.iter().map(|i| full[*i] - min[*i]).sum();
    if wanted > 0 {
        let share = slack.min(wanted);
        for i in &wrapping {
            let extra = (full[*i] - min[*i]) * share / wanted;
            width_of[*i] = min[*i] + extra;
            slack -= extra;
        }
        for i in &wrapping {
            let extra = (full[*i] - width_of[*i]).min(slack);
            width_of[*i] += extra;
            slack -= extra;
        }
    }
    let narrow = width.filter(|w| fits_whole > usize::from(*w));
    match narrow {
        Some(w)
            if keep.iter().map(|i| min[*i]).sum::<usize>() + overhead(keep.len())
                <= usize::from(w) =>
        {
            t.set_width(w);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        // Fits as it is, or cannot fit at all: full width (a terminal folds the line; a
        // number is never split by us).
        _ => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    for (pos, i) in keep.iter().enumerate() {
        if let Some(c) = t.column_mut(pos) {
            if cols[*i].right {
                c.set_cell_alignment(CellAlignment::Right);
            }
            let pad = 2;
            let w = u16::try_from(width_of[*i] + pad).unwrap_or(u16::MAX);
            // Every width is decided here (free-text columns share the room left),
            // so comfy-table never narrows a column below a whole number or name.
            c.set_constraint(ColumnConstraint::Absolute(Width::Fixed(w)));
        }
    }
    (t, dropped)
}

/// Prints a fitted table and, when columns were dropped, which (and how to see them).
pub fn put_table(out: &mut String, table: &(Table, Vec<String>)) {
    let _ = writeln!(out, "{}", table.0);
    if !table.1.is_empty() {
        let _ = writeln!(out, "(not shown at this width: {})", table.1.join(", "));
    }
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
                .map_or_else(|| "-".to_string(), quantile_text)
        })
        .collect()
}

/// `20.1 → 35.2 ms (+15.1 ms, 1.75× ± 0.07 slower)`: both sides' milliseconds beside the ratio.
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
        let red = |cond: bool| if cond { Some(Color::Red) } else { None };
        let mut rows: Vec<Vec<Txt>> = Vec::new();
        let steps: Vec<&StepSummary> = s
            .steps
            .iter()
            .chain((s.steps.len() != 1).then_some(&s.http))
            .collect();
        for st in &steps {
            let mut r: Vec<Txt> = row(st).into_iter().map(Txt::from).collect();
            if let Some(c) = r.get_mut(3) {
                c.1 = red(st.errors > 0);
            }
            rows.push(r);
        }
        put_table(&mut out, &fit(&STEP_COLS, rows, self.width, self.color));
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
            put_table(&mut out, &fit(&FAILED_COLS, rows, self.width, self.color));
        }

        let mut rows: Vec<Vec<Txt>> = Vec::new();
        for st in &s.steps {
            for (class, n) in &st.error_classes {
                let msgs: Vec<&str> = st
                    .error_messages
                    .keys()
                    .map(String::as_str)
                    .take(3)
                    .collect();
                rows.push(vec![
                    st.name.as_str().into(),
                    Txt(class.clone(), red(true)),
                    n.to_string().into(),
                    msgs.join("; ").into(),
                ]);
            }
        }
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
            put_table(&mut out, &fit(&cols, rows, self.width, self.color));
        }
        if !s.thresholds.is_empty() {
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
            put_table(&mut out, &fit(&cols, rows, self.width, self.color));
        }
        if let Some(c) = comparison {
            self.comparison(&mut out, c);
        }
        out
    }

    /// The comparison as benchstat prints it: per metric and statistic the baseline and
    /// candidate milliseconds, their difference, the ratio with its interval and the verdict.
    fn comparison(&self, out: &mut String, c: &Comparison) {
        let _ = writeln!(out, "{}", comparison_headline(c));
        let mut rows: Vec<Vec<Txt>> = Vec::new();
        for r in rows_to_show(c) {
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
        put_table(out, &fit(&COMPARE_COLS, rows, self.width, self.color));
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
pub fn signed_ms(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", ms(-v))
    } else {
        format!("+{}", ms(v))
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

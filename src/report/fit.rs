//! Tables that fit: a number or a name is never split across lines. When a terminal is too
//! narrow, columns are dropped by priority (and the table says which); piped or written to a
//! file, a table is printed at its full width. Colour only on a terminal, never with
//! `NO_COLOR`. Knows nothing of runs: every report's tables go through `fit`.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, Width};
use std::fmt::Write as _;
use unicode_width::UnicodeWidthStr;

/// The terminal's width when stdout is one; `None` when piped or redirected.
#[must_use]
pub fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    Table::new().width().filter(|w| *w >= 20)
}

/// Colour on stdout: a terminal that is not `dumb`, and no `NO_COLOR` (<https://no-color.org>).
#[must_use]
pub fn color_on_stdout() -> bool {
    use std::io::IsTerminal as _;
    color_allowed(std::io::stdout().is_terminal())
}

/// The environment's say on colour for a stream that is (or is not) a terminal.
#[must_use]
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
    #[must_use]
    pub const fn name(header: &'a str) -> Col<'a> {
        Col {
            header,
            right: false,
            drop_rank: 0,
            wraps: false,
        }
    }
    #[must_use]
    pub const fn num(header: &'a str, drop_rank: u8) -> Col<'a> {
        Col {
            header,
            right: true,
            drop_rank,
            wraps: false,
        }
    }
    #[must_use]
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
// Long by design: one fitting algorithm (measure, wrap free text, drop by rank, retry) whose
// widths and drop order are shared state across its passes.
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
        .map_or(usize::MAX, usize::from)
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

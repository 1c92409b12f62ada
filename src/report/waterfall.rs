//! The HTML report's waterfall of the median iteration (runs that came from `sonde breakdown`):
//! one SVG per connection mode, one bar per request on a shared time axis, phases coloured as
//! in the phase bars, the critical path marked. Reads only the `Summary`; every text escaped.

use super::svg::{PALETTE, esc, fmt_tick, nice_step};
use crate::aggregate::waterfall::segments;
use crate::aggregate::{Summary, Waterfall};
use std::fmt::Write as _;

const W: f64 = 760.0;
const LABEL_W: f64 = 170.0;
const RIGHT_W: f64 = 90.0;
const TOP: f64 = 12.0;
const ROW_H: f64 = 18.0;
const ROW_GAP: f64 = 6.0;

/// dns, connect, tls, send, wait, receive: the legend, in `WaterfallRequest::parts_ms` order.
const PARTS: [&str; 6] = ["dns", "connect", "tls", "send", "wait", "receive"];

/// `<h2>` and one chart per waterfall; empty when the run has none.
#[must_use]
pub fn section(s: &Summary) -> String {
    if s.waterfalls.is_empty() {
        return String::new();
    }
    let mut o = String::from("<h2>Waterfall of the median iteration</h2>");
    for w in &s.waterfalls {
        let _ = write!(
            o,
            "<p class=\"wf\">connections: {} · median of {} iterations: {} ms · \
             <b>★</b> critical path</p>{}",
            esc(&w.connection),
            w.iterations,
            fmt_tick(w.total_ms),
            chart(w)
        );
    }
    o
}

/// One request per row; x is milliseconds since the iteration's start.
// Long by design: one SVG drawn top to bottom (grid, ticks, rows, legend) sharing the same
// scales; split, every piece would take the whole geometry as arguments.
#[must_use]
pub fn chart(w: &Waterfall) -> String {
    let id = format!("waterfall-{}", w.connection);
    let title = format!("Median iteration, connections: {}", w.connection);
    let axis = w.axis_end_ms(0.001);
    let step = nice_step(axis, 6.0);
    let xmax = (axis / step).ceil().max(1.0) * step;
    let pw = W - LABEL_W - RIGHT_W;
    let sx = |v: f64| LABEL_W + v.max(0.0) / xmax * pw;
    let rows = w.requests.len().max(1) as f64;
    let plot_h = rows * (ROW_H + ROW_GAP);
    let h = TOP + plot_h + 56.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" data-chart="{}" role="img" viewBox="0 0 {W} {h}" width="{W}" height="{h}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(&id),
        esc(&title)
    );
    // Time grid and ticks.
    let mut t = 0.0;
    let mut n = 0;
    while t <= xmax + step / 1000.0 && n < 50 {
        let x = sx(t);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#444">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 14.0,
            fmt_tick(t)
        );
        t += step;
        n += 1;
    }
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#222">ms since the iteration's start</text>"##,
        LABEL_W + pw / 2.0,
        TOP + plot_h + 30.0
    );
    if w.requests.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">no requests</text>"##,
            LABEL_W + pw / 2.0,
            TOP + ROW_H
        );
    }
    for (i, r) in w.requests.iter().enumerate() {
        let y = TOP + i as f64 * (ROW_H + ROW_GAP);
        let mark = if r.critical { "★ " } else { "" };
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#222"{}>{mark}{}</text>"##,
            LABEL_W - 8.0,
            y + ROW_H / 2.0 + 4.0,
            if r.critical {
                r#" font-weight="600" class="critical""#
            } else {
                ""
            },
            esc(&r.step)
        );
        for (j, x_ms, v) in segments(r.offset_ms, r.parts_ms()) {
            let (x0, x1) = (sx(x_ms), sx(x_ms + v));
            let _ = write!(
                out,
                r#"<rect class="bar" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{ROW_H}" fill="{}"><title>{}: {} {} ms</title></rect>"#,
                (x1 - x0).max(0.5),
                PALETTE[j % PALETTE.len()],
                esc(&r.step),
                PARTS[j],
                fmt_tick(v)
            );
        }
        let status = match (&r.error, r.status) {
            (Some(e), _) => format!(" · {}", error_label(e)),
            (None, Some(s)) => format!(" · {s}"),
            (None, None) => String::new(),
        };
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#444">{} ms{}</text>"##,
            sx(r.end_ms()).min(W - RIGHT_W) + 6.0,
            y + ROW_H / 2.0 + 4.0,
            fmt_tick(r.total_ms),
            esc(&status)
        );
    }
    let ly = h - 10.0;
    for (j, p) in PARTS.iter().enumerate() {
        let lx = LABEL_W + j as f64 * 80.0;
        let _ = write!(
            out,
            r##"<rect x="{lx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{ly}" font-size="11" fill="#222">{p}</text>"##,
            ly - 10.0,
            PALETTE[j % PALETTE.len()],
            lx + 16.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// A short error for the bar's end: the first 40 characters.
fn error_label(e: &str) -> String {
    let mut s: String = e.chars().take(40).collect();
    if e.chars().count() > 40 {
        s.push('…');
    }
    s
}

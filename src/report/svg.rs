//! Small hand-written SVG charts for the HTML report: line charts (linear or log x axis) and
//! horizontal stacked bars. Output is a self-contained `<svg>` string with every text escaped;
//! no scripts, no external references. Knows nothing about runs: callers pass numbers.

use std::fmt::Write as _;

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

/// Colour-blind-friendly palette (Okabe–Ito).
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];

/// Escapes text for HTML/SVG content and attribute values.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
}

pub struct XAxis {
    pub label: String,
    /// log10 scale (values must be > 0).
    pub log: bool,
    /// Fixed ticks (value, label); empty: computed.
    pub ticks: Vec<(f64, String)>,
}

/// A "nice" tick step for a range (1, 2 or 5 × 10^k).
pub(crate) fn nice_step(range: f64, target: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / target;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

pub(crate) fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        let s = format!("{v:.1}");
        s.trim_end_matches(".0").to_string()
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn open(out: &mut String, id: &str, title: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" data-chart="{}" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(id),
        esc(title)
    );
}

fn empty(id: &str, title: &str) -> String {
    let mut out = String::new();
    open(&mut out, id, title);
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">no data</text></svg>"##,
        W / 2.0,
        H / 2.0
    );
    out
}

/// A line chart; y is linear from 0, in `y_label` units.
// Long by design: one SVG drawn top to bottom (frame, grid, ticks, series, legend) sharing
// the same scales; split, every piece would take the whole geometry as arguments.
#[must_use]
pub fn line_chart(id: &str, title: &str, series: &[Series], x: &XAxis, y_label: &str) -> String {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let tx = |v: f64| if x.log { v.max(1e-12).log10() } else { v };
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y1: f64 = 0.0;
    for (a, b) in pts() {
        if !a.is_finite() || !b.is_finite() {
            continue;
        }
        x0 = x0.min(tx(*a));
        x1 = x1.max(tx(*a));
        y1 = y1.max(*b);
    }
    if !x0.is_finite() {
        return empty(id, title);
    }
    for (v, _) in &x.ticks {
        x0 = x0.min(tx(*v));
        x1 = x1.max(tx(*v));
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let ystep = nice_step(if y1 > 0.0 { y1 } else { 1.0 }, 5.0);
    let ymax = (y1 / ystep).ceil().max(1.0) * ystep;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |v: f64| LEFT + (tx(v) - x0) / (x1 - x0) * pw;
    let sy = |v: f64| TOP + ph - (v / ymax) * ph;

    let mut out = String::new();
    open(&mut out, id, title);
    // Grid and y ticks.
    let mut t = 0.0;
    while t <= ymax + ystep / 2.0 {
        let yy = sy(t);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#444">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            fmt_tick(t)
        );
        t += ystep;
    }
    // X ticks.
    let ticks: Vec<(f64, String)> = if x.ticks.is_empty() {
        let step = nice_step(x1 - x0, 8.0);
        let mut v = (x0 / step).ceil() * step;
        let mut out = Vec::new();
        while v <= x1 + step / 1000.0 && out.len() < 50 {
            out.push((v, fmt_tick(v)));
            v += step;
        }
        out
    } else {
        x.ticks.clone()
    };
    for (v, label) in &ticks {
        let xx = sx(*v);
        let _ = write!(
            out,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{}" stroke="#f0f0f0"/><text x="{xx:.1}" y="{}" text-anchor="middle" font-size="11" fill="#444">{}</text>"##,
            TOP + ph,
            TOP + ph + 16.0,
            esc(label)
        );
    }
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#222">{}</text><text x="14" y="{}" text-anchor="middle" font-size="12" fill="#222" transform="rotate(-90 14 {})">{}</text>"##,
        LEFT + pw / 2.0,
        H - 6.0,
        esc(&x.label),
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(y_label)
    );
    // Lines: a point that is not a number (an interval without data) breaks the line, so a
    // gap shows as a gap rather than as a value; a lone point between gaps is a dot.
    for s in series {
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (a, b) in &s.points {
            if a.is_finite() && b.is_finite() {
                if let Some(seg) = segments.last_mut() {
                    seg.push((sx(*a), sy(*b)));
                }
            } else if segments.last().is_some_and(|seg| !seg.is_empty()) {
                segments.push(Vec::new());
            }
        }
        for seg in segments.iter().filter(|seg| !seg.is_empty()) {
            if let [(x, y)] = seg.as_slice() {
                let _ = write!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{}"><title>{}</title></circle>"#,
                    s.color,
                    esc(&s.name)
                );
                continue;
            }
            let coords: Vec<String> = seg.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
                s.color,
                coords.join(" "),
                esc(&s.name)
            );
        }
    }
    // Legend.
    for (i, s) in series.iter().enumerate() {
        let lx = LEFT + 10.0 + (i as f64 % 4.0) * 170.0;
        let ly = TOP + 10.0 + (i / 4) as f64 * 16.0;
        let _ = write!(
            out,
            r##"<rect x="{lx}" y="{}" width="12" height="4" fill="{}"/><text x="{}" y="{}" font-size="11" fill="#222">{}</text>"##,
            ly - 4.0,
            s.color,
            lx + 16.0,
            ly + 1.0,
            esc(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// Horizontal stacked bars: one bar per row, one segment per part (values ≥ 0, same unit).
// Long by design: one SVG drawn top to bottom sharing the same scales (see `line_chart`).
pub fn stacked_bars(
    id: &str,
    title: &str,
    rows: &[(String, Vec<f64>)],
    parts: &[&str],
    unit: &str,
) -> String {
    let total = |v: &Vec<f64>| v.iter().filter(|x| x.is_finite()).sum::<f64>();
    let vmax = rows.iter().map(|(_, v)| total(v)).fold(0.0, f64::max);
    if rows.is_empty() || vmax <= 0.0 {
        return empty(id, title);
    }
    let label_w = 150.0;
    let bar_h = 22.0;
    // Legend entries sized by their label (about 6.5 px a character), wrapped onto more lines
    // when they do not fit the width.
    let mut legend: Vec<(f64, f64)> = Vec::new();
    let (mut lx, mut line) = (label_w, 0.0);
    for p in parts {
        let w = 16.0 + p.chars().count() as f64 * 6.5 + 14.0;
        if lx + w > W - RIGHT && lx > label_w {
            lx = label_w;
            line += 1.0;
        }
        legend.push((lx, line));
        lx += w;
    }
    let last_line = line;
    let h = TOP + rows.len() as f64 * (bar_h + 10.0) + 60.0 + last_line * 18.0;
    let pw = W - label_w - RIGHT - 70.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" data-chart="{}" role="img" viewBox="0 0 {W} {h}" width="{W}" height="{h}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(id),
        esc(title)
    );
    for (i, (name, vals)) in rows.iter().enumerate() {
        let y = TOP + i as f64 * (bar_h + 10.0);
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#222">{}</text>"##,
            label_w - 8.0,
            y + bar_h / 2.0 + 4.0,
            esc(name)
        );
        let mut x = label_w;
        for (j, v) in vals.iter().enumerate() {
            if !v.is_finite() || *v <= 0.0 {
                continue;
            }
            let w = v / vmax * pw;
            let part = parts.get(j).copied().unwrap_or("?");
            let _ = write!(
                out,
                r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{bar_h}" fill="{}"><title>{}: {} {}</title></rect>"#,
                PALETTE[j % PALETTE.len()],
                esc(name),
                esc(part),
                esc(&format!("{} {unit}", fmt_tick(*v)))
            );
            x += w;
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" font-size="11" fill="#444">{} {}</text>"##,
            x + 6.0,
            y + bar_h / 2.0 + 4.0,
            fmt_tick(total(vals)),
            esc(unit)
        );
    }
    for (j, (p, (lx, line))) in parts.iter().zip(legend).enumerate() {
        let ly = h - 24.0 - (last_line - line) * 18.0;
        let _ = write!(
            out,
            r##"<rect x="{lx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}" font-size="11" fill="#222">{}</text>"##,
            ly - 10.0,
            PALETTE[j % PALETTE.len()],
            lx + 16.0,
            ly,
            esc(p)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn nice_steps_and_ticks() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(730.0, 5.0), 200.0);
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(300.0), "300");
    }

    #[test]
    fn charts_escape_names_and_handle_no_data() {
        let s = Series {
            name: "<script>x</script>".into(),
            color: PALETTE[0],
            points: vec![(1.0, 2.0), (2.0, 3.0)],
        };
        let axis = XAxis {
            label: "t".into(),
            log: false,
            ticks: vec![],
        };
        let svg = line_chart("c", "title", &[s], &axis, "ms");
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(svg.contains("<polyline"));
        assert!(line_chart("c", "t", &[], &axis, "ms").contains("no data"));
        let bars = stacked_bars(
            "b",
            "t",
            &[("a\"b".into(), vec![1.0, 2.0])],
            &["x", "y"],
            "ms",
        );
        assert!(bars.contains("a&quot;b") && bars.matches("class=\"bar\"").count() == 2);
    }
}

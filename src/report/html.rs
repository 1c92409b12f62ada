//! HTML: one self-contained file (no network at view time: a Content-Security-Policy allows
//! nothing but its own hashed style and script) with a header (scenario, target, load, verdict),
//! percentile table, thresholds, the baseline comparison, latency and request rate over time,
//! the percentile spectrum on a log axis, stacked phase bars per step, and the waterfall of the
//! median iteration when the run came from `breakdown`. Every value from the run is escaped, so
//! a hostile step name or error message stays text.

use super::svg::{self, PALETTE, Series, XAxis, esc};
use super::table::{
    comparison_headline, describe_load, error_rate_cell, error_rows, outcome_label, quantile_cells,
    rows_to_show, step_rows, target_text,
};
use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::aggregate::summary::LatencyOrigin;
use crate::aggregate::summary::{Stats, StepSummary};
use crate::gate::{self, Comparison, Verdict};
use crate::units::ms;
use base64::Engine as _;
use sha2::Digest as _;
use std::fmt::Write as _;

pub struct HtmlReport;

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;\
color:#1d1d1f;background:#fafafa}main{max-width:980px;margin:0 auto;padding:24px}\
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px}\
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}\
.pass{background:#1a7f37}.fail{background:#cf222e}dl{display:grid;\
grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}dt{color:#57606a}dd{margin:0}\
table{border-collapse:collapse;background:#fff;margin:6px 0}th,td{border:1px solid #d0d7de;\
padding:4px 8px;text-align:right;white-space:nowrap}th:first-child,td:first-child,td.l{text-align:left}\
th{background:#f3f4f6}.warn{color:#9a6700}.bad{color:#cf222e;font-weight:600}\
.good{color:#1a7f37}svg.chart{background:#fff;border:1px solid #d0d7de;max-width:100%;height:auto}\
footer{color:#57606a;font-size:12px;margin-top:32px}ul{margin:4px 0}";

/// Records script errors into the DOM (so a headless browser test can see them) and counts the
/// drawn chart elements once loaded. The page works without it.
const SCRIPT: &str = "window.addEventListener('error',function(e){document.documentElement.\
setAttribute('data-js-error',String(e.message));});document.addEventListener('DOMContentLoaded',\
function(){document.body.setAttribute('data-charts',String(document.querySelectorAll(\
'svg.chart polyline, svg.chart rect.bar').length));});";

fn sha256_b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()))
}

fn step_row(out: &mut String, s: &StepSummary) {
    let l = &s.latency;
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td>",
        esc(&s.name),
        s.requests,
        s.rps,
        if s.errors == 0 {
            "0".to_string()
        } else {
            format!("{} ({:.1}%)", s.errors, s.error_rate() * 100.0)
        }
    );
    for v in [
        l.min_ms, l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms,
    ] {
        let _ = write!(out, "<td>{}</td>", ms(v));
    }
    out.push_str("</tr>");
}

type Points = Vec<(f64, f64)>;

/// The per-second rate points, leaving out intervals narrower than half the usual width (the
/// run's last partial second: 60 responses in its final 0.05 s would draw as 1,200/s).
/// Returns the request and error points and the seconds left out.
fn rate_points(s: &Summary) -> (Points, Points, f64) {
    let mut widths: Vec<f64> = Vec::with_capacity(s.series.len());
    let mut prev = 0.0;
    for p in &s.series {
        widths.push(p.t - prev);
        prev = p.t;
    }
    let mut sorted: Vec<f64> = widths.iter().copied().filter(|w| *w > 0.0).collect();
    sorted.sort_by(f64::total_cmp);
    let nominal = sorted.get(sorted.len() / 2).copied().unwrap_or(1.0);
    let mut rate = Vec::new();
    let mut errs = Vec::new();
    let mut left_out = 0.0;
    for (p, w) in s.series.iter().zip(widths) {
        if w < nominal / 2.0 || w <= 0.0 {
            left_out += w.max(0.0);
            continue;
        }
        rate.push((p.t, p.requests as f64 / w));
        errs.push((p.t, p.errors as f64 / w));
    }
    (rate, errs, left_out)
}

/// p50 and p99 per interval (a gap where an interval had no response), and requests (and
/// errors) per second over whole intervals.
fn over_time(s: &Summary) -> (String, String) {
    let pts = |f: fn(&crate::aggregate::IntervalPoint) -> f64| -> Vec<(f64, f64)> {
        s.series
            .iter()
            .map(|p| (p.t, if p.requests == 0 { f64::NAN } else { f(p) }))
            .collect()
    };
    let axis = XAxis {
        label: "seconds since start".into(),
        log: false,
        ticks: Vec::new(),
    };
    let latency = svg::line_chart(
        "latency-over-time",
        "Latency per interval (p50, p99)",
        &[
            Series {
                name: "p50".into(),
                color: PALETTE[0],
                points: pts(|p| p.p50_ms),
            },
            Series {
                name: "p99".into(),
                color: PALETTE[1],
                points: pts(|p| p.p99_ms),
            },
        ],
        &axis,
        "ms",
    );
    let (rate, errs, left_out) = rate_points(s);
    let mut rate = svg::line_chart(
        "request-rate",
        "Requests and errors per second",
        &[
            Series {
                name: "requests/s".into(),
                color: PALETTE[2],
                points: rate,
            },
            Series {
                name: "errors/s".into(),
                color: PALETTE[1],
                points: errs,
            },
        ],
        &axis,
        "per second",
    );
    if left_out > 0.0 {
        let _ = write!(
            rate,
            "<p>The last {left_out:.2} s (a partial interval) is left out of this chart: a rate over a sliver of a second is not a rate.</p>"
        );
    }
    (latency, rate)
}

/// Percentile spectrum (`HdrHistogram` plot style): x = 1/(1−q) on a log axis.
fn spectrum(s: &Summary) -> String {
    let mut series = Vec::new();
    let mut decades: u32 = 2;
    let mut rows: Vec<&StepSummary> = s.steps.iter().collect();
    if s.steps.len() != 1 {
        rows.push(&s.http);
    }
    for (i, st) in rows.iter().enumerate() {
        let h = st.latency.histogram();
        if h.is_empty() {
            continue;
        }
        // Go as far into the tail as the data supports (at most 99.999 %).
        let d = ((h.count() as f64).log10().floor() as u32).clamp(2, 5);
        decades = decades.max(d);
        let n = 24 * d;
        let points = (0..=n)
            .map(|k| {
                let x = 10f64.powf(f64::from(k) * f64::from(d) / f64::from(n));
                (x, h.quantile_ms(1.0 - 1.0 / x))
            })
            .collect();
        series.push(Series {
            name: st.name.clone(),
            color: PALETTE[i % PALETTE.len()],
            points,
        });
    }
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
    let ticks = (0..=decades)
        .map(|k| {
            (
                10f64.powi(k as i32),
                labels.get(k as usize).copied().unwrap_or("").to_string(),
            )
        })
        .collect();
    svg::line_chart(
        "percentile-spectrum",
        "Latency by percentile (log axis)",
        &series,
        &XAxis {
            label: "percentile".into(),
            log: true,
            ticks,
        },
        "ms",
    )
}

/// Where a step's time goes, in the table's own statistic (the mean latency of its successful
/// requests), so the bar ends where the table's `mean` column says. Segments: connection
/// phases, the server's `Server-Timing` parts (inside `wait`), the rest of `wait` (network and
/// queueing), `receive`, and `other`: time of the step outside one request's phases (a poll's
/// waits between attempts, redirects). Each phase counts as its mean × the share of requests
/// that had it.
fn phase_bars(s: &Summary) -> String {
    let (parts, rows) = time_split(s);
    let labels: Vec<&str> = parts.iter().map(String::as_str).collect();
    svg::stacked_bars(
        "phases",
        "Mean time per request: network phases, Server-Timing parts and the rest (the table's mean)",
        &rows,
        &labels,
        "ms",
    )
}

/// The parts (`dns` … `server: db` … `other`) and, per step, the mean ms of each.
pub fn time_split(s: &Summary) -> (Vec<String>, Vec<(String, Vec<f64>)>) {
    let mut server: Vec<String> = s
        .steps
        .iter()
        .flat_map(|st| st.server_timing.keys().cloned())
        .filter(|n| n != "total")
        .collect();
    server.sort();
    server.dedup();
    let mut parts: Vec<String> = ["dns", "connect", "tls", "send"]
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    parts.extend(server.iter().map(|n| format!("server: {n}")));
    parts.extend(["wait (network + queueing)", "receive", "other"].map(String::from));
    let rows = s
        .steps
        .iter()
        .filter(|st| st.latency.count > 0)
        .map(|st| {
            let n = st.requests.max(1) as f64;
            let per_req = |x: Option<&Stats>| x.map_or(0.0, |x| x.mean_ms * x.count as f64 / n);
            let mut vals: Vec<f64> = ["dns", "connect", "tls", "send"]
                .iter()
                .map(|p| per_req(st.phases.get(*p)))
                .collect();
            let server_ms: Vec<f64> = server
                .iter()
                .map(|n| per_req(st.server_timing.get(n)))
                .collect();
            let wait = per_req(st.phases.get("wait"));
            let rest_of_wait = (wait - server_ms.iter().sum::<f64>()).max(0.0);
            vals.extend(server_ms);
            vals.push(rest_of_wait);
            vals.push(per_req(st.phases.get("receive")));
            let accounted: f64 = vals.iter().sum();
            vals.push((st.latency.mean_ms - accounted).max(0.0));
            (st.name.clone(), vals)
        })
        .collect();
    (parts, rows)
}

/// Baseline and candidate side by side, per step: p50, then on to p95 and p99 (ms).
fn compare_bars(c: &Comparison) -> String {
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for r in c.rows.iter().filter(|r| r.part.is_none()) {
        let q = |stat: &str| r.quantiles.iter().find(|q| q.stat == stat);
        let (Some(p50), Some(p95), Some(p99)) = (q("p50"), q("p95"), q("p99")) else {
            continue;
        };
        let split = |a: f64, b: f64, c: f64| vec![a, (b - a).max(0.0), (c - b).max(0.0)];
        rows.push((
            format!("{} baseline", r.step),
            split(p50.baseline_ms, p95.baseline_ms, p99.baseline_ms),
        ));
        rows.push((
            format!("{} candidate", r.step),
            split(p50.candidate_ms, p95.candidate_ms, p99.candidate_ms),
        ));
    }
    svg::stacked_bars(
        "compare-percentiles",
        "Baseline and candidate per step: p50, then up to p95 and p99",
        &rows,
        &["p50", "p50 → p95", "p95 → p99"],
        "ms",
    )
}

impl HtmlReport {
    pub fn render_string(&self, s: &Summary, comparison: Option<&Comparison>) -> String {
        let mut o = String::new();
        head(&mut o, s, &gate::verdict(s, comparison));
        o.push_str(
            "<h2>Percentiles (ms)</h2><table id=\"percentiles\"><tr><th>step</th><th>reqs</th>\
             <th>rate/s</th><th>errors</th><th>min</th><th>p50</th><th>p90</th><th>p95</th>\
             <th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>",
        );
        for st in step_rows(s) {
            step_row(&mut o, &st);
        }
        o.push_str("</table>");
        let slowest = super::exemplars::slowest(s);
        if !slowest.is_empty() {
            o.push_str(
                "<h2>Slowest requests</h2><table id=\"slowest\"><tr><th>latency</th>\
                 <th>step</th><th>status</th><th>trace id</th><th>request id</th>\
                 <th>started</th><th>where the time went</th></tr>",
            );
            for e in slowest {
                let trace =
                    e.trace_id.as_deref().map_or_else(
                        String::new,
                        |t| match super::exemplars::href(e, s.trace_url.as_deref()) {
                            Some(u) => format!("<a href=\"{}\">{}</a>", esc(&u), esc(t)),
                            None => esc(t),
                        },
                    );
                let _ = write!(
                    o,
                    "<tr><td>{:.1}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
                     <td class=\"l\"><code>{trace}</code></td><td class=\"l\">{}</td>\
                     <td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                    e.latency_ms,
                    esc(&e.step),
                    esc(&super::exemplars::outcome(e)),
                    esc(e.request_id.as_deref().unwrap_or("")),
                    esc(&e.started_at),
                    esc(&super::exemplars::where_time_went(e))
                );
            }
            o.push_str("</table>");
        }

        thresholds(&mut o, s);
        if let Some(c) = comparison {
            comparison_section(&mut o, c);
            o.push_str(&compare_bars(c));
        }
        let (latency, rate) = over_time(s);
        let _ = write!(
            o,
            "<h2>Latency over time</h2>{latency}<h2>Request rate</h2>{rate}\
             <h2>Latency distribution</h2>{}<h2>Where the time goes</h2>{}{}",
            spectrum(s),
            phase_bars(s),
            super::waterfall::section(s)
        );
        errors(&mut o, s);
        let _ = writeln!(
            o,
            "<footer>sonde {} · result schema {} · HDR histograms, µs, 3 significant digits\
             </footer></main></body></html>",
            esc(&s.sonde_version),
            esc(&s.schema)
        );
        o
    }
}

/// The document's head, the title with the verdict badge, the run's facts and the reasons and
/// warnings a reader needs before the numbers.
fn head(o: &mut String, s: &Summary, v: &gate::GateVerdict) {
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; img-src data:",
        sha256_b64(STYLE),
        sha256_b64(SCRIPT)
    );
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>sonde · {}</title><style>{STYLE}</style><script>{SCRIPT}</script></head>\
             <body><main>",
        esc(&csp),
        esc(&s.scenario)
    );
    let _ = write!(
        o,
        "<h1>{} <span class=\"badge {}\" id=\"verdict\">{}</span></h1><dl>",
        esc(&s.scenario),
        if v.passed { "pass" } else { "fail" },
        if v.passed { "passed" } else { "failed" }
    );
    let target = target_text(s);
    let mut facts = vec![
        ("target", target),
        ("load", describe_load(s)),
        ("started", s.started_at.clone()),
        (
            "ran",
            format!(
                "{:.1} s, {} iterations ({:.1}/s), {} failed, {} requests",
                s.duration_s,
                s.iterations.count,
                s.iterations.rate,
                s.iterations.failed,
                s.http.requests
            ),
        ),
        (
            "latency",
            if s.latency_measured_from == LatencyOrigin::IntendedStart {
                "measured from each iteration's intended start (coordinated omission corrected)"
            } else {
                "measured from each request's start (closed model)"
            }
            .to_string(),
        ),
    ];
    if let Some(e) = &s.env {
        facts.insert(1, ("environment", e.clone()));
    }
    for (k, val) in facts {
        let _ = write!(o, "<dt>{k}</dt><dd>{}</dd>", esc(&val));
    }
    o.push_str("</dl><ul>");
    for r in &v.reasons {
        let _ = write!(o, "<li class=\"bad\">{}</li>", esc(r));
    }
    if s.insecure {
        o.push_str("<li class=\"warn\">--insecure: TLS certificates were NOT verified</li>");
    }
    if s.interrupted {
        o.push_str("<li class=\"warn\">interrupted: partial results</li>");
    }
    if s.iterations.dropped > 0 {
        let _ = write!(
            o,
            "<li class=\"warn\">{} iterations dropped: every VU was busy (raise max_vus)</li>",
            s.iterations.dropped
        );
    }
    for n in &s.notes {
        let _ = write!(o, "<li>{}</li>", esc(n));
    }
    o.push_str("</ul>");
}

fn thresholds(o: &mut String, s: &Summary) {
    if !s.thresholds.is_empty() {
        o.push_str(
            "<h2>Thresholds</h2><table id=\"thresholds\"><tr><th>result</th>\
                 <th>threshold</th><th>measured</th></tr>",
        );
        for t in &s.thresholds {
            let _ = write!(
                o,
                "<tr><td class=\"{}\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                if t.passed() { "good" } else { "bad" },
                outcome_label(t),
                esc(&t.threshold),
                esc(&t.message)
            );
        }
        o.push_str("</table>");
    }
}

fn errors(o: &mut String, s: &Summary) {
    let mut errors = String::new();
    for e in error_rows(s) {
        let msgs: Vec<String> = e.first_messages.iter().map(|m| esc(m)).collect();
        let _ = write!(
            errors,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(e.step),
            esc(e.class),
            e.count,
            msgs.join("<br>")
        );
    }
    if !errors.is_empty() {
        let _ = write!(
            o,
            "<h2>Errors</h2><table id=\"errors\"><tr><th>step</th><th>class</th>\
                 <th>count</th><th>first messages</th></tr>{errors}</table>"
        );
    }
}

fn comparison_section(o: &mut String, c: &Comparison) {
    let _ = write!(
        o,
        "<h2>Compared with the baseline</h2><p id=\"comparison-verdict\" class=\"{}\">{}</p>\
         <table id=\"comparison\"><tr><th>metric</th><th>p50</th><th>p95</th><th>p99</th>\
         <th>error rate</th><th>verdict</th></tr>",
        match c.verdict {
            Verdict::Regressed => "bad",
            Verdict::Improved => "good",
            _ => "",
        },
        esc(&comparison_headline(c))
    );
    for r in rows_to_show(c) {
        let q = quantile_cells(r);
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&r.key),
            esc(&q[0]),
            esc(&q[1]),
            esc(&q[2]),
            esc(&r
                .error_rate
                .as_ref()
                .map_or_else(String::new, error_rate_cell)),
            match r.verdict {
                Verdict::Regressed => "bad",
                Verdict::Improved => "good",
                _ => "l",
            },
            r.verdict.label()
        );
    }
    o.push_str("</table><ul>");
    for w in c.rows.iter().filter_map(|r| r.why.as_ref()) {
        let _ = write!(o, "<li class=\"bad\">{}</li>", esc(w));
    }
    for n in &c.notes {
        let _ = write!(o, "<li>{}</li>", esc(n));
    }
    let _ = write!(o, "</ul><p><small>Method: {}.</small></p>", esc(&c.method));
}

impl Report for HtmlReport {
    fn render_with(
        &self,
        summary: &Summary,
        comparison: Option<&Comparison>,
    ) -> Result<Vec<u8>, ReportError> {
        Ok(self.render_string(summary, comparison).into_bytes())
    }
}

//! The "slowest requests" every report shows under its percentiles: one line per exemplar
//! (step, latency, status, when, trace id, request id, the phase and `Server-Timing` parts that
//! took the time), linked with `--trace-url` where the format has links.

use crate::aggregate::{Exemplar, Summary};

/// The exemplars a report lists: the N slowest of the whole run (the `http` row's, each naming
/// its step), else the steps' own (a result without an `http` row's exemplars).
#[must_use]
pub fn slowest(s: &Summary) -> Vec<&Exemplar> {
    if !s.http.exemplars.slowest.is_empty() {
        return s.http.exemplars.slowest.iter().collect();
    }
    let mut all: Vec<&Exemplar> = s
        .steps
        .iter()
        .flat_map(|st| st.exemplars.slowest.iter())
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.latency_us));
    let limit = s
        .steps
        .iter()
        .map(|st| st.exemplars.limit as usize)
        .max()
        .unwrap_or(0);
    all.truncate(limit);
    all
}

/// The first failures of each class across steps.
#[must_use]
pub fn failures(s: &Summary) -> Vec<&Exemplar> {
    s.steps
        .iter()
        .flat_map(|st| st.exemplars.failures.iter())
        .collect()
}

/// `wait 2301.2ms` and the `Server-Timing` parts, largest first: where the time went.
#[must_use]
pub fn where_time_went(e: &Exemplar) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some((name, v)) = e
        .phases
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .filter(|(_, v)| **v > 0.0)
    {
        parts.push(format!("{name} {v:.1}ms"));
    }
    let mut st: Vec<_> = e.server_timing.iter().collect();
    st.sort_by(|a, b| b.dur_ms.total_cmp(&a.dur_ms));
    if !st.is_empty() {
        let shown: Vec<String> = st
            .iter()
            .take(4)
            .map(|p| format!("{}={:.1}ms", p.name, p.dur_ms))
            .collect();
        parts.push(format!("server-timing {}", shown.join(" ")));
    }
    parts.join(", ")
}

/// The status cell: the status, or the error class when no status came (or it failed).
#[must_use]
pub fn outcome(e: &Exemplar) -> String {
    match (e.status, &e.error_class) {
        (Some(st), Some(c)) => format!("{st} {c}"),
        (Some(st), None) => st.to_string(),
        (None, Some(c)) => c.clone(),
        (None, None) => "-".into(),
    }
}

/// One plain-text line: `2310.4ms  profile  200  trace 4bf9…  req abc  at …  wait …`.
#[must_use]
pub fn line(e: &Exemplar, trace_url: Option<&str>) -> String {
    let mut out = format!("{:>10}  {}  {}", ms(e.latency_ms), e.step, outcome(e));
    if let Some(t) = &e.trace_id {
        out.push_str("  trace ");
        out.push_str(t);
    }
    if let Some(r) = &e.request_id {
        out.push_str("  request ");
        out.push_str(r);
    }
    out.push_str("  at ");
    out.push_str(&e.started_at);
    let why = where_time_went(e);
    if !why.is_empty() {
        out.push_str("  ");
        out.push_str(&why);
    }
    if let Some(link) = trace_url.and_then(|t| crate::aggregate::exemplar::link(t, e)) {
        out.push_str("  ");
        out.push_str(&link);
    }
    out
}

/// The exemplar's link from the `--trace-url` template, when the template is an http(s) URL
/// (a saved result's template is not trusted to be one).
#[must_use]
pub fn href(e: &Exemplar, trace_url: Option<&str>) -> Option<String> {
    let t = trace_url?;
    if !(t.starts_with("https://") || t.starts_with("http://")) {
        return None;
    }
    crate::aggregate::exemplar::link(t, e)
}

use crate::units::fmt_ms_f64 as ms;

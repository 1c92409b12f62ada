//! Exemplars: the requests behind a percentile. Each step keeps its N slowest requests and, per
//! error class, the first few failures, each with what it takes to find it again (wall-clock
//! start, the trace id sent, the request id the server returned) and why it was slow (phases,
//! `Server-Timing` parts). Bounded per load thread and merged exactly like the histograms: the
//! N slowest of a merge are the N slowest of the union, across threads and shards.
//!
//! The hot path pays one comparison per request: `latency_us > floor_us`, the step's current
//! N-th slowest (0 until N are kept). Only a request that beats it is built and offered.

use serde::{Deserialize, Serialize};

/// Failures kept per error class (the first ones, by start time).
pub const FAILURES_PER_CLASS: usize = 3;

/// Characters of a request id an exemplar keeps.
pub const MAX_REQUEST_ID: usize = 128;

/// One `Server-Timing` entry of an exemplar.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimingPart {
    pub name: String,
    pub dur_ms: f64,
}

/// One request, as a report shows it. Holds no request or response header except the request
/// id the server returned: no secret reaches it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Exemplar {
    /// The step that sent it.
    pub step: String,
    /// Wall clock of the request's start, RFC 3339 UTC with milliseconds.
    pub started_at: String,
    /// Request latency as the step's histograms measured it.
    pub latency_ms: f64,
    /// The same in microseconds: what the merge orders by.
    pub latency_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Set for a failed request: its error class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// dns, connect, tls, send, wait, receive in milliseconds (phases that took no time left
    /// out).
    #[serde(default)]
    pub phases: std::collections::BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_timing: Vec<TimingPart>,
    /// The W3C trace id sent in `traceparent` (32 hex digits); absent with trace context off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The server's id for the request (`X-Request-Id`, `traceresponse` or the scenario's
    /// `request_id_header`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A step's exemplars.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Exemplars {
    /// How many slowest requests are kept (`--exemplars`).
    pub limit: u32,
    /// The slowest requests, slowest first.
    #[serde(default)]
    pub slowest: Vec<Exemplar>,
    /// The first failures of each error class (at most `FAILURES_PER_CLASS` each), by start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Exemplar>,
    /// The latency a request must beat to be kept: the N-th slowest once N are kept, else 0.
    #[serde(skip)]
    pub floor_us: u64,
}

impl Exemplars {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slowest.is_empty() && self.failures.is_empty()
    }

    /// Whether a request of `latency_us` would be kept: the hot path's one comparison.
    #[inline]
    #[must_use]
    pub fn beats(&self, latency_us: u64) -> bool {
        latency_us > self.floor_us
    }

    /// Keeps `e` if it is among the `limit` slowest (`limit` 0: keeps nothing, ever).
    pub fn offer(&mut self, limit: u32, e: Exemplar) {
        self.limit = limit;
        if limit == 0 {
            self.floor_us = u64::MAX;
            return;
        }
        if !self.beats(e.latency_us) {
            return;
        }
        let at = self
            .slowest
            .iter()
            .position(|x| x.latency_us < e.latency_us)
            .unwrap_or(self.slowest.len());
        self.slowest.insert(at, e);
        self.slowest.truncate(limit as usize);
        self.refloor();
    }

    /// Whether a failure of `class` would still be kept (the first few per class).
    #[must_use]
    pub fn wants_failure(&self, class: &str) -> bool {
        self.failures
            .iter()
            .filter(|f| f.error_class.as_deref() == Some(class))
            .count()
            < FAILURES_PER_CLASS
    }

    /// Keeps a failure if its class has fewer than `FAILURES_PER_CLASS` kept (`limit` 0:
    /// none).
    pub fn offer_failure(&mut self, limit: u32, e: Exemplar) {
        if limit == 0 {
            return;
        }
        self.limit = limit;
        let Some(class) = e.error_class.as_deref() else {
            return;
        };
        if self.wants_failure(class) {
            self.failures.push(e);
        }
    }

    fn refloor(&mut self) {
        let nth = (self.limit as usize).checked_sub(1);
        self.floor_us = match nth.and_then(|i| self.slowest.get(i)) {
            Some(e) => e.latency_us,
            None => 0,
        };
    }

    /// The union of both, cut to the larger limit: the slowest of the union, the first
    /// failures per class (by start time).
    pub fn merge(&mut self, o: &Exemplars) {
        self.limit = self.limit.max(o.limit);
        if !o.slowest.is_empty() {
            self.slowest.extend(o.slowest.iter().cloned());
            // Ties broken by start time, then trace id, so a merge's order does not depend on
            // the order the parts arrived in.
            self.slowest.sort_by(|a, b| {
                b.latency_us
                    .cmp(&a.latency_us)
                    .then_with(|| a.started_at.cmp(&b.started_at))
                    .then_with(|| a.trace_id.cmp(&b.trace_id))
            });
            self.slowest.truncate(self.limit as usize);
        }
        if !o.failures.is_empty() {
            self.failures.extend(o.failures.iter().cloned());
            self.failures.sort_by(|a, b| {
                a.error_class
                    .cmp(&b.error_class)
                    .then_with(|| a.started_at.cmp(&b.started_at))
            });
            let mut kept: Vec<Exemplar> = Vec::with_capacity(self.failures.len());
            for f in self.failures.drain(..) {
                let n = kept
                    .iter()
                    .filter(|k| k.error_class == f.error_class)
                    .count();
                if n < FAILURES_PER_CLASS {
                    kept.push(f);
                }
            }
            self.failures = kept;
        }
        if self.limit > 0 {
            self.refloor();
        }
    }

    /// Back to empty (the limit stays).
    pub fn reset(&mut self) {
        self.slowest.clear();
        self.failures.clear();
        self.floor_us = 0;
    }
}

/// Wall-clock RFC 3339 (ms) of an instant `ago` before now.
#[must_use]
pub fn started_at(ago: std::time::Duration) -> String {
    let now = std::time::SystemTime::now();
    let at = now.checked_sub(ago).unwrap_or(now);
    humantime::format_rfc3339_millis(at).to_string()
}

/// A template such as `https://tempo.example/trace/{trace_id}` filled in for one exemplar
/// (`{trace_id}`, `{request_id}`); `None` when it names a value the exemplar lacks.
#[must_use]
pub fn link(template: &str, e: &Exemplar) -> Option<String> {
    let mut out = template.to_string();
    for (key, value) in [
        ("{trace_id}", e.trace_id.as_deref()),
        ("{request_id}", e.request_id.as_deref()),
    ] {
        if out.contains(key) {
            let v = value?;
            let enc: String =
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            out = out.replace(key, &enc);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ex(us: u64, at: &str) -> Exemplar {
        Exemplar {
            step: "s".into(),
            started_at: at.into(),
            latency_us: us,
            latency_ms: us as f64 / 1000.0,
            trace_id: Some(format!("{us:032x}")),
            ..Exemplar::default()
        }
    }

    #[test]
    fn keeps_the_n_slowest_and_raises_the_floor() {
        let mut x = Exemplars::default();
        for (i, us) in [5u64, 1, 9, 3, 7, 8, 2].into_iter().enumerate() {
            if x.beats(us) {
                x.offer(3, ex(us, &format!("t{i}")));
            }
        }
        let kept: Vec<u64> = x.slowest.iter().map(|e| e.latency_us).collect();
        assert_eq!(kept, [9, 8, 7]);
        assert_eq!(x.floor_us, 7);
        assert!(!x.beats(7));
        assert!(x.beats(8));
    }

    #[test]
    fn merge_is_the_n_slowest_of_the_union_whatever_the_split() {
        let values: Vec<u64> = (0..40).map(|i| (i * 37) % 101).collect();
        let mut whole = Exemplars::default();
        for (i, v) in values.iter().enumerate() {
            whole.offer(5, ex(*v, &format!("{i:03}")));
        }
        for parts in [2usize, 3, 7] {
            let mut merged = Exemplars::default();
            for chunk in values.chunks(values.len().div_ceil(parts)) {
                let mut p = Exemplars::default();
                for v in chunk {
                    let i = values.iter().position(|x| x == v).unwrap();
                    p.offer(5, ex(*v, &format!("{i:03}")));
                }
                merged.merge(&p);
            }
            assert_eq!(merged.slowest, whole.slowest, "{parts} parts");
            assert_eq!(merged.floor_us, whole.floor_us);
        }
        // Parts that each saw fewer requests than the limit still merge to the limit.
        let mut a = Exemplars::default();
        a.offer(5, ex(10, "a"));
        a.offer(5, ex(20, "b"));
        let mut b = Exemplars::default();
        for (i, v) in [30u64, 40, 50].iter().enumerate() {
            b.offer(5, ex(*v, &format!("c{i}")));
        }
        a.merge(&b);
        assert_eq!(a.slowest.len(), 5);
        assert_eq!(a.floor_us, 10);
    }

    #[test]
    fn failures_keep_the_first_few_per_class() {
        let mut x = Exemplars::default();
        x.offer(5, ex(1, "0"));
        for i in 0..5 {
            let mut e = ex(i, &format!("{i}"));
            e.error_class = Some(if i % 2 == 0 { "timeout" } else { "status_5xx" }.into());
            x.offer_failure(5, e);
        }
        let mut y = Exemplars::default();
        y.offer(5, ex(1, "0"));
        let mut early = ex(9, "-");
        early.error_class = Some("timeout".into());
        y.offer_failure(5, early);
        x.merge(&y);
        let timeouts: Vec<&str> = x
            .failures
            .iter()
            .filter(|f| f.error_class.as_deref() == Some("timeout"))
            .map(|f| f.started_at.as_str())
            .collect();
        assert_eq!(timeouts, ["-", "0", "2"]);
        assert_eq!(x.failures.len(), 5);
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut x = Exemplars::default();
        x.offer(0, ex(100, "a"));
        assert!(x.slowest.is_empty());
        assert!(!x.beats(u64::MAX - 1));
        let mut f = ex(1, "b");
        f.error_class = Some("timeout".into());
        x.offer_failure(0, f);
        assert!(x.failures.is_empty());
    }

    #[test]
    fn links_fill_the_template() {
        let e = ex(1, "a");
        assert_eq!(
            link("https://tempo.example/trace/{trace_id}", &e).as_deref(),
            Some("https://tempo.example/trace/00000000000000000000000000000001")
        );
        assert_eq!(link("https://x/{request_id}", &e), None);
    }
}

//! Measurement storage: HDR histograms (µs, 3 significant digits) per step × phase, server-timing
//! parts, counts and error classes, merged exactly across load threads and shards. Knows nothing
//! of HTTP or output formats: exec records into it, reports read a `Summary`.

pub mod exemplar;
pub mod hist;
pub mod merge;
pub mod summary;
pub mod threshold;
pub mod waterfall;

pub use exemplar::{Exemplar, Exemplars};
pub use hist::Hist;
pub use summary::{IntervalPoint, Summary};
pub use waterfall::{Waterfall, WaterfallRequest};

use std::collections::BTreeMap;

/// The network phases every request yields, in display order.
pub const PHASES: [&str; 7] = ["dns", "connect", "tls", "send", "wait", "receive", "total"];

/// One step's measurements (or `http`, all requests).
#[derive(Debug, Clone, Default)]
pub struct StepStats {
    /// Request latency, one sample per request the step sent (each attempt of a poll, a
    /// redirect chain as one request): from the request's start to its end, except the first
    /// request of an open-model iteration, measured from the iteration's intended start
    /// (coordinated omission). Never includes a poll's waits: those are `settle`.
    pub latency: Hist,
    /// The same latency for requests that failed (transport error, unexpected status, failed
    /// expectation, cut at the end): kept apart so `latency` describes successful requests
    /// (k6 keeps `expected_response` apart the same way). Failures are counted in `errors`.
    pub failed_latency: Hist,
    /// A poll step's settle time, one sample per poll that settled: from the start of `since`
    /// (or of the first attempt) to the passing response, waits included. Empty for other steps
    /// and for `http`.
    pub settle: Hist,
    /// Polls that gave up (timeout, transport error): counted, their time kept out of `settle`.
    pub unsettled: u64,
    /// Per phase, indexed like `PHASES`. The dns, connect and tls samples of `zero_connect`
    /// are not in here until `settle` (which `merge` and `StepSummary::of` do).
    pub phases: [Hist; 7],
    /// Requests whose dns, connect and tls phases were all zero (a reused connection): counted
    /// on the hot path instead of three histogram records each, and added to those three
    /// histograms as one bulk record of zero by `settle`, so their percentiles stay exact.
    pub zero_connect: u64,
    /// `Server-Timing` metric name -> durations.
    pub server_timing: BTreeMap<String, Hist>,
    /// Requests sent, each counted once: `latency.count() + failed_latency.count()`.
    pub requests: u64,
    /// Redirect hops followed inside those requests (their phases are recorded too).
    pub redirects: u64,
    /// Requests not sent because a template could not be rendered (class `template`, e.g. a
    /// captured value too large).
    pub skipped: u64,
    /// Times the step was not run, by design: its `if:` did not hold, or a variable it needs
    /// has no value because the step that sets it failed or did not run. Not requests, not
    /// errors.
    pub not_run: u64,
    /// The part of `not_run` due to a variable without a value.
    pub not_run_unset: u64,
    /// Why the step was not run -> count. Capped like `error_messages`.
    pub not_run_reasons: BTreeMap<String, u64>,
    /// Requests that failed (transport error, unexpected status, failed expectation).
    pub errors: u64,
    pub reused: u64,
    pub tls_resumed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Responses whose body ended with the connection, with no length to check it against.
    pub close_delimited: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Error class -> count (`connect_refused`, `timeout`, `status_5xx`, `assertion`, ...).
    pub error_classes: BTreeMap<String, u64>,
    /// Failure detail -> count, e.g. `expected status 200, got 500`. Capped in size.
    pub error_messages: BTreeMap<String, u64>,
    /// The slowest requests and first failures, with their trace and request ids.
    pub exemplars: Exemplars,
}

/// Distinct failure messages kept per step; beyond this they are counted as "other".
pub const MAX_MESSAGES: usize = 20;

impl StepStats {
    /// Back to empty, keeping the histograms' memory (server timing names are dropped, so a
    /// name seen once does not show up later with no data).
    pub fn reset(&mut self) {
        self.latency.reset();
        self.failed_latency.reset();
        self.settle.reset();
        self.unsettled = 0;
        for h in &mut self.phases {
            h.reset();
        }
        self.zero_connect = 0;
        self.server_timing.clear();
        self.requests = 0;
        self.redirects = 0;
        self.skipped = 0;
        self.not_run = 0;
        self.not_run_unset = 0;
        self.not_run_reasons.clear();
        self.errors = 0;
        self.reused = 0;
        self.tls_resumed = 0;
        self.bytes_sent = 0;
        self.bytes_received = 0;
        self.close_delimited = 0;
        self.statuses.clear();
        self.error_classes.clear();
        self.error_messages.clear();
        self.exemplars.reset();
    }

    /// Add the pending zero dns/connect/tls samples (`zero_connect`) to their histograms.
    pub fn settle(&mut self) {
        let n = std::mem::take(&mut self.zero_connect);
        for h in &mut self.phases[..3] {
            h.record_n_us(0, n);
        }
    }

    pub fn merge(&mut self, o: &StepStats) {
        self.settle();
        for h in &mut self.phases[..3] {
            h.record_n_us(0, o.zero_connect);
        }
        self.latency.merge(&o.latency);
        self.failed_latency.merge(&o.failed_latency);
        self.settle.merge(&o.settle);
        self.unsettled += o.unsettled;
        for (a, b) in self.phases.iter_mut().zip(o.phases.iter()) {
            a.merge(b);
        }
        for (k, h) in &o.server_timing {
            self.server_timing.entry(k.clone()).or_default().merge(h);
        }
        self.requests += o.requests;
        self.redirects += o.redirects;
        self.skipped += o.skipped;
        self.not_run += o.not_run;
        self.not_run_unset += o.not_run_unset;
        for (k, v) in &o.not_run_reasons {
            add_message(&mut self.not_run_reasons, k, *v);
        }
        self.errors += o.errors;
        self.reused += o.reused;
        self.tls_resumed += o.tls_resumed;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.close_delimited += o.close_delimited;
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &o.error_classes {
            *self.error_classes.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.error_messages {
            add_message(&mut self.error_messages, k, *v);
        }
        self.exemplars.merge(&o.exemplars);
    }

    /// One phase's histogram; dns, connect and tls lack the `zero_connect` samples until
    /// `settle`.
    #[must_use]
    pub fn phase(&self, name: &str) -> Option<&Hist> {
        PHASES
            .iter()
            .position(|p| *p == name)
            .map(|i| &self.phases[i])
    }

    /// The step was not run (not a request, not an error), for `reason`.
    pub fn record_not_run(&mut self, reason: &str, unset: bool) {
        self.not_run += 1;
        if unset {
            self.not_run_unset += 1;
        }
        add_message(&mut self.not_run_reasons, reason, 1);
    }

    pub fn record_error(&mut self, class: &str, message: Option<&str>) {
        self.errors += 1;
        match self.error_classes.get_mut(class) {
            Some(c) => *c += 1,
            None => {
                self.error_classes.insert(class.to_string(), 1);
            }
        }
        if let Some(m) = message {
            add_message(&mut self.error_messages, m, 1);
        }
    }
}

pub fn add_message(map: &mut BTreeMap<String, u64>, msg: &str, n: u64) {
    if let Some(c) = map.get_mut(msg) {
        *c += n;
    } else if map.len() < MAX_MESSAGES {
        map.insert(msg.to_string(), n);
    } else {
        *map.entry("(other messages)".to_string()).or_default() += n;
    }
}

/// Everything one load thread (or the whole run) measured, steps indexed as in the plan
/// (`Plan::request_steps` order), so the hot path never hashes or allocates a name.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub steps: Vec<StepStats>,
    pub iterations: u64,
    /// Iterations that had at least one failed request or expectation.
    pub failed_iterations: u64,
    /// Open model: iterations not started because every VU was busy.
    pub dropped_iterations: u64,
    /// Requests still in flight when the grace period after the end (or an interrupt) ran
    /// out: cancelled, and counted as failed requests of class `cancelled`.
    pub cut_requests: u64,
    /// Time virtual users waited, summed, because a 429 said `Retry-After`.
    pub rate_limit_wait: std::time::Duration,
    /// Whole-iteration duration (from intended start in the open model).
    pub iteration_time: Hist,
}

impl Recorder {
    #[must_use]
    pub fn new(steps: usize) -> Recorder {
        Recorder {
            steps: vec![StepStats::default(); steps],
            ..Recorder::default()
        }
    }

    /// Back to empty, keeping the histograms' memory.
    pub fn reset(&mut self) {
        for s in &mut self.steps {
            s.reset();
        }
        self.iterations = 0;
        self.failed_iterations = 0;
        self.dropped_iterations = 0;
        self.cut_requests = 0;
        self.rate_limit_wait = std::time::Duration::ZERO;
        self.iteration_time.reset();
    }

    pub fn merge(&mut self, o: &Recorder) {
        if self.steps.len() < o.steps.len() {
            self.steps.resize_with(o.steps.len(), StepStats::default);
        }
        for (a, b) in self.steps.iter_mut().zip(o.steps.iter()) {
            a.merge(b);
        }
        self.iterations += o.iterations;
        self.failed_iterations += o.failed_iterations;
        self.dropped_iterations += o.dropped_iterations;
        self.cut_requests += o.cut_requests;
        self.rate_limit_wait += o.rate_limit_wait;
        self.iteration_time.merge(&o.iteration_time);
    }

    /// All requests of every step merged (the `http` row): request latency only, no poll's
    /// settle time.
    #[must_use]
    pub fn all_requests(&self) -> StepStats {
        let mut all = StepStats::default();
        for s in &self.steps {
            all.merge(s);
        }
        all.settle.reset();
        all.unsettled = 0;
        all
    }
}

/// Per-interval data a load thread ships every second (small: counts and one latency
/// histogram per step), for the live view and the result's time series.
#[derive(Debug, Clone, Default)]
pub struct IntervalRecorder {
    pub requests: u64,
    pub errors: u64,
    pub iterations: u64,
    pub dropped: u64,
    pub latency: Hist,
}

impl IntervalRecorder {
    pub fn reset(&mut self) {
        self.requests = 0;
        self.errors = 0;
        self.iterations = 0;
        self.dropped = 0;
        self.latency.reset();
    }

    pub fn merge(&mut self, o: &IntervalRecorder) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.iterations += o.iterations;
        self.dropped += o.dropped;
        self.latency.merge(&o.latency);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Zero dns/connect/tls counted in bulk end up in the same histograms as recorded one by
    /// one, through `merge` and through a summary of unmerged stats.
    #[test]
    fn bulk_zero_connect_phases_equal_one_by_one_records() {
        let mut direct = StepStats::default();
        let mut bulk = StepStats::default();
        for us in [0u64, 0, 700, 0] {
            for s in [&mut direct, &mut bulk] {
                s.phases[3].record_us(5);
            }
            for h in &mut direct.phases[..3] {
                h.record_us(us);
            }
            if us == 0 {
                bulk.zero_connect += 1;
            } else {
                for h in &mut bulk.phases[..3] {
                    h.record_us(us);
                }
            }
        }
        let a = summary::StepSummary::of("s", &direct, 1.0);
        let b = summary::StepSummary::of("s", &bulk, 1.0);
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
        let mut merged = StepStats::default();
        merged.merge(&bulk);
        merged.merge(&bulk);
        let mut twice = StepStats::default();
        twice.merge(&direct);
        twice.merge(&direct);
        for i in 0..7 {
            assert_eq!(merged.phases[i].buckets(), twice.phases[i].buckets(), "{i}");
        }
        assert_eq!(merged.phases[0].count(), 8);
        assert_eq!(merged.phases[0].buckets(), vec![(1, 6), (700, 2)]);
        assert_eq!(merged.zero_connect, 0);
    }
}

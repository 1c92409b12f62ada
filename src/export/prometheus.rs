//! `--out prometheus=URL`: Prometheus remote-write 1.0 (a protobuf `WriteRequest`, snappy
//! block-compressed, POSTed with `Content-Encoding: snappy`, `Content-Type:
//! application/x-protobuf`, `X-Prometheus-Remote-Write-Version: 0.1.0`), as Prometheus's
//! `--web.enable-remote-write-receiver` accepts it.
//!
//! Every second the aggregator's merged recorder becomes a snapshot of cumulative series
//! (`snapshot`) handed to a separate task through a bounded queue (`Pusher::offer`, never
//! blocking: a full queue drops that second, the next snapshot carries the totals anyway). The
//! task encodes, compresses and pushes with retry; a dead receiver costs a warning at the end,
//! never the run. The final snapshot, made from the very recorder the run result is made of,
//! is flushed at the end, so the series' last values equal the result.
//!
//! Series (labels `scenario`, `env`, `shard`, `run_id`, and `step`, `phase`, `class`, `le`,
//! `quantile` where they apply):
//! `sonde_requests_total`, `sonde_errors_total{class}`, `sonde_request_duration_seconds`
//! (classic histogram of successful requests: `_bucket{le}`, `_sum`, `_count`),
//! `sonde_request_duration_quantile_seconds{quantile}` (exact p50/p90/p95/p99 from the HDR
//! histogram, as the result's percentiles), `sonde_phase_duration_seconds_sum` /
//! `_count{phase}`, `sonde_iterations_total`, `sonde_dropped_iterations_total`, `sonde_vus`.

use crate::aggregate::{Hist, PHASES, Recorder};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `prometheus.WriteRequest` (remote-write 1.0), fields as in prompb/remote.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: value, then the timestamp in milliseconds since the epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Classic histogram bucket bounds, seconds.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The exact quantiles pushed as gauges.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.5, "0.5"), (0.9, "0.9"), (0.95, "0.95"), (0.99, "0.99")];

/// Snapshots waiting for the push task; beyond this a second is skipped (the next one carries
/// the cumulative totals).
const QUEUE: usize = 8;
/// Attempts per push, and the pause before the second (doubling).
const ATTEMPTS: u32 = 3;
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// One push's request timeout.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What every series of the run carries.
#[derive(Debug, Clone)]
pub struct RunLabels {
    pub scenario: String,
    pub env: String,
    pub shard: String,
    pub run_id: String,
}

impl RunLabels {
    fn base(&self) -> [(&'static str, &str); 4] {
        [
            ("env", &self.env),
            ("run_id", &self.run_id),
            ("scenario", &self.scenario),
            ("shard", &self.shard),
        ]
    }
}

/// A fresh run id: 16 hex digits.
#[must_use]
pub fn new_run_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

fn series(run: &RunLabels, name: &str, extra: &[(&str, &str)], value: f64, ts: i64) -> TimeSeries {
    let mut labels: Vec<Label> = run
        .base()
        .iter()
        .chain(extra.iter())
        .map(|(k, v)| Label {
            name: (*k).to_string(),
            value: (*v).to_string(),
        })
        .collect();
    labels.push(Label {
        name: "__name__".into(),
        value: name.into(),
    });
    // Remote write wants labels sorted by name.
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: vec![Sample {
            value,
            timestamp: ts,
        }],
    }
}

fn count_le(h: &Hist, le_s: f64) -> u64 {
    let le_us = (le_s * 1_000_000.0) as u64;
    match h.inner() {
        Some(inner) if h.count() > 0 => inner
            .iter_recorded()
            .filter(|v| inner.highest_equivalent(v.value_iterated_to()) <= le_us)
            .map(|v| v.count_at_value())
            .sum(),
        _ => 0,
    }
}

/// The run's cumulative series at `ts` (ms since the epoch) from the merged recorder.
#[must_use]
pub fn snapshot(
    run: &RunLabels,
    names: &[String],
    rec: &Recorder,
    vus: Option<f64>,
    ts: i64,
) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    for (name, s) in names.iter().zip(rec.steps.iter()) {
        let step = StepSeries { run, name, ts };
        step.requests(&mut out, s.requests, &s.error_classes);
        step.latency(&mut out, &s.latency);
        step.quantiles(&mut out, &s.latency);
        step.phases(&mut out, &s.phases);
    }
    run_totals(&mut out, run, rec, vus, ts);
    out
}

/// One step's series families, labelled with its name.
struct StepSeries<'a> {
    run: &'a RunLabels,
    name: &'a str,
    ts: i64,
}

impl StepSeries<'_> {
    /// `sonde_requests_total`, and `sonde_errors_total` by class.
    fn requests(
        &self,
        out: &mut Vec<TimeSeries>,
        requests: u64,
        errors: &std::collections::BTreeMap<String, u64>,
    ) {
        let (run, name, ts) = (self.run, self.name, self.ts);
        let step = [("step", name)];
        out.push(series(
            run,
            "sonde_requests_total",
            &step,
            requests as f64,
            ts,
        ));
        for (class, n) in errors {
            out.push(series(
                run,
                "sonde_errors_total",
                &[("step", name), ("class", class)],
                *n as f64,
                ts,
            ));
        }
    }

    /// The `sonde_request_duration_seconds` histogram: buckets, count and sum.
    fn latency(&self, out: &mut Vec<TimeSeries>, h: &Hist) {
        let (run, name, ts) = (self.run, self.name, self.ts);
        let step = [("step", name)];
        for le in BUCKETS {
            let le_text = le.to_string();
            out.push(series(
                run,
                "sonde_request_duration_seconds_bucket",
                &[("step", name), ("le", &le_text)],
                count_le(h, le) as f64,
                ts,
            ));
        }
        out.push(series(
            run,
            "sonde_request_duration_seconds_bucket",
            &[("step", name), ("le", "+Inf")],
            h.count() as f64,
            ts,
        ));
        out.push(series(
            run,
            "sonde_request_duration_seconds_count",
            &step,
            h.count() as f64,
            ts,
        ));
        out.push(series(
            run,
            "sonde_request_duration_seconds_sum",
            &step,
            h.mean_us() * h.count() as f64 / 1_000_000.0,
            ts,
        ));
    }

    /// `sonde_request_duration_quantile_seconds`, once the step has a latency.
    fn quantiles(&self, out: &mut Vec<TimeSeries>, h: &Hist) {
        if h.count() == 0 {
            return;
        }
        for (q, label) in QUANTILES {
            out.push(series(
                self.run,
                "sonde_request_duration_quantile_seconds",
                &[("step", self.name), ("quantile", label)],
                h.quantile_ms(q) / 1000.0,
                self.ts,
            ));
        }
    }

    /// `sonde_phase_duration_seconds` count and sum of each phase the step went through.
    fn phases(&self, out: &mut Vec<TimeSeries>, phases: &[Hist]) {
        for (phase, ph) in PHASES.iter().zip(phases.iter()) {
            if ph.count() == 0 {
                continue;
            }
            let labels = [("step", self.name), ("phase", *phase)];
            out.push(series(
                self.run,
                "sonde_phase_duration_seconds_count",
                &labels,
                ph.count() as f64,
                self.ts,
            ));
            out.push(series(
                self.run,
                "sonde_phase_duration_seconds_sum",
                &labels,
                ph.mean_us() * ph.count() as f64 / 1_000_000.0,
                self.ts,
            ));
        }
    }
}

/// The run's own series: iterations done and dropped, and the VUs when known.
fn run_totals(
    out: &mut Vec<TimeSeries>,
    run: &RunLabels,
    rec: &Recorder,
    vus: Option<f64>,
    ts: i64,
) {
    out.push(series(
        run,
        "sonde_iterations_total",
        &[],
        rec.iterations as f64,
        ts,
    ));
    out.push(series(
        run,
        "sonde_dropped_iterations_total",
        &[],
        rec.dropped_iterations as f64,
        ts,
    ));
    if let Some(v) = vus {
        out.push(series(run, "sonde_vus", &[], v, ts));
    }
}

/// The protobuf bytes of `series`, snappy block-compressed: a remote-write request body.
pub fn encode(series: Vec<TimeSeries>) -> Result<Vec<u8>, String> {
    use prost::Message as _;
    let raw = WriteRequest { timeseries: series }.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| format!("snappy: {e}"))
}

/// Milliseconds since the epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The push task and its queue.
pub struct Pusher {
    tx: tokio::sync::mpsc::Sender<Vec<TimeSeries>>,
    task: tokio::task::JoinHandle<PushStats>,
    skipped: Arc<AtomicU64>,
    pub url: url::Url,
}

/// How the pushes went.
#[derive(Debug, Default)]
pub struct PushStats {
    pub pushed: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl Pusher {
    /// Starts the push task on the current runtime. `allow` is the run's host allow-list: the
    /// URL must pass it (loopback always, other hosts only if named on the command line).
    pub fn start(url: url::Url, base: crate::http::ClientConfig) -> Result<Pusher, String> {
        let shown = crate::redact::redact_url(url.as_str());
        base.allow
            .check_url(&url)
            .map_err(|e| format!("--out prometheus={shown}: {e}"))?;
        // The run's TLS options (-k, --cacert) and allow-list; the pusher's own time limits.
        let cfg = crate::http::ClientConfig {
            request_timeout: PUSH_TIMEOUT,
            connect_timeout: PUSH_TIMEOUT,
            http2: false,
            streams_per_connection: 1,
            ..base
        };
        let client = crate::http::Client::new(cfg).map_err(|e| e.to_string())?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<TimeSeries>>(QUEUE);
        let target = url.clone();
        let task = tokio::spawn(async move {
            let session = client.session();
            let mut stats = PushStats::default();
            while let Some(batch) = rx.recv().await {
                match push(&session, &target, batch).await {
                    Ok(()) => stats.pushed += 1,
                    Err(e) => {
                        stats.failed += 1;
                        stats.last_error = Some(e);
                    }
                }
            }
            stats
        });
        Ok(Pusher {
            tx,
            task,
            skipped: Arc::default(),
            url,
        })
    }

    /// Queues a snapshot without waiting; a full queue skips it.
    pub fn offer(&self, batch: Vec<TimeSeries>) {
        if self.tx.try_send(batch).is_err() {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues the final snapshot and waits (at most `limit`) for every push to end. Returns a
    /// warning when pushes failed or were skipped.
    pub async fn finish(self, last: Vec<TimeSeries>, limit: Duration) -> Option<String> {
        let Pusher {
            tx,
            task,
            skipped,
            url,
        } = self;
        let url = crate::redact::redact_url(url.as_str());
        // One deadline for both waits, so a black-holed receiver delays the results by `limit`
        // at most. The final snapshot waits for room: it carries the totals the result has.
        let deadline = tokio::time::Instant::now() + limit;
        let queued = tokio::time::timeout_at(deadline, tx.send(last)).await;
        drop(tx);
        let skipped = skipped.load(Ordering::Relaxed);
        let lost_final = !matches!(queued, Ok(Ok(())));
        let mut task = task;
        let stats = if let Ok(Ok(s)) = tokio::time::timeout_at(deadline, &mut task).await {
            s
        } else {
            task.abort();
            return Some(format!(
                "prometheus: pushing to {url} did not finish within {}s; the series may \
                 miss the run's last values",
                limit.as_secs()
            ));
        };
        if stats.failed == 0 && !lost_final {
            return (skipped > 0).then(|| {
                format!(
                    "prometheus: {skipped} per-second snapshot(s) skipped while {url} was slow \
                     (the final totals were pushed)"
                )
            });
        }
        Some(format!(
            "prometheus: {} of {} push(es) to {url} failed{}; the run itself is unaffected",
            stats.failed,
            stats.failed + stats.pushed,
            stats
                .last_error
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        ))
    }
}

async fn push(
    session: &crate::http::Session,
    url: &url::Url,
    batch: Vec<TimeSeries>,
) -> Result<(), String> {
    use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
    let body = bytes::Bytes::from(encode(batch)?);
    let mut req = crate::http::Request::new(http::Method::POST, url.clone());
    req.follow_redirects = false;
    req.timeout = Some(PUSH_TIMEOUT);
    req.headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    req.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    req.headers.insert(
        "x-prometheus-remote-write-version",
        HeaderValue::from_static("0.1.0"),
    );
    req.body = body;
    let mut delay = FIRST_RETRY;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let ex = session.send_ref(&req, None).await;
        match (&ex.error, ex.status) {
            (None, Some(st)) if st.is_success() => return Ok(()),
            // A 4xx other than 429 will not get better by retrying (bad data, wrong URL).
            (None, Some(st)) if st.is_client_error() && st.as_u16() != 429 => {
                let why = String::from_utf8_lossy(&ex.body[..ex.body.len().min(200)])
                    .trim()
                    .to_string();
                return Err(format!(
                    "status {st}: {}",
                    crate::redact::redact_free_text(&why)
                ));
            }
            (None, Some(st)) => last = format!("status {st}"),
            (Some(e), _) => last = e.message.clone(),
            (None, None) => last = "no response".into(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use prost::Message as _;

    #[test]
    fn snapshot_round_trips_through_protobuf_and_snappy() {
        let mut rec = Recorder::new(1);
        for us in [1_000u64, 2_000, 30_000, 700_000] {
            rec.steps[0].latency.record_us(us);
            rec.steps[0].requests += 1;
        }
        rec.steps[0].record_error("timeout", None);
        rec.iterations = 4;
        let run = RunLabels {
            scenario: "s".into(),
            env: "e".into(),
            shard: String::new(),
            run_id: "r".into(),
        };
        let ts = snapshot(&run, &["get".into()], &rec, Some(3.0), 1_700_000_000_000);
        let body = encode(ts.clone()).unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let back = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(back.timeseries, ts);
        let value = |name: &str, extra: &[(&str, &str)]| {
            ts.iter()
                .find(|t| {
                    t.labels
                        .iter()
                        .any(|l| l.name == "__name__" && l.value == name)
                        && extra
                            .iter()
                            .all(|(k, v)| t.labels.iter().any(|l| l.name == *k && l.value == *v))
                })
                .map(|t| t.samples[0].value)
        };
        assert_eq!(value("sonde_requests_total", &[("step", "get")]), Some(4.0));
        assert_eq!(
            value("sonde_errors_total", &[("class", "timeout")]),
            Some(1.0)
        );
        assert_eq!(
            value("sonde_request_duration_seconds_bucket", &[("le", "0.0025")]),
            Some(2.0)
        );
        assert_eq!(
            value("sonde_request_duration_seconds_bucket", &[("le", "+Inf")]),
            Some(4.0)
        );
        assert_eq!(value("sonde_vus", &[]), Some(3.0));
        // Labels sorted by name, `__name__` first.
        for t in &ts {
            let names: Vec<&str> = t.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted);
            assert_eq!(names[0], "__name__");
        }
    }
}

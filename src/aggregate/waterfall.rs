//! The waterfall of one iteration as stored in a run result: one bar per request on the
//! iteration's time axis, phases in milliseconds, the critical path marked. Plain data: the
//! breakdown fills it, reports draw it; nothing here measures or formats.

use serde::{Deserialize, Serialize};

/// The median iteration of one `sonde breakdown` pass (one connection mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Waterfall {
    /// `new` (a fresh connection per request) or `reuse` (warm connections).
    pub connection: String,
    /// How many iterations the median was taken from.
    pub iterations: u64,
    /// The iteration's wall-clock duration.
    pub total_ms: f64,
    /// In the order the requests started.
    pub requests: Vec<WaterfallRequest>,
}

/// One request of the iteration; `offset_ms` is from the iteration's start, and the phases
/// follow each other from there (`total_ms` is their sum as the transport measured it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WaterfallRequest {
    pub step: String,
    pub offset_ms: f64,
    pub dns_ms: f64,
    pub connect_ms: f64,
    pub tls_ms: f64,
    pub send_ms: f64,
    pub wait_ms: f64,
    pub receive_ms: f64,
    pub total_ms: f64,
    pub reused: bool,
    pub status: Option<u16>,
    /// On the critical path: every request of a sequential step, and the request of each
    /// parallel group that ends last.
    pub critical: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl WaterfallRequest {
    /// dns, connect, tls, send, wait, receive: the parts a bar is drawn from, in order.
    #[must_use]
    pub fn parts_ms(&self) -> [f64; 6] {
        [
            self.dns_ms,
            self.connect_ms,
            self.tls_ms,
            self.send_ms,
            self.wait_ms,
            self.receive_ms,
        ]
    }

    #[must_use]
    pub fn end_ms(&self) -> f64 {
        self.offset_ms + self.total_ms
    }
}

impl Waterfall {
    /// Where the time axis ends: the last request's end or the iteration's duration, whichever
    /// is later, and at least `floor` (so an empty or instant iteration still has an axis).
    pub fn axis_end_ms(&self, floor: f64) -> f64 {
        axis_end(
            self.requests.iter().map(WaterfallRequest::end_ms),
            self.total_ms,
            floor,
        )
    }
}

/// The end of a waterfall's time axis, in the unit of its arguments: the latest of `ends` and
/// `total`, at least `floor`. The terminal and HTML waterfalls share it.
pub fn axis_end(ends: impl Iterator<Item = f64>, total: f64, floor: f64) -> f64 {
    ends.fold(total, f64::max).max(floor)
}

/// A bar's drawn segments: each phase that took time, as `(phase index, start, length)`, the
/// phases following each other from `offset`. Phases of zero (or no measured) length draw
/// nothing. The terminal and HTML waterfalls share it.
pub fn segments(offset: f64, parts: [f64; 6]) -> impl Iterator<Item = (usize, f64, f64)> {
    let mut start = offset;
    parts.into_iter().enumerate().filter_map(move |(i, len)| {
        if !len.is_finite() || len <= 0.0 {
            return None;
        }
        let from = start;
        start += len;
        Some((i, from, len))
    })
}

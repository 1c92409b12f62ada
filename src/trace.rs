//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the `traceparent` sonde sends
//! with every request (version 00, a fresh trace id per iteration, a span id per request, the
//! sampled flag set), so the slowest requests it reports can be found in the tracing system and
//! the server's logs. `tracestate` is the scenario's own header, passed through untouched.
//!
//! The header is formatted into a fixed 55-byte buffer: no heap allocation per request.

/// The request header sonde sets.
pub const TRACEPARENT: &str = "traceparent";
/// The companion header a scenario may set; sonde never writes it.
pub const TRACESTATE: &str = "tracestate";

/// Length of a version-00 `traceparent` value: `00-` 32 hex `-` 16 hex `-01`.
pub const LEN: usize = 55;

/// What the run does with trace context and exemplars (scenario `http:` options and flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceOptions {
    /// Send `traceparent` on every request (`http.trace_context: false`,
    /// `--no-trace-context` turn it off).
    pub context: bool,
    /// A response header holding the server's request id, besides `X-Request-Id` and
    /// `traceresponse` (`http.request_id_header`).
    pub request_id_header: Option<String>,
    /// Slowest requests kept per step (`--exemplars N`; 0 keeps no exemplar at all).
    pub exemplars: u32,
}

/// Exemplars kept per step by default.
pub const DEFAULT_EXEMPLARS: u32 = 5;

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            context: true,
            request_id_header: None,
            exemplars: DEFAULT_EXEMPLARS,
        }
    }
}

/// A fresh trace id (never all zeros, which the spec declares invalid).
#[must_use]
pub fn new_trace_id() -> u128 {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id;
        }
    }
}

/// A fresh span (parent) id, never zero.
#[must_use]
pub fn new_span_id() -> u64 {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id;
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two lowercase hex digits per byte value: a table read per byte, not per nibble.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// The low `digits` (even) hex digits of `v` into `out` (this runs for every request: a
/// table lookup per byte of a 64-bit half).
fn hex_into(out: &mut [u8], v: u128, digits: usize) {
    let bytes = v.to_be_bytes();
    let skip = 16 - digits / 2;
    for (pair, b) in out.chunks_exact_mut(2).zip(&bytes[skip..]) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

/// One `traceparent` value, formatted once into a fixed buffer.
#[derive(Clone, Copy)]
pub struct TraceParent {
    buf: [u8; LEN],
}

impl TraceParent {
    /// `00-{trace}-{span}-01` (sampled).
    #[must_use]
    pub fn new(trace_id: u128, span_id: u64) -> TraceParent {
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-01";
        hex_into(&mut buf[3..35], trace_id, 32);
        hex_into(&mut buf[36..52], u128::from(span_id), 16);
        TraceParent { buf }
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes are ever written into the buffer.
        std::str::from_utf8(&self.buf).unwrap_or_default()
    }

    /// The 32 lowercase hex digits of the trace id.
    #[must_use]
    pub fn trace_id_hex(&self) -> &str {
        &self.as_str()[3..35]
    }
}

impl std::fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trace id as the 32 lowercase hex digits logs and tracing systems show.
#[must_use]
pub fn trace_id_hex(id: u128) -> String {
    format!("{id:032x}")
}

/// The parts of a `traceparent` header: (trace id, parent id, flags). `None` for anything the
/// spec says to ignore: wrong length or characters, version `ff`, an all-zero id, and a
/// version-00 value with trailing data.
#[must_use]
pub fn parse(value: &str) -> Option<(u128, u64, u8)> {
    let v = value.trim();
    let b = v.as_bytes();
    if b.len() < LEN || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let lower_hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex(&b[0..2]) || !lower_hex(&b[3..35]) || !lower_hex(&b[36..52]) {
        return None;
    }
    if !lower_hex(&b[53..55]) {
        return None;
    }
    let version = u8::from_str_radix(&v[0..2], 16).ok()?;
    if version == 0xff || (version == 0 && b.len() != LEN) || (b.len() > LEN && b[55] != b'-') {
        return None;
    }
    let trace = u128::from_str_radix(&v[3..35], 16).ok()?;
    let span = u64::from_str_radix(&v[36..52], 16).ok()?;
    let flags = u8::from_str_radix(&v[53..55], 16).ok()?;
    (trace != 0 && span != 0).then_some((trace, span, flags))
}

/// The `traceparent` a caller set itself in `headers` (a scenario, an imported request), if
/// it is a valid one.
#[must_use]
pub fn sent_by_caller(headers: &http::HeaderMap) -> Option<TraceParent> {
    let v = headers.get(TRACEPARENT)?.to_str().ok()?;
    let (trace, span, _) = parse(v)?;
    Some(TraceParent::new(trace, span))
}

/// Whether `headers` (a scenario's or an imported request's, by name) already carry a
/// `traceparent`: the caller's own header wins (repro of a specific trace).
pub fn sets_traceparent<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| n.eq_ignore_ascii_case(TRACEPARENT))
}

/// `splice_h1` in place: the header line goes into `buf` after its request line (one move of
/// the rest, no second buffer).
pub fn insert_h1(buf: &mut Vec<u8>, value: &[u8]) {
    let at = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(buf.len(), |i| i + 2);
    let line = b"traceparent: ".iter().chain(value).chain(b"\r\n").copied();
    buf.splice(at..at, line);
}

/// `wire` (an HTTP/1.1 request) with `traceparent: VALUE` added as the first header after the
/// request line, written into `out` (cleared first; its capacity is reused).
pub fn splice_h1(wire: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let at = wire
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(wire.len(), |i| i + 2);
    out.reserve(wire.len() + value.len() + 16);
    out.extend_from_slice(&wire[..at]);
    out.extend_from_slice(b"traceparent: ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&wire[at..]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn formats_version_00_sampled_and_parses_back() {
        let tp = TraceParent::new(
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            0x00f0_67aa_0ba9_02b7,
        );
        assert_eq!(
            tp.as_str(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            parse(tp.as_str()),
            Some((
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                0x00f0_67aa_0ba9_02b7,
                1
            ))
        );
        let small = TraceParent::new(1, 2);
        assert_eq!(
            small.as_str(),
            "00-00000000000000000000000000000001-0000000000000002-01"
        );
    }

    #[test]
    fn rejects_what_the_spec_says_to_ignore() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // A later version may append fields after a dash.
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz").is_some());
    }

    #[test]
    fn fresh_ids_differ_and_are_never_zero() {
        let a = new_trace_id();
        let b = new_trace_id();
        assert_ne!(a, b);
        assert_ne!(new_span_id(), 0);
    }

    #[test]
    fn splices_the_header_after_the_request_line() {
        let wire = b"GET /x HTTP/1.1\r\nhost: a\r\n\r\nbody";
        let mut out = Vec::new();
        let tp = TraceParent::new(1, 2);
        splice_h1(wire, tp.as_bytes(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "GET /x HTTP/1.1\r\ntraceparent: {}\r\nhost: a\r\n\r\nbody",
                tp.as_str()
            )
        );
        // In place, the same bytes.
        let mut buf = wire.to_vec();
        insert_h1(&mut buf, tp.as_bytes());
        assert_eq!(String::from_utf8(buf).unwrap(), text);
    }

    #[test]
    fn a_callers_traceparent_is_recognised_in_any_case() {
        assert!(sets_traceparent(["Accept", "TraceParent"].into_iter()));
        assert!(!sets_traceparent(["tracestate"].into_iter()));
    }
}

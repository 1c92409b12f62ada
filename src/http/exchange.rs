//! The attempt record every request fills (phase marks, status, headers, capped body capture,
//! bytes); the exchanges are `h1` (HTTP/1.1) and `h2` (HTTP/2). Does not open connections, pool
//! them, or follow redirects.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{StatusCode, Version};

use super::Timing;
use super::connect::ConnectMarks;
use super::error::{Authority, ErrorKind, TransportError};
use super::io::IoStats;

/// The first `limit` body bytes. A body that arrives in one chunk is kept as that chunk
/// (no copy); later chunks are copied into one buffer up to the limit.
#[derive(Debug, Default)]
pub(crate) enum Capture {
    #[default]
    Empty,
    One(Bytes),
    Buf(BytesMut),
}

impl Capture {
    pub(crate) fn push(&mut self, data: &Bytes, limit: usize) {
        match self {
            Capture::Empty => {
                if limit > 0 && !data.is_empty() {
                    *self = Capture::One(data.slice(..data.len().min(limit)));
                }
            }
            Capture::One(first) => {
                let room = limit.saturating_sub(first.len());
                if room > 0 && !data.is_empty() {
                    let take = data.len().min(room);
                    let mut buf = BytesMut::with_capacity(first.len() + take);
                    buf.extend_from_slice(first);
                    buf.extend_from_slice(&data[..take]);
                    *self = Capture::Buf(buf);
                }
            }
            Capture::Buf(buf) => {
                let room = limit.saturating_sub(buf.len());
                if room > 0 {
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Capture::Empty => Bytes::new(),
            Capture::One(b) => b,
            Capture::Buf(b) => b.freeze(),
        }
    }
}

/// Everything one attempt observed. Lives outside the request future, so a timeout that drops
/// the future keeps the marks, status and counts reached so far.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub start: Instant,
    pub connect: ConnectMarks,
    /// Connection checked out or opened and handshaken; sending starts.
    pub ready: Option<Instant>,
    pub send_end: Option<Instant>,
    pub headers_at: Option<Instant>,
    pub end: Option<Instant>,
    pub reused: bool,
    pub tls_resumed: bool,
    /// HTTP/2 only: the shared connection's counters, for the end of `send`.
    pub stats: Option<Arc<IoStats>>,
    /// HTTP/1.1: bytes written and read by this exchange. HTTP/2: estimates (head sizes before
    /// HPACK plus bodies), since the connection's counters are shared between streams.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub h2: bool,
    pub status: Option<StatusCode>,
    pub version: Version,
    pub headers: super::Headers,
    pub capture: Capture,
    pub body_len: u64,
    /// HTTP/1.x body with no length that ended when the server closed the connection: a
    /// truncated body cannot be told from a whole one.
    pub close_delimited: bool,
    /// This attempt added `Connection: close` to the request (`ConnectionMode::New`).
    pub said_close: bool,
}

impl Attempt {
    pub(crate) fn new(start: Instant) -> Attempt {
        Attempt {
            start,
            connect: ConnectMarks::default(),
            ready: None,
            send_end: None,
            headers_at: None,
            end: None,
            reused: false,
            tls_resumed: false,
            stats: None,
            bytes_sent: 0,
            bytes_received: 0,
            h2: false,
            status: None,
            version: Version::HTTP_11,
            headers: super::Headers::default(),
            capture: Capture::Empty,
            body_len: 0,
            close_delimited: false,
            said_close: false,
        }
    }

    /// HTTP/2: the send mark comes from the shared connection's last flush.
    pub(crate) fn use_stats(&mut self, stats: &Arc<IoStats>) {
        self.stats = Some(stats.clone());
        self.h2 = true;
    }

    /// The last flush after sending started marks the end of `send` (HTTP/2).
    pub(crate) fn mark_send_end(&mut self) {
        if self.send_end.is_none()
            && let (Some(stats), Some(ready)) = (&self.stats, self.ready)
            && let Some(at) = stats.flushed_at()
            && at >= ready
        {
            self.send_end = Some(at);
        }
    }

    /// Phases from the marks; missing marks collapse onto the previous one, so the phases
    /// always add up to `total`.
    pub(crate) fn timing(&mut self) -> Timing {
        self.mark_send_end();
        let end = self.end.unwrap_or_else(Instant::now).max(self.start);
        let clamp = |prev: Instant, m: Option<Instant>| m.unwrap_or(prev).clamp(prev, end);
        let zero = std::time::Duration::ZERO;
        let c = &self.connect;
        // A reused connection has no connect marks: its dns, connect and tls are zero (as the
        // clamps below would give), without three clock subtractions per request.
        let (tls_end, dns, connect, tls) =
            if c.dns_end.is_none() && c.tcp_end.is_none() && c.tls_end.is_none() {
                (self.start, zero, zero, zero)
            } else {
                let dns_end = clamp(self.start, c.dns_end);
                let tcp_end = clamp(dns_end, c.tcp_end);
                let tls_end = clamp(tcp_end, c.tls_end);
                (
                    tls_end,
                    dns_end - self.start,
                    tcp_end - dns_end,
                    tls_end - tcp_end,
                )
            };
        let headers_cap = self.headers_at.unwrap_or(end);
        let send_end = clamp(tls_end, self.send_end.map(|s| s.min(headers_cap)));
        let headers_at = clamp(send_end, self.headers_at.or(Some(end)));
        let bytes_received = if self.h2 {
            self.bytes_received + self.body_len
        } else {
            self.bytes_received
        };
        Timing {
            start: self.start,
            dns,
            connect,
            tls,
            send: send_end - tls_end,
            wait: headers_at - send_end,
            receive: end - headers_at,
            total: end - self.start,
            reused: self.reused,
            tls_resumed: self.tls_resumed,
            bytes_sent: self.bytes_sent,
            bytes_received,
        }
    }
}

/// The timeout message: which stage the deadline caught.
pub(crate) fn timeout_error(
    att: &Attempt,
    authority: Authority<'_>,
    limit: std::time::Duration,
) -> TransportError {
    let resolving = att.ready.is_none()
        && att.connect.dns_end.is_none()
        && att.connect.tcp_end.is_none()
        && !authority.host.starts_with('[')
        && authority.host.parse::<std::net::IpAddr>().is_err();
    if resolving {
        return TransportError::new(
            ErrorKind::Dns,
            format!(
                "resolving {} did not finish within the request timeout ({limit:?})",
                authority.host
            ),
        );
    }
    let stage = if att.headers_at.is_some() {
        "while receiving the body"
    } else if att.ready.is_some() && att.send_end.is_none() && !att.h2 {
        "while sending the request"
    } else if att.ready.is_some() {
        "waiting for the response"
    } else {
        "while connecting"
    };
    TransportError::new(
        ErrorKind::Timeout,
        format!("{authority}: no complete response within {limit:?} ({stage})"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn capture_keeps_at_most_the_limit_across_chunks() {
        let mut c = Capture::Empty;
        c.push(&Bytes::from_static(b"hello "), 8);
        c.push(&Bytes::from_static(b"world"), 8);
        c.push(&Bytes::from_static(b"!!!"), 8);
        assert_eq!(c.into_bytes(), Bytes::from_static(b"hello wo"));

        let mut one = Capture::Empty;
        one.push(&Bytes::from_static(b"abc"), 8);
        assert!(matches!(one, Capture::One(_)));
        assert_eq!(one.into_bytes(), Bytes::from_static(b"abc"));

        let mut none = Capture::Empty;
        none.push(&Bytes::from_static(b"abc"), 0);
        assert!(none.into_bytes().is_empty());
    }

    #[test]
    fn phases_add_up_to_total_even_with_missing_marks() {
        let start = Instant::now();
        let mut att = Attempt::new(start);
        att.ready = Some(start + std::time::Duration::from_millis(5));
        att.headers_at = Some(start + std::time::Duration::from_millis(20));
        att.end = Some(start + std::time::Duration::from_millis(30));
        let t = att.timing();
        let sum = t.dns + t.connect + t.tls + t.send + t.wait + t.receive;
        assert_eq!(sum, t.total);
        assert_eq!(t.total, std::time::Duration::from_millis(30));
        assert_eq!(t.receive, std::time::Duration::from_millis(10));
        assert!(t.dns.is_zero() && t.connect.is_zero() && t.tls.is_zero());

        // A new connection: its marks make the dns, connect and tls phases.
        let ms = std::time::Duration::from_millis;
        let mut att = Attempt::new(start);
        att.connect.dns_end = Some(start + ms(1));
        att.connect.tcp_end = Some(start + ms(3));
        att.connect.tls_end = Some(start + ms(6));
        att.send_end = Some(start + ms(7));
        att.headers_at = Some(start + ms(10));
        att.end = Some(start + ms(15));
        let t = att.timing();
        assert_eq!(
            [t.dns, t.connect, t.tls, t.send, t.wait, t.receive, t.total],
            [ms(1), ms(2), ms(3), ms(1), ms(3), ms(5), ms(15)]
        );
    }
}

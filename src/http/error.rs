//! Error classes of the transport: the stable `ErrorKind` names reports count by, the
//! per-request `TransportError`, and `HttpError` for building a client. Messages name the host
//! and port, never header values, cookies or tokens.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// Why a request did not yield a full response. Names are stable (`as_str`), used in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The host name did not resolve.
    Dns,
    /// TCP connection refused (nothing listening).
    ConnectRefused,
    /// DNS + TCP + TLS did not finish within `connect_timeout`.
    ConnectTimeout,
    /// Other connection failure (unreachable network, ...).
    Connect,
    /// TLS handshake failed (certificate, protocol).
    Tls,
    /// The whole-request deadline passed.
    Timeout,
    /// The peer reset or closed the connection before the response headers.
    Reset,
    /// The response body ended before its announced end.
    BodyTruncated,
    /// The peer broke HTTP (unparsable response, HTTP/2 protocol error).
    Protocol,
    /// More redirects than `max_redirects`.
    TooManyRedirects,
    /// The request could not be built (bad URL scheme, header, method).
    InvalidRequest,
    /// The host is not on the allow-list (loopback, or named on the command line): nothing was
    /// sent, no connection was opened.
    NotAllowed,
}

impl ErrorKind {
    /// Stable name for reports and JSON.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::BodyTruncated => "body_truncated",
            ErrorKind::Protocol => "protocol",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::NotAllowed => "not_allowed",
        }
    }

    /// The request failed before any response could exist: nothing answered (DNS, refused,
    /// connect timeout, TLS) or it was never sent (allow-list, invalid request).
    #[must_use]
    pub fn before_response(&self) -> bool {
        matches!(
            self,
            ErrorKind::Dns
                | ErrorKind::ConnectRefused
                | ErrorKind::ConnectTimeout
                | ErrorKind::Connect
                | ErrorKind::Tls
                | ErrorKind::NotAllowed
                | ErrorKind::InvalidRequest
        )
    }

    /// Every kind, in declaration order (for reports that list all classes).
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Dns,
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::BodyTruncated,
        ErrorKind::Protocol,
        ErrorKind::TooManyRedirects,
        ErrorKind::InvalidRequest,
        ErrorKind::NotAllowed,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request's failure: a class and a message naming host/port (never secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    pub kind: ErrorKind,
    pub message: String,
}

impl TransportError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            message: message.into(),
        }
    }
}

/// Building a `Client` failed (bad `--cacert`, TLS configuration).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaCert { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// `host:port` for messages, formatted only when an error is built (no per-request allocation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authority<'a> {
    pub host: &'a str,
    pub port: u16,
}

impl fmt::Display for Authority<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where in the exchange an HTTP/2 error surfaced; decides between `Reset` and `BodyTruncated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    BeforeHeaders,
    Body,
}

/// Classify an HTTP/2 error (the request, the response head or a body frame) into an
/// `ErrorKind` with a message that names `authority` (host:port). h2's messages carry no header
/// values.
pub(crate) fn classify_h2(
    err: &h2::Error,
    stage: Stage,
    authority: Authority<'_>,
) -> TransportError {
    let cut = match stage {
        Stage::BeforeHeaders => ErrorKind::Reset,
        Stage::Body => ErrorKind::BodyTruncated,
    };
    let kind = if err.is_io() || err.is_go_away() || err.is_reset() || find_io_kind(err).is_some() {
        cut
    } else {
        ErrorKind::Protocol
    };
    let what = match stage {
        Stage::BeforeHeaders => "before the response headers",
        Stage::Body => "during the response body",
    };
    TransportError::new(kind, format!("{authority}: HTTP/2: {} {what}", chain(err)))
}

/// Classify an I/O error from connecting (TCP) to `authority`.
pub(crate) fn classify_connect_io(err: &io::Error, authority: Authority<'_>) -> TransportError {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => TransportError::new(
            ErrorKind::ConnectRefused,
            format!("{authority}: connection refused"),
        ),
        io::ErrorKind::TimedOut => {
            TransportError::new(ErrorKind::ConnectTimeout, format!("{authority}: {err}"))
        }
        _ => TransportError::new(ErrorKind::Connect, format!("{authority}: {err}")),
    }
}

/// Classify an error of the TLS handshake (rustls errors arrive wrapped in `io::Error`).
pub(crate) fn classify_tls_io(err: &io::Error, authority: Authority<'_>) -> TransportError {
    let rustls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match (rustls_err, err.kind()) {
        (Some(tls), _) => TransportError::new(
            ErrorKind::Tls,
            format!("{authority}: {}", super::tls::describe(tls)),
        ),
        (None, io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof) => {
            TransportError::new(
                ErrorKind::Tls,
                format!("{authority}: connection closed during the TLS handshake ({err})"),
            )
        }
        (None, _) => TransportError::new(ErrorKind::Tls, format!("{authority}: {err}")),
    }
}

fn find_io_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

/// "outer: inner: innermost", deduplicating repeated texts.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_distinct() {
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::ConnectRefused.as_str(), "connect_refused");
        assert_eq!(ErrorKind::BodyTruncated.to_string(), "body_truncated");
    }

    #[test]
    fn refused_is_its_own_class_and_names_the_target() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        let t = classify_connect_io(
            &e,
            Authority {
                host: "127.0.0.1",
                port: 9,
            },
        );
        assert_eq!(t.kind, ErrorKind::ConnectRefused);
        assert!(t.message.contains("127.0.0.1:9"));
    }
}

//! The one HTTP transport. Every request yields its phases (dns, connect, tls, send, wait,
//! receive, total), connection reuse, bytes, status, and parsed `Server-Timing`. HTTP/1.1 is
//! sonde's own (`h1`: httparse for the head, RFC 9112 framing), HTTP/2 is the `h2` crate
//! driven from the sending task (`h2`), both over tokio and tokio-rustls, because reqwest cannot
//! split TCP from TLS or report reuse, and hyper's clients cost more per request than a load
//! tester can afford (see `h1` and `h2`). Knows nothing of scenarios, plans or reports.
//!
//! # Phases (`Timing`)
//! Marks are taken with `Instant::now()` only at phase edges; each phase runs from the previous
//! mark to its own, so `dns + connect + tls + send + wait + receive == total` exactly (a missing
//! mark, e.g. after a timeout, collapses its phase to zero).
//! - `dns`: name resolution (`getaddrinfo` via tokio). 0 for IP literals and reused connections.
//! - `connect`: TCP connect (all resolved addresses are tried in order). 0 when reused.
//! - `tls`: the TLS handshake including ALPN. 0 for `http://` and reused connections.
//! - `send`: from the connection being ready (or the TLS end; on a new HTTP/2 connection this
//!   includes the HTTP/2 preface) to the moment the request's last bytes were handed to the
//!   socket (HTTP/1.1: the one write returned, TLS flushed). For HTTP/2 it is measured in the
//!   I/O layer under `h2`, the time of the last flush that followed a write; the connection is
//!   shared, so with concurrent streams the mark may belong to another stream's write; it is
//!   clamped to lie before the response headers.
//! - `wait`: from the request being written to the response headers being parsed (time to
//!   first byte; headers are parsed as soon as the bytes that complete them are read).
//! - `receive`: from the response headers to the last body byte.
//! - `total`: from the start of this request (one hop) to its end.
//!
//! `reused` is true when the connection came from the session's pool (for HTTP/2: an existing
//! shared connection). `tls_resumed` is rustls' `handshake_kind() == Resumed` on a new
//! connection. `bytes_sent`/`bytes_received` count HTTP bytes above TLS (head, body and chunk
//! framing, not the TLS handshake) for HTTP/1.1; for HTTP/2 they are estimated from header
//! sizes before HPACK plus body lengths, since the connection's counters are shared.
//!
//! # Connections
//! HTTP/1.1 connections are driven inside the task that sends on them (no spawned connection
//! task, no cross-task wake-ups) and return to the session's pool after a complete response.
//! HTTP/2 (offered via ALPN over TLS) runs its connection in a spawned task and is shared by
//! the session's concurrent requests, and with `streams_per_connection` > 1 by that many
//! sessions created on one thread (`h2`). `ConnectionMode::New` opens a connection per request.
//! A pooled HTTP/1.1 connection found closed is replaced silently: when it shows closed at
//! checkout, when writing the request fails, or (idempotent methods only) when it closes before
//! any byte of the response.
//!
//! # Which hosts
//! Every new connection is checked against the client's `HostPolicy` (`allow`) before DNS and
//! again on the resolved addresses: a refused request fails with `not_allowed` and never opens
//! a socket. Pooled connections were checked when they were opened.
//!
//! # Redirects, cookies, limits
//! Redirects are followed by `Session::send` hop by hop (each a `Hop` with its own timing):
//! 301/302/303 turn into GET without a body, 307/308 keep both; every header the redactor treats as
//! secret (`Authorization`, `Cookie`, `X-Api-Key`, any `*token*`, ...) is dropped when the host
//! or port changes, and each hop's host must pass the allow-list like any request.
//! The session's cookie jar stores `Set-Cookie` (domain/path rules of `cookie_store`) and adds
//! matching cookies to later requests, after any `Cookie` header the request already has.
//! `connect_timeout` bounds DNS+TCP+TLS; the request timeout bounds the whole exchange (all
//! hops, including bodies). Bodies are streamed: at most `body_capture_limit` bytes are kept,
//! all are counted.

pub mod allow;
mod connect;
mod error;
mod exchange;
mod h1;
mod h2;
mod io;
mod redirect;
mod server_timing;
mod session;
mod tls;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};
use url::Url;

pub use allow::{HostPolicy, Refusal};
pub use error::{ErrorKind, HttpError, TransportError};
pub use server_timing::{ServerTimingMetric, parse_server_timing};
pub use session::{Client, Session};

/// RFC 9110 token characters (methods, header names, `Server-Timing` names).
#[must_use]
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// How the transport behaves; one per run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// DNS + TCP + TLS of a new connection.
    pub connect_timeout: Duration,
    /// Default whole-exchange deadline (all hops, bodies included) when a request sets none.
    pub request_timeout: Duration,
    pub max_redirects: u32,
    /// Bytes of each response body kept in `Exchange::body`; the rest is counted, discarded.
    pub body_capture_limit: usize,
    /// Accept any server certificate (every report must say so).
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM), on top of the system roots.
    pub cacert: Option<PathBuf>,
    pub connection: ConnectionMode,
    /// Resume TLS sessions (tickets kept in memory, shared by every virtual user): a new
    /// connection to a server seen before then does an abbreviated handshake, as a returning
    /// browser's does. Off: every new TLS connection does a full handshake.
    pub tls_resumption: bool,
    /// Offer HTTP/2 via ALPN on TLS connections.
    pub http2: bool,
    /// Virtual users sharing one HTTP/2 connection (h2load's `-m`): sessions created on one
    /// thread join groups of this many, each group holding one connection per origin with up
    /// to this many concurrent streams. 1: every session its own connections. Above 1, a
    /// server that negotiates HTTP/1.1 fails each request (`protocol`) instead of quietly
    /// getting one request per connection.
    pub streams_per_connection: u32,
    /// The hosts besides loopback that requests may go to (`allow`); checked before every new
    /// connection and again on the resolved addresses.
    pub allow: std::sync::Arc<HostPolicy>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_redirects: 10,
            body_capture_limit: 1024 * 1024,
            insecure: false,
            cacert: None,
            connection: ConnectionMode::Reuse,
            tls_resumption: true,
            http2: true,
            streams_per_connection: 1,
            allow: std::sync::Arc::new(HostPolicy::loopback_only()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionMode {
    /// Keep-alive: connections are pooled per session.
    #[default]
    Reuse,
    /// A fresh connection for every request (DNS, TCP and TLS show up each time).
    New,
}

/// One request as exec builds it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub follow_redirects: bool,
    /// Overrides `ClientConfig::request_timeout`.
    pub timeout: Option<Duration>,
}

impl Request {
    /// The request in HTTP/1.1 wire form as `Session::send_ref` would write it to a session
    /// without cookies: render it once for a step that has no per-iteration variables.
    pub fn encode_h1(&self) -> Bytes {
        let mut out = Vec::new();
        h1::encode(
            &self.method,
            &self.url,
            &self.headers,
            &self.body,
            None,
            &session::USER_AGENT,
            &mut out,
        );
        Bytes::from(out)
    }

    /// A request with no headers or body that follows redirects.
    #[must_use]
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            follow_redirects: true,
            timeout: None,
        }
    }

    #[must_use]
    pub fn get(url: Url) -> Request {
        Request::new(Method::GET, url)
    }
}

/// The outcome of `Session::send`. `error` is `None` when a full response was received;
/// otherwise whatever was reached (status, headers, part of the body) is kept.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Final URL after redirects.
    pub url: Url,
    /// Redirect responses before the final one, each timed (empty without redirects).
    pub hops: Vec<Hop>,
    /// Of the final request.
    pub timing: Timing,
    pub status: Option<StatusCode>,
    pub version: Version,
    /// Built into a `HeaderMap` only when something reads it (see `Headers`).
    pub headers: Headers,
    /// The first `body_capture_limit` bytes (not decompressed).
    pub body: Bytes,
    /// All body bytes received.
    pub body_len: u64,
    /// The body had no length and ended with the connection (HTTP/1.0 style): whether it was
    /// cut short cannot be known.
    pub close_delimited: bool,
    /// The final request went out with a `Connection: close` the transport added
    /// (`ConnectionMode::New`, a request without its own Connection header): `-v` shows it.
    pub said_close: bool,
    pub server_timing: Vec<ServerTimingMetric>,
    pub error: Option<TransportError>,
}

/// Response headers. An HTTP/1.x response keeps its raw head and is parsed into a `HeaderMap`
/// on first read (`Deref`), so a request whose step checks, captures and prints no header
/// costs no header-name lookup or value validation; whether `Set-Cookie` and
/// `Server-Timing` are present is noted while the head is parsed for its framing, so the
/// cookie jar and the server-timing record need no map either. HTTP/2 responses arrive as a
/// map from hyper.
#[derive(Clone, Default)]
pub struct Headers {
    /// The final response head (status line, header lines, empty line), HTTP/1.x only.
    raw: Bytes,
    seen: Seen,
    /// `Set-Cookie` values are marked sensitive when the map is built.
    sensitive_cookies: bool,
    map: std::sync::OnceLock<HeaderMap>,
}

/// Header names noticed in a raw head by a byte compare, without building the map.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    pub set_cookie: bool,
    pub server_timing: bool,
}

impl Seen {
    /// Note `name` (as received) if it is one of the names the transport itself reads.
    #[inline]
    pub(crate) fn see(&mut self, name: &[u8]) {
        match name.len() {
            10 => self.set_cookie |= name.eq_ignore_ascii_case(b"set-cookie"),
            13 => self.server_timing |= name.eq_ignore_ascii_case(b"server-timing"),
            _ => {}
        }
    }
}

impl Headers {
    /// An HTTP/1.x head, exactly one final response (what `h1::parse_head` accepted), and
    /// the names seen in it.
    pub(crate) fn from_head(raw: Bytes, seen: Seen) -> Headers {
        Headers {
            raw,
            seen,
            sensitive_cookies: false,
            map: std::sync::OnceLock::new(),
        }
    }

    /// The headers as a map (built on first use).
    #[must_use]
    pub fn map(&self) -> &HeaderMap {
        self.map.get_or_init(|| {
            let mut map = h1::head_map(&self.raw);
            if self.sensitive_cookies {
                session::mark_sensitive(&mut map, &[http::header::SET_COOKIE]);
            }
            map
        })
    }

    /// Whether the map has been built (for tests of the lazy path).
    #[must_use]
    pub fn is_built(&self) -> bool {
        self.map.get().is_some()
    }

    pub(crate) fn has_set_cookie(&self) -> bool {
        match self.map.get() {
            Some(m) => m.contains_key(http::header::SET_COOKIE),
            None => self.seen.set_cookie,
        }
    }

    pub(crate) fn has_server_timing(&self) -> bool {
        match self.map.get() {
            Some(m) => m.contains_key(&session::SERVER_TIMING),
            None => self.seen.server_timing,
        }
    }

    /// Mark `Set-Cookie` values sensitive (now, or when the map is built).
    pub(crate) fn mark_cookies_sensitive(&mut self) {
        match self.map.get_mut() {
            Some(m) => session::mark_sensitive(m, &[http::header::SET_COOKIE]),
            None => self.sensitive_cookies = true,
        }
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Headers {
        Headers {
            raw: Bytes::new(),
            seen: Seen::default(),
            sensitive_cookies: false,
            map: std::sync::OnceLock::from(map),
        }
    }
}

impl std::ops::Deref for Headers {
    type Target = HeaderMap;
    fn deref(&self) -> &HeaderMap {
        self.map()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a http::header::HeaderName, &'a http::HeaderValue);
    type IntoIter = http::header::Iter<'a, http::HeaderValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.map().iter()
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.map().fmt(f)
    }
}

/// One redirect response of a chain.
#[derive(Debug, Clone)]
pub struct Hop {
    pub url: Url,
    pub status: StatusCode,
    pub timing: Timing,
    pub server_timing: Vec<ServerTimingMetric>,
}

/// Phases of one request; see the module documentation for exact definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub start: Instant,
    pub dns: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub send: Duration,
    pub wait: Duration,
    pub receive: Duration,
    pub total: Duration,
    pub reused: bool,
    pub tls_resumed: bool,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

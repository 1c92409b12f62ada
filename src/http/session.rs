//! `Client` (configuration and TLS, built once) and `Session` (one virtual user: its pooled
//! connections and cookie jar). `Session::send` runs one exchange: cookies in, connection out
//! of the pool, the timed request, `Set-Cookie` stored, redirects followed hop by hop. Nothing
//! here is shared between sessions except the read-only client and rustls' resumption cache.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use cookie_store::{CookieStore, RawCookie};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version, header};
use url::{Position, Url};

use super::connect::{self, Conn, Connector, Key, Proto};
use super::error::{Authority, ErrorKind, HttpError, TransportError};
use super::exchange::{self, Attempt};
use super::h1::{self, H1Failure};
use super::h2;
use super::{ClientConfig, ConnectionMode, Exchange, Hop, Request, redirect, tls};
use super::{ServerTimingMetric, parse_server_timing};

/// Idle HTTP/1.1 connections kept per session (a `parallel:` group needs a few).
const MAX_IDLE: usize = 32;
/// What one attempt sends: the request (first hop borrowed, later hops owned) and, for the
/// first hop, its pre-rendered HTTP/1.1 bytes.
struct Outgoing<'a> {
    method: &'a Method,
    url: &'a Url,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    wire: Option<&'a Bytes>,
    /// A `traceparent` value to add (`crate::trace`), first hop only (redirects carry it in
    /// their owned headers).
    trace: Option<&'a [u8]>,
}

/// Pooled connections found dead before a fresh one is opened.
const MAX_STALE_RETRIES: usize = 3;

pub(crate) static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
pub(crate) static USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("sonde/", env!("CARGO_PKG_VERSION")));

struct Inner {
    cfg: ClientConfig,
    /// Parsed `--cacert` certificates.
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Built on the first `https://` request: reading the system roots takes milliseconds
    /// that a plain-HTTP run should not pay at start-up.
    tls: OnceLock<Result<tokio_rustls::TlsConnector, String>>,
    /// The HTTP/2 connection groups new sessions join (`streams_per_connection` > 1).
    groups: h2::Groups,
}

impl Inner {
    fn tls(&self) -> Result<&tokio_rustls::TlsConnector, TransportError> {
        let built = self.tls.get_or_init(|| {
            tls::client_config(
                self.cfg.insecure,
                &self.extra_roots,
                self.cfg.http2,
                self.cfg.tls_resumption,
            )
            .map(tokio_rustls::TlsConnector::from)
        });
        built
            .as_ref()
            .map_err(|e| TransportError::new(ErrorKind::Tls, format!("TLS configuration: {e}")))
    }
}

/// The configured transport. Cheap to clone; build once, then one `session()` per virtual user.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Validate the configuration (`--cacert` is read and parsed here). The TLS configuration
    /// itself, with the system roots, is built once on the first `https://` request.
    pub fn new(cfg: ClientConfig) -> Result<Client, HttpError> {
        let extra_roots = match &cfg.cacert {
            Some(path) => tls::load_cacert(path)?,
            None => Vec::new(),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                extra_roots,
                tls: OnceLock::new(),
                groups: h2::Groups::new(cfg.streams_per_connection),
                cfg,
            }),
        })
    }

    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// A connection sonde drives itself (event streams, WebSocket upgrades), opened exactly as
    /// requests' connections are (allow-list, DNS and its deadline, TCP, TLS, within the
    /// connect timeout) but offering HTTP/1.1 only. Returns the stream and when its TCP and
    /// TLS phases ended.
    pub(crate) async fn open_http1(
        &self,
        url: &Url,
    ) -> Result<(super::io::Stream, Option<Instant>, Option<Instant>), TransportError> {
        let https = url.scheme() == "https";
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(TransportError::new(
                ErrorKind::InvalidRequest,
                "URL has no host",
            ));
        };
        let tls = if https { Some(self.tls_http1()?) } else { None };
        let cfg = &self.inner.cfg;
        let connector = Connector {
            tls: tls.as_ref(),
            connect_timeout: cfg.connect_timeout,
            allow: &cfg.allow,
        };
        let key = Key {
            https,
            host: host.into(),
            port,
        };
        let mut marks = connect::ConnectMarks::default();
        let (stream, _, _) =
            connect::open_stream(&connector, url, &key, Instant::now(), &mut marks).await?;
        Ok((stream, marks.tcp_end, marks.tls_end))
    }

    /// The client's TLS settings (roots, `--cacert`, `--insecure`) offering HTTP/1.1 only.
    fn tls_http1(&self) -> Result<tokio_rustls::TlsConnector, TransportError> {
        let base = self.inner.tls()?;
        let mut config = (**base.config()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// A fresh virtual user: no connections, empty cookie jar. With `streams_per_connection`
    /// above 1 it shares its HTTP/2 connections with the sessions created on the same thread
    /// just before or after it (that many to a group).
    #[must_use]
    pub fn session(&self) -> Session {
        Session {
            client: self.inner.clone(),
            group: self.inner.groups.join(),
            pool: Mutex::new(Vec::new()),
            jar: Mutex::new(CookieStore::new()),
            has_cookies: AtomicBool::new(false),
            scratch: Mutex::new(Vec::new()),
        }
    }
}

/// One virtual user's connections and cookies. `send` takes `&self` so a `parallel:` group can
/// run concurrently; the locks are per session (never contended across virtual users) and are
/// never held across an await.
pub struct Session {
    client: Arc<Inner>,
    /// Idle HTTP/1.1 connections (checked out while in use) and shared HTTP/2 connections.
    pool: Mutex<Vec<Conn>>,
    /// The HTTP/2 connections this session shares with its group (`streams_per_connection`).
    group: Option<Arc<h2::Group>>,
    jar: Mutex<CookieStore>,
    /// Lets the hot path skip the jar entirely until a cookie exists.
    has_cookies: AtomicBool,
    /// The buffer a prebuilt request is copied into with its `traceparent`: taken for one
    /// attempt and given back, so the hot path reuses it instead of allocating.
    scratch: Mutex<Vec<u8>>,
}

/// The spliced request of one attempt; its buffer goes back to the session when done.
struct Scratch<'a> {
    session: &'a Session,
    buf: Option<Vec<u8>>,
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            *lock(&self.session.scratch) = buf;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a pool or jar half-updated in a way that matters here.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    /// Add a cookie for `url`'s host, on every path (environment and scenario cookies).
    pub fn add_cookie(&self, name: &str, value: &str, url: &Url) {
        let mut c = RawCookie::new(name.to_owned(), value.to_owned());
        c.set_path("/");
        if lock(&self.jar).insert_raw(&c, url).is_ok() {
            self.has_cookies.store(true, Ordering::Relaxed);
        }
    }

    /// The value of cookie `name` the jar would send to `url`.
    pub fn cookie(&self, name: &str, url: &Url) -> Option<String> {
        if !self.has_cookies.load(Ordering::Relaxed) {
            return None;
        }
        lock(&self.jar)
            .get_request_values(url)
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }

    /// The `Cookie` line this session would send with `headers` to `url` (the request's own
    /// cookies, then the jar's), when the jar adds any: what `-v` shows.
    pub fn cookie_line_for(&self, url: &Url, headers: &HeaderMap) -> Option<String> {
        self.cookie_line(url, headers)
    }

    /// Drop every pooled connection (the next request opens a new one).
    pub fn clear_connections(&self) {
        let drained: Vec<Conn> = std::mem::take(&mut *lock(&self.pool));
        drop(drained);
        if let Some(g) = &self.group {
            g.clear();
        }
    }

    /// Send one request, following redirects if asked; never fails, the outcome is in
    /// `Exchange::error`.
    pub async fn send(&self, req: Request) -> Exchange {
        self.send_ref(&req, None).await
    }

    /// `send` without giving the request up. `wire` is the request as `encode_h1` rendered it
    /// once: written as is on HTTP/1.1 while the session's jar holds no cookie (a load loop's
    /// static step then renders nothing per request).
    pub async fn send_ref(&self, req: &Request, wire: Option<&Bytes>) -> Exchange {
        self.send_traced(req, wire, None).await
    }

    /// `send_ref` adding a `traceparent` header with value `trace` (on HTTP/1.1 spliced into
    /// `wire` in a reused buffer: no allocation per request).
    // Long by design: the request's hop loop (redirects, cookies, the whole-exchange deadline)
    // is the hot path. Split into functions that hand the exchange and the outgoing request to
    // each other, it cost ~390 more instructions per request in moves (callgrind, one-URL run
    // against nginx: 8 memcpy calls per request instead of 3), about 2% of a request's work.
    pub async fn send_traced(
        &self,
        req: &Request,
        wire: Option<&Bytes>,
        trace: Option<&crate::trace::TraceParent>,
    ) -> Exchange {
        let trace = trace.map(crate::trace::TraceParent::as_bytes);
        let cfg = &self.client.cfg;
        let limit = req.timeout.unwrap_or(cfg.request_timeout);
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(start) + limit;
        let mut first_hop = true;
        let mut hops: Vec<Hop> = Vec::new();
        // After a redirect: the next request, owned. Boxed: redirects are rare, and inline it
        // would sit in every virtual user's task while its request is in flight.
        let mut next_req: Option<Box<(Method, Url, HeaderMap, Bytes)>> = None;
        loop {
            let out = match next_req.as_deref() {
                Some((method, url, headers, body)) => Outgoing {
                    method,
                    url,
                    headers,
                    body,
                    wire: None,
                    trace: None,
                },
                None => Outgoing {
                    method: &req.method,
                    url: &req.url,
                    headers: &req.headers,
                    body: &req.body,
                    wire,
                    trace,
                },
            };
            let url = out.url;
            // Build TLS (first https request only) before this request's clock starts.
            let tls = (url.scheme() == "https").then(|| self.client.tls());
            let hop_start = if std::mem::take(&mut first_hop) {
                start
            } else {
                Instant::now()
            };
            let mut att = Attempt::new(hop_start);
            let res = match tls.transpose() {
                Err(e) => Err(e),
                Ok(tls) => {
                    let fut = self.attempt(&out, &mut att, tls);
                    match tokio::time::timeout_at(deadline, fut).await {
                        Ok(r) => r,
                        Err(_) => Err(exchange::timeout_error(&att, authority(url), limit)),
                    }
                }
            };
            let timing = att.timing();
            if att.headers.has_set_cookie() {
                self.store_cookies(&att.headers, url);
                att.headers.mark_cookies_sensitive();
            }
            let mut error = res.err();
            if let (None, true, Some(status)) = (&error, req.follow_redirects, att.status)
                && status.is_redirection()
                && let Some(next) = redirect::next(status, &att.headers, url, out.method)
            {
                match next {
                    Err(msg) => error = Some(TransportError::new(ErrorKind::Protocol, msg)),
                    Ok(_) if hops.len() >= cfg.max_redirects as usize => {
                        error = Some(TransportError::new(
                            ErrorKind::TooManyRedirects,
                            format!(
                                "more than {} redirects (last from {})",
                                cfg.max_redirects,
                                authority(url)
                            ),
                        ));
                    }
                    Ok(next) => {
                        let mut next_headers = out.headers.clone();
                        if let Some(v) = out.trace.and_then(|t| HeaderValue::from_bytes(t).ok()) {
                            next_headers.insert(crate::trace::TRACEPARENT, v);
                        }
                        redirect::carry_headers(&mut next_headers, url, &next);
                        hops.push(Hop {
                            url: url.clone(),
                            status,
                            timing,
                            server_timing: server_timing(&att.headers),
                        });
                        let next_body = if next.keep_body {
                            out.body.clone()
                        } else {
                            Bytes::new()
                        };
                        next_req = Some(Box::new((next.method, next.url, next_headers, next_body)));
                        continue;
                    }
                }
            }
            let server_timing = server_timing(&att.headers);
            return Exchange {
                url: url.clone(),
                hops,
                timing,
                status: att.status,
                version: att.version,
                headers: att.headers,
                body: att.capture.into_bytes(),
                body_len: att.body_len,
                close_delimited: att.close_delimited,
                said_close: att.said_close,
                server_timing,
                error,
            };
        }
    }

    fn apply_cookies(&self, url: &Url, headers: &mut HeaderMap) {
        if let Some(line) = self.cookie_line(url, headers)
            && let Ok(mut v) = HeaderValue::from_str(&line)
        {
            v.set_sensitive(true);
            headers.insert(header::COOKIE, v);
        }
    }

    fn store_cookies(&self, headers: &HeaderMap, url: &Url) {
        let cookies = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|s| RawCookie::parse(s.to_owned()).ok());
        let mut jar = lock(&self.jar);
        jar.store_response_cookies(cookies, url);
        let any = jar.iter_any().next().is_some();
        drop(jar);
        self.has_cookies.store(any, Ordering::Relaxed);
    }

    /// The jar's cookies for `url` merged after the request's own Cookie header; `None` when
    /// the jar adds nothing.
    fn cookie_line(&self, url: &Url, headers: &HeaderMap) -> Option<String> {
        if !self.has_cookies.load(Ordering::Relaxed) {
            return None;
        }
        let jar = lock(&self.jar);
        let mut line = String::new();
        if let Some(existing) = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()) {
            line.push_str(existing);
        }
        let before = line.len();
        for (name, value) in jar.get_request_values(url) {
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(name);
            line.push('=');
            line.push_str(value);
        }
        (line.len() != before).then_some(line)
    }

    /// One request on one connection (pooled or new), retrying on a fresh connection when a
    /// pooled one turns out to be closed (before the request left, or, for idempotent methods,
    /// before any byte of a response arrived).
    // Long by design: checkout, write, read and the replace-a-closed-pooled-connection retry are
    // one sequence whose phase marks must be taken in order.
    async fn attempt(
        &self,
        out: &Outgoing<'_>,
        att: &mut Attempt,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> Result<(), TransportError> {
        let cfg = &self.client.cfg;
        let url = out.url;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(TransportError::new(
                    ErrorKind::InvalidRequest,
                    format!("unsupported URL scheme `{other}` (http and https only)"),
                ));
            }
        };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err(TransportError::new(
                ErrorKind::InvalidRequest,
                "URL has no host",
            ));
        };
        let auth = Authority { host, port };
        let reuse = cfg.connection == ConnectionMode::Reuse;
        // HTTP/1.1 bytes, rendered at most once per attempt (retries resend them).
        let mut rendered: Option<Vec<u8>> = None;
        // A prebuilt request with its `traceparent` spliced in: the session's reused buffer.
        let mut spliced = Scratch {
            session: self,
            buf: None,
        };
        if https
            && reuse
            && let Some(group) = &self.group
        {
            return Box::pin(self.attempt_shared(group, out, att, tls, auth)).await;
        }
        // A connection per request: HTTP/1.1 says so (`Connection: close`), unless the request
        // carries its own Connection header, so the server closes first and the TIME_WAIT
        // socket is the server's, not one of this machine's ephemeral ports.
        let say_close = !reuse && !out.headers.contains_key(header::CONNECTION);
        let mut closing: Option<Vec<u8>> = None;
        let mut last_h2: Option<TransportError> = None;
        for _ in 0..=MAX_STALE_RETRIES {
            let pooled = if reuse {
                self.checkout(https, host, port)
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut conn = if let Some(c) = pooled {
                c
            } else {
                let key = Key {
                    https,
                    host: host.into(),
                    port,
                };
                let connector = Connector {
                    tls,
                    connect_timeout: cfg.connect_timeout,
                    allow: &cfg.allow,
                };
                let c =
                    // Boxed: connecting (DNS, TLS, the HTTP/2 handshake) is rare next to
                    // requests, and inline its state would sit in every virtual user's task.
                    Box::pin(connect::open(&connector, url, key, att.start, &mut att.connect))
                        .await?;
                att.tls_resumed = c.tls_resumed;
                c
            };
            att.reused = reused;
            // Checking a connection out takes well under a microsecond: no clock read for it.
            att.ready = Some(if reused { att.start } else { Instant::now() });
            let h1c = match &mut conn.proto {
                Proto::H2 {
                    sender,
                    stats,
                    closed,
                } => {
                    let sender = sender.clone();
                    let stats = stats.clone();
                    let closed = closed.clone();
                    if reuse && !reused {
                        self.checkin(conn);
                    }
                    match Box::pin(self.send_h2(out, att, sender, &stats, &closed, auth)).await {
                        Ok(()) => return Ok(()),
                        // The pooled connection was going away before this stream was
                        // processed: the next turn opens a fresh one (`checkout` drops it).
                        Err(h2::Failure::Retry(err)) if reuse => {
                            last_h2 = Some(err);
                            *att = Attempt::new(Instant::now());
                            continue;
                        }
                        Err(h2::Failure::Retry(err) | h2::Failure::Failed(err)) => {
                            return Err(err);
                        }
                    }
                }
                Proto::H1(h1c) => h1c,
            };
            let wire: &[u8] = match (out.wire, self.has_cookies.load(Ordering::Relaxed)) {
                (Some(w), false) => match out.trace {
                    None => w,
                    Some(t) => spliced.buf.get_or_insert_with(|| {
                        let mut buf = std::mem::take(&mut *lock(&self.scratch));
                        crate::trace::splice_h1(w, t, &mut buf);
                        buf
                    }),
                },
                _ => rendered.get_or_insert_with(|| {
                    let cookie = self.cookie_line(url, out.headers);
                    let mut buf = Vec::new();
                    h1::encode(
                        out.method,
                        url,
                        out.headers,
                        out.body,
                        cookie.as_deref(),
                        &USER_AGENT,
                        &mut buf,
                    );
                    if let Some(t) = out.trace {
                        crate::trace::insert_h1(&mut buf, t);
                    }
                    buf
                }),
            };
            let wire: &[u8] = if say_close {
                closing.get_or_insert_with(|| with_connection_close(wire))
            } else {
                wire
            };
            let mut sent = h1::sent(out.method, out.headers);
            // What this attempt wrote says close (the connection is not pooled either way).
            sent.close |= say_close;
            att.said_close = say_close;
            let res = h1::exchange(h1c, wire, &sent, att, cfg.body_capture_limit, auth).await;
            match res {
                Ok(()) => {
                    if reuse && h1c.is_reusable() {
                        self.checkin(conn);
                    }
                    return Ok(());
                }
                Err(H1Failure::Retry(err)) => {
                    if !reused || !(out.method.is_idempotent() || att.bytes_sent == 0) {
                        return Err(err);
                    }
                    // A stale pooled connection: its time is not this request's.
                    *att = Attempt::new(Instant::now());
                }
                Err(H1Failure::Failed(err)) => return Err(err),
            }
        }
        Err(last_h2.unwrap_or_else(|| {
            TransportError::new(
                ErrorKind::Reset,
                format!("{auth}: connections kept closing before the request was sent"),
            )
        }))
    }

    /// One request as a stream on an HTTP/2 connection: jar cookies merged, a User-Agent if
    /// none, secrets never HPACK-indexed, connection-specific headers dropped.
    async fn send_h2(
        &self,
        out: &Outgoing<'_>,
        att: &mut Attempt,
        mut sender: h2::Sender,
        stats: &Arc<super::io::IoStats>,
        closed: &h2::Closed,
        auth: Authority<'_>,
    ) -> Result<(), h2::Failure> {
        let url = out.url;
        let mut headers = out.headers.clone();
        if let Some(v) = out.trace.and_then(|t| HeaderValue::from_bytes(t).ok()) {
            headers.insert(crate::trace::TRACEPARENT, v);
        }
        if self.has_cookies.load(Ordering::Relaxed) {
            self.apply_cookies(url, &mut headers);
        }
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, USER_AGENT.clone());
        }
        mark_sensitive(&mut headers, &SECRET_REQUEST_HEADERS);
        h2::prepare_headers(&mut headers, out.body.len());
        let uri = Uri::try_from(&url[..Position::AfterQuery]).map_err(|e| {
            h2::Failure::Failed(TransportError::new(
                ErrorKind::InvalidRequest,
                format!("invalid request target: {e}"),
            ))
        })?;
        let mut req = http::Request::new(());
        *req.method_mut() = out.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_2;
        *req.headers_mut() = headers;
        att.use_stats(stats);
        let limit = self.client.cfg.body_capture_limit;
        h2::exchange(&mut sender, closed, req, out.body, att, limit, auth).await
    }

    /// One request as a stream on its group's shared HTTP/2 connection (opened by this
    /// request when the group has none: then it carries the dns, connect and tls phases).
    async fn attempt_shared(
        &self,
        group: &Arc<h2::Group>,
        out: &Outgoing<'_>,
        att: &mut Attempt,
        tls: Option<&tokio_rustls::TlsConnector>,
        auth: Authority<'_>,
    ) -> Result<(), TransportError> {
        let cfg = &self.client.cfg;
        let mut last: Option<TransportError> = None;
        for _ in 0..=MAX_STALE_RETRIES {
            let shared = match group.checkout(true, auth.host, auth.port).await {
                // Waiting for another member to open the connection counts as this stream's
                // `send` (it was queued for the connection, as on a busy HTTP/1.1 pool).
                h2::Checkout::Stream(shared) => {
                    att.reused = true;
                    att.ready = Some(att.start);
                    shared
                }
                h2::Checkout::Open(opener) => {
                    let key = Key {
                        https: true,
                        host: auth.host.into(),
                        port: auth.port,
                    };
                    let connector = Connector {
                        tls,
                        connect_timeout: cfg.connect_timeout,
                        allow: &cfg.allow,
                    };
                    let c = Box::pin(connect::open(
                        &connector,
                        out.url,
                        key,
                        att.start,
                        &mut att.connect,
                    ))
                    .await?;
                    att.tls_resumed = c.tls_resumed;
                    att.ready = Some(Instant::now());
                    match c.proto {
                        Proto::H2 {
                            sender,
                            stats,
                            closed,
                        } => {
                            let shared = h2::Shared {
                                sender,
                                stats,
                                closed,
                            };
                            opener.opened(shared.clone());
                            shared
                        }
                        // Dropping the opener lets the next member try (and fail the same way).
                        Proto::H1(_) => {
                            return Err(TransportError::new(
                                ErrorKind::Protocol,
                                format!(
                                    "{auth}: the server negotiated HTTP/1.1 (ALPN), but --streams-per-connection {} (http.streams_per_connection) needs HTTP/2 to put several streams on one connection; nothing was sent on it",
                                    cfg.streams_per_connection
                                ),
                            ));
                        }
                    }
                }
            };
            match self
                .send_h2(out, att, shared.sender, &shared.stats, &shared.closed, auth)
                .await
            {
                Ok(()) => return Ok(()),
                // The group's connection was going away before this stream was processed (it is
                // marked closed): the next checkout opens a fresh one.
                Err(h2::Failure::Retry(err)) => {
                    last = Some(err);
                    *att = Attempt::new(Instant::now());
                }
                Err(h2::Failure::Failed(err)) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| {
            TransportError::new(
                ErrorKind::Reset,
                format!(
                    "{auth}: HTTP/2 connections kept going away before the request was processed"
                ),
            )
        }))
    }

    /// An idle HTTP/1.1 connection (removed from the pool) or a clone of a live HTTP/2 one.
    fn checkout(&self, https: bool, host: &str, port: u16) -> Option<Conn> {
        loop {
            let mut conn = {
                let mut pool = lock(&self.pool);
                let i = pool.iter().position(|c| c.key.matches(https, host, port))?;
                match &pool[i].proto {
                    Proto::H2 {
                        sender,
                        stats,
                        closed,
                    } if !closed.is_closed() => {
                        let c = &pool[i];
                        return Some(Conn {
                            key: c.key.clone(),
                            proto: Proto::H2 {
                                sender: sender.clone(),
                                stats: stats.clone(),
                                closed: closed.clone(),
                            },
                            tls_resumed: c.tls_resumed,
                        });
                    }
                    Proto::H2 { .. } => {
                        pool.swap_remove(i);
                        continue;
                    }
                    Proto::H1(_) => pool.swap_remove(i),
                }
            };
            if let Proto::H1(h1c) = &mut conn.proto
                && h1c.idle_check()
            {
                return Some(conn);
            }
        }
    }

    fn checkin(&self, conn: Conn) {
        let mut pool = lock(&self.pool);
        if pool.len() < MAX_IDLE {
            // Most sessions keep one connection: room for exactly one at first, not the four
            // a first `push` reserves (~260 bytes per virtual user at 10,000 of them).
            if pool.capacity() == 0 {
                pool.reserve_exact(1);
            }
            pool.push(conn);
        }
    }
}

/// An HTTP/1.1 request with `Connection: close` as its last header.
fn with_connection_close(wire: &[u8]) -> Vec<u8> {
    const LINE: &[u8] = b"Connection: close\r\n";
    let at = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(wire.len(), |i| i + 2);
    let mut out = Vec::with_capacity(wire.len() + LINE.len());
    out.extend_from_slice(&wire[..at]);
    out.extend_from_slice(LINE);
    out.extend_from_slice(&wire[at..]);
    out
}

/// Request headers whose values never show in `Debug` output and are never HPACK-indexed.
static SECRET_REQUEST_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Mark every value of `names` sensitive: `Debug` prints `Sensitive`, HTTP/2 skips indexing.
pub(crate) fn mark_sensitive(headers: &mut HeaderMap, names: &[HeaderName]) {
    for name in names {
        // `entry` may reserve room, so look first: absent headers cost one lookup.
        if !headers.contains_key(name) {
            continue;
        }
        if let http::header::Entry::Occupied(mut e) = headers.entry(name) {
            for v in e.iter_mut() {
                v.set_sensitive(true);
            }
        }
    }
}

fn authority(url: &Url) -> Authority<'_> {
    Authority {
        host: url.host_str().unwrap_or(""),
        port: url.port_or_known_default().unwrap_or(0),
    }
}

fn server_timing(headers: &super::Headers) -> Vec<ServerTimingMetric> {
    let mut out = Vec::new();
    if !headers.has_server_timing() {
        return out;
    }
    for v in headers.get_all(&SERVER_TIMING) {
        if let Ok(s) = v.to_str() {
            parse_server_timing(s, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_connection_close;

    #[test]
    fn connection_close_is_the_last_header_before_the_body() {
        let wire = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n\r\n\r\n";
        assert_eq!(
            with_connection_close(wire),
            b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\r\n\r\n"
                .to_vec()
        );
    }
}

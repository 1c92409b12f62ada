//! `Client` (configuration and TLS, built once) and `Session` (one virtual user: its pooled
//! connections and cookie jar). `Session::send` runs one exchange: cookies in, connection out
//! of the pool, the timed request, `Set-Cookie` stored, redirects followed hop by hop. Nothing
//! here is shared between sessions except the read-only client and rustls' resumption cache.

use std::future::Future as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Waker};
use std::time::Instant;

use bytes::Bytes;
use cookie_store::{CookieStore, RawCookie};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version, header};
use http_body_util::Full;
use url::{Position, Url};

use super::connect::{self, Conn, Connector, Key, Proto};
use super::error::{Authority, ErrorKind, HttpError, TransportError};
use super::exchange::{self, Attempt, Failure, HyperRequest};
use super::{ClientConfig, ConnectionMode, Exchange, Hop, Request, redirect, tls};
use super::{ServerTimingMetric, parse_server_timing};

/// Idle HTTP/1.1 connections kept per session (a `parallel:` group needs a few).
const MAX_IDLE: usize = 32;
/// Pooled connections found dead before a fresh one is opened.
const MAX_STALE_RETRIES: usize = 3;

static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
static USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("sonde/", env!("CARGO_PKG_VERSION")));

struct Inner {
    cfg: ClientConfig,
    /// Parsed `--cacert` certificates.
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Built on the first `https://` request: reading the system roots takes milliseconds
    /// that a plain-HTTP run should not pay at start-up.
    tls: OnceLock<Result<tokio_rustls::TlsConnector, String>>,
}

impl Inner {
    fn tls(&self) -> Result<&tokio_rustls::TlsConnector, TransportError> {
        let built = self.tls.get_or_init(|| {
            tls::client_config(self.cfg.insecure, &self.extra_roots, self.cfg.http2)
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
                cfg,
                extra_roots,
                tls: OnceLock::new(),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// A fresh virtual user: no connections, empty cookie jar.
    pub fn session(&self) -> Session {
        Session {
            client: self.inner.clone(),
            pool: Mutex::new(Vec::new()),
            jar: Mutex::new(CookieStore::new()),
            has_cookies: AtomicBool::new(false),
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
    jar: Mutex<CookieStore>,
    /// Lets the hot path skip the jar entirely until a cookie exists.
    has_cookies: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a pool or jar half-updated in a way that matters here.
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Drop every pooled connection (the next request opens a new one).
    pub fn clear_connections(&self) {
        let drained: Vec<Conn> = std::mem::take(&mut *lock(&self.pool));
        drop(drained);
    }

    /// Send one request, following redirects if asked; never fails, the outcome is in
    /// `Exchange::error`.
    pub async fn send(&self, req: Request) -> Exchange {
        let cfg = &self.client.cfg;
        let Request {
            mut method,
            mut url,
            mut headers,
            mut body,
            follow_redirects,
            timeout,
        } = req;
        let limit = timeout.unwrap_or(cfg.request_timeout);
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(start) + limit;
        let mut first_hop = true;
        let mut hops: Vec<Hop> = Vec::new();
        loop {
            // The request is consumed by hyper; keep what a redirect would need.
            let kept = follow_redirects.then(|| (headers.clone(), body.clone()));
            let hyper_req = self.build(method.clone(), &url, headers, body);
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
                    let fut = self.attempt(&url, hyper_req, &mut att, tls);
                    match tokio::time::timeout_at(deadline, fut).await {
                        Ok(r) => r,
                        Err(_) => Err(exchange::timeout_error(&att, authority(&url), limit)),
                    }
                }
            };
            let timing = att.timing();
            if att.headers.contains_key(header::SET_COOKIE) {
                self.store_cookies(&att.headers, &url);
                mark_sensitive(&mut att.headers, &[header::SET_COOKIE]);
            }
            let mut error = res.err();
            if let (None, Some((mut next_headers, next_body)), Some(status)) =
                (&error, kept, att.status)
                && let Some(next) = redirect::next(status, &att.headers, &url, &method)
            {
                match next {
                    Err(msg) => error = Some(TransportError::new(ErrorKind::Protocol, msg)),
                    Ok(_) if hops.len() >= cfg.max_redirects as usize => {
                        error = Some(TransportError::new(
                            ErrorKind::TooManyRedirects,
                            format!(
                                "more than {} redirects (last from {})",
                                cfg.max_redirects,
                                authority(&url)
                            ),
                        ));
                    }
                    Ok(next) => {
                        redirect::carry_headers(&mut next_headers, &url, &next);
                        hops.push(Hop {
                            url: std::mem::replace(&mut url, next.url),
                            status,
                            timing,
                            server_timing: server_timing(&att.headers),
                        });
                        method = next.method;
                        headers = next_headers;
                        body = if next.keep_body {
                            next_body
                        } else {
                            Bytes::new()
                        };
                        continue;
                    }
                }
            }
            let server_timing = server_timing(&att.headers);
            return Exchange {
                url,
                hops,
                timing,
                status: att.status,
                version: att.version,
                headers: att.headers,
                body: att.capture.into_bytes(),
                body_len: att.body_len,
                server_timing,
                error,
            };
        }
    }

    /// The hyper request without its target: jar cookies merged, a User-Agent if none.
    fn build(
        &self,
        method: Method,
        url: &Url,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> HyperRequest {
        if self.has_cookies.load(Ordering::Relaxed) {
            self.apply_cookies(url, &mut headers);
        }
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, USER_AGENT.clone());
        }
        mark_sensitive(&mut headers, &SECRET_REQUEST_HEADERS);
        let mut r = hyper::Request::new(Full::new(body));
        *r.method_mut() = method;
        *r.headers_mut() = headers;
        r
    }

    fn apply_cookies(&self, url: &Url, headers: &mut HeaderMap) {
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
        drop(jar);
        if line.len() != before
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

    /// One request on one connection (pooled or new), retrying on a fresh connection when a
    /// pooled one turns out to be closed before the request left.
    async fn attempt(
        &self,
        url: &Url,
        mut req: HyperRequest,
        att: &mut Attempt,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> Result<(), TransportError> {
        let cfg = &self.client.cfg;
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
        for _ in 0..=MAX_STALE_RETRIES {
            let pooled = if reuse {
                self.checkout(https, host, port)
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => {
                    let key = Key {
                        https,
                        host: host.into(),
                        port,
                    };
                    let connector = Connector {
                        tls,
                        connect_timeout: cfg.connect_timeout,
                    };
                    let host_header = host_header(url)?;
                    let c = connect::open(
                        &connector,
                        url,
                        key,
                        host_header,
                        att.start,
                        &mut att.connect,
                    )
                    .await?;
                    att.tls_resumed = c.tls_resumed;
                    c
                }
            };
            att.reused = reused;
            // Checking a connection out takes well under a microsecond: no clock read for it.
            att.ready = Some(if reused { att.start } else { Instant::now() });
            match &mut conn.proto {
                Proto::H2 { sender } => {
                    target(&mut req, url, true, &conn.host_header)?;
                    att.use_stats(&conn.stats, true);
                    let mut sender = sender.clone();
                    if reuse && !reused {
                        self.checkin(conn);
                    }
                    return exchange::run_h2(&mut sender, req, att, cfg.body_capture_limit, auth)
                        .await;
                }
                Proto::H1 { sender, conn: slot } => {
                    target(&mut req, url, false, &conn.host_header)?;
                    att.use_stats(&conn.stats, false);
                    match exchange::run_h1(sender, slot, req, att, cfg.body_capture_limit, auth)
                        .await
                    {
                        Ok(()) => {
                            if reuse && slot.is_some() && !sender.is_closed() {
                                self.checkin(conn);
                            }
                            return Ok(());
                        }
                        Err(Failure::NotSent(back, err)) => {
                            if !reused {
                                return Err(err);
                            }
                            // A stale pooled connection: its time is not this request's.
                            req = *back;
                            *att = Attempt::new(Instant::now());
                        }
                        Err(Failure::Failed(err)) => return Err(err),
                    }
                }
            }
        }
        Err(TransportError::new(
            ErrorKind::Reset,
            format!("{auth}: connections kept closing before the request was sent"),
        ))
    }

    /// An idle HTTP/1.1 connection (removed from the pool) or a clone of a live HTTP/2 one.
    fn checkout(&self, https: bool, host: &str, port: u16) -> Option<Conn> {
        loop {
            let mut conn = {
                let mut pool = lock(&self.pool);
                let i = pool.iter().position(|c| c.key.matches(https, host, port))?;
                match &pool[i].proto {
                    Proto::H2 { sender } if !sender.is_closed() => {
                        let c = &pool[i];
                        return Some(Conn {
                            key: c.key.clone(),
                            proto: Proto::H2 {
                                sender: sender.clone(),
                            },
                            stats: c.stats.clone(),
                            host_header: c.host_header.clone(),
                            tls_resumed: c.tls_resumed,
                        });
                    }
                    Proto::H2 { .. } => {
                        pool.swap_remove(i);
                        continue;
                    }
                    Proto::H1 { .. } => pool.swap_remove(i),
                }
            };
            // Poll the idle connection once: a peer that closed it shows up as "finished".
            if let Proto::H1 { sender, conn: slot } = &mut conn.proto {
                let alive = match slot.as_mut() {
                    Some(c) => c
                        .as_mut()
                        .poll(&mut Context::from_waker(Waker::noop()))
                        .is_pending(),
                    None => false,
                };
                if alive && !sender.is_closed() {
                    return Some(conn);
                }
            }
        }
    }

    fn checkin(&self, conn: Conn) {
        let mut pool = lock(&self.pool);
        if pool.len() < MAX_IDLE {
            pool.push(conn);
        }
    }
}

/// Set the request target for the protocol: origin-form plus `Host` for HTTP/1.1, absolute
/// URI (`:authority`) for HTTP/2.
fn target(
    req: &mut HyperRequest,
    url: &Url,
    h2: bool,
    host: &HeaderValue,
) -> Result<(), TransportError> {
    let text = if h2 {
        &url[..Position::AfterQuery]
    } else {
        &url[Position::BeforePath..Position::AfterQuery]
    };
    let uri = Uri::try_from(text).map_err(|e| {
        TransportError::new(
            ErrorKind::InvalidRequest,
            format!("invalid request target: {e}"),
        )
    })?;
    *req.uri_mut() = uri;
    if h2 {
        *req.version_mut() = Version::HTTP_2;
    } else {
        *req.version_mut() = Version::HTTP_11;
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut().insert(header::HOST, host.clone());
        }
    }
    Ok(())
}

/// Request headers whose values never show in `Debug` output and are never HPACK-indexed.
static SECRET_REQUEST_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Mark every value of `names` sensitive: `Debug` prints `Sensitive`, HTTP/2 skips indexing.
fn mark_sensitive(headers: &mut HeaderMap, names: &[HeaderName]) {
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

fn host_header(url: &Url) -> Result<HeaderValue, TransportError> {
    let text = &url[Position::BeforeHost..Position::BeforePath];
    HeaderValue::from_str(text).map_err(|_| {
        TransportError::new(
            ErrorKind::InvalidRequest,
            "URL host is not a valid Host header",
        )
    })
}

fn authority(url: &Url) -> Authority<'_> {
    Authority {
        host: url.host_str().unwrap_or(""),
        port: url.port_or_known_default().unwrap_or(0),
    }
}

fn server_timing(headers: &HeaderMap) -> Vec<ServerTimingMetric> {
    let mut out = Vec::new();
    for v in headers.get_all(&SERVER_TIMING) {
        if let Ok(s) = v.to_str() {
            parse_server_timing(s, &mut out);
        }
    }
    out
}

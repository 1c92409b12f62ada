//! Real test servers on 127.0.0.1:0 for every integration test (`mod support;`): a hyper
//! HTTP/1.1 server around any handler, raw TCP servers for misbehaviour (never answers, resets
//! mid-body, a lazily streamed 10 GB body), a TLS server (rcgen certificate, h2 + http/1.1 via
//! ALPN, session resumption), and ready-made handlers (fixed or indexed delay, headers-then-drip,
//! Server-Timing, redirects). Each server stops when its guard drops. No fixed ports.
//!
//! Also the one way to start the binary under test (`sonde()`, `sonde_cmd()`), `Background` for
//! a server on its own runtime thread (synchronous tests), and the helpers of single areas:
//! `demo` (a client for the demo API), `summary` (hand-built run results), `bisect` (rule
//! servers, environment files), `shard` (a server with a known latency distribution).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bisect;
pub mod demo;
pub mod shard;
pub mod summary;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

pub type Body = BoxBody<Bytes, std::io::Error>;

/// Variables a CI runner or a Kubernetes Job may set that change what `sonde run` does (which
/// shard it is, where the gate writes its summary); the binary under test never inherits them.
/// A test that wants one sets it on the command after this.
const AMBIENT: [&str; 4] = [
    "SONDE_SHARD",
    "SONDE_SHARDS",
    "JOB_COMPLETION_INDEX",
    "GITHUB_STEP_SUMMARY",
];

/// The built `sonde` binary as a `std::process::Command` (for spawning, signals, `output()`);
/// wrap it in `tokio::process::Command::from` for async tests.
pub fn sonde() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sonde"));
    for v in AMBIENT {
        c.env_remove(v);
    }
    c
}

/// The built `sonde` binary as an `assert_cmd::Command` (for `assert()`, stdin), killed if it
/// runs longer than 60 s.
pub fn sonde_cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(sonde());
    c.timeout(Duration::from_secs(60));
    c
}

/// Runs `sonde ARGS` with no stdin and returns what it printed and its status.
pub fn sonde_output(args: &[&str]) -> std::process::Output {
    sonde()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `tests/fixtures/import/NAME`: the curl, HAR and environment files of the import tests.
pub fn import_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// A running server; aborts its accept loop and every connection task on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    /// Serves HTTPS (its URLs say `https`).
    tls: bool,
    /// TLS servers: the PEM of the self-signed certificate (trust it with `--cacert`).
    pub ca_pem: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT{path}` (or https for TLS servers).
    pub fn url(&self, path: &str) -> url::Url {
        self.url_on("127.0.0.1", path)
    }

    /// The same server addressed as `localhost` (a name that needs DNS).
    pub fn localhost_url(&self, path: &str) -> url::Url {
        self.url_on("localhost", path)
    }

    fn url_on(&self, host: &str, path: &str) -> url::Url {
        let scheme = if self.tls { "https" } else { "http" };
        url::Url::parse(&format!("{scheme}://{host}:{}{path}", self.addr.port())).unwrap()
    }
}

/// `127.0.0.1:PORT`, as in `format!("http://{server}/")`.
impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

impl std::fmt::Display for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.fmt(f)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body fed through a channel: the handler (or a task it spawns) sends the chunks.
pub fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let stream =
        tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |b| {
            Ok::<_, std::io::Error>(Frame::data(b))
        });
    (tx, StreamBody::new(stream).boxed())
}

pub fn response(status: u16, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// An HTTP/1.1 keep-alive server calling `handler` for every request.
pub async fn spawn<H, F>(handler: H) -> Server
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let _ = stream.set_nodelay(true);
            let h = handler.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| {
                    let f = h(req);
                    async move { Ok::<_, Infallible>(f.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
            while conns.try_join_next().is_some() {}
        }
    });
    Server {
        addr,
        task,
        tls: false,
        ca_pem: None,
        _dir: None,
    }
}

/// A server on a runtime of its own (two worker threads) for synchronous `#[test]`s, which
/// have no runtime to spawn on; e.g. `Background::start(|| spawn(handler))`. Dropping it stops
/// the server and the runtime. Must not be dropped inside an async context.
pub struct Background {
    pub server: Server,
    rt: Option<tokio::runtime::Runtime>,
}

impl Background {
    pub fn start<M, F>(make: M) -> Background
    where
        M: FnOnce() -> F,
        F: Future<Output = Server>,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(make());
        Background {
            server,
            rt: Some(rt),
        }
    }
}

impl std::ops::Deref for Background {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.server.task.abort();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A raw TCP server: `f` gets each accepted socket (for behaviour hyper would not produce).
pub async fn spawn_raw<H, F>(f: H) -> Server
where
    H: Fn(TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            conns.spawn(f(stream));
            while conns.try_join_next().is_some() {}
        }
    });
    Server {
        addr,
        task,
        tls: false,
        ca_pem: None,
        _dir: None,
    }
}

/// Read one request head (up to 64 KiB); returns false if the peer went away first.
pub async fn read_head(s: &mut TcpStream) -> bool {
    read_head_text(s).await.is_some()
}

/// Read one request head; returns it as text plus how many body bytes came along with it.
pub async fn read_head_text(s: &mut TcpStream) -> Option<(String, usize)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    while buf.len() < 64 * 1024 {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Some((head, buf.len() - end - 4));
        }
    }
    None
}

/// Content-Length of a request head (0 when absent).
pub fn content_length(head: &str) -> u64 {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Answers one keep-alive `200 ok` per connection, then closes it `after` later without having
/// said `Connection: close` (an idle timeout); counts accepted connections.
pub async fn answers_once_then_closes(after: Duration) -> (Server, Arc<AtomicU64>) {
    let accepted = Arc::new(AtomicU64::new(0));
    let acc = accepted.clone();
    let srv = spawn_raw(move |mut s: TcpStream| {
        acc.fetch_add(1, Ordering::SeqCst);
        async move {
            if read_head_text(&mut s).await.is_none() {
                return;
            }
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            tokio::time::sleep(after).await;
        }
    })
    .await;
    (srv, accepted)
}

/// Reads the request head, waits `stall` before reading the body (so a large upload backs up
/// in the socket buffers), then reads it all and answers `200` with the byte count.
pub async fn slow_reader(stall: Duration) -> Server {
    spawn_raw(move |mut s| async move {
        let Some((head, already)) = read_head_text(&mut s).await else {
            return;
        };
        tokio::time::sleep(stall).await;
        let mut left = content_length(&head).saturating_sub(already as u64);
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n as u64),
            }
        }
        let body = content_length(&head).to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await
}

/// Reads the request, then resets the connection without a response.
pub async fn resets_before_headers() -> Server {
    spawn_raw(|mut s| async move {
        if read_head(&mut s).await {
            let _ = s.set_zero_linger();
            drop(s);
        }
    })
    .await
}

/// Accepts, reads the request, and never answers (holds the socket for at most 60 s).
pub async fn never_answers() -> Server {
    spawn_raw(|mut s| async move {
        read_head(&mut s).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(s);
    })
    .await
}

/// Announces `Content-Length: 1000`, sends 100 bytes, then resets the connection (RST).
pub async fn resets_mid_body() -> Server {
    spawn_raw(|mut s| async move {
        if !read_head(&mut s).await {
            return;
        }
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        let _ = s.write_all(head).await;
        let _ = s.write_all(&[b'x'; 100]).await;
        let _ = s.flush().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await
}

/// Announces a 10 GB body and streams zeros lazily until the client goes away.
pub async fn huge_body() -> Server {
    spawn_raw(|mut s| async move {
        if !read_head(&mut s).await {
            return;
        }
        let total: u64 = 10 * 1024 * 1024 * 1024;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n");
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < total {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
            sent += chunk.len() as u64;
        }
    })
    .await
}

/// `200 ok` after `delay` (at once for zero: tokio timers tick in milliseconds).
pub async fn fixed_delay(delay: Duration) -> Server {
    spawn(move |_req| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        response(200, full("ok"))
    })
    .await
}

/// The n-th request (from 0) waits `delay(n)`: a known distribution, e.g. every tenth slow.
pub async fn indexed_delay<D>(delay: D) -> Server
where
    D: Fn(u64) -> Duration + Send + Sync + 'static,
{
    let delay = Arc::new(delay);
    let counter = Arc::new(AtomicU64::new(0));
    spawn(move |_req| {
        let d = delay(counter.fetch_add(1, Ordering::Relaxed));
        async move {
            tokio::time::sleep(d).await;
            response(200, full("ok"))
        }
    })
    .await
}

/// Headers after `headers_after`, then `chunks` body chunks spread evenly over `drip_over`.
pub async fn drip(headers_after: Duration, drip_over: Duration, chunks: u32) -> Server {
    spawn(move |_req| async move {
        tokio::time::sleep(headers_after).await;
        let (tx, body) = channel_body();
        let chunks = chunks.max(1);
        let step = drip_over / chunks;
        tokio::spawn(async move {
            for _ in 0..chunks {
                tokio::time::sleep(step).await;
                if tx.send(Bytes::from_static(b"drip ")).await.is_err() {
                    return;
                }
            }
        });
        let mut r = response(200, body);
        r.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
        r
    })
    .await
}

/// Answers `200` with the given `Server-Timing` header value.
pub async fn server_timing(value: &'static str) -> Server {
    spawn(move |_req| async move {
        let mut r = response(200, full("timed"));
        r.headers_mut()
            .insert("server-timing", value.parse().unwrap());
        r
    })
    .await
}

/// Every request redirects (302) to the same path with `?n+1`: an endless chain.
pub async fn redirect_loop() -> Server {
    spawn(|req: Request<Incoming>| async move {
        let n: u64 = req.uri().query().and_then(|q| q.parse().ok()).unwrap_or(0);
        let mut r = response(302, full("again"));
        r.headers_mut()
            .insert("location", format!("/loop?{}", n + 1).parse().unwrap());
        r
    })
    .await
}

/// A 302 to `location`, for any request.
pub fn redirect_to(location: String) -> Response<Body> {
    let mut r = response(302, empty());
    r.headers_mut()
        .insert("location", location.parse().unwrap());
    r
}

/// TLS server with a fresh self-signed certificate for `localhost` and `127.0.0.1`, offering
/// h2 and http/1.1 via ALPN (or only http/1.1), with rustls' default session resumption.
pub async fn spawn_tls<H, F>(alpn_h2: bool, handler: H) -> Server
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let (cert, key, pem, dir) = self_signed();
    let mut srv = spawn_tls_cert(cert, key, alpn_h2, handler).await;
    srv.ca_pem = Some(pem);
    srv._dir = Some(dir);
    srv
}

/// A fresh self-signed certificate for `localhost` and `127.0.0.1`, its key, and the PEM file
/// a client trusts it by (in the returned directory, kept as long as the server).
pub fn self_signed() -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
    std::path::PathBuf,
    tempfile::TempDir,
) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    (cert.der().clone(), key, pem, dir)
}

/// A rustls acceptor (ring provider, safe default versions) presenting `cert`, offering
/// `alpn` in that order.
pub fn tls_acceptor(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// A TLS server presenting the given certificate (expired, wrong names, made by openssl, …):
/// the same server as `spawn_tls` without a CA file for the client.
pub async fn spawn_tls_cert<H, F>(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    alpn_h2: bool,
    handler: H,
) -> Server
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let alpn: &[&[u8]] = if alpn_h2 {
        &[b"h2", b"http/1.1"]
    } else {
        &[b"http/1.1"]
    };
    let acceptor = tls_acceptor(cert, key, alpn);
    let listener = bind().await;
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let h = handler.clone();
            conns.spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let svc = service_fn(move |req| {
                    let f = h(req);
                    async move { Ok::<_, Infallible>(f.await) }
                });
                let io = TokioIo::new(tls);
                if is_h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                }
            });
            while conns.try_join_next().is_some() {}
        }
    });
    Server {
        addr,
        task,
        tls: true,
        ca_pem: None,
        _dir: None,
    }
}

/// A closed port: bind, read the port, drop the listener.
pub async fn closed_port() -> u16 {
    let l = bind().await;
    l.local_addr().unwrap().port()
}

/// Await `f`, failing the test if it takes longer than `limit` (no test can hang).
pub async fn bounded<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("test exceeded its time bound")
}

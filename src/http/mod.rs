//! The one HTTP transport. Every request yields its phases (dns, connect, tls, send, wait,
//! receive, total), connection reuse, bytes, status, and parsed `Server-Timing`. Built on hyper
//! 1.x `client::conn` + tokio-rustls because reqwest cannot split TCP from TLS or report reuse.
//! Knows nothing of scenarios, plans or reports.
// TEMPORARY STUB (lead's branch only): replaced wholesale by the real transport at merge.
#![allow(dead_code, unused_variables)]
use std::path::PathBuf;
use std::time::{Duration, Instant};
use url::Url;

pub struct ClientConfig {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_redirects: u32,
    pub body_capture_limit: usize,
    pub insecure: bool,
    pub cacert: Option<PathBuf>,
    pub connection: ConnectionMode,
    pub http2: bool,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionMode {
    Reuse,
    New,
}
#[derive(Clone)]
pub struct Client;
#[derive(Debug, thiserror::Error)]
#[error("http")]
pub struct HttpError;
impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, HttpError> {
        Ok(Client)
    }
    pub fn session(&self) -> Session {
        Session
    }
}
pub struct Session;
impl Session {
    pub async fn send(&self, req: Request) -> Exchange {
        todo!()
    }
    pub fn add_cookie(&self, name: &str, value: &str, url: &Url) {}
    pub fn cookie(&self, name: &str, url: &Url) -> Option<String> {
        None
    }
    pub fn clear_connections(&self) {}
}
pub struct Request {
    pub method: http::Method,
    pub url: Url,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
    pub follow_redirects: bool,
    pub timeout: Option<Duration>,
}
pub struct Exchange {
    pub url: Url,
    pub hops: Vec<Hop>,
    pub timing: Timing,
    pub status: Option<http::StatusCode>,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
    pub body_len: u64,
    pub server_timing: Vec<ServerTimingMetric>,
    pub error: Option<TransportError>,
}
pub struct Hop {
    pub url: Url,
    pub status: http::StatusCode,
    pub timing: Timing,
    pub server_timing: Vec<ServerTimingMetric>,
}
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone, Copy)]
pub enum ErrorKind {
    Dns,
    ConnectRefused,
    ConnectTimeout,
    Connect,
    Tls,
    Timeout,
    Reset,
    BodyTruncated,
    Protocol,
    TooManyRedirects,
    InvalidRequest,
}
impl ErrorKind {
    pub fn as_str(&self) -> &'static str {
        "x"
    }
}
pub struct TransportError {
    pub kind: ErrorKind,
    pub message: String,
}
pub struct ServerTimingMetric {
    pub name: String,
    pub dur_ms: Option<f64>,
    pub desc: Option<String>,
}

//! Shared helpers for the demo integration tests: a tiny real HTTP/1.1 client (hyper, one
//! connection per request, every call bounded by a timeout), and read access to the demo's
//! SQLite file for checking invariants. Never mocks HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sonde::demo::{DemoConfig, RunningDemo};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an `application/problem+json` error with this status and field.
    pub fn assert_problem(&self, status: u16, field: Option<&str>) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let v = self.json();
        assert_eq!(v["status"], status);
        if let Some(field) = field {
            assert_eq!(v["field"], field, "problem: {v}");
        }
        v
    }
}

/// A request builder over one fresh connection.
pub struct Req {
    addr: SocketAddr,
    builder: http::request::Builder,
    body: Vec<u8>,
}

pub fn req(addr: SocketAddr, method: &str, path: &str) -> Req {
    let builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    Req {
        addr,
        builder,
        body: Vec::new(),
    }
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A raw header value (may hold non-ASCII "obs-text" bytes).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.builder = self
            .builder
            .header(name, http::HeaderValue::from_bytes(value).unwrap());
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(self, v: &Value) -> Self {
        self.raw("application/json", v.to_string().into_bytes())
    }

    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.builder = self.builder.header("content-type", content_type);
        self.body = body;
        self
    }

    async fn open(self) -> (u16, http::HeaderMap, Incoming) {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = self
            .builder
            .body(Full::new(Bytes::from(self.body)))
            .unwrap();
        let resp = sender.send_request(request).await.unwrap();
        let (parts, body) = resp.into_parts();
        (parts.status.as_u16(), parts.headers, body)
    }

    pub async fn send(self) -> Resp {
        tokio::time::timeout(TIMEOUT, async move {
            let (status, headers, body) = self.open().await;
            let body = body.collect().await.unwrap().to_bytes().to_vec();
            Resp {
                status,
                headers,
                body,
            }
        })
        .await
        .expect("request timed out")
    }

    /// Opens a streaming response (Server-Sent Events).
    pub async fn stream(self) -> (u16, http::HeaderMap, Incoming) {
        tokio::time::timeout(TIMEOUT, self.open())
            .await
            .expect("stream open timed out")
    }
}

/// Reads SSE text until the stream ends or `limit` passes; returns (event, data) pairs.
pub async fn read_events(mut body: Incoming, limit: Duration) -> (Vec<(String, Value)>, bool) {
    let deadline = Instant::now() + limit;
    let mut text = String::new();
    let mut ended = false;
    while Instant::now() < deadline {
        match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    text.push_str(&String::from_utf8_lossy(data));
                }
            }
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(Err(_))) | Err(_) => break,
        }
    }
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut name = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim());
            }
        }
        if !name.is_empty() {
            events.push((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
        }
    }
    (events, ended)
}

pub async fn start(config: DemoConfig) -> RunningDemo {
    sonde::demo::start(config).await.unwrap()
}

pub fn token(demo: &RunningDemo, name: &str) -> String {
    demo.identity(name).unwrap().token.clone()
}

pub fn user_id(demo: &RunningDemo, name: &str) -> i64 {
    demo.identity(name).unwrap().user_id
}

pub async fn invest(demo: &RunningDemo, who: &str, key: &str, startup: i64, amount: i64) -> Resp {
    req(demo.addr, "POST", "/investments")
        .bearer(&token(demo, who))
        .header("idempotency-key", key)
        .json(&serde_json::json!({"startup_id": startup, "amount_cents": amount}))
        .send()
        .await
}

/// A read-only view of the demo's database (WAL lets it read while the server writes).
pub async fn db(path: &Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await
        .unwrap()
}

/// A writable connection, for tests that stage a state the API cannot produce on demand.
pub async fn db_rw(path: &Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

pub async fn count(pool: &SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Waits (bounded) until no investment is pending or processing and every task is done.
pub async fn wait_quiescent(pool: &SqlitePool, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let busy = count(
            pool,
            "SELECT (SELECT COUNT(*) FROM investments WHERE status IN ('pending', 'processing'))
                  + (SELECT COUNT(*) FROM tasks WHERE state <> 'done')",
        )
        .await;
        if busy == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {busy} investments/tasks in flight after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

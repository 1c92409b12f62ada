//! Shared pieces of the `repro`/`bisect` tests: a rule server (a real hyper server on
//! 127.0.0.1:0 whose failing rule the test writes, counting every request), generated curl
//! environment files with N differing items, and running the `sonde` binary with a time bound.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{self, Server, empty, response};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the server saw of one request: headers (lowercase names), cookies and query items.
#[derive(Debug, Default)]
pub struct Seen {
    pub headers: BTreeMap<String, String>,
    pub cookies: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
}

impl Seen {
    /// The value of generated difference `i` (a header, cookie or query item by `i % 3`).
    pub fn item(&self, i: usize) -> Option<&str> {
        let (kind, name) = item_name(i);
        match kind {
            "header" => self.headers.get(&name),
            "cookie" => self.cookies.get(&name),
            _ => self.query.get(&name),
        }
        .map(String::as_str)
    }

    /// Every listed difference carries the bad side's value.
    pub fn all_bad(&self, items: &[usize]) -> bool {
        items.iter().all(|i| self.item(*i) == Some("b"))
    }
}

/// Generated difference `i`: `(kind, name)`.
pub fn item_name(i: usize) -> (&'static str, String) {
    match i % 3 {
        0 => ("header", format!("x-d{i:02}")),
        1 => ("cookie", format!("c{i:02}")),
        _ => ("query", format!("q{i:02}")),
    }
}

pub struct RuleServer {
    pub server: Server,
    pub count: Arc<AtomicU64>,
}

impl RuleServer {
    pub fn requests(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// A server answering 500 when `fails(seen, n)` (n: this request's 0-based number), else
/// `ok_status`.
pub async fn rule_server<F>(ok_status: u16, fails: F) -> RuleServer
where
    F: Fn(&Seen, u64) -> bool + Send + Sync + 'static,
{
    let count = Arc::new(AtomicU64::new(0));
    let fails = Arc::new(fails);
    let c = count.clone();
    let server = support::spawn(move |req: hyper::Request<hyper::body::Incoming>| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let mut seen = Seen::default();
        for (k, v) in req.headers() {
            let v = v.to_str().unwrap_or("").to_string();
            if k == hyper::header::COOKIE {
                for part in v.split(';') {
                    if let Some((a, b)) = part.trim().split_once('=') {
                        seen.cookies.insert(a.to_string(), b.to_string());
                    }
                }
            }
            seen.headers.insert(k.as_str().to_string(), v);
        }
        if let Some(q) = req.uri().query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                seen.query.insert(k.into_owned(), v.into_owned());
            }
        }
        let status = if fails(&seen, n) { 500 } else { ok_status };
        async move { response(status, empty()) }
    })
    .await;
    RuleServer { server, count }
}

/// A curl file for `side` (`g` or `b`) with `n` differing items (headers, cookies, query
/// items in turn), a `session` cookie that differs too (an identity item), and `extra` lines.
pub fn curl_env(dir: &Path, file: &str, port: u16, side: char, n: usize, extra: &str) -> PathBuf {
    let mut query = Vec::new();
    let mut headers = String::new();
    let mut cookies = vec![format!("session=sess{side}")];
    for i in 0..n {
        let (kind, name) = item_name(i);
        match kind {
            "header" => headers.push_str(&format!(" -H '{name}: {side}'")),
            "cookie" => cookies.push(format!("{name}={side}")),
            _ => query.push(format!("{name}={side}")),
        }
    }
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let text = format!(
        "curl 'http://127.0.0.1:{port}/flow{q}' -H 'accept: application/json'{headers} -b '{}' {extra}\n",
        cookies.join("; ")
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `sonde ARGS` off the async runtime (the test's servers keep serving), at most 60 s.
pub async fn sonde(args: Vec<String>) -> Output {
    sonde_env(args, Vec::new()).await
}

pub async fn sonde_env(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let out = support::sonde_cmd()
            .args(&args)
            .envs(env)
            .env("COLUMNS", "200")
            .output()
            .unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The culprits of a bisect JSON document as `kind:name` strings.
pub fn culprit_names(doc: &serde_json::Value) -> Vec<String> {
    doc["culprits"]
        .as_array()
        .unwrap_or_else(|| panic!("no culprits in {doc}"))
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// `kind:name` of generated difference `i`.
pub fn name_of(i: usize) -> String {
    let (k, n) = item_name(i);
    format!("{k}:{n}")
}

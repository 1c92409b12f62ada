//! `sonde run --connection new` (`--disable-keepalive`, `http.connection: new`): a fresh
//! connection for every request, counted by the servers here as they accept them; the run's
//! result says no request reused one and every request has its connect (and TLS) phase.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;

use crate::support::{self, Background, Server, full, response};

/// Counts of what the server saw: connections accepted, requests, requests saying
/// `Connection: close`.
#[derive(Default)]
struct Seen {
    accepted: AtomicU64,
    requests: AtomicU64,
    closing: AtomicU64,
}

/// A keep-alive HTTP/1.1 server answering `ok` to every request, closing only when a request
/// says `Connection: close`, counting as it goes.
async fn counting(seen: Arc<Seen>) -> Server {
    support::spawn_raw(move |mut s| {
        let seen = seen.clone();
        async move {
            seen.accepted.fetch_add(1, Ordering::SeqCst);
            while let Some((head, _)) = support::read_head_text(&mut s).await {
                seen.requests.fetch_add(1, Ordering::SeqCst);
                let close = head
                    .lines()
                    .any(|l| l.eq_ignore_ascii_case("connection: close"));
                if close {
                    seen.closing.fetch_add(1, Ordering::SeqCst);
                }
                let answer: &[u8] = if close {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                };
                if s.write_all(answer).await.is_err() || close {
                    break;
                }
            }
        }
    })
    .await
}

/// `sonde ARGS --out run.json`: the full result (per-step `reused`, `tls_resumed`, phases,
/// notes) and the process output.
fn run_json(args: &[&str]) -> (serde_json::Value, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    let mut all: Vec<&str> = args.to_vec();
    let p = path.display().to_string();
    all.extend(["--out", &p]);
    let out = support::sonde_output(&all);
    let v = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (v, out)
}

fn step(v: &serde_json::Value) -> &serde_json::Value {
    &v["steps"][0]
}

/// Every request counted, none reused, each with a measured phase `name` (its smallest
/// sample above zero).
fn assert_every_request_has(v: &serde_json::Value, n: u64, phase: &str) {
    let s = step(v);
    assert_eq!(s["requests"], n, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["reused"], 0, "{s}");
    let p = &s["phases"][phase];
    assert_eq!(p["count"], n, "{phase}: {p}");
    assert!(p["min_ms"].as_f64().unwrap() > 0.0, "{phase}: {p}");
}

#[test]
fn connection_new_opens_one_connection_per_request_and_says_close() {
    let seen = Arc::new(Seen::default());
    let srv = {
        let seen = seen.clone();
        Background::start(move || counting(seen))
    };
    let url = srv.url("/").to_string();
    let (v, out) = run_json(&[
        "run",
        "--url",
        &url,
        "--connection",
        "new",
        "-n",
        "20",
        "--vus",
        "4",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 20);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 20);
    assert_eq!(seen.closing.load(Ordering::SeqCst), 20);
    assert_every_request_has(&v, 20, "connect");
    let notes = v["notes"].to_string();
    assert!(notes.contains("opened its own connection"), "{notes}");
}

#[test]
fn disable_keepalive_is_connection_new_and_the_default_reuses() {
    let seen = Arc::new(Seen::default());
    let srv = {
        let seen = seen.clone();
        Background::start(move || counting(seen))
    };
    let url = srv.url("/").to_string();
    let (v, out) = run_json(&["run", "--url", &url, "-n", "20", "--vus", "2", "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened = seen.accepted.load(Ordering::SeqCst);
    assert!((1..=2).contains(&opened), "{opened}");
    assert_eq!(seen.closing.load(Ordering::SeqCst), 0);
    assert_eq!(step(&v)["reused"], 20 - opened);

    let before = seen.accepted.load(Ordering::SeqCst);
    let (v, out) = run_json(&[
        "run",
        "--url",
        &url,
        "--disable-keepalive",
        "-n",
        "20",
        "--vus",
        "2",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen.accepted.load(Ordering::SeqCst) - before, 20);
    assert_every_request_has(&v, 20, "connect");
}

#[test]
fn a_connection_header_of_the_request_is_sent_as_is() {
    let seen = Arc::new(Seen::default());
    let srv = {
        let seen = seen.clone();
        Background::start(move || counting(seen))
    };
    let url = srv.url("/").to_string();
    let (v, out) = run_json(&[
        "run",
        "--url",
        &url,
        "-H",
        "Connection: keep-alive",
        "--connection",
        "new",
        "-n",
        "5",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 5);
    assert_eq!(seen.closing.load(Ordering::SeqCst), 0);
    assert_every_request_has(&v, 5, "connect");
}

fn scenario(dir: &tempfile::TempDir, url: &str, connection: &str) -> String {
    let path = dir.path().join("s.yaml");
    std::fs::write(
        &path,
        format!(
            "name: newconn\ntarget: {url}\nhttp:\n  connection: {connection}\nsteps:\n  - name: home\n    request: {{ url: / }}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn the_scenario_key_opens_a_connection_per_request_and_the_cli_can_override_it() {
    let seen = Arc::new(Seen::default());
    let srv = {
        let seen = seen.clone();
        Background::start(move || counting(seen))
    };
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://{srv}");
    let file = scenario(&dir, &base, "new");
    let (v, out) = run_json(&["run", &file, "-n", "12", "--vus", "3", "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 12);
    assert_every_request_has(&v, 12, "connect");

    let before = seen.accepted.load(Ordering::SeqCst);
    let (v, out) = run_json(&[
        "run",
        &file,
        "--connection",
        "reuse",
        "-n",
        "12",
        "--vus",
        "3",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened = seen.accepted.load(Ordering::SeqCst) - before;
    assert!((1..=3).contains(&opened), "{opened}");
    assert_eq!(step(&v)["reused"], 12 - opened);
}

#[test]
fn a_bad_scenario_value_is_refused_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(&dir, "http://127.0.0.1:9", "neww");
    let out = support::sonde_output(&["run", &file, "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown `connection` `neww`"), "{err}");
    assert!(err.contains("s.yaml:4:15"), "{err}");
    assert!(err.contains("did you mean `new`?"), "{err}");
}

#[test]
fn contradicting_flags_are_refused() {
    let out = support::sonde_output(&[
        "run",
        "--url",
        "http://127.0.0.1:9/",
        "--connection",
        "reuse",
        "--disable-keepalive",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--disable-keepalive"), "{err}");
    let out = support::sonde_output(&[
        "run",
        "--url",
        "http://127.0.0.1:9/",
        "--connection",
        "sometimes",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

async fn tls_ok() -> Server {
    support::spawn_tls(false, |_req| async { response(200, full("ok")) }).await
}

#[test]
fn over_tls_every_request_handshakes_and_resumption_is_counted() {
    let srv = Background::start(tls_ok);
    let url = srv.url("/").to_string();
    let ca = srv.ca_pem.clone().unwrap().display().to_string();
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = [
            "run",
            "--url",
            &url,
            "--cacert",
            &ca,
            "--connection",
            "new",
            "-n",
            "8",
            "--vus",
            "1",
            "--quiet",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        a.extend(extra.iter().map(|s| (*s).to_string()));
        a
    };
    let a = args(&[]);
    let (v, out) = run_json(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_every_request_has(&v, 8, "connect");
    assert_every_request_has(&v, 8, "tls");
    // The first handshake is a full one; later ones resume its session.
    let resumed = step(&v)["tls_resumed"].as_u64().unwrap();
    assert!((1..8).contains(&resumed), "{resumed}");

    let a = args(&["--no-tls-resumption"]);
    let (v, out) = run_json(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_every_request_has(&v, 8, "tls");
    assert_eq!(step(&v)["tls_resumed"], 0);
    let notes = v["notes"].to_string();
    assert!(notes.contains("resumption off"), "{notes}");
}

/// `-v` prints the request as sent: with `--connection new` that includes the
/// `Connection: close` the transport added.
#[test]
fn verbose_shows_the_connection_close_it_sent() {
    let seen = Arc::new(Seen::default());
    let srv = {
        let seen = seen.clone();
        Background::start(move || counting(seen))
    };
    let url = srv.url("/").to_string();
    let (_, out) = run_json(&[
        "run",
        "--url",
        &url,
        "--connection",
        "new",
        "-n",
        "1",
        "--vus",
        "1",
        "-v",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(out.status.success(), "{err}");
    assert_eq!(seen.closing.load(Ordering::SeqCst), 1);
    assert!(err.contains("> connection: close"), "{err}");
}

//! Against a raw server on 127.0.0.1 that sends exactly the bytes wanted: response headers
//! whose values hold bytes 0x80-0xFF (obs-text, or UTF-8) are read, not reported as
//! "missing" (expectations compare them, captures carry them); a captured value that would
//! make a request grow past the 1 MiB expansion limit fails that step without sending it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// Answers every connection with the given raw header lines and closes it; returns the port,
/// the request lines seen and the server (it stops when dropped). `n`: the connections the test
/// expects (none of these tests makes more).
fn raw_server(
    n: usize,
    headers: &'static [u8],
) -> (u16, Arc<Mutex<Vec<String>>>, support::Background) {
    raw_server_with(n, headers.to_vec(), b"ok".to_vec())
}

fn raw_server_with(
    _n: usize,
    headers: Vec<u8>,
    body: Vec<u8>,
) -> (u16, Arc<Mutex<Vec<String>>>, support::Background) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(&headers);
    resp.extend_from_slice(b"\r\n");
    resp.extend_from_slice(&body);
    let resp = Arc::new(resp);
    let srv = support::Background::start(move || {
        support::spawn_raw(move |mut c| {
            let (seen, resp) = (s2.clone(), resp.clone());
            async move {
                let head = support::read_head_text(&mut c).await;
                let text = head.map(|(h, _)| h).unwrap_or_default();
                seen.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_string());
                let _ = c.write_all(&resp).await;
            }
        })
    });
    (srv.port(), seen, srv)
}

#[test]
fn header_values_with_high_bytes_are_read_for_checks_and_captures() {
    // `café` in UTF-8, and in Latin-1 (one byte 0xE9, obs-text).
    let (port, seen, _srv) = raw_server(4, b"x-utf8: caf\xc3\xa9\r\nx-latin: caf\xe9\r\n");
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("h.yaml");
    std::fs::write(
        &scenario,
        r#"name: high-bytes
steps:
  - name: read
    request: { url: /a }
    expect:
      status: 200
      headers:
        x-utf8: "café"
        x-latin: { matches: "^caf.$" }
    capture:
      latin: { header: x-latin }
  - name: use
    request: { url: "/b?v={{latin}}" }
"#,
    )
    .unwrap();
    let out = support::sonde()
        .arg("run")
        .arg(&scenario)
        .args(["--target", &format!("http://127.0.0.1:{port}")])
        .args([
            "--vus",
            "1",
            "--iterations",
            "1",
            "--format",
            "json",
            "--quiet",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("missing") && !stderr.contains("missing"),
        "{stdout}\n{stderr}"
    );
    let lines = seen.lock().unwrap().clone();
    // The Latin-1 byte was captured as `é` and sent on percent-encoded as UTF-8.
    assert_eq!(
        lines,
        vec![
            "GET /a HTTP/1.1".to_string(),
            "GET /b?v=caf%C3%A9 HTTP/1.1".to_string()
        ],
        "{stdout}\n{stderr}"
    );
}

#[test]
fn a_capture_that_would_grow_a_request_past_the_limit_fails_the_step_unsent() {
    // A 600 KiB string, used twice in one URL: 1.2 MiB once expanded.
    let body = format!("{{\"v\": \"{}\"}}", "x".repeat(600 * 1024)).into_bytes();
    let (port, seen, _srv) =
        raw_server_with(4, b"content-type: application/json\r\n".to_vec(), body);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("big.yaml");
    std::fs::write(
        &scenario,
        r#"name: big-capture
steps:
  - name: read
    request: { url: /a }
    capture: { v: "$.v" }
  - name: use
    request: { url: "/b?{{v}}{{v}}" }
"#,
    )
    .unwrap();
    let out_json = dir.path().join("run.json");
    let out = support::sonde()
        .arg("run")
        .arg(&scenario)
        .args(["--target", &format!("http://127.0.0.1:{port}")])
        .args(["--vus", "1", "--iterations", "1", "--quiet", "--out"])
        .arg(&out_json)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let step = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "use")
        .unwrap();
    assert_eq!(step["error_classes"]["template"], 1, "{step}");
    let messages = step["error_messages"].to_string();
    assert!(messages.contains("larger than 1 MiB"), "{messages}");
    // Only the first request was sent.
    assert_eq!(seen.lock().unwrap().len(), 1, "{stderr}");
}

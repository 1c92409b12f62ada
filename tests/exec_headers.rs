//! Response headers whose values hold bytes 0x80-0xFF (obs-text, or UTF-8) are read, not
//! reported as "missing": expectations compare them and captures carry them, against a raw
//! server on 127.0.0.1 that sends exactly those bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers up to `n` connections with the given raw header lines; returns the port and the
/// request lines seen.
fn raw_server(n: usize, headers: &'static [u8]) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut c, _)) = listener.accept() else {
                return;
            };
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            s2.lock()
                .unwrap()
                .push(text.lines().next().unwrap_or("").to_string());
            let mut resp =
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n".to_vec();
            resp.extend_from_slice(headers);
            resp.extend_from_slice(b"\r\nok");
            let _ = c.write_all(&resp);
        }
    });
    (port, seen)
}

#[test]
fn header_values_with_high_bytes_are_read_for_checks_and_captures() {
    // `café` in UTF-8, and in Latin-1 (one byte 0xE9, obs-text).
    let (port, seen) = raw_server(4, b"x-utf8: caf\xc3\xa9\r\nx-latin: caf\xe9\r\n");
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
    let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
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

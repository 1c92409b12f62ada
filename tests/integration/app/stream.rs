//! The `stream:` step against the real demo on 127.0.0.1: it subscribes (Server-Sent Events or
//! WebSocket), waits for the pushed final status, and is measured from the POST (`since`), so
//! the push latency sits beside the poll's; a stream that never brings a matching event fails
//! within its timeout with a message saying so; mistakes in the step are refused at load with
//! file:line:col.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::demo::start;
use serde_json::Value;
use sonde::demo::{DemoConfig, Fault, RunningDemo};
use sonde::scenario::{Overrides, load_str_with_env};

const SETUP: &str = r#"
setup:
  - name: identities
    request: { url: /demo/identities }
    capture: { token: "$[?@.name == 'typical'].token" }
steps:
  - name: invest
    request:
      method: POST
      url: /investments
      headers: { Authorization: "Bearer {{token}}", Idempotency-Key: "{{uuid}}" }
      body: { json: { startup_id: 2, amount_cents: 100 } }
    expect: { status: 202 }
    capture: { investment_id: "$.id" }
"#;

/// Runs `steps` (after SETUP's invest) against `demo` with `args`; the result JSON, and how
/// long the run took.
fn run(demo: &RunningDemo, steps: &str, args: &[&str]) -> (Value, Duration) {
    run_at(&demo.base_url(), steps, args)
}

fn run_at(base: &str, steps: &str, args: &[&str]) -> (Value, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stream.yaml");
    std::fs::write(&file, format!("name: stream-test\n{SETUP}{steps}")).unwrap();
    let out = dir.path().join("result.json");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .arg("run")
        .arg(&file)
        .args(["--target", base, "-q", "-o"])
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = std::fs::read_to_string(&out).unwrap_or_else(|_| {
        panic!(
            "no result written; stderr:\n{}",
            String::from_utf8_lossy(&status.stderr)
        )
    });
    (serde_json::from_str(&text).unwrap(), took)
}

fn row<'a>(result: &'a Value, list: &str, name: &str) -> &'a Value {
    result[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {list} row {name} in {result}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_measured_from_the_post_both_ways_and_is_never_later_than_the_poll() {
    let demo = start(DemoConfig {
        faults: vec![Fault::PaymentLatency(Duration::from_millis(150))],
        ..DemoConfig::default()
    })
    .await;
    let steps = r#"
  - parallel:
      - name: polled
        request:
          url: /investments/{{investment_id}}
          headers: { Authorization: "Bearer {{token}}" }
        poll: { every: 300ms, timeout: 10s, since: invest }
        expect: { json: { "$.status": { matches: "^(completed|failed)$" } } }
      - name: sse
        request:
          url: /investments/{{investment_id}}/events
          headers: { Authorization: "Bearer {{token}}" }
        stream: { protocol: sse, event: status, timeout: 10s, since: invest }
        expect: { json: { "$.status": { matches: "^(completed|failed)$" } } }
        capture: { final_status: "$.status" }
      - name: ws
        request:
          url: /investments/{{investment_id}}/ws
          cookies: { session: "{{token}}" }
        stream: { protocol: websocket, event: status, timeout: 10s, since: invest }
        expect: { json: { "$.status": completed } }
"#;
    let (result, _) = run(&demo, steps, &["--vus", "2", "-n", "6"]);
    assert_eq!(result["iterations"]["failed"], 0, "{result}");
    for name in ["sse", "ws"] {
        // One subscription per iteration, answered 200 (SSE) or 101 (WebSocket).
        let step = row(&result, "steps", name);
        assert_eq!(step["requests"], 6, "{step}");
        assert_eq!(step["errors"], 0, "{step}");
        let want = if name == "sse" { "200" } else { "101" };
        assert_eq!(step["statuses"][want], 6, "{step}");
        // Its phases, as for any request: connect, then wait up to the answer's head.
        assert_eq!(step["phases"]["connect"]["count"], 6, "{step}");
        assert!(
            step["phases"]["wait"]["max_ms"].as_f64().unwrap() > 0.0,
            "{step}"
        );
    }
    let settle = |name: &str| row(&result, "steps", name)["settle"].clone();
    let (polled, sse, ws) = (settle("polled"), settle("sse"), settle("ws"));
    for s in [&polled, &sse, &ws] {
        assert_eq!(s["count"], 6, "{s}");
        // Measured from the POST: the 150 ms charge is inside every sample.
        assert!(s["min_ms"].as_f64().unwrap() >= 150.0, "{s}");
    }
    // The poll sees the final status only at its next 300 ms tick; the push at once.
    for push in [&sse, &ws] {
        assert!(
            push["mean_ms"].as_f64().unwrap() < polled["mean_ms"].as_f64().unwrap(),
            "push {push} vs poll {polled}"
        );
    }
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_a_matching_event_fails_in_time_and_says_what_it_saw() {
    let demo = start(DemoConfig {
        faults: vec![Fault::PaymentLatency(Duration::from_secs(4))],
        ..DemoConfig::default()
    })
    .await;
    // The charge takes 4 s: a 500 ms stream gives up first, on both protocols.
    let steps = r#"
  - parallel:
      - name: sse_short
        request:
          url: /investments/{{investment_id}}/events
          headers: { Authorization: "Bearer {{token}}" }
        stream: { protocol: sse, event: status, timeout: 500ms, since: invest }
        expect: { json: { "$.status": completed } }
      - name: ws_short
        request:
          url: /investments/{{investment_id}}/ws
          headers: { Authorization: "Bearer {{token}}" }
        stream: { protocol: websocket, timeout: 500ms }
        expect: { json: { "$.status": completed } }
"#;
    let (result, took) = run(&demo, steps, &["--vus", "1", "-n", "1"]);
    assert!(took < Duration::from_secs(4), "the run waited {took:?}");
    for name in ["sse_short", "ws_short"] {
        let step = row(&result, "steps", name);
        assert_eq!(step["errors"], 1, "{step}");
        assert_eq!(step["error_classes"]["timeout"], 1, "{step}");
        let msgs: Vec<&String> = step["error_messages"].as_object().unwrap().keys().collect();
        assert!(
            msgs[0].contains("no matching event within the stream timeout (0.5s)"),
            "{msgs:?}"
        );
    }
    demo.shutdown().await.unwrap();

    // A stream that ends (the final status is sent, then the stream closes) without the event
    // expected: an assertion failure naming the last event's mismatch.
    let demo = start(DemoConfig::default()).await;
    let steps = r#"
  - name: wants_failed
    request:
      url: /investments/{{investment_id}}/events
      headers: { Authorization: "Bearer {{token}}" }
    stream: { protocol: sse, event: status, timeout: 10s }
    expect: { json: { "$.status": failed } }
"#;
    let (result, _) = run(&demo, steps, &["--vus", "1", "-n", "1"]);
    let step = row(&result, "steps", "wants_failed");
    assert_eq!(step["error_classes"]["assertion"], 1, "{step}");
    let msg = step["error_messages"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert!(msg.contains("the stream ended after"), "{msg}");
    assert!(msg.contains("event `status`"), "{msg}");
    assert!(msg.contains("completed"), "{msg}");
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_shows_the_subscription_and_the_event_that_passed_with_secrets_redacted() {
    let demo = start(DemoConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.yaml");
    let steps = r#"
  - name: pushed
    request:
      url: /investments/{{investment_id}}/events
      headers: { Authorization: "Bearer {{token}}" }
    stream: { protocol: sse, event: status, timeout: 10s }
    expect: { json: { "$.status": completed } }
"#;
    std::fs::write(&file, format!("name: v\n{SETUP}{steps}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .arg("run")
        .arg(&file)
        .args([
            "--target",
            &demo.base_url(),
            "-n",
            "1",
            "--vus",
            "1",
            "-q",
            "-v",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let shown = stderr
        .split("* #")
        .find(|block| block.contains("step `pushed`"))
        .unwrap_or_else(|| panic!("no exchange shown for `pushed`:\n{stderr}"));
    assert!(shown.contains("> GET http://127.0.0.1:"), "{shown}");
    assert!(shown.contains("/events"), "{shown}");
    assert!(shown.contains("< HTTP/1.1 200"), "{shown}");
    assert!(shown.contains("\"status\":\"completed\""), "{shown}");
    let secret = demo.identity("typical").unwrap().token.clone();
    assert!(!stderr.contains(&secret), "the token leaked:\n{stderr}");
    demo.shutdown().await.unwrap();
}

/// A TLS front for the demo on 127.0.0.1 (rcgen certificate, trusted through `--cacert`): each
/// connection is decrypted and copied to the demo as is. Returns the front's URL and the PEM.
async fn tls_front(demo: &RunningDemo, dir: &Path) -> (String, std::path::PathBuf) {
    let (cert, key, made, _made_in) = crate::support::self_signed();
    let pem = dir.join("front.pem");
    std::fs::copy(made, &pem).unwrap();
    let acceptor = crate::support::tls_acceptor(cert, key, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = listener.local_addr().unwrap();
    let backend = demo.addr;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (format!("https://127.0.0.1:{}", front.port()), pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_work_over_https_too_with_the_clients_trust_settings() {
    let demo = start(DemoConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let (base, pem) = tls_front(&demo, dir.path()).await;
    let steps = r#"
  - parallel:
      - name: sse
        request:
          url: /investments/{{investment_id}}/events
          headers: { Authorization: "Bearer {{token}}" }
        stream: { protocol: sse, event: status, timeout: 10s, since: invest }
        expect: { json: { "$.status": completed } }
      - name: wss
        request:
          url: /investments/{{investment_id}}/ws
          headers: { Authorization: "Bearer {{token}}" }
        stream: { protocol: websocket, event: status, timeout: 10s, since: invest }
        expect: { json: { "$.status": completed } }
"#;
    let pem = pem.to_str().unwrap();
    let (result, _) = run_at(&base, steps, &["--vus", "1", "-n", "2", "--cacert", pem]);
    assert_eq!(result["iterations"]["failed"], 0, "{result}");
    for name in ["sse", "wss"] {
        let step = row(&result, "steps", name);
        assert_eq!(step["errors"], 0, "{step}");
        assert_eq!(step["settle"]["count"], 2, "{step}");
    }
    demo.shutdown().await.unwrap();
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// The load error for `step` (a YAML list item under `steps:`), as printed.
fn load_error(step: &str) -> String {
    let text = format!(
        "name: t\ntarget: http://127.0.0.1:1\nsteps:\n  - name: a\n    request: {{ url: /a }}\n{step}"
    );
    match load_str_with_env(&text, Path::new("s.yaml"), &Overrides::default(), &no_env) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mistakes_in_a_stream_step_are_refused_with_file_line_and_column() {
    let cases = [
        (
            "  - name: b\n    request: { url: /e }\n    stream: { protocol: sse, timeout: 1s }\n    poll: { every: 1s }\n    expect: { status: 200 }\n",
            "s.yaml:8:5",
            "step `b` has both `poll` and `stream`",
        ),
        (
            "  - name: b\n    request: { url: /e }\n    stream: { protocol: websockets }\n",
            "s.yaml:8:25",
            "unknown stream protocol `websockets`",
        ),
        (
            "  - name: b\n    request: { url: /e, method: POST }\n    stream: { protocol: sse }\n",
            "s.yaml:7:33",
            "stream step `b` opens its stream with a GET",
        ),
        (
            "  - name: b\n    request: { url: /e }\n    stream: { protocol: sse, since: nope }\n",
            "s.yaml:8:37",
            "`since` names no earlier step: `nope`",
        ),
        (
            "  - name: b\n    request: { url: /e }\n    stream: { timeout: 1s }\n",
            "s.yaml:8:13",
            "stream step `b` has no `protocol`",
        ),
        (
            "  - name: b\n    request: { url: /e }\n    stream: { protocol: sse }\n    timeout: 2s\n",
            "s.yaml:9:5",
            "stream step `b` takes its timeout in `stream`",
        ),
        (
            "  - name: b\n    request: { url: /e }\n    follow_redirects: false\n    stream: { protocol: sse }\n",
            "s.yaml:8:5",
            "stream step `b` does not follow redirects",
        ),
        (
            "  - name: b\n    request: { url: /e }\n    stream: { protocol: sse, evnt: status }\n",
            "s.yaml:8:30",
            "evnt",
        ),
    ];
    for (step, at, what) in cases {
        let err = load_error(step);
        assert!(err.contains(at), "want {at} in:\n{err}");
        assert!(err.contains(what), "want {what:?} in:\n{err}");
        assert!(err.contains('^'), "a caret under the mistake:\n{err}");
    }
    // `did you mean` for a near-miss protocol.
    let err =
        load_error("  - name: b\n    request: { url: /e }\n    stream: { protocol: websockets }\n");
    assert!(err.contains("did you mean `websocket`?"), "{err}");
    // `.settle` is a stream step's metric, as a poll's.
    let text = "name: t\ntarget: http://127.0.0.1:1\nsteps:\n  - name: a\n    request: { url: /a }\n  - name: b\n    request: { url: /e }\n    stream: { protocol: sse, since: a }\nthresholds:\n  b.settle: [\"p(95) < 1s\"]\n";
    load_str_with_env(text, Path::new("s.yaml"), &Overrides::default(), &no_env).unwrap();
}

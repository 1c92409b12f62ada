//! Starting and stopping the demo: `serve` on a bound listener, shutdown with open event
//! streams, the live status stream, and the `sonde demo`
//! binary (banner, Ctrl-C, bad `--fault`). Real servers on 127.0.0.1:0 only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::demo::{invest, read_events, req, start, token};
use sonde::demo::{DemoConfig, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_a_bound_listener_until_shutdown_even_with_an_open_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sonde::demo::serve(
        listener,
        DemoConfig {
            faults: vec![Fault::PaymentLatency(Duration::from_secs(5))],
            ..DemoConfig::default()
        },
        async move {
            let _ = rx.await;
        },
    ));
    // serve() seeds before accepting; connections queue in the backlog meanwhile.
    let ids = req(addr, "GET", "/demo/identities").send().await;
    assert_eq!(ids.status, 200);
    let whale = ids.json()[0]["token"].as_str().unwrap().to_string();
    let created = req(addr, "POST", "/investments")
        .bearer(&whale)
        .header("idempotency-key", "held-open")
        .json(&serde_json::json!({"startup_id": 2, "amount_cents": 100}))
        .send()
        .await;
    let id = created.json()["id"].as_i64().unwrap();
    // A stream that would stay open for seconds (the charge takes 5 s).
    let (status, _, body) = req(addr, "GET", &format!("/investments/{id}/events"))
        .bearer(&whale)
        .stream()
        .await;
    assert_eq!(status, 200);
    let stopping = Instant::now();
    tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("graceful shutdown finishes")
        .unwrap();
    result.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    let (_, ended) = read_events(body, Duration::from_secs(2)).await;
    assert!(ended, "the event stream was closed by shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_reports_each_status_change_in_order_until_final() {
    let demo = start(DemoConfig {
        faults: vec![Fault::PaymentLatency(Duration::from_millis(300))],
        ..DemoConfig::default()
    })
    .await;
    let created = invest(&demo, "typical", "watch-me", 8, 4_200).await;
    let id = created.json()["id"].as_i64().unwrap();
    let t = token(&demo, "typical");
    let (status, headers, body) = req(demo.addr, "GET", &format!("/investments/{id}/events"))
        .bearer(&t)
        .stream()
        .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (events, ended) = read_events(body, Duration::from_secs(10)).await;
    assert!(ended, "the stream ends after the final status");
    let statuses: Vec<&str> = events
        .iter()
        .filter(|(name, _)| name == "status")
        .map(|(_, v)| v["status"].as_str().unwrap())
        .collect();
    assert!(statuses.len() >= 2, "{statuses:?}");
    let rank = |s: &str| {
        ["pending", "processing", "completed"]
            .iter()
            .position(|x| *x == s)
    };
    let ranks: Vec<_> = statuses.iter().map(|s| rank(s)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1]),
        "strictly forward: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&"completed"));
    assert!(events.iter().all(|(_, v)| v["id"] == id));
    let truth = req(demo.addr, "GET", &format!("/investments/{id}"))
        .bearer(&t)
        .send()
        .await
        .json();
    assert_eq!(truth["status"], "completed", "GET agrees with the stream");

    // Someone else's investment has no stream (404, like a missing one).
    req(demo.addr, "GET", &format!("/investments/{id}/events"))
        .bearer(&token(&demo, "other"))
        .send()
        .await
        .assert_problem(404, None);
    demo.shutdown().await.unwrap();
}

#[test]
fn the_binary_prints_url_and_identities_and_stops_cleanly_on_ctrl_c() {
    let mut child = support::sonde()
        .args(["demo", "--listen", "127.0.0.1:0", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    while !banner.iter().any(|l: &String| l.contains("Ctrl-C")) {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("banner printed");
        banner.push(line);
    }
    let text = banner.join("\n");
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap();
    assert!(text.contains("whale") && text.contains("typical") && text.contains("token=sd_"));
    assert_eq!(
        text.matches("curl ").count(),
        3,
        "three curl examples:\n{text}"
    );
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids = rt.block_on(req(addr, "GET", "/demo/identities").send());
    assert_eq!(ids.status, 200);
    assert!(text.contains(ids.json()[0]["token"].as_str().unwrap()));

    assert!(
        stop_with(&mut child, "-INT").success(),
        "clean exit on Ctrl-C"
    );
}

/// Sends `signal` to the child and waits (bounded) for its exit status.
fn stop_with(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sonde demo did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Containers and CI stop a service with SIGTERM: the demo drains and exits 0, as on Ctrl-C.
#[test]
fn the_binary_stops_cleanly_on_sigterm() {
    let mut child = support::sonde()
        .args(["demo", "--listen", "127.0.0.1:0", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    assert!(lines.any(|l| l.contains("Ctrl-C")), "banner printed");
    let status = stop_with(&mut child, "-TERM");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn an_unknown_fault_is_a_usage_error_listing_the_valid_names() {
    let out = support::sonde()
        .args(["demo", "--fault", "slow-profiel"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("slow-profiel") && stderr.contains("valid faults: slow-profile"),
        "{stderr}"
    );
}

#[test]
fn cannot_listen_says_why_with_the_os_error() {
    // A port that is taken: held by this test while the binary tries it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = support::sonde()
        .args(["demo", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("in use") && stderr.contains("os error"),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "{stderr}");
    // An address of no local interface: the OS says so too. Tried inside a private network
    // namespace of its own (only loopback there), so nothing concerns a real interface.
    if Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        // Bounded: were the bind to succeed, the demo would serve until killed.
        let script = r#"ip link set lo up && exec "$0" demo --listen 192.0.2.1:8080"#;
        let out = Command::new("timeout")
            .args(["20", "unshare", "-n", "sh", "-c", script])
            .arg(env!("CARGO_BIN_EXE_sonde"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("os error"), "{stderr}");
        assert!(stderr.contains("not one of this machine's"), "{stderr}");
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to create network namespaces (unshare -n, as root)"
        );
        eprintln!("SKIPPED: the non-local --listen case needs a network namespace (unshare -n)");
    }
    drop(taken);
}

//! `sonde run` end to end against small real servers on 127.0.0.1:0: percentile accuracy
//! against the server's own measurements, coordinated omission (open vs closed model),
//! dropped iterations, error classes, Ctrl-C. Every run is bounded in count and time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::sonde_output as sonde;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use std::future::Future;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A real HTTP/1.1 server on 127.0.0.1:0 running `handler` for every request, on its own
/// runtime thread (these tests are synchronous); `{server}` formats as its address, and it stops
/// when dropped.
fn serve<F, Fut>(handler: F) -> support::Background
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<support::Body>> + Send + 'static,
{
    let handler = Arc::new(handler);
    support::Background::start(move || support::spawn(move |req| handler(req)))
}

fn ok(body: &'static str) -> Response<support::Body> {
    Response::new(support::full(body))
}

fn json_stdout(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

#[test]
fn percentiles_match_the_servers_own_timing() {
    // 90 % of requests take ~5 ms and every 10th ~50 ms; the server records what it did.
    let truth: Arc<Mutex<Vec<f64>>> = Arc::default();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t2 = truth.clone();
    let addr = serve(move |_req| {
        let truth = t2.clone();
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let start = Instant::now();
            let ms = if n % 10 == 9 { 50 } else { 5 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            truth
                .lock()
                .unwrap()
                .push(start.elapsed().as_secs_f64() * 1000.0);
            ok("ok")
        }
    });
    let url = format!("http://{addr}/");
    let out = sonde(&[
        "run",
        "--url",
        &url,
        "--vus",
        "4",
        "--iterations",
        "400",
        "--format",
        "json",
        "-q",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_stdout(&out);
    assert_eq!(v["requests"], 400);
    let mut t = truth.lock().unwrap().clone();
    t.sort_by(f64::total_cmp);
    assert_eq!(t.len(), 400);
    for (key, q) in [("p50_ms", 0.50), ("p95_ms", 0.95)] {
        let got = v["http"][key].as_f64().unwrap();
        let want = quantile(&t, q);
        let tol = 1.0 + 0.05 * want;
        assert!(
            (got - want).abs() <= tol,
            "{key}: sonde says {got:.3} ms, the server measured {want:.3} ms (tolerance {tol:.3})"
        );
    }
}

/// A server that stops answering for the first 500 ms of every second (since it started):
/// requests that arrive then are held until the pause ends.
fn stall_server() -> support::Background {
    let t0 = Instant::now();
    serve(move |_req| async move {
        let ms = t0.elapsed().as_millis() as u64 % 1000;
        if ms < 500 {
            tokio::time::sleep(Duration::from_millis(500 - ms)).await;
        }
        ok("ok")
    })
}

#[test]
fn open_model_shows_a_stall_the_closed_model_hides() {
    let addr = stall_server();
    let url = format!("http://{addr}/");
    let open = sonde(&[
        "run",
        "--url",
        &url,
        "--rate",
        "100/s",
        "--max-vus",
        "100",
        "--duration",
        "3s",
        "--format",
        "json",
        "-q",
    ]);
    assert_eq!(
        open.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&open.stderr)
    );
    let open = json_stdout(&open);
    assert_eq!(open["latency_measured_from"], "intended_start");
    let closed = sonde(&[
        "run",
        "--url",
        &url,
        "--vus",
        "1",
        "--duration",
        "3s",
        "--format",
        "json",
        "-q",
    ]);
    assert_eq!(closed.status.code(), Some(0));
    let closed = json_stdout(&closed);
    let open_p99 = open["http"]["p99_ms"].as_f64().unwrap();
    let closed_p99 = closed["http"]["p99_ms"].as_f64().unwrap();
    let closed_max = closed["http"]["max_ms"].as_f64().unwrap();
    // Half of the open model's arrivals land in a pause: its p99 is close to the pause.
    assert!(
        open_p99 >= 400.0,
        "open p99 {open_p99} ms should show the 500 ms stall"
    );
    // One closed-loop user waits out each pause once, then sends hundreds of fast requests:
    // the stall only shows in the max (coordinated omission).
    assert!(closed_max >= 300.0, "closed max {closed_max}");
    assert!(
        closed_p99 < 100.0,
        "closed p99 {closed_p99} hides the stall"
    );
    assert!(open["dropped_iterations"].as_u64().unwrap() < 10);
}

#[test]
fn dropped_iterations_are_counted_and_shown() {
    let addr = serve(|_req| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        ok("slow")
    });
    let url = format!("http://{addr}/");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("run.json");
    let out = sonde(&[
        "run",
        "--url",
        &url,
        "--rate",
        "20/s",
        "--max-vus",
        "2",
        "--duration",
        "2s",
        "-q",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("DROPPED"), "{table}");
    let v: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let dropped = v["iterations"]["dropped"].as_u64().unwrap();
    let done = v["iterations"]["count"].as_u64().unwrap();
    // 2 VUs at ~3.3 iterations/s each cannot keep 20/s for 2 s (40 arrivals).
    assert!(dropped >= 20, "dropped {dropped}");
    assert!((38..=41).contains(&(dropped + done)), "{dropped} + {done}");

    // On a terminal (a pty from util-linux `script`), the live progress line counts them.
    let inner = format!(
        "stty cols 120 rows 40; exec '{}' run --url '{url}' --rate 20/s --max-vus 2 --duration 3s",
        env!("CARGO_BIN_EXE_sonde")
    );
    let Ok(tty) = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .output()
    else {
        eprintln!("skipped the terminal half: util-linux `script` is not installed");
        return;
    };
    let screen = String::from_utf8_lossy(&tty.stdout);
    let progress = screen
        .split(['\r', '\n'])
        .filter(|l| l.contains("req/s now"))
        .collect::<Vec<_>>();
    assert!(
        progress.iter().any(|l| l.contains(" dropped, p95")),
        "{screen}"
    );
}

#[test]
fn error_classes_are_named() {
    // A closed port: nothing listens there once the listener is dropped.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = sonde(&[
        "run",
        "--url",
        &format!("http://{closed}/"),
        "--iterations",
        "3",
        "-q",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "unreachable target is a runtime failure"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connect_refused"), "{err}");

    // A server that accepts and never answers: the whole-request timeout fires.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let out = sonde(&[
        "run",
        "--url",
        &format!("http://{silent_addr}/"),
        "--iterations",
        "1",
        "--timeout",
        "300ms",
        "-q",
    ]);
    drop(silent);
    let table = String::from_utf8_lossy(&out.stdout);
    // No request got any response: a runtime failure (README, exit codes), never a pass.
    assert_eq!(out.status.code(), Some(3), "{table}");
    assert!(table.contains("timeout"), "{table}");

    // 500s are errors of class status_5xx.
    let addr = serve(|_req| async {
        let mut r = ok("boom");
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    });
    let out = sonde(&[
        "run",
        "--url",
        &format!("http://{addr}/"),
        "--iterations",
        "2",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("status_5xx"));

    // A redirect loop is cut at the redirect limit.
    let addr = serve(|_req| async {
        let mut r = ok("");
        *r.status_mut() = hyper::StatusCode::FOUND;
        r.headers_mut()
            .insert("location", "/again".parse().unwrap());
        r
    });
    let out = sonde(&[
        "run",
        "--url",
        &format!("http://{addr}/"),
        "--iterations",
        "1",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("too_many_redirects"));
}

#[test]
fn ctrl_c_writes_complete_partial_results() {
    let addr = serve(|_req| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        ok("ok")
    });
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("run.json");
    let child = support::sonde()
        .args([
            "run",
            "--url",
            &format!("http://{addr}/"),
            "--vus",
            "2",
            "--duration",
            "60s",
            "-q",
            "--out",
            out_file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("INTERRUPTED"));
    let v: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["schema"], "sonde.run/v1");
    let requests = v["http"]["requests"].as_u64().unwrap();
    assert!(requests > 20, "{requests}");
    assert!(v["duration_s"].as_f64().unwrap() < 10.0);
}

#[test]
fn credentials_in_the_target_url_never_print() {
    let addr = serve(|_req| async { ok("ok") });
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("run.json");
    let url = format!("http://canaryuser:CanaryPassword@{addr}/?access_token=CanaryToken");
    let out = sonde(&[
        "run",
        "--url",
        &url,
        "--iterations",
        "2",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&out_file).unwrap()
    )
    .to_lowercase();
    assert!(
        !all.contains("canarypassword") && !all.contains("canarytoken"),
        "{all}"
    );
}

#[test]
fn the_target_line_of_a_url_run_keeps_its_path_and_query_redacted() {
    let addr = serve(|_req| async { ok("ok") });
    let url = format!("http://{addr}/api/startups?page=2&access_token=CanaryToken");
    let out = sonde(&["run", "--url", &url, "--iterations", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("target "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!("http://{addr}/api/startups?page=2&access_token=")),
        "{line}"
    );
    assert!(!line.contains("CanaryToken"), "{line}");
}

//! Honest accounting and run control through the real binary against real servers on
//! 127.0.0.1: hangs and cuts are counted, failures' latency is apart, `--url` takes what a
//! scenario takes, SIGTERM writes results, outputs are checked first, failing servers are not
//! hammered.

use crate::support::{self, bounded, empty, full, response};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

async fn sonde(args: &[&str]) -> Out {
    let t = Instant::now();
    let out = bounded(
        Duration::from_secs(60),
        Command::from(support::sonde())
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t.elapsed(),
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A server whose handler gets each request's number (from 0), counting them.
async fn numbered<F, Fut>(answer: F) -> (support::Server, Arc<AtomicU64>)
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<support::Body>> + Send + 'static,
{
    let n = Arc::new(AtomicU64::new(0));
    let c = n.clone();
    let srv = support::spawn(move |_req| {
        let i = c.fetch_add(1, Ordering::SeqCst);
        answer(i)
    })
    .await;
    (srv, n)
}

/// A server answering 200 at once, counting requests.
async fn counting() -> (support::Server, Arc<AtomicU64>) {
    numbered(|_| async { response(200, full("ok")) }).await
}

/// `sonde run ARGS -o run.json`: the outcome and the written result.
async fn run_json(args: &[&str]) -> (Out, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", out.to_str().unwrap()]);
    let r = sonde(&all).await;
    let j = std::fs::read_to_string(&out)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (r, j)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_a_failed_run_with_every_cut_request_counted() {
    let srv = support::never_answers().await;
    let url = srv.url("/").to_string();
    let args = [
        "--url",
        &url,
        "--vus",
        "2",
        "-z",
        "1s",
        "--graceful-stop",
        "1s",
        "-q",
    ];
    let (r, j) = run_json(&args).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("got a response"), "{}", r.stderr);
    assert!(r.stdout.contains("still in flight"), "{}", r.stdout);
    assert!(r.took < Duration::from_secs(10), "{:?}", r.took);
    assert_eq!(j["cut_requests"], 2, "{j}");
    assert_eq!(j["http"]["errors"], 2);
    assert_eq!(j["http"]["error_classes"]["cancelled"], 2);
    assert_eq!(j["http"]["failed_latency"]["count"], 2);
    // Each had waited the whole run and its grace: about 2 s, not nothing.
    assert!(j["http"]["failed_latency"]["min_ms"].as_f64().unwrap() >= 1900.0);
    assert_eq!(j["http"]["latency"]["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hanging_request_in_fifty_is_counted_not_discarded() {
    let (srv, n) = numbered(|i| async move {
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        response(200, full("ok"))
    })
    .await;
    let url = srv.url("/").to_string();
    let args = [
        "--url",
        &url,
        "--vus",
        "2",
        "-z",
        "1s",
        "--graceful-stop",
        "500ms",
        "-q",
    ];
    let (r, j) = run_json(&args).await;
    assert_eq!(
        r.code, 1,
        "a hung request fails the gate\n{}{}",
        r.stdout, r.stderr
    );
    let cut = j["cut_requests"].as_u64().unwrap();
    assert!(cut >= 1, "{j}");
    assert_eq!(j["http"]["error_classes"]["cancelled"].as_u64(), Some(cut));
    assert_eq!(j["http"]["errors"].as_u64(), Some(cut));
    let ok = j["http"]["statuses"]["200"].as_u64().unwrap();
    // Every request the server saw is either answered or counted as cut.
    assert_eq!(ok + cut, n.load(Ordering::SeqCst), "{j}");
    assert_eq!(j["http"]["requests"].as_u64(), Some(ok + cut));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_latency_is_kept_apart_from_the_percentiles() {
    let (srv, _) = numbered(|i| async move {
        if i % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return response(500, full("slow failure"));
        }
        response(200, full("ok"))
    })
    .await;
    let url = srv.url("/").to_string();
    let (r, j) = run_json(&["--url", &url, "-n", "8", "-q"]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let ok = &j["steps"][0]["latency"];
    let failed = &j["steps"][0]["failed_latency"];
    assert_eq!(ok["count"], 4, "{j}");
    assert_eq!(failed["count"], 4, "{j}");
    assert!(ok["max_ms"].as_f64().unwrap() < 250.0, "{j}");
    assert!(failed["min_ms"].as_f64().unwrap() >= 290.0, "{j}");
    assert!(r.stdout.contains("failed requests apart"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_mode_applies_thresholds_and_the_same_limits_as_a_scenario() {
    let (srv, n) = counting().await;
    let url = srv.url("/").to_string();
    // A threshold no request can meet fails the gate; one they all meet passes.
    for (threshold, code, says) in [
        ("request: p(95) < 0.001ms", 1, "FAIL"),
        ("http: error_rate < 1%", 0, "pass"),
    ] {
        let args = [
            "run",
            "--url",
            &url,
            "-n",
            "3",
            "-q",
            "--threshold",
            threshold,
        ];
        let r = sonde(&args).await;
        assert_eq!(r.code, code, "{threshold}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(says), "{threshold}: {}", r.stdout);
    }
    let sent = n.load(Ordering::SeqCst);
    for bad in [
        &["--threshold", "nonsense"][..],
        &["--threshold", "nostep: p(95) < 1ms"],
        &["--rate", "0/s", "-z", "1s"],
        &["--rate", "5000000/s", "-z", "1s"],
        &["--rate", "5/s", "--max-vus", "0", "-z", "1s"],
        &["--vus", "0"],
        &["--vus", "100001"],
        &["--duration", "0s"],
        &["-z", "720h"],
        &["--graceful-stop", "2h", "-n", "1"],
    ] {
        let mut args = vec!["run", "--url", url.as_str(), "-q"];
        args.extend_from_slice(bad);
        let r = sonde(&args).await;
        assert_eq!(r.code, 2, "{bad:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.starts_with("error: "), "{bad:?}: {}", r.stderr);
    }
    assert_eq!(
        n.load(Ordering::SeqCst),
        sent,
        "invalid input sent requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_output_paths_fail_before_the_first_request() {
    let (srv, n) = counting().await;
    let dir = tempfile::tempdir().unwrap();
    let url = srv.url("/").to_string();
    let missing = dir.path().join("no/such/dir/run.json");
    let pdf = dir.path().join("report.pdf");
    for (out, says) in [
        (dir.path().to_str().unwrap(), "is a directory"),
        (missing.to_str().unwrap(), "does not exist"),
        ("/proc/sonde-run.json", "cannot create a file"),
        (pdf.to_str().unwrap(), "unknown report format `pdf`"),
    ] {
        let r = sonde(&["run", "--url", &url, "-z", "5s", "-q", "-o", out]).await;
        assert_eq!(r.code, 2, "{out}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(says), "{out}: {}", r.stderr);
        assert!(r.took < Duration::from_secs(3), "{out}: {:?}", r.took);
    }
    assert_eq!(n.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_like_ctrl_c_and_writes_every_output() {
    let (srv, n) = counting().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let junit = dir.path().join("junit.xml");
    let url = srv.url("/").to_string();
    let child = Command::from(support::sonde())
        .args([
            "run",
            "--url",
            &url,
            "--vus",
            "2",
            "-z",
            "30s",
            "-q",
            "-o",
            out.to_str().unwrap(),
            "-o",
            junit.to_str().unwrap(),
        ])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    // Signal once the load is running.
    bounded(Duration::from_secs(20), async {
        while n.load(Ordering::SeqCst) < 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let t = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let r = bounded(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&r.stderr).contains("SIGTERM"));
    let j = json(&out);
    assert_eq!(j["interrupted"], true);
    assert!(j["http"]["requests"].as_u64().unwrap() >= 10);
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuite")
    );

    // A second signal quits at once, even with requests hanging.
    let hang = support::never_answers().await;
    let hang_url = hang.url("/").to_string();
    let child = Command::from(support::sonde())
        .args(["run", "--url", &hang_url, "--vus", "1", "-z", "30s", "-q"])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    for _ in 0..2 {
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = bounded(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap();
    assert_eq!(r.status.code(), Some(143));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_stops_the_run_early_without_a_connection_storm() {
    let port = support::closed_port().await;
    let url = format!("http://127.0.0.1:{port}/");
    let (r, j) = run_json(&["--url", &url, "--vus", "5", "-z", "20s", "-q"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("stopped after"), "{}", r.stdout);
    assert!(r.took < Duration::from_secs(8), "{:?}", r.took);
    let attempts = j["http"]["requests"].as_u64().unwrap();
    // 5 VUs backing off (10 ms doubling to 1 s) for about 2 s: tens of attempts, not 50,000.
    assert!((5..=300).contains(&attempts), "{attempts}");
}

/// 429 with the given `Retry-After`, counting requests.
async fn rate_limited(retry_after: Option<String>) -> (support::Server, Arc<AtomicU64>) {
    numbered(move |_| {
        let ra = retry_after.clone();
        async move {
            let mut r = response(429, empty());
            if let Some(v) = ra {
                r.headers_mut().insert("retry-after", v.parse().unwrap());
            }
            r
        }
    })
    .await
}

/// Runs one VU against `retry_after` for `duration`; how many requests the server saw.
async fn sent_with(retry_after: &str, duration: &str, extra: &[&str]) -> u64 {
    let (srv, n) = rate_limited(Some(retry_after.to_string())).await;
    let url = srv.url("/").to_string();
    let mut args = vec![
        "run",
        "--url",
        url.as_str(),
        "--vus",
        "1",
        "-z",
        duration,
        "-q",
    ];
    args.extend_from_slice(extra);
    sonde(&args).await;
    n.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_their_own_class_and_retry_after_is_honoured() {
    // Seconds: 2 VUs for 2 s with Retry-After: 1 send about 2 requests each.
    let (srv, n) = rate_limited(Some("1".into())).await;
    let url = srv.url("/").to_string();
    let (r, j) = run_json(&["--url", &url, "--vus", "2", "-z", "2s", "-q"]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let sent = n.load(Ordering::SeqCst);
    assert!((2..=6).contains(&sent), "{sent}");
    let classes = &j["http"]["error_classes"];
    assert_eq!(classes["rate_limited"].as_u64(), Some(sent), "{j}");
    assert!(j["rate_limit_wait_s"].as_f64().unwrap() >= 2.0, "{j}");
    assert!(r.stdout.contains("Retry-After"), "{}", r.stdout);

    // An HTTP-date at least two seconds past the run's end: one request, then the wait.
    let at = std::time::SystemTime::now() + Duration::from_secs(4);
    assert_eq!(
        sent_with(&httpdate::fmt_http_date(at), "1500ms", &[]).await,
        1
    );
    // Garbage means absent: the VU still backs off (exponentially), it does not hammer.
    let garbage = sent_with("soon", "1s", &[]).await;
    assert!(garbage <= 20, "{garbage}");
    // A deliberate rate-limit test turns it off.
    let ignored = sent_with("1", "1s", &["--ignore-retry-after"]).await;
    assert!(ignored > 50, "{ignored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_delimited_by_close_is_noted_as_unverifiable() {
    use tokio::io::AsyncWriteExt as _;
    let srv = support::spawn_raw(|mut s| async move {
        support::read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nno length here")
            .await;
        let _ = s.shutdown().await;
    })
    .await;
    let url = srv.url("/").to_string();
    let (r, j) = run_json(&["--url", &url, "-n", "2"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("a truncated body cannot be detected"),
        "{}",
        r.stdout
    );
    assert_eq!(j["steps"][0]["close_delimited"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_var_doubling_a_setup_capture_past_the_limit_fails_setup_by_name() {
    let (srv, n) = numbered(|_| async {
        let big = "x".repeat(600 * 1024);
        response(200, full(format!("{{\"v\":\"{big}\"}}")))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    std::fs::write(
        &file,
        format!(
            "name: big\ntarget: {}\nsetup:\n  - name: grab\n    request: {{ url: /v }}\n    \
             capture: {{ v: \"$.v\" }}\nenv:\n  e:\n    vars: {{ twice: \"{{{{v}}}}{{{{v}}}}\" }}\n\
             steps:\n  - name: use\n    request: {{ url: \"/u?q={{{{twice}}}}\" }}\n",
            srv.url("").as_str().trim_end_matches('/')
        ),
    )
    .unwrap();
    let r = sonde(&["run", file.to_str().unwrap(), "-q"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("env var `twice`"), "{}", r.stderr);
    assert!(r.stderr.contains("1 MiB"), "{}", r.stderr);
    // Only the setup request was sent.
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakdown_of_requests_that_all_failed_says_so_instead_of_phases() {
    let port = support::closed_port().await;
    let url = format!("http://127.0.0.1:{port}/");
    let r = sonde(&["breakdown", &url, "-n", "2", "--connection", "new", "-q"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no response"), "{}", r.stdout);
    assert!(r.stdout.contains("connection refused"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("┆ wait "),
        "phases of failures shown:\n{}",
        r.stdout
    );
}

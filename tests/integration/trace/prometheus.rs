//! `--out prometheus=URL` against a REAL Prometheus (Debian's `prometheus` package, started
//! here on 127.0.0.1 with `--web.enable-remote-write-receiver` and a temporary storage dir):
//! after a run, Prometheus's HTTP API holds series whose totals equal the run result's counts
//! exactly and whose pushed p99 equals the result's p99. A dead receiver costs a warning, never
//! the run; a receiver on a host not allowed is refused before anything is sent.
//!
//! Without the `prometheus` binary the test is skipped loudly, and fails under `CI=true`
//! (`.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_binary() -> Option<&'static str> {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("prometheus");
    }
    let msg = "\n\n!!!!! SKIPPED: the `prometheus` binary is not installed; remote write was NOT \
               checked against a real Prometheus (apt-get install -y prometheus, as .ci/run \
               does) !!!!!\n\n";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}(CI=true: a skipped Prometheus test is a failure)");
    }
    eprintln!("{msg}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.0 GET (no chunking); (status, body).
fn get(port: u16, target: &str) -> Option<(u16, String)> {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(c, "GET {target} HTTP/1.0\r\nhost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn start_prometheus(bin: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Prometheus {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/-/ready").is_none_or(|(s, _)| s != 200) {
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

/// An instant query's result vector.
fn query(port: u16, promql: &str) -> Vec<Value> {
    let q: String = url::form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let (status, body) = get(port, &format!("/api/v1/query?query={q}")).unwrap();
    assert_eq!(status, 200, "{promql}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().unwrap().clone()
}

fn one(port: u16, promql: &str) -> f64 {
    let r = query(port, promql);
    assert_eq!(r.len(), 1, "{promql}: {r:#?}");
    r[0]["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_in_a_real_prometheus_equal_the_run_result() {
    let Some(bin) = prometheus_binary() else {
        return;
    };
    let prom = start_prometheus(bin);
    // Latency varies (0-9 ms); every 7th request fails with 500.
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = support::spawn(move |_req| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            tokio::time::sleep(Duration::from_millis(n % 10)).await;
            let status = if n % 7 == 3 { 500 } else { 200 };
            support::response(status, support::full("ok"))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let url = server.url("/x").to_string();
    let prom_port = prom.port;
    let out = tokio::task::spawn_blocking({
        let json = json.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_sonde"))
                .args(["run", "--url", &url, "--vus", "2", "--duration", "3s", "-q"])
                .arg("--out")
                .arg(format!(
                    "prometheus=http://127.0.0.1:{prom_port}/api/v1/write"
                ))
                .arg("--out")
                .arg(&json)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Failed requests make the run exit 1 (no thresholds: every request must pass).
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("prometheus"), "no push warning: {stderr}");
    // The table names the first failures of each class, with their trace ids.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout
        .split("first failures (per step and class)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    let lines: Vec<&str> = first.lines().take_while(|l| l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 3, "the first 3 of class status_5xx: {stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("500 status_5xx") && l.contains("trace ")),
        "{stdout}"
    );
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let note = result["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|n| n.contains("Prometheus remote write"))
        .unwrap_or_else(|| panic!("no push note: {result:#}"))
        .to_string();
    let run_id = note
        .split("run_id=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"');
    let sel = format!("run_id=\"{run_id}\",step=\"request\",scenario=\"url\"");
    let step = &result["steps"][0];
    let requests = step["requests"].as_u64().unwrap();
    assert!(requests > 50, "{requests}");
    assert_eq!(
        one(prom.port, &format!("sonde_requests_total{{{sel}}}")),
        requests as f64
    );
    let errors = step["error_classes"]["status_5xx"].as_u64().unwrap();
    assert!(errors > 0);
    assert_eq!(
        one(
            prom.port,
            &format!("sonde_errors_total{{{sel},class=\"status_5xx\"}}")
        ),
        errors as f64
    );
    assert_eq!(
        one(
            prom.port,
            &format!("sonde_request_duration_seconds_count{{{sel}}}")
        ),
        step["latency"]["count"].as_u64().unwrap() as f64
    );
    assert_eq!(
        one(
            prom.port,
            &format!("sonde_request_duration_seconds_bucket{{{sel},le=\"+Inf\"}}")
        ),
        step["latency"]["count"].as_u64().unwrap() as f64
    );
    assert_eq!(
        one(
            prom.port,
            &format!("sonde_iterations_total{{run_id=\"{run_id}\"}}")
        ),
        result["iterations"]["count"].as_u64().unwrap() as f64
    );
    let p99 = one(
        prom.port,
        &format!("sonde_request_duration_quantile_seconds{{{sel},quantile=\"0.99\"}}"),
    );
    let want = step["latency"]["p99_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        (p99 - want).abs() < 1e-9,
        "pushed p99 {p99} vs result {want}"
    );
    assert_eq!(
        one(prom.port, &format!("sonde_vus{{run_id=\"{run_id}\"}}")),
        2.0
    );
    // Pushed during the run, every second, not only at the end.
    let samples = one(
        prom.port,
        &format!("count_over_time(sonde_requests_total{{{sel}}}[10m])"),
    );
    assert!(samples >= 3.0, "{samples} samples");

    // Every panel of the Grafana dashboard (deploy/grafana) is a valid query that finds this
    // run's series, with the dashboard's variables set to this run.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/sonde-dashboard.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$scenario", "url")
                .replace("$env", ".*")
                .replace("$run_id", run_id);
            let r = query(prom.port, &expr);
            assert!(
                !r.is_empty(),
                "panel {}: {expr} found nothing",
                panel["title"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked}");
}

#[test]
fn a_dead_receiver_costs_a_warning_never_the_run() {
    let dead = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["run", "--url", "http://127.0.0.1:1/"])
        .args(["-n", "1", "-q", "--format", "json"])
        .arg("--out")
        .arg(format!("prometheus=http://127.0.0.1:{dead}/api/v1/write"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The target is down too (exit 3, as without --out); the push failure is only a warning.
    let plain = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["run", "--url", "http://127.0.0.1:1/", "-n", "1", "-q"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), plain.status.code(), "{stderr}");
    assert!(
        stderr.contains("warning: prometheus:") && stderr.contains("failed"),
        "{stderr}"
    );
    assert!(
        stdout.contains("\"schema\""),
        "the result is still printed: {stdout}"
    );
}

/// (A receiver on a host not allowed is refused before anything is sent:
/// `hostile::allowlist::a_prometheus_receiver_on_a_host_not_named_gets_nothing`, inside a
/// private network namespace.)
#[test]
fn an_unknown_remote_output_is_refused() {
    let bad = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["run", "--url", "http://127.0.0.1:1/", "-n", "1", "-q"])
        .args(["--out", "graphite=http://127.0.0.1:1/"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown output `graphite`"), "{stderr}");
}

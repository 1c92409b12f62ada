//! `sonde breakdown` end to end, through the binary, against real servers on 127.0.0.1:0:
//! phase timing of a dripping server, Server-Timing parsing, TLS on new vs reused connections,
//! and the demo's slow profile named in the verdict (and not named without the fault).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

async fn breakdown(args: Vec<String>) -> (i32, Value, String) {
    // The servers run on this test's runtime; the binary runs beside it on a blocking thread.
    let run = tokio::task::spawn_blocking(move || {
        support::sonde()
            .arg("breakdown")
            .args(&args)
            .args(["--format", "json"])
            .stdin(Stdio::null())
            .output()
    });
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("breakdown finished in time")
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn phase(v: &Value, pass: usize, step: usize, phase: &str) -> f64 {
    v["passes"][pass]["steps"][step]["phases"][phase]["p50"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {phase} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_and_receive_match_a_dripping_server() {
    let server = support::drip(Duration::from_millis(200), Duration::from_millis(300), 10).await;
    let (code, v, err) = breakdown(vec![
        server.url("/").to_string(),
        "-n".into(),
        "3".into(),
        "--connection".into(),
        "reuse".into(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let wait = phase(&v, 0, 0, "wait");
    let receive = phase(&v, 0, 0, "receive");
    assert!(
        (180.0..=220.0).contains(&wait),
        "wait {wait} ms, want 200 ± 10%"
    );
    assert!(
        (270.0..=330.0).contains(&receive),
        "receive {receive} ms, want 300 ± 10%"
    );
    assert!(phase(&v, 0, 0, "connect") < 5.0);
    assert_eq!(phase(&v, 0, 0, "dns"), 0.0, "an IP literal needs no DNS");
    let share = v["passes"][0]["steps"][0]["phases"]["wait"]["share"]
        .as_f64()
        .unwrap();
    assert!(
        (0.3..=0.5).contains(&share),
        "wait is ~40% of the total, got {share}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_timing_is_parsed_per_metric_and_malformed_entries_are_noted() {
    let server =
        support::server_timing("db;dur=150, cache;desc=\"hit\";dur=2, ;;=, broken;dur=abc").await;
    let (code, v, err) = breakdown(vec![
        server.url("/").to_string(),
        "-n".into(),
        "2".into(),
        "--connection".into(),
        "new".into(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let st = &v["passes"][0]["steps"][0]["server_timing"];
    assert_eq!(st["db"]["p50"], 150.0);
    assert_eq!(st["cache"]["p50"], 2.0);
    let notes = v["notes"].to_string();
    assert!(notes.contains("malformed Server-Timing"), "{notes}");
    // network + queueing = wait − the server's own total (sum of its parts, 152 ms); the test
    // server answers at once, so it is negative by about that much: the number is derived, not
    // invented.
    let nq = v["passes"][0]["steps"][0]["network_queueing"]["p50"]
        .as_f64()
        .unwrap();
    let wait = phase(&v, 0, 0, "wait");
    assert!((nq - (wait - 152.0)).abs() < 1.0, "{nq} vs {wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_shows_on_new_connections_only() {
    let server = support::spawn_tls(false, |_req| async {
        support::response(200, support::full("ok"))
    })
    .await;
    let ca = server.ca_pem.clone().unwrap();
    let (code, v, err) = breakdown(vec![
        server.localhost_url("/").to_string(),
        "-n".into(),
        "4".into(),
        "--cacert".into(),
        ca.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let passes = v["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 2, "--connection both is the default");
    assert_eq!(passes[0]["connection"], "new");
    assert!(phase(&v, 0, 0, "tls") > 0.0);
    assert!(phase(&v, 0, 0, "dns") > 0.0, "localhost is resolved");
    assert_eq!(passes[0]["steps"][0]["reused"], 0);
    assert!(
        passes[0]["steps"][0]["tls_resumed"].as_u64().unwrap() > 0,
        "the server resumes sessions"
    );
    assert_eq!(passes[1]["connection"], "reuse");
    assert_eq!(phase(&v, 1, 0, "tls"), 0.0);
    assert_eq!(passes[1]["steps"][0]["reused"], 4);
    assert_eq!(v["insecure"], false);
}

fn scenario_with_faults(dir: &std::path::Path, faults: &str) -> String {
    let src = std::fs::read_to_string("scenarios/profile-load.yaml").unwrap();
    let src = src.replace("demo_faults: []", &format!("demo_faults: [{faults}]"));
    assert!(src.contains(&format!("demo_faults: [{faults}]")));
    let p = dir.join("profile-load.yaml");
    std::fs::write(&p, src).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_profile_is_named_in_the_verdict_only_with_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let args = |path: String| {
        vec![
            path,
            "--as".into(),
            "whale".into(),
            "--vs".into(),
            "typical".into(),
            "-n".into(),
            "10".into(),
            "--connection".into(),
            "reuse".into(),
        ]
    };
    let (code, v, err) = breakdown(args(scenario_with_faults(dir.path(), "slow-profile"))).await;
    assert_eq!(code, 0, "{err}");
    let c = &v["comparisons"][0];
    assert_eq!(c["culprit"]["step"], "profile", "{c}");
    assert_eq!(c["culprit"]["phase"], "wait");
    assert_eq!(c["culprit"]["server_timing"], "db");
    assert!(c["culprit"]["p"].as_f64().unwrap() < 0.001);
    let verdict = c["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("profile is ") && verdict.contains("slower for whale"),
        "{verdict}"
    );
    assert!(
        verdict.contains("wait +") && verdict.contains("of which db +"),
        "{verdict}"
    );

    let (code, v, err) = breakdown(args(scenario_with_faults(dir.path(), ""))).await;
    assert_eq!(code, 0, "{err}");
    let c = &v["comparisons"][0];
    assert!(c["culprit"].is_null(), "{c}");
    assert!(
        c["verdict"]
            .as_str()
            .unwrap()
            .starts_with("no significant difference")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curl_file_is_a_target_and_its_secrets_stay_out_of_the_output() {
    let server = support::server_timing("db;dur=3").await;
    let dir = tempfile::tempdir().unwrap();
    let curl = dir.path().join("request.curl");
    std::fs::write(
        &curl,
        format!(
            "curl '{}?access_token=CanarySecretQ' \\\n  -H 'Authorization: Bearer CanarySecretA' \\\n  -b 'session=CanarySecretC' \\\n  -H 'Accept-Language: de-DE'\n",
            server.url("/profile")
        ),
    )
    .unwrap();
    let (code, v, err) = breakdown(vec![curl.display().to_string(), "-n".into(), "2".into()]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        v["passes"][0]["steps"][0]["server_timing"]["db"]["p50"],
        3.0
    );
    let all = format!("{v}{err}").to_lowercase();
    assert!(!all.contains("canarysecret"), "a secret leaked: {all}");
}

/// `--out run.json` carries the median iteration's waterfall (a sequential step, then a
/// parallel pair whose slower request is the critical path), and `sonde report` draws it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_result_keeps_the_median_waterfall_and_the_html_report_draws_it() {
    let server = support::spawn(|req: hyper::Request<hyper::body::Incoming>| async move {
        let ms = if req.uri().path() == "/slow" { 80 } else { 5 };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        support::response(200, support::full("ok"))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("page.yaml");
    std::fs::write(
        &scenario,
        "name: page\ntarget: http://127.0.0.1:1\nload: { vus: 1, iterations: 1 }\nsteps:\n  \
         - name: page\n    request: { url: /page }\n  - parallel:\n      \
         - name: fast\n        request: { url: /fast }\n      \
         - name: slow\n        request: { url: /slow }\n",
    )
    .unwrap();
    let run_json = dir.path().join("run.json");
    let (code, _, err) = breakdown(vec![
        scenario.display().to_string(),
        "--target".into(),
        server.url("/").to_string(),
        "-n".into(),
        "3".into(),
        "--connection".into(),
        "reuse".into(),
        "--out".into(),
        run_json.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    let wf = v["waterfalls"].as_array().unwrap();
    assert_eq!(wf.len(), 1, "one connection mode, one waterfall");
    assert_eq!(wf[0]["connection"], "reuse");
    assert_eq!(wf[0]["iterations"], 3);
    let reqs = wf[0]["requests"].as_array().unwrap();
    let req = |n: &str| reqs.iter().find(|r| r["step"] == n).unwrap();
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0]["step"], "page", "in start order");
    assert!(req("page")["critical"].as_bool().unwrap());
    assert!(req("slow")["critical"].as_bool().unwrap());
    assert!(!req("fast")["critical"].as_bool().unwrap(), "{wf:?}");
    assert!(f(req("slow"), "wait_ms") >= 75.0, "{wf:?}");
    // The pair starts after the page and overlaps: both begin before either ends.
    let page_end = f(req("page"), "offset_ms") + f(req("page"), "total_ms");
    for n in ["fast", "slow"] {
        assert!(f(req(n), "offset_ms") >= page_end - 0.01, "{wf:?}");
    }
    assert!(f(req("slow"), "offset_ms") < f(req("fast"), "offset_ms") + f(req("fast"), "total_ms"));
    assert!(f(&wf[0], "total_ms") >= f(req("slow"), "offset_ms") + f(req("slow"), "total_ms"));

    let html = dir.path().join("report.html");
    let out = support::sonde()
        .arg("report")
        .arg(&run_json)
        .args(["--format", "html", "-o"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&html).unwrap();
    let chart = html
        .split("data-chart=\"waterfall-reuse\"")
        .nth(1)
        .expect("the waterfall chart is in the report")
        .split("</svg>")
        .next()
        .unwrap();
    assert_eq!(chart.matches("class=\"critical\"").count(), 2, "{chart}");
    assert!(chart.contains(">slow: wait "), "{chart}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_on_a_terminal_only_and_not_with_quiet() {
    let server = support::spawn(|_req| async { support::response(200, support::full("ok")) }).await;
    let url = server.url("/").to_string();
    let bin = env!("CARGO_BIN_EXE_sonde");
    // On a pseudo-terminal (util-linux `script`) with and without -q; piped below.
    let u = url.clone();
    let tty = move |quiet: bool| {
        let inner = format!(
            "exec '{bin}' breakdown '{u}' -n 3 {} >/dev/null",
            if quiet { "-q" } else { "" }
        );
        std::process::Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .output()
    };
    let (loud, quiet) = tokio::task::spawn_blocking(move || (tty(false), tty(true)))
        .await
        .unwrap();
    let (Ok(loud), Ok(quiet)) = (loud, quiet) else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    let loud = String::from_utf8_lossy(&loud.stdout);
    assert!(
        loud.contains("breakdown: connections new · default 2/3")
            || loud.contains("breakdown: connections reuse · default 2/3"),
        "{loud}"
    );
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains("breakdown: connections"));
    let (code, _, err) = breakdown(vec![url, "-n".into(), "2".into()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("breakdown: connections"), "piped: {err}");
}

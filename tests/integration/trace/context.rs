//! W3C trace context as a real server on 127.0.0.1 receives it: every request carries one
//! version-00 `traceparent` (a fresh trace id per iteration, a span id per request, sampled),
//! prebuilt and rendered requests alike, redirect hops too; `tracestate` goes through
//! untouched; `--no-trace-context` and `http.trace_context: false` turn it off; a
//! `traceparent` the scenario sets wins. The run's exemplars name the trace ids the server
//! saw and the request id it returned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// One request as the server saw it: path, every `traceparent`, every `tracestate`.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    traceparent: Vec<String>,
    tracestate: Vec<String>,
}

/// A server recording each request; `/r` redirects to `/a`; each answer carries an
/// `X-Request-Id` (`req-N`).
async fn recording() -> (support::Server, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let s2 = seen.clone();
    let server = support::spawn(move |req: hyper::Request<hyper::body::Incoming>| {
        let seen = s2.clone();
        async move {
            let all = |name: &str| {
                req.headers()
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            };
            let n = {
                let mut s = seen.lock().unwrap();
                s.push(Seen {
                    path: req.uri().path().to_string(),
                    traceparent: all("traceparent"),
                    tracestate: all("tracestate"),
                });
                s.len()
            };
            let mut resp = if req.uri().path() == "/r" {
                support::redirect_to("/a".into())
            } else {
                support::response(200, support::full("ok"))
            };
            resp.headers_mut()
                .insert("x-request-id", format!("req-{n}").parse().unwrap());
            resp.headers_mut()
                .insert("x-correlation-id", format!("corr-{n}").parse().unwrap());
            resp
        }
    })
    .await;
    (server, seen)
}

fn run(scenario: &str, port: u16, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yaml");
    std::fs::write(&path, scenario).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .arg("run")
        .arg(&path)
        .args(["--target", &format!("http://127.0.0.1:{port}")])
        .args(["--vus", "1", "--iterations", "3", "--format", "json", "-q"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

const THREE_STEPS: &str = r#"name: traced
steps:
  - name: plain
    request: { url: /a }
  - name: rendered
    request: { url: "/b?i={{iteration}}" }
  - name: stated
    request:
      url: /c
      headers: { tracestate: "vendor=opaque,other=1" }
  - name: hop
    request: { url: /r }
"#;

fn parts(tp: &str) -> (String, String, String) {
    let re = regex::Regex::new(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$").unwrap();
    let c = re
        .captures(tp)
        .unwrap_or_else(|| panic!("not a version-00 sampled traceparent: {tp:?}"));
    assert_ne!(&c[1], "00000000000000000000000000000000");
    assert_ne!(&c[2], "0000000000000000");
    (c[1].to_string(), c[2].to_string(), tp.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_a_traceparent_one_trace_per_iteration() {
    let (server, seen) = recording().await;
    let port = server.port();
    let result = tokio::task::spawn_blocking(move || run(THREE_STEPS, port, &[]))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    // 3 iterations × (a, b, c, r → a).
    assert_eq!(seen.len(), 15, "{seen:#?}");
    let mut spans = BTreeSet::new();
    let mut traces = Vec::new();
    for iteration in seen.chunks(5) {
        let paths: Vec<&str> = iteration.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/a", "/b", "/c", "/r", "/a"]);
        let mut ids = BTreeSet::new();
        for s in iteration {
            assert_eq!(s.traceparent.len(), 1, "exactly one traceparent: {s:?}");
            let (trace, span, _) = parts(&s.traceparent[0]);
            ids.insert(trace);
            spans.insert(span);
        }
        assert_eq!(ids.len(), 1, "one trace id per iteration: {iteration:#?}");
        traces.extend(ids);
        // tracestate: only where the scenario set it, byte for byte.
        assert_eq!(iteration[2].tracestate, ["vendor=opaque,other=1"]);
        assert!(iteration[0].tracestate.is_empty());
    }
    // The redirect hop carries the request's own header; every other request a new span.
    assert_eq!(spans.len(), 12, "a span id per request");
    let distinct: BTreeSet<&String> = traces.iter().collect();
    assert_eq!(distinct.len(), 3, "a fresh trace id per iteration");

    // The exemplars name trace ids the server saw, and the request id it returned.
    let server_traces: BTreeSet<String> = traces.iter().cloned().collect();
    let mut named = 0;
    for step in result["steps"].as_array().unwrap() {
        let ex = &step["exemplars"];
        assert_eq!(ex["limit"], 5, "{step}");
        let slowest = ex["slowest"].as_array().unwrap();
        assert_eq!(slowest.len(), 3, "3 requests, all kept: {step}");
        for e in slowest {
            assert_eq!(e["step"], step["name"]);
            let t = e["trace_id"].as_str().unwrap();
            assert!(server_traces.contains(t), "{t} not among {server_traces:?}");
            let rid = e["request_id"].as_str().unwrap();
            assert!(rid.starts_with("req-"), "{e}");
            assert_eq!(e["status"], 200);
            assert!(e["latency_ms"].as_f64().unwrap() > 0.0);
            named += 1;
        }
    }
    assert_eq!(named, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_can_be_turned_off_by_flag_or_scenario() {
    let (server, seen) = recording().await;
    let port = server.port();
    let r = tokio::task::spawn_blocking(move || run(THREE_STEPS, port, &["--no-trace-context"]))
        .await
        .unwrap();
    let off = THREE_STEPS.replace(
        "name: traced\n",
        "name: traced\nhttp:\n  trace_context: false\n",
    );
    tokio::task::spawn_blocking(move || run(&off, port, &[]))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 30);
    for s in &seen {
        assert!(s.traceparent.is_empty(), "{s:?}");
    }
    assert_eq!(seen[2].tracestate, ["vendor=opaque,other=1"]);
    // Exemplars are still kept, without a trace id.
    let e = &r["steps"][0]["exemplars"]["slowest"][0];
    assert!(e.get("trace_id").is_none(), "{e}");
    assert!(e["request_id"].as_str().unwrap().starts_with("req-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_the_scenario_sets_wins() {
    let (server, seen) = recording().await;
    let port = server.port();
    let mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let scenario = format!(
        r#"name: repro
env:
  default:
    headers: {{ TraceParent: "{mine}" }}
steps:
  - name: a
    request: {{ url: /a }}
  - name: b
    request:
      url: "/b?i={{{{iteration}}}}"
"#
    );
    tokio::task::spawn_blocking(move || run(&scenario, port, &[]))
        .await
        .unwrap();
    // And on the one-URL command line.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sonde"))
            .args(["run", "--url", &format!("http://127.0.0.1:{port}/u")])
            .args([
                "-H",
                "traceparent: 00-11111111111111111111111111111111-2222222222222222-01",
            ])
            .args(["-n", "2", "--vus", "1", "-q"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // `-v` shows the request as sent: the trace context too, not hidden as a secret.
    let verbose = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sonde"))
            .args(["run", "--url", &format!("http://127.0.0.1:{port}/v")])
            .args(["-n", "1", "-q", "-v"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&verbose.stderr);
    let shown = err
        .lines()
        .find_map(|l| l.strip_prefix("> traceparent: "))
        .unwrap_or_else(|| panic!("{err}"));
    let seen = seen.lock().unwrap().clone();
    let sent_v = seen.iter().find(|s| s.path == "/v").unwrap();
    assert_eq!([shown.to_string()], *sent_v.traceparent.as_slice(), "{err}");
    let seen: Vec<Seen> = seen.into_iter().filter(|s| s.path != "/v").collect();
    let by_path: BTreeMap<&str, Vec<&Vec<String>>> =
        seen.iter().fold(BTreeMap::new(), |mut m, s| {
            m.entry(s.path.as_str()).or_default().push(&s.traceparent);
            m
        });
    assert_eq!(by_path["/a"].len(), 3);
    for tp in by_path["/a"].iter().chain(by_path["/b"].iter()) {
        assert_eq!(**tp, [mine.to_string()]);
    }
    for tp in &by_path["/u"] {
        assert_eq!(
            **tp,
            ["00-11111111111111111111111111111111-2222222222222222-01".to_string()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakdown_names_the_slowest_iterations_trace_ids() {
    let (server, seen) = recording().await;
    let url = server.url("/a").to_string();
    let json = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_sonde"))
                .args(["breakdown", &url, "-n", "3", "--connection", "reuse"])
                .args(["--format", "json"])
                .stdin(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    let slowest = &v["passes"][0]["slowest_iteration"];
    let ids: Vec<&str> = slowest["trace_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one request, one trace: {slowest}");
    let sent: BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| parts(&s.traceparent[0]).0)
        .collect();
    assert!(sent.contains(ids[0]), "{ids:?} not among {sent:?}");
    let text = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sonde"))
            .args(["breakdown", &url, "-n", "2", "--connection", "reuse"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("slowest iteration ("))
        .unwrap_or_else(|| panic!("{stdout}"));
    let id = line.rsplit("trace ").next().unwrap();
    let sent: BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| parts(&s.traceparent[0]).0)
        .collect();
    assert!(sent.contains(id), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_names_the_exemplars_of_a_regressed_step() {
    let fast = support::fixed_delay(std::time::Duration::from_millis(1)).await;
    let slow = support::fixed_delay(std::time::Duration::from_millis(25)).await;
    let dir = tempfile::tempdir().unwrap();
    let (base, cand) = (dir.path().join("base.json"), dir.path().join("cand.json"));
    for (server, out) in [(&fast, &base), (&slow, &cand)] {
        let url = server.url("/p").to_string();
        let out = out.clone();
        let o = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_sonde"))
                .args(["run", "--url", &url, "-n", "120", "--vus", "4", "-q"])
                .arg("--out")
                .arg(&out)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(o.status.code(), Some(0), "{o:?}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .arg("compare")
        .arg(&cand)
        .arg("--baseline")
        .arg(&base)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "regressed: {stdout}");
    let cand: Value = serde_json::from_str(&std::fs::read_to_string(&cand).unwrap()).unwrap();
    let top = cand["steps"][0]["exemplars"]["slowest"][0]["trace_id"]
        .as_str()
        .unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("slowest   "))
        .unwrap_or_else(|| panic!("no exemplar named: {stdout}"));
    assert!(line.contains(top) && line.contains("request"), "{line}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("slowest   "))
            .count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_names_the_request_id_header_but_never_a_secret_one() {
    let (server, _seen) = recording().await;
    let port = server.port();
    let named = THREE_STEPS.replace(
        "name: traced\n",
        "name: traced\nhttp:\n  request_id_header: X-Correlation-Id\n",
    );
    let r = tokio::task::spawn_blocking(move || run(&named, port, &["--exemplars", "2"]))
        .await
        .unwrap();
    for step in r["steps"].as_array().unwrap() {
        let slowest = step["exemplars"]["slowest"].as_array().unwrap();
        assert_eq!(slowest.len(), 2, "--exemplars 2: {step}");
        for e in slowest {
            assert!(
                e["request_id"].as_str().unwrap().starts_with("corr-"),
                "{e}"
            );
        }
    }
    let none = tokio::task::spawn_blocking(move || run(THREE_STEPS, port, &["--exemplars", "0"]))
        .await
        .unwrap();
    assert!(none["steps"][0].get("exemplars").is_none(), "{none}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(
        &path,
        THREE_STEPS.replace(
            "name: traced\n",
            "name: traced\nhttp:\n  request_id_header: Authorization\n",
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .arg("run")
        .arg(&path)
        .args(["--target", &format!("http://127.0.0.1:{port}"), "-n", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("names a secret header"), "{stderr}");
}

/// Shards keep their own exemplars; `sonde merge` keeps the N slowest of the union, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_shards_keep_the_slowest_of_the_union() {
    // Every request waits a different time (0-19 ms), so the slowest are unambiguous.
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = support::spawn(move |_req| {
        let k = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            tokio::time::sleep(std::time::Duration::from_millis((k * 7) % 20)).await;
            support::response(200, support::full("ok"))
        }
    })
    .await;
    let url = server.url("/s").to_string();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<std::path::PathBuf> = (0..2)
        .map(|k| dir.path().join(format!("shard-{k}.json")))
        .collect();
    let merged = dir.path().join("merged.json");
    let (f2, m2) = (files.clone(), merged.clone());
    tokio::task::spawn_blocking(move || {
        for (k, f) in f2.iter().enumerate() {
            let o = Command::new(env!("CARGO_BIN_EXE_sonde"))
                .args(["run", "--url", &url, "-n", "30", "--vus", "2", "-q"])
                .args(["--shard", &format!("{k}/2"), "--exemplars", "4"])
                .arg("--out")
                .arg(f)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(0), "{o:?}");
        }
        let o = Command::new(env!("CARGO_BIN_EXE_sonde"))
            .arg("merge")
            .args(&f2)
            .arg("-o")
            .arg(&m2)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{o:?}");
    })
    .await
    .unwrap();
    let read = |p: &std::path::Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let mut union: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            read(f)["steps"][0]["exemplars"]["slowest"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(union.len(), 8);
    union.sort_by(|a, b| {
        b["latency_us"]
            .as_u64()
            .cmp(&a["latency_us"].as_u64())
            .then_with(|| a["started_at"].as_str().cmp(&b["started_at"].as_str()))
            .then_with(|| a["trace_id"].as_str().cmp(&b["trace_id"].as_str()))
    });
    union.truncate(4);
    let m = read(&merged);
    assert_eq!(m["steps"][0]["exemplars"]["limit"], 4);
    assert_eq!(
        m["steps"][0]["exemplars"]["slowest"],
        Value::Array(union.clone())
    );
    assert_eq!(m["http"]["exemplars"]["slowest"], Value::Array(union));
}

#[test]
fn bad_trace_url_and_exemplar_counts_are_refused() {
    for (args, want) in [
        (vec!["--trace-url", "ftp://x/{trace_id}"], "--trace-url"),
        (
            vec!["--trace-url", "https://tempo.example/trace/"],
            "{trace_id}",
        ),
        (vec!["--exemplars", "1001"], "--exemplars"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
            .args(["run", "--url", "http://127.0.0.1:1/", "-n", "1", "-q"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `--no-trace-context` is a transport flag of every command that sends: `breakdown` of a URL
/// and `repro` of a curl command (no scenario) send no `traceparent` with it, and one without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakdown_and_repro_turn_it_off_too() {
    let (server, seen) = recording().await;
    let url = server.url("/a").to_string();
    let dir = tempfile::tempdir().unwrap();
    let curl = dir.path().join("a.curl");
    std::fs::write(&curl, format!("curl '{url}'\n")).unwrap();
    let curl = curl.to_str().unwrap().to_string();
    let runs: [Vec<String>; 3] = [
        [
            "breakdown",
            &url,
            "-n",
            "2",
            "--connection",
            "reuse",
            "--no-trace-context",
        ]
        .map(String::from)
        .to_vec(),
        ["repro", "--env", &curl, "-n", "2", "--no-trace-context"]
            .map(String::from)
            .to_vec(),
        ["repro", "--env", &curl, "-n", "1"]
            .map(String::from)
            .to_vec(),
    ];
    let mut counts = Vec::new();
    for args in runs {
        let before = seen.lock().unwrap().len();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_sonde"))
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let seen = seen.lock().unwrap();
        let new = &seen[before..];
        assert!(!new.is_empty());
        counts.push(new.iter().filter(|s| !s.traceparent.is_empty()).count());
        if counts.len() < 3 {
            assert_eq!(counts.last(), Some(&0), "sent a traceparent: {new:?}");
        } else {
            assert_eq!(counts.last(), Some(&new.len()), "{new:?}");
        }
    }
}

//! What a new user meets in the first hour (issue 18), end to end against the embedded demo
//! API and small real servers: a poll step's settle time kept apart from request latency, with
//! counts that match their percentiles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn sonde(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(args)
        .env_remove("TARGET")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn schema_errors(v: &Value) -> Result<(), String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/result-schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("file:///result-schema.json", schema)
        .unwrap();
    let idx = compiler
        .compile("file:///result-schema.json", &mut schemas)
        .unwrap();
    schemas.validate(v, idx).map_err(|e| format!("{e:#}"))
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(|s| s["count"].as_u64()).unwrap_or(0)
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn invest() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/invest.yaml").to_string()
}

#[test]
fn a_poll_keeps_its_settle_time_apart_from_request_latency() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let o = sonde(&[
        "run",
        &invest(),
        "--vus",
        "2",
        "--iterations",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    let run: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    schema_errors(&run).unwrap();

    let settled = step(&run, "settled");
    // Every attempt is one request; its latency is one sample, successful or failed.
    let requests = settled["requests"].as_u64().unwrap();
    assert_eq!(
        requests,
        count(settled, "latency") + count(settled, "failed_latency")
    );
    // The demo's payment worker takes 50 ms and the poll waits 100 ms: at least two attempts
    // for some of the six polls, and exactly six settle samples.
    assert!(requests > 6, "{settled}");
    assert_eq!(count(settled, "settle"), 6, "{settled}");
    assert!(settled.get("unsettled").is_none(), "{settled}");
    let settle_p50 = settled["settle"]["p50_ms"].as_f64().unwrap();
    let request_p50 = settled["latency"]["p50_ms"].as_f64().unwrap();
    assert!(
        settle_p50 >= 50.0 && request_p50 < settle_p50,
        "settle p50 {settle_p50} ms, request p50 {request_p50} ms"
    );

    // `http` is every request and nothing else: no waiting, counts that match.
    let http = &run["http"];
    let all: u64 = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(http["requests"].as_u64().unwrap(), all);
    assert_eq!(
        http["requests"].as_u64().unwrap(),
        count(http, "latency") + count(http, "failed_latency")
    );
    assert!(http.get("settle").is_none(), "{http}");
    assert!(http["latency"]["p50_ms"].as_f64().unwrap() < settle_p50);

    // Both are shown, each labelled, and the file's `settled.settle` threshold was gated.
    assert!(stdout.contains("│ settled.settle"), "{stdout}");
    assert!(stdout.contains("settled.settle: polls"), "{stdout}");
    let gated: Vec<&str> = run["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["threshold"].as_str())
        .collect();
    assert!(gated.contains(&"settled.settle: p(95) < 5s"), "{gated:?}");
}

#[test]
fn settle_thresholds_gate_the_settle_time_and_only_exist_on_poll_steps() {
    // A settle-time limit no poll can meet fails the run; the same limit on `settled` (its
    // requests) passes: the two are different numbers.
    let o = sonde(&[
        "run",
        &invest(),
        "--vus",
        "1",
        "--iterations",
        "2",
        "--threshold",
        "settled.settle: p(95) < 20ms",
        "--threshold",
        "settled: p(95) < 20s",
    ]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{}", text(&o.stderr));
    assert!(
        stdout.contains("FAIL   ┆ settled.settle: p(95) < 20ms"),
        "{stdout}"
    );
    assert!(stdout.contains("pass   ┆ settled: p(95) < 20s"), "{stdout}");

    for (key, says) in [
        ("invest.settle: p(95) < 1s", "`invest` does not poll"),
        ("http.settle: p(95) < 1s", "`http` does not poll"),
        ("settled.setle: p(95) < 1s", "did you mean `settle`"),
    ] {
        let o = sonde(&["run", &invest(), "--dry-run", "--threshold", key]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{key}: {err}");
        assert!(err.contains(says), "{key}: {err}");
    }
    assert!(Path::new(&invest()).exists());
}

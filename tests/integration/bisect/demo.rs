//! `repro` and `bisect` against the demo API with its `onboarding-locale` fault: the shipped
//! `scenarios/envs/{works,fails}.curl` (two browsers, many differences) bisect to exactly the
//! two planted items, the generated `sonde repro` line runs and shows only the culprit
//! combination failing, and the scenario's own named environments behave as documented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::bisect::{culprit_names, s, sonde};
use sonde::bisect::ddmin::probe_bound;
use sonde::demo::{DemoConfig, Fault, RunningDemo};
use std::path::PathBuf;

fn root(p: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

async fn demo() -> RunningDemo {
    sonde::demo::start(DemoConfig {
        faults: vec![Fault::OnboardingLocale],
        ..DemoConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_curl_files_bisect_to_the_two_planted_items() {
    let works = root("scenarios/envs/works.curl");
    let fails = root("scenarios/envs/fails.curl");
    let scenario = root("scenarios/onboarding-click.yaml");
    // The two files differ in many items, not just the planted ones.
    let g = sonde::bisect::env::load(&works, None).unwrap();
    let b = sonde::bisect::env::load(&fails, None).unwrap();
    let diffs = sonde::import::diff(&g.spec, &b.spec);
    assert!(diffs.len() >= 12, "only {} differences", diffs.len());

    let demo = demo().await;
    let base = demo.base_url();
    let out = sonde(s(&[
        "bisect", &scenario, "--good", &works, "--bad", &fails, "--target", &base, "--format",
        "json", "-q",
    ]))
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(
        culprit_names(&doc),
        vec!["header:Accept-Language", "flag:new_kyc_form"]
    );
    assert_eq!(
        doc["culprits"][0]["bad"],
        "de-DE,de;q=0.8,en-US;q=0.5,en;q=0.3"
    );
    assert_eq!(doc["culprits"][1]["good"], serde_json::Value::Null);
    assert_eq!(doc["culprits"][1]["bad"], "on");
    assert_eq!(doc["differences"].as_u64().unwrap() as usize, diffs.len());
    let varied = doc["varied"].as_u64().unwrap() as usize;
    assert!(doc["probes"].as_u64().unwrap() as usize <= probe_bound(varied));
    assert_eq!(doc["premise"]["bad"]["failed"], 3);
    // The failure quotes the problem+json `detail` that says why.
    let first = doc["premise"]["bad"]["first_failure"].as_str().unwrap();
    assert!(
        first
            == "complete: expected status 200, got 500 (the server failed to handle this request)",
        "{first}"
    );
    let curl = doc["curl"].as_str().unwrap();
    assert!(curl.contains("/onboarding/complete"), "{curl}");
    assert!(
        curl.contains("x-feature-flags:"),
        "flags travel in the scenario's header: {curl}"
    );
    assert!(curl.contains("\"$SONDE_AUTHORIZATION\""), "{curl}");

    // The toggle line, with the real values, runs and fails only for German + the flag.
    let open = sonde(s(&[
        "bisect",
        &scenario,
        "--good",
        &works,
        "--bad",
        &fails,
        "--target",
        &base,
        "--format",
        "json",
        "-q",
        "--include-sensitive",
    ]))
    .await;
    let line = open.json()["repro"].as_str().unwrap().to_string();
    assert!(line.starts_with("sonde repro "), "{line}");
    let bin = env!("CARGO_BIN_EXE_sonde");
    let cmd = format!("'{}' {} --format json", bin, &line["sonde ".len()..]);
    let rerun = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::new("sh")
            .args(["-c", &cmd])
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&rerun.stdout);
    assert_eq!(rerun.status.code(), Some(1), "{text}");
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = rows["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "two culprits toggled: 2 × 2 rows");
    let failing: Vec<&serde_json::Value> = rows.iter().filter(|r| r["failed"] != 0).collect();
    assert_eq!(failing.len(), 1);
    let cell = failing[0]["cell"].to_string();
    assert!(
        cell.contains("de-DE") && cell.contains("new_kyc_form=on"),
        "{cell}"
    );
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_envs_repro_and_bisect() {
    let demo = demo().await;
    let base = demo.base_url();
    let scenario = root("scenarios/onboarding-click.yaml");
    // No --env: every env of the scenario.
    let out = sonde(s(&[
        "repro", &scenario, "--target", &base, "-n", "2", "--format", "json",
    ]))
    .await;
    assert_eq!(out.code, 1, "a row failed: {}\n{}", out.stdout, out.stderr);
    let doc = out.json();
    let verdicts: Vec<(String, String)> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["env"].as_str().unwrap().into(),
                r["verdict"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("de".to_string(), "pass".to_string()),
            ("de-new-kyc".to_string(), "fail".to_string()),
            ("en".to_string(), "pass".to_string())
        ]
    );
    let failing = &doc["rows"][1];
    let first = failing["first_failure"].as_str().unwrap();
    assert!(
        first
            == "complete: expected status 200, got 500 (the server failed to handle this request)",
        "{first}"
    );
    let complete = &failing["steps"][4];
    assert_eq!(complete["step"], "complete");
    assert_eq!(complete["statuses"]["500"], 2);
    assert_eq!(failing["steps"][0]["statuses"]["200"], 2);
    assert!(complete["p50_ms"].as_f64().unwrap() > 0.0);

    // Named envs: en and de-new-kyc differ only in the locale.
    let out = sonde(s(&[
        "bisect",
        &scenario,
        "--good",
        "en",
        "--bad",
        "de-new-kyc",
        "--target",
        &base,
        "-q",
    ]))
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("culprit: header:Accept-Language"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("--matrix header:Accept-Language=en-US,de-DE"),
        "{}",
        out.stdout
    );
    // A name that is neither an env nor a file: exit 2 with a suggestion.
    let out = sonde(s(&[
        "bisect",
        &scenario,
        "--good",
        "en",
        "--bad",
        "de-new-kc",
    ]))
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("did you mean `de-new-kyc`"),
        "{}",
        out.stderr
    );
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_demos_log_stays_out_of_stderr() {
    // No --target: the demo runs in-process; its 500s log an internal error each.
    let scenario = root("scenarios/onboarding-click.yaml");
    let works = root("scenarios/envs/works.curl");
    let fails = root("scenarios/envs/fails.curl");
    let out = sonde(s(&[
        "repro", &scenario, "--env", &works, "--env", &fails, "-n", "2",
    ]))
    .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("sonde demo: internal error"),
        "{}",
        out.stderr
    );
    // Piped, the culprit table is printed at full width: one line per culprit.
    assert_eq!(table_rows(&out.stdout).len(), 2, "{}", out.stdout);
    // Piped, the table is printed at full width: every row is one line, no cell continues.
    let rows = table_rows(&out.stdout);
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    assert!(
        rows.iter()
            .all(|r| r.contains("pass 2/2") || r.contains("FAIL 2/2")),
        "{}",
        out.stdout
    );
    let note = out
        .stderr
        .lines()
        .find(|l| l.starts_with("note: the embedded demo's server logged"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    let path = note.rsplit(" to ").next().unwrap();
    let log = std::fs::read_to_string(path).unwrap();
    assert!(log.contains("sonde demo: internal error"), "{log}");
    std::fs::remove_file(path).unwrap();

    // bisect against the embedded demo: its reproduce curl points at a port that is gone, so
    // it says so and gives the commands to rerun against a demo that stays; placeholders name
    // the side whose value they hold.
    let out = sonde(s(&[
        "bisect", &scenario, "--good", &works, "--bad", &fails, "-q",
    ]))
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("sonde demo: internal error"),
        "{}",
        out.stderr
    );
    // Piped, the culprit table is printed at full width: one line per culprit.
    assert_eq!(table_rows(&out.stdout).len(), 2, "{}", out.stdout);
    let note = out
        .stdout
        .lines()
        .find(|l| l.contains("was the embedded demo, stopped on exit"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        note.contains("sonde demo --listen 127.0.0.1:8080 --fault onboarding-locale"),
        "{note}"
    );
    assert!(note.contains("--target http://127.0.0.1:8080"), "{note}");
    let secrets = out
        .stdout
        .lines()
        .find(|l| l.starts_with("secrets "))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(secrets.contains("SONDE_AUTHORIZATION_BAD"), "{secrets}");
    if let Some(p) = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("note: the embedded demo's server logged"))
        .and_then(|l| l.rsplit(" to ").next())
    {
        let _ = std::fs::remove_file(p);
    }
}

/// The body rows of the tables in `text` (lines starting with `│`, each table's header left out).
fn table_rows(text: &str) -> Vec<&str> {
    let mut rows = Vec::new();
    let mut header = false;
    for l in text.lines() {
        if l.starts_with('┌') {
            header = true;
        } else if l.starts_with('│') {
            if header {
                header = false;
            } else {
                rows.push(l);
            }
        }
    }
    rows
}

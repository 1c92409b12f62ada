//! CI gates end to end against the demo: a candidate run with `--fault slow-profile` regresses
//! against a healthy baseline (exit 1, naming profile, wait and db); repeated healthy runs never
//! raise a false alarm at the default settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::sonde_output as sonde;
use std::path::Path;

fn scenario(dir: &Path, faults: &str) -> String {
    let src = std::fs::read_to_string("scenarios/profile-load.yaml").unwrap();
    // A short, fixed amount of work per run keeps the suite fast and the runs comparable.
    let src = src
        .replace("demo_faults: []", &format!("demo_faults: [{faults}]"))
        .replace(
            "load: { vus: 10, duration: 15s }",
            "load: { vus: 2, duration: 3s }",
        );
    assert!(
        src.contains("duration: 3s }"),
        "the shipped scenario's load line changed"
    );
    let p = dir.join(format!(
        "profile-{}.yaml",
        if faults.is_empty() { "ok" } else { "slow" }
    ));
    std::fs::write(&p, src).unwrap();
    p.display().to_string()
}

fn run(scenario: &str, out: &Path) -> String {
    // Thresholds are the gate's business elsewhere; here only the result file matters.
    let o = sonde(&[
        "run",
        scenario,
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.exists());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn slow_profile_regresses_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let cand = dir.path().join("cand.json");
    let _ = run(&scenario(dir.path(), ""), &base);
    // The same scenario name and load with the fault on: a deploy that made the profile slow.
    let flat = run(&scenario(dir.path(), "slow-profile"), &cand);
    // The script summary carries its schema, the gate's decision and every threshold.
    let v: serde_json::Value = serde_json::from_str(&flat).unwrap();
    assert_eq!(v["schema"], "sonde.summary/v1", "{flat}");
    assert!(v["passed"].is_boolean(), "{flat}");
    let thresholds = v["thresholds"].as_array().unwrap();
    assert!(!thresholds.is_empty(), "{flat}");
    for t in thresholds {
        assert!(
            t["threshold"].is_string() && t["outcome"].is_string(),
            "{t}"
        );
    }
    let failed = thresholds.iter().any(|t| t["outcome"] != "pass");
    assert_eq!(v["passed"], !failed, "{flat}");
    assert_eq!(v["failures"].as_array().unwrap().is_empty(), !failed);
    // compare refuses it and says what to pass instead.
    let flat_path = dir.path().join("flat.json");
    std::fs::write(&flat_path, &flat).unwrap();
    let o = sonde(&[
        "compare",
        flat_path.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("script summary of `sonde run --format json`"),
        "{err}"
    );
    assert!(err.contains("--out run.json"), "{err}");
    let o = sonde(&[
        "compare",
        cand.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    let why = format!("{stdout}\n{stderr}");
    assert!(why.contains("profile"), "{why}");
    assert!(why.contains("wait"), "{why}");
    assert!(why.contains("db"), "{why}");
}

#[test]
fn unchanged_runs_never_raise_a_false_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "");
    let base = dir.path().join("base.json");
    let _ = run(&s, &base);
    for i in 0..5 {
        let cand = dir.path().join(format!("cand{i}.json"));
        let _ = run(&s, &cand);
        let o = sonde(&[
            "compare",
            cand.to_str().unwrap(),
            "--baseline",
            base.to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "false alarm on repeat {i}:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

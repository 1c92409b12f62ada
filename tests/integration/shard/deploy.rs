//! The engine around sharding, checked offline: the Kubernetes manifests validate against the
//! Kubernetes schemas (`kubernetes-validate`, installed by `.ci/run`; required under CI=true,
//! skipped loudly elsewhere), also after N is rewritten with the README's `sed`; N agrees in its
//! three places; the example scenario loads; the GitHub Actions matrix agrees with its N; the
//! Dockerfile is multi-stage and runs as non-root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const K8S: &str = "deploy/kubernetes";
/// The README's command that sets N (run here through `sh`, exactly as written there).
const SED_N: &str = r#"sed -E "/# N\$/ s/[0-9]+/$N/""#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(K8S))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "{v:?}");
    v
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

/// `job-shards.yaml` with N set by the README's sed.
fn with_n(n: u32) -> String {
    let file = root().join(K8S).join("job-shards.yaml");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{SED_N} \"$FILE\""))
        .env("N", n.to_string())
        .env("FILE", &file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (completions, parallelism, SONDE_SHARDS) of a shard Job.
fn ns(job: &Value) -> (u64, u64, u64) {
    let spec = &job["spec"];
    let env = spec["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let shards = env
        .iter()
        .find(|e| e["name"] == "SONDE_SHARDS")
        .and_then(|e| e["value"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    (
        spec["completions"].as_u64().unwrap(),
        spec["parallelism"].as_u64().unwrap(),
        shards,
    )
}

/// The validator's command: the `kubernetes-validate` script, or the module through python3
/// (pip may put the script outside PATH).
fn validator() -> Option<Vec<&'static str>> {
    let candidates: [&[&'static str]; 2] = [
        &["kubernetes-validate"],
        &["python3", "-m", "kubernetes_validate"],
    ];
    for c in candidates {
        let ok = Command::new(c[0])
            .args(&c[1..])
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c.to_vec());
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("kubernetes-validate is missing under CI=true: .ci/run installs it with pip");
    }
    eprintln!(
        "\n*** SKIPPED: kubernetes-validate is not installed; the Kubernetes manifests were NOT \
         validated. Install it with `pip install kubernetes-validate`. ***\n"
    );
    None
}

fn validate(tool: &[&str], files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(tool[0])
        .args(&tool[1..])
        .args(["--strict", "--no-warn"])
        .args(files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let Some(tool) = validator() else { return };
    let files = manifests();
    let (ok, text) = validate(&tool, &files);
    assert!(ok, "{text}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(text.contains(&name), "{name} not validated:\n{text}");
    }
    assert!(!text.contains("ERROR"), "{text}");
    // With N rewritten by the README's command, still valid.
    let dir = tempfile::tempdir().unwrap();
    let n7 = dir.path().join("job-shards-7.yaml");
    std::fs::write(&n7, with_n(7)).unwrap();
    let (ok, text) = validate(&tool, std::slice::from_ref(&n7));
    assert!(ok, "{text}");
    // The validator does reject what the API server would: an unknown field, a wrong type.
    let original = read(&format!("{K8S}/job-shards.yaml"));
    for (from, to, word) in [
        ("parallelism:", "parallelizm:", "parallelizm"),
        ("backoffLimit: 0", "backoffLimit: none", "backoffLimit"),
    ] {
        let bad = dir.path().join(format!("bad-{word}.yaml"));
        std::fs::write(&bad, original.replace(from, to)).unwrap();
        let (ok, text) = validate(&tool, &[bad]);
        assert!(!ok, "a broken manifest passed:\n{text}");
        assert!(text.contains(word), "{text}");
    }
}

#[test]
fn n_agrees_in_its_three_places_and_the_readme_sets_it() {
    let job = yaml(&read(&format!("{K8S}/job-shards.yaml")));
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let (c, p, s) = ns(&job);
    assert!(
        c == p && p == s,
        "completions {c}, parallelism {p}, SONDE_SHARDS {s}"
    );
    for n in [1, 7, 120] {
        assert_eq!(
            ns(&yaml(&with_n(n))),
            (u64::from(n), u64::from(n), u64::from(n))
        );
    }
    let readme = read(&format!("{K8S}/README.md"));
    assert!(
        readme.contains(SED_N),
        "the README's sed differs from the tested one"
    );
    // The shard command reads its shard from the environment and writes where merge reads.
    let args = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    for want in [
        "sonde run",
        "--start-at",
        "--target",
        "shard-$SHARD_INDEX.json",
    ] {
        assert!(args.contains(want), "{want} not in {args}");
    }
    let merge = yaml(&read(&format!("{K8S}/job-merge.yaml")));
    let margs = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(
        margs.contains("sonde merge /results/$RUN_ID/shard-*.json"),
        "{margs}"
    );
    assert_eq!(merge["spec"]["backoffLimit"], 0);
    let pvc = yaml(&read(&format!("{K8S}/pvc.yaml")));
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
    for f in manifests() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains("runAsUser: 0"), "{f:?} runs as root");
    }
}

#[test]
fn the_example_scenario_is_a_valid_sonde_scenario() {
    let cm = yaml(&read(&format!("{K8S}/configmap-scenario.yaml")));
    let src = cm["data"]["scenario.yaml"].as_str().unwrap();
    let overrides = sonde::scenario::Overrides {
        target: Some("https://staging.example.com".parse().unwrap()),
        ..Default::default()
    };
    let plan = sonde::scenario::load_str(src, Path::new("scenario.yaml"), &overrides)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!plan.thresholds.is_empty());
    // And it splits over the example N.
    let (c, _, _) = ns(&yaml(&read(&format!("{K8S}/job-shards.yaml"))));
    sonde::shard::check(&plan, c as u32).unwrap();
    let run = yaml(&read(&format!("{K8S}/configmap-run.yaml")));
    sonde::shard::StartAt::parse(
        run["data"]["start_at"].as_str().unwrap(),
        humantime::parse_rfc3339("2026-12-01T09:59:00Z").unwrap(),
    )
    .unwrap();
}

#[test]
fn github_actions_matrix_agrees_with_its_n() {
    let wf = yaml(&read("deploy/github-actions/shards.yml"));
    let n = wf["env"]["SHARDS"].as_u64().unwrap();
    let matrix: Vec<u64> = wf["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(matrix, (0..n).collect::<Vec<_>>());
    let steps = |job: &str| -> String {
        wf["jobs"][job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let shard = steps("shard");
    assert!(shard.contains("--shard \"$SHARD/$SHARDS\""), "{shard}");
    assert!(shard.contains("--start-at \"$START_AT\""), "{shard}");
    assert!(steps("merge").contains("./sonde merge shards/shard-*.json"));
    assert_eq!(wf["jobs"]["merge"]["needs"], "shard");
    // Inputs reach the shell through env, never pasted into the script.
    assert!(!shard.contains("${{"), "{shard}");
}

#[test]
fn dockerfile_is_multi_stage_small_and_non_root() {
    let df = read("Dockerfile");
    let froms: Vec<&str> = df.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].contains(" AS build"), "{froms:?}");
    assert!(
        froms[1].contains("debian:bookworm-slim") || froms[1].contains("distroless/cc"),
        "{froms:?}"
    );
    assert!(df.contains("--locked"));
    let user = df.lines().rev().find(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

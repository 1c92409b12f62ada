//! `sonde run`'s shard flags through the binary: `--dry-run` prints the shard's share and sends
//! nothing; the shard comes from `--shard` or the environment (Kubernetes' JOB_COMPLETION_INDEX
//! with SONDE_SHARDS); bad shards and missed start times exit 2 before anything is sent; a
//! shard with no VU runs, sends nothing and records its identity; a shard whose requests fail
//! defers the gate to `sonde merge`, which fails it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::shard::server;
use crate::support::sonde_cmd as sonde;
use sonde::aggregate::Summary;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The plan hash a dry run prints.
fn hash_of(text: &str) -> String {
    let i = text.find("plan hash ").unwrap() + "plan hash ".len();
    text[i..i + 16].to_string()
}

#[test]
fn dry_run_prints_the_share_and_sends_nothing() {
    let (url, hits, _server) = server(200);
    let out = sonde()
        .args(["run", "--url", &url, "--vus", "5", "-n", "100"])
        .args(["--shard", "1/3", "--dry-run"])
        .assert()
        .code(0);
    let text = stdout(out.get_output());
    assert!(text.contains("shard 1/3 of `"), "{text}");
    assert!(
        text.contains("load:    closed, 2 VUs, 33 iterations"),
        "{text}"
    );
    assert!(
        text.contains("whole:   closed, 5 VUs, 100 iterations"),
        "{text}"
    );
    assert!(stderr(out.get_output()).contains("nothing was sent"));
    // From the environment, as in a Kubernetes Indexed Job: same plan, same hash.
    let env = sonde()
        .args(["run", "--url", &url, "--vus", "5", "-n", "100", "--dry-run"])
        .env("JOB_COMPLETION_INDEX", "2")
        .env("SONDE_SHARDS", "3")
        .assert()
        .code(0);
    let env_text = stdout(env.get_output());
    assert!(env_text.contains("shard 2/3 of `"), "{env_text}");
    assert!(
        env_text.contains("load:    closed, 1 VUs, 33 iterations"),
        "{env_text}"
    );
    assert_eq!(hash_of(&env_text), hash_of(&text));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a dry run sent requests");
}

#[test]
fn bad_shards_and_missed_starts_exit_2_before_sending() {
    let (url, hits, _server) = server(200);
    let cases: [(&[&str], &str); 5] = [
        (
            &["--shard", "3/3"],
            "the shard index 3 must be below the shard count 3",
        ),
        (&["--shard", "1of3"], "expected K/N"),
        (&["--start-at", "2020-01-01T00:00:00Z"], "passed"),
        (&["--start-at", "soon"], "--start-at `soon`"),
        (
            &[
                "--shard",
                "0/4",
                "--rate",
                "10/s",
                "--max-vus",
                "2",
                "-z",
                "1s",
            ],
            "max_vus 2 cannot be split over 4 shards",
        ),
    ];
    for (args, want) in cases {
        let out = sonde()
            .args(["run", "--url", &url, "--quiet"])
            .args(args)
            .assert()
            .code(2);
        let e = stderr(out.get_output());
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let out = sonde()
        .args(["run", "--url", &url, "--dry-run"])
        .env("SONDE_SHARDS", "3")
        .assert()
        .code(2);
    assert!(stderr(out.get_output()).contains("SONDE_SHARDS is set but no shard index is"));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn a_shard_without_vus_runs_empty_and_records_itself() {
    let (url, hits, _server) = server(200);
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("shard-2.json");
    let dry = sonde()
        .args([
            "run",
            "--url",
            &url,
            "--vus",
            "2",
            "-n",
            "10",
            "--shard",
            "2/3",
            "--dry-run",
        ])
        .assert()
        .code(0);
    let dry_text = stdout(dry.get_output());
    assert!(dry_text.contains("sends nothing"), "{dry_text}");
    let before = SystemTime::now();
    let run = sonde()
        .args(["run", "--url", &url, "--vus", "2", "-n", "10", "--quiet"])
        .args(["--shard", "2/3", "--start-at", "+1s", "--out"])
        .arg(&out_file)
        .assert()
        .code(0);
    assert!(stderr(run.get_output()).contains("shard 2/3: waiting"));
    assert!(before.elapsed().unwrap() >= Duration::from_millis(900));
    let s: Summary = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(s.http.requests, 0);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    let info = s.shard.unwrap();
    assert_eq!((info.index, info.count), (Some(2), 3));
    assert_eq!(info.plan_hash, hash_of(&dry_text));
    let start = humantime::parse_rfc3339(info.start_at.as_deref().unwrap()).unwrap();
    let clock = humantime::parse_rfc3339(info.started_clock.as_deref().unwrap()).unwrap();
    assert!(clock >= start);
}

#[test]
fn a_failing_shard_defers_its_gate_to_the_merge() {
    let (url, _, _server) = server(500);
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..2)
        .map(|k| dir.path().join(format!("shard-{k}.json")))
        .collect();
    for (k, f) in files.iter().enumerate() {
        let out = sonde()
            .args(["run", "--url", &url, "--vus", "2", "-n", "4", "--quiet"])
            .args(["--shard", &format!("{k}/2"), "--out"])
            .arg(f)
            .assert()
            .code(0);
        assert!(stderr(out.get_output()).contains("the gate is decided by `sonde merge`"));
    }
    let merged = sonde()
        .arg("merge")
        .args(&files)
        .arg("-o")
        .arg(dir.path().join("run.json"))
        .assert()
        .code(1);
    assert!(stderr(merged.get_output()).contains("gate failed"));
}

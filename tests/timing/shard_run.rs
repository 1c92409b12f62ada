//! End to end with real processes on 127.0.0.1: three shards of a closed and of an open plan
//! against a local server, started with one `--start-at`, then merged. Totals equal the
//! single-run plan (and what the server counted); the merged histogram is the bucket-for-bucket
//! sum of the shards'; percentiles match a single run's within noise; the shards started
//! together; reports and `compare` take the merged result like any other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::shard::server;
use crate::support::sonde;
use sonde::aggregate::{Hist, Summary};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Waits for every child, at most `limit` in all; kills the rest on timeout.
fn wait_all(mut children: Vec<Child>, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut codes = vec![None; children.len()];
    while codes.iter().any(Option::is_none) && Instant::now() < deadline {
        for (c, code) in children.iter_mut().zip(codes.iter_mut()) {
            if code.is_none() {
                *code = c.try_wait().unwrap().map(|s| s.code());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in &mut children {
        let _ = c.kill();
    }
    for (i, code) in codes.iter().enumerate() {
        assert_eq!(*code, Some(Some(0)), "shard {i} did not exit 0 in time");
    }
}

fn load(p: &Path) -> Summary {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// One measured scenario at a time: two overlapping runs on a 2-core machine would measure
/// each other, not the plan.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the single run, then three shards from one start time, then the merge.
fn single_and_sharded(load_args: &[&str]) -> (Summary, Summary, Vec<Summary>, u64) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (url, hits, _server) = server(200);
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single.json");
    let st = sonde()
        .args(["run", "--url", &url, "--quiet", "--threads", "1"])
        .args(load_args)
        .arg("--out")
        .arg(&single)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let single_hits = hits.swap(0, Ordering::SeqCst);

    let start_at =
        humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(3)).to_string();
    // The agreed time is what the flag says (millisecond precision), not the finer clock value.
    let start = humantime::parse_rfc3339(&start_at).unwrap();
    let files: Vec<PathBuf> = (0..3)
        .map(|k| dir.path().join(format!("shard-{k}.json")))
        .collect();
    let children = files
        .iter()
        .enumerate()
        .map(|(k, f)| {
            sonde()
                .args(["run", "--url", &url, "--quiet", "--threads", "1"])
                .args(load_args)
                .args(["--shard", &format!("{k}/3"), "--start-at", &start_at])
                .arg("--out")
                .arg(f)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_all(children, Duration::from_secs(60));
    let merged = dir.path().join("merged.json");
    let st = sonde()
        .arg("merge")
        .args(&files)
        .arg("-o")
        .arg(&merged)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    // The merged result is a result like any other: reports render it, compare accepts it
    // (exit 0 or 1 is a verdict on noise; 2 would mean "not comparable").
    for fmt in ["html", "md", "junit"] {
        let st = sonde()
            .args(["report", "--format", fmt, "-o"])
            .arg(dir.path().join(format!("merged.{fmt}")))
            .arg(&merged)
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0), "report --format {fmt}");
    }
    let st = sonde()
        .arg("compare")
        .arg(&merged)
        .arg("--baseline")
        .arg(&single)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(matches!(st.code(), Some(0 | 1)), "compare: {:?}", st.code());
    let shards: Vec<Summary> = files.iter().map(|f| load(f)).collect();
    // The server saw exactly as many requests from the shards as from the single run.
    assert_eq!(hits.load(Ordering::SeqCst), single_hits);
    // Every shard started on the agreed clock, within a few ms of the others.
    let clocks: Vec<SystemTime> = shards
        .iter()
        .map(|s| {
            let c = s.shard.as_ref().unwrap().started_clock.clone().unwrap();
            humantime::parse_rfc3339(&c).unwrap()
        })
        .collect();
    for c in &clocks {
        assert!(*c >= start, "started before the agreed time");
        assert!(c.duration_since(start).unwrap() < Duration::from_millis(500));
    }
    (load(&single), load(&merged), shards, single_hits)
}

fn assert_exact_and_close(single: &Summary, merged: &Summary, shards: &[Summary]) {
    assert_eq!(merged.http.requests, single.http.requests);
    assert_eq!(merged.iterations.count, single.iterations.count);
    assert_eq!(
        merged.http.requests,
        shards.iter().map(|s| s.http.requests).sum::<u64>()
    );
    let mut sum = Hist::default();
    for s in shards {
        sum.merge(&s.http.latency.histogram());
    }
    assert_eq!(merged.http.latency.histogram().buckets(), sum.buckets());
    let info = merged.shard.as_ref().unwrap();
    assert_eq!(info.merged_from.len(), 3);
    assert!(!info.partial);
    // Same plan, same server: percentiles within noise (5 ms + 25 %).
    for (a, b, what) in [
        (
            merged.http.latency.p50_ms,
            single.http.latency.p50_ms,
            "p50",
        ),
        (
            merged.http.latency.p95_ms,
            single.http.latency.p95_ms,
            "p95",
        ),
    ] {
        eprintln!("{what}: merged {a} ms, single run {b} ms");
        assert!(
            (a - b).abs() <= 5.0 + 0.25 * b,
            "{what}: merged {a} ms vs single {b} ms"
        );
    }
}

#[test]
fn three_closed_shards_merge_to_the_single_run() {
    let (single, merged, shards, hits) = single_and_sharded(&["--vus", "6", "--iterations", "300"]);
    assert_eq!(single.http.requests, 300);
    assert_eq!(hits, 300);
    let per: Vec<u64> = shards.iter().map(|s| s.iterations.count).collect();
    assert_eq!(per, vec![100, 100, 100]);
    assert_exact_and_close(&single, &merged, &shards);
}

#[test]
fn three_open_shards_merge_to_the_single_run() {
    let (single, merged, shards, _) =
        single_and_sharded(&["--rate", "60/s", "--max-vus", "12", "--duration", "3s"]);
    // 60/s for 3 s: 180 arrivals; each shard paces 20/s: 60 each.
    assert_eq!(single.iterations.count + single.iterations.dropped, 180);
    let per: Vec<u64> = shards
        .iter()
        .map(|s| s.iterations.count + s.iterations.dropped)
        .collect();
    assert_eq!(per, vec![60, 60, 60]);
    assert_eq!(merged.iterations.dropped, 0);
    assert_exact_and_close(&single, &merged, &shards);
}

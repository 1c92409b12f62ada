//! `sonde merge` on hand-built shard files: histograms with known values merge to exactly the
//! expected percentiles (which no single shard has), bucket for bucket; counts, statuses and
//! error classes add; time series align on wall-clock seconds; argument order does not matter;
//! and every refusal (another scenario or plan, a duplicate index, a missing shard, a truncated
//! or corrupt file, a non-shard or already-merged file) exits 2 naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::sonde_cmd as sonde;
use sonde::aggregate::merge::merge;
use sonde::aggregate::summary::{IntervalPoint, LatencyOrigin, LoadModel, ShardInfo, TargetKind};
use sonde::aggregate::{Hist, Recorder, Summary};
use std::path::{Path, PathBuf};

const HASH: &str = "0123456789abcdef";

/// Shard `index` of 3: `n` requests of `ms` milliseconds on step `profile`, `errors` of them
/// failing with a 500, started `offset_s` seconds after the common start.
fn shard(index: u32, n: u64, ms: u64, errors: u64, offset_s: u64) -> Summary {
    let mut rec = Recorder::new(2);
    for i in 0..n {
        let s = &mut rec.steps[0];
        s.latency.record_us(ms * 1000);
        s.phases[6].record_us(ms * 1000);
        s.phases[4].record_us(ms * 900);
        s.server_timing
            .entry("db".into())
            .or_default()
            .record_us(ms * 500);
        s.requests += 1;
        if i < errors {
            s.record_error("status_5xx", Some("expected status 200, got 500"));
            *s.statuses.entry(500).or_default() += 1;
        } else {
            *s.statuses.entry(200).or_default() += 1;
        }
        rec.iterations += 1;
        rec.iteration_time.record_us(ms * 1000 + 10);
    }
    // A second step with one request per shard, so steps are merged by position and name.
    rec.steps[1]
        .latency
        .record_us(1000 * (u64::from(index) + 1));
    rec.steps[1].requests = 1;
    let mut s = Summary::measured(&["profile".into(), "total".into()], &rec, 10.0);
    s.scenario = "profile-load".into();
    s.target.kind = TargetKind::Url;
    s.target.url = "http://127.0.0.1:8080/".into();
    s.started_at = format!("2026-12-01T10:00:{:02}.000Z", offset_s);
    s.latency_measured_from = LatencyOrigin::RequestStart;
    s.load.model = LoadModel::Closed;
    s.load.vus = Some(2 + u32::from(index == 0));
    s.load.duration_s = Some(10.0);
    s.series = (1..=10)
        .map(|t| IntervalPoint {
            t: t as f64,
            requests: n / 10,
            errors: 0,
            iterations: n / 10,
            dropped: 0,
            p50_ms: ms as f64,
            p99_ms: ms as f64,
        })
        .collect();
    s.shard = Some(ShardInfo {
        index: Some(index),
        count: 3,
        plan_hash: HASH.into(),
        start_at: Some("2026-12-01T10:00:00.000Z".into()),
        started_clock: Some(format!("2026-12-01T10:00:{offset_s:02}.000250Z")),
        ..ShardInfo::default()
    });
    s
}

fn three() -> Vec<Summary> {
    vec![
        shard(0, 900, 5, 0, 0),
        shard(1, 90, 50, 9, 0),
        shard(2, 10, 500, 1, 0),
    ]
}

fn write(dir: &Path, name: &str, s: &Summary) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(s).unwrap()).unwrap();
    p
}

#[test]
fn known_histograms_merge_to_exact_percentiles() {
    let parts = three();
    let m = merge(&parts).unwrap();
    let p = m.step("profile").unwrap();
    // 900 × 5 ms, 90 × 50 ms, 10 × 500 ms: the 1000 requests of one run. The reference is
    // one histogram that saw all 1000 (a single run); the truth is known up to HDR precision.
    let mut single = Hist::default();
    for (n, ms) in [(900, 5u64), (90, 50), (10, 500)] {
        (0..n).for_each(|_| single.record_us(ms * 1000));
    }
    let close = |got: f64, truth: f64| (got - truth).abs() <= truth * 0.001;
    assert_eq!(p.requests, 1000);
    assert_eq!(p.latency.count, 1000);
    let want = [
        (p.latency.p50_ms, 0.50, 5.0),
        (p.latency.p90_ms, 0.90, 5.0),
        (p.latency.p95_ms, 0.95, 50.0),
        (p.latency.p99_ms, 0.99, 50.0),
        (p.latency.p999_ms, 0.999, 500.0),
        (p.latency.max_ms, 1.0, 500.0),
    ];
    for (got, q, truth) in want {
        assert_eq!(got, single.quantile_ms(q), "q{q}");
        assert!(close(got, truth), "q{q}: {got} vs {truth}");
    }
    // No shard alone has these: shard 0's p99 is 5 ms, shard 2's p50 is 500 ms.
    assert!(close(parts[0].steps[0].latency.p99_ms, 5.0));
    assert!(close(parts[2].steps[0].latency.p50_ms, 500.0));
    assert_eq!(p.latency.min_ms, 5.0);
    // mean = (900*5 + 90*50 + 10*500) / 1000 = 14 ms, within HDR precision
    assert!(close(p.latency.mean_ms, 14.0), "{}", p.latency.mean_ms);
    assert!(close(p.phases["wait"].p95_ms, 45.0));
    assert!(close(p.server_timing["db"].p999_ms, 250.0));
    // Bucket for bucket: the merged histogram is the sum of the three, and one run's.
    let mut sum = parts[0].steps[0].latency.histogram();
    sum.merge(&parts[1].steps[0].latency.histogram());
    sum.merge(&parts[2].steps[0].latency.histogram());
    assert_eq!(p.latency.histogram().buckets(), sum.buckets());
    assert_eq!(p.latency.histogram().buckets(), single.buckets());
    let counts: Vec<u64> = single.buckets().iter().map(|b| b.1).collect();
    assert_eq!(counts, vec![900, 90, 10]);
    // Counts, errors, statuses, classes, iterations and the `http` row add up.
    assert_eq!(p.errors, 10);
    assert_eq!(p.statuses["200"], 990);
    assert_eq!(p.statuses["500"], 10);
    assert_eq!(p.error_classes["status_5xx"], 10);
    assert_eq!(p.error_messages["expected status 200, got 500"], 10);
    assert_eq!(m.http.requests, 1003);
    assert_eq!(m.http.latency.count, 1003);
    assert_eq!(m.iterations.count, 1000);
    assert!(close(m.step("total").unwrap().latency.max_ms, 3.0));
    assert_eq!(m.load.vus, Some(7));
    assert_eq!(m.duration_s, 10.0);
    assert_eq!(m.http.rps, 100.3);
}

#[test]
fn time_series_align_on_wall_clock_seconds() {
    // Shard 1 started 2 s after shard 0: its first second is the common third.
    let parts = vec![shard(0, 100, 5, 0, 0), shard(1, 200, 50, 0, 2)];
    let m = merge(&parts).unwrap();
    assert_eq!(m.started_at, "2026-12-01T10:00:00.000Z");
    assert_eq!(m.duration_s, 12.0);
    let got: Vec<(f64, u64)> = m.series.iter().map(|p| (p.t, p.requests)).collect();
    let mut want: Vec<(f64, u64)> = (1..=12)
        .map(|t| {
            let a = if t <= 10 { 10 } else { 0 };
            let b = if (3..=12).contains(&t) { 20 } else { 0 };
            (t as f64, a + b)
        })
        .collect();
    want.retain(|w| w.1 > 0);
    assert_eq!(got, want);
    // Where both ran, p99 is the larger (an upper bound) and p50 the request-weighted mean.
    let third = &m.series[2];
    assert_eq!(third.p99_ms, 50.0);
    assert_eq!(third.p50_ms, 35.0);
}

#[test]
fn the_cli_merges_in_any_order_and_records_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = three()
        .iter()
        .enumerate()
        .map(|(i, s)| write(dir.path(), &format!("shard-{i}.json"), s))
        .collect();
    let out_a = dir.path().join("a.json");
    let out_b = dir.path().join("b.json");
    let out_txt = dir.path().join("a.txt");
    let run = sonde()
        .arg("merge")
        .args(&files)
        .arg("-o")
        .arg(&out_a)
        .arg("-o")
        .arg(&out_txt)
        .assert()
        .code(1); // 10 failed requests fail the gate, like `run`
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).to_string();
    assert!(stdout.contains("profile"), "{stdout}");
    sonde()
        .arg("merge")
        .args([&files[2], &files[0], &files[1]])
        .arg("-o")
        .arg(&out_b)
        .assert()
        .code(1);
    let a: Summary = serde_json::from_slice(&std::fs::read(&out_a).unwrap()).unwrap();
    let b: Summary = serde_json::from_slice(&std::fs::read(&out_b).unwrap()).unwrap();
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.http, b.http);
    let info = a.shard.as_ref().unwrap();
    assert_eq!(info.index, None);
    assert_eq!(info.count, 3);
    assert_eq!(info.plan_hash, HASH);
    assert!(!info.partial);
    assert!(info.missing.is_empty());
    let idx: Vec<u32> = info.merged_from.iter().map(|m| m.index).collect();
    assert_eq!(idx, vec![0, 1, 2]);
    let p999 = a.step("profile").unwrap().latency.p999_ms;
    assert!((p999 - 500.0).abs() <= 0.5, "{p999}");
    assert!(
        std::fs::read_to_string(&out_txt)
            .unwrap()
            .contains("profile")
    );
}

#[test]
fn a_clean_merge_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = [
        shard(0, 50, 5, 0, 0),
        shard(1, 50, 6, 0, 0),
        shard(2, 50, 7, 0, 0),
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| write(dir.path(), &format!("s{i}.json"), s))
    .collect();
    sonde()
        .arg("merge")
        .args(&files)
        .args(["--format", "json", "-o"])
        .arg(dir.path().join("run.json"))
        .assert()
        .code(0);
}

/// Runs `sonde merge` on `files`, expects exit 2 and returns stderr.
fn refused(files: &[PathBuf], extra: &[&str], dir: &Path) -> String {
    let out = sonde()
        .arg("merge")
        .args(files)
        .args(extra)
        .arg("-o")
        .arg(dir.join("out.json"))
        .assert()
        .code(2);
    assert!(
        !dir.join("out.json").exists(),
        "a refused merge wrote output"
    );
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

#[test]
fn refusals_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let [s0, s1, s2]: [Summary; 3] = three().try_into().unwrap();
    let f0 = write(d, "shard-0.json", &s0);
    let f1 = write(d, "shard-1.json", &s1);
    let f2 = write(d, "shard-2.json", &s2);

    let mut other = s1.clone();
    other.scenario = "checkout".into();
    let fo = write(d, "other.json", &other);
    let e = refused(&[f0.clone(), fo.clone(), f2.clone()], &[], d);
    assert!(
        e.contains("other.json: scenario `checkout` is not `profile-load` of"),
        "{e}"
    );

    let mut plan = s1.clone();
    plan.shard.as_mut().unwrap().plan_hash = "ffffffffffffffff".into();
    let fp = write(d, "plan.json", &plan);
    let e = refused(&[f0.clone(), fp, f2.clone()], &[], d);
    assert!(
        e.contains("plan.json: plan hash ffffffffffffffff differs"),
        "{e}"
    );

    let mut count = s1.clone();
    count.shard.as_mut().unwrap().count = 4;
    let fc = write(d, "count.json", &count);
    let e = refused(&[f0.clone(), fc, f2.clone()], &[], d);
    assert!(
        e.contains("count.json: shard 1/4 is not one of 3 shards"),
        "{e}"
    );

    let dup = write(d, "dup.json", &s1);
    let e = refused(&[f0.clone(), f1.clone(), dup, f2.clone()], &[], d);
    assert!(e.contains("dup.json: shard 1 is also in"), "{e}");
    assert!(e.contains("shard-1.json"), "{e}");

    let e = refused(&[f0.clone(), f2.clone()], &[], d);
    assert!(e.contains("missing shard(s) 1 of 3"), "{e}");
    assert!(e.contains("--allow-partial"), "{e}");

    let text = std::fs::read_to_string(&f1).unwrap();
    let cut = d.join("truncated.json");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let e = refused(&[f0.clone(), cut, f2.clone()], &[], d);
    assert!(
        e.contains("truncated.json: not a complete sonde result"),
        "{e}"
    );

    let mut corrupt = s1.clone();
    let h = &mut corrupt.steps[0].latency.hist;
    h.truncate(h.len() / 2);
    let fx = write(d, "corrupt.json", &corrupt);
    let e = refused(&[f0.clone(), fx, f2.clone()], &[], d);
    assert!(
        e.contains("corrupt.json: histogram `profile` is invalid"),
        "{e}"
    );

    let mut lying = s1.clone();
    lying.steps[0].latency.count += 1;
    let fl = write(d, "lying.json", &lying);
    let e = refused(&[f0.clone(), fl, f2.clone()], &[], d);
    assert!(
        e.contains(
            "lying.json: histogram `profile` is invalid: it holds 90 values but `count` says 91"
        ),
        "{e}"
    );

    let mut plain = s1.clone();
    plain.shard = None;
    let fnot = write(d, "plain.json", &plain);
    let e = refused(&[f0.clone(), fnot, f2.clone()], &[], d);
    assert!(e.contains("plain.json: not a shard result"), "{e}");

    let merged = sonde::shard::merge_files(
        &[f0.clone(), f1.clone(), f2.clone()],
        &sonde::shard::MergeOptions::default(),
    )
    .unwrap();
    let fm = write(d, "merged.json", &merged);
    let e = refused(&[fm], &[], d);
    assert!(
        e.contains("merged.json: already a merged result (of shards 0, 1, 2)"),
        "{e}"
    );

    let e = refused(&[d.join("absent.json")], &[], d);
    assert!(e.contains("absent.json: cannot read"), "{e}");

    let e = refused(&[f0, f1, f2], &["--threshold", "nosuch: p(95) < 1s"], d);
    assert!(e.contains("unknown step `nosuch`"), "{e}");
}

#[test]
fn allow_partial_merges_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parts = three();
    let f0 = write(d, "shard-0.json", &parts[0]);
    let f2 = write(d, "shard-2.json", &parts[2]);
    let out = d.join("run.json");
    let run = sonde()
        .arg("merge")
        .args([&f0, &f2])
        .arg("--allow-partial")
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).to_string();
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).to_string();
    assert!(
        stdout.contains("PARTIAL merge: shard(s) 1 of 3 missing"),
        "{stdout}"
    );
    assert!(stderr.contains("PARTIAL: missing [1]"), "{stderr}");
    let m: Summary = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let info = m.shard.clone().unwrap();
    assert!(info.partial);
    assert_eq!(info.missing, vec![1]);
    assert_eq!(m.step("profile").unwrap().requests, 910);
}

#[test]
fn recorded_thresholds_are_evaluated_on_the_merged_result() {
    let dir = tempfile::tempdir().unwrap();
    // Each shard alone: p(95) 5, 6 or 7 ms. Merged: the 95th percentile is 7 ms.
    let files: Vec<PathBuf> = [
        shard(0, 50, 5, 0, 0),
        shard(1, 50, 6, 0, 0),
        shard(2, 50, 7, 0, 0),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, mut s)| {
        s.shard.as_mut().unwrap().thresholds = vec!["profile: p(95) < 300ms".into()];
        write(dir.path(), &format!("s{i}.json"), &s)
    })
    .collect();
    let out = dir.path().join("run.json");
    sonde()
        .arg("merge")
        .args(&files)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(0);
    let m: Summary = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(m.thresholds.len(), 1);
    assert!(m.thresholds[0].passed());
    let measured = m.thresholds[0].measured.unwrap();
    assert!((measured - 7.0).abs() <= 0.01, "{measured}");
    // A threshold that the whole fails although shard 0 alone would pass it.
    let run = sonde()
        .arg("merge")
        .args(&files)
        .args(["--threshold", "profile: p(95) < 6.5ms", "-o"])
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).to_string();
    assert!(stderr.contains("profile: p(95) < 6.5ms"), "{stderr}");
    let m: Summary = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(m.thresholds.len(), 2);
    assert!(!m.thresholds[1].passed());
}

#[test]
fn shard_and_merged_results_follow_the_result_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/result-schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("file:///result-schema.json", schema)
        .unwrap();
    let idx = compiler
        .compile("file:///result-schema.json", &mut schemas)
        .unwrap();
    let check = |s: &Summary| {
        let bytes = sonde::report::Format::Json.reporter().render(s).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        schemas.validate(&v, idx).map_err(|e| format!("{e:#}"))
    };
    let dir = tempfile::tempdir().unwrap();
    let parts = three();
    check(&parts[0]).unwrap();
    let files: Vec<PathBuf> = parts
        .iter()
        .enumerate()
        .map(|(i, s)| write(dir.path(), &format!("shard-{i}.json"), s))
        .collect();
    let merged = sonde::shard::merge_files(
        &files[..2],
        &sonde::shard::MergeOptions {
            allow_partial: true,
        },
    )
    .unwrap();
    check(&merged).unwrap();
    // The schema does constrain the object: a bad plan hash is rejected.
    let mut bad = parts[0].clone();
    bad.shard.as_mut().unwrap().plan_hash = "not-a-hash".into();
    assert!(check(&bad).is_err());
}

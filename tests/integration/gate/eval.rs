//! Threshold evaluation on hand-built summaries: every stat, phases, server timing, `{env:}`
//! tags, no-data cases (never a silent pass) and the `abort_on_fail` decision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::summary::{fixed_summary, threshold};
use sonde::gate::{Cmp, Outcome, Stat, Threshold, Unit, abort_check, all_passed, evaluate};
use std::time::Duration;

fn on(step: &str, phase: Option<&str>, st: Option<&str>, stat: Stat, op: Cmp, v: f64) -> Threshold {
    let mut t = threshold(step, stat, op, v);
    t.metric.phase = phase.map(str::to_string);
    t.metric.server_timing = st.map(str::to_string);
    t
}

fn measured(t: Threshold) -> (Option<f64>, Outcome, String) {
    let s = fixed_summary();
    let r = evaluate(&[t], &s).remove(0);
    (r.measured, r.outcome, r.message)
}

#[test]
fn percentiles_and_latency_stats_come_from_the_histograms() {
    let s = fixed_summary();
    // profile latencies are 0.1, 0.2, ..., 100 ms: p95 is 95 ms within HDR precision.
    let ts = vec![
        threshold("profile", Stat::Percentile(95.0), Cmp::Lt, 300.0),
        threshold("profile", Stat::Percentile(95.0), Cmp::Lt, 90.0),
        threshold("profile", Stat::Med, Cmp::Le, 50.1),
        threshold("profile", Stat::Avg, Cmp::Gt, 50.0),
        threshold("profile", Stat::Min, Cmp::Ge, 0.1),
        threshold("profile", Stat::Max, Cmp::Lt, 100.0),
        threshold("profile", Stat::Percentile(99.9), Cmp::Lt, 101.0),
    ];
    let r = evaluate(&ts, &s);
    let p95 = r[0].measured.unwrap();
    assert!((94.9..=95.1).contains(&p95), "{p95}");
    assert_eq!(r[0].unit, Unit::Ms);
    assert_eq!(r[0].outcome, Outcome::Pass);
    assert_eq!(r[1].outcome, Outcome::Fail);
    assert!(
        r[1].message.contains("p(95) 95.0 ms, limit < 90.0 ms"),
        "{}",
        r[1].message
    );
    assert_eq!(r[2].outcome, Outcome::Pass, "{}", r[2].message);
    assert_eq!(r[3].outcome, Outcome::Pass, "mean {:?}", r[3].measured);
    assert_eq!(r[4].outcome, Outcome::Pass, "{}", r[4].message);
    assert_eq!(
        r[5].outcome,
        Outcome::Fail,
        "max is 100 ms: {}",
        r[5].message
    );
    assert_eq!(r[6].outcome, Outcome::Pass);
    assert!(!all_passed(&r));
    assert!(all_passed(&r[..1]));
}

#[test]
fn counts_rates_errors_and_dropped() {
    // profile: 1000 requests over 10 s, 10 failed; 3 dropped iterations.
    let (v, o, _) = measured(threshold("profile", Stat::Count, Cmp::Eq, 1000.0));
    assert_eq!((v, o), (Some(1000.0), Outcome::Pass));
    let (v, o, _) = measured(threshold("profile", Stat::Rate, Cmp::Ge, 100.0));
    assert_eq!((v, o), (Some(100.0), Outcome::Pass));
    let (v, o, m) = measured(threshold("profile", Stat::ErrorRate, Cmp::Lt, 0.01));
    assert_eq!(v, Some(0.01));
    assert_eq!(o, Outcome::Fail, "1.00% is not < 1%: {m}");
    assert!(m.contains("error_rate 1.00%, limit < 1.00%"), "{m}");
    let (v, o, _) = measured(threshold("profile", Stat::ErrorRate, Cmp::Le, 0.01));
    assert_eq!((v, o), (Some(0.01), Outcome::Pass));
    let (v, o, _) = measured(threshold("http", Stat::ErrorRate, Cmp::Lt, 0.01));
    assert_eq!(v, Some(10.0 / 1500.0));
    assert_eq!(o, Outcome::Pass);
    let (v, o, _) = measured(threshold("http", Stat::Count, Cmp::Ne, 0.0));
    assert_eq!((v, o), (Some(1500.0), Outcome::Pass));
    let (v, o, _) = measured(threshold("http", Stat::Dropped, Cmp::Lt, 1.0));
    assert_eq!((v, o), (Some(3.0), Outcome::Fail));
    let (v, o, _) = measured(threshold("iterations", Stat::Rate, Cmp::Gt, 10.0));
    assert_eq!((v, o), (Some(50.0), Outcome::Pass));
    let (v, _, _) = measured(threshold("iterations", Stat::ErrorRate, Cmp::Lt, 1.0));
    assert_eq!(v, Some(10.0 / 500.0));
    let (v, _, _) = measured(threshold(
        "iterations",
        Stat::Percentile(50.0),
        Cmp::Lt,
        1.0,
    ));
    assert!((52.4..=52.6).contains(&v.unwrap()), "{v:?}");
}

#[test]
fn phases_and_server_timing() {
    // wait is 80 % of latency, db 50 %.
    let (v, o, _) = measured(on(
        "profile",
        Some("wait"),
        None,
        Stat::Percentile(50.0),
        Cmp::Lt,
        41.0,
    ));
    assert!((39.9..=40.1).contains(&v.unwrap()), "{v:?}");
    assert_eq!(o, Outcome::Pass);
    let (v, o, _) = measured(on(
        "profile",
        None,
        Some("db"),
        Stat::Percentile(99.0),
        Cmp::Lt,
        40.0,
    ));
    assert!((49.4..=49.6).contains(&v.unwrap()), "{v:?}");
    assert_eq!(o, Outcome::Fail);
    // connect happened on every tenth request: 100 of profile's 1000.
    let (v, _, _) = measured(on(
        "profile",
        Some("connect"),
        None,
        Stat::Count,
        Cmp::Gt,
        0.0,
    ));
    assert_eq!(v, Some(100.0));
    let (v, _, _) = measured(on("total", Some("connect"), None, Stat::Rate, Cmp::Gt, 0.0));
    assert_eq!(v, Some(5.0));
}

#[test]
fn missing_data_is_reported_and_never_passes() {
    let cases = [
        (
            on("nope", None, None, Stat::Percentile(95.0), Cmp::Lt, 1e9),
            "no step named `nope`",
        ),
        (
            on("profile", Some("tls"), None, Stat::Avg, Cmp::Lt, 1e9),
            "no `tls` phase",
        ),
        (
            on("profile", None, Some("cache"), Stat::Avg, Cmp::Lt, 1e9),
            "received: app, db",
        ),
        (
            on("profile", Some("wait"), None, Stat::ErrorRate, Cmp::Lt, 1.0),
            "applies to a step",
        ),
    ];
    for (t, why) in cases {
        let (v, o, m) = measured(t);
        assert_eq!(v, None);
        assert_eq!(o, Outcome::NoData);
        assert!(m.contains(why), "{m} should contain {why}");
    }
}

#[test]
fn env_tags_match_the_runs_environment() {
    let mut t = threshold("profile", Stat::Count, Cmp::Gt, 0.0);
    t.metric.tags.insert("env".into(), "whale".into());
    let (v, o, _) = measured(t.clone());
    assert_eq!((v, o), (Some(1000.0), Outcome::Pass));
    t.metric.tags.insert("env".into(), "typical".into());
    let (v, o, m) = measured(t.clone());
    assert_eq!((v, o), (None, Outcome::NoData));
    assert!(m.contains("environment `whale`, not `typical`"), "{m}");
    let mut t2 = threshold("profile", Stat::Count, Cmp::Gt, 0.0);
    t2.metric.tags.insert("region".into(), "eu".into());
    assert_eq!(measured(t2).1, Outcome::NoData);
    let s = fixed_summary();
    assert_eq!(evaluate(&[t], &s)[0].metric, "profile{env:typical}");
}

#[test]
fn abort_on_fail_waits_for_the_delay_and_ignores_missing_data() {
    let s = fixed_summary();
    let mut lost = threshold("profile", Stat::Percentile(95.0), Cmp::Lt, 10.0);
    lost.abort_on_fail = true;
    lost.delay = Some(Duration::from_secs(10));
    let mut fine = threshold("profile", Stat::Percentile(95.0), Cmp::Lt, 1000.0);
    fine.abort_on_fail = true;
    let mut not_yet = threshold("later_step", Stat::Percentile(95.0), Cmp::Lt, 1.0);
    not_yet.abort_on_fail = true;
    let mut no_abort = threshold("profile", Stat::Max, Cmp::Lt, 1.0);
    no_abort.abort_on_fail = false;
    let ts = [fine, not_yet, no_abort, lost];
    assert!(abort_check(&ts, &s, Duration::from_secs(5)).is_none());
    let hit = abort_check(&ts, &s, Duration::from_secs(10)).unwrap();
    assert_eq!(hit.stat, "p(95)");
    assert!(hit.abort_on_fail);
    assert_eq!(hit.outcome, Outcome::Fail);
}

#[test]
fn results_round_trip_through_the_summary_json() {
    let mut s = fixed_summary();
    s.thresholds = evaluate(
        &[threshold("profile", Stat::Percentile(95.0), Cmp::Lt, 300.0)],
        &s,
    );
    let json = serde_json::to_string(&s).unwrap();
    let back: sonde::aggregate::Summary = serde_json::from_str(&json).unwrap();
    assert_eq!(back.thresholds, s.thresholds);
    // Results written before thresholds existed still load.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v.as_object_mut().unwrap().remove("thresholds");
    let old: sonde::aggregate::Summary = serde_json::from_value(v).unwrap();
    assert!(old.thresholds.is_empty());
    // With thresholds declared, they decide (k6's rule): 10 failed requests are within them.
    let verdict = sonde::gate::verdict(&s, None);
    assert!(verdict.passed, "{:?}", verdict.reasons);
    // Without any threshold, every failed expectation fails the gate.
    let verdict = sonde::gate::verdict(&old, None);
    assert!(!verdict.passed, "10 requests failed");
    assert!(verdict.reasons[0].contains("10 of 1500 requests failed"));
}

//! Hand-built run results for the gate and report tests: recorders filled with known values
//! (or from a seeded distribution), turned into a `Summary` exactly as `run` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use sonde::aggregate::summary::{LatencyOrigin, LoadInfo, LoadModel, TargetInfo, TargetKind};
use sonde::aggregate::{IntervalPoint, PHASES, Recorder, StepStats, Summary};
use sonde::gate::{MetricRef, Stat, Threshold};
use std::collections::BTreeMap;

pub fn phase_index(p: &str) -> usize {
    PHASES.iter().position(|x| *x == p).unwrap()
}

/// Records one request: `latency` and `total` as given, `wait` = 80 %, `connect` 100 µs on
/// every tenth request, Server-Timing `db` = 50 % and `app` = 20 %.
pub fn record(st: &mut StepStats, latency_us: u64) {
    record_shifted(st, latency_us, 0);
}

/// Like `record`, plus `extra_us` of database time: it shows in latency, total, wait and db.
pub fn record_shifted(st: &mut StepStats, base_us: u64, extra_us: u64) {
    st.requests += 1;
    st.latency.record_us(base_us + extra_us);
    st.phases[phase_index("total")].record_us(base_us + extra_us);
    st.phases[phase_index("wait")].record_us(base_us * 8 / 10 + extra_us);
    st.phases[phase_index("send")].record_us(20);
    st.phases[phase_index("receive")].record_us(base_us / 10);
    if st.requests % 10 == 1 {
        st.phases[phase_index("connect")].record_us(100);
    } else {
        st.reused += 1;
    }
    st.server_timing
        .entry("db".into())
        .or_default()
        .record_us(base_us / 2 + extra_us);
    st.server_timing
        .entry("app".into())
        .or_default()
        .record_us(base_us / 5);
    *st.statuses.entry(200).or_default() += 1;
}

pub fn names() -> Vec<String> {
    vec!["profile".into(), "total".into()]
}

/// Identity and series filled the way `run` fills them.
pub fn finish(rec: &Recorder, seconds: f64, env: Option<&str>) -> Summary {
    let mut s = Summary::measured(&names(), rec, seconds);
    s.scenario = "profile-load".into();
    s.scenario_path = Some("scenarios/profile-load.yaml".into());
    s.target = TargetInfo {
        kind: TargetKind::Url,
        url: "http://127.0.0.1:8080/".into(),
        demo_faults: Vec::new(),
    };
    s.env = env.map(str::to_string);
    s.load = LoadInfo {
        model: LoadModel::Closed,
        vus: Some(20),
        duration_s: Some(seconds),
        ..LoadInfo::default()
    };
    s.started_at = "2025-01-02T03:04:05.000Z".into();
    s.latency_measured_from = LatencyOrigin::RequestStart;
    let n = seconds as u64;
    let per = (s.http.requests / n.max(1)).max(1);
    s.series = (1..=n)
        .map(|i| IntervalPoint {
            t: i as f64,
            requests: per,
            errors: if i == 3 { 2 } else { 0 },
            iterations: per / 2,
            dropped: 0,
            p50_ms: s.http.latency.p50_ms,
            p99_ms: s.http.latency.p99_ms + (i % 3) as f64,
        })
        .collect();
    s
}

/// The fixed run of the snapshot tests: `profile` 1000 requests at 0.1..100 ms (10 failed with
/// status 500), `total` 500 requests at 2..2.5 ms, 3 dropped iterations, 10 s.
pub fn fixed_summary() -> Summary {
    let mut rec = Recorder::new(2);
    for i in 1..=1000u64 {
        record(&mut rec.steps[0], i * 100);
    }
    for _ in 0..10 {
        rec.steps[0].record_error("status_5xx", Some("expected status 200, got 500"));
        *rec.steps[0].statuses.entry(500).or_default() += 1;
        *rec.steps[0].statuses.entry(200).or_default() -= 1;
    }
    for i in 0..500u64 {
        record(&mut rec.steps[1], 2000 + i);
    }
    rec.iterations = 500;
    rec.failed_iterations = 10;
    rec.dropped_iterations = 3;
    for i in 0..500u64 {
        rec.iteration_time.record_us(50_000 + i * 10);
    }
    finish(&rec, 10.0, Some("whale"))
}

/// A latency in µs from a seeded skewed distribution: median `base`, long right tail.
pub fn draw(rng: &mut fastrand::Rng, base: f64) -> u64 {
    // Log-normal via Box–Muller, sigma 0.5.
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (base * (0.5 * z).exp()).max(1.0) as u64
}

/// A run of `n` iterations (one `profile` + one `total` request each) over 20 s from the
/// seeded distribution; `profile_extra_us` of database time is added to every profile request.
pub fn sampled_run(seed: u64, n: u64, profile_extra_us: u64) -> Summary {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut rec = Recorder::new(2);
    for _ in 0..n {
        let p = draw(&mut rng, 20_000.0);
        record_shifted(&mut rec.steps[0], p, profile_extra_us);
        record(&mut rec.steps[1], draw(&mut rng, 3_000.0));
        rec.iterations += 1;
    }
    finish(&rec, 20.0, None)
}

pub fn threshold(step: &str, stat: Stat, op: sonde::gate::Cmp, value: f64) -> Threshold {
    Threshold {
        source: format!("{step}: {stat:?} {op:?} {value}"),
        metric: MetricRef {
            step: step.into(),
            phase: None,
            server_timing: None,
            tags: BTreeMap::new(),
        },
        stat,
        op,
        value,
        abort_on_fail: false,
        delay: None,
    }
}

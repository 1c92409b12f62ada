//! Baseline comparison on hand-built histograms: a real shift regresses and names the phase and
//! the server-timing part; the same distribution resampled never raises an alarm; tolerance,
//! error rates and refusals of runs that cannot be compared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::summary::{record, sampled_run};
use sonde::aggregate::Recorder;
use sonde::aggregate::summary::{LoadModel, TargetKind};
use sonde::gate::{CompareError, CompareOptions, Verdict, compare};

fn opts() -> CompareOptions {
    CompareOptions::default()
}

#[test]
fn a_real_shift_regresses_and_says_which_phase_and_server_timing_moved() {
    let base = sampled_run(1, 4000, 0);
    // +15 ms of database time on a ~20 ms median.
    let cand = sampled_run(2, 4000, 15_000);
    let c = compare(&base, &cand, &opts()).unwrap();
    assert_eq!(c.verdict, Verdict::Regressed);
    let profile = c.rows.iter().find(|r| r.key == "profile").unwrap();
    assert!(profile.gating);
    assert_eq!(profile.verdict, Verdict::Regressed);
    let p50 = &profile.quantiles[0];
    assert!(p50.ratio > 1.5 && p50.ratio_low > 1.05, "{p50:?}");
    assert!(p50.describe().ends_with("slower"), "{}", p50.describe());
    let why = profile.why.as_deref().unwrap();
    assert!(why.starts_with("profile: p"), "{why}");
    assert!(why.contains("of which wait +"), "{why}");
    assert!(why.contains(", db +"), "{why}");
    // The unchanged step and the unchanged server-timing part are not blamed.
    let total = c.rows.iter().find(|r| r.key == "total").unwrap();
    assert_eq!(total.verdict, Verdict::NoSignificantChange, "{total:?}");
    assert!(total.why.is_none());
    let app = c
        .rows
        .iter()
        .find(|r| r.key == "profile.server_timing.app")
        .unwrap();
    assert_eq!(app.verdict, Verdict::NoSignificantChange);
    assert!(!app.gating);
    let db = c
        .rows
        .iter()
        .find(|r| r.key == "profile.server_timing.db")
        .unwrap();
    assert_eq!(db.verdict, Verdict::Regressed);
    // The reverse direction is an improvement, not a regression.
    let back = compare(&cand, &base, &opts()).unwrap();
    assert_eq!(back.verdict, Verdict::Improved);
    assert!(back.rows[0].quantiles[0].describe().ends_with("faster"));
}

#[test]
fn the_same_distribution_resampled_is_never_a_false_alarm() {
    let mut worst: f64 = 0.0;
    for seed in 0..12u64 {
        let a = sampled_run(100 + seed, 3000, 0);
        let b = sampled_run(200 + seed, 3000, 0);
        let c = compare(&a, &b, &opts()).unwrap();
        assert_eq!(
            c.verdict,
            Verdict::NoSignificantChange,
            "seed {seed}: {c:#?}"
        );
        for r in &c.rows {
            assert_ne!(r.verdict, Verdict::Regressed, "seed {seed}: {r:?}");
            for q in &r.quantiles {
                // The interval always covers "no change" (ratio 1) or stays within tolerance.
                assert!(q.ratio_low <= 1.05 && q.ratio_high >= 1.0 / 1.05, "{q:?}");
                worst = worst.max((q.ratio - 1.0).abs());
            }
        }
    }
    // The runs did differ by chance (so the test exercised the statistics).
    assert!(worst > 0.005, "{worst}");
}

#[test]
fn a_significant_change_within_tolerance_does_not_fail() {
    // Every request exactly 4 % slower, 50 000 requests: significant, but within 5 %.
    let run = |factor: f64| {
        let mut rec = Recorder::new(2);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50_000 {
            let v = support::summary::draw(&mut rng, 20_000.0);
            record(&mut rec.steps[0], (v as f64 * factor) as u64);
            record(&mut rec.steps[1], 3000);
        }
        support::summary::finish(&rec, 20.0, None)
    };
    let (a, b) = (run(1.0), run(1.04));
    let c = compare(&a, &b, &opts()).unwrap();
    assert_eq!(c.verdict, Verdict::NoSignificantChange, "{:?}", c.rows[0]);
    let p50 = &c.rows[0].quantiles[0];
    assert!(p50.ratio_low > 1.0, "the change is significant: {p50:?}");
    // 4 % of a 20 ms median is 0.8 ms: below the default 1 ms floor too.
    let strict = CompareOptions {
        tolerance: 0.01,
        min_diff_ms: 0.5,
        ..opts()
    };
    let c = compare(&a, &b, &strict).unwrap();
    assert_eq!(c.verdict, Verdict::Regressed);
    assert_eq!(c.rows[0].quantiles[0].verdict, Verdict::Regressed);
}

#[test]
fn new_errors_regress_and_name_their_class() {
    let base = sampled_run(5, 2000, 0);
    let mut cand = sampled_run(6, 2000, 0);
    let p = &mut cand.steps[0];
    p.errors = 100;
    p.error_classes.insert("status_5xx".into(), 100);
    let c = compare(&base, &cand, &opts()).unwrap();
    assert_eq!(c.verdict, Verdict::Regressed);
    let e = c.rows[0].error_rate.as_ref().unwrap();
    assert_eq!(e.verdict, Verdict::Regressed);
    assert_eq!(e.candidate, 0.05);
    let why = c.rows[0].why.as_deref().unwrap();
    assert!(
        why.contains("error rate 0.00% → 5.00%, mostly status_5xx (+100)"),
        "{why}"
    );
    // Two errors in 2000 is not significant.
    let mut few = sampled_run(6, 2000, 0);
    few.steps[0].errors = 2;
    assert_eq!(
        compare(&base, &few, &opts()).unwrap().verdict,
        Verdict::NoSignificantChange
    );
}

#[test]
fn runs_that_cannot_be_compared_are_refused_with_the_reason() {
    let base = sampled_run(1, 500, 0);
    let reason = |edit: &dyn Fn(&mut sonde::aggregate::Summary)| {
        let mut c = base.clone();
        edit(&mut c);
        match compare(&base, &c, &opts()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("compared"),
        }
    };
    assert!(reason(&|c| c.scenario = "checkout".into()).contains("different scenarios"));
    assert!(reason(&|c| c.load.model = LoadModel::Open).contains("different load models"));
    assert!(
        reason(&|c| c.load.vus = Some(50)).contains("closed 20 VUs (baseline) vs closed 50 VUs")
    );
    assert!(
        reason(&|c| c.target.kind = TargetKind::EmbeddedDemo).contains("different target kinds")
    );
    assert!(reason(&|c| c.env = Some("whale".into())).contains("different environments"));
    assert!(reason(&|c| c.schema = "other/v9".into()).contains("schema"));
    assert!(
        reason(&|c| {
            for s in &mut c.steps {
                s.name.push('x');
            }
        })
        .contains("no step name is shared")
    );
    let e = reason(&|c| c.steps[0].latency.hist.clear());
    assert!(e.contains("holds no histogram for `profile`"), "{e}");
    let mut c = base.clone();
    c.steps[0].latency.hist.clear();
    assert!(matches!(
        compare(&base, &c, &opts()),
        Err(CompareError::NoHistogram {
            which: "candidate",
            ..
        })
    ));
}

#[test]
fn differences_that_keep_runs_comparable_become_notes() {
    let base = sampled_run(1, 500, 0);
    let mut c = sampled_run(2, 500, 0);
    c.target.url = "http://127.0.0.1:9090/".into();
    c.interrupted = true;
    c.steps.push(sonde::aggregate::summary::StepSummary {
        name: "extra".into(),
        ..Default::default()
    });
    let r = compare(&base, &c, &opts()).unwrap();
    assert!(
        r.notes.iter().any(|n| n.contains("targets differ")),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("candidate run was interrupted"))
    );
    assert_eq!(r.only_in_candidate, vec!["extra".to_string()]);
    assert!(r.per_test_confidence > 0.99);
}

#[test]
fn drift_within_a_run_widens_the_intervals() {
    let base = sampled_run(1, 4000, 0);
    let mut drifting = sampled_run(2, 4000, 0);
    for (i, p) in drifting.series.iter_mut().enumerate() {
        p.p50_ms *= 1.0 + 0.6 * (i % 4) as f64;
    }
    let steady = compare(&base, &sampled_run(2, 4000, 0), &opts()).unwrap();
    let wide = compare(&base, &drifting, &opts()).unwrap();
    assert_eq!(steady.candidate.design_effect, 1.0);
    assert!(
        wide.candidate.design_effect > 2.0,
        "{}",
        wide.candidate.design_effect
    );
    let width = |c: &sonde::gate::Comparison| {
        let q = &c.rows[0].quantiles[1];
        q.ratio_high - q.ratio_low
    };
    assert!(width(&wide) > width(&steady) * 1.3);
    assert!(wide.notes.iter().any(|n| n.contains("drifted")));
}

#[test]
fn tiny_absolute_differences_are_not_regressions_however_large_the_ratio() {
    // Every request 10 µs in the baseline and 20 µs in the candidate (receive 1 µs → 2 µs):
    // twice as slow, certainly significant, and below the 1 ms floor.
    let run = |us: u64| {
        let mut rec = Recorder::new(2);
        for _ in 0..5_000 {
            record(&mut rec.steps[0], us);
            record(&mut rec.steps[1], us);
        }
        support::summary::finish(&rec, 20.0, None)
    };
    let (a, b) = (run(10), run(20));
    let c = compare(&a, &b, &opts()).unwrap();
    assert_eq!(c.min_diff_ms, 1.0);
    assert_eq!(c.verdict, Verdict::NoSignificantChange, "{:#?}", c.rows[0]);
    for r in &c.rows {
        assert_ne!(r.verdict, Verdict::Regressed, "{r:?}");
    }
    let receive = c.rows.iter().find(|r| r.key == "profile.receive").unwrap();
    let p50 = &receive.quantiles[0];
    assert!(p50.ratio > 1.5 && p50.ratio_low > 1.05, "{p50:?}");
    assert_eq!((p50.baseline_ms, p50.candidate_ms), (0.001, 0.002));
    // Without the floor the same files regress: the floor is what keeps them quiet.
    let no_floor = CompareOptions {
        min_diff_ms: 0.0,
        ..opts()
    };
    assert_eq!(
        compare(&a, &b, &no_floor).unwrap().verdict,
        Verdict::Regressed
    );
}

#[test]
fn intervals_that_are_not_symmetric_print_as_low_high() {
    let q = |ratio: f64, low: f64, high: f64| sonde::gate::compare::QuantileDelta {
        stat: "p50".into(),
        q: 0.5,
        baseline_ms: 10.0,
        candidate_ms: 10.0 * ratio,
        ratio,
        ratio_low: low,
        ratio_high: high,
        verdict: Verdict::NoSignificantChange,
    };
    assert_eq!(q(1.42, 1.39, 1.45).describe(), "1.42× ± 0.03 slower");
    assert_eq!(q(2.38, 0.66, 8.56).describe(), "2.38× [0.66, 8.56] slower");
    assert_eq!(
        q(1058.0, 2.1, 510_387.85).describe(),
        "1058.00× [2.10, 510387.85] slower"
    );
    assert_eq!(q(0.5, 0.49, 0.51).describe(), "2.00× ± 0.04 faster");
}

//! Snapshots of the breakdown's tables, waterfall and verdict from a fixed, hand-built input
//! (no clock, no network): the layout is pinned, and so is the arithmetic behind it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sonde::breakdown::{self, Breakdown, Connection, Iteration, Pass, Request};

fn req(step: usize, offset_ms: f64, phases_ms: [f64; 6], st: &[(&str, f64)]) -> Request {
    let total: f64 = phases_ms.iter().sum();
    let mut p = [0.0; 7];
    for (i, v) in phases_ms.iter().enumerate() {
        p[i] = v * 1000.0;
    }
    p[6] = total * 1000.0;
    Request {
        step,
        offset_us: offset_ms * 1000.0,
        phases_us: p,
        reused: phases_ms[1] == 0.0,
        tls_resumed: false,
        status: Some(200),
        server_timing: st.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        error: None,
        trace_id: None,
    }
}

/// A page: profile, then `total` and `startup` in parallel. `slow` adds to the profile's db time.
fn iteration(i: usize, slow: f64) -> Iteration {
    let jitter = i as f64 * 0.1;
    let profile_wait = 12.0 + slow + jitter;
    let profile_total = 0.2 + profile_wait + 0.3;
    let t = profile_total + 0.1;
    Iteration {
        total_us: (t + 3.0) * 1000.0,
        requests: vec![
            req(
                0,
                0.0,
                [0.0, 0.0, 0.0, 0.2, profile_wait, 0.3],
                &[("db", 10.0 + slow + jitter), ("app", 1.0)],
            ),
            req(
                1,
                t,
                [0.0, 0.0, 0.0, 0.1, 2.0 + jitter, 0.1],
                &[("db", 1.5), ("app", 0.2)],
            ),
            req(
                2,
                t,
                [0.0, 0.0, 0.0, 0.1, 2.8, 0.1],
                &[("db", 2.0), ("app", 0.3)],
            ),
        ],
    }
}

fn names() -> Vec<String> {
    vec!["profile".into(), "total".into(), "startup".into()]
}

#[test]
fn tables_waterfall_and_verdict() {
    let n = names();
    let a = Pass::compute(
        "whale",
        Connection::Reuse,
        &n,
        (0..10).map(|i| iteration(i, 2400.0)).collect(),
    );
    let b = Pass::compute(
        "typical",
        Connection::Reuse,
        &n,
        (0..10).map(|i| iteration(i, 0.0)).collect(),
    );
    let cmp = breakdown::compare(&a, &b, &n, 25.0);
    assert_eq!(cmp.culprit.as_ref().unwrap().step, "profile");
    assert_eq!(cmp.culprit.as_ref().unwrap().phase, "wait");
    assert_eq!(
        cmp.culprit.as_ref().unwrap().server_timing.as_deref(),
        Some("db")
    );
    assert_eq!(
        cmp.verdict,
        "profile is 2.40 s slower for whale than for typical: wait +2.40 s, of which db +2.40 s (p < 0.001)"
    );
    let doc = Breakdown {
        schema: "sonde.breakdown/v1",
        scenario: "profile-load".into(),
        target: "http://127.0.0.1:8080".into(),
        iterations: 10,
        insecure: false,
        passes: vec![a, b],
        comparisons: vec![cmp],
        verdict: None,
        notes: vec![],
    };
    let groups = vec![vec![0], vec![1, 2]];
    insta::assert_snapshot!(
        "breakdown_table",
        breakdown::render::render(&doc, &n, &groups, Some(100))
    );
}

fn whale_vs_typical() -> Breakdown {
    let n = names();
    let a = Pass::compute(
        "whale",
        Connection::Reuse,
        &n,
        (0..10).map(|i| iteration(i, 2400.0)).collect(),
    );
    let b = Pass::compute(
        "typical",
        Connection::Reuse,
        &n,
        (0..10).map(|i| iteration(i, 0.0)).collect(),
    );
    let cmp = breakdown::compare(&a, &b, &n, 25.0);
    Breakdown {
        schema: "sonde.breakdown/v1",
        scenario: "profile-load".into(),
        target: "http://127.0.0.1:8080".into(),
        iterations: 10,
        insecure: false,
        passes: vec![a, b],
        comparisons: vec![cmp],
        verdict: None,
        notes: vec![],
    }
}

/// Every table line fits the width, and no cell is continued on a next line (a number or a
/// name split across lines leaves a row whose first cells are empty but a later one is not a
/// whole value; here: no row of a table is a continuation).
fn assert_fits(text: &str, width: usize) {
    use unicode_width::UnicodeWidthStr;
    for line in text.lines().filter(|l| l.starts_with('│')) {
        assert!(line.width() <= width, "{} > {width}: {line}", line.width());
    }
}

#[test]
fn tables_fit_80_and_120_columns_and_print_full_width_when_piped() {
    let doc = whale_vs_typical();
    let n = names();
    let groups = vec![vec![0], vec![1, 2]];
    for w in [80u16, 120] {
        let text = breakdown::render::render(&doc, &n, &groups, Some(w));
        assert_fits(&text, usize::from(w));
        insta::assert_snapshot!(format!("breakdown_{w}_columns"), text);
    }
    // Piped: every column, never wrapped.
    let piped = breakdown::render::render(&doc, &n, &groups, None);
    assert!(!piped.contains("not shown at this width"), "{piped}");
    assert!(
        piped.contains("p90 ms") && piped.contains("share"),
        "{piped}"
    );
}

#[test]
fn no_difference_below_the_floor() {
    let n = names();
    let a = Pass::compute(
        "a",
        Connection::Reuse,
        &n,
        (0..10).map(|i| iteration(i, 5.0)).collect(),
    );
    let b = Pass::compute(
        "b",
        Connection::Reuse,
        &n,
        (0..10).map(|i| iteration(i, 0.0)).collect(),
    );
    // 5 ms, perfectly consistent: statistically significant, but under the 25 ms floor.
    let cmp = breakdown::compare(&a, &b, &n, 25.0);
    assert!(cmp.culprit.is_none());
    assert!(cmp.steps[0].total.p.unwrap() < 0.001);
    assert!(
        cmp.verdict
            .starts_with("no significant difference between a and b (largest: profile +5.0 ms")
    );
}

#[test]
fn waterfall_marks_the_critical_path() {
    let n = names();
    let w = breakdown::render::waterfall(&iteration(0, 0.0), &n, &[vec![0], vec![1, 2]], 80);
    let lines: Vec<&str> = w.lines().collect();
    assert!(lines[0].starts_with("* profile"), "{w}");
    assert!(
        lines[1].starts_with("  total"),
        "the shorter parallel request is off the path: {w}"
    );
    assert!(lines[2].starts_with("* startup"), "{w}");
    insta::assert_snapshot!("waterfall", w);
}

#[test]
fn two_connection_modes_end_with_one_verdict_line() {
    let n = names();
    let pass = |env: &str, mode: Connection, slow: f64| {
        Pass::compute(env, mode, &n, (0..10).map(|i| iteration(i, slow)).collect())
    };
    let new_a = pass("whale", Connection::New, 2400.0);
    let new_b = pass("typical", Connection::New, 0.0);
    let reuse_a = pass("whale", Connection::Reuse, 5.0);
    let reuse_b = pass("typical", Connection::Reuse, 0.0);
    let comparisons = vec![
        breakdown::compare(&new_a, &new_b, &n, 25.0),
        breakdown::compare(&reuse_a, &reuse_b, &n, 25.0),
    ];
    let mut doc = whale_vs_typical();
    doc.passes = vec![new_a, new_b, reuse_a, reuse_b];
    doc.verdict = breakdown::combined_verdict(&comparisons);
    assert!(doc.verdict.is_some());
    doc.comparisons = comparisons;
    let text = breakdown::render::render(&doc, &n, &[vec![0], vec![1, 2]], None);
    let verdicts: Vec<&str> = text.lines().filter(|l| l.starts_with("verdict:")).collect();
    assert_eq!(verdicts.len(), 1, "{text}");
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "verdict: profile is 2.40 s slower for whale than for typical: wait +2.40 s, of which db +2.40 s (p < 0.001) (connections: new; not significant with reuse connections)"
    );
    assert!(
        text.contains("with new connections: profile is 2.40 s slower"),
        "{text}"
    );
    assert!(
        text.contains("with reuse connections: no significant difference"),
        "{text}"
    );
}

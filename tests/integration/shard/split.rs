//! `--shard` arithmetic: for any N up to 1,000 and any VU, rate, iteration, stage and data-row
//! count, the N shares add up to the whole plan, are as even as possible (remainder to the lowest
//! shards), and no shard is handed work it cannot start. A seeded random search plus the edges;
//! each failing case prints its seed inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sonde::plan::single::{SingleRequest, plan};
use sonde::plan::{HttpOptions, LoadModel, Plan, Stage};
use sonde::shard::{ShardSpec, check, plan_hash, split};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn base(load: LoadModel, rows: usize) -> Plan {
    let mut p = plan(
        &SingleRequest {
            method: "GET".into(),
            url: "http://127.0.0.1:9/item/{{id}}".into(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
        },
        load,
        HttpOptions::default(),
    )
    .unwrap();
    p.data = (0..rows)
        .map(|i| BTreeMap::from([("id".to_string(), i.to_string())]))
        .collect();
    p
}

fn stages(rng: &mut fastrand::Rng, max: u64) -> Vec<Stage> {
    (0..rng.usize(0..4))
        .map(|_| Stage {
            duration: Duration::from_secs(rng.u64(1..60)),
            target: rng.u64(0..=max) as f64,
        })
        .collect()
}

fn all_shares(p: &Plan, n: u32) -> Vec<Plan> {
    (0..n)
        .map(|k| split(p, ShardSpec::new(k, n).unwrap()))
        .collect()
}

/// Shares of one integer quantity: they sum to the whole, differ by at most one, and the
/// larger ones come first.
fn assert_even(what: &str, whole: u64, shares: &[u64], ctx: &str) {
    assert_eq!(shares.iter().sum::<u64>(), whole, "{what} sum: {ctx}");
    let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
    assert!(max - min <= 1, "{what} uneven {min}..{max}: {ctx}");
    assert!(
        shares.windows(2).all(|w| w[0] >= w[1]),
        "{what} remainder not on the lowest shards: {ctx}"
    );
}

fn check_closed(p: &Plan, n: u32, ctx: &str) {
    let LoadModel::Closed {
        vus,
        iterations,
        stages,
        duration,
    } = &p.load
    else {
        unreachable!()
    };
    let parts = all_shares(p, n);
    let mut v = Vec::new();
    let mut it = Vec::new();
    for part in &parts {
        let LoadModel::Closed {
            vus: pv,
            iterations: pi,
            stages: ps,
            duration: pd,
        } = &part.load
        else {
            panic!("model changed: {ctx}")
        };
        assert_eq!(pd, duration, "{ctx}");
        assert_eq!(ps.len(), stages.len(), "{ctx}");
        v.push(u64::from(*pv));
        assert_eq!(pi.is_some(), iterations.is_some(), "{ctx}");
        it.push(pi.unwrap_or(0));
        // Iterations only where some VU can run them.
        let peak = ps
            .iter()
            .map(|s| s.target as u64)
            .fold(u64::from(*pv), u64::max);
        assert!(
            pi.unwrap_or(0) == 0 || peak > 0,
            "iterations without VUs: {ctx}"
        );
        assert!(part.thresholds.is_empty(), "a shard does not gate: {ctx}");
    }
    assert_even("vus", u64::from(*vus), &v, ctx);
    if let Some(total) = iterations {
        assert_eq!(it.iter().sum::<u64>(), *total, "iterations sum: {ctx}");
        let peak_whole = stages
            .iter()
            .map(|s| s.target.round() as u64)
            .fold(u64::from(*vus), u64::max);
        let loaded = peak_whole.min(u64::from(n)) as usize;
        if loaded > 0 {
            assert_even("iterations", *total, &it[..loaded], ctx);
        }
        assert!(it[loaded..].iter().all(|i| *i == 0), "{ctx}");
    }
    for (si, st) in stages.iter().enumerate() {
        let shares: Vec<u64> = parts
            .iter()
            .map(|p| match &p.load {
                LoadModel::Closed { stages, .. } => {
                    assert_eq!(stages[si].duration, st.duration, "{ctx}");
                    stages[si].target as u64
                }
                LoadModel::Open { .. } => unreachable!(),
            })
            .collect();
        assert_even("stage target", st.target.round() as u64, &shares, ctx);
    }
}

fn check_open(p: &Plan, n: u32, ctx: &str) {
    let LoadModel::Open {
        rate,
        max_vus,
        stages,
        ..
    } = &p.load
    else {
        unreachable!()
    };
    let parts = all_shares(p, n);
    let mut rates = 0.0;
    let mut cap = Vec::new();
    let mut targets = vec![0.0; stages.len()];
    for part in &parts {
        let LoadModel::Open {
            rate: r,
            max_vus: m,
            stages: s,
            ..
        } = &part.load
        else {
            panic!("model changed: {ctx}")
        };
        rates += r;
        cap.push(u64::from(*m));
        for (t, st) in targets.iter_mut().zip(s) {
            *t += st.target;
        }
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(rates, *rate), "rate {rates} vs {rate}: {ctx}");
    for (t, st) in targets.iter().zip(stages) {
        assert!(close(*t, st.target), "stage {t} vs {}: {ctx}", st.target);
    }
    assert_even("max_vus", u64::from(*max_vus), &cap, ctx);
    // `check` refuses exactly the splits that leave a shard with arrivals but no VU.
    assert_eq!(
        check(p, n).is_ok(),
        u64::from(*max_vus) >= u64::from(n)
            || *rate == 0.0 && stages.iter().all(|s| s.target == 0.0),
        "check: {ctx}"
    );
}

fn check_rows(p: &Plan, n: u32, ctx: &str) {
    let parts = all_shares(p, n);
    let mut seen = vec![false; p.data.len()];
    for (k, part) in parts.iter().enumerate() {
        for row in &part.data {
            let i: usize = row["id"].parse().unwrap();
            assert_eq!(i % n as usize, k, "row {i} on shard {k}: {ctx}");
            assert!(!seen[i], "row {i} twice: {ctx}");
            seen[i] = true;
        }
        // In order, so each shard still walks its rows like a single run walks all.
        let ids: Vec<usize> = part.data.iter().map(|r| r["id"].parse().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ctx}");
    }
    assert!(seen.iter().all(|s| *s), "a row went nowhere: {ctx}");
}

#[test]
fn shares_add_up_to_the_whole_plan_for_any_n_up_to_1000() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0008);
    let began = Instant::now();
    let mut cases = 0;
    for case in 0..400 {
        if began.elapsed() > Duration::from_secs(20) {
            break;
        }
        let n = match case % 5 {
            0 => 1000,
            1 => rng.u32(1..=8),
            _ => rng.u32(1..=1000),
        };
        // Counts across magnitudes, including below, at and above N.
        let count = |rng: &mut fastrand::Rng| match rng.u8(0..4) {
            0 => rng.u64(1..=u64::from(n).max(2) - 1),
            1 => u64::from(n) + rng.u64(0..3),
            2 => rng.u64(1..=100_000),
            _ => rng.u64(1..=u64::from(u32::MAX)),
        };
        let vus = count(&mut rng).min(u64::from(u32::MAX)) as u32;
        let iterations = rng.bool().then(|| count(&mut rng) * rng.u64(1..1000));
        let closed = base(
            LoadModel::Closed {
                vus,
                duration: iterations.is_none().then(|| Duration::from_secs(30)),
                iterations,
                stages: stages(&mut rng, 1_000_000),
            },
            0,
        );
        let ctx = format!("case {case}: n={n} closed={:?}", closed.load);
        check_closed(&closed, n, &ctx);

        let rate = match rng.u8(0..3) {
            0 => rng.f64() * 10.0,
            1 => rng.f64() * 1e6,
            _ => rng.u64(1..100_000) as f64,
        };
        let open = base(
            LoadModel::Open {
                rate,
                max_vus: count(&mut rng).min(u64::from(u32::MAX)) as u32,
                duration: Duration::from_secs(30),
                stages: stages(&mut rng, 100_000),
            },
            0,
        );
        let ctx = format!("case {case}: n={n} open={:?}", open.load);
        check_open(&open, n, &ctx);
        cases += 1;
    }
    assert!(cases >= 50, "only {cases} cases ran in time");
}

#[test]
fn data_rows_are_partitioned_i_mod_n() {
    let mut rng = fastrand::Rng::with_seed(0xda7a);
    let began = Instant::now();
    let mut sizes: Vec<(u32, usize)> = vec![(1, 0), (1, 5), (3, 2), (3, 3), (7, 100), (1000, 999)];
    for _ in 0..40 {
        sizes.push((rng.u32(1..=1000), rng.usize(0..=3000)));
    }
    for (n, rows) in sizes {
        if began.elapsed() > Duration::from_secs(20) {
            break;
        }
        let p = base(
            LoadModel::Closed {
                vus: n,
                duration: Some(Duration::from_secs(1)),
                iterations: None,
                stages: Vec::new(),
            },
            rows,
        );
        let ctx = format!("n={n} rows={rows}");
        check_rows(&p, n, &ctx);
        // Every shard has VUs here, so every shard needs a row.
        assert_eq!(
            check(&p, n).is_ok(),
            rows == 0 || rows >= n as usize,
            "{ctx}"
        );
    }
}

#[test]
fn a_shard_without_vus_is_valid_and_empty() {
    let p = base(
        LoadModel::Closed {
            vus: 2,
            duration: None,
            iterations: Some(10),
            stages: Vec::new(),
        },
        0,
    );
    assert!(check(&p, 5).is_ok());
    let last = split(&p, ShardSpec::new(4, 5).unwrap());
    assert!(matches!(
        last.load,
        LoadModel::Closed {
            vus: 0,
            iterations: Some(0),
            ..
        }
    ));
}

#[test]
fn the_plan_hash_names_the_unsplit_plan() {
    let load = LoadModel::Closed {
        vus: 10,
        duration: Some(Duration::from_secs(30)),
        iterations: None,
        stages: Vec::new(),
    };
    let a = base(load.clone(), 3);
    let h = plan_hash(&a);
    assert_eq!(h.len(), 16);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    // Stable: the same plan built again, or from another path, hashes the same.
    let mut b = base(load.clone(), 3);
    b.source = Some("/elsewhere/scenario.yaml".into());
    assert_eq!(plan_hash(&b), h);
    // Meaningful content changes it: load, data, name, target, thresholds, a header.
    let mut c = base(load.clone(), 3);
    c.load = LoadModel::Closed {
        vus: 11,
        duration: Some(Duration::from_secs(30)),
        iterations: None,
        stages: Vec::new(),
    };
    assert_ne!(plan_hash(&c), h);
    assert_ne!(plan_hash(&base(load.clone(), 4)), h);
    let mut d = base(load.clone(), 3);
    d.name = "other".into();
    assert_ne!(plan_hash(&d), h);
    let mut e = base(load.clone(), 3);
    e.target = sonde::plan::TargetSpec::Url("http://127.0.0.1:10/".parse().unwrap());
    assert_ne!(plan_hash(&e), h);
    let mut f = base(load.clone(), 3);
    f.thresholds
        .push(sonde::gate::parse_threshold("http", "p(95) < 300ms").unwrap());
    assert_ne!(plan_hash(&f), h);
    let mut g = base(load, 3);
    g.env.headers.push((
        "Authorization".into(),
        sonde::plan::Template::literal("Bearer x"),
    ));
    assert_ne!(plan_hash(&g), h);
    // A shard's share hashes differently from the whole: shards record the whole's hash.
    assert_ne!(plan_hash(&split(&a, ShardSpec::new(0, 2).unwrap())), h);
}

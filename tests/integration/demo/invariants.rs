//! Money invariants of the demo under concurrent load with payment faults on (declines,
//! timeouts, worker crashes and restarts), against the real server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::support::demo::{count, db, invest, req, start, token, wait_quiescent};
use sonde::demo::{DemoConfig, Fault, RunningDemo};
use sqlx::SqlitePool;
use tokio::sync::Semaphore;

const SEEDED_INVESTMENTS: i64 = 150_000;

/// A 202 the client saw: (who, key) → investment id and what was asked.
#[derive(Debug, Clone, PartialEq)]
struct Accepted {
    id: i64,
    user: String,
    startup: i64,
    amount: i64,
}

/// Remaining room of a startup, read through the API.
async fn room(demo: &RunningDemo, id: i64) -> i64 {
    let s = req(demo.addr, "GET", &format!("/startups/{id}"))
        .send()
        .await
        .json();
    s["funding_goal_cents"].as_i64().unwrap() - s["amount_raised_cents"].as_i64().unwrap()
}

/// Fires `plan` (who, key, startup, amount) with bounded concurrency; each request is sent
/// twice when `retry` (the way clients retry), and every 202 is recorded.
async fn fire(
    demo: &RunningDemo,
    plan: Vec<(String, String, i64, i64)>,
) -> BTreeMap<(String, String), Accepted> {
    let limit = Arc::new(Semaphore::new(16));
    let mut handles = Vec::new();
    for (i, (who, key, startup, amount)) in plan.into_iter().enumerate() {
        let permit = Arc::clone(&limit).acquire_owned().await.unwrap();
        let addr = demo.addr;
        let t = token(demo, &who);
        handles.push(tokio::spawn(async move {
            let _permit = permit;
            let send = || {
                req(addr, "POST", "/investments")
                    .bearer(&t)
                    .header("idempotency-key", &key)
                    .json(&serde_json::json!({"startup_id": startup, "amount_cents": amount}))
                    .send()
            };
            let mut seen = Vec::new();
            for _ in 0..(1 + usize::from(i % 5 == 0)) {
                let resp = send().await;
                assert!(
                    matches!(resp.status, 202 | 409 | 422),
                    "unexpected {}: {}",
                    resp.status,
                    resp.text()
                );
                if resp.status == 422 {
                    resp.assert_problem(422, Some("amount_cents"));
                }
                if resp.status == 202 {
                    seen.push(resp.json()["id"].as_i64().unwrap());
                }
            }
            (who, key, startup, amount, seen)
        }));
    }
    let mut accepted = BTreeMap::new();
    for h in handles {
        let (who, key, startup, amount, seen) = h.await.unwrap();
        let distinct: BTreeSet<i64> = seen.iter().copied().collect();
        assert!(distinct.len() <= 1, "one key, one investment: {seen:?}");
        if let Some(&id) = distinct.iter().next() {
            accepted.insert(
                (who.clone(), key),
                Accepted {
                    id,
                    user: who,
                    startup,
                    amount,
                },
            );
        }
    }
    accepted
}

/// Every invariant of issue 2, checked on the database and through the API.
async fn check_invariants(
    demo: &RunningDemo,
    pool: &SqlitePool,
    accepted: &BTreeMap<(String, String), Accepted>,
) {
    let in_flight = count(
        pool,
        "SELECT COUNT(*) FROM investments WHERE status IN ('pending', 'processing')",
    )
    .await;
    assert_eq!(in_flight, 0, "nothing left pending or processing");

    let bad_startups: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT s.id, s.amount_raised_cents, s.funding_goal_cents, s.reserved_cents,
                COALESCE((SELECT SUM(amount_cents) FROM investments i
                          WHERE i.startup_id = s.id AND i.status = 'completed'), 0) AS completed
         FROM startups s
         WHERE s.amount_raised_cents <> completed OR s.amount_raised_cents > s.funding_goal_cents
            OR s.reserved_cents <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        bad_startups.is_empty(),
        "raised must equal completed sums and stay within goals: {bad_startups:?}"
    );

    let double: i64 = count(
        pool,
        "SELECT COUNT(*) FROM (SELECT investment_id FROM payment_charges
                               WHERE outcome = 'captured'
                               GROUP BY investment_id HAVING COUNT(*) > 1)",
    )
    .await;
    assert_eq!(double, 0, "no investment charged twice");
    let mismatched = count(
        pool,
        &format!(
            "SELECT COUNT(*) FROM investments i WHERE i.id > {SEEDED_INVESTMENTS} AND
                 (i.status = 'completed') <> EXISTS (SELECT 1 FROM payment_charges c
                     WHERE c.investment_id = i.id AND c.outcome = 'captured')"
        ),
    )
    .await;
    assert_eq!(
        mismatched, 0,
        "completed exactly when a charge was captured"
    );

    // Every 202 maps to exactly one row, and every new row to a 202.
    let ids: BTreeSet<i64> = accepted.values().map(|a| a.id).collect();
    assert_eq!(
        ids.len(),
        accepted.len(),
        "distinct keys, distinct investments"
    );
    let new_rows = count(
        pool,
        &format!("SELECT COUNT(*) FROM investments WHERE id > {SEEDED_INVESTMENTS}"),
    )
    .await;
    assert_eq!(new_rows, i64::try_from(ids.len()).unwrap());
    for a in accepted.values() {
        let got = req(demo.addr, "GET", &format!("/investments/{}", a.id))
            .bearer(&token(demo, &a.user))
            .send()
            .await;
        assert_eq!(got.status, 200, "{}", got.text());
        let v = got.json();
        assert_eq!(
            (v["startup_id"].as_i64(), v["amount_cents"].as_i64()),
            (Some(a.startup), Some(a.amount))
        );
        assert!(matches!(v["status"].as_str(), Some("completed" | "failed")));
    }

    // The user total equals the sum of their completed rows.
    for who in ["whale", "typical", "other", "newbie"] {
        let ident = demo.identity(who).unwrap();
        let expected: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM investments
             WHERE user_id = ?1 AND status = 'completed'",
        )
        .bind(ident.user_id)
        .fetch_one(pool)
        .await
        .unwrap();
        let total = req(
            demo.addr,
            "GET",
            &format!("/users/{}/investments/total", ident.user_id),
        )
        .bearer(&ident.token)
        .send()
        .await
        .json();
        assert_eq!(total["total_cents"].as_i64(), Some(expected), "{who}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariants_hold_under_load_with_declines_timeouts_and_worker_crashes() {
    let demo = start(DemoConfig {
        faults: vec![
            Fault::PaymentLatency(Duration::from_millis(2)),
            Fault::PaymentDeclines(25.0),
            Fault::PaymentTimeouts(20.0),
            Fault::WorkerCrashAfterCharge,
        ],
        payment_timeout: Duration::from_millis(30),
        worker_restart_delay: Duration::from_millis(10),
        ..DemoConfig::default()
    })
    .await;
    let pool = db(demo.db_path()).await;

    // Three contested startups: each request asks for a ninth of the room, twenty ask, so only
    // some fit (and room freed by declines is taken again). Startup 25 is fully funded.
    let mut plan = Vec::new();
    let who = ["whale", "typical", "other", "newbie"];
    for (s, startup) in [11_i64, 12, 13].into_iter().enumerate() {
        let amount = room(&demo, startup).await / 9 + 1;
        for i in 0..20 {
            plan.push((
                who[(i + s) % 4].to_string(),
                format!("contest-{startup}-{i}"),
                startup,
                amount,
            ));
        }
    }
    for (i, w) in who.iter().enumerate() {
        plan.push((w.to_string(), format!("full-{i}"), 25, 100));
    }
    for i in 0..180_i64 {
        let startup = 30 + i % 40;
        plan.push((
            who[usize::try_from(i).unwrap() % 4].to_string(),
            format!("spread-{i}"),
            startup,
            1_000 + i * 7,
        ));
    }
    let accepted = fire(&demo, plan).await;
    assert!(
        !accepted.keys().any(|(_, k)| k.starts_with("full-")),
        "a fully funded startup takes nothing"
    );
    for startup in [11_i64, 12, 13] {
        let n = accepted.values().filter(|a| a.startup == startup).count();
        assert!((1..20).contains(&n), "startup {startup}: {n} of 20 fit");
    }

    wait_quiescent(&pool, Duration::from_secs(25)).await;
    check_invariants(&demo, &pool, &accepted).await;
    let stats = demo.stats();
    assert!(stats.worker_crashes > 0, "the crash fault fired: {stats:?}");
    assert!(stats.payment_timeouts > 0, "timeouts fired: {stats:?}");
    assert!(
        stats.reconciliations > 0,
        "timeouts were reconciled: {stats:?}"
    );
    assert!(stats.charges_declined > 0, "declines fired: {stats:?}");
    pool.close().await;
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_demo_finishes_the_tasks_its_predecessor_left_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("restart.sqlite");
    let first = start(DemoConfig {
        db_path: Some(db_path.clone()),
        faults: vec![Fault::PaymentLatency(Duration::from_millis(400))],
        task_lease: Duration::from_millis(300),
        worker_concurrency: 2,
        shutdown_grace: Duration::ZERO,
        ..DemoConfig::default()
    })
    .await;
    let tokens_before = first.identities.clone();
    let mut accepted = BTreeMap::new();
    for i in 0..8_i64 {
        let key = format!("before-restart-{i}");
        let resp = invest(&first, "typical", &key, 40 + i, 10_000).await;
        assert_eq!(resp.status, 202, "{}", resp.text());
        let a = Accepted {
            id: resp.json()["id"].as_i64().unwrap(),
            user: "typical".into(),
            startup: 40 + i,
            amount: 10_000,
        };
        accepted.insert(("typical".to_string(), key), a);
    }
    // Give the worker time to claim tasks (its charges take 400 ms), then "crash" it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.shutdown().await.unwrap();
    let pool = db(&db_path).await;
    let claimed = count(&pool, "SELECT COUNT(*) FROM tasks WHERE state = 'claimed'").await;
    let unfinished = count(&pool, "SELECT COUNT(*) FROM tasks WHERE state <> 'done'").await;
    assert!(claimed > 0, "claims survive the stop");
    assert!(unfinished > 0);
    pool.close().await;

    let second = start(DemoConfig {
        db_path: Some(db_path.clone()),
        task_lease: Duration::from_millis(300),
        ..DemoConfig::default()
    })
    .await;
    assert_eq!(second.identities, tokens_before, "same data, same tokens");
    let pool = db(&db_path).await;
    wait_quiescent(&pool, Duration::from_secs(15)).await;
    check_invariants(&second, &pool, &accepted).await;
    pool.close().await;
    second.shutdown().await.unwrap();
}

//! Idempotency of `POST /investments` against the real demo server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::support::demo::{count, db, db_rw, invest, req, start, token, user_id, wait_quiescent};
use serde_json::json;
use sonde::demo::DemoConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_requests_make_one_investment_one_task_one_charge() {
    let demo = start(DemoConfig::default()).await;
    let mut handles = Vec::new();
    for _ in 0..50 {
        let addr = demo.addr;
        let t = token(&demo, "typical");
        handles.push(tokio::spawn(async move {
            req(addr, "POST", "/investments")
                .bearer(&t)
                .header("idempotency-key", "fifty-at-once")
                .json(&json!({"startup_id": 3, "amount_cents": 12_345}))
                .send()
                .await
        }));
    }
    let mut originals = Vec::new();
    let mut replays = Vec::new();
    let mut conflicts = 0;
    for h in handles {
        let resp = h.await.unwrap();
        match resp.status {
            202 if resp.header("idempotent-replayed") == Some("true") => replays.push(resp.json()),
            202 => originals.push(resp.json()),
            409 => {
                resp.assert_problem(409, Some("Idempotency-Key"));
                conflicts += 1;
            }
            other => panic!("unexpected status {other}: {}", resp.text()),
        }
    }
    assert_eq!(originals.len(), 1, "exactly one request did the work");
    assert_eq!(replays.len() + conflicts, 49);
    let id = originals[0]["id"].as_i64().unwrap();
    assert!(
        replays.iter().all(|r| r == &originals[0]),
        "replays are the stored response"
    );

    let pool = db(demo.db_path()).await;
    let uid = user_id(&demo, "typical");
    wait_quiescent(&pool, Duration::from_secs(15)).await;
    let rows = count(
        &pool,
        &format!("SELECT COUNT(*) FROM investments WHERE user_id = {uid} AND id > 150000"),
    )
    .await;
    assert_eq!(rows, 1, "one investment");
    let tasks = count(
        &pool,
        &format!("SELECT COUNT(*) FROM tasks WHERE investment_id = {id}"),
    )
    .await;
    assert_eq!(tasks, 1, "one task");
    let charges: Vec<(String, i64)> =
        sqlx::query_as("SELECT payment_key, calls FROM payment_charges WHERE investment_id = ?1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        charges,
        vec![(format!("{uid}/fifty-at-once"), 1)],
        "one charge, with the client's key"
    );
    assert_eq!(demo.stats().charges_captured, 1);

    // Long after completion the key still replays the original 202, not a new investment.
    let again = invest(&demo, "typical", "fifty-at-once", 3, 12_345).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), originals[0]);
    pool.close().await;
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_body_is_422_and_another_users_identical_key_is_their_own() {
    let demo = start(DemoConfig::default()).await;
    let first = invest(&demo, "typical", "order-1", 4, 20_000).await;
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(
        first.header("location"),
        Some(format!("/investments/{}", first.json()["id"]).as_str())
    );

    let changed = invest(&demo, "typical", "order-1", 4, 20_001).await;
    changed.assert_problem(422, Some("Idempotency-Key"));
    let other_startup = invest(&demo, "typical", "order-1", 5, 20_000).await;
    other_startup.assert_problem(422, Some("Idempotency-Key"));

    // Same key, same body, but another user: a new request of theirs.
    let theirs = invest(&demo, "other", "order-1", 4, 20_000).await;
    assert_eq!(theirs.status, 202, "{}", theirs.text());
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(theirs.json()["id"], first.json()["id"]);
    assert_eq!(theirs.json()["user_id"], user_id(&demo, "other"));

    // Whitespace and field order do not make a different request.
    let reordered = req(demo.addr, "POST", "/investments")
        .bearer(&token(&demo, "typical"))
        .header("idempotency-key", "order-1")
        .raw(
            "application/json",
            br#"{ "amount_cents" : 20000 , "startup_id" : 4 }"#.to_vec(),
        )
        .send()
        .await;
    assert_eq!(reordered.status, 202);
    assert_eq!(reordered.header("idempotent-replayed"), Some("true"));
    assert_eq!(reordered.json(), first.json());
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_still_in_flight_answers_409() {
    let demo = start(DemoConfig::default()).await;
    let first = invest(&demo, "typical", "slow-one", 6, 5_000).await;
    assert_eq!(first.status, 202);
    // Stage "the first request is still running": the API cannot pause between its two
    // phases on demand, so flip the stored key back to in-flight (lock taken just now).
    let rw = db_rw(demo.db_path()).await;
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'in_flight',
             locked_at_ms = CAST(unixepoch('subsec') * 1000 AS INTEGER)
         WHERE key = 'slow-one'",
    )
    .execute(&rw)
    .await
    .unwrap();
    rw.close().await;
    let retry = invest(&demo, "typical", "slow-one", 6, 5_000).await;
    let problem = retry.assert_problem(409, Some("Idempotency-Key"));
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("still being processed")
    );
    // A different body is still a different request, in flight or not.
    invest(&demo, "typical", "slow-one", 6, 5_001)
        .await
        .assert_problem(422, Some("Idempotency-Key"));
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_idempotency_keys_are_400_before_any_write() {
    let demo = start(DemoConfig::default()).await;
    let pool = db(demo.db_path()).await;
    let writes =
        "SELECT (SELECT COUNT(*) FROM investments) + (SELECT COUNT(*) FROM idempotency_keys)
                       + (SELECT COUNT(*) FROM tasks)";
    let before = count(&pool, writes).await;
    let t = token(&demo, "typical");
    let body = json!({"startup_id": 3, "amount_cents": 1000});
    let post = || {
        req(demo.addr, "POST", "/investments")
            .bearer(&t)
            .json(&body)
    };
    let too_long = "k".repeat(256);
    let cases = vec![
        ("missing", post()),
        ("empty", post().header("idempotency-key", "")),
        ("256 chars", post().header("idempotency-key", &too_long)),
        (
            "repeated",
            post()
                .header("idempotency-key", "a")
                .header("idempotency-key", "a"),
        ),
    ];
    for (name, request) in cases {
        let resp = request.send().await;
        assert_eq!(resp.status, 400, "{name}: {}", resp.text());
        resp.assert_problem(400, Some("Idempotency-Key"));
    }
    // Non-ASCII bytes in the header value.
    let resp = post()
        .header_bytes("idempotency-key", b"caf\xe9")
        .send()
        .await;
    resp.assert_problem(400, Some("Idempotency-Key"));
    assert_eq!(count(&pool, writes).await, before, "nothing was written");

    let max = "k".repeat(255);
    let ok = invest(&demo, "typical", &max, 3, 1000).await;
    assert_eq!(ok.status, 202, "a 255-character key is fine: {}", ok.text());
    pool.close().await;
    demo.shutdown().await.unwrap();
}

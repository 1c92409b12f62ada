//! Seeding: fast (under 3 s cold, measured alone in this test binary so no other test competes
//! for the CPU), deterministic per seed, of the promised shape; temporary databases vanish at
//! shutdown. Real server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use crate::support::demo::{count, db, req, start};
use sonde::demo::DemoConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_is_fast_deterministic_and_has_the_promised_shape() {
    let config = DemoConfig {
        seed: 9001,
        ..DemoConfig::default()
    };
    let demo = start(config.clone()).await;
    eprintln!("cold seeding took {:?}", demo.seed_time);
    assert!(
        demo.seed_time < Duration::from_secs(3),
        "seeding took {:?}",
        demo.seed_time
    );
    assert!(demo.base_url().starts_with("http://127.0.0.1:"));
    assert_ne!(demo.addr.port(), 0);

    let pool = db(demo.db_path()).await;
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM users").await, 5_000);
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM startups").await, 300);
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM investments").await,
        150_000
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(DISTINCT industry || '/' || stage) FROM startups"
        )
        .await,
        30,
        "6 industries x 5 stages, all present"
    );
    let whale = demo.identity("whale").unwrap().user_id;
    assert_eq!(
        count(
            &pool,
            &format!("SELECT COUNT(*) FROM investments WHERE user_id = {whale}")
        )
        .await,
        20_000
    );
    let fk_violations: Vec<(String,)> =
        sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(fk_violations.is_empty(), "{fk_violations:?}");
    pool.close().await;

    let catalogue = req(demo.addr, "GET", "/startups?per_page=100&page=2")
        .send()
        .await
        .json();
    let path = demo.db_path().to_path_buf();
    let identities = demo.identities.clone();
    demo.shutdown().await.unwrap();
    assert!(!path.exists(), "temporary database removed");
    assert!(!path.parent().unwrap().exists(), "and its directory");

    // The same seed again: the same data and tokens, from the in-process image.
    let again = start(config).await;
    eprintln!("warm start took {:?}", again.seed_time);
    assert_eq!(again.identities, identities);
    let same = req(again.addr, "GET", "/startups?per_page=100&page=2")
        .send()
        .await
        .json();
    assert_eq!(same, catalogue);
    assert_ne!(
        again.db_path(),
        path.as_path(),
        "a fresh file, not the old one"
    );
    again.shutdown().await.unwrap();

    // Another seed: other tokens, other data.
    let other = start(DemoConfig {
        seed: 9002,
        ..DemoConfig::default()
    })
    .await;
    assert_ne!(other.identities, identities);
    let different = req(other.addr, "GET", "/startups?per_page=100&page=2")
        .send()
        .await
        .json();
    assert_ne!(different, catalogue);
    other.shutdown().await.unwrap();
}

//! Hostile and malformed input against the real demo server on 127.0.0.1:0: amounts, bodies,
//! filters, paths and sign-in. Always a precise 4xx (problem+json, with the field), never a
//! 500, never extra rows. Also pins the representations and the Server-Timing header.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::demo::{Resp, count, db, invest, req, start, token, user_id, wait_quiescent};
use serde_json::{Value, json};
use sonde::demo::DemoConfig;

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn assert_server_timing(resp: &Resp) {
    let st = resp.header("server-timing").unwrap_or_default();
    assert!(
        st.contains("db;dur=") && st.contains("app;dur="),
        "Server-Timing on every response, got {st:?} (status {})",
        resp.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_amounts_and_bodies_are_4xx_naming_the_field_and_write_nothing() {
    let demo = start(DemoConfig::default()).await;
    let pool = db(demo.db_path()).await;
    let writes =
        "SELECT (SELECT COUNT(*) FROM investments) + (SELECT COUNT(*) FROM idempotency_keys)";
    let before = count(&pool, writes).await;
    let t = token(&demo, "typical");
    let post = |key: &str, body: &[u8]| {
        req(demo.addr, "POST", "/investments")
            .bearer(&t)
            .header("idempotency-key", key)
            .raw("application/json", body.to_vec())
    };
    let amounts: [(&str, &str, u16); 9] = [
        ("minus-one", "-1", 422),
        ("zero", "0", 422),
        ("huge-float", "1e309", 400),
        ("string", "\"100\"", 422),
        ("fraction", "1.5", 422),
        ("ten-to-eleven", "100000000000", 422),
        ("u64", "18446744073709551615", 422),
        ("null", "null", 422),
        ("object", "{\"cents\": 5}", 422),
    ];
    for (key, amount, status) in amounts {
        let body = format!("{{\"startup_id\": 3, \"amount_cents\": {amount}}}");
        let resp = post(key, body.as_bytes()).send().await;
        resp.assert_problem(status, Some("amount_cents"));
        assert_server_timing(&resp);
    }
    let startup_ids: [(&str, &str); 3] = [("s-neg", "-5"), ("s-str", "\"3\""), ("s-float", "3.0")];
    for (key, id) in startup_ids {
        let body = format!("{{\"startup_id\": {id}, \"amount_cents\": 100}}");
        post(key, body.as_bytes())
            .send()
            .await
            .assert_problem(422, Some("startup_id"));
    }
    post("missing", br#"{"startup_id": 3}"#)
        .send()
        .await
        .assert_problem(422, Some("amount_cents"));
    post(
        "unknown",
        br#"{"startup_id": 3, "amount_cents": 5, "amount": 5}"#,
    )
    .send()
    .await
    .assert_problem(422, Some("amount"));
    post("array", b"[1, 2]")
        .send()
        .await
        .assert_problem(422, Some("."));
    let malformed = post("malformed", br#"{"startup_id": 3, "amount_cents": "#)
        .send()
        .await
        .assert_problem(400, Some("amount_cents"));
    assert!(
        malformed["detail"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    post("trailing", br#"{"startup_id": 3, "amount_cents": 5} x"#)
        .send()
        .await
        .assert_problem(400, Some("."));
    post("empty", b"")
        .send()
        .await
        .assert_problem(400, Some("."));
    let mut big = br#"{"startup_id": 3, "amount_cents": 5, "pad": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    big.extend(br#""}"#);
    post("big", &big)
        .send()
        .await
        .assert_problem(413, Some("."));
    let form = req(demo.addr, "POST", "/investments")
        .bearer(&t)
        .header("idempotency-key", "form")
        .raw(
            "application/x-www-form-urlencoded",
            b"startup_id=3".to_vec(),
        )
        .send()
        .await;
    form.assert_problem(415, None);
    // Business rules answer 422 too, naming the field, and are stored against the key.
    invest(&demo, "typical", "no-such-startup", 999_999, 100)
        .await
        .assert_problem(422, Some("startup_id"));
    invest(&demo, "typical", "no-room", 25, 100)
        .await
        .assert_problem(422, Some("amount_cents"));
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM investments").await,
        150_000,
        "no investment was written"
    );
    assert_eq!(
        count(&pool, writes).await,
        before + 2,
        "only the two business refusals were stored (for replay)"
    );
    pool.close().await;
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_filters_are_bound_parameters_and_pages_are_bounded() {
    let demo = start(DemoConfig::default()).await;
    let get = |q: String| req(demo.addr, "GET", &q).send();
    let pool = db(demo.db_path()).await;

    // Correct results for real filters, checked against the database.
    for (industry, stage) in [
        ("fintech", "seed"),
        ("ai", "series-c"),
        ("climate", "pre-seed"),
    ] {
        let resp = get(format!(
            "/startups?industry={industry}&stage={stage}&per_page=100"
        ))
        .await;
        assert_eq!(resp.status, 200);
        let v = resp.json();
        assert_eq!(
            keys(&v),
            BTreeSet::from(["items", "page", "per_page", "total"])
        );
        let expected: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM startups WHERE industry = ?1 AND stage = ?2")
                .bind(industry)
                .bind(stage)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(expected > 0);
        assert_eq!(v["total"], expected);
        let items = v["items"].as_array().unwrap();
        assert_eq!(i64::try_from(items.len()).unwrap(), expected);
        for s in items {
            assert_eq!(
                (s["industry"].as_str(), s["stage"].as_str()),
                (Some(industry), Some(stage))
            );
            assert_eq!(
                keys(s),
                BTreeSet::from([
                    "id",
                    "name",
                    "industry",
                    "stage",
                    "funding_goal_cents",
                    "amount_raised_cents"
                ])
            );
        }
    }
    let all = get("/startups?per_page=100&page=3".into()).await.json();
    assert_eq!(
        (
            all["total"].as_i64(),
            all["items"].as_array().unwrap().len()
        ),
        (Some(300), 100)
    );

    // Injection-looking and unicode values are plain values: correct (empty) or 422.
    for value in [
        "%27%20OR%201%3D1--",
        "fintech%27%20OR%20%271%27%3D%271",
        "%E2%9C%93%F0%9F%92%B8",
        "fintech%00",
        "%22%3B%20DROP%20TABLE%20startups%3B--",
    ] {
        let resp = get(format!("/startups?industry={value}")).await;
        assert_eq!(resp.status, 200, "industry={value}: {}", resp.text());
        let v = resp.json();
        assert_eq!(v["total"], 0, "industry={value} must match nothing");
        assert_eq!(v["items"], json!([]));
        assert_server_timing(&resp);
    }
    for value in ["%27%20OR%201%3D1--", "seed%27--", "SEED", "%E2%9C%93"] {
        get(format!("/startups?stage={value}"))
            .await
            .assert_problem(422, Some("stage"));
    }
    let empty = get("/startups?industry=nothing-here".into()).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["items"], json!([]));

    // Pages: far beyond the end is an empty page; nonsense or overflow is 422.
    let far = get("/startups?page=99999999999".into()).await;
    assert_eq!(far.status, 200);
    assert_eq!(far.json()["items"], json!([]));
    assert_eq!(far.json()["total"], 300);
    for (q, field) in [
        ("page=9223372036854775807&per_page=100", "page"),
        ("page=99999999999999999999", "page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("per_page=1000", "per_page"),
        ("per_page=0", "per_page"),
        ("stage=seed&stage=seed", "stage"),
    ] {
        get(format!("/startups?{q}"))
            .await
            .assert_problem(422, Some(field));
    }
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM startups").await, 300);
    pool.close().await;
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_ownership_rules() {
    let demo = start(DemoConfig::default()).await;
    let typical = user_id(&demo, "typical");
    let t = token(&demo, "typical");
    for path in [
        format!("/users/{typical}/profile"),
        format!("/users/{typical}/investments/total"),
        "/investments/1".to_string(),
    ] {
        let anon = req(demo.addr, "GET", &path).send().await;
        anon.assert_problem(401, None);
        assert!(anon.header("www-authenticate").is_some());
        assert_server_timing(&anon);
        req(demo.addr, "GET", &path)
            .bearer("sd_not-a-token")
            .send()
            .await
            .assert_problem(401, None);
    }
    // Cookie sign-in works like the bearer token.
    let by_cookie = req(demo.addr, "GET", &format!("/users/{typical}/profile"))
        .header("cookie", &format!("theme=dark; session={t}"))
        .send()
        .await;
    assert_eq!(by_cookie.status, 200);

    // Someone else's id is 404 exactly like a missing one.
    let whale = user_id(&demo, "whale");
    for suffix in ["profile", "investments/total"] {
        let theirs = req(demo.addr, "GET", &format!("/users/{whale}/{suffix}"))
            .bearer(&t)
            .send()
            .await
            .assert_problem(404, None);
        let missing = req(demo.addr, "GET", &format!("/users/987654/{suffix}"))
            .bearer(&t)
            .send()
            .await
            .assert_problem(404, None);
        assert_eq!(theirs, missing);
        req(demo.addr, "GET", &format!("/users/abc/{suffix}"))
            .bearer(&t)
            .send()
            .await
            .assert_problem(404, None);
    }
    // Investment 1 is seeded and not the typical user's.
    let pool = db(demo.db_path()).await;
    let owner = count(&pool, "SELECT user_id FROM investments WHERE id = 1").await;
    assert_ne!(owner, typical);
    let theirs = req(demo.addr, "GET", "/investments/1")
        .bearer(&t)
        .send()
        .await;
    let missing = req(demo.addr, "GET", "/investments/99999999")
        .bearer(&t)
        .send()
        .await;
    assert_eq!(
        theirs.assert_problem(404, None),
        missing.assert_problem(404, None)
    );
    for path in [
        "/startups/abc",
        "/startups/0",
        "/startups/99999999999999999999",
        "/nope",
    ] {
        req(demo.addr, "GET", path)
            .send()
            .await
            .assert_problem(404, None);
    }
    let wrong_method = req(demo.addr, "DELETE", "/startups/1").send().await;
    wrong_method.assert_problem(405, None);
    assert_server_timing(&wrong_method);
    pool.close().await;
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_representations_and_server_timing() {
    let demo = start(DemoConfig::default()).await;
    let ids = req(demo.addr, "GET", "/demo/identities").send().await;
    assert_eq!(ids.status, 200);
    assert_eq!(ids.header("x-demo-only"), Some("true"));
    assert_server_timing(&ids);
    let list = ids.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"whale") && names.contains(&"typical"),
        "{names:?}"
    );
    for i in list.as_array().unwrap() {
        assert_eq!(keys(i), BTreeSet::from(["name", "user_id", "token"]));
        let me = i["user_id"].as_i64().unwrap();
        let profile = req(demo.addr, "GET", &format!("/users/{me}/profile"))
            .bearer(i["token"].as_str().unwrap())
            .send()
            .await;
        assert_eq!(profile.status, 200, "the listed token works");
        assert_server_timing(&profile);
        let p = profile.json();
        assert_eq!(
            keys(&p),
            BTreeSet::from(["user", "totals", "recent_investments"])
        );
        assert_eq!(p["user"]["id"], me);
    }

    // The whale holds 20,000 investments; the newbie none, and a total of 0.
    let whale = user_id(&demo, "whale");
    let wp = req(demo.addr, "GET", &format!("/users/{whale}/profile"))
        .bearer(&token(&demo, "whale"))
        .send()
        .await
        .json();
    assert_eq!(wp["totals"]["investments_count"], 20_000);
    let recent = wp["recent_investments"].as_array().unwrap();
    assert_eq!(recent.len(), 10);
    let first = &recent[0];
    assert_eq!(first["startup"]["id"], first["startup_id"]);
    let newbie = user_id(&demo, "newbie");
    let total = req(
        demo.addr,
        "GET",
        &format!("/users/{newbie}/investments/total"),
    )
    .bearer(&token(&demo, "newbie"))
    .send()
    .await
    .json();
    assert_eq!(total["total_cents"], 0);

    // An investment: exact representation, and payment timing once the worker charged it.
    let created = invest(&demo, "newbie", "first", 7, 2_500).await;
    assert_eq!(created.status, 202);
    assert_server_timing(&created);
    let inv = created.json();
    assert_eq!(
        keys(&inv),
        BTreeSet::from([
            "id",
            "user_id",
            "startup_id",
            "amount_cents",
            "status",
            "created_at"
        ])
    );
    assert_eq!(inv["status"], "pending");
    assert_eq!(inv["amount_cents"], 2_500);
    let pool = db(demo.db_path()).await;
    wait_quiescent(&pool, Duration::from_secs(10)).await;
    let done = req(demo.addr, "GET", &format!("/investments/{}", inv["id"]))
        .bearer(&token(&demo, "newbie"))
        .send()
        .await;
    assert_eq!(done.json()["status"], "completed");
    assert!(
        done.header("server-timing")
            .unwrap()
            .contains("payment;dur=")
    );
    let total = req(
        demo.addr,
        "GET",
        &format!("/users/{newbie}/investments/total"),
    )
    .bearer(&token(&demo, "newbie"))
    .send()
    .await
    .json();
    assert_eq!(total["total_cents"], 2_500);
    pool.close().await;
    demo.shutdown().await.unwrap();
}

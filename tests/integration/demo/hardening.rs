//! The demo against hostile input, on 127.0.0.1:0: control characters in names, an
//! `Idempotency-Key` with a space, JSON with a repeated key (each a problem+json naming the
//! field, nothing written); and its event stream's ids with a `Last-Event-ID` reconnect that
//! replays every status after the one the client saw.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::support::demo::{invest, req, start, token};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sonde::demo::{DemoConfig, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_are_refused_naming_the_field() {
    let demo = start(DemoConfig::default()).await;
    let t = token(&demo, "typical");
    let post = |path: &str| req(demo.addr, "POST", path).bearer(&t);
    assert_eq!(post("/onboarding/start").send().await.status, 200);
    for name in [
        "Ada\u{0}Lovelace",
        "Ada\u{7}",
        "Ada\nLovelace",
        "Ada\u{1b}[31m",
        "x\u{85}y",
    ] {
        let v = post("/onboarding/steps/1")
            .json(&json!({ "display_name": name }))
            .send()
            .await
            .assert_problem(422, Some("display_name"));
        assert!(
            v["detail"].as_str().unwrap().contains("control characters"),
            "{v}"
        );
    }
    // Ordinary text, accents and emoji included, still passes.
    let ok = post("/onboarding/steps/1")
        .json(&json!({ "display_name": "Zoë 🚀 Ångström" }))
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_must_be_visible_ascii() {
    let demo = start(DemoConfig::default()).await;
    for key in ["two words", "tab\there", "a b c"] {
        let v = invest(&demo, "typical", key, 3, 1_000)
            .await
            .assert_problem(400, Some("Idempotency-Key"));
        assert!(
            v["detail"].as_str().unwrap().contains("visible ASCII"),
            "{v}"
        );
    }
    assert_eq!(
        invest(&demo, "typical", "no-space_1.2~", 3, 1_000)
            .await
            .status,
        202
    );
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_json_key_is_refused_naming_it() {
    let demo = start(DemoConfig::default()).await;
    let t = token(&demo, "typical");
    let send = |key: &str, body: &str| {
        req(demo.addr, "POST", "/investments")
            .bearer(&t)
            .header("idempotency-key", key)
            .raw("application/json", body.as_bytes().to_vec())
            .send()
    };
    // Which amount would count? Neither: the request is refused and nothing is created.
    let v = send(
        "dup-1",
        r#"{"startup_id": 3, "amount_cents": 100, "amount_cents": 99999999}"#,
    )
    .await
    .assert_problem(400, Some("amount_cents"));
    assert!(
        v["detail"].as_str().unwrap().contains("more than once"),
        "{v}"
    );
    send(
        "dup-2",
        r#"{"startup_id": 3, "amount_cents": 100, "x": {"y": 1, "y": 2}}"#,
    )
    .await
    .assert_problem(400, Some("x.y"));
    // The same body without the repeat is an ordinary request.
    let ok = send("dup-3", r#"{"startup_id": 3, "amount_cents": 100}"#).await;
    assert_eq!(ok.status, 202, "{}", ok.text());
    demo.shutdown().await.unwrap();
}

/// SSE events as (id, event name, data) until the stream ends or `limit` passes; stops early
/// after `max` events. Returns the events and whether the stream ended.
async fn sse(
    mut body: hyper::body::Incoming,
    limit: Duration,
    max: usize,
) -> (Vec<(Option<String>, String, Value)>, bool) {
    let deadline = Instant::now() + limit;
    let mut text = String::new();
    let mut ended = false;
    while Instant::now() < deadline && text.matches("\n\n").count() < max {
        match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    text.push_str(&String::from_utf8_lossy(d));
                }
            }
            Ok(None) => {
                ended = true;
                break;
            }
            Ok(Some(Err(_))) | Err(_) => break,
        }
    }
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut id, mut name, mut data) = (None, String::new(), String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim());
            }
        }
        if !name.is_empty() {
            out.push((id, name, serde_json::from_str(&data).unwrap_or(Value::Null)));
        }
    }
    (out, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_has_ids_and_a_reconnect_replays_what_was_missed() {
    let demo = start(DemoConfig {
        faults: vec![Fault::PaymentLatency(Duration::from_millis(400))],
        ..DemoConfig::default()
    })
    .await;
    let created = invest(&demo, "typical", "replay-me", 8, 4_200).await;
    assert_eq!(created.status, 202, "{}", created.text());
    let id = created.json()["id"].as_i64().unwrap();
    let t = token(&demo, "typical");
    let path = format!("/investments/{id}/events");

    // First connection: read the first status, then go away.
    let (status, _, body) = req(demo.addr, "GET", &path).bearer(&t).stream().await;
    assert_eq!(status, 200);
    let (first, _) = sse(body, Duration::from_secs(10), 1).await;
    let (first_id, name, data) = first.first().cloned().unwrap();
    assert_eq!(name, "status");
    let first_id = first_id.expect("every status event has an id");
    let seen: u8 = first_id.parse().unwrap();

    // Wait for the final status while disconnected.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = req(demo.addr, "GET", &format!("/investments/{id}"))
            .bearer(&t)
            .send()
            .await
            .json();
        if now["status"] == "completed" || now["status"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "never settled: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Reconnect: every status after the one seen, in order, with growing ids, then the end.
    let (_, _, body) = req(demo.addr, "GET", &path)
        .bearer(&t)
        .header("last-event-id", &first_id)
        .stream()
        .await;
    let (replayed, ended) = sse(body, Duration::from_secs(10), 10).await;
    assert!(
        ended,
        "the stream ends after the final status: {replayed:?}"
    );
    let ids: Vec<u8> = replayed
        .iter()
        .map(|(i, _, _)| i.as_deref().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<u8> = (seen + 1..=3).collect();
    assert_eq!(ids, expected, "after {data}: {replayed:?}");
    let statuses: Vec<&str> = replayed
        .iter()
        .map(|(_, _, v)| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&"completed"), "{statuses:?}");
    if seen == 1 {
        assert_eq!(statuses, vec!["processing", "completed"]);
    }

    // A client that has seen the final status gets nothing more; one without an id gets the
    // current status, id 3.
    let (_, _, body) = req(demo.addr, "GET", &path)
        .bearer(&t)
        .header("last-event-id", "3")
        .stream()
        .await;
    let (none, ended) = sse(body, Duration::from_secs(10), 10).await;
    assert!(ended && none.is_empty(), "{none:?}");
    let (_, _, body) = req(demo.addr, "GET", &path).bearer(&t).stream().await;
    let (fresh, ended) = sse(body, Duration::from_secs(10), 10).await;
    assert!(ended);
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_eq!(fresh[0].0.as_deref(), Some("3"));
    demo.shutdown().await.unwrap();
}

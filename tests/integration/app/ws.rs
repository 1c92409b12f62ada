//! The WebSocket twin of the live status stream (`GET /investments/{id}/ws`) against the real
//! demo on 127.0.0.1: the same events as the SSE stream, each with its id, then a normal close;
//! a resume after an id (query parameter or `Last-Event-ID`) sends only what follows; sign-in
//! and ownership are checked before the upgrade.

use std::time::Duration;

use crate::support::demo::{invest, read_events, req, start, token};
use futures_util::StreamExt;
use serde_json::Value;
use sonde::demo::{DemoConfig, Fault, RunningDemo};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Opens the socket with the given credentials/headers; the messages (event, id, data) until
/// the server closes, and the close code. Bounded: 20 s.
async fn ws_events(
    demo: &RunningDemo,
    path: &str,
    headers: &[(&str, &str)],
) -> (Vec<(String, Option<String>, Value)>, Option<CloseCode>) {
    let mut request = format!("ws://{}{path}", demo.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let tcp = tokio::net::TcpStream::connect(demo.addr).await.unwrap();
    let (mut socket, resp) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(resp.status(), 101);
    let mut events = Vec::new();
    let mut close = None;
    let read = async {
        while let Some(msg) = socket.next().await {
            match msg.unwrap() {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    events.push((
                        v["event"].as_str().unwrap().to_string(),
                        v["id"].as_str().map(str::to_string),
                        v["data"].clone(),
                    ));
                }
                Message::Close(frame) => {
                    close = frame.map(|f| f.code);
                    break;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the socket stayed open 20 s without reaching a final status");
    (events, close)
}

fn statuses(events: &[(String, Option<String>, Value)]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|(e, id, d)| {
            assert_eq!(e, "status");
            (
                id.clone().unwrap(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_carries_the_sse_events_with_ids_then_closes_normally() {
    let demo = start(DemoConfig {
        faults: vec![Fault::PaymentLatency(Duration::from_millis(300))],
        ..DemoConfig::default()
    })
    .await;
    let created = invest(&demo, "typical", "ws-1", 2, 100).await;
    assert_eq!(created.status, 202);
    let id = created.json()["id"].as_i64().unwrap();
    let session = format!("session={}", token(&demo, "typical"));
    // Signed in by the session cookie, as the browser app is.
    let (events, close) = ws_events(
        &demo,
        &format!("/investments/{id}/ws"),
        &[("cookie", &session)],
    )
    .await;
    let got = statuses(&events);
    // Live from pending (or processing, if the worker was quicker) to the final status; the
    // ids are the SSE stream's: 1 pending, 2 processing, 3 final.
    let (last_id, last) = got.last().unwrap().clone();
    assert_eq!(
        (last_id.as_str(), last.as_str()),
        ("3", "completed"),
        "{got:?}"
    );
    let ids: Vec<u32> = got.iter().map(|(i, _)| i.parse().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids only grow: {ids:?}"
    );
    assert_eq!(close, Some(CloseCode::Normal));

    // The SSE stream of the same (now final) investment sends the same final event.
    let (_, _, body) = req(demo.addr, "GET", &format!("/investments/{id}/events"))
        .header("cookie", &session)
        .stream()
        .await;
    let (sse, ended) = read_events(body, Duration::from_secs(10)).await;
    assert!(ended);
    assert_eq!(sse.len(), 1);
    assert_eq!(sse[0].0, "status");
    assert_eq!(
        sse[0].1,
        events.last().unwrap().2,
        "the same data on both streams"
    );
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_sends_only_the_statuses_after_the_id_it_names() {
    let demo = start(DemoConfig::default()).await;
    let created = invest(&demo, "typical", "ws-resume", 3, 100).await;
    let id = created.json()["id"].as_i64().unwrap();
    let bearer = format!("Bearer {}", token(&demo, "typical"));
    let auth = [("authorization", bearer.as_str())];
    // Wait for the final status first, so every resume below sees the same history.
    let (all, _) = ws_events(&demo, &format!("/investments/{id}/ws"), &auth).await;
    assert_eq!(statuses(&all).last().unwrap().1, "completed");

    // Seen 1 (pending), by query parameter: only the final status follows (processing was
    // replayed if still retained; never pending again).
    let (after1, close) = ws_events(
        &demo,
        &format!("/investments/{id}/ws?last_event_id=1"),
        &auth,
    )
    .await;
    let after1 = statuses(&after1);
    assert!(after1.iter().all(|(i, _)| i != "1"), "{after1:?}");
    assert_eq!(
        after1.last().unwrap(),
        &("3".to_string(), "completed".to_string())
    );
    assert_eq!(close, Some(CloseCode::Normal));

    // Seen 3 (final), by header: nothing to send, a normal close.
    let with_header = [auth[0], ("last-event-id", "3")];
    let (none, close) = ws_events(&demo, &format!("/investments/{id}/ws"), &with_header).await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(close, Some(CloseCode::Normal));

    // The query parameter wins over the header; an id that is not this stream's counts as
    // absent (the current status is sent).
    let both = [auth[0], ("last-event-id", "3")];
    let (from_query, _) = ws_events(
        &demo,
        &format!("/investments/{id}/ws?last_event_id=2"),
        &both,
    )
    .await;
    assert_eq!(
        statuses(&from_query),
        vec![("3".into(), "completed".into())]
    );
    let (bogus, _) = ws_events(
        &demo,
        &format!("/investments/{id}/ws?last_event_id=99"),
        &auth,
    )
    .await;
    assert_eq!(statuses(&bogus), vec![("3".into(), "completed".into())]);
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_plain_gets_are_refused_before_any_upgrade() {
    let demo = start(DemoConfig::default()).await;
    let created = invest(&demo, "typical", "ws-stranger", 2, 100).await;
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/investments/{id}/ws");
    let upgrade = |r: crate::support::demo::Req| {
        r.header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    };
    // No sign-in: 401; another user's investment: 404 (as if it did not exist), no upgrade.
    upgrade(req(demo.addr, "GET", &path))
        .send()
        .await
        .assert_problem(401, None);
    upgrade(req(demo.addr, "GET", &path))
        .bearer(&token(&demo, "whale"))
        .send()
        .await
        .assert_problem(404, None);
    upgrade(req(demo.addr, "GET", "/investments/999999/ws"))
        .bearer(&token(&demo, "typical"))
        .send()
        .await
        .assert_problem(404, None);
    // Signed in and the owner, but not a WebSocket handshake: a client error, as problem+json.
    let plain = req(demo.addr, "GET", &path)
        .bearer(&token(&demo, "typical"))
        .send()
        .await;
    assert!((400..500).contains(&plain.status), "{}", plain.status);
    assert!(
        plain
            .header("content-type")
            .unwrap()
            .starts_with("application/problem+json")
    );
    demo.shutdown().await.unwrap();
}

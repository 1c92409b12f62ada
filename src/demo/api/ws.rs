//! `GET /investments/{id}/ws`: the investment's live status over a WebSocket, the same events
//! as the Server-Sent Events stream (`/investments/{id}/events`). Each message is one JSON
//! text frame, `{"event":"status","id":"2","data":{...investment...}}` or
//! `{"event":"lagged","data":{"missed":N,"detail":"..."}}`; after the final status (or
//! `lagged`, or at shutdown) the server closes with 1000. A reconnect resumes after the id it
//! names, in the `Last-Event-ID` header or the `last_event_id` query parameter (browsers cannot
//! set headers on a WebSocket). Sign-in and ownership are checked before the upgrade, so a
//! stranger gets the same 401/404 problem as on the SSE stream.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{Stream, StreamExt};

use super::investments::{FeedItem, last_seen_rank, seen_rank_from, status_feed};
use super::problem::ApiError;
use super::{Shared, User, path_id};

/// The resume point: the `last_event_id` query parameter, else the `Last-Event-ID` header.
fn resume_rank(headers: &HeaderMap, query: Option<&str>) -> Option<u8> {
    let from_query = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "last_event_id")
            .and_then(|(_, v)| seen_rank_from(&v))
    });
    from_query.or_else(|| last_seen_rank(headers))
}

fn frame(item: &FeedItem) -> String {
    match item {
        FeedItem::Status(id, inv) => serde_json::json!({
            "event": "status",
            "id": id.to_string(),
            "data": inv,
        }),
        FeedItem::Lagged { missed, detail } => serde_json::json!({
            "event": "lagged",
            "data": {"missed": missed, "detail": detail},
        }),
    }
    .to_string()
}

pub(crate) async fn status(
    State(state): State<Shared>,
    User(user_id): User,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let id = path_id(&raw, "investment")?;
    let seen = resume_rank(&headers, query.as_deref());
    let feed = status_feed(&state, user_id, id, seen).await?;
    Ok(upgrade.on_upgrade(move |socket| pump(socket, feed)))
}

/// Sends the feed's events until it ends or the client goes away, then closes normally.
async fn pump(mut socket: WebSocket, feed: impl Stream<Item = FeedItem> + Send + 'static) {
    let mut feed = std::pin::pin!(feed);
    loop {
        tokio::select! {
            item = feed.next() => match item {
                Some(item) => {
                    if socket.send(Message::Text(frame(&item).into())).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                // The client closed or the connection broke: nothing more to send.
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                // Pings are answered by the protocol layer; other frames carry nothing here.
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "final status sent".into(),
        })))
        .await;
}

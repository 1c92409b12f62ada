//! `POST /investments` (idempotent, reserving against the funding goal), `GET /investments/{id}`
//! and its live status stream (Server-Sent Events fed by the hub). Payment happens in the
//! worker, never here.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::watch;

use super::body::{json_object, only_fields, required_int};
use super::problem::{ApiError, PROBLEM_JSON};
use super::{Shared, User, path_id};
use crate::demo::db::{Db, now_ms};
use crate::demo::hub::{Delivery, Subscription};
use crate::demo::model::{INVESTMENT_COLUMNS, Investment, investment_topic, status_rank};
use crate::demo::timing;

/// 10^10 cents: the largest single investment.
pub(crate) const MAX_AMOUNT_CENTS: i64 = 10_000_000_000;
const MAX_KEY_LEN: usize = 255;
/// An in-flight key older than this is presumed abandoned (its request died) and taken over.
const STALE_LOCK_MS: i64 = 60_000;

/// Validates the `Idempotency-Key` header: exactly one, 1..=255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let bad = |detail: &str| {
        ApiError::bad_request("bad-idempotency-key", detail.to_string())
            .with_field("Idempotency-Key")
    };
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Err(bad("the Idempotency-Key header is required"));
    };
    if values.next().is_some() {
        return Err(bad("send the Idempotency-Key header once"));
    }
    // Visible ASCII only (0x21-0x7E): `to_str` also lets spaces and tabs through.
    let key = value
        .to_str()
        .ok()
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            bad("the Idempotency-Key must be visible ASCII (no spaces or control characters)")
        })?;
    if key.is_empty() {
        return Err(bad("the Idempotency-Key is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad("the Idempotency-Key is longer than 255 characters"));
    }
    Ok(key.to_string())
}

enum KeyState {
    /// This request owns the key now (phase 2 may run).
    Owned,
    Replay {
        status: u16,
        body: String,
    },
    InFlight,
    Mismatch,
}

/// The response stored against a key, replayed verbatim for a retry.
struct Stored {
    status: StatusCode,
    body: String,
    investment_id: Option<i64>,
}

impl Stored {
    fn problem(err: ApiError) -> Self {
        Stored {
            status: err.status,
            body: err.problem().to_json(),
            investment_id: None,
        }
    }
}

pub(crate) async fn create(
    State(state): State<Shared>,
    User(user_id): User,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Everything that can be checked without the database is checked before any write.
    let key = idempotency_key(&headers)?;
    let map = json_object(&headers, body, false)?;
    only_fields(&map, "", &["startup_id", "amount_cents"])?;
    let startup_id = required_int(&map, "startup_id", 1, i64::MAX)?;
    let amount = required_int(&map, "amount_cents", 1, MAX_AMOUNT_CENTS)?;
    let request_hash: Vec<u8> = Sha256::digest(format!(
        "POST /investments\nstartup_id={startup_id}\namount_cents={amount}"
    ))
    .to_vec();

    // Phase 1: take the key (or learn it is taken). A concurrent twin now sees `in_flight`.
    match timing::db(lock_key(&state.db, user_id, &key, &request_hash)).await? {
        KeyState::Owned => {}
        KeyState::Replay { status, body } => return Ok(replay(status, body)),
        KeyState::InFlight => {
            return Err(ApiError::conflict(
                "idempotency-key-in-flight",
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .with_field("Idempotency-Key"));
        }
        KeyState::Mismatch => {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "this Idempotency-Key was already used with a different request body",
            ));
        }
    }
    // Phase 2: the investment itself, and the stored response, in one transaction.
    let stored = timing::db(execute(&state.db, user_id, &key, startup_id, amount)).await;
    match stored {
        Ok(stored) => {
            if stored.investment_id.is_some() {
                state.wake.notify_one();
            }
            Ok(respond(stored))
        }
        Err(err) => {
            // Nothing was written; free the key so the client's retry can succeed.
            let _ = timing::db(unlock_key(&state.db, user_id, &key)).await;
            Err(err.into())
        }
    }
}

async fn lock_key(db: &Db, user_id: i64, key: &str, hash: &[u8]) -> Result<KeyState, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(
        "SELECT request_sha256, state, locked_at_ms, response_status, response_body
         FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?;
    let state = match row {
        None => {
            sqlx::query(
                "INSERT INTO idempotency_keys
                     (user_id, key, request_sha256, state, locked_at_ms, created_at)
                 VALUES (?1, ?2, ?3, 'in_flight', ?4, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
            )
            .bind(user_id)
            .bind(key)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            KeyState::Owned
        }
        Some(row) => {
            let stored_hash: Vec<u8> = row.try_get(0)?;
            let key_state: String = row.try_get(1)?;
            let locked_at: i64 = row.try_get(2)?;
            if stored_hash != hash {
                KeyState::Mismatch
            } else if key_state == "done" {
                let status: Option<i64> = row.try_get(3)?;
                let body: Option<String> = row.try_get(4)?;
                KeyState::Replay {
                    status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                    body: body.unwrap_or_default(),
                }
            } else if now.saturating_sub(locked_at) > STALE_LOCK_MS {
                sqlx::query(
                    "UPDATE idempotency_keys SET locked_at_ms = ?3 WHERE user_id = ?1 AND key = ?2",
                )
                .bind(user_id)
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                KeyState::Owned
            } else {
                KeyState::InFlight
            }
        }
    };
    tx.commit().await?;
    Ok(state)
}

async fn unlock_key(db: &Db, user_id: i64, key: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND state = 'in_flight'",
    )
    .bind(user_id)
    .bind(key)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Reserves the amount, inserts the `pending` investment and its payment task, and stores the
/// response against the key: all or nothing.
async fn execute(
    db: &Db,
    user_id: i64,
    key: &str,
    startup_id: i64,
    amount: i64,
) -> Result<Stored, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let room: Option<i64> = sqlx::query_scalar(
        "SELECT funding_goal_cents - amount_raised_cents - reserved_cents
         FROM startups WHERE id = ?1",
    )
    .bind(startup_id)
    .fetch_optional(&mut *tx)
    .await?;
    let no_room = |room: i64| {
        Stored::problem(ApiError::invalid(
            "amount_cents",
            format!("exceeds the startup's remaining room of {room} cents"),
        ))
    };
    let stored = match room {
        None => Stored::problem(ApiError::invalid("startup_id", "no such startup")),
        Some(room) if amount > room => no_room(room),
        Some(room) => {
            // The guard repeats the room check in the UPDATE itself: correct even if this ever
            // ran outside BEGIN IMMEDIATE. The table's CHECK constraint is the last line.
            let reserved = sqlx::query(
                "UPDATE startups SET reserved_cents = reserved_cents + ?2
                 WHERE id = ?1 AND amount_raised_cents + reserved_cents + ?2 <= funding_goal_cents",
            )
            .bind(startup_id)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
            if reserved.rows_affected() == 1 {
                let row = sqlx::query(&format!(
                    "INSERT INTO investments (user_id, startup_id, amount_cents, status, created_at)
                     VALUES (?1, ?2, ?3, 'pending', unixepoch('now'))
                     RETURNING {INVESTMENT_COLUMNS}"
                ))
                .bind(user_id)
                .bind(startup_id)
                .bind(amount)
                .fetch_one(&mut *tx)
                .await?;
                let investment = Investment::from_row(&row)?;
                sqlx::query(
                    "INSERT INTO tasks (investment_id, payment_key, state, updated_at_ms)
                     VALUES (?1, ?2, 'queued', ?3)",
                )
                .bind(investment.id)
                .bind(format!("{user_id}/{key}"))
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                Stored {
                    status: StatusCode::ACCEPTED,
                    body: serde_json::to_string(&investment).unwrap_or_default(),
                    investment_id: Some(investment.id),
                }
            } else {
                no_room(room)
            }
        }
    };
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', response_status = ?3, response_body = ?4,
             response_sha256 = ?5, investment_id = ?6
         WHERE user_id = ?1 AND key = ?2",
    )
    .bind(user_id)
    .bind(key)
    .bind(i64::from(stored.status.as_u16()))
    .bind(&stored.body)
    .bind(Sha256::digest(stored.body.as_bytes()).to_vec())
    .bind(stored.investment_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(stored)
}

fn respond(stored: Stored) -> Response {
    let content_type = if stored.status.is_success() {
        "application/json"
    } else {
        PROBLEM_JSON
    };
    let mut resp = (
        stored.status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        stored.body,
    )
        .into_response();
    if let Some(id) = stored.investment_id
        && let Ok(location) = HeaderValue::from_str(&format!("/investments/{id}"))
    {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let investment_id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .filter(|_| status.is_success())
        .and_then(|v| v.get("id").and_then(serde_json::Value::as_i64));
    let mut resp = respond(Stored {
        status,
        body,
        investment_id,
    });
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// The signed-in user's investment with that id (another user's is 404, like a missing one).
async fn own_investment(
    db: &Db,
    user_id: i64,
    id: i64,
) -> Result<(Investment, Option<i64>), ApiError> {
    let row = timing::db(
        sqlx::query(&format!(
            "SELECT {cols}, (SELECT payment_ms FROM tasks t WHERE t.investment_id = i.id)
             FROM investments i WHERE i.id = ?1 AND i.user_id = ?2",
            cols = INVESTMENT_COLUMNS
                .split(", ")
                .map(|c| format!("i.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&db.read),
    )
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found("investment"))?;
    Ok((Investment::from_row(&row)?, row.try_get(6)?))
}

pub(crate) async fn get_one(
    State(state): State<Shared>,
    User(user_id): User,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&raw, "investment")?;
    let (investment, payment_ms) = own_investment(&state.db, user_id, id).await?;
    if let Some(ms) = payment_ms.and_then(|ms| u64::try_from(ms).ok()) {
        timing::payment(Duration::from_millis(ms));
    }
    Ok(axum::Json(investment).into_response())
}

/// What one event stream holds between events.
struct Feed {
    id: i64,
    sub: Subscription<Investment>,
    /// Status events to send before the live ones (the snapshot, or a replay).
    backlog: std::collections::VecDeque<Investment>,
    /// Rank of the last status sent (or already seen by the client); live events at or below
    /// it are not news.
    last_rank: Option<u8>,
    /// The investment was final when the stream opened: nothing follows the backlog.
    final_known: bool,
    done: bool,
    stopping: watch::Receiver<bool>,
}

/// A status event's id: one more than its status rank, so `pending` is 1, `processing` 2 and
/// the final status 3, on every connection: the ids of one investment's stream only grow, and
/// a `Last-Event-ID` says exactly which statuses the client has seen.
fn event_id(inv: &Investment) -> u8 {
    status_rank(&inv.status) + 1
}

fn status_event(inv: &Investment) -> Event {
    Event::default()
        .event("status")
        .id(event_id(inv).to_string())
        .data(serde_json::to_string(inv).unwrap_or_default())
}

/// The rank the client last saw, from the `Last-Event-ID` header.
pub(crate) fn last_seen_rank(headers: &HeaderMap) -> Option<u8> {
    seen_rank_from(headers.get("last-event-id")?.to_str().ok()?)
}

/// What a status stream carries, before it is framed as SSE or WebSocket messages.
pub(crate) enum FeedItem {
    /// A status change: the event id (see `event_id`) and the investment as it is now.
    Status(u8, Investment),
    /// The subscriber fell behind and the stream ends (`GET /investments/{id}` is the truth).
    Lagged { missed: u64, detail: String },
}

/// The rank the client last saw, from a `Last-Event-ID` value (`1`..=`3`). Anything else
/// counts as absent: the stream starts from the current status, which is always safe.
pub(crate) fn seen_rank_from(value: &str) -> Option<u8> {
    let id: u8 = value.trim().parse().ok()?;
    (1..=3).contains(&id).then(|| id - 1)
}

/// One investment's status feed, shared by the SSE and WebSocket endpoints. First the current
/// status (or, after `seen`, every status since), then one per change until `completed` or
/// `failed`; ends at shutdown. The ownership check happens here, before anything is sent.
pub(crate) async fn status_feed(
    state: &Shared,
    user_id: i64,
    id: i64,
    seen: Option<u8>,
) -> Result<impl Stream<Item = FeedItem> + Send + use<>, ApiError> {
    // Subscribe before reading the snapshot, so no change can slip between the two.
    let topic = investment_topic(id);
    let sub = state.hub.subscribe(&topic);
    let (snapshot, _) = own_investment(&state.db, user_id, id).await?;
    let now = status_rank(&snapshot.status);
    // An id from the future (not this investment's stream) counts as absent.
    let seen = seen.filter(|s| *s <= now);
    let final_known = snapshot.is_terminal();
    let backlog = backlog(state, &topic, snapshot, seen, now);
    let feed = Feed {
        id,
        sub,
        backlog,
        last_rank: seen,
        final_known,
        done: false,
        stopping: state.stopping.clone(),
    };
    Ok(futures_util::stream::unfold(feed, Feed::next))
}

/// What the feed sends before the live statuses: the snapshot if the client saw nothing; after
/// `seen`, the statuses between it and the current one as they were published, then the
/// current one (`snapshot`, now `now`) as the database has it.
fn backlog(
    state: &Shared,
    topic: &str,
    snapshot: Investment,
    seen: Option<u8>,
    now: u8,
) -> std::collections::VecDeque<Investment> {
    let mut backlog = std::collections::VecDeque::new();
    match seen {
        None => backlog.push_back(snapshot),
        Some(seen) => {
            let mut missed: Vec<Investment> = state
                .hub
                .retained(topic)
                .into_iter()
                .filter(|inv| {
                    let r = status_rank(&inv.status);
                    r > seen && r < now
                })
                .collect();
            missed.sort_by_key(|inv| status_rank(&inv.status));
            missed.dedup_by_key(|inv| status_rank(&inv.status));
            backlog.extend(missed);
            if now > seen {
                backlog.push_back(snapshot);
            }
        }
    }
    backlog
}

impl Feed {
    /// The feed's next item (the backlog first, then live changes), or `None` when it ends.
    async fn next(mut self) -> Option<(FeedItem, Feed)> {
        if self.done {
            return None;
        }
        if let Some(inv) = self.backlog.pop_front() {
            self.last_rank = Some(status_rank(&inv.status));
            self.done = inv.is_terminal();
            return Some((FeedItem::Status(event_id(&inv), inv), self));
        }
        if self.final_known {
            // The client had already seen the final status: nothing more will come.
            return None;
        }
        loop {
            let delivery = tokio::select! {
                delivery = self.sub.recv() => delivery,
                _ = self.stopping.wait_for(|s| *s) => None,
            };
            match delivery {
                Some(Delivery::Event(inv)) => {
                    let rank = status_rank(&inv.status);
                    if self.last_rank.is_some_and(|last| rank <= last) {
                        continue; // already sent (or seen by the client)
                    }
                    self.last_rank = Some(rank);
                    self.done = inv.is_terminal();
                    return Some((FeedItem::Status(event_id(&inv), inv), self));
                }
                Some(Delivery::Lagged { missed }) => {
                    self.done = true;
                    let detail = format!(
                        "fell behind; GET /investments/{} for the current status",
                        self.id
                    );
                    return Some((FeedItem::Lagged { missed, detail }, self));
                }
                None => return None,
            }
        }
    }
}

/// `GET /investments/{id}/events`: Server-Sent Events. First `status` is the current state,
/// then one `status` per change until `completed` or `failed`; a subscriber that falls behind
/// gets one `lagged` event and the stream ends (`GET /investments/{id}` is the truth). Each
/// `status` carries an `id:`; a reconnect with `Last-Event-ID` gets every status after that
/// one (replayed from the hub's retained events, the current one from the database), then
/// the live ones.
pub(crate) async fn events(
    State(state): State<Shared>,
    User(user_id): User,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = path_id(&raw, "investment")?;
    let seen = last_seen_rank(&headers);
    let feed = status_feed(&state, user_id, id, seen).await?;
    let stream = futures_util::StreamExt::map(feed, |item| {
        Ok(match item {
            FeedItem::Status(_, inv) => status_event(&inv),
            FeedItem::Lagged { missed, detail } => {
                let data = serde_json::json!({"missed": missed, "detail": detail});
                Event::default().event("lagged").data(data.to_string())
            }
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

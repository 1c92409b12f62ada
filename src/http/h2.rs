//! HTTP/2: the handshake, one exchange as a stream, and connections shared between sessions.
//!
//! The protocol is the `h2` crate (what hyper's HTTP/2 is built on) used directly: a request
//! goes straight into the connection's stream store from the virtual user's task and the
//! response is read there, where hyper's client adds a dispatch channel, a spawned task and a
//! oneshot per request. The connection itself runs in a spawned task.
//!
//! Sharing (`ClientConfig::streams_per_connection`, h2load's `-m`): sessions created on one
//! thread (a load thread's virtual users) join groups of that many; a group holds one HTTP/2
//! connection per origin, and each of its sessions' requests is a stream on it. The first
//! request to find no connection opens it (and carries its dns, connect and tls phases); the
//! group's other requests wait for it and then go as streams on it (`reused`). Does not open
//! TCP or TLS (`connect`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Version, header};
use tokio::sync::Notify;

use super::connect::Key;
use super::error::{Authority, Stage, TransportError, classify_h2};
use super::exchange::Attempt;
use super::io::{IoStats, TimedIo};

/// A handle that opens streams on one HTTP/2 connection (cheap to clone).
pub(crate) type Sender = ::h2::client::SendRequest<Bytes>;

/// Flow-control windows we grant the server: large enough that small responses never wait for
/// a WINDOW_UPDATE and few are sent (h2's defaults are RFC 9113's 64 KiB).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// The HTTP/2 preface and settings exchange on `io`; the connection then runs in its own task
/// until every sender is dropped or the peer closes it.
pub(crate) async fn handshake(io: TimedIo) -> Result<(Sender, Closed), ::h2::Error> {
    let (sender, conn) = ::h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await?;
    let closed = Closed::default();
    let mark = closed.clone();
    tokio::spawn(async move {
        let _ = conn.await;
        mark.0.store(true, Ordering::Relaxed);
    });
    Ok((sender, closed))
}

/// Set when a connection's task has ended (the peer closed it, or it failed): it takes no
/// more streams.
#[derive(Clone, Default)]
pub(crate) struct Closed(Arc<AtomicBool>);

impl Closed {
    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The connection takes no more streams (it is going away, or it failed), though its task
    /// may still be finishing the streams in flight.
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How a stream failed.
pub(crate) enum Failure {
    /// The server never processed it (the connection was already going away, a graceful
    /// GOAWAY left it out, or it was refused with REFUSED_STREAM; RFC 9113 §8.7): it may go
    /// again on a fresh connection. The error is what to report if it cannot.
    Retry(TransportError),
    /// Anything else: counted as this request's failure.
    Failed(TransportError),
}

/// Headers RFC 9113 forbids in HTTP/2 (connection-specific); h2 refuses a request with any.
static CONNECTION_SPECIFIC: [HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

/// Drop the connection-specific headers (as hyper does), `TE` unless it is `trailers`, and add
/// `Content-Length` to a body without one.
pub(crate) fn prepare_headers(headers: &mut HeaderMap, body_len: usize) {
    for name in &CONNECTION_SPECIFIC {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
    if headers.contains_key("proxy-connection") {
        headers.remove("proxy-connection");
    }
    if let Some(te) = headers.get(header::TE)
        && te.as_bytes() != b"trailers"
    {
        headers.remove(header::TE);
    }
    if body_len > 0 && !headers.contains_key(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from(body_len));
    }
}

/// Rough HTTP/2 head size (names, values, separators), before HPACK.
fn head_len(h: &HeaderMap) -> u64 {
    h.iter()
        .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
        .sum()
}

/// One request as a stream on `sender`'s connection: the head (and `body`) sent, the response
/// head and body read in this task, the marks in `att` (its `stats` set by the caller). A
/// connection found going away is marked `closed`, so the next checkout opens a fresh one.
pub(crate) async fn exchange(
    sender: &mut Sender,
    closed: &Closed,
    req: http::Request<()>,
    body: &Bytes,
    att: &mut Attempt,
    limit: usize,
    authority: Authority<'_>,
) -> Result<(), Failure> {
    let before = |e: ::h2::Error| classify_h2(&e, Stage::BeforeHeaders, authority);
    // Nothing of this stream went out: the connection is closing or gone.
    let unsent = |e: ::h2::Error| {
        closed.mark();
        Failure::Retry(before(e))
    };
    let idempotent = req.method().is_idempotent();
    att.bytes_sent = head_len(req.headers()) + req.uri().path().len() as u64 + body.len() as u64;
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(unsent)?;
    let (response, mut stream) = sender.send_request(req, body.is_empty()).map_err(unsent)?;
    if !body.is_empty() {
        // Buffered by h2 and sent as the server's window allows.
        stream
            .send_data(body.clone(), true)
            .map_err(|e| Failure::Failed(before(e)))?;
    }
    let resp = match response.await {
        Ok(r) => r,
        Err(e) => {
            let going_away = e.is_go_away();
            if going_away {
                closed.mark();
            }
            // A graceful GOAWAY fails exactly the streams it did not process; REFUSED_STREAM
            // says the same of one stream. After any other GOAWAY only a request that may be
            // repeated goes again.
            let unprocessed = e.reason() == Some(::h2::Reason::REFUSED_STREAM)
                || (going_away && e.reason() == Some(::h2::Reason::NO_ERROR));
            let err = before(e);
            return Err(if unprocessed || (going_away && idempotent) {
                Failure::Retry(err)
            } else {
                Failure::Failed(err)
            });
        }
    };
    att.headers_at = Some(Instant::now());
    att.mark_send_end();
    let (parts, mut recv) = resp.into_parts();
    att.status = Some(parts.status);
    att.version = Version::HTTP_2;
    att.bytes_received = head_len(&parts.headers);
    att.headers = parts.headers.into();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.map_err(|e| Failure::Failed(classify_h2(&e, Stage::Body, authority)))?;
        let n = chunk.len();
        att.body_len += n as u64;
        att.capture.push(&chunk, limit);
        // Give the window back; h2 sends a WINDOW_UPDATE once enough has been released.
        let _ = recv.flow_control().release_capacity(n);
    }
    att.end = Some(Instant::now());
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a slot list half-updated in a way that matters here.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands each new session its group: per creating thread, `size` sessions per group.
pub(crate) struct Groups {
    size: u32,
    /// The group being filled on each thread, and how many sessions it has; weak, so a group
    /// whose sessions have all ended closes its connection instead of idling to the run's end.
    filling: Mutex<HashMap<ThreadId, (Weak<Group>, u32)>>,
}

impl Groups {
    pub(crate) fn new(size: u32) -> Groups {
        Groups {
            size,
            filling: Mutex::new(HashMap::new()),
        }
    }

    /// The group a new session on this thread joins; `None` when nothing is shared (size 1).
    pub(crate) fn join(&self) -> Option<Arc<Group>> {
        if self.size <= 1 {
            return None;
        }
        let mut filling = lock(&self.filling);
        let entry = filling
            .entry(std::thread::current().id())
            .or_insert_with(|| (Weak::new(), 0));
        if entry.1 < self.size
            && let Some(group) = entry.0.upgrade()
        {
            entry.1 += 1;
            return Some(group);
        }
        let group = Arc::new(Group::default());
        *entry = (Arc::downgrade(&group), 1);
        Some(group)
    }
}

/// One live shared connection: what a stream on it needs.
#[derive(Clone)]
pub(crate) struct Shared {
    pub sender: Sender,
    pub closed: Closed,
    pub stats: Arc<IoStats>,
}

enum State {
    /// A member is opening the connection; the others wait for this.
    Opening(Arc<Notify>),
    Ready(Shared),
}

struct Slot {
    key: Key,
    state: State,
}

/// The connections of one group of sessions, one per origin.
#[derive(Default)]
pub(crate) struct Group {
    slots: Mutex<Vec<Slot>>,
}

/// What a request gets from its group.
pub(crate) enum Checkout {
    /// A stream on the group's live connection (perhaps after waiting for another member to
    /// open it).
    Stream(Shared),
    /// No live connection: this request opens it, then `Opener::opened` shares it (dropping
    /// the opener instead lets a waiting member try).
    Open(Opener),
}

impl Group {
    /// The live connection to `key`'s origin, or the duty to open it; waits while another
    /// member is opening it.
    pub(crate) async fn checkout(self: &Arc<Self>, https: bool, host: &str, port: u16) -> Checkout {
        loop {
            let notify: Arc<Notify>;
            let notified;
            {
                let mut slots = lock(&self.slots);
                let found = slots.iter().position(|s| s.key.matches(https, host, port));
                match found.map(|i| (i, &slots[i].state)) {
                    Some((_, State::Ready(s))) if !s.closed.is_closed() => {
                        return Checkout::Stream(s.clone());
                    }
                    Some((_, State::Opening(n))) => {
                        notify = n.clone();
                        // Created under the lock: `notify_waiters` after this reaches it.
                        notified = notify.notified();
                    }
                    Some((i, State::Ready(_))) => {
                        let n = Arc::new(Notify::new());
                        slots[i].state = State::Opening(n.clone());
                        return Checkout::Open(self.opener(n, https, host, port));
                    }
                    None => {
                        let n = Arc::new(Notify::new());
                        slots.push(Slot {
                            key: Key {
                                https,
                                host: host.into(),
                                port,
                            },
                            state: State::Opening(n.clone()),
                        });
                        return Checkout::Open(self.opener(n, https, host, port));
                    }
                }
            }
            notified.await;
        }
    }

    fn opener(self: &Arc<Self>, notify: Arc<Notify>, https: bool, host: &str, port: u16) -> Opener {
        Opener {
            group: self.clone(),
            notify,
            key: Key {
                https,
                host: host.into(),
                port,
            },
            done: false,
        }
    }

    /// Forget every connection (the next request opens a new one).
    pub(crate) fn clear(&self) {
        let drained: Vec<Slot> = std::mem::take(&mut *lock(&self.slots));
        for s in &drained {
            if let State::Opening(n) = &s.state {
                n.notify_waiters();
            }
        }
    }
}

/// The duty to open a group's connection; dropped unfinished (failure, timeout), the slot is
/// freed and the waiting members try themselves.
pub(crate) struct Opener {
    group: Arc<Group>,
    notify: Arc<Notify>,
    key: Key,
    done: bool,
}

impl Opener {
    /// Share the opened connection with the group and wake its waiting members.
    pub(crate) fn opened(mut self, shared: Shared) {
        self.done = true;
        let mut slots = lock(&self.group.slots);
        if let Some(s) = slots.iter_mut().find(|s| s.key == self.key) {
            s.state = State::Ready(shared);
        }
        drop(slots);
        self.notify.notify_waiters();
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut slots = lock(&self.group.slots);
        slots.retain(|s| {
            !(s.key == self.key
                && matches!(&s.state, State::Opening(n) if Arc::ptr_eq(n, &self.notify)))
        });
        drop(slots);
        self.notify.notify_waiters();
    }
}

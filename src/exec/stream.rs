//! A `stream:` step (see `plan::StreamSpec`): opens the step's own connection to an event
//! stream (Server-Sent Events over HTTP/1.1, or a WebSocket), reads events until one named as
//! asked passes the step's `expect` (checked like a response whose body is the event's data,
//! with the subscription's status and headers), captures from it, and closes the connection.
//! The step's latency (and `settle`) runs from the start of its `since` step, so a table shows
//! the push latency beside the request that caused it. Every wait is bounded by the stream's
//! `timeout` and ends at once when the run stops. The host allow-list applies as to any request;
//! over `https://` the client's TLS settings do, with HTTP/1.1 offered (`wss://` for sockets).

use std::cell::{Cell, RefCell};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::scope::Scope;
use super::step::{Backoff, StepCtx, StepOutcome, build_request, capture, check, record_exchange};
use super::vu::{Local, not_built, scrub_secrets, show, trace, trace_parent, with_stats};
use crate::http::{Exchange, Request, Session, Timing};
use crate::plan::{Step, StreamProtocol, StreamSpec};

/// Why the stream step failed: (error class, message).
type Failure = (String, String);

/// What `follow` learns on the way, kept when the wait is cut short too.
#[derive(Default)]
struct Seen {
    /// When the subscription was answered, and its status.
    answered: Cell<Option<(Instant, u16)>>,
    /// When the TCP connection was up (name resolution included) and TLS done.
    connected: Cell<Option<Instant>>,
    secured: Cell<Option<Instant>>,
    /// With `-v`: the subscription's answer, the last event judged as its body.
    shown: RefCell<Option<Exchange>>,
    keep: bool,
}

/// The event that passed, and when it arrived.
struct Matched {
    captures: Vec<(String, Value)>,
    at: Instant,
}

fn fail(class: &str, msg: impl Into<String>) -> Failure {
    (class.to_string(), msg.into())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    local: &Local,
    idx: usize,
    step: &Step,
    spec: &StreamSpec,
    scope: &Scope<'_>,
    session: &Session,
    ctx: &StepCtx<'_>,
    settle_from: Option<Instant>,
) -> StepOutcome {
    let started = Instant::now();
    let from = settle_from.unwrap_or(started);
    let mut req = match build_request(step, scope, ctx) {
        Ok(r) => r,
        // As for any step: a variable without a value means the step that sets it failed or
        // did not run; this one is not run.
        Err(e) => return not_built(local, idx, &e),
    };
    // The subscription carries the iteration's trace context like any request.
    let tp = trace_parent(local, idx, step, scope, ctx);
    if let Some(v) = tp
        .as_ref()
        .and_then(|t| http::HeaderValue::from_bytes(t.as_bytes()).ok())
    {
        req.headers.insert(crate::trace::TRACEPARENT, v);
    }
    let seen = Seen {
        keep: local.shared.verbose.is_some(),
        ..Seen::default()
    };
    let waited = wait_for_event(local, step, spec, &req, scope, session, &seen, started).await;
    let end = Instant::now();
    let Some(result) = waited else {
        // Stopped while waiting: the step did not finish, nothing hangs, nothing is counted.
        return StepOutcome::stopped(end);
    };
    let result = result.map_err(|(class, msg)| (class, scrub_secrets(&msg, scope)));
    if let Some(ex) = seen.shown.borrow_mut().take() {
        let failure = result.as_ref().err().map(|(_, m)| m.as_str());
        show(local, step, &req, &ex, failure);
    }
    let subscription = subscription_exchange(&req, &seen, started);
    if let Some(ex) = &subscription {
        // `breakdown` sees the subscription like any request of the iteration.
        trace(local, idx, ex, tp.as_ref());
    }
    let times = Times { started, from, end };
    let answered = seen.answered.get();
    let (captures, failed, backoff) = record(local, idx, result, answered, &subscription, times);
    StepOutcome {
        captures,
        failed,
        abort: false,
        end,
        backoff,
    }
}

/// Follows the stream until an event passes, within the stream's `timeout`; `None` when the
/// run stopped first.
#[allow(clippy::too_many_arguments)]
async fn wait_for_event(
    local: &Local,
    step: &Step,
    spec: &StreamSpec,
    req: &Request,
    scope: &Scope<'_>,
    session: &Session,
    seen: &Seen,
    started: Instant,
) -> Option<Result<Matched, Failure>> {
    let deadline = tokio::time::Instant::from_std(started + spec.timeout);
    tokio::select! {
        r = tokio::time::timeout_at(deadline, follow(local, step, spec, req, scope, session, seen)) => {
            Some(r.unwrap_or_else(|_| Err(fail(
                "timeout",
                format!(
                    "no matching event within the stream timeout ({:.1}s)",
                    spec.timeout.as_secs_f64()
                ),
            ))))
        }
        () = local.shared.stop.wait() => None,
    }
}

/// The subscription as a request, as far as it got (`None` if never answered): connect (name
/// resolution included), tls, then wait (request written and answered) up to the answer's head.
fn subscription_exchange(req: &Request, seen: &Seen, started: Instant) -> Option<Exchange> {
    let (at, status) = seen.answered.get()?;
    let connected = seen.connected.get().unwrap_or(started);
    let secured = seen.secured.get().unwrap_or(connected);
    let mut ex = as_exchange(
        &req.url,
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK),
        &http::HeaderMap::new(),
        Bytes::new(),
    );
    ex.timing = Timing {
        start: started,
        connect: connected.saturating_duration_since(started),
        tls: secured.saturating_duration_since(connected),
        wait: at.saturating_duration_since(secured),
        total: at.saturating_duration_since(started),
        bytes_received: 0,
        ..ex.timing
    };
    Some(ex)
}

/// When the step started, when its `settle` counts from (its `since` step), and when it ended.
#[derive(Clone, Copy)]
struct Times {
    started: Instant,
    from: Instant,
    end: Instant,
}

/// Records the step: its row is the subscription as a request (start to its answer's head,
/// like any request's latency); `settle` is the wait for the event, from `since`. Returns the
/// captures, whether it failed and how the VU backs off.
fn record(
    local: &Local,
    idx: usize,
    result: Result<Matched, Failure>,
    answered: Option<(Instant, u16)>,
    subscription: &Option<Exchange>,
    t: Times,
) -> (Vec<(String, Value)>, bool, Backoff) {
    let record_subscription = |s: &mut crate::aggregate::StepStats| match subscription {
        Some(ex) => record_exchange(s, ex),
        None => s.requests += 1,
    };
    match result {
        Ok(m) => {
            let (at, _) = answered.unwrap_or((m.at, 0));
            let request = at.saturating_duration_since(t.started);
            with_stats(local, idx, |s| {
                record_subscription(s);
                s.latency.record(request);
                s.settle.record(m.at.saturating_duration_since(t.from));
            });
            let mut iv = local.interval.borrow_mut();
            iv.requests += 1;
            iv.latency.record(request);
            (m.captures, false, Backoff::None)
        }
        Err((class, msg)) => {
            with_stats(local, idx, |s| {
                record_subscription(s);
                s.failed_latency
                    .record(t.end.saturating_duration_since(t.started));
                s.record_error(&class, Some(&msg));
                s.unsettled += 1;
            });
            let mut iv = local.interval.borrow_mut();
            iv.requests += 1;
            iv.errors += 1;
            let backoff = if answered.is_none() {
                Backoff::Failed
            } else {
                Backoff::None
            };
            (Vec::new(), true, backoff)
        }
    }
}

/// The subscription's answer as the step's checks see it, its body one event's data.
fn as_exchange(
    url: &url::Url,
    status: http::StatusCode,
    headers: &http::HeaderMap,
    data: Bytes,
) -> Exchange {
    let now = Instant::now();
    Exchange {
        url: url.clone(),
        hops: Vec::new(),
        timing: Timing {
            start: now,
            dns: Default::default(),
            connect: Default::default(),
            tls: Default::default(),
            send: Default::default(),
            wait: Default::default(),
            receive: Default::default(),
            total: Default::default(),
            reused: false,
            tls_resumed: false,
            bytes_sent: 0,
            bytes_received: data.len() as u64,
        },
        status: Some(status),
        version: http::Version::HTTP_11,
        headers: headers.clone().into(),
        body_len: data.len() as u64,
        body: data,
        close_delimited: false,
        said_close: false,
        server_timing: Vec::new(),
        error: None,
    }
}

/// Judges events one by one: the first whose name fits and that passes `expect` (and whose
/// captures are found) ends the wait.
struct Judge<'a> {
    step: &'a Step,
    spec: &'a StreamSpec,
    scope: &'a Scope<'a>,
    session: &'a Session,
    url: url::Url,
    status: http::StatusCode,
    headers: http::HeaderMap,
    seen: u64,
    last_miss: Option<String>,
    record: &'a Seen,
}

impl<'a> Judge<'a> {
    /// A judge for the events of a subscription answered with `status` and `headers`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        step: &'a Step,
        spec: &'a StreamSpec,
        scope: &'a Scope<'a>,
        session: &'a Session,
        record: &'a Seen,
        url: &url::Url,
        status: http::StatusCode,
        headers: http::HeaderMap,
    ) -> Self {
        Judge {
            step,
            spec,
            scope,
            session,
            url: url.clone(),
            status,
            headers,
            seen: 0,
            last_miss: None,
            record,
        }
    }

    /// With `-v`, what `show` prints: the subscription's answer with `data` as its body.
    fn keep(&self, data: &Bytes) {
        if self.record.keep {
            let ex = as_exchange(&self.url, self.status, &self.headers, data.clone());
            *self.record.shown.borrow_mut() = Some(ex);
        }
    }

    fn judge(&mut self, name: &str, data: Bytes) -> Option<Vec<(String, Value)>> {
        self.seen += 1;
        if self.spec.event.as_deref().is_some_and(|want| want != name) {
            return None;
        }
        self.keep(&data);
        let ex = as_exchange(&self.url, self.status, &self.headers, data);
        if let Some((_, msg)) = check(self.step, &ex, self.scope) {
            self.last_miss = Some(format!("event `{name}`: {msg}"));
            return None;
        }
        match capture(self.step, &ex, self.session) {
            Ok(c) => Some(c),
            Err(msg) => {
                self.last_miss = Some(format!("event `{name}`: {msg}"));
                None
            }
        }
    }

    fn ended(&self, how: &str) -> Failure {
        let what = match &self.spec.event {
            Some(e) => format!("a matching `{e}` event"),
            None => "a matching event".to_string(),
        };
        let last = match &self.last_miss {
            Some(m) => format!("; last: {m}"),
            None => String::new(),
        };
        fail(
            "assertion",
            format!("{how} after {} event(s), before {what}{last}", self.seen),
        )
    }
}

async fn follow(
    local: &Local,
    step: &Step,
    spec: &StreamSpec,
    req: &Request,
    scope: &Scope<'_>,
    session: &Session,
    seen: &Seen,
) -> Result<Matched, Failure> {
    let mut headers = req.headers.clone();
    if let Some(line) = session.cookie_line_for(&req.url, &req.headers)
        && let Ok(v) = http::HeaderValue::from_str(&line)
    {
        headers.insert(http::header::COOKIE, v);
    }
    // Connected as any request is (allow-list, DNS, TCP, TLS), offering HTTP/1.1 only.
    let (io, tcp_end, tls_end) = local
        .shared
        .client
        .open_http1(&req.url)
        .await
        .map_err(|e| fail(e.kind.as_str(), e.message))?;
    seen.connected
        .set(Some(tcp_end.unwrap_or_else(Instant::now)));
    seen.secured.set(tls_end);
    subscribe(io, step, spec, &req.url, headers, scope, session, seen).await
}

#[allow(clippy::too_many_arguments)]
async fn subscribe<S>(
    io: S,
    step: &Step,
    spec: &StreamSpec,
    url: &url::Url,
    headers: http::HeaderMap,
    scope: &Scope<'_>,
    session: &Session,
    seen: &Seen,
) -> Result<Matched, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match spec.protocol {
        StreamProtocol::Sse => sse(io, step, spec, url, headers, scope, session, seen).await,
        StreamProtocol::WebSocket => {
            websocket(io, step, spec, url, headers, scope, session, seen).await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn sse<S>(
    io: S,
    step: &Step,
    spec: &StreamSpec,
    url: &url::Url,
    headers: http::HeaderMap,
    scope: &Scope<'_>,
    session: &Session,
    seen: &Seen,
) -> Result<Matched, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| fail("connect", format!("HTTP handshake: {e}")))?;
    // Driven here, not spawned: it ends when this step drops it (the connection closes).
    let conn = conn;
    tokio::pin!(conn);
    let request = sse_request(url, headers)?;
    let send = sender.send_request(request);
    tokio::pin!(send);
    let resp = tokio::select! {
        r = &mut send => r.map_err(|e| fail("protocol", format!("subscribing: {e}")))?,
        c = &mut conn => {
            return Err(fail("protocol", match c {
                Ok(()) => "the connection closed before the subscription's answer".into(),
                Err(e) => format!("subscribing: {e}"),
            }));
        }
    };
    let (parts, body) = resp.into_parts();
    seen.answered
        .set(Some((Instant::now(), parts.status.as_u16())));
    let status = parts.status;
    let mut judge = Judge::new(step, spec, scope, session, seen, url, status, parts.headers);
    if !status.is_success() {
        judge.keep(&Bytes::new());
        return Err(rejected(step, scope, url, status, &judge.headers));
    }
    read_sse(conn, body, &mut judge).await
}

/// The subscription's request: `Accept: text/event-stream` unless the step sets its own, and
/// the URL's authority as `Host`.
fn sse_request(
    url: &url::Url,
    mut headers: http::HeaderMap,
) -> Result<http::Request<Empty<Bytes>>, Failure> {
    if !headers.contains_key(http::header::ACCEPT) {
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("text/event-stream"),
        );
    }
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let mut builder = http::Request::get(&url[url::Position::BeforePath..]);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
        if let Ok(v) = http::HeaderValue::from_str(&authority) {
            h.insert(http::header::HOST, v);
        }
    }
    builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail("invalid_request", e.to_string()))
}

/// The subscription's own answer was not a success: it fails the step as any response would.
fn rejected(
    step: &Step,
    scope: &Scope<'_>,
    url: &url::Url,
    status: http::StatusCode,
    headers: &http::HeaderMap,
) -> Failure {
    let ex = as_exchange(url, status, headers, Bytes::new());
    let (class, msg) = check(step, &ex, scope)
        .unwrap_or_else(|| fail("assertion", format!("status {}", status.as_u16())));
    (class, format!("subscribing: {msg}"))
}

/// Reads the body's events until one passes the judge, driving the connection alongside.
async fn read_sse<C>(
    mut conn: std::pin::Pin<&mut C>,
    mut body: hyper::body::Incoming,
    judge: &mut Judge<'_>,
) -> Result<Matched, Failure>
where
    C: std::future::Future<Output = Result<(), hyper::Error>>,
{
    let mut parser = SseParser::default();
    let mut conn_done = false;
    loop {
        // The connection is driven alongside the body; once it finishes cleanly, what it
        // delivered is still read from the body.
        let frame = tokio::select! {
            f = body.frame() => f,
            c = &mut conn, if !conn_done => {
                if let Err(e) = c {
                    return Err(fail("protocol", format!("the stream broke: {e}")));
                }
                conn_done = true;
                continue;
            }
        };
        let Some(frame) = frame else {
            return Err(judge.ended("the stream ended"));
        };
        let frame = frame.map_err(|e| fail("protocol", format!("the stream broke: {e}")))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        for (name, data) in parser.push(data)? {
            if let Some(captures) = judge.judge(&name, data) {
                return Ok(Matched {
                    captures,
                    at: Instant::now(),
                });
            }
        }
    }
}

/// The most an event may hold before its end (a blank line) arrives.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// Splits a `text/event-stream` body into events (name, data) as bytes arrive, whatever the
/// chunking (a line ending or a UTF-8 character may be split between chunks).
#[derive(Default)]
struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<(String, Bytes)>, Failure> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        loop {
            // An event ends at a blank line: LF LF or CR LF CR LF (or a mix).
            let end = self.buf.windows(2).enumerate().find_map(|(i, w)| match w {
                b"\n\n" => Some((i, 2)),
                b"\n\r" if self.buf.get(i + 2) == Some(&b'\n') => Some((i, 3)),
                _ => None,
            });
            let Some((at, len)) = end else { break };
            let block: Vec<u8> = self.buf.drain(..at + len).collect();
            let text = String::from_utf8_lossy(&block);
            let mut name = "message".to_string();
            let mut data: Vec<&str> = Vec::new();
            for line in text.lines() {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.strip_prefix(' ').unwrap_or(v).to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            // Without `data:` (a comment, a keep-alive, an id alone) nothing is dispatched.
            if !data.is_empty() {
                events.push((name, Bytes::from(data.join("\n"))));
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(fail(
                "protocol",
                format!("an event grew past {MAX_EVENT_BYTES} bytes without ending"),
            ));
        }
        Ok(events)
    }
}

#[allow(clippy::too_many_arguments)]
async fn websocket<S>(
    io: S,
    step: &Step,
    spec: &StreamSpec,
    url: &url::Url,
    headers: http::HeaderMap,
    scope: &Scope<'_>,
    session: &Session,
    seen: &Seen,
) -> Result<Matched, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let request = ws_request(url, &headers)?;
    // A message is an event: the same bound as an SSE event.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_EVENT_BYTES))
        .max_frame_size(Some(MAX_EVENT_BYTES));
    let handshake = tokio_tungstenite::client_async_with_config(request, io, Some(config));
    let (mut socket, resp) = match handshake.await {
        Ok(ok) => {
            seen.answered
                .set(Some((Instant::now(), ok.1.status().as_u16())));
            ok
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            seen.answered
                .set(Some((Instant::now(), resp.status().as_u16())));
            return Err(rejected(step, scope, url, resp.status(), resp.headers()));
        }
        Err(e) => return Err(fail("protocol", format!("WebSocket handshake: {e}"))),
    };
    let (status, headers) = (resp.status(), resp.headers().clone());
    let mut judge = Judge::new(step, spec, scope, session, seen, url, status, headers);
    let outcome = read_messages(&mut socket, &mut judge).await;
    // The step's connection ends with the step: a normal close, not left to the server.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.close(None)).await;
    outcome
}

/// The handshake's request: the URL as `ws://` (`wss://`), the step's headers but `Host`.
fn ws_request(
    url: &url::Url,
    headers: &http::HeaderMap,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, Failure> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut ws_url = url.clone();
    let _ = ws_url.set_scheme(if url.scheme() == "https" { "wss" } else { "ws" });
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| fail("invalid_request", e.to_string()))?;
    for (name, value) in headers {
        if name != http::header::HOST {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(request)
}

/// Reads messages until one passes the judge or the socket ends.
async fn read_messages<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
    judge: &mut Judge<'_>,
) -> Result<Matched, Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio_tungstenite::tungstenite::Message;

    loop {
        let Some(msg) = socket.next().await else {
            break Err(judge.ended("the socket closed"));
        };
        let text = match msg {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Close(_)) => break Err(judge.ended("the server closed the socket")),
            Ok(_) => continue,
            Err(e) => break Err(fail("protocol", format!("the socket broke: {e}"))),
        };
        let (name, data) = ws_event(text);
        if let Some(captures) = judge.judge(&name, Bytes::from(data)) {
            break Ok(Matched {
                captures,
                at: Instant::now(),
            });
        }
    }
}

/// `{"event": NAME, "data": ...}` is an event called NAME carrying `data`; any other message is
/// an event called `message` carrying itself.
fn ws_event(text: String) -> (String, String) {
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut o)) if o.get("event").is_some_and(Value::is_string) => {
            let name = o
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or("message")
                .to_string();
            let data = match o.remove("data") {
                Some(Value::String(s)) => s,
                Some(v) => v.to_string(),
                None => String::new(),
            };
            (name, data)
        }
        _ => ("message".to_string(), text),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut p = SseParser::default();
        chunks
            .iter()
            .flat_map(|c| p.push(c).unwrap())
            .map(|(n, d)| (n, String::from_utf8(d.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn events_are_found_whatever_the_chunking_and_line_endings() {
        let body = "event: status\r\nid: 1\r\ndata: {\"s\":\"pénding\"}\r\n\r\n: keep-alive\n\n\
                    data: a\ndata:b\n\n";
        let want = vec![
            ("status".to_string(), "{\"s\":\"pénding\"}".to_string()),
            ("message".to_string(), "a\nb".to_string()),
        ];
        assert_eq!(all(&[body.as_bytes()]), want);
        // Every split point, including inside `é` and between CR and LF.
        let bytes = body.as_bytes();
        for cut in 1..bytes.len() {
            assert_eq!(all(&[&bytes[..cut], &bytes[cut..]]), want, "cut at {cut}");
        }
    }

    #[test]
    fn an_event_that_never_ends_is_bounded() {
        let mut p = SseParser::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut failed = false;
        for _ in 0..20 {
            if p.push(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }
}

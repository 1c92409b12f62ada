//! HTTP/1.1 on one open connection, without hyper: the request written in one piece (pre-rendered
//! bytes when the caller has them), the response head parsed with `httparse`, the body framed by
//! RFC 9112 §6 (no body for HEAD/1xx/204/304, chunked, Content-Length, or until close) and
//! streamed into the attempt's capped capture. Marks `send` end, headers and end on the attempt
//! as they happen, so a deadline that drops this future keeps them. Does not open, pool or
//! redirect.
//!
//! Why not hyper here: hyper's HTTP/1.1 client hands every request to its connection through a
//! channel and a oneshot and decodes into `Incoming` through another; measured with callgrind,
//! that machinery was most of sonde's ~33,000 instructions per request against nginx (oha, also
//! hyper, spends ~22,600). This path does what a load tester needs and nothing else, and keeps
//! no buffer while a connection is idle (10,000 idle virtual users cost only their sockets).

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use url::{Position, Url};

use super::error::{Authority, ErrorKind, TransportError};
use super::exchange::Attempt;
use super::io::Stream;

/// Largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Most response header lines accepted.
const MAX_HEADERS: usize = 128;
/// Read size; a buffer exists only while a response is being read.
const READ_CHUNK: usize = 8 * 1024;

/// Idle longer than this, a pooled connection is checked with a real (peeking) system call:
/// the runtime's cached readiness may not yet know of a close the kernel already has, when
/// the load thread was busy with other virtual users.
const EXACT_CHECK_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

/// An HTTP/1.1 connection between requests: just the stream.
pub(crate) struct H1Conn {
    io: Stream,
    /// False once the connection cannot carry another request (close, unframed body, error).
    reusable: bool,
    /// When the last response ended.
    idle_since: Option<Instant>,
}

/// How an exchange failed: `Retry` when nothing of a response arrived on a connection that may
/// have been closed by the server while idle (the caller retries on a fresh connection if this
/// one was pooled), `Failed` otherwise.
pub(crate) enum H1Failure {
    Retry(TransportError),
    Failed(TransportError),
}

impl H1Conn {
    pub(crate) fn new(io: Stream) -> H1Conn {
        H1Conn {
            io,
            reusable: true,
            idle_since: None,
        }
    }

    pub(crate) fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// True if the idle connection still looks open: a read would block. A peer that closed it
    /// shows as end of stream, a misbehaving one as unsolicited bytes; both make it unusable.
    /// Costs no system call when the runtime already knows the socket is not readable.
    pub(crate) fn idle_check(&mut self) -> bool {
        let mut scratch = [0u8; 16];
        let mut rb = ReadBuf::new(&mut scratch);
        let mut cx = Context::from_waker(Waker::noop());
        let mut alive = matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        );
        if alive
            && self
                .idle_since
                .is_some_and(|t| t.elapsed() >= EXACT_CHECK_AFTER)
        {
            alive = self.peek_alive();
        }
        if !alive {
            self.reusable = false;
        }
        alive && self.reusable
    }

    /// Ask the kernel, not the runtime's cache: end of stream or unsolicited bytes mean dead.
    /// On TLS, pending bytes may be a session ticket, which the poll above already consumed
    /// if it could; they are not held against the connection.
    #[cfg(target_os = "linux")]
    fn peek_alive(&self) -> bool {
        use rustix::net::{RecvFlags, recv};
        let mut one = [0u8; 1];
        let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
        let (tcp, tls) = match &self.io {
            Stream::Plain(s) => (s, false),
            Stream::Tls(s) => (s.get_ref().0, true),
        };
        match recv(tcp, &mut one, flags) {
            Err(rustix::io::Errno::AGAIN) => true,
            Ok((_, 0)) | Err(_) => false,
            Ok(_) => tls,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn peek_alive(&self) -> bool {
        true
    }

    async fn read_more(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if let (Stream::Plain(s), 0) = (&mut self.io, buf.capacity()) {
            // Wait for the response before allocating: 10,000 virtual users waiting on a
            // slow server then hold no read buffer. The read itself goes through `poll_read`,
            // which forgets the socket's readiness after a short read: the next wait then
            // costs no `recvfrom` that can only say EAGAIN.
            s.readable().await?;
            buf.reserve(READ_CHUNK);
            return s.read_buf(buf).await;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        self.io.read_buf(buf).await
    }
}

/// Whether the request may carry on after the response: what the exchange needs to know of it.
pub(crate) struct Sent {
    pub head_request: bool,
    /// The request itself said `Connection: close`.
    pub close: bool,
}

/// Render a request in HTTP/1.1 wire form (origin-form target, `Host` from the URL unless the
/// headers carry one, a default User-Agent, `Content-Length` computed here; a caller's
/// Content-Length or Transfer-Encoding is not sent). `cookie` replaces the request's own Cookie
/// header when given (the jar's cookies merged in by the session).
pub(crate) fn encode(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    body: &[u8],
    cookie: Option<&str>,
    user_agent: &HeaderValue,
    out: &mut Vec<u8>,
) {
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    out.reserve(64 + target.len() + body.len() + headers.len() * 32);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(header::HOST) {
        line(
            out,
            b"host",
            url[Position::BeforeHost..Position::BeforePath].as_bytes(),
        );
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::COOKIE && cookie.is_some() {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(c) = cookie {
        line(out, b"cookie", c.as_bytes());
    }
    if !headers.contains_key(header::USER_AGENT) {
        line(out, b"user-agent", user_agent.as_bytes());
    }
    let needs_length =
        !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if needs_length {
        let mut n = itoa::Buffer::new();
        line(out, b"content-length", n.format(body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What the request says of itself, for framing and reuse.
pub(crate) fn sent(method: &Method, headers: &HeaderMap) -> Sent {
    Sent {
        head_request: *method == Method::HEAD,
        close: has_token(headers, &header::CONNECTION, "close"),
    }
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Send `wire` and read one response into `att`.
pub(crate) async fn exchange(
    conn: &mut H1Conn,
    wire: &[u8],
    sent: &Sent,
    att: &mut Attempt,
    limit: usize,
    authority: Authority<'_>,
) -> Result<(), H1Failure> {
    let mut buf = BytesMut::new();
    match send(conn, wire, &mut buf, att).await {
        Sent_::All => {}
        // A final response before the whole request left (413 and close, an early 401): the
        // rest of the body is not sent and the connection cannot be reused; read the response.
        Sent_::AnsweredEarly => conn.reusable = false,
        Sent_::Failed(e) => {
            conn.reusable = false;
            if final_status_in(&buf).is_none() {
                let err = io_error(&e, authority, "while sending the request", ErrorKind::Reset);
                return Err(match att.bytes_received {
                    0 => H1Failure::Retry(err),
                    _ => H1Failure::Failed(err),
                });
            }
        }
    }
    att.send_end = Some(Instant::now());
    let framing = loop {
        let head = read_head(conn, &mut buf, att, authority).await?;
        let Some(head) = head else {
            continue; // an interim 1xx response
        };
        att.headers_at = Some(Instant::now());
        att.status = Some(head.status);
        att.version = head.version;
        let framing = framing(head.status, &head.meta, sent.head_request, authority)
            .map_err(H1Failure::Failed)?;
        let keep_alive = match head.version {
            Version::HTTP_10 => head.meta.keep_alive,
            _ => !head.meta.close,
        };
        if !keep_alive || sent.close || head.status == StatusCode::SWITCHING_PROTOCOLS {
            conn.reusable = false;
        }
        att.headers = head.headers;
        break framing;
    };
    let res = read_body(conn, &mut buf, framing, att, limit, authority).await;
    // One clock read marks both the end of the exchange and the start of the idle time.
    let end = Instant::now();
    conn.idle_since = Some(end);
    if res.is_err() {
        conn.reusable = false;
    } else if !buf.is_empty() {
        // Bytes after the response that nobody asked for: the next response would be wrong.
        conn.reusable = false;
    }
    att.end = Some(end);
    res.map_err(H1Failure::Failed)
}

/// How sending a request ended.
enum Sent_ {
    All,
    /// A final error response arrived before the request was written whole.
    AnsweredEarly,
    Failed(io::Error),
}

/// Writes `wire`, reading whatever the server sends meanwhile into `buf` (RFC 9112 §9.5: a
/// client sending a body monitors the connection for a response). The usual small request
/// goes out in one write and never touches the read side; a large upload keeps going while
/// the server echoes it (Node's `req.pipe(res)`) or stops as soon as it answers early (413 and
/// close). Counts the bytes written and read into `att`.
async fn send(conn: &mut H1Conn, wire: &[u8], buf: &mut BytesMut, att: &mut Attempt) -> Sent_ {
    use tokio::io::AsyncWrite;
    let mut written = 0usize;
    let mut read_closed = false;
    let mut scratch: Option<Vec<u8>> = None;
    std::future::poll_fn(|cx| {
        loop {
            if written == wire.len() {
                // Plain TCP needs no flush; TLS pushes its buffered records out.
                return match Pin::new(&mut conn.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(Sent_::All),
                    Poll::Ready(Err(e)) => Poll::Ready(Sent_::Failed(e)),
                    Poll::Pending => Poll::Pending,
                };
            }
            match Pin::new(&mut conn.io).poll_write(cx, &wire[written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Sent_::Failed(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    written += n;
                    att.bytes_sent += n as u64;
                    continue;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Sent_::Failed(e)),
                Poll::Pending => {}
            }
            // The socket is full: the server is not reading. See whether it is talking.
            if read_closed {
                return Poll::Pending;
            }
            // Only a request that fills the socket gets here: a scratch buffer is fine.
            let scratch = scratch.get_or_insert_with(|| vec![0u8; READ_CHUNK]);
            let mut rb = ReadBuf::new(scratch);
            match Pin::new(&mut conn.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        // The server finished sending; only writing is left to wait for.
                        read_closed = true;
                        return Poll::Pending;
                    }
                    buf.extend_from_slice(rb.filled());
                    att.bytes_received += n as u64;
                    // An error response means the server does not want the rest of the body
                    // (RFC 9112 §9.5); a success may be an echo that reads as it answers.
                    if final_status_in(buf).is_some_and(|c| c >= 400) {
                        return Poll::Ready(Sent_::AnsweredEarly);
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Sent_::Failed(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// The status of a complete final (non-1xx) response head at the start of `buf`, after any
/// interim ones.
fn final_status_in(buf: &[u8]) -> Option<u16> {
    let mut rest = buf;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(rest) {
            Ok(httparse::Status::Complete(n)) => match resp.code {
                Some(c) if (100..200).contains(&c) => rest = &rest[n..],
                code => return code,
            },
            _ => return None,
        }
    }
}

/// A final response head: status, version, headers, and what framing and reuse need from them
/// (read once from the raw lines, not looked up again in the map).
#[derive(Debug)]
pub(crate) struct Head {
    status: StatusCode,
    version: Version,
    headers: super::Headers,
    meta: Meta,
}

#[derive(Debug, Default)]
struct Meta {
    /// Content-Length values seen (comma lists split), or the first invalid one.
    content_length: Option<Result<u64, String>>,
    conflicting_length: bool,
    /// Transfer-Encoding present, and whether its last coding is `chunked`.
    transfer_encoding: Option<bool>,
    close: bool,
    keep_alive: bool,
    /// Other names the transport reads (the cookie jar, server timing).
    seen: super::Seen,
}

impl Meta {
    fn see(&mut self, name: &[u8], value: &[u8]) {
        self.seen.see(name);
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in value.split(|b| *b == b',') {
                let text = std::str::from_utf8(part).unwrap_or("").trim();
                // Digits only (`parse` would also take a sign); a long bad value is cut short.
                let n = if text.bytes().all(|b| b.is_ascii_digit()) {
                    text.parse::<u64>().ok()
                } else {
                    None
                }
                .ok_or_else(|| text.chars().take(40).collect::<String>());
                match (&self.content_length, n) {
                    (Some(Err(_)), _) => {}
                    (_, Err(e)) => self.content_length = Some(Err(e)),
                    (Some(Ok(old)), Ok(n)) if *old != n => self.conflicting_length = true,
                    (_, Ok(n)) => self.content_length = Some(Ok(n)),
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value
                .split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
                .rfind(|t| !t.is_empty());
            match last {
                Some(t) => self.transfer_encoding = Some(t.eq_ignore_ascii_case(b"chunked")),
                None => {
                    self.transfer_encoding.get_or_insert(false);
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                self.close |= t.eq_ignore_ascii_case(b"close");
                self.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
}

/// Read and parse one response head; `None` for an interim (1xx other than 101) response.
async fn read_head(
    conn: &mut H1Conn,
    buf: &mut BytesMut,
    att: &mut Attempt,
    authority: Authority<'_>,
) -> Result<Option<Head>, H1Failure> {
    loop {
        if !buf.is_empty() {
            match parse_head(buf, authority).map_err(H1Failure::Failed)? {
                Some(head) => return Ok(head),
                None if buf.len() >= MAX_HEAD => {
                    return Err(H1Failure::Failed(TransportError::new(
                        ErrorKind::Protocol,
                        format!("{authority}: response head larger than {MAX_HEAD} bytes"),
                    )));
                }
                None => {}
            }
        }
        let nothing_yet = att.bytes_received == 0;
        let err = match conn.read_more(buf).await {
            Ok(0) => TransportError::new(
                ErrorKind::Reset,
                format!("{authority}: connection closed before the response headers were complete"),
            ),
            Ok(n) => {
                att.bytes_received += n as u64;
                continue;
            }
            Err(e) => io_error(
                &e,
                authority,
                "before the response headers",
                ErrorKind::Reset,
            ),
        };
        conn.reusable = false;
        return Err(if nothing_yet {
            H1Failure::Retry(err)
        } else {
            H1Failure::Failed(err)
        });
    }
}

/// `Ok(None)` while the head is incomplete; `Ok(Some(None))` for an interim response (consumed).
#[allow(clippy::type_complexity)]
fn parse_head(
    buf: &mut BytesMut,
    authority: Authority<'_>,
) -> Result<Option<Option<Head>>, TransportError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_response_status_delimiters(true);
    let parsed = cfg.parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(n)) => n,
        Err(e) => {
            return Err(TransportError::new(
                ErrorKind::Protocol,
                format!("{authority}: invalid response head: {e}"),
            ));
        }
    };
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| {
        TransportError::new(
            ErrorKind::Protocol,
            format!("{authority}: invalid status code {code}"),
        )
    })?;
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut meta = Meta::default();
    for h in resp.headers.iter() {
        meta.see(h.name.as_bytes(), h.value);
    }
    let head = buf.split_to(len).freeze();
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Some(None));
    }
    // The map is built only if something reads a header (`head_map`).
    let headers = super::Headers::from_head(head, meta.seen);
    Ok(Some(Some(Head {
        status,
        version,
        headers,
        meta,
    })))
}

/// The header map of a head `parse_head` accepted: parsed again (a few hundred instructions,
/// paid only by a response whose headers are read), values sharing the head's bytes.
pub(crate) fn head_map(head: &Bytes) -> HeaderMap {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_response_status_delimiters(true);
    if !matches!(
        cfg.parse_response_with_uninit_headers(&mut resp, head, &mut slots),
        Ok(httparse::Status::Complete(_))
    ) {
        // Only an empty head (a response that never arrived) gets here.
        return HeaderMap::new();
    }
    let base = head.as_ptr() as usize;
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        // httparse checked the token and value characters; anything `http` still refuses
        // (e.g. an obsolete byte in a value) is left out rather than failing the response.
        let v = h.value.as_ptr() as usize - base;
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_maybe_shared(head.slice(v..v + h.value.len())),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

fn framing(
    status: StatusCode,
    meta: &Meta,
    head_request: bool,
    authority: Authority<'_>,
) -> Result<Framing, TransportError> {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::None);
    }
    if let Some(chunked) = meta.transfer_encoding {
        return Ok(if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    if meta.conflicting_length {
        return Err(TransportError::new(
            ErrorKind::Protocol,
            format!("{authority}: conflicting Content-Length values"),
        ));
    }
    Ok(match &meta.content_length {
        Some(Err(text)) => {
            return Err(TransportError::new(
                ErrorKind::Protocol,
                format!("{authority}: invalid Content-Length `{text}`"),
            ));
        }
        Some(Ok(0)) => Framing::None,
        Some(Ok(n)) => Framing::Length(*n),
        None => Framing::UntilClose,
    })
}

fn deliver(att: &mut Attempt, data: Bytes, limit: usize) {
    att.body_len += data.len() as u64;
    att.capture.push(&data, limit);
}

async fn read_body(
    conn: &mut H1Conn,
    buf: &mut BytesMut,
    framing: Framing,
    att: &mut Attempt,
    limit: usize,
    authority: Authority<'_>,
) -> Result<(), TransportError> {
    match framing {
        Framing::None => Ok(()),
        Framing::Length(total) => {
            let mut left = total;
            loop {
                let take = (buf.len() as u64).min(left) as usize;
                if take > 0 {
                    deliver(att, buf.split_to(take).freeze(), limit);
                    left -= take as u64;
                }
                if left == 0 {
                    return Ok(());
                }
                if fill(conn, buf, att, authority).await? == 0 {
                    return Err(TransportError::new(
                        ErrorKind::BodyTruncated,
                        format!(
                            "{authority}: connection closed after {} of {total} body bytes",
                            total - left
                        ),
                    ));
                }
            }
        }
        Framing::UntilClose => {
            conn.reusable = false;
            att.close_delimited = true;
            loop {
                if !buf.is_empty() {
                    let all = buf.split().freeze();
                    deliver(att, all, limit);
                }
                if fill(conn, buf, att, authority).await? == 0 {
                    return Ok(());
                }
            }
        }
        Framing::Chunked => read_chunked(conn, buf, att, limit, authority).await,
    }
}

/// Read more bytes into `buf`; 0 at end of stream. Errors are body errors.
async fn fill(
    conn: &mut H1Conn,
    buf: &mut BytesMut,
    att: &mut Attempt,
    authority: Authority<'_>,
) -> Result<usize, TransportError> {
    match conn.read_more(buf).await {
        Ok(n) => {
            att.bytes_received += n as u64;
            Ok(n)
        }
        Err(e) => Err(io_error(
            &e,
            authority,
            "during the response body",
            ErrorKind::BodyTruncated,
        )),
    }
}

fn truncated(authority: Authority<'_>) -> TransportError {
    TransportError::new(
        ErrorKind::BodyTruncated,
        format!("{authority}: connection closed in the middle of a chunked body"),
    )
}

async fn read_chunked(
    conn: &mut H1Conn,
    buf: &mut BytesMut,
    att: &mut Attempt,
    limit: usize,
    authority: Authority<'_>,
) -> Result<(), TransportError> {
    loop {
        // Chunk size line.
        let size = loop {
            if let Some(size) = bare_lf_chunk_size(buf) {
                break size.map_err(|()| {
                    TransportError::new(
                        ErrorKind::Protocol,
                        format!("{authority}: invalid chunk size line in a chunked body"),
                    )
                })?;
            }
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, size))) => {
                    buf.advance(used);
                    break size;
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
                    if fill(conn, buf, att, authority).await? == 0 {
                        return Err(truncated(authority));
                    }
                }
                _ => {
                    return Err(TransportError::new(
                        ErrorKind::Protocol,
                        format!("{authority}: invalid chunk size line in a chunked body"),
                    ));
                }
            }
        };
        if size == 0 {
            return read_trailers(conn, buf, att, authority).await;
        }
        let mut left = size;
        while left > 0 {
            if buf.is_empty() && fill(conn, buf, att, authority).await? == 0 {
                return Err(truncated(authority));
            }
            let take = (buf.len() as u64).min(left) as usize;
            deliver(att, buf.split_to(take).freeze(), limit);
            left -= take as u64;
        }
        // CRLF after the data; a bare LF is accepted too (RFC 9112 §2.2).
        while buf.len() < 2 && !buf.starts_with(b"\n") {
            if fill(conn, buf, att, authority).await? == 0 {
                return Err(truncated(authority));
            }
        }
        if buf.starts_with(b"\n") {
            buf.advance(1);
        } else if buf.starts_with(b"\r\n") {
            buf.advance(2);
        } else {
            return Err(TransportError::new(
                ErrorKind::Protocol,
                format!("{authority}: chunk data not followed by CRLF"),
            ));
        }
    }
}

/// A chunk-size line that ends in a bare LF (httparse wants CRLF): `Some` with the size (and
/// the line consumed) or an error; `None` when the line is not complete or ends in CRLF.
#[allow(clippy::result_unit_err)]
fn bare_lf_chunk_size(buf: &mut BytesMut) -> Option<Result<u64, ()>> {
    let end = buf.iter().take(MAX_HEAD).position(|b| *b == b'\n')?;
    if end > 0 && buf[end - 1] == b'\r' {
        return None;
    }
    let line = &buf[..end];
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let size = match digits.len() {
        1..=16 => std::str::from_utf8(digits)
            .ok()
            .and_then(|d| u64::from_str_radix(d, 16).ok())
            .ok_or(()),
        _ => Err(()),
    };
    buf.advance(end + 1);
    Some(size)
}

/// Skip trailer fields up to the empty line that ends a chunked body.
async fn read_trailers(
    conn: &mut H1Conn,
    buf: &mut BytesMut,
    att: &mut Attempt,
    authority: Authority<'_>,
) -> Result<(), TransportError> {
    let mut seen = 0usize;
    loop {
        // Lines end in CRLF, or a bare LF (RFC 9112 §2.2); an empty line ends the body.
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let empty = i == 0 || (i == 1 && buf[0] == b'\r');
            seen += i + 1;
            buf.advance(i + 1);
            if empty {
                return Ok(());
            }
            continue;
        }
        if seen + buf.len() > MAX_HEAD {
            return Err(TransportError::new(
                ErrorKind::Protocol,
                format!("{authority}: chunked trailers larger than {MAX_HEAD} bytes"),
            ));
        }
        if fill(conn, buf, att, authority).await? == 0 {
            return Err(truncated(authority));
        }
    }
}

fn io_error(
    e: &io::Error,
    authority: Authority<'_>,
    when: &str,
    default: ErrorKind,
) -> TransportError {
    let kind = match e.kind() {
        io::ErrorKind::InvalidData => {
            // rustls reports TLS failures after the handshake as invalid data.
            if e.get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
            {
                ErrorKind::Tls
            } else {
                ErrorKind::Protocol
            }
        }
        _ => default,
    };
    TransportError::new(kind, format!("{authority}: {e} {when}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn auth() -> Authority<'static> {
        Authority {
            host: "127.0.0.1",
            port: 80,
        }
    }

    #[test]
    fn encodes_origin_form_with_host_length_and_merged_cookie() {
        let url = Url::parse("http://example.test:8080/a/b?x=1#frag").unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        h.insert("x-one", HeaderValue::from_static("1"));
        let ua = HeaderValue::from_static("sonde/test");
        let mut out = Vec::new();
        encode(
            &Method::POST,
            &url,
            &h,
            b"{}",
            Some("a=1; s=2"),
            &ua,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "POST /a/b?x=1 HTTP/1.1\r\nhost: example.test:8080\r\nx-one: 1\r\n\
             cookie: a=1; s=2\r\nuser-agent: sonde/test\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    fn meta(lines: &[(&str, &str)]) -> Meta {
        let mut m = Meta::default();
        for (n, v) in lines {
            m.see(n.as_bytes(), v.as_bytes());
        }
        m
    }

    #[test]
    fn head_parse_skips_interim_and_shares_values() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 3\r\nConnection: Close\r\n\r\nok\n"[..],
        );
        assert!(matches!(parse_head(&mut buf, auth()), Ok(Some(None))));
        let head = parse_head(&mut buf, auth()).unwrap().unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.headers.get_all("x-a").iter().count(), 2);
        assert!(matches!(head.meta.content_length, Some(Ok(3))));
        assert!(head.meta.close);
        assert_eq!(&buf[..], b"ok\n");
    }

    #[test]
    fn headers_are_built_only_when_read_and_match_the_wire() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nServer:  nginx \r\nSET-COOKIE: s=1; Path=/\r\nset-cookie: t=2\r\nServer-Timing: db;dur=5.5\r\nContent-Length: 2\r\n\r\nok"[..],
        );
        let mut head = parse_head(&mut buf, auth()).unwrap().unwrap().unwrap();
        assert_eq!(&buf[..], b"ok");
        // Framing and the names the transport reads come from the raw lines, not the map.
        assert!(matches!(head.meta.content_length, Some(Ok(2))));
        assert!(head.headers.has_set_cookie());
        assert!(head.headers.has_server_timing());
        head.headers.mark_cookies_sensitive();
        assert!(!head.headers.is_built());
        // First read builds the map: every line, values trimmed by httparse, order kept.
        assert_eq!(head.headers.get("server").unwrap(), "nginx");
        assert!(head.headers.is_built());
        let cookies: Vec<_> = head.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["s=1; Path=/", "t=2"]);
        assert!(cookies.iter().all(|v| v.is_sensitive()));
        assert_eq!(head.headers.get("server-timing").unwrap(), "db;dur=5.5");
        assert_eq!(head.headers.len(), 5);
        let names: Vec<_> = (&head.headers)
            .into_iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names.len(), 5);
        assert!(names.contains(&"content-length"));

        let mut plain = BytesMut::from(&b"HTTP/1.0 204 No Content\r\nDate: x\r\n\r\n"[..]);
        let head = parse_head(&mut plain, auth()).unwrap().unwrap().unwrap();
        assert!(!head.headers.has_set_cookie());
        assert!(!head.headers.has_server_timing());
        assert!(!head.headers.is_built());
        assert_eq!(head.headers.get("date").unwrap(), "x");
        assert_eq!(head.version, Version::HTTP_10);
        // A map from elsewhere (HTTP/2) answers from the map.
        let mut m = HeaderMap::new();
        m.insert("set-cookie", HeaderValue::from_static("a=1"));
        let mut h2 = super::super::Headers::from(m);
        assert!(h2.has_set_cookie() && !h2.has_server_timing());
        h2.mark_cookies_sensitive();
        assert!(h2.get("set-cookie").unwrap().is_sensitive());
        assert!(super::super::Headers::default().is_empty());
    }

    #[test]
    fn partial_head_waits_and_garbage_is_a_protocol_error() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-A"[..]);
        assert!(matches!(parse_head(&mut buf, auth()), Ok(None)));
        let mut bad = BytesMut::from(&b"NOT HTTP\r\n\r\n"[..]);
        let e = parse_head(&mut bad, auth()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let ok = StatusCode::OK;
        let same = meta(&[("Content-Length", "5, 5")]);
        assert!(matches!(
            framing(ok, &same, false, auth()),
            Ok(Framing::Length(5))
        ));
        assert!(matches!(
            framing(ok, &same, true, auth()),
            Ok(Framing::None)
        ));
        assert!(matches!(
            framing(StatusCode::NOT_MODIFIED, &same, false, auth()),
            Ok(Framing::None)
        ));
        let differ = meta(&[("content-length", "5"), ("content-length", "6")]);
        assert!(framing(ok, &differ, false, auth()).is_err());
        let bad = meta(&[("content-length", "5x")]);
        assert!(framing(ok, &bad, false, auth()).is_err());
        let signed = meta(&[("content-length", "+5")]);
        assert!(framing(ok, &signed, false, auth()).is_err());
        let te = meta(&[
            ("content-length", "5"),
            ("Transfer-Encoding", "gzip, chunked"),
        ]);
        assert!(matches!(
            framing(ok, &te, false, auth()),
            Ok(Framing::Chunked)
        ));
        let te_gzip = meta(&[("transfer-encoding", "gzip")]);
        assert!(matches!(
            framing(ok, &te_gzip, false, auth()),
            Ok(Framing::UntilClose)
        ));
        assert!(matches!(
            framing(ok, &Meta::default(), false, auth()),
            Ok(Framing::UntilClose)
        ));
    }
}

//! Review of sonde's own HTTP/1.1 client (`src/http/h1.rs`, `session.rs`) against raw servers on
//! 127.0.0.1:0 that behave like real ones: full-duplex echo (Node's `req.pipe(res)`), an early
//! error response to a large upload, a pooled connection closed while the load thread was busy,
//! and wire shapes (every byte in its own segment, no reason phrase, obs-text, huge heads,
//! bytes after the response). The echo and the early 413 need a client that reads while it
//! writes a request body (RFC 9112 §9.5), which `h1::send` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{bounded, read_head_text, spawn_raw};
use bytes::Bytes;
use http::Method;
use sonde::http::{Client, ClientConfig, ErrorKind, Request, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn session() -> Session {
    Client::new(ClientConfig::default()).unwrap().session()
}

fn post(url: url::Url, body: Bytes, timeout: Duration) -> Request {
    let mut req = Request::new(Method::POST, url);
    req.body = body;
    req.timeout = Some(timeout);
    req
}

/// Node's `req.pipe(res)`: each piece of the request body is written back as a chunk as soon as
/// it is read. A body larger than the socket buffers needs a client that reads while it writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_echo_of_a_large_upload_completes() {
    let srv = spawn_raw(|mut s: TcpStream| async move {
        let Some((head, already)) = read_head_text(&mut s).await else {
            return;
        };
        let total = support::content_length(&head);
        // The body bytes that came with the head are not echoed: count them only.
        let mut left = total - already as u64;
        if s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        for _ in 0..100_000 {
            if left == 0 {
                break;
            }
            let n = match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            left -= n as u64;
            let mut piece = format!("{n:x}\r\n").into_bytes();
            piece.extend_from_slice(&chunk[..n]);
            piece.extend_from_slice(b"\r\n");
            if s.write_all(&piece).await.is_err() {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    })
    .await;
    let body = Bytes::from(vec![b'x'; 96 * 1024 * 1024]);
    let req = post(srv.url("/echo"), body, Duration::from_secs(8));
    let ex = bounded(Duration::from_secs(20), session().send(req)).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
    assert!(ex.body_len > 90 * 1024 * 1024, "echoed {}", ex.body_len);
}

/// Go's net/http and many frameworks answer an oversized upload with 413 and close without
/// reading the rest; RFC 9112 §9.5: a client sending a body SHOULD monitor the connection for
/// an error response while it is transmitting the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_error_response_to_a_large_upload_is_reported_with_its_status() {
    let srv = spawn_raw(|mut s: TcpStream| async move {
        if read_head_text(&mut s).await.is_none() {
            return;
        }
        let _ = s
            .write_all(
                b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: 8\r\n\r\ntoo big\n",
            )
            .await;
        // Let the client see the response, then close with the body unread (a reset).
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await;
    let body = Bytes::from(vec![b'x'; 64 * 1024 * 1024]);
    let req = post(srv.url("/upload"), body, Duration::from_secs(8));
    let ex = bounded(Duration::from_secs(20), session().send(req)).await;
    assert_eq!(
        ex.status.map(|s| s.as_u16()),
        Some(413),
        "error: {:?}",
        ex.error
    );
}

/// A keep-alive response, then the server closes the connection 20 ms later without having
/// said `Connection: close` (an idle timeout). The load thread (a current-thread runtime, as in
/// `exec`) is busy for 200 ms before its next POST, so the FIN is already in the kernel when the
/// connection is checked out, but the runtime has not polled its reactor since: `idle_check`
/// trusts the cached readiness, reuses the dead connection, and a POST is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_after_an_idle_close_seen_late_by_a_busy_load_thread_succeeds() {
    let (srv, accepted) = support::answers_once_then_closes(Duration::from_millis(20)).await;
    let url = srv.url("/form");
    let client = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let s = session();
            let body = Bytes::from_static(b"a=1");
            let first = bounded(
                Duration::from_secs(5),
                s.send(post(url.clone(), body.clone(), Duration::from_secs(3))),
            )
            .await;
            // Other virtual users keep this thread busy; the reactor is not polled meanwhile.
            std::thread::sleep(Duration::from_millis(200));
            let second = bounded(
                Duration::from_secs(5),
                s.send(post(url, body, Duration::from_secs(3))),
            )
            .await;
            (first, second)
        })
    });
    let (first, second) = bounded(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || client.join().unwrap()),
    )
    .await
    .unwrap();
    assert!(first.error.is_none(), "{:?}", first.error);
    assert!(
        second.error.is_none(),
        "a connection closed 180 ms before the request was reused: {:?}",
        second.error
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// Shapes real servers send, each checked end to end (these pass; they record what the review
/// verified).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_shapes_every_byte_apart_are_framed_and_reused_right() {
    // 100 + 103 interim, then chunked with extension and trailers, every byte its own write.
    let script: &'static [u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\
        link: </a>\r\n\r\nHTTP/1.1 200\r\nx-obs: caf\xe9\r\nx-empty:\r\n\
        transfer-encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nx-t: 1\r\n\r\n";
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    let srv = spawn_raw(move |mut s: TcpStream| {
        acc.fetch_add(1, Ordering::SeqCst);
        async move {
            let _ = s.set_nodelay(true);
            for _ in 0..2 {
                if read_head_text(&mut s).await.is_none() {
                    return;
                }
                for b in script {
                    if s.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        }
    })
    .await;
    let s = session();
    for _ in 0..2 {
        let ex = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
        assert_eq!(&ex.body[..], b"abc");
        assert_eq!(
            ex.headers.get("x-obs").map(|v| v.as_bytes()),
            Some(&b"caf\xe9"[..])
        );
        assert_eq!(ex.headers.get("x-empty").map(|v| v.len()), Some(0));
        assert_eq!(ex.timing.bytes_received, script.len() as u64);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_heads_fail_fast_and_trailing_garbage_is_not_reused() {
    // A head that never ends within 64 KiB: a protocol error, not a wait for the timeout.
    let big = spawn_raw(|mut s: TcpStream| async move {
        if read_head_text(&mut s).await.is_none() {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
        let line = format!("x-big: {}\r\n", "v".repeat(1000));
        for _ in 0..80 {
            if s.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let mut req = Request::get(big.url("/"));
    req.timeout = Some(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let ex = bounded(Duration::from_secs(8), session().send(req)).await;
    let err = ex.error.expect("an endless head is an error");
    assert_eq!(err.kind, ErrorKind::Protocol, "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(3));

    // Bytes after a complete response: the connection must not carry the next request.
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    let garbage = spawn_raw(move |mut s: TcpStream| {
        acc.fetch_add(1, Ordering::SeqCst);
        async move {
            for _ in 0..4 {
                if read_head_text(&mut s).await.is_none() {
                    return;
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
                    .await;
            }
        }
    })
    .await;
    let s = session();
    for _ in 0..2 {
        let ex = bounded(
            Duration::from_secs(5),
            s.send(Request::get(garbage.url("/"))),
        )
        .await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(&ex.body[..], b"ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A server that stops reading the upload: the deadline catches sonde still writing the body,
/// and the message should say so (the `send` mark was never set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_while_the_upload_is_stuck_names_the_sending_stage() {
    let srv = support::slow_reader(Duration::from_secs(10)).await;
    let body = Bytes::from(vec![b'x'; 64 * 1024 * 1024]);
    let req = post(srv.url("/upload"), body, Duration::from_millis(500));
    let ex = bounded(Duration::from_secs(5), session().send(req)).await;
    let err = ex.error.expect("the stalled upload times out");
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
    assert!(
        !err.message.contains("waiting for the response"),
        "the request was never fully sent: {}",
        err.message
    );
}

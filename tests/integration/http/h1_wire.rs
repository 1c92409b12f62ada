//! sonde's own HTTP/1.1 client against scripted raw servers on 127.0.0.1:0: every body framing
//! of RFC 9112 (chunked with extensions and trailers, Content-Length, until close, none for
//! HEAD/204/304), interim 1xx responses, keep-alive and `Connection: close`, a pooled connection
//! the server closed while idle, truncated and malformed responses, and the bytes on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{Server, bounded, read_head_text, spawn_raw};
use bytes::Bytes;
use http::{HeaderValue, Method, header};
use sonde::http::{Client, ClientConfig, ErrorKind, Request, Session};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn session() -> Session {
    Client::new(ClientConfig::default()).unwrap().session()
}

/// A server that answers every request on a connection with `answer(n)` (n counts requests
/// over all connections), written in pieces of `piece` bytes; counts accepted connections.
async fn scripted(
    piece: usize,
    answer: impl Fn(usize, &str) -> Vec<u8> + Send + Sync + 'static,
) -> (Server, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let acc = accepted.clone();
    let srv = spawn_raw(move |mut s: TcpStream| {
        acc.fetch_add(1, Ordering::SeqCst);
        let answer = answer.clone();
        let requests = requests.clone();
        async move {
            let _ = s.set_nodelay(true);
            for _ in 0..100 {
                let Some((head, _)) = read_head_text(&mut s).await else {
                    return;
                };
                let n = requests.fetch_add(1, Ordering::SeqCst);
                let bytes = answer(n, &head);
                for part in bytes.chunks(piece.max(1)) {
                    if s.write_all(part).await.is_err() {
                        return;
                    }
                    if piece < bytes.len() {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                if bytes.ends_with(b"<close>") {
                    return;
                }
            }
        }
    })
    .await;
    (srv, accepted)
}

async fn get(s: &Session, srv: &Server, path: &str) -> sonde::http::Exchange {
    bounded(Duration::from_secs(10), s.send(Request::get(srv.url(path)))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_with_extensions_and_trailers_in_tiny_pieces_then_reuse() {
    let body = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: 1\r\n\r\n";
    let (srv, accepted) = scripted(3, move |_, _| body.to_vec()).await;
    let s = session();
    for _ in 0..2 {
        let ex = get(&s, &srv, "/").await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
        assert_eq!(&ex.body[..], b"hello world");
        assert_eq!(ex.body_len, 11);
        assert_eq!(ex.timing.bytes_received, body.len() as u64);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "chunked keeps the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_with_bare_lf_line_ends_is_accepted() {
    let (srv, accepted) = scripted(usize::MAX, |_, _| {
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\nabc\n0\nx-t: 1\n\n".to_vec()
    })
    .await;
    let s = session();
    for _ in 0..2 {
        let ex = get(&s, &srv, "/").await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(&ex.body[..], b"abc");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_until_close_is_complete_and_the_connection_is_not_reused() {
    let (srv, accepted) = scripted(7, |_, _| {
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nthe whole body<close>".to_vec()
    })
    .await;
    let s = session();
    for _ in 0..2 {
        let ex = get(&s, &srv, "/").await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(&ex.body[..], b"the whole body<close>");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_204_and_304_have_no_body_and_keep_the_connection() {
    let (srv, accepted) = scripted(usize::MAX, |n, head| {
        if head.starts_with("HEAD ") {
            return b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_vec();
        }
        match n % 3 {
            1 => b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n".to_vec(),
            2 => b"HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
        }
    })
    .await;
    let s = session();
    let head = bounded(
        Duration::from_secs(5),
        s.send(Request::new(Method::HEAD, srv.url("/"))),
    )
    .await;
    assert!(head.error.is_none(), "{:?}", head.error);
    assert_eq!(head.body_len, 0);
    let a = get(&s, &srv, "/").await;
    let b = get(&s, &srv, "/").await;
    let c = get(&s, &srv, "/").await;
    let statuses: Vec<u16> = [&a, &b, &c]
        .iter()
        .map(|e| {
            assert!(e.error.is_none(), "{:?}", e.error);
            e.status.unwrap().as_u16()
        })
        .collect();
    assert_eq!(statuses, vec![204, 304, 200]);
    assert_eq!(&c.body[..], b"ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_responses_are_skipped() {
    let (srv, _) = scripted(usize::MAX, |_, _| {
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n\
          HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone"
            .to_vec()
    })
    .await;
    let ex = get(&session(), &srv, "/").await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(201));
    assert!(
        ex.headers.get("link").is_none(),
        "interim headers are not the response's"
    );
    assert_eq!(&ex.body[..], b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_and_http10_open_a_new_connection_next_time() {
    let (srv, accepted) = scripted(usize::MAX, |n, _| match n % 2 {
        0 => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na".to_vec(),
        _ => b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb".to_vec(),
    })
    .await;
    let s = session();
    for _ in 0..3 {
        let ex = get(&s, &srv, "/").await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert!(!ex.timing.reused);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_server_closed_is_replaced_without_an_error() {
    // Keep-alive response, then the server closes the idle connection after 50 ms.
    let (srv, accepted) = support::answers_once_then_closes(Duration::from_millis(50)).await;
    let s = session();
    let first = get(&s, &srv, "/").await;
    assert!(first.error.is_none(), "{:?}", first.error);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = get(&s, &srv, "/").await;
    assert!(second.error.is_none(), "{:?}", second.error);
    assert!(!second.timing.reused, "the closed connection was not used");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_content_length_body_is_truncated_with_what_arrived() {
    let (srv, _) = scripted(usize::MAX, |_, _| {
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this<close>".to_vec()
    })
    .await;
    let ex = get(&session(), &srv, "/").await;
    let err = ex.error.expect("a short body is an error");
    assert_eq!(err.kind, ErrorKind::BodyTruncated, "{}", err.message);
    assert!(err.message.contains("16 of 100"), "{}", err.message);
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
    assert_eq!(ex.body_len, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_responses_are_protocol_errors_naming_the_target() {
    for script in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab"[..],
        &b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n"[..],
        &b"SPDY/9 what\r\n\r\n"[..],
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"[..],
    ] {
        let (srv, _) = scripted(usize::MAX, move |_, _| script.to_vec()).await;
        let ex = get(&session(), &srv, "/").await;
        let err = ex.error.expect("malformed must be an error");
        assert_eq!(err.kind, ErrorKind::Protocol, "{}", err.message);
        assert!(
            err.message.contains(&srv.port().to_string()),
            "{}",
            err.message
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prebuilt_bytes_are_sent_until_the_jar_has_a_cookie() {
    let heads = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = heads.clone();
    let (srv, _) = scripted(usize::MAX, move |n, head| {
        seen.lock().unwrap().push(head.to_string());
        match n {
            0 => b"HTTP/1.1 200 OK\r\nset-cookie: sid=abc; Path=/\r\ncontent-length: 0\r\n\r\n"
                .to_vec(),
            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
        }
    })
    .await;
    let mut req = Request::new(Method::POST, srv.url("/p?q=1"));
    req.headers.insert("x-flag", HeaderValue::from_static("on"));
    req.headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    req.body = Bytes::from_static(b"{\"a\":1}");
    let wire = req.encode_h1();
    let s = session();
    for _ in 0..2 {
        let ex = bounded(Duration::from_secs(5), s.send_ref(&req, Some(&wire))).await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
    }
    let heads = heads.lock().unwrap();
    let first = heads[0].to_ascii_lowercase();
    assert!(first.starts_with("post /p?q=1 http/1.1\r\n"), "{first}");
    assert!(
        first.contains(&format!("host: 127.0.0.1:{}", srv.port())),
        "{first}"
    );
    assert!(first.contains("x-flag: on"), "{first}");
    assert!(first.contains("content-length: 7"), "{first}");
    // The caller's Content-Length (999) is not sent: exactly one, computed, header. (Not
    // `!contains("999")`, which failed whenever the server's port held 999.)
    assert_eq!(first.matches("content-length:").count(), 1, "{first}");
    assert!(!first.contains("content-length: 999"), "{first}");
    assert!(first.contains("user-agent: sonde/"), "{first}");
    assert!(!first.contains("cookie"), "{first}");
    assert!(heads[1].contains("cookie: sid=abc"), "{}", heads[1]);
}

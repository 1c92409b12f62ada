//! TLS and HTTP/2 against a local rustls server with an rcgen certificate: the `tls` phase,
//! session resumption, ALPN h2 with connection sharing, `--cacert` and `--insecure`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::time::Duration;

use crate::support::{Server, bounded, full, response};
use http::Version;
use sonde::http::{Client, ClientConfig, ConnectionMode, ErrorKind, Request};

async fn tls_server(h2: bool) -> Server {
    support::spawn_tls(h2, |_req| async {
        let mut r = response(200, full("secure"));
        r.headers_mut()
            .insert("server-timing", "app;dur=1.5".parse().unwrap());
        r
    })
    .await
}

fn trusting(srv: &Server, connection: ConnectionMode) -> Client {
    Client::new(ClientConfig {
        cacert: srv.ca_pem.clone(),
        connection,
        ..ClientConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_timed_on_new_connections_and_zero_when_reused() {
    let srv = tls_server(false).await;
    let s = trusting(&srv, ConnectionMode::Reuse).session();
    let first = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.version, Version::HTTP_11);
    assert!(first.timing.tls > Duration::ZERO, "{:?}", first.timing);
    assert!(!first.timing.reused);
    assert_eq!(first.body.as_ref(), b"secure");
    let second = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    assert!(second.error.is_none());
    assert!(second.timing.reused);
    assert_eq!(second.timing.tls, Duration::ZERO);
    assert_eq!(second.timing.connect, Duration::ZERO);
    assert!(
        !second.timing.tls_resumed,
        "no handshake happened on a reused connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_new_connection_resumes_the_tls_session() {
    let srv = tls_server(false).await;
    let s = trusting(&srv, ConnectionMode::New).session();
    let first = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert!(!first.timing.tls_resumed);
    let second = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    assert!(second.error.is_none(), "{:?}", second.error);
    assert!(!second.timing.reused);
    assert!(second.timing.tls > Duration::ZERO);
    assert!(second.timing.tls_resumed, "{:?}", second.timing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_by_alpn_and_the_connection_is_reused() {
    let srv = tls_server(true).await;
    let s = trusting(&srv, ConnectionMode::Reuse).session();
    let first = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/a")))).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(first.version, Version::HTTP_2);
    assert!(first.timing.tls > Duration::ZERO);
    assert_eq!(first.server_timing[0].dur_ms, Some(1.5));
    let second = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/b")))).await;
    assert!(second.error.is_none(), "{:?}", second.error);
    assert_eq!(second.version, Version::HTTP_2);
    assert!(second.timing.reused);
    assert_eq!(second.timing.connect, Duration::ZERO);
    assert_eq!(second.timing.tls, Duration::ZERO);
    let t = second.timing;
    assert_eq!(
        t.dns + t.connect + t.tls + t.send + t.wait + t.receive,
        t.total
    );
    assert!(t.bytes_received >= 6, "{t:?}");

    // Concurrent requests on the session share the one HTTP/2 connection.
    let (a, b, c) = bounded(Duration::from_secs(10), async {
        tokio::join!(
            s.send(Request::get(srv.url("/1"))),
            s.send(Request::get(srv.url("/2"))),
            s.send(Request::get(srv.url("/3")))
        )
    })
    .await;
    for ex in [a, b, c] {
        assert!(ex.error.is_none() && ex.timing.reused, "{:?}", ex.error);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_can_be_switched_off() {
    let srv = tls_server(true).await;
    let client = Client::new(ClientConfig {
        cacert: srv.ca_pem.clone(),
        http2: false,
        ..ClientConfig::default()
    })
    .unwrap();
    let ex = bounded(
        Duration::from_secs(10),
        client.session().send(Request::get(srv.url("/"))),
    )
    .await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.version, Version::HTTP_11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_name_is_checked_for_localhost_too() {
    let srv = tls_server(true).await;
    let s = trusting(&srv, ConnectionMode::Reuse).session();
    let ex = bounded(
        Duration::from_secs(10),
        s.send(Request::get(srv.localhost_url("/"))),
    )
    .await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert!(ex.timing.dns > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_error_unless_insecure() {
    let srv = tls_server(false).await;
    let strict = Client::new(ClientConfig::default()).unwrap();
    let ex = bounded(
        Duration::from_secs(10),
        strict.session().send(Request::get(srv.url("/"))),
    )
    .await;
    let err = ex
        .error
        .expect("self-signed must not be trusted by default");
    assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
    assert!(
        err.message.contains(&format!("127.0.0.1:{}", srv.port())),
        "{}",
        err.message
    );

    let insecure = Client::new(ClientConfig {
        insecure: true,
        ..ClientConfig::default()
    })
    .unwrap();
    let ex = bounded(
        Duration::from_secs(10),
        insecure.session().send(Request::get(srv.url("/"))),
    )
    .await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
}

#[test]
fn a_missing_or_empty_cacert_file_is_rejected_when_building_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let err = Client::new(ClientConfig {
        cacert: Some(missing.clone()),
        ..ClientConfig::default()
    })
    .err()
    .expect("missing file must fail");
    assert!(err.to_string().contains("nope.pem"), "{err}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = Client::new(ClientConfig {
        cacert: Some(empty),
        ..ClientConfig::default()
    })
    .err()
    .expect("no certificate must fail");
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}

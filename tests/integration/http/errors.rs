//! Error classes of the transport against real misbehaving servers on 127.0.0.1:0: refused,
//! silent, reset mid-body, a 10 GB body under a short deadline, a redirect loop, DNS failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::time::{Duration, Instant};

use crate::support::bounded;
use sonde::http::{Client, ClientConfig, ErrorKind, Request};

fn client(cfg: ClientConfig) -> Client {
    Client::new(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_connect_refused_naming_the_target() {
    let port = support::closed_port().await;
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let s = client(ClientConfig::default()).session();
    let ex = bounded(Duration::from_secs(10), s.send(Request::get(url))).await;
    let err = ex.error.expect("refused must be an error");
    assert_eq!(err.kind, ErrorKind::ConnectRefused);
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        err.message
    );
    assert!(ex.status.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out_within_the_deadline() {
    let srv = support::never_answers().await;
    let s = client(ClientConfig::default()).session();
    let mut req = Request::get(srv.url("/"));
    req.timeout = Some(Duration::from_millis(300));
    let t0 = Instant::now();
    let ex = bounded(Duration::from_secs(10), s.send(req)).await;
    let took = t0.elapsed();
    let err = ex.error.expect("timeout must be an error");
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // The request went out, so the time is in `wait`, not in connecting.
    assert!(
        ex.timing.wait >= Duration::from_millis(200),
        "{:?}",
        ex.timing
    );
    assert!(ex.status.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_body_keeps_the_status_and_counts_what_arrived() {
    let srv = support::resets_mid_body().await;
    let s = client(ClientConfig::default()).session();
    let ex = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    let err = ex.error.expect("a cut body must be an error");
    assert!(
        matches!(err.kind, ErrorKind::BodyTruncated | ErrorKind::Reset),
        "{err:?}"
    );
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
    assert_eq!(ex.body_len, 100);
    assert_eq!(ex.body.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_the_headers_is_a_reset() {
    let srv = support::resets_before_headers().await;
    let s = client(ClientConfig::default()).session();
    let ex = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    let err = ex.error.expect("a reset must be an error");
    assert_eq!(err.kind, ErrorKind::Reset, "{}", err.message);
    assert!(
        err.message.contains(&srv.port().to_string()),
        "{}",
        err.message
    );
    assert!(ex.status.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_gigabyte_body_hits_the_deadline_with_bounded_capture() {
    let srv = support::huge_body().await;
    let cap = 64 * 1024;
    let s = client(ClientConfig {
        body_capture_limit: cap,
        ..ClientConfig::default()
    })
    .session();
    let mut req = Request::get(srv.url("/"));
    req.timeout = Some(Duration::from_millis(300));
    let t0 = Instant::now();
    let ex = bounded(Duration::from_secs(10), s.send(req)).await;
    let err = ex.error.expect("must time out");
    assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
    assert!(ex.body.len() <= cap, "captured {} > cap", ex.body.len());
    // It streamed (more than the cap arrived) but stopped far short of 10 GB.
    assert!(ex.body_len > cap as u64, "received {}", ex.body_len);
    assert!(ex.body_len < 10 * 1024 * 1024 * 1024);
    assert!(ex.timing.receive > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loop_is_too_many_redirects_with_every_hop_recorded() {
    let srv = support::redirect_loop().await;
    let s = client(ClientConfig {
        max_redirects: 5,
        ..ClientConfig::default()
    })
    .session();
    let ex = bounded(
        Duration::from_secs(10),
        s.send(Request::get(srv.url("/loop"))),
    )
    .await;
    let err = ex.error.expect("loop must fail");
    assert_eq!(err.kind, ErrorKind::TooManyRedirects);
    assert_eq!(ex.hops.len(), 5);
    for (i, hop) in ex.hops.iter().enumerate() {
        assert_eq!(hop.status.as_u16(), 302);
        let expect_query = if i == 0 { None } else { Some(i.to_string()) };
        assert_eq!(hop.url.query().map(str::to_owned), expect_query);
        assert!(hop.timing.total > Duration::ZERO);
        // One keep-alive connection serves the whole same-origin chain.
        assert_eq!(hop.timing.reused, i > 0, "hop {i}");
    }
    assert_eq!(ex.url.query(), Some("5"));
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(302));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_not_followed_when_asked() {
    let srv = support::redirect_loop().await;
    let s = client(ClientConfig::default()).session();
    let mut req = Request::get(srv.url("/loop"));
    req.follow_redirects = false;
    let ex = bounded(Duration::from_secs(10), s.send(req)).await;
    assert!(ex.error.is_none());
    assert!(ex.hops.is_empty());
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(302));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_name_is_a_dns_error_naming_the_host() {
    let url = url::Url::parse("http://sonde-test.nonexistent.invalid/").unwrap();
    let mut allow = sonde::http::HostPolicy::loopback_only();
    allow.allow_url(&url);
    let s = client(ClientConfig {
        connect_timeout: Duration::from_secs(5),
        allow: std::sync::Arc::new(allow),
        ..ClientConfig::default()
    })
    .session();
    let ex = bounded(Duration::from_secs(10), s.send(Request::get(url))).await;
    let err = ex.error.expect("must fail");
    assert!(
        matches!(err.kind, ErrorKind::Dns | ErrorKind::ConnectTimeout),
        "{err:?}"
    );
    assert!(
        err.message.contains("sonde-test.nonexistent.invalid"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_scheme_is_an_invalid_request() {
    let s = client(ClientConfig::default()).session();
    let url = url::Url::parse("ftp://127.0.0.1/").unwrap();
    let ex = bounded(Duration::from_secs(5), s.send(Request::get(url))).await;
    assert_eq!(ex.error.map(|e| e.kind), Some(ErrorKind::InvalidRequest));
}

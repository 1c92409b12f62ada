//! Phase timing, keep-alive, DNS, cookies, redirects and Server-Timing over plain HTTP/1.1
//! against real servers on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{bounded, full, response};
use bytes::Bytes;
use http::{HeaderValue, Method, header};
use http_body_util::BodyExt;
use sonde::http::{Client, ClientConfig, ConnectionMode, Request};

fn session() -> sonde::http::Session {
    Client::new(ClientConfig::default()).unwrap().session()
}

fn within(actual: Duration, expected: Duration, pct: f64) -> bool {
    let a = actual.as_secs_f64();
    let e = expected.as_secs_f64();
    (a - e).abs() <= e * pct
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_after_200ms_then_drip_over_300ms_splits_wait_and_receive() {
    let srv = support::drip(Duration::from_millis(200), Duration::from_millis(300), 6).await;
    let s = session();
    let ex = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    let t = ex.timing;
    assert!(within(t.wait, Duration::from_millis(200), 0.10), "{t:?}");
    assert!(within(t.receive, Duration::from_millis(300), 0.10), "{t:?}");
    assert_eq!(t.dns, Duration::ZERO, "IP literal needs no DNS");
    assert!(t.connect < Duration::from_millis(50), "{t:?}");
    assert_eq!(t.tls, Duration::ZERO);
    assert_eq!(
        t.dns + t.connect + t.tls + t.send + t.wait + t.receive,
        t.total
    );
    assert!(!t.reused);
    assert_eq!(ex.body_len, 6 * 5);
    assert!(t.bytes_sent > 0 && t.bytes_received > ex.body_len, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_to_a_stalled_reader_shows_up_in_send_not_wait() {
    let srv = support::slow_reader(Duration::from_millis(300)).await;
    let size = 32 * 1024 * 1024;
    let mut req = Request::new(Method::POST, srv.url("/upload"));
    req.body = Bytes::from(vec![b'u'; size]);
    let ex = bounded(Duration::from_secs(20), session().send(req)).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.body.as_ref(), size.to_string().as_bytes());
    let t = ex.timing;
    assert!(t.send >= Duration::from_millis(250), "{t:?}");
    assert!(t.wait < t.send, "{t:?}");
    assert!(t.bytes_sent >= size as u64, "{t:?}");
}

#[test]
fn sessions_and_their_send_futures_can_move_between_threads() {
    fn is_send_sync<T: Send + Sync>(_: &T) {}
    fn is_send<T: Send>(_: &T) {}
    let client = Client::new(ClientConfig::default()).unwrap();
    let s = client.session();
    is_send_sync(&client);
    is_send_sync(&s);
    let fut = s.send(Request::get(
        url::Url::parse("http://127.0.0.1:9/").unwrap(),
    ));
    is_send(&fut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_timing_metrics_arrive_parsed() {
    let srv = support::server_timing(r#"db;dur=150, cache;desc="hit";dur=2, bad name;dur=1"#).await;
    let ex = bounded(
        Duration::from_secs(10),
        session().send(Request::get(srv.url("/"))),
    )
    .await;
    assert!(ex.error.is_none());
    let m = &ex.server_timing;
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!((m[0].name.as_str(), m[0].dur_ms), ("db", Some(150.0)));
    assert_eq!((m[1].name.as_str(), m[1].dur_ms), ("cache", Some(2.0)));
    assert_eq!(m[1].desc.as_deref(), Some("hit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_is_resolved_and_timed_while_the_ip_literal_is_not() {
    let srv = support::fixed_delay(Duration::ZERO).await;
    let s = Client::new(ClientConfig {
        connection: ConnectionMode::New,
        ..ClientConfig::default()
    })
    .unwrap()
    .session();
    let ip = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
    let name = bounded(
        Duration::from_secs(10),
        s.send(Request::get(srv.localhost_url("/"))),
    )
    .await;
    assert!(
        ip.error.is_none() && name.error.is_none(),
        "{:?} {:?}",
        ip.error,
        name.error
    );
    assert_eq!(ip.timing.dns, Duration::ZERO);
    assert!(name.timing.dns > Duration::ZERO, "{:?}", name.timing);
    assert_eq!(name.status.map(|s| s.as_u16()), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_sequential_requests_share_one_keep_alive_connection() {
    let srv = support::fixed_delay(Duration::ZERO).await;
    let s = session();
    let url = srv.url("/fast");
    let t0 = std::time::Instant::now();
    bounded(Duration::from_secs(30), async {
        for i in 0..2000 {
            let ex = s.send(Request::get(url.clone())).await;
            assert!(ex.error.is_none(), "request {i}: {:?}", ex.error);
            assert_eq!(ex.timing.reused, i > 0, "request {i}");
            assert_eq!(ex.body.as_ref(), b"ok");
            if i > 0 {
                assert_eq!(ex.timing.connect, Duration::ZERO);
            }
        }
    })
    .await;
    eprintln!("2000 sequential keep-alive requests in {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connection_mode_opens_a_connection_per_request() {
    let srv = support::fixed_delay(Duration::ZERO).await;
    let s = Client::new(ClientConfig {
        connection: ConnectionMode::New,
        ..ClientConfig::default()
    })
    .unwrap()
    .session();
    for _ in 0..3 {
        let ex = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
        assert!(ex.error.is_none());
        assert!(!ex.timing.reused);
        assert!(ex.timing.connect > Duration::ZERO);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_after_each_response_costs_no_error() {
    let srv = support::spawn(|_req| async {
        let mut r = response(200, full("bye"));
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    })
    .await;
    let s = session();
    for i in 0..5 {
        let ex = bounded(Duration::from_secs(10), s.send(Request::get(srv.url("/")))).await;
        assert!(ex.error.is_none(), "request {i}: {:?}", ex.error);
        assert!(!ex.timing.reused, "request {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_round_trip_and_merge_with_an_explicit_cookie_header() {
    let srv = support::spawn(|req: hyper::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/login" {
            let mut r = response(200, full("in"));
            r.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static("sid=abc; Path=/"),
            );
            r.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static("scoped=1; Path=/admin"),
            );
            return r;
        }
        let cookie = req
            .headers()
            .get(header::COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        response(200, full(cookie))
    })
    .await;
    let s = session();
    let ex = bounded(
        Duration::from_secs(10),
        s.send(Request::get(srv.url("/login"))),
    )
    .await;
    assert!(ex.error.is_none());
    assert!(
        !format!("{ex:?}").contains("sid=abc"),
        "Set-Cookie leaked into Debug"
    );
    assert_eq!(s.cookie("sid", &srv.url("/me")).as_deref(), Some("abc"));
    assert_eq!(
        s.cookie("scoped", &srv.url("/me")),
        None,
        "path rules apply"
    );

    let ex = bounded(
        Duration::from_secs(10),
        s.send(Request::get(srv.url("/me"))),
    )
    .await;
    assert_eq!(ex.body.as_ref(), b"sid=abc");

    s.add_cookie("env", "whale", &srv.url("/"));
    let mut req = Request::get(srv.url("/me"));
    req.headers
        .insert(header::COOKIE, HeaderValue::from_static("explicit=yes"));
    let ex = bounded(Duration::from_secs(10), s.send(req)).await;
    let sent = String::from_utf8(ex.body.to_vec()).unwrap();
    assert!(sent.starts_with("explicit=yes; "), "{sent}");
    assert!(
        sent.contains("sid=abc") && sent.contains("env=whale"),
        "{sent}"
    );
}

/// (host + path, Authorization, Cookie) as the server received them.
type Seen = (String, Option<String>, Option<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_is_dropped_on_a_cross_host_redirect_and_kept_on_the_same_host() {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let port = Arc::new(Mutex::new(0u16));
    let (seen2, port2) = (seen.clone(), port.clone());
    let srv = support::spawn(move |req: hyper::Request<hyper::body::Incoming>| {
        let seen = seen2.clone();
        let port = *port2.lock().unwrap();
        async move {
            let get = |h| {
                req.headers()
                    .get(h)
                    .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
            };
            let host = get(header::HOST).unwrap_or_default();
            seen.lock().unwrap().push((
                format!("{host}{}", req.uri().path()),
                get(header::AUTHORIZATION),
                get(header::COOKIE),
            ));
            match req.uri().path() {
                "/cross" => support::redirect_to(format!("http://localhost:{port}/landing")),
                "/same" => support::redirect_to("/landing".into()),
                _ => response(200, full("landed")),
            }
        }
    })
    .await;
    *port.lock().unwrap() = srv.port();
    let s = session();
    for path in ["/cross", "/same"] {
        let mut req = Request::get(srv.url(path));
        req.headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        req.headers
            .insert(header::COOKIE, HeaderValue::from_static("mine=1"));
        let ex = bounded(Duration::from_secs(10), s.send(req)).await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.hops.len(), 1);
        assert_eq!(ex.url.path(), "/landing");
    }
    let seen = seen.lock().unwrap();
    let p = srv.port();
    let landing = |host: &str| {
        seen.iter()
            .find(|(k, _, _)| *k == format!("{host}:{p}/landing"))
            .cloned()
            .unwrap()
    };
    let cross = landing("localhost");
    assert_eq!(cross.1, None, "Authorization leaked to another host");
    assert_eq!(cross.2, None, "explicit Cookie leaked to another host");
    let same = landing("127.0.0.1");
    assert_eq!(same.1.as_deref(), Some("Bearer s3cret"));
    assert_eq!(same.2.as_deref(), Some("mine=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn see_other_turns_post_into_get_and_temporary_redirect_keeps_the_body() {
    let srv = support::spawn(|req: hyper::Request<hyper::body::Incoming>| async move {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        match path.as_str() {
            "/303" => {
                let mut r = support::redirect_to("/echo".into());
                *r.status_mut() = http::StatusCode::SEE_OTHER;
                r
            }
            "/307" => {
                let mut r = support::redirect_to("/echo".into());
                *r.status_mut() = http::StatusCode::TEMPORARY_REDIRECT;
                r
            }
            _ => response(
                200,
                full(format!("{method} {}", String::from_utf8_lossy(&body))),
            ),
        }
    })
    .await;
    let s = session();
    let mut post = Request::new(Method::POST, srv.url("/303"));
    post.body = Bytes::from_static(b"payload");
    let ex = bounded(Duration::from_secs(10), s.send(post.clone())).await;
    assert_eq!(ex.body.as_ref(), b"GET ");
    post.url = srv.url("/307");
    let ex = bounded(Duration::from_secs(10), s.send(post)).await;
    assert_eq!(ex.body.as_ref(), b"POST payload");
    assert_eq!(ex.hops[0].status.as_u16(), 307);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_group_on_one_session_runs_concurrently() {
    let srv = support::fixed_delay(Duration::from_millis(200)).await;
    let s = session();
    let t0 = std::time::Instant::now();
    let (a, b, c) = bounded(Duration::from_secs(10), async {
        tokio::join!(
            s.send(Request::get(srv.url("/a"))),
            s.send(Request::get(srv.url("/b"))),
            s.send(Request::get(srv.url("/c")))
        )
    })
    .await;
    assert!(
        t0.elapsed() < Duration::from_millis(550),
        "{:?}",
        t0.elapsed()
    );
    for ex in [&a, &b, &c] {
        assert!(ex.error.is_none());
    }
    // Afterwards the three connections are pooled: three more requests all reuse.
    let again = bounded(Duration::from_secs(10), async {
        tokio::join!(
            s.send(Request::get(srv.url("/a"))),
            s.send(Request::get(srv.url("/b"))),
            s.send(Request::get(srv.url("/c")))
        )
    })
    .await;
    assert!(again.0.timing.reused && again.1.timing.reused && again.2.timing.reused);
}

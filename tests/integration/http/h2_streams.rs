//! `--streams-per-connection` (`http.streams_per_connection`, h2load's `-m`): virtual users of
//! a load thread share HTTP/2 connections N to a connection. A local rustls + hyper HTTP/2
//! server counts the connections it accepted and the most concurrent streams each carried;
//! the refusals (a plain-HTTP target, a server that only speaks HTTP/1.1) are checked too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use sonde::http::{Client, ClientConfig, Request};

use crate::support::{self, bounded, full, response};

/// One accepted connection: streams in flight now, and the most at once.
#[derive(Default)]
struct ConnStats {
    in_flight: AtomicU64,
    max: AtomicU64,
    requests: AtomicU64,
}

/// An HTTP/2-over-TLS server (ALPN h2 only) whose every response takes `delay`, so the
/// streams of one connection overlap; it keeps each accepted connection's stats.
struct H2Server {
    port: u16,
    ca_pem: PathBuf,
    conns: Arc<Mutex<Vec<Arc<ConnStats>>>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for H2Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl H2Server {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// (connections accepted, most concurrent streams on each, requests on each).
    fn seen(&self) -> (usize, Vec<u64>, Vec<u64>) {
        let conns = self.conns.lock().unwrap();
        (
            conns.len(),
            conns.iter().map(|c| c.max.load(Ordering::SeqCst)).collect(),
            conns
                .iter()
                .map(|c| c.requests.load(Ordering::SeqCst))
                .collect(),
        )
    }
}

async fn h2_server(delay: Duration) -> H2Server {
    h2_server_goaway(delay, None).await
}

/// As `h2_server`; with `goaway_after`, each connection is shut down gracefully (GOAWAY, then
/// the streams in flight finish) once it has taken that many requests, as nginx does after
/// `keepalive_requests`.
async fn h2_server_goaway(delay: Duration, goaway_after: Option<u64>) -> H2Server {
    let (cert, key, ca_pem, dir) = support::self_signed();
    let acceptor = support::tls_acceptor(cert, key, &[b"h2"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns: Arc<Mutex<Vec<Arc<ConnStats>>>> = Arc::default();
    let seen = conns.clone();
    let task = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let acceptor = acceptor.clone();
            let stats = Arc::new(ConnStats::default());
            seen.lock().unwrap().push(stats.clone());
            tasks.spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let enough = Arc::new(tokio::sync::Notify::new());
                let say_goaway = enough.clone();
                let svc = service_fn(move |_req| {
                    let stats = stats.clone();
                    let say_goaway = say_goaway.clone();
                    async move {
                        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        stats.max.fetch_max(now, Ordering::SeqCst);
                        let n = stats.requests.fetch_add(1, Ordering::SeqCst) + 1;
                        if goaway_after.is_some_and(|g| n >= g) {
                            say_goaway.notify_one();
                        }
                        tokio::time::sleep(delay).await;
                        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(response(200, full("ok")))
                    }
                });
                let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .max_concurrent_streams(100)
                    .serve_connection(TokioIo::new(tls), svc);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = enough.notified() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
            while tasks.try_join_next().is_some() {}
        }
    });
    H2Server {
        port,
        ca_pem,
        conns,
        task,
        _dir: dir,
    }
}

/// `sonde run` with `args`, its JSON summary (`--out`) and its exit code and stderr.
fn run_json(args: &[&str]) -> (Option<Value>, i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
    all.extend(["-q".into(), "--out".into(), out.display().to_string()]);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let o = support::sonde_output(&refs);
    let json = std::fs::read(&out)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (
        json,
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_users_ten_streams_each_hold_two_connections() {
    let srv = h2_server(Duration::from_millis(30)).await;
    let url = srv.url("/");
    let ca = srv.ca_pem.display().to_string();
    let (json, code, err) = tokio::task::spawn_blocking(move || {
        run_json(&[
            "run",
            "--url",
            &url,
            "--cacert",
            &ca,
            "--vus",
            "20",
            "--streams-per-connection",
            "10",
            "--threads",
            "2",
            "-n",
            "200",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let (conns, max, requests) = srv.seen();
    assert_eq!(conns, 2, "connections accepted (max streams {max:?})");
    assert_eq!(max, vec![10, 10], "most concurrent streams per connection");
    assert_eq!(requests.iter().sum::<u64>(), 200);
    let json = json.unwrap();
    assert_eq!(json["load"]["streams_per_connection"], 10);
    let http = &json["http"];
    assert_eq!(http["requests"], 200);
    assert_eq!(http["errors"], 0);
    // Every stream but the two that opened the connections went on an existing one.
    assert_eq!(http["reused"], 198, "{http}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_that_opens_the_shared_connection_carries_its_phases() {
    let srv = h2_server(Duration::from_millis(20)).await;
    let client = Client::new(ClientConfig {
        cacert: Some(srv.ca_pem.clone()),
        streams_per_connection: 3,
        ..ClientConfig::default()
    })
    .unwrap();
    // Created on one thread: the first three share a group, the fourth starts the next.
    let (a, b, c, d) = (
        client.session(),
        client.session(),
        client.session(),
        client.session(),
    );
    let url = || Request::get(srv.url("/").parse().unwrap());
    let (xa, xb, xc) = bounded(Duration::from_secs(10), async {
        tokio::join!(a.send(url()), b.send(url()), c.send(url()))
    })
    .await;
    let all = [&xa, &xb, &xc];
    for x in all {
        assert!(x.error.is_none(), "{:?}", x.error);
        assert_eq!(x.version, http::Version::HTTP_2);
        let t = x.timing;
        assert_eq!(
            t.dns + t.connect + t.tls + t.send + t.wait + t.receive,
            t.total
        );
    }
    let openers: Vec<_> = all.iter().filter(|x| !x.timing.reused).collect();
    assert_eq!(openers.len(), 1, "exactly one stream opened the connection");
    assert!(openers[0].timing.tls > Duration::ZERO);
    assert!(openers[0].timing.connect > Duration::ZERO);
    for x in all.iter().filter(|x| x.timing.reused) {
        assert_eq!(x.timing.connect, Duration::ZERO);
        assert_eq!(x.timing.tls, Duration::ZERO);
        assert_eq!(x.timing.dns, Duration::ZERO);
    }
    assert_eq!(srv.seen().0, 1);
    assert_eq!(srv.seen().1, vec![3]);
    // A later request of the group is a stream on the same connection.
    let again = bounded(Duration::from_secs(10), b.send(url())).await;
    assert!(again.error.is_none() && again.timing.reused);
    assert_eq!(srv.seen().0, 1);
    // The fourth session is in the next group: its own connection.
    let other = bounded(Duration::from_secs(10), d.send(url())).await;
    assert!(
        other.error.is_none() && !other.timing.reused,
        "{:?}",
        other.error
    );
    assert!(other.timing.tls > Duration::ZERO);
    assert_eq!(srv.seen().0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_target_is_refused_before_anything_is_sent() {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let srv = support::spawn(move |_req| {
        h.fetch_add(1, Ordering::SeqCst);
        async { response(200, full("ok")) }
    })
    .await;
    let url = srv.url("/").to_string();
    let (json, code, err) = tokio::task::spawn_blocking(move || {
        run_json(&[
            "run",
            "--url",
            &url,
            "--vus",
            "4",
            "--streams-per-connection",
            "2",
            "-n",
            "4",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--streams-per-connection 2"), "{err}");
    assert!(err.contains("applies only to HTTP/2"), "{err}");
    assert!(err.contains("https://"), "{err}");
    assert!(json.is_none());
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_only_speaks_http1_fails_every_request_clearly() {
    let srv = support::spawn_tls(false, |_req| async { response(200, full("ok")) }).await;
    let url = srv.url("/").to_string();
    let ca = srv.ca_pem.clone().unwrap().display().to_string();
    let (json, code, err) = tokio::task::spawn_blocking(move || {
        run_json(&[
            "run",
            "--url",
            &url,
            "--cacert",
            &ca,
            "--vus",
            "4",
            "--streams-per-connection",
            "2",
            "--threads",
            "1",
            "-n",
            "8",
        ])
    })
    .await
    .unwrap();
    // Not one response: the run is a runtime failure, never a calmer picture.
    assert_eq!(code, 3, "{err}");
    let json = json.unwrap();
    let http = &json["http"];
    assert_eq!(http["errors"], http["requests"], "{http}");
    assert_eq!(
        http["error_classes"]["protocol"], http["requests"],
        "{http}"
    );
    let messages = http["error_messages"].to_string();
    assert!(messages.contains("negotiated HTTP/1.1"), "{messages}");
    assert!(
        messages.contains("--streams-per-connection 2"),
        "{messages}"
    );
}

/// Sharing a connection and a fresh connection per request contradict: refused before a byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_connection_with_a_new_connection_per_request_is_refused() {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let srv = support::spawn_tls(true, move |_req| {
        h.fetch_add(1, Ordering::SeqCst);
        async { response(200, full("ok")) }
    })
    .await;
    let url = srv.url("/").to_string();
    let ca = srv.ca_pem.clone().unwrap().display().to_string();
    let (json, code, err) = tokio::task::spawn_blocking(move || {
        run_json(&[
            "run",
            "--url",
            &url,
            "--cacert",
            &ca,
            "--vus",
            "4",
            "--streams-per-connection",
            "2",
            "--connection",
            "new",
            "-n",
            "4",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--connection new"), "{err}");
    assert!(err.contains("choose one"), "{err}");
    assert!(json.is_none());
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// breakdown and repro replay one user: a scenario's streams_per_connection cannot apply there,
/// so they refuse it by name instead of running as if it were not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_commands_refuse_the_scenario_key() {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let srv = support::spawn(move |_req| {
        h.fetch_add(1, Ordering::SeqCst);
        async { response(200, full("ok")) }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(
        &file,
        "http: { streams_per_connection: 4 }\nsteps:\n  - name: one\n    request: { url: / }\n",
    )
    .unwrap();
    let target = srv.url("").to_string();
    let file = file.display().to_string();
    for args in [
        vec!["breakdown", &file, "--target", &target, "-n", "1"],
        vec!["repro", &file, "--target", &target, "-n", "1"],
    ] {
        let out = support::sonde().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("streams_per_connection: 4"), "{err}");
        assert!(err.contains(&format!("sonde {}", args[0])), "{err}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// A server that closes each connection gracefully after 5 requests (GOAWAY; nginx does so
/// after `keepalive_requests`): the streams it did not process, and those that found the
/// connection going away, go again on a fresh connection. Not one error the server never
/// produced, whether virtual users share connections or each has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_goaway_moves_requests_to_a_fresh_connection() {
    let srv = h2_server_goaway(Duration::from_millis(3), Some(5)).await;
    let url = srv.url("/");
    let ca = srv.ca_pem.display().to_string();
    six_users_all_answered(&url, &ca).await;
    let (conns, _, per_conn) = srv.seen();
    // 120 requests at no more than 5 (plus those already in flight) per connection.
    assert!(conns >= 12, "{conns} connections: {per_conn:?}");
}

/// An HTTP/2 server on the `h2` crate that refuses every `every`-th stream of each connection
/// with REFUSED_STREAM
/// (RFC 9113 §8.7: not processed, safe to retry) and answers the others 200 "ok".
/// Returns the server, and how many streams it refused and answered.
async fn refusing_h2_server(every: u64) -> (H2Server, Arc<AtomicU64>, Arc<AtomicU64>) {
    let (cert, key, ca_pem, dir) = support::self_signed();
    let acceptor = support::tls_acceptor(cert, key, &[b"h2"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (refused, answered) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (r, a) = (refused.clone(), answered.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let (acceptor, r, a) = (acceptor.clone(), r.clone(), a.clone());
            // Counted per connection: a refused request's retry (on the same connection, at
            // most two other streams later) is never refused again.
            let seen = AtomicU64::new(0);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut conn) = h2::server::handshake(tls).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    if (seen.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(every) {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        r.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let a = a.clone();
                    tokio::spawn(async move {
                        let resp = hyper::Response::builder().status(200).body(()).unwrap();
                        if let Ok(mut body) = respond.send_response(resp, false) {
                            let _ = body.send_data(bytes::Bytes::from_static(b"ok"), true);
                            a.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
        }
    });
    let srv = H2Server {
        port,
        ca_pem,
        conns: Arc::default(),
        task,
        _dir: dir,
    };
    (srv, refused, answered)
}

/// A stream the server refused (REFUSED_STREAM: it did no work for it) is sent again, so the
/// run shows what the server did: every request answered, none counted as failed, on a shared
/// connection and on a VU's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_goes_again() {
    let (srv, refused, answered) = refusing_h2_server(4).await;
    let url = srv.url("/");
    let ca = srv.ca_pem.display().to_string();
    six_users_all_answered(&url, &ca).await;
    assert!(refused.load(Ordering::SeqCst) >= 20, "refused {refused:?}");
    assert_eq!(answered.load(Ordering::SeqCst), 120);
}

/// 60 requests of 6 users, sharing connections 3 to one and then each on its own: every one
/// answered, none counted as failed, exit 0.
async fn six_users_all_answered(url: &str, ca: &str) {
    for streams in ["3", "1"] {
        let (url, ca) = (url.to_string(), ca.to_string());
        let (json, code, err) = tokio::task::spawn_blocking(move || {
            run_json(&[
                "run",
                "--url",
                &url,
                "--cacert",
                &ca,
                "--vus",
                "6",
                "--streams-per-connection",
                streams,
                "--threads",
                "1",
                "-n",
                "60",
            ])
        })
        .await
        .unwrap();
        let http = &json.unwrap()["http"];
        assert_eq!(
            http["errors"], 0,
            "streams {streams}: {}",
            http["error_messages"]
        );
        assert_eq!(http["requests"], 60, "streams {streams}: {http}");
        assert_eq!(code, 0, "streams {streams}: {err}");
    }
}

//! Certificates as people make them, served by a small rustls server on 127.0.0.1: the
//! `openssl req -x509` self-signed certificate (CA:TRUE) trusted with `--cacert`, and every
//! refusal said in words (wrong host name with the names the certificate has, expired,
//! self-signed and untrusted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::bounded;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sonde::http::{Client, ClientConfig, ErrorKind, Exchange, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `openssl req -x509 ... -addext subjectAltName=SAN`: the certificate and key PEM paths.
fn openssl_cert(dir: &Path, name: &str, san: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=localhost", "-addext"])
        .arg(format!("subjectAltName={san}"))
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&cert).unwrap();
    assert!(text.contains("BEGIN CERTIFICATE"));
    (cert, key)
}

/// A TLS server (http/1.1) answering every request with `200 ok`.
async fn serve(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (u16, support::Server) {
    let srv = support::spawn_tls_cert(cert, key, false, |_req| async {
        support::response(200, support::full("ok"))
    })
    .await;
    (srv.port(), srv)
}

async fn serve_files(cert: &Path, key: &Path) -> (u16, support::Server) {
    let cert = CertificateDer::from_pem_file(cert).unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    serve(cert, key).await
}

async fn get(cacert: Option<&Path>, port: u16) -> Exchange {
    let client = Client::new(ClientConfig {
        cacert: cacert.map(Path::to_path_buf),
        ..ClientConfig::default()
    })
    .unwrap();
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    bounded(
        Duration::from_secs(20),
        client.session().send(Request::get(url)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openssl_self_signed_certificate_passed_with_cacert_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_cert(dir.path(), "server", "DNS:localhost,IP:127.0.0.1");
    let (port, _srv) = serve_files(&cert, &key).await;
    let ex = get(Some(&cert), port).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.status.map(|s| s.as_u16()), Some(200));
    assert_eq!(ex.body.as_ref(), b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_name_names_the_names_the_certificate_has() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_cert(
        dir.path(),
        "other",
        "DNS:api.example.test,DNS:www.example.test",
    );
    let (port, _srv) = serve_files(&cert, &key).await;
    let err = get(Some(&cert), port).await.error.expect("wrong host");
    assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
    assert!(
        err.message.contains(
            "wrong host name: the server's certificate is not valid for 127.0.0.1; it is for api.example.test, www.example.test"
        ),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_self_signed_certificate_is_said_to_be_self_signed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_cert(dir.path(), "server", "IP:127.0.0.1");
    let (trusted, _) = openssl_cert(dir.path(), "unrelated", "IP:127.0.0.1");
    let (port, _srv) = serve_files(&cert, &key).await;
    let err = get(Some(&trusted), port).await.error.expect("untrusted");
    assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
    assert!(
        err.message.contains("self-signed and not trusted") && err.message.contains("--cacert"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_even_when_passed_with_cacert() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("expired.pem");
    std::fs::write(&pem, cert.pem()).unwrap();
    let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let (port, _srv) = serve(cert.der().clone(), der).await;
    let err = get(Some(&pem), port).await.error.expect("expired");
    assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
    assert!(
        err.message
            .contains("the server's certificate expired on 2021-01-01 00:00:00 UTC"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_an_https_url_is_said_as_such() {
    // Answers the TLS ClientHello as a plain HTTP server would.
    let srv = support::spawn_raw(|mut tcp| async move {
        let mut buf = [0u8; 1024];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
    })
    .await;
    let port = srv.port();
    let err = get(None, port).await.error.expect("not TLS");
    assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
    assert!(err.message.contains("plain HTTP"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_valid_yet_says_from_when() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2999, 1, 1);
    params.not_after = rcgen::date_time_ymd(3000, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("future.pem");
    std::fs::write(&pem, cert.pem()).unwrap();
    let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let (port, _srv) = serve(cert.der().clone(), der).await;
    let err = get(Some(&pem), port).await.error.expect("not valid yet");
    assert_eq!(err.kind, ErrorKind::Tls, "{}", err.message);
    assert!(
        err.message
            .contains("not valid yet: from 2999-01-01 00:00:00 UTC"),
        "{}",
        err.message
    );
}

//! TLS client configuration, built once per `Client`: rustls with the `ring` provider, system
//! roots (rustls-native-certs) plus `--cacert` PEM files, ALPN (`h2` when enabled, then
//! `http/1.1`), in-memory session resumption. `insecure` swaps in a verifier that accepts any
//! certificate. Verification is webpki's, with one addition: a `--cacert` certificate that is
//! itself the server's certificate is accepted even when it is marked CA:TRUE (what
//! `openssl req -x509` makes, and what curl accepts). Also the words for every verification
//! failure (`describe`). It opens no connections.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

use super::error::HttpError;

/// Read `--cacert` now (so a bad file fails before anything is sent); parsed certificates are
/// kept for the lazily built config.
pub(crate) fn load_cacert(path: &Path) -> Result<Vec<CertificateDer<'static>>, HttpError> {
    let err = |reason: String| HttpError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for cert in iter {
        certs.push(cert.map_err(|e| err(e.to_string()))?);
    }
    if certs.is_empty() {
        return Err(err("no PEM certificate found".into()));
    }
    // Reject certificates webpki cannot use as trust anchors now, not at the first request.
    let mut probe = RootCertStore::empty();
    for cert in &certs {
        probe.add(cert.clone()).map_err(|e| err(e.to_string()))?;
    }
    Ok(certs)
}

/// Build the rustls client config: `extra_roots` are trusted in addition to the system roots
/// (read here, which takes milliseconds, so callers build it on first TLS use); with
/// `insecure`, nothing is verified and no roots are loaded.
pub(crate) fn client_config(
    insecure: bool,
    extra_roots: &[CertificateDer<'static>],
    http2: bool,
    resumption: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(browser_order(rustls::crypto::ring::default_provider()));
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(extra_roots.iter().cloned());
        // Missing or partly unreadable system stores are not fatal: `--cacert` may be all
        // the user needs, and an untrusted server then fails with a clear TLS error.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if roots.is_empty() {
            // Nothing can verify: every handshake fails with "unknown issuer", in words.
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    webpki,
                    pinned: extra_roots.to_vec(),
                }))
                .with_no_client_auth()
        }
    };
    if !resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// The ring provider with AES-128-GCM offered before AES-256-GCM in each TLS version, as
/// browsers (Chrome, Firefox, Safari) offer them; rustls' default puts AES-256-GCM-SHA384
/// first. Servers mostly follow the client's order (nginx's `ssl_prefer_server_ciphers` is off
/// by default), so sonde's handshakes then negotiate what a browser's would, and SHA-256 (which
/// has CPU instructions here) replaces SHA-384 in the key schedule: on a connection per
/// request that is a good part of the client's handshake work.
fn browser_order(mut p: rustls::crypto::CryptoProvider) -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite as S;
    let aes256 = |s: &rustls::SupportedCipherSuite| {
        matches!(
            s.suite(),
            S::TLS13_AES_256_GCM_SHA384
                | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        )
    };
    // Stable: TLS 1.3 suites stay before TLS 1.2 ones, and each version's AES-256-GCM moves
    // behind the rest: TLS 1.3 offers AES-128-GCM, ChaCha20-Poly1305, AES-256-GCM (Firefox's
    // order; Chrome's puts ChaCha20 last).
    p.cipher_suites.sort_by_key(|s| {
        let tls12 = matches!(s, rustls::SupportedCipherSuite::Tls12(_));
        (tls12, aes256(s))
    });
    p
}

/// The TLS server name for a URL host (DNS name or IP literal, brackets stripped).
pub(crate) fn server_name(host: &url::Host<&str>) -> Option<ServerName<'static>> {
    match host {
        url::Host::Domain(d) => ServerName::try_from(d.to_string()).ok(),
        url::Host::Ipv4(ip) => Some(ServerName::IpAddress(std::net::IpAddr::V4(*ip).into())),
        url::Host::Ipv6(ip) => Some(ServerName::IpAddress(std::net::IpAddr::V6(*ip).into())),
    }
}

/// webpki's verification, plus two cases it cannot tell apart on its own: a `--cacert`
/// certificate presented as the server's own (accepted, see `verify_server_cert`), and a
/// self-signed certificate nobody trusts (refused, said as such).
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The `--cacert` certificates, byte for byte.
    pinned: Vec<CertificateDer<'static>>,
}

/// A verification failure webpki has no words for.
#[derive(Debug)]
enum Refusal {
    SelfSigned,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::SelfSigned => f.write_str(
                "the server's certificate is self-signed and not trusted; pass that certificate with --cacert to trust it (or --insecure to skip verification)",
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// webpki's "a CA certificate was used as an end-entity certificate" (CA:TRUE on the
/// server's own certificate), which rustls passes on only as an opaque error.
fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(CertificateError::Other(o))
        if format!("{:?}", o.0) == "CaUsedAsEndEntity")
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            // webpki checks the validity period before the basic constraints, so this error
            // means the certificate is within its validity period; it is trusted when it is
            // exactly a `--cacert` certificate, and its names must still match.
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .pinned
                        .iter()
                        .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            // webpki checks CA:TRUE before it looks for an issuer, so an untrusted self-signed
            // certificate arrives as either error.
            Err(e)
                if (is_ca_used_as_end_entity(&e)
                    || matches!(
                        e,
                        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
                    ))
                    && intermediates.is_empty()
                    && der::is_self_signed(end_entity) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(Refusal::SelfSigned)),
                )))
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The host name as the user wrote it (`localhost`, `127.0.0.1`).
fn name_text(n: &ServerName<'_>) -> String {
    match n {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// webpki's `DnsName("a.test")` / `IpAddress(127.0.0.1)` as `a.test` / `127.0.0.1`.
fn presented_text(p: &str) -> String {
    let inner = p
        .strip_prefix("DnsName(")
        .or_else(|| p.strip_prefix("IpAddress("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(p);
    inner.trim_matches('"').to_string()
}

/// A Unix time as `2024-05-01 12:00:00 UTC`.
fn fmt_time(t: UnixTime) -> String {
    // X.509 times end at 9999-12-31 (a four-digit year); humantime formats up to there.
    let secs = t.as_secs().min(253_402_300_799);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    // RFC 3339 (`2024-05-01T12:00:00Z`), read as a date and time in UTC.
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// A TLS failure in words: what is wrong with the certificate or the handshake, and, where
/// there is one, what to do about it.
pub(crate) fn describe(e: &rustls::Error) -> String {
    use CertificateError as C;
    let cert = |what: String| format!("certificate refused: {what}");
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::ExpiredContext { time, not_after } => cert(format!(
                "the server's certificate expired on {} (it is now {})",
                fmt_time(*not_after),
                fmt_time(*time)
            )),
            C::Expired => cert("the server's certificate has expired".into()),
            C::NotValidYetContext { time, not_before } => cert(format!(
                "the server's certificate is not valid yet: from {} (it is now {}; check this machine's clock)",
                fmt_time(*not_before),
                fmt_time(*time)
            )),
            C::NotValidYet => cert("the server's certificate is not valid yet".into()),
            C::NotValidForNameContext { expected, presented } => {
                let names: Vec<String> = presented.iter().map(|p| presented_text(p)).collect();
                let has = if names.is_empty() {
                    "it names no host (no subjectAltName)".to_string()
                } else {
                    format!("it is for {}", names.join(", "))
                };
                cert(format!(
                    "wrong host name: the server's certificate is not valid for {}; {has}",
                    name_text(expected)
                ))
            }
            C::NotValidForName => cert(
                "wrong host name: the server's certificate is not valid for this host".into(),
            ),
            C::UnknownIssuer => cert(
                "unknown issuer: the server's certificate is not signed by a trusted authority (system roots or --cacert); pass the issuing CA with --cacert"
                    .into(),
            ),
            C::Revoked => cert("the server's certificate has been revoked".into()),
            C::BadSignature => cert("the certificate's signature does not verify".into()),
            C::BadEncoding => cert("the server's certificate is malformed".into()),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => cert(
                "the server's certificate is not for server authentication (extended key usage)"
                    .into(),
            ),
            C::UnhandledCriticalExtension => {
                cert("the server's certificate has an unsupported critical extension".into())
            }
            C::Other(o) if format!("{:?}", o.0) == "CaUsedAsEndEntity" => cert(
                "the server presents a CA certificate (CA:TRUE) as its own; pass exactly that certificate with --cacert to trust it"
                    .into(),
            ),
            C::Other(o) => match o.0.downcast_ref::<Refusal>() {
                Some(r) => cert(r.to_string()),
                None => cert(format!("{:?}", o.0)),
            },
            other => cert(format!("{other:?}")),
        },
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".into(),
        rustls::Error::AlertReceived(a) => {
            format!("the server ended the handshake with a `{a:?}` alert")
        }
        rustls::Error::PeerIncompatible(p) => format!(
            "no TLS version or cipher suite in common with the server ({p:?})"
        ),
        rustls::Error::NoApplicationProtocol => {
            "the server accepts none of the offered protocols (ALPN h2, http/1.1)".into()
        }
        rustls::Error::InvalidMessage(m) => {
            format!("the server sent something that is not TLS ({m:?}); is this port plain HTTP?")
        }
        other => other.to_string(),
    }
}

/// Just enough DER to compare a certificate's issuer and subject.
mod der {
    /// One TLV: (tag, content, the rest after it).
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = b.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    /// The issuer and subject names equal (a self-issued, normally self-signed, certificate).
    pub(super) fn is_self_signed(cert: &[u8]) -> bool {
        (|| {
            let (_, certificate, _) = tlv(cert)?;
            let (_, tbs, _) = tlv(certificate)?;
            let mut rest = tbs;
            if rest.first() == Some(&0xA0) {
                rest = tlv(rest)?.2; // [0] version
            }
            let (_, _, rest) = tlv(rest)?; // serial number
            let (_, _, rest) = tlv(rest)?; // signature algorithm
            let (_, issuer, rest) = tlv(rest)?;
            let (_, _, rest) = tlv(rest)?; // validity
            let (_, subject, _) = tlv(rest)?;
            Some(issuer == subject)
        })()
        .unwrap_or(false)
    }
}

/// `--insecure`: accepts any certificate and any name, still checks handshake signatures are
/// well-formed for the offered schemes.
#[derive(Debug)]
struct AcceptAnything {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_gcm_is_offered_first_in_each_version() {
        let p = browser_order(rustls::crypto::ring::default_provider());
        let names: Vec<String> = p
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(names[0], "TLS13_AES_128_GCM_SHA256", "{names:?}");
        let first12 = p
            .cipher_suites
            .iter()
            .position(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)))
            .unwrap_or(names.len());
        assert!(
            names[..first12].iter().all(|n| n.starts_with("TLS13_")),
            "{names:?}"
        );
        assert_eq!(
            names[first12], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "{names:?}"
        );
        assert_eq!(
            names.len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
    }

    #[test]
    fn times_are_civil_dates() {
        assert_eq!(
            fmt_time(UnixTime::since_unix_epoch(std::time::Duration::ZERO)),
            "1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            fmt_time(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_709_210_096
            ))),
            "2024-02-29 12:34:56 UTC"
        );
    }

    #[test]
    fn failures_are_said_in_words() {
        let e = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("api.test")
                .map(|n| n.to_owned())
                .unwrap_or(ServerName::IpAddress(
                    std::net::IpAddr::from([127, 0, 0, 1]).into(),
                )),
            presented: vec![
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        });
        assert_eq!(
            describe(&e),
            "certificate refused: wrong host name: the server's certificate is not valid for api.test; it is for localhost, 127.0.0.1"
        );
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(describe(&e).contains("unknown issuer"));
    }
}

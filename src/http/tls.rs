//! TLS client configuration, built once per `Client`: rustls with the `ring` provider, system
//! roots (rustls-native-certs) plus `--cacert` PEM files, ALPN (`h2` when enabled, then
//! `http/1.1`), in-memory session resumption. `insecure` swaps in a verifier that accepts any
//! certificate. It opens no connections.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

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
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
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
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// The TLS server name for a URL host (DNS name or IP literal, brackets stripped).
pub(crate) fn server_name(host: &url::Host<&str>) -> Option<ServerName<'static>> {
    match host {
        url::Host::Domain(d) => ServerName::try_from(d.to_string()).ok(),
        url::Host::Ipv4(ip) => Some(ServerName::IpAddress(std::net::IpAddr::V4(*ip).into())),
        url::Host::Ipv6(ip) => Some(ServerName::IpAddress(std::net::IpAddr::V6(*ip).into())),
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

//! The one HTTP transport. Every request yields its phases (dns, connect, tls, send, wait,
//! receive, total), connection reuse, bytes, status, and parsed `Server-Timing`. Built on hyper
//! 1.x `client::conn` + tokio-rustls because reqwest cannot split TCP from TLS or report reuse.
//! Knows nothing of scenarios, plans or reports.

//! Opening one connection, phase by phase: DNS (skipped for IP literals), TCP (`TCP_NODELAY`),
//! TLS with ALPN, then the HTTP/2 handshake (`h2`) when ALPN chose h2 (HTTP/1.1 needs none).
//! Records each phase's end in the attempt's marks. Does not pool, send requests or follow
//! redirects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::error::{
    Authority, ErrorKind, TransportError, chain, classify_connect_io, classify_tls_io,
};
use super::h1::H1Conn;
use super::io::{IoStats, Stream, TimedIo};
use super::tls::server_name;

/// Where a connection goes: pool key and what the request needs to address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub https: bool,
    /// `Url::host_str` (IPv6 in brackets).
    pub host: Box<str>,
    pub port: u16,
}

impl Key {
    pub(crate) fn matches(&self, https: bool, host: &str, port: u16) -> bool {
        self.https == https && self.port == port && &*self.host == host
    }
}

/// The HTTP side of an open connection.
pub(crate) enum Proto {
    /// HTTP/1.1: sonde's own (`h1`), driven by the task that sends on it (no spawned task, no
    /// cross-task wake-ups).
    H1(H1Conn),
    /// HTTP/2: the connection runs in its own task; senders are cloned per request. `stats`
    /// counts the shared connection's bytes and its last flush (the end of `send`).
    H2 {
        sender: super::h2::Sender,
        stats: Arc<IoStats>,
        closed: super::h2::Closed,
    },
}

/// An open connection and what the requests on it need.
pub(crate) struct Conn {
    pub key: Key,
    pub proto: Proto,
    pub tls_resumed: bool,
}

/// Phase ends recorded while connecting; kept outside the future so a timeout keeps them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectMarks {
    pub dns_end: Option<Instant>,
    pub tcp_end: Option<Instant>,
    pub tls_end: Option<Instant>,
}

/// What `open` needs from the client.
pub(crate) struct Connector<'a> {
    /// Present for `https://` URLs.
    pub tls: Option<&'a tokio_rustls::TlsConnector>,
    pub connect_timeout: std::time::Duration,
    /// Hosts besides loopback that may be contacted.
    pub allow: &'a super::HostPolicy,
}

/// The longest a name may take to resolve (within the connect timeout).
const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Open a connection for `url` (scheme already checked to be http/https).
pub(crate) async fn open(
    c: &Connector<'_>,
    url: &url::Url,
    key: Key,
    start: Instant,
    marks: &mut ConnectMarks,
) -> Result<Conn, TransportError> {
    let (stream, h2, tls_resumed) = open_stream(c, url, &key, start, marks).await?;
    let authority = Authority {
        host: &key.host,
        port: key.port,
    };
    let proto = if h2 {
        let stats = IoStats::new(start);
        let io = TimedIo::new(stream, stats.clone());
        let (sender, closed) = super::h2::handshake(io).await.map_err(|e| {
            TransportError::new(
                ErrorKind::Protocol,
                format!("{authority}: HTTP/2 handshake failed: {}", chain(&e)),
            )
        })?;
        Proto::H2 {
            sender,
            stats,
            closed,
        }
    } else {
        Proto::H1(H1Conn::new(stream))
    };
    Ok(Conn {
        key,
        proto,
        tls_resumed,
    })
}

/// The transport under a connection for `url`: the allow-list, DNS, TCP and TLS (with the
/// connector's ALPN), each phase's end in `marks`. Also what sonde's own event-stream and
/// WebSocket subscriptions connect with. Returns the stream, whether ALPN chose h2, and
/// whether the TLS session was resumed.
// Long by design: resolve, connect and handshake in order, with the phase marks taken at each
// edge in one place so the timing edges (and their timeouts) stay visible together.
pub(crate) async fn open_stream(
    c: &Connector<'_>,
    url: &url::Url,
    key: &Key,
    start: Instant,
    marks: &mut ConnectMarks,
) -> Result<(Stream, bool, bool), TransportError> {
    let deadline = tokio::time::Instant::from_std(start + c.connect_timeout);
    let authority = Authority {
        host: &key.host,
        port: key.port,
    };
    let timed_out = |phase: &str| {
        TransportError::new(
            ErrorKind::ConnectTimeout,
            format!(
                "{authority}: {phase} did not finish within the connect timeout ({:?})",
                c.connect_timeout
            ),
        )
    };
    let host = url
        .host()
        .ok_or_else(|| TransportError::new(ErrorKind::InvalidRequest, "URL has no host"))?;
    // The allow-list, before anything leaves this machine (no DNS query either).
    c.allow
        .check_host(&host)
        .map_err(|r| TransportError::new(ErrorKind::NotAllowed, r.to_string()))?;

    // DNS: nothing to resolve for an IP literal (dns stays 0).
    let mut addrs: Vec<SocketAddr> = Vec::new();
    match &host {
        url::Host::Ipv4(ip) => addrs.push(SocketAddr::new((*ip).into(), key.port)),
        url::Host::Ipv6(ip) => addrs.push(SocketAddr::new((*ip).into(), key.port)),
        url::Host::Domain(name) => {
            // Resolution has its own deadline inside the connect timeout, and its own class: a
            // resolver that never answers is a `dns` failure, not a slow server.
            let dns_deadline = deadline.min(tokio::time::Instant::from_std(start + DNS_TIMEOUT));
            let found = timeout_at(dns_deadline, tokio::net::lookup_host((*name, key.port)))
                .await
                .map_err(|_| {
                    TransportError::new(
                        ErrorKind::Dns,
                        format!(
                            "resolving {name} did not finish within {:?}",
                            dns_deadline.duration_since(tokio::time::Instant::from_std(start))
                        ),
                    )
                })?
                .map_err(|e| {
                    TransportError::new(ErrorKind::Dns, format!("cannot resolve {name}: {e}"))
                })?;
            addrs.extend(found);
            marks.dns_end = Some(Instant::now());
            if addrs.is_empty() {
                return Err(TransportError::new(
                    ErrorKind::Dns,
                    format!("{name} resolved to no address"),
                ));
            }
            // A DNS answer must not point an allowed name at a private or metadata address.
            for a in &addrs {
                c.allow
                    .check_resolved(name, a.ip())
                    .map_err(|r| TransportError::new(ErrorKind::NotAllowed, r.to_string()))?;
            }
        }
    }

    // TCP: try each address in order; the first that accepts wins.
    let mut last_err = None;
    let mut tcp = None;
    for addr in &addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timed_out("TCP connect")),
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last_err = Some(e),
        }
    }
    let tcp = match (tcp, last_err) {
        (Some(s), _) => s,
        (None, Some(e)) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            // EADDRNOTAVAIL: no local port left for this address (thousands of new
            // connections per second, each leaving a TIME_WAIT socket behind).
            let mut err = classify_connect_io(&e, authority);
            err.message = format!(
                "{}; this machine ran out of local ports (ephemeral range in /proc/sys/net/ipv4/ip_local_port_range, sockets in TIME_WAIT): use --connection reuse, fewer new connections per second, or a wider port range",
                err.message
            );
            return Err(err);
        }
        (None, Some(e)) => return Err(classify_connect_io(&e, authority)),
        (None, None) => {
            return Err(TransportError::new(
                ErrorKind::Connect,
                format!("{authority}: no address to connect to"),
            ));
        }
    };
    // Small requests must not wait for Nagle; failure to set it only costs latency.
    let _ = tcp.set_nodelay(true);
    marks.tcp_end = Some(Instant::now());

    // TLS with ALPN.
    let (stream, h2, tls_resumed) = if key.https {
        let name = server_name(&host).ok_or_else(|| {
            TransportError::new(
                ErrorKind::Tls,
                format!("{authority}: invalid TLS server name"),
            )
        })?;
        let connector = c.tls.ok_or_else(|| {
            TransportError::new(
                ErrorKind::Tls,
                format!("{authority}: TLS is not configured"),
            )
        })?;
        let tls = timeout_at(deadline, connector.connect(name, tcp))
            .await
            .map_err(|_| timed_out("TLS handshake"))?
            .map_err(|e| classify_tls_io(&e, authority))?;
        let session = tls.get_ref().1;
        let h2 = session.alpn_protocol() == Some(b"h2");
        let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        marks.tls_end = Some(Instant::now());
        (Stream::Tls(Box::new(tls)), h2, resumed)
    } else {
        (Stream::Plain(tcp), false, false)
    };
    Ok((stream, h2, tls_resumed))
}

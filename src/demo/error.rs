//! `DemoError`: what can stop the demo server from starting or shutting down cleanly.
//! Request-level failures are `api::problem::ApiError`, never this type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the demo could not start, serve, or shut down.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Says why in the message itself (address in use, permission, not an address of this
    /// machine), with the OS error: the user's next step depends on it.
    #[error("cannot listen on {addr}: {}", bind_reason(.cause))]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("cannot create a temporary directory for the demo database")]
    TempDir(#[source] std::io::Error),
    #[error("cannot write the cached seed image to {path}")]
    Image {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the demo database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration {version} ({name}) failed")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database is at schema version {found}, newer than this sonde understands ({supported}); use a fresh --db"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("seeding the demo database failed")]
    Seed(#[source] sqlx::Error),
    #[error("demo database error")]
    Db(#[from] sqlx::Error),
    #[error("the demo server failed")]
    Serve(#[source] std::io::Error),
    #[error("the demo server task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
    #[error("cannot wait for Ctrl-C")]
    Signal(#[source] std::io::Error),
}

/// `address already in use (os error 98): another process listens there; ...`.
fn bind_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let hint = match e.kind() {
        K::AddrInUse => {
            "another process listens there: stop it, or pick a free port with --listen (port 0 \
             picks one)"
        }
        K::PermissionDenied => {
            "ports below 1024 need privileges: use a port of 1024 or above (e.g. --listen \
             127.0.0.1:8080)"
        }
        K::AddrNotAvailable => "that address is not one of this machine's",
        _ => "",
    };
    if hint.is_empty() {
        e.to_string()
    } else {
        format!("{e}; {hint}")
    }
}

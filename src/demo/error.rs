//! `DemoError`: what can stop the demo server from starting or shutting down cleanly.
//! Request-level failures are `api::problem::ApiError`, never this type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the demo could not start, serve, or shut down.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
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

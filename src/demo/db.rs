//! The demo's SQLite database: connection pools, embedded migrations, the write-transaction
//! rule. Knows the schema but no HTTP and no business rules.
//!
//! Two pools, so that no deferred transaction can ever upgrade to a write: `read` connections
//! are opened read-only, and every write goes through the one-connection `write` pool inside
//! `BEGIN IMMEDIATE` (see `Db::begin_write`). WAL lets reads proceed while a write is open.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::DemoError;

/// Embedded migrations, applied in order; `PRAGMA user_version` records the last applied one.
///
/// Why not sqlx's `migrate!`: it needs the `macros` feature (a large compile on 2 cores) and a
/// `_sqlx_migrations` table; a version number in the file header is all a single-binary demo
/// needs, and it makes "database newer than this binary" a one-line check.
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "schema", include_str!("migrations/0001_schema.sql"))];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(crate) struct Db {
    pub read: SqlitePool,
    pub write: SqlitePool,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path, readers: u32) -> Result<Db, DemoError> {
        let path = path.to_path_buf();
        let open_err = |source| DemoError::Open {
            path: path.clone(),
            source,
        };
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    // Up to 64 MiB of page cache: seeding builds indexes without spilling.
                    .pragma("cache_size", "-65536"),
            )
            .await
            .map_err(open_err)?;
        migrate(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.read_only(true))
            .await
            .map_err(open_err)?;
        Ok(Db { read, write })
    }

    /// Starts a write transaction with `BEGIN IMMEDIATE`: the write lock is taken up front, so
    /// the transaction can never fail half-way with SQLITE_BUSY on a lock upgrade.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), DemoError> {
    let supported = MIGRATIONS.last().map_or(0, |m| m.0);
    let current: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await
        .map_err(DemoError::Db)?;
    if current > supported {
        return Err(DemoError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for &(version, name, sql) in MIGRATIONS {
        if version <= current {
            continue;
        }
        if let Err(source) = apply(pool, version, sql).await {
            return Err(DemoError::Migration {
                version,
                name,
                source,
            });
        }
    }
    Ok(())
}

/// Runs one migration file and records its version, atomically.
async fn apply(pool: &SqlitePool, version: i64, sql: &'static str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // A migration file holds several statements; SQLite's executor runs them in order.
    // (Not `sqlx::raw_sql`: rustc cannot prove its future `Send` for every lifetime, which
    // made `serve` impossible to `tokio::spawn`; `tests/integration/demo/lifecycle.rs` spawns it.)
    sqlx::Executor::execute(&mut *tx, sql).await?;
    // PRAGMA takes no bound parameters; `version` is a compile-time constant.
    let pragma = format!("PRAGMA user_version = {version}");
    sqlx::query(&pragma).execute(&mut *tx).await?;
    tx.commit().await
}

/// Milliseconds since the Unix epoch (worker leases, lock ages).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// True when SQLite reported the database busy or locked (retryable, answered 503).
pub(crate) fn is_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517"))
        }
        _ => false,
    }
}

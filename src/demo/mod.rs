//! The reference investment API (`sonde demo`): configuration, start-up (database, seed,
//! worker), serving on a given listener, and in-process start/stop for `sonde run` and tests.
//! Imports nothing else from the crate.

mod api;
mod app;
pub mod cli;
mod db;
mod error;
mod fault;
pub mod hub;
pub mod log;
mod model;
mod payment;
mod seed;
mod timing;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};

pub use error::DemoError;
pub use fault::{FAULT_NAMES, Fault, FaultParseError};

use db::Db;
use fault::FaultSet;
use hub::Hub;
use model::Investment;

/// How the demo runs. `Default` is what `sonde run` wants: a temporary database, seed 42,
/// no faults, an ephemeral port on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Seed for the deterministic data (and the identities' tokens).
    pub seed: u64,
    /// Database file; `None` means a temporary file removed at shutdown.
    pub db_path: Option<PathBuf>,
    pub faults: Vec<Fault>,
    /// Where `start` binds (`serve` takes an already-bound listener instead).
    pub listen: SocketAddr,
    /// Worker loops processing payment tasks concurrently.
    pub worker_concurrency: usize,
    /// How long a task claim lasts before another worker may take the task over.
    pub task_lease: Duration,
    /// How long a payment call that times out keeps the worker waiting.
    pub payment_timeout: Duration,
    /// Pause before a crashed worker loop is restarted.
    pub worker_restart_delay: Duration,
    /// Events a live-status subscriber may fall behind before it is dropped.
    pub hub_capacity: usize,
    /// At shutdown, how long the worker may finish the task in hand.
    pub shutdown_grace: Duration,
    /// Read-only database connections.
    pub readers: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            db_path: None,
            faults: Vec::new(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            worker_concurrency: 4,
            task_lease: Duration::from_secs(30),
            payment_timeout: Duration::from_secs(1),
            worker_restart_delay: Duration::from_millis(200),
            hub_capacity: 64,
            shutdown_grace: Duration::from_secs(2),
            readers: 4,
        }
    }
}

/// A seeded user to try the API as (`GET /demo/identities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub name: String,
    pub user_id: i64,
    pub token: String,
}

/// Counters of what the worker and the payment simulator did (tests check faults fired).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub charges_captured: AtomicU64,
    pub charges_declined: AtomicU64,
    pub charge_replays: AtomicU64,
    pub payment_timeouts: AtomicU64,
    pub reconciliations: AtomicU64,
    pub worker_crashes: AtomicU64,
}

/// A snapshot of `Stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DemoStats {
    pub charges_captured: u64,
    pub charges_declined: u64,
    pub charge_replays: u64,
    pub payment_timeouts: u64,
    pub reconciliations: u64,
    pub worker_crashes: u64,
}

impl Stats {
    fn snapshot(&self) -> DemoStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DemoStats {
            charges_captured: get(&self.charges_captured),
            charges_declined: get(&self.charges_declined),
            charge_replays: get(&self.charge_replays),
            payment_timeouts: get(&self.payment_timeouts),
            reconciliations: get(&self.reconciliations),
            worker_crashes: get(&self.worker_crashes),
        }
    }
}

/// Everything a request handler may touch.
#[derive(Debug)]
pub(crate) struct AppState {
    pub db: Db,
    /// SHA-256 of a token → user id (sessions never change while serving).
    pub sessions: HashMap<[u8; 32], i64>,
    pub identities: Vec<Identity>,
    pub faults: FaultSet,
    pub hub: Hub<Investment>,
    /// Wakes idle worker loops when a task is queued.
    pub wake: Arc<Notify>,
    /// Turns true at shutdown; long-lived responses (event streams) end on it.
    pub stopping: watch::Receiver<bool>,
}

/// A database opened, migrated and seeded, ready to serve.
struct Prepared {
    state: Arc<AppState>,
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    config: DemoConfig,
    db_path: PathBuf,
    seed_time: Duration,
    // Dropped (directory removed) only after the pools are closed.
    temp_dir: Option<tempfile::TempDir>,
}

async fn prepare(config: DemoConfig) -> Result<Prepared, DemoError> {
    let (temp_dir, db_path) = if let Some(path) = &config.db_path {
        (None, path.clone())
    } else {
        let dir = tempfile::Builder::new()
            .prefix("sonde-demo-")
            .tempdir()
            .map_err(DemoError::TempDir)?;
        let path = dir.path().join("demo.sqlite");
        (Some(dir), path)
    };
    let started = Instant::now();
    if temp_dir.is_some() {
        seed::write_image(config.seed, config.readers, &db_path).await?;
    }
    let db = Db::open(&db_path, config.readers).await?;
    let seed = seed::ensure_seeded(&db, config.seed)
        .await
        .map_err(DemoError::Seed)?;
    let seed_time = started.elapsed();
    let sessions = seed::sessions(&db).await?.into_iter().collect();
    let (stop, stopping) = watch::channel(false);
    let state = Arc::new(AppState {
        db,
        sessions,
        identities: seed::identities(seed),
        faults: FaultSet::from_faults(&config.faults),
        hub: Hub::new(config.hub_capacity),
        wake: Arc::new(Notify::new()),
        stopping,
    });
    Ok(Prepared {
        state,
        stats: Arc::new(Stats::default()),
        stop,
        config,
        db_path,
        seed_time,
        temp_dir,
    })
}

async fn serve_prepared(
    listener: TcpListener,
    prepared: Prepared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    use axum::serve::ListenerExt;

    let Prepared {
        state,
        stats,
        stop,
        config,
        temp_dir,
        ..
    } = prepared;
    let faults = &state.faults;
    let worker = Arc::new(worker::Worker {
        db: state.db.clone(),
        payments: payment::PaymentSimulator {
            db: state.db.clone(),
            seed: config.seed,
            latency: faults.payment_latency,
            decline_pct: faults.payment_declines,
            timeout_pct: faults.payment_timeouts,
            timeout_after: config.payment_timeout,
            stats: Arc::clone(&stats),
        },
        hub: state.hub.clone(),
        wake: Arc::clone(&state.wake),
        stats,
        lease: config.task_lease,
        crash_after_charge: faults.worker_crash_after_charge,
    });
    let supervisor = tokio::spawn(worker::supervise(
        worker,
        config.worker_concurrency,
        config.worker_restart_delay,
        config.shutdown_grace,
        stop.subscribe(),
    ));

    let app = api::router(Arc::clone(&state));
    // Small JSON responses: without TCP_NODELAY, Nagle + delayed ACKs add ~40 ms stalls.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stop_on_signal = stop.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Ends event streams (so graceful shutdown can finish) and stops the worker.
            let _ = stop_on_signal.send(true);
        })
        .await;
    let _ = stop.send(true);
    let worker_done = supervisor.await;
    state.db.close().await;
    drop(temp_dir);
    served.map_err(DemoError::Serve)?;
    worker_done.map_err(DemoError::Task)
}

/// Serves on an already-bound listener until `shutdown` resolves; opens, migrates and seeds
/// the database first. Shutdown is graceful: open requests finish, event streams end, the
/// worker stops, the pools close and a temporary database is removed.
pub async fn serve(
    listener: TcpListener,
    config: DemoConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let prepared = prepare(config).await?;
    serve_prepared(listener, prepared, shutdown).await
}

/// Binds `config.listen` (127.0.0.1:0 by default), seeds, and serves in a background task.
pub async fn start(config: DemoConfig) -> Result<RunningDemo, DemoError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|cause| DemoError::Bind { addr, cause })?;
    let addr = listener
        .local_addr()
        .map_err(|cause| DemoError::Bind { addr, cause })?;
    let prepared = prepare(config).await?;
    let identities = prepared.state.identities.clone();
    let seed_time = prepared.seed_time;
    let db_path = prepared.db_path.clone();
    let stats = Arc::clone(&prepared.stats);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_prepared(listener, prepared, async move {
        // Fires on `shutdown()` and also when the RunningDemo is dropped.
        let _ = shutdown_rx.await;
    }));
    Ok(RunningDemo {
        addr,
        identities,
        seed_time,
        db_path,
        stats,
        shutdown_tx: Some(shutdown_tx),
        task,
    })
}

/// A demo server running in this process (see `start`). Dropping it also shuts it down, but
/// without waiting; call `shutdown` to wait and see errors.
#[derive(Debug)]
pub struct RunningDemo {
    pub addr: SocketAddr,
    pub identities: Vec<Identity>,
    /// Time to open, migrate and seed the database (a seed already built by this process is
    /// copied from memory instead of generated again).
    pub seed_time: Duration,
    db_path: PathBuf,
    stats: Arc<Stats>,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), DemoError>>,
}

impl RunningDemo {
    /// `http://127.0.0.1:PORT`
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The identity called `name` (`whale`, `typical`, `other`, `newbie`).
    #[must_use]
    pub fn identity(&self, name: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.name == name)
    }

    /// The database file (temporary unless `DemoConfig::db_path` was set).
    #[must_use]
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// What the worker and the payment simulator have done so far.
    #[must_use]
    pub fn stats(&self) -> DemoStats {
        self.stats.snapshot()
    }

    /// Graceful stop: open requests finish, event streams end, the worker stops, the pools
    /// close and a temporary database is removed.
    pub async fn shutdown(mut self) -> Result<(), DemoError> {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.map_err(DemoError::Task)?
    }
}

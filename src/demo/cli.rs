//! `sonde demo` on the command line: its arguments, the start-up banner (URL, identities, curl
//! examples) and Ctrl-C handling. All demo CLI logic lives here; `main.rs` only forwards.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use super::{DemoConfig, DemoError, FAULT_NAMES, Fault, Identity, prepare, serve_prepared};

/// Arguments of `sonde demo`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Serve the demo investment API (the reference target for scenarios)",
    after_help = format!("Faults: {FAULT_NAMES}")
)]
pub struct DemoArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite database file (kept across runs); default: a temporary file removed on exit.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Seed for the deterministic demo data and tokens.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Inject a fault (repeatable), e.g. --fault slow-profile --fault payment-declines=10.
    #[arg(long = "fault", value_name = "NAME")]
    pub faults: Vec<Fault>,
}

impl DemoArgs {
    #[must_use]
    pub fn config(&self) -> DemoConfig {
        DemoConfig {
            seed: self.seed,
            db_path: self.db.clone(),
            faults: self.faults.clone(),
            listen: self.listen,
            ..DemoConfig::default()
        }
    }
}

/// Serves until Ctrl-C, after printing the URL, the identities and three curl examples.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let config = args.config();
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|cause| DemoError::Bind { addr, cause })?;
    let addr = listener
        .local_addr()
        .map_err(|cause| DemoError::Bind { addr, cause })?;
    let prepared = prepare(config).await?;
    // Ctrl-C or SIGTERM (how containers and CI stop a service): drain and stop cleanly. The
    // SIGTERM handler is installed before the banner is printed, so a supervisor that stops the
    // demo as soon as it reads the banner never kills it mid-way.
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let banner = banner(
        addr,
        &prepared.state.identities,
        &args.faults,
        prepared.seed_time,
    );
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server; the banner is a convenience.
    let _ = out.write_all(banner.as_bytes());
    let _ = out.flush();
    drop(out);

    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        #[cfg(unix)]
        let term = async {
            match &mut term {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                if let Err(err) = r {
                    let _ = failed_tx.send(err);
                }
            }
            () = term => {}
        }
    };
    serve_prepared(listener, prepared, shutdown).await?;
    match failed_rx.await {
        Ok(err) => Err(DemoError::Signal(err)),
        Err(_) => Ok(()),
    }
}

/// The start-up text: where to connect, as whom, and how.
pub(crate) fn banner(
    addr: SocketAddr,
    identities: &[Identity],
    faults: &[Fault],
    seed_time: std::time::Duration,
) -> String {
    let url = format!("http://{addr}");
    let mut s = format!(
        "sonde demo: investment API listening on {url}  (seeded in {} ms)\n",
        seed_time.as_millis()
    );
    s.push_str(&format!(
        "web app: {url}/app/  (sign in by choosing an identity)\n"
    ));
    if !addr.ip().is_loopback() {
        s.push_str(
            "warning: listening beyond loopback; the demo tokens below are public knowledge\n",
        );
    }
    if !faults.is_empty() {
        let names: Vec<String> = faults.iter().map(ToString::to_string).collect();
        s.push_str(&format!("faults: {}\n", names.join(", ")));
    }
    s.push_str("\nidentities (demo only; also at GET /demo/identities):\n");
    for id in identities {
        s.push_str(&format!(
            "  {:<8} user_id={:<5} token={}\n",
            id.name, id.user_id, id.token
        ));
    }
    let who = identities
        .iter()
        .find(|i| i.name == "whale")
        .or(identities.first());
    if let Some(w) = who {
        s.push_str(&format!(
            "\ntry:\n  curl -s {url}/users/{id}/profile -H 'Authorization: Bearer {t}'\n  \
             curl -s '{url}/startups?industry=fintech&stage=seed&per_page=5'\n  \
             curl -s -X POST {url}/investments -H 'Authorization: Bearer {t}' \\\n    \
             -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\\n    \
             -d '{{\"startup_id\": 1, \"amount_cents\": 50000}}'\n",
            id = w.user_id,
            t = w.token
        ));
    }
    s.push_str("\nCtrl-C stops the server.\n");
    s
}

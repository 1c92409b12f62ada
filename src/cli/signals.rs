//! The stop signals every long-running command honours: Ctrl-C (SIGINT) and SIGTERM, which
//! CI runners and Kubernetes send to stop a job. Installing the SIGTERM handler replaces the
//! default "die at once", so results are still written; a second signal quits at once.

/// Waits for Ctrl-C or SIGTERM.
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts listening (call before the work starts: a SIGTERM before this kills at once).
    #[must_use]
    pub fn install() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// The next signal's name (`Ctrl-C` or `SIGTERM`); `None` if neither can be received.
    pub async fn next(&mut self) -> Option<&'static str> {
        #[cfg(unix)]
        {
            let term = async {
                match &mut self.term {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.ok().map(|()| "Ctrl-C"),
                r = term => r.map(|()| "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
        }
    }
}

/// The exit code of a second signal: 128 + its number, as a shell reports it.
#[must_use]
pub fn exit_code(sig: &str) -> i32 {
    if sig == "SIGTERM" { 143 } else { 130 }
}

//! `-v`/`--verbose`: the exchange as curl `-v` shows it (request line, headers, body excerpt;
//! status, headers, body excerpt), on stderr, for the first N exchanges and then for failures
//! only, up to N more. Every header, URL and body goes through `redact` first: a secret never
//! prints. Costs nothing when off: the hot path checks one `Option`.

use crate::http::{Exchange, Request};
use crate::redact::{excerpt, redact_body, redact_header, redact_url};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default of `--verbose-limit`.
pub const DEFAULT_LIMIT: u64 = 10;

/// Characters of a body shown.
const BODY_EXCERPT: usize = 1000;

/// How many exchanges to show, shared by every virtual user of a run.
#[derive(Debug)]
pub struct Verbose {
    limit: u64,
    seen: AtomicU64,
    failures_shown: AtomicU64,
}

impl Verbose {
    /// The first `limit` exchanges, then up to `limit` failed ones.
    #[must_use]
    pub fn new(limit: u64) -> Verbose {
        Verbose {
            limit,
            seen: AtomicU64::new(0),
            failures_shown: AtomicU64::new(0),
        }
    }

    /// Prints one exchange of step `step` if it is among those to show. `env` names the
    /// environment when a command runs several (repro, bisect). `failure` is the step's
    /// (already redacted) failure message, when this exchange failed it.
    pub fn exchange(
        &self,
        env: Option<&str>,
        step: &str,
        req: &Request,
        ex: &Exchange,
        failure: Option<&str>,
    ) {
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        let show = if n < self.limit {
            true
        } else if failure.is_some() {
            let f = self.failures_shown.fetch_add(1, Ordering::Relaxed);
            if f == self.limit {
                say(&format!(
                    "* -v: {} failed exchanges shown; further ones are not (--verbose-limit)\n",
                    self.limit
                ));
            }
            f < self.limit
        } else {
            if n == self.limit {
                say(&format!(
                    "* -v: the first {} exchanges were shown; from now on failed ones only\n",
                    self.limit
                ));
            }
            false
        };
        if show {
            say(&render(n + 1, env, step, req, ex, failure));
        }
    }
}

/// One write per exchange, so exchanges of concurrent virtual users do not interleave.
fn say(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// The exchange as text, secrets redacted.
pub fn render(
    n: u64,
    env: Option<&str>,
    step: &str,
    req: &Request,
    ex: &Exchange,
    failure: Option<&str>,
) -> String {
    let mut o = String::new();
    match env {
        Some(env) => {
            let _ = writeln!(o, "* #{n} step `{step}` · env {env}");
        }
        None => {
            let _ = writeln!(o, "* #{n} step `{step}`");
        }
    }
    let _ = writeln!(o, "> {} {}", req.method, redact_url(req.url.as_str()));
    for (name, value) in &req.headers {
        let v = String::from_utf8_lossy(value.as_bytes());
        let _ = writeln!(o, "> {}: {}", name, redact_header(name.as_str(), &v));
    }
    body(&mut o, '>', &req.body);
    for hop in &ex.hops {
        let _ = writeln!(
            o,
            "< {} (redirect from {})",
            hop.status,
            redact_url(hop.url.as_str())
        );
    }
    match (&ex.error, ex.status) {
        (Some(e), _) => {
            let _ = writeln!(o, "* no response: {} ({})", e.message, e.kind.as_str());
        }
        (None, Some(status)) => {
            let _ = writeln!(
                o,
                "< {:?} {} ({:.1} ms)",
                ex.version,
                status,
                ex.timing.total.as_secs_f64() * 1000.0
            );
            for (name, value) in &ex.headers {
                let v = String::from_utf8_lossy(value.as_bytes());
                let _ = writeln!(o, "< {}: {}", name, redact_header(name.as_str(), &v));
            }
            body(&mut o, '<', &ex.body);
            if ex.body_len > ex.body.len() as u64 {
                let _ = writeln!(
                    o,
                    "< ({} bytes in all; captures and checks saw the first {})",
                    ex.body_len,
                    ex.body.len()
                );
            }
        }
        (None, None) => {
            let _ = writeln!(o, "* no response");
        }
    }
    if let Some(f) = failure {
        let _ = writeln!(o, "* FAILED: {f}");
    }
    o
}

fn body(o: &mut String, side: char, bytes: &[u8]) {
    let _ = writeln!(o, "{side}");
    if bytes.is_empty() {
        return;
    }
    // Only the start is shown; redaction runs on a bounded prefix.
    let head = &bytes[..bytes.len().min(1 << 20)];
    let text = String::from_utf8_lossy(head);
    let shown = excerpt(&redact_body(&text), BODY_EXCERPT);
    for line in shown.lines() {
        let _ = writeln!(o, "{side} {line}");
    }
}

/// `-v` and `--verbose-limit` as the run's setting.
#[must_use]
pub fn from_flags(on: bool, limit: u64) -> Option<std::sync::Arc<Verbose>> {
    on.then(|| std::sync::Arc::new(Verbose::new(limit)))
}

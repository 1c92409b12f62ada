//! Where the demo server's own log lines go (internal errors, worker restarts). `sonde demo`
//! writes them to stderr, its terminal. An embedded demo shares stderr with the command's
//! progress lines, so the command sends them to a file instead (`to_file`) and names it at the
//! end. Process-wide: one process runs at most one embedded demo at a time. Never panics and
//! never blocks a request for longer than one small append.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// `None`: stderr. A poisoned lock is recovered: a log line must never take a request down.
static FILE: Mutex<Option<PathBuf>> = Mutex::new(None);
static LINES: AtomicU64 = AtomicU64::new(0);

/// Sends every later line to `path` (appended, created on the first line) instead of stderr.
pub fn to_file(path: PathBuf) {
    let mut f = FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *f = Some(path);
}

/// Back to stderr; returns the file lines went to, if any were written there.
pub fn to_stderr() -> Option<(PathBuf, u64)> {
    let mut f = FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let n = LINES.swap(0, Ordering::Relaxed);
    f.take().filter(|_| n > 0).map(|p| (p, n))
}

/// One log line (without a trailing newline), prefixed `sonde demo: `.
pub fn line(msg: std::fmt::Arguments<'_>) {
    let f = FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = f.as_ref() {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| writeln!(file, "sonde demo: {msg}"));
        if written.is_ok() {
            LINES.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    eprintln!("sonde demo: {msg}");
}

/// `demo_log!("worker {id}: {err}")`.
macro_rules! demo_log {
    ($($arg:tt)*) => {
        $crate::demo::log::line(format_args!($($arg)*))
    };
}
pub(crate) use demo_log;

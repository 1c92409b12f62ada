//! A small HTTP server on 127.0.0.1:0 for the shard tests, with a known latency distribution
//! and a request counter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use super::{Background, full, response, spawn};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A server on 127.0.0.1:0 whose delay follows a known distribution: every tenth request
/// takes 100 ms, the others 20 ms (large next to the scheduling noise of a busy machine), and
/// answers `status`. Returns its base URL, its request counter and the server (it stops when
/// that is dropped). On a runtime thread of its own: the shard tests are synchronous.
pub fn server(status: u16) -> (String, Arc<AtomicU64>, Background) {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let bg = Background::start(move || {
        spawn(move |_req| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let ms = if n % 10 == 9 { 100 } else { 20 };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                response(status, full("ok"))
            }
        })
    });
    (bg.url("/").to_string(), hits, bg)
}

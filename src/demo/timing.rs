//! Per-request `Server-Timing` bookkeeping: a task-local accumulator that handlers feed
//! (`db`, `payment`) and the middleware turns into the header. Knows nothing about routes.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timing {
    pub db: Duration,
    pub payment: Option<Duration>,
}

tokio::task_local! {
    // Why a task-local: axum polls the handler inside the middleware's future, so everything a
    // request awaits sees this cell without threading a parameter through every query helper.
    static TIMING: Cell<Timing>;
}

/// Runs `fut` (a request) with a fresh accumulator and returns what it recorded.
pub(crate) async fn scope<F: Future>(fut: F) -> (F::Output, Timing) {
    TIMING
        .scope(Cell::new(Timing::default()), async move {
            let out = fut.await;
            let timing = TIMING.try_with(Cell::get).unwrap_or_default();
            (out, timing)
        })
        .await
}

/// Awaits a database operation and charges its wall time to `db` (no-op outside a request).
pub(crate) async fn db<F: Future>(fut: F) -> F::Output {
    let start = Instant::now();
    let out = fut.await;
    let spent = start.elapsed();
    let _ = TIMING.try_with(|t| {
        let mut v = t.get();
        v.db += spent;
        t.set(v);
    });
    out
}

/// Records a payment duration for this response (e.g. the worker's charge of an investment).
pub(crate) fn payment(d: Duration) {
    let _ = TIMING.try_with(|t| {
        let mut v = t.get();
        v.payment = Some(d);
        t.set(v);
    });
}

/// `db;dur=…, app;dur=…[, payment;dur=…]` in milliseconds. `app` is this request's time outside
/// the database; `payment` is the recorded charge of the resource (the worker charges
/// asynchronously, so it is not part of this response's own time).
pub(crate) fn header_value(total: Duration, t: Timing) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let app = total.saturating_sub(t.db);
    let mut out = format!("db;dur={:.3}, app;dur={:.3}", ms(t.db), ms(app));
    if let Some(p) = t.payment {
        out.push_str(&format!(", payment;dur={:.3};desc=\"charge\"", ms(p)));
    }
    out
}

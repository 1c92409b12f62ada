//! The background worker: claims payment tasks (durable claims with a lease), charges through
//! the simulator with the investment's payment key, settles the investment and the startup's
//! reservation in one transaction, reconciles timeouts by lookup, and is restarted by a
//! supervisor when it crashes. Never answers HTTP.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::Stats;
use super::db::{Db, now_ms};
use super::hub::Hub;
use super::model::{INVESTMENT_COLUMNS, Investment, investment_topic};
use super::payment::{ChargeResult, Outcome, PaymentSimulator};

/// How long an idle worker sleeps before looking for expired leases again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Worker {
    pub db: Db,
    pub payments: PaymentSimulator,
    pub hub: Hub<Investment>,
    pub wake: Arc<Notify>,
    pub stats: Arc<Stats>,
    pub lease: Duration,
    pub crash_after_charge: bool,
}

#[derive(Debug, thiserror::Error)]
enum WorkerError {
    #[error("worker crashed after a charge (injected fault worker-crash-after-charge)")]
    Crash,
    #[error("database error in the worker")]
    Db(#[from] sqlx::Error),
}

#[derive(Debug)]
struct Task {
    id: i64,
    investment_id: i64,
    payment_key: String,
    reconcile: bool,
    attempts: i64,
    amount_cents: i64,
}

/// Runs `concurrency` worker loops until `stop` turns true; a loop that crashes has its claims
/// released and is restarted after `restart_delay`. On stop, loops get `grace` to finish the
/// task in hand; whatever remains is abandoned with its claim intact (the lease recovers it).
pub(crate) async fn supervise(
    worker: Arc<Worker>,
    concurrency: usize,
    restart_delay: Duration,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut loops = JoinSet::new();
    let mut generation = 0u64;
    for slot in 0..concurrency.max(1) {
        let id = format!("w{slot}-{generation}");
        loops.spawn(run_loop(Arc::clone(&worker), id, stop.clone()));
    }
    loop {
        let ended = tokio::select! {
            ended = loops.join_next() => ended,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Some(ended) = ended else { return };
        let crashed_id = match ended {
            Ok((_, Ok(()))) => continue, // stopped on request
            Ok((id, Err(err))) => {
                crate::demo::log::demo_log!("worker {id}: {err}; restarting");
                id
            }
            Err(join) => {
                crate::demo::log::demo_log!("a worker task ended abnormally: {join}");
                continue;
            }
        };
        worker.stats.worker_crashes.fetch_add(1, Ordering::Relaxed);
        // The crashed loop is gone for sure, so its claims can be released right away instead
        // of waiting for their leases to expire.
        if let Err(err) = release_claims(&worker.db, &crashed_id).await {
            crate::demo::log::demo_log!("releasing claims of {crashed_id}: {err}");
        }
        let stopping = tokio::select! {
            () = tokio::time::sleep(restart_delay) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopping {
            break;
        }
        generation += 1;
        let slot = crashed_id.split('-').next().unwrap_or("w");
        let id = format!("{slot}-{generation}");
        loops.spawn(run_loop(Arc::clone(&worker), id, stop.clone()));
    }
    // Stopping: let loops finish the task in hand, then abandon the rest (JoinSet aborts them).
    let _ = tokio::time::timeout(grace, async { while loops.join_next().await.is_some() {} }).await;
}

async fn run_loop(
    worker: Arc<Worker>,
    id: String,
    mut stop: watch::Receiver<bool>,
) -> (String, Result<(), WorkerError>) {
    loop {
        if *stop.borrow() {
            return (id, Ok(()));
        }
        match claim(&worker, &id).await {
            Ok(Some(task)) => match process(&worker, task).await {
                Ok(()) => {}
                Err(WorkerError::Crash) => return (id, Err(WorkerError::Crash)),
                Err(err) => {
                    crate::demo::log::demo_log!("worker {id}: {err}");
                    tokio::time::sleep(POLL).await;
                }
            },
            Ok(None) => {
                tokio::select! {
                    () = worker.wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(err) => {
                crate::demo::log::demo_log!("worker {id}: claiming a task: {err}");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Claims the oldest runnable task (queued, or claimed under an expired lease) and moves its
/// investment to `processing`, in one write transaction.
async fn claim(worker: &Worker, worker_id: &str) -> Result<Option<Task>, sqlx::Error> {
    let now = now_ms();
    let mut tx = worker.db.begin_write().await?;
    let row = sqlx::query(
        "SELECT t.id, t.investment_id, t.payment_key, t.reconcile, t.attempts, i.amount_cents
         FROM tasks t JOIN investments i ON i.id = t.investment_id
         WHERE t.state = 'queued' OR (t.state = 'claimed' AND t.lease_until_ms < ?1)
         ORDER BY t.id LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let task = Task {
        id: row.try_get(0)?,
        investment_id: row.try_get(1)?,
        payment_key: row.try_get(2)?,
        reconcile: row.try_get::<i64, _>(3)? != 0,
        attempts: row.try_get::<i64, _>(4)? + 1,
        amount_cents: row.try_get(5)?,
    };
    let lease = i64::try_from(worker.lease.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE tasks SET state = 'claimed', claimed_by = ?2, lease_until_ms = ?3,
             attempts = ?4, updated_at_ms = ?5 WHERE id = ?1",
    )
    .bind(task.id)
    .bind(worker_id)
    .bind(now.saturating_add(lease))
    .bind(task.attempts)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let moved = sqlx::query(&format!(
        "UPDATE investments SET status = 'processing' WHERE id = ?1 AND status = 'pending'
         RETURNING {INVESTMENT_COLUMNS}"
    ))
    .bind(task.investment_id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(row) = moved {
        worker.hub.publish(
            &investment_topic(task.investment_id),
            Investment::from_row(&row)?,
        );
    }
    Ok(Some(task))
}

async fn process(worker: &Worker, task: Task) -> Result<(), WorkerError> {
    let started = Instant::now();
    let payments = &worker.payments;
    let outcome = if task.reconcile {
        // The last charge timed out: its outcome is whatever the provider recorded. A key the
        // provider never saw was not charged, so the investment fails (no second charge).
        worker.stats.reconciliations.fetch_add(1, Ordering::Relaxed);
        payments
            .lookup(&task.payment_key)
            .await?
            .unwrap_or(Outcome::Declined)
    } else {
        // A re-claimed task (crash, expired lease) first asks what already happened.
        let known = if task.attempts > 1 {
            payments.lookup(&task.payment_key).await?
        } else {
            None
        };
        match known {
            Some(outcome) => outcome,
            None => match payments
                .charge(&task.payment_key, task.investment_id, task.amount_cents)
                .await?
            {
                ChargeResult::Answered { outcome, fresh } => {
                    if fresh && outcome == Outcome::Captured && worker.crash_after_charge {
                        return Err(WorkerError::Crash);
                    }
                    outcome
                }
                ChargeResult::Timeout => {
                    mark_for_reconciliation(&worker.db, task.id).await?;
                    worker.wake.notify_one();
                    return Ok(());
                }
            },
        }
    };
    settle(worker, &task, outcome, started.elapsed()).await?;
    Ok(())
}

/// One transaction: the investment becomes `completed` (reservation moves into
/// `amount_raised`) or `failed` (reservation released), and the task is done.
async fn settle(
    worker: &Worker,
    task: &Task,
    outcome: Outcome,
    payment_time: Duration,
) -> Result<(), sqlx::Error> {
    let mut tx = worker.db.begin_write().await?;
    let row = sqlx::query("SELECT status, startup_id, amount_cents FROM investments WHERE id = ?1")
        .bind(task.investment_id)
        .fetch_optional(&mut *tx)
        .await?;
    let mut settled = None;
    if let Some(row) = row {
        let status: String = row.try_get(0)?;
        let startup_id: i64 = row.try_get(1)?;
        let amount: i64 = row.try_get(2)?;
        if status == "pending" {
            sqlx::query("UPDATE investments SET status = 'processing' WHERE id = ?1")
                .bind(task.investment_id)
                .execute(&mut *tx)
                .await?;
        }
        // Only an investment still in flight moves; a racing settle (expired lease) is a no-op.
        if status == "pending" || status == "processing" {
            let (new_status, raised) = match outcome {
                Outcome::Captured => ("completed", amount),
                Outcome::Declined => ("failed", 0),
            };
            let inv = sqlx::query(&format!(
                "UPDATE investments SET status = ?2 WHERE id = ?1 RETURNING {INVESTMENT_COLUMNS}"
            ))
            .bind(task.investment_id)
            .bind(new_status)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE startups SET reserved_cents = reserved_cents - ?2,
                     amount_raised_cents = amount_raised_cents + ?3 WHERE id = ?1",
            )
            .bind(startup_id)
            .bind(amount)
            .bind(raised)
            .execute(&mut *tx)
            .await?;
            settled = Some(Investment::from_row(&inv)?);
        }
    }
    sqlx::query(
        "UPDATE tasks SET state = 'done', claimed_by = NULL, lease_until_ms = NULL,
             payment_ms = ?2, updated_at_ms = ?3 WHERE id = ?1",
    )
    .bind(task.id)
    .bind(i64::try_from(payment_time.as_millis()).unwrap_or(i64::MAX))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(inv) = settled {
        worker.hub.publish(&investment_topic(inv.id), inv);
    }
    Ok(())
}

async fn mark_for_reconciliation(db: &Db, task_id: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE tasks SET state = 'queued', reconcile = 1, claimed_by = NULL,
             lease_until_ms = NULL, updated_at_ms = ?2 WHERE id = ?1",
    )
    .bind(task_id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

async fn release_claims(db: &Db, worker_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE tasks SET state = 'queued', claimed_by = NULL, lease_until_ms = NULL
         WHERE state = 'claimed' AND claimed_by = ?1",
    )
    .bind(worker_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

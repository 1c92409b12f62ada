//! The payment simulator: an idempotent "provider" keyed by payment key, with latency, decline
//! and timeout knobs. Its ledger is `payment_charges`; nothing else writes it, and the worker
//! reads it only through `lookup`. Outcomes are deterministic per (seed, key).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::Stats;
use super::db::{Db, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Captured,
    Declined,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Captured => "captured",
            Outcome::Declined => "declined",
        }
    }

    fn parse(s: &str) -> Outcome {
        if s == "captured" {
            Outcome::Captured
        } else {
            Outcome::Declined
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChargeResult {
    /// The provider answered. `fresh` is false when the key had been charged before and this
    /// is the provider replaying the original outcome.
    Answered { outcome: Outcome, fresh: bool },
    /// No answer in time: the charge may or may not have happened. Never charge again; look
    /// the key up (`lookup`) to find out.
    Timeout,
}

#[derive(Debug, Clone)]
pub(crate) struct PaymentSimulator {
    pub db: Db,
    pub seed: u64,
    pub latency: Duration,
    pub decline_pct: f64,
    pub timeout_pct: f64,
    /// How long a timed-out call keeps the caller waiting.
    pub timeout_after: Duration,
    pub stats: Arc<Stats>,
}

impl PaymentSimulator {
    /// A roll in [0, 100) that depends only on the seed, a purpose and the key.
    fn roll(&self, purpose: &str, key: &str) -> f64 {
        let digest = Sha256::digest(format!("{}:{purpose}:{key}", self.seed));
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_le_bytes(first) % 1_000_000) as f64 / 10_000.0
    }

    /// Charges `amount_cents` under `key`. Charging a key twice returns the first outcome and
    /// moves no money again.
    pub async fn charge(
        &self,
        key: &str,
        investment_id: i64,
        amount_cents: i64,
    ) -> Result<ChargeResult, sqlx::Error> {
        tokio::time::sleep(self.latency).await;
        let outcome = if self.roll("decline", key) < self.decline_pct {
            Outcome::Declined
        } else {
            Outcome::Captured
        };
        if self.roll("timeout", key) < self.timeout_pct {
            self.stats.payment_timeouts.fetch_add(1, Ordering::Relaxed);
            // Half of the timeouts happen after the provider processed the charge: the answer
            // is lost, the money moved. That is why the worker must look up, not retry.
            if self.roll("answer-lost", key) < 50.0 {
                self.record(key, investment_id, amount_cents, outcome)
                    .await?;
            }
            tokio::time::sleep(self.timeout_after).await;
            return Ok(ChargeResult::Timeout);
        }
        let (outcome, fresh) = self
            .record(key, investment_id, amount_cents, outcome)
            .await?;
        let counter = match (fresh, outcome) {
            (false, _) => &self.stats.charge_replays,
            (true, Outcome::Captured) => &self.stats.charges_captured,
            (true, Outcome::Declined) => &self.stats.charges_declined,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(ChargeResult::Answered { outcome, fresh })
    }

    /// The recorded outcome for `key`, if the provider ever processed it.
    pub async fn lookup(&self, key: &str) -> Result<Option<Outcome>, sqlx::Error> {
        tokio::time::sleep(self.latency).await;
        let outcome: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM payment_charges WHERE payment_key = ?1")
                .bind(key)
                .fetch_optional(&self.db.read)
                .await?;
        Ok(outcome.as_deref().map(Outcome::parse))
    }

    /// Inserts the ledger row, or counts a repeated call; returns the stored outcome and
    /// whether this call created it.
    async fn record(
        &self,
        key: &str,
        investment_id: i64,
        amount_cents: i64,
        outcome: Outcome,
    ) -> Result<(Outcome, bool), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let (stored, calls): (String, i64) = sqlx::query_as(
            "INSERT INTO payment_charges
                 (payment_key, investment_id, amount_cents, outcome, calls, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, 1, ?5)
             ON CONFLICT (payment_key) DO UPDATE SET calls = calls + 1
             RETURNING outcome, calls",
        )
        .bind(key)
        .bind(investment_id)
        .bind(amount_cents)
        .bind(outcome.as_str())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((Outcome::parse(&stored), calls == 1))
    }
}

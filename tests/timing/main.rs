//! Tests that compare sonde's measurements of a real run with the server's own timing or with
//! another run (percentiles, coordinated omission, shards started together). They are a crate
//! of their own because they measure wall-clock latency on a small machine: in the
//! `integration` binary they would run beside unrelated tests (demo seeding, TLS handshakes,
//! other load runs) and measure those instead of the plan. Inside this crate, `shard_run`
//! serialises its runs with a lock; `run_load`'s runs are short and tolerant of one neighbour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../integration/support/mod.rs"]
mod support;

mod run_load;
mod shard_run;

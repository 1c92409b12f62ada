//! The integration tests: one test crate (one binary to link) with a module per area of sonde.
//! Where a new test goes and which helpers exist: `tests/README.md`. Tests here run
//! concurrently: never set process environment variables or change the working directory (set
//! them on the child command), bind port 0, bound every wait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod app;
mod bisect;
mod breakdown;
mod cli;
mod demo;
mod exec_headers;
mod gate;
mod hostile;
mod http;
mod import;
mod redaction;
mod report;
mod repro_cli;
mod scenario;
mod shard;
mod trace;

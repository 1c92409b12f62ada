//! sonde: diagnostics and load testing for HTTP APIs.
//!
//! Pipeline: scenario file --parse--> `scenario::Scenario` --resolve with CLI--> `plan::Plan`
//! --exec--> samples --aggregate--> `aggregate::Summary` --> `report`s, `gate`s, exit code.
//! `demo` is the reference investment API the scenarios run against; it imports nothing else
//! from this crate.

pub mod aggregate;
pub mod bisect;
pub mod breakdown;
pub mod cli;
pub mod demo;
pub mod exec;
pub mod export;
pub mod gate;
pub mod http;
pub mod import;
pub mod plan;
pub mod redact;
pub mod report;
pub mod scenario;
pub mod shard;
pub mod trace;

//! `repro` and `bisect`: replay a flow under several environments, and narrow the differences
//! between a good and a bad environment down to a minimal failing set.
//!
//! `env` loads environments (named scenario envs, curl, HAR, env files, inline items) and
//! `--matrix` axes; `flow` runs a scenario's steps or one imported request under an
//! environment, one iteration at a time; `ddmin` minimises; `search` is the bisection
//! (premise, identity, ddmin); `repro` and `report` are the two commands' documents and
//! tables; `shell` writes the curl and `sonde repro` lines. The CLI glue is `cli::repro` and
//! `cli::bisect`.

pub mod ddmin;
pub mod env;
pub mod flow;
pub mod report;
pub mod repro;
pub mod search;
pub mod shell;

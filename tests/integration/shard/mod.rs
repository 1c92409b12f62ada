//! Sharded runs: the CLI, deployment files, merging, splitting. (Timed shard runs live in the
//! `timing` test crate.)
mod cli;
mod deploy;
mod merge;
mod split;

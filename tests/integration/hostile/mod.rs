//! sonde under hostile conditions (issue 12), through the real binary: the host allow-list
//! proven inside a private network namespace, requests cut at the end counted, signals, bounds
//! on what a bad input can make sonde do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounting;

mod allowlist;
mod secrets;

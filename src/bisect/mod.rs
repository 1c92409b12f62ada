//! `repro` and `bisect`: replay a flow under several environments, and narrow the differences
//! between a good and a bad environment down to a minimal failing set.

pub mod ddmin;

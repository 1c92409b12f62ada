//! The embedded demo API (`sonde demo`): its HTTP contract, faults, seeding and lifecycle.
mod faults;
mod hardening;
mod idempotency;
mod invariants;
mod lifecycle;
mod seed;
mod validation;

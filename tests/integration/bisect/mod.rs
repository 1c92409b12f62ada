//! `sonde bisect` end to end: the demo's faults, redaction of what it prints, and rule servers.
mod demo;
mod redaction;
mod rules;

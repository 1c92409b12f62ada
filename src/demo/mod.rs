//! The reference investment API (`sonde demo`). Imports nothing else from the crate.

//! `sonde breakdown`: the command against real servers, and its rendering (insta snapshots in
//! `breakdown/snapshots/`).
mod cli;
mod render;

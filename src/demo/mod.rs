//! The reference investment API (`sonde demo`). Imports nothing else from the crate.
// TEMPORARY STUB (lead's branch only): replaced by the demo branch at merge.
#![allow(dead_code, unused_variables)]
pub mod cli;
use std::time::Duration;
#[derive(Debug, thiserror::Error)]
#[error("demo")]
pub struct DemoError;
#[derive(Debug, Clone)]
pub enum Fault {
    SlowProfile,
}
impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        Err(s.into())
    }
}
#[derive(Default)]
pub struct DemoConfig {
    pub seed: u64,
    pub db_path: Option<std::path::PathBuf>,
    pub faults: Vec<Fault>,
}
pub struct RunningDemo {
    pub addr: std::net::SocketAddr,
    pub seed_time: Duration,
}
impl RunningDemo {
    pub fn base_url(&self) -> String {
        String::new()
    }
    pub async fn shutdown(self) -> Result<(), DemoError> {
        Ok(())
    }
}
pub async fn start(config: DemoConfig) -> Result<RunningDemo, DemoError> {
    Err(DemoError)
}

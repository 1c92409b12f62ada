// TEMPORARY STUB (lead's branch only): replaced by the demo branch at merge.
#![allow(dead_code, unused_variables)]
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}
pub async fn run(args: DemoArgs) -> Result<(), super::DemoError> {
    Ok(())
}

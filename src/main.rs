//! The `sonde` binary: parse arguments, run the command, print the error once, exit with the
//! documented code.

use clap::Parser as _;
use sonde::cli::{Cli, Exit, dispatch};

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(Exit::Runtime as i32);
        }
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            if e.message.starts_with("error") {
                eprintln!("{}", e.message);
            } else {
                eprintln!("error: {}", e.message);
            }
            e.exit
        }
    };
    // Don't wait for lingering blocking tasks (e.g. a DNS lookup that hangs).
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code as i32);
}

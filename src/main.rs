//! The `sonde` binary: parse arguments, run the command, print the error once (with its causes),
//! exit with the documented code (`sonde::Error::exit`).

use clap::Parser as _;
use sonde::Error;
use sonde::cli::{Cli, dispatch};

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&Error::Runtime(e)),
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", e.report());
            e.exit()
        }
    };
    // Don't wait for lingering blocking tasks (e.g. a DNS lookup that hangs).
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code.code());
}

fn fail(e: &Error) -> ! {
    eprintln!("{}", e.report());
    std::process::exit(e.exit().code());
}

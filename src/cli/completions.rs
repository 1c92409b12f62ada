//! `sonde completions SHELL` and `sonde man`: shell completion scripts and a man page, generated
//! from the same clap definition the parser uses, so they never drift from the real flags.
//! Writes to stdout only.

use super::{Cli, Error, Exit};
use clap::CommandFactory as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

/// Prints the completion script for `shell`, e.g. `sonde completions bash > ~/.local/share/bash-completion/completions/sonde`.
pub fn completions(shell: Shell) -> Result<Exit, Error> {
    use clap_complete::Shell as S;
    let s = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(s, &mut cmd, "sonde", &mut out);
    write_stdout(&out)
}

/// Prints the man page (roff), e.g. `sonde man > /usr/local/share/man/man1/sonde.1`.
pub fn man() -> Result<Exit, Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(Error::Stdout)?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<Exit, Error> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Exit::Ok),
        // `sonde man | head`: a closed pipe is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(e) => Err(Error::Stdout(e)),
    }
}

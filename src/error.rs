//! `sonde::Error`: every way a command can fail, each variant wrapping the module error it came
//! from (so its cause chain survives to the terminal), and `Error::exit`, the one mapping from
//! errors to the documented exit codes (README "Exit codes"). `gate_exit` is the one mapping
//! from a gate's verdict to an exit code (`run`, `merge`, `compare`). `main` prints
//! `Error::report` once.

use crate::gate::GateVerdict;
use crate::scenario::ScenarioError;

/// The exit-code contract (README "Exit codes"; a test checks the table against this enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A gate failed: threshold, expectation, regression.
    GateFailed = 1,
    /// Invalid input: usage, scenario, import file. Nothing was sent.
    InvalidInput = 2,
    /// Runtime failure: target unreachable, setup failed, I/O.
    Runtime = 3,
    /// Interrupted: partial results were written.
    Interrupted = 4,
}

impl Exit {
    /// Every code, in order (for the README check and `--help`).
    pub const ALL: [Exit; 5] = [
        Exit::Ok,
        Exit::GateFailed,
        Exit::InvalidInput,
        Exit::Runtime,
        Exit::Interrupted,
    ];

    /// The process exit status.
    #[must_use]
    pub fn code(self) -> i32 {
        self as i32
    }

    /// How the README's exit-code table starts this code's meaning.
    #[must_use]
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "success",
            Exit::GateFailed => "a gate failed",
            Exit::InvalidInput => "invalid input",
            Exit::Runtime => "runtime failure",
            Exit::Interrupted => "interrupted",
        }
    }
}

/// Why a command failed. The message names what is wrong and where; the variant decides the
/// exit code (`exit`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value or a combination of flags is wrong; the message names the flag.
    #[error("{0}")]
    Usage(String),
    /// A scenario file (or a `--threshold`) does not load: a rendered diagnostic.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// `sonde validate`: the diagnostic of every file that failed.
    #[error("{}", join_lines(.0))]
    Scenarios(Vec<ScenarioError>),
    /// The plan built from the flags or a request file is refused (a host not allowed, a
    /// request that cannot be built). Nothing was sent.
    #[error("{0}")]
    Plan(String),
    /// An environment (`--env`, `--good`, `--bad`, `--matrix`) does not load.
    #[error(transparent)]
    Env(#[from] crate::bisect::env::EnvError),
    /// A curl or HAR file does not import; the message starts with the file.
    #[error("{message}")]
    Import {
        message: String,
        #[source]
        source: crate::import::ImportError,
    },
    /// `--shard`/`--start-at` do not fit the plan.
    #[error("{0}")]
    Shard(String),
    /// Shard results that do not belong together (`merge`).
    #[error(transparent)]
    Merge(#[from] crate::shard::ShardMergeError),
    /// A saved run that cannot be read or judged (`compare`, `report`).
    #[error("{0}")]
    SavedRun(String),
    /// Two runs that cannot be compared (`compare`, `report --baseline`).
    #[error("{context}{source}")]
    NotComparable {
        context: String,
        #[source]
        source: crate::gate::CompareError,
    },
    /// An output path that cannot be written or whose format is unknown, found before
    /// anything was sent.
    #[error(transparent)]
    OutputPath(crate::report::ReportError),
    /// Writing an output failed after the run.
    #[error(transparent)]
    Output(crate::report::ReportError),
    /// The HTTP client cannot be built from the options (`--cacert`).
    #[error(transparent)]
    Client(#[from] crate::http::HttpError),
    /// A `--fault` of the embedded demo that does not exist.
    #[error(transparent)]
    Fault(#[from] crate::demo::FaultParseError),
    /// The embedded demo (a scenario without a target) did not start.
    #[error("could not start the embedded demo: {0}")]
    EmbeddedDemo(#[source] crate::demo::DemoError),
    /// `sonde demo` could not start or serve.
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    /// A setup step failed, or a load thread could not start.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    /// A breakdown could not be measured (client, setup).
    #[error(transparent)]
    Breakdown(#[from] crate::breakdown::MeasureError),
    /// The flow of `repro`/`bisect` could not start (client, setup).
    #[error(transparent)]
    Flow(#[from] crate::bisect::flow::FlowError),
    /// Waiting for `--start-at` failed.
    #[error(transparent)]
    Start(#[from] crate::shard::StartError),
    /// Writing a file (`import -o`).
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing to stdout failed (other than a closed pipe), or the man page did not render.
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// A document could not be serialized for stdout.
    #[error("cannot serialize the output: {0}")]
    Json(#[from] serde_json::Error),
    /// Requests went out and none got a response, or nothing could be sent.
    #[error("{0}")]
    Unreachable(String),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A state the code should never reach (a bug), named.
    #[error("internal: {0}")]
    Internal(&'static str),
}

fn join_lines(errors: &[ScenarioError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// THE mapping from errors to exit codes.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_)
            | Error::Scenario(_)
            | Error::Scenarios(_)
            | Error::Plan(_)
            | Error::Env(_)
            | Error::Import { .. }
            | Error::Shard(_)
            | Error::Merge(_)
            | Error::SavedRun(_)
            | Error::NotComparable { .. }
            | Error::OutputPath(_)
            | Error::Client(_)
            | Error::Fault(_)
            | Error::Breakdown(crate::breakdown::MeasureError::Client(_))
            | Error::Flow(crate::bisect::flow::FlowError::Client(_)) => Exit::InvalidInput,
            Error::EmbeddedDemo(_)
            | Error::Demo(_)
            | Error::Exec(_)
            | Error::Breakdown(crate::breakdown::MeasureError::Setup(_))
            | Error::Flow(crate::bisect::flow::FlowError::Setup(_))
            | Error::Start(_)
            | Error::Output(_)
            | Error::Write { .. }
            | Error::Stdout(_)
            | Error::Json(_)
            | Error::Unreachable(_)
            | Error::Runtime(_)
            | Error::Internal(_) => Exit::Runtime,
        }
    }

    /// A usage error naming the flag (exit 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }

    /// What `main` prints: `error: MESSAGE`, then one `  caused by: …` line per cause the
    /// message does not already state. Scenario diagnostics are printed as rendered (they
    /// carry their own `error:` line, source excerpt and help).
    #[must_use]
    pub fn report(&self) -> String {
        let mut out = match self {
            Error::Scenario(_) | Error::Scenarios(_) => self.to_string(),
            _ => format!("error: {self}"),
        };
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let text = c.to_string();
            if !text.is_empty() && !out.contains(&text) {
                out.push_str("\n  caused by: ");
                out.push_str(&text);
            }
            cause = c.source();
        }
        out
    }
}

/// THE mapping from a gate's verdict to an exit code (`run`, `merge`, `compare`): 0 when it
/// passed, else 1 after one `gate failed: …` line per reason on stderr.
#[must_use]
pub fn gate_exit(verdict: &GateVerdict) -> Exit {
    if verdict.passed {
        return Exit::Ok;
    }
    for r in &verdict.reasons {
        eprintln!("gate failed: {r}");
    }
    Exit::GateFailed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's exit-code table lists exactly the codes of `Exit`, each with its meaning.
    #[test]
    fn readme_exit_code_table_matches_exit() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let section = readme
            .split("\n## Exit codes\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_default();
        let rows: Vec<(i32, String)> = section
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.trim().trim_matches('|').split('|').collect();
                let code = cells.first()?.trim().parse::<i32>().ok()?;
                Some((code, cells.get(1)?.trim().to_string()))
            })
            .collect();
        let codes: Vec<i32> = rows.iter().map(|(c, _)| *c).collect();
        let want: Vec<i32> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, want, "README exit-code table rows: {rows:?}");
        for (e, (_, meaning)) in Exit::ALL.iter().zip(&rows) {
            assert!(
                meaning.starts_with(e.meaning()),
                "README row for {} says `{meaning}`, Exit says `{}`",
                e.code(),
                e.meaning()
            );
        }
    }

    #[test]
    fn report_prints_causes_the_message_does_not_state() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e = Error::Write {
            path: "out.json".into(),
            source: io,
        };
        assert_eq!(e.report(), "error: cannot write out.json: address in use");
        assert_eq!(e.exit(), Exit::Runtime);
        let e = Error::EmbeddedDemo(crate::demo::DemoError::TempDir(std::io::Error::other(
            "disk full",
        )));
        assert_eq!(
            e.report(),
            "error: could not start the embedded demo: cannot create a temporary directory for \
             the demo database\n  caused by: disk full"
        );
        assert_eq!(e.exit(), Exit::Runtime);
        let s = Error::Output(crate::report::ReportError::Serialize("x".into()));
        assert!(s.report().starts_with("error: "));
    }

    #[test]
    fn gate_exit_is_one_for_a_failed_verdict() {
        let failed = GateVerdict {
            passed: false,
            reasons: vec!["threshold `x` failed".into()],
        };
        assert_eq!(gate_exit(&failed), Exit::GateFailed);
        let passed = GateVerdict {
            passed: true,
            reasons: Vec::new(),
        };
        assert_eq!(gate_exit(&passed), Exit::Ok);
    }
}

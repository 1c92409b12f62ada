//! Scenario files: YAML → a positioned tree → validated `plan::Plan`, with errors that point at
//! the offending token (`path:line:col`, the line, a caret, a "did you mean"). Nothing here
//! sends a request; the only I/O is reading the scenario and its data file.
//!
//! Layers: `yaml` (tree with positions) → `reader` (typed access, `${ENV}`, templates) →
//! `steps`/`checks`/`load`/`thresholds` (sections) → `vars` (cross-step checks) → `sizes`
//! (expansion bounds) → `build`.

mod build;
mod checks;
pub mod error;
mod load;
mod reader;
mod sizes;
mod steps;
mod stream;
mod thresholds;
mod vars;
mod yaml;

pub use crate::units::{fmt_duration, parse_duration, parse_rate};
pub use error::{ErrorKind, ScenarioError};

use crate::plan::Plan;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Variables every step can use without defining them.
pub use vars::BUILTINS;

/// Largest scenario file read (a guard against pointing `validate` at the wrong file).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Command-line settings that override the scenario file; all optional.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub target: Option<url::Url>,
    pub env: Option<String>,
    pub vus: Option<u32>,
    /// Iterations per second.
    pub rate: Option<f64>,
    pub max_vus: Option<u32>,
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    /// `--graceful-stop`: overrides `load.graceful_stop`.
    pub graceful_stop: Option<Duration>,
    /// `--threshold` values, e.g. `profile: p(95) < 300ms`.
    pub thresholds: Vec<String>,
    /// Transport options from the CLI: `insecure` and `cacert` always apply; other fields
    /// apply when they differ from `HttpOptions::default()`.
    pub http: Option<crate::plan::HttpOptions>,
}

/// Reads, validates and resolves a scenario file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ScenarioError> {
    let shown = path.display().to_string();
    let cannot = |e: std::io::Error| {
        ScenarioError::io(&shown, format!("cannot read scenario `{shown}`: {e}"))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    // Bounded, so pointing `validate` at a device or a huge file cannot hang or exhaust memory.
    let mut bytes = Vec::new();
    std::io::Read::take(file, MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::io(
            &shown,
            format!(
                "scenario `{shown}` is larger than {} MiB",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Err(not_utf8(&shown, e.as_bytes(), e.utf8_error())),
    };
    load_str(&text, path, overrides)
}

/// Invalid UTF-8, positioned: line and column of the first bad byte (columns count the
/// characters before it), its byte offset, and the line shown with the bad bytes replaced.
fn not_utf8(shown: &str, bytes: &[u8], e: std::str::Utf8Error) -> ScenarioError {
    let at = e.valid_up_to();
    let before = String::from_utf8_lossy(bytes.get(..at).unwrap_or_default());
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let bad: Vec<String> = bytes
        .get(at..at + e.error_len().unwrap_or(1))
        .unwrap_or_default()
        .iter()
        .map(|b| format!("0x{b:02X}"))
        .collect();
    let lossy = String::from_utf8_lossy(bytes);
    let d = error::Diag::new(
        error::Pos { line, col, len: 1 },
        format!(
            "the scenario is not valid UTF-8: byte {} at offset {at} (line {line}, column {col})",
            bad.join(" ")
        ),
    )
    .label("invalid UTF-8 here")
    .help("save the file as UTF-8 (the shown line has the bad bytes replaced by \u{FFFD})");
    ScenarioError::from_diag(ErrorKind::Syntax, shown, &lossy, d)
}

/// Like `load`, for text already in memory; `path_for_messages` names it in errors and
/// anchors a relative `data.file`.
pub fn load_str(
    src: &str,
    path_for_messages: &Path,
    overrides: &Overrides,
) -> Result<Plan, ScenarioError> {
    load_str_with_env(src, path_for_messages, overrides, &|name| {
        std::env::var(name).ok()
    })
}

/// Like `load_str`, with `${VAR}` looked up through `env` instead of the process environment.
pub fn load_str_with_env(
    src: &str,
    path_for_messages: &Path,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ScenarioError> {
    let shown = path_for_messages.display().to_string();
    build::build(src, path_for_messages, overrides, env).map_err(|f| match f {
        build::Fail::Syntax(d) => ScenarioError::from_diag(ErrorKind::Syntax, &shown, src, d),
        build::Fail::File(d) => ScenarioError::from_diag(ErrorKind::Invalid, &shown, src, d),
        build::Fail::Cli { src, diag } => {
            ScenarioError::from_diag(ErrorKind::Invalid, "--threshold", &src, *diag)
        }
    })
}

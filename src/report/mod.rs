//! Reports: one trait, one file per format. Every format renders a `Summary` to bytes; none
//! imports the HTTP or exec code. Files are written atomically (temp file, then rename).

pub mod exemplars;
pub mod fit;
pub mod html;
pub mod json;
pub mod junit;
pub mod md;
pub mod svg;
pub mod table;
pub mod waterfall;

use crate::aggregate::Summary;
use crate::gate::Comparison;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown report format `{ext}` (expected one of: json, txt, md, xml, html)")]
    UnknownFormat { path: PathBuf, ext: String },
    #[error("cannot write {path}: {reason} (checked before sending anything)")]
    Unwritable { path: PathBuf, reason: String },
    #[error("cannot serialize the result: {0}")]
    Serialize(String),
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The human table (also `.txt`).
    Table,
    /// The full, versioned run result (`sonde.run/v1`); with a baseline, the comparison
    /// (`sonde.compare/v1`).
    Json,
    /// Markdown for pull requests and `$GITHUB_STEP_SUMMARY`.
    Markdown,
    /// `JUnit` XML (`.xml`, `.junit.xml`): one test case per threshold and failing expectation.
    Junit,
    /// One self-contained HTML file with SVG charts.
    Html,
}

impl Format {
    /// Picks the format from a file name's extension.
    pub fn for_path(path: &Path) -> Result<Format, ReportError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "json" => Ok(Format::Json),
            "txt" | "table" => Ok(Format::Table),
            "md" | "markdown" => Ok(Format::Markdown),
            "xml" | "junit" => Ok(Format::Junit),
            "html" | "htm" => Ok(Format::Html),
            _ => Err(ReportError::UnknownFormat {
                path: path.to_path_buf(),
                ext,
            }),
        }
    }

    #[must_use]
    pub fn reporter(self) -> Box<dyn Report> {
        match self {
            Format::Table => Box::new(table::TableReport::plain()),
            Format::Json => Box::new(json::JsonReport),
            Format::Markdown => Box::new(md::MarkdownReport),
            Format::Junit => Box::new(junit::JunitReport),
            Format::Html => Box::new(html::HtmlReport),
        }
    }

    /// By name, as `--format` spells it.
    #[must_use]
    pub fn by_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "table" | "txt" => Some(Format::Table),
            "json" => Some(Format::Json),
            "md" | "markdown" => Some(Format::Markdown),
            "junit" | "xml" => Some(Format::Junit),
            "html" => Some(Format::Html),
            _ => None,
        }
    }
}

/// One report format: a run's `Summary` (its threshold results inside) and, when a baseline
/// was given, the `Comparison`, rendered to bytes.
pub trait Report {
    fn render_with(
        &self,
        summary: &Summary,
        comparison: Option<&Comparison>,
    ) -> Result<Vec<u8>, ReportError>;

    fn render(&self, summary: &Summary) -> Result<Vec<u8>, ReportError> {
        self.render_with(summary, None)
    }
}

/// Writes `bytes` to `path` via a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file (Ctrl-C, full disk). The file gets the user's umask
/// (0644 under umask 022), as any tool's output does: reports hold no secrets (they are
/// redacted before they reach a `Summary`). A temporary file alone would be 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // Created with 0666; the kernel applies the umask, exactly as for `open(2)` by a shell.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(&dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The directory a file is written in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks every output path before a run sends anything: a known extension, not a
/// directory, in an existing directory where a file can be created. A run must not spend its
/// load and then fail to write its result.
pub fn check_outputs(outs: &[PathBuf]) -> Result<(), ReportError> {
    for p in outs {
        let bad = |reason: String| ReportError::Unwritable {
            path: p.clone(),
            reason,
        };
        if p.is_dir() {
            return Err(bad("it is a directory".into()));
        }
        if p.to_str().is_some_and(|s| s.starts_with("prometheus=")) {
            return Err(bad(
                "prometheus=URL pushes a live run's metrics: only `sonde run` takes it".into(),
            ));
        }
        Format::for_path(p)?;
        let dir = parent_dir(p);
        if !dir.is_dir() {
            return Err(bad(format!(
                "the directory {} does not exist",
                dir.display()
            )));
        }
        // Creating (and removing) a temporary file is the only honest test of writability.
        tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| bad(format!("cannot create a file in {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Renders `summary` into every `--out` file, each in the format its extension names.
pub fn write_outputs(summary: &Summary, outs: &[PathBuf]) -> Result<(), ReportError> {
    write_outputs_with(summary, None, outs)
}

/// Like `write_outputs`, with the baseline comparison in every report.
pub fn write_outputs_with(
    summary: &Summary,
    comparison: Option<&Comparison>,
    outs: &[PathBuf],
) -> Result<(), ReportError> {
    // Check every extension before writing anything: a typo must not leave half the outputs.
    let formats = outs
        .iter()
        .map(|p| Format::for_path(p))
        .collect::<Result<Vec<_>, _>>()?;
    for (p, f) in outs.iter().zip(formats) {
        let bytes = f.reporter().render_with(summary, comparison)?;
        write_atomic(p, &bytes)?;
    }
    Ok(())
}

/// When `GITHUB_STEP_SUMMARY` names a file (GitHub Actions), appends the markdown report to it
/// and returns its path: `run` and `merge` their run report, `compare` the comparison alone
/// (the run's report is on the page already), so a job that runs both shows each table once.
pub fn append_github_step_summary(
    summary: &Summary,
    comparison: Option<&Comparison>,
) -> Result<Option<PathBuf>, ReportError> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    let bytes = match comparison {
        Some(c) => md::comparison_only(summary, c).into_bytes(),
        None => md::MarkdownReport.render_with(summary, None)?,
    };
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    Ok(Some(path))
}

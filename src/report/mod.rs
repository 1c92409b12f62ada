//! Reports: one trait, one file per format. Every format renders a `Summary` to bytes; none
//! imports the HTTP or exec code. Files are written atomically (temp file, then rename).

pub mod json;
pub mod table;

use crate::aggregate::Summary;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown report format `{ext}` (expected one of: json, txt)")]
    UnknownFormat { path: PathBuf, ext: String },
    #[error("cannot serialize the result: {0}")]
    Serialize(String),
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The human table (also `.txt`).
    Table,
    /// The full, versioned run result (`sonde.run/v1`).
    Json,
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
            _ => Err(ReportError::UnknownFormat {
                path: path.to_path_buf(),
                ext,
            }),
        }
    }

    pub fn reporter(self) -> Box<dyn Report> {
        match self {
            Format::Table => Box::new(table::TableReport { width: None }),
            Format::Json => Box::new(json::JsonReport),
        }
    }
}

/// One report format.
pub trait Report {
    fn render(&self, summary: &Summary) -> Result<Vec<u8>, ReportError>;
}

/// Writes `bytes` to `path` via a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file (Ctrl-C, full disk).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Renders `summary` into every `--out` file, each in the format its extension names.
pub fn write_outputs(summary: &Summary, outs: &[PathBuf]) -> Result<(), ReportError> {
    for p in outs {
        let bytes = Format::for_path(p)?.reporter().render(summary)?;
        write_atomic(p, &bytes)?;
    }
    Ok(())
}

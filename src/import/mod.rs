//! Environment inputs: "Copy as cURL" commands (bash and Windows cmd), HAR 1.2 exports (Chrome,
//! Firefox), env YAML files and inline items, all turned into one [`Imported`] request /
//! [`EnvSpec`] model; and the scenario YAML `sonde import` writes, with secrets as `${…}`
//! placeholders. Never runs a shell, never sends a request, and never shows a secret value in
//! an error, a `Debug` or a `Display`.

pub mod curl;
pub mod diff;
pub mod emit;
pub mod env;
pub mod envfile;
pub mod har;
pub mod plan;

pub use curl::tokenize::Dialect;
pub use diff::{Difference, apply_bad, diff};
pub use emit::{EmitOptions, Emitted, Placeholder, to_scenario_yaml};
pub use env::{Body, BodyKind, EnvSpec, Item, ItemKind, default_flag_sources};
pub use envfile::{parse_env_yaml, parse_inline};
pub use har::EntrySelector;

use crate::plan::FlagTransport;
use crate::redact;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why an input could not be imported. Positions are 1-based `line:col` in the input file;
/// `Display` renders `line:col: message` so a caller can prefix the file name. No variant ever
/// holds a secret value (URLs are redacted, option values are not echoed).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{line}:{col}: {message}")]
    Syntax {
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{line}:{col}: unsupported curl option `{option}` (supported: {supported})")]
    UnknownOption {
        line: usize,
        col: usize,
        option: String,
        supported: &'static str,
    },
    #[error("{line}:{col}: curl option `{option}` needs a value")]
    MissingValue {
        line: usize,
        col: usize,
        option: String,
    },
    #[error("the curl command has no URL")]
    MissingUrl,
    #[error("{line}:{col}: invalid URL `{url}`: {reason}")]
    BadUrl {
        line: usize,
        col: usize,
        url: String,
        reason: String,
    },
    #[error("{line}:{col}: invalid HAR file: {message}")]
    HarJson {
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{0}")]
    Har(String),
    #[error("invalid environment item `{item}`: {reason}")]
    InlineItem { item: String, reason: String },
    #[error("{line}:{col}: invalid env file: {message}")]
    EnvFile {
        line: usize,
        col: usize,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ImportError {
    /// `(line, col)` in the input, when the error has one.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ImportError::Syntax { line, col, .. }
            | ImportError::UnknownOption { line, col, .. }
            | ImportError::MissingValue { line, col, .. }
            | ImportError::BadUrl { line, col, .. }
            | ImportError::HarJson { line, col, .. }
            | ImportError::EnvFile { line, col, .. } => (*line > 0).then_some((*line, *col)),
            _ => None,
        }
    }
}

/// Where an import came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Curl(Dialect),
    /// The 0-based index of the HAR entry.
    Har {
        entry: usize,
    },
}

/// One imported request: the method and where it goes, and everything else as an environment.
#[derive(Clone)]
pub struct Imported {
    pub method: http::Method,
    /// `scheme://host[:port]`, no userinfo (credentials became an `Authorization` header).
    pub base: String,
    /// The path as the URL parser normalised it, without the query.
    pub path: String,
    /// Headers (original order and case), cookies, feature flags, query items (decoded), body.
    pub env: EnvSpec,
    /// Where flags were found (so the scenario says where they travel).
    pub flag_sources: Vec<FlagTransport>,
    pub insecure: bool,
    pub follow_redirects: bool,
    /// curl `--compressed` or a browser-computed `Accept-Encoding` that was dropped.
    pub compressed: bool,
    pub source: Source,
}

impl Imported {
    /// The full URL (base + path + query), for display through [`redact::redact_url`].
    pub fn url(&self) -> String {
        let mut u = format!("{}{}", self.base, self.path);
        if !self.env.query.is_empty() {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(self.env.query.iter())
                .finish();
            u.push('?');
            u.push_str(&q);
        }
        u
    }
}

impl fmt::Debug for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imported")
            .field("method", &self.method.as_str())
            .field("url", &redact::redact_url(&self.url()))
            .field("env", &self.env)
            .field("flag_sources", &self.flag_sources)
            .field("insecure", &self.insecure)
            .field("follow_redirects", &self.follow_redirects)
            .field("compressed", &self.compressed)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, redact::redact_url(&self.url()))?;
        for item in self.env.items() {
            write!(f, "\n  {item}")?;
        }
        Ok(())
    }
}

/// Splits an absolute http(s) URL into origin, normalised path, decoded query items and the
/// decoded `user:password` userinfo if any.
#[allow(clippy::type_complexity)]
pub fn split_url(
    raw: &str,
) -> Result<(String, String, Vec<(String, String)>, Option<String>), String> {
    let u = url::Url::parse(raw).map_err(|e| e.to_string())?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("scheme `{}` is not http or https", u.scheme()));
    }
    if u.host_str().is_none() {
        return Err("no host".into());
    }
    let base = u.origin().ascii_serialization();
    let query = u
        .query()
        .map(|q| {
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let (k, v) = s.split_once('=').unwrap_or((s, ""));
                    (redact::percent_decode(k), redact::percent_decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let userinfo = (!u.username().is_empty() || u.password().is_some()).then(|| {
        format!(
            "{}:{}",
            redact::percent_decode(u.username()),
            redact::percent_decode(u.password().unwrap_or(""))
        )
    });
    Ok((base, u.path().to_string(), query, userinfo))
}

fn read(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and parses a curl command file.
pub fn import_curl_file(path: &Path) -> Result<Imported, ImportError> {
    curl::parse(&read(path)?)
}

/// Reads a HAR file and imports the selected entry.
pub fn import_har_file(path: &Path, entry: &EntrySelector) -> Result<Imported, ImportError> {
    har::parse(&read(path)?, entry)
}

/// Loads an environment from what a user passes to `--env`/`--good`/`--bad`:
/// an inline item (`header:Accept-Language=tr-TR`, `cookie:ab=B`, `flag:x=on`, `query:x=1`,
/// `var:x=1`, `flags=a,b`), a HAR file (`file.har`, or `file.har#SUBSTRING|INDEX` to pick an
/// entry), an env YAML file (`.yaml`/`.yml`), or otherwise a curl command file. A named env of
/// a scenario is the caller's business (see [`EnvSpec::from_environment`]).
pub fn load_env(spec: &str) -> Result<EnvSpec, ImportError> {
    let kind = spec.split_once(':').map(|(k, _)| k);
    if spec.starts_with("flags=") || kind.is_some_and(|k| ItemKind::parse(k).is_some()) {
        return Ok(EnvSpec::from_items(&parse_inline(spec)?));
    }
    let (file, entry) = match spec.split_once(".har#") {
        Some((f, e)) => (format!("{f}.har"), Some(e)),
        None => (spec.to_string(), None),
    };
    let path = Path::new(&file);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "har" => {
            let sel = entry
                .map(EntrySelector::parse)
                .unwrap_or(EntrySelector::Only);
            Ok(with_request_line(import_har_file(path, &sel)?))
        }
        "yaml" | "yml" => parse_env_yaml(&read(path)?),
        _ => Ok(with_request_line(import_curl_file(path)?)),
    }
}

/// The environment of an imported request. The method, URL and path are not environment items;
/// callers that need them keep the `Imported`.
fn with_request_line(i: Imported) -> EnvSpec {
    i.env
}

//! Environment inputs: "Copy as cURL" commands (bash and Windows cmd, read as curl 7.88 reads
//! its options), HAR 1.2 exports (any exporter's, read as a stream), env YAML files and inline
//! items, all turned into one [`Imported`] request / [`EnvSpec`] model; and the scenario YAML
//! `sonde import` writes, with secrets as `${…}` placeholders. The contract: what was imported
//! is what is sent, byte for byte (body, query, repeated headers, method), or the input is
//! refused naming what and where (curl line:column, HAR JSON path). Never runs a shell, never
//! reads a file a command names, never sends a request, and never shows a secret value in an
//! error, a `Debug` or a `Display`.

pub mod curl;
pub mod diff;
pub mod emit;
pub mod env;
pub mod envfile;
pub mod har;
pub mod plan;
mod yamltext;

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
    #[error("{line}:{col}: curl option `{option}` is not supported: {reason}")]
    RefusedOption {
        line: usize,
        col: usize,
        option: String,
        reason: String,
    },
    #[error("{line}:{col}: curl option `{option}` needs a value")]
    MissingValue {
        line: usize,
        col: usize,
        option: String,
    },
    #[error(
        "the command uses the shell variable `${name}`, which is not set: export it (a shell would have substituted it)"
    )]
    UnsetShellVar { name: String },
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
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ImportError::Syntax { line, col, .. }
            | ImportError::UnknownOption { line, col, .. }
            | ImportError::RefusedOption { line, col, .. }
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
    /// The query string exactly as it is sent (without `?`); `None` when the URL has no `?`.
    /// `env.query` holds the same items decoded, for diffs and display.
    pub raw_query: Option<String>,
    /// Headers (original order and case), cookies, feature flags, query items (decoded), body.
    pub env: EnvSpec,
    /// Where flags were found (so the scenario says where they travel).
    pub flag_sources: Vec<FlagTransport>,
    /// The flag headers and cookies as the request carried them (see
    /// [`Imported::flags_exact`]).
    pub flag_originals: Vec<FlagOriginal>,
    pub insecure: bool,
    pub follow_redirects: bool,
    /// curl `--compressed` or a browser-computed `Accept-Encoding` that was dropped.
    pub compressed: bool,
    pub source: Source,
}

impl Imported {
    /// The full URL (base + path + query), for display through [`redact::redact_url`].
    #[must_use]
    pub fn url(&self) -> String {
        let mut u = format!("{}{}", self.base, self.path);
        if let Some(q) = &self.raw_query
            && encode_query(&self.env.query) != *q
        {
            u.push('?');
            u.push_str(q);
        } else if !self.env.query.is_empty() {
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

/// Query items decoded from a query string (`+` and `%XX` decoded; a piece without `=` is a
/// name with an empty value; empty pieces are skipped).
#[must_use]
pub fn decode_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (redact::percent_decode(k), redact::percent_decode(v))
        })
        .collect()
}

/// How the scenario loader and the plan send query items: `form_urlencoded`, `&`-joined.
#[must_use]
pub fn encode_query(items: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(items.iter())
        .finish()
}

/// A feature-flag header or cookie as the request carried it, before its flags were read out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagOriginal {
    /// `Header` or `Cookie`.
    pub kind: ItemKind,
    pub name: String,
    pub value: String,
    /// Its index among the request's headers (or cookies).
    pub index: usize,
}

/// Reads the feature flags out of the default flag header and cookie (see
/// [`EnvSpec::extract_flags`]), keeping what they were.
fn extract_flags_keeping(env: &mut EnvSpec) -> (Vec<FlagTransport>, Vec<FlagOriginal>) {
    let before = env.clone();
    let found = env.extract_flags(&default_flag_sources());
    let mut originals = Vec::new();
    for src in &found {
        let (kind, list, name, ci) = match src {
            FlagTransport::Header { name, .. } => (ItemKind::Header, &before.headers, name, true),
            FlagTransport::Cookie { name, .. } => (ItemKind::Cookie, &before.cookies, name, false),
        };
        for (index, (n, v)) in list.iter().enumerate() {
            if (ci && n.eq_ignore_ascii_case(name)) || n == name {
                originals.push(FlagOriginal {
                    kind,
                    name: n.clone(),
                    value: v.clone(),
                    index,
                });
            }
        }
    }
    (found, originals)
}

impl Imported {
    /// True when the flags, sent the way a scenario sends them (one transport, the names of
    /// the flags that are on, sorted, joined by its separator), are the bytes the request
    /// carried. Otherwise `sonde import` and `breakdown` put the flag header or cookie back
    /// verbatim ([`Imported::with_flags_restored`]).
    #[must_use]
    pub fn flags_exact(&self) -> bool {
        match (self.flag_originals.as_slice(), self.flag_sources.first()) {
            ([], _) => true,
            (
                [one],
                Some(
                    FlagTransport::Header { separator, .. }
                    | FlagTransport::Cookie { separator, .. },
                ),
            ) => {
                let sorted: std::collections::BTreeMap<&str, bool> = self
                    .env
                    .flags
                    .iter()
                    .map(|(n, b)| (n.as_str(), *b))
                    .collect();
                // A flag cookie is sent after the other cookies: it must have been the last.
                let in_place = one.kind == ItemKind::Header || one.index == self.env.cookies.len();
                in_place
                    && sorted.len() == self.env.flags.len()
                    && sorted.values().all(|on| *on)
                    && sorted.keys().copied().collect::<Vec<_>>().join(separator) == one.value
            }
            _ => false,
        }
    }

    /// The request as a scenario will send it byte for byte: as is when its flags come back
    /// unchanged, else with the flag header or cookie restored verbatim.
    #[must_use]
    pub fn as_sent(&self) -> std::borrow::Cow<'_, Imported> {
        if self.flags_exact() {
            std::borrow::Cow::Borrowed(self)
        } else {
            std::borrow::Cow::Owned(self.with_flags_restored())
        }
    }

    /// The request with its flag headers and cookies put back verbatim where they stood, and
    /// no flags.
    fn with_flags_restored(&self) -> Imported {
        let mut i = self.clone();
        let mut originals = self.flag_originals.clone();
        originals.sort_by_key(|o| o.index);
        for o in originals {
            let list = match o.kind {
                ItemKind::Cookie => &mut i.env.cookies,
                _ => &mut i.env.headers,
            };
            list.insert(o.index.min(list.len()), (o.name, o.value));
        }
        i.env.flags.clear();
        i.flag_sources.clear();
        i.flag_originals.clear();
        i
    }

    /// True when sending `env.query` as items gives exactly the bytes of `raw_query` (so the
    /// query may be written as a mapping); false when the URL must carry it verbatim (`?a`,
    /// `%20`, `*`, an empty name, Latin-1 `%E9`…).
    #[must_use]
    pub fn query_items_exact(&self) -> bool {
        match &self.raw_query {
            None => self.env.query.is_empty(),
            Some(q) => {
                !q.is_empty()
                    && self.env.query.iter().all(|(n, _)| !n.is_empty())
                    && encode_query(&self.env.query) == *q
            }
        }
    }

    /// Replaces the shell-variable markers of a curl import (`$NAME` in the command) by the
    /// values `lookup` gives, as a shell would have; fails naming the first unset variable.
    /// Used where the request is sent directly (`breakdown`, `repro`, `bisect`); `sonde
    /// import` writes them as `${NAME}` instead.
    pub fn resolve_shell_vars(
        mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Imported, ImportError> {
        let mut missing = None;
        let mut fix = |s: &mut String| {
            if !s.contains(curl::tokenize::VAR_OPEN) {
                return;
            }
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = rest.find(curl::tokenize::VAR_OPEN) {
                out.push_str(&rest[..i]);
                let after = &rest[i + curl::tokenize::VAR_OPEN.len_utf8()..];
                let end = after.find(curl::tokenize::VAR_CLOSE).unwrap_or(after.len());
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        missing.get_or_insert_with(|| name.to_string());
                    }
                }
                rest = after
                    .get(end + curl::tokenize::VAR_CLOSE.len_utf8()..)
                    .unwrap_or("");
            }
            out.push_str(rest);
            *s = out;
        };
        for (_, v) in self
            .env
            .headers
            .iter_mut()
            .chain(self.env.cookies.iter_mut())
        {
            fix(v);
        }
        if let Some(b) = self.env.body.as_mut()
            && b.binary.is_none()
        {
            fix(&mut b.text);
        }
        match missing {
            Some(name) => Err(ImportError::UnsetShellVar { name }),
            None => Ok(self),
        }
    }
}

/// An absolute http(s) URL in parts.
pub struct UrlParts {
    /// `scheme://host[:port]`.
    pub base: String,
    pub path: String,
    /// Decoded query items.
    pub query: Vec<(String, String)>,
    /// The query string as sent (after the URL parser's normalisation), without `?`.
    pub raw_query: Option<String>,
    /// Decoded `user:password`.
    pub userinfo: Option<String>,
}

/// Splits an absolute http(s) URL into origin, normalised path, decoded query items (and the
/// exact query string) and the decoded `user:password` userinfo if any.
pub fn split_url(raw: &str) -> Result<UrlParts, String> {
    let u = url::Url::parse(raw).map_err(|e| e.to_string())?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("scheme `{}` is not http or https", u.scheme()));
    }
    if u.host_str().is_none() {
        return Err("no host".into());
    }
    let base = u.origin().ascii_serialization();
    let query = u.query().map(decode_query).unwrap_or_default();
    let userinfo = (!u.username().is_empty() || u.password().is_some()).then(|| {
        format!(
            "{}:{}",
            redact::percent_decode(u.username()),
            redact::percent_decode(u.password().unwrap_or(""))
        )
    });
    Ok(UrlParts {
        base,
        path: u.path().to_string(),
        query,
        raw_query: u.query().map(str::to_string),
        userinfo,
    })
}

fn read(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and parses a curl command file, for sending it now: shell variables (`$TOKEN`) are
/// taken from the process environment, as the shell would have.
pub fn import_curl_file(path: &Path) -> Result<Imported, ImportError> {
    curl::parse(&read(path)?)?.resolve_shell_vars(&|n| std::env::var(n).ok())
}

/// Reads and parses a curl command file for `sonde import`: shell variables stay markers that
/// the scenario writer turns into `${NAME}`.
pub fn read_curl_file(path: &Path) -> Result<Imported, ImportError> {
    curl::parse(&read(path)?)
}

/// Reads a HAR file (as a stream: see `har`) and imports the selected entry.
pub fn import_har_file(path: &Path, entry: &EntrySelector) -> Result<Imported, ImportError> {
    har::import_file(path, entry)
}

/// What a user passes to `--env`/`--good`/`--bad` names: an inline item
/// (`header:Accept-Language=tr-TR`, `cookie:ab=B`, `flag:x=on`, `query:x=1`, `var:x=1`,
/// `flags=a,b`), or a file: a HAR file (`file.har`, or `file.har#SUBSTRING|INDEX` to pick an
/// entry), an env YAML file (`.yaml`/`.yml`), or otherwise a curl command file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvArg<'a> {
    Inline,
    File {
        path: std::path::PathBuf,
        /// The HAR entry selector after `.har#`.
        entry: Option<&'a str>,
    },
}

impl<'a> EnvArg<'a> {
    #[must_use]
    pub fn parse(spec: &'a str) -> Self {
        let kind = spec.split_once(':').map(|(k, _)| k);
        if spec.starts_with("flags=") || kind.is_some_and(|k| ItemKind::parse(k).is_some()) {
            return EnvArg::Inline;
        }
        match spec.split_once(".har#") {
            Some((f, e)) => EnvArg::File {
                path: format!("{f}.har").into(),
                entry: Some(e),
            },
            None => EnvArg::File {
                path: spec.into(),
                entry: None,
            },
        }
    }
}

/// Reads what `spec` names (see [`EnvArg`]) into its environment, with the imported request
/// of a curl command or HAR entry. A named env of a scenario is the caller's business (see
/// [`EnvSpec::from_environment`]).
pub fn read_env(spec: &str) -> Result<(EnvSpec, Option<Imported>), ImportError> {
    let (path, entry) = match EnvArg::parse(spec) {
        EnvArg::Inline => return Ok((EnvSpec::from_items(&parse_inline(spec)?), None)),
        EnvArg::File { path, entry } => (path, entry),
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let imported = match ext.as_str() {
        "har" => {
            let sel = entry.map_or(EntrySelector::Only, EntrySelector::parse);
            import_har_file(&path, &sel)?
        }
        "yaml" | "yml" => return Ok((parse_env_yaml(&read(&path)?)?, None)),
        _ => import_curl_file(&path)?,
    };
    Ok((imported.env.clone(), Some(imported)))
}

/// The environment of what `spec` names (see [`read_env`]); the method, URL and path of an
/// imported request are not environment items: callers that need them use `read_env`.
pub fn load_env(spec: &str) -> Result<EnvSpec, ImportError> {
    read_env(spec).map(|(env, _)| env)
}

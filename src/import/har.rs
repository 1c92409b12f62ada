//! HAR 1.2 (Chrome and Firefox exports) → [`Imported`]. The serde model is lenient: vendor
//! fields (`_initiator`, `_priority`, `_transferSize`, `_securityState`…) and unknown fields are
//! ignored, optional fields may be missing or `null`. Only the request is read.
//!
//! Headers that the browser or the transport computes are not environment items and are
//! skipped: HTTP/2 pseudo-headers (`:authority`, `:method`, `:path`, `:scheme`), `Host`,
//! `Content-Length`, `Connection`, `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding`,
//! `Upgrade`, `TE`, `Trailer`, and `Accept-Encoding` (recorded as `compressed`). The `Cookie`
//! header becomes cookies (the `cookies` array is used only when there is no such header).

use super::env::{Body, EnvSpec, default_flag_sources};
use super::{ImportError, Imported, Source, split_url};
use serde::Deserialize;

const SKIPPED: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "accept-encoding",
];

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    entries: Option<Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    request: Request,
}

#[derive(Deserialize)]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Option<Vec<NameValue>>,
    #[serde(default)]
    cookies: Option<Vec<NameValue>>,
    #[serde(default, rename = "postData")]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct NameValue {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct PostData {
    #[serde(default, rename = "mimeType")]
    mime_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    params: Option<Vec<NameValue>>,
}

/// Which entry of `log.entries` to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntrySelector {
    /// The file must hold exactly one entry.
    Only,
    /// 0-based index.
    Index(usize),
    /// The first entry whose URL contains this text.
    UrlContains(String),
}

impl EntrySelector {
    /// A number is an index; anything else a URL substring.
    pub fn parse(s: &str) -> EntrySelector {
        match s.parse::<usize>() {
            Ok(i) => EntrySelector::Index(i),
            Err(_) => EntrySelector::UrlContains(s.to_string()),
        }
    }
}

/// serde_json's message without its position suffix and with quoted values elided (a value in
/// a type error could be a secret).
fn clean_json_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    if e.classify() == serde_json::error::Category::Data {
        let mut out = String::new();
        let mut in_q = false;
        for c in msg.chars() {
            if c == '"' {
                if in_q {
                    out.push_str("…\"");
                } else {
                    out.push('"');
                }
                in_q = !in_q;
            } else if !in_q {
                out.push(c);
            }
        }
        out
    } else {
        msg
    }
}

fn listing(entries: &[Entry]) -> String {
    let mut s = String::new();
    for (i, e) in entries.iter().enumerate().take(10) {
        s.push_str(&format!(
            "\n  {i}: {} {}",
            e.request.method,
            crate::redact::redact_url(&e.request.url)
        ));
    }
    if entries.len() > 10 {
        s.push_str(&format!("\n  … and {} more", entries.len() - 10));
    }
    s
}

/// Parses a HAR document and imports the selected entry.
pub fn parse(src: &str, sel: &EntrySelector) -> Result<Imported, ImportError> {
    let har: Har = serde_json::from_str(src).map_err(|e| ImportError::HarJson {
        line: e.line(),
        // serde_json says column 0 at the start of a line (an EOF after a newline).
        col: e.column().max(1),
        message: clean_json_message(&e),
    })?;
    let entries = har.log.entries.unwrap_or_default();
    if entries.is_empty() {
        return Err(ImportError::Har(
            "the HAR file has no entries (`log.entries` is empty)".into(),
        ));
    }
    let index = match sel {
        EntrySelector::Only if entries.len() == 1 => 0,
        EntrySelector::Only => {
            return Err(ImportError::Har(format!(
                "the HAR file has {} entries: choose one with --entry URL-SUBSTRING or --entry INDEX:{}",
                entries.len(),
                listing(&entries)
            )));
        }
        EntrySelector::Index(i) if *i < entries.len() => *i,
        EntrySelector::Index(i) => {
            return Err(ImportError::Har(format!(
                "entry {i} does not exist: the HAR file has {} entries (0-based):{}",
                entries.len(),
                listing(&entries)
            )));
        }
        EntrySelector::UrlContains(s) => entries
            .iter()
            .position(|e| e.request.url.contains(s.as_str()))
            .ok_or_else(|| {
                ImportError::Har(format!(
                    "no entry's URL contains `{}`; the entries are:{}",
                    crate::redact::Redactor::default().scrub(s),
                    listing(&entries)
                ))
            })?,
    };
    let Some(entry) = entries.into_iter().nth(index) else {
        return Err(ImportError::Har(format!("entry {index} does not exist")));
    };
    convert(entry.request, index)
}

fn convert(req: Request, index: usize) -> Result<Imported, ImportError> {
    let (base, path, query, userinfo) = split_url(&req.url).map_err(|reason| {
        ImportError::Har(format!(
            "entry {index}: invalid URL `{}`: {reason}",
            crate::redact::redact_url(&req.url)
        ))
    })?;
    let method = http::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| ImportError::Har(format!("entry {index}: invalid HTTP method")))?;
    let mut env = EnvSpec::default();
    let mut compressed = false;
    let mut cookie_header = false;
    let mut content_type = None;
    for h in req.headers.unwrap_or_default() {
        let (Some(name), value) = (h.name, h.value.unwrap_or_default()) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if lower.starts_with(':') {
            continue;
        }
        if lower == "accept-encoding" {
            compressed = true;
        }
        if SKIPPED.contains(&lower.as_str()) {
            continue;
        }
        if lower == "cookie" {
            cookie_header = true;
            env.cookies.extend(super::curl::split_cookies(&value));
            continue;
        }
        if lower == "content-type" {
            content_type = Some(value.clone());
        }
        env.headers.push((name, value));
    }
    if !cookie_header {
        for c in req.cookies.unwrap_or_default() {
            if let Some(n) = c.name {
                env.cookies.push((n, c.value.unwrap_or_default()));
            }
        }
    }
    if let Some(up) = userinfo
        && !env
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(up.as_bytes());
        env.headers
            .push(("Authorization".into(), format!("Basic {b64}")));
    }
    if let Some(pd) = req.post_data {
        let ct = content_type.or(pd.mime_type.filter(|m| !m.is_empty()));
        let text = match (pd.text, pd.params) {
            (Some(t), _) => Some(t),
            (None, Some(params)) if !params.is_empty() => {
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                for p in params {
                    s.append_pair(&p.name.unwrap_or_default(), &p.value.unwrap_or_default());
                }
                Some(s.finish())
            }
            _ => None,
        };
        if let Some(t) = text {
            env.body = Some(Body::classify(t, ct));
        }
    }
    env.query = query;
    let flag_sources = env.extract_flags(&default_flag_sources());
    Ok(Imported {
        method,
        base,
        path,
        env,
        flag_sources,
        insecure: false,
        follow_redirects: false,
        compressed,
        source: Source::Har { entry: index },
    })
}

//! HAR 1.2 exports → [`Imported`]. Lenient about every entry, strict about the one picked:
//! the file is read as a stream, one entry at a time, keeping only each entry's `request` (as
//! a JSON value) until the selected one is found, so a 1 GB export with large response bodies
//! never sits in memory (the memory used is bounded by the largest single request). Only a
//! JSON syntax error anywhere rejects the whole file; a request of odd shape in another entry
//! does not matter. The picked request is then read field by field, and a field that cannot
//! be sent is refused naming its JSON path (`log.entries[3].request.postData.params[0].value`).
//!
//! Deviations of real exporters accepted: a UTF-8 byte-order mark (Fiddler, IE), numbers and
//! booleans where strings belong (chrome-har's `params[].value`), `{}` for an empty list (IE11's
//! `cookies: {}`), `null` anywhere optional, `postData.text: ""` with `params` (Firebug: the
//! body is built from the params), `postData.encoding: "base64"` (decoded to bytes), a `url`
//! without its query when `queryString` lists it (Insomnia), the HARP form
//! (`onInputData({…});`, harviewer).
//!
//! Headers that the browser or the transport computes are not environment items and are
//! skipped: HTTP/2 pseudo-headers (`:authority`, `:method`, `:path`, `:scheme`), `Host`,
//! `Content-Length`, `Connection`, `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding`,
//! `Upgrade`, `TE`, `Trailer`, and `Accept-Encoding` (recorded as `compressed`). Every other
//! header is kept as it stands, repeats and letter case included. `Cookie` headers (HTTP/2
//! sends one per cookie) are joined with `; ` and become cookies when that split is lossless,
//! else one verbatim `Cookie` header; the `cookies` array is used only when there is no such
//! header.

use super::env::{Body, EnvSpec};
use super::{ImportError, Imported, Source, split_url};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

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
    #[must_use]
    pub fn parse(s: &str) -> EntrySelector {
        match s.parse::<usize>() {
            Ok(i) => EntrySelector::Index(i),
            Err(_) => EntrySelector::UrlContains(s.to_string()),
        }
    }
}

/// What one pass over the file found.
struct Scan<'a> {
    sel: &'a EntrySelector,
    saw_log: bool,
    /// `Some(true)` when `log.entries` is an array, `Some(false)` when it is something else.
    entries: Option<bool>,
    count: usize,
    /// Method and URL of the first entries, for messages.
    listing: Vec<(String, String)>,
    chosen: Option<(usize, Value)>,
}

impl Scan<'_> {
    fn offer(&mut self, index: usize, request: Option<Value>) {
        let field = |r: &Option<Value>, k: &str| {
            r.as_ref()
                .and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        let url = field(&request, "url");
        if self.listing.len() < 10 {
            self.listing.push((field(&request, "method"), url.clone()));
        }
        if self.chosen.is_some() {
            return;
        }
        let pick = match self.sel {
            EntrySelector::Only => index == 0,
            EntrySelector::Index(i) => *i == index,
            EntrySelector::UrlContains(s) => url.contains(s.as_str()),
        };
        if pick {
            self.chosen = Some((index, request.unwrap_or(Value::Null)));
        }
    }
}

struct Root<'s, 'a>(&'s mut Scan<'a>);
struct Log<'s, 'a>(&'s mut Scan<'a>);
struct Entries<'s, 'a>(&'s mut Scan<'a>);
/// One entry: its `request` value, everything else skipped without being kept.
struct EntryRequest;

impl<'de> DeserializeSeed<'de> for Root<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a HAR document (a JSON object with `log`)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key::<String>()? {
            if k == "log" && !self.0.saw_log {
                self.0.saw_log = true;
                m.next_value_seed(Log(&mut *self.0))?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Log<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Log<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`log` as a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(k) = m.next_key::<String>()? {
            if k == "entries" && self.0.entries.is_none() {
                m.next_value_seed(Entries(&mut *self.0))?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Entries<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`log.entries` as a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        self.0.entries = Some(true);
        while let Some(request) = s.next_element_seed(EntryRequest)? {
            let index = self.0.count;
            self.0.count += 1;
            self.0.offer(index, request);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        self.0.entries = Some(false);
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.entries = Some(false);
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.visit_unit()
    }
}

impl<'de> DeserializeSeed<'de> for EntryRequest {
    type Value = Option<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntryRequest {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a HAR entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Option<Value>, A::Error> {
        let mut request = None;
        while let Some(k) = m.next_key::<String>()? {
            if k == "request" && request.is_none() {
                request = Some(m.next_value::<Value>()?);
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(request)
    }
    // Lenient: an entry that is not an object is counted and skipped.
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Option<Value>, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }
}

/// `serde_json`'s message without its position suffix and with quoted values elided (a value in
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

fn listing(scan: &Scan<'_>) -> String {
    let mut s = String::new();
    for (i, (m, u)) in scan.listing.iter().enumerate() {
        let _ = write!(s, "\n  {i}: {m} {}", crate::redact::redact_url(u));
    }
    if scan.count > scan.listing.len() {
        let _ = write!(s, "\n  … and {} more", scan.count - scan.listing.len());
    }
    s
}

/// Reads a HAR document from `r` (a UTF-8 byte-order mark is skipped) and imports the selected
/// entry.
pub fn from_reader<R: Read>(r: R, sel: &EntrySelector) -> Result<Imported, ImportError> {
    let mut r = BufReader::with_capacity(1 << 16, r);
    let head = r.fill_buf().map_err(|e| ImportError::HarJson {
        line: 1,
        col: 1,
        message: format!("cannot read: {e}"),
    })?;
    let bom = head.starts_with(b"\xEF\xBB\xBF");
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err(ImportError::HarJson {
            line: 1,
            col: 1,
            message:
                "the file is UTF-16 (it starts with a UTF-16 byte-order mark): save it as UTF-8"
                    .into(),
        });
    }
    if bom {
        r.consume(3);
    }
    // HARP (harviewer's JSONP form, `onInputData({...});`, often saved as .har): the callback
    // is skipped and whatever follows the JSON value is ignored.
    let head = r.fill_buf().unwrap_or(&[]);
    let looks_like_curl = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("curl ");
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let ident_end = head[start..]
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || b"_$.".contains(b)))
        .map(|k| start + k);
    let harp = match ident_end {
        Some(e) if e > start && head.get(e) == Some(&b'(') && head[start].is_ascii_alphabetic() => {
            Some(e + 1)
        }
        _ => None,
    };
    if let Some(skip) = harp {
        r.consume(skip);
    }
    let mut scan = Scan {
        sel,
        saw_log: false,
        entries: None,
        count: 0,
        listing: Vec::new(),
        chosen: None,
    };
    let mut de = serde_json::Deserializer::from_reader(r);
    let parsed = Root(&mut scan)
        .deserialize(&mut de)
        .and_then(|()| if harp.is_some() { Ok(()) } else { de.end() });
    if let Err(e) = parsed {
        let col = e.column().max(1) + usize::from(bom && e.line() == 1);
        let mut message = clean_json_message(&e);
        if looks_like_curl {
            message.push_str(" (this looks like a curl command: use `sonde import curl FILE`)");
        }
        if bom && e.line() == 1 && e.column() <= 1 {
            message.push_str(" (after the UTF-8 byte-order mark at the start of the file)");
        }
        return Err(ImportError::HarJson {
            line: e.line(),
            // serde_json says column 0 at the start of a line (an EOF after a newline).
            col,
            message,
        });
    }
    select(scan)
}

/// Parses a HAR document held in memory and imports the selected entry.
pub fn parse(src: &str, sel: &EntrySelector) -> Result<Imported, ImportError> {
    from_reader(src.as_bytes(), sel)
}

/// Reads a HAR file as a stream and imports the selected entry.
pub fn import_file(path: &Path, sel: &EntrySelector) -> Result<Imported, ImportError> {
    let f = std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_reader(f, sel)
}

fn select(scan: Scan<'_>) -> Result<Imported, ImportError> {
    if !scan.saw_log {
        return Err(ImportError::Har(
            "no `log` object at the top: is this a HAR file?".into(),
        ));
    }
    match scan.entries {
        None => {
            return Err(ImportError::Har(
                "`log.entries` is missing: the HAR file records no requests".into(),
            ));
        }
        Some(false) => {
            return Err(ImportError::Har("`log.entries` is not a list".into()));
        }
        Some(true) if scan.count == 0 => {
            return Err(ImportError::Har(
                "the HAR file has no entries (`log.entries` is empty)".into(),
            ));
        }
        Some(true) => {}
    }
    if scan.chosen.is_none() || (scan.sel == &EntrySelector::Only && scan.count > 1) {
        return Err(ImportError::Har(match scan.sel {
            EntrySelector::Only => format!(
                "the HAR file has {} entries: choose one with --entry URL-SUBSTRING or --entry INDEX:{}",
                scan.count,
                listing(&scan)
            ),
            EntrySelector::Index(i) => format!(
                "entry {i} does not exist: the HAR file has {} entries (0-based):{}",
                scan.count,
                listing(&scan)
            ),
            EntrySelector::UrlContains(s) => format!(
                "no entry's URL contains `{}`; the entries are:{}",
                crate::redact::Redactor::default().scrub(s),
                listing(&scan)
            ),
        }));
    }
    let Some((index, request)) = scan.chosen else {
        return Err(ImportError::Har("no entry was selected".into()));
    };
    convert(&request, index)
}

/// A refusal of the picked entry, naming the JSON path.
fn at(path: &str, what: &str) -> ImportError {
    ImportError::Har(format!("{path}: {what}"))
}

/// A scalar as text: strings as they are, numbers and booleans as JSON writes them, `null`
/// (or missing) as empty. Objects and lists are refused.
fn scalar(v: Option<&Value>, path: &str) -> Result<String, ImportError> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Array(_)) => Err(at(path, "a list where a text value belongs")),
        Some(Value::Object(_)) => Err(at(path, "an object where a text value belongs")),
    }
}

/// A list field: missing, `null` and `{}` (IE11) are an empty list.
fn list<'v>(v: Option<&'v Value>, path: &str) -> Result<&'v [Value], ImportError> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(Value::Object(o)) if o.is_empty() => Ok(&[]),
        Some(_) => Err(at(path, "not a list")),
    }
}

/// `name`/`value` pairs of a list (`headers`, `cookies`, `params`).
fn pairs(v: Option<&Value>, path: &str) -> Result<Vec<(String, String, usize)>, ImportError> {
    let mut out = Vec::new();
    for (k, item) in list(v, path)?.iter().enumerate() {
        let p = format!("{path}[{k}]");
        if !item.is_object() {
            return Err(at(&p, "not an object with `name` and `value`"));
        }
        let name = match item.get("name") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => return Err(at(&format!("{p}.name"), "missing")),
            other => scalar(other, &format!("{p}.name"))?,
        };
        let value = scalar(item.get("value"), &format!("{p}.value"))?;
        out.push((name, value, k));
    }
    Ok(out)
}

// Long by design: a HAR entry's request read field by field (method, URL, headers, cookies,
// query, body), each with its own error naming the entry and field.
fn convert(req: &Value, index: usize) -> Result<Imported, ImportError> {
    let base_path = format!("log.entries[{index}].request");
    if !req.is_object() {
        return Err(at(&base_path, "missing, or not an object"));
    }
    let text = |k: &str| -> Result<String, ImportError> {
        match req.get(k) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(at(
                &format!("{base_path}.{k}"),
                "missing, empty or not a string",
            )),
        }
    };
    let mut url = text("url")?;
    let method_text = text("method")?;
    // Insomnia and HAR builders may leave the query out of `url` and list it only in
    // `queryString`: then the list is the query.
    if !url.contains('?') {
        let qs_path = format!("{base_path}.queryString");
        let items = pairs(req.get("queryString"), &qs_path)?;
        if !items.is_empty() {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (n, v, _) in &items {
                q.append_pair(n, v);
            }
            let (before, frag) = match url.split_once('#') {
                Some((b, f)) => (b.to_string(), format!("#{f}")),
                None => (url.clone(), String::new()),
            };
            url = format!("{before}?{}{frag}", q.finish());
        }
    }
    let parts = split_url(&url).map_err(|reason| {
        at(
            &format!("{base_path}.url"),
            &format!(
                "invalid URL `{}`: {reason}",
                crate::redact::redact_url(&url)
            ),
        )
    })?;
    let method = http::Method::from_bytes(method_text.as_bytes())
        .ok()
        .filter(|_| method_text.bytes().all(crate::http::is_tchar))
        .ok_or_else(|| {
            at(
                &format!("{base_path}.method"),
                "not an HTTP method (a token of letters, digits and !#$%&'*+-.^_`|~)",
            )
        })?;
    if let Some(m) = crate::suggest::method_typo(&method_text) {
        return Err(at(
            &format!("{base_path}.method"),
            &format!(
                "`{method_text}` looks like a typo of {m}: the scenario loader would refuse it"
            ),
        ));
    }
    let mut env = EnvSpec::default();
    let mut compressed = false;
    let mut cookie_headers: Vec<String> = Vec::new();
    let mut content_type = None;
    let headers_path = format!("{base_path}.headers");
    for (name, value, k) in pairs(req.get("headers"), &headers_path)? {
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
        if name.is_empty() || !name.bytes().all(crate::http::is_tchar) {
            return Err(at(
                &format!("{headers_path}[{k}].name"),
                "not a valid header name",
            ));
        }
        if lower == "cookie" {
            cookie_headers.push(value);
            continue;
        }
        if lower == "content-type" && content_type.is_none() {
            content_type = Some(value.clone());
        }
        env.headers.push((name, value));
    }
    if cookie_headers.is_empty() {
        let cookies = pairs(req.get("cookies"), &format!("{base_path}.cookies"))?;
        env.cookies = cookies.into_iter().map(|(n, v, _)| (n, v)).collect();
    } else {
        let joined = cookie_headers.join("; ");
        match super::curl::split_cookies_exact(&joined) {
            Some(c) => env.cookies = c,
            None => env.headers.push(("Cookie".into(), joined)),
        }
    }
    if let Some(up) = parts.userinfo
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
    match req.get("postData") {
        None | Some(Value::Null) => {}
        Some(pd @ Value::Object(_)) => {
            let pd_path = format!("{base_path}.postData");
            let mime = scalar(pd.get("mimeType"), &format!("{pd_path}.mimeType"))?;
            let ct = content_type.or((!mime.is_empty()).then_some(mime.clone()));
            env.body = Some(body(pd, &pd_path, &mime, ct)?);
        }
        Some(_) => return Err(at(&format!("{base_path}.postData"), "not an object")),
    }
    env.query = parts.query;
    env.raw_query = parts.raw_query.clone();
    let (flag_sources, flag_originals) = super::extract_flags_keeping(&mut env);
    Ok(Imported {
        method,
        base: parts.base,
        path: parts.path,
        raw_query: parts.raw_query,
        env,
        flag_sources,
        flag_originals,
        insecure: false,
        follow_redirects: false,
        compressed,
        source: Source::Har { entry: index },
    })
}

/// The body of `postData`: `text` (base64-decoded when `encoding` says so), or, when the text
/// is empty or missing, the form built from `params`.
fn body(pd: &Value, path: &str, mime: &str, ct: Option<String>) -> Result<Body, ImportError> {
    let text = scalar(pd.get("text"), &format!("{path}.text"))?;
    let encoding = scalar(pd.get("encoding"), &format!("{path}.encoding"))?;
    if !text.is_empty() {
        if encoding.eq_ignore_ascii_case("base64") {
            use base64::Engine as _;
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.as_bytes())
                })
                .map_err(|_| {
                    at(
                        &format!("{path}.text"),
                        "`encoding` is base64 but the text is not valid base64",
                    )
                })?;
            return Ok(Body::from_bytes(bytes, ct));
        }
        if !encoding.is_empty() {
            return Err(at(
                &format!("{path}.encoding"),
                "unknown encoding (only base64 is defined)",
            ));
        }
        return Ok(Body::classify(text, ct));
    }
    let params_path = format!("{path}.params");
    let params = list(pd.get("params"), &params_path)?;
    if params.is_empty() {
        return Ok(Body::classify(String::new(), ct));
    }
    for (k, p) in params.iter().enumerate() {
        if p.get("fileName").is_some_and(|f| !f.is_null()) {
            return Err(at(
                &format!("{params_path}[{k}].fileName"),
                "a file upload: the HAR holds no bytes of the file",
            ));
        }
    }
    if mime.to_ascii_lowercase().starts_with("multipart/") {
        return Err(at(
            &params_path,
            "a multipart body recorded only as params (no `text`): the HAR does not say which bytes were sent",
        ));
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (n, v, _) in pairs(Some(&Value::Array(params.to_vec())), &params_path)? {
        s.append_pair(&n, &v);
    }
    Ok(Body::classify(s.finish(), ct))
}

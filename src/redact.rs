//! The one place that decides what is secret and how a secret prints. Everything that shows a
//! header, cookie, URL, query parameter or free text to a person goes through here. This module
//! never logs, never does I/O and never reveals any part of a secret value.
//!
//! Decisions (documented contract):
//! - A redacted value prints as [`REDACTED`] (`‹redacted›`): no prefix, no suffix, no length,
//!   because even two characters of a short token help an attacker and make canary tests weak.
//!   Names always stay visible. To tell two secret values apart without showing them, use
//!   [`fingerprint`] (a short SHA-256 prefix).
//! - Secret headers: `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`,
//!   `X-Api-Key`, `X-Auth-Token`, and any name containing `token`, `secret`, `passw`, `session`,
//!   `auth`, `key`, `credential`, `signature`, `csrf`/`xsrf` (case-insensitive), except the
//!   non-secret `Idempotency-Key`, `Sec-WebSocket-Key` and `Keep-Alive`. `Cookie` and
//!   `Set-Cookie` keep the cookie names and attributes and hide every value.
//! - Secret cookies: names containing `sess`, `sid` (as a word), `token`, `auth`, `jwt`,
//!   `secret`, `passw`, `csrf`, `xsrf`, `credential`, `remember`, `login`, or prefixed
//!   `__Secure-`/`__Host-`.
//! - Secret query parameters: `access_token`, `refresh_token`, `id_token`, `token`, `api_key`,
//!   `apikey`, `key`, `password`, `secret`, `client_secret`, `signature`, `sig`, `code`, `auth`,
//!   `session`, and any name containing `token`, `secret`, `passw`, `signature`, `credential`.
//! - Any value that [`looks_secret`]: a JWT, a `Bearer`/`Basic`/`Digest` credential, or a long
//!   high-entropy token.
//! - URL userinfo: the password (or a lone user name, often a token) is hidden.
//!
//! `--include-sensitive` is a flag the callers pass: [`Redactor::new`] with
//! `include_sensitive = true` turns every method of the redactor into the identity.

use std::borrow::Cow;
use std::sync::LazyLock;

/// How a redacted value prints.
pub const REDACTED: &str = "‹redacted›";

static JWT: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*").ok()
});
static SCHEME_CREDENTIAL: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(bearer|basic|digest|token)\s+[A-Za-z0-9._~+/=\-]{6,}").ok()
});

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Is a header with this name secret? (Case-insensitive.)
#[must_use]
pub fn is_secret_header(name: &str) -> bool {
    let n = lower(name);
    if matches!(
        n.as_str(),
        "idempotency-key" | "sec-websocket-key" | "keep-alive" | "authority" | ":authority"
    ) {
        return false;
    }
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key"
    ) || [
        "token",
        "secret",
        "passw",
        "session",
        "auth",
        "key",
        "credential",
        "signature",
        "csrf",
        "xsrf",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Is a cookie with this name secret? (Case-insensitive.)
#[must_use]
pub fn is_secret_cookie_name(name: &str) -> bool {
    let n = lower(name);
    if n.starts_with("__secure-") || n.starts_with("__host-") {
        return true;
    }
    let words: Vec<&str> = n
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words
        .iter()
        .any(|w| matches!(*w, "sid" | "ssid" | "sessid" | "key" | "apikey"))
        || [
            "sess",
            "token",
            "auth",
            "jwt",
            "secret",
            "passw",
            "csrf",
            "xsrf",
            "credential",
            "remember",
            "login",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// Is a query parameter with this name secret? (Case-insensitive.)
#[must_use]
pub fn is_secret_query_name(name: &str) -> bool {
    let n = lower(name);
    matches!(
        n.as_str(),
        "access_token"
            | "refresh_token"
            | "id_token"
            | "token"
            | "api_key"
            | "apikey"
            | "api-key"
            | "key"
            | "password"
            | "pass"
            | "pwd"
            | "secret"
            | "client_secret"
            | "signature"
            | "sig"
            | "code"
            | "auth"
            | "session"
            | "sessionid"
    ) || ["token", "secret", "passw", "signature", "credential"]
        .iter()
        .any(|w| n.contains(w))
}

fn entropy_bits_per_char(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / t;
            -p * p.log2()
        })
        .sum()
}

/// Does this value look like a credential on its own, whatever its name? A JWT, an
/// `Authorization`-style `Bearer …`/`Basic …`, or a token of at least 24 characters drawn from
/// base64/hex/url-safe characters that mixes character classes and has high entropy.
pub fn looks_secret(value: &str) -> bool {
    let v = value.trim();
    if JWT.as_ref().is_some_and(|re| re.is_match(v)) {
        return true;
    }
    if SCHEME_CREDENTIAL.as_ref().is_some_and(|re| re.is_match(v)) {
        return true;
    }
    if v.len() < 24 || v.contains("//") || is_media_type(v) {
        return false;
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+/=~%".contains(c))
    {
        return false;
    }
    let classes = [
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_digit()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    classes >= 2 && entropy_bits_per_char(v) >= 3.5
}

/// `application/vnd.go.cd.v4+json` and the like: a media type, not a credential.
fn is_media_type(v: &str) -> bool {
    let Some((top, sub)) = v.split_once('/') else {
        return false;
    };
    matches!(
        top,
        "application"
            | "text"
            | "image"
            | "audio"
            | "video"
            | "multipart"
            | "font"
            | "model"
            | "message"
    ) && !sub.is_empty()
        && sub
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".+-_".contains(&b))
}

/// A short, stable fingerprint of a value (`sha256:` + 8 hex digits) to tell two secrets
/// apart in a report without showing either.
#[must_use]
pub fn fingerprint(value: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(value.as_bytes());
    let hex: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Redacts every value of a `Cookie` header (`a=1; b=2` → `a=‹redacted›; b=‹redacted›`).
fn redact_cookie_header(value: &str) -> String {
    value
        .split(';')
        .map(|part| {
            let p = part.trim();
            match p.split_once('=') {
                Some((n, _)) => format!("{n}={REDACTED}"),
                None if p.is_empty() => String::new(),
                None => REDACTED.to_string(),
            }
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Redacts the value of a `Set-Cookie` header, keeping its name and attributes.
fn redact_set_cookie(value: &str) -> String {
    let mut parts = value.splitn(2, ';');
    let first = parts.next().unwrap_or("");
    let rest = parts.next();
    let head = match first.split_once('=') {
        Some((n, _)) => format!("{}={REDACTED}", n.trim()),
        None => REDACTED.to_string(),
    };
    match rest {
        Some(r) => format!("{head};{r}"),
        None => head,
    }
}

/// The printable form of a header value: secret headers (and secret-looking values) hidden.
#[must_use]
pub fn redact_header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    let n = lower(name);
    if n == "cookie" {
        return Cow::Owned(redact_cookie_header(value));
    }
    if n == "set-cookie" {
        return Cow::Owned(redact_set_cookie(value));
    }
    if n == "referer" || n == "origin" || n == "location" {
        return Cow::Owned(redact_url(value));
    }
    // W3C trace context is random hex by design, not a secret: shown when it is well-formed.
    if (n == "traceparent" || n == "traceresponse") && crate::trace::parse(value).is_some() {
        return Cow::Borrowed(value);
    }
    if is_secret_header(name) || looks_secret(value) {
        return Cow::Borrowed(REDACTED);
    }
    Cow::Borrowed(value)
}

/// The printable form of a cookie value.
#[must_use]
pub fn redact_cookie<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if is_secret_cookie_name(name) || looks_secret(value) {
        Cow::Borrowed(REDACTED)
    } else {
        Cow::Borrowed(value)
    }
}

/// The printable form of a query parameter value.
#[must_use]
pub fn redact_query<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if is_secret_query_name(name) || looks_secret(value) {
        Cow::Borrowed(REDACTED)
    } else {
        Cow::Borrowed(value)
    }
}

/// Is a field secret by its name (a JSON key, form field, captured variable)?
#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty() && (is_secret_query_name(name) || is_secret_header(name))
}

/// Longest excerpt of a response value a message quotes.
pub const EXCERPT: usize = 200;

/// A value read from a response, as a failure message may quote it: hidden whole when its
/// field's name is secret or it looks secret, JSON redacted field by field, cut to
/// [`EXCERPT`] characters (with how much was left out).
#[must_use]
pub fn quote_response_value(field: &str, text: &str) -> String {
    if is_secret_name(field) || looks_secret(text) {
        return REDACTED.to_string();
    }
    excerpt(&redact_body(text), EXCERPT)
}

/// `text` cut to at most `max` characters, saying how many were left out.
#[must_use]
pub fn excerpt(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}… ({} more characters)", n - max)
}

/// Free text with every secret-looking token hidden (JWTs, `Bearer …`, long high-entropy
/// strings); words and punctuation stay.
#[must_use]
pub fn redact_free_text(text: &str) -> String {
    Redactor::new(false)
        .scrub(&hide_secret_tokens(text))
        .into_owned()
}

/// Every token (a run of URL-safe characters) that [`looks_secret`] replaced by [`REDACTED`].
fn hide_secret_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c != '\0' && (c.is_ascii_alphanumeric() || "-_.+/=~%".contains(c)) {
            token.push(c);
            continue;
        }
        out.push_str(if looks_secret(&token) {
            REDACTED
        } else {
            &token
        });
        token.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// The printable form of a request body: JSON fields and form fields with secret names (or
/// secret-looking values) hidden, other secret-looking tokens hidden; the shape stays visible.
pub fn redact_body(text: &str) -> String {
    fn walk(v: &mut serde_json::Value, key: &str) {
        match v {
            serde_json::Value::String(s)
                if (!s.is_empty() && (is_secret_query_name(key) || is_secret_header(key)))
                    || looks_secret(s) =>
            {
                *s = REDACTED.to_string();
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, key)),
            serde_json::Value::Object(o) => o.iter_mut().for_each(|(k, x)| walk(x, k)),
            _ => {}
        }
    }
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text)
        && (v.is_object() || v.is_array())
    {
        let before = v.clone();
        walk(&mut v, "");
        return if v == before {
            text.to_string()
        } else {
            v.to_string()
        };
    }
    if text.contains('=') && !text.contains(char::is_whitespace) {
        return redact_query_string(text);
    }
    hide_secret_tokens(text)
}

/// Redacts a raw query string (`a=1&token=x` → `a=1&token=‹redacted›`), keeping its encoding.
fn redact_query_string(q: &str) -> String {
    q.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let name: String = percent_decode(k);
            let value: String = percent_decode(v);
            if is_secret_query_name(&name) || looks_secret(&value) {
                format!("{k}={REDACTED}")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` escapes and `+` (form encoding); invalid escapes stay as they are.
#[must_use]
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The printable form of a URL: userinfo password hidden (a lone user name too, as it is
/// often a token), secret query parameters and secret-looking path segments hidden. Works on
/// text that is not a valid URL too (best effort, never reveals more than it is given).
#[must_use]
pub fn redact_url(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, raw),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match (scheme, authority.rsplit_once('@')) {
        (Some(_), Some((userinfo, host))) => match userinfo.split_once(':') {
            Some((user, _)) if !looks_secret(&percent_decode(user)) => {
                format!("{user}:{REDACTED}@{host}")
            }
            _ => format!("{REDACTED}@{host}"),
        },
        _ => authority.to_string(),
    };
    let (before_frag, frag) = match tail.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (tail, None),
    };
    let (path, query) = match before_frag.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_frag, None),
    };
    let path: String = path
        .split('/')
        .map(|seg| {
            if looks_secret(&percent_decode(seg)) {
                REDACTED
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let mut out = String::with_capacity(raw.len());
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(&authority);
    out.push_str(&path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query_string(q));
    }
    if let Some(f) = frag {
        out.push('#');
        if looks_secret(f) || f.contains("token=") {
            out.push_str(REDACTED);
        } else {
            out.push_str(f);
        }
    }
    out
}

/// Scrubs free text (error messages, logs, reports) of the secret values seen so far, of JWTs
/// and of `Bearer …` credentials. Matching is ASCII case-insensitive, so a secret echoed in
/// another letter case is hidden too. Built with `include_sensitive = true` it changes nothing.
#[derive(Clone, Default)]
pub struct Redactor {
    include_sensitive: bool,
    /// Lowercased secret values, longest first so a secret containing another is hidden whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("include_sensitive", &self.include_sensitive)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Secrets shorter than this are not scrubbed from free text (they would hide ordinary words);
/// they are still hidden wherever they appear as a named value.
pub const MIN_SCRUB_LEN: usize = 4;

impl Redactor {
    #[must_use]
    pub fn new(include_sensitive: bool) -> Redactor {
        Redactor {
            include_sensitive,
            secrets: Vec::new(),
        }
    }

    /// Whether this redactor hides anything at all.
    #[must_use]
    pub fn is_active(&self) -> bool {
        !self.include_sensitive
    }

    /// Remembers a secret value so that [`Redactor::scrub`] hides it.
    pub fn add(&mut self, secret: &str) {
        let s = secret.trim();
        if s.len() < MIN_SCRUB_LEN {
            return;
        }
        let l = lower(s);
        if !self.secrets.contains(&l) {
            self.secrets.push(l);
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Remembers the value of a header if it is secret (and, for `Cookie`, each cookie value).
    pub fn add_header(&mut self, name: &str, value: &str) {
        let n = lower(name);
        if n == "cookie" {
            for part in value.split(';') {
                if let Some((_, v)) = part.split_once('=') {
                    self.add(v);
                }
            }
        } else if n == "authorization" || n == "proxy-authorization" {
            self.add(value);
            if let Some((_, cred)) = value.trim().split_once(' ') {
                self.add(cred);
            }
        } else if is_secret_header(name) || looks_secret(value) {
            self.add(value);
        }
    }

    #[must_use]
    pub fn header<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if self.include_sensitive {
            Cow::Borrowed(value)
        } else {
            redact_header(name, value)
        }
    }

    #[must_use]
    pub fn cookie<'a>(&self, name: &str, value: &'a str) -> Cow<'a, str> {
        if self.include_sensitive {
            Cow::Borrowed(value)
        } else {
            redact_cookie(name, value)
        }
    }

    #[must_use]
    pub fn url<'a>(&self, raw: &'a str) -> Cow<'a, str> {
        if self.include_sensitive {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(redact_url(raw))
        }
    }

    /// Hides known secrets, JWTs and `Bearer …` credentials in free text.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.include_sensitive {
            return Cow::Borrowed(text);
        }
        let mut out = Cow::Borrowed(text);
        for s in &self.secrets {
            if let Some(replaced) = replace_ci(&out, s) {
                out = Cow::Owned(replaced);
            }
        }
        if let Some(re) = JWT.as_ref()
            && re.is_match(&out)
        {
            out = Cow::Owned(re.replace_all(&out, REDACTED).into_owned());
        }
        if let Some(re) = SCHEME_CREDENTIAL.as_ref()
            && re.is_match(&out)
        {
            out = Cow::Owned(re.replace_all(&out, format!("$1 {REDACTED}")).into_owned());
        }
        out
    }
}

/// Replaces every ASCII-case-insensitive occurrence of `needle` (already lowercase) in `hay`.
/// ASCII lowercasing keeps byte offsets, so positions found in the lowered text are valid in
/// the original.
fn replace_ci(hay: &str, needle: &str) -> Option<String> {
    let lowered = lower(hay);
    if !lowered.contains(needle) {
        return None;
    }
    let mut out = String::with_capacity(hay.len());
    let mut last = 0;
    for (i, _) in lowered.match_indices(needle) {
        if i < last {
            continue;
        }
        out.push_str(hay.get(last..i)?);
        out.push_str(REDACTED);
        last = i + needle.len();
    }
    out.push_str(hay.get(last..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn headers_by_name_and_value() {
        assert_eq!(redact_header("AUTHORIZATION", "Bearer abc"), REDACTED);
        assert_eq!(redact_header("x-my-api-key", "k"), REDACTED);
        assert_eq!(redact_header("Accept", "text/html"), "text/html");
        assert_eq!(redact_header("Idempotency-Key", "abc-1"), "abc-1");
        assert_eq!(
            redact_header("Cookie", "sid=123; ff=a|b"),
            format!("sid={REDACTED}; ff={REDACTED}")
        );
        assert_eq!(
            redact_header("set-cookie", "sid=123; Path=/; HttpOnly"),
            format!("sid={REDACTED}; Path=/; HttpOnly")
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXZhbHVl";
        assert_eq!(redact_header("X-Custom", jwt), REDACTED);
    }

    #[test]
    fn values_that_look_secret() {
        assert!(looks_secret("ghp_4fG7hK9mQ2xR8sT1vW3yZ5aB6cD0eF"));
        assert!(looks_secret("Bearer abcdefgh"));
        assert!(!looks_secret(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"
        ));
        assert!(!looks_secret("text/html,application/xhtml+xml"));
        assert!(!looks_secret("tr-TR"));
        assert!(!looks_secret("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn urls_keep_shape_and_hide_secrets() {
        assert_eq!(
            redact_url("https://bob:hunter2@api.example.com/a?x=1&access_token=zzz#f"),
            format!("https://bob:{REDACTED}@api.example.com/a?x=1&access_token={REDACTED}#f")
        );
        assert_eq!(
            redact_url("https://tok@h/p?ACCESS_TOKEN=1"),
            format!("https://{REDACTED}@h/p?ACCESS_TOKEN={REDACTED}")
        );
        assert_eq!(redact_url("/plain/path?page=2"), "/plain/path?page=2");
    }

    #[test]
    fn cookie_names() {
        assert!(is_secret_cookie_name("sessionid"));
        assert!(is_secret_cookie_name("connect.sid"));
        assert!(is_secret_cookie_name("__Host-csrf"));
        assert!(!is_secret_cookie_name("ff"));
        assert!(!is_secret_cookie_name("inside"));
    }

    #[test]
    fn redactor_scrubs_any_case_and_can_be_off() {
        let mut r = Redactor::new(false);
        r.add_header("Authorization", "Bearer CanaryToken123");
        let msg = "server said: bad token canarytoken123 and CANARYTOKEN123";
        let out = r.scrub(msg);
        assert!(!out.to_lowercase().contains("canarytoken123"), "{out}");
        assert!(out.contains(REDACTED));
        let off = Redactor::new(true);
        assert_eq!(off.scrub(msg), msg);
        assert!(!format!("{r:?}").contains("anary"));
    }

    #[test]
    fn fingerprints_differ() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a").len(), "sha256:".len() + 8);
    }
}

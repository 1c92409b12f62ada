//! "Copy as cURL" → [`Imported`]: interprets the curl options browsers emit (and a few more
//! people type). Every unsupported option is an error that names it: nothing is silently
//! dropped. Never runs a shell and never reads the files an `@file` argument names.
//!
//! Supported options: `-X/--request` (any RFC 9110 token), `-H/--header`, `-b/--cookie`,
//! `-d/--data`, `--data-raw`, `--data-binary`, `--data-ascii`, `--data-urlencode`, `--json`,
//! `-F/--form` and `--form-string` (values, not files: the multipart body curl would send, with
//! a boundary fixed by the content),
//! `-u/--user`, `--oauth2-bearer`, `-A/--user-agent`, `-e/--referer`, `-r/--range`, `--url`,
//! `--url-query`, `-G/--get`, `-I/--head`, `--compressed`, `-k/--insecure`, `-L/--location`
//! (and `--location-trusted`, `--no-location`), `-g/--globoff`. Options that change nothing
//! in the request curl sends (output, progress, timeouts, retries, TLS versions and CA
//! files, …) are accepted and ignored; their values are skipped. Long options may be
//! abbreviated as curl allows (`--sil`). Every other curl option is refused by name and
//! column, with the reason: proxies, files (`@file`, `-T`, `-K`, `-F name=@file`), computed
//! authentication (`--digest`, `--ntlm`), several requests (`--next`, several URLs).
//!
//! Semantics follow curl 7.88: `-d` makes the method POST unless `-X` says otherwise; data
//! pieces join with `&`, except that a `--json` piece is appended with no separator; `-d`
//! without a `Content-Type` header sends `application/x-www-form-urlencoded`; `-G` appends the
//! data to the query string as it is; `-u` and URL userinfo become an `Authorization: Basic`
//! header; a `Cookie:` header or `-b` string is kept verbatim (split into cookies only when
//! splitting and joining gives the same bytes; a `Cookie:` header makes curl drop `-b`, several
//! `-b` join with `;`); a URL without a scheme is `http://`; URL glob
//! escapes `\[ \] \{ \}` (Chrome writes them) are unescaped, an unescaped glob is refused
//! (curl would send several requests). Shell variables (`$NAME`, `${NAME}`) become `${NAME}`
//! scenario variables; they are refused in the URL.

mod form;
mod options;
pub mod tokenize;

use super::env::{Body, EnvSpec};
use super::{ImportError, Imported, Source, split_url};
use base64::Engine as _;
use form::{FormPart, form_part, multipart};
use options::{Opt, long, refusal, refused, resolve_long, short_name, unknown};
use std::fmt::Write as _;
use tokenize::{Dialect, Pos, VAR_OPEN, Word};

pub(super) fn err_at(pos: Pos, message: impl Into<String>) -> ImportError {
    ImportError::Syntax {
        line: pos.line,
        col: pos.col,
        message: message.into(),
    }
}

/// Everything the options said, before it becomes an `Imported`.
#[derive(Default)]
struct Parsed {
    method: Option<(String, Pos)>,
    urls: Vec<(Word, Pos)>,
    headers: Vec<(String, String)>,
    /// `-H 'Cookie: …'` values, verbatim, in order.
    cookie_headers: Vec<String>,
    /// `-b` strings, verbatim, in order.
    cookie_options: Vec<String>,
    /// `-H 'Cookie:'` removed curl's own Cookie header (so `-b` is not sent).
    cookie_removed: bool,
    /// Data pieces: bytes, and whether the piece came from `--json` (joined without `&`).
    data: Vec<(Vec<u8>, bool)>,
    url_query: Vec<String>,
    /// `-F`/`--form-string` parts, in order, and where the first one was.
    form: Vec<FormPart>,
    form_pos: Option<Pos>,
    json: bool,
    user: Option<String>,
    bearer: Option<String>,
    user_agent: Option<String>,
    referer: Option<String>,
    range: Option<String>,
    get: bool,
    head: bool,
    compressed: bool,
    insecure: bool,
    location: bool,
    globoff: bool,
}

/// Splits `a=1; b=2` into cookies when that is lossless: joining the pieces with `; ` gives
/// the same text back. Otherwise (`a=b; c`, odd spacing) `None`: the string is sent verbatim.
#[must_use]
pub fn split_cookies_exact(v: &str) -> Option<Vec<(String, String)>> {
    let pieces: Vec<(String, String)> = v
        .split("; ")
        .map(|p| {
            p.split_once('=')
                .map(|(n, x)| (n.to_string(), x.to_string()))
        })
        .collect::<Option<_>>()?;
    let ok = pieces
        .iter()
        .all(|(n, x)| !n.is_empty() && !n.contains([';', ' ']) && !x.contains(';'));
    ok.then_some(pieces)
}

/// Splits `a=1; b=2` into cookies (a piece without `=` is skipped, as browsers do).
pub fn split_cookies(v: &str) -> Vec<(String, String)> {
    v.split(';')
        .map(str::trim)
        .filter_map(|p| p.split_once('='))
        .map(|(n, x)| (n.trim().to_string(), x.trim().to_string()))
        .collect()
}

fn no_files(opt: &str, v: &str, pos: Pos) -> Result<(), ImportError> {
    if v.starts_with('@') {
        return Err(refused(
            pos,
            &format!("{opt} @FILE"),
            "it reads a file, which sonde does not do: paste the content with --data-raw",
        ));
    }
    Ok(())
}

/// curl's URL encoding (`curl_easy_escape` with `+` for space, as `--data-urlencode` sends):
/// `A-Za-z0-9-._~` stay, space is `+`, every other byte is `%XX`.
#[must_use]
pub fn curl_urlencode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `--data-urlencode`/`--url-query` content: `content`, `=content`, `name=content`
/// (`name@file` and `@file` read files and are refused). `+content` (url-query only) as is.
fn urlencoded_piece(name: &str, v: &[u8], pos: Pos, plus: bool) -> Result<Vec<u8>, ImportError> {
    if plus && let Some(rest) = v.strip_prefix(b"+") {
        return Ok(rest.to_vec());
    }
    let eq = v.iter().position(|b| *b == b'=');
    let at = v.iter().position(|b| *b == b'@');
    Ok(match (eq, at) {
        (Some(0), _) => curl_urlencode(&v[1..]).into_bytes(),
        (Some(i), _) => {
            let mut out = v[..i].to_vec();
            out.push(b'=');
            out.extend_from_slice(curl_urlencode(&v[i + 1..]).as_bytes());
            out
        }
        (None, Some(_)) => {
            return Err(refused(
                pos,
                &format!("{name} NAME@FILE"),
                "it reads a file, which sonde does not do",
            ));
        }
        (None, None) => curl_urlencode(v).into_bytes(),
    })
}

/// A word's bytes. `$'\xHH'` escapes that do not form UTF-8 are read as the code points
/// U+00HH, as the browsers that write them mean them (Firefox writes `é` as `\xe9`; the page
/// sent UTF-8), not as the single bytes bash would pass to curl.
fn bytes_of(w: &Word) -> Vec<u8> {
    w.text.as_bytes().to_vec()
}

// Long by design: one short arm per supported curl option, applied to the parsed state.
fn apply(p: &mut Parsed, opt: Opt, on: bool, name: &str, w: &Word) -> Result<(), ImportError> {
    let v = w.text.as_str();
    let pos = w.pos;
    match opt {
        Opt::Request => {
            if v.is_empty() || !v.bytes().all(crate::http::is_tchar) {
                return Err(err_at(
                    pos,
                    "invalid HTTP method after -X: a method is a token (letters, digits and !#$%&'*+-.^_`|~)",
                ));
            }
            if let Some(m) = crate::suggest::method_typo(v) {
                return Err(err_at(
                    pos,
                    format!(
                        "`-X {v}` looks like a typo of {m}: the scenario loader would refuse it (write {m}, or a method further from the standard ones)"
                    ),
                ));
            }
            p.method = Some((v.to_string(), pos));
        }
        Opt::Header => {
            no_files(name, v, pos)?;
            if let Some((n, x)) = v.split_once(':') {
                let x = x.trim_start_matches([' ', '\t']);
                let n = n.trim_end();
                if n.is_empty() || !n.bytes().all(crate::http::is_tchar) {
                    return Err(err_at(pos, "invalid header name in -H"));
                }
                if x.is_empty() {
                    // `Name:` removes one of curl's own headers; there is nothing to send.
                    p.cookie_removed |= n.eq_ignore_ascii_case("cookie");
                    return Ok(());
                }
                if n.eq_ignore_ascii_case("cookie") {
                    p.cookie_headers.push(x.to_string());
                } else {
                    p.headers.push((n.to_string(), x.to_string()));
                }
            } else if let Some(n) = v.strip_suffix(';') {
                let n = n.trim();
                if n.is_empty() || !n.bytes().all(crate::http::is_tchar) {
                    return Err(err_at(pos, "invalid header name in -H"));
                }
                p.headers.push((n.to_string(), String::new()));
            } else {
                return Err(err_at(pos, "-H needs `Name: value`"));
            }
        }
        Opt::Cookie => {
            if !v.contains('=') {
                return Err(refused(
                    pos,
                    &format!("{name} FILE"),
                    "without `=` it names a cookie file, which sonde does not read: pass `-b 'name=value; …'`",
                ));
            }
            p.cookie_options.push(v.to_string());
        }
        Opt::Data => {
            no_files(name, v, pos)?;
            p.data.push((bytes_of(w), false));
        }
        Opt::DataRaw => p.data.push((bytes_of(w), false)),
        Opt::Json => {
            no_files(name, v, pos)?;
            p.json = true;
            p.data.push((bytes_of(w), true));
        }
        Opt::Form | Opt::FormString => {
            p.form
                .push(form_part(v, name, pos, opt == Opt::FormString)?);
            p.form_pos.get_or_insert(pos);
        }
        Opt::DataUrlencode => {
            let piece = urlencoded_piece(name, &bytes_of(w), pos, false)?;
            p.data.push((piece, false));
        }
        Opt::UrlQuery => {
            let piece = urlencoded_piece(name, &bytes_of(w), pos, true)?;
            p.url_query
                .push(String::from_utf8_lossy(&piece).into_owned());
        }
        Opt::User => p.user = Some(v.to_string()),
        Opt::Bearer => p.bearer = Some(v.to_string()),
        Opt::UserAgent => p.user_agent = Some(v.to_string()),
        Opt::Referer => p.referer = Some(v.strip_suffix(";auto").unwrap_or(v).to_string()),
        Opt::Range => p.range = Some(v.to_string()),
        Opt::Url => p.urls.push((w.clone(), pos)),
        Opt::Get => p.get = on,
        Opt::Head => p.head = on,
        Opt::Compressed => p.compressed = on,
        Opt::Insecure => p.insecure = on,
        Opt::Location => p.location = on,
        Opt::Globoff => p.globoff = on,
        Opt::Ignored | Opt::IgnoredValue => {}
    }
    Ok(())
}

fn parse_words(words: &[Word]) -> Result<Parsed, ImportError> {
    let Some(first) = words.first() else {
        return Err(ImportError::MissingUrl);
    };
    let prog = first.text.to_ascii_lowercase();
    if prog != "curl" && prog != "curl.exe" {
        return Err(err_at(first.pos, "the command must start with `curl`"));
    }
    let mut p = Parsed::default();
    let mut i = 1;
    let mut options_done = false;
    let missing = |w: &Word, option: &str| ImportError::MissingValue {
        line: w.pos.line,
        col: w.pos.col,
        option: option.to_string(),
    };
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let t = w.text.as_str();
        if options_done || !t.starts_with('-') || t == "-" {
            p.urls.push((w.clone(), w.pos));
            continue;
        }
        if t == "--" {
            options_done = true;
            continue;
        }
        if let Some(name) = t.strip_prefix("--") {
            let (opt, on) = resolve_long(name, w.pos, t)?;
            if opt.takes_value() {
                let v = words.get(i).ok_or_else(|| missing(w, t))?;
                i += 1;
                apply(&mut p, opt, on, t, v)?;
            } else {
                apply(&mut p, opt, on, t, w)?;
            }
            continue;
        }
        // Short options, possibly bundled (`-sSL`) or with an attached value (`-XPOST`).
        let letters: Vec<char> = t.chars().skip(1).collect();
        let mut k = 0;
        while k < letters.len() {
            let c = letters[k];
            let name = format!("-{c}");
            let col = Pos {
                line: w.pos.line,
                col: w.pos.col + 1 + k,
            };
            let long_name = short_name(c).ok_or_else(|| unknown(col, &name))?;
            let opt = long(long_name).ok_or_else(|| refused(col, &name, refusal(long_name)))?;
            if opt.takes_value() {
                let attached: String = letters[k + 1..].iter().collect();
                if attached.is_empty() {
                    let v = words.get(i).ok_or_else(|| missing(w, &name))?;
                    i += 1;
                    apply(&mut p, opt, true, &name, v)?;
                } else {
                    let v = Word {
                        text: attached,
                        pos: Pos {
                            line: w.pos.line,
                            col: col.col + 1,
                        },
                        lead: 0,
                    };
                    apply(&mut p, opt, true, &name, &v)?;
                }
                break;
            }
            apply(&mut p, opt, true, &name, w)?;
            k += 1;
        }
    }
    Ok(p)
}

/// Parses a curl command file (dialect detected: see [`tokenize::detect`]). Shell variables
/// stay as markers; see [`super::Imported::resolve_shell_vars`].
pub fn parse(src: &str) -> Result<Imported, ImportError> {
    parse_with(src, tokenize::detect(src))
}

/// Parses a curl command in the given dialect.
pub fn parse_with(src: &str, dialect: Dialect) -> Result<Imported, ImportError> {
    let body = src.trim_start_matches('\u{feff}').trim_start();
    if body.starts_with('{') || body.starts_with('[') {
        let skipped = &src[..src.len() - body.len()];
        return Err(err_at(
            Pos {
                line: 1 + skipped.matches('\n').count(),
                col: 1 + skipped.rsplit('\n').next().map_or(0, |l| l.chars().count()),
            },
            "this is JSON, not a curl command: for a HAR file, use `sonde import har FILE`",
        ));
    }
    let words = tokenize::tokenize(src, dialect)?;
    let p = parse_words(&words)?;
    build(p, dialect)
}

/// Undoes curl's URL glob escapes (`\[ \] \{ \}`); refuses an unescaped glob, which curl would
/// expand into several requests. IPv6 literal hosts (`[::1]`) are not globs.
fn unglob(url: &str, word: &Word, globoff: bool) -> Result<String, ImportError> {
    if globoff {
        return Ok(url.to_string());
    }
    let host_start = url.find("://").map_or(0, |i| i + 3);
    let mut out = String::with_capacity(url.len());
    let mut chars = url.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some((_, '[' | ']' | '{' | '}'))) => {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            '[' if i == host_start => {
                // An IPv6 literal: copy through the closing bracket.
                out.push(c);
                for (_, n) in chars.by_ref() {
                    out.push(n);
                    if n == ']' {
                        break;
                    }
                }
            }
            '[' | '{' => {
                return Err(err_at(
                    word.pos_at(url[..i].chars().count()),
                    format!(
                        "unescaped `{c}` in the URL: curl expands `[…]` and `{{…}}` globs into several requests; write `\\{c}` for the character itself, or add -g"
                    ),
                ));
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

// Long by design: the parsed options turned into one request in curl's own order of
// order (URL, data and `-G`, the headers curl derives, cookies, forms, method, flags);
// reordering would change what curl would have sent.
fn build(p: Parsed, dialect: Dialect) -> Result<Imported, ImportError> {
    let (url_word, url_pos) = match p.urls.as_slice() {
        [] => return Err(ImportError::MissingUrl),
        [one] => one.clone(),
        [_, (_, second), ..] => {
            return Err(err_at(
                *second,
                format!(
                    "the command names {} URLs and curl would send one request to each: sonde imports one request per command",
                    p.urls.len()
                ),
            ));
        }
    };
    let raw_url = url_word.text.clone();
    if let Some(i) = raw_url.find(VAR_OPEN) {
        return Err(err_at(
            url_word.pos_at(raw_url[..i].chars().count()),
            "a shell variable in the URL is not supported: write the URL itself",
        ));
    }
    let unglobbed = unglob(&raw_url, &url_word, p.globoff)?;
    let mut full = if unglobbed.contains("://") {
        unglobbed
    } else {
        format!("http://{unglobbed}")
    };
    // Data pieces join with `&`, except that a --json piece is appended as it is (curl 7.88).
    let data: Option<Vec<u8>> = (!p.data.is_empty()).then(|| {
        let mut out = Vec::new();
        for (k, (piece, json)) in p.data.iter().enumerate() {
            if k > 0 && !json {
                out.push(b'&');
            }
            out.extend_from_slice(piece);
        }
        out
    });
    let mut extra_query: Vec<String> = p.url_query.clone();
    if p.get
        && let Some(d) = &data
    {
        extra_query.push(String::from_utf8_lossy(d).into_owned());
    }
    if !extra_query.is_empty() {
        let (before, frag) = match full.split_once('#') {
            Some((b, f)) => (b.to_string(), Some(f.to_string())),
            None => (full.clone(), None),
        };
        let mut u = before;
        u.push(if u.contains('?') { '&' } else { '?' });
        u.push_str(&extra_query.join("&"));
        if let Some(f) = frag {
            u.push('#');
            u.push_str(&f);
        }
        full = u;
    }
    let parts = split_url(&full).map_err(|reason| ImportError::BadUrl {
        line: url_pos.line,
        col: url_pos.col,
        url: crate::redact::redact_url(&raw_url),
        reason,
    })?;

    let mut env = EnvSpec {
        headers: p.headers,
        ..EnvSpec::default()
    };
    let has = |env: &EnvSpec, n: &str| env.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    let credentials = p.user.or(parts.userinfo);
    if let Some(up) = credentials
        && !has(&env, "authorization")
    {
        let up = if up.contains(':') {
            up
        } else {
            format!("{up}:")
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(up.as_bytes());
        env.headers
            .push(("Authorization".into(), format!("Basic {b64}")));
    } else if let Some(t) = p.bearer
        && !has(&env, "authorization")
    {
        env.headers
            .push(("Authorization".into(), format!("Bearer {t}")));
    }
    if let Some(r) = p.range
        && !has(&env, "range")
    {
        let r = if r.contains('-') { r } else { format!("{r}-") };
        env.headers.push(("Range".into(), format!("bytes={r}")));
    }
    if let Some(ua) = p.user_agent.filter(|u| !u.is_empty())
        && !has(&env, "user-agent")
    {
        env.headers.push(("User-Agent".into(), ua));
    }
    if let Some(r) = p.referer
        && !has(&env, "referer")
    {
        env.headers.push(("Referer".into(), r));
    }
    if p.json && !p.get {
        if !has(&env, "content-type") {
            env.headers
                .push(("Content-Type".into(), "application/json".into()));
        }
        if !has(&env, "accept") {
            env.headers
                .push(("Accept".into(), "application/json".into()));
        }
    }
    // Cookies as curl 7.88 sends them: a `-H 'Cookie: …'` replaces curl's own Cookie header, so
    // `-b` is then not sent; several `-b` join with `;`. Cookie items when splitting is
    // lossless, else the header verbatim (several -H Cookie stay several headers).
    match p.cookie_headers.as_slice() {
        [] if !p.cookie_options.is_empty() && !p.cookie_removed => {
            let cookie = p.cookie_options.join(";");
            match split_cookies_exact(&cookie) {
                Some(c) => env.cookies = c,
                None => env.headers.push(("Cookie".into(), cookie)),
            }
        }
        [] => {}
        [one] => match split_cookies_exact(one) {
            Some(c) => env.cookies = c,
            None => env.headers.push(("Cookie".into(), one.clone())),
        },
        many => env
            .headers
            .extend(many.iter().map(|c| ("Cookie".to_string(), c.clone()))),
    }

    if let Some(fpos) = p.form_pos {
        if data.is_some() || p.get || p.head {
            return Err(err_at(
                fpos,
                "-F cannot be combined with -d, -G or -I: curl refuses that too (one request method)",
            ));
        }
        let (boundary, body) = multipart(&p.form);
        let ct = match env
            .headers
            .iter_mut()
            .find(|(h, _)| h.eq_ignore_ascii_case("content-type"))
        {
            Some((_, v)) if v.to_ascii_lowercase().starts_with("multipart/") => {
                let _ = write!(v, "; boundary={boundary}");
                v.clone()
            }
            Some((_, v)) => v.clone(),
            None => {
                let v = format!("multipart/form-data; boundary={boundary}");
                env.headers.push(("Content-Type".into(), v.clone()));
                v
            }
        };
        env.body = Some(Body::from_bytes(body, Some(ct)));
    }
    let mut method = if p.head {
        "HEAD"
    } else if p.get {
        "GET"
    } else if data.is_some() || p.form_pos.is_some() {
        "POST"
    } else {
        "GET"
    }
    .to_string();
    if let Some((m, _)) = &p.method {
        method = m.clone();
    }
    if let Some(d) = data
        && !p.get
    {
        let ct = env
            .headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone());
        let ct = ct.or_else(|| Some("application/x-www-form-urlencoded".to_string()));
        env.body = Some(Body::from_bytes(d, ct));
    }
    env.query = parts.query;
    env.raw_query = parts.raw_query.clone();
    let (flag_sources, flag_originals) = super::extract_flags_keeping(&mut env);
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| err_at(url_pos, "invalid HTTP method"))?;
    Ok(Imported {
        method,
        base: parts.base,
        path: parts.path,
        raw_query: parts.raw_query,
        env,
        flag_sources,
        flag_originals,
        insecure: p.insecure,
        follow_redirects: p.location,
        compressed: p.compressed,
        source: Source::Curl(dialect),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::import::env::BodyKind;

    #[test]
    fn data_implies_post_and_joins() {
        let i = parse("curl https://h/p -d a=1 --data-urlencode 'b=x y' -sSL").unwrap();
        assert_eq!(i.method, http::Method::POST);
        let b = i.env.body.unwrap();
        assert_eq!(b.text, "a=1&b=x+y");
        assert_eq!(b.kind, BodyKind::Form);
        assert!(i.follow_redirects);
    }

    #[test]
    fn get_moves_data_to_query_and_user_becomes_basic() {
        let i = parse("curl -G https://h/p?x=1 -d y=2 -u bob:pw -XPUT").unwrap();
        assert_eq!(i.method.as_str(), "PUT");
        assert_eq!(
            i.env.query,
            vec![("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert_eq!(
            i.env.headers[0],
            ("Authorization".into(), "Basic Ym9iOnB3".into())
        );
        assert!(i.env.body.is_none());
    }

    #[test]
    fn unknown_and_missing() {
        let e = parse("curl https://h \\\n  --proxy x").unwrap_err();
        assert_eq!(e.position(), Some((2, 3)));
        assert!(e.to_string().contains("--proxy"), "{e}");
        let e = parse("curl -sW https://h").unwrap_err();
        assert!(e.to_string().contains("`-W`"), "{e}");
        assert_eq!(e.position(), Some((1, 8)));
        let e = parse("curl https://h -H").unwrap_err();
        assert!(matches!(e, ImportError::MissingValue { .. }), "{e}");
        assert!(matches!(
            parse("curl -s").unwrap_err(),
            ImportError::MissingUrl
        ));
    }
}

//! "Copy as cURL" → [`Imported`]: interprets the curl options browsers emit (and a few more
//! people type). Every unsupported option is an error that names it: nothing is silently
//! dropped. Never runs a shell and never reads the files an `@file` argument names.
//!
//! Supported options: `-X/--request`, `-H/--header`, `-b/--cookie`, `-d/--data`,
//! `--data-raw`, `--data-binary`, `--data-ascii`, `--data-urlencode`, `--json`, `-u/--user`,
//! `-A/--user-agent`, `-e/--referer`, `--url`, `-G/--get`, `-I/--head`, `--compressed`,
//! `-k/--insecure`, `-L/--location`. Accepted and ignored because they do not change the
//! request (browsers emit some of them): `-i/--include`, `-s/--silent`, `-S/--show-error`,
//! `-v/--verbose`, `-f/--fail`, `-g/--globoff`, `-N/--no-buffer`, `--path-as-is`, `--http1.0`,
//! `--http1.1`, `--http2`, `--http2-prior-knowledge`, `--http3`, `--tlsv1.2`, `--tlsv1.3`.
//!
//! Semantics follow curl: `-d` makes the method POST unless `-X` says otherwise; several data
//! options join with `&`; `-d` without a `Content-Type` header sends
//! `application/x-www-form-urlencoded`; `-G` moves the data into the query string; `-u` and URL
//! userinfo become an `Authorization: Basic` header; `-b 'a=1; b=2'` and a `Cookie:` header
//! become cookies; a URL without a scheme is `http://`.

pub mod tokenize;

use super::env::{Body, EnvSpec, default_flag_sources};
use super::{ImportError, Imported, Source, split_url};
use base64::Engine as _;
use tokenize::{Dialect, Pos, Word};

fn err_at(pos: Pos, message: impl Into<String>) -> ImportError {
    ImportError::Syntax {
        line: pos.line,
        col: pos.col,
        message: message.into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Opt {
    Request,
    Header,
    Cookie,
    Data,
    DataRaw,
    DataBinary,
    DataUrlencode,
    Json,
    User,
    UserAgent,
    Referer,
    Url,
    Get,
    Head,
    Compressed,
    Insecure,
    Location,
    Ignored,
}

impl Opt {
    fn takes_value(self) -> bool {
        !matches!(
            self,
            Opt::Get | Opt::Head | Opt::Compressed | Opt::Insecure | Opt::Location | Opt::Ignored
        )
    }
}

fn long(name: &str) -> Option<Opt> {
    Some(match name {
        "request" => Opt::Request,
        "header" => Opt::Header,
        "cookie" => Opt::Cookie,
        "data" | "data-ascii" => Opt::Data,
        "data-raw" => Opt::DataRaw,
        "data-binary" => Opt::DataBinary,
        "data-urlencode" => Opt::DataUrlencode,
        "json" => Opt::Json,
        "user" => Opt::User,
        "user-agent" => Opt::UserAgent,
        "referer" => Opt::Referer,
        "url" => Opt::Url,
        "get" => Opt::Get,
        "head" => Opt::Head,
        "compressed" => Opt::Compressed,
        "insecure" => Opt::Insecure,
        "location" => Opt::Location,
        "include"
        | "silent"
        | "show-error"
        | "verbose"
        | "fail"
        | "globoff"
        | "no-buffer"
        | "path-as-is"
        | "http1.0"
        | "http1.1"
        | "http2"
        | "http2-prior-knowledge"
        | "http3"
        | "tlsv1.2"
        | "tlsv1.3" => Opt::Ignored,
        _ => return None,
    })
}

fn short(c: char) -> Option<Opt> {
    Some(match c {
        'X' => Opt::Request,
        'H' => Opt::Header,
        'b' => Opt::Cookie,
        'd' => Opt::Data,
        'u' => Opt::User,
        'A' => Opt::UserAgent,
        'e' => Opt::Referer,
        'G' => Opt::Get,
        'I' => Opt::Head,
        'k' => Opt::Insecure,
        'L' => Opt::Location,
        'i' | 's' | 'S' | 'v' | 'f' | 'g' | 'N' => Opt::Ignored,
        _ => return None,
    })
}

const SUPPORTED: &str = "-X -H -b -d --data-raw --data-binary --data-ascii --data-urlencode --json -u -A -e --url -G -I --compressed -k -L (and the harmless -i -s -S -v -f -g -N --path-as-is --http1.0 --http1.1 --http2 --http3)";

fn unknown(w: &Word, option: &str) -> ImportError {
    ImportError::UnknownOption {
        line: w.pos.line,
        col: w.pos.col,
        option: option.to_string(),
        supported: SUPPORTED,
    }
}

/// Everything the options said, before it becomes an `Imported`.
#[derive(Default)]
struct Parsed {
    method: Option<(String, Pos)>,
    url: Option<(String, Pos)>,
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    data: Vec<String>,
    json: bool,
    user: Option<String>,
    user_agent: Option<String>,
    referer: Option<String>,
    get: bool,
    head: bool,
    compressed: bool,
    insecure: bool,
    location: bool,
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
        return Err(err_at(
            pos,
            format!(
                "`{opt} @FILE` reads a file, which sonde does not do: paste the content with --data-raw"
            ),
        ));
    }
    Ok(())
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn apply(p: &mut Parsed, opt: Opt, name: &str, v: &str, pos: Pos) -> Result<(), ImportError> {
    match opt {
        Opt::Request => p.method = Some((v.to_string(), pos)),
        Opt::Header => {
            no_files(name, v, pos)?;
            if let Some((n, x)) = v.split_once(':') {
                let x = x.trim_start_matches([' ', '\t']);
                if x.is_empty() {
                    // `Name:` removes one of curl's own headers; there is nothing to send.
                    return Ok(());
                }
                let n = n.trim();
                if n.is_empty() || !n.bytes().all(super::envfile::is_tchar) {
                    return Err(err_at(pos, "invalid header name in -H"));
                }
                if n.eq_ignore_ascii_case("cookie") {
                    p.cookies.extend(split_cookies(x));
                } else {
                    p.headers.push((n.to_string(), x.to_string()));
                }
            } else if let Some(n) = v.strip_suffix(';') {
                p.headers.push((n.trim().to_string(), String::new()));
            } else {
                return Err(err_at(pos, "-H needs `Name: value`"));
            }
        }
        Opt::Cookie => {
            if !v.contains('=') {
                return Err(err_at(
                    pos,
                    "-b without `=` names a cookie file, which sonde does not read: pass `-b 'name=value; …'`",
                ));
            }
            p.cookies.extend(split_cookies(v));
        }
        Opt::Data | Opt::DataBinary => {
            no_files(name, v, pos)?;
            p.data.push(v.to_string());
        }
        Opt::DataRaw => p.data.push(v.to_string()),
        Opt::Json => {
            no_files(name, v, pos)?;
            p.json = true;
            p.data.push(v.to_string());
        }
        Opt::DataUrlencode => {
            let piece = match v.split_once('=') {
                Some(("", content)) => urlencode(content),
                Some((n, content)) => format!("{n}={}", urlencode(content)),
                None if v.contains('@') => {
                    return Err(err_at(
                        pos,
                        "`--data-urlencode name@FILE` reads a file, which sonde does not do",
                    ));
                }
                None => urlencode(v),
            };
            p.data.push(piece);
        }
        Opt::User => p.user = Some(v.to_string()),
        Opt::UserAgent => p.user_agent = Some(v.to_string()),
        Opt::Referer => p.referer = Some(v.strip_suffix(";auto").unwrap_or(v).to_string()),
        Opt::Url => p.url = Some((v.to_string(), pos)),
        Opt::Get => p.get = true,
        Opt::Head => p.head = true,
        Opt::Compressed => p.compressed = true,
        Opt::Insecure => p.insecure = true,
        Opt::Location => p.location = true,
        Opt::Ignored => {}
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
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let t = w.text.as_str();
        if options_done || !t.starts_with('-') || t == "-" {
            if p.url.is_some() {
                return Err(err_at(
                    w.pos,
                    "a second URL: sonde imports one request per command",
                ));
            }
            p.url = Some((w.text.clone(), w.pos));
            continue;
        }
        if t == "--" {
            options_done = true;
            continue;
        }
        if let Some(name) = t.strip_prefix("--") {
            let opt = long(name).ok_or_else(|| unknown(w, t))?;
            if opt.takes_value() {
                let v = words.get(i).ok_or(ImportError::MissingValue {
                    line: w.pos.line,
                    col: w.pos.col,
                    option: t.to_string(),
                })?;
                i += 1;
                apply(&mut p, opt, t, &v.text, v.pos)?;
            } else {
                apply(&mut p, opt, t, "", w.pos)?;
            }
            continue;
        }
        // Short options, possibly bundled (`-sSL`) or with an attached value (`-XPOST`).
        let letters: Vec<char> = t.chars().skip(1).collect();
        let mut k = 0;
        while k < letters.len() {
            let c = letters[k];
            let name = format!("-{c}");
            let opt = short(c).ok_or_else(|| unknown(w, &name))?;
            if opt.takes_value() {
                let attached: String = letters[k + 1..].iter().collect();
                if attached.is_empty() {
                    let v = words.get(i).ok_or(ImportError::MissingValue {
                        line: w.pos.line,
                        col: w.pos.col,
                        option: name.clone(),
                    })?;
                    i += 1;
                    apply(&mut p, opt, &name, &v.text, v.pos)?;
                } else {
                    apply(&mut p, opt, &name, &attached, w.pos)?;
                }
                break;
            }
            apply(&mut p, opt, &name, "", w.pos)?;
            k += 1;
        }
    }
    Ok(p)
}

/// Parses a curl command file (dialect detected: see [`tokenize::detect`]).
pub fn parse(src: &str) -> Result<Imported, ImportError> {
    parse_with(src, tokenize::detect(src))
}

/// Parses a curl command in the given dialect.
pub fn parse_with(src: &str, dialect: Dialect) -> Result<Imported, ImportError> {
    let words = tokenize::tokenize(src, dialect)?;
    let p = parse_words(&words)?;
    build(p, dialect)
}

fn build(p: Parsed, dialect: Dialect) -> Result<Imported, ImportError> {
    let (raw_url, url_pos) = p.url.ok_or(ImportError::MissingUrl)?;
    let with_scheme = if raw_url.contains("://") {
        raw_url.clone()
    } else {
        format!("http://{raw_url}")
    };
    let (base, path, mut query, userinfo) =
        split_url(&with_scheme).map_err(|reason| ImportError::BadUrl {
            line: url_pos.line,
            col: url_pos.col,
            url: crate::redact::redact_url(&raw_url),
            reason,
        })?;

    let mut env = EnvSpec {
        headers: p.headers,
        cookies: p.cookies,
        ..EnvSpec::default()
    };
    let has = |env: &EnvSpec, n: &str| env.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    let credentials = p.user.or(userinfo);
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
    }
    if let Some(ua) = p.user_agent
        && !has(&env, "user-agent")
    {
        env.headers.push(("User-Agent".into(), ua));
    }
    if let Some(r) = p.referer
        && !has(&env, "referer")
    {
        env.headers.push(("Referer".into(), r));
    }
    if p.json {
        if !has(&env, "content-type") {
            env.headers
                .push(("Content-Type".into(), "application/json".into()));
        }
        if !has(&env, "accept") {
            env.headers
                .push(("Accept".into(), "application/json".into()));
        }
    }

    let data = (!p.data.is_empty()).then(|| p.data.join("&"));
    let mut method = if p.head {
        "HEAD"
    } else if p.get {
        "GET"
    } else if data.is_some() {
        "POST"
    } else {
        "GET"
    }
    .to_string();
    if let Some((m, pos)) = &p.method {
        if http::Method::from_bytes(m.as_bytes()).is_err() {
            return Err(err_at(*pos, "invalid HTTP method after -X"));
        }
        method = m.clone();
    }
    match data {
        Some(d) if p.get => {
            query.extend(d.split('&').filter(|s| !s.is_empty()).map(|s| {
                let (k, v) = s.split_once('=').unwrap_or((s, ""));
                (
                    crate::redact::percent_decode(k),
                    crate::redact::percent_decode(v),
                )
            }));
        }
        Some(d) => {
            let ct = env
                .headers
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.clone())
                .or_else(|| Some("application/x-www-form-urlencoded".to_string()));
            env.body = Some(Body::classify(d, ct));
        }
        None => {}
    }
    env.query = query;
    let flag_sources = env.extract_flags(&default_flag_sources());
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| err_at(url_pos, "invalid HTTP method"))?;
    Ok(Imported {
        method,
        base,
        path,
        env,
        flag_sources,
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
        let e = parse("curl -sZ https://h").unwrap_err();
        assert!(e.to_string().contains("`-Z`"), "{e}");
        let e = parse("curl https://h -H").unwrap_err();
        assert!(matches!(e, ImportError::MissingValue { .. }), "{e}");
        assert!(matches!(
            parse("curl -s").unwrap_err(),
            ImportError::MissingUrl
        ));
    }
}

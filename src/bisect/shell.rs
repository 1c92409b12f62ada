//! Command lines `bisect` hands back: a curl command that reproduces the failing request and a
//! `sonde repro` line that toggles the culprit on and off. Secret values become `"$SONDE_…"`
//! placeholders (the user exports them) unless `--include-sensitive`. Builds text; no I/O.

use super::env::Axis;
use crate::http::Request;
use crate::import::emit::env_name;
use crate::import::{Difference, ItemKind};
use crate::redact;

/// One piece of a shell word: literal text (single-quoted) or a variable (`"$VAR"`).
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Var(String),
}

/// A shell word assembled from pieces; renders so the shell sees exactly the intended text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Word(Vec<Piece>);

impl Word {
    pub fn lit(s: impl Into<String>) -> Word {
        Word(vec![Piece::Lit(s.into())])
    }

    fn push_lit(&mut self, s: &str) {
        if let Some(Piece::Lit(last)) = self.0.last_mut() {
            last.push_str(s);
        } else {
            self.0.push(Piece::Lit(s.to_string()));
        }
    }

    fn push_var(&mut self, v: &str) {
        self.0.push(Piece::Var(v.to_string()));
    }

    /// POSIX shell form. Plain words print bare; anything else is single-quoted.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(s) if is_bare(s) => out.push_str(s),
                Piece::Lit(s) => {
                    out.push('\'');
                    out.push_str(&s.replace('\'', r"'\''"));
                    out.push('\'');
                }
                Piece::Var(v) => {
                    out.push_str("\"$");
                    out.push_str(v);
                    out.push('"');
                }
            }
        }
        if out.is_empty() {
            out.push_str("''");
        }
        out
    }
}

fn is_bare(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
}

/// Secret values met while building a command, as placeholders.
#[derive(Debug, Default)]
pub struct Placeholders {
    include_sensitive: bool,
    /// `(var, value)`; values stay here and are never printed.
    vars: Vec<(String, String)>,
    /// Values of the good and of the bad environment: a placeholder for a value only one side
    /// has says which (`SONDE_AUTHORIZATION_BAD`), so the user exports the right person's.
    good: Vec<String>,
    bad: Vec<String>,
}

impl Placeholders {
    #[must_use]
    pub fn new(include_sensitive: bool) -> Placeholders {
        Placeholders {
            include_sensitive,
            ..Placeholders::default()
        }
    }

    /// Names placeholders after the side their value comes from (`_GOOD`, `_BAD`); a value
    /// both sides share, or neither has (the scenario's own), keeps the plain name.
    #[must_use]
    pub fn with_sides(mut self, good: Vec<String>, bad: Vec<String>) -> Placeholders {
        self.good = good;
        self.bad = bad;
        self
    }

    fn side_suffix(&self, value: &str) -> &'static str {
        let has = |side: &[String]| side.iter().any(|v| v == value);
        match (has(&self.good), has(&self.bad)) {
            (false, true) => "_BAD",
            (true, false) => "_GOOD",
            _ => "",
        }
    }

    /// Appends `value` to `word`: literally, or as a placeholder when `secret`.
    fn put(&mut self, word: &mut Word, prefix: &str, name: &str, value: &str, secret: bool) {
        if self.include_sensitive || !secret || value.is_empty() {
            word.push_lit(value);
            return;
        }
        let var = if let Some((var, _)) = self.vars.iter().find(|(_, v)| v == value) {
            var.clone()
        } else {
            let base = format!("{}{}", env_name(prefix, name), self.side_suffix(value));
            let mut var = base.clone();
            let mut n = 2;
            while self.vars.iter().any(|(v, _)| *v == var) {
                var = format!("{base}_{n}");
                n += 1;
            }
            self.vars.push((var.clone(), value.to_string()));
            var
        };
        word.push_var(&var);
    }

    /// The variables a user must export, in order of first use.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.vars.iter().map(|(v, _)| v.clone()).collect()
    }
}

/// A command line of literal words, each quoted for a POSIX shell as needed.
#[must_use]
pub fn command(words: &[&str]) -> String {
    join(&words.iter().map(|w| Word::lit(*w)).collect::<Vec<_>>())
}

fn join(words: &[Word]) -> String {
    words.iter().map(Word::render).collect::<Vec<_>>().join(" ")
}

/// A curl command sending `req` (method, URL, headers, body) with secrets as placeholders.
pub fn curl(req: &Request, ph: &mut Placeholders) -> String {
    let mut words = vec![Word::lit("curl")];
    if req.method != http::Method::GET || !req.body.is_empty() {
        words.push(Word::lit("-X"));
        words.push(Word::lit(req.method.as_str()));
    }
    let mut url = req.url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    let mut w = Word::lit(url.as_str());
    for (i, (k, v)) in pairs.iter().enumerate() {
        w.push_lit(if i == 0 { "?" } else { "&" });
        w.push_lit(&encode(k));
        w.push_lit("=");
        let secret = redact::redact_query(k, v) != v.as_str();
        if secret && !ph.include_sensitive {
            ph.put(&mut w, "SONDE_QUERY_", k, v, true);
        } else {
            w.push_lit(&encode(v));
        }
    }
    words.push(w);
    for (name, value) in &req.headers {
        let Ok(value) = value.to_str() else { continue };
        let mut w = Word::lit(format!("{}: ", name.as_str()));
        if name == http::header::COOKIE {
            for (i, part) in value.split(';').map(str::trim).enumerate() {
                if i > 0 {
                    w.push_lit("; ");
                }
                match part.split_once('=') {
                    Some((n, v)) => {
                        w.push_lit(n);
                        w.push_lit("=");
                        let secret = redact::redact_cookie(n, v) != v;
                        ph.put(&mut w, "SONDE_COOKIE_", n, v, secret);
                    }
                    None => w.push_lit(part),
                }
            }
        } else {
            let secret = redact::redact_header(name.as_str(), value) != value;
            ph.put(&mut w, "SONDE_", name.as_str(), value, secret);
        }
        words.push(Word::lit("-H"));
        words.push(w);
    }
    if !req.body.is_empty() {
        let text = String::from_utf8_lossy(&req.body);
        let mut w = Word::default();
        let secret = redact::redact_body(&text) != text;
        ph.put(&mut w, "SONDE_", "BODY", &text, secret);
        words.push(Word::lit("--data-raw"));
        words.push(w);
    }
    join(&words)
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What a generated `sonde repro` line runs.
#[derive(Debug, Clone, Default)]
pub struct ReproLine {
    pub scenario: Option<String>,
    /// The good environment as the user typed it.
    pub good: String,
    pub target: Option<String>,
    pub k: usize,
    pub expect_status: Vec<u16>,
    pub keep_think: bool,
    pub insecure: bool,
}

/// A matrix value in `--matrix` syntax: quoted when it holds a comma or a quote, `~` when absent.
fn matrix_value(w: &mut Word, ph: &mut Placeholders, d: &Difference, v: Option<&str>) {
    let Some(v) = v else {
        w.push_lit(if d.kind == ItemKind::Flag { "off" } else { "~" });
        return;
    };
    let secret = crate::import::env::is_secret(d.kind, &d.name, v);
    let prefix = match d.kind {
        ItemKind::Header => "SONDE_",
        ItemKind::Cookie => "SONDE_COOKIE_",
        ItemKind::Query => "SONDE_QUERY_",
        _ => "SONDE_VAR_",
    };
    if secret && !ph.include_sensitive {
        ph.put(w, prefix, &d.name, v, true);
    } else if v.contains([',', '"']) || v == "~" || v.is_empty() {
        w.push_lit(&format!("\"{}\"", v.replace('"', "\"\"")));
    } else {
        w.push_lit(v);
    }
}

/// `sonde repro … --env GOOD --matrix ITEM=good,bad …`: the kept identity items pinned to the
/// bad side's values, every culprit toggled between its good and bad value.
pub fn repro_line(
    line: &ReproLine,
    identity: &[Difference],
    culprits: &[Difference],
    ph: &mut Placeholders,
) -> String {
    let mut words = vec![Word::lit("sonde"), Word::lit("repro")];
    if let Some(s) = &line.scenario {
        words.push(Word::lit(s));
    }
    words.push(Word::lit("--env"));
    words.push(Word::lit(&line.good));
    if let Some(t) = &line.target {
        words.push(Word::lit("--target"));
        words.push(Word::lit(t));
    }
    words.push(Word::lit("-n"));
    words.push(Word::lit(line.k.to_string()));
    if !line.expect_status.is_empty() {
        let list: Vec<String> = line.expect_status.iter().map(u16::to_string).collect();
        words.push(Word::lit("--expect-status"));
        words.push(Word::lit(list.join(",")));
    }
    if line.keep_think {
        words.push(Word::lit("--keep-think"));
    }
    if line.insecure {
        words.push(Word::lit("--insecure"));
    }
    for d in identity.iter().chain(culprits) {
        if d.kind == ItemKind::Body {
            continue;
        }
        let mut w = Word::lit(format!("{}:{}=", d.kind, d.name));
        let toggled = !identity.contains(d);
        if toggled {
            matrix_value(&mut w, ph, d, d.good.as_deref());
            w.push_lit(",");
        }
        matrix_value(&mut w, ph, d, d.bad.as_deref());
        words.push(Word::lit("--matrix"));
        words.push(w);
    }
    join(&words)
}

/// Parses a value written by [`repro_line`] back (used by tests and by `repro` itself).
pub fn parse_matrix(text: &str) -> Result<Axis, super::env::EnvError> {
    Axis::parse(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn words_quote_for_posix_shells() {
        assert_eq!(Word::lit("plain-word").render(), "plain-word");
        assert_eq!(Word::lit("it's here").render(), r"'it'\''s here'");
        let mut w = Word::lit("Authorization: ");
        w.push_var("SONDE_AUTHORIZATION");
        assert_eq!(w.render(), r#"'Authorization: '"$SONDE_AUTHORIZATION""#);
    }

    #[test]
    fn curl_hides_secrets_behind_placeholders() {
        let mut req = Request::new(
            http::Method::POST,
            url::Url::parse("http://127.0.0.1:9/p?x=1&access_token=canaryQ1234567").unwrap(),
        );
        req.headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer canaryAUTH1234567"),
        );
        req.headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("theme=dark; session=canarySESS1234567"),
        );
        req.body = bytes::Bytes::from_static(b"{\"a\":1}");
        let mut ph = Placeholders::new(false);
        let c = curl(&req, &mut ph);
        assert!(!c.contains("canary"), "{c}");
        assert!(c.contains("\"$SONDE_AUTHORIZATION\""), "{c}");
        assert!(c.contains("\"$SONDE_COOKIE_SESSION\""), "{c}");
        assert!(c.contains("\"$SONDE_QUERY_ACCESS_TOKEN\""), "{c}");
        assert!(c.contains("theme=dark"), "{c}");
        assert!(c.contains(r#"--data-raw '{"a":1}'"#), "{c}");
        let mut open = Placeholders::new(true);
        let c = curl(&req, &mut open);
        assert!(c.contains("canaryAUTH1234567") && open.names().is_empty());
    }

    #[test]
    fn placeholders_say_which_side_holds_the_value() {
        let mut req = Request::new(
            http::Method::GET,
            url::Url::parse("http://127.0.0.1:9/p").unwrap(),
        );
        req.headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer canaryBAD1234567"),
        );
        req.headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("session=canaryGOOD1234567; sid=canarySHARED12345"),
        );
        let mut ph = Placeholders::new(false).with_sides(
            vec!["canaryGOOD1234567".into(), "canarySHARED12345".into()],
            vec!["Bearer canaryBAD1234567".into(), "canarySHARED12345".into()],
        );
        let c = curl(&req, &mut ph);
        assert!(c.contains("\"$SONDE_AUTHORIZATION_BAD\""), "{c}");
        assert!(c.contains("\"$SONDE_COOKIE_SESSION_GOOD\""), "{c}");
        assert!(c.contains("\"$SONDE_COOKIE_SID\""), "{c}");
        assert!(!c.contains("canary"), "{c}");
    }

    #[test]
    fn repro_line_round_trips_through_matrix_parsing() {
        let d = Difference {
            kind: ItemKind::Header,
            name: "Accept-Language".into(),
            good: Some("en-US,en;q=0.9".into()),
            bad: Some("de-DE".into()),
        };
        let f = Difference {
            kind: ItemKind::Flag,
            name: "new_kyc_form".into(),
            good: None,
            bad: Some("on".into()),
        };
        let line = ReproLine {
            scenario: Some("s.yaml".into()),
            good: "works.curl".into(),
            k: 3,
            ..ReproLine::default()
        };
        let mut ph = Placeholders::new(false);
        let text = repro_line(&line, &[], &[d, f], &mut ph);
        assert!(text.starts_with("sonde repro s.yaml --env works.curl -n 3 --matrix"));
        let arg = r#"header:Accept-Language="en-US,en;q=0.9",de-DE"#;
        assert!(text.contains(&format!("'{arg}'")), "{text}");
        let axis = parse_matrix(arg).unwrap();
        assert_eq!(axis.values[0].as_deref(), Some("en-US,en;q=0.9"));
        assert!(text.contains("flag:new_kyc_form=off,on"), "{text}");
    }
}

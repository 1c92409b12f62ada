//! [`Imported`] → scenario YAML (the format of `docs/scenario.md`): one step, `target` from the
//! URL origin, an `imported` env with headers, cookies, flags and query items. Secret values
//! become `${SONDE_…}` placeholders that the scenario loader reads from the process environment
//! at run time; a comment at the top lists the variables to export. A last pass replaces any
//! remaining occurrence of a secret (in any letter case) by its placeholder, so a secret echoed
//! in a `Referer` or a body never leaks. Writes text only: no I/O here.
//!
//! Every scalar is written as a JSON string, which is a valid YAML double-quoted scalar, so no
//! value can change the YAML structure.

use super::env::{BodyKind, ItemKind, is_secret};
use super::{Imported, Source};
use crate::plan::FlagTransport;
use crate::redact;
use std::fmt::Write as _;

/// How to write the scenario.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    /// Scenario name (and default step name source).
    pub name: String,
    /// What was imported, for the header comment (e.g. `curl request.sh`).
    pub source_label: String,
    /// Write secret values as they are instead of placeholders (`--include-sensitive`).
    pub include_sensitive: bool,
}

/// One environment variable the scenario reads.
#[derive(Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// `SONDE_…`
    pub var: String,
    pub kind: ItemKind,
    pub name: String,
    value: String,
}

impl Placeholder {
    /// The value to export (the caller decides whether it may be shown).
    pub fn secret_value(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for Placeholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} {})", self.var, self.kind, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Emitted {
    pub yaml: String,
    pub placeholders: Vec<Placeholder>,
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A `SONDE_…` environment variable name for a placeholder (`prefix` + the name upper-cased).
pub(crate) fn env_name(prefix: &str, name: &str) -> String {
    let mut s = String::from(prefix);
    let mut last_us = prefix.ends_with('_');
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_uppercase());
            last_us = false;
        } else if !last_us {
            s.push('_');
            last_us = true;
        }
    }
    while s.ends_with('_') {
        s.pop();
    }
    s
}

struct Secrets {
    enabled: bool,
    list: Vec<Placeholder>,
}

impl Secrets {
    /// Returns the text to write for a value: the value itself or `${VAR}`.
    fn value(&mut self, kind: ItemKind, name: &str, value: &str, secret: bool) -> String {
        if !self.enabled || !secret || value.is_empty() {
            return value.to_string();
        }
        if let Some(p) = self
            .list
            .iter()
            .find(|p| p.kind == kind && p.name == name && p.value == value)
        {
            return format!("${{{}}}", p.var);
        }
        let prefix = match kind {
            ItemKind::Header => "SONDE_",
            ItemKind::Cookie => "SONDE_COOKIE_",
            ItemKind::Query => "SONDE_QUERY_",
            ItemKind::Var => "SONDE_VAR_",
            ItemKind::Body => "SONDE_BODY_",
            ItemKind::Flag => "SONDE_FLAG_",
        };
        let base = env_name(prefix, name);
        let mut var = base.clone();
        let mut n = 2;
        while self.list.iter().any(|p| p.var == var) {
            var = format!("{base}_{n}");
            n += 1;
        }
        self.list.push(Placeholder {
            var: var.clone(),
            kind,
            name: name.to_string(),
            value: value.to_string(),
        });
        format!("${{{var}}}")
    }
}

fn header_is_secret(name: &str, value: &str) -> bool {
    redact::redact_header(name, value) != value || is_secret(ItemKind::Header, name, value)
}

fn json_secret_key(k: &str) -> bool {
    redact::is_secret_query_name(k) || redact::is_secret_header(k)
}

/// Replaces secret strings inside a JSON value by placeholders.
fn scrub_json(v: &mut serde_json::Value, key: &str, s: &mut Secrets) {
    match v {
        serde_json::Value::String(text)
            if (json_secret_key(key) && !text.is_empty()) || redact::looks_secret(text) =>
        {
            *text = s.value(ItemKind::Body, key, text, true);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| scrub_json(x, key, s)),
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                scrub_json(x, k, s);
            }
        }
        _ => {}
    }
}

/// A raw body with its secrets as placeholders: JSON text (whatever the content type says) by
/// key and value, form-like text by field, anything else token by token.
fn raw_body_text(text: &str, json: Option<serde_json::Value>, s: &mut Secrets) -> String {
    if let Some(mut v) = json.filter(|v| v.is_object() || v.is_array()) {
        let before = v.clone();
        scrub_json(&mut v, "", s);
        return if v == before {
            text.to_string()
        } else {
            v.to_string()
        };
    }
    if text.contains('=') && !text.contains(char::is_whitespace) {
        return text
            .split('&')
            .map(|seg| {
                let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
                let (dk, dv) = (redact::percent_decode(k), redact::percent_decode(v));
                if !v.is_empty() && (redact::is_secret_query_name(&dk) || redact::looks_secret(&dv))
                {
                    format!("{k}={}", s.value(ItemKind::Body, &dk, v, true))
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("&");
    }
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String, s: &mut Secrets| {
        if redact::looks_secret(token) {
            out.push_str(&s.value(ItemKind::Body, "secret", token, true));
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "-_.+/=~%".contains(c) {
            token.push(c);
        } else {
            flush(&mut token, &mut out, s);
            out.push(c);
        }
    }
    flush(&mut token, &mut out, s);
    out
}

fn step_name(path: &str) -> String {
    let seg = path
        .split('/')
        .rev()
        .find(|s| !s.is_empty() && !redact::looks_secret(s))
        .unwrap_or("request");
    let n: String = seg
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        n
    } else {
        format!("request_{n}")
    }
}

/// Writes the scenario YAML for one imported request.
pub fn to_scenario_yaml(imp: &Imported, opts: &EmitOptions) -> Emitted {
    let mut s = Secrets {
        enabled: !opts.include_sensitive,
        list: Vec::new(),
    };
    let mut notes: Vec<String> = Vec::new();
    let env = &imp.env;
    let has_body = env.body.is_some();

    // Headers: one key per name (case-insensitive); repeats join with ", ".
    let mut headers: Vec<(String, String)> = Vec::new();
    for (n, v) in &env.headers {
        if has_body && n.eq_ignore_ascii_case("content-type") {
            continue;
        }
        match headers.iter_mut().find(|(h, _)| h.eq_ignore_ascii_case(n)) {
            Some(slot) => {
                slot.1.push_str(", ");
                slot.1.push_str(v);
            }
            None => headers.push((n.clone(), v.clone())),
        }
    }
    let headers: Vec<(String, String)> = headers
        .into_iter()
        .map(|(n, v)| {
            let secret = header_is_secret(&n, &v);
            let out = s.value(ItemKind::Header, &n, &v, secret);
            (n, out)
        })
        .collect();
    let mut cookies: Vec<(String, String)> = Vec::new();
    for (n, v) in &env.cookies {
        if cookies.iter().any(|(c, _)| c == n) {
            notes.push(format!(
                "cookie `{n}` appeared twice; the first value is kept"
            ));
            continue;
        }
        let secret = is_secret(ItemKind::Cookie, n, v);
        cookies.push((n.clone(), s.value(ItemKind::Cookie, n, v, secret)));
    }
    let query: Vec<(String, String)> = env
        .query
        .iter()
        .map(|(n, v)| {
            let secret = is_secret(ItemKind::Query, n, v);
            (n.clone(), s.value(ItemKind::Query, n, v, secret))
        })
        .collect();
    let query_unique = query
        .iter()
        .enumerate()
        .all(|(i, (n, _))| !query[..i].iter().any(|(m, _)| m == n));
    let mut path: String = imp
        .path
        .split('/')
        .map(|seg| {
            if redact::looks_secret(&redact::percent_decode(seg)) {
                s.value(ItemKind::Var, "path_segment", seg, true)
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if !query_unique && !query.is_empty() {
        // Repeated names can't be a YAML mapping: keep the query in the URL.
        let enc = |x: &str| -> String {
            if x.starts_with("${") {
                x.to_string()
            } else {
                url::form_urlencoded::byte_serialize(x.as_bytes()).collect()
            }
        };
        let qs: Vec<String> = query
            .iter()
            .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
            .collect();
        path.push('?');
        path.push_str(&qs.join("&"));
    }

    // Body.
    let mut body_yaml = String::new();
    if let Some(b) = &env.body {
        let ct = b.content_type.as_deref().map(str::trim).unwrap_or("");
        let ct_l = ct.to_ascii_lowercase();
        let fields = b.form_fields();
        let unique = fields
            .iter()
            .enumerate()
            .all(|(i, (n, _))| !fields[..i].iter().any(|(m, _)| m == n));
        let json = serde_json::from_str::<serde_json::Value>(&b.text).ok();
        match (b.kind, json) {
            (BodyKind::Json, Some(mut v)) if ct_l.is_empty() || ct_l == "application/json" => {
                scrub_json(&mut v, "", &mut s);
                let _ = write!(body_yaml, "      body:\n        json: {v}\n");
            }
            (BodyKind::Form, _)
                if ct_l == "application/x-www-form-urlencoded"
                    && unique
                    && !fields.is_empty()
                    && b.text.split('&').all(|seg| seg.contains('=')) =>
            {
                body_yaml.push_str("      body:\n        form:\n");
                for (n, v) in &fields {
                    let secret = redact::is_secret_query_name(n) || redact::looks_secret(v);
                    let v = s.value(ItemKind::Body, n, v, secret);
                    let _ = writeln!(body_yaml, "          {}: {}", q(n), q(&v));
                }
            }
            (_, json) => {
                let text = raw_body_text(&b.text, json, &mut s);
                body_yaml.push_str("      body:\n");
                let _ = writeln!(body_yaml, "        raw: {}", q(&text));
                if !ct.is_empty() {
                    let _ = writeln!(body_yaml, "        content_type: {}", q(ct));
                }
            }
        }
    }

    // Assemble.
    let mut y = String::new();
    let _ = writeln!(y, "name: {}", q(&opts.name));
    let _ = writeln!(y, "target: {}", q(&imp.base));
    if let Some(ft) = imp.flag_sources.first() {
        match ft {
            FlagTransport::Header { name, separator } => {
                let _ = writeln!(
                    y,
                    "flags: {{header: {}, separator: {}}}",
                    q(name),
                    q(separator)
                );
            }
            FlagTransport::Cookie { name, separator } => {
                let _ = writeln!(
                    y,
                    "flags: {{cookie: {}, separator: {}}}",
                    q(name),
                    q(separator)
                );
            }
        }
    }
    let mut envy = String::new();
    let section = |out: &mut String, key: &str, items: &[(String, String)]| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(out, "    {key}:");
        for (n, v) in items {
            let _ = writeln!(out, "      {}: {}", q(n), q(v));
        }
    };
    section(&mut envy, "headers", &headers);
    section(&mut envy, "cookies", &cookies);
    if !env.flags.is_empty() {
        envy.push_str("    flags:\n");
        for (n, on) in &env.flags {
            let _ = writeln!(envy, "      {}: {}", q(n), on);
        }
    }
    if query_unique {
        section(&mut envy, "query", &query);
    }
    let vars: Vec<(String, String)> = env
        .vars
        .iter()
        .map(|(n, v)| {
            let secret = is_secret(ItemKind::Var, n, v);
            (n.clone(), s.value(ItemKind::Var, n, v, secret))
        })
        .collect();
    section(&mut envy, "vars", &vars);
    if !envy.is_empty() {
        y.push_str("env:\n  imported:\n");
        y.push_str(&envy);
    }
    y.push_str("steps:\n");
    let _ = writeln!(y, "  - name: {}", q(&step_name(&imp.path)));
    y.push_str("    request:\n");
    let _ = writeln!(y, "      method: {}", q(imp.method.as_str()));
    let _ = writeln!(y, "      url: {}", q(&path));
    y.push_str(&body_yaml);
    if !imp.follow_redirects {
        y.push_str("    follow_redirects: false\n");
    }

    // Last pass: no secret value may survive anywhere, in any letter case.
    if s.enabled {
        for p in &s.list {
            let placeholder = format!("${{{}}}", p.var);
            for form in [p.value.clone(), q(&p.value).trim_matches('"').to_string()] {
                if form.len() >= redact::MIN_SCRUB_LEN {
                    y = replace_ci(&y, &form, &placeholder);
                }
            }
        }
    }

    // Header comment.
    let mut head = String::new();
    let _ = writeln!(head, "# Imported by sonde from {}.", opts.source_label);
    if let Source::Curl(d) = imp.source {
        let _ = writeln!(
            head,
            "# curl dialect: {}.",
            match d {
                super::Dialect::Posix => "POSIX/bash",
                super::Dialect::Cmd => "Windows cmd",
            }
        );
    }
    if !s.list.is_empty() {
        head.push_str(
            "# Secret values were replaced by ${…} placeholders, read from the environment at\n",
        );
        head.push_str("# run time. Export these before running this scenario:\n");
        for p in &s.list {
            let _ = writeln!(head, "#   {}  ({} `{}`)", p.var, p.kind, p.name);
        }
    }
    if opts.include_sensitive {
        head.push_str(
            "# Imported with --include-sensitive: this file holds credentials as they were.\n",
        );
    }
    if imp.insecure {
        head.push_str("# The command used -k/--insecure: pass --insecure to sonde to skip TLS verification.\n");
    }
    if imp.compressed {
        head.push_str(
            "# The request asked for a compressed response (--compressed / Accept-Encoding).\n",
        );
    }
    if !imp.follow_redirects {
        head.push_str("# Redirects were not followed by the original request (no -L): follow_redirects is false.\n");
    }
    if y.contains("{{")
        || y.lines()
            .any(|l| l.contains("${") && !l.contains("${SONDE_"))
    {
        head.push_str("# Note: some values contain `{{` or `${`, which the scenario loader expands; check them.\n");
    }
    for n in notes {
        let _ = writeln!(head, "# Note: {n}.");
    }
    head.push_str(&y);
    Emitted {
        yaml: head,
        placeholders: s.list,
    }
}

/// ASCII case-insensitive replace of every occurrence of `needle`.
fn replace_ci(hay: &str, needle: &str, with: &str) -> String {
    let lh = hay.to_ascii_lowercase();
    let ln = needle.to_ascii_lowercase();
    if ln.is_empty() || !lh.contains(&ln) {
        return hay.to_string();
    }
    let mut out = String::with_capacity(hay.len());
    let mut last = 0;
    for (i, _) in lh.match_indices(&ln) {
        if i < last {
            continue;
        }
        out.push_str(hay.get(last..i).unwrap_or(""));
        out.push_str(with);
        last = i + ln.len();
    }
    out.push_str(hay.get(last..).unwrap_or(""));
    out
}

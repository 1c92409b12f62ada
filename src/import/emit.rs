//! [`Imported`] → scenario YAML (the format of `docs/scenario.md`): one step, `target` from the
//! URL origin, an `imported` env with headers, cookies, flags and query items. Writes text
//! only: no I/O here.
//!
//! The contract: the file is accepted by the scenario loader and sends the bytes the import
//! read. So every value is written as a YAML double-quoted scalar with every non-printable
//! character escaped (or as a literal block when that is exact), `${` is written `$${` and a
//! `{{` is spelled with the `sonde_lbrace` variable, so neither the loader's `${ENV}` expansion
//! nor `{{var}}` templating changes a byte; a body is written as it is (never parsed and
//! re-serialised: JSON numbers, key order and duplicate keys stay), or as `base64` when it is
//! not UTF-8; a query or a form body is written as items only when sending the items gives the
//! same bytes, else verbatim; repeated headers stay repeated; any token is a method.
//!
//! Secret values become `${SONDE_…}` placeholders where they stand: that header, that cookie,
//! that query value, that body field. Nothing is replaced by searching the whole file, so a
//! value that happens to occur elsewhere (`local` in `localhost`) is left alone there. A comment
//! at the top lists the variables to export. A shell variable of a curl command (`$TOKEN`)
//! becomes `${TOKEN}`.

use super::curl::tokenize::{VAR_CLOSE, VAR_OPEN};
use super::env::{Body as ImportedBody, BodyKind, EnvSpec, ItemKind, is_secret};
pub use super::yamltext::{DOLLAR_VAR, LBRACE_VAR, yaml_quote};
use super::yamltext::{Spell, loader_text, yaml_block};
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
    /// The value to export (the caller decides whether it may be shown): exactly the text the
    /// placeholder stands for in the file (still percent- or JSON-escaped where it stood so).
    #[must_use]
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

/// A variable reference kept through escaping: `VAR_OPEN name VAR_CLOSE` becomes `${name}`.
fn var_ref(var: &str) -> String {
    format!("{VAR_OPEN}{var}{VAR_CLOSE}")
}

struct Secrets {
    enabled: bool,
    list: Vec<Placeholder>,
    /// A secret value held `{{`: its exported form spells `{` with `sonde_lbrace`, since the
    /// loader parses templates after it substitutes `${…}`.
    lbrace: bool,
}

impl Secrets {
    /// The text to write for a value: the value itself, or a placeholder marker. Values that
    /// already hold a shell variable are not placeholders (the secret part is the variable).
    fn value(&mut self, kind: ItemKind, name: &str, value: &str, secret: bool) -> String {
        if !self.enabled || !secret || value.is_empty() || value.contains(VAR_OPEN) {
            return value.to_string();
        }
        if let Some(p) = self
            .list
            .iter()
            .find(|p| p.kind == kind && p.name == name && p.value == value)
        {
            return var_ref(&p.var);
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
        let value = if value.contains("{{") {
            self.lbrace = true;
            value.replace('{', &format!("{{{{{LBRACE_VAR}}}}}"))
        } else {
            value.to_string()
        };
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
            value,
        });
        var_ref(&var)
    }
}

fn header_is_secret(name: &str, value: &str) -> bool {
    redact::redact_header(name, value) != value || is_secret(ItemKind::Header, name, value)
}

fn field_is_secret(name: &str, value: &str) -> bool {
    !value.is_empty()
        && (redact::is_secret_query_name(name)
            || redact::is_secret_header(name)
            || redact::looks_secret(value))
}

/// `a=1&b=2` text with secret values replaced where they stand (the encoded value is what the
/// placeholder stands for).
fn scrub_pairs(text: &str, kind: ItemKind, s: &mut Secrets) -> String {
    text.split('&')
        .map(|seg| match seg.split_once('=') {
            Some((k, v))
                if field_is_secret(&redact::percent_decode(k), &redact::percent_decode(v)) =>
            {
                format!("{k}={}", s.value(kind, &redact::percent_decode(k), v, true))
            }
            _ => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A verbatim `Cookie` header with secret cookie values replaced where they stand.
fn scrub_cookie_header(text: &str, s: &mut Secrets) -> String {
    text.split(';')
        .map(|piece| match piece.split_once('=') {
            Some((n, v))
                if !v.trim().is_empty()
                    && (redact::is_secret_cookie_name(n.trim())
                        || redact::looks_secret(v.trim())) =>
            {
                format!("{n}={}", s.value(ItemKind::Cookie, n.trim(), v, true))
            }
            _ => piece.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// JSON text with secret string values replaced where they stand: a value under a secret key,
/// or one that looks like a credential. The text is scanned, never re-serialised. `None` when
/// the text is not JSON.
// Long by design: one scanner over the JSON text (strings, keys, nesting) that replaces values
// where they stand; its position and key stack would otherwise travel through every helper.
fn scrub_json_text(text: &str, s: &mut Secrets) -> Option<String> {
    #[derive(PartialEq)]
    enum Ctx {
        ObjectKey,
        ObjectValue,
        Array,
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut stack: Vec<Ctx> = Vec::new();
    let mut key = String::new();
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'{' => {
                stack.push(Ctx::ObjectKey);
                out.push('{');
                i += 1;
            }
            b'[' => {
                stack.push(Ctx::Array);
                out.push('[');
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                out.push(char::from(c));
                i += 1;
            }
            b':' => {
                if let Some(top) = stack.last_mut() {
                    *top = Ctx::ObjectValue;
                }
                out.push(':');
                i += 1;
            }
            b',' => {
                if let Some(top) = stack.last_mut()
                    && *top == Ctx::ObjectValue
                {
                    *top = Ctx::ObjectKey;
                }
                out.push(',');
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let inner = text.get(start..j.min(b.len())).unwrap_or("");
                let decoded: String =
                    serde_json::from_str(text.get(i..(j + 1).min(b.len())).unwrap_or("\"\""))
                        .unwrap_or_default();
                if let Some(Ctx::ObjectKey) = stack.last() {
                    key = decoded;
                    out.push('"');
                    out.push_str(inner);
                    out.push('"');
                } else {
                    let secret = field_is_secret(&key, &decoded);
                    out.push('"');
                    out.push_str(&s.value(ItemKind::Body, &key, inner, secret));
                    out.push('"');
                }
                i = j + 1;
            }
            _ => {
                // Numbers, literals and whitespace, copied as they are (UTF-8 safe: only
                // ASCII bytes start the arms above).
                let next = text[i..]
                    .find(['{', '[', '}', ']', ':', ',', '"'])
                    .map_or(text.len(), |k| i + k);
                out.push_str(&text[i..next]);
                i = next;
            }
        }
    }
    Some(out)
}

/// A text body with its secrets as placeholders, where they stand: JSON by key and value,
/// form-like text by field, anything else token by token.
fn scrub_body_text(text: &str, s: &mut Secrets) -> String {
    if let Some(j) = scrub_json_text(text, s) {
        return j;
    }
    if text.contains('=') && !text.contains(char::is_whitespace) {
        return scrub_pairs(text, ItemKind::Body, s);
    }
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String, s: &mut Secrets| {
        let secret = redact::looks_secret(token);
        out.push_str(&s.value(ItemKind::Body, "secret", token, secret));
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
    let n = if n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        n
    } else {
        format!("request_{n}")
    };
    // The scenario loader reserves these for their own metrics (scenario::steps).
    if matches!(n.as_str(), "http" | "iterations") {
        format!("request_{n}")
    } else {
        n
    }
}

/// Names of the shell variables (markers) in `s`.
fn shell_vars(s: &str, out: &mut Vec<String>) {
    let mut rest = s;
    while let Some(i) = rest.find(VAR_OPEN) {
        let after = &rest[i + VAR_OPEN.len_utf8()..];
        let end = after.find(VAR_CLOSE).unwrap_or(after.len());
        let name = after[..end].to_string();
        if !out.contains(&name) {
            out.push(name);
        }
        rest = after.get(end + VAR_CLOSE.len_utf8()..).unwrap_or("");
    }
}

/// Writes the scenario YAML for one imported request: its items scrubbed of secrets (in the
/// order headers, cookies, query, path, body, vars, which numbers the placeholders), then the
/// YAML assembled under a header comment that says what was done.
pub fn to_scenario_yaml(imp: &Imported, opts: &EmitOptions) -> Emitted {
    // Flags the scenario would send differently (two transports, another order, spaces) stay
    // the header or cookie they were.
    let sent = imp.as_sent();
    let imp: &Imported = &sent;
    let mut s = Secrets {
        enabled: !opts.include_sensitive,
        list: Vec::new(),
        lbrace: false,
    };
    let mut spell = Spell::default();
    let mut notes: Vec<String> = Vec::new();
    let env = &imp.env;
    let mut vars_used: Vec<String> = Vec::new();
    for it in env.items() {
        shell_vars(&it.value, &mut vars_used);
    }

    let mut headers = scrub_headers(env, &mut s);
    let cookies = scrub_cookies(env, &mut s, &mut headers, &mut notes);
    let (query, path) = scrub_query_and_path(imp, &mut s);
    let body = env.body.as_ref().map_or_else(String::new, |b| {
        body_yaml(b, env, &mut s, &mut spell, &mut notes)
    });

    let mut y = top_yaml(imp, opts, &mut spell);
    let mut envy = env_items_yaml(&headers, &cookies, &env.flags, &query, &mut spell);
    let vars: Vec<(String, String)> = env
        .vars
        .iter()
        .map(|(n, v)| {
            let secret = is_secret(ItemKind::Var, n, v);
            (n.clone(), s.value(ItemKind::Var, n, v, secret))
        })
        .collect();
    let steps = steps_yaml(imp, &path, &body, &mut spell);
    if s.lbrace {
        notes.push(format!(
            "a secret value holds `{{{{`: export it with each `{{` written {{{{{LBRACE_VAR}}}}} (the loader reads templates after it substitutes ${{…}})"
        ));
    }
    spell.lbrace |= s.lbrace;
    vars_yaml(&mut envy, vars, &spell);
    if !envy.is_empty() {
        y.push_str("env:\n  imported:\n");
        y.push_str(&envy);
    }
    y.push_str(&steps);

    let mut head = header_comment(imp, opts, &s.list, &vars_used, &spell, &notes);
    head.push_str(&y);
    Emitted {
        yaml: head,
        placeholders: s.list,
    }
}

/// Headers, in order; a repeated name (in any letter case: `authorization` and
/// `AUTHORIZATION` are one field) becomes a list, every value sent, in order.
fn scrub_headers(env: &EnvSpec, s: &mut Secrets) -> Vec<(String, Vec<String>)> {
    let mut headers: Vec<(String, Vec<String>)> = Vec::new();
    for (n, v) in &env.headers {
        let out = if n.eq_ignore_ascii_case("cookie") {
            if s.enabled {
                scrub_cookie_header(v, s)
            } else {
                v.clone()
            }
        } else {
            let secret = header_is_secret(n, v);
            s.value(ItemKind::Header, n, v, secret)
        };
        match headers.iter_mut().find(|(h, _)| h.eq_ignore_ascii_case(n)) {
            Some(slot) => slot.1.push(out),
            None => headers.push((n.clone(), vec![out])),
        }
    }
    headers
}

/// Cookies: a mapping when every name is distinct, else one verbatim Cookie header (added to
/// `headers`, with a note).
fn scrub_cookies(
    env: &EnvSpec,
    s: &mut Secrets,
    headers: &mut Vec<(String, Vec<String>)>,
    notes: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut cookies: Vec<(String, String)> = Vec::new();
    if all_distinct(&env.cookies) {
        for (n, v) in &env.cookies {
            let secret = is_secret(ItemKind::Cookie, n, v);
            cookies.push((n.clone(), s.value(ItemKind::Cookie, n, v, secret)));
        }
    } else {
        let joined = env
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let v = if s.enabled {
            scrub_cookie_header(&joined, s)
        } else {
            joined
        };
        notes.push("a cookie name repeats, so the cookies are one verbatim `Cookie` header".into());
        headers.push(("Cookie".into(), vec![v]));
    }
    cookies
}

/// True when no name repeats.
fn all_distinct(items: &[(String, String)]) -> bool {
    items
        .iter()
        .enumerate()
        .all(|(i, (n, _))| !items[..i].iter().any(|(m, _)| m == n))
}

/// Query items when they give the same bytes (else none, and the query stays verbatim in the
/// URL), and the URL path with secret-looking segments replaced.
fn scrub_query_and_path(imp: &Imported, s: &mut Secrets) -> (Vec<(String, String)>, String) {
    let env = &imp.env;
    let items_exact = imp.query_items_exact() && all_distinct(&env.query);
    let query: Vec<(String, String)> = if items_exact {
        env.query
            .iter()
            .map(|(n, v)| {
                let secret = is_secret(ItemKind::Query, n, v);
                (n.clone(), s.value(ItemKind::Query, n, v, secret))
            })
            .collect()
    } else {
        Vec::new()
    };
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
    if !items_exact && let Some(q) = &imp.raw_query {
        path.push('?');
        path.push_str(&scrub_pairs(q, ItemKind::Query, s));
    }
    (query, path)
}

/// The request's `body:` block: base64 for bytes, `form:` when the fields give the same bytes,
/// else `raw:`; with `content_type:` when no header says it.
fn body_yaml(
    b: &ImportedBody,
    env: &EnvSpec,
    s: &mut Secrets,
    spell: &mut Spell,
    notes: &mut Vec<String>,
) -> String {
    let mut body_yaml = String::from("      body:\n");
    let fields = b.form_fields();
    let ct = b.content_type.as_deref().map_or("", str::trim);
    let unique = fields
        .iter()
        .enumerate()
        .all(|(i, (n, _))| !n.is_empty() && !fields[..i].iter().any(|(m, _)| m == n));
    let form_exact = b.binary.is_none()
        && b.kind == BodyKind::Form
        && ct.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        && !fields.is_empty()
        && unique
        && super::encode_query(&fields) == b.text
        && !b.text.contains(VAR_OPEN);
    if let Some(bytes) = &b.binary {
        use base64::Engine as _;
        let _ = writeln!(
            body_yaml,
            "        base64: {}",
            yaml_quote(&base64::engine::general_purpose::STANDARD.encode(bytes))
        );
        notes.push(
            "the body is not UTF-8 text, so it is written as base64 (exact bytes); it was not scanned for secrets"
                .into(),
        );
    } else if form_exact {
        body_yaml.push_str("        form:\n");
        for (n, v) in &fields {
            let secret = field_is_secret(n, v);
            let v = s.value(ItemKind::Body, n, v, secret);
            let _ = writeln!(
                body_yaml,
                "          {}: {}",
                // Names are read as they are: no `${}` expansion, no templates.
                yaml_quote(n),
                yaml_quote(&loader_text(&v, spell))
            );
        }
    } else {
        let text = if s.enabled {
            scrub_body_text(&b.text, s)
        } else {
            b.text.clone()
        };
        let text = loader_text(&text, spell);
        let v = yaml_block(&text, "          ").unwrap_or_else(|| yaml_quote(&text));
        let _ = writeln!(body_yaml, "        raw: {v}");
    }
    let has_ct_header = env
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !has_ct_header && !ct.is_empty() && !form_exact {
        let _ = writeln!(
            body_yaml,
            "        content_type: {}",
            yaml_quote(&loader_text(ct, spell))
        );
    }
    body_yaml
}

/// `name:`, `target:` and, when the request carried flags, `flags:`.
fn top_yaml(imp: &Imported, opts: &EmitOptions, spell: &mut Spell) -> String {
    let mut y = String::new();
    let _ = writeln!(y, "name: {}", yaml_quote(&opts.name));
    let _ = writeln!(y, "target: {}", yaml_quote(&loader_text(&imp.base, spell)));
    if let Some(ft) = imp.flag_sources.first() {
        let (key, name, separator) = match ft {
            FlagTransport::Header { name, separator } => ("header", name, separator),
            FlagTransport::Cookie { name, separator } => ("cookie", name, separator),
        };
        let _ = writeln!(
            y,
            "flags: {{{key}: {}, separator: {}}}",
            yaml_quote(name),
            yaml_quote(separator)
        );
    }
    y
}

/// The imported env's headers, cookies, flags and query (its vars follow, see `vars_yaml`).
fn env_items_yaml(
    headers: &[(String, Vec<String>)],
    cookies: &[(String, String)],
    flags: &[(String, bool)],
    query: &[(String, String)],
    spell: &mut Spell,
) -> String {
    let mut envy = String::new();
    if !headers.is_empty() {
        envy.push_str("    headers:\n");
        for (n, vs) in headers {
            let vs: Vec<String> = vs
                .iter()
                .map(|v| yaml_quote(&loader_text(v, spell)))
                .collect();
            if vs.len() == 1 {
                let _ = writeln!(envy, "      {}: {}", yaml_quote(n), vs[0]);
            } else {
                let _ = writeln!(envy, "      {}: [{}]", yaml_quote(n), vs.join(", "));
            }
        }
    }
    let mut section = |out: &mut String, key: &str, items: &[(String, String)]| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(out, "    {key}:");
        for (n, v) in items {
            let _ = writeln!(
                out,
                "      {}: {}",
                yaml_quote(n),
                yaml_quote(&loader_text(v, spell))
            );
        }
    };
    section(&mut envy, "cookies", cookies);
    if !flags.is_empty() {
        envy.push_str("    flags:\n");
        for (n, on) in flags {
            let _ = writeln!(envy, "      {}: {}", yaml_quote(n), on);
        }
    }
    section(&mut envy, "query", query);
    envy
}

/// The env's `vars:`, with the spelling helpers `spell` needed: their values, one `{` and one
/// `$`, are written literally, not templates themselves.
fn vars_yaml(envy: &mut String, mut vars: Vec<(String, String)>, spell: &Spell) {
    if spell.lbrace {
        vars.push((LBRACE_VAR.to_string(), "{".to_string()));
    }
    if spell.dollar {
        vars.push((DOLLAR_VAR.to_string(), "$".to_string()));
    }
    if vars.is_empty() {
        return;
    }
    let _ = writeln!(envy, "    vars:");
    for (n, v) in &vars {
        let v = if n == LBRACE_VAR || n == DOLLAR_VAR {
            v.clone()
        } else {
            let mut unused = Spell::default();
            loader_text(v, &mut unused)
        };
        let _ = writeln!(envy, "      {}: {}", yaml_quote(n), yaml_quote(&v));
    }
}

/// `steps:` with the one request.
fn steps_yaml(imp: &Imported, path: &str, body: &str, spell: &mut Spell) -> String {
    let url_text = loader_text(path, spell);
    let step = step_name(&imp.path);
    let mut steps = String::from("steps:\n");
    let _ = writeln!(steps, "  - name: {}", yaml_quote(&step));
    steps.push_str("    request:\n");
    let _ = writeln!(steps, "      method: {}", yaml_quote(imp.method.as_str()));
    let _ = writeln!(steps, "      url: {}", yaml_quote(&url_text));
    steps.push_str(body);
    if !imp.follow_redirects {
        steps.push_str("    follow_redirects: false\n");
    }
    steps
}

/// The comment the file opens with: where it came from, the placeholders to export, shell
/// variables, options of the command sonde does not copy, and the notes.
fn header_comment(
    imp: &Imported,
    opts: &EmitOptions,
    placeholders: &[Placeholder],
    vars_used: &[String],
    spell: &Spell,
    notes: &[String],
) -> String {
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
    if !placeholders.is_empty() {
        head.push_str(
            "# Secret values were replaced by ${…} placeholders, read from the environment at\n",
        );
        head.push_str("# run time. Export these before running this scenario:\n");
        for p in placeholders {
            let _ = writeln!(head, "#   {}  ({} `{}`)", p.var, p.kind, p.name);
        }
    }
    if !vars_used.is_empty() {
        let _ = writeln!(
            head,
            "# The command used shell variables, read from the environment at run time: {}.",
            vars_used
                .iter()
                .map(|v| format!("${v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
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
    if spell.lbrace {
        let _ = writeln!(
            head,
            "# Values holding `{{{{` spell `{{` as {{{{{LBRACE_VAR}}}}} so it is not read as a template."
        );
    }
    for n in notes {
        let _ = writeln!(head, "# Note: {n}.");
    }
    head
}

//! A step's `expect:` (status, headers, JSON paths, body, duration) and `capture:` (JSON path,
//! header, cookie, regex), compiled once (regexes, JSON paths) with positioned errors.

use super::error::{Diag, Pos, did_you_mean};
use super::reader::{R, Reader, Use};
use super::steps::json_value;
use super::vars::BUILTINS;
use super::yaml::{Node, Value};
use crate::plan::{Capture, CaptureSource, Expectation, JsonCheck, NumCheck, NumOp, ValueCheck};
use std::time::Duration;

const EXPECT_KEYS: [&str; 5] = ["status", "headers", "json", "body_contains", "max_duration"];
/// Matchers of a header check (`Content-Length: { gt: 0 }`).
const HEADER_MATCHERS: [&str; 7] = ["equals", "matches", "exists", "gt", "ge", "lt", "le"];
/// Matchers of a JSON check (`"$.items": { count: 3 }`), as hurl's predicates.
const JSON_MATCHERS: [&str; 9] = [
    "equals", "matches", "exists", "gt", "ge", "lt", "le", "count", "length",
];
const CAPTURE_KEYS: [&str; 5] = ["json", "header", "cookie", "regex", "default"];

// Long by design: one arm per expectation kind, each with its own positioned errors.
pub fn read_expect(r: &Reader<'_>, n: &Node, uses: &mut Vec<Use>) -> R<Vec<Expectation>> {
    let m = r.map(n, "`expect`")?;
    m.allow(&EXPECT_KEYS, "expect")?;
    let mut out = Vec::new();
    if let Some(s) = m.get("status") {
        let codes = match &s.value {
            Value::Seq(items) => items
                .iter()
                .map(|i| status(r, i))
                .collect::<R<Vec<u16>>>()?,
            _ => vec![status(r, s)?],
        };
        if codes.is_empty() {
            return Err(Diag::new(s.pos, "`status` needs at least one code"));
        }
        out.push(Expectation::Status(codes));
    }
    if let Some(h) = m.get("headers") {
        let hm = r.map(h, "`headers`")?;
        for (name, kn, v) in &hm.entries {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(Diag::new(kn.pos, format!("invalid header name `{name}`")));
            }
            let checks = match &v.value {
                Value::Map(_) => {
                    let cm = r.map(v, "a header check")?;
                    cm.allow(&HEADER_MATCHERS, "a header check")?;
                    if cm.entries.is_empty() {
                        return Err(Diag::new(v.pos, "a header check needs a matcher")
                            .help(format!("matchers: {}", HEADER_MATCHERS.join(", "))));
                    }
                    let mut checks = Vec::with_capacity(cm.entries.len());
                    for (key, kn, val) in &cm.entries {
                        checks.push(match key.as_str() {
                            "equals" => ValueCheck::Equals(r.template(val, "`equals`", uses)?),
                            "matches" => ValueCheck::Matches(regex(r, val)?),
                            "exists" => {
                                exists_true(r, val, kn.pos)?;
                                ValueCheck::Exists
                            }
                            op => ValueCheck::Number(num_check(r, op, val)?),
                        });
                    }
                    checks
                }
                _ => vec![ValueCheck::Equals(r.template(v, "a header value", uses)?)],
            };
            for check in checks {
                out.push(Expectation::Header {
                    name: name.clone(),
                    check,
                });
            }
        }
    }
    if let Some(j) = m.get("json") {
        let jm = r.map(j, "`json`")?;
        for (path_src, kn, v) in &jm.entries {
            let path = json_path(path_src, kn.pos)?;
            for check in json_checks(r, v)? {
                out.push(Expectation::Json {
                    path_src: path_src.clone(),
                    path: path.clone(),
                    check,
                });
            }
        }
    }
    if let Some(b) = m.get("body_contains") {
        out.push(Expectation::BodyContains(r.template(
            b,
            "`body_contains`",
            uses,
        )?));
    }
    if let Some(d) = m.get("max_duration") {
        let max = r.positive_duration(d, "`max_duration`", Duration::from_secs(3600))?;
        out.push(Expectation::MaxDuration(max));
    }
    Ok(out)
}

fn status(r: &Reader<'_>, n: &Node) -> R<u16> {
    let code = r.int(n, "a status code", 100, 599)?;
    u16::try_from(code).map_err(|_| Diag::new(n.pos, "invalid status code"))
}

/// The checks of one `json:` entry: a matcher map (`{ gt: 0 }`, `{ count: 3, matches: ... }`,
/// every key a matcher, all must hold) or a value compared as written. A single-key map whose
/// key is a near miss of a matcher (`{ exist: true }`) is an error, not a silent literal.
fn json_checks(r: &Reader<'_>, v: &Node) -> R<Vec<JsonCheck>> {
    let Value::Map(entries) = &v.value else {
        return Ok(vec![JsonCheck::Equals(literal_json(r, v)?)]);
    };
    let keys: Vec<String> = entries
        .iter()
        .filter_map(|(k, _)| r.key_text(k).ok())
        .collect();
    let is_matcher = keys.iter().any(|k| JSON_MATCHERS.contains(&k.as_str()));
    if !is_matcher {
        if let [only] = keys.as_slice()
            && let Some(help) = did_you_mean(only, JSON_MATCHERS.iter().copied())
        {
            let pos = entries.first().map_or(v.pos, |(k, _)| k.pos);
            return Err(
                Diag::new(pos, format!("unknown matcher `{only}`")).help(format!(
                    "{help} (to compare with an object that has this key, write it under `equals:`)"
                )),
            );
        }
        return Ok(vec![JsonCheck::Equals(literal_json(r, v)?)]);
    }
    let m = r.map(v, "a JSON check")?;
    m.allow(&JSON_MATCHERS, "a JSON check")?;
    let mut out = Vec::with_capacity(m.entries.len());
    for (key, kn, val) in &m.entries {
        out.push(match key.as_str() {
            "equals" => JsonCheck::Equals(literal_json(r, val)?),
            "matches" => JsonCheck::Matches(regex(r, val)?),
            "exists" => {
                exists_true(r, val, kn.pos)?;
                JsonCheck::Exists
            }
            "count" => JsonCheck::Count(count_check(r, val, "`count`")?),
            "length" => JsonCheck::Length(count_check(r, val, "`length`")?),
            op => JsonCheck::Number(num_check(r, op, val)?),
        });
    }
    Ok(out)
}

/// `gt: 0`, `le: 9.5`: a number (YAML int or float).
fn num_check(r: &Reader<'_>, op: &str, n: &Node) -> R<NumCheck> {
    let op = match op {
        "gt" => NumOp::Gt,
        "ge" => NumOp::Ge,
        "lt" => NumOp::Lt,
        "le" => NumOp::Le,
        _ => NumOp::Eq,
    };
    Ok(NumCheck {
        op,
        value: number(r, n, &format!("`{}`", op_key(op)))?,
    })
}

fn op_key(op: NumOp) -> &'static str {
    match op {
        NumOp::Eq => "equals",
        NumOp::Gt => "gt",
        NumOp::Ge => "ge",
        NumOp::Lt => "lt",
        NumOp::Le => "le",
    }
}

fn number(r: &Reader<'_>, n: &Node, what: &str) -> R<f64> {
    match &n.value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) if f.is_finite() => Ok(*f),
        Value::Str(_) => {
            let s = r.string(n, what)?;
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| Diag::new(n.pos, format!("{what} needs a number, not `{s}`")))
        }
        _ => Err(Diag::new(n.pos, format!("{what} needs a number"))),
    }
}

/// `count: 3` or `count: { ge: 1 }` (one of `equals`, `gt`, `ge`, `lt`, `le`).
fn count_check(r: &Reader<'_>, n: &Node, what: &str) -> R<NumCheck> {
    if let Value::Map(_) = n.value {
        let m = r.map(n, what)?;
        let ops = ["equals", "gt", "ge", "lt", "le"];
        m.allow(&ops, what)?;
        return match m.entries.as_slice() {
            [(k, _, v)] => num_check(r, k, v),
            _ => Err(Diag::new(
                n.pos,
                format!("{what} takes a number or one of `{{equals|gt|ge|lt|le: N}}`"),
            )),
        };
    }
    Ok(NumCheck {
        op: NumOp::Eq,
        value: r.int(n, what, 0, 1 << 53)? as f64,
    })
}

fn exists_true(r: &Reader<'_>, n: &Node, key_pos: Pos) -> R<()> {
    if let Value::Null = n.value {
        return Err(Diag::new(key_pos, "`exists` needs `true`"));
    }
    if r.bool(n, "`exists`")? {
        Ok(())
    } else {
        Err(Diag::new(n.pos, "`exists: false` is not supported")
            .help("expect the absence with `matches` on another field, or leave the check out"))
    }
}

/// An expected JSON value; compared as written, so templates are refused.
fn literal_json(r: &Reader<'_>, n: &Node) -> R<serde_json::Value> {
    let v = json_value(r, n, None)?;
    let mut found = Vec::new();
    crate::plan::template::json_vars(&v, &mut found);
    if let Some(name) = found.first() {
        return Err(Diag::new(
            r.var_pos(n.pos, name),
            "`{{...}}` is not expanded in `expect.json` values",
        )
        .help("JSON expectations compare the value as written"));
    }
    Ok(v)
}

fn regex(r: &Reader<'_>, n: &Node) -> R<regex::Regex> {
    let s = r.string(n, "a regular expression")?;
    regex::RegexBuilder::new(&s)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            Diag::new(
                n.pos,
                format!("invalid regular expression: {}", one_line(&e)),
            )
        })
}

fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or("invalid"))
        .to_string()
}

fn json_path(src: &str, pos: Pos) -> R<serde_json_path::JsonPath> {
    if !src.starts_with('$') {
        return Err(Diag::new(pos, format!("`{src}` is not a JSON path"))
            .help(format!("JSON paths start with `$`, e.g. `$.{src}`")));
    }
    serde_json_path::JsonPath::parse(src).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid").to_string();
        Diag::new(pos, format!("invalid JSON path `{src}`: {first}"))
            .help("JSON paths look like `$.items[0].id` or `$[?@.name == 'whale'].token`")
    })
}

/// Checks a variable name that is referred to (not defined), as in `if: { set: NAME }`.
pub fn var_ref(name: &str, pos: Pos) -> R<()> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(Diag::new(pos, format!("invalid variable name `{name}`"))
            .help("write the name alone (`startup_id`), without `{{ }}`"))
    }
}

/// Checks a variable name defined by a capture, an env var or a data column.
pub fn var_name(name: &str, pos: Pos, what: &str) -> R<()> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !valid {
        return Err(Diag::new(pos, format!("invalid {what} name `{name}`"))
            .help("variable names use letters, digits, `_`, `-` and `.`"));
    }
    if BUILTINS.contains(&name) {
        return Err(
            Diag::new(pos, format!("`{name}` is a built-in variable")).help("pick another name")
        );
    }
    Ok(())
}

/// Reads `capture:`; returns the plan captures and each variable with its position.
/// Plan captures, and each variable with the position of its key.
pub type Captures = (Vec<Capture>, Vec<(String, Pos)>);

// Long by design: one arm per capture source, each with its own positioned errors.
pub fn read_captures(r: &Reader<'_>, n: &Node) -> R<Captures> {
    let m = r.map(n, "`capture`")?;
    let mut out = Vec::with_capacity(m.entries.len());
    let mut names = Vec::with_capacity(m.entries.len());
    for (var, kn, v) in &m.entries {
        var_name(var, kn.pos, "capture")?;
        let mut default = None;
        let source = if let Value::Map(_) = &v.value {
            let cm = r.map(v, "a capture")?;
            cm.allow(&CAPTURE_KEYS, "a capture")?;
            // `default: null` is a value here (null), not "not given".
            let sources: Vec<_> = cm
                .entries
                .iter()
                .filter(|(k, kn, dv)| {
                    if k == "default" {
                        default = Some((kn.pos, *dv));
                        false
                    } else {
                        true
                    }
                })
                .collect();
            match sources.as_slice() {
                [(k, _, val)] => match k.as_str() {
                    "json" => {
                        let s = r.string(val, "a JSON path")?;
                        CaptureSource::Json {
                            path: json_path(&s, val.pos)?,
                            path_src: s,
                        }
                    }
                    "header" => {
                        let h = r.string(val, "a header name")?;
                        if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                            return Err(Diag::new(val.pos, format!("invalid header name `{h}`")));
                        }
                        CaptureSource::Header(h)
                    }
                    "cookie" => CaptureSource::Cookie(r.string(val, "a cookie name")?),
                    _ => CaptureSource::Regex(regex(r, val)?),
                },
                _ => {
                    return Err(Diag::new(
                        v.pos,
                        "a capture takes one of `json`, `header`, `cookie` or `regex`",
                    )
                    .help("and optionally `default:`, its value when nothing matches"));
                }
            }
        } else {
            let s = r.string(v, "a capture")?;
            if !s.starts_with('$') {
                return Err(Diag::new(v.pos, format!("`{s}` is not a JSON path"))
                    .help("a capture is a JSON path (`$.id`) or `{header: Name}`, `{cookie: name}`, `{regex: ...}`"));
            }
            CaptureSource::Json {
                path: json_path(&s, v.pos)?,
                path_src: s,
            }
        };
        let default = match default {
            Some((_, dn)) if matches!(dn.value, Value::Null) => Some(serde_json::Value::Null),
            Some((_, dn)) => Some(literal_json(r, dn)?),
            None => None,
        };
        out.push(Capture {
            var: var.clone(),
            source,
            default,
        });
        names.push((var.clone(), kn.pos));
    }
    Ok((out, names))
}

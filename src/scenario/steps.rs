//! `setup:` and `steps:`: request steps, `parallel:` groups and `think:` pauses, read into
//! `plan::StepNode`s, with what validation needs next (names, variable uses, captures, groups,
//! all with positions). Expectations and captures live in `checks`; no cross-step checks here.

use super::checks::{read_captures, read_expect};
use super::error::{Diag, Pos, did_you_mean};
use super::reader::{Map, R, Reader, Use};
use super::yaml::{Node, Value};
use crate::plan::{BodySpec, Condition, Poll, Step, StepNode, Template, Test};
use std::time::Duration;

const STEP_KEYS: [&str; 9] = [
    "name",
    "if",
    "request",
    "expect",
    "capture",
    "timeout",
    "follow_redirects",
    "poll",
    "stream",
];
const NODE_KEYS: [&str; 11] = [
    "name",
    "if",
    "request",
    "expect",
    "capture",
    "timeout",
    "follow_redirects",
    "poll",
    "stream",
    "parallel",
    "think",
];
const REQUEST_KEYS: [&str; 6] = ["method", "url", "headers", "query", "cookies", "body"];
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const ONE_HOUR: Duration = Duration::from_secs(3600);

/// Names no step may take: they are metric names of their own.
pub const RESERVED_STEP_NAMES: [&str; 2] = ["http", "iterations"];

/// What validation needs to know about one request step (in `plan::flatten` order).
#[derive(Debug, Clone)]
pub struct StepInfo {
    pub name: String,
    pub name_pos: Pos,
    pub uses: Vec<Use>,
    pub captures: Vec<(String, Pos)>,
    /// Index of the `parallel:` group the step belongs to, if any.
    pub group: Option<usize>,
    pub since: Option<(String, Pos)>,
    /// `if: { passed: STEP }` / `{ failed: STEP }`: the step named, to check it runs earlier.
    pub after: Option<(String, Pos)>,
    pub setup: bool,
}

/// Reads a `steps:` or `setup:` list. `groups` numbers parallel groups across both lists.
pub fn read_list(
    r: &Reader<'_>,
    n: &Node,
    what: &str,
    setup: bool,
    groups: &mut usize,
    infos: &mut Vec<StepInfo>,
) -> R<Vec<StepNode>> {
    let items = r.seq(n, &format!("`{what}`"))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let m = r.map(item, "a step")?;
        m.allow(&NODE_KEYS, "a step")?;
        if let Some(p) = m.get("parallel") {
            only_key(&m, "parallel")?;
            let list = r.seq(p, "`parallel`")?;
            if list.is_empty() {
                return Err(Diag::new(
                    p.pos,
                    "a `parallel` group needs at least one step",
                ));
            }
            let group = *groups;
            *groups += 1;
            let mut steps = Vec::with_capacity(list.len());
            for s in list {
                let sm = r.map(s, "a step")?;
                if let Some(k) = ["parallel", "think"].iter().find(|k| sm.has(k)) {
                    let pos = sm.key_pos(k).unwrap_or(s.pos);
                    return Err(Diag::new(pos, format!("`{k}` inside a `parallel` group"))
                        .help("a `parallel` group holds request steps only"));
                }
                let (step, info) = read_step(r, s, &sm, Some(group), setup)?;
                infos.push(info);
                steps.push(step);
            }
            out.push(StepNode::Parallel(steps));
        } else if let Some(t) = m.get("think") {
            only_key(&m, "think")?;
            let (min, max) = think(r, t)?;
            out.push(StepNode::Think { min, max });
        } else {
            let (step, info) = read_step(r, item, &m, None, setup)?;
            infos.push(info);
            out.push(StepNode::Request(Box::new(step)));
        }
    }
    Ok(out)
}

fn only_key(m: &Map<'_>, key: &str) -> R<()> {
    match m.entries.iter().find(|(k, _, _)| k != key) {
        Some((k, kn, _)) => Err(
            Diag::new(kn.pos, format!("unexpected key `{k}` next to `{key}`"))
                .help(format!("a `{key}` entry takes no other keys")),
        ),
        None => Ok(()),
    }
}

/// `think: 1s` or `think: 500ms..2s`.
fn think(r: &Reader<'_>, n: &Node) -> R<(Duration, Duration)> {
    let s = r.string(n, "`think`")?;
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a, b),
        None => (s.as_str(), s.as_str()),
    };
    let parse = |t: &str| {
        crate::units::parse_duration(t).map_err(|e| {
            Diag::new(n.pos, format!("invalid `think`: {e}"))
                .help("write a pause like `1s` or a range like `500ms..2s`")
        })
    };
    let (min, max) = (parse(a)?, parse(b)?);
    if min > max {
        return Err(
            Diag::new(n.pos, "`think` range runs backwards").help(format!(
                "write it as `{}..{}`",
                b.trim(),
                a.trim()
            )),
        );
    }
    if max > ONE_HOUR {
        return Err(Diag::new(n.pos, "`think` must be at most 1h"));
    }
    Ok((min, max))
}

fn valid_step_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

// Long by design: the keys of a request step read in the order errors should be reported,
// each with its own positioned error; the helpers it calls hold the parts with logic.
fn read_step(
    r: &Reader<'_>,
    node: &Node,
    m: &Map<'_>,
    group: Option<usize>,
    setup: bool,
) -> R<(Step, StepInfo)> {
    m.allow(&STEP_KEYS, "a request step")?;
    let Some(name_node) = m.get("name") else {
        let first_key = m.entries.first().map_or(node.pos, |(_, k, _)| k.pos);
        let d = Diag::new(first_key, "every request step needs a name");
        return Err(d.help("add `name: ...`; metrics and thresholds use it"));
    };
    let name = r.string(name_node, "the step name")?;
    if !valid_step_name(&name) {
        return Err(
            Diag::new(name_node.pos, format!("invalid step name `{name}`"))
                .help("step names use letters, digits, `_` and `-`"),
        );
    }
    if RESERVED_STEP_NAMES.contains(&name.as_str()) {
        return Err(Diag::new(
            name_node.pos,
            format!("`{name}` is reserved for its own metric"),
        )
        .help("pick another step name"));
    }
    let Some(req_node) = m.get("request") else {
        let pos = m.key_pos("name").unwrap_or(node.pos);
        return Err(Diag::new(pos, format!("step `{name}` has no `request`"))
            .help("add `request: { url: /path }`"));
    };
    let mut uses = Vec::new();
    let req = r.map(req_node, "`request`")?;
    req.allow(&REQUEST_KEYS, "request")?;
    let method = match req.get("method") {
        Some(n) => method(r, n)?,
        None => http::Method::GET,
    };
    let Some(url_node) = req.get("url") else {
        return Err(
            Diag::new(req_node.pos, format!("step `{name}` has no `url`"))
                .help("add `url: /path` (relative to the target) or an absolute URL"),
        );
    };
    let url = r.template(url_node, "`url`", &mut uses)?;
    let src = url.source();
    if !(src.starts_with('/')
        || src.starts_with("http://")
        || src.starts_with("https://")
        || src.starts_with("{{"))
    {
        return Err(Diag::new(url_node.pos, format!("invalid url `{src}`"))
            .help("a url starts with `/` (relative to the target) or `http(s)://`"));
    }
    let query = pairs(r, req.get("query"), "`query`", &mut uses, false)?;
    let headers = pairs(r, req.get("headers"), "`headers`", &mut uses, true)?;
    let cookies = pairs(r, req.get("cookies"), "`cookies`", &mut uses, false)?;
    let body = req.get("body").map(|b| body(r, b, &mut uses)).transpose()?;
    let expect = match m.get("expect") {
        Some(e) => read_expect(r, e, &mut uses)?,
        None => Vec::new(),
    };
    let (capture, captures) = match m.get("capture") {
        Some(c) => read_captures(r, c)?,
        None => (Vec::new(), Vec::new()),
    };
    let timeout = m
        .get("timeout")
        .map(|t| r.positive_duration(t, "`timeout`", ONE_HOUR))
        .transpose()?;
    let follow_redirects = m
        .get("follow_redirects")
        .map(|f| r.bool(f, "`follow_redirects`"))
        .transpose()?
        .unwrap_or(true);
    let (poll, since) = match m.get("poll") {
        Some(p) => {
            if m.get("expect").is_none() {
                let pos = m.key_pos("poll").unwrap_or(p.pos);
                return Err(
                    Diag::new(pos, format!("poll step `{name}` has no `expect`"))
                        .help("polling repeats the request until its expectations pass"),
                );
            }
            let (poll, since) = poll(r, p)?;
            (Some(poll), since)
        }
        None => (None, None),
    };
    let (stream, since) = match m.get("stream") {
        Some(n) => {
            let (spec, stream_since) = super::stream::read_stream(r, n, m, &name)?;
            (Some(Box::new(spec)), stream_since)
        }
        None => (None, since),
    };
    let (condition, after) = match m.get("if") {
        Some(c) => condition(r, c, &mut uses)?,
        None => (None, None),
    };
    let step = Step {
        name: name.clone(),
        method,
        url,
        query,
        headers,
        cookies,
        body,
        expect,
        capture,
        timeout,
        follow_redirects,
        poll,
        stream,
        condition,
        line: node.pos.line,
    };
    let info = StepInfo {
        name,
        name_pos: name_node.pos,
        uses,
        captures,
        group,
        since,
        after,
        setup,
    };
    Ok((step, info))
}

const IF_KEYS: [&str; 6] = ["set", "empty", "var", "equals", "passed", "failed"];

/// Reads `if:`: `{set: VAR}`, `{empty: VAR}`, `{var: VAR, equals: VALUE}`, `{passed: STEP}` or
/// `{failed: STEP}`. Variables are recorded as uses (so a typo is an undefined variable); the
/// step named by `passed`/`failed` is returned for the cross-step check.
fn condition(r: &Reader<'_>, n: &Node, uses: &mut Vec<Use>) -> R<ConditionRead> {
    let m = r.map(n, "`if`")?;
    m.allow(&IF_KEYS, "`if`")?;
    let forms = "`if` takes one of `{set: VAR}`, `{empty: VAR}`, `{var: VAR, equals: VALUE}`, \
                 `{passed: STEP}` or `{failed: STEP}`";
    let var_use = |name_node: &Node, uses: &mut Vec<Use>| -> R<String> {
        let name = r.string(name_node, "a variable name")?;
        super::checks::var_ref(&name, name_node.pos)?;
        r.template_of(&format!("{{{{{name}}}}}"), name_node.pos, uses)?;
        Ok(name)
    };
    let keys: Vec<&str> = m.entries.iter().map(|(k, _, _)| k.as_str()).collect();
    let (test, src, after) = match keys.as_slice() {
        ["set" | "empty"] => {
            let Some(v) = m.get(keys[0]) else {
                return Err(Diag::new(n.pos, forms));
            };
            let name = var_use(v, uses)?;
            let src = format!("if: {{ {}: {name} }}", keys[0]);
            let test = if keys[0] == "set" {
                Test::Set(name)
            } else {
                Test::Empty(name)
            };
            (test, src, None)
        }
        ["var", "equals"] | ["equals", "var"] => {
            let (Some(v), Some(e)) = (m.get("var"), m.get("equals")) else {
                return Err(Diag::new(n.pos, forms));
            };
            let name = var_use(v, uses)?;
            let want = r.template(e, "`equals`", uses)?;
            let src = format!("if: {{ var: {name}, equals: {} }}", want.source());
            (Test::Equals(name, want), src, None)
        }
        ["passed" | "failed"] => {
            let Some(v) = m.get(keys[0]) else {
                return Err(Diag::new(n.pos, forms));
            };
            let step = r.string(v, "a step name")?;
            let src = format!("if: {{ {}: {step} }}", keys[0]);
            let test = if keys[0] == "passed" {
                Test::Passed(step.clone())
            } else {
                Test::Failed(step.clone())
            };
            (test, src, Some((step, v.pos)))
        }
        _ => {
            let pos = m.entries.first().map_or(n.pos, |(_, k, _)| k.pos);
            return Err(Diag::new(pos, forms).help(
                "e.g. `if: { set: startup_id }` runs the step only when `startup_id` has a value",
            ));
        }
    };
    Ok((Some(Condition { test, src }), after))
}

type ConditionRead = (Option<Condition>, Option<(String, Pos)>);

/// A method: the standard ones in any case (`post` is POST); any other RFC 9110 token as it is
/// written (`PROPFIND`, `wHat`: methods are case-sensitive), unless it is one edit away from
/// a standard method (`GTE`), which is taken for a typo.
fn method(r: &Reader<'_>, n: &Node) -> R<http::Method> {
    let s = r.string(n, "`method`")?;
    let upper = s.to_ascii_uppercase();
    let bad = || Diag::new(n.pos, format!("unknown method `{s}`"));
    if METHODS.contains(&upper.as_str()) {
        return http::Method::from_bytes(upper.as_bytes()).map_err(|_| bad());
    }
    let token = !s.is_empty() && s.bytes().all(crate::http::is_tchar);
    if token && crate::suggest::method_typo(&s).is_none() {
        return http::Method::from_bytes(s.as_bytes()).map_err(|_| bad());
    }
    Err(bad().help(did_you_mean(&upper, METHODS).unwrap_or_else(|| {
        format!(
            "methods are {}, or any other token (letters, digits, !#$%&'*+-.^_`|~)",
            METHODS.join(", ")
        )
    })))
}

/// A mapping of names to template values (`headers`, `query`, `cookies`, `form`).
/// A list value in `query` repeats the parameter; in `headers`, the header.
pub fn pairs(
    r: &Reader<'_>,
    n: Option<&Node>,
    what: &str,
    uses: &mut Vec<Use>,
    header_names: bool,
) -> R<Vec<(String, Template)>> {
    let Some(n) = n else {
        return Ok(Vec::new());
    };
    let m = r.map(n, what)?;
    let mut out = Vec::with_capacity(m.entries.len());
    for (k, kn, v) in &m.entries {
        if k.is_empty() {
            return Err(Diag::new(kn.pos, format!("empty name in {what}")));
        }
        if header_names && http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(Diag::new(kn.pos, format!("invalid header name `{k}`")));
        }
        match &v.value {
            Value::Seq(items) if what == "`query`" || header_names => {
                for item in items {
                    out.push((k.clone(), r.template(item, what, uses)?));
                }
            }
            _ => out.push((k.clone(), r.template(v, what, uses)?)),
        }
    }
    Ok(out)
}

fn body(r: &Reader<'_>, n: &Node, uses: &mut Vec<Use>) -> R<BodySpec> {
    let m = r.map(n, "`body`")?;
    m.allow(&["json", "form", "raw", "base64", "content_type"], "body")?;
    let kinds: Vec<&str> = ["json", "form", "raw", "base64"]
        .into_iter()
        .filter(|k| m.key_pos(k).is_some())
        .collect();
    match kinds.as_slice() {
        [_] => {}
        [] => {
            return Err(Diag::new(
                n.pos,
                "`body` needs one of `json`, `form`, `raw` or `base64`",
            ));
        }
        [_, second, ..] => {
            let pos = m.key_pos(second).unwrap_or(n.pos);
            return Err(Diag::new(
                pos,
                format!("`body` takes one kind; `{second}` is a second one"),
            )
            .help("use one of `json`, `form`, `raw` or `base64`"));
        }
    }
    if let (Some(pos), false) = (
        m.key_pos("content_type"),
        kinds == ["raw"] || kinds == ["base64"],
    ) {
        return Err(
            Diag::new(pos, "`content_type` goes with a `raw` or `base64` body")
                .help("`json` and `form` bodies set their content type themselves"),
        );
    }
    if let Some(pos) = m.key_pos("json") {
        let j = m
            .entries
            .iter()
            .find(|(k, _, _)| k == "json")
            .map(|(_, _, v)| *v)
            .ok_or_else(|| Diag::new(pos, "missing `json`"))?;
        return Ok(BodySpec::Json(json_value(r, j, Some(uses))?));
    }
    if let Some(f) = m.get("form") {
        return Ok(BodySpec::Form(pairs(r, Some(f), "`form`", uses, false)?));
    }
    if let Some(b) = m.get("base64") {
        use base64::Engine as _;
        let text = r.string(b, "`base64`")?;
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let content = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| Diag::new(b.pos, format!("`base64` is not valid base64: {e}")))?;
        let content_type = r.opt_string(&m, "content_type", "`content_type`")?;
        return Ok(BodySpec::Bytes {
            content: content.into(),
            content_type,
        });
    }
    let raw = m
        .get("raw")
        .ok_or_else(|| Diag::new(n.pos, "`raw` needs a string"))?;
    let content = r.template(raw, "`raw`", uses)?;
    let content_type = r.opt_string(&m, "content_type", "`content_type`")?;
    Ok(BodySpec::Raw {
        content,
        content_type,
    })
}

/// A YAML node as JSON. With `uses`, strings are templates and their variables are recorded.
pub fn json_value(
    r: &Reader<'_>,
    n: &Node,
    mut uses: Option<&mut Vec<Use>>,
) -> R<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match &n.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
            (Ok(v), _) => J::from(v),
            (_, Ok(v)) => J::from(v),
            _ => return Err(Diag::new(n.pos, "number out of range")),
        },
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| Diag::new(n.pos, "JSON has no infinity or NaN"))?,
        Value::Str(_) => {
            let s = r.string(n, "a JSON string")?;
            if let Some(u) = uses.as_deref_mut() {
                r.template_of(&s, n.pos, u)?;
            }
            J::String(s)
        }
        Value::Seq(items) => J::Array(
            items
                .iter()
                .map(|i| json_value(r, i, uses.as_deref_mut()))
                .collect::<R<_>>()?,
        ),
        Value::Map(entries) => {
            let mut o = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                o.insert(r.key_text(k)?, json_value(r, v, uses.as_deref_mut())?);
            }
            J::Object(o)
        }
    })
}

fn poll(r: &Reader<'_>, n: &Node) -> R<(Poll, Option<(String, Pos)>)> {
    let m = r.map(n, "`poll`")?;
    m.allow(&["every", "timeout", "since"], "poll")?;
    let interval = match m.get("every") {
        Some(e) => r.positive_duration(e, "`every`", ONE_HOUR)?,
        None => Duration::from_millis(200),
    };
    let timeout = match m.get("timeout") {
        Some(t) => r.positive_duration(t, "poll `timeout`", ONE_HOUR)?,
        None => Duration::from_secs(30),
    };
    if interval > timeout {
        let pos = m.get("every").map_or(n.pos, |e| e.pos);
        return Err(Diag::new(pos, "poll interval is longer than its timeout"));
    }
    let since = match m.get("since") {
        Some(s) => Some((r.string(s, "`since`")?, s.pos)),
        None => None,
    };
    let poll = Poll {
        interval,
        timeout,
        since: since.as_ref().map(|(s, _)| s.clone()),
    };
    Ok((poll, since))
}

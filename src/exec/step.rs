//! One request step: render the request from the plan and the scope, send it on the virtual
//! user's session, record its phases, check its expectations, extract its captures.
//! Formats nothing for humans beyond the one-line failure message of an expectation.

use super::scope::Scope;
use crate::aggregate::StepStats;
use crate::http::{Exchange, Request, Session};
use crate::plan::json_pick::SingularPath;
use crate::plan::template::{render_json, value_text};
use crate::plan::{
    BodySpec, CaptureSource, Environment, Expectation, FlagTransport, JsonCheck, Step, Template,
    TemplateError, ValueCheck, Vars,
};
use crate::units::fmt_ms;
use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_TYPE, COOKIE, HeaderName, HeaderValue};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What a step produced for the rest of the iteration.
pub struct StepOutcome {
    pub captures: Vec<(String, Value)>,
    pub failed: bool,
    /// The iteration cannot go on (a variable it needs is missing).
    pub abort: bool,
    pub end: Instant,
    /// What the virtual user should wait before its next iteration.
    pub backoff: Backoff,
}

impl StepOutcome {
    /// The run stopped while the step waited (to poll again, for an event): the step did not
    /// finish and nothing is counted; the iteration ends here.
    #[must_use]
    pub fn stopped(end: Instant) -> StepOutcome {
        StepOutcome {
            captures: Vec::new(),
            failed: false,
            abort: true,
            end,
            backoff: Backoff::None,
        }
    }
}

/// Why a virtual user pauses between iterations instead of hammering a failing server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backoff {
    #[default]
    None,
    /// The request failed before any response (refused, DNS, TLS...): exponential, per VU.
    Failed,
    /// 429 Too Many Requests: the server's `Retry-After` (capped), or exponential without one.
    RateLimited(Option<Duration>),
}

/// The longest `Retry-After` a virtual user honours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); anything else, or a
/// date in the past, means absent.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            v.parse::<u64>()
                .map_or(MAX_RETRY_AFTER, Duration::from_secs),
        );
    }
    let at = httpdate::parse_http_date(v).ok()?;
    at.duration_since(std::time::SystemTime::now()).ok()
}

/// The pause a failing VU takes: 10 ms doubling per consecutive failed iteration, at most 1 s.
#[must_use]
pub fn failure_backoff(streak: u32) -> Duration {
    Duration::from_millis(10u64 << streak.saturating_sub(1).min(7)).min(Duration::from_secs(1))
}

/// Variables that are never defined: a request that renders against them uses none, so it can
/// be built once and reused for every iteration.
pub struct NoVars;

impl Vars for NoVars {
    fn get_var(&self, _: &str) -> Option<&Value> {
        None
    }
}

/// Names whose value may change between two iterations of one virtual user: every variable a
/// step of the flow captures, every data column, and the built-ins (`vu`, `iteration`, `uuid`,
/// `timestamp_ms`). Any other name resolves to the VU's environment or to setup's captures,
/// both fixed for the VU's life (see `Scope`).
#[must_use]
pub fn volatile_names(plan: &crate::plan::Plan) -> std::collections::HashSet<String> {
    let mut out: std::collections::HashSet<String> = ["vu", "iteration", "uuid", "timestamp_ms"]
        .into_iter()
        .map(str::to_string)
        .collect();
    for s in crate::plan::flatten(&plan.steps) {
        out.extend(s.capture.iter().map(|c| c.var.clone()));
    }
    for row in &plan.data {
        out.extend(row.keys().cloned());
    }
    out
}

/// The variables a virtual user sees that never change during its life: its environment and
/// setup's captures, minus the `volatile_names` (which `Scope` would look up in other layers
/// first). A request that builds against these alone is the same bytes in every iteration, so
/// the VU builds it once and reuses it.
pub struct VuConstant<'a> {
    pub env: &'a super::scope::VarMap,
    pub shared: &'a super::scope::VarMap,
    pub volatile: &'a std::collections::HashSet<String>,
}

impl Vars for VuConstant<'_> {
    fn get_var(&self, name: &str) -> Option<&Value> {
        if self.volatile.contains(name) {
            return None;
        }
        self.env.get(name).or_else(|| self.shared.get(name))
    }
}

/// Variables as text templates see them: a null value counts as none.
struct NullIsUnset<'a>(&'a dyn Vars);

impl Vars for NullIsUnset<'_> {
    fn get_var(&self, name: &str) -> Option<&Value> {
        self.0.get_var(name).filter(|v| !v.is_null())
    }
}

/// Per-run context a step needs besides the scope.
pub struct StepCtx<'a> {
    pub base: &'a str,
    pub env: &'a Environment,
    pub flags: &'a FlagTransport,
    /// `env` is the plan's own environment (not setup's empty one), so requests prebuilt with
    /// it apply.
    pub env_is_plan: bool,
}

/// Why a request could not be built.
#[derive(Debug)]
pub struct BuildError {
    pub message: String,
    /// A variable the step needs has no value (the step that sets it failed or did not run):
    /// the step is not run, which is no error of its own.
    pub unset: Option<String>,
}

impl From<String> for BuildError {
    fn from(message: String) -> Self {
        BuildError {
            message,
            unset: None,
        }
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Builds the request. Errors are template errors (undefined variables at run time).
// Long on purpose: one pass over the step's parts (URL, query, headers, cookies, the
// environment's items and flags, the body) in the order they go on the wire, each part a few
// lines; split up, the pieces would pass the same half-built request around.
pub fn build_request(
    step: &Step,
    scope: &dyn Vars,
    ctx: &StepCtx<'_>,
) -> Result<Request, BuildError> {
    // In text (URL, query, headers, cookies, form and raw bodies) a null value is no value:
    // `/startups/{{first}}` with `first` null is not sent as `/startups/`.
    let text_vars = NullIsUnset(scope);
    let t = |tpl: &Template| tpl.render(&text_vars).map_err(|e| describe(&e, step));
    let raw_url = t(&step.url)?;
    let full = if raw_url.starts_with("http://") || raw_url.starts_with("https://") {
        raw_url
    } else {
        let mut s = String::with_capacity(ctx.base.len() + raw_url.len() + 1);
        s.push_str(ctx.base.trim_end_matches('/'));
        if !raw_url.starts_with('/') {
            s.push('/');
        }
        s.push_str(&raw_url);
        s
    };
    let mut url = url::Url::parse(&full)
        .map_err(|e| format!("step `{}`: invalid URL `{full}`: {e}", step.name))?;
    if !ctx.env.query.is_empty() || !step.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in ctx.env.query.iter().chain(step.query.iter()) {
            pairs.append_pair(k, &t(v)?);
        }
    }

    let mut headers = HeaderMap::new();
    // A step's header replaces the env's of the same name; repeats within one list (a YAML
    // list value, or an imported request's `X: a` twice) are all sent, in order.
    for list in [&ctx.env.headers, &step.headers] {
        let mut seen: Vec<HeaderName> = Vec::new();
        for (k, v) in list {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("step `{}`: invalid header name `{k}`", step.name))?;
            let value = HeaderValue::from_bytes(t(v)?.as_bytes())
                .map_err(|_| format!("step `{}`: header `{k}` has an invalid value", step.name))?;
            if seen.contains(&name) {
                headers.append(name, value);
            } else {
                headers.insert(name.clone(), value);
                seen.push(name);
            }
        }
    }

    let mut cookie = String::new();
    for (k, v) in ctx.env.cookies.iter().chain(step.cookies.iter()) {
        if !cookie.is_empty() {
            cookie.push_str("; ");
        }
        cookie.push_str(k);
        cookie.push('=');
        cookie.push_str(&t(v)?);
    }
    let on: Vec<&str> = ctx
        .env
        .flags
        .iter()
        .filter(|(_, on)| **on)
        .map(|(k, _)| k.as_str())
        .collect();
    if !on.is_empty() {
        match ctx.flags {
            FlagTransport::Header { name, separator } => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("invalid feature-flag header name `{name}`"))?;
                let value = HeaderValue::from_str(&on.join(separator))
                    .map_err(|_| "a feature flag name is not a valid header value".to_string())?;
                headers.insert(name, value);
            }
            FlagTransport::Cookie { name, separator } => {
                if !cookie.is_empty() {
                    cookie.push_str("; ");
                }
                cookie.push_str(name);
                cookie.push('=');
                cookie.push_str(&on.join(separator));
            }
        }
    }
    if !cookie.is_empty() {
        let v = HeaderValue::from_str(&cookie)
            .map_err(|_| format!("step `{}`: a cookie has an invalid value", step.name))?;
        headers.insert(COOKIE, v);
    }

    let body = match &step.body {
        None => Bytes::new(),
        Some(BodySpec::Json(v)) => {
            let rendered = render_json(v, scope).map_err(|e| describe(&e, step))?;
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Bytes::from(serde_json::to_vec(&rendered).map_err(|e| BuildError::from(e.to_string()))?)
        }
        Some(BodySpec::Form(fields)) => {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                ser.append_pair(k, &t(v)?);
            }
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
            Bytes::from(ser.finish())
        }
        Some(BodySpec::Raw {
            content,
            content_type,
        }) => {
            default_content_type(&mut headers, content_type.as_deref(), step)?;
            Bytes::from(t(content)?)
        }
        Some(BodySpec::Bytes {
            content,
            content_type,
        }) => {
            default_content_type(&mut headers, content_type.as_deref(), step)?;
            content.clone()
        }
    };

    Ok(Request {
        method: step.method.clone(),
        url,
        headers,
        body,
        follow_redirects: step.follow_redirects,
        timeout: step.timeout,
    })
}

fn describe(e: &TemplateError, step: &Step) -> BuildError {
    BuildError {
        message: format!("step `{}`: {e}", step.name),
        unset: match e {
            TemplateError::Undefined(name) => Some(name.clone()),
            _ => None,
        },
    }
}

/// Records phases, status and server timing of one exchange (and its redirect hops). The
/// exchange counts as one request (its latency is one sample); each hop as a redirect.
pub fn record_exchange(stats: &mut StepStats, ex: &Exchange) {
    stats.requests += 1;
    stats.redirects += ex.hops.len() as u64;
    for hop in &ex.hops {
        record_timing(stats, &hop.timing);
        *stats.statuses.entry(hop.status.as_u16()).or_default() += 1;
        for m in &hop.server_timing {
            if let Some(d) = m.dur_ms {
                record_st(stats, &m.name, d);
            }
        }
    }
    record_timing(stats, &ex.timing);
    if ex.close_delimited {
        stats.close_delimited += 1;
    }
    if let Some(s) = ex.status {
        *stats.statuses.entry(s.as_u16()).or_default() += 1;
    }
    for m in &ex.server_timing {
        if let Some(d) = m.dur_ms {
            record_st(stats, &m.name, d);
        }
    }
}

/// Response headers that carry the server's id for a request, after the scenario's own.
const REQUEST_ID_HEADERS: [&str; 2] = ["x-request-id", "traceresponse"];

/// One request as an exemplar: built only for a request the step keeps (slower than its N-th
/// slowest, or among the first failures of its class). Copies no header but the request id.
pub fn exemplar(
    step: &Step,
    ex: &Exchange,
    latency: Duration,
    tp: Option<&crate::trace::TraceParent>,
    class: Option<&str>,
    opts: &crate::trace::TraceOptions,
) -> crate::aggregate::Exemplar {
    let ms = |d: Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let t = &ex.timing;
    let phases = [
        ("dns", t.dns),
        ("connect", t.connect),
        ("tls", t.tls),
        ("send", t.send),
        ("wait", t.wait),
        ("receive", t.receive),
    ]
    .into_iter()
    .filter(|(_, d)| !d.is_zero())
    .map(|(n, d)| (n.to_string(), ms(d)))
    .collect();
    let request_id = opts
        .request_id_header
        .as_deref()
        .into_iter()
        .chain(REQUEST_ID_HEADERS)
        .find_map(|name| {
            let v = ex.headers.get(name)?;
            let text = header_text(v);
            // A request id is an opaque token by design (it may look random): only a header
            // whose name says secret is hidden.
            let shown = if crate::redact::is_secret_header(name) {
                crate::redact::REDACTED
            } else {
                text.trim()
            };
            Some(
                shown
                    .chars()
                    .take(crate::aggregate::exemplar::MAX_REQUEST_ID)
                    .collect(),
            )
        });
    crate::aggregate::Exemplar {
        step: step.name.clone(),
        started_at: crate::aggregate::exemplar::started_at(latency),
        latency_ms: ms(latency),
        latency_us: latency.as_micros() as u64,
        status: ex.status.map(|s| s.as_u16()),
        error_class: class.map(str::to_string),
        phases,
        server_timing: ex
            .server_timing
            .iter()
            .filter_map(|m| {
                m.dur_ms.map(|d| crate::aggregate::exemplar::TimingPart {
                    name: m.name.clone(),
                    dur_ms: d,
                })
            })
            .collect(),
        trace_id: tp.map(|t| t.trace_id_hex().to_string()),
        request_id,
    }
}

fn record_st(stats: &mut StepStats, name: &str, ms: f64) {
    let us = if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0) as u64
    } else {
        0
    };
    if let Some(h) = stats.server_timing.get_mut(name) {
        h.record_us(us);
    } else {
        let mut h = crate::aggregate::Hist::default();
        h.record_us(us);
        stats.server_timing.insert(name.to_string(), h);
    }
}

fn record_timing(stats: &mut StepStats, t: &crate::http::Timing) {
    let p = &mut stats.phases;
    if t.dns.is_zero() && t.connect.is_zero() && t.tls.is_zero() {
        // A reused connection: one count instead of three records (`StepStats::settle`).
        stats.zero_connect += 1;
    } else {
        p[0].record(t.dns);
        p[1].record(t.connect);
        p[2].record(t.tls);
    }
    p[3].record(t.send);
    p[4].record(t.wait);
    p[5].record(t.receive);
    p[6].record(t.total);
    if t.reused {
        stats.reused += 1;
    }
    if t.tls_resumed {
        stats.tls_resumed += 1;
    }
    stats.bytes_sent += t.bytes_sent;
    stats.bytes_received += t.bytes_received;
}

/// A body's own content type, unless a header already set one.
fn default_content_type(
    headers: &mut HeaderMap,
    content_type: Option<&str>,
    step: &Step,
) -> Result<(), BuildError> {
    if let Some(ct) = content_type
        && !headers.contains_key(CONTENT_TYPE)
    {
        let v = HeaderValue::from_str(ct)
            .map_err(|_| format!("step `{}`: invalid content type", step.name))?;
        headers.insert(CONTENT_TYPE, v);
    }
    Ok(())
}

/// Failure of a response, as (error class, message).
// Long on purpose: one arm per kind of expectation (status, header, JSON path, body, time),
// checked in declaration order; each arm is self-contained, and the first failure returns.
pub fn check(step: &Step, ex: &Exchange, scope: &Scope<'_>) -> Option<(String, String)> {
    if let Some(e) = &ex.error {
        return Some((e.kind.as_str().to_string(), e.message.clone()));
    }
    let Some(status) = ex.status else {
        return Some(("protocol".into(), "no response".into()));
    };
    let code = status.as_u16();
    let mut json: Option<Option<Value>> = None;
    let has_status_expect = step
        .expect
        .iter()
        .any(|e| matches!(e, Expectation::Status(_)));
    if !has_status_expect && code >= 400 {
        return Some((
            status_class(code),
            format!("status {code}{}", body_hint(&ex.body)),
        ));
    }
    for e in &step.expect {
        match e {
            Expectation::Status(allowed) => {
                if !allowed.contains(&code) {
                    let want = allowed
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ");
                    let class = if code >= 400 {
                        status_class(code)
                    } else {
                        "assertion".to_string()
                    };
                    return Some((
                        class,
                        format!("expected status {want}, got {code}{}", body_hint(&ex.body)),
                    ));
                }
            }
            Expectation::Header { name, check } => {
                let got = ex.headers.get(name.as_str()).map(header_text);
                if let Some(msg) = check_value(name, got.as_deref(), check, scope) {
                    return Some(("assertion".into(), msg));
                }
            }
            Expectation::Json {
                path_src,
                path,
                check,
            } => {
                let doc = json.get_or_insert_with(|| serde_json::from_slice(&ex.body).ok());
                let Some(doc) = doc.as_ref() else {
                    return Some((
                        "assertion".into(),
                        format!(
                            "expected JSON at {path_src}, body is not JSON: {:?}",
                            crate::redact::excerpt(
                                &crate::redact::redact_free_text(&String::from_utf8_lossy(
                                    &ex.body[..ex.body.len().min(4096)]
                                )),
                                crate::redact::EXCERPT
                            )
                        ),
                    ));
                };
                let nodes = path.query(doc);
                let first = nodes.first();
                let field = last_field(path_src);
                let quote = |v: &Value| crate::redact::quote_response_value(field, &v.to_string());
                let fail = match (check, first) {
                    (JsonCheck::Exists, Some(_)) => None,
                    (JsonCheck::Count(want), _) => {
                        let n = nodes.len() as f64;
                        (!want.holds(n)).then(|| {
                            format!(
                                "expected {path_src} count {}, got {}",
                                want.describe(),
                                nodes.len()
                            )
                        })
                    }
                    (JsonCheck::Number(want), Some(got)) => match got.as_f64() {
                        Some(n) if want.holds(n) => None,
                        Some(_) => Some(format!(
                            "expected {path_src} {}, got {}",
                            want.describe(),
                            quote(got)
                        )),
                        None => Some(format!(
                            "expected {path_src} {} (a number), got {}",
                            want.describe(),
                            quote(got)
                        )),
                    },
                    (JsonCheck::Length(want), Some(got)) => {
                        let len = match got {
                            Value::Array(a) => Some(a.len()),
                            Value::Object(o) => Some(o.len()),
                            Value::String(s) => Some(s.chars().count()),
                            _ => None,
                        };
                        match len {
                            Some(n) if want.holds(n as f64) => None,
                            Some(n) => Some(format!(
                                "expected {path_src} length {}, got {n}",
                                want.describe()
                            )),
                            None => Some(format!(
                                "expected {path_src} length {} (an array, object or string), got {}",
                                want.describe(),
                                quote(got)
                            )),
                        }
                    }
                    (_, None) => Some(format!("{path_src} matched nothing")),
                    (JsonCheck::Equals(want), Some(got)) => (got != want).then(|| {
                        let field = last_field(path_src);
                        format!(
                            "expected {path_src} == {}, got {}",
                            crate::redact::quote_response_value(field, &want.to_string()),
                            crate::redact::quote_response_value(field, &got.to_string())
                        )
                    }),
                    (JsonCheck::Matches(re), Some(got)) => {
                        (!re.is_match(&value_text(got))).then(|| {
                            format!(
                                "expected {path_src} to match /{re}/, got {}",
                                crate::redact::quote_response_value(
                                    last_field(path_src),
                                    &got.to_string()
                                )
                            )
                        })
                    }
                };
                if let Some(msg) = fail {
                    return Some(("assertion".into(), msg));
                }
            }
            Expectation::BodyContains(t) => {
                let needle = t.render(scope).unwrap_or_default();
                if !contains(&ex.body, needle.as_bytes()) {
                    return Some((
                        "assertion".into(),
                        format!("expected body to contain {needle:?}"),
                    ));
                }
            }
            Expectation::MaxDuration(max) => {
                if ex.timing.total > *max {
                    return Some((
                        "assertion".into(),
                        format!(
                            "expected duration <= {}, took {}",
                            fmt_ms(*max),
                            fmt_ms(ex.timing.total)
                        ),
                    ));
                }
            }
        }
    }
    None
}

/// Characters of a non-JSON response body a status failure quotes.
const BODY_HINT: usize = 80;

/// Fields of a JSON error body (RFC 9457 problem+json first) that say why, in order.
const WHY_FIELDS: [&str; 5] = ["detail", "title", "message", "error_description", "error"];

/// ` (why)` for a status failure: a JSON error body's `detail` (or `title`, `message`,
/// `error`), else the start of the body on one line; redacted, short, empty for an empty body.
fn body_hint(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body)
        && let Some((field, why)) = WHY_FIELDS
            .iter()
            .find_map(|f| o.get(*f).and_then(Value::as_str).map(|v| (*f, v)))
    {
        let one_line = why.split_whitespace().collect::<Vec<_>>().join(" ");
        return format!(
            " ({})",
            crate::redact::quote_response_value(field, &one_line)
        );
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(1 << 20)]);
    let one_line: String = crate::redact::redact_body(&head)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if one_line.is_empty() {
        return String::new();
    }
    format!(" ({})", crate::redact::excerpt(&one_line, BODY_HINT))
}

fn status_class(code: u16) -> String {
    if code == 429 {
        // Rate limiting is the server asking for less load, not a client error of the API.
        return "rate_limited".to_string();
    }
    format!("status_{}xx", code / 100)
}

fn check_value(
    name: &str,
    got: Option<&str>,
    check: &ValueCheck,
    scope: &Scope<'_>,
) -> Option<String> {
    match (check, got) {
        (ValueCheck::Exists, Some(_)) => None,
        (_, None) => Some(format!("expected header {name}, it is missing")),
        (ValueCheck::Equals(t), Some(g)) => {
            let want = t.render(scope).unwrap_or_default();
            (g != want).then(|| {
                format!(
                    "expected header {name}: {:?}, got {:?}",
                    shown_header(name, &want),
                    shown_header(name, g)
                )
            })
        }
        (ValueCheck::Number(want), Some(g)) => match g.trim().parse::<f64>() {
            Ok(n) if want.holds(n) => None,
            _ => Some(format!(
                "expected header {name} {}, got {:?}",
                want.describe(),
                shown_header(name, g)
            )),
        },
        (ValueCheck::Matches(re), Some(g)) => (!re.is_match(g)).then(|| {
            format!(
                "expected header {name} to match /{re}/, got {:?}",
                shown_header(name, g)
            )
        }),
    }
}

/// A header value as a message quotes it: secret headers (`Set-Cookie`, `X-Auth-Token`, ...)
/// redacted by `redact`, the rest cut to an excerpt.
fn shown_header(name: &str, value: &str) -> String {
    crate::redact::excerpt(
        &crate::redact::redact_header(name, value),
        crate::redact::EXCERPT,
    )
}

/// The last key of a JSONPath (`$.user.token` → `token`, `$['api-key']` → `api-key`), to
/// judge by name whether the value it selects is secret.
fn last_field(path: &str) -> &str {
    let p = path.trim_end_matches([']', '\'', '"']);
    let start = p.rfind(['.', '[', '\'', '"']).map_or(0, |i| i + 1);
    &p[start..]
}

/// A response header's value as text: UTF-8 when it is, else each byte as its Latin-1
/// character (RFC 9110 obs-text). `to_str` accepts visible ASCII only, which made a header
/// holding `café` look missing.
fn header_text(v: &HeaderValue) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(v.as_bytes().iter().map(|b| char::from(*b)).collect()),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Extracts captures; a capture that finds nothing is a failure message.
pub fn capture(
    step: &Step,
    ex: &Exchange,
    session: &Session,
) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::with_capacity(step.capture.len());
    let mut json: Option<Option<Value>> = None;
    // One JSON capture reads its value straight from the body when its path is singular (no
    // document built); several share one parsed document.
    let json_captures = step
        .capture
        .iter()
        .filter(|c| matches!(c.source, CaptureSource::Json { .. }))
        .count();
    for c in &step.capture {
        let found = capture_one(c, ex, session, &mut json, json_captures == 1);
        let v = match (found, &c.default) {
            (Ok(v), _) => v,
            // `default:` a source that finds nothing is no failure.
            (Err(_), Some(d)) => d.clone(),
            (Err(msg), None) => return Err(msg),
        };
        out.push((c.var.clone(), v));
    }
    Ok(out)
}

/// One capture's value, or why its source found nothing.
fn capture_one(
    c: &crate::plan::Capture,
    ex: &Exchange,
    session: &Session,
    json: &mut Option<Option<Value>>,
    alone: bool,
) -> Result<Value, String> {
    {
        let v = match &c.source {
            CaptureSource::Json { path_src, .. }
                if alone && let Some(singular) = SingularPath::parse(path_src) =>
            {
                match singular.pick(&ex.body) {
                    Ok(Some(v)) => v,
                    Ok(None) => {
                        return Err(format!("capture `{}`: {path_src} matched nothing", c.var));
                    }
                    Err(_) => return Err(format!("capture `{}`: body is not JSON", c.var)),
                }
            }
            CaptureSource::Json { path_src, path } => {
                let doc = json.get_or_insert_with(|| serde_json::from_slice(&ex.body).ok());
                let Some(doc) = doc.as_ref() else {
                    return Err(format!("capture `{}`: body is not JSON", c.var));
                };
                path.query(doc)
                    .first()
                    .map(|v| (*v).clone())
                    .ok_or_else(|| format!("capture `{}`: {path_src} matched nothing", c.var))?
            }
            CaptureSource::Header(h) => ex
                .headers
                .get(h.as_str())
                .map(|v| Value::String(header_text(v).into_owned()))
                .ok_or_else(|| format!("capture `{}`: no header {h}", c.var))?,
            CaptureSource::Cookie(name) => session
                .cookie(name, &ex.url)
                .map(Value::String)
                .ok_or_else(|| format!("capture `{}`: no cookie {name}", c.var))?,
            CaptureSource::Regex(re) => {
                let text = String::from_utf8_lossy(&ex.body);
                let caps = re
                    .captures(&text)
                    .ok_or_else(|| format!("capture `{}`: /{re}/ matched nothing", c.var))?;
                let m = caps.get(1).or_else(|| caps.get(0));
                Value::String(m.map_or_else(String::new, |m| m.as_str().to_string()))
            }
        };
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ra(v: &str) -> Option<Duration> {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
        retry_after(&h)
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_ignores_garbage() {
        assert_eq!(ra("3"), Some(Duration::from_secs(3)));
        assert_eq!(ra(" 0 "), Some(Duration::ZERO));
        assert_eq!(ra("99999999999999999999999"), Some(MAX_RETRY_AFTER));
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        let d = ra(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(3) && d <= Duration::from_secs(5),
            "{d:?}"
        );
        assert_eq!(ra("Sun, 06 Nov 1994 08:49:37 GMT"), None, "past");
        for junk in ["soon", "-1", "1.5", "", "Sun, 99 Nov 1994 08:49:37 GMT"] {
            assert_eq!(ra(junk), None, "{junk}");
        }
        let mut none = http::HeaderMap::new();
        assert_eq!(retry_after(&none), None);
        none.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("x"),
        );
        assert_eq!(retry_after(&none), None);
    }

    /// The profile-load flow's steps: a VU builds `profile` once (its variables are the
    /// environment's), never `startup` (it needs a capture of this iteration).
    #[test]
    fn only_requests_of_environment_and_setup_variables_are_vu_constant() {
        use crate::plan::{Environment, FlagTransport};
        use serde_json::json;
        let step = |name: &str, url: &str| {
            let mut s = Step::one_request(
                name,
                http::Method::GET,
                Template::parse(url).unwrap(),
                None,
                true,
            );
            s.headers = vec![(
                "Authorization".into(),
                Template::parse("Bearer {{token}}").unwrap(),
            )];
            s
        };
        let mut env = super::super::scope::VarMap::new();
        env.insert("user_id".into(), json!(7));
        env.insert("token".into(), json!("sd_745f"));
        let mut shared = super::super::scope::VarMap::new();
        shared.insert("whale_id".into(), json!(7));
        shared.insert("first_startup".into(), json!(1));
        let volatile: std::collections::HashSet<String> =
            ["vu", "iteration", "uuid", "timestamp_ms", "first_startup"]
                .into_iter()
                .map(str::to_string)
                .collect();
        let vars = VuConstant {
            env: &env,
            shared: &shared,
            volatile: &volatile,
        };
        let (plan_env, flags) = (Environment::default(), FlagTransport::default());
        let ctx = StepCtx {
            base: "http://127.0.0.1:18130",
            env: &plan_env,
            flags: &flags,
            env_is_plan: true,
        };
        let profile = build_request(&step("profile", "/users/{{user_id}}/profile"), &vars, &ctx)
            .expect("env variables only");
        assert_eq!(
            profile.url.as_str(),
            "http://127.0.0.1:18130/users/7/profile"
        );
        assert_eq!(profile.headers["authorization"], "Bearer sd_745f");
        let wire = profile.encode_h1();
        assert!(
            wire.starts_with(b"GET /users/7/profile HTTP/1.1\r\n"),
            "{wire:?}"
        );
        // A setup capture counts as constant; a name the flow captures does not, even when
        // setup (or the environment) has a value for it too.
        assert!(build_request(&step("w", "/users/{{whale_id}}"), &vars, &ctx).is_ok());
        let e = build_request(&step("startup", "/startups/{{first_startup}}"), &vars, &ctx)
            .unwrap_err();
        assert_eq!(e.unset.as_deref(), Some("first_startup"));
        let e = build_request(&step("it", "/x?i={{iteration}}"), &vars, &ctx).unwrap_err();
        assert_eq!(e.unset.as_deref(), Some("iteration"));
    }

    #[test]
    fn failure_backoff_doubles_to_a_second() {
        assert_eq!(failure_backoff(1), Duration::from_millis(10));
        assert_eq!(failure_backoff(2), Duration::from_millis(20));
        assert_eq!(failure_backoff(7), Duration::from_millis(640));
        assert_eq!(failure_backoff(8), Duration::from_secs(1));
        assert_eq!(failure_backoff(u32::MAX), Duration::from_secs(1));
    }
}

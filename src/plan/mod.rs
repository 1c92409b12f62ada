//! The validated, resolved work: what `exec` runs. Built from a `Scenario` (and CLI overrides)
//! by `scenario::load`; nothing is sent before a `Plan` exists. Holds no I/O and no HTTP.

pub mod json_pick;
pub mod single;
pub mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use template::{Template, TemplateError, Vars};

/// Where requests go.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// An explicit base URL (scenario `target:` or `--target`).
    Url(url::Url),
    /// No target anywhere: start the demo API in-process on 127.0.0.1:0 with these faults.
    EmbeddedDemo { faults: Vec<String> },
}

/// Where feature flags travel, so a single flag can be toggled.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagTransport {
    Header { name: String, separator: String },
    Cookie { name: String, separator: String },
}

impl Default for FlagTransport {
    fn default() -> Self {
        FlagTransport::Header {
            name: "X-Feature-Flags".into(),
            separator: ",".into(),
        }
    }
}

/// A named environment: identity, headers, cookies, flags. Values are templates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    pub vars: BTreeMap<String, Template>,
    pub headers: Vec<(String, Template)>,
    pub cookies: Vec<(String, Template)>,
    pub query: Vec<(String, Template)>,
    /// flag name -> on/off. Only `true` flags are sent.
    pub flags: BTreeMap<String, bool>,
}

/// Load model after validation. Durations are > 0, counts are >= 1.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    /// Closed model: `vus` loop as fast as they can.
    /// Exactly one of `duration`, `iterations` or non-empty `stages` drives the end.
    /// `iterations` is the total shared by all VUs (k6 "shared-iterations").
    Closed {
        vus: u32,
        duration: Option<Duration>,
        iterations: Option<u64>,
        /// Ramp: VU count moves linearly to each stage's `target` over its `duration`.
        stages: Vec<Stage>,
    },
    /// Open model: iterations start at `rate` per second regardless of responses.
    /// When all `max_vus` are busy the iteration is dropped (and counted).
    Open {
        rate: f64,
        max_vus: u32,
        duration: Duration,
        /// Ramp: the rate moves linearly to each stage's `target` (iterations/s).
        stages: Vec<Stage>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// The default `graceful_stop`: 30 s, as k6's `gracefulStop`.
pub const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(30);

/// The most virtual users one HTTP/2 connection may carry (`http.streams_per_connection`,
/// `--streams-per-connection`); servers allow 100-128 concurrent streams by default and queue
/// the rest.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 1000;

/// Transport limits that print in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// Whole request including the body.
    pub request_timeout: Duration,
    pub max_redirects: u32,
    /// Captures and assertions see at most this many body bytes; the rest is counted, discarded.
    pub body_capture_limit: usize,
    pub insecure: bool,
    pub cacert: Option<PathBuf>,
    /// A 429's `Retry-After` pauses the virtual user (capped at 60 s); off for deliberate
    /// rate-limit tests (`http.honor_retry_after: false`, `--ignore-retry-after`).
    pub honor_retry_after: bool,
    /// Hosts besides loopback the user allowed on the command line (never from a file).
    pub allow: std::sync::Arc<crate::http::HostPolicy>,
    /// Trace context and exemplars (`http.trace_context`, `http.request_id_header`,
    /// `--no-trace-context`, `--exemplars`).
    pub trace: crate::trace::TraceOptions,
    /// Keep-alive (`reuse`, the default) or a fresh connection for every request (`new`:
    /// `http.connection`, `--connection new`, `--disable-keepalive`).
    pub connection: crate::http::ConnectionMode,
    /// TLS session resumption on new connections (`http.tls_resumption`,
    /// `--no-tls-resumption`); on by default.
    pub tls_resumption: bool,
    /// Virtual users per HTTP/2 connection, as h2load's `-m` (`http.streams_per_connection`,
    /// `--streams-per-connection`); 1: each its own connection. HTTPS targets only.
    pub streams_per_connection: u32,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_redirects: 10,
            body_capture_limit: 1024 * 1024,
            insecure: false,
            cacert: None,
            honor_retry_after: true,
            allow: std::sync::Arc::new(crate::http::HostPolicy::loopback_only()),
            trace: crate::trace::TraceOptions::default(),
            connection: crate::http::ConnectionMode::Reuse,
            tls_resumption: true,
            streams_per_connection: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    /// The scenario file, when there is one (`--url` runs have none).
    pub source: Option<PathBuf>,
    pub target: TargetSpec,
    /// The selected environment name (`--env` or the first `env` entry), if any.
    pub env_name: Option<String>,
    /// All named environments of the scenario (breakdown/repro/bisect pick from these).
    pub envs: BTreeMap<String, Environment>,
    /// The environment in force for `run` (the selected one, or empty).
    pub env: Environment,
    pub flags: FlagTransport,
    /// Data rows, one per iteration in order (wrapping). Empty: no data.
    pub data: Vec<BTreeMap<String, String>>,
    pub load: LoadModel,
    /// Runs once before the load; its captures are shared by every VU.
    pub setup: Vec<StepNode>,
    pub steps: Vec<StepNode>,
    pub thresholds: Vec<crate::gate::Threshold>,
    pub http: HttpOptions,
    /// Hard cap on the whole run, even for iteration-driven plans.
    pub max_duration: Duration,
    /// How long in-flight requests may finish after the load ends or is interrupted (k6's
    /// `gracefulStop`); what is still in flight then is cancelled and counted (`cancelled`).
    pub graceful_stop: Duration,
}

impl Plan {
    /// A plan of the one request `step` against `target`, with no environment, data, setup or
    /// thresholds: the quick case (`run --url`, a curl file or HAR entry, a repro's flow).
    /// Callers set what they need beyond it (`env`, `flags`).
    pub fn one_request(
        name: &str,
        target: url::Url,
        step: Step,
        load: LoadModel,
        http: HttpOptions,
        max_duration: Duration,
    ) -> Plan {
        Plan {
            name: name.into(),
            source: None,
            target: TargetSpec::Url(target),
            env_name: None,
            envs: BTreeMap::new(),
            env: Environment::default(),
            flags: FlagTransport::default(),
            data: Vec::new(),
            load,
            setup: Vec::new(),
            steps: vec![StepNode::Request(Box::new(step))],
            thresholds: Vec::new(),
            http,
            max_duration,
            graceful_stop: DEFAULT_GRACEFUL_STOP,
        }
    }

    /// Every request step in order, flattening parallel groups.
    pub fn request_steps(&self) -> impl Iterator<Item = &Step> {
        flatten(&self.steps)
    }
}

/// A place a plan may send requests to, for the allow-list check and `--dry-run`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// `target`, `step \`name\`` or `setup step \`name\``.
    pub what: String,
    /// `scheme://host[:port]`; `None` when the host is a template decided at run time.
    pub origin: Option<url::Url>,
    /// The URL as written (a template for templated hosts).
    pub written: String,
}

impl Plan {
    /// Every origin the plan may contact: its target and each step whose URL is absolute.
    #[must_use]
    pub fn contacts(&self) -> Vec<Contact> {
        let mut out = Vec::new();
        match &self.target {
            TargetSpec::Url(u) => out.push(Contact {
                what: "target".into(),
                origin: Some(origin_of(u)),
                written: u.to_string(),
            }),
            TargetSpec::EmbeddedDemo { .. } => {}
        }
        let steps = flatten(&self.setup)
            .map(|s| ("setup step", s))
            .chain(self.request_steps().map(|s| ("step", s)));
        for (kind, step) in steps {
            let src = step.url.source();
            let lower = src.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                continue;
            }
            let after = src.find("://").map_or(0, |i| i + 3);
            let end = src[after..]
                .find(['/', '?', '#'])
                .map_or(src.len(), |i| after + i);
            let authority = &src[..end];
            let origin = if authority.contains("{{") {
                None
            } else {
                url::Url::parse(authority).ok().map(|u| origin_of(&u))
            };
            out.push(Contact {
                what: format!("{kind} `{}`", step.name),
                origin,
                written: src,
            });
        }
        out
    }

    /// Refuses, before anything is sent, a plan that names a host outside `policy` (loopback
    /// and the hosts on the command line). Templated hosts are checked by the transport.
    pub fn check_hosts(&self, policy: &crate::http::HostPolicy) -> Result<(), String> {
        let refused: Vec<String> = self
            .contacts()
            .iter()
            .filter_map(|c| {
                let o = c.origin.as_ref()?;
                policy.check_url(o).err().map(|r| {
                    format!(
                        "{} sends to {}: {}",
                        c.what,
                        crate::redact::redact_url(o.as_str()),
                        r.rule
                    )
                })
            })
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "nothing was sent: the plan names hosts that are not allowed\n  {}",
                refused.join("\n  ")
            ))
        }
    }
}

/// A URL's origin as a base: `scheme://[userinfo@]host[:port]/`, no path, query or fragment
/// (wherever it is shown, it goes through `redact::redact_url`).
pub(crate) fn origin_of(u: &url::Url) -> url::Url {
    let mut o = u.clone();
    o.set_path("/");
    o.set_query(None);
    o.set_fragment(None);
    o
}

pub fn flatten(nodes: &[StepNode]) -> impl Iterator<Item = &Step> {
    nodes.iter().flat_map(|n| match n {
        StepNode::Request(s) => std::slice::from_ref(s.as_ref()).iter(),
        StepNode::Parallel(v) => v.iter(),
        StepNode::Think { .. } => [].iter(),
    })
}

#[derive(Debug, Clone)]
pub enum StepNode {
    Request(Box<Step>),
    /// Steps a page issues together; they share the VU's variables as they were at group start,
    /// and their captures are applied after all finish, in declaration order.
    Parallel(Vec<Step>),
    /// Pause uniformly between `min` and `max` (equal for a fixed pause).
    Think {
        min: Duration,
        max: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct Step {
    /// Unique across the scenario (setup included). Metrics are keyed by it.
    pub name: String,
    pub method: http::Method,
    /// Absolute, or relative to the target (starts with `/`).
    pub url: Template,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub cookies: Vec<(String, Template)>,
    pub body: Option<BodySpec>,
    /// Empty: success means a status below 400 and no transport error.
    pub expect: Vec<Expectation>,
    pub capture: Vec<Capture>,
    /// Overrides `HttpOptions::request_timeout` for this step.
    pub timeout: Option<Duration>,
    pub follow_redirects: bool,
    /// Repeat the request until all `expect`s pass (or `timeout`); see `Poll`.
    pub poll: Option<Poll>,
    /// Subscribe to an event stream and wait for a matching event; see `StreamSpec`.
    pub stream: Option<Box<StreamSpec>>,
    /// `if:` the step runs only when this holds; otherwise it is not sent (counted as not run,
    /// never as a request or an error).
    pub condition: Option<Condition>,
    /// 1-based line in the scenario file where the step starts (0 if none), for runtime messages.
    pub line: usize,
}

impl Step {
    /// A request step with nothing but its request line and body: no query, headers, cookies,
    /// expectations, captures, timeout, poll or condition.
    pub fn one_request(
        name: impl Into<String>,
        method: http::Method,
        url: Template,
        body: Option<BodySpec>,
        follow_redirects: bool,
    ) -> Step {
        Step {
            name: name.into(),
            method,
            url,
            query: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body,
            expect: Vec::new(),
            capture: Vec::new(),
            timeout: None,
            follow_redirects,
            poll: None,
            stream: None,
            condition: None,
            line: 0,
        }
    }
}

/// A step's `if:`.
#[derive(Debug, Clone)]
pub struct Condition {
    pub test: Test,
    /// As written, for reports: `if: { set: startup_id }`.
    pub src: String,
}

#[derive(Debug, Clone)]
pub enum Test {
    /// The variable has a value: defined, and not null, `""` or `[]`.
    Set(String),
    /// The opposite of `Set`.
    Empty(String),
    /// The variable's text equals the rendered template.
    Equals(String, Template),
    /// An earlier request step of this iteration ran and passed.
    Passed(String),
    /// An earlier request step of this iteration ran and failed.
    Failed(String),
}

#[derive(Debug, Clone)]
pub enum BodySpec {
    /// Strings inside may hold templates. A string that is exactly one `{{var}}` is replaced by
    /// the variable's JSON value with its type (so a captured number stays a number).
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, Template)>),
    Raw {
        content: Template,
        content_type: Option<String>,
    },
    /// Exact bytes, no templates (scenario `body: { base64: … }`; imported binary bodies).
    Bytes {
        content: bytes::Bytes,
        content_type: Option<String>,
    },
}

impl BodySpec {
    /// The body of an imported request: its exact bytes when they are not UTF-8, else its
    /// text taken literally (a `{{` in it is sent as is).
    #[must_use]
    pub fn exact(text: &str, binary: Option<&[u8]>, content_type: Option<String>) -> BodySpec {
        match binary {
            Some(b) => BodySpec::Bytes {
                content: bytes::Bytes::copy_from_slice(b),
                content_type,
            },
            None => BodySpec::Raw {
                content: Template::literal(text),
                content_type,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub enum Expectation {
    /// The status must be one of these.
    Status(Vec<u16>),
    Header {
        name: String,
        check: ValueCheck,
    },
    Json {
        /// The source text of the path, for messages.
        path_src: String,
        path: serde_json_path::JsonPath,
        check: JsonCheck,
    },
    BodyContains(Template),
    MaxDuration(Duration),
}

#[derive(Debug, Clone)]
pub enum ValueCheck {
    Exists,
    Equals(Template),
    Matches(regex::Regex),
    /// The header's value read as a number (`Content-Length: { gt: 0 }`).
    Number(NumCheck),
}

#[derive(Debug, Clone)]
pub enum JsonCheck {
    Exists,
    /// For a path that selects several nodes, the first node is compared.
    Equals(serde_json::Value),
    /// Against the node's string form (strings unquoted).
    Matches(regex::Regex),
    /// The first node is a number and compares so (`gt`, `ge`, `lt`, `le`).
    Number(NumCheck),
    /// How many nodes the path selects (`$.items[*]`: the items); 0 when none.
    Count(NumCheck),
    /// The first node's length: array elements, object members or string characters.
    Length(NumCheck),
}

/// A numeric comparison, `OP value`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumCheck {
    pub op: NumOp,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl NumOp {
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            NumOp::Eq => "==",
            NumOp::Gt => ">",
            NumOp::Ge => ">=",
            NumOp::Lt => "<",
            NumOp::Le => "<=",
        }
    }
}

impl NumCheck {
    #[must_use]
    pub fn holds(&self, got: f64) -> bool {
        match self.op {
            NumOp::Eq => got == self.value,
            NumOp::Gt => got > self.value,
            NumOp::Ge => got >= self.value,
            NumOp::Lt => got < self.value,
            NumOp::Le => got <= self.value,
        }
    }

    /// `>= 1`, with whole numbers written without a fraction.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.value.fract() == 0.0 && self.value.abs() < 1e15 {
            format!("{} {}", self.op.symbol(), self.value as i64)
        } else {
            format!("{} {}", self.op.symbol(), self.value)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Capture {
    pub var: String,
    pub source: CaptureSource,
    /// `default:` the value when the source finds nothing (instead of failing the step).
    pub default: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// First node the path selects; the variable keeps its JSON type.
    Json {
        path_src: String,
        path: serde_json_path::JsonPath,
    },
    /// First value of a response header (case-insensitive name).
    Header(String),
    /// A cookie set by the response (`Set-Cookie`) or already in the VU's jar.
    Cookie(String),
    /// Group 1 if the regex has groups, else the whole match, on the body prefix.
    Regex(regex::Regex),
}

/// Polling: the step is repeated every `interval` until its expectations pass, for at most
/// `timeout`. Each request counts in `http`; the step's own metric is the time from the start of
/// `since` (a step earlier in the same iteration) or of the first poll to the passing response.
#[derive(Debug, Clone, PartialEq)]
pub struct Poll {
    pub interval: Duration,
    pub timeout: Duration,
    pub since: Option<String>,
}

/// Which event stream a `stream:` step opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamProtocol {
    /// Server-Sent Events: a GET whose `text/event-stream` body carries `event:`/`data:` blocks.
    Sse,
    /// A WebSocket: each text message is an event; a JSON object message with an `event`
    /// field is that event, its `data` field the payload the expectations see.
    WebSocket,
}

/// A `stream:` step: the request opens the stream, then events are read until one named
/// `event` (any, if `None`) passes every `expect` on its data (or `timeout`). The step's latency
/// is the time from the start of `since` (an earlier step of the iteration) or of the
/// subscription to that event; it is also its `settle` time. The connection is the step's own
/// and is closed when the step ends.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    pub protocol: StreamProtocol,
    pub event: Option<String>,
    pub timeout: Duration,
    pub since: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn numeric_checks_compare_and_describe_themselves() {
        let c = |op, value| NumCheck { op, value };
        assert!(c(NumOp::Gt, 0.0).holds(1.0));
        assert!(!c(NumOp::Gt, 1.0).holds(1.0));
        assert!(c(NumOp::Ge, 1.0).holds(1.0));
        assert!(c(NumOp::Lt, 1.5).holds(1.0));
        assert!(!c(NumOp::Le, 0.5).holds(1.0));
        assert!(c(NumOp::Eq, 3.0).holds(3.0));
        assert_eq!(c(NumOp::Ge, 10.0).describe(), ">= 10");
        assert_eq!(c(NumOp::Lt, 1.05).describe(), "< 1.05");
        assert_eq!(c(NumOp::Eq, -2.0).describe(), "== -2");
    }
}

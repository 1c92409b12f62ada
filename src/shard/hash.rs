//! The plan hash: a stable identity of the *unsplit* plan, so `sonde merge` can refuse shards of
//! another scenario, another load, another target or other flags. Hashes a canonical text of the
//! plan's meaningful content; must not depend on where the scenario file lives, on the shard, on
//! the start time, or on anything that varies between machines.
//!
//! What goes in (recipe `sonde-plan/1`, SHA-256, first 16 hex digits shown):
//! - the scenario `name`;
//! - the target: `url` and the URL for an explicit target; `embedded-demo` and its faults for
//!   the in-process demo (its port differs on every machine, so it is left out);
//! - the selected environment's name and content (vars, headers, cookies, query, flags) and where
//!   flags travel; the other, unselected environments are left out (they do not run);
//! - every data row, in order (the unsplit rows);
//! - the load model with its numbers (VUs, iterations, rate, `max_vus`, durations, stages) and the
//!   whole-run cap;
//! - setup and main steps in order: name, method, URL, query, headers, cookies, body,
//!   expectations, captures, timeout, redirects, polling; think pauses and parallel groups;
//! - the thresholds as written;
//! - transport limits that change what is measured: timeouts, redirects, body capture limit,
//!   `insecure`, and whether a CA file was given (not its path).
//!
//! Left out: the scenario file's path, the CA file's path, unselected environments, and the
//! file's line numbers. Values are hashed, never stored: a secret in a header stays out of the
//! result file.

use crate::aggregate::summary::TargetKind;
use crate::plan::{
    BodySpec, Capture, CaptureSource, Environment, Expectation, FlagTransport, JsonCheck,
    LoadModel, Plan, Stage, Step, StepNode, TargetSpec, Template, ValueCheck,
};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Version of the recipe above; part of the hashed text so a recipe change never collides.
pub const RECIPE: &str = "sonde-plan/1";

/// The plan's hash: 16 lowercase hex digits (64 bits of SHA-256).
#[must_use]
pub fn plan_hash(plan: &Plan) -> String {
    let text = canonical(plan);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Length-prefixed fields, so no two different plans write the same text.
struct Canon(String);

impl Canon {
    fn field(&mut self, tag: &str, value: &str) {
        let _ = write!(self.0, "{tag}:{}:{value};", value.len());
    }
    fn tpl(&mut self, tag: &str, t: &Template) {
        self.field(tag, &t.source());
    }
    fn pairs(&mut self, tag: &str, p: &[(String, Template)]) {
        self.field(tag, &p.len().to_string());
        for (k, v) in p {
            self.field("k", k);
            self.tpl("v", v);
        }
    }
    fn num(&mut self, tag: &str, x: f64) {
        // Bit-exact: two plans with the same numbers write the same text.
        self.field(tag, &format!("{:016x}", x.to_bits()));
    }
    fn secs(&mut self, tag: &str, d: std::time::Duration) {
        self.field(tag, &d.as_nanos().to_string());
    }
}

/// The canonical text hashed by `plan_hash` (public for tests and debugging).
#[must_use]
pub fn canonical(plan: &Plan) -> String {
    let mut c = Canon(String::new());
    c.field("recipe", RECIPE);
    c.field("name", &plan.name);
    match &plan.target {
        TargetSpec::Url(u) => {
            c.field("target", TargetKind::Url.as_str());
            c.field("url", u.as_str());
        }
        TargetSpec::EmbeddedDemo { faults } => {
            c.field("target", TargetKind::EmbeddedDemo.as_str());
            let mut f = faults.clone();
            f.sort();
            c.field("faults", &f.join(","));
        }
    }
    c.field("env", plan.env_name.as_deref().unwrap_or(""));
    environment(&mut c, &plan.env);
    match &plan.flags {
        FlagTransport::Header { name, separator } => {
            c.field("flags", "header");
            c.field("n", name);
            c.field("s", separator);
        }
        FlagTransport::Cookie { name, separator } => {
            c.field("flags", "cookie");
            c.field("n", name);
            c.field("s", separator);
        }
    }
    c.field("data", &plan.data.len().to_string());
    for row in &plan.data {
        c.field("row", &row.len().to_string());
        for (k, v) in row {
            c.field("k", k);
            c.field("v", v);
        }
    }
    load(&mut c, &plan.load);
    c.secs("cap", plan.max_duration);
    nodes(&mut c, "setup", &plan.setup);
    nodes(&mut c, "steps", &plan.steps);
    c.field("thresholds", &plan.thresholds.len().to_string());
    for t in &plan.thresholds {
        c.field("t", &t.source);
    }
    let h = &plan.http;
    c.secs("connect_timeout", h.connect_timeout);
    c.secs("request_timeout", h.request_timeout);
    c.field("max_redirects", &h.max_redirects.to_string());
    c.field("body_capture_limit", &h.body_capture_limit.to_string());
    c.field("insecure", &h.insecure.to_string());
    c.field("cacert", &h.cacert.is_some().to_string());
    // Only when not the default, so plans written before these options keep their hash.
    if h.connection == crate::http::ConnectionMode::New {
        c.field("connection", "new");
    }
    if !h.tls_resumption {
        c.field("tls_resumption", "false");
    }
    if h.streams_per_connection > 1 {
        c.field(
            "streams_per_connection",
            &h.streams_per_connection.to_string(),
        );
    }
    c.0
}

fn environment(c: &mut Canon, e: &Environment) {
    c.field("vars", &e.vars.len().to_string());
    for (k, v) in &e.vars {
        c.field("k", k);
        c.tpl("v", v);
    }
    c.pairs("headers", &e.headers);
    c.pairs("cookies", &e.cookies);
    c.pairs("query", &e.query);
    c.field("flagset", &e.flags.len().to_string());
    for (k, on) in &e.flags {
        c.field(k, &on.to_string());
    }
}

fn stages(c: &mut Canon, s: &[Stage]) {
    c.field("stages", &s.len().to_string());
    for st in s {
        c.secs("d", st.duration);
        c.num("t", st.target);
    }
}

fn load(c: &mut Canon, l: &LoadModel) {
    match l {
        LoadModel::Closed {
            vus,
            duration,
            iterations,
            stages: st,
        } => {
            c.field("load", "closed");
            c.field("vus", &vus.to_string());
            c.field(
                "duration",
                &duration.map_or(String::new(), |d| d.as_nanos().to_string()),
            );
            c.field(
                "iterations",
                &iterations.map_or(String::new(), |i| i.to_string()),
            );
            stages(c, st);
        }
        LoadModel::Open {
            rate,
            max_vus,
            duration,
            stages: st,
        } => {
            c.field("load", "open");
            c.num("rate", *rate);
            c.field("max_vus", &max_vus.to_string());
            c.secs("duration", *duration);
            stages(c, st);
        }
    }
}

fn nodes(c: &mut Canon, tag: &str, ns: &[StepNode]) {
    c.field(tag, &ns.len().to_string());
    for n in ns {
        match n {
            StepNode::Request(s) => step(c, s),
            StepNode::Parallel(v) => {
                c.field("parallel", &v.len().to_string());
                v.iter().for_each(|s| step(c, s));
            }
            StepNode::Think { min, max } => {
                c.field("think", "");
                c.secs("min", *min);
                c.secs("max", *max);
            }
        }
    }
}

fn step(c: &mut Canon, s: &Step) {
    c.field("step", &s.name);
    c.field("method", s.method.as_str());
    c.tpl("url", &s.url);
    c.pairs("query", &s.query);
    c.pairs("headers", &s.headers);
    c.pairs("cookies", &s.cookies);
    match &s.body {
        None => c.field("body", "none"),
        Some(BodySpec::Json(v)) => c.field("json", &v.to_string()),
        Some(BodySpec::Form(f)) => c.pairs("form", f),
        Some(BodySpec::Raw {
            content,
            content_type,
        }) => {
            c.tpl("raw", content);
            c.field("type", content_type.as_deref().unwrap_or(""));
        }
        Some(BodySpec::Bytes {
            content,
            content_type,
        }) => {
            c.field("bytes", &String::from_utf8_lossy(content));
            c.field("type", content_type.as_deref().unwrap_or(""));
        }
    }
    c.field("expect", &s.expect.len().to_string());
    for e in &s.expect {
        expectation(c, e);
    }
    c.field("capture", &s.capture.len().to_string());
    for cap in &s.capture {
        capture(c, cap);
    }
    c.field(
        "timeout",
        &s.timeout
            .map_or(String::new(), |d| d.as_nanos().to_string()),
    );
    c.field("redirects", &s.follow_redirects.to_string());
    match &s.poll {
        None => c.field("poll", "none"),
        Some(p) => {
            c.secs("poll", p.interval);
            c.secs("until", p.timeout);
            c.field("since", p.since.as_deref().unwrap_or(""));
        }
    }
    // Only when present, so plans without `if:` keep the hash they always had.
    if let Some(cond) = &s.condition {
        c.field("if", &cond.src);
    }
}

fn value_check(c: &mut Canon, v: &ValueCheck) {
    match v {
        ValueCheck::Exists => c.field("exists", ""),
        ValueCheck::Equals(t) => c.tpl("equals", t),
        ValueCheck::Matches(r) => c.field("matches", r.as_str()),
        ValueCheck::Number(n) => c.field("number", &n.describe()),
    }
}

fn expectation(c: &mut Canon, e: &Expectation) {
    match e {
        Expectation::Status(s) => c.field(
            "status",
            &s.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
        ),
        Expectation::Header { name, check } => {
            c.field("header", name);
            value_check(c, check);
        }
        Expectation::Json {
            path_src, check, ..
        } => {
            c.field("jsonpath", path_src);
            match check {
                JsonCheck::Exists => c.field("exists", ""),
                JsonCheck::Equals(v) => c.field("equals", &v.to_string()),
                JsonCheck::Matches(r) => c.field("matches", r.as_str()),
                JsonCheck::Number(n) => c.field("number", &n.describe()),
                JsonCheck::Count(n) => c.field("count", &n.describe()),
                JsonCheck::Length(n) => c.field("length", &n.describe()),
            }
        }
        Expectation::BodyContains(t) => c.tpl("contains", t),
        Expectation::MaxDuration(d) => c.secs("max_duration", *d),
    }
}

fn capture(c: &mut Canon, cap: &Capture) {
    c.field("var", &cap.var);
    match &cap.source {
        CaptureSource::Json { path_src, .. } => c.field("json", path_src),
        CaptureSource::Header(h) => c.field("header", h),
        CaptureSource::Cookie(k) => c.field("cookie", k),
        CaptureSource::Regex(r) => c.field("regex", r.as_str()),
    }
    if let Some(d) = &cap.default {
        c.field("default", &d.to_string());
    }
}

//! An imported request (curl or HAR) as a one-step `Plan`, for `breakdown CURL-FILE` and the
//! scenario-less forms of `repro`/`bisect`: the request itself is the flow.

use super::Imported;
use crate::plan::{BodySpec, HttpOptions, LoadModel, Plan, Step, StepNode, TargetSpec, Template};

/// Builds the plan. The imported headers, cookies, flags and query become the plan's
/// environment (so `repro`/`bisect` can vary them item by item); the body is sent as is.
pub fn to_plan(imp: &Imported, load: LoadModel, mut http: HttpOptions) -> Result<Plan, String> {
    let sent = imp.as_sent();
    let imp: &Imported = &sent;
    let base = url::Url::parse(&imp.base).map_err(|e| format!("URL `{}`: {e}", imp.base))?;
    http.insecure |= imp.insecure;
    let body = imp
        .env
        .body
        .as_ref()
        .map(|b| BodySpec::exact(&b.text, b.binary.as_deref(), b.content_type.clone()));
    let mut env_spec = imp.env.clone();
    env_spec.body = None;
    // A query that items would not reproduce byte for byte travels verbatim in the URL.
    let mut url = imp.path.clone();
    if !imp.query_items_exact()
        && let Some(q) = &imp.raw_query
    {
        url.push('?');
        url.push_str(q);
        env_spec.query.clear();
    }
    let step = Step {
        name: "request".into(),
        method: imp.method.clone(),
        url: Template::literal(url),
        query: Vec::new(),
        headers: Vec::new(),
        cookies: Vec::new(),
        body,
        expect: Vec::new(),
        capture: Vec::new(),
        timeout: None,
        follow_redirects: imp.follow_redirects,
        poll: None,
        stream: None,
        condition: None,
        line: 0,
    };
    let max_duration = crate::plan::single::max_duration(&load);
    let env = env_spec.to_environment();
    let mut envs = std::collections::BTreeMap::new();
    envs.insert("imported".to_string(), env.clone());
    Ok(Plan {
        name: "request".into(),
        source: None,
        target: TargetSpec::Url(base),
        env_name: Some("imported".into()),
        envs,
        env,
        flags: imp.flag_sources.first().cloned().unwrap_or_default(),
        data: Vec::new(),
        load,
        setup: Vec::new(),
        steps: vec![StepNode::Request(Box::new(step))],
        thresholds: Vec::new(),
        http,
        max_duration,
        graceful_stop: crate::plan::DEFAULT_GRACEFUL_STOP,
    })
}

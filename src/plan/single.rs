//! A plan of one request, for the quick case (`run --url`, `breakdown URL`, a curl file):
//! the habit hey, oha and curl users have.

use super::{BodySpec, HttpOptions, LoadModel, Plan, Step, Template};
use std::time::Duration;

/// One request as typed on a command line.
#[derive(Debug, Clone, Default)]
pub struct SingleRequest {
    pub method: String,
    pub url: String,
    /// `Name: value` lines.
    pub headers: Vec<String>,
    /// `name=value` pairs (curl's `-b 'a=1; b=2'` already split).
    pub cookies: Vec<(String, String)>,
    pub body: Option<String>,
}

/// The hard cap of a one-request run: its duration plus 30 s of grace, or 10 minutes for an
/// iteration-driven load.
#[must_use]
pub fn max_duration(load: &LoadModel) -> Duration {
    match load {
        LoadModel::Closed {
            duration: Some(d), ..
        }
        | LoadModel::Open { duration: d, .. } => *d + Duration::from_secs(30),
        LoadModel::Closed { .. } => Duration::from_secs(600),
    }
}

/// Builds the plan; errors name the flag and the value that is wrong.
pub fn plan(req: &SingleRequest, load: LoadModel, http: HttpOptions) -> Result<Plan, String> {
    let raw = &req.url;
    let url = url::Url::parse(raw).map_err(|e| format!("URL `{raw}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL `{raw}`: only http and https are supported"));
    }
    let method = http::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| format!("-X `{}`: not an HTTP method", req.method))?;
    let mut headers = Vec::new();
    for h in &req.headers {
        let Some((k, v)) = h.split_once(':') else {
            return Err(format!("-H `{h}`: expected 'Name: value'"));
        };
        let k = k.trim();
        if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(format!("-H: `{k}` is not a valid header name"));
        }
        headers.push((k.to_string(), Template::literal(v.trim())));
    }
    let cookies = req
        .cookies
        .iter()
        .map(|(k, v)| (k.clone(), Template::literal(v.clone())))
        .collect();
    let body = req.body.as_ref().map(|d| BodySpec::Raw {
        content: Template::literal(d.clone()),
        content_type: None,
    });
    let mut step = Step::one_request(
        "request",
        method,
        Template::literal(url.as_str()),
        body,
        true,
    );
    step.headers = headers;
    step.cookies = cookies;
    let max_duration = max_duration(&load);
    let origin = super::origin_of(&url);
    Ok(Plan::one_request(
        "url",
        origin,
        step,
        load,
        http,
        max_duration,
    ))
}

//! The HTTP surface: routes, the middleware every response passes (Server-Timing, errors as
//! problem+json), sign-in (bearer token or session cookie) and request context (locale,
//! feature flags). Handlers live in the sibling files; none of them touches sockets.

mod body;
mod investments;
mod onboarding;
pub(crate) mod problem;
mod reads;
mod ws;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use super::AppState;
use super::seed::token_hash;
use super::timing;
use problem::{ApiError, PROBLEM_JSON, problem_for};

pub(crate) type Shared = Arc<AppState>;

/// The whole API; testable without a socket.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/demo/identities", get(reads::identities))
        .route("/investments", post(investments::create))
        .route("/investments/{id}", get(investments::get_one))
        .route("/investments/{id}/events", get(investments::events))
        .route("/users/{id}/investments/total", get(reads::total))
        .route("/users/{id}/profile", get(reads::profile))
        .route("/startups", get(reads::list_startups))
        .route("/startups/{id}", get(reads::get_startup))
        .route("/onboarding/start", post(onboarding::start))
        .route("/onboarding/steps/{n}", post(onboarding::step))
        .route("/onboarding/complete", post(onboarding::complete))
        // The web app (src/demo/app) and the WebSocket twin of the status stream.
        .route("/app", get(crate::demo::app::redirect))
        .route("/app/", get(crate::demo::app::index))
        .route("/app/{file}", get(crate::demo::app::file))
        .route("/investments/{id}/ws", get(ws::status))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route") })
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .layer(middleware::from_fn(around))
        .with_state(state)
}

/// Every response: errors become problem+json (even those produced by the framework, such as
/// 405), and `Server-Timing` tells where the time went.
async fn around(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // W3C trace context: the caller's trace id goes into the slow-request log line and comes
    // back in `traceresponse` (with this server's own span id), so a client can tie what it
    // saw to what the server logged.
    let trace = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id);
    let line = (req.method().clone(), req.uri().clone());
    let (resp, timing) = timing::scope(next.run(req)).await;
    let mut resp = ensure_problem(resp).await;
    let elapsed = started.elapsed();
    let value = timing::header_value(elapsed, timing);
    if elapsed >= SLOW_REQUEST {
        let trace_id = trace.as_deref().unwrap_or("-");
        super::log::demo_log!(
            "slow request: {} {} {} {:.0}ms trace_id={trace_id} server-timing: {value}",
            line.0,
            line.1.path(),
            resp.status().as_u16(),
            elapsed.as_secs_f64() * 1000.0
        );
    }
    if let Some(t) = &trace {
        let span = fastrand::u64(1..);
        if let Ok(v) = HeaderValue::from_str(&format!("00-{t}-{span:016x}-01")) {
            resp.headers_mut().insert("traceresponse", v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// Requests at least this slow are logged, with their trace id.
const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_millis(250);

/// The trace id of a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if valid and
/// not all zeros.
fn trace_id(v: &str) -> Option<String> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match parts.as_slice() {
        [ver, id, span, flags]
            if hex(ver, 2)
                && *ver != "ff"
                && hex(id, 32)
                && hex(span, 16)
                && hex(flags, 2)
                && id.bytes().any(|b| b != b'0') =>
        {
            Some((*id).to_string())
        }
        _ => None,
    }
}

async fn ensure_problem(resp: Response) -> Response {
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let detail = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let json = problem_for(status, "http", &detail, None).to_json();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, Body::from(json))
}

/// The signed-in user: `Authorization: Bearer <token>` or cookie `session=<token>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct User(pub i64);

impl FromRequestParts<Shared> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).or_else(|| cookie(&parts.headers, "session"));
        let Some(token) = token else {
            return Err(ApiError::unauthorized(
                "sign in with Authorization: Bearer <token> or a session=<token> cookie \
                 (GET /demo/identities lists demo tokens)",
            ));
        };
        match state.sessions.get(&token_hash(&token)) {
            Some(&user_id) => Ok(User(user_id)),
            None => Err(ApiError::unauthorized("the token is not valid")),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// The value of cookie `name`, from any `Cookie` header.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

/// Feature flags: `X-Feature-Flags: a,b` and/or cookie `ff=a|b`, lower-cased.
pub(crate) fn feature_flags(headers: &HeaderMap) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for value in &headers.get_all("x-feature-flags") {
        if let Ok(v) = value.to_str() {
            flags.extend(v.split(',').map(|f| f.trim().to_ascii_lowercase()));
        }
    }
    if let Some(v) = cookie(headers, "ff") {
        let v = v.replace("%7C", "|").replace("%7c", "|");
        flags.extend(v.split('|').map(|f| f.trim().to_ascii_lowercase()));
    }
    flags.remove("");
    flags
}

/// The first language tag of `Accept-Language`, lower-cased (`de-de`), if any.
pub(crate) fn locale(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let first = value.split(',').next()?.split(';').next()?.trim();
    (!first.is_empty() && first != "*").then(|| first.to_ascii_lowercase())
}

/// A positive id from the path; anything else is a resource that does not exist (404).
pub(crate) fn path_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::not_found(what)),
    }
}

//! `ApiError`: every failed request becomes an `application/problem+json` body (RFC 9457) with
//! a `field` path when one input is to blame. Internal causes are logged, never sent.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Serialize)]
pub(crate) struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// A request that cannot be answered with success.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            field: None,
            headers: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422: the input is well-formed but `field` is not acceptable.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", detail).with_field(field)
    }

    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no such {what}"),
        )
    }

    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        err.headers.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sonde-demo\""),
        ));
        err
    }

    /// 500 for a bug or an injected fault; the cause goes to stderr, not to the client.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        crate::demo::log::demo_log!("internal error: {context}: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle this request",
        )
    }

    pub fn problem(&self) -> Problem {
        problem_for(self.status, self.kind, &self.detail, self.field.clone())
    }
}

pub(crate) fn problem_for(
    status: StatusCode,
    kind: &str,
    detail: &str,
    field: Option<String>,
) -> Problem {
    Problem {
        kind: format!("urn:sonde:demo:problem:{kind}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail: detail.to_string(),
        field,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if super::super::db::is_busy(&err) {
            let mut busy = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the database is busy; retry shortly",
            );
            busy.headers
                .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
            return busy;
        }
        Self::internal("database", &err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.problem().to_json();
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

//! The demo's web app (`/app/`): plain JavaScript modules, a stylesheet and one HTML page,
//! embedded in the binary (no build step, nothing read from disk). Each asset is served with a
//! strong `ETag` (its SHA-256) and `Cache-Control`; a matching `If-None-Match` gets `304`.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::api::problem::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    /// The page itself is revalidated on every load; scripts and styles may be reused briefly.
    cache_control: &'static str,
    body: &'static str,
    etag: String,
}

fn asset(
    name: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    body: &'static str,
) -> Asset {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Asset {
        name,
        content_type,
        cache_control,
        body,
        etag: format!("\"{hex}\""),
    }
}

static ASSETS: LazyLock<[Asset; 4]> = LazyLock::new(|| {
    [
        asset(
            "index.html",
            "text/html; charset=utf-8",
            "no-cache",
            include_str!("index.html"),
        ),
        asset(
            "app.js",
            "text/javascript; charset=utf-8",
            "public, max-age=60, must-revalidate",
            include_str!("app.js"),
        ),
        asset(
            "api.js",
            "text/javascript; charset=utf-8",
            "public, max-age=60, must-revalidate",
            include_str!("api.js"),
        ),
        asset(
            "app.css",
            "text/css; charset=utf-8",
            "public, max-age=60, must-revalidate",
            include_str!("app.css"),
        ),
    ]
});

/// True if `If-None-Match` lists `etag` (or is `*`); weak comparison, as RFC 9110 §13.1.2 asks.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || bare(tag) == bare(etag))
}

fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let mut resp = if not_modified(headers, &asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(asset.cache_control),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `GET /app`: the app lives under `/app/` (relative module paths resolve there).
pub(crate) async fn redirect() -> Redirect {
    Redirect::permanent("/app/")
}

/// `GET /app/`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(&ASSETS[0], &headers)
}

/// `GET /app/{file}`: a script or stylesheet; anything else is 404.
pub(crate) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::not_found("app file").into_response(),
    }
}

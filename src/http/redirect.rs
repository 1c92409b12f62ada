//! Redirect rules: which responses redirect, where to, and what the next request keeps.
//! 301/302/303 become GET without a body (HEAD stays HEAD); 307/308 keep method and body.
//! Credentials (every header `redact::is_secret_header` names: `Authorization`, `Cookie`,
//! `X-Api-Key`, `X-Auth-Token`, ...) never follow to another host or port. Pure functions: no I/O.

use http::{HeaderMap, Method, StatusCode, header};
use url::Url;

/// The next request of a redirect chain.
#[derive(Debug)]
pub(crate) struct Next {
    pub url: Url,
    pub method: Method,
    pub keep_body: bool,
}

/// If `status` + `Location` redirect, where to. `Err` when the Location is unusable.
pub(crate) fn next(
    status: StatusCode,
    headers: &HeaderMap,
    from: &Url,
    method: &Method,
) -> Option<Result<Next, String>> {
    let keep = match status.as_u16() {
        301..=303 => false,
        307 | 308 => true,
        _ => return None,
    };
    let location = headers.get(header::LOCATION)?;
    let Ok(location) = location.to_str() else {
        return Some(Err("redirect Location is not valid text".into()));
    };
    let url = match from.join(location) {
        Ok(u) => u,
        Err(e) => return Some(Err(format!("redirect Location cannot be resolved: {e}"))),
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        return Some(Err(format!(
            "redirect to unsupported scheme `{}`",
            url.scheme()
        )));
    }
    let method = if keep || *method == Method::HEAD {
        method.clone()
    } else {
        Method::GET
    };
    Some(Ok(Next {
        url,
        method,
        keep_body: keep,
    }))
}

/// Same host and port (the scheme's default port when none is written).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// Adjust the headers carried to `next`: drop the body's headers when the body is dropped, and
/// credentials when leaving the host/port.
pub(crate) fn carry_headers(headers: &mut HeaderMap, from: &Url, next: &Next) {
    if !next.keep_body {
        for h in [
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::TRANSFER_ENCODING,
        ] {
            headers.remove(h);
        }
    }
    if !same_origin(from, &next.url) {
        // Every credential stays with its origin: the redactor's list of secret headers
        // (`Authorization`, `Cookie`, `X-Api-Key`, `X-Auth-Token`, any `*token*`, ...).
        let secret: Vec<http::HeaderName> = headers
            .keys()
            .filter(|n| crate::redact::is_secret_header(n.as_str()))
            .cloned()
            .collect();
        for n in secret {
            headers.remove(n);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use http::HeaderValue;

    fn loc(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn see_other_switches_to_get_and_temporary_keeps_post() {
        let from = Url::parse("http://a.test/x/y").unwrap();
        let n = next(StatusCode::SEE_OTHER, &loc("z"), &from, &Method::POST)
            .unwrap()
            .unwrap();
        assert_eq!(n.method, Method::GET);
        assert!(!n.keep_body);
        assert_eq!(n.url.as_str(), "http://a.test/x/z");
        let n = next(
            StatusCode::TEMPORARY_REDIRECT,
            &loc("/q"),
            &from,
            &Method::POST,
        )
        .unwrap()
        .unwrap();
        assert_eq!(n.method, Method::POST);
        assert!(n.keep_body);
        let n = next(StatusCode::FOUND, &loc("/q"), &from, &Method::HEAD)
            .unwrap()
            .unwrap();
        assert_eq!(n.method, Method::HEAD);
    }

    #[test]
    fn non_redirects_and_missing_location_are_final() {
        let from = Url::parse("http://a.test/").unwrap();
        assert!(next(StatusCode::OK, &loc("/x"), &from, &Method::GET).is_none());
        assert!(next(StatusCode::NOT_MODIFIED, &loc("/x"), &from, &Method::GET).is_none());
        assert!(next(StatusCode::FOUND, &HeaderMap::new(), &from, &Method::GET).is_none());
        assert!(
            next(StatusCode::FOUND, &loc("ftp://x/"), &from, &Method::GET)
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn credentials_stay_on_their_origin() {
        let from = Url::parse("http://127.0.0.1:8080/a").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        h.insert(header::COOKIE, HeaderValue::from_static("sid=1"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        h.insert("x-api-key", HeaderValue::from_static("k-123"));
        h.insert("x-custom-token", HeaderValue::from_static("t-123"));
        let same = next(StatusCode::FOUND, &loc("/b"), &from, &Method::GET)
            .unwrap()
            .unwrap();
        let mut kept = h.clone();
        carry_headers(&mut kept, &from, &same);
        assert!(kept.contains_key(header::AUTHORIZATION));
        for other in ["http://localhost:8080/b", "http://127.0.0.1:8081/b"] {
            let n = next(StatusCode::FOUND, &loc(other), &from, &Method::GET)
                .unwrap()
                .unwrap();
            let mut moved = h.clone();
            carry_headers(&mut moved, &from, &n);
            assert!(!moved.contains_key(header::AUTHORIZATION), "{other}");
            assert!(!moved.contains_key(header::COOKIE), "{other}");
            assert!(!moved.contains_key("x-api-key"), "{other}");
            assert!(!moved.contains_key("x-custom-token"), "{other}");
            assert!(moved.contains_key(header::ACCEPT));
        }
    }
}

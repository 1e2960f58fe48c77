//! Security headers on every response, and answering a revalidation.

use poem::http::{header, HeaderValue};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

pub struct SecurityHeaders {
    csp: HeaderValue,
}

impl SecurityHeaders {
    /// `frame_origin` is where the Firefly viewer is served from, if not from
    /// our own origin.
    pub fn new(frame_origin: Option<&str>) -> Self {
        let frames = match frame_origin {
            Some(o) => format!("'self' {o}"),
            None => "'self'".to_string(),
        };
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-src {frames}; frame-ancestors 'self'; form-action 'self'; \
             base-uri 'none'; object-src 'none'"
        );
        Self {
            csp: HeaderValue::from_str(&csp).expect("CSP is ASCII"),
        }
    }
}

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        SecurityHeadersEndpoint {
            inner: ep,
            csp: self.csp.clone(),
        }
    }
}

pub struct SecurityHeadersEndpoint<E> {
    inner: E,
    csp: HeaderValue,
}

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let mut resp = self.inner.call(req).await?.into_response();
        let h = resp.headers_mut();
        h.insert("content-security-policy", self.csp.clone());
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
        h.insert(
            "referrer-policy",
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        h.insert(
            "permissions-policy",
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        );
        // Pages, fragments and exports show what one signed-in person may
        // see: no browser or proxy cache may keep them for the next person
        // at that machine. Responses that may be cached say so themselves
        // (static assets, media).
        if !h.contains_key(header::CACHE_CONTROL) {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Ok(resp)
    }
}

/// `304 Not Modified` when the request's `If-None-Match` names `etag` (a
/// quoted entity tag), so a browser that has the answer is not sent it again.
pub fn not_modified(req: &Request, etag: &str) -> Option<Response> {
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    matches.then(|| {
        Response::builder()
            .status(poem::http::StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .finish()
    })
}

//! CSRF protection for every state-changing request that a browser session
//! can make: the request must come from our own origin (when the browser says
//! where it comes from) and carry the session's token, either in the
//! `X-CSRF-Token` header (htmx sends it from `hx-headers` on `<body>`) or in a
//! `csrf_token` form field (plain forms).

use poem::http::{header, Method};
use poem::{Endpoint, Middleware, Request};

use crate::web::plumbing::error::AppError;
use crate::web::plumbing::session::TypedSession;

pub const HEADER: &str = "x-csrf-token";
pub const FIELD: &str = "csrf_token";
/// The token of a visitor who is not signed in, kept in a cookie of its own
/// (double submit) so that showing the login page stores no session.
pub const PRESESSION_COOKIE: &str = "vetter_csrf";
/// Plain forms are small; anything bigger must send the header.
const MAX_FORM_BYTES: usize = 1 << 20;

fn is_safe(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// `Origin` (or, failing that, `Referer`) must name this site: the public URL
/// or the host the request was sent to. Requests that name neither are
/// non-browser clients, and still need the token.
fn same_origin(req: &Request, public_origin: &str) -> bool {
    let headers = req.headers();
    let claimed = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let after = referer.find("://")? + 3;
            let end = referer[after..]
                .find('/')
                .map_or(referer.len(), |i| after + i);
            Some(referer[..end].to_string())
        });
    let Some(origin) = claimed else {
        return true;
    };
    if origin == public_origin {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some((_, origin_host)), Some(host)) => origin_host == host,
        _ => false,
    }
}

fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub struct Csrf {
    pub public_origin: String,
}

impl<E: Endpoint> Middleware<E> for Csrf {
    type Output = CsrfEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        CsrfEndpoint {
            inner: ep,
            public_origin: self.public_origin.clone(),
        }
    }
}

pub struct CsrfEndpoint<E> {
    inner: E,
    public_origin: String,
}

impl<E: Endpoint> Endpoint for CsrfEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        if is_safe(req.method()) {
            return self.inner.call(req).await;
        }
        if !same_origin(&req, &self.public_origin) {
            tracing::warn!(
                path = req.uri().path(),
                "cross-origin state-changing request refused"
            );
            return Err(AppError::CsrfRejected.into());
        }
        let session = TypedSession::from_request_ref(&req)?;
        let expected = match session.existing_csrf_token().await? {
            Some(t) => t,
            None => match presession_cookie(&req) {
                Some(t) => t,
                None => return Err(AppError::CsrfRejected.into()),
            },
        };
        let from_header = req
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let presented = match from_header {
            Some(t) => Some(t),
            None if is_urlencoded(&req) => {
                let bytes = req
                    .take_body()
                    .into_bytes_limit(MAX_FORM_BYTES)
                    .await
                    .map_err(|_| AppError::BadRequest("the form is too large".into()))?;
                let token = form_field(&bytes, FIELD);
                req.set_body(bytes);
                token
            }
            None => None,
        };
        match presented {
            Some(t) if tokens_match(&t, &expected) => self.inner.call(req).await,
            _ => Err(AppError::CsrfRejected.into()),
        }
    }
}

/// The visitor's pre-session token, if the browser sent one that could be
/// ours (a planted short or odd value is ignored).
pub fn presession_cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == PRESESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that gives a visitor `token` as their
/// pre-session token.
pub fn presession_set_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{PRESESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

fn is_urlencoded(req: &Request) -> bool {
    req.content_type()
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_field_is_found_among_others() {
        assert_eq!(
            form_field(b"a=1&csrf_token=abc%3D&b=2", FIELD).as_deref(),
            Some("abc=")
        );
        assert_eq!(form_field(b"a=1", FIELD), None);
    }

    #[test]
    fn the_presession_cookie_is_read_among_others_and_must_look_like_ours() {
        let token = "ab".repeat(32);
        let req = |cookie: &str| {
            Request::builder()
                .header(header::COOKIE, cookie.to_string())
                .finish()
        };
        let found = presession_cookie(&req(&format!("a=1; {PRESESSION_COOKIE}={token}; b=2")));
        assert_eq!(found.as_deref(), Some(token.as_str()));
        assert_eq!(
            presession_cookie(&req(&format!("{PRESESSION_COOKIE}=short"))),
            None
        );
        assert_eq!(presession_cookie(&req("other=1")), None);
    }

    #[test]
    fn token_comparison_needs_equal_strings() {
        assert!(tokens_match("abcd", "abcd"));
        assert!(!tokens_match("abcd", "abce"));
        assert!(!tokens_match("abcd", "abc"));
    }

    #[test]
    fn origin_must_be_the_public_origin_or_the_host() {
        let req = |origin: &str| {
            Request::builder()
                .method(Method::POST)
                .header(header::HOST, "127.0.0.1:8000")
                .header(header::ORIGIN, origin)
                .finish()
        };
        let public = "https://vetter.example.org";
        assert!(same_origin(&req("https://vetter.example.org"), public));
        assert!(same_origin(&req("http://127.0.0.1:8000"), public));
        assert!(!same_origin(&req("https://evil.example"), public));
        assert!(!same_origin(&req("null"), public));
        let no_origin = Request::builder().method(Method::POST).finish();
        assert!(same_origin(&no_origin, public));
    }
}

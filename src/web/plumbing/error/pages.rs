//! Turns every error, ours or the framework's (bad query string, unknown
//! route), into what the client can use: a friendly page, an htmx toast that
//! lands in the toast area rather than in whatever the request targeted, or
//! JSON for the API. Internal errors are logged here, once, with their causes.

use askama::Template;
use poem::http::{header, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::web::plumbing::error::{AppError, Described, Problem};
use crate::web::plumbing::layout::Layout;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    title: &'static str,
    message: String,
    status: u16,
}

#[derive(Template)]
#[template(path = "partials/toast.html")]
struct Toast<'a> {
    kind: &'a str,
    message: &'a str,
}

pub fn page(d: Described, staging: bool) -> Response {
    let html = ErrorPage {
        layout: Layout::bare(staging),
        title: d.title,
        message: d.message,
        status: d.status.as_u16(),
    }
    .render()
    .unwrap_or_else(|_| "Something went wrong".to_string());
    poem::web::Html(html).with_status(d.status).into_response()
}

fn toast(d: Described) -> Response {
    let html = Toast {
        kind: "error",
        message: &d.message,
    }
    .render()
    .unwrap_or_default();
    Response::builder()
        .status(d.status)
        .content_type("text/html; charset=utf-8")
        .header("HX-Retarget", "#toasts")
        .header("HX-Reswap", "beforeend")
        .body(html)
}

fn json(d: Described, problems: &[Problem]) -> Response {
    let mut body = serde_json::json!({"error": d.title, "message": d.message});
    if !problems.is_empty() {
        body["problems"] = serde_json::json!(problems);
    }
    let mut resp = poem::web::Json(body).with_status(d.status).into_response();
    if d.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

/// Framework errors carry their own text; keep it where it helps the person
/// (a malformed parameter) and replace it where it does not.
fn describe(err: &poem::Error) -> Described {
    if let Some(app) = err.downcast_ref::<AppError>() {
        if let AppError::Internal(e) = app {
            if app.is_outage() {
                tracing::warn!(error = %e, "database unavailable");
            } else {
                tracing::error!(error = ?e, "internal error");
            }
        }
        return app.describe();
    }
    let status = err.status();
    let (title, message) = match status {
        StatusCode::NOT_FOUND => ("Not found", "There is no page at this address.".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Method not allowed",
            "This address does not accept that kind of request.".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("Too large", "The request body is too large.".to_string())
        }
        s if s.is_client_error() => ("Bad request", err.to_string()),
        _ => {
            tracing::error!(error = %err, "unhandled framework error");
            (
                "Something went wrong",
                "The server could not finish this request.".to_string(),
            )
        }
    };
    Described {
        status,
        title,
        message,
    }
}

pub struct ErrorPages {
    pub staging: bool,
}

impl<E: Endpoint> Middleware<E> for ErrorPages {
    type Output = ErrorPagesEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        ErrorPagesEndpoint {
            inner: ep,
            staging: self.staging,
        }
    }
}

pub struct ErrorPagesEndpoint<E> {
    inner: E,
    staging: bool,
}

/// Which form of error the client can use, read from the request before
/// the request is handed on.
#[derive(Debug, Clone, Copy)]
pub struct Wants {
    json: bool,
    htmx: bool,
}

impl Wants {
    pub fn of(req: &Request) -> Self {
        let api = req.uri().path().starts_with("/api/");
        let wants_json = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        Self {
            json: api || wants_json,
            htmx: req.headers().contains_key("hx-request"),
        }
    }

    pub fn render(self, d: Described, problems: &[Problem], staging: bool) -> Response {
        if self.json {
            json(d, problems)
        } else if self.htmx {
            toast(d)
        } else {
            page(d, staging)
        }
    }
}

impl<E: Endpoint> Endpoint for ErrorPagesEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let wants = Wants::of(&req);
        match self.inner.call(req).await {
            Ok(r) => Ok(r.into_response()),
            Err(err) => {
                let d = describe(&err);
                let problems = err
                    .downcast_ref::<AppError>()
                    .map(|e| e.problems().to_vec())
                    .unwrap_or_default();
                Ok(wants.render(d, &problems, self.staging))
            }
        }
    }
}

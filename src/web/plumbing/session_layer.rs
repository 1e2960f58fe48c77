//! Hosts tower-sessions (a tower layer over `http::Request`) inside poem.
//!
//! poem's own tower adapter cannot carry http-based layers (see
//! rust-stack.md §2), so this bridge converts between the two request types.
//! The poem-only request state (remote address, scheme, ...) cannot ride in an
//! `http::Request`, so it is parked in an extension on the way in and put back
//! on the way out, and the handler sees the request exactly as poem made it,
//! plus the `Session` extension the layer adds.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use poem::endpoint::BoxEndpoint;
use poem::{Body, Endpoint, Request, RequestParts, Response, ResponseParts};
use tower_layer::Layer;
use tower_service::Service;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use crate::config::Config;
use crate::web::plumbing::error::pages::Wants;
use crate::web::plumbing::error::Described;
use crate::web::state::AppState;

type Layered = <SessionManagerLayer<PostgresStore> as Layer<PoemService>>::Service;

/// The request state poem keeps outside `http::Request`.
#[derive(Clone)]
struct Parked(Arc<Mutex<Option<RequestParts>>>);

/// Marks a response the endpoint made. tower-sessions answers a failed
/// session save with a bare, empty 500 of its own, which lacks the mark.
#[derive(Clone, Copy)]
struct FromEndpoint;

/// The handler side: a tower service that calls a poem endpoint.
#[derive(Clone)]
pub struct PoemService(Arc<BoxEndpoint<'static, Response>>);

impl Service<http::Request<Body>> for PoemService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let ep = self.0.clone();
        Box::pin(async move {
            let (head, body) = req.into_parts();
            let parked = head
                .extensions
                .get::<Parked>()
                .and_then(|p| p.0.lock().ok()?.take())
                .expect("the session bridge parks the request parts");
            let mut parts = parked;
            parts.method = head.method;
            parts.uri = head.uri;
            parts.headers = head.headers;
            let mut extensions = head.extensions;
            extensions.remove::<Parked>();
            parts.extensions.extend(extensions);
            let resp = ep
                .call(Request::from_parts(parts, body))
                .await
                .unwrap_or_else(|e| e.into_response());
            let (p, body) = resp.into_parts();
            let mut out = http::Response::new(body);
            *out.status_mut() = p.status;
            *out.version_mut() = p.version;
            *out.headers_mut() = p.headers;
            *out.extensions_mut() = p.extensions;
            out.extensions_mut().insert(FromEndpoint);
            Ok(out)
        })
    }
}

/// An endpoint wrapped in the session layer.
pub struct WithSession {
    service: Layered,
}

pub fn session_layer(config: &Config, store: PostgresStore) -> SessionManagerLayer<PostgresStore> {
    let idle = time::Duration::try_from(config.session_idle).unwrap_or(time::Duration::days(14));
    SessionManagerLayer::new(store)
        .with_name("vetter_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
}

impl WithSession {
    pub fn new<E>(layer: &SessionManagerLayer<PostgresStore>, ep: E) -> Self
    where
        E: Endpoint + 'static,
    {
        let ep = Arc::new(poem::EndpointExt::boxed(
            poem::EndpointExt::map_to_response(ep),
        ));
        Self {
            service: layer.layer(PoemService(ep)),
        }
    }
}

impl Endpoint for WithSession {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let wants = Wants::of(&req);
        let staging = req.data::<AppState>().is_some_and(|s| s.config.staging);
        let (mut parts, body) = req.into_parts();
        let mut hreq = http::Request::new(body);
        *hreq.method_mut() = parts.method.clone();
        *hreq.uri_mut() = parts.uri.clone();
        *hreq.version_mut() = parts.version;
        *hreq.headers_mut() = std::mem::take(&mut parts.headers);
        *hreq.extensions_mut() = std::mem::take(&mut parts.extensions);
        hreq.extensions_mut()
            .insert(Parked(Arc::new(Mutex::new(Some(parts)))));
        let mut service = self.service.clone();
        let resp = match service.call(hreq).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (mut p, body) = resp.into_parts();
        if p.extensions.remove::<FromEndpoint>().is_none() {
            return Ok(session_not_saved(wants, staging));
        }
        Ok(Response::from_parts(
            ResponseParts {
                status: p.status,
                version: p.version,
                headers: p.headers,
                extensions: p.extensions,
            },
            body,
        ))
    }
}

/// The endpoint finished (it may have saved something) but the session could
/// not be stored. The store only reports its error as text and logs it, and a
/// failing save is in practice the database going away, so this is told as
/// an outage: in the form the client reads, and honest that the work may
/// have been done.
fn session_not_saved(wants: Wants, staging: bool) -> Response {
    tracing::warn!("session not saved: answering 503");
    let d = Described {
        status: poem::http::StatusCode::SERVICE_UNAVAILABLE,
        title: "Temporarily unavailable",
        message: "The database stopped answering before this could be confirmed, so it may or \
                  may not have been saved. Try again in a moment; a rating sent again is not \
                  counted twice."
            .into(),
    };
    wants.render(d, &[], staging)
}

//! Per-route bounds, set in the route table: how large a request body may
//! be, and which connection budget the handler draws from.
//!
//! The body limit is the outermost layer of a route, so it applies before
//! sessions, CSRF or any extractor reads a byte, and it counts bytes as they
//! arrive: a chunked body is held to it as firmly as one with a
//! `Content-Length`.

use futures_util::StreamExt;
use poem::http::header;
use poem::{Body, Endpoint, Middleware, Request};

use crate::web::plumbing::error::AppError;
use crate::web::state::AppState;

/// How a route's body is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// Forms and everything else: read whole, up to `max_form_bytes`.
    Form,
    /// The upload API: streamed by its handler, which bounds each part; this
    /// only caps the whole request.
    Upload,
}

/// Which connections a route's handler uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The web pool, with the short statement time-out.
    Web,
    /// The few connections with the long time-out, for reports and bulk
    /// admin changes; the handler sees them as `AppState::pool`.
    Long,
    /// The sign-in pool (`Pools::auth`), seen the same way.
    Auth,
}

/// Room for the multipart framing and the JSON part around the files.
const UPLOAD_OVERHEAD: u64 = 80 << 20;

pub struct Bounded(pub BodyLimit);

impl<E: Endpoint> Middleware<E> for Bounded {
    type Output = BoundedEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        BoundedEndpoint {
            inner: ep,
            limit: self.0,
        }
    }
}

pub struct BoundedEndpoint<E> {
    inner: E,
    limit: BodyLimit,
}

fn has_body(req: &Request) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

impl<E: Endpoint> Endpoint for BoundedEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        if !has_body(&req) {
            return self.inner.call(req).await;
        }
        let limits = req
            .extensions()
            .get::<AppState>()
            .map(|s| (s.config.limits.max_form_bytes, s.config.max_upload_bytes))
            .ok_or_else(|| AppError::internal("app state missing"))?;
        let (max, what) = match self.limit {
            BodyLimit::Form => (limits.0, "a form"),
            BodyLimit::Upload => (limits.1.saturating_add(UPLOAD_OVERHEAD), "an upload"),
        };
        let too_large = || AppError::TooLarge(format!("{what} may hold at most {max} bytes"));
        // Refused before reading when the client says how much is coming.
        if declared_length(&req).is_some_and(|n| n > max) {
            return Err(too_large().into());
        }
        match self.limit {
            BodyLimit::Form => {
                let bytes = req
                    .take_body()
                    .into_bytes_limit(max as usize)
                    .await
                    .map_err(|e| match e {
                        poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                        other => {
                            AppError::BadRequest(format!("the body could not be read: {other}"))
                        }
                    })?;
                req.set_body(bytes);
            }
            BodyLimit::Upload => {
                let mut seen: u64 = 0;
                let counted = req.take_body().into_bytes_stream().map(move |chunk| {
                    let chunk = chunk?;
                    seen += chunk.len() as u64;
                    if seen > max {
                        return Err(std::io::Error::other(format!(
                            "the request is larger than the limit of {max} bytes"
                        )));
                    }
                    Ok(chunk)
                });
                req.set_body(Body::from_bytes_stream(counted));
            }
        }
        self.inner.call(req).await
    }
}

fn state_of(req: &Request) -> Result<AppState, AppError> {
    req.extensions()
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| AppError::internal("app state missing"))
}

/// Gives the handler an `AppState` whose `pool` is the one `pick` chooses.
fn use_pool(
    req: &mut Request,
    pick: impl FnOnce(&crate::db::Pools) -> sqlx::PgPool,
) -> Result<(), AppError> {
    let mut state = state_of(req)?;
    state.pool = pick(&state.pools);
    req.extensions_mut().insert(state);
    Ok(())
}

/// Puts the long-budget pool in the handler's `AppState`, once one of its
/// few slots is free.
pub struct LongBudget;

impl<E: Endpoint> Middleware<E> for LongBudget {
    type Output = LongBudgetEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        LongBudgetEndpoint(ep)
    }
}

pub struct LongBudgetEndpoint<E>(E);

impl<E: Endpoint> Endpoint for LongBudgetEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        let slots = state_of(&req)?.long_slots;
        let slot = tokio::time::timeout(crate::db::ACQUIRE_TIMEOUT, slots.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(AppError::Busy(
                "Too many reports are being prepared at the moment. Try again in a minute.",
            ))?;
        use_pool(&mut req, |p| p.long.clone())?;
        let out = self.0.call(req).await;
        drop(slot);
        out
    }
}

/// Puts the sign-in pool in the handler's `AppState`.
pub struct AuthBudget;

impl<E: Endpoint> Middleware<E> for AuthBudget {
    type Output = AuthBudgetEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        AuthBudgetEndpoint(ep)
    }
}

pub struct AuthBudgetEndpoint<E>(E);

impl<E: Endpoint> Endpoint for AuthBudgetEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        use_pool(&mut req, |p| p.auth.clone())?;
        self.0.call(req).await
    }
}

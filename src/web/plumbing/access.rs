//! Who may reach a route. Every route is registered with an `Access` level
//! (see `routes.rs`), and this guard enforces it before the handler runs.

use poem::http::{header, Method, StatusCode};
use poem::web::Data;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response};

use crate::db::users::{self, User};
use crate::domain::token::TokenScopes;
use crate::web::paths;
use crate::web::plumbing::error::AppError;
use crate::web::plumbing::session::TypedSession;
use crate::web::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session at all: health checks and static files.
    Open,
    /// Anyone, with a session (the login page).
    Public,
    /// Any signed-in, active user.
    Reviewer,
    /// Signed-in administrators only.
    Admin,
    /// Any user with a live API token (no session, no cookies), whatever
    /// the token may do.
    Token,
    /// A live API token with the upload scope, of a user allowed to upload.
    Uploader,
    /// A live API token with the read scope: the read API and the exports,
    /// which show what the token's user would see signed in.
    Reader,
}

/// The signed-in user, checked against the database on this request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl<'a> FromRequest<'a> for CurrentUser {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        req.extensions()
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| AppError::Unauthorized.into())
    }
}

pub fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .finish()
}

/// The user behind the session, if the session still stands: an unknown,
/// deactivated user, or one whose sessions were ended since (password
/// change, deactivation), makes the session anonymous again.
async fn resolve(req: &Request, session: &TypedSession) -> poem::Result<Option<User>> {
    let Some(su) = session.user().await? else {
        return Ok(None);
    };
    let state = Data::<&AppState>::from_request_without_body(req).await?;
    match users::by_id(&state.pool, su.id)
        .await
        .map_err(AppError::from)?
    {
        Some(u) if u.active && u.session_epoch == su.epoch => Ok(Some(u)),
        _ => {
            session.log_out().await?;
            Ok(None)
        }
    }
}

/// What an anonymous visitor gets on a protected route: browsers are sent to
/// the login page and come back afterwards; htmx is told to do the same.
fn anonymous(req: &Request) -> poem::Result<Response> {
    let here = req
        .uri()
        .path_and_query()
        .map_or(paths::HOME, |p| p.as_str());
    if req.headers().contains_key("hx-request") {
        let back = req
            .headers()
            .get("hx-current-url")
            .and_then(|v| v.to_str().ok())
            .and_then(|u| u.find("://").map(|i| &u[i + 3..]))
            .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or(paths::HOME);
        return Ok(Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("HX-Redirect", paths::login_with_next(back))
            .finish());
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        Ok(see_other(&paths::login_with_next(here)))
    } else {
        Err(AppError::Unauthorized.into())
    }
}

pub struct Guard(pub Access);

impl<E: Endpoint> Middleware<E> for Guard {
    type Output = GuardEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        GuardEndpoint {
            inner: ep,
            access: self.0,
        }
    }
}

pub struct GuardEndpoint<E> {
    inner: E,
    access: Access,
}

impl<E: Endpoint> Endpoint for GuardEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        match self.access {
            Access::Open => return self.inner.call(req).await.map(IntoResponse::into_response),
            Access::Token | Access::Uploader | Access::Reader => {
                let (user, scopes) = token_user(&req).await?;
                let allowed = match self.access {
                    Access::Uploader => scopes.upload() && (user.can_upload || user.is_admin()),
                    Access::Reader => scopes.read(),
                    _ => true,
                };
                if !allowed {
                    return Err(AppError::Forbidden.into());
                }
                req.extensions_mut().insert(CurrentUser(user));
                return self.inner.call(req).await.map(IntoResponse::into_response);
            }
            Access::Public | Access::Reviewer | Access::Admin => {}
        }
        let session = TypedSession::from_request_ref(&req)?;
        let user = resolve(&req, &session).await?;
        match (&user, self.access) {
            (None, Access::Reviewer | Access::Admin) => return anonymous(&req),
            (Some(u), Access::Admin) if !u.is_admin() => return Err(AppError::Forbidden.into()),
            (Some(u), _) if u.must_change_password && !may_skip_password_change(&req) => {
                if *req.method() == Method::GET {
                    session
                        .flash(
                            crate::web::plumbing::session::FlashKind::Error,
                            "Choose a new password before you go on.",
                        )
                        .await?;
                    return Ok(see_other(paths::ACCOUNT));
                }
                return Err(AppError::Forbidden.into());
            }
            _ => {}
        }
        if let Some(u) = user {
            req.extensions_mut().insert(CurrentUser(u));
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// The user behind `Authorization: Bearer <token>`, and what the token may do.
async fn token_user(req: &Request) -> poem::Result<(User, TokenScopes)> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .and_then(|v| {
            let (scheme, token) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .ok_or(AppError::TokenRejected(
            "send the API token as Authorization: Bearer <token>",
        ))?;
    let state = Data::<&AppState>::from_request_without_body(req).await?;
    crate::db::api_tokens::authenticate(&state.pool, token)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| {
            AppError::TokenRejected("the token is unknown or revoked, or its user is deactivated")
                .into()
        })
}

/// A user with a temporary password may still change it and sign out.
fn may_skip_password_change(req: &Request) -> bool {
    matches!(
        req.uri().path(),
        paths::ACCOUNT | paths::ACCOUNT_PASSWORD | paths::LOGOUT | paths::LOGIN
    )
}

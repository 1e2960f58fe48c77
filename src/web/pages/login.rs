//! `/login` and `/logout`.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Query, RemoteAddr};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::auth::gate::Verdict;
use crate::auth::password;
use crate::auth::throttle::{self, Decision};
use crate::config::Secret;
use crate::db::login_failures::{self, Admission};
use crate::db::{audit, users};
use crate::domain::{NewPassword, Username};
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::csrf;
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::SessionUser;
use crate::web::plumbing::session::TypedSession;
use crate::web::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "login/page.html")]
pub struct LoginPage {
    layout: Layout,
    username: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

#[handler]
pub async fn form(
    req: &Request,
    layout: Layout,
    user: Option<CurrentUser>,
    Query(q): Query<NextParam>,
) -> WebResult<Response> {
    let next = paths::safe_next(q.next.as_deref()).to_string();
    if user.is_some() {
        return Ok(see_other(&next));
    }
    let page = LoginPage {
        layout,
        username: String::new(),
        next,
        error: None,
    };
    Ok(with_presession_cookie(
        req,
        page.layout.csrf_token.clone(),
        page.into_response(),
    ))
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// How long an attempt the gate refuses waits for its answer.
const FLOOD_ANSWER_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

const WRONG: &str = "Wrong username or password, or the account is not active.";

#[handler]
pub async fn submit(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    remote: &RemoteAddr,
    Form(f): Form<LoginForm>,
) -> WebResult<Response> {
    let next = paths::safe_next(f.next.as_deref()).to_string();
    let address = client_ip(req, remote, state.config.behind_proxy);
    let policy = state.config.login_throttle;
    let name_key = f.username.trim().to_lowercase();
    let too_many =
        |minutes: u64| format!("Too many failed sign-ins. Try again in {minutes} minutes.");
    let window_minutes = policy.window.as_secs().div_ceil(60);
    // A flood is answered from memory, without a database round trip, and
    // slowly: a client that sends again as soon as it is answered then
    // costs a timer, not a core.
    let _ticket = match state.login_gate.wait(address, &name_key).await {
        Ok(t) => t,
        Err(Verdict::Refused) => {
            tokio::time::sleep(FLOOD_ANSWER_DELAY).await;
            let msg = too_many(window_minutes);
            return rerender(req, &f, next, msg, StatusCode::TOO_MANY_REQUESTS).await;
        }
        Err(Verdict::Busy) => {
            let msg = "Too many sign-ins from your address at once. Wait a moment and try again.";
            return rerender(req, &f, next, msg.into(), StatusCode::TOO_MANY_REQUESTS).await;
        }
    };
    // The attempt is counted before its password is looked at, so a burst of
    // guesses in parallel gets no further than one after another would.
    let admission = login_failures::admit(&state.pool, &name_key, address, policy.window, |n| {
        throttle::decide(&policy, n) != Decision::Refuse
    })
    .await?;
    let before = match admission {
        Admission::Refused { failures } => {
            tracing::warn!(username = %name_key, ?address, ?failures, "login refused: too many failures");
            let whole_address = failures.address >= policy.address_refuse_after;
            state.login_gate.remember_refusal(
                address,
                &name_key,
                whole_address,
                policy.remember_refusal,
            );
            audit::login_refused(&state.pool, &name_key, address).await?;
            let msg = too_many(window_minutes);
            return rerender(req, &f, next, msg, StatusCode::TOO_MANY_REQUESTS).await;
        }
        Admission::Admitted { before } => before,
    };
    if let Decision::Delay(d) = throttle::decide(&policy, before) {
        tokio::time::sleep(d).await;
    }

    // No password longer than any we accept can be right: it is not hashed,
    // so a huge one cannot keep the hashing threads busy.
    let plausible = f.password.len() <= NewPassword::MAX_CHARS * 4
        && f.password.chars().count() <= NewPassword::MAX_CHARS;
    let found = match f.username.parse::<Username>() {
        Ok(name) if plausible => users::credentials(&state.pool, &name).await?,
        _ => None,
    };
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let password_ok = plausible && password::verify(Secret::new(f.password.clone()), hash).await?;
    match user {
        Some(u) if password_ok && u.active => {
            session
                .log_in(SessionUser {
                    id: u.id,
                    epoch: u.session_epoch,
                })
                .await?;
            users::record_login(&state.pool, u.id).await?;
            login_failures::forgive(&state.pool, &name_key, address).await?;
            tracing::info!(username = %u.username, ?address, "login succeeded");
            audit::login_succeeded(&state.pool, &u, address).await?;
            Ok(see_other(&next))
        }
        _ => {
            // The attempt was recorded as a failure when it was admitted.
            tracing::warn!(username = %name_key, ?address, "login failed");
            audit::login_failed(&state.pool, &name_key, user.as_ref(), password_ok, address)
                .await?;
            rerender(req, &f, next, WRONG.into(), StatusCode::UNAUTHORIZED).await
        }
    }
}

async fn rerender(
    req: &Request,
    f: &LoginForm,
    next: String,
    error: String,
    status: StatusCode,
) -> WebResult<Response> {
    let layout = Layout::for_request(req).await?;
    let token = layout.csrf_token.clone();
    let page = LoginPage {
        layout,
        username: f.username.clone(),
        next,
        error: Some(error),
    }
    .with_status(status)
    .into_response();
    Ok(with_presession_cookie(req, token, page))
}

/// Gives a visitor who is not signed in the cookie half of their CSRF token
/// (the form carries the other), unless they already have it.
fn with_presession_cookie(req: &Request, token: String, mut resp: Response) -> Response {
    if csrf::presession_cookie(req).as_deref() == Some(token.as_str()) {
        return resp;
    }
    let secure = req
        .data::<AppState>()
        .is_some_and(|s| s.config.secure_cookies());
    if let Ok(v) = csrf::presession_set_cookie(&token, secure).parse() {
        resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
    }
    resp
}

/// The client's address: the peer, or behind our own nginx the address it
/// reports (it overwrites `X-Real-IP`, so a client cannot forge it).
pub fn client_ip(
    req: &Request,
    remote: &RemoteAddr,
    behind_proxy: bool,
) -> Option<std::net::IpAddr> {
    if behind_proxy {
        if let Some(ip) = req
            .headers()
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    remote.as_socket_addr().map(|a| a.ip())
}

#[handler]
pub async fn logout(session: TypedSession) -> WebResult<Response> {
    session.log_out().await?;
    Ok(see_other(paths::LOGIN))
}

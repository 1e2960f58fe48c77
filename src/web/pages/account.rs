//! `/account`: the signed-in user's own settings: the password, the
//! keyboard (single-key shortcuts and the reviewer's own keys), the daily
//! summary by e-mail (opt-in), and the
//! API-token section: create (the token is shown once),
//! list and revoke. htmx swaps the section in place; without JavaScript the
//! forms post and the whole account page comes back.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::auth::password;
use crate::config::Secret;
use crate::db::api_tokens::{self, TokenRow};
use crate::db::users::{self, User};
use crate::domain::email::EmailAddress;
use crate::domain::keys::{KeyMap, RATING_SHORTCUTS};
use crate::domain::token::TokenScopes;
use crate::domain::TokenId;
use crate::domain::{NewPassword, Problem};
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::htmx::is_htmx;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, SessionUser, TypedSession};
use crate::web::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "account/page.html")]
pub struct AccountPage {
    layout: Layout,
    user: User,
    error: Option<String>,
    keyboard: KeyboardView,
    tokens: TokensView,
    summary: SummaryView,
}

impl AccountPage {
    pub async fn load(
        layout: Layout,
        state: &AppState,
        user: User,
        tokens: TokensView,
    ) -> WebResult<Self> {
        Ok(Self {
            keyboard: KeyboardView::saved(&user),
            summary: SummaryView::load(state, &user).await?,
            layout,
            user,
            error: None,
            tokens,
        })
    }
}

#[handler]
pub async fn page(
    layout: Layout,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<AccountPage> {
    let tokens = TokensView::load(&state, &user).await?;
    AccountPage::load(layout, &state, user, tokens).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

#[handler]
pub async fn change_password(
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    req: &poem::Request,
    Form(f): Form<PasswordForm>,
) -> WebResult<Response> {
    let stored = users::password_hash(&state.pool, user.id).await?;
    let problem = if !password::verify(Secret::new(f.current), Some(stored)).await? {
        Some("The current password is wrong.".to_string())
    } else if f.new != f.confirm {
        Some("The new password and its confirmation differ.".to_string())
    } else {
        NewPassword::parse(&f.new, &user.username).err()
    };
    if let Some(error) = problem {
        let layout = Layout::for_request(req).await?;
        let tokens = TokensView::load(&state, &user).await?;
        return Ok(AccountPage {
            error: Some(error),
            ..AccountPage::load(layout, &state, user, tokens).await?
        }
        .with_status(StatusCode::BAD_REQUEST)
        .into_response());
    }
    let new = NewPassword::parse(&f.new, &user.username).map_err(AppError::BadRequest)?;
    let hash = password::hash(Secret::new(new.expose())).await?;
    // Every other session of this user ends; this one carries on.
    let epoch = users::set_password(&state.pool, user.id, &hash).await?;
    session.set_user(SessionUser { id: user.id, epoch }).await?;
    session
        .flash(
            FlashKind::Success,
            "Password changed. Other sessions have been signed out.",
        )
        .await?;
    Ok(see_other(paths::ACCOUNT))
}

/// What the keyboard section shows: the saved settings, or a refused form
/// as it was sent, with its problems by row.
pub struct KeyboardView {
    pub single_key_shortcuts: bool,
    pub rows: Vec<KeyRow>,
    /// Problems no row shows.
    pub problems: Vec<Problem>,
}

pub struct KeyRow {
    pub default: &'static str,
    pub action: &'static str,
    pub field: String,
    /// The reviewer's key, empty for the default.
    pub value: String,
    pub problem: Option<String>,
}

impl KeyboardView {
    pub fn refused(&self) -> bool {
        !self.problems.is_empty() || self.rows.iter().any(|r| r.problem.is_some())
    }

    fn saved(user: &User) -> Self {
        Self {
            single_key_shortcuts: user.single_key_shortcuts,
            rows: RATING_SHORTCUTS
                .iter()
                .map(|s| KeyRow {
                    default: s.key,
                    action: s.action,
                    field: s.field(),
                    value: user
                        .key_map
                        .get(s.key)
                        .map(String::from)
                        .unwrap_or_default(),
                    problem: None,
                })
                .collect(),
            problems: Vec::new(),
        }
    }

    fn as_sent(fields: &[(String, String)], single: bool, mut problems: Vec<Problem>) -> Self {
        let rows = RATING_SHORTCUTS
            .iter()
            .map(|s| {
                let field = s.field();
                let value = fields
                    .iter()
                    .find(|(k, _)| *k == field)
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default();
                let mine: Vec<String> = problems
                    .iter()
                    .filter(|p| p.field == field)
                    .map(|p| p.message.clone())
                    .collect();
                problems.retain(|p| p.field != field);
                KeyRow {
                    default: s.key,
                    action: s.action,
                    field,
                    value,
                    problem: (!mine.is_empty()).then(|| mine.join("; ")),
                }
            })
            .collect();
        Self {
            single_key_shortcuts: single,
            rows,
            problems,
        }
    }
}

/// The keyboard form: `single_key_shortcuts` (a hidden `off` that the
/// checkbox's `on` follows when ticked, so a form without it is refused
/// rather than read as "off") and a `key:<default>` box per shortcut.
#[handler]
pub async fn save_keyboard(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Form(fields): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let single = match fields
        .iter()
        .rev()
        .find(|(k, _)| k == "single_key_shortcuts")
        .map(|(_, v)| v.as_str())
    {
        Some("on") => true,
        Some("off") => false,
        _ => {
            return Err(AppError::BadRequest(
                "the keyboard form needs single_key_shortcuts, on or off; nothing was saved".into(),
            ))
        }
    };
    let map = match KeyMap::from_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(map) => map,
        Err(problems) => {
            let layout = Layout::for_request(req).await?;
            let tokens = TokensView::load(&state, &user).await?;
            return Ok(AccountPage {
                keyboard: KeyboardView::as_sent(&fields, single, problems),
                ..AccountPage::load(layout, &state, user, tokens).await?
            }
            .with_status(StatusCode::BAD_REQUEST)
            .into_response());
        }
    };
    users::set_keyboard(&state.pool, user.id, single, &map).await?;
    tracing::info!(
        username = %user.username,
        single_key_shortcuts = single,
        key_map = %map.to_json(),
        "keyboard settings saved"
    );
    session
        .flash(FlashKind::Success, "Keyboard settings saved.")
        .await?;
    Ok(see_other(paths::ACCOUNT))
}

/// What the tokens section shows.
pub struct TokensView {
    pub tokens: Vec<TokenRow>,
    /// A token just made, shown this once.
    pub new_token: Option<String>,
    pub error: Option<String>,
    pub may_upload: bool,
}

impl TokensView {
    pub async fn load(state: &AppState, user: &User) -> WebResult<Self> {
        Ok(Self {
            tokens: api_tokens::list_for_user(&state.pool, user.id).await?,
            new_token: None,
            error: None,
            may_upload: user.can_upload || user.is_admin(),
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "account/_tokens.html")]
pub struct TokensFragment {
    view: TokensView,
    csrf_token: String,
}

async fn respond(
    req: &Request,
    state: &AppState,
    user: User,
    view: TokensView,
    status: StatusCode,
) -> WebResult<Response> {
    let layout = Layout::for_request(req).await?;
    if is_htmx(req) {
        return Ok(TokensFragment {
            view,
            csrf_token: layout.csrf_token,
        }
        .with_status(status)
        .into_response());
    }
    Ok(AccountPage::load(layout, state, user, view)
        .await?
        .with_status(status)
        .into_response())
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    name: String,
    read: Option<String>,
    upload: Option<String>,
}

/// A scope's checkbox: ticked, or absent; anything else is refused.
fn scope_box(value: &Option<String>, what: &str) -> Result<bool, String> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some("on") => Ok(true),
        Some(_) => Err(format!("{what} is a checkbox: on or absent")),
    }
}

/// What the new token may do, as the form asked: at least one scope, and
/// upload only for a user who may upload.
fn chosen_scopes(f: &NewTokenForm, may_upload: bool) -> Result<TokenScopes, String> {
    let read = scope_box(&f.read, "Read")?;
    let upload = scope_box(&f.upload, "Upload")?;
    if upload && !may_upload {
        return Err(
            "Your account may not upload: make a read token, or ask an administrator to allow uploads."
                .into(),
        );
    }
    TokenScopes::new(read, upload)
        .map_err(|_| "Tick what the token may do: read, upload, or both.".to_string())
}

#[handler]
pub async fn create_token(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Form(f): Form<NewTokenForm>,
) -> WebResult<Response> {
    let name = f.name.trim();
    let mut view = TokensView::load(&state, &user).await?;
    if name.is_empty() || name.chars().count() > 100 {
        view.error = Some(
            "Give the token a name of 1 to 100 characters, such as the pipeline that will use it."
                .into(),
        );
        return respond(req, &state, user, view, StatusCode::BAD_REQUEST).await;
    }
    let scopes = match chosen_scopes(&f, view.may_upload) {
        Ok(s) => s,
        Err(e) => {
            view.error = Some(e);
            return respond(req, &state, user, view, StatusCode::BAD_REQUEST).await;
        }
    };
    let (token, _) = api_tokens::create(&state.pool, user.id, name, scopes).await?;
    tracing::info!(username = %user.username, token_name = name, scopes = %scopes, "API token created");
    view.tokens = api_tokens::list_for_user(&state.pool, user.id).await?;
    view.new_token = Some(token);
    respond(req, &state, user, view, StatusCode::OK).await
}

#[handler]
pub async fn revoke_token(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Path(id): Path<TokenId>,
) -> WebResult<Response> {
    let revoked = api_tokens::revoke(&state.pool, user.id, id).await?;
    if revoked {
        tracing::info!(username = %user.username, token_id = id.0, "API token revoked");
    }
    if !is_htmx(req) {
        let (kind, msg) = if revoked {
            (FlashKind::Success, "Token revoked.")
        } else {
            (
                FlashKind::Error,
                "No such token, or it was revoked already.",
            )
        };
        session.flash(kind, msg).await?;
        return Ok(see_other(paths::ACCOUNT));
    }
    let mut view = TokensView::load(&state, &user).await?;
    if !revoked {
        view.error = Some("No such token, or it was revoked already.".into());
    }
    respond(req, &state, user, view, StatusCode::OK).await
}

/// The daily summary section: the address and the choice, as saved or as
/// typed when refused.
pub struct SummaryView {
    pub email: String,
    pub daily: bool,
    pub error: Option<String>,
    /// Whether this server sends e-mail at all, and when the summary goes.
    pub smtp: bool,
    pub at: String,
}

impl SummaryView {
    async fn load(state: &AppState, user: &User) -> WebResult<Self> {
        let (email, daily) = users::summary_settings(&state.pool, user.id).await?;
        let (h, m) = state.config.notify.daily_summary_at;
        Ok(Self {
            email: email.unwrap_or_default(),
            daily,
            error: None,
            smtp: state.config.notify.smtp.is_some(),
            at: format!("{h:02}:{m:02}"),
        })
    }
}

#[derive(Deserialize)]
pub struct SummaryForm {
    email: String,
    daily_summary: Option<String>,
}

/// Saves the address and whether a daily summary goes to it. A summary
/// needs an address; an address may be kept without one.
#[handler]
pub async fn save_summary(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Form(f): Form<SummaryForm>,
) -> WebResult<Response> {
    let daily = match f.daily_summary.as_deref() {
        None => false,
        Some("on") => true,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "daily_summary is a checkbox: \"on\" or absent, not {:?}; nothing was saved",
                crate::domain::text::shown(other)
            )))
        }
    };
    let typed = f.email.trim();
    let parsed = match (typed.is_empty(), daily) {
        (true, false) => Ok(None),
        (true, true) => Err("Give the address the daily summary goes to.".to_string()),
        (false, _) => EmailAddress::parse(typed).map(Some),
    };
    let email = match parsed {
        Ok(e) => e,
        Err(error) => {
            let layout = Layout::for_request(req).await?;
            let tokens = TokensView::load(&state, &user).await?;
            let mut drawn = AccountPage::load(layout, &state, user, tokens).await?;
            drawn.summary.email = typed.to_string();
            drawn.summary.daily = daily;
            drawn.summary.error = Some(error);
            return Ok(drawn.with_status(StatusCode::BAD_REQUEST).into_response());
        }
    };
    users::set_summary(
        &state.pool,
        user.id,
        email.as_ref().map(EmailAddress::as_str),
        daily,
    )
    .await?;
    tracing::info!(username = %user.username, daily_summary = daily, "daily summary settings saved");
    session
        .flash(
            FlashKind::Success,
            if daily {
                "Daily summary on: it goes out once a day by e-mail."
            } else {
                "Daily summary off."
            },
        )
        .await?;
    Ok(see_other(paths::ACCOUNT))
}

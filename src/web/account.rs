//! `/account`: the signed-in user's own settings.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, IntoResponse, Response};
use serde::Deserialize;

use crate::auth::password;
use crate::auth::session::{FlashKind, SessionUser};
use crate::auth::TypedSession;
use crate::config::Secret;
use crate::db::users::{self, User};
use crate::domain::NewPassword;
use crate::web::access::{see_other, CurrentUser};
use crate::web::error::WebResult;
use crate::web::form::Form;
use crate::web::layout::Layout;
use crate::web::paths;
use crate::web::state::AppState;
use crate::web::tokens::TokensView;

#[derive(Template, WebTemplate)]
#[template(path = "account/page.html")]
pub struct AccountPage {
    layout: Layout,
    user: User,
    error: Option<String>,
    tokens: TokensView,
}

impl AccountPage {
    pub fn new(layout: Layout, user: User, tokens: TokensView) -> Self {
        Self {
            layout,
            user,
            error: None,
            tokens,
        }
    }
}

#[handler]
pub async fn page(
    layout: Layout,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<AccountPage> {
    let tokens = TokensView::load(&state, &user).await?;
    Ok(AccountPage::new(layout, user, tokens))
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
            ..AccountPage::new(layout, user, tokens)
        }
        .with_status(StatusCode::BAD_REQUEST)
        .into_response());
    }
    let new = NewPassword::parse(&f.new, &user.username)
        .map_err(crate::web::error::AppError::BadRequest)?;
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

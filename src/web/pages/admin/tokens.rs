//! `/admin/tokens`: every API token with its owner, creation and last use;
//! revoke any of them.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::db::api_tokens::{self, OwnedToken};
use crate::domain::TokenId;
use crate::web::pages::admin::{ticked, Admin};
use crate::web::paths;
use crate::web::plumbing::access::see_other;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::FlashKind;
use crate::web::plumbing::session::TypedSession;
use crate::web::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    layout: Layout,
    tokens: Vec<OwnedToken>,
    error: Option<String>,
}

#[handler]
pub async fn list(layout: Layout, state: Data<&AppState>, _admin: Admin) -> WebResult<TokensPage> {
    Ok(TokensPage {
        layout,
        tokens: api_tokens::list_all(&state.pool).await?,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct RevokeForm {
    confirm: Option<String>,
}

#[handler]
pub async fn revoke(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<TokenId>,
    Form(f): Form<RevokeForm>,
) -> WebResult<Response> {
    let t = api_tokens::owned_by_id(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound("token"))?;
    if !ticked(&f.confirm) {
        return Ok(TokensPage {
            layout: Layout::for_request(req).await?,
            tokens: api_tokens::list_all(&state.pool).await?,
            error: Some(format!(
                "Tick the box next to {}'s token “{}” to confirm revoking it.",
                t.owner, t.token.name
            )),
        }
        .with_status(StatusCode::BAD_REQUEST)
        .into_response());
    }
    let mut tx = state.pool.begin().await?;
    let revoked = api_tokens::revoke_any(&mut *tx, id).await?;
    if revoked {
        admin
            .audit(
                &mut *tx,
                "token.revoke",
                &format!("{}/{}", t.owner, t.token.name),
                json!({"token_id": id, "prefix": t.token.prefix}),
            )
            .await?;
    }
    tx.commit().await?;
    let (kind, msg) = if revoked {
        (
            FlashKind::Success,
            format!("{}'s token “{}” is revoked.", t.owner, t.token.name),
        )
    } else {
        (FlashKind::Error, "That token was revoked already.".into())
    };
    session.flash(kind, msg).await?;
    Ok(see_other(paths::ADMIN_TOKENS))
}

//! `/admin/users`: list, create with a temporary password, reset a
//! password, change role, grant or remove the upload permission,
//! deactivate and reactivate. Users are never deleted: their ratings keep
//! their author.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::password;
use crate::config::Secret;
use crate::db::audit::{self, Actor, Filter};
use crate::db::users::{self, Summary};
use crate::domain::{NewPassword, Role, UserId, Username};
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
#[template(path = "admin/users.html")]
pub struct UsersPage {
    layout: Layout,
    users: Vec<Summary>,
    error: Option<String>,
    /// The create form as it was sent, after an error.
    username: String,
    role: Role,
}

#[handler]
pub async fn list(layout: Layout, state: Data<&AppState>, _admin: Admin) -> WebResult<UsersPage> {
    Ok(UsersPage {
        layout,
        users: users::summaries(&state.pool).await?,
        error: None,
        username: String::new(),
        role: Role::Reviewer,
    })
}

/// A temporary password just set, shown to the administrator this once.
pub struct Temporary {
    /// Made by the server (shown), or typed by the admin (not echoed).
    pub generated: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    layout: Layout,
    u: Summary,
    is_self: bool,
    temporary: Option<Temporary>,
    error: Option<String>,
    recent: Vec<audit::Row>,
}

impl UserPage {
    pub fn roles(&self) -> [Role; 2] {
        [Role::Reviewer, Role::Admin]
    }
}

async fn user_page(
    req: &Request,
    state: &AppState,
    admin: &Admin,
    id: UserId,
    temporary: Option<Temporary>,
    error: Option<String>,
) -> WebResult<UserPage> {
    let u = users::summary(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let filter = Filter {
        actor: Some(Actor::Account(id, u.user.username.clone())),
        ..Filter::default()
    };
    Ok(UserPage {
        layout: Layout::for_request(req).await?,
        is_self: u.user.id == admin.user.id,
        u,
        temporary,
        error,
        recent: audit::page(&state.pool, &filter, None, 10).await?,
    })
}

#[handler]
pub async fn show(
    req: &Request,
    state: Data<&AppState>,
    admin: Admin,
    Path(id): Path<UserId>,
) -> WebResult<UserPage> {
    user_page(req, &state, &admin, id, None, None).await
}

/// 16 hex digits in groups of four: easy to read out, 64 random bits, and
/// it only has to last until the first login.
fn generated_password() -> String {
    let hex = crate::random_hex(8);
    hex.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

/// The typed temporary password, or a generated one when the field is
/// empty. The second value is the generated password, to show once.
fn temporary_password(
    typed: Option<&str>,
    username: &str,
) -> Result<(NewPassword, Option<String>), String> {
    match typed.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => NewPassword::parse(t, username)
            .map(|p| (p, None))
            .map_err(|e| format!("Temporary password: {e}.")),
        None => {
            let g = generated_password();
            let p = NewPassword::parse(&g, username)?;
            Ok((p, Some(g)))
        }
    }
}

#[derive(Deserialize)]
pub struct NewUserForm {
    username: String,
    role: String,
    password: Option<String>,
    can_upload: Option<String>,
}

#[handler]
pub async fn create(
    req: &Request,
    state: Data<&AppState>,
    admin: Admin,
    Form(f): Form<NewUserForm>,
) -> WebResult<Response> {
    let role = f.role.parse::<Role>();
    let parsed = f
        .username
        .parse::<Username>()
        .map_err(|e| format!("Username: {e}."))
        .and_then(|name| {
            let role = role.clone().map_err(|e| format!("Role: {e}."))?;
            let (pw, generated) = temporary_password(f.password.as_deref(), name.as_str())?;
            Ok((name, role, pw, generated))
        });
    let (name, role, pw, generated) = match parsed {
        Ok(v) => v,
        Err(e) => {
            return rerender_list(req, &state, &f, e, StatusCode::BAD_REQUEST).await;
        }
    };
    let can_upload = ticked(&f.can_upload);
    let hash = password::hash(Secret::new(pw.expose())).await?;
    let mut tx = state.pool.begin().await?;
    let Some(id) = users::insert_temporary(&mut *tx, &name, &hash, role, can_upload).await? else {
        let msg = format!("There is a user named {} already.", name.as_str());
        return rerender_list(req, &state, &f, msg, StatusCode::CONFLICT).await;
    };
    let how = if generated.is_some() {
        "generated"
    } else {
        "typed"
    };
    admin
        .audit(
            &mut *tx,
            "user.create",
            name.as_str(),
            json!({"role": role, "can_upload": can_upload, "temporary_password": how}),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.user.username, username = %name, %role, "user created");
    let page = user_page(req, &state, &admin, id, Some(Temporary { generated }), None).await?;
    Ok(page.with_status(StatusCode::CREATED).into_response())
}

async fn rerender_list(
    req: &Request,
    state: &AppState,
    f: &NewUserForm,
    error: String,
    status: StatusCode,
) -> WebResult<Response> {
    Ok(UsersPage {
        layout: Layout::for_request(req).await?,
        users: users::summaries(&state.pool).await?,
        error: Some(error),
        username: f.username.clone(),
        role: f.role.parse().unwrap_or(Role::Reviewer),
    }
    .with_status(status)
    .into_response())
}

/// The user, who must not be the administrator acting: an admin cannot
/// lock themselves out (and so one active admin always remains).
async fn other_user(state: &AppState, admin: &Admin, id: UserId, what: &str) -> WebResult<Summary> {
    let u = users::summary(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    if u.user.id == admin.user.id {
        return Err(AppError::Conflict(format!(
            "You cannot {what} your own account here. Ask another administrator, or use your account page for your password."
        )));
    }
    Ok(u)
}

#[derive(Deserialize)]
pub struct ResetForm {
    password: Option<String>,
}

#[handler]
pub async fn reset_password(
    req: &Request,
    state: Data<&AppState>,
    admin: Admin,
    Path(id): Path<UserId>,
    Form(f): Form<ResetForm>,
) -> WebResult<Response> {
    let u = other_user(&state, &admin, id, "reset the password of").await?;
    let (pw, generated) = match temporary_password(f.password.as_deref(), &u.user.username) {
        Ok(v) => v,
        Err(e) => {
            let page = user_page(req, &state, &admin, u.user.id, None, Some(e)).await?;
            return Ok(page.with_status(StatusCode::BAD_REQUEST).into_response());
        }
    };
    let hash = password::hash(Secret::new(pw.expose())).await?;
    let mut tx = state.pool.begin().await?;
    users::reset_password(&mut *tx, u.user.id, &hash).await?;
    let how = if generated.is_some() {
        "generated"
    } else {
        "typed"
    };
    admin
        .audit(
            &mut *tx,
            "user.password_reset",
            &u.user.username,
            json!({"temporary_password": how}),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.user.username, username = %u.user.username, "password reset");
    let page = user_page(
        req,
        &state,
        &admin,
        u.user.id,
        Some(Temporary { generated }),
        None,
    )
    .await?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

#[handler]
pub async fn set_role(
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<UserId>,
    Form(f): Form<RoleForm>,
) -> WebResult<Response> {
    let u = other_user(&state, &admin, id, "change the role of").await?;
    let role: Role = f.role.parse().map_err(AppError::BadRequest)?;
    if role != u.user.role {
        let mut tx = state.pool.begin().await?;
        users::set_role(&mut *tx, u.user.id, role).await?;
        admin
            .audit(
                &mut *tx,
                "user.role",
                &u.user.username,
                json!({"from": u.user.role, "to": role}),
            )
            .await?;
        tx.commit().await?;
    }
    session
        .flash(
            FlashKind::Success,
            format!("{} is now {}.", u.user.username, article(role)),
        )
        .await?;
    Ok(see_other(&paths::admin_user(u.user.id)))
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Reviewer => "a reviewer",
        Role::Admin => "an administrator",
    }
}

#[derive(Deserialize)]
pub struct UploadForm {
    allowed: String,
}

fn yes_no(field: &str, v: &str) -> WebResult<bool> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AppError::BadRequest(format!(
            "{field} must be true or false"
        ))),
    }
}

#[handler]
pub async fn set_upload(
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<UserId>,
    Form(f): Form<UploadForm>,
) -> WebResult<Response> {
    let allowed = yes_no("allowed", &f.allowed)?;
    let u = users::summary(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    if allowed != u.user.can_upload {
        let mut tx = state.pool.begin().await?;
        users::set_can_upload(&mut *tx, u.user.id, allowed).await?;
        let action = if allowed {
            "user.upload_grant"
        } else {
            "user.upload_remove"
        };
        admin
            .audit(&mut *tx, action, &u.user.username, json!({}))
            .await?;
        tx.commit().await?;
    }
    let msg = if allowed {
        format!("{} may upload.", u.user.username)
    } else if u.user.is_admin() {
        format!(
            "{} no longer has the upload permission, but as an administrator may still upload.",
            u.user.username
        )
    } else {
        format!("{} may no longer upload.", u.user.username)
    };
    session.flash(FlashKind::Success, msg).await?;
    Ok(see_other(&paths::admin_user(u.user.id)))
}

#[derive(Deserialize)]
pub struct ExpertForm {
    expert: String,
}

/// Experts may walk the disputed queue of projects that keep it to them.
#[handler]
pub async fn set_expert(
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<UserId>,
    Form(f): Form<ExpertForm>,
) -> WebResult<Response> {
    let expert = yes_no("expert", &f.expert)?;
    let u = users::summary(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let mut tx = state.pool.begin().await?;
    if users::set_expert(&mut *tx, u.user.id, expert).await? {
        admin
            .audit(
                &mut *tx,
                "user.expert",
                &u.user.username,
                json!({"expert": expert}),
            )
            .await?;
    }
    tx.commit().await?;
    let msg = if expert {
        format!(
            "{} is an expert: they may decide disputed candidates.",
            u.user.username
        )
    } else {
        format!("{} is no longer an expert.", u.user.username)
    };
    session.flash(FlashKind::Success, msg).await?;
    Ok(see_other(&paths::admin_user(u.user.id)))
}

#[derive(Deserialize)]
pub struct ActiveForm {
    active: String,
    confirm: Option<String>,
}

#[handler]
pub async fn set_active(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<UserId>,
    Form(f): Form<ActiveForm>,
) -> WebResult<Response> {
    let active = yes_no("active", &f.active)?;
    let u = other_user(&state, &admin, id, "deactivate").await?;
    if !active && !ticked(&f.confirm) {
        let e = "Tick the box to confirm: deactivation signs them out everywhere and revokes their API tokens.";
        let page = user_page(req, &state, &admin, u.user.id, None, Some(e.into())).await?;
        return Ok(page.with_status(StatusCode::BAD_REQUEST).into_response());
    }
    if active != u.user.active {
        let mut tx = state.pool.begin().await?;
        // Deactivation moves the session epoch on: their sessions end at
        // their next request, and token checks require an active user.
        users::set_active(&mut *tx, u.user.id, active).await?;
        let action = if active {
            "user.reactivate"
        } else {
            "user.deactivate"
        };
        admin
            .audit(
                &mut *tx,
                action,
                &u.user.username,
                json!({"ratings": u.ratings, "live_tokens": u.live_tokens}),
            )
            .await?;
        tx.commit().await?;
        tracing::info!(admin = %admin.user.username, username = %u.user.username, active, "user activation changed");
    }
    let msg = if active {
        format!("{} is active again.", u.user.username)
    } else {
        format!(
            "{} is deactivated: signed out everywhere, and their API tokens are revoked. Their {} ratings stay.",
            u.user.username, u.ratings
        )
    };
    session.flash(FlashKind::Success, msg).await?;
    Ok(see_other(&paths::admin_user(u.user.id)))
}

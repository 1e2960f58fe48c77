//! Saved views: a reviewer's named candidate-table queries (`/views`), one
//! of which may be their default (opened by `/candidates` and `/ratings`
//! when they are visited without a query), and "rate these", which makes a
//! query the filter of the reviewer's rating queue.

use askama::Template;
use askama_web::WebTemplate;
use poem::web::{Data, Path};
use poem::{handler, Response};
use serde::Deserialize;

use crate::db::{queue, search, views};
use crate::domain::filter::CandidateFilter;
use crate::domain::ViewId;
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::FlashKind;
use crate::web::plumbing::session::TypedSession;
use crate::web::state::AppState;

pub struct ViewLine {
    pub id: ViewId,
    pub name: String,
    pub query: String,
    pub summary: String,
    pub is_default: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "views/page.html")]
pub struct ViewsPage {
    layout: Layout,
    views: Vec<ViewLine>,
}

#[handler]
pub async fn list(
    layout: Layout,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<ViewsPage> {
    let mut conn = state.pool.acquire().await?;
    let views = views::list(&mut conn, user.id)
        .await?
        .into_iter()
        .map(|v| ViewLine {
            summary: CandidateFilter::from_query(&v.query).summary(),
            id: v.id,
            name: v.name,
            query: v.query,
            is_default: v.is_default,
        })
        .collect();
    Ok(ViewsPage { layout, views })
}

fn table_at(query: &str) -> String {
    paths::filtered(paths::CANDIDATES, query)
}

/// The query as it will be kept: re-written from the parsed filter (no
/// page cursor, no empty fields), or the filter's first problem.
fn canonical(query: &str) -> Result<String, String> {
    let f = CandidateFilter::from_query(query);
    match f.problems.first() {
        Some(p) => Err(format!("{}: {}", p.field, p.message)),
        None => Ok(f.to_query()),
    }
}

#[derive(Deserialize)]
pub struct SaveForm {
    name: String,
    query: String,
    #[serde(default)]
    default: String,
}

/// Saves the query under a name (replacing a view of that name), then
/// shows the table with it.
/// The longest query a saved view may have.
const MAX_QUERY_BYTES: usize = 8000;

#[handler]
pub async fn save(
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Form(form): Form<SaveForm>,
) -> WebResult<Response> {
    let name = form.name.trim();
    // Checked first: a refused query is sent back in the redirect's
    // Location, which must stay far below any proxy's header limit.
    if form.query.len() > MAX_QUERY_BYTES {
        return Err(AppError::BadRequest(format!(
            "this view is too long to save (its query has {} characters; at most {MAX_QUERY_BYTES})",
            form.query.len()
        )));
    }
    let query = match canonical(&form.query) {
        Ok(q) => q,
        Err(e) => {
            session
                .flash(
                    FlashKind::Error,
                    format!("Not saved: the view has a problem ({e})."),
                )
                .await?;
            return Ok(see_other(&table_at(&form.query)));
        }
    };
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        session
            .flash(
                FlashKind::Error,
                "Not saved: give the view a name of 1 to 100 characters.",
            )
            .await?;
        return Ok(see_other(&table_at(&query)));
    }
    if query.len() > MAX_QUERY_BYTES {
        return Err(AppError::BadRequest("this view is too long to save".into()));
    }
    let mut tx = state.pool.begin().await?;
    let (_, created) =
        views::save(&mut tx, user.id, name, &query, !form.default.is_empty()).await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            if created {
                format!("Saved the view “{name}”.")
            } else {
                format!("Updated the view “{name}”.")
            },
        )
        .await?;
    Ok(see_other(&table_at(&query)))
}

#[derive(Deserialize)]
pub struct DefaultForm {
    /// "0" stops the view being the default; anything else makes it so.
    #[serde(default)]
    on: String,
}

#[handler]
pub async fn make_default(
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Path(id): Path<ViewId>,
    Form(form): Form<DefaultForm>,
) -> WebResult<Response> {
    let on = form.on != "0";
    let mut tx = state.pool.begin().await?;
    let view = views::get(&mut tx, user.id, id)
        .await?
        .ok_or(AppError::NotFound("saved view"))?;
    views::set_default(&mut tx, user.id, id, on).await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            if on {
                format!(
                    "“{}” now opens when you visit Candidates or Ratings.",
                    view.name
                )
            } else {
                format!("“{}” is no longer your default view.", view.name)
            },
        )
        .await?;
    Ok(see_other(paths::VIEWS))
}

#[handler]
pub async fn delete(
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Path(id): Path<ViewId>,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let view = views::get(&mut conn, user.id, id)
        .await?
        .ok_or(AppError::NotFound("saved view"))?;
    views::delete(&mut conn, user.id, id).await?;
    session
        .flash(
            FlashKind::Success,
            format!("Deleted the view “{}”.", view.name),
        )
        .await?;
    Ok(see_other(paths::VIEWS))
}

#[derive(Deserialize)]
pub struct RateForm {
    query: String,
}

/// "Rate these": the reviewer's queue takes the query as its filter (and
/// its project, so metric orders keep working); its order and which
/// candidates it offers (not rated by me, …) stay. Then the first one.
#[handler]
pub async fn rate(
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Form(form): Form<RateForm>,
) -> WebResult<Response> {
    let query = match canonical(&form.query) {
        Ok(q) => q,
        Err(e) => {
            session
                .flash(FlashKind::Error, format!("The queue was not changed: {e}."))
                .await?;
            return Ok(see_other(&table_at(&form.query)));
        }
    };
    let f = CandidateFilter::from_query(&query);
    let mut conn = state.pool.acquire().await?;
    let found = search::resolve(&mut conn, &f).await?;
    if let Some(p) = found.problems.first() {
        session
            .flash(
                FlashKind::Error,
                format!("The queue was not changed: {}: {}.", p.field, p.message),
            )
            .await?;
        return Ok(see_other(&table_at(&query)));
    }
    let current = queue::load(&mut conn, user.id, user.role).await?;
    let mut view = current.view.clone();
    view.project = f.project.clone();
    view.observation = None;
    view.tag = None;
    view.filter = (!query.is_empty()).then_some(query);
    let resolved = queue::resolve(&mut conn, view, current.seed, current.visibility).await?;
    queue::save(&mut conn, user.id, &resolved.view).await?;
    session
        .flash(
            FlashKind::Success,
            format!(
                "Queue: {}",
                crate::web::pages::candidate::queue_label(&resolved)
            ),
        )
        .await?;
    Ok(see_other(paths::NEXT))
}

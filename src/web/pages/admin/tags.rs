//! `/admin/tags`: each project's tags. Create, rename and describe,
//! reorder (the order gives the keys 1-9 on the rating page), merge one
//! into another (its ratings move over), delete one no rating uses.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::db::projects::{self, Project};
use crate::db::tags::{self, DeleteError, MergeError, Tag};
use crate::domain::TagId;
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
#[template(path = "admin/tags.html")]
pub struct TagsPage {
    layout: Layout,
    projects: Vec<Project>,
    current: Option<Project>,
    tags: Vec<Tag>,
    error: Option<String>,
}

impl TagsPage {
    /// The key a tag gets on the rating page.
    pub fn key(&self, index: &usize) -> String {
        if *index < 9 {
            (index + 1).to_string()
        } else {
            String::new()
        }
    }
    pub fn others<'a>(&'a self, tag: &Tag) -> Vec<&'a Tag> {
        self.tags.iter().filter(|t| t.id != tag.id).collect()
    }
}

async fn render(
    req: &Request,
    state: &AppState,
    current: Option<Project>,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<Response> {
    let projects: Vec<Project> = projects::list_with_counts(&state.pool)
        .await?
        .into_iter()
        .map(|p| p.project)
        .collect();
    let current = current.or_else(|| projects.first().cloned());
    let tags = match &current {
        Some(p) => tags::for_project(&state.pool, p.id).await?,
        None => Vec::new(),
    };
    Ok(TagsPage {
        layout: Layout::for_request(req).await?,
        projects,
        current,
        tags,
        error,
    }
    .with_status(status)
    .into_response())
}

#[derive(Deserialize)]
pub struct ProjectQuery {
    project: Option<String>,
}

#[handler]
pub async fn page(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Query(q): Query<ProjectQuery>,
) -> WebResult<Response> {
    let current = match q.project.as_deref().filter(|s| !s.is_empty()) {
        Some(slug) => {
            let mut conn = state.pool.acquire().await?;
            Some(
                projects::by_slug(&mut conn, slug)
                    .await?
                    .ok_or(AppError::NotFound("project"))?,
            )
        }
        None => None,
    };
    render(req, &state, current, None, StatusCode::OK).await
}

/// A tag's name and description, checked as the database will.
fn check(name: &str, description: &str) -> Result<(), String> {
    crate::domain::text::one_line(name, 64).map_err(|e| format!("A tag name {e}."))?;
    if description.chars().count() > 1000 {
        return Err("A tag description has at most 1000 characters.".into());
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct NewTagForm {
    project: String,
    name: String,
    #[serde(default)]
    description: String,
}

#[handler]
pub async fn create(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Form(f): Form<NewTagForm>,
) -> WebResult<Response> {
    let project = {
        let mut conn = state.pool.acquire().await?;
        projects::by_slug(&mut conn, &f.project)
            .await?
            .ok_or(AppError::NotFound("project"))?
    };
    let (name, description) = (f.name.trim(), f.description.trim());
    if let Err(e) = check(name, description) {
        return render(req, &state, Some(project), Some(e), StatusCode::BAD_REQUEST).await;
    }
    let mut tx = state.pool.begin().await?;
    if tags::create(&mut *tx, project.id, name, description)
        .await?
        .is_none()
    {
        let e = format!("{} has a tag named “{name}” already.", project.name);
        return render(req, &state, Some(project), Some(e), StatusCode::CONFLICT).await;
    }
    admin
        .audit(
            &mut *tx,
            "tag.create",
            &format!("{}/{name}", project.slug),
            json!({"description": description}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(FlashKind::Success, format!("Tag “{name}” added."))
        .await?;
    Ok(see_other(&paths::admin_tags_of(&project.slug)))
}

/// The tag and its project, or 404.
async fn tag_and_project(state: &AppState, id: TagId) -> WebResult<(Tag, Project)> {
    let tag = tags::by_id(&state.pool, id)
        .await?
        .ok_or(AppError::NotFound("tag"))?;
    let project = projects::by_id(&state.pool, tag.project_id)
        .await?
        .ok_or(AppError::NotFound("project"))?;
    Ok((tag, project))
}

#[derive(Deserialize)]
pub struct EditForm {
    name: String,
    #[serde(default)]
    description: String,
}

#[handler]
pub async fn update(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<TagId>,
    Form(f): Form<EditForm>,
) -> WebResult<Response> {
    let (tag, project) = tag_and_project(&state, id).await?;
    let (name, description) = (f.name.trim(), f.description.trim());
    if let Err(e) = check(name, description) {
        return render(req, &state, Some(project), Some(e), StatusCode::BAD_REQUEST).await;
    }
    if name == tag.name && description == tag.description {
        return Ok(see_other(&paths::admin_tags_of(&project.slug)));
    }
    let mut tx = state.pool.begin().await?;
    if !tags::update(&mut *tx, id, name, description).await? {
        let e = format!("{} has another tag named “{name}”.", project.name);
        return render(req, &state, Some(project), Some(e), StatusCode::CONFLICT).await;
    }
    admin
        .audit(
            &mut *tx,
            "tag.update",
            &format!("{}/{}", project.slug, tag.name),
            json!({"tag_id": id, "name": name, "description": description}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(FlashKind::Success, format!("Tag “{name}” saved."))
        .await?;
    Ok(see_other(&paths::admin_tags_of(&project.slug)))
}

#[derive(Deserialize)]
pub struct MoveForm {
    /// The 1-based place in the order.
    to: String,
}

#[handler]
pub async fn move_to(
    state: Data<&AppState>,
    admin: Admin,
    Path(id): Path<TagId>,
    Form(f): Form<MoveForm>,
) -> WebResult<Response> {
    let to: usize =
        f.to.trim()
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| AppError::BadRequest("the new place is a number from 1".into()))?;
    let (tag, project) = tag_and_project(&state, id).await?;
    let mut tx = state.pool.begin().await?;
    if !tags::move_to(&mut tx, id, to - 1).await? {
        return Err(AppError::NotFound("tag"));
    }
    admin
        .audit(
            &mut *tx,
            "tag.move",
            &format!("{}/{}", project.slug, tag.name),
            json!({"tag_id": id, "to": to}),
        )
        .await?;
    tx.commit().await?;
    Ok(see_other(&paths::admin_tags_of(&project.slug)))
}

#[derive(Deserialize)]
pub struct MergeForm {
    into: String,
    confirm: Option<String>,
}

#[handler]
pub async fn merge(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<TagId>,
    Form(f): Form<MergeForm>,
) -> WebResult<Response> {
    let into: i64 = f
        .into
        .trim()
        .parse()
        .map_err(|_| AppError::BadRequest("choose the tag to merge into".into()))?;
    let (tag, project) = tag_and_project(&state, id).await?;
    if !ticked(&f.confirm) {
        let e = format!(
            "Tick the box to confirm merging “{}”: its ratings move to the other tag and “{}” is removed.",
            tag.name, tag.name
        );
        return render(req, &state, Some(project), Some(e), StatusCode::BAD_REQUEST).await;
    }
    let mut tx = state.pool.begin().await?;
    let (source, target, merged) = match tags::merge(&mut tx, id, TagId(into)).await? {
        Ok(v) => v,
        Err(e) => {
            let msg = match e {
                MergeError::NotFound => "The tag to merge into no longer exists.",
                MergeError::SameTag => "A tag cannot be merged into itself.",
                MergeError::OtherProject => "Tags can only be merged within one project.",
            };
            drop(tx);
            return render(
                req,
                &state,
                Some(project),
                Some(msg.into()),
                StatusCode::CONFLICT,
            )
            .await;
        }
    };
    admin
        .audit(
            &mut *tx,
            "tag.merge",
            &format!("{}/{}", project.slug, source.name),
            json!({"from_id": source.id, "into_id": target.id, "into": target.name,
                   "moved": merged.moved, "had_both": merged.had_both}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            format!(
                "“{}” merged into “{}”: {} rating{} moved over{}.",
                source.name,
                target.name,
                merged.moved,
                if merged.moved == 1 { "" } else { "s" },
                if merged.had_both > 0 {
                    format!(", {} had both already", merged.had_both)
                } else {
                    String::new()
                }
            ),
        )
        .await?;
    Ok(see_other(&paths::admin_tags_of(&project.slug)))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    confirm: Option<String>,
}

#[handler]
pub async fn delete(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<TagId>,
    Form(f): Form<DeleteForm>,
) -> WebResult<Response> {
    let (tag, project) = tag_and_project(&state, id).await?;
    if !ticked(&f.confirm) {
        let e = format!("Tick the box to confirm deleting “{}”.", tag.name);
        return render(req, &state, Some(project), Some(e), StatusCode::BAD_REQUEST).await;
    }
    let mut tx = state.pool.begin().await?;
    let removed = match tags::delete_unused(&mut tx, id).await? {
        Ok(t) => t,
        Err(DeleteError::NotFound) => return Err(AppError::NotFound("tag")),
        Err(DeleteError::InUse(n)) => {
            drop(tx);
            let e = format!(
                "“{}” is on {n} rating{}, so it cannot be deleted. Merge it into another tag instead: its ratings move over.",
                tag.name,
                if n == 1 { "" } else { "s" }
            );
            return render(req, &state, Some(project), Some(e), StatusCode::CONFLICT).await;
        }
    };
    admin
        .audit(
            &mut *tx,
            "tag.delete",
            &format!("{}/{}", project.slug, removed.name),
            json!({"tag_id": id}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            format!("Tag “{}” deleted.", removed.name),
        )
        .await?;
    Ok(see_other(&paths::admin_tags_of(&project.slug)))
}

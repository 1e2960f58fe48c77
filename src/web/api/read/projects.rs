//! `GET /api/v1/projects`, `GET /api/v1/projects/{project}` and
//! `GET /api/v1/projects/{project}/observations`: what there is, and how
//! far the team is with it (`db::progress`, the home page's figures).

use poem::web::{Data, Json, Path};
use poem::{handler, Request};
use serde_json::{json, Value};

use crate::db::progress::{self, Figures, ObservationProgress, ProjectProgress};
use crate::db::{projects, ratings, tags};
use crate::domain::paging::{Limit, ObservationCursor};
use crate::web::api::read::{refuse, timestamp, Query};
use crate::web::paths;
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

fn figures_json(f: &Figures) -> Value {
    json!({
        "candidates": f.candidates,
        "rated": f.rated,
        "settled": f.settled(),
        "settled_real": f.settled_real,
        "settled_not_real": f.settled_not_real,
        "disputed": f.disputed,
        "consensus_of_own_ratings_only": f.own_only,
    })
}

fn project_json(p: &ProjectProgress) -> Value {
    json!({
        "slug": p.slug,
        "name": p.name,
        "description": p.description,
        "observations": p.observations,
        "progress": figures_json(&p.figures),
        "observations_url": paths::api_project_observations(&p.slug),
    })
}

fn observation_json(o: &ObservationProgress) -> Value {
    json!({
        "observation": o.external_id,
        "project": o.project,
        "start_time": o.start_time.map(timestamp),
        "progress": figures_json(&o.figures),
    })
}

/// Every project with its progress.
#[handler]
pub async fn list(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Json<Value>> {
    Query::read(req, |_| false)?;
    let mut conn = state.pool.acquire().await?;
    let v = ratings::visibility(&mut conn, user.id, user.role).await?;
    let all = progress::projects(&mut conn, &v).await?;
    Ok(Json(json!({
        "projects": all.iter().map(project_json).collect::<Vec<_>>(),
    })))
}

/// One project: its progress, metrics (the keys its filters and
/// candidates use) and tags.
#[handler]
pub async fn one(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> WebResult<Json<Value>> {
    Query::read(req, |_| false)?;
    let mut conn = state.pool.acquire().await?;
    let p = projects::by_slug(&mut conn, &slug)
        .await?
        .ok_or(AppError::NotFound("project"))?;
    let v = ratings::visibility(&mut conn, user.id, user.role).await?;
    let line = progress::projects(&mut conn, &v)
        .await?
        .into_iter()
        .find(|l| l.id == p.id)
        .ok_or(AppError::NotFound("project"))?;
    let metrics: Vec<Value> = projects::metrics(&mut conn, p.id)
        .await?
        .into_iter()
        .map(|m| {
            json!({"key": m.key, "label": m.label, "unit": m.unit, "description": m.description})
        })
        .collect();
    // Names only: how often a tag is used counts verdicts.
    let tags: Vec<Value> = tags::for_project(&mut *conn, p.id)
        .await?
        .into_iter()
        .map(|t| json!({"name": t.name, "description": t.description}))
        .collect();
    let mut out = project_json(&line);
    out["metrics"] = json!(metrics);
    out["tags"] = json!(tags);
    Ok(Json(out))
}

/// The project's observations, newest first, with their progress.
#[handler]
pub async fn observations(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> WebResult<Json<Value>> {
    let q = Query::read(req, |k| matches!(k, "cursor" | "limit"))?;
    let mut problems = Vec::new();
    let limit = Limit::parse(q.get("limit"))
        .map_err(|p| problems.push(p))
        .unwrap_or_default();
    let cursor = q
        .get("cursor")
        .map(ObservationCursor::parse)
        .transpose()
        .map_err(|p| problems.push(p))
        .unwrap_or_default();
    refuse(problems)?;
    let mut conn = state.pool.acquire().await?;
    let p = projects::by_slug(&mut conn, &slug)
        .await?
        .ok_or(AppError::NotFound("project"))?;
    let v = ratings::visibility(&mut conn, user.id, user.role).await?;
    let want = i64::from(limit.get());
    let mut rows =
        progress::observations(&mut conn, &v, Some(p.id), cursor.map(|c| c.0), want + 1).await?;
    let next = if rows.len() as i64 > want {
        rows.truncate(want as usize);
        rows.last().map(|o| ObservationCursor(o.id).encode())
    } else {
        None
    };
    Ok(Json(json!({
        "observations": rows.iter().map(observation_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

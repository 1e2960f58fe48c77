//! `PUT /api/v1/projects/{project}`.

use poem::web::{Data, Path};
use poem::{handler, Body, Request, Response};

use crate::db::projects;
use crate::domain::upload::{check_slug, ProjectSpec};
use crate::domain::Problem;
use crate::web::api::body::UploadBody;
use crate::web::api::outcome_response;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

#[handler]
pub async fn put(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    Path(slug): Path<String>,
) -> WebResult<Response> {
    check_slug(&slug).map_err(|e| AppError::invalid(vec![Problem::new("project", e)]))?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "project").await?;
    if !upload.files.is_empty() {
        return Err(AppError::invalid(vec![Problem::new(
            "files",
            "projects take no files",
        )]));
    }
    let spec = ProjectSpec::parse(upload.json).map_err(AppError::invalid)?;
    let mut tx = state.pool.begin().await?;
    let (id, outcome) = projects::upsert(&mut tx, &slug, &spec).await?;
    tx.commit().await?;
    Ok(outcome_response(outcome, id, "project", &slug))
}

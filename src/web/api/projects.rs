//! `PUT /api/v1/projects/{project}`.

use poem::web::{Data, Path};
use poem::{handler, Body, Request, Response};

use crate::domain::names::ProjectSlug;
use crate::domain::upload::ProjectSpec;
use crate::web::api::body::UploadBody;
use crate::web::api::{ingest, stored_response};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

#[handler]
pub async fn put(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    Path(slug): Path<String>,
) -> WebResult<Response> {
    let slug = ProjectSlug::parse(&slug)?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "project").await?;
    let spec = ProjectSpec::parse(upload.json).map_err(AppError::invalid)?;
    let stored = ingest(&state).project(&slug, &spec, upload.files).await?;
    Ok(stored_response(stored, "project", slug.as_str()))
}

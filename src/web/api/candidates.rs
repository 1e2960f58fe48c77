//! `PUT …/candidates/{name}` (one) and `POST …/candidates` (a batch).

use poem::web::{Data, Json, Path};
use poem::{handler, Body, IntoResponse, Request, Response};

use crate::db::projects::Outcome;
use crate::domain::names::{ObservationKey, ProjectSlug};
use crate::ingest::{Batch, Stored};
use crate::web::api::body::UploadBody;
use crate::web::api::{ingest, stored_response};
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

#[handler]
pub async fn put(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, key, name)): Path<(String, String, String)>,
) -> WebResult<Response> {
    let key = ObservationKey::parse(&key)?;
    let slug = ProjectSlug::parse(&slug)?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "candidate").await?;
    let batch = Batch::one(upload.json, &name)?;
    let outcomes = ingest(&state)
        .candidates(user.id, &slug, &key, batch, upload.files)
        .await?;
    let one = outcomes
        .into_iter()
        .next()
        .ok_or_else(|| AppError::internal("a batch of one came back empty"))?;
    let stored = Stored {
        id: one.id.0,
        outcome: one.status,
    };
    Ok(stored_response(stored, "candidate", &one.name))
}

#[handler]
pub async fn post_batch(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, key)): Path<(String, String)>,
) -> WebResult<Response> {
    let key = ObservationKey::parse(&key)?;
    let slug = ProjectSlug::parse(&slug)?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "candidates").await?;
    let batch = Batch::parse(upload.json)?;
    let outcomes = ingest(&state)
        .candidates(user.id, &slug, &key, batch, upload.files)
        .await?;
    let count = |o: Outcome| outcomes.iter().filter(|r| r.status == o).count();
    Ok(Json(serde_json::json!({
        "created": count(Outcome::Created),
        "updated": count(Outcome::Updated),
        "unchanged": count(Outcome::Unchanged),
        "candidates": outcomes,
    }))
    .into_response())
}

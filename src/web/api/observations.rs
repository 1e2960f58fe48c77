//! `PUT /api/v1/projects/{project}/observations/{observation}`,
//! `…/beams/{beam}`, and `POST …/finished`.

use poem::web::{Data, Json, Path};
use poem::{handler, Body, Request, Response};

use crate::domain::names::{BeamName, ObservationKey, ProjectSlug};
use crate::domain::upload::{BeamSpec, ObservationSpec};
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
    Path((slug, key)): Path<(String, String)>,
) -> WebResult<Response> {
    let key = ObservationKey::parse(&key)?;
    let slug = ProjectSlug::parse(&slug)?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "observation").await?;
    let spec = ObservationSpec::parse(upload.json).map_err(AppError::invalid)?;
    let stored = ingest(&state)
        .observation(user.id, &slug, &key, &spec, upload.files)
        .await?;
    Ok(stored_response(stored, "observation", key.as_str()))
}

#[handler]
pub async fn put_beam(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    Path((slug, key, beam)): Path<(String, String, String)>,
) -> WebResult<Response> {
    let beam = BeamName::parse(&beam)?;
    let key = ObservationKey::parse(&key)?;
    let slug = ProjectSlug::parse(&slug)?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "beam").await?;
    let spec = BeamSpec::parse(upload.json).map_err(AppError::invalid)?;
    let stored = ingest(&state)
        .beam(&slug, &key, &beam, &spec, upload.files)
        .await?;
    Ok(stored_response(stored, "beam", beam.as_str()))
}

/// `POST …/observations/{observation}/finished`: the pipeline has sent
/// everything for this observation. The project's targets that chose
/// "upload finished" are told (once the request has committed, by the
/// notification worker). Saying it again is harmless: nobody is told twice
/// unless candidates were written since.
#[handler]
pub async fn finished(
    state: Data<&AppState>,
    Path((slug, key)): Path<(String, String)>,
) -> WebResult<Json<serde_json::Value>> {
    let key = ObservationKey::parse(&key)?;
    let slug = ProjectSlug::parse(&slug)?;
    let f = ingest(&state).finish(&slug, &key).await?;
    let (status, message) = if f.changed {
        (
            "finished",
            format!(
                "observation {} marked finished; {} notification{} queued",
                key.as_str(),
                f.notified,
                if f.notified == 1 { "" } else { "s" }
            ),
        )
    } else {
        (
            "unchanged",
            format!(
                "observation {} was finished already and nothing was written to it since; nobody is told again",
                key.as_str()
            ),
        )
    };
    Ok(Json(serde_json::json!({
        "status": status,
        "observation": key.as_str(),
        "notifications": f.notified,
        "message": message,
    })))
}

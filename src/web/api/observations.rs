//! `PUT /api/v1/projects/{project}/observations/{observation}` and
//! `…/beams/{beam}`.

use std::collections::BTreeMap;

use poem::web::{Data, Path};
use poem::{handler, Body, Request, Response};
use sqlx::PgConnection;

use crate::db::files::{self as file_rows, Owner};
use crate::db::projects::{self, Outcome};
use crate::db::{observations, projects::Project};
use crate::domain::upload::{check_external_id, BeamSpec, ObservationSpec, Problems};
use crate::domain::Problem;
use crate::ingest::publish::Publication;
use crate::media::MediaStore;
use crate::web::api::body::{ReceivedFile, UploadBody};
use crate::web::api::{attach, files, finish_files, outcome_response, reject_if_any, settle};
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

pub async fn project(db: &mut PgConnection, slug: &str) -> WebResult<Project> {
    projects::by_slug(db, slug).await?.ok_or_else(|| {
        AppError::invalid(vec![Problem::new(
            "project",
            format!(
                "there is no project {slug:?}: create it first with PUT /api/v1/projects/{slug}"
            ),
        )])
    })
}

pub async fn observation(
    db: &mut PgConnection,
    project: &Project,
    external_id: &str,
) -> WebResult<i64> {
    observations::id_of(db, project.id, external_id).await?.ok_or_else(|| {
        AppError::invalid(vec![Problem::new(
            "observation",
            format!(
                "there is no observation {external_id:?} in project {:?}: create it first with PUT /api/v1/projects/{}/observations/{external_id}",
                project.slug, project.slug
            ),
        )])
    })
}

/// Checks and prepares the files of a single owner; drops those identical
/// to what is stored under the same role.
async fn owner_files(
    media: &MediaStore,
    db: &mut PgConnection,
    owner: Option<Owner>,
    files_map: &BTreeMap<String, String>,
    mut received: std::collections::HashMap<String, ReceivedFile>,
) -> WebResult<Vec<files::Prepared>> {
    let mut p = Problems::default();
    let mut taken = files::take(&[(String::new(), files_map)], &mut received, &mut p);
    files::inspect_fits(&taken, &[String::new()], &mut p).await;
    reject_if_any(p)?;
    if let Some(owner) = owner {
        let (kind, id): (fn(i64) -> Owner, i64) = match owner {
            Owner::Observation(id) => (Owner::Observation, id),
            Owner::Beam(id) => (Owner::Beam, id),
            Owner::Candidate(id) => (Owner::Candidate, id),
        };
        let stored = file_rows::shas(db, kind, &[id]).await?;
        taken[0].retain(|(role, f)| stored.get(&(id, role.clone())) != Some(&f.temp.sha256));
    }
    Ok(files::prepare(media, taken, &[String::new()])
        .await?
        .remove(0))
}

#[handler]
pub async fn put(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, external_id)): Path<(String, String)>,
) -> WebResult<Response> {
    check_external_id(&external_id, 128)
        .map_err(|e| AppError::invalid(vec![Problem::new("observation", e)]))?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "observation").await?;
    let spec = ObservationSpec::parse(upload.json).map_err(AppError::invalid)?;
    let media = MediaStore::new(&state.config.media_root);
    let mut conn = state.pool.acquire().await?;
    let project = project(&mut conn, &slug).await?;
    let existing = observations::id_of(&mut conn, project.id, &external_id).await?;
    let prepared = owner_files(
        &media,
        &mut conn,
        existing.map(Owner::Observation),
        &spec.files,
        upload.files,
    )
    .await?;
    drop(conn);

    let (id, outcome) =
        store_with_files(&state, &media, &prepared, Owner::Observation, async |db| {
            Ok(observations::upsert(db, project.id, &external_id, &spec, user.id).await?)
        })
        .await?;
    Ok(outcome_response(outcome, id, "observation", &external_id))
}

#[handler]
pub async fn put_beam(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    Path((slug, external_id, beam)): Path<(String, String, String)>,
) -> WebResult<Response> {
    check_external_id(&beam, 64).map_err(|e| AppError::invalid(vec![Problem::new("beam", e)]))?;
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "beam").await?;
    let spec = BeamSpec::parse(upload.json).map_err(AppError::invalid)?;
    let media = MediaStore::new(&state.config.media_root);
    let mut conn = state.pool.acquire().await?;
    let project = project(&mut conn, &slug).await?;
    let observation = observation(&mut conn, &project, &external_id).await?;
    let existing = observations::beam_ids(&mut conn, observation)
        .await?
        .get(&beam)
        .copied();
    let prepared = owner_files(
        &media,
        &mut conn,
        existing.map(Owner::Beam),
        &spec.files,
        upload.files,
    )
    .await?;
    drop(conn);

    let (id, outcome) = store_with_files(&state, &media, &prepared, Owner::Beam, async |db| {
        Ok(observations::upsert_beam(db, observation, &beam, &spec).await?)
    })
    .await?;
    Ok(outcome_response(outcome, id, "beam", &beam))
}

/// Writes one observation or beam (`upsert`) and its files in one
/// transaction, then removes the objects of files it replaced. New files
/// make it an update even when the fields are unchanged.
async fn store_with_files(
    state: &AppState,
    media: &MediaStore,
    prepared: &[files::Prepared],
    owner: fn(i64) -> Owner,
    upsert: impl AsyncFnOnce(&mut PgConnection) -> Result<(i64, Outcome), AppError>,
) -> WebResult<(i64, Outcome)> {
    let mut tx = state.pool.begin().await?;
    let mut published = Publication::new(media, &state.pool);
    let written = async {
        published
            .publish(&mut tx, prepared.iter().map(|f| (&f.temp, f.kind)))
            .await?;
        let (id, outcome) = upsert(&mut tx).await?;
        let mut replaced = Vec::new();
        attach(&mut tx, owner(id), prepared, &mut replaced).await?;
        Ok::<_, AppError>((id, outcome, replaced))
    }
    .await;
    let (id, mut outcome, replaced) = settle(published, tx, written).await?;
    if outcome == Outcome::Unchanged && !prepared.is_empty() {
        outcome = Outcome::Updated;
    }
    finish_files(media, &state.pool, replaced).await;
    Ok((id, outcome))
}

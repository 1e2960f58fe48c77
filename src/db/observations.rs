//! Observations and their beams.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::db::projects::Outcome;
use crate::domain::upload::{BeamSpec, ObservationSpec};
use crate::domain::{BeamId, ObservationId, ProjectId, UserId};

pub async fn id_of(
    db: &mut PgConnection,
    project: ProjectId,
    external_id: &str,
) -> sqlx::Result<Option<ObservationId>> {
    sqlx::query_scalar("SELECT id FROM observations WHERE project_id = $1 AND external_id = $2")
        .bind(project)
        .bind(external_id)
        .fetch_optional(db)
        .await
}

/// Inserts, or updates when the content differs; the outcome says which.
pub async fn upsert(
    db: &mut PgConnection,
    project: ProjectId,
    external_id: &str,
    spec: &ObservationSpec,
    user: UserId,
) -> sqlx::Result<(ObservationId, Outcome)> {
    let row: Option<(ObservationId, bool)> = sqlx::query_as(
        "INSERT INTO observations (project_id, external_id, start_time, pointing_ra, pointing_dec, metadata, content_hash, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (project_id, external_id) DO UPDATE SET
             start_time = EXCLUDED.start_time, pointing_ra = EXCLUDED.pointing_ra,
             pointing_dec = EXCLUDED.pointing_dec, metadata = EXCLUDED.metadata,
             content_hash = EXCLUDED.content_hash, updated_at = now()
         WHERE observations.content_hash <> EXCLUDED.content_hash
         RETURNING id, xmax = 0",
    )
    .bind(project)
    .bind(external_id)
    .bind(spec.start_time)
    .bind(spec.pointing.map(|p| p.ra.degrees()))
    .bind(spec.pointing.map(|p| p.dec.degrees()))
    .bind(sqlx::types::Json(&spec.metadata))
    .bind(spec.content_hash())
    .bind(user)
    .fetch_optional(&mut *db)
    .await?;
    Ok(match row {
        Some((id, true)) => (id, Outcome::Created),
        Some((id, false)) => (id, Outcome::Updated),
        None => {
            let id = id_of(db, project, external_id)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?;
            (id, Outcome::Unchanged)
        }
    })
}

pub async fn beam_ids(
    db: &mut PgConnection,
    observation: ObservationId,
) -> sqlx::Result<HashMap<String, BeamId>> {
    let rows: Vec<(String, BeamId)> =
        sqlx::query_as("SELECT name, id FROM beams WHERE observation_id = $1")
            .bind(observation)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

pub async fn upsert_beam(
    db: &mut PgConnection,
    observation: ObservationId,
    name: &str,
    spec: &BeamSpec,
) -> sqlx::Result<(BeamId, Outcome)> {
    let row: Option<(BeamId, bool)> = sqlx::query_as(
        "INSERT INTO beams (observation_id, name, centre_ra, centre_dec, metadata, content_hash)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (observation_id, name) DO UPDATE SET
             centre_ra = EXCLUDED.centre_ra, centre_dec = EXCLUDED.centre_dec,
             metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash
         WHERE beams.content_hash <> EXCLUDED.content_hash
         RETURNING id, xmax = 0",
    )
    .bind(observation)
    .bind(name)
    .bind(spec.centre.map(|p| p.ra.degrees()))
    .bind(spec.centre.map(|p| p.dec.degrees()))
    .bind(sqlx::types::Json(&spec.metadata))
    .bind(spec.content_hash())
    .fetch_optional(&mut *db)
    .await?;
    Ok(match row {
        Some((id, true)) => (id, Outcome::Created),
        Some((id, false)) => (id, Outcome::Updated),
        None => {
            let id =
                sqlx::query_scalar("SELECT id FROM beams WHERE observation_id = $1 AND name = $2")
                    .bind(observation)
                    .bind(name)
                    .fetch_one(&mut *db)
                    .await?;
            (id, Outcome::Unchanged)
        }
    })
}

// ---- The end of an upload (notifications) ----

/// Marks the observation's upload finished, in the caller's transaction.
/// Returns when it was finished before, and whether anything was written
/// to it since then (always, the first time).
pub async fn finish_upload(
    db: &mut PgConnection,
    observation: ObservationId,
) -> sqlx::Result<(Option<OffsetDateTime>, bool)> {
    let (before, changed): (Option<OffsetDateTime>, bool) = sqlx::query_as(
        "SELECT o.upload_finished_at,
                o.upload_finished_at IS NULL OR EXISTS (
                    SELECT 1 FROM candidates c
                    WHERE c.observation_id = o.id AND c.updated_at > o.upload_finished_at)
         FROM observations o WHERE o.id = $1 FOR UPDATE",
    )
    .bind(observation)
    .fetch_one(&mut *db)
    .await?;
    if changed {
        sqlx::query("UPDATE observations SET upload_finished_at = now() WHERE id = $1")
            .bind(observation)
            .execute(&mut *db)
            .await?;
    }
    Ok((before, changed))
}

/// What the notification of a finished upload says about the observation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadFacts {
    pub candidates: i64,
    /// Written since the upload was last finished (all, the first time).
    pub new: i64,
    /// Candidates with a known source within the project's radius, in all
    /// and by catalogue.
    pub matched: i64,
    pub matched_by_catalogue: Vec<(String, i64)>,
    /// The most likely real by the project's model, best first.
    pub top: Vec<Scored>,
    /// Candidates the current model has not scored yet (none without a model).
    pub unscored: i64,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Scored {
    pub id: crate::domain::CandidateId,
    pub name: String,
    pub p_real: f32,
}

pub async fn upload_facts(
    db: &mut PgConnection,
    observation: ObservationId,
    since: Option<time::OffsetDateTime>,
    top: i64,
) -> sqlx::Result<UploadFacts> {
    let (candidates, new, matched, unscored): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE $2::timestamptz IS NULL OR c.updated_at > $2),
                count(*) FILTER (WHERE EXISTS (SELECT 1 FROM catalogue_nearest n WHERE n.candidate_id = c.id)),
                CASE WHEN EXISTS (SELECT 1 FROM models m WHERE m.project_id = o.project_id AND m.accepted)
                     THEN count(*) FILTER (WHERE NOT EXISTS (
                         SELECT 1 FROM candidate_scores s WHERE s.project_id = c.project_id AND s.candidate_id = c.id))
                     ELSE 0 END
         FROM observations o LEFT JOIN candidates c ON c.observation_id = o.id
         WHERE o.id = $1 GROUP BY o.project_id",
    )
    .bind(observation)
    .bind(since)
    .fetch_one(&mut *db)
    .await?;
    let matched_by_catalogue = sqlx::query_as(
        "SELECT k.name, count(*) FROM candidates c
         JOIN catalogue_nearest n ON n.candidate_id = c.id JOIN catalogues k ON k.id = n.catalogue_id
         WHERE c.observation_id = $1 GROUP BY k.name ORDER BY k.name",
    )
    .bind(observation)
    .fetch_all(&mut *db)
    .await?;
    let top = sqlx::query_as(
        "SELECT c.id, c.name, s.p_real FROM candidates c
         JOIN candidate_scores s ON s.project_id = c.project_id AND s.candidate_id = c.id
         WHERE c.observation_id = $1 ORDER BY s.p_real DESC, c.id LIMIT $2",
    )
    .bind(observation)
    .bind(top)
    .fetch_all(&mut *db)
    .await?;
    Ok(UploadFacts {
        candidates,
        new,
        matched,
        matched_by_catalogue,
        top,
        unscored,
    })
}

// ---- Administration (`/admin/projects/{slug}`) ----

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Line {
    pub id: ObservationId,
    pub external_id: String,
    pub start_time: Option<time::OffsetDateTime>,
    pub candidates: i64,
}

pub async fn lines(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<Vec<Line>> {
    sqlx::query_as(
        "SELECT o.id, o.external_id, o.start_time,
                (SELECT count(*) FROM candidates c WHERE c.observation_id = o.id) AS candidates
         FROM observations o WHERE o.project_id = $1
         ORDER BY o.start_time DESC NULLS LAST, o.external_id",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

// ---- Form choices ----

/// The project's observations in time order, for the queue form.
pub async fn external_ids(
    db: impl PgExecutor<'_>,
    project: ProjectId,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT external_id FROM observations WHERE project_id = $1 ORDER BY start_time NULLS LAST, external_id",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

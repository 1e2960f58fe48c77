//! Deleting a project or an observation with everything under it: beams,
//! candidates, their ratings and history, and file rows. The database
//! cascades; this module counts first, so the administrator is told what
//! goes, and collects the storage paths, so the media objects no remaining
//! row uses can be removed once the transaction has committed.

use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::domain::{ObservationId, ProjectId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Project(ProjectId),
    Observation(ObservationId),
}

impl Scope {
    fn id(self) -> i64 {
        match self {
            Scope::Project(id) => id.0,
            Scope::Observation(id) => id.0,
        }
    }
}

/// What is under a project or observation.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow, Serialize)]
pub struct Contents {
    pub observations: i64,
    pub beams: i64,
    pub candidates: i64,
    /// Current ratings.
    pub ratings: i64,
    /// Ratings that were replaced and kept in the history.
    pub earlier_ratings: i64,
    /// File rows.
    pub files: i64,
    /// Distinct stored objects those rows point at, and their size.
    pub media_objects: i64,
    pub media_bytes: i64,
    /// A project's tags and metric definitions (none for an observation).
    pub tags: i64,
    pub metrics: i64,
}

/// The common table expressions naming everything under the scope, `$1`.
fn under(scope: Scope) -> String {
    let observations = match scope {
        Scope::Project(_) => "project_id = $1",
        Scope::Observation(_) => "id = $1",
    };
    format!(
        "WITH o AS (SELECT id FROM observations WHERE {observations}),
              b AS (SELECT id FROM beams WHERE observation_id IN (SELECT id FROM o)),
              c AS (SELECT id FROM candidates WHERE observation_id IN (SELECT id FROM o)),
              f AS (SELECT storage_path, size_bytes FROM files WHERE candidate_id IN (SELECT id FROM c)
                    UNION ALL
                    SELECT storage_path, size_bytes FROM files WHERE beam_id IN (SELECT id FROM b)
                    UNION ALL
                    SELECT storage_path, size_bytes FROM files WHERE observation_id IN (SELECT id FROM o)),
              objects AS (SELECT storage_path, max(size_bytes) AS size_bytes FROM f GROUP BY storage_path)"
    )
}

pub async fn contents(db: &mut PgConnection, scope: Scope) -> sqlx::Result<Contents> {
    let project_only = match scope {
        Scope::Project(_) => {
            "(SELECT count(*) FROM tags WHERE project_id = $1) AS tags,
             (SELECT count(*) FROM metric_defs WHERE project_id = $1) AS metrics"
        }
        Scope::Observation(_) => "0::bigint AS tags, 0::bigint AS metrics",
    };
    sqlx::query_as(&format!(
        "{} SELECT
            (SELECT count(*) FROM o) AS observations,
            (SELECT count(*) FROM b) AS beams,
            (SELECT count(*) FROM c) AS candidates,
            (SELECT count(*) FROM ratings WHERE candidate_id IN (SELECT id FROM c)) AS ratings,
            (SELECT count(*) FROM rating_history WHERE candidate_id IN (SELECT id FROM c)) AS earlier_ratings,
            (SELECT count(*) FROM f) AS files,
            (SELECT count(*) FROM objects) AS media_objects,
            (SELECT coalesce(sum(size_bytes), 0)::bigint FROM objects) AS media_bytes,
            {project_only}",
        under(scope)
    ))
    .bind(scope.id())
    .fetch_one(db)
    .await
}

/// A stored object a deleted row pointed at.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Object {
    pub storage_path: String,
    pub size_bytes: i64,
}

/// Deletes the project or observation and everything under it; None if it
/// does not exist. Returns what was removed and every storage path the
/// removed rows pointed at (some may still be used by other rows: check
/// with `files::unreferenced` after the commit). Call inside a transaction.
pub async fn delete(
    db: &mut PgConnection,
    scope: Scope,
) -> sqlx::Result<Option<(Contents, Vec<Object>)>> {
    // The row lock makes a concurrent upload into it wait (its foreign-key
    // check needs a share lock), so nothing is added while we count.
    let lock = match scope {
        Scope::Project(_) => "SELECT id FROM projects WHERE id = $1 FOR UPDATE",
        Scope::Observation(_) => "SELECT id FROM observations WHERE id = $1 FOR UPDATE",
    };
    let found: Option<i64> = sqlx::query_scalar(lock)
        .bind(scope.id())
        .fetch_optional(&mut *db)
        .await?;
    if found.is_none() {
        return Ok(None);
    }
    let contents = contents(&mut *db, scope).await?;
    let objects: Vec<Object> = sqlx::query_as(&format!(
        "{} SELECT storage_path, size_bytes FROM objects ORDER BY storage_path",
        under(scope)
    ))
    .bind(scope.id())
    .fetch_all(&mut *db)
    .await?;
    let delete = match scope {
        Scope::Project(_) => "DELETE FROM projects WHERE id = $1",
        Scope::Observation(_) => "DELETE FROM observations WHERE id = $1",
    };
    sqlx::query(delete)
        .bind(scope.id())
        .execute(&mut *db)
        .await?;
    if let Scope::Project(p) = scope {
        crate::db::models::drop_scores(&mut *db, p).await?;
    }
    Ok(Some((contents, objects)))
}

//! What the filter form of the table and of the ratings summary offers, in
//! one statement. Each menu is a few rows of a small table; read one at a
//! time they cost a round trip each on every table page.

use sqlx::{FromRow, PgExecutor};

use crate::domain::ProjectId;

/// The form's menus. With no project chosen there are no observations or
/// beams to offer, and the tags are every project's, one per name whatever
/// its case (the filter matches names case-insensitively across projects).
#[derive(Debug, Clone, FromRow)]
pub struct Menus {
    pub project_slugs: Vec<String>,
    /// Beside the slugs, in the same order.
    pub project_names: Vec<String>,
    /// By start time; at most 5,000 (beyond that the field is typed).
    pub observations: Vec<String>,
    pub beams: Vec<String>,
    pub tags: Vec<String>,
    pub reviewers: Vec<String>,
    /// The kinds of extra position on record.
    pub position_kinds: Vec<String>,
}

pub async fn load(db: impl PgExecutor<'_>, project: Option<ProjectId>) -> sqlx::Result<Menus> {
    // The tag branch not taken is never run: uncorrelated subqueries are
    // evaluated when first used.
    sqlx::query_as(
        "SELECT ARRAY(SELECT slug FROM projects ORDER BY lower(name), slug) AS project_slugs,
                ARRAY(SELECT name FROM projects ORDER BY lower(name), slug) AS project_names,
                ARRAY(SELECT external_id FROM observations WHERE project_id = $1
                      ORDER BY start_time NULLS LAST, external_id LIMIT 5000) AS observations,
                ARRAY(SELECT name FROM project_beam_names WHERE project_id = $1
                      ORDER BY name LIMIT 1000) AS beams,
                CASE WHEN $1::bigint IS NULL
                     THEN ARRAY(SELECT min(name) FROM tags GROUP BY lower(name) ORDER BY lower(name))
                     ELSE ARRAY(SELECT name FROM tags WHERE project_id = $1 ORDER BY position, name)
                END AS tags,
                ARRAY(SELECT username FROM users ORDER BY lower(username)) AS reviewers,
                ARRAY(SELECT kind FROM position_kinds ORDER BY kind) AS position_kinds",
    )
    .bind(project)
    .fetch_one(db)
    .await
}

//! What the filter form of the table and of the ratings summary offers, in
//! one statement. Each menu is a few rows of a small table; read one at a
//! time they cost a round trip each on every table page. The same statement
//! reads each project's review settings (what the viewer may see of others'
//! ratings) and the viewer's saved views, which the same pages need.

use sqlx::{FromRow, PgExecutor};

use crate::db::views::SavedView;
use crate::domain::visibility::RatingVisibility;
use crate::domain::{ProjectId, Role, UserId, ViewId};

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
    /// The reference catalogues, by name.
    pub catalogues: Vec<String>,
    /// The attributes the project's observations carry (band, field, ...).
    pub observation_keys: Vec<String>,
    /// Each project's review settings, column by column.
    review_project_ids: Vec<ProjectId>,
    review_open: Vec<bool>,
    review_admins_see_all: Vec<bool>,
    /// The viewer's saved views, column by column, by name.
    view_ids: Vec<ViewId>,
    view_names: Vec<String>,
    view_queries: Vec<String>,
    view_defaults: Vec<bool>,
}

impl Menus {
    /// What `viewer` may see of others' ratings.
    pub fn visibility(&self, viewer: UserId, role: Role) -> RatingVisibility {
        RatingVisibility::from_columns(
            viewer,
            role,
            &self.review_project_ids,
            &self.review_open,
            &self.review_admins_see_all,
        )
    }

    /// The viewer's saved views, by name.
    pub fn saved_views(&self) -> Vec<SavedView> {
        self.view_ids
            .iter()
            .zip(&self.view_names)
            .zip(&self.view_queries)
            .zip(&self.view_defaults)
            .map(|(((&id, name), query), &is_default)| SavedView {
                id,
                name: name.clone(),
                query: query.clone(),
                is_default,
            })
            .collect()
    }
}

pub async fn load(
    db: impl PgExecutor<'_>,
    project: Option<ProjectId>,
    viewer: UserId,
) -> sqlx::Result<Menus> {
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
                ARRAY(SELECT kind FROM position_kinds ORDER BY kind) AS position_kinds,
                ARRAY(SELECT name FROM catalogues ORDER BY name) AS catalogues,
                ARRAY(SELECT DISTINCT k FROM observations o, jsonb_object_keys(o.metadata) k
                      WHERE o.project_id = $1 ORDER BY k LIMIT 200) AS observation_keys,
                ARRAY(SELECT id FROM projects ORDER BY id) AS review_project_ids,
                ARRAY(SELECT open_review FROM projects ORDER BY id) AS review_open,
                ARRAY(SELECT admins_see_all FROM projects ORDER BY id) AS review_admins_see_all,
                ARRAY(SELECT id FROM saved_views WHERE user_id = $2
                      ORDER BY lower(name), id) AS view_ids,
                ARRAY(SELECT name FROM saved_views WHERE user_id = $2
                      ORDER BY lower(name), id) AS view_names,
                ARRAY(SELECT query FROM saved_views WHERE user_id = $2
                      ORDER BY lower(name), id) AS view_queries,
                ARRAY(SELECT is_default FROM saved_views WHERE user_id = $2
                      ORDER BY lower(name), id) AS view_defaults",
    )
    .bind(project)
    .bind(viewer)
    .fetch_one(db)
    .await
}

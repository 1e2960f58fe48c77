//! Projects with their metric definitions and tags.

use std::collections::HashMap;

use sqlx::{FromRow, PgConnection, PgExecutor, Row};

use crate::domain::decision::GoodRange;
use crate::domain::upload::ProjectSpec;
use crate::domain::{ProjectId, UserId};

#[derive(Debug, Clone, FromRow)]
pub struct Project {
    pub id: ProjectId,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub reviewers_add_tags: bool,
    pub score_enabled: bool,
    /// Everyone sees every rating (`domain::visibility`).
    pub open_review: bool,
    /// Administrators see every rating.
    pub admins_see_all: bool,
    /// How long after a new candidate is painted its verdict keys are
    /// ignored, so that a double press cannot rate it unseen.
    pub key_guard_ms: i32,
}

#[derive(Debug, Clone, FromRow)]
pub struct MetricDef {
    pub id: i64,
    pub key: String,
    pub label: String,
    pub unit: String,
    pub description: String,
    pub precision: i16,
    pub shown_by_default: bool,
    pub headline: bool,
    pub good_min: Option<f64>,
    pub good_max: Option<f64>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

pub async fn by_slug(db: &mut PgConnection, slug: &str) -> sqlx::Result<Option<Project>> {
    // Slugs come from URLs; one that cannot exist (a NUL, which PostgreSQL
    // text refuses with an error) is simply not found.
    if crate::domain::upload::check_slug(slug).is_err() {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT id, slug, name, description, reviewers_add_tags, score_enabled, open_review, admins_see_all, key_guard_ms FROM projects WHERE slug = $1",
    )
    .bind(slug)
    .fetch_optional(db)
    .await
}

/// The project and its metrics in one statement (one row per metric, the
/// project's columns on each), for the filters that every table page
/// resolves.
pub async fn with_metrics(
    db: &mut PgConnection,
    slug: &str,
) -> sqlx::Result<Option<(Project, Vec<MetricDef>)>> {
    if crate::domain::upload::check_slug(slug).is_err() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT p.id, p.slug, p.name, p.description, p.reviewers_add_tags, p.score_enabled,
                p.open_review, p.admins_see_all, p.key_guard_ms,
                m.id AS metric_id, m.key, m.label, m.unit, m.description AS metric_description,
                m.precision, m.shown_by_default, m.headline, m.good_min, m.good_max
         FROM projects p LEFT JOIN metric_defs m ON m.project_id = p.id
         WHERE p.slug = $1
         ORDER BY m.position, m.id",
    )
    .bind(slug)
    .fetch_all(db)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let project = Project::from_row(first)?;
    let mut metrics = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(id) = row.try_get::<Option<i64>, _>("metric_id")? else {
            continue;
        };
        metrics.push(MetricDef {
            id,
            key: row.try_get("key")?,
            label: row.try_get("label")?,
            unit: row.try_get("unit")?,
            description: row.try_get("metric_description")?,
            precision: row.try_get("precision")?,
            shown_by_default: row.try_get("shown_by_default")?,
            headline: row.try_get("headline")?,
            good_min: row.try_get("good_min")?,
            good_max: row.try_get("good_max")?,
        });
    }
    Ok(Some((project, metrics)))
}

pub async fn metrics(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<Vec<MetricDef>> {
    sqlx::query_as(
        "SELECT id, key, label, unit, description, precision, shown_by_default, headline, good_min, good_max
         FROM metric_defs WHERE project_id = $1 ORDER BY position, id",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

/// Every project's metrics (the read API's columns when no project is
/// chosen: each candidate has values only for its own project's).
pub async fn all_metrics(db: &mut PgConnection) -> sqlx::Result<Vec<MetricDef>> {
    sqlx::query_as(
        "SELECT id, key, label, unit, description, precision, shown_by_default, headline, good_min, good_max
         FROM metric_defs ORDER BY project_id, position, id",
    )
    .fetch_all(db)
    .await
}

pub async fn metric_ids(
    db: &mut PgConnection,
    project: ProjectId,
) -> sqlx::Result<HashMap<String, i64>> {
    Ok(metrics(db, project)
        .await?
        .into_iter()
        .map(|m| (m.key, m.id))
        .collect())
}

/// Creates or updates the project, its listed metrics and its listed tags.
/// Metrics and tags not listed are kept.
#[tracing::instrument(skip_all, fields(slug))]
pub async fn upsert(
    db: &mut PgConnection,
    slug: &str,
    spec: &ProjectSpec,
) -> sqlx::Result<(i64, Outcome)> {
    let (id, inserted, changed): (i64, bool, bool) = sqlx::query_as(
        "WITH old AS (SELECT name, description FROM projects WHERE slug = $1)
         INSERT INTO projects (slug, name, description) VALUES ($1, $2, $3)
         ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
             updated_at = CASE WHEN (projects.name, projects.description) = (EXCLUDED.name, EXCLUDED.description)
                               THEN projects.updated_at ELSE now() END
         RETURNING id, xmax = 0,
             NOT EXISTS (SELECT 1 FROM old WHERE (old.name, old.description) = ($2, $3))",
    )
    .bind(slug)
    .bind(&spec.name)
    .bind(&spec.description)
    .fetch_one(&mut *db)
    .await?;
    let mut touched = 0u64;
    // Separate from the upsert above so that a new project takes the
    // column's default when the definition leaves the guard out.
    if let Some(guard) = spec.key_guard_ms {
        touched += sqlx::query(
            "UPDATE projects SET key_guard_ms = $2, updated_at = now()
             WHERE id = $1 AND key_guard_ms <> $2",
        )
        .bind(id)
        .bind(guard)
        .execute(&mut *db)
        .await?
        .rows_affected();
    }
    for (position, m) in spec.metrics.iter().enumerate() {
        touched += sqlx::query(
            "INSERT INTO metric_defs (project_id, key, label, unit, description, precision, shown_by_default, position,
                                      headline, good_min, good_max)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (project_id, key) DO UPDATE SET label = EXCLUDED.label, unit = EXCLUDED.unit,
                 description = EXCLUDED.description, precision = EXCLUDED.precision,
                 shown_by_default = EXCLUDED.shown_by_default, position = EXCLUDED.position,
                 headline = EXCLUDED.headline, good_min = EXCLUDED.good_min, good_max = EXCLUDED.good_max
             WHERE (metric_defs.label, metric_defs.unit, metric_defs.description, metric_defs.precision,
                    metric_defs.shown_by_default, metric_defs.position,
                    metric_defs.headline, metric_defs.good_min, metric_defs.good_max)
               IS DISTINCT FROM (EXCLUDED.label, EXCLUDED.unit, EXCLUDED.description, EXCLUDED.precision,
                    EXCLUDED.shown_by_default, EXCLUDED.position,
                    EXCLUDED.headline, EXCLUDED.good_min, EXCLUDED.good_max)",
        )
        .bind(id)
        .bind(&m.key)
        .bind(&m.label)
        .bind(&m.unit)
        .bind(&m.description)
        .bind(m.precision)
        .bind(m.shown_by_default)
        .bind(position as i32)
        .bind(m.headline)
        .bind(m.good.min())
        .bind(m.good.max())
        .execute(&mut *db)
        .await?
        .rows_affected();
    }
    for t in &spec.tags {
        let existing: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, description FROM tags WHERE project_id = $1 AND lower(name) = lower($2)",
        )
        .bind(id)
        .bind(&t.name)
        .fetch_optional(&mut *db)
        .await?;
        match existing {
            Some((_, d)) if d == t.description => {}
            Some((tag, _)) => {
                sqlx::query("UPDATE tags SET description = $2 WHERE id = $1")
                    .bind(tag)
                    .bind(&t.description)
                    .execute(&mut *db)
                    .await?;
                touched += 1;
            }
            None => {
                sqlx::query(
                    "INSERT INTO tags (project_id, name, description, position)
                     SELECT $1, $2, $3, coalesce(max(position) + 1, 0) FROM tags WHERE project_id = $1",
                )
                .bind(id)
                .bind(&t.name)
                .bind(&t.description)
                .execute(&mut *db)
                .await?;
                touched += 1;
            }
        }
    }
    let outcome = if inserted {
        Outcome::Created
    } else if changed || touched > 0 {
        Outcome::Updated
    } else {
        Outcome::Unchanged
    };
    Ok((id, outcome))
}

// ---- Administration (`/admin/projects`) ----

/// A project with how much is in it, for the admin list.
#[derive(Debug, Clone, FromRow)]
pub struct WithCounts {
    #[sqlx(flatten)]
    pub project: Project,
    pub observations: i64,
    pub candidates: i64,
    pub ratings: i64,
}

pub async fn list_with_counts(db: &sqlx::PgPool) -> sqlx::Result<Vec<WithCounts>> {
    // The ratings count from the shared summaries, with every committed rating.
    super::ratings::flush_summaries(&mut *db.acquire().await?).await?;
    sqlx::query_as(
        "SELECT p.id, p.slug, p.name, p.description, p.reviewers_add_tags, p.score_enabled,
                p.open_review, p.admins_see_all, p.key_guard_ms,
                (SELECT count(*) FROM observations o WHERE o.project_id = p.id) AS observations,
                (SELECT coalesce(sum(n.candidates), 0)::bigint FROM project_candidate_counts n
                  WHERE n.project_id = p.id) AS candidates,
                (SELECT coalesce(sum(s.candidates * (s.n_real + s.n_not_real + s.n_unsure)), 0)::bigint
                  FROM project_rating_shapes s WHERE s.project_id = p.id) AS ratings
         FROM projects p ORDER BY lower(p.name), p.slug",
    )
    .fetch_all(db)
    .await
}

/// What an administrator may change about a project (the slug stays: the
/// upload API addresses projects by it).
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub description: String,
    pub reviewers_add_tags: bool,
    pub score_enabled: bool,
    pub open_review: bool,
    pub admins_see_all: bool,
    pub key_guard_ms: i32,
}

/// A metric definition as edited by an administrator.
#[derive(Debug, Clone)]
pub struct MetricEdit {
    pub id: i64,
    pub label: String,
    pub unit: String,
    pub description: String,
    pub precision: i16,
    pub shown_by_default: bool,
    pub headline: bool,
    pub good: GoodRange,
}

/// Saves the settings and the given metrics of the project; returns how
/// many rows changed. Call inside a transaction.
pub async fn update(
    db: &mut PgConnection,
    project: ProjectId,
    s: &Settings,
    metrics: &[MetricEdit],
) -> sqlx::Result<u64> {
    let mut changed = sqlx::query(
        "UPDATE projects SET name = $2, description = $3, reviewers_add_tags = $4,
                             score_enabled = $5, open_review = $6, admins_see_all = $7, key_guard_ms = $8,
                             updated_at = now()
         WHERE id = $1 AND (name, description, reviewers_add_tags, score_enabled, open_review, admins_see_all,
                            key_guard_ms)
                           IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(project)
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.reviewers_add_tags)
    .bind(s.score_enabled)
    .bind(s.open_review)
    .bind(s.admins_see_all)
    .bind(s.key_guard_ms)
    .execute(&mut *db)
    .await?
    .rows_affected();
    for m in metrics {
        changed += sqlx::query(
            "UPDATE metric_defs SET label = $3, unit = $4, description = $5, precision = $6,
                                    shown_by_default = $7, headline = $8, good_min = $9, good_max = $10
             WHERE id = $1 AND project_id = $2
               AND (label, unit, description, precision, shown_by_default, headline, good_min, good_max)
                   IS DISTINCT FROM ($3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(m.id)
        .bind(project)
        .bind(&m.label)
        .bind(&m.unit)
        .bind(&m.description)
        .bind(m.precision)
        .bind(m.shown_by_default)
        .bind(m.headline)
        .bind(m.good.min())
        .bind(m.good.max())
        .execute(&mut *db)
        .await?
        .rows_affected();
    }
    Ok(changed)
}

pub async fn by_id(db: impl sqlx::PgExecutor<'_>, id: ProjectId) -> sqlx::Result<Option<Project>> {
    sqlx::query_as(
        "SELECT id, slug, name, description, reviewers_add_tags, score_enabled, open_review, admins_see_all, key_guard_ms FROM projects WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

// ---- Lists for pages and the CLI ----

/// A project as a form offers it.
#[derive(Debug, Clone, FromRow)]
pub struct Name {
    pub slug: String,
    pub name: String,
}

/// Every project, for the candidate filter and the queue form: one order
/// (the admin list's), so the two forms list them alike.
pub async fn names(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Name>> {
    sqlx::query_as("SELECT slug, name FROM projects ORDER BY lower(name), slug")
        .fetch_all(db)
        .await
}

pub async fn count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(db)
        .await
}

/// How many candidates the project has (every project's with `None`), from
/// the counts kept as candidates arrive and leave: a fixed few rows, where
/// counting the candidates themselves grows with the survey.
pub async fn candidate_count(
    db: impl PgExecutor<'_>,
    project: Option<ProjectId>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(candidates), 0)::bigint FROM project_candidate_counts
         WHERE $1::bigint IS NULL OR project_id = $1",
    )
    .bind(project)
    .fetch_one(db)
    .await
}

/// A project's progress as the home page shows it to one reviewer.
#[derive(Debug, Clone, FromRow)]
pub struct Progress {
    pub name: String,
    pub candidates: i64,
    /// Candidates with at least one rating.
    pub rated: i64,
    /// The reviewer's own ratings.
    pub mine: i64,
}

pub async fn progress(db: impl PgExecutor<'_>, user: UserId) -> sqlx::Result<Vec<Progress>> {
    sqlx::query_as(
        "SELECT p.name,
                (SELECT coalesce(sum(n.candidates), 0)::bigint FROM project_candidate_counts n
                  WHERE n.project_id = p.id) AS candidates,
                (SELECT coalesce(sum(g.rated), 0)::bigint FROM observation_progress g
                   JOIN observations o ON o.id = g.observation_id WHERE o.project_id = p.id) AS rated,
                (SELECT count(*) FROM ratings r JOIN candidates c ON c.id = r.candidate_id
                  WHERE c.project_id = p.id AND r.user_id = $1) AS mine
         FROM projects p ORDER BY p.name",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// A metric definition as an export's columns need it.
#[derive(Debug, Clone, FromRow)]
pub struct ExportMetric {
    pub id: i64,
    pub key: String,
    pub unit: String,
    pub description: String,
}

/// The project's metrics, or with no project every project's (in project
/// order, so a key shared by projects takes the first one's unit).
pub async fn export_metrics(
    db: impl PgExecutor<'_>,
    project: Option<ProjectId>,
) -> sqlx::Result<Vec<ExportMetric>> {
    sqlx::query_as(
        "SELECT id, key, unit, description FROM metric_defs
         WHERE $1::bigint IS NULL OR project_id = $1 ORDER BY project_id, position, id",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

/// How a project's queue learns and retires candidates.
#[derive(Debug, Clone, FromRow)]
pub struct ReviewRules {
    /// Retrain the model after this many new ratings (0: only on demand).
    pub model_retrain_every: i32,
    /// Verdicts that settle a candidate (`domain::consensus`).
    pub consensus_k: i16,
    pub disputes_experts_only: bool,
}

pub async fn review_rules(
    db: impl PgExecutor<'_>,
    project: ProjectId,
) -> sqlx::Result<ReviewRules> {
    sqlx::query_as(
        "SELECT model_retrain_every, consensus_k, disputes_experts_only FROM projects WHERE id = $1",
    )
    .bind(project)
    .fetch_one(db)
    .await
}

/// Saves the rules; returns whether anything changed.
pub async fn set_review_rules(
    db: impl PgExecutor<'_>,
    project: ProjectId,
    r: &ReviewRules,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE projects SET model_retrain_every = $2, consensus_k = $3, disputes_experts_only = $4,
                             updated_at = now()
          WHERE id = $1
            AND (model_retrain_every, consensus_k, disputes_experts_only) IS DISTINCT FROM ($2, $3, $4)",
    )
    .bind(project)
    .bind(r.model_retrain_every)
    .bind(r.consensus_k)
    .bind(r.disputes_experts_only)
    .execute(db)
    .await
    .map(|r| r.rows_affected() > 0)
}

//! How far the team is, per observation and per project: candidates, how
//! many anyone rated, and how many the team settled either way or
//! disputes. The figures are kept by triggers in `observation_progress`
//! (migration 20261220000001), so the home page and the read API read a few
//! rows per observation, never the candidates.
//!
//! How many candidates are rated is not hidden by the blind rule (how many
//! ratings a candidate has is not). Settled and disputed are made of
//! verdicts, so a viewer blind in a project gets them over the candidates
//! they rated themselves (`own_only`), counted from their own ratings.

use std::collections::HashMap;

use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;

use crate::domain::visibility::RatingVisibility;
use crate::domain::{ObservationId, ProjectId, UserId};

/// The figures both levels share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromRow)]
pub struct Figures {
    pub candidates: i64,
    pub rated: i64,
    pub settled_real: i64,
    pub settled_not_real: i64,
    pub disputed: i64,
    /// Settled and disputed count only the candidates the viewer rated.
    #[sqlx(skip)]
    pub own_only: bool,
}

impl Figures {
    pub fn settled(&self) -> i64 {
        self.settled_real + self.settled_not_real
    }

    fn use_own(&mut self, own: Option<&[i64; 3]>) {
        let [a, b, c] = own.copied().unwrap_or_default();
        self.settled_real = a;
        self.settled_not_real = b;
        self.disputed = c;
        self.own_only = true;
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ObservationProgress {
    pub id: ObservationId,
    pub external_id: String,
    pub start_time: Option<OffsetDateTime>,
    pub project_id: ProjectId,
    pub project: String,
    pub project_name: String,
    #[sqlx(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, FromRow)]
pub struct ProjectProgress {
    pub id: ProjectId,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub observations: i64,
    #[sqlx(flatten)]
    pub figures: Figures,
}

const SUMS: &str = "coalesce(sum(g.candidates), 0)::bigint AS candidates,
                    coalesce(sum(g.rated), 0)::bigint AS rated,
                    coalesce(sum(g.settled_real), 0)::bigint AS settled_real,
                    coalesce(sum(g.settled_not_real), 0)::bigint AS settled_not_real,
                    coalesce(sum(g.disputed), 0)::bigint AS disputed";

/// Observations, newest (by upload) first: of one project or all, those
/// before `before`, at most `limit`. The home page's "progress at a glance"
/// and the read API's observation list.
pub async fn observations(
    db: &mut PgConnection,
    v: &RatingVisibility,
    project: Option<ProjectId>,
    before: Option<ObservationId>,
    limit: i64,
) -> sqlx::Result<Vec<ObservationProgress>> {
    let mut rows: Vec<ObservationProgress> = sqlx::query_as(&format!(
        "SELECT o.id, o.external_id, o.start_time, o.project_id, p.slug AS project, p.name AS project_name,
                f.candidates, f.rated, f.settled_real, f.settled_not_real, f.disputed
         FROM observations o JOIN projects p ON p.id = o.project_id
         CROSS JOIN LATERAL (SELECT {SUMS} FROM observation_progress g WHERE g.observation_id = o.id) f
         WHERE ($1::bigint IS NULL OR o.project_id = $1) AND ($2::bigint IS NULL OR o.id < $2)
         ORDER BY o.id DESC LIMIT $3"
    ))
    .bind(project)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *db)
    .await?;
    own_where_blind(db, v, Level::Observation, &mut rows, |r| {
        (r.project_id, r.id.0, &mut r.figures)
    })
    .await?;
    Ok(rows)
}

/// Every project, by name, with its observations' figures summed.
pub async fn projects(
    db: &mut PgConnection,
    v: &RatingVisibility,
) -> sqlx::Result<Vec<ProjectProgress>> {
    let mut rows: Vec<ProjectProgress> = sqlx::query_as(&format!(
        "SELECT p.id, p.slug, p.name, p.description,
                (SELECT count(*) FROM observations o WHERE o.project_id = p.id) AS observations,
                f.candidates, f.rated, f.settled_real, f.settled_not_real, f.disputed
         FROM projects p
         CROSS JOIN LATERAL (SELECT {SUMS} FROM observation_progress g
                             JOIN observations o ON o.id = g.observation_id WHERE o.project_id = p.id) f
         ORDER BY lower(p.name), p.slug"
    ))
    .fetch_all(&mut *db)
    .await?;
    own_where_blind(db, v, Level::Project, &mut rows, |r| {
        (r.id, r.id.0, &mut r.figures)
    })
    .await?;
    Ok(rows)
}

#[derive(Debug, Clone, Copy)]
enum Level {
    Observation,
    Project,
}

/// Gives the rows of projects blind to the viewer (`part` says a row's
/// project, its id at `level`, and its figures) the consensus of the
/// viewer's own candidates.
async fn own_where_blind<T>(
    db: &mut PgConnection,
    v: &RatingVisibility,
    level: Level,
    rows: &mut [T],
    part: impl Fn(&mut T) -> (ProjectId, i64, &mut Figures),
) -> sqlx::Result<()> {
    let mut blind: Vec<(i64, &mut Figures)> = rows
        .iter_mut()
        .map(part)
        .filter(|(p, _, _)| !v.sees_project(*p))
        .map(|(_, id, f)| (id, f))
        .collect();
    if blind.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = blind.iter().map(|(id, _)| *id).collect();
    let own = own_consensus(db, v.viewer(), level, &ids).await?;
    for (id, f) in &mut blind {
        f.use_own(own.get(id));
    }
    Ok(())
}

/// Among the candidates `viewer` rated, per observation or project of
/// `ids`: how many are settled real, settled not real and disputed. Walks
/// the viewer's own ratings (their index), not the candidates.
async fn own_consensus(
    db: &mut PgConnection,
    viewer: UserId,
    level: Level,
    ids: &[i64],
) -> sqlx::Result<HashMap<i64, [i64; 3]>> {
    let column = match level {
        Level::Observation => "c.observation_id",
        Level::Project => "c.project_id",
    };
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT {column}, count(*) FILTER (WHERE s.state = 'settled_real'),
                count(*) FILTER (WHERE s.state = 'settled_not_real'),
                count(*) FILTER (WHERE s.state = 'disputed')
         FROM ratings r JOIN candidates c ON c.id = r.candidate_id
         JOIN projects p ON p.id = c.project_id
         JOIN candidate_tallies t ON t.candidate_id = c.id
         CROSS JOIN LATERAL (SELECT consensus_state(t.n_real, t.n_not_real, p.consensus_k) AS state) s
         WHERE r.user_id = $1 AND {column} = ANY($2)
         GROUP BY 1"
    ))
    .bind(viewer)
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, a, b, c)| (id, [a, b, c]))
        .collect())
}

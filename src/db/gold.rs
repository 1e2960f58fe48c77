//! Gold candidates: which candidates of a project have a known true
//! verdict, the project's gold rate, and reviewers' results on them.
//!
//! Kept in `gold_candidates`, apart from `candidates`, and read only here
//! and by the queue's draw (`db::queue::offer`): nothing a reviewer's page,
//! fragment, table or export reads can tell a gold candidate from another.

use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::domain::gold::{Completeness, GoldCounts, GoldLine, GoldRate, GoldVerdict};
use crate::domain::{CandidateId, ProjectId, UserId};

/// Where a gold mark came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Admin,
    Upload,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Admin => "admin",
            Source::Upload => "upload",
        }
    }
}

/// A gold candidate as the admin page lists it.
#[derive(Debug, Clone, FromRow)]
pub struct GoldRow {
    pub candidate_id: CandidateId,
    pub observation: String,
    pub name: String,
    pub verdict: GoldVerdict,
    pub source: String,
    pub marked_by: Option<String>,
    pub marked_at: OffsetDateTime,
}

pub async fn rate(db: impl PgExecutor<'_>, project: ProjectId) -> sqlx::Result<f32> {
    sqlx::query_scalar("SELECT gold_rate FROM projects WHERE id = $1")
        .bind(project)
        .fetch_one(db)
        .await
}

/// Sets the rate; the one it replaces.
pub async fn set_rate(
    db: &mut PgConnection,
    project: ProjectId,
    rate: GoldRate,
) -> sqlx::Result<f32> {
    sqlx::query_scalar(
        "UPDATE projects p SET gold_rate = $2 FROM projects old
          WHERE p.id = $1 AND old.id = p.id RETURNING old.gold_rate",
    )
    .bind(project)
    .bind(rate.get())
    .fetch_one(db)
    .await
}

/// The project's gold candidates, newest mark first, at most `limit`, and
/// how many there are in all.
pub async fn list(
    db: &mut PgConnection,
    project: ProjectId,
    limit: i64,
) -> sqlx::Result<(Vec<GoldRow>, i64)> {
    let rows = sqlx::query_as(
        "SELECT g.candidate_id, o.external_id AS observation, c.name, g.verdict, g.source,
                u.username AS marked_by, g.marked_at
           FROM gold_candidates g
           JOIN candidates c ON c.id = g.candidate_id
           JOIN observations o ON o.id = c.observation_id
           LEFT JOIN users u ON u.id = g.marked_by
          WHERE g.project_id = $1
          ORDER BY g.marked_at DESC, g.candidate_id DESC
          LIMIT $2",
    )
    .bind(project)
    .bind(limit)
    .fetch_all(&mut *db)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM gold_candidates WHERE project_id = $1")
        .bind(project)
        .fetch_one(db)
        .await?;
    Ok((rows, total))
}

/// A candidate a line named, with its observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: CandidateId,
    pub observation: String,
    pub name: String,
}

/// The candidates of the project each line names: none when it names
/// nothing, several when a bare name is in several observations.
pub async fn find(
    db: &mut PgConnection,
    project: ProjectId,
    lines: &[GoldLine],
) -> sqlx::Result<Vec<Vec<Found>>> {
    let observations: Vec<Option<&str>> = lines.iter().map(|l| l.observation.as_deref()).collect();
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    let found: Vec<(i64, CandidateId, String, String)> = sqlx::query_as(
        "SELECT x.i, c.id, o.external_id, c.name
           FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(observation, name, i)
           JOIN candidates c ON c.project_id = $1 AND c.name = x.name
           JOIN observations o ON o.id = c.observation_id
          WHERE x.observation IS NULL OR o.external_id = x.observation
          ORDER BY x.i, o.external_id, c.id",
    )
    .bind(project)
    .bind(&observations)
    .bind(&names)
    .fetch_all(db)
    .await?;
    let mut out = vec![Vec::new(); lines.len()];
    for (i, id, observation, name) in found {
        out[(i - 1) as usize].push(Found {
            id,
            observation,
            name,
        });
    }
    Ok(out)
}

/// What marking did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marked {
    /// Not gold before.
    pub added: i64,
    /// Gold before with the other verdict.
    pub changed: i64,
    /// Gold already, as marked now.
    pub unchanged: i64,
}

/// Marks the candidates gold with their verdicts. One already gold with
/// another verdict takes the new verdict, source and marker; one already
/// gold with the same verdict keeps its mark as it was. Returns the ids
/// whose mark is new or different, and the counts.
pub async fn mark(
    db: &mut PgConnection,
    project: ProjectId,
    marks: &[(CandidateId, GoldVerdict)],
    source: Source,
    by: UserId,
) -> sqlx::Result<(Vec<CandidateId>, Marked)> {
    let ids: Vec<CandidateId> = marks.iter().map(|m| m.0).collect();
    let verdicts: Vec<GoldVerdict> = marks.iter().map(|m| m.1).collect();
    // `xmax = 0` on a returned row: it was inserted, not updated.
    let written: Vec<(CandidateId, bool)> = sqlx::query_as(
        "INSERT INTO gold_candidates AS g (candidate_id, project_id, verdict, source, marked_by)
         SELECT x.id, $1, x.verdict, $4, $5 FROM unnest($2::bigint[], $3::verdict[]) AS x(id, verdict)
         ON CONFLICT (candidate_id) DO UPDATE
            SET verdict = EXCLUDED.verdict, source = EXCLUDED.source,
                marked_by = EXCLUDED.marked_by, marked_at = now()
          WHERE g.verdict <> EXCLUDED.verdict
         RETURNING g.candidate_id, (g.xmax = 0)",
    )
    .bind(project)
    .bind(&ids)
    .bind(&verdicts)
    .bind(source.as_str())
    .bind(by)
    .fetch_all(db)
    .await?;
    let added = written.iter().filter(|w| w.1).count() as i64;
    let changed = written.len() as i64 - added;
    Ok((
        written.into_iter().map(|w| w.0).collect(),
        Marked {
            added,
            changed,
            unchanged: marks.len() as i64 - added - changed,
        },
    ))
}

/// Takes the gold mark off a candidate of the project; what it was.
pub async fn remove(
    db: &mut PgConnection,
    project: ProjectId,
    candidate: CandidateId,
) -> sqlx::Result<Option<GoldRow>> {
    sqlx::query_as(
        "WITH gone AS (DELETE FROM gold_candidates WHERE project_id = $1 AND candidate_id = $2
                       RETURNING *)
         SELECT g.candidate_id, o.external_id AS observation, c.name, g.verdict, g.source,
                u.username AS marked_by, g.marked_at
           FROM gone g
           JOIN candidates c ON c.id = g.candidate_id
           JOIN observations o ON o.id = c.observation_id
           LEFT JOIN users u ON u.id = g.marked_by",
    )
    .bind(project)
    .bind(candidate)
    .fetch_optional(db)
    .await
}

/// Each reviewer's counts on the project's gold candidates, by username:
/// only `only`'s when given, and only ratings made before `before` when
/// given.
pub async fn per_reviewer(
    db: &mut PgConnection,
    project: ProjectId,
    only: Option<UserId>,
    before: Option<OffsetDateTime>,
) -> sqlx::Result<Vec<(String, GoldCounts)>> {
    #[derive(FromRow)]
    struct Line {
        username: String,
        #[sqlx(flatten)]
        counts: GoldCounts,
    }
    let lines: Vec<Line> = sqlx::query_as(
        "SELECT u.username,
                count(*) AS rated,
                count(*) FILTER (WHERE g.verdict = 'real') AS real,
                count(*) FILTER (WHERE g.verdict = 'real' AND r.verdict = 'real') AS real_called_real,
                count(*) FILTER (WHERE r.verdict = 'real') AS called_real,
                count(*) FILTER (WHERE g.verdict = 'not_real') AS not_real,
                count(*) FILTER (WHERE g.verdict = 'not_real' AND r.verdict = 'real')
                    AS not_real_called_real
           FROM gold_candidates g
           JOIN ratings r ON r.candidate_id = g.candidate_id
           JOIN users u ON u.id = r.user_id
          WHERE g.project_id = $1
            AND ($2::bigint IS NULL OR r.user_id = $2)
            AND ($3::timestamptz IS NULL OR r.rated_at < $3)
          GROUP BY u.username
          ORDER BY u.username",
    )
    .bind(project)
    .bind(only)
    .bind(before)
    .fetch_all(db)
    .await?;
    Ok(lines.into_iter().map(|l| (l.username, l.counts)).collect())
}

/// What the team's completeness is estimated from: the project's other
/// candidates and how many of them anyone rated (from the kept counts, so
/// no whole project is counted), and the gold-real candidates rated and
/// found (more than half of their current ratings real).
pub async fn completeness(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<Completeness> {
    let (all, rated, gold, gold_rated, real_rated, real_found): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT coalesce(sum(candidates), 0)::bigint
                       FROM project_candidate_counts WHERE project_id = $1),
                    (SELECT coalesce(sum(g.rated), 0)::bigint FROM observation_progress g
                       JOIN observations o ON o.id = g.observation_id WHERE o.project_id = $1),
                    (SELECT count(*) FROM gold_candidates WHERE project_id = $1),
                    (SELECT count(*) FROM gold_candidates g JOIN candidates c ON c.id = g.candidate_id
                      WHERE g.project_id = $1 AND c.rating_count > 0),
                    count(*), count(*) FILTER (WHERE 2 * n_real > n)
               FROM (SELECT count(*) AS n, count(*) FILTER (WHERE r.verdict = 'real') AS n_real
                       FROM gold_candidates g JOIN ratings r ON r.candidate_id = g.candidate_id
                      WHERE g.project_id = $1 AND g.verdict = 'real'
                      GROUP BY g.candidate_id) x",
        )
        .bind(project)
        .fetch_one(db)
        .await?;
    Ok(Completeness {
        others: all - gold,
        others_rated: rated - gold_rated,
        gold_real_rated: real_rated,
        gold_real_found: real_found,
    })
}

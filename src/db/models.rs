//! The real/bogus models of a project and the scores of the accepted one.

use futures_util::TryStreamExt;
use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::domain::{CandidateId, ProjectId};

/// A feature past the project's metrics: the nearest chosen catalogue
/// source, when the project matches against catalogues.
pub const NEAREST_KNOWN: &str = "nearest known source (arcsec)";
/// How many candidates share the candidate's group.
pub const GROUP_SIZE: &str = "group size";

/// The labelled candidates of a project, in id order: 1 for real, 0 for
/// not real, the majority of real against not-real verdicts. Unsure
/// verdicts say nothing about the class, so they are left out, as are
/// ties. Gold candidates are labelled by their ratings like any other:
/// trained on their truth, their scores would fit it more closely than an
/// unrated candidate's, which could tell them apart.
pub async fn labels(
    db: &mut PgConnection,
    project: ProjectId,
) -> sqlx::Result<Vec<(CandidateId, f64)>> {
    sqlx::query_as(
        "SELECT candidate_id, (n_real > n_not_real)::int::float8 FROM candidate_tallies
          WHERE project_id = $1 AND n_real <> n_not_real
          ORDER BY candidate_id",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

/// The project's candidates rated after `since`, in id order.
pub async fn labelled_since(
    db: impl PgExecutor<'_>,
    project: ProjectId,
    since: OffsetDateTime,
) -> sqlx::Result<Vec<CandidateId>> {
    sqlx::query_scalar(
        "SELECT DISTINCT r.candidate_id FROM ratings r JOIN candidates c ON c.id = r.candidate_id
          WHERE c.project_id = $1 AND r.rated_at > $2
          ORDER BY 1",
    )
    .bind(project)
    .bind(since)
    .fetch_all(db)
    .await
}

/// The project's current ratings (the count that "retrain after N new
/// ratings" compares with), per project.
pub async fn rating_totals(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(ProjectId, i64)>> {
    sqlx::query_as(
        "SELECT project_id, sum(ratings)::bigint FROM project_reviewer_verdicts GROUP BY project_id",
    )
    .fetch_all(db)
    .await
}

/// Projects whose ratings grew by their retrain step since the last model
/// (accepted or not), or that have ratings and no model yet.
pub async fn due(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<ProjectId>> {
    sqlx::query_scalar(
        "SELECT p.id FROM projects p
           JOIN (SELECT project_id, sum(ratings) AS n FROM project_reviewer_verdicts GROUP BY project_id) r
             ON r.project_id = p.id
           LEFT JOIN LATERAL (SELECT ratings_seen FROM models m WHERE m.project_id = p.id
                               ORDER BY version DESC LIMIT 1) last ON true
          WHERE p.model_retrain_every > 0
            AND r.n - coalesce(last.ratings_seen, 0) >= p.model_retrain_every
          ORDER BY p.id",
    )
    .fetch_all(db)
    .await
}

/// Paces a long read or write so that it takes about half a core: after each 20 ms
/// of reading it pauses for as long, so that the PostgreSQL backend sending
/// the rows (at normal priority, on a machine of two cores) waits on the
/// socket and leaves the reviewers' queries their share; in between it
/// lets the requests sharing its worker thread run. A million candidates'
/// features take a few seconds longer to read.
struct Pace {
    since: std::time::Instant,
    rows: usize,
}

impl Pace {
    const WORK: std::time::Duration = std::time::Duration::from_millis(20);

    fn new() -> Self {
        Self {
            since: std::time::Instant::now(),
            rows: 0,
        }
    }

    async fn row(&mut self) {
        self.rows += 1;
        if self.rows % 1024 != 0 {
            return;
        }
        if self.since.elapsed() >= Self::WORK {
            tokio::time::sleep(Self::WORK).await;
            self.since = std::time::Instant::now();
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// The features of a project's candidates as stored: `columns[j][i]` is
/// feature `names[j]` of candidate `ids[i]`, NaN where there is no value.
pub struct FeatureTable {
    pub ids: Vec<CandidateId>,
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

/// Every candidate of the project (or those given), in id order, with its
/// features. The metrics come in one pass over the metric values' key, in
/// candidate order, as the candidates do: each value lands in the next
/// slot, with no search and no sort on either side. (Read a metric at a
/// time from the (metric, value, candidate) index, a vacuumed table gave
/// the values in value order; placing each by a binary search over a
/// million ids missed the cache at every step, and reading the features
/// took twice as long, 20 s instead of 10 in the model bench, with the
/// reviewers' requests beside it.)
pub async fn features(
    db: &mut PgConnection,
    project: ProjectId,
    only: Option<&[CandidateId]>,
) -> sqlx::Result<FeatureTable> {
    let metrics: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, key FROM metric_defs WHERE project_id = $1 ORDER BY position, id",
    )
    .bind(project)
    .fetch_all(&mut *db)
    .await?;
    let uses_catalogues: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM project_catalogues WHERE project_id = $1)",
    )
    .bind(project)
    .fetch_one(&mut *db)
    .await?;
    // Unordered: the planner reads the group index, which answers the
    // group sizes too, and would sort a million rows on disk for the
    // order; sorting them here costs a fraction of that.
    let mut stream = sqlx::query_as::<_, (CandidateId, Option<f64>, i64)>(
        "SELECT c.id,
                CASE WHEN $3 THEN (SELECT min(n.separation_arcsec) FROM catalogue_nearest n
                                    WHERE n.candidate_id = c.id) END,
                (SELECT count(*) FROM candidates g
                  WHERE g.project_id = c.project_id AND g.group_id = c.group_id)
           FROM candidates c
          WHERE c.project_id = $1 AND ($2::bigint[] IS NULL OR c.id = ANY($2))",
    )
    .bind(project)
    .bind(only.map(|ids| ids.iter().map(|c| c.0).collect::<Vec<_>>()))
    .bind(uses_catalogues)
    .fetch(&mut *db);
    let mut rows = Vec::new();
    let mut pace = Pace::new();
    while let Some(row) = stream.try_next().await? {
        rows.push(row);
        pace.row().await;
    }
    drop(stream);
    let mut names: Vec<String> = metrics.iter().map(|(_, k)| k.clone()).collect();
    if uses_catalogues {
        names.push(NEAREST_KNOWN.into());
    }
    names.push(GROUP_SIZE.into());
    // Off the async workers: for a million candidates this writes 64 MB
    // at once, and on a worker thread that held every request queued
    // behind it for about 100 ms (seen in the model bench as a burst of
    // slow ratings where the first read ends).
    let (n_columns, first) = (names.len(), metrics.len());
    let (ids, mut columns) = tokio::task::spawn_blocking(move || {
        let mut rows = rows;
        rows.sort_unstable_by_key(|r| r.0);
        let mut columns = vec![vec![f64::NAN; rows.len()]; n_columns];
        let ids: Vec<CandidateId> = rows.iter().map(|r| r.0).collect();
        for (i, (_, near, group)) in rows.iter().enumerate() {
            if uses_catalogues {
                // No source within the radius: as far as the radius can tell.
                columns[first][i] = near.unwrap_or(f64::INFINITY);
            }
            columns[first + usize::from(uses_catalogues)][i] = *group as f64;
        }
        (ids, columns)
    })
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("building the feature table: {e}")))?;
    let metric_ids: Vec<i64> = metrics.iter().map(|(id, _)| *id).collect();
    read_metrics(db, &ids, &metric_ids, only, &mut columns, &mut pace).await?;
    Ok(FeatureTable {
        ids,
        names,
        columns,
    })
}

/// Fills `columns[j]` with metric `metric_ids[j]` of each of `ids`
/// (ascending), in one pass over the metric values' key in candidate order.
async fn read_metrics(
    db: &mut PgConnection,
    ids: &[CandidateId],
    metric_ids: &[i64],
    only: Option<&[CandidateId]>,
    columns: &mut [Vec<f64>],
    pace: &mut Pace,
) -> sqlx::Result<()> {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok(());
    };
    let mut values = match only {
        None => sqlx::query_as::<_, (CandidateId, i64, f64)>(
            "SELECT m.candidate_id, m.metric_id, m.value FROM candidate_metrics m
              WHERE m.candidate_id BETWEEN $1 AND $2 AND m.metric_id = ANY($3)
              ORDER BY m.candidate_id, m.metric_id",
        )
        .bind(first)
        .bind(last)
        .bind(metric_ids)
        .fetch(db),
        Some(subset) => sqlx::query_as::<_, (CandidateId, i64, f64)>(
            "SELECT m.candidate_id, m.metric_id, m.value FROM candidate_metrics m
              WHERE m.candidate_id = ANY($1) AND m.metric_id = ANY($2)
              ORDER BY m.candidate_id, m.metric_id",
        )
        .bind(subset.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind(metric_ids)
        .fetch(db),
    };
    // Both sides ascend by candidate, so one cursor walks the ids.
    let mut at = 0;
    while let Some((id, metric, v)) = values.try_next().await? {
        while at < ids.len() && ids[at] < id {
            at += 1;
        }
        if ids.get(at) == Some(&id) {
            if let Some(col) = metric_ids.iter().position(|&m| m == metric) {
                columns[col][at] = v;
            }
        }
        pace.row().await;
    }
    Ok(())
}

/// A trained model as stored.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub project: ProjectId,
    pub ratings_seen: i64,
    pub n_train: i32,
    pub n_real: i32,
    pub auc: f64,
    pub precision_at_95: f64,
    pub features: &'a [String],
    pub importances: &'a [f64],
    pub platt_a: f64,
    pub platt_b: f64,
    pub booster: &'a str,
    pub accepted: bool,
    pub verdict_note: &'a str,
    pub seconds: f64,
}

/// Stores the model under the project's next version; returns its id and
/// version.
pub async fn insert(db: &mut PgConnection, m: &NewModel<'_>) -> sqlx::Result<(i64, i32)> {
    sqlx::query_as(
        "INSERT INTO models (project_id, version, ratings_seen, n_train, n_real, auc, precision_at_95,
                             features, importances, platt_a, platt_b, booster, accepted, verdict_note, seconds)
         SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
           FROM models WHERE project_id = $1
         RETURNING id, version",
    )
    .bind(m.project)
    .bind(m.ratings_seen)
    .bind(m.n_train)
    .bind(m.n_real)
    .bind(m.auc)
    .bind(m.precision_at_95)
    .bind(sqlx::types::Json(m.features))
    .bind(sqlx::types::Json(m.importances))
    .bind(m.platt_a)
    .bind(m.platt_b)
    .bind(m.booster)
    .bind(m.accepted)
    .bind(m.verdict_note)
    .bind(m.seconds)
    .fetch_one(db)
    .await
}

/// A model as the model page and the scorer read it.
#[derive(Debug, Clone, FromRow)]
pub struct Stored {
    pub id: i64,
    pub version: i32,
    pub trained_at: OffsetDateTime,
    pub ratings_seen: i64,
    pub n_train: i32,
    pub n_real: i32,
    pub auc: f64,
    pub precision_at_95: f64,
    pub features: sqlx::types::Json<Vec<String>>,
    pub importances: sqlx::types::Json<Vec<f64>>,
    pub platt_a: f64,
    pub platt_b: f64,
    pub accepted: bool,
    pub verdict_note: String,
    pub movement: Option<sqlx::types::Json<Movement>>,
    pub seconds: f64,
    pub score_seconds: Option<f64>,
}

const STORED: &str =
    "id, version, trained_at, ratings_seen, n_train, n_real, auc, precision_at_95, features,
                      importances, platt_a, platt_b, accepted, verdict_note, movement, seconds, score_seconds";

/// The project's current model: the latest accepted one.
pub async fn current(db: impl PgExecutor<'_>, project: ProjectId) -> sqlx::Result<Option<Stored>> {
    sqlx::query_as(&format!(
        "SELECT {STORED} FROM models WHERE project_id = $1 AND accepted ORDER BY version DESC LIMIT 1"
    ))
    .bind(project)
    .fetch_optional(db)
    .await
}

/// The project's latest models, newest first.
pub async fn recent(
    db: impl PgExecutor<'_>,
    project: ProjectId,
    limit: i64,
) -> sqlx::Result<Vec<Stored>> {
    sqlx::query_as(&format!(
        "SELECT {STORED} FROM models WHERE project_id = $1 ORDER BY version DESC LIMIT $2"
    ))
    .bind(project)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The booster of a model, to score with.
pub async fn booster(db: impl PgExecutor<'_>, model: i64) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT booster FROM models WHERE id = $1")
        .bind(model)
        .fetch_one(db)
        .await
}

/// How the scores moved from one model to the next.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Movement {
    /// Candidates scored by both models.
    pub compared: u64,
    pub mean_abs_change: f64,
    /// Moved by more than 0.1.
    pub moved_much: u64,
    /// Crossed one half upwards, and downwards.
    pub became_likely: u64,
    pub became_unlikely: u64,
    /// Candidates per tenth of P(real), before and after.
    pub before: Vec<u64>,
    pub after: Vec<u64>,
}

/// Puts a scored model to use, with how the scores moved and how long
/// scoring took.
pub async fn set_scored(
    db: impl PgExecutor<'_>,
    model: i64,
    m: &Movement,
    seconds: f64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE models SET movement = $2, score_seconds = $3, accepted = true WHERE id = $1",
    )
    .bind(model)
    .bind(sqlx::types::Json(m))
    .bind(seconds)
    .execute(db)
    .await
    .map(drop)
}

/// The project's scores now, in candidate order.
pub async fn scores(
    db: &mut PgConnection,
    project: ProjectId,
) -> sqlx::Result<Vec<(CandidateId, f32)>> {
    let mut stream = sqlx::query_as(
        "SELECT candidate_id, p_real FROM candidate_scores WHERE project_id = $1 ORDER BY candidate_id",
    )
    .bind(project)
    .fetch(db);
    let (mut out, mut pace) = (Vec::new(), Pace::new());
    while let Some(row) = stream.try_next().await? {
        out.push(row);
        pace.row().await;
    }
    Ok(out)
}

fn partition(project: ProjectId) -> String {
    format!("candidate_scores_{}", project.0)
}

/// The fresh table a new model's scores are written to.
fn staged(project: ProjectId) -> String {
    format!("{}_new", partition(project))
}

/// The partition a swap took out, dropped after the swap has committed.
fn retired(project: ProjectId) -> String {
    format!("{}_old", partition(project))
}

/// Writes the model's scores into a fresh table, filled by COPY, for
/// [`analyze_staged`] and then [`swap_scores`] to put in place of the
/// project's partition. Readers see the old scores meanwhile.
///
/// The table is unlogged. Logged, a million scores and their three indexes
/// put about 150 MB into the write-ahead log within seconds, and every
/// reviewer's commit waited for its share of that to reach the disk
/// (rate-and-next stalled 100-400 ms at a time while a model was staged).
/// Scores are derived data: after a PostgreSQL crash the partition comes
/// back empty and the trainer's pass scores every candidate again with the
/// current model ([`with_unscored`]); a streaming replica has none.
///
/// The indexes exist before the rows arrive, so every page goes through
/// shared buffers and this session asks the kernel to write each out as it
/// leaves them (`backend_flush_after`). Built afterwards in bulk, an
/// unlogged index is written beside the buffers and never flushed, so
/// 200-280 MB of table and indexes sat dirty in the page cache until the
/// kernel wrote them all at once 30 s later, and rate-and-next stalled
/// 100 ms and more behind that burst.
pub async fn stage_scores(
    db: &mut PgConnection,
    project: ProjectId,
    model: i64,
    ids: &[CandidateId],
    p: &[f64],
) -> sqlx::Result<()> {
    let staging = staged(project);
    sqlx::query(&format!(
        "DROP TABLE IF EXISTS {staging}, {}",
        retired(project)
    ))
    .execute(&mut *db)
    .await?;
    sqlx::query(&format!(
        "CREATE UNLOGGED TABLE {staging} (LIKE candidate_scores INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
            CHECK (project_id = {}))",
        project.0
    ))
    .execute(&mut *db)
    .await?;
    // The parent's indexes, for ATTACH to adopt. The key must be a primary
    // key constraint, not a unique index alike: ATTACH adopts only a
    // constraint for the parent's, and otherwise builds one itself, over a
    // million rows, while it holds the parent locked (270 ms in the model
    // bench, with every reviewer waiting).
    for index in [
        "ALTER TABLE {t} ADD PRIMARY KEY (project_id, candidate_id)",
        "CREATE INDEX ON {t} (candidate_id)",
        "CREATE INDEX ON {t} (project_id, p_real DESC, candidate_id)",
        "CREATE INDEX ON {t} (project_id, abs(p_real - 0.5), candidate_id)",
    ] {
        sqlx::query(&index.replace("{t}", &staging))
            .execute(&mut *db)
            .await?;
    }
    sqlx::query("SET LOCAL backend_flush_after = '256kB'")
        .execute(&mut *db)
        .await?;
    copy_scores(db, &staging, project, model, ids, p).await
}

/// The staged scores' statistics, so that the planner knows the new
/// partition from the moment it is swapped in.
pub async fn analyze_staged(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<()> {
    sqlx::query(&format!("ANALYZE {}", staged(project)))
        .execute(&mut *db)
        .await
        .map(drop)
}

/// Puts the staged scores in place of the project's partition. Call in a
/// transaction of its own, committed at once, then [`drop_retired`]. The
/// swap needs the parent table to itself, and while it waits for that
/// lock every reviewer's query of the scores queues behind it: so it waits
/// at most `SWAP_WAIT`, and `Ok(false)` says it gave up (roll back and try
/// again a little later). Under the lock it only changes the catalogue:
/// the old partition is detached and renamed, not dropped, since dropping
/// a million rows' files took 60 ms more.
pub async fn swap_scores(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<bool> {
    let part = partition(project);
    sqlx::query(&format!(
        "SET LOCAL lock_timeout = '{}ms'",
        SWAP_WAIT.as_millis()
    ))
    .execute(&mut *db)
    .await?;
    let attached: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'candidate_scores'::regclass AND c.relname = $1)",
    )
    .bind(&part)
    .fetch_one(&mut *db)
    .await?;
    let mut steps = Vec::new();
    if attached {
        steps.push(format!(
            "ALTER TABLE candidate_scores DETACH PARTITION {part}"
        ));
        steps.push(format!("ALTER TABLE {part} RENAME TO {}", retired(project)));
    }
    steps.push(format!("ALTER TABLE {} RENAME TO {part}", staged(project)));
    steps.push(format!(
        "ALTER TABLE candidate_scores ATTACH PARTITION {part} FOR VALUES IN ({})",
        project.0
    ));
    for sql in steps {
        match sqlx::query(&sql).execute(&mut *db).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Drops the partition the last swap took out; it is no longer part of
/// the scores table, so this locks nothing a reviewer reads.
pub async fn drop_retired(db: impl PgExecutor<'_>, project: ProjectId) -> sqlx::Result<()> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {}", retired(project)))
        .execute(db)
        .await
        .map(drop)
}

/// How long one attempt at the swap waits for the scores table: about one
/// rating's time, so that reviewers queued behind it hardly notice.
pub const SWAP_WAIT: std::time::Duration = std::time::Duration::from_millis(40);

/// PostgreSQL's SQLSTATE for a lock not granted within `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Drops a removed project's scores (call where the project is deleted),
/// with any staged or retired table of them.
pub async fn drop_scores(db: impl PgExecutor<'_>, project: ProjectId) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "DROP TABLE IF EXISTS {}, {}, {}",
        partition(project),
        staged(project),
        retired(project)
    ))
    .execute(db)
    .await
    .map(drop)
}

/// Adds scores for candidates that have none (new uploads since the model
/// was trained); one already scored meanwhile keeps its score.
pub async fn add_scores(
    db: &mut PgConnection,
    project: ProjectId,
    model: i64,
    ids: &[CandidateId],
    p: &[f64],
) -> sqlx::Result<u64> {
    let p32: Vec<f32> = p.iter().map(|&v| v as f32).collect();
    sqlx::query(
        "INSERT INTO candidate_scores (candidate_id, project_id, model_id, p_real)
         SELECT id, $1, $2, p FROM unnest($3::bigint[], $4::real[]) AS x(id, p)
         ON CONFLICT (project_id, candidate_id) DO NOTHING",
    )
    .bind(project)
    .bind(model)
    .bind(ids.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(p32)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

async fn copy_scores(
    db: &mut PgConnection,
    table: &str,
    project: ProjectId,
    model: i64,
    ids: &[CandidateId],
    p: &[f64],
) -> sqlx::Result<()> {
    use std::fmt::Write;
    let mut copy = db
        .copy_in_raw(&format!(
            "COPY {table} (candidate_id, project_id, model_id, p_real) FROM STDIN"
        ))
        .await?;
    let mut text = String::with_capacity(64 * 1024);
    // Paced like the reads: the backend parsing the rows waits for them.
    let mut pace = Pace::new();
    for (id, v) in ids.iter().zip(p) {
        let _ = writeln!(text, "{id}\t{project}\t{model}\t{}", *v as f32);
        pace.row().await;
        if text.len() > 60 * 1024 {
            copy.send(text.as_bytes()).await?;
            text.clear();
        }
    }
    copy.send(text.as_bytes()).await?;
    copy.finish().await.map(drop)
}

/// Candidates of the project without a score, at most `limit`.
pub async fn unscored(
    db: impl PgExecutor<'_>,
    project: ProjectId,
    limit: i64,
) -> sqlx::Result<Vec<CandidateId>> {
    sqlx::query_scalar(
        "SELECT c.id FROM candidates c WHERE c.project_id = $1
            AND NOT EXISTS (SELECT 1 FROM candidate_scores s WHERE s.candidate_id = c.id)
          ORDER BY c.id LIMIT $2",
    )
    .bind(project)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Projects with a current model and candidates it has not scored.
pub async fn with_unscored(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<ProjectId>> {
    sqlx::query_scalar(
        "SELECT p.id FROM projects p
          WHERE EXISTS (SELECT 1 FROM models m WHERE m.project_id = p.id AND m.accepted)
            AND EXISTS (SELECT 1 FROM candidates c WHERE c.project_id = p.id
                          AND NOT EXISTS (SELECT 1 FROM candidate_scores s WHERE s.candidate_id = c.id))",
    )
    .fetch_all(db)
    .await
}

/// A candidate's score and the version of the model that gave it.
pub async fn score_of(
    db: impl PgExecutor<'_>,
    candidate: CandidateId,
) -> sqlx::Result<Option<(f32, i32)>> {
    sqlx::query_as(
        "SELECT s.p_real, m.version FROM candidate_scores s JOIN models m ON m.id = s.model_id
          WHERE s.candidate_id = $1",
    )
    .bind(candidate)
    .fetch_optional(db)
    .await
}

/// A candidate's score (P(real), model version) if scored, and its
/// consensus state (`consensus_state`), for the candidate page.
pub async fn standing(
    db: impl PgExecutor<'_>,
    candidate: CandidateId,
) -> sqlx::Result<Option<(Option<f32>, Option<i32>, String)>> {
    sqlx::query_as(
        "SELECT s.p_real, m.version,
                consensus_state(coalesce(t.n_real, 0), coalesce(t.n_not_real, 0), p.consensus_k)
           FROM candidates c JOIN projects p ON p.id = c.project_id
           LEFT JOIN candidate_tallies t ON t.candidate_id = c.id
           LEFT JOIN candidate_scores s ON s.candidate_id = c.id
           LEFT JOIN models m ON m.id = s.model_id
          WHERE c.id = $1",
    )
    .bind(candidate)
    .fetch_optional(db)
    .await
}

/// Try to become the one trainer of the project, across every app host
/// (a session-level advisory lock on this connection; class "modl").
pub async fn try_lock(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(1836016748, $1::int)")
        .bind(project.0 as i32)
        .fetch_one(db)
        .await
}

pub async fn unlock(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<()> {
    sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock(1836016748, $1::int)")
        .bind(project.0 as i32)
        .fetch_one(db)
        .await
        .map(drop)
}

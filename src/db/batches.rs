//! Rating many candidates at once: a whole group, or every candidate a
//! table filter selects. Each candidate gets an ordinary rating of the
//! reviewer (the one it replaces goes to the history); the batch is
//! remembered, so it can be taken back as a whole.
//!
//! A batch sets the verdict and the tags. A rating the reviewer had already
//! keeps its notes and score; one that already says the same is left alone
//! (and is not the batch's to undo).

use sqlx::{FromRow, PgConnection, QueryBuilder};

use crate::db::search::{self, Scope};
use crate::domain::visibility::RatingVisibility;
use time::OffsetDateTime;

use crate::domain::{BatchId, CandidateId, ProjectId, TagId, UserId, Verdict};

/// A batch never touches more candidates than this: the confirmation must
/// say how many it changes, and the writes stay one bounded transaction.
pub const MAX_BATCH: usize = 10_000;

/// What a batch rates with.
#[derive(Debug, Clone)]
pub struct BatchRating {
    pub project: ProjectId,
    pub verdict: Verdict,
    /// Sorted, each a tag of `project`.
    pub tag_ids: Vec<TagId>,
    /// "group" or "filter".
    pub scope: &'static str,
    /// The group's candidate or the filter's query, for the record.
    pub selection: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub batch: BatchId,
    /// Ratings the batch made where the reviewer had none.
    pub created: i64,
    /// Ratings of the reviewer it replaced.
    pub changed: i64,
    /// Ratings that already said the same.
    pub same: i64,
}

/// How many of `ids` the reviewer has rated already (their own ratings
/// only, so a confirmation reveals nothing of others').
pub async fn already_mine(
    db: &mut PgConnection,
    user: UserId,
    ids: &[CandidateId],
) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM ratings WHERE user_id = $1 AND candidate_id = ANY($2)")
        .bind(user)
        .bind(ids)
        .fetch_one(db)
        .await
}

/// Rates `ids` (all of `b.project`, at most [`MAX_BATCH`]) in the caller's
/// transaction.
pub async fn apply(
    tx: &mut PgConnection,
    user: UserId,
    b: &BatchRating,
    ids: &[CandidateId],
) -> sqlx::Result<Applied> {
    let batch: BatchId = sqlx::query_scalar(
        "INSERT INTO rating_batches (user_id, project_id, verdict, tag_ids, scope, selection, count)
         VALUES ($1, $2, $3, $4, $5, $6, 0) RETURNING id",
    )
    .bind(user)
    .bind(b.project)
    .bind(b.verdict)
    .bind(&b.tag_ids)
    .bind(b.scope)
    .bind(&b.selection)
    .fetch_one(&mut *tx)
    .await?;
    // In candidate order, as every writer of several ratings should lock
    // them, so two batches over the same candidates cannot deadlock.
    let mine: Vec<CandidateId> = sqlx::query_scalar(
        "SELECT candidate_id FROM ratings WHERE user_id = $1 AND candidate_id = ANY($2)
          ORDER BY candidate_id FOR UPDATE",
    )
    .bind(user)
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    // The ratings that say something else move to the history, marked as
    // replaced by this batch.
    let changed: Vec<CandidateId> = sqlx::query_scalar(
        "WITH cur AS (
             SELECT r.candidate_id, r.verdict,
                    coalesce(array_agg(t.tag_id ORDER BY t.tag_id) FILTER (WHERE t.tag_id IS NOT NULL), '{}') AS tag_ids
               FROM ratings r LEFT JOIN rating_tags t USING (user_id, candidate_id)
              WHERE r.user_id = $1 AND r.candidate_id = ANY($2)
              GROUP BY r.candidate_id, r.verdict)
         INSERT INTO rating_history (candidate_id, user_id, verdict, score, notes, tag_ids, tag_names, rated_at, batch_id)
         SELECT r.candidate_id, r.user_id, r.verdict, r.score, r.notes, cur.tag_ids,
                coalesce((SELECT array_agg(name ORDER BY position, name) FROM tags WHERE id = ANY(cur.tag_ids)), '{}'),
                r.rated_at, $5
           FROM cur JOIN ratings r ON r.user_id = $1 AND r.candidate_id = cur.candidate_id
          WHERE cur.verdict <> $3 OR cur.tag_ids <> $4::bigint[]
         RETURNING candidate_id",
    )
    .bind(user)
    .bind(&mine)
    .bind(b.verdict)
    .bind(&b.tag_ids)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if !changed.is_empty() {
        sqlx::query(
            "UPDATE ratings SET verdict = $3, idempotency_key = NULL, rated_at = now(), batch_id = $4
              WHERE user_id = $1 AND candidate_id = ANY($2)",
        )
        .bind(user)
        .bind(&changed)
        .bind(b.verdict)
        .bind(batch)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM rating_tags WHERE user_id = $1 AND candidate_id = ANY($2)")
            .bind(user)
            .bind(&changed)
            .execute(&mut *tx)
            .await?;
        insert_tags(tx, user, &changed, &b.tag_ids).await?;
    }
    let created: Vec<CandidateId> = sqlx::query_scalar(
        "INSERT INTO ratings (user_id, candidate_id, verdict, batch_id)
         SELECT $1, c, $3, $4 FROM unnest($2::bigint[]) AS c ORDER BY c
         ON CONFLICT (user_id, candidate_id) DO NOTHING RETURNING candidate_id",
    )
    .bind(user)
    .bind(ids)
    .bind(b.verdict)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if !created.is_empty() {
        insert_tags(tx, user, &created, &b.tag_ids).await?;
        sqlx::query("UPDATE candidates SET rating_count = rating_count + 1 WHERE id = ANY($1)")
            .bind(&created)
            .execute(&mut *tx)
            .await?;
    }
    let count = (changed.len() + created.len()) as i32;
    sqlx::query("UPDATE rating_batches SET count = $2 WHERE id = $1")
        .bind(batch)
        .bind(count)
        .execute(&mut *tx)
        .await?;
    Ok(Applied {
        batch,
        created: created.len() as i64,
        changed: changed.len() as i64,
        same: (mine.len() - changed.len()) as i64,
    })
}

async fn insert_tags(
    tx: &mut PgConnection,
    user: UserId,
    candidates: &[CandidateId],
    tags: &[TagId],
) -> sqlx::Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rating_tags (user_id, candidate_id, tag_id)
         SELECT $1, c, t FROM unnest($2::bigint[]) AS c, unnest($3::bigint[]) AS t",
    )
    .bind(user)
    .bind(candidates)
    .bind(tags)
    .execute(tx)
    .await
    .map(drop)
}

#[derive(Debug, Clone, FromRow)]
pub struct Batch {
    pub id: BatchId,
    pub user_id: UserId,
    pub project_id: ProjectId,
    pub verdict: Verdict,
    pub count: i32,
    pub created_at: OffsetDateTime,
    pub undone_at: Option<OffsetDateTime>,
}

/// The batch, locked for its undo.
pub async fn get_for_update(tx: &mut PgConnection, id: BatchId) -> sqlx::Result<Option<Batch>> {
    sqlx::query_as(
        "SELECT id, user_id, project_id, verdict, count, created_at, undone_at
           FROM rating_batches WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(tx)
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undone {
    /// Candidates given back the rating the batch replaced.
    pub restored: i64,
    /// Candidates the reviewer had not rated before the batch: unrated again.
    pub removed: i64,
    /// Candidates rated again since: left as they are.
    pub kept: i64,
}

/// Takes the batch back: each candidate that still carries the batch's
/// rating gets the reviewer's rating from before it, or none if it had
/// none. A candidate rated again since keeps that later rating.
pub async fn undo(tx: &mut PgConnection, b: &Batch) -> sqlx::Result<Undone> {
    let user = b.user_id;
    let still: Vec<CandidateId> = sqlx::query_scalar(
        "SELECT candidate_id FROM ratings WHERE user_id = $1 AND batch_id = $2
          ORDER BY candidate_id FOR UPDATE",
    )
    .bind(user)
    .bind(b.id)
    .fetch_all(&mut *tx)
    .await?;
    let previous: Vec<(i64, CandidateId)> = sqlx::query_as(
        "SELECT DISTINCT ON (candidate_id) id, candidate_id FROM rating_history
          WHERE user_id = $1 AND batch_id = $2 AND candidate_id = ANY($3)
          ORDER BY candidate_id, replaced_at DESC, id DESC",
    )
    .bind(user)
    .bind(b.id)
    .bind(&still)
    .fetch_all(&mut *tx)
    .await?;
    let history_ids: Vec<i64> = previous.iter().map(|(h, _)| *h).collect();
    let restored: Vec<CandidateId> = previous.iter().map(|(_, c)| *c).collect();
    if !restored.is_empty() {
        sqlx::query(
            "UPDATE ratings r SET verdict = h.verdict, score = h.score, notes = h.notes,
                    rated_at = h.rated_at, idempotency_key = NULL, batch_id = NULL
               FROM rating_history h
              WHERE h.id = ANY($2) AND r.user_id = $1 AND r.candidate_id = h.candidate_id",
        )
        .bind(user)
        .bind(&history_ids)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM rating_tags WHERE user_id = $1 AND candidate_id = ANY($2)")
            .bind(user)
            .bind(&restored)
            .execute(&mut *tx)
            .await?;
        // Tags deleted since are simply left out.
        sqlx::query(
            "INSERT INTO rating_tags (user_id, candidate_id, tag_id)
             SELECT h.user_id, h.candidate_id, t
               FROM rating_history h, unnest(h.tag_ids) AS t
              WHERE h.id = ANY($1) AND EXISTS (SELECT 1 FROM tags WHERE tags.id = t)",
        )
        .bind(&history_ids)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM rating_history WHERE id = ANY($1)")
            .bind(&history_ids)
            .execute(&mut *tx)
            .await?;
    }
    let back: std::collections::HashSet<CandidateId> = restored.iter().copied().collect();
    let removed: Vec<CandidateId> = still
        .iter()
        .copied()
        .filter(|c| !back.contains(c))
        .collect();
    if !removed.is_empty() {
        sqlx::query("DELETE FROM ratings WHERE user_id = $1 AND candidate_id = ANY($2)")
            .bind(user)
            .bind(&removed)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE candidates SET rating_count = rating_count - 1 WHERE id = ANY($1)")
            .bind(&removed)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE rating_batches SET undone_at = now() WHERE id = $1")
        .bind(b.id)
        .execute(&mut *tx)
        .await?;
    Ok(Undone {
        restored: restored.len() as i64,
        removed: removed.len() as i64,
        kept: i64::from(b.count) - still.len() as i64,
    })
}

/// The candidates a table filter selects, at most `limit`: what a batch
/// over the filter rates (conditions on others' ratings only as the
/// viewer may see them, as everywhere).
pub async fn filter_ids(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
    limit: i64,
) -> sqlx::Result<Vec<CandidateId>> {
    let mut q = QueryBuilder::new("SELECT c.id FROM candidates c WHERE true");
    search::push_conditions(&mut q, scope, v);
    q.push(" ORDER BY c.id LIMIT ").push_bind(limit);
    q.build_query_scalar().persistent(false).fetch_all(db).await
}

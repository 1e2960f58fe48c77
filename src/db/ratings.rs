//! Ratings: each reviewer's current one per candidate, and the history of
//! the ones they replaced.

use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::domain::rating::RatingInput;
use crate::domain::visibility::{RatingVisibility, ReviewSettings};
use crate::domain::{CandidateId, Role, TagId, UserId, Verdict};

/// What this viewer may see of others' ratings (`domain::visibility`):
/// every project's settings, read once per request.
pub async fn visibility(
    db: &mut PgConnection,
    viewer: UserId,
    role: Role,
) -> sqlx::Result<RatingVisibility> {
    let projects: Vec<ReviewSettings> =
        sqlx::query_as("SELECT id AS project_id, open_review, admins_see_all FROM projects")
            .fetch_all(db)
            .await?;
    Ok(RatingVisibility::new(viewer, role, &projects))
}

/// Writes ` AND …`: the viewer may see others' ratings of the candidate
/// `c` (an alias of `candidates`). Every query that shows, counts or
/// filters by others' ratings goes through this or [`push_rating_visible`].
pub fn push_visible(q: &mut QueryBuilder<'_, Postgres>, v: &RatingVisibility, c: &str) {
    if v.sees_everything() {
        return;
    }
    q.push(" AND (");
    if !v.open_projects().is_empty() {
        q.push(format!("{c}.project_id = ANY("))
            .push_bind(v.open_projects().to_vec())
            .push(") OR ");
    }
    q.push(format!(
        "EXISTS (SELECT 1 FROM ratings mine WHERE mine.candidate_id = {c}.id AND mine.user_id = "
    ))
    .push_bind(v.viewer())
    .push("))");
}

/// Writes the `FROM` item `{table} {alias}` (a table of ratings with
/// `candidate_id`: `ratings`, `rating_tags`). For a viewer blind in every
/// project the rows are limited here to the candidates they rated, and
/// found from their own ratings through the candidate index (a few
/// thousand probes rather than reading every rating). Returns whether the
/// rows are limited to what the viewer may see; if not, the caller adds
/// [`push_visible`] on their candidate.
pub fn push_visible_from(
    q: &mut QueryBuilder<'_, Postgres>,
    v: &RatingVisibility,
    table: &str,
    alias: &str,
) -> bool {
    if v.sees_everything() || !v.open_projects().is_empty() {
        q.push(format!("{table} {alias}"));
        return v.sees_everything();
    }
    // OFFSET 0 keeps the planner from turning this back into a join that
    // reads the whole table.
    q.push("(SELECT candidate_id FROM ratings WHERE user_id = ")
        .push_bind(v.viewer())
        .push(format!(
            ") mine_src CROSS JOIN LATERAL (SELECT * FROM {table} x
              WHERE x.candidate_id = mine_src.candidate_id OFFSET 0) {alias}"
        ));
    true
}

/// Writes ` AND …`: the viewer may see the rating `r` (an alias of a table
/// with `user_id`: `ratings`, `rating_tags`, `rating_history`) of the
/// candidate `c`. Their own ratings always; others' as [`push_visible`].
pub fn push_rating_visible(
    q: &mut QueryBuilder<'_, Postgres>,
    v: &RatingVisibility,
    r: &str,
    c: &str,
) {
    if v.sees_everything() {
        return;
    }
    q.push(format!(" AND ({r}.user_id = "))
        .push_bind(v.viewer())
        .push(" OR (true");
    push_visible(q, v, c);
    q.push("))");
}

#[derive(Debug, Clone, FromRow)]
pub struct MyRating {
    pub verdict: Verdict,
    pub score: Option<i16>,
    pub notes: String,
    pub tag_ids: Vec<TagId>,
    pub rated_at: OffsetDateTime,
}

/// A rating as others see it.
#[derive(Debug, Clone, FromRow)]
pub struct RatingView {
    pub username: String,
    pub verdict: Verdict,
    pub score: Option<i16>,
    pub notes: String,
    pub tags: Vec<String>,
    pub rated_at: OffsetDateTime,
    /// For history rows: when it was replaced.
    pub replaced_at: Option<OffsetDateTime>,
}

pub async fn mine(
    db: &mut PgConnection,
    user: UserId,
    candidate: CandidateId,
) -> sqlx::Result<Option<MyRating>> {
    sqlx::query_as(
        "SELECT r.verdict, r.score, r.notes, r.rated_at,
                coalesce(array_agg(t.tag_id ORDER BY t.tag_id) FILTER (WHERE t.tag_id IS NOT NULL), '{}') AS tag_ids
         FROM ratings r LEFT JOIN rating_tags t USING (user_id, candidate_id)
         WHERE r.user_id = $1 AND r.candidate_id = $2
         GROUP BY r.user_id, r.candidate_id",
    )
    .bind(user)
    .bind(candidate)
    .fetch_optional(db)
    .await
}

/// Everyone's current ratings of the candidate, newest first.
pub async fn current_for(
    db: &mut PgConnection,
    candidate: CandidateId,
) -> sqlx::Result<Vec<RatingView>> {
    sqlx::query_as(
        "SELECT u.username, r.verdict, r.score, r.notes, r.rated_at, NULL::timestamptz AS replaced_at,
                coalesce(array_agg(tg.name ORDER BY tg.position, tg.name) FILTER (WHERE tg.id IS NOT NULL), '{}') AS tags
         FROM ratings r JOIN users u ON u.id = r.user_id
         LEFT JOIN rating_tags t USING (user_id, candidate_id) LEFT JOIN tags tg ON tg.id = t.tag_id
         WHERE r.candidate_id = $1
         GROUP BY u.username, r.verdict, r.score, r.notes, r.rated_at
         ORDER BY r.rated_at DESC",
    )
    .bind(candidate)
    .fetch_all(db)
    .await
}

/// The ratings of the candidate that were replaced, newest first.
pub async fn history_for(
    db: &mut PgConnection,
    candidate: CandidateId,
) -> sqlx::Result<Vec<RatingView>> {
    sqlx::query_as(
        "SELECT u.username, h.verdict, h.score, h.notes, h.rated_at, h.replaced_at, h.tag_names AS tags
         FROM rating_history h JOIN users u ON u.id = h.user_id
         WHERE h.candidate_id = $1 ORDER BY h.replaced_at DESC, h.id DESC",
    )
    .bind(candidate)
    .fetch_all(db)
    .await
}

/// A rating with the candidate it is of.
#[derive(Debug, Clone, FromRow)]
pub struct OfCandidate {
    pub candidate_id: CandidateId,
    #[sqlx(flatten)]
    pub rating: RatingView,
}

/// Which of a candidate's ratings: the current ones, or those they replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Current,
    Replaced,
}

/// The ratings of `candidates` that the viewer may see (their own, and
/// others' where the blind rule allows), by candidate: current ones newest
/// first, replaced ones most recently replaced first.
pub async fn visible_of(
    db: &mut PgConnection,
    v: &RatingVisibility,
    candidates: &[CandidateId],
    kept: Kept,
) -> sqlx::Result<Vec<OfCandidate>> {
    let (select, alias, order) = match kept {
        Kept::Current => (
            "SELECT r.candidate_id, u.username, r.verdict, r.score, r.notes, r.rated_at,
                    NULL::timestamptz AS replaced_at,
                    ARRAY(SELECT tg.name FROM rating_tags rt JOIN tags tg ON tg.id = rt.tag_id
                          WHERE rt.user_id = r.user_id AND rt.candidate_id = r.candidate_id
                          ORDER BY tg.position, tg.name) AS tags
             FROM ratings r",
            "r",
            "r.rated_at DESC, lower(u.username)",
        ),
        Kept::Replaced => (
            "SELECT h.candidate_id, u.username, h.verdict, h.score, h.notes, h.rated_at, h.replaced_at,
                    h.tag_names AS tags
             FROM rating_history h",
            "h",
            "h.replaced_at DESC, h.id DESC",
        ),
    };
    let mut q = QueryBuilder::new(select);
    q.push(format!(
        " JOIN users u ON u.id = {alias}.user_id JOIN candidates c ON c.id = {alias}.candidate_id
          WHERE {alias}.candidate_id = ANY("
    ))
    .push_bind(candidates.to_vec())
    .push(")");
    push_rating_visible(&mut q, v, alias, "c");
    q.push(format!(" ORDER BY {alias}.candidate_id, {order}"));
    q.build_query_as().persistent(false).fetch_all(db).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Created,
    Changed,
    /// The same form arrived again (same one-time key): nothing done.
    Repeated,
    /// The rating equals the current one: nothing to record.
    Same,
}

/// Saves the reviewer's rating of the candidate; the one it replaces goes
/// to the history. Commits on its own: a first rating is one statement, a
/// change is a transaction (a savepoint if the caller has one open).
pub async fn save(
    db: &mut PgConnection,
    user: UserId,
    candidate: CandidateId,
    input: &RatingInput,
    key: Option<&str>,
) -> sqlx::Result<Saved> {
    // A first rating is the common case: the rating, its tags and the count
    // in one statement (the tags and the count only if the rating was new).
    let inserted: Option<CandidateId> = sqlx::query_scalar(
        "WITH new AS (
             INSERT INTO ratings (user_id, candidate_id, verdict, score, notes, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, candidate_id) DO NOTHING RETURNING user_id, candidate_id),
         tagged AS (
             INSERT INTO rating_tags (user_id, candidate_id, tag_id)
             SELECT new.user_id, new.candidate_id, t FROM new, unnest($7::bigint[]) t),
         counted AS (
             UPDATE candidates SET rating_count = rating_count + 1
             WHERE id = (SELECT candidate_id FROM new))
         SELECT candidate_id FROM new",
    )
    .bind(user)
    .bind(candidate)
    .bind(input.verdict)
    .bind(input.score.map(|s| s.get()))
    .bind(&input.notes)
    .bind(key)
    .bind(&input.tag_ids)
    .fetch_optional(&mut *db)
    .await?;
    if inserted.is_some() {
        return Ok(Saved::Created);
    }
    let mut tx = sqlx::Connection::begin(&mut *db).await?;
    let saved = change(&mut tx, user, candidate, input, key).await?;
    tx.commit().await?;
    Ok(saved)
}

/// Replaces the current rating (the existing-rating half of [`save`]).
async fn change(
    tx: &mut PgConnection,
    user: UserId,
    candidate: CandidateId,
    input: &RatingInput,
    key: Option<&str>,
) -> sqlx::Result<Saved> {
    // There is a current rating: lock it, then decide.
    let (old_key,): (Option<String>,) = sqlx::query_as(
        "SELECT idempotency_key FROM ratings WHERE user_id = $1 AND candidate_id = $2 FOR UPDATE",
    )
    .bind(user)
    .bind(candidate)
    .fetch_one(&mut *tx)
    .await?;
    if key.is_some() && old_key.as_deref() == key {
        return Ok(Saved::Repeated);
    }
    let old = mine(tx, user, candidate)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    if old.verdict == input.verdict
        && old.score == input.score.map(|s| s.get())
        && old.notes == input.notes
        && old.tag_ids == input.tag_ids
    {
        return Ok(Saved::Same);
    }
    sqlx::query(
        "INSERT INTO rating_history (candidate_id, user_id, verdict, score, notes, tag_ids, tag_names, rated_at)
         SELECT r.candidate_id, r.user_id, r.verdict, r.score, r.notes, $3,
                coalesce((SELECT array_agg(name ORDER BY position, name) FROM tags WHERE id = ANY($3)), '{}'),
                r.rated_at
         FROM ratings r WHERE r.user_id = $1 AND r.candidate_id = $2",
    )
    .bind(user)
    .bind(candidate)
    .bind(&old.tag_ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE ratings SET verdict = $3, score = $4, notes = $5, idempotency_key = $6, rated_at = now(), batch_id = NULL
         WHERE user_id = $1 AND candidate_id = $2",
    )
    .bind(user)
    .bind(candidate)
    .bind(input.verdict)
    .bind(input.score.map(|s| s.get()))
    .bind(&input.notes)
    .bind(key)
    .execute(&mut *tx)
    .await?;
    write_tags(tx, user, candidate, &input.tag_ids).await?;
    Ok(Saved::Changed)
}

async fn write_tags(
    tx: &mut PgConnection,
    user: UserId,
    candidate: CandidateId,
    tags: &[TagId],
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM rating_tags WHERE user_id = $1 AND candidate_id = $2")
        .bind(user)
        .bind(candidate)
        .execute(&mut *tx)
        .await?;
    if !tags.is_empty() {
        sqlx::query(
            "INSERT INTO rating_tags (user_id, candidate_id, tag_id) SELECT $1, $2, unnest($3::bigint[])",
        )
        .bind(user)
        .bind(candidate)
        .bind(tags)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Takes back the reviewer's most recent rating: the one it replaced comes
/// back from the history, or, if it was the first, the rating goes.
/// Returns the candidate it concerned.
/// A reviewer's most recent rating, locked for the undo that may follow.
#[derive(Debug, Clone, FromRow)]
pub struct Latest {
    pub candidate: CandidateId,
    pub name: String,
    pub verdict: Verdict,
    pub rated_at: OffsetDateTime,
}

pub async fn latest(tx: &mut PgConnection, user: UserId) -> sqlx::Result<Option<Latest>> {
    sqlx::query_as(
        "SELECT r.candidate_id AS candidate, c.name, r.verdict, r.rated_at
           FROM ratings r JOIN candidates c ON c.id = r.candidate_id
          WHERE r.user_id = $1 ORDER BY r.rated_at DESC LIMIT 1 FOR UPDATE OF r",
    )
    .bind(user)
    .fetch_optional(tx)
    .await
}

/// Takes back the reviewer's most recent rating: the one before it on the
/// same candidate comes back, or the candidate is unrated again. Returns
/// the candidate and the verdict now standing, if any.
pub async fn undo_last(
    tx: &mut PgConnection,
    user: UserId,
) -> sqlx::Result<Option<(CandidateId, Option<Verdict>)>> {
    let Some(candidate): Option<CandidateId> = sqlx::query_scalar(
        "SELECT candidate_id FROM ratings WHERE user_id = $1 ORDER BY rated_at DESC LIMIT 1 FOR UPDATE",
    )
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let previous: Option<Replaced> = sqlx::query_as(
        "SELECT id, verdict, score, notes, tag_ids, rated_at FROM rating_history
         WHERE user_id = $1 AND candidate_id = $2 ORDER BY replaced_at DESC, id DESC LIMIT 1",
    )
    .bind(user)
    .bind(candidate)
    .fetch_optional(&mut *tx)
    .await?;
    let restored = previous.as_ref().map(|p| p.verdict);
    match previous {
        Some(Replaced {
            id,
            verdict,
            score,
            notes,
            tag_ids,
            rated_at,
        }) => {
            sqlx::query(
                "UPDATE ratings SET verdict = $3, score = $4, notes = $5, rated_at = $6, idempotency_key = NULL, batch_id = NULL
                 WHERE user_id = $1 AND candidate_id = $2",
            )
            .bind(user)
            .bind(candidate)
            .bind(verdict)
            .bind(score)
            .bind(&notes)
            .bind(rated_at)
            .execute(&mut *tx)
            .await?;
            // Tags deleted since are simply left out.
            let still: Vec<TagId> = sqlx::query_scalar("SELECT id FROM tags WHERE id = ANY($1)")
                .bind(&tag_ids)
                .fetch_all(&mut *tx)
                .await?;
            write_tags(tx, user, candidate, &still).await?;
            sqlx::query("DELETE FROM rating_history WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        None => {
            sqlx::query("DELETE FROM ratings WHERE user_id = $1 AND candidate_id = $2")
                .bind(user)
                .bind(candidate)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE candidates SET rating_count = rating_count - 1 WHERE id = $1")
                .bind(candidate)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(Some((candidate, restored)))
}

#[derive(FromRow)]
struct Replaced {
    id: i64,
    verdict: Verdict,
    score: Option<i16>,
    notes: String,
    tag_ids: Vec<TagId>,
    rated_at: OffsetDateTime,
}

/// The reviewer's current ratings given since `since`, by project and
/// verdict (for the daily summary).
pub async fn given_since(
    db: impl sqlx::PgExecutor<'_>,
    user: UserId,
    since: OffsetDateTime,
) -> sqlx::Result<Vec<(String, Verdict, i64)>> {
    sqlx::query_as(
        "SELECT p.name, r.verdict, count(*) FROM ratings r
         JOIN candidates c ON c.id = r.candidate_id JOIN projects p ON p.id = c.project_id
         WHERE r.user_id = $1 AND r.rated_at >= $2
         GROUP BY p.name, r.verdict ORDER BY p.name, r.verdict",
    )
    .bind(user)
    .bind(since)
    .fetch_all(db)
    .await
}

/// Brings the shared ratings summaries (`/ratings`, the project counts,
/// the trainer's rating totals) up to date with every committed rating:
/// ratings note their candidate and a flush counts it (migration
/// 20261221000001_deferred_rating_summaries). Cheap when nothing is
/// pending. Returns how many candidates it counted.
pub async fn flush_summaries(db: &mut PgConnection) -> sqlx::Result<i64> {
    // In batches, each its own transaction, so that no flush holds more
    // than a batch in memory or its lock for long.
    const BATCH: i32 = 20_000;
    let mut counted = 0;
    loop {
        let n: i32 = sqlx::query_scalar("SELECT flush_rating_summaries($1)")
            .bind(BATCH)
            .fetch_one(&mut *db)
            .await?;
        counted += i64::from(n);
        if n < BATCH {
            return Ok(counted);
        }
    }
}

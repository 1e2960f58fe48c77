//! The candidates each reviewer was shown, newest last, which "previous"
//! walks back through.

use sqlx::{PgConnection, PgExecutor};

use crate::domain::{CandidateId, UserId};

/// How many of a reviewer's latest entries the hourly clean-up keeps.
pub const KEPT: i64 = 200;

/// The candidate shown before `candidate`'s latest showing (before the
/// latest entry, if `candidate` was never shown), skipping candidates
/// removed since. With `record`, first notes that `candidate` is being
/// shown, unless it was the latest already: one statement, so a page view
/// costs no extra round trip for it.
pub async fn before(
    db: &mut PgConnection,
    user: UserId,
    candidate: CandidateId,
    record: bool,
) -> sqlx::Result<Option<CandidateId>> {
    // Recording appends the candidate, so the one before its latest
    // showing is then simply the latest entry that is not the candidate.
    // The statement sees the trail as it was before its own insert.
    const RECORDED: &str = "
        WITH added AS (
            INSERT INTO reviewer_trail (user_id, candidate_id)
            SELECT $1, $2
            WHERE EXISTS (SELECT 1 FROM candidates WHERE id = $2)
              AND $2 IS DISTINCT FROM (
                SELECT candidate_id FROM reviewer_trail
                WHERE user_id = $1 ORDER BY seq DESC LIMIT 1)
        )
        SELECT t.candidate_id FROM reviewer_trail t
        JOIN candidates c ON c.id = t.candidate_id
        WHERE t.user_id = $1 AND t.candidate_id <> $2
        ORDER BY t.seq DESC LIMIT 1";
    const WALKED: &str = "
        SELECT t.candidate_id FROM reviewer_trail t
        JOIN candidates c ON c.id = t.candidate_id
        WHERE t.user_id = $1 AND t.candidate_id <> $2
          AND t.seq < coalesce(
                (SELECT max(seq) FROM reviewer_trail WHERE user_id = $1 AND candidate_id = $2),
                9223372036854775807)
        ORDER BY t.seq DESC LIMIT 1";
    sqlx::query_scalar(if record { RECORDED } else { WALKED })
        .bind(user)
        .bind(candidate)
        .fetch_optional(db)
        .await
}

/// Forgets all but each reviewer's latest [`KEPT`] entries.
pub async fn trim(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM reviewer_trail t USING (
             SELECT user_id, seq FROM (
                 SELECT user_id, seq,
                        row_number() OVER (PARTITION BY user_id ORDER BY seq DESC) AS n
                 FROM reviewer_trail) ranked
             WHERE n > $1) old
         WHERE t.user_id = old.user_id AND t.seq = old.seq",
    )
    .bind(KEPT)
    .execute(db)
    .await?
    .rows_affected())
}

//! The candidates each reviewer was shown, newest first, which "previous"
//! walks back through.

use sqlx::PgConnection;

use crate::domain::{CandidateId, UserId};

/// How many of a reviewer's latest showings are kept.
pub const KEPT: i32 = 200;

/// The candidate shown before `candidate`'s latest showing (the latest
/// showing of another, if `candidate` was never shown), skipping candidates
/// removed since. With `record`, first notes that `candidate` is being
/// shown, unless it was the latest already: one statement, so a page view
/// costs no extra round trip for it.
///
/// `unnest` reads an array out in order, so the first match is the newest,
/// and the removal check stops there. That check is a scalar subquery, not
/// `EXISTS`: PostgreSQL turns `EXISTS` into a join, which it may drive from
/// the candidates' side, and then the first match is the lowest id.
pub async fn before(
    db: &mut PgConnection,
    user: UserId,
    candidate: CandidateId,
    record: bool,
) -> sqlx::Result<Option<CandidateId>> {
    const RECORDED: &str = "
        WITH t AS (
            INSERT INTO reviewer_trails AS r (user_id, shown)
            SELECT $1, ARRAY[$2]::bigint[] WHERE EXISTS (SELECT 1 FROM candidates WHERE id = $2)
            ON CONFLICT (user_id) DO UPDATE
            SET shown = CASE WHEN r.shown[1] = $2 THEN r.shown ELSE ($2 || r.shown)[1:$3] END
            RETURNING shown
        )
        SELECT x FROM t, unnest(t.shown[2:]) x
        WHERE x <> $2 AND (SELECT c.id FROM candidates c WHERE c.id = x) IS NOT NULL
        LIMIT 1";
    const WALKED: &str = "
        SELECT x FROM reviewer_trails r,
             unnest(r.shown[coalesce(array_position(r.shown, $2), 0) + 1:]) x
        WHERE r.user_id = $1 AND x <> $2
          AND (SELECT c.id FROM candidates c WHERE c.id = x) IS NOT NULL
        LIMIT 1";
    let q = sqlx::query_scalar(if record { RECORDED } else { WALKED })
        .bind(user)
        .bind(candidate);
    let q = if record { q.bind(KEPT) } else { q };
    q.fetch_optional(db).await
}

//! The candidates each reviewer was shown, newest first, which "previous"
//! walks back through.

use sqlx::PgConnection;

use crate::domain::{CandidateId, UserId};

/// How many of a reviewer's latest showings are kept.
pub const KEPT: i32 = 200;

/// The candidate shown before `candidate`'s latest showing (the latest
/// showing of another, if `candidate` was never shown), skipping candidates
/// removed since. With `record`, first notes that `candidate` is being
/// shown, unless it was the latest already. The rating page runs the same
/// [`step`] inside its own statement, so a page view costs no round trip
/// for it; this is for walking back.
pub async fn before(
    db: &mut PgConnection,
    user: UserId,
    candidate: CandidateId,
    record: bool,
) -> sqlx::Result<Option<CandidateId>> {
    let Step { with, before } = step(record, "$1", "$2", "$3");
    let sql = format!("{with} SELECT {before}");
    let q = sqlx::query_scalar(&sql).bind(user).bind(candidate);
    let q = if record { q.bind(KEPT) } else { q };
    q.fetch_one(db).await
}

/// The trail as a part of another statement: a `WITH` clause (empty when
/// only walking back) and an expression for the candidate before, written
/// with that statement's parameters for the user, the candidate and, when
/// recording, [`KEPT`].
pub(super) struct Step {
    pub with: String,
    pub before: String,
}

/// `unnest` reads an array out in order, so the first match is the newest,
/// and the removal check stops there. That check is a scalar subquery, not
/// `EXISTS`: PostgreSQL turns `EXISTS` into a join, which it may drive from
/// the candidates' side, and then the first match is the lowest id.
pub(super) fn step(record: bool, user: &str, candidate: &str, kept: &str) -> Step {
    let live = "(SELECT tc.id FROM candidates tc WHERE tc.id = x) IS NOT NULL";
    if record {
        Step {
            with: format!(
                "WITH trail AS (
                    INSERT INTO reviewer_trails AS r (user_id, shown)
                    SELECT {user}, ARRAY[{candidate}]::bigint[]
                     WHERE EXISTS (SELECT 1 FROM candidates WHERE id = {candidate})
                    ON CONFLICT (user_id) DO UPDATE
                    SET shown = CASE WHEN r.shown[1] = {candidate} THEN r.shown
                                     ELSE ({candidate} || r.shown)[1:{kept}] END
                    RETURNING shown)"
            ),
            before: format!(
                "(SELECT x FROM trail, unnest(trail.shown[2:]) x
                   WHERE x <> {candidate} AND {live} LIMIT 1)"
            ),
        }
    } else {
        Step {
            with: String::new(),
            before: format!(
                "(SELECT x FROM reviewer_trails r,
                        unnest(r.shown[coalesce(array_position(r.shown, {candidate}), 0) + 1:]) x
                   WHERE r.user_id = {user} AND x <> {candidate} AND {live} LIMIT 1)"
            ),
        }
    }
}

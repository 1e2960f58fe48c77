//! The feed of rating changes, for clients that keep a copy of the ratings
//! (`GET /api/v1/ratings`). Triggers write a row to `rating_changes` for
//! every (transaction, candidate, reviewer) whose rating, tags or history
//! changed, with the writing transaction's id (migration 20261220000001).
//!
//! Why a cursor over it can never skip a change: ids and times are taken
//! when a row is written, but rows become visible when their transaction
//! commits, and a long transaction can commit after later ones. So the feed
//! hands out only rows whose xid is below the xmin of the reading snapshot
//! (`pg_snapshot_xmin(pg_current_snapshot())`): every transaction below it
//! has ended, committed or not, so no row can still appear there. Pages
//! follow (xid, id), and a cursor is the last (xid, id) handed out; any row
//! written later belongs to a transaction at or above that xmin, after the
//! cursor. A transaction that stays open holds the feed back until it ends
//! (so does one that merely holds an xid, in any database of the cluster:
//! xids are the cluster's); it is never passed over, and the page says the
//! feed is `waiting` while committed changes are held back.
//!
//! Each change is told as the candidate's state now: every current rating
//! (and replaced one) of it that the viewer may see. A client that applies
//! the changes in order, replacing what it holds for each candidate, ends
//! with what the viewer may see. Changes to others' ratings of a candidate
//! the viewer may not see are left out; when the viewer rates it, their own
//! change brings the candidate's whole state, others' ratings included.
//! What is not a change: a project switched to open review (its ratings
//! become visible without one; sync again from the start), and a tag
//! renamed.

use sqlx::{Connection, FromRow, PgConnection, Postgres, QueryBuilder, Transaction};
use time::OffsetDateTime;

use crate::db::ratings::push_visible;
use crate::domain::paging::ChangeCursor;
use crate::domain::visibility::RatingVisibility;
use crate::domain::{CandidateId, ProjectId};

/// A read-only transaction on one snapshot: the page and the ratings it
/// reports are read as of the same moment.
pub async fn snapshot(conn: &mut PgConnection) -> sqlx::Result<Transaction<'_, Postgres>> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Where a page starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// After a cursor this feed gave out (or [`ChangeCursor::START`]).
    After(ChangeCursor),
    /// At the first change written at or after this time.
    Since(OffsetDateTime),
}

/// One change: the candidate (gone if it was deleted since) and where it is
/// in the feed.
#[derive(Debug, Clone)]
pub struct Change {
    pub cursor: ChangeCursor,
    pub candidate_id: CandidateId,
    pub changed_at: OffsetDateTime,
    pub candidate: Option<Head>,
}

/// What names a candidate.
#[derive(Debug, Clone)]
pub struct Head {
    pub name: String,
    pub project: String,
    pub observation: String,
}

#[derive(Debug, Clone)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// Where the next page starts; past every change this one considered,
    /// handed out or hidden.
    pub next: ChangeCursor,
    /// More changes are ready now (the page was full).
    pub more: bool,
    /// Changes have been committed that the feed holds back until an older
    /// transaction ends: ask again shortly.
    pub waiting: bool,
}

#[derive(FromRow)]
struct Row {
    xid: String,
    id: i64,
    candidate_id: CandidateId,
    changed_at: OffsetDateTime,
    name: Option<String>,
    project: Option<String>,
    observation: Option<String>,
}

fn cursor(xid: &str, id: i64) -> sqlx::Result<ChangeCursor> {
    let xid = xid
        .parse()
        .map_err(|e| sqlx::Error::Decode(format!("xid8 {xid:?}: {e}").into()))?;
    Ok(ChangeCursor { xid, id })
}

/// The snapshot's xmin, the first xid that may still be running (nothing
/// at or above it is handed out), and its xmax, the first not yet given
/// out (no cursor of this server's lies beyond it).
async fn horizon(tx: &mut PgConnection) -> sqlx::Result<(u64, u64)> {
    let (xmin, xmax): (String, String) = sqlx::query_as(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() s",
    )
    .fetch_one(&mut *tx)
    .await?;
    let number = |x: &str| {
        x.parse::<u64>()
            .map_err(|e| sqlx::Error::Decode(format!("xid8 {x:?}: {e}").into()))
    };
    Ok((number(&xmin)?, number(&xmax)?))
}

/// The cursor just before the first change at or after `since` among
/// those below the horizon; the horizon itself if there is none (every
/// change at or above it is still to come, so it is handed out whatever
/// its time).
async fn since_cursor(
    tx: &mut PgConnection,
    since: OffsetDateTime,
    horizon: u64,
) -> sqlx::Result<ChangeCursor> {
    // Through the time index, then sorted: few rows for a recent time.
    let first: Option<(String, i64)> = sqlx::query_as(
        "SELECT s.xid::text, s.id FROM (SELECT xid, id FROM rating_changes
                                        WHERE changed_at >= $1 AND xid < $2::text::xid8 OFFSET 0) s
         ORDER BY s.xid, s.id LIMIT 1",
    )
    .bind(since)
    .bind(horizon.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    match first {
        Some((xid, id)) => cursor(&xid, id - 1),
        None => Ok(ChangeCursor {
            xid: horizon,
            id: 0,
        }),
    }
}

/// One page of the feed: up to `limit` changes the viewer may see, of one
/// project or all, in the snapshot of `tx` ([`snapshot`]). `None` for a
/// cursor this server cannot have given out (its xid is still to come:
/// the database was restored from a backup since, say).
pub async fn page(
    tx: &mut PgConnection,
    v: &RatingVisibility,
    start: Start,
    project: Option<ProjectId>,
    limit: u32,
) -> sqlx::Result<Option<ChangePage>> {
    let (horizon, next_xid) = horizon(tx).await?;
    let after = match start {
        Start::After(c) if c.xid > next_xid => return Ok(None),
        Start::After(c) => c,
        Start::Since(t) => since_cursor(tx, t, horizon).await?,
    };
    let mut q = QueryBuilder::new(
        "SELECT l.xid::text AS xid, l.id, l.candidate_id, l.changed_at, c.name,
                (SELECT p.slug FROM projects p WHERE p.id = c.project_id) AS project,
                (SELECT o.external_id FROM observations o WHERE o.id = c.observation_id) AS observation
         FROM rating_changes l LEFT JOIN candidates c ON c.id = l.candidate_id
         WHERE (l.xid, l.id) > (",
    );
    q.push_bind(after.xid.to_string())
        .push("::text::xid8, ")
        .push_bind(after.id)
        .push(") AND l.xid < ")
        .push_bind(horizon.to_string())
        .push("::text::xid8");
    push_readable(&mut q, v, project);
    q.push(" ORDER BY l.xid, l.id LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows: Vec<Row> = q
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
    let more = rows.len() > limit as usize;
    let mut changes = Vec::with_capacity(rows.len().min(limit as usize));
    for r in rows.into_iter().take(limit as usize) {
        changes.push(Change {
            cursor: cursor(&r.xid, r.id)?,
            candidate_id: r.candidate_id,
            changed_at: r.changed_at,
            candidate: match (r.name, r.project, r.observation) {
                (Some(name), Some(project), Some(observation)) => Some(Head {
                    name,
                    project,
                    observation,
                }),
                _ => None,
            },
        });
    }
    let last = changes.last().map_or(after, |c| c.cursor);
    let next = if more {
        last
    } else {
        // Everything below the horizon was looked at, so the next page can
        // start there, past the changes this viewer may not see.
        last.max(after).max(ChangeCursor {
            xid: horizon,
            id: 0,
        })
    };
    let waiting = !more
        && {
            let mut q = QueryBuilder::new(
            "SELECT EXISTS (SELECT 1 FROM rating_changes l LEFT JOIN candidates c ON c.id = l.candidate_id
             WHERE l.xid >= ",
        );
            q.push_bind(horizon.to_string()).push("::text::xid8");
            push_readable(&mut q, v, project);
            q.push(")");
            q.build_query_scalar::<bool>()
                .persistent(false)
                .fetch_one(&mut *tx)
                .await?
        };
    Ok(Some(ChangePage {
        changes,
        next,
        more,
        waiting,
    }))
}

/// After a restore: the changes carry the xids of the server the backup
/// came from, which mean nothing here (and may lie far ahead of this
/// server's). Each rating keeps its latest change, and they all take this
/// transaction's xid, in their order; cursors of the old server are then
/// refused by [`page`] rather than followed past this server's changes.
pub async fn after_restore(conn: &mut PgConnection) -> sqlx::Result<()> {
    // A backup from before the feed has none; the migration makes it.
    let present: bool = sqlx::query_scalar("SELECT to_regclass('rating_changes') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !present {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    sqlx::query(
        "DELETE FROM rating_changes a USING rating_changes b
         WHERE a.candidate_id = b.candidate_id AND a.user_id = b.user_id AND (a.xid, a.id) < (b.xid, b.id)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE rating_changes SET xid = pg_current_xact_id()")
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// ` AND …`: the change (`l`, its candidate `c`) is of the project, and
/// the viewer may be told of it: their own, one of a candidate now gone,
/// and others' where the viewer may see the candidate's ratings.
fn push_readable(
    q: &mut QueryBuilder<'_, Postgres>,
    v: &RatingVisibility,
    project: Option<ProjectId>,
) {
    if let Some(p) = project {
        // A change that took its project with it has none: told to all.
        q.push(" AND (l.project_id = ")
            .push_bind(p)
            .push(" OR l.project_id IS NULL)");
    }
    q.push(" AND (l.user_id = ")
        .push_bind(v.viewer())
        .push(" OR c.id IS NULL OR (true");
    push_visible(q, v, "c");
    q.push("))");
}

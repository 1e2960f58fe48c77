//! Rows for stored files. The bytes live in the media folder (`media.rs`).

use std::collections::HashMap;

use sqlx::PgConnection;

use crate::domain::{BeamId, CandidateId, FileId, ObservationId, SkyPos};
use crate::media::{ContentKind, MediaStore};

/// What a file is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    Candidate(CandidateId),
    Beam(BeamId),
    Observation(ObservationId),
}

impl Owner {
    fn column(self) -> &'static str {
        match self {
            Owner::Candidate(_) => "candidate_id",
            Owner::Beam(_) => "beam_id",
            Owner::Observation(_) => "observation_id",
        }
    }
    /// Its row's id, whichever table that is.
    pub fn id(self) -> i64 {
        match self {
            Owner::Candidate(i) => i.0,
            Owner::Beam(i) => i.0,
            Owner::Observation(i) => i.0,
        }
    }

    /// Another owner of the same kind.
    fn same_kind(self, id: i64) -> Owner {
        match self {
            Owner::Candidate(_) => Owner::Candidate(CandidateId(id)),
            Owner::Beam(_) => Owner::Beam(BeamId(id)),
            Owner::Observation(_) => Owner::Observation(ObservationId(id)),
        }
    }
}

pub struct NewFile<'a> {
    pub role: &'a str,
    pub kind: ContentKind,
    pub size: u64,
    pub sha256: &'a str,
    pub original_name: &'a str,
    pub derived_from: Option<FileId>,
    /// Only for an animated GIF, whose `<role>_strip` row holds its frames.
    pub animation: Option<Animation>,
}

/// How to cut a GIF's strip of frames (a PNG with the frames stacked top to
/// bottom) and how fast to play it. Stored on the GIF's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Animation {
    pub frames: i32,
    pub frame_ms: i32,
    /// Size of one frame in the strip.
    pub width: i32,
    pub height: i32,
}

/// The checksum of each (owner, role) present, for owners of one kind.
pub async fn shas(
    db: &mut PgConnection,
    owners: &[Owner],
) -> sqlx::Result<HashMap<(Owner, String), String>> {
    let Some(&first) = owners.first() else {
        return Ok(HashMap::new());
    };
    let column = first.column();
    let ids: Vec<i64> = owners.iter().map(|o| o.id()).collect();
    let rows: Vec<(i64, String, String)> = sqlx::query_as(&format!(
        "SELECT {column}, role, sha256 FROM files WHERE {column} = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, role, sha)| ((first.same_kind(id), role), sha))
        .collect())
}

/// Attaches the file under its role, replacing what was there. Returns the
/// new row's id and the storage path it replaced, if any.
pub async fn upsert(
    db: &mut PgConnection,
    owner: Owner,
    f: &NewFile<'_>,
) -> sqlx::Result<(FileId, Option<String>)> {
    let column = owner.column();
    let path = MediaStore::object_path(f.sha256, f.kind);
    sqlx::query_as(&format!(
        "WITH old AS (SELECT storage_path FROM files WHERE {column} = $1 AND role = $2)
         INSERT INTO files ({column}, role, content_type, size_bytes, sha256, storage_path, original_name, derived_from,
                            frames, frame_ms, width, height)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT ({column}, role) WHERE {column} IS NOT NULL DO UPDATE SET
             content_type = EXCLUDED.content_type, size_bytes = EXCLUDED.size_bytes,
             sha256 = EXCLUDED.sha256, storage_path = EXCLUDED.storage_path,
             original_name = EXCLUDED.original_name, derived_from = EXCLUDED.derived_from,
             frames = EXCLUDED.frames, frame_ms = EXCLUDED.frame_ms,
             width = EXCLUDED.width, height = EXCLUDED.height,
             created_at = now()
         RETURNING id, (SELECT storage_path FROM old WHERE storage_path <> $6)"
    ))
    .bind(owner.id())
    .bind(f.role)
    .bind(f.kind.mime())
    .bind(f.size as i64)
    .bind(f.sha256)
    .bind(&path)
    .bind(f.original_name)
    .bind(f.derived_from)
    .bind(f.animation.map(|a| a.frames))
    .bind(f.animation.map(|a| a.frame_ms))
    .bind(f.animation.map(|a| a.width))
    .bind(f.animation.map(|a| a.height))
    .fetch_one(db)
    .await
}

/// Of these storage paths, those no file row refers to any more.
pub async fn unreferenced(db: &mut PgConnection, paths: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT p FROM unnest($1::text[]) AS p WHERE NOT EXISTS (SELECT 1 FROM files WHERE storage_path = p)",
    )
    .bind(paths)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub storage_path: String,
    pub content_type: String,
    pub original_name: String,
    pub role: String,
    pub sha256: String,
    pub size_bytes: i64,
}

pub async fn by_id(db: &mut PgConnection, id: FileId) -> sqlx::Result<Option<Stored>> {
    sqlx::query_as(
        "SELECT storage_path, content_type, original_name, role, sha256, size_bytes FROM files WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A candidate's FITS file with the candidate's position, for drawing it
/// with a crosshair; `None` unless the file is FITS and the candidate's.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CandidateFits {
    pub storage_path: String,
    pub sha256: String,
    #[sqlx(flatten)]
    pub pos: SkyPos,
}

pub async fn candidate_fits(
    db: &mut PgConnection,
    candidate: CandidateId,
    file: FileId,
) -> sqlx::Result<Option<CandidateFits>> {
    sqlx::query_as(
        "SELECT f.storage_path, f.sha256, c.ra, c.dec
           FROM files f JOIN candidates c ON c.id = f.candidate_id
          WHERE f.id = $1 AND c.id = $2 AND f.content_type = 'application/fits'",
    )
    .bind(file)
    .bind(candidate)
    .fetch_optional(db)
    .await
}

/// The advisory-lock class of media buckets (see `media.rs`): "medi".
pub const MEDIA_LOCK_CLASS: i32 = 0x6d65_6469;

/// Takes the shared lock of each media bucket until the transaction ends.
/// Always in ascending order, as every taker does, so takers cannot deadlock
/// one another.
pub async fn lock_buckets_shared(db: &mut PgConnection, buckets: &[i32]) -> sqlx::Result<()> {
    lock_buckets(db, buckets, "pg_advisory_xact_lock_shared").await
}

/// Tries to take the exclusive lock of each media bucket until the
/// transaction ends, without queueing (a queued exclusive request would hold
/// up every upload behind it). `false` if any is taken: the caller rolls
/// back, which releases those it did get, and tries again later.
pub async fn try_lock_buckets_exclusive(
    db: &mut PgConnection,
    buckets: &[i32],
) -> sqlx::Result<bool> {
    let mut sorted = buckets.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query_scalar::<_, Option<bool>>(
        "SELECT bool_and(pg_try_advisory_xact_lock($1, b)) FROM (SELECT b FROM unnest($2::int4[]) AS b ORDER BY b) AS s",
    )
    .bind(MEDIA_LOCK_CLASS)
    .bind(&sorted)
    .fetch_one(db)
    .await
    .map(|all| all.unwrap_or(true))
}

/// Takes the shared lock of every media bucket for the whole session (it
/// outlives transactions; closing the connection releases it).
pub async fn lock_all_buckets_for_session(db: &mut PgConnection) -> sqlx::Result<()> {
    let all: Vec<i32> = (0..256).collect();
    lock_buckets(db, &all, "pg_advisory_lock_shared").await
}

async fn lock_buckets(db: &mut PgConnection, buckets: &[i32], function: &str) -> sqlx::Result<()> {
    let mut sorted = buckets.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "SELECT count({function}($1, b)) FROM (SELECT b FROM unnest($2::int4[]) AS b ORDER BY b) AS s"
    ))
    .bind(MEDIA_LOCK_CLASS)
    .bind(&sorted)
    .execute(db)
    .await?;
    Ok(())
}

/// A file row as `vetter check` sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Checked {
    pub id: FileId,
    pub owner: String,
    pub role: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_path: String,
    pub derived_from: Option<FileId>,
}

macro_rules! select_checked {
    () => {
        "SELECT id, coalesce('candidate ' || candidate_id, 'beam ' || beam_id, 'observation ' || observation_id) AS owner,
                role, content_type, size_bytes, sha256, storage_path, derived_from
         FROM files"
    };
}

/// Every file row, streamed.
pub fn stream_all(
    db: &mut PgConnection,
) -> impl futures_util::Stream<Item = sqlx::Result<Checked>> + '_ {
    sqlx::query_as::<_, Checked>(select_checked!()).fetch(db)
}

pub async fn checked_by_id(db: &mut PgConnection, id: FileId) -> sqlx::Result<Option<Checked>> {
    sqlx::query_as(concat!(select_checked!(), " WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Points a row at new content (a re-rendered preview), if it still points
/// where the caller saw it. `false` if the row moved on meanwhile.
pub async fn replace_content(
    db: &mut PgConnection,
    id: FileId,
    seen_path: &str,
    kind: ContentKind,
    size: u64,
    sha256: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE files SET size_bytes = $3, sha256 = $4, storage_path = $5 WHERE id = $1 AND storage_path = $2",
    )
    .bind(id)
    .bind(seen_path)
    .bind(size as i64)
    .bind(sha256)
    .bind(MediaStore::object_path(sha256, kind))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a row (and, by cascade, the previews made from it) if it still
/// points where the caller saw it. Returns the storage paths of every row
/// removed, for the caller to clean up; empty if the row moved on.
pub async fn remove_with_previews(
    db: &mut PgConnection,
    id: FileId,
    seen_path: &str,
) -> sqlx::Result<Vec<(FileId, String, String)>> {
    let doomed: Vec<(FileId, String, String)> = sqlx::query_as(
        "WITH RECURSIVE tree AS (
             SELECT id, role, storage_path FROM files WHERE id = $1 AND storage_path = $2
             UNION ALL
             SELECT f.id, f.role, f.storage_path FROM files f JOIN tree t ON f.derived_from = t.id)
         SELECT id, role, storage_path FROM tree ORDER BY id",
    )
    .bind(id)
    .bind(seen_path)
    .fetch_all(&mut *db)
    .await?;
    if doomed.is_empty() {
        return Ok(doomed);
    }
    sqlx::query("DELETE FROM files WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(doomed)
}

/// A stored object as a backup copies it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Object {
    pub storage_path: String,
    pub size_bytes: i64,
    pub sha256: String,
}

/// Every distinct object the rows point at, streamed in path order.
pub fn stream_objects(
    db: &mut PgConnection,
) -> impl futures_util::Stream<Item = sqlx::Result<Object>> + '_ {
    sqlx::query_as::<_, Object>(
        "SELECT DISTINCT ON (storage_path) storage_path, size_bytes, sha256
         FROM files ORDER BY storage_path",
    )
    .fetch(db)
}

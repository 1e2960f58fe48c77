//! Tags as administrators manage them: create, rename, describe, reorder,
//! merge and delete. The order (`position`, then name) is the order on the
//! rating page, where the first nine get the keys 1-9.

use crate::domain::{ProjectId, TagId};
use sqlx::{FromRow, PgConnection, PgExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct Tag {
    pub id: TagId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub position: i32,
    /// Current ratings that carry the tag.
    pub uses: i64,
}

const SELECT: &str = "SELECT t.id, t.project_id, t.name, t.description, t.position,
            (SELECT count(*) FROM rating_tags r WHERE r.tag_id = t.id) AS uses
     FROM tags t";

/// The project's tags in rating-page order.
pub async fn for_project(db: impl PgExecutor<'_>, project: ProjectId) -> sqlx::Result<Vec<Tag>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE t.project_id = $1 ORDER BY t.position, t.name"
    ))
    .bind(project)
    .fetch_all(db)
    .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: TagId) -> sqlx::Result<Option<Tag>> {
    sqlx::query_as(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Locks the tag against concurrent rating and returns it. A reviewer who
/// tags a rating meanwhile waits, so no rating slips past a merge or delete.
async fn lock(db: &mut PgConnection, id: TagId) -> sqlx::Result<Option<Tag>> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM tags WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *db)
        .await?;
    match found {
        Some(_) => by_id(db, id).await,
        None => Ok(None),
    }
}

/// Adds a tag at the end of the project's order; None if the project has a
/// tag of that name already (names are compared case-insensitively).
pub async fn create(
    db: impl PgExecutor<'_>,
    project: ProjectId,
    name: &str,
    description: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO tags (project_id, name, description, position)
         SELECT $1, $2, $3, coalesce(max(position) + 1, 0) FROM tags WHERE project_id = $1
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(project)
    .bind(name)
    .bind(description)
    .fetch_optional(db)
    .await
}

/// Renames and describes a tag. False if another tag of the project has
/// the name. Ratings follow the tag; the rating history keeps the names as
/// they were.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: TagId,
    name: &str,
    description: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE tags SET name = $2, description = $3 WHERE id = $1
           AND NOT EXISTS (SELECT 1 FROM tags o WHERE o.project_id = tags.project_id
                            AND o.id <> $1 AND lower(o.name) = lower($2))",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .execute(db)
    .await;
    match r {
        Ok(r) => Ok(r.rows_affected() == 1),
        // Two renames at once: the unique index decides.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Moves the tag to `index` (0-based, clamped) in its project's order and
/// numbers the project's tags 0, 1, 2, ... Call inside a transaction.
pub async fn move_to(db: &mut PgConnection, id: TagId, index: usize) -> sqlx::Result<bool> {
    let Some(tag) = by_id(&mut *db, id).await? else {
        return Ok(false);
    };
    let mut order: Vec<TagId> = sqlx::query_scalar(
        "SELECT id FROM tags WHERE project_id = $1 ORDER BY position, name FOR UPDATE",
    )
    .bind(tag.project_id)
    .fetch_all(&mut *db)
    .await?;
    order.retain(|&t| t != id);
    order.insert(index.min(order.len()), id);
    renumber(db, &order).await?;
    Ok(true)
}

async fn renumber(db: &mut PgConnection, order: &[TagId]) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE tags SET position = o.n - 1
         FROM unnest($1::bigint[]) WITH ORDINALITY AS o(id, n)
         WHERE tags.id = o.id AND tags.position <> o.n - 1",
    )
    .bind(order)
    .execute(db)
    .await
    .map(drop)
}

async fn renumber_project(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<()> {
    let order: Vec<TagId> =
        sqlx::query_scalar("SELECT id FROM tags WHERE project_id = $1 ORDER BY position, name")
            .bind(project)
            .fetch_all(&mut *db)
            .await?;
    renumber(db, &order).await
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    /// Ratings that had the old tag and now have the target.
    pub moved: u64,
    /// Ratings that had both; they keep the target once.
    pub had_both: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    NotFound,
    SameTag,
    OtherProject,
}

/// Moves every rating from `from` to `into` (a rating with both keeps one),
/// points reviewers' queues that filter on `from` at `into`, and removes
/// `from`. The rating history is a snapshot and keeps its tag names. Call
/// inside a transaction.
pub async fn merge(
    db: &mut PgConnection,
    from: TagId,
    into: TagId,
) -> sqlx::Result<Result<(Tag, Tag, Merged), MergeError>> {
    if from == into {
        return Ok(Err(MergeError::SameTag));
    }
    // Lock in id order, so two merges in opposite directions cannot deadlock.
    let (a, b) = (from.min(into), from.max(into));
    let first = lock(&mut *db, a).await?;
    let second = lock(&mut *db, b).await?;
    let (Some(first), Some(second)) = (first, second) else {
        return Ok(Err(MergeError::NotFound));
    };
    let (source, target) = if first.id == from {
        (first, second)
    } else {
        (second, first)
    };
    if source.project_id != target.project_id {
        return Ok(Err(MergeError::OtherProject));
    }
    let moved = sqlx::query(
        "INSERT INTO rating_tags (user_id, candidate_id, tag_id)
         SELECT user_id, candidate_id, $2 FROM rating_tags WHERE tag_id = $1
         ON CONFLICT DO NOTHING",
    )
    .bind(from)
    .bind(into)
    .execute(&mut *db)
    .await?
    .rows_affected();
    let had_both = (source.uses as u64).saturating_sub(moved);
    sqlx::query(
        "UPDATE reviewer_queues SET view = jsonb_set(view, '{tag}', to_jsonb($2::bigint)), updated_at = now()
         WHERE view->'tag' = to_jsonb($1::bigint)",
    )
    .bind(from)
    .bind(into)
    .execute(&mut *db)
    .await?;
    sqlx::query("DELETE FROM tags WHERE id = $1")
        .bind(from)
        .execute(&mut *db)
        .await?;
    renumber_project(db, source.project_id).await?;
    Ok(Ok((source, target, Merged { moved, had_both })))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteError {
    NotFound,
    /// On this many current ratings.
    InUse(i64),
}

/// Removes a tag that no current rating carries. Call inside a transaction.
pub async fn delete_unused(
    db: &mut PgConnection,
    id: TagId,
) -> sqlx::Result<Result<Tag, DeleteError>> {
    let Some(tag) = lock(&mut *db, id).await? else {
        return Ok(Err(DeleteError::NotFound));
    };
    if tag.uses > 0 {
        return Ok(Err(DeleteError::InUse(tag.uses)));
    }
    sqlx::query("DELETE FROM tags WHERE id = $1")
        .bind(id)
        .execute(&mut *db)
        .await?;
    renumber_project(db, tag.project_id).await?;
    Ok(Ok(tag))
}

/// Adds a tag a reviewer typed, at the end of the order, unless the project
/// has it already. True if it was added.
pub async fn ensure(db: impl PgExecutor<'_>, project: ProjectId, name: &str) -> sqlx::Result<bool> {
    let created = sqlx::query(
        "INSERT INTO tags (project_id, name, position)
         SELECT $1, $2, coalesce(max(position) + 1, 0) FROM tags WHERE project_id = $1
         ON CONFLICT DO NOTHING",
    )
    .bind(project)
    .bind(name)
    .execute(db)
    .await?
    .rows_affected();
    Ok(created == 1)
}

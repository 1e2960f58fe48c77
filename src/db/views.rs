//! Saved views: a reviewer's named candidate-table queries, one of which
//! may be the default.

use sqlx::{FromRow, PgConnection};

use crate::domain::UserId;
use crate::domain::ViewId;

#[derive(Debug, Clone, FromRow)]
pub struct SavedView {
    pub id: ViewId,
    pub name: String,
    /// The query string of `/candidates`, without `?`.
    pub query: String,
    pub is_default: bool,
}

pub async fn list(db: &mut PgConnection, user: UserId) -> sqlx::Result<Vec<SavedView>> {
    sqlx::query_as(
        "SELECT id, name, query, is_default FROM saved_views WHERE user_id = $1 ORDER BY lower(name)",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

pub async fn get(
    db: &mut PgConnection,
    user: UserId,
    id: ViewId,
) -> sqlx::Result<Option<SavedView>> {
    sqlx::query_as(
        "SELECT id, name, query, is_default FROM saved_views WHERE user_id = $1 AND id = $2",
    )
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The query of the reviewer's default view, if there is one.
pub async fn default_query(db: &mut PgConnection, user: UserId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT query FROM saved_views WHERE user_id = $1 AND is_default")
        .bind(user)
        .fetch_optional(db)
        .await
}

/// Saves `query` under `name`, replacing the query of a view of the same
/// name (any case). Returns the id and whether it was new. Call inside a
/// transaction when `make_default` is set.
pub async fn save(
    db: &mut PgConnection,
    user: UserId,
    name: &str,
    query: &str,
    make_default: bool,
) -> sqlx::Result<(ViewId, bool)> {
    let (id, created): (ViewId, bool) = sqlx::query_as(
        "INSERT INTO saved_views (user_id, name, query) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, lower(name)) DO UPDATE SET query = EXCLUDED.query, name = EXCLUDED.name,
             updated_at = now()
         RETURNING id, xmax = 0",
    )
    .bind(user)
    .bind(name)
    .bind(query)
    .fetch_one(&mut *db)
    .await?;
    if make_default {
        set_default(db, user, id, true).await?;
    }
    Ok((id, created))
}

/// Makes the view the default (unsetting any other) or stops it being the
/// default. False if the reviewer has no such view. Call inside a
/// transaction.
pub async fn set_default(
    db: &mut PgConnection,
    user: UserId,
    id: ViewId,
    on: bool,
) -> sqlx::Result<bool> {
    if on {
        // Two statements: a unique index is checked row by row, so one
        // UPDATE that moves the default could briefly hold two.
        sqlx::query(
            "UPDATE saved_views SET is_default = false WHERE user_id = $1 AND is_default AND id <> $2
               AND EXISTS (SELECT 1 FROM saved_views WHERE user_id = $1 AND id = $2)",
        )
        .bind(user)
        .bind(id)
        .execute(&mut *db)
        .await?;
        let n =
            sqlx::query("UPDATE saved_views SET is_default = true WHERE user_id = $1 AND id = $2")
                .bind(user)
                .bind(id)
                .execute(db)
                .await?
                .rows_affected();
        Ok(n > 0)
    } else {
        let n =
            sqlx::query("UPDATE saved_views SET is_default = false WHERE user_id = $1 AND id = $2")
                .bind(user)
                .bind(id)
                .execute(db)
                .await?
                .rows_affected();
        Ok(n > 0)
    }
}

pub async fn delete(db: &mut PgConnection, user: UserId, id: ViewId) -> sqlx::Result<bool> {
    let n = sqlx::query("DELETE FROM saved_views WHERE user_id = $1 AND id = $2")
        .bind(user)
        .bind(id)
        .execute(db)
        .await?
        .rows_affected();
    Ok(n > 0)
}

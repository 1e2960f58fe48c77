//! The session store's table (`tower_sessions.session`), which the store
//! itself reads and writes; only the clean-up is ours.

use sqlx::PgExecutor;

/// Deletes the sessions past their expiry; the store only ignores them.
pub async fn purge_expired(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM tower_sessions.session WHERE expiry_date < now()")
            .execute(db)
            .await?
            .rows_affected(),
    )
}

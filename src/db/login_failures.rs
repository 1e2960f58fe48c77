//! Recent failed logins, counted per username and per client address.

use sqlx::PgExecutor;
use std::net::IpAddr;
use std::time::Duration;

pub async fn record(
    db: impl PgExecutor<'_>,
    username: &str,
    address: Option<IpAddr>,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO login_failures (username, address) VALUES (lower($1), $2::inet)")
        .bind(username)
        .bind(address.map(|a| a.to_string()))
        .execute(db)
        .await
        .map(drop)
}

/// The larger of the failure counts for this username and this address
/// within `window`.
pub async fn recent(
    db: impl PgExecutor<'_>,
    username: &str,
    address: Option<IpAddr>,
    window: Duration,
) -> sqlx::Result<u32> {
    let n: i64 = sqlx::query_scalar(
        "SELECT greatest(
            (SELECT count(*) FROM login_failures
              WHERE username = lower($1) AND failed_at > now() - $3 * interval '1 second'),
            (SELECT count(*) FROM login_failures
              WHERE $2::inet IS NOT NULL AND address = $2::inet
                AND failed_at > now() - $3 * interval '1 second'))",
    )
    .bind(username)
    .bind(address.map(|a| a.to_string()))
    .bind(window.as_secs_f64())
    .fetch_one(db)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A successful login forgives that username's earlier failures.
pub async fn clear_for_user(db: impl PgExecutor<'_>, username: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE username = lower($1)")
        .bind(username)
        .execute(db)
        .await
        .map(drop)
}

/// Rows past any window are of no use; called from the periodic cleanup.
pub async fn purge_older_than(db: impl PgExecutor<'_>, age: Duration) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM login_failures WHERE failed_at < now() - $1 * interval '1 second'")
        .bind(age.as_secs_f64())
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}

//! Sign-in attempts that did not succeed, counted per account-and-address
//! pair and per address.
//!
//! An attempt is written down as a failure *before* its password is checked
//! and forgiven only when it succeeds. Counting and writing happen under a
//! lock on the address, so however many guesses arrive at once, no more than
//! the limit get as far as the password check.

use sqlx::{PgExecutor, PgPool};
use std::net::IpAddr;
use std::time::Duration;

/// Recent failures (including attempts still being checked) that bear on
/// one sign-in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// Of this account from this address.
    pub pair: u32,
    /// From this address, whichever accounts.
    pub address: u32,
}

pub enum Admission {
    /// Go on and check the password; `before` are the failures that came
    /// before this attempt (for the slow-down).
    Admitted {
        before: Failures,
    },
    Refused {
        failures: Failures,
    },
}

/// Counts the recent failures that bear on this attempt and, if `admit` says
/// so, records the attempt as a failure, all while holding the address's
/// lock.
pub async fn admit(
    pool: &PgPool,
    username: &str,
    address: Option<IpAddr>,
    window: Duration,
    admit: impl FnOnce(Failures) -> bool,
) -> sqlx::Result<Admission> {
    let address = address.map(|a| a.to_string());
    let mut tx = pool.begin().await?;
    // One lock per address (per username for the rare request with no
    // address): attempts from elsewhere never wait for this one.
    let key = match &address {
        Some(a) => format!("login-address:{a}"),
        None => format!("login-user:{}", username.to_lowercase()),
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&key)
        .execute(&mut *tx)
        .await?;
    let (pair, by_address): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE username = lower($1)),
                count(*)
           FROM login_failures
          WHERE address IS NOT DISTINCT FROM $2::inet
            AND failed_at > now() - $3 * interval '1 second'",
    )
    .bind(username)
    .bind(&address)
    .bind(window.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    let failures = Failures {
        pair: u32::try_from(pair).unwrap_or(u32::MAX),
        address: u32::try_from(by_address).unwrap_or(u32::MAX),
    };
    if !admit(failures) {
        tx.rollback().await?;
        return Ok(Admission::Refused { failures });
    }
    sqlx::query("INSERT INTO login_failures (username, address) VALUES (lower($1), $2::inet)")
        .bind(username)
        .bind(&address)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Admission::Admitted { before: failures })
}

/// A successful sign-in forgives this account's failures from this address
/// (the attempt itself among them). Failures from other addresses stand.
pub async fn forgive(
    db: impl PgExecutor<'_>,
    username: &str,
    address: Option<IpAddr>,
) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM login_failures
          WHERE username = lower($1) AND address IS NOT DISTINCT FROM $2::inet",
    )
    .bind(username)
    .bind(address.map(|a| a.to_string()))
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

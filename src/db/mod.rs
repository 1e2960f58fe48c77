//! Database access: the pool, the migrations, and one module per aggregate.

pub mod api_tokens;
pub mod audit;
pub mod candidates;
pub mod files;
pub mod login_failures;
pub mod observations;
pub mod projects;
pub mod pulsars;
pub mod queue;
pub mod ratings;
pub mod removal;
pub mod search;
pub mod status;
pub mod tags;
pub mod users;
pub mod views;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool that connects on first use, so the server starts (and reports the
/// outage on `/healthz`) even while the database is down.
pub fn lazy_pool(url: &str) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url).context("DATABASE_URL cannot be parsed")?;
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(opts))
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db)) => {
            anyhow::anyhow!("migration failed: {db}")
        }
        other => anyhow::Error::new(other).context("applying migrations"),
    })
}

/// Whether the database answers; bounded so a hung server cannot hang the
/// health check.
pub async fn ping(pool: &PgPool) -> bool {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool);
    matches!(
        tokio::time::timeout(Duration::from_secs(3), probe).await,
        Ok(Ok(1))
    )
}

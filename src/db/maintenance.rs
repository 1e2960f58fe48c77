//! Statements about the database as a whole, for `vetter backup`,
//! `restore` and `check`: snapshots and the catalog.

use sqlx::{FromRow, PgConnection};

/// Opens a read-only REPEATABLE READ transaction on the connection and
/// exports its snapshot, for pg_dump to dump the very same state. End it
/// with `end_snapshot`.
pub async fn begin_exported_snapshot(db: &mut PgConnection) -> sqlx::Result<String> {
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *db)
        .await?;
    sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(db)
        .await
}

pub async fn end_snapshot(db: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("COMMIT").execute(db).await.map(drop)
}

/// Makes the caller's fresh transaction read-only REPEATABLE READ and takes
/// its snapshot now (with a first statement), not at its next query.
pub async fn snapshot_now(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT 1").execute(tx).await.map(drop)
}

/// What the database holds besides extensions' objects, for restore to
/// tell an empty database from one it would overwrite.
#[derive(Debug, Clone, FromRow)]
pub struct Relations {
    /// Tables, views, sequences and the like.
    pub count: i64,
    /// One of them by name, for the message.
    pub example: Option<String>,
    pub database: String,
}

pub async fn relations(db: &mut PgConnection) -> sqlx::Result<Relations> {
    sqlx::query_as(
        "SELECT count(*), min(n.nspname || '.' || c.relname) AS example, current_database() AS database
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')",
    )
    .fetch_one(db)
    .await
}

pub async fn has_q3c(db: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'q3c')")
        .fetch_one(db)
        .await
}

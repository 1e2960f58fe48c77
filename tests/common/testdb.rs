//! The test's own database, as a URL for the `vetter` binary.

use sqlx::PgPool;

/// The URL of the database `pool` is connected to (`#[sqlx::test]` makes
/// one per test, named after it, on the server of DATABASE_URL).
pub async fn url_of(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let cut = base.rfind('/').unwrap();
    format!("{}/{name}", &base[..cut])
}

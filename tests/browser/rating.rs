use sqlx::PgPool;

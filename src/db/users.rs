//! The `users` aggregate.

use sqlx::{FromRow, PgExecutor};

use crate::domain::{Role, UserId, Username};

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub active: bool,
    pub can_upload: bool,
    pub must_change_password: bool,
    pub session_epoch: i32,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

const COLUMNS: &str = "id, username, role, active, can_upload, must_change_password, session_epoch";

#[tracing::instrument(skip_all)]
pub async fn by_id(db: impl PgExecutor<'_>, id: UserId) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The user and their password hash, for checking a login.
#[tracing::instrument(skip_all)]
pub async fn credentials(
    db: impl PgExecutor<'_>,
    username: &Username,
) -> sqlx::Result<Option<(User, String)>> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: User,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)"
    ))
    .bind(username.as_str())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.user, r.password_hash)))
}

pub async fn password_hash(db: impl PgExecutor<'_>, id: UserId) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
}

#[tracing::instrument(skip_all)]
pub async fn insert(
    db: impl PgExecutor<'_>,
    username: &Username,
    password_hash: &str,
    role: Role,
) -> sqlx::Result<UserId> {
    sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, can_upload)
         VALUES ($1, $2, $3, $3 = 'admin') RETURNING id",
    )
    .bind(username.as_str())
    .bind(password_hash)
    .bind(role)
    .fetch_one(db)
    .await
}

pub async fn count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db)
        .await
}

pub async fn record_login(db: impl PgExecutor<'_>, id: UserId) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(drop)
}

/// Sets a new password and ends every other session of the user by moving
/// the session epoch on; returns the new epoch.
#[tracing::instrument(skip_all)]
pub async fn set_password(
    db: impl PgExecutor<'_>,
    id: UserId,
    password_hash: &str,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "UPDATE users SET password_hash = $2, must_change_password = false,
                          session_epoch = session_epoch + 1
         WHERE id = $1 RETURNING session_epoch",
    )
    .bind(id)
    .bind(password_hash)
    .fetch_one(db)
    .await
}

pub async fn set_active(db: impl PgExecutor<'_>, id: UserId, active: bool) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET active = $2,
                          session_epoch = session_epoch + CASE WHEN $2 THEN 0 ELSE 1 END
         WHERE id = $1",
    )
    .bind(id)
    .bind(active)
    .execute(db)
    .await
    .map(drop)
}

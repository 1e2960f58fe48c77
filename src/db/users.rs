//! The `users` aggregate.

use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, Postgres};

use crate::domain::keys::KeyMap;
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
    /// Off: a character key shortcut needs Alt (WCAG 2.1.4).
    pub single_key_shortcuts: bool,
    pub key_map: KeyMap,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

const COLUMNS: &str = "id, username, role, active, can_upload, must_change_password, session_epoch,
                        single_key_shortcuts, key_map";

/// Every user row carries its key map, so it is read on every request: a
/// stored map that no longer passes the checks (only an older vetter could
/// have written it) gives the default keys rather than an error on every
/// page.
impl sqlx::Type<Postgres> for KeyMap {
    fn type_info() -> PgTypeInfo {
        <Json<serde_json::Value> as sqlx::Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <Json<serde_json::Value> as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for KeyMap {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let Json(stored) = <Json<serde_json::Value> as sqlx::Decode<Postgres>>::decode(value)?;
        let entries: Option<Vec<(String, String)>> = stored.as_object().and_then(|o| {
            o.iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        });
        let parsed = entries.ok_or_else(Vec::new).and_then(KeyMap::parse);
        Ok(parsed.unwrap_or_else(|problems| {
            tracing::warn!(
                ?problems,
                "a stored key map is not valid: the default keys apply"
            );
            KeyMap::default()
        }))
    }
}

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

/// A reviewer's keyboard settings, from the account page.
#[tracing::instrument(skip_all)]
pub async fn set_keyboard(
    db: impl PgExecutor<'_>,
    id: UserId,
    single_key_shortcuts: bool,
    key_map: &KeyMap,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET single_key_shortcuts = $2, key_map = $3 WHERE id = $1")
        .bind(id)
        .bind(single_key_shortcuts)
        .bind(Json(key_map))
        .execute(db)
        .await
        .map(drop)
}

/// The address a user's daily summary goes to, and whether they want one.
pub async fn summary_settings(
    db: impl PgExecutor<'_>,
    id: UserId,
) -> sqlx::Result<(Option<String>, bool)> {
    sqlx::query_as("SELECT email, daily_summary FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
}

pub async fn set_summary(
    db: impl PgExecutor<'_>,
    id: UserId,
    email: Option<&str>,
    daily: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET email = $2, daily_summary = $3 WHERE id = $1")
        .bind(id)
        .bind(email)
        .bind(daily)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_active(db: impl PgExecutor<'_>, id: UserId, active: bool) -> sqlx::Result<()> {
    // Deactivation also revokes the user's API tokens for good, so that
    // reactivating the account later does not quietly bring them back.
    sqlx::query(
        "WITH revoked AS (
             UPDATE api_tokens SET revoked_at = now()
              WHERE user_id = $1 AND NOT $2 AND revoked_at IS NULL)
         UPDATE users SET active = $2,
                          session_epoch = session_epoch + CASE WHEN $2 THEN 0 ELSE 1 END
         WHERE id = $1",
    )
    .bind(id)
    .bind(active)
    .execute(db)
    .await
    .map(drop)
}

// ---- Administration (`/admin/users`) ----

/// A user as the admin list shows them.
#[derive(Debug, Clone, FromRow)]
pub struct Summary {
    #[sqlx(flatten)]
    pub user: User,
    pub created_at: time::OffsetDateTime,
    pub last_login_at: Option<time::OffsetDateTime>,
    /// Current ratings (one per candidate rated).
    pub ratings: i64,
    pub live_tokens: i64,
    /// May walk a project's disputed queue where it is kept to experts.
    pub expert: bool,
}

const SUMMARY: &str = "SELECT u.id, u.username, u.role, u.active, u.can_upload, u.must_change_password,
            u.session_epoch, u.single_key_shortcuts, u.key_map, u.created_at, u.last_login_at, u.expert,
            (SELECT count(*) FROM ratings r WHERE r.user_id = u.id) AS ratings,
            (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS live_tokens
     FROM users u";

pub async fn summaries(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Summary>> {
    sqlx::query_as(&format!(
        "{SUMMARY} ORDER BY u.active DESC, lower(u.username)"
    ))
    .fetch_all(db)
    .await
}

pub async fn summary(db: impl PgExecutor<'_>, id: UserId) -> sqlx::Result<Option<Summary>> {
    sqlx::query_as(&format!("{SUMMARY} WHERE u.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A user made by an administrator, with a temporary password they must
/// change at first login. None if the name is taken (case-insensitively).
pub async fn insert_temporary(
    db: impl PgExecutor<'_>,
    username: &Username,
    password_hash: &str,
    role: Role,
    can_upload: bool,
) -> sqlx::Result<Option<UserId>> {
    sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, can_upload, must_change_password)
         VALUES ($1, $2, $3, $4, true)
         ON CONFLICT ((lower(username))) DO NOTHING RETURNING id",
    )
    .bind(username.as_str())
    .bind(password_hash)
    .bind(role)
    .bind(can_upload)
    .fetch_optional(db)
    .await
}

/// An administrator's reset: a temporary password that must be changed at
/// the next login, and every session of the user ends.
pub async fn reset_password(
    db: impl PgExecutor<'_>,
    id: UserId,
    password_hash: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, must_change_password = true,
                          session_epoch = session_epoch + 1
         WHERE id = $1",
    )
    .bind(id)
    .bind(password_hash)
    .execute(db)
    .await
    .map(drop)
}

pub async fn set_role(db: impl PgExecutor<'_>, id: UserId, role: Role) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(id)
        .bind(role)
        .execute(db)
        .await
        .map(drop)
}

pub async fn set_can_upload(
    db: impl PgExecutor<'_>,
    id: UserId,
    allowed: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET can_upload = $2 WHERE id = $1")
        .bind(id)
        .bind(allowed)
        .execute(db)
        .await
        .map(drop)
}

pub async fn id_by_name(db: impl PgExecutor<'_>, username: &str) -> sqlx::Result<Option<UserId>> {
    // PostgreSQL text cannot hold NUL: such a name belongs to nobody.
    if username.contains('\0') {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT id FROM users WHERE lower(username) = lower($1)")
        .bind(username)
        .fetch_optional(db)
        .await
}

/// Whether the user is one of the experts a project may keep its disputed
/// candidates to.
pub async fn is_expert(db: impl PgExecutor<'_>, user: UserId) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT expert FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(db)
        .await
        .map(|e| e.unwrap_or(false))
}

pub async fn set_expert(db: impl PgExecutor<'_>, user: UserId, expert: bool) -> sqlx::Result<bool> {
    sqlx::query("UPDATE users SET expert = $2 WHERE id = $1 AND expert <> $2")
        .bind(user)
        .bind(expert)
        .execute(db)
        .await
        .map(|r| r.rows_affected() > 0)
}

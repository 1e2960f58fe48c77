//! API tokens: shown once, stored as a sha256, revocable, each allowed to
//! read, upload or both (`domain::token`).

use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::db::users::User;
use crate::domain::token::TokenScopes;
use crate::domain::TokenId;
use crate::domain::UserId;

#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    pub id: TokenId,
    pub name: String,
    pub prefix: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    #[sqlx(flatten)]
    pub scopes: TokenScopes,
}

/// The columns of a [`TokenRow`] of `api_tokens t`.
const ROW: &str =
    "t.id, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at, t.scope_read, t.scope_upload";

const PREFIX: &str = "vet_";

fn digest(token: &str) -> String {
    crate::media::hex(&Sha256::digest(token.as_bytes()))
}

/// Makes a token for the user; returns it (the only time it exists in the
/// clear) and its id.
pub async fn create(
    db: impl PgExecutor<'_>,
    user: UserId,
    name: &str,
    scopes: TokenScopes,
) -> sqlx::Result<(String, TokenId)> {
    let token = format!("{PREFIX}{}", crate::random_hex(32));
    let id = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scope_read, scope_upload)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user)
    .bind(name)
    .bind(digest(&token))
    .bind(&token[..PREFIX.len() + 8])
    .bind(scopes.read())
    .bind(scopes.upload())
    .fetch_one(db)
    .await?;
    Ok((token, id))
}

pub async fn list_for_user(db: impl PgExecutor<'_>, user: UserId) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as(&format!(
        "SELECT {ROW} FROM api_tokens t
         WHERE t.user_id = $1 ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC"
    ))
    .bind(user)
    .fetch_all(db)
    .await
}

/// Revokes one of the user's own tokens; false if there was no such live token.
pub async fn revoke(db: impl PgExecutor<'_>, user: UserId, id: TokenId) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(user)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The active user behind a live token, and what the token may do.
/// `last_used_at` is written at most once a minute, so a busy pipeline
/// does not turn every read into a write.
pub async fn authenticate(pool: &PgPool, token: &str) -> sqlx::Result<Option<(User, TokenScopes)>> {
    if !token.starts_with(PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let row = sqlx::query_as::<_, TokenUser>(
        "SELECT t.id AS token_id, t.last_used_at, t.scope_read, t.scope_upload,
                u.id, u.username, u.role, u.active, u.can_upload, u.must_change_password, u.session_epoch,
                u.single_key_shortcuts, u.key_map
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active",
    )
    .bind(digest(token))
    .fetch_optional(pool)
    .await?;
    let Some(TokenUser {
        token_id: id,
        last_used_at: last_used,
        scopes,
        user,
    }) = row
    else {
        return Ok(None);
    };
    let stale =
        last_used.is_none_or(|t| OffsetDateTime::now_utc() - t > time::Duration::minutes(1));
    if stale {
        sqlx::query("UPDATE api_tokens SET last_used_at = now() WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?;
    }
    Ok(Some((user, scopes)))
}

#[derive(FromRow)]
struct TokenUser {
    token_id: TokenId,
    last_used_at: Option<OffsetDateTime>,
    #[sqlx(flatten)]
    scopes: TokenScopes,
    #[sqlx(flatten)]
    user: User,
}

// ---- Administration (`/admin/tokens`) ----

/// A token with its owner, for the admin list.
#[derive(Debug, Clone, FromRow)]
pub struct OwnedToken {
    #[sqlx(flatten)]
    pub token: TokenRow,
    pub owner: String,
    pub owner_active: bool,
}

pub async fn list_all(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<OwnedToken>> {
    sqlx::query_as(&format!(
        "SELECT {ROW}, u.username AS owner, u.active AS owner_active
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         ORDER BY t.revoked_at IS NOT NULL, t.last_used_at DESC NULLS LAST, t.created_at DESC, t.id DESC"
    ))
    .fetch_all(db)
    .await
}

pub async fn owned_by_id(db: impl PgExecutor<'_>, id: TokenId) -> sqlx::Result<Option<OwnedToken>> {
    sqlx::query_as(&format!(
        "SELECT {ROW}, u.username AS owner, u.active AS owner_active
         FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Revokes any user's token; false if it was revoked already.
pub async fn revoke_any(db: impl PgExecutor<'_>, id: TokenId) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

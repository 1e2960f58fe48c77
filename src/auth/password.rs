//! argon2id hashing, always on the blocking pool: a hash takes tens of
//! milliseconds of CPU and must not stall the async workers.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use std::sync::OnceLock;

use crate::config::Secret;

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

pub async fn hash(password: Secret) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(password.expose())).await?
}

/// Checks `password` against `stored`, or against a dummy hash when there is
/// no such user, so the response time does not tell which usernames exist.
pub async fn verify(password: Secret, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = Argon2::default()
            .verify_password(password.expose().as_bytes(), hash.as_str())
            .is_ok();
        ok && known
    })
    .await
    .map_err(Into::into)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_blocking("not a real password, never matches").expect("hashing works"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_is_argon2id_and_verifies_only_the_right_password() {
        let h = hash(Secret::new("correct horse")).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify(Secret::new("correct horse"), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify(Secret::new("wrong horse"), Some(h)).await.unwrap());
        assert!(
            !verify(Secret::new("not a real password, never matches"), None)
                .await
                .unwrap()
        );
    }
}

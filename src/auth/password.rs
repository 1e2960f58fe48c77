//! argon2id hashing, always on the blocking pool: a hash takes tens of
//! milliseconds of CPU and must not stall the async workers.
//!
//! Each hash also takes argon2's 19 MiB of working memory, so hashes run on
//! [`AT_ONCE`] threads of their own, and the rest wait their turn. On the
//! blocking pool a burst of sign-ins (a team starting its shift, or someone
//! hammering the login form) took a gigabyte: every pool thread got its own
//! allocator arena, and each arena kept its 19 MiB. One thread keeps one.
//!
//! The hashing threads also run at a lower CPU priority: a flood of wrong
//! passwords otherwise keeps every core hashing, and reviewers' ratings,
//! which need a few milliseconds each, waited behind it (rate-and-next p99
//! 112 ms under a login flood in the soak bench). A sign-in on an idle
//! machine is as fast as before; under load it yields to the pages.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::Secret;

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// Hashes running at once. One: a hash streams through 19 MiB, and even at
/// the lowest priority a second hashing thread (on two cores) doubled the
/// reviewers' p99 under a login flood. One hash takes about 50 ms, so this
/// still signs in twenty people a second.
pub const AT_ONCE: usize = 1;

type Job = Box<dyn FnOnce() + Send>;

/// The queue of the hashing threads, started on first use.
fn hashers() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..AT_ONCE {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    crate::lower_thread_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => {
                                job();
                                give_back_memory();
                            }
                            Err(_) => return,
                        }
                    }
                })
                .expect("the OS starts a thread");
        }
        tx
    })
}

/// Returns argon2's freed working memory to the OS. glibc keeps a freed
/// block this size in the thread's arena for reuse, which would leave every
/// hashing thread holding 19 MiB between sign-ins.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only releases free memory; it has no
        // preconditions and is thread-safe.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Runs `f` on a hashing thread and waits for it without blocking the
/// async workers.
async fn on_hasher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    hashers()
        .send(job)
        .map_err(|_| anyhow::anyhow!("the password hashers have stopped"))?;
    Ok(rx.await?)
}

pub async fn hash(password: Secret) -> anyhow::Result<String> {
    on_hasher(move || hash_blocking(password.expose())).await?
}

/// Checks `password` against `stored`, or against a dummy hash when there is
/// no such user, so the response time does not tell which usernames exist.
pub async fn verify(password: Secret, stored: Option<String>) -> anyhow::Result<bool> {
    on_hasher(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = Argon2::default()
            .verify_password(password.expose().as_bytes(), hash.as_str())
            .is_ok();
        ok && known
    })
    .await
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

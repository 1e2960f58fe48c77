//! Putting received files into the media folder so that they and the rows
//! that refer to them are kept in step (the locking rule is in `media`):
//! publishing inside the request's transaction, and removing objects that
//! no row refers to any more.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use crate::db;
use crate::media::{parse_object_path, path_bucket, ContentKind, MediaStore, TempFile};

/// The files one request puts into `objects/`, and what becomes of them.
///
/// [`publish`](Publication::publish) runs inside the request's transaction,
/// before the commit. Then exactly one of [`committed`](Publication::committed)
/// or [`abandon`](Publication::abandon) follows; if neither does (the request
/// was cancelled), dropping it abandons in the background.
#[must_use = "call committed() or abandon()"]
pub struct Publication {
    media: MediaStore,
    pool: PgPool,
    /// Objects this request made (not those that were there already).
    created: Vec<String>,
    settled: bool,
}

impl Publication {
    /// Puts each temporary file into `objects/` (the same content already
    /// there is left as it is) and makes it durable. Holds the shared
    /// lock of each touched bucket in `tx` until it ends.
    pub async fn publish<'a>(
        &mut self,
        tx: &mut PgConnection,
        files: impl IntoIterator<Item = (&'a TempFile, ContentKind)>,
    ) -> anyhow::Result<()> {
        let jobs: Vec<(PathBuf, String)> = files
            .into_iter()
            .map(|(t, kind)| {
                (
                    t.path().to_path_buf(),
                    MediaStore::object_path(&t.sha256, kind),
                )
            })
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        let buckets: Vec<i32> = jobs.iter().filter_map(|(_, p)| path_bucket(p)).collect();
        db::files::lock_buckets_shared(tx, &buckets).await?;
        let (created, result) = self.media.publish(jobs).await;
        self.created.extend(created);
        result.map_err(|e| anyhow::Error::new(e).context("publishing media files"))
    }

    /// The transaction committed: the objects stay.
    pub fn committed(mut self) {
        self.settled = true;
    }

    /// The transaction did not commit (call this after it has ended, or
    /// its locks would make this wait): removes the objects this request
    /// made that no row refers to.
    pub async fn abandon(mut self) {
        self.settled = true;
        let created = std::mem::take(&mut self.created);
        remove_unreferenced(&self.media, &self.pool, &created).await;
    }

    /// Objects this request made.
    pub fn created(&self) -> &[String] {
        &self.created
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        if self.settled || self.created.is_empty() {
            return;
        }
        let (media, pool, created) = (
            self.media.clone(),
            self.pool.clone(),
            std::mem::take(&mut self.created),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                remove_unreferenced(&media, &pool, &created).await;
            });
        }
    }
}

impl Publication {
    /// A publication for one request: see [`Publication::publish`].
    pub fn new(media: &MediaStore, pool: &PgPool) -> Self {
        Publication {
            media: media.clone(),
            pool: pool.clone(),
            created: Vec::new(),
            settled: false,
        }
    }
}

/// Ends the transaction of a request whose files `publication` put into
/// `objects/`: commits when the writes went through, else rolls back and
/// withdraws the objects this request made (those no other row uses).
pub async fn settle<T, E: From<sqlx::Error>>(
    publication: Publication,
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    written: Result<T, E>,
) -> Result<T, E> {
    let result = match written {
        Ok(v) => tx.commit().await.map(|()| v).map_err(E::from),
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    };
    match result {
        Ok(v) => {
            publication.committed();
            Ok(v)
        }
        Err(e) => {
            // Also after a failed COMMIT, whose outcome is unknown: the
            // removal re-reads the references under the bucket locks.
            publication.abandon().await;
            Err(e)
        }
    }
}

/// Removes those of `paths` (relative object paths) that no row refers
/// to, under the exclusive lock of their buckets, and returns the ones
/// removed. When the locks cannot be had within a few seconds (a long
/// backup holds them), the objects are left for `vetter check`.
pub async fn remove_unreferenced(
    media: &MediaStore,
    pool: &PgPool,
    paths: &[String],
) -> Vec<String> {
    let paths: Vec<String> = paths
        .iter()
        .filter(|p| parse_object_path(p).is_some())
        .cloned()
        .collect();
    if paths.is_empty() {
        return Vec::new();
    }
    match try_remove_unreferenced(media, pool, &paths, Duration::from_secs(5)).await {
        Ok(removed) => removed,
        Err(e) => {
            tracing::warn!(error = %e, count = paths.len(),
                "unused media files left in place for `vetter check --repair`");
            Vec::new()
        }
    }
}

/// Like [`remove_unreferenced`], waiting up to `patience` for the locks
/// ([`BucketsBusy`] when they stayed taken) and saying what went wrong.
pub async fn try_remove_unreferenced(
    media: &MediaStore,
    pool: &PgPool,
    paths: &[String],
    patience: Duration,
) -> anyhow::Result<Vec<String>> {
    let buckets: Vec<i32> = paths.iter().filter_map(|p| path_bucket(p)).collect();
    let mut tx = exclusive(pool, &buckets, patience).await?;
    let unused = db::files::unreferenced(&mut tx, paths).await?;
    let mut removed = Vec::new();
    for p in unused {
        match media.remove(&p).await {
            Ok(true) => removed.push(p),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(path = %p, error = %e, "could not remove an unused media file")
            }
        }
    }
    // Only now may a publisher of the same content go on.
    tx.commit().await?;
    Ok(removed)
}

/// The media buckets' locks stayed taken for the whole wait.
#[derive(Debug, thiserror::Error)]
#[error("the media buckets stayed in use for {0:?} (a backup running?)")]
pub struct BucketsBusy(pub Duration);

/// A transaction holding the exclusive locks of `buckets`, polling for them
/// for up to `patience` rather than queueing behind the uploads that hold
/// them shared.
pub async fn exclusive(
    pool: &PgPool,
    buckets: &[i32],
    patience: Duration,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let deadline = std::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(20);
    loop {
        let mut tx = pool.begin().await?;
        if db::files::try_lock_buckets_exclusive(&mut tx, buckets).await? {
            return Ok(tx);
        }
        tx.rollback().await?;
        if std::time::Instant::now() + pause > deadline {
            return Err(BucketsBusy(patience).into());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

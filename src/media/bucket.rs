//! An S3-compatible bucket as the object store (AWS S3, Ceph RGW, MinIO,
//! Garage), through `object_store`.
//!
//! An object is verified before the row that names it may commit: the
//! store's ETag of a plain PUT is the MD5 of the bytes it kept, and of a
//! multipart upload the MD5 of the parts' MD5s with the part count, both of
//! which we compute from the temporary file as we send it. A mismatch
//! deletes the object and fails the publication.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, PutMode, PutMultipartOptions, PutOptions,
    PutPayload, RetryConfig,
};
use tokio::io::AsyncReadExt;

use crate::config::BucketSettings;

/// Files up to this size go in one PUT, read whole into memory; larger
/// ones in parts of this size, so an upload holds at most two parts.
const PART: usize = 16 << 20;
/// Objects of one request sent at once.
const PUBLISH_CONCURRENCY: usize = 4;

#[derive(Debug)]
pub struct Bucket {
    store: AmazonS3,
    settings: BucketSettings,
}

fn io(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string())
        }
        other => std::io::Error::other(crate::media::StoreFailed(other.to_string())),
    }
}

/// The object's type, so that whoever reads it straight from the store
/// (nginx, Firefly) is told what it is.
fn attributes(rel: &str) -> Attributes {
    let mut a = Attributes::new();
    if let Some((_, kind)) = crate::media::parse_object_path(rel) {
        a.insert(Attribute::ContentType, kind.mime().into());
    }
    a
}

impl Bucket {
    pub fn open(settings: &BucketSettings) -> anyhow::Result<Arc<Self>> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.expose())
            .with_virtual_hosted_style_request(!settings.path_style)
            // The body is not hashed for the signature: the ETag check below
            // covers its integrity, and hashing every byte twice costs CPU.
            .with_unsigned_payload(true)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(true)
                    .with_timeout(settings.timeout)
                    .with_connect_timeout(Duration::from_secs(5)),
            )
            // A few quick retries of a failed request; a store that is down
            // fails the request within the time-out rather than hanging it.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: settings.timeout,
                ..RetryConfig::default()
            });
        if let Some(e) = &settings.endpoint {
            b = b.with_endpoint(e);
        }
        let store = b.build()?;
        Ok(Arc::new(Self {
            store,
            settings: settings.clone(),
        }))
    }

    pub fn settings(&self) -> &BucketSettings {
        &self.settings
    }

    fn key(&self, rel: &str) -> Key {
        if self.settings.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.settings.prefix))
        }
    }

    /// The object path (`objects/ab/….ext`) of a key, if it is under our prefix.
    fn rel<'a>(&self, key: &'a str) -> Option<&'a str> {
        if self.settings.prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(self.settings.prefix.as_str())?
                .strip_prefix('/')
        }
    }

    pub async fn size(&self, rel: &str) -> std::io::Result<Option<u64>> {
        match self.store.head(&self.key(rel)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Uploads each file not yet in the bucket, verifying each, several at
    /// a time (each costs the store's round trip, not our CPU). Returns the
    /// objects made, also on an error.
    pub async fn publish(
        &self,
        jobs: Vec<(PathBuf, String)>,
    ) -> (Vec<String>, std::io::Result<()>) {
        let mut created = Vec::new();
        let mut first_error = None;
        let mut results = futures_util::stream::iter(jobs)
            .map(|(src, rel)| async move {
                let (made, result) = self.publish_one(&src, &rel).await;
                (rel, made, result)
            })
            .buffer_unordered(PUBLISH_CONCURRENCY);
        while let Some((rel, made, result)) = results.next().await {
            // Also when it failed part way: it may have left an object
            // behind, and abandoning the publication removes it.
            if made {
                created.push(rel);
            }
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        (created, first_error.map_or(Ok(()), Err))
    }

    /// Whether this wrote (or may have written) the object, and how it went.
    async fn publish_one(&self, src: &Path, rel: &str) -> (bool, std::io::Result<()>) {
        // One trip to the blocking pool: the size, and a small file's bytes.
        let path = src.to_path_buf();
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, Option<Bytes>)> {
            let size = std::fs::metadata(&path)?.len();
            if size > PART as u64 {
                return Ok((size, None));
            }
            Ok((size, Some(Bytes::from(std::fs::read(&path)?))))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        let (size, bytes) = match read {
            Ok((size, Some(bytes))) => (size, bytes),
            Ok((size, None)) => {
                match self.size(rel).await {
                    // Content addressing: the same name holds the same bytes.
                    Ok(Some(there)) if there == size => return (false, Ok(())),
                    Ok(_) => {}
                    Err(e) => return (false, Err(e)),
                }
                return (true, self.upload_parts(src, rel).await);
            }
            Err(e) => return (false, Err(e)),
        };
        // One round trip: the store refuses to overwrite, and only then do
        // we look at what is there.
        match self.put_small(rel, bytes.clone(), PutMode::Create).await {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            other => return (true, other),
        }
        match self.size(rel).await {
            Ok(Some(there)) if there == size => (false, Ok(())),
            // Damaged (another size): replaced.
            Ok(_) => (true, self.put_small(rel, bytes, PutMode::Overwrite).await),
            Err(e) => (false, Err(e)),
        }
    }

    async fn put_small(&self, rel: &str, bytes: Bytes, mode: PutMode) -> std::io::Result<()> {
        let key = self.key(rel);
        let expected = crate::media::hex(&Md5::digest(&bytes));
        let opts = PutOptions {
            mode,
            attributes: attributes(rel),
            ..PutOptions::default()
        };
        let put = match self
            .store
            .put_opts(&key, PutPayload::from(bytes), opts)
            .await
        {
            Ok(put) => put,
            Err(object_store::Error::AlreadyExists { path, .. }) => {
                return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, path))
            }
            Err(e) => return Err(io(e)),
        };
        self.verify(&key, rel, put.e_tag, &expected).await
    }

    async fn upload_parts(&self, src: &Path, rel: &str) -> std::io::Result<()> {
        let key = self.key(rel);
        let (etag, expected) = self.send_parts(src, &key, attributes(rel)).await?;
        // Ceph's RGW (16) leaves the ETag out of its answer to the upload's
        // completion; the object's own then tells.
        let etag = match etag.filter(|e| !e.trim_matches('"').is_empty()) {
            Some(e) => Some(e),
            None => self.store.head(&key).await.map_err(io)?.e_tag,
        };
        self.verify(&key, rel, etag, &expected).await
    }

    /// Deletes the object unless the store's ETag is the one expected.
    async fn verify(
        &self,
        key: &Key,
        rel: &str,
        etag: Option<String>,
        expected: &str,
    ) -> std::io::Result<()> {
        let got = etag.unwrap_or_default();
        if got.trim_matches('"') != expected {
            let _ = self.store.delete(key).await;
            return Err(std::io::Error::other(crate::media::StoreFailed(format!(
                "it kept other bytes than were sent for {rel} (ETag {got}, expected {expected})"
            ))));
        }
        Ok(())
    }

    /// A multipart upload in parts of `PART` bytes, two in flight at most;
    /// returns the store's ETag and the one the parts imply.
    async fn send_parts(
        &self,
        src: &Path,
        key: &Key,
        attributes: Attributes,
    ) -> std::io::Result<(Option<String>, String)> {
        let mut file = tokio::fs::File::open(src).await?;
        let opts = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let mut upload = self.store.put_multipart_opts(key, opts).await.map_err(io)?;
        let mut digests = Vec::new();
        let mut pending = None;
        let result: std::io::Result<()> = async {
            loop {
                let mut buf = vec![0u8; PART];
                let mut filled = 0;
                while filled < PART {
                    let n = file.read(&mut buf[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                buf.truncate(filled);
                digests.extend_from_slice(&Md5::digest(&buf));
                let part = upload.put_part(PutPayload::from(buf));
                if let Some(previous) = pending.replace(part) {
                    previous.await.map_err(io)?;
                }
                if filled < PART {
                    break;
                }
            }
            if let Some(last) = pending.take() {
                last.await.map_err(io)?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = upload.abort().await;
            return Err(e);
        }
        let done = upload.complete().await.map_err(io)?;
        let expected = format!(
            "{}-{}",
            crate::media::hex(&Md5::digest(&digests)),
            digests.len() / 16
        );
        Ok((done.e_tag, expected))
    }

    pub async fn remove(&self, rel: &str) -> std::io::Result<bool> {
        // S3 answers a DELETE of a missing key with success, so ask first
        // to report whether there was one.
        if self.size(rel).await?.is_none() {
            return Ok(false);
        }
        self.store.delete(&self.key(rel)).await.map_err(io)?;
        Ok(true)
    }

    pub async fn read(&self, rel: &str) -> std::io::Result<(u64, super::ObjectStream)> {
        let got = self.store.get(&self.key(rel)).await.map_err(io)?;
        let size = got.meta.size;
        Ok((size, got.into_stream().map_err(io).boxed()))
    }

    /// Every key under the prefix's `objects/`, as object paths.
    pub async fn list(&self) -> std::io::Result<Vec<super::Listed>> {
        let under = self.key("objects");
        let mut listing = self.store.list(Some(&under));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(io)?;
            if let Some(rel) = self.rel(meta.location.as_ref()) {
                out.push(super::Listed {
                    path: rel.to_string(),
                    size: meta.size,
                    modified: meta.last_modified.into(),
                });
            }
        }
        Ok(out)
    }

    /// A URL that reads the object without credentials until it expires.
    pub async fn presigned(&self, rel: &str, ttl: Duration) -> std::io::Result<String> {
        let url = self
            .store
            .signed_url(http::Method::GET, &self.key(rel), ttl)
            .await
            .map_err(io)?;
        Ok(url.to_string())
    }
}

//! Media: uploaded and rendered files, kept in the media folder or in an
//! S3-compatible bucket (`folder`, `bucket`).
//!
//! Content is stored once under a name made from its sha256
//! (`objects/ab/ab12….fits`), so no name from a client ever reaches the file
//! system, the bucket or cfitsio.
//!
//! Crash safety comes from the order of writes: a request streams into
//! `tmp/` of the media folder (fsynced), then, inside its database
//! transaction and before the commit, publishes each file into `objects/`
//! (a hard link and fsynced folders, or an upload whose checksum the store
//! confirms: `ingest::publish::Publication`). A crash at any point can
//! therefore leave an object no row refers to (an orphan, which `vetter
//! check --repair` removes), but never a committed row whose object is
//! missing.
//!
//! Objects are shared between rows, so deleting one is only safe when no
//! row, committed or about to be, refers to it. That is settled with
//! PostgreSQL advisory locks, one per `objects/ab` bucket: whoever publishes
//! holds the bucket's lock *shared* from before the link until its commit,
//! and whoever deletes holds it *exclusively* while it re-reads the
//! references and unlinks. So a delete never lands between another
//! request's "the object is already there" and that request's commit. The
//! locks live in PostgreSQL, so they hold across app hosts too.

mod bucket;
mod folder;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::config::MediaLocation;
use crate::fits::FileKind;

pub use folder::sync_dir;

/// Where objects are published and read; cheap to clone.
#[derive(Debug, Clone)]
pub struct MediaStore {
    /// The media folder: `tmp/` for uploads in flight, and with the folder
    /// backend `objects/` too (a hard link needs one file system).
    root: PathBuf,
    place: Place,
    /// With a bucket, the emptied scratch files of finished uploads, for
    /// the next ones to write into.
    scratch: Option<Arc<Scratch>>,
}

/// Scratch files kept for reuse. A bucket's upload writes every file into
/// `tmp/`, sends it and removes it, thousands a minute; on ext4 without a
/// journal each new file then searches past every file removed in the last
/// half minute (`recently_deleted`), which took 40 % of the server's CPU in
/// the upload bench. Writing into an emptied file allocates no inode. A kept
/// file is empty and named `kept-…`, so it is never taken for an upload's.
#[derive(Debug)]
struct Scratch {
    dir: PathBuf,
    kept: std::sync::Mutex<Vec<(PathBuf, std::time::Instant)>>,
}

/// Emptied scratch files kept at most (each an inode, no data).
const SCRATCH_KEPT: usize = 4096;
/// A scratch file idle longer is not reused but removed: well before the
/// hourly clean-up (perhaps another host's, sharing `tmp/`) could take it
/// for an unfinished upload's and remove it while it is written again.
const SCRATCH_IDLE: Duration = Duration::from_secs(600);

/// The name of a kept scratch file.
const KEPT_PREFIX: &str = "kept-";

/// Whether `path` is an emptied scratch file kept for reuse, not anything
/// an upload left behind.
pub fn is_kept_scratch(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(KEPT_PREFIX))
        && std::fs::metadata(path).is_ok_and(|m| m.len() == 0)
}

// The list is locked only to push or pop: the file system calls run
// outside it, so that uploads finishing together do not queue on them.
impl Scratch {
    fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            kept: Default::default(),
        }
    }

    /// Empties a finished upload's file and keeps it, if there is room;
    /// `false` leaves it to the caller to remove.
    fn keep(&self, path: &Path) -> bool {
        if self.kept.lock().map_or(true, |k| k.len() >= SCRATCH_KEPT) {
            return false;
        }
        let name = self
            .dir
            .join(format!("{KEPT_PREFIX}{}", crate::random_hex(16)));
        let emptied = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .is_ok();
        if !emptied || std::fs::rename(path, &name).is_err() {
            return false;
        }
        match self.kept.lock() {
            Ok(mut kept) => kept.push((name, std::time::Instant::now())),
            Err(_) => {
                let _ = std::fs::remove_file(&name);
            }
        }
        true
    }

    /// Moves the most recently kept file to `to`, if one is fresh; all of
    /// them are removed once the newest is not.
    fn take(&self, to: &Path) -> bool {
        loop {
            let Some((path, at)) = self.kept.lock().ok().and_then(|mut k| k.pop()) else {
                return false;
            };
            if at.elapsed() >= SCRATCH_IDLE {
                let _ = std::fs::remove_file(path);
                self.remove_all();
                return false;
            }
            if std::fs::rename(&path, to).is_ok() {
                return true;
            }
        }
    }

    fn remove_all(&self) {
        let all = self
            .kept
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default();
        for (p, _) in all {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[derive(Debug, Clone)]
enum Place {
    Folder(folder::Folder),
    Bucket(Arc<bucket::Bucket>),
}

/// The object store failed or did not answer (carried inside an
/// `io::Error`, so that the web layer can say so rather than "a bug").
#[derive(Debug, thiserror::Error)]
#[error("the media store failed: {0}")]
pub struct StoreFailed(pub String);

impl StoreFailed {
    /// Whether `e` is, or was caused by, such a failure.
    pub fn in_chain(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            c.is::<StoreFailed>()
                || c.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .is_some_and(|inner| inner.is::<StoreFailed>())
        })
    }
}

/// One stored object, as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Relative to the store: `objects/ab/….ext` (or something else found
    /// under `objects/`, which is not vetter's).
    pub path: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// The bytes of an object, streamed.
pub type ObjectStream = BoxStream<'static, std::io::Result<Bytes>>;

/// An object as a file cfitsio can open: the object itself in the folder,
/// or a temporary copy of it (removed when this is dropped).
pub struct LocalCopy {
    path: PathBuf,
    _temp: Option<TempFile>,
}

impl LocalCopy {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What a stored file is, judged from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Fits,
    Png,
    Gif,
    Csv,
}

impl ContentKind {
    pub fn mime(self) -> &'static str {
        match self {
            ContentKind::Fits => "application/fits",
            ContentKind::Png => "image/png",
            ContentKind::Gif => "image/gif",
            ContentKind::Csv => "text/csv",
        }
    }

    /// What the bytes are, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ContentKind::Fits => "FITS",
            ContentKind::Png => "a PNG image",
            ContentKind::Gif => "a GIF image",
            ContentKind::Csv => "CSV text",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ContentKind::Fits => "fits",
            ContentKind::Png => "png",
            ContentKind::Gif => "gif",
            ContentKind::Csv => "csv",
        }
    }

    pub fn from_mime(m: &str) -> Option<Self> {
        match m {
            "application/fits" => Some(ContentKind::Fits),
            "image/png" => Some(ContentKind::Png),
            "image/gif" => Some(ContentKind::Gif),
            "text/csv" => Some(ContentKind::Csv),
            _ => None,
        }
    }
}

/// A file written into `tmp/`, removed again when dropped (a published one
/// lives on as its hard link in `objects/`, or as its copy in the bucket).
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    /// Where the file goes, emptied, when it is dropped (never a folder's:
    /// its temporary file is the published object's other name).
    reuse: Option<Arc<Scratch>>,
    pub size: u64,
    pub sha256: String,
    /// The first bytes, for telling the type.
    pub head: Vec<u8>,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.reuse.as_ref().is_some_and(|s| s.keep(&self.path)) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl MediaStore {
    /// Objects under `root/objects`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            place: Place::Folder(folder::Folder { root: root.clone() }),
            root,
            scratch: None,
        }
    }

    /// Objects where `location` says, uploads in flight under `root/tmp`.
    pub fn open(root: impl Into<PathBuf>, location: &MediaLocation) -> anyhow::Result<Self> {
        let root = root.into();
        Ok(match location {
            MediaLocation::Folder => Self::new(root),
            MediaLocation::Bucket(settings) => Self {
                place: Place::Bucket(bucket::Bucket::open(settings)?),
                scratch: Some(Arc::new(Scratch::new(root.join("tmp")))),
                root,
            },
        })
    }

    /// The media folder (with a bucket, only for uploads in flight).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder that holds `objects/`, when objects are files.
    pub fn folder(&self) -> Option<&Path> {
        match &self.place {
            Place::Folder(f) => Some(&f.root),
            Place::Bucket(_) => None,
        }
    }

    /// How many objects to read or write at once in bulk work (check,
    /// backup, restore): `disk` for the folder; more for a bucket, whose
    /// requests mostly wait on the network.
    pub fn parallel_transfers(&self, disk: usize) -> usize {
        match &self.place {
            Place::Folder(_) => disk,
            Place::Bucket(_) => 8,
        }
    }

    /// Where objects are, for people: a folder or `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Folder(f) => f.root.display().to_string(),
            Place::Bucket(b) => {
                let s = b.settings();
                match &s.endpoint {
                    Some(e) => format!("{} at {e}", s.url()),
                    None => s.url(),
                }
            }
        }
    }

    /// Whether the store answers: a folder that can be listed, a bucket
    /// that answers a HEAD.
    pub async fn probe(&self) -> std::io::Result<()> {
        match &self.place {
            Place::Folder(f) => tokio::fs::metadata(&f.root).await.map(drop),
            // Not the store's full time-out: a page waits on this.
            Place::Bucket(b) => {
                match tokio::time::timeout(Duration::from_secs(3), b.size("objects/probe")).await {
                    Ok(answer) => answer.map(drop),
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer within 3 s",
                    )),
                }
            }
        }
    }

    /// Puts each temporary file at its object path (content already there
    /// is left as it is) and makes it durable. Returns the objects this
    /// made, also on an error, so that they can be withdrawn.
    pub async fn publish(
        &self,
        jobs: Vec<(PathBuf, String)>,
    ) -> (Vec<String>, std::io::Result<()>) {
        match &self.place {
            Place::Folder(f) => f.publish(jobs).await,
            Place::Bucket(b) => b.publish(jobs).await,
        }
    }

    /// Removes an object; `false` if there was none.
    pub async fn remove(&self, rel: &str) -> std::io::Result<bool> {
        match &self.place {
            Place::Folder(f) => f.remove(rel).await,
            Place::Bucket(b) => b.remove(rel).await,
        }
    }

    /// The size of an object, `None` if there is none.
    pub async fn size(&self, rel: &str) -> std::io::Result<Option<u64>> {
        match &self.place {
            Place::Folder(f) => f.size(rel).await,
            Place::Bucket(b) => b.size(rel).await,
        }
    }

    /// An object's bytes, streamed (`NotFound` if there is none).
    pub async fn read(&self, rel: &str) -> std::io::Result<(u64, ObjectStream)> {
        match &self.place {
            Place::Folder(f) => f.read(rel).await,
            Place::Bucket(b) => b.read(rel).await,
        }
    }

    /// Everything stored under `objects/` with its size.
    pub async fn list(&self) -> std::io::Result<Vec<Listed>> {
        match &self.place {
            Place::Folder(f) => f.list().await,
            Place::Bucket(b) => b.list().await,
        }
    }

    /// Size and sha256 of a stored object, read through.
    pub async fn hash(&self, rel: &str) -> std::io::Result<(u64, String)> {
        use futures_util::TryStreamExt;
        let (_, mut stream) = self.read(rel).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((size, hex(&hasher.finalize())))
    }

    /// A file that cfitsio can open for the object.
    pub async fn local_copy(&self, rel: &str) -> std::io::Result<LocalCopy> {
        match &self.place {
            Place::Folder(f) => Ok(LocalCopy {
                path: f.path(rel),
                _temp: None,
            }),
            Place::Bucket(b) => {
                let (_, stream) = b.read(rel).await?;
                let reader = tokio_util::io::StreamReader::new(stream);
                let temp = self
                    .write_temp(reader, u64::MAX)
                    .await
                    .map_err(|e| match e {
                        WriteError::Io(e) => e,
                        other => std::io::Error::other(other.to_string()),
                    })?;
                Ok(LocalCopy {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }

    /// What to put in `X-Accel-Redirect` for nginx to send an object: a
    /// path under `prefix` that nginx maps to the folder, or under
    /// `prefix/s3` a presigned request nginx proxies to the bucket (the
    /// link never reaches the browser, and the session was checked first).
    pub async fn accel_target(&self, prefix: &str, rel: &str) -> std::io::Result<String> {
        match &self.place {
            Place::Folder(_) => Ok(format!("{prefix}/{rel}")),
            Place::Bucket(b) => {
                let url = b.presigned(rel, Duration::from_secs(60)).await?;
                Ok(format!("{prefix}/s3{}", path_and_query(&url)))
            }
        }
    }

    /// A link another service (Firefly) can read the object from without
    /// credentials, valid for the bucket's presign time; `None` for the
    /// folder, which such services mount instead.
    pub async fn presigned(&self, rel: &str) -> std::io::Result<Option<String>> {
        match &self.place {
            Place::Folder(_) => Ok(None),
            Place::Bucket(b) => b.presigned(rel, b.settings().presign_ttl).await.map(Some),
        }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Removes files in `tmp/` last changed more than `age` ago: uploads
    /// that a killed process never finished. Younger ones may belong to an
    /// upload in flight, here or on another app host sharing the folder.
    pub fn remove_stale_temp(&self, age: std::time::Duration) -> std::io::Result<usize> {
        // Our own emptied scratch files are not unfinished uploads.
        if let Some(scratch) = &self.scratch {
            scratch.remove_all();
        }
        let entries = match std::fs::read_dir(self.tmp_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            let stale = meta.modified()?.elapsed().is_ok_and(|since| since > age);
            if meta.is_file() && stale {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The path, relative to the media root, where content with this
    /// checksum and kind lives.
    pub fn object_path(sha256: &str, kind: ContentKind) -> String {
        format!("objects/{}/{sha256}.{}", &sha256[..2], kind.extension())
    }

    /// Streams `reader` into a new temporary file, hashing as it goes and
    /// stopping with `TooLarge` past `limit` bytes.
    pub async fn write_temp(
        &self,
        mut reader: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<TempFile, WriteError> {
        let dir = self.tmp_dir();
        let path = dir.join(format!("{}.part", crate::random_hex(16)));
        if !self.scratch.as_ref().is_some_and(|s| s.take(&path)) {
            tokio::fs::create_dir_all(&dir).await?;
        }
        // Owned from here, so that an error below still empties or removes it.
        let mut temp = TempFile {
            path,
            reuse: self.scratch.clone(),
            size: 0,
            sha256: String::new(),
            head: Vec::new(),
        };
        let mut out = tokio::fs::File::create(&temp.path).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            temp.size += n as u64;
            if temp.size > limit {
                return Err(WriteError::TooLarge { limit });
            }
            if temp.head.len() < 64 {
                let take = (64 - temp.head.len()).min(n);
                temp.head.extend_from_slice(&buf[..take]);
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).await?;
        }
        out.flush().await?;
        // A folder publishes this very file (a hard link), so it must be
        // durable; a bucket only reads it once to send it.
        if self.folder().is_some() {
            out.sync_all().await?;
        }
        temp.sha256 = hex(&hasher.finalize());
        Ok(temp)
    }

    pub async fn write_temp_bytes(&self, bytes: &[u8]) -> Result<TempFile, WriteError> {
        self.write_temp(bytes, u64::MAX).await
    }
}

/// The path and query of a URL, without its scheme and host.
fn path_and_query(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..].find('/').map_or("/", |i| &url[after + i..])
}

/// The checksum and kind an object path names, if it is one
/// (`objects/ab/ab….ext`, lowercase hex, a known extension). Anything else,
/// including `..` or absolute paths, is `None`.
pub fn parse_object_path(rel: &str) -> Option<(&str, ContentKind)> {
    let rest = rel.strip_prefix("objects/")?;
    let (dir, file) = rest.split_once('/')?;
    let (sha, ext) = file.split_once('.')?;
    let kind = [
        ContentKind::Fits,
        ContentKind::Png,
        ContentKind::Gif,
        ContentKind::Csv,
    ]
    .into_iter()
    .find(|k| k.extension() == ext)?;
    let hex_ok = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex_ok && dir.len() == 2 && sha.starts_with(dir)).then_some((sha, kind))
}

/// The advisory-lock bucket of a checksum: its first byte, as the
/// `objects/ab` folder.
pub fn bucket(sha256: &str) -> Option<i32> {
    sha256
        .get(..2)
        .and_then(|b| i32::from_str_radix(b, 16).ok())
}

pub(crate) fn path_bucket(rel: &str) -> Option<i32> {
    parse_object_path(rel).and_then(|(sha, _)| bucket(sha))
}

/// Size and sha256 of a file; with `copy_to`, also writes a durable copy
/// there (through a `.part` name, so a crash leaves no half file under the
/// final name).
pub fn hash_file(path: &Path, copy_to: Option<&Path>) -> std::io::Result<(u64, String)> {
    use std::io::{Read, Write};
    let mut input = std::fs::File::open(path)?;
    let mut out = match copy_to {
        Some(dest) => {
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let part = dest.with_extension(format!("{}.part", crate::random_hex(8)));
            Some((std::fs::File::create(&part)?, part, dest))
        }
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
        if let Some((f, _, _)) = out.as_mut() {
            f.write_all(&buf[..n])?;
        }
    }
    if let Some((f, part, dest)) = out {
        f.sync_all()?;
        std::fs::rename(&part, dest)?;
    }
    Ok((size, hex(&hasher.finalize())))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The kind of an uploaded file: by its first bytes, except CSV, which has
/// no signature and is taken when the sender says `text/csv` and the bytes
/// are text.
pub fn classify(head: &[u8], declared: Option<&str>) -> Option<ContentKind> {
    match crate::fits::sniff(head) {
        Some(FileKind::Fits) => Some(ContentKind::Fits),
        Some(FileKind::Png) => Some(ContentKind::Png),
        Some(FileKind::Gif) => Some(ContentKind::Gif),
        None if declared.is_some_and(|d| d.starts_with("text/csv"))
            && std::str::from_utf8(head).is_ok()
            && !head.contains(&0) =>
        {
            Some(ContentKind::Csv)
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stale_temporary_files_are_removed_and_fresh_ones_kept() {
        let root = std::env::temp_dir().join(format!("vetter-stale-{}", std::process::id()));
        let s = super::MediaStore::new(&root);
        std::fs::create_dir_all(s.tmp_dir()).unwrap();
        let old = s.tmp_dir().join("old.part");
        let fresh = s.tmp_dir().join("fresh.part");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&fresh, b"y").unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let n = s
            .remove_stale_temp(std::time::Duration::from_secs(3600))
            .unwrap();
        assert_eq!(n, 1);
        assert!(!old.exists() && fresh.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    use super::*;

    fn store() -> MediaStore {
        let dir = std::env::temp_dir().join(format!("vetter-media-{}", crate::random_hex(6)));
        MediaStore::new(dir)
    }

    #[tokio::test]
    async fn a_dropped_temp_file_is_removed_and_a_linked_one_stays_in_objects() {
        let s = store();
        let t = s.write_temp_bytes(b"hello").await.unwrap();
        let p = t.path().to_path_buf();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());

        let t = s.write_temp_bytes(b"hello").await.unwrap();
        assert_eq!(t.sha256, hex(&Sha256::digest(b"hello")));
        let rel = MediaStore::object_path(&t.sha256, ContentKind::Csv);
        let jobs = vec![(t.path().to_path_buf(), rel.clone())];
        let (created, r) = folder::link_all(s.root(), &jobs);
        r.unwrap();
        assert_eq!(created, vec![rel.clone()]);
        // The same content again is not "made" a second time.
        let (created, r) = folder::link_all(s.root(), &jobs);
        r.unwrap();
        assert!(created.is_empty());
        drop(t);
        assert_eq!(std::fs::read(s.root().join(&rel)).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(s.root());
    }

    #[test]
    fn only_object_paths_parse() {
        let sha = hex(&Sha256::digest(b"x"));
        let good = format!("objects/{}/{sha}.png", &sha[..2]);
        assert_eq!(
            parse_object_path(&good),
            Some((sha.as_str(), ContentKind::Png))
        );
        for bad in [
            format!("objects/00/{sha}.png"),
            format!("objects/{}/{sha}.exe", &sha[..2]),
            format!("objects/{}/../{sha}.png", &sha[..2]),
            format!("/objects/{}/{sha}.png", &sha[..2]),
            format!("objects/{}/{}.png", &sha[..2], sha.to_uppercase()),
            "objects/../../etc/passwd".to_string(),
            "tmp/abc.part".to_string(),
        ] {
            assert_eq!(parse_object_path(&bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn writing_past_the_limit_fails_and_leaves_nothing() {
        let s = store();
        let err = s.write_temp(&[0u8; 100][..], 10).await.unwrap_err();
        assert!(matches!(err, WriteError::TooLarge { limit: 10 }));
        assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(s.root());
    }

    #[test]
    fn csv_needs_the_declared_type_and_text() {
        assert_eq!(
            classify(b"a,b\n1,2\n", Some("text/csv")),
            Some(ContentKind::Csv)
        );
        assert_eq!(classify(b"a,b\n1,2\n", None), None);
        assert_eq!(classify(b"a\0b", Some("text/csv")), None);
    }
}

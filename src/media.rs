//! The media folder: uploaded and rendered files.
//!
//! Content is stored once under a name made from its sha256
//! (`objects/ab/ab12….fits`), so no name from a client ever reaches the file
//! system or cfitsio.
//!
//! Crash safety comes from the order of writes: a request streams into
//! `tmp/` (fsynced), then, inside its database transaction and before the
//! commit, links each file into `objects/` and fsyncs the directories
//! (`ingest::publish::Publication`). A crash at any point can therefore leave an object no
//! row refers to (an orphan, which `vetter check --repair` removes), but
//! never a committed row whose object is missing.
//!
//! Objects are shared between rows, so deleting one is only safe when no
//! row, committed or about to be, refers to it. That is settled with
//! PostgreSQL advisory locks, one per `objects/ab` bucket: whoever publishes
//! holds the bucket's lock *shared* from before the link until its commit,
//! and whoever deletes holds it *exclusively* while it re-reads the
//! references and unlinks. So a delete never lands between another
//! request's "the object is already there" and that request's commit.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::fits::FileKind;

#[derive(Debug, Clone)]
pub struct MediaStore {
    pub(crate) root: PathBuf,
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
/// lives on as its hard link in `objects/`).
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
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
        let _ = std::fs::remove_file(&self.path);
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
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Removes files in `tmp/` last changed more than `age` ago: uploads
    /// that a killed process never finished. Younger ones may belong to an
    /// upload in flight, here or on another app host sharing the folder.
    pub fn remove_stale_temp(&self, age: std::time::Duration) -> std::io::Result<usize> {
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

    pub fn absolute(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Streams `reader` into a new temporary file, hashing as it goes and
    /// stopping with `TooLarge` past `limit` bytes.
    pub async fn write_temp(
        &self,
        mut reader: impl AsyncRead + Unpin,
        limit: u64,
    ) -> Result<TempFile, WriteError> {
        let dir = self.tmp_dir();
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("{}.part", crate::random_hex(16)));
        let mut out = tokio::fs::File::create(&path).await?;
        let mut temp = TempFile {
            path,
            size: 0,
            sha256: String::new(),
            head: Vec::new(),
        };
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
        out.sync_all().await?;
        temp.sha256 = hex(&hasher.finalize());
        Ok(temp)
    }

    pub async fn write_temp_bytes(&self, bytes: &[u8]) -> Result<TempFile, WriteError> {
        self.write_temp(bytes, u64::MAX).await
    }
}

/// Links (or, across file systems, copies) each file into place and fsyncs
/// the directories touched. Returns the objects made, also on an error.
pub(crate) fn link_all(
    root: &Path,
    jobs: &[(PathBuf, String)],
) -> (Vec<String>, std::io::Result<()>) {
    let mut created = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    let result = (|| {
        for (src, rel) in jobs {
            let dest = root.join(rel);
            let parent = dest.parent().expect("object paths have a folder");
            if !parent.exists() {
                std::fs::create_dir_all(parent)?;
                dirs.insert(root.join("objects"));
                dirs.insert(root.to_path_buf());
            }
            if link_no_clobber(src, &dest)? {
                created.push(rel.clone());
            }
            // Also when the object was there already: it may be another
            // request's link that is not yet durable.
            dirs.insert(parent.to_path_buf());
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        Ok(())
    })();
    (created, result)
}

/// Puts `src` at `dest` unless something is there. `true` if it did.
fn link_no_clobber(src: &Path, dest: &Path) -> std::io::Result<bool> {
    match std::fs::hard_link(src, dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => {
            // No hard links here (another file system, or one without
            // them): copy beside the target, make it durable, then rename.
            if dest.exists() {
                return Ok(false);
            }
            let part = dest.with_extension(format!("{}.part", crate::random_hex(8)));
            std::fs::copy(src, &part)?;
            std::fs::File::open(&part)?.sync_all()?;
            std::fs::rename(&part, dest)?;
            Ok(true)
        }
    }
}

/// Makes a directory's entries durable (on Unix an fsync of the directory).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
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
        let (created, r) = link_all(s.root(), &jobs);
        r.unwrap();
        assert_eq!(created, vec![rel.clone()]);
        // The same content again is not "made" a second time.
        let (created, r) = link_all(s.root(), &jobs);
        r.unwrap();
        assert!(created.is_empty());
        drop(t);
        assert_eq!(std::fs::read(s.absolute(&rel)).unwrap(), b"hello");
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

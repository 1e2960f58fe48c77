//! The media folder: uploaded and rendered files.
//!
//! Content is stored once under a name made from its sha256
//! (`objects/ab/ab12….fits`), so no name from a client ever reaches the file
//! system or cfitsio. A request first writes into `tmp/`; only after its
//! database transaction commits are the files moved into `objects/`. A failed
//! request deletes its temporary files (on drop), so it leaves the folder as
//! it was.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::fits::FileKind;

#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
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

/// A file written into `tmp/`, removed again when dropped unless it was
/// moved into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The first bytes, for telling the type.
    pub head: Vec<u8>,
    kept: bool,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
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
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
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
            kept: false,
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

    /// Moves a committed file into its place. If identical content is there
    /// already, the temporary copy is simply dropped.
    pub fn keep(&self, mut temp: TempFile, kind: ContentKind) -> std::io::Result<()> {
        let dest = self.absolute(&Self::object_path(&temp.sha256, kind));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if dest.exists() {
            return Ok(()); // `temp` is removed on drop
        }
        std::fs::rename(&temp.path, &dest)?;
        temp.kept = true;
        Ok(())
    }

    /// Removes stored objects that no row refers to any more.
    pub fn remove_objects(&self, relative_paths: &[String]) {
        for p in relative_paths {
            if let Err(e) = std::fs::remove_file(self.absolute(p)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %p, error = %e, "could not remove an unused media file");
                }
            }
        }
    }
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
    use super::*;

    fn store() -> MediaStore {
        let dir = std::env::temp_dir().join(format!("vetter-media-{}", crate::random_hex(6)));
        MediaStore::new(dir)
    }

    #[tokio::test]
    async fn a_dropped_temp_file_is_removed_and_a_kept_one_moves_into_place() {
        let s = store();
        let t = s.write_temp_bytes(b"hello").await.unwrap();
        let p = t.path().to_path_buf();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());

        let t = s.write_temp_bytes(b"hello").await.unwrap();
        assert_eq!(t.sha256, hex(&Sha256::digest(b"hello")));
        let sha = t.sha256.clone();
        s.keep(t, ContentKind::Csv).unwrap();
        let dest = s.absolute(&MediaStore::object_path(&sha, ContentKind::Csv));
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(s.root());
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

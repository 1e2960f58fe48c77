//! The media folder as the object store: objects are files under
//! `objects/`, published by hard-linking the upload's temporary file (on
//! the same file system, under `tmp/`) and fsyncing the folders.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use super::Listed;

/// Objects as files under one folder.
#[derive(Debug, Clone)]
pub struct Folder {
    pub(crate) root: PathBuf,
}

impl Folder {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub async fn publish(
        &self,
        jobs: Vec<(PathBuf, String)>,
    ) -> (Vec<String>, std::io::Result<()>) {
        let root = self.root.clone();
        match tokio::task::spawn_blocking(move || link_all(&root, &jobs)).await {
            Ok(done) => done,
            Err(e) => (Vec::new(), Err(std::io::Error::other(e))),
        }
    }

    pub async fn remove(&self, rel: &str) -> std::io::Result<bool> {
        match tokio::fs::remove_file(self.path(rel)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn size(&self, rel: &str) -> std::io::Result<Option<u64>> {
        match tokio::fs::metadata(self.path(rel)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn read(&self, rel: &str) -> std::io::Result<(u64, super::ObjectStream)> {
        let file = tokio::fs::File::open(self.path(rel)).await?;
        let size = file.metadata().await?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        Ok((size, stream.boxed()))
    }

    /// Every path under `objects/`, relative to the root (also ones that
    /// are not object names, so that `vetter check` can report them).
    pub async fn list(&self) -> std::io::Result<Vec<Listed>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let objects = root.join("objects");
            let dirs = match std::fs::read_dir(&objects) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            for dir in dirs {
                let dir = dir?;
                let name = dir.file_name().to_string_lossy().into_owned();
                let meta = dir.metadata()?;
                if !meta.is_dir() {
                    out.push(Listed {
                        path: format!("objects/{name}"),
                        size: meta.len(),
                        modified: meta.modified()?,
                    });
                    continue;
                }
                for file in std::fs::read_dir(dir.path())? {
                    let file = file?;
                    let meta = file.metadata()?;
                    if meta.is_file() {
                        let f = file.file_name().to_string_lossy().into_owned();
                        out.push(Listed {
                            path: format!("objects/{name}/{f}"),
                            size: meta.len(),
                            modified: meta.modified()?,
                        });
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// Links (or, across file systems, copies) each file into place and fsyncs
/// the directories touched. Returns the objects made, also on an error.
pub(super) fn link_all(
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

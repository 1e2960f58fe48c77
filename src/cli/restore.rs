//! `vetter restore DIR [--force]`: put a `vetter backup` back.
//!
//! Order: check the manifest and every checksum first (nothing is touched
//! if the backup is damaged), then the media files, into whichever store
//! the server uses (the media folder or a bucket), then the database in one
//! transaction. A failure half way leaves at most media files no row uses,
//! never a row without its file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::{Connection, PgPool};

use super::backup::{libpq_target, size_text, spawn_pg_tool, DUMP, MANIFEST};
use super::CliError;
use crate::config::{Config, Source};
use crate::media::{self, MediaStore};

pub const USAGE: &str = "\
vetter restore: put back what `vetter backup DIR` wrote

Usage: vetter restore DIR [--force]

Checks every file in DIR against its manifest, copies the media files into
the store the server uses (VETTER_MEDIA_ROOT, or the bucket of
VETTER_MEDIA_URL; files already there with the right content are kept,
damaged ones replaced), checking each as it is stored, then restores the database dump into DATABASE_URL in one transaction
(pg_restore --single-transaction --no-owner --no-acl). The database must
be empty (a new database made from template1, which has q3c, will do).
With --force, a database that is not empty is accepted: the tables, types
and other objects in the backup are dropped and made again from it;
objects the backup does not have are left alone. Needs pg_restore
(Debian: postgresql-client-15).
";

struct Entry {
    sha256: String,
    size: u64,
    /// Relative to DIR: `database.dump` or `media/objects/...`.
    path: String,
}

pub async fn run(args: &[String]) -> Result<(), CliError> {
    let mut force = false;
    let mut dir = None;
    for a in args {
        match a.as_str() {
            "--force" => force = true,
            other if !other.starts_with('-') && dir.is_none() => dir = Some(PathBuf::from(other)),
            other => {
                return Err(CliError::Usage(format!(
                    "unexpected argument {other:?}\n\n{USAGE}"
                )))
            }
        }
    }
    let Some(dir) = dir else {
        return Err(CliError::Usage(format!(
            "restore needs the backup folder\n\n{USAGE}"
        )));
    };
    let src = Source::from_env()?;
    let url = Config::database_url(&src)?;
    let root = Config::media_root(&src)?;
    let media = MediaStore::open(&root, &Config::media_location(&src)?)?;
    restore(&url, &media, &dir, force).await?;
    Ok(())
}

async fn restore(url: &str, media: &MediaStore, dir: &Path, force: bool) -> anyhow::Result<()> {
    let entries = read_manifest(dir)?;

    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to DATABASE_URL")?;
    let crate::db::maintenance::Relations {
        count: tables,
        example,
        database,
    } = crate::db::maintenance::relations(&mut conn).await?;
    if tables > 0 && !force {
        anyhow::bail!(
            "the database {database:?} is not empty ({tables} tables and other relations, such as \
             {}), so restore refused to touch it. Restore into a new, empty database, or pass \
             --force to replace what the backup holds",
            example.unwrap_or_default()
        );
    }
    let has_q3c = crate::db::maintenance::has_q3c(&mut conn).await?;
    conn.close().await?;

    verify(dir, &entries).await?;
    let pool = crate::db::lazy_pool(url)?;
    let stored = copy_media(dir, media, &pool, &entries).await;
    pool.close().await;
    let Stored {
        copied,
        present,
        replaced,
    } = stored?;

    let dump = dir.join(DUMP);
    let (target, password) = libpq_target(url);
    // With q3c already there (made by a superuser, as database.sh and the
    // db image do), its entries are left out: the app's role may not
    // create, comment on or drop an extension.
    let list = if has_q3c {
        Some(list_without_extensions(&dump, password.as_deref()).await?)
    } else {
        None
    };
    let mut cmd = std::process::Command::new("pg_restore");
    cmd.arg(format!("--dbname={target}")).args([
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-acl",
    ]);
    if force {
        cmd.args(["--clean", "--if-exists"]);
    }
    if let Some(list) = &list {
        cmd.arg("--use-list").arg(list.path());
    }
    cmd.arg(&dump);
    let child = spawn_pg_tool(cmd, password.as_deref(), "pg_restore")?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    drop(list);
    if !out.status.success() {
        anyhow::bail!(
            "pg_restore failed ({}), so the database is as it was (one transaction): {}\n\
             The media files copied are harmless; `vetter check --repair` removes those no row uses",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to DATABASE_URL")?;
    crate::db::rating_changes::after_restore(&mut conn)
        .await
        .context("renumbering the feed of rating changes")?;
    conn.close().await?;
    let bytes: u64 = entries.iter().map(|e| e.size).sum();
    println!(
        "restored the database into {database:?} and {} media files into {} ({copied} copied{}, \
         {present} already there; {} in all, every checksum verified)",
        copied + present,
        media.describe(),
        if replaced > 0 {
            format!(", {replaced} of them over a damaged copy")
        } else {
            String::new()
        },
        size_text(bytes)
    );
    Ok(())
}

fn read_manifest(dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} cannot be read: this is not a complete `vetter backup` folder",
            path.display()
        )
    })?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let bad = || anyhow::anyhow!("{} line {}: {line:?} is not valid", path.display(), n + 1);
        let mut parts = line.split('\t');
        let (Some(sha), Some(size), Some(p), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let size: u64 = size.parse().map_err(|_| bad())?;
        // Only the two shapes a backup writes: nothing may point outside DIR
        // or the media root.
        let ok = if p == DUMP {
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())
        } else {
            p.strip_prefix("media/")
                .and_then(media::parse_object_path)
                .is_some_and(|(s, _)| s == sha)
        };
        if !ok {
            return Err(bad());
        }
        entries.push(Entry {
            sha256: sha.to_string(),
            size,
            path: p.to_string(),
        });
    }
    if !entries.iter().any(|e| e.path == DUMP) {
        anyhow::bail!("{} lists no {DUMP}", path.display());
    }
    Ok(entries)
}

/// Every file of the backup against its manifest line.
async fn verify(dir: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bad: Vec<String> = futures_util::stream::iter(entries)
        .map(|e| {
            let path = dir.join(&e.path);
            async move {
                let got = tokio::task::spawn_blocking(move || media::hash_file(&path, None)).await;
                match got {
                    Ok(Ok((size, sha))) if size == e.size && sha == e.sha256 => None,
                    Ok(Ok(_)) => Some(format!("{}: content differs from the manifest", e.path)),
                    Ok(Err(err)) => Some(format!("{}: {err}", e.path)),
                    Err(err) => Some(format!("{}: {err}", e.path)),
                }
            }
        })
        .buffer_unordered(parallel)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    if !bad.is_empty() {
        for b in &bad {
            eprintln!("vetter: {}/{b}", dir.display());
        }
        anyhow::bail!(
            "{} file{} in {} do not match the manifest; nothing was restored",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" },
            dir.display()
        );
    }
    Ok(())
}

#[derive(Default)]
struct Stored {
    copied: u64,
    present: u64,
    /// Of those copied, how many replaced a damaged object.
    replaced: u64,
}

enum Outcome {
    Copied,
    Present,
    Replaced,
}

/// Puts the backup's media files into the store.
async fn copy_media(
    dir: &Path,
    media: &MediaStore,
    pool: &PgPool,
    entries: &[Entry],
) -> anyhow::Result<Stored> {
    let parallel = media
        .parallel_transfers(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)));
    let mut done = futures_util::stream::iter(entries.iter().filter_map(|e| {
        let rel = e.path.strip_prefix("media/")?;
        Some(store_one(dir, media, pool, e, rel))
    }))
    .buffer_unordered(parallel);
    let mut stored = Stored::default();
    while let Some(outcome) = done.try_next().await? {
        match outcome {
            Outcome::Present => stored.present += 1,
            Outcome::Copied => stored.copied += 1,
            Outcome::Replaced => {
                stored.copied += 1;
                stored.replaced += 1;
            }
        }
    }
    Ok(stored)
}

/// Puts one backup file at `rel` in the store unless it is there intact.
async fn store_one(
    dir: &Path,
    media: &MediaStore,
    pool: &PgPool,
    e: &Entry,
    rel: &str,
) -> anyhow::Result<Outcome> {
    let damaged = match media.size(rel).await {
        Ok(None) => false,
        // A size other than the manifest's can only be a damaged copy: the
        // name is the checksum of the content.
        Ok(Some(size)) if size != e.size => true,
        Ok(Some(_)) => match media.hash(rel).await {
            Ok((_, sha)) if sha == e.sha256 => return Ok(Outcome::Present),
            Ok(_) => true,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
            Err(err) => return Err(anyhow::Error::new(err).context(format!("reading {rel}"))),
        },
        Err(err) => return Err(anyhow::Error::new(err).context(format!("looking for {rel}"))),
    };
    // Through a temporary file of the store's own: the store may link it
    // into place, and the backup must stay a copy of its own.
    let src = dir.join(&e.path);
    let file = tokio::fs::File::open(&src)
        .await
        .with_context(|| format!("opening {}", src.display()))?;
    let temp = media
        .write_temp(file, u64::MAX)
        .await
        .with_context(|| format!("copying {}", src.display()))?;
    if temp.sha256 != e.sha256 || temp.size != e.size {
        anyhow::bail!("{} changed while it was being restored", src.display());
    }
    let jobs = vec![(temp.path().to_path_buf(), rel.to_string())];
    let published = if damaged {
        // Deleting an object is only safe under its exclusive lock (see
        // `media`); holding it through the publication also means no upload
        // can find the name missing in between.
        let (sha, _) = media::parse_object_path(rel).context("an object path")?;
        let lock = crate::ingest::publish::exclusive(
            pool,
            &[media::bucket(sha).unwrap_or(0)],
            Duration::from_secs(30),
        )
        .await
        .with_context(|| format!("locking {rel} to replace its damaged copy"))?;
        media
            .remove(rel)
            .await
            .with_context(|| format!("removing the damaged {rel}"))?;
        let (_, published) = media.publish(jobs).await;
        lock.commit().await?;
        published
    } else {
        media.publish(jobs).await.1
    };
    published.with_context(|| format!("storing {rel} in {}", media.describe()))?;
    Ok(if damaged {
        Outcome::Replaced
    } else {
        Outcome::Copied
    })
}

/// A temporary pg_restore list of the dump without its EXTENSION entries.
async fn list_without_extensions(dump: &Path, password: Option<&str>) -> anyhow::Result<TempList> {
    let mut cmd = std::process::Command::new("pg_restore");
    cmd.arg("--list").arg(dump);
    let child = spawn_pg_tool(cmd, password, "pg_restore")?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    if !out.status.success() {
        anyhow::bail!(
            "pg_restore --list {} failed: {}",
            dump.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let kept: String = text
        .lines()
        .filter(|l| !is_extension_entry(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = std::env::temp_dir().join(format!("vetter-restore-{}.list", crate::random_hex(8)));
    std::fs::write(&path, kept)?;
    Ok(TempList(path))
}

/// `2; 3079 16396 EXTENSION - q3c` and `3380; 0 0 COMMENT - EXTENSION q3c`.
fn is_extension_entry(line: &str) -> bool {
    let Some((_, rest)) = line.split_once("; ") else {
        return false;
    };
    let desc: Vec<&str> = rest.split_whitespace().skip(2).collect();
    matches!(
        desc.as_slice(),
        ["EXTENSION", ..] | ["COMMENT", "-", "EXTENSION", ..]
    )
}

struct TempList(PathBuf);

impl TempList {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempList {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_extension_entries_are_left_out() {
        assert!(is_extension_entry("2; 3079 16396 EXTENSION - q3c "));
        assert!(is_extension_entry("3380; 0 0 COMMENT - EXTENSION q3c "));
        assert!(!is_extension_entry(
            "215; 1259 16400 TABLE public files postgres"
        ));
        assert!(!is_extension_entry("; Archive created at 2026-11-23"));
        assert!(!is_extension_entry(
            "3000; 0 0 COMMENT public TABLE files postgres"
        ));
    }
}

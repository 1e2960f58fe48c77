//! `vetter backup DIR`: the database (pg_dump, custom format) and the media
//! files its rows use, consistent with each other, plus a manifest. The
//! files come from the store the server uses (the media folder or a
//! bucket); the backup is always a folder on local disk.
//!
//! Consistency: one connection first takes the shared lock of every media
//! bucket for its session (so no object can be deleted until the backup is
//! done: deleters need the exclusive lock, see `media`), and only then
//! opens a REPEATABLE READ transaction and exports its snapshot. pg_dump
//! dumps that very snapshot (`--snapshot`), and the same transaction lists
//! the objects to copy. Every object a row in the dump names was in place
//! before that row committed, and stays until the locks go, so the copy
//! holds every file the dump refers to. Uploads go on meanwhile; what they
//! add after the snapshot is simply not in this backup.
//!
//! Layout of DIR: `database.dump`, `media/objects/ab/<sha256>.<ext>`, and
//! `manifest.tsv` (sha256, size and path of every file, written last: a
//! folder without it is not a complete backup).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::Connection;
use tokio::io::AsyncWriteExt;

use super::CliError;
use crate::config::{Config, Source};
use crate::db::{files, maintenance};
use crate::media::{self, MediaStore};

pub const USAGE: &str = "\
vetter backup: a consistent copy of the database and the media files

Usage: vetter backup DIR

Writes into DIR (which must be new or empty):
  database.dump   pg_dump --format=custom of DATABASE_URL
  media/          every media file a row of that dump refers to, read from
                  the store the server uses (VETTER_MEDIA_ROOT, or the
                  bucket of VETTER_MEDIA_URL) and checked against its row
  manifest.tsv    sha256, size and path of each file, written last
The dump and the file list come from one database snapshot, and no media
file can be deleted while the backup runs, so every file row in the dump
has its file. Uploads go on meanwhile. Needs pg_dump (Debian:
postgresql-client-15). Restore with `vetter restore DIR`.
";

pub const MANIFEST: &str = "manifest.tsv";
pub const DUMP: &str = "database.dump";

pub async fn run(args: &[String]) -> Result<(), CliError> {
    let dir = match args {
        [dir] if !dir.starts_with('-') => PathBuf::from(dir),
        _ => {
            return Err(CliError::Usage(format!(
                "backup takes one folder\n\n{USAGE}"
            )))
        }
    };
    let src = Source::from_env()?;
    let url = Config::database_url(&src)?;
    let root = Config::media_root(&src)?;
    let media = MediaStore::open(&root, &Config::media_location(&src)?)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .next()
        .is_some()
    {
        return Err(CliError::Failed(anyhow::anyhow!(
            "{} is not empty: back up into a new or empty folder",
            dir.display()
        )));
    }
    backup(&url, &media, &dir).await?;
    Ok(())
}

async fn backup(url: &str, media: &MediaStore, dir: &Path) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to DATABASE_URL")?;
    files::lock_all_buckets_for_session(&mut conn).await?;
    let snapshot = maintenance::begin_exported_snapshot(&mut conn).await?;

    let dump_path = dir.join(DUMP);
    let (target, password) = libpq_target(url);
    let mut cmd = std::process::Command::new("pg_dump");
    cmd.arg("--format=custom")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(&dump_path)
        .arg(format!("--dbname={target}"));
    let dump = spawn_pg_tool(cmd, password.as_deref(), "pg_dump")?;
    // pg_dump imports the snapshot while the transaction is open; it runs
    // beside the file copy.
    let dump = tokio::task::spawn_blocking(move || dump.wait_with_output());

    let media_dir = dir.join("media");
    let part = dir.join(format!("{MANIFEST}.part"));
    let mut manifest = std::io::BufWriter::new(std::fs::File::create(&part)?);
    writeln!(
        manifest,
        "# vetter backup, format 1, made {}\n# sha256\tsize\tpath",
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    )?;
    let parallel = media
        .parallel_transfers(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)));
    let mut problems = Vec::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    {
        let media_dir = &media_dir;
        let mut copies = files::stream_objects(&mut conn)
            .map_ok(|o| async move {
                Ok(copy_one(media, media_dir, o.storage_path, o.size_bytes, o.sha256).await)
            })
            .try_buffer_unordered(parallel);
        while let Some(copied) = copies.try_next().await? {
            match copied {
                Ok((path, size, sha)) => {
                    writeln!(manifest, "{sha}\t{size}\tmedia/{path}")?;
                    count += 1;
                    bytes += size;
                }
                Err(problem) => problems.push(problem),
            }
        }
    }
    let out = dump.await?.context("waiting for pg_dump")?;
    maintenance::end_snapshot(&mut conn).await?;
    // Closing the session releases the bucket locks.
    conn.close().await?;
    if !out.status.success() {
        anyhow::bail!(
            "pg_dump failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("vetter: {p}");
        }
        anyhow::bail!(
            "the backup in {} is incomplete: {} file{} the database refers to could not be copied \
             (`vetter check` explains, `vetter check --repair` fixes); it has no {MANIFEST}, so \
             `vetter restore` will refuse it",
            dir.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
    }
    let (dump_size, dump_sha) = {
        let p = dump_path.clone();
        tokio::task::spawn_blocking(move || media::hash_file(&p, None)).await??
    };
    writeln!(manifest, "{dump_sha}\t{dump_size}\t{DUMP}")?;
    let file = manifest.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&part, dir.join(MANIFEST))?;
    media::sync_dir(dir)?;
    println!(
        "backed up the database ({}) and {count} media file{} ({}) into {}",
        size_text(dump_size),
        if count == 1 { "" } else { "s" },
        size_text(bytes),
        dir.display()
    );
    Ok(())
}

/// Copies one object, checking it on the way. The error is a sentence for
/// the operator.
async fn copy_one(
    media: &MediaStore,
    media_dir: &Path,
    path: String,
    size: i64,
    sha: String,
) -> Result<(String, u64, String), String> {
    if media::parse_object_path(&path).map(|(s, _)| s) != Some(sha.as_str()) {
        return Err(format!(
            "{path}: not the object path of sha256 {sha}; skipped"
        ));
    }
    let dest = media_dir.join(&path);
    match copy_out(media, &path, &dest).await {
        Ok((got_size, got_sha)) if got_sha == sha && got_size as i64 == size => {
            Ok((path, got_size, got_sha))
        }
        Ok(_) => {
            let _ = tokio::fs::remove_file(&dest).await;
            Err(format!(
                "{path}: damaged (its content is not what its rows record)"
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("{path}: missing")),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// Streams an object from the store into a durable file at `dest`, through
/// a `.part` name (so a crash leaves no half file under the final name);
/// returns the size and sha256 of what was written.
async fn copy_out(media: &MediaStore, rel: &str, dest: &Path) -> std::io::Result<(u64, String)> {
    let (_, mut stream) = media.read(rel).await?;
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let part = dest.with_extension(format!("{}.part", crate::random_hex(8)));
    let written = async {
        let mut out = tokio::fs::File::create(&part).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        out.sync_all().await?;
        tokio::fs::rename(&part, dest).await?;
        Ok((size, media::hex(&hasher.finalize())))
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    written
}

pub(super) fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Starts pg_dump or pg_restore with the password in `PGPASSWORD`, so that
/// it does not show in the process list.
pub(super) fn spawn_pg_tool(
    mut cmd: std::process::Command,
    password: Option<&str>,
    name: &str,
) -> anyhow::Result<std::process::Child> {
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "{name} is not installed (Debian: apt-get install postgresql-client-15)"
            )
        } else {
            anyhow::Error::new(e).context(format!("starting {name}"))
        }
    })
}

/// The URL for libpq without its password, and the password
/// (percent-decoded) on its own.
pub(super) fn libpq_target(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    match userinfo.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}{tail}"),
            Some(percent_decode(password)),
        ),
        None => (url.to_string(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded() {
        assert_eq!(
            libpq_target("postgres://vetter:p%40ss%3Aw@db:5432/vetter?sslmode=disable"),
            (
                "postgres://vetter@db:5432/vetter?sslmode=disable".to_string(),
                Some("p@ss:w".to_string())
            )
        );
        assert_eq!(
            libpq_target("postgres://postgres@127.0.0.1:5432/x"),
            ("postgres://postgres@127.0.0.1:5432/x".to_string(), None)
        );
        assert_eq!(
            libpq_target("postgresql://localhost/x"),
            ("postgresql://localhost/x".to_string(), None)
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}

//! `vetter check [--repair]`: compare the media store with the file rows.
//!
//! One pass over the store's listing (sizes, and checksums unless
//! `--sizes-only`) and over the media folder's `tmp/`, then one streamed
//! pass over the rows. Problems are kept in memory only as long as they are
//! problems, so a survey's worth of rows costs little more than the listing
//! itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::PgPool;

use super::CliError;
use crate::config::{Config, MediaLocation, Source};
use crate::db::files::{self, Checked};
use crate::domain::FileId;
use crate::ingest::publish::{self, BucketsBusy};
use crate::media::{self, ContentKind, MediaStore};

pub const USAGE: &str = "\
vetter check: compare the media store with the database

Usage: vetter check [--repair] [--grace DURATION] [--sizes-only]

The store is the one the server uses: the media folder (VETTER_MEDIA_ROOT),
or the bucket of VETTER_MEDIA_URL=s3://bucket/prefix (with the VETTER_S3_*
settings), whose uploads in flight are in VETTER_MEDIA_ROOT/tmp.

Reports
  orphan files   objects, or files in tmp/, that no file row refers to
                 (what a crash between writing a file and committing leaves)
  dangling rows  file rows whose object is missing, or whose size or sha256
                 does not match the object

Options
  --repair           fix what was found, printing each step:
                     - removes orphans older than the grace period;
                     - a missing or corrupt preview the server rendered is
                       rendered again from its source file, if that is intact;
                     - a row whose recorded size/sha256 is wrong but whose
                       object is intact gets the object's values;
                     - any other dangling row is removed, with the previews
                       made from it, and the removal is listed
  --grace DURATION   orphans younger than this (by their modification
                     time, in a bucket the time it stored them) are left
                     alone and not counted as problems: they may belong to
                     an upload in progress (default 1h; 90s, 30m, 2h, 1d;
                     0 for none)
  --sizes-only       compare sizes only, not checksums (faster on large
                     stores, where every object is read otherwise; a
                     corrupt file of the right size goes unseen)

Exit status: 0 when nothing is wrong or everything found was repaired,
1 when problems are left, 2 on a usage error.
";

struct Options {
    repair: bool,
    grace: Duration,
    sizes_only: bool,
}

fn usage(message: &str) -> CliError {
    CliError::Usage(format!("{message}\n\n{USAGE}"))
}

fn parse_args(args: &[String]) -> Result<Options, CliError> {
    let mut o = Options {
        repair: false,
        grace: Duration::from_secs(3600),
        sizes_only: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--repair" => o.repair = true,
            "--sizes-only" => o.sizes_only = true,
            "--grace" => {
                let v = it.next().ok_or_else(|| usage("--grace needs a value"))?;
                o.grace = parse_duration(v).ok_or_else(|| {
                    usage(&format!(
                        "--grace {v:?} is not a duration like 90s, 30m, 2h or 1d"
                    ))
                })?;
            }
            other => return Err(usage(&format!("unexpected argument {other:?}"))),
        }
    }
    Ok(o)
}

/// `90`, `90s`, `30m`, `2h`, `1d`.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, unit) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&v[..i], c),
        _ => (v, 's'),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// A file found under the media root.
struct Found {
    size: u64,
    modified: SystemTime,
    /// The content's sha256, for objects (unless `--sizes-only`).
    content_sha: Option<String>,
    referenced: bool,
}

/// What is wrong with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    Missing,
    /// The object does not hold what its name says (or, with
    /// `--sizes-only`, is not the recorded size).
    Corrupt,
    /// The object is intact, but the row records another size or sha256.
    Recorded {
        size: u64,
        sha256: String,
    },
}

pub async fn run(args: &[String]) -> Result<(), CliError> {
    let o = parse_args(args)?;
    let src = Source::from_env()?;
    let root = Config::media_root(&src)?;
    let location = Config::media_location(&src)?;
    if location == MediaLocation::Folder && !root.is_dir() {
        return Err(CliError::Failed(anyhow::anyhow!(
            "VETTER_MEDIA_ROOT={} is not a folder",
            root.display()
        )));
    }
    let media = MediaStore::open(&root, &location)?;
    media
        .probe()
        .await
        .with_context(|| format!("the media store {} does not answer", media.describe()))?;
    let pool = super::connect(&src).await?;
    let left = check(&pool, &media, &o).await?;
    if left > 0 {
        let hint = if o.repair {
            ""
        } else {
            ": run `vetter check --repair` to fix them"
        };
        return Err(CliError::Failed(anyhow::anyhow!(
            "{left} problem{} left{hint}",
            if left == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Returns the number of problems left.
async fn check(pool: &PgPool, media: &MediaStore, o: &Options) -> anyhow::Result<usize> {
    // The rows are read in a snapshot taken before the store is listed:
    // every row in it was committed after its object was in place, so a
    // concurrent upload cannot make a row look dangling. (It can make a new
    // object look orphaned; such an object is young, inside the grace period,
    // and a removal re-reads the references under the bucket lock anyway.)
    let mut tx = pool.begin().await?;
    crate::db::maintenance::snapshot_now(&mut tx).await?;

    println!("checking {} against the database", media.describe());
    let mut found: HashMap<String, Found> = media
        .list()
        .await
        .with_context(|| format!("listing the objects in {}", media.describe()))?
        .into_iter()
        .map(|l| {
            let f = Found {
                size: l.size,
                modified: l.modified,
                content_sha: None,
                referenced: false,
            };
            (l.path, f)
        })
        .collect();
    let (root, folder) = (media.root().to_path_buf(), media.folder().is_some());
    let (local, unmanaged) = tokio::task::spawn_blocking(move || walk(&root, folder))
        .await?
        .context("listing the media folder")?;
    found.extend(local);
    if !o.sizes_only {
        hash_objects(media, &mut found).await?;
    }

    let mut dangling: Vec<(Checked, Fault)> = Vec::new();
    let mut rows = 0u64;
    {
        let mut stream = files::stream_all(&mut tx);
        while let Some(row) = stream.try_next().await? {
            rows += 1;
            let fault = match found.get_mut(&row.storage_path) {
                None => Some(Fault::Missing),
                Some(f) => {
                    f.referenced = true;
                    fault_of(&row, f)
                }
            };
            if let Some(fault) = fault {
                dangling.push((row, fault));
            }
        }
    }
    tx.commit().await?;

    // A row reported missing may have been replaced (and its object
    // removed) since the snapshot: look again before calling it a problem.
    let mut confirmed = Vec::with_capacity(dangling.len());
    {
        let mut conn = pool.acquire().await?;
        for (row, fault) in dangling {
            if fault == Fault::Missing {
                let now = files::checked_by_id(&mut conn, row.id).await?;
                let moved = now.is_none_or(|n| n.storage_path != row.storage_path);
                if moved || media.size(&row.storage_path).await?.is_some() {
                    continue;
                }
            }
            confirmed.push((row, fault));
        }
    }
    let dangling = confirmed;

    let now = SystemTime::now();
    let mut orphans: Vec<(String, u64, Duration)> = found
        .iter()
        .filter(|(_, f)| !f.referenced)
        .map(|(p, f)| {
            (
                p.clone(),
                f.size,
                now.duration_since(f.modified).unwrap_or_default(),
            )
        })
        .collect();
    orphans.sort();

    for p in &unmanaged {
        println!("note: {p}");
    }
    let mut recent = 0usize;
    let mut old_orphans = Vec::new();
    for (path, size, age) in orphans {
        if age < o.grace {
            recent += 1;
            println!(
                "orphan {path} ({size} bytes, {} old): recent, within the grace period of {}; left alone",
                human(age),
                human(o.grace)
            );
        } else {
            println!("orphan {path} ({size} bytes, {} old)", human(age));
            old_orphans.push(path);
        }
    }
    for (row, fault) in &dangling {
        println!("dangling row {}: {}", describe(row), explain(row, fault));
    }

    let (n_orphans, n_dangling) = (old_orphans.len(), dangling.len());
    let problems = n_orphans + n_dangling;
    let left = if o.repair && problems > 0 {
        repair_rows(pool, media, dangling).await? + remove_orphans(pool, media, old_orphans).await
    } else {
        problems
    };
    println!(
        "checked {rows} file rows and {} files: {n_orphans} orphans, {n_dangling} dangling rows \
         (and {recent} recent files left alone); {}",
        found.len(),
        if problems == 0 {
            "no problems".to_string()
        } else if left == 0 {
            "all repaired".to_string()
        } else {
            format!("{left} left")
        }
    );
    Ok(left)
}

fn fault_of(row: &Checked, f: &Found) -> Option<Fault> {
    let name_sha = media::parse_object_path(&row.storage_path).map(|(s, _)| s);
    match &f.content_sha {
        Some(content) => {
            if Some(content.as_str()) != name_sha {
                Some(Fault::Corrupt)
            } else if row.size_bytes as u64 != f.size || &row.sha256 != content {
                Some(Fault::Recorded {
                    size: f.size,
                    sha256: content.clone(),
                })
            } else {
                None
            }
        }
        // Sizes only: a wrong size most likely means a damaged file.
        None if row.size_bytes as u64 != f.size => Some(Fault::Corrupt),
        None => None,
    }
}

fn describe(row: &Checked) -> String {
    format!("{} ({}, role {})", row.id, row.owner, row.role)
}

fn explain(row: &Checked, fault: &Fault) -> String {
    match fault {
        Fault::Missing => format!("{} is missing", row.storage_path),
        Fault::Corrupt => format!(
            "{} does not hold the content its name and row say (damaged)",
            row.storage_path
        ),
        Fault::Recorded { size, sha256 } => format!(
            "records {} bytes, sha256 {}, but {} is intact with {size} bytes, sha256 {sha256}",
            row.size_bytes, row.sha256, row.storage_path
        ),
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The files of the media folder that the store's listing does not cover:
/// those under `tmp/` by their relative path, and notes on anything else.
/// With the folder as the store, `objects/` is the store's to list; with a
/// bucket, only `tmp/` is vetter's.
fn walk(root: &Path, folder: bool) -> std::io::Result<(HashMap<String, Found>, Vec<String>)> {
    let mut found = HashMap::new();
    let mut notes = Vec::new();
    let mut stack = vec![if folder {
        PathBuf::new()
    } else {
        PathBuf::from("tmp")
    }];
    if !folder && root.join("objects").exists() {
        notes.push(format!(
            "{} is not the media store (a bucket is); left alone (left from before a \
             `vetter media migrate`? remove it once the bucket checks clean)",
            root.join("objects").display()
        ));
    }
    while let Some(rel_dir) = stack.pop() {
        let entries = match std::fs::read_dir(root.join(&rel_dir)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !folder => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let rel = rel_dir.join(entry.file_name());
            if folder && rel == Path::new("objects") {
                continue;
            }
            let meta = entry.metadata()?; // does not follow symlinks
            if meta.is_dir() {
                stack.push(rel);
                continue;
            }
            let name = rel.to_string_lossy().into_owned();
            let managed = meta.is_file() && rel.to_str().is_some() && name.starts_with("tmp/");
            if !managed {
                notes.push(format!(
                    "{name} is not one of vetter's files (outside objects/ and tmp/); left alone"
                ));
                continue;
            }
            found.insert(
                name,
                Found {
                    size: meta.len(),
                    modified: meta.modified()?,
                    content_sha: None,
                    referenced: false,
                },
            );
        }
    }
    notes.sort();
    Ok((found, notes))
}

/// Reads every object through the store and records its checksum.
async fn hash_objects(
    media: &MediaStore,
    found: &mut HashMap<String, Found>,
) -> anyhow::Result<()> {
    // Hashing a disk's files takes a core each.
    let parallel =
        media.parallel_transfers(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let jobs: Vec<String> = found
        .keys()
        .filter(|p| media::parse_object_path(p).is_some())
        .cloned()
        .collect();
    let mut hashed = futures_util::stream::iter(jobs)
        .map(|rel| async move {
            let r = media.hash(&rel).await;
            (rel, r)
        })
        .buffer_unordered(parallel);
    while let Some((rel, r)) = hashed.next().await {
        match r {
            Ok((_, sha)) => {
                if let Some(f) = found.get_mut(&rel) {
                    f.content_sha = Some(sha);
                }
            }
            // Gone since the listing: as if never seen.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                found.remove(&rel);
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {rel}"))),
        }
    }
    Ok(())
}

/// Repairs the dangling rows; returns how many could not be repaired.
async fn repair_rows(
    pool: &PgPool,
    media: &MediaStore,
    mut dangling: Vec<(Checked, Fault)>,
) -> anyhow::Result<usize> {
    let mut left = 0;
    let mut still_damaged = HashSet::new();
    // Damaged objects go first: every row using one is dangling anyway, and
    // a preview rendered again must not find the damaged file in its place.
    let corrupt: HashSet<String> = dangling
        .iter()
        .filter(|(_, f)| *f == Fault::Corrupt)
        .map(|(r, _)| r.storage_path.clone())
        .collect();
    for path in corrupt {
        match remove_damaged(pool, media, &path).await {
            Ok(true) => println!("  removed the damaged {path}"),
            Ok(false) => {}
            Err(e) => {
                println!("  could not remove the damaged {path}: {e:#}");
                still_damaged.insert(path);
            }
        }
    }
    // Sources before the previews made from them, and a preview of a
    // preview (a GIF's strip) after its GIF.
    dangling.sort_by_key(|(r, _)| (r.derived_from.is_some(), r.id));
    let mut gone: HashSet<FileId> = HashSet::new();
    for (row, fault) in dangling {
        if gone.contains(&row.id) {
            continue;
        }
        let what = describe(&row);
        if still_damaged.contains(&row.storage_path) {
            left += 1;
            println!("  row {what}: left, its damaged object is still in the way");
            continue;
        }
        if let Fault::Recorded { size, sha256 } = &fault {
            let mut conn = pool.acquire().await?;
            let kind = ContentKind::from_mime(&row.content_type).context("a known content type")?;
            if files::replace_content(&mut conn, row.id, &row.storage_path, kind, *size, sha256)
                .await?
            {
                println!("  row {what}: recorded size and sha256 corrected from the object");
            } else {
                println!("  row {what}: changed meanwhile; left as it is now");
            }
            continue;
        }
        if let Some(source_id) = row.derived_from {
            match rerender(pool, media, &row, source_id).await {
                Ok(Rerendered::Done(note)) => {
                    println!("  row {what}: {note}");
                    continue;
                }
                Ok(Rerendered::NoSource) => {}
                // The source may well be intact: a store that did not
                // answer is no reason to give the preview up.
                Ok(Rerendered::Unreadable(e)) => {
                    left += 1;
                    println!(
                        "  row {what}: left, its source could not be read ({e}); run check again"
                    );
                    continue;
                }
                Err(e) => println!("  row {what}: could not render it again ({e:#})"),
            }
        }
        let mut tx = pool.begin().await?;
        let doomed = files::remove_with_previews(&mut tx, row.id, &row.storage_path).await?;
        tx.commit().await?;
        if doomed.is_empty() {
            println!("  row {what}: changed meanwhile; left as it is now");
            continue;
        }
        let previews: Vec<String> = doomed
            .iter()
            .filter(|(id, _, _)| *id != row.id)
            .map(|(id, role, _)| format!("{id} ({role})"))
            .collect();
        gone.extend(doomed.iter().map(|(id, _, _)| *id));
        println!(
            "  row {what}: removed (its file cannot be recovered){}",
            if previews.is_empty() {
                String::new()
            } else {
                format!(", with the previews made from it: {}", previews.join(", "))
            }
        );
        let paths: Vec<String> = doomed.into_iter().map(|(_, _, p)| p).collect();
        for p in publish::remove_unreferenced(media, pool, &paths).await {
            println!("  removed {p}, which no row uses any more");
        }
    }
    Ok(left)
}

/// Removes an object whose content does not match its name, after reading
/// it again under the bucket's exclusive lock.
async fn remove_damaged(pool: &PgPool, media: &MediaStore, rel: &str) -> anyhow::Result<bool> {
    let Some((sha, _)) = media::parse_object_path(rel) else {
        return Ok(false);
    };
    let tx = publish::exclusive(
        pool,
        &[media::bucket(sha).unwrap_or(0)],
        Duration::from_secs(30),
    )
    .await?;
    let removed = match media.hash(rel).await {
        Ok((_, content)) if content != sha => media.remove(rel).await?,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(removed)
}

enum Rerendered {
    /// What was done, for the operator.
    Done(String),
    /// No intact source to render from.
    NoSource,
    /// The source could not be read from the store.
    Unreadable(std::io::Error),
}

/// Renders a server-made preview again from its intact source.
async fn rerender(
    pool: &PgPool,
    media: &MediaStore,
    row: &Checked,
    source_id: FileId,
) -> anyhow::Result<Rerendered> {
    let mut conn = pool.acquire().await?;
    let Some(source) = files::checked_by_id(&mut conn, source_id).await? else {
        return Ok(Rerendered::NoSource);
    };
    drop(conn);
    // cfitsio and the GIF decoder read files: from a bucket, a copy.
    let copy = match media.local_copy(&source.storage_path).await {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Rerendered::NoSource),
        Err(e) => return Ok(Rerendered::Unreadable(e)),
    };
    let source_path = copy.path().to_path_buf();
    let hashed = {
        let p = source_path.clone();
        tokio::task::spawn_blocking(move || media::hash_file(&p, None)).await?
    };
    match hashed {
        Ok((size, sha)) if sha == source.sha256 && size as i64 == source.size_bytes => {}
        Ok(_) => return Ok(Rerendered::NoSource),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Rerendered::NoSource),
        Err(e) => return Ok(Rerendered::Unreadable(e)),
    }
    let timeout = Duration::from_secs(120);
    let bytes = match (source.content_type.as_str(), row.content_type.as_str()) {
        ("application/fits", "image/png") => {
            crate::fits::previews(source_path, crate::fits::Limits::default(), timeout)
                .await?
                .png
        }
        ("application/fits", "image/gif") => {
            crate::fits::previews(source_path, crate::fits::Limits::default(), timeout)
                .await?
                .gif
                .context("the FITS source is not a cube, so it has no movie")?
        }
        ("image/gif", "image/png") => {
            tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&source_path)?;
                crate::fits::gif_strip(&bytes)
                    .map(|s| s.png)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })
            .await??
        }
        _ => return Ok(Rerendered::NoSource),
    };
    drop(copy);
    let kind = ContentKind::from_mime(&row.content_type).context("a known content type")?;
    let temp = media.write_temp_bytes(&bytes).await?;
    let mut tx = pool.begin().await?;
    let mut published = publish::Publication::new(media, pool);
    let written = async {
        published.publish(&mut tx, [(&temp, kind)]).await?;
        let done = files::replace_content(
            &mut tx,
            row.id,
            &row.storage_path,
            kind,
            temp.size,
            &temp.sha256,
        )
        .await?;
        anyhow::Ok(done)
    }
    .await;
    match written {
        Ok(true) => {
            tx.commit().await?;
            published.committed();
            Ok(Rerendered::Done(format!(
                "rendered again from row {source_id} ({}) into {}",
                source.role,
                MediaStore::object_path(&temp.sha256, kind)
            )))
        }
        Ok(false) => {
            tx.rollback().await?;
            published.abandon().await;
            Ok(Rerendered::Done(
                "changed meanwhile; left as it is now".into(),
            ))
        }
        Err(e) => {
            let _ = tx.rollback().await;
            published.abandon().await;
            Err(e)
        }
    }
}

/// Removes orphans past the grace period; returns how many are left.
async fn remove_orphans(pool: &PgPool, media: &MediaStore, paths: Vec<String>) -> usize {
    let (objects, other): (Vec<String>, Vec<String>) = paths
        .into_iter()
        .partition(|p| media::parse_object_path(p).is_some());
    let mut left = 0;
    // Not object names: no row can refer to them (the table's CHECK), so
    // they need no lock. Those in tmp/ are in the media folder whatever the
    // store; the rest were listed by the store.
    for p in other {
        let removed = match p.strip_prefix("tmp/") {
            Some(_) => match tokio::fs::remove_file(media.root().join(&p)).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            },
            None => media.remove(&p).await,
        };
        match removed {
            Ok(true) => println!("  removed {p}"),
            Ok(false) => {}
            Err(e) => {
                left += 1;
                println!("  could not remove {p}: {e}");
            }
        }
    }
    // One lock bucket at a time, so that an upload holding one bucket's
    // lock holds up only the orphans in that bucket. Once a bucket stayed
    // locked for the whole wait (a backup holds them all), the rest are
    // tried without waiting.
    let mut groups: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for p in objects {
        groups
            .entry(media::path_bucket(&p).unwrap_or(0))
            .or_default()
            .push(p);
    }
    let mut patience = Duration::from_secs(5);
    for paths in groups.into_values() {
        let (removed, why_kept): (HashSet<String>, String) =
            match publish::try_remove_unreferenced(media, pool, &paths, patience).await {
                Ok(removed) => (
                    removed.into_iter().collect(),
                    "a row uses it now, or it could not be removed".into(),
                ),
                Err(e) if e.is::<BucketsBusy>() => {
                    patience = Duration::ZERO;
                    let why =
                        "its lock is held (an upload in progress, or a backup); run check again";
                    (HashSet::new(), why.into())
                }
                Err(e) => (HashSet::new(), format!("{e:#}; run check again")),
            };
        for p in paths {
            if removed.contains(&p) {
                println!("  removed {p}");
                continue;
            }
            match media.size(&p).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    left += 1;
                    println!("  kept {p}: {why_kept}");
                }
                Err(e) => {
                    left += 1;
                    println!("  kept {p}: {e}");
                }
            }
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_documented() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration(""), None);
    }
}

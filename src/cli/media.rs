//! `vetter media migrate --to URL`: copy the media objects from one store to
//! another (the media folder, an S3-compatible bucket) while the app stays
//! up.
//!
//! Only adds to the target, never deletes from the source: the rows keep
//! pointing at object paths, which are the same in every store, so the
//! switch itself is just the app's settings. Each object goes into the
//! target through `MediaStore::publish` (so a bucket confirms the bytes it
//! kept by their ETag) and is then read back and hashed: its sha256 must be
//! the one its name carries. What the target already holds is read back the
//! same way and kept when intact, so a run that was interrupted is simply
//! run again.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::{Connection, PgPool};

use super::backup::size_text;
use super::CliError;
use crate::config::{Config, MediaLocation, Source};
use crate::db::files;
use crate::media::{self, MediaStore};

pub const USAGE: &str = "\
vetter media: the media store

Usage: vetter media migrate --to URL [--from URL] [--all] [--jobs N]

migrate copies every object a file row refers to from the store the server
uses (VETTER_MEDIA_URL; the media folder VETTER_MEDIA_ROOT when unset), or
from --from URL, into URL: `folder` (VETTER_MEDIA_ROOT) or
s3://bucket/prefix, reached with the same VETTER_S3_* settings as the
server's bucket. Each object is stored through a temporary file in
VETTER_MEDIA_ROOT/tmp, then read back from the target, and its sha256
compared with the one its name carries. Objects the target already holds
are read back too: kept when intact, replaced when damaged or incomplete.
So a run that was interrupted, or failed for some objects, is simply run
again. Nothing is deleted from the source.

The app may stay up meanwhile. It keeps storing new uploads in the old
store until its settings change, so switching safely takes two runs:
  1. vetter media migrate --to NEW
        the bulk, with the app running (run it again just before step 2
        to make the next run short)
  2. set VETTER_MEDIA_URL=NEW (and the VETTER_S3_* settings) where the app
     reads its settings, and restart the app
  3. vetter media migrate --from OLD --to NEW
        with the new settings: copies what was uploaded between 1 and 2
        (until it has run, those few files cannot be served)
  4. vetter check
        against NEW: no dangling rows
OLD is `folder` or the old s3:// URL. Keep the old store until 3 and 4
report no problems.

Options
  --to URL     the target: `folder` or s3://bucket/prefix (required)
  --from URL   the source, instead of the store the settings name
  --all        also copy the objects no row refers to (orphans, and uploads
               whose rows are not yet committed)
  --jobs N     objects copied at once (default 4, at most 16)

Prints progress, every failure, and a summary. Exit status: 0 when every
object is in the target and verified, 1 when some failed (fix the cause
and run the same command again), 2 on a usage error.
";

struct Options {
    to: String,
    from: Option<String>,
    all: bool,
    jobs: usize,
}

fn usage(message: &str) -> CliError {
    CliError::Usage(format!("{message}\n\n{USAGE}"))
}

pub async fn run(args: &[String]) -> Result<(), CliError> {
    match args.split_first() {
        Some((command, rest)) if command == "migrate" => migrate(rest).await,
        Some((other, _)) => Err(usage(&format!("unknown media command {other:?}"))),
        None => Err(usage("media needs a command: migrate")),
    }
}

fn parse_args(args: &[String]) -> Result<Options, CliError> {
    let mut to = None;
    let mut o = Options {
        to: String::new(),
        from: None,
        all: false,
        jobs: 4,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--to" => to = Some(value()?),
            "--from" => o.from = Some(value()?),
            "--all" => o.all = true,
            "--jobs" => {
                let v = value()?;
                o.jobs = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=16).contains(n))
                    .ok_or_else(|| usage(&format!("--jobs {v:?} is not a number from 1 to 16")))?;
            }
            other => return Err(usage(&format!("unexpected argument {other:?}"))),
        }
    }
    o.to = to.ok_or_else(|| usage("migrate needs --to URL"))?;
    Ok(o)
}

/// A location from a URL given on the command line: a malformed URL is the
/// caller's mistake (a usage error naming the flag), a missing S3 setting a
/// configuration one.
fn location_at(src: &Source, flag: &str, url: &str) -> Result<MediaLocation, CliError> {
    Config::media_location_at(src, url).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix("VETTER_MEDIA_URL=") {
            // The whole help would bury the one line that matters.
            Some(rest) => CliError::Usage(format!("{flag} {rest}")),
            None => CliError::Config(e),
        }
    })
}

/// The URL that names a location, for the commands printed.
fn url_of(location: &MediaLocation) -> String {
    match location {
        MediaLocation::Folder => "folder".into(),
        MediaLocation::Bucket(b) => b.url(),
    }
}

/// Whether two locations are the same objects (the credentials aside).
fn same_place(a: &MediaLocation, b: &MediaLocation) -> bool {
    match (a, b) {
        (MediaLocation::Folder, MediaLocation::Folder) => true,
        (MediaLocation::Bucket(a), MediaLocation::Bucket(b)) => {
            (&a.bucket, &a.prefix, &a.endpoint) == (&b.bucket, &b.prefix, &b.endpoint)
        }
        _ => false,
    }
}

async fn migrate(args: &[String]) -> Result<(), CliError> {
    let o = parse_args(args)?;
    let src = Source::from_env()?;
    let root = Config::media_root(&src)?;
    let from = match &o.from {
        Some(url) => location_at(&src, "--from", url)?,
        None => Config::media_location(&src)?,
    };
    let to = location_at(&src, "--to", &o.to)?;
    if same_place(&from, &to) {
        return Err(usage(&format!(
            "the source and the target are the same store ({}): nothing to copy",
            url_of(&to)
        )));
    }
    let source = MediaStore::open(&root, &from)?;
    let target = MediaStore::open(&root, &to)?;
    if let Some(folder) = target.folder() {
        // Into a new media folder, as `serve` would make it.
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the target {}", folder.display()))?;
    }
    for (what, store) in [("source", &source), ("target", &target)] {
        store
            .probe()
            .await
            .with_context(|| format!("the {what} {} does not answer", store.describe()))?;
    }
    let url = Config::database_url(&src)?;
    let pool = super::connect(&src).await?;
    let (from_url, to_url) = (url_of(&from), url_of(&to));

    println!(
        "copying the media objects {} from {} to {}",
        if o.all {
            "(all of them)"
        } else {
            "that rows refer to"
        },
        source.describe(),
        target.describe()
    );
    if o.from.is_none() {
        println!(
            "the app may stay up: it stores new uploads in {} until VETTER_MEDIA_URL is {to_url} \
             and it is restarted; then run `vetter media migrate --from {from_url} --to {to_url}` \
             to copy those made in between (see `vetter media --help`)",
            source.describe()
        );
    }
    let mut run = Migration {
        source: &source,
        target: &target,
        pool: &pool,
        tally: Tally::default(),
        last_report: Instant::now(),
    };
    run.copy_everything(&url, &o).await?;
    pool.close().await;

    let t = &run.tally;
    println!(
        "done: {} objects; {} copied ({}){}, {} already there (verified), {} gone from the \
         source meanwhile (no row uses them), {} failed",
        t.seen(),
        t.copied,
        size_text(t.bytes),
        if t.replaced > 0 {
            format!(", {} of them over a damaged or incomplete copy", t.replaced)
        } else {
            String::new()
        },
        t.present,
        t.gone,
        t.failed
    );
    if t.failed > 0 {
        return Err(CliError::Failed(anyhow::anyhow!(
            "{} object{} could not be copied (listed above), so {} is not complete yet: fix the \
             cause and run the same command again (what is in place is kept)",
            t.failed,
            if t.failed == 1 { "" } else { "s" },
            target.describe()
        )));
    }
    if o.from.is_none() {
        println!(
            "next: set VETTER_MEDIA_URL={to_url} (VETTER_S3_* as now), restart the app, then run \
             `vetter media migrate --from {from_url} --to {to_url}`"
        );
    } else {
        println!("every object is in {to_url}; `vetter check` against it should find no problems");
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    copied: u64,
    /// Of those copied, how many replaced a damaged or incomplete copy.
    replaced: u64,
    present: u64,
    gone: u64,
    failed: u64,
    bytes: u64,
}

impl Tally {
    fn seen(&self) -> u64 {
        self.copied + self.present + self.gone + self.failed
    }
}

enum Outcome {
    Copied {
        bytes: u64,
        replaced: bool,
    },
    Present,
    /// Removed from the source meanwhile, and no row refers to it.
    Gone,
    /// A sentence for the operator.
    Failed(String),
}

struct Migration<'a> {
    source: &'a MediaStore,
    target: &'a MediaStore,
    pool: &'a PgPool,
    tally: Tally,
    last_report: Instant,
}

impl Migration<'_> {
    async fn copy_everything(&mut self, url: &str, o: &Options) -> anyhow::Result<()> {
        let mut done = HashSet::new();
        if o.all {
            let listed =
                self.source.list().await.with_context(|| {
                    format!("listing the objects in {}", self.source.describe())
                })?;
            let mut wanted = Vec::new();
            for l in listed {
                if media::parse_object_path(&l.path).is_some() {
                    wanted.push(l.path);
                } else {
                    println!(
                        "note: {} is not one of vetter's objects; not copied",
                        l.path
                    );
                }
            }
            let (source, target, pool) = (self.source, self.target, self.pool);
            let mut copies = futures_util::stream::iter(&wanted)
                .map(|rel| async move { (rel, copy_one(source, target, pool, rel).await) })
                .buffer_unordered(o.jobs);
            while let Some((rel, outcome)) = copies.next().await {
                self.record(rel, outcome);
            }
            drop(copies);
            done.extend(wanted);
        }

        // The rows are read after the listing: a row committed before this
        // statement began had its object in place before its commit, so
        // only objects uploaded from now on are left for the next run.
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .context("connecting to DATABASE_URL")?;
        let (source, target, pool) = (self.source, self.target, self.pool);
        let done = &done;
        let mut copies = files::stream_objects(&mut conn)
            .try_filter(|row| std::future::ready(!done.contains(&row.storage_path)))
            .map_ok(|row| async move {
                let outcome = copy_one(source, target, pool, &row.storage_path).await;
                Ok((row.storage_path, outcome))
            })
            .try_buffer_unordered(o.jobs);
        while let Some((rel, outcome)) = copies.try_next().await.context("reading the file rows")? {
            self.record(&rel, outcome);
        }
        drop(copies);
        conn.close().await?;
        Ok(())
    }

    fn record(&mut self, rel: &str, outcome: Outcome) {
        let t = &mut self.tally;
        match outcome {
            Outcome::Copied { bytes, replaced } => {
                t.copied += 1;
                t.bytes += bytes;
                if replaced {
                    t.replaced += 1;
                    println!("replaced {rel}: the target's copy was damaged or incomplete");
                }
            }
            Outcome::Present => t.present += 1,
            Outcome::Gone => t.gone += 1,
            Outcome::Failed(why) => {
                t.failed += 1;
                println!("failed {rel}: {why}");
            }
        }
        if self.last_report.elapsed() >= Duration::from_secs(10) {
            self.last_report = Instant::now();
            println!(
                "  {} objects so far: {} copied ({}), {} already there, {} failed",
                t.seen(),
                t.copied,
                size_text(t.bytes),
                t.present,
                t.failed
            );
        }
    }
}

/// Makes sure the target holds `rel` intact, copying it from the source
/// when it does not.
async fn copy_one(source: &MediaStore, target: &MediaStore, pool: &PgPool, rel: &str) -> Outcome {
    let Some((sha, _)) = media::parse_object_path(rel) else {
        return Outcome::Failed("not an object path".into());
    };
    // Whatever is there is read back: a copy that an earlier run (or a
    // crash, or a full disk) left short or damaged is replaced.
    let damaged = match target.size(rel).await {
        Ok(None) => false,
        Ok(Some(_)) => match target.hash(rel).await {
            Ok((_, got)) if got == sha => return Outcome::Present,
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Outcome::Failed(format!("reading the target's copy: {e}")),
        },
        Err(e) => return Outcome::Failed(format!("looking for it in the target: {e}")),
    };
    let stream = match source.read(rel).await {
        Ok((_, stream)) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return gone_or_lost(source, target, pool, rel).await
        }
        Err(e) => return Outcome::Failed(format!("reading it from the source: {e}")),
    };
    let temp = match target
        .write_temp(tokio_util::io::StreamReader::new(stream), u64::MAX)
        .await
    {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("copying it into a temporary file: {e}")),
    };
    if temp.sha256 != sha {
        return Outcome::Failed(format!(
            "the source's copy is damaged (its sha256 is {}); not copied (`vetter check` on the \
             source explains)",
            temp.sha256
        ));
    }
    let jobs = vec![(temp.path().to_path_buf(), rel.to_string())];
    let stored = if damaged {
        replace(target, pool, rel, sha, jobs).await
    } else {
        target.publish(jobs).await.1.map_err(anyhow::Error::new)
    };
    drop(temp);
    if let Err(e) = stored {
        return Outcome::Failed(format!("storing it in the target: {e:#}"));
    }
    match target.hash(rel).await {
        Ok((bytes, got)) if got == sha => Outcome::Copied {
            bytes,
            replaced: damaged,
        },
        Ok((_, got)) => Outcome::Failed(format!(
            "the target holds other bytes than were sent (sha256 {got}); run again to replace them"
        )),
        Err(e) => Outcome::Failed(format!("reading it back from the target: {e}")),
    }
}

/// Puts a good copy in place of a damaged one. Deleting an object is only
/// safe under its exclusive lock (see `media`): the target may be the store
/// the app uses already. Holding the lock through the publication also
/// means no upload finds the name missing in between.
async fn replace(
    target: &MediaStore,
    pool: &PgPool,
    rel: &str,
    sha: &str,
    jobs: Vec<(std::path::PathBuf, String)>,
) -> anyhow::Result<()> {
    let lock = crate::ingest::publish::exclusive(
        pool,
        &[media::bucket(sha).unwrap_or(0)],
        Duration::from_secs(30),
    )
    .await?;
    // Under the lock, look again: an upload may have put it right meanwhile.
    match target.hash(rel).await {
        Ok((_, got)) if got == sha => {}
        Ok(_) => {
            target
                .remove(rel)
                .await
                .context("removing the damaged copy")?;
            target.publish(jobs).await.1?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => target.publish(jobs).await.1?,
        Err(e) => return Err(anyhow::Error::new(e).context("reading the target's copy")),
    }
    lock.commit().await?;
    Ok(())
}

/// An object missing from the source: removed meanwhile (fine, if no row
/// refers to it any more), or lost.
async fn gone_or_lost(
    source: &MediaStore,
    target: &MediaStore,
    pool: &PgPool,
    rel: &str,
) -> Outcome {
    let unused = async {
        let mut conn = pool.acquire().await?;
        files::unreferenced(&mut conn, &[rel.to_string()]).await
    }
    .await;
    match unused {
        Ok(unused) if !unused.is_empty() => Outcome::Gone,
        Ok(_) => Outcome::Failed(format!(
            "missing from the source ({}) and not intact in the target ({}), though a row refers \
             to it (`vetter check` on the source explains)",
            source.describe(),
            target.describe()
        )),
        Err(e) => Outcome::Failed(format!(
            "missing from the source, and asking the database whether a row uses it failed: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_are_read_and_checked() {
        let o = parse_args(&args(&["--to", "s3://b-1/x", "--all", "--jobs", "8"])).unwrap();
        assert_eq!((o.to.as_str(), o.all, o.jobs), ("s3://b-1/x", true, 8));
        assert!(o.from.is_none());
        let o = parse_args(&args(&["--from", "folder", "--to", "s3://b-1"])).unwrap();
        assert_eq!(o.from.as_deref(), Some("folder"));
        for bad in [
            &["--all"][..],
            &["--to"],
            &["--to", "folder", "--jobs", "0"],
            &["--to", "folder", "--jobs", "99"],
            &["--to", "folder", "extra"],
        ] {
            assert!(
                matches!(parse_args(&args(bad)), Err(CliError::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_store_is_not_migrated_onto_itself() {
        let src = Source::from_pairs([
            ("VETTER_S3_ACCESS_KEY_ID", "k"),
            ("VETTER_S3_SECRET_ACCESS_KEY", "s"),
        ]);
        let at = |u: &str| Config::media_location_at(&src, u).unwrap();
        assert!(same_place(&at("folder"), &at("folder")));
        assert!(same_place(&at("s3://b-1/p"), &at("s3://b-1/p/")));
        assert!(!same_place(&at("s3://b-1/p"), &at("s3://b-1/q")));
        assert!(!same_place(&at("folder"), &at("s3://b-1/p")));
        assert!(matches!(
            location_at(&src, "--to", "s3://B"),
            Err(CliError::Usage(m)) if m.starts_with("--to \"s3://B\"")
        ));
        assert!(matches!(
            location_at(&Source::from_pairs([]), "--to", "s3://b-1"),
            Err(CliError::Config(_))
        ));
    }
}

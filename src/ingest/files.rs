//! Checking the files of an upload, rendering previews for FITS images, and
//! cutting every GIF into a strip of frames for the page's movie player.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::StreamExt;

use sqlx::PgConnection;

use super::{IngestError, ReceivedFile};
use crate::db::files::{self as file_rows, Animation, NewFile, Owner};
use crate::domain::upload::Problems;
use crate::fits::{self, Limits};
use crate::media::{ContentKind, MediaStore, TempFile};

/// A file ready to be attached under a role.
pub struct Prepared {
    pub role: String,
    pub kind: ContentKind,
    pub temp: TempFile,
    pub original_name: String,
    /// For a rendered preview: the role of the file it shows (the FITS
    /// file, or for a strip of frames the GIF).
    pub preview_of: Option<String>,
    /// For a GIF: how its `<role>_strip` is cut and played.
    pub animation: Option<Animation>,
}

/// Rendering one preview may not take longer than this.
const PREVIEW_TIMEOUT: Duration = Duration::from_secs(60);
/// Strips cut at once: each may hold tens of MB while it is made.
const MAX_PARALLEL_STRIPS: usize = 4;

/// Why a part's bytes are none of the kinds a candidate's files may be, in
/// terms of what was actually sent.
fn unrecognised(part: &str, f: &ReceivedFile) -> String {
    let head = &f.temp.head;
    let what = if f.temp.size < 6 {
        format!("is {} bytes long, too short to be any image", f.temp.size)
    } else if head.starts_with(b"\x1f\x8b") {
        "is gzip-compressed: send the uncompressed file (FITS may be tile-compressed inside)"
            .to_string()
    } else if f.claims_fits {
        "is named or typed as FITS, but does not start with SIMPLE = T".to_string()
    } else {
        "is not a FITS, PNG or GIF file (by its first bytes)".to_string()
    };
    format!("part {} {what}", crate::domain::text::shown(part))
}

/// Takes the parts named by each owner's `files` map out of `received`,
/// checking types and FITS headers; a problem is recorded under
/// `<prefix>.files.<role>`. Afterwards, parts that nobody named are problems.
pub fn take(
    owners: &[(String, &BTreeMap<String, String>)],
    received: &mut HashMap<String, ReceivedFile>,
    p: &mut Problems,
) -> Vec<Vec<(String, ReceivedFile)>> {
    let mut out = Vec::with_capacity(owners.len());
    for (prefix, files) in owners {
        let mut mine = Vec::new();
        for (role, part) in files.iter() {
            let field = format!("{prefix}files.{role}");
            match received.remove(part) {
                None => p.push(field, format!("no multipart part named {part:?} was sent")),
                Some(f) if f.kind.is_none() => p.push(field, unrecognised(part, &f)),
                Some(f) if f.claims_fits && f.kind != Some(ContentKind::Fits) => p.push(
                    field,
                    format!(
                        "part {part:?} is named or typed as FITS ({:?}) but its bytes are {}, not FITS",
                        f.original_name,
                        f.kind.map_or("unknown", ContentKind::describe)
                    ),
                ),
                Some(f) => mine.push((role.clone(), f)),
            }
        }
        out.push(mine);
    }
    for part in received.keys() {
        p.push(
            part.clone(),
            "this part is not named by any \"files\" entry",
        );
    }
    out
}

/// Checks each FITS file's header (off the async threads: it reads files).
pub async fn inspect_fits(
    files: &[Vec<(String, ReceivedFile)>],
    prefixes: &[String],
    p: &mut Problems,
) {
    let jobs: Vec<(String, std::path::PathBuf)> = files
        .iter()
        .zip(prefixes)
        .flat_map(|(fs, prefix)| {
            fs.iter()
                .filter(|(_, f)| f.kind == Some(ContentKind::Fits))
                .map(move |(role, f)| {
                    (format!("{prefix}files.{role}"), f.temp.path().to_path_buf())
                })
        })
        .collect();
    if jobs.is_empty() {
        return;
    }
    let results = tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .filter_map(|(field, path)| {
                fits::inspect(&path, &Limits::default())
                    .err()
                    .map(|e| (field, e.to_string()))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_else(|_| vec![("files".into(), "a FITS header could not be checked".into())]);
    for (field, msg) in results {
        p.push(field, msg);
    }
}

/// Turns an owner's accepted files into `Prepared`, rendering a PNG (and a
/// GIF for cubes) for each FITS file whose `<role>_png` was not sent, and
/// cutting every GIF, sent or rendered, into a `<role>_strip` PNG of its
/// frames (the GIF's row records how: [`Animation`]). A GIF that cannot be
/// cut is a problem at `<prefix>files.<role>`.
pub async fn prepare(
    media: &MediaStore,
    owners: Vec<Vec<(String, ReceivedFile)>>,
    prefixes: &[String],
) -> Result<Vec<Vec<Prepared>>, IngestError> {
    // Render in parallel, but no more at once than there are cores.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut jobs = Vec::new();
    for (i, files) in owners.iter().enumerate() {
        let sent: std::collections::HashSet<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
        for (role, f) in files {
            if f.kind == Some(ContentKind::Fits) && !sent.contains(format!("{role}_png").as_str()) {
                jobs.push((i, role.clone(), f.temp.path().to_path_buf()));
            }
        }
    }
    let rendered: Vec<_> = futures_util::stream::iter(jobs)
        .map(|(i, role, path)| async move {
            let r = fits::previews(path, Limits::default(), PREVIEW_TIMEOUT).await;
            (i, role, r)
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut problems = Problems::default();
    let mut out: Vec<Vec<Prepared>> = owners
        .into_iter()
        .map(|files| {
            files
                .into_iter()
                .map(|(role, f)| Prepared {
                    role,
                    kind: f.kind.expect("checked in take()"),
                    temp: f.temp,
                    original_name: f.original_name,
                    preview_of: None,
                    animation: None,
                })
                .collect()
        })
        .collect();
    for (i, role, result) in rendered {
        match result {
            Err(e) => problems.push(format!("{}files.{role}", prefixes[i]), e.to_string()),
            Ok(previews) => {
                let png = write(media, &previews.png).await?;
                out[i].push(Prepared {
                    role: format!("{role}_png"),
                    kind: ContentKind::Png,
                    temp: png,
                    original_name: String::new(),
                    preview_of: Some(role.clone()),
                    animation: None,
                });
                if let Some(gif) = previews.gif {
                    let gif = write(media, &gif).await?;
                    out[i].push(Prepared {
                        role: format!("{role}_gif"),
                        kind: ContentKind::Gif,
                        temp: gif,
                        original_name: String::new(),
                        preview_of: Some(role),
                        animation: None,
                    });
                }
            }
        }
    }
    strips(media, &mut out, prefixes, &mut problems).await?;
    if !problems.is_empty() {
        return Err(IngestError::Invalid(problems.0));
    }
    Ok(out)
}

/// Cuts each GIF among `out` into a strip, recording its [`Animation`] and
/// adding the strip as `<role>_strip`, derived from the GIF.
async fn strips(
    media: &MediaStore,
    out: &mut [Vec<Prepared>],
    prefixes: &[String],
    problems: &mut Problems,
) -> Result<(), IngestError> {
    let mut jobs = Vec::new();
    for (i, files) in out.iter().enumerate() {
        for (k, f) in files.iter().enumerate() {
            if f.kind != ContentKind::Gif {
                continue;
            }
            let strip_role = format!("{}_strip", f.role);
            if files.iter().any(|g| g.role == strip_role) {
                problems.push(
                    format!("{}files.{strip_role}", prefixes[i]),
                    format!(
                        "the role {strip_role:?} is kept for the strip of frames the server \
                         makes from the GIF {:?}: send this file under another role",
                        f.role
                    ),
                );
                continue;
            }
            jobs.push((i, k, f.temp.path().to_path_buf()));
        }
    }
    let parallel = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(MAX_PARALLEL_STRIPS);
    let mut cut: Vec<_> = futures_util::stream::iter(jobs)
        .map(|(i, k, path)| async move { (i, k, cut_strip(path).await) })
        .buffer_unordered(parallel)
        .collect()
        .await;
    cut.sort_by_key(|(i, k, _)| (*i, *k));
    for (i, k, result) in cut {
        let gif = &mut out[i][k];
        let strip = match result {
            Ok(strip) => strip,
            Err(CutError::Problem(msg)) if gif.preview_of.is_none() => {
                problems.push(format!("{}files.{}", prefixes[i], gif.role), msg);
                continue;
            }
            Err(CutError::Problem(msg) | CutError::Internal(msg)) => {
                return Err(IngestError::Internal(anyhow::anyhow!(
                    "cutting {} into frames: {msg}",
                    gif.role
                )))
            }
        };
        gif.animation = Some(Animation {
            frames: strip.frames as i32,
            frame_ms: strip.frame_ms as i32,
            width: strip.width as i32,
            height: strip.height as i32,
        });
        let role = gif.role.clone();
        let png = write(media, &strip.png).await?;
        out[i].push(Prepared {
            role: format!("{role}_strip"),
            kind: ContentKind::Png,
            temp: png,
            original_name: String::new(),
            preview_of: Some(role),
            animation: None,
        });
    }
    Ok(())
}

enum CutError {
    /// The GIF's fault: a problem for the client.
    Problem(String),
    /// The server's.
    Internal(String),
}

/// Reads a GIF and cuts it into a strip on the blocking pool, with the
/// preview time limit.
async fn cut_strip(path: std::path::PathBuf) -> Result<fits::Strip, CutError> {
    let job = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).map_err(|e| CutError::Internal(e.to_string()))?;
        fits::gif_strip(&bytes).map_err(|e| CutError::Problem(e.to_string()))
    });
    match tokio::time::timeout(PREVIEW_TIMEOUT, job).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(CutError::Internal(format!("the job failed: {e}"))),
        Err(_) => Err(CutError::Problem(format!(
            "cutting the GIF into frames took longer than {PREVIEW_TIMEOUT:?} and was abandoned"
        ))),
    }
}

async fn write(media: &MediaStore, bytes: &[u8]) -> Result<TempFile, IngestError> {
    media
        .write_temp_bytes(bytes)
        .await
        .map_err(|e| IngestError::Internal(anyhow::anyhow!("writing a preview: {e}")))
}

/// Inserts the file rows of one owner (sources before their previews, and
/// previews of previews, such as a rendered GIF's strip, last) and collects
/// the storage paths they replaced.
pub async fn attach(
    db: &mut PgConnection,
    owner: Owner,
    files: &[Prepared],
    replaced: &mut Vec<String>,
) -> sqlx::Result<()> {
    let mut ids = std::collections::HashMap::new();
    let (sources, mut previews): (Vec<&Prepared>, Vec<&Prepared>) =
        files.iter().partition(|f| f.preview_of.is_none());
    let derived: std::collections::HashSet<&str> =
        previews.iter().map(|f| f.role.as_str()).collect();
    previews.sort_by_key(|f| f.preview_of.as_deref().is_some_and(|r| derived.contains(r)));
    for f in sources.into_iter().chain(previews) {
        let new = NewFile {
            role: &f.role,
            kind: f.kind,
            size: f.temp.size,
            sha256: &f.temp.sha256,
            original_name: &f.original_name,
            derived_from: f.preview_of.as_ref().and_then(|r| ids.get(r).copied()),
            animation: f.animation,
        };
        let (id, old) = file_rows::upsert(db, owner, &new).await?;
        ids.insert(f.role.clone(), id);
        replaced.extend(old);
    }
    Ok(())
}

//! Checking the files of an upload and rendering previews for FITS images.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::StreamExt;

use crate::domain::upload::Problems;
use crate::fits::{self, Limits};
use crate::media::{ContentKind, MediaStore, TempFile};
use crate::web::api::body::ReceivedFile;
use crate::web::error::AppError;

/// A file ready to be attached under a role.
pub struct Prepared {
    pub role: String,
    pub kind: ContentKind,
    pub temp: TempFile,
    pub original_name: String,
    /// For a rendered preview: the role of the FITS file it shows.
    pub preview_of: Option<String>,
}

/// Rendering one preview may not take longer than this.
const PREVIEW_TIMEOUT: Duration = Duration::from_secs(60);

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
                Some(f) if f.kind.is_none() => p.push(
                    field,
                    format!("part {part:?} is not a FITS, PNG or GIF file (CSV must be sent as text/csv)"),
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
/// GIF for cubes) for each FITS file whose `<role>_png` was not sent. Only
/// the files in `wanted` (roles) are kept; the others are unchanged and
/// dropped here.
pub async fn prepare(
    media: &MediaStore,
    owners: Vec<Vec<(String, ReceivedFile)>>,
    prefixes: &[String],
) -> Result<Vec<Vec<Prepared>>, AppError> {
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
                });
                if let Some(gif) = previews.gif {
                    let gif = write(media, &gif).await?;
                    out[i].push(Prepared {
                        role: format!("{role}_gif"),
                        kind: ContentKind::Gif,
                        temp: gif,
                        original_name: String::new(),
                        preview_of: Some(role),
                    });
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(AppError::invalid(problems.0));
    }
    Ok(out)
}

async fn write(media: &MediaStore, bytes: &[u8]) -> Result<TempFile, AppError> {
    media
        .write_temp_bytes(bytes)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing a preview: {e}")))
}

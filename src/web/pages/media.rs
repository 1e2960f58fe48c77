//! `/media/{id}/{name}`: uploaded and rendered files, for signed-in users
//! only. Behind nginx the app checks access and hands the sending to nginx
//! (`X-Accel-Redirect` to an internal location), so media is never public
//! and never streamed through the app.

use poem::http::header;
use poem::web::{Data, Path};
use poem::{handler, Body, Request, Response};

use crate::db::files;
use crate::domain::FileId;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::headers::not_modified;
use crate::web::state::AppState;

fn extension(content_type: &str) -> &'static str {
    crate::media::ContentKind::from_mime(content_type).map_or("bin", |k| k.extension())
}

/// A file name for the download: the uploaded name if it is plain, else
/// the role with the type's extension.
fn download_name(f: &files::Stored) -> String {
    let plain = !f.original_name.is_empty()
        && f.original_name.len() <= 200
        && f.original_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if plain {
        f.original_name.clone()
    } else {
        format!("{}.{}", f.role, extension(&f.content_type))
    }
}

#[handler]
pub async fn serve(
    req: &Request,
    state: Data<&AppState>,
    Path((id, _name)): Path<(FileId, String)>,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let f = files::by_id(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("file"))?;
    drop(conn);
    let etag = format!("\"{}\"", f.sha256);
    if let Some(unchanged) = not_modified(req, &etag) {
        return Ok(unchanged);
    }
    let inline = f.content_type.starts_with("image/");
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        download_name(&f)
    );
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, f.content_type.as_str())
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::ETAG, etag)
        // The same URL can get new content when a pipeline re-sends a file.
        .header(header::CACHE_CONTROL, "private, no-cache");
    let missing = |e: std::io::Error| {
        tracing::error!(path = %f.storage_path, error = %e, "a stored file cannot be read");
        if e.kind() == std::io::ErrorKind::NotFound {
            AppError::NotFound("file (it is missing on the server: run vetter check)")
        } else {
            AppError::Internal(e.into())
        }
    };
    if let Some(prefix) = &state.config.media_accel_prefix {
        let target = state
            .media
            .accel_target(prefix, &f.storage_path)
            .await
            .map_err(missing)?;
        return Ok(builder.header("X-Accel-Redirect", target).finish());
    }
    let (size, stream) = state.media.read(&f.storage_path).await.map_err(missing)?;
    Ok(builder
        .header(header::CONTENT_LENGTH, size)
        .body(Body::from_bytes_stream(stream)))
}

//! `/candidates/{id}/sky/{file}`: one of a candidate's FITS images as the
//! decision screen draws it (assets/sky.js): the values north up, the shown
//! grid's WCS, the candidate's pixel, the beam, the unit, the stretch
//! limits and each plane's time. Drawing happens in the browser, so a
//! change of stretch or colour map costs no request.
//!
//! Reading a file is bounded by the preview time limit, and only a few run
//! at once; answers are kept in a small cache by content and position
//! (`AppState::sky`), so the reviewers of one survey share the work.

use std::sync::Arc;
use std::time::Duration;

use poem::http::header;
use poem::web::{Data, Path};
use poem::{handler, Request, Response};
use serde::Serialize;

use crate::db::files;
use crate::domain::{CandidateId, FileId, SkyPos};
use crate::fits::{self, BeamShape, PlaneLabel, SkyLimits, SkyWcs};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::headers::not_modified;
use crate::web::state::AppState;

const READ_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Serialize)]
struct Answer<'a> {
    width: usize,
    height: usize,
    /// Little-endian f32, plane after plane, rows from the top, base64.
    values: String,
    planes: &'a [PlaneLabel],
    unit: Option<&'a str>,
    wcs: Option<SkyWcs>,
    /// The candidate's position in the shown grid (pixel centres at
    /// integers), when the image has a WCS and the candidate is on it.
    target: Option<[f64; 2]>,
    beam: Option<BeamShape>,
    pixel_arcsec: Option<f64>,
    limits: SkyLimits,
}

#[handler]
pub async fn image(
    req: &Request,
    state: Data<&AppState>,
    Path((candidate, file)): Path<(CandidateId, FileId)>,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let f = files::candidate_fits(&mut conn, candidate, file)
        .await?
        .ok_or(AppError::NotFound("FITS image of this candidate"))?;
    drop(conn);
    // The answer depends on the file's content and the candidate's position.
    let etag = format!(
        "\"{}-{:x}-{:x}\"",
        f.sha256,
        f.pos.ra.degrees().to_bits(),
        f.pos.dec.degrees().to_bits()
    );
    if let Some(unchanged) = not_modified(req, &etag) {
        return Ok(unchanged);
    }
    let json = match state.sky.get(&etag) {
        Some(json) => json,
        None => {
            let _slot = state.sky.slot().await?;
            let copy = state.media.local_copy(&f.storage_path).await.map_err(|e| {
                tracing::error!(file = %file, error = %e, "a stored FITS file cannot be read");
                AppError::NotFound("FITS file (it is missing on the server: run vetter check)")
            })?;
            let sky = fits::sky(
                copy.path().to_path_buf(),
                fits::Limits::default(),
                READ_TIMEOUT,
            )
            .await
            .map_err(|e| {
                tracing::warn!(file = %file, error = %e, "a stored FITS file could not be read");
                AppError::Internal(anyhow::anyhow!("reading the image: {e}"))
            })?;
            let json = Arc::new(answer(&sky, f.pos)?);
            state.sky.put(etag.clone(), json.clone());
            json
        }
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ETAG, etag)
        // A pipeline can re-send the file under the same id: revalidate
        // after a few minutes, which the next candidate's prefetch outlives.
        .header(header::CACHE_CONTROL, "private, max-age=300")
        .body(json.as_str().to_owned()))
}

fn answer(sky: &fits::SkyImage, at: SkyPos) -> Result<String, AppError> {
    let mut bytes = Vec::with_capacity(sky.values.len() * 4);
    for v in &sky.values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let target = sky
        .pixel_of(at.ra.degrees(), at.dec.degrees())
        .and_then(|(x, y)| {
            let near = x > -0.5 * sky.width as f64
                && y > -0.5 * sky.height as f64
                && x < 1.5 * sky.width as f64
                && y < 1.5 * sky.height as f64;
            near.then_some([x, y])
        });
    let a = Answer {
        width: sky.width,
        height: sky.height,
        values: crate::base64(&bytes),
        planes: &sky.planes,
        unit: sky.unit.as_deref(),
        wcs: sky.wcs,
        target,
        beam: sky.beam_shape(),
        pixel_arcsec: sky.pixel_arcsec(),
        limits: sky.limits(),
    };
    serde_json::to_string(&a).map_err(|e| AppError::Internal(e.into()))
}

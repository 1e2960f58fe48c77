//! `/candidates/{id}/details`: what the decision screen keeps under "All
//! details" (key i): every position and measurement, the attributes, the
//! files, the beam's and observation's pictures and the rating history.
//! Fetched when the panel first opens, so that the screen a reviewer steps
//! through stays small and quick to swap; the history obeys the blind rule.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;
use poem::web::{Data, Path};

use crate::db::candidates::{self as cand, Detail, MetricValue};
use crate::db::ratings::{self, RatingView};
use crate::domain::{frames, sexagesimal, CandidateId, SkyPos};
use crate::web::pages::candidate::{downloads, Figures, Link};
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

/// An extra position of the candidate (deep, forced, …) and how far it lies.
pub struct Position {
    pub kind: String,
    pub pos: SkyPos,
    pub sep_arcsec: f64,
}

#[derive(Template, WebTemplate)]
#[template(path = "candidate_details/_details.html")]
pub struct DetailsFragment {
    pub c: Detail,
    pub ra_hms: String,
    pub dec_dms: String,
    pub gal_l: f64,
    pub gal_b: f64,
    pub obs_start: String,
    pub metrics: Vec<MetricValue>,
    pub attributes: Vec<(String, String)>,
    pub positions: Vec<Position>,
    pub downloads: Vec<Link>,
    pub context: Vec<Link>,
    pub has_light_curve: bool,
    /// Earlier (replaced) ratings, only where the blind rule allows.
    pub history: Vec<RatingView>,
}

#[handler]
pub async fn details(
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<CandidateId>,
) -> WebResult<DetailsFragment> {
    let mut conn = state.pool.acquire().await?;
    let c = cand::detail(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let pos = c.pos;
    let (gal_l, gal_b) = frames::equatorial_to_galactic(pos);
    let metrics = cand::metrics(&mut conn, id, c.project_id).await?;
    let positions = cand::positions(&mut conn, id)
        .await?
        .into_iter()
        .map(|p| Position {
            sep_arcsec: frames::angular_separation_deg(pos, p.pos) * 3600.0,
            kind: p.kind,
            pos: p.pos,
        })
        .collect();
    let files = cand::files(&mut conn, &c).await?;
    let has_light_curve = cand::light_curve(&mut conn, id).await?.is_some();
    let mine = ratings::mine(&mut conn, user.id, id).await?;
    let visibility = ratings::visibility(&mut conn, user.id, user.role).await?;
    let history = if visibility.sees_others(c.project_id, mine.is_some()) {
        ratings::history_for(&mut conn, id).await?
    } else {
        Vec::new()
    };
    let attributes = c
        .attributes
        .0
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.replace('_', " "), text)
        })
        .collect();
    Ok(DetailsFragment {
        ra_hms: sexagesimal::format_ra_hms(pos.ra, 2),
        dec_dms: sexagesimal::format_dec_dms(pos.dec, 1),
        gal_l,
        gal_b,
        obs_start: c
            .obs_start
            .map_or("unknown".into(), crate::web::plumbing::filters::utc_second),
        metrics,
        attributes,
        positions,
        downloads: downloads(&files),
        context: Figures::of(id, &files).context,
        has_light_curve,
        history,
        c,
    })
}

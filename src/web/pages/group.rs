//! `/candidates/{id}/group`: the rating page's panel on the candidate's
//! group (the candidates of its project within the project's radius, friends
//! of friends): how often and in how many observations it was seen, the
//! others as links, and their peak fluxes over time. Fetched once the
//! candidate is on screen, like the nearby list.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;
use poem::web::{Data, Path};
use time::OffsetDateTime;

use crate::db::batches::MAX_BATCH;
use crate::db::groups::{self, Member};
use crate::domain::chart::ChartView;
use crate::domain::CandidateId;
use crate::plot::{self, LightCurveChart};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

/// At most this many members are listed and drawn.
const MEMBERS_SHOWN: i64 = 200;

#[derive(Template, WebTemplate)]
#[template(path = "group/_panel.html")]
pub struct GroupFragment {
    id: CandidateId,
    /// Candidates in the group, this one included.
    count: i64,
    observations: i64,
    others: Vec<Member>,
    /// How many members are not listed.
    unlisted: i64,
    /// The peak fluxes over observation time, when the project has a flux
    /// metric and two or more members have a value and a time.
    chart: Option<String>,
    metric: Option<String>,
    /// A whole group can be rated at once up to the batch bound.
    rateable: bool,
}

impl GroupFragment {
    pub fn when(&self, m: &Member) -> String {
        m.start_time.map_or_else(
            || "no time".into(),
            crate::web::plumbing::filters::utc_minute,
        )
    }
}

#[handler]
pub async fn panel(
    state: Data<&AppState>,
    Path(id): Path<CandidateId>,
) -> WebResult<GroupFragment> {
    let mut conn = state.pool.acquire().await?;
    let (project, group) = groups::group_of(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let (count, observations) = groups::size(&mut conn, project, group).await?;
    let metric = groups::peak_flux_metric(&mut conn, project).await?;
    let members = groups::members(
        &mut conn,
        project,
        group,
        metric.as_ref().map(|m| m.0),
        MEMBERS_SHOWN,
    )
    .await?;
    let chart = metric
        .as_ref()
        .and_then(|(_, _, unit)| peak_chart(&members, unit));
    let listed = members.len() as i64;
    let others = members.into_iter().filter(|m| m.id != id).collect();
    Ok(GroupFragment {
        id,
        count: count.max(1),
        observations: observations.max(1),
        others,
        unlisted: (count - listed).max(0),
        chart,
        metric: metric.map(|(_, label, _)| label),
        rateable: count > 1 && count as usize <= MAX_BATCH,
    })
}

/// The members' peak fluxes against their observations' start times, drawn
/// as the decision screen draws a light curve (without its controls).
fn peak_chart(members: &[Member], unit: &str) -> Option<String> {
    let (times, flux): (Vec<OffsetDateTime>, Vec<f64>) = members
        .iter()
        .filter_map(|m| Some((m.start_time?, m.peak.filter(|v| v.is_finite())?)))
        .unzip();
    (times.len() >= 2).then(|| {
        plot::light_curve_plot(&LightCurveChart {
            unit,
            times: &times,
            flux: &flux,
            err: None,
            obs_start: None,
            view: ChartView::default(),
        })
        .svg
    })
}

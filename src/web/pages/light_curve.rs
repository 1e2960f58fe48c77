//! `/candidates/{id}/light-curve`: the decision screen's light curve, as a
//! fragment that htmx swaps when the reviewer zooms in time (keys, buttons,
//! or dragging across the plot) or switches the flux axis between linear
//! and log. The chart is drawn on the server (`crate::plot`); the buttons
//! carry the URLs of the neighbouring views, so zooming needs no script.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;
use poem::web::{Data, Path, Query};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::db::candidates::{self as cand, StoredLightCurve};
use crate::domain::chart::{ChartParams, ChartView, FluxScale, TimeWindow};
use crate::domain::CandidateId;
use crate::plot::{self, LightCurveChart, Plot};
use crate::web::paths;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

/// A drawn light curve and the views one step away from it.
pub struct LightCurveBox {
    pub id: CandidateId,
    pub plot: Plot,
    pub view: ChartView,
}

impl LightCurveBox {
    /// The candidate's light curve drawn as `view` says; `None` when it has
    /// none.
    pub async fn load(
        conn: &mut PgConnection,
        id: CandidateId,
        obs_start: Option<OffsetDateTime>,
        view: ChartView,
    ) -> sqlx::Result<Option<Self>> {
        Ok(cand::light_curve(conn, id)
            .await?
            .map(|lc| Self::draw(id, &lc, obs_start, view)))
    }

    /// A light curve already read, drawn as `view` says.
    pub fn draw(
        id: CandidateId,
        lc: &StoredLightCurve,
        obs_start: Option<OffsetDateTime>,
        view: ChartView,
    ) -> Self {
        let plot = plot::light_curve_plot(&LightCurveChart {
            unit: &lc.unit,
            times: &lc.times,
            flux: &lc.flux,
            err: lc.flux_err.as_deref(),
            obs_start,
            view,
        });
        LightCurveBox { id, plot, view }
    }

    fn url(&self, window: Option<TimeWindow>, flux: FluxScale) -> String {
        paths::candidate_light_curve_chart(self.id, &ChartView { window, flux })
    }

    pub fn zoomed(&self) -> bool {
        self.view.window.is_some()
    }

    /// The middle half of what is shown.
    pub fn zoom_in(&self) -> String {
        let window = self.plot.shown_ms.and_then(|(a, b)| {
            let quarter = (b - a) / 4;
            let mid = a + (b - a) / 2;
            TimeWindow::new(mid - quarter, mid + quarter).ok()
        });
        self.url(window.or(self.view.window), self.view.flux)
    }

    /// Twice what is shown, about the same middle, within the whole curve.
    pub fn zoom_out(&self) -> String {
        let window = match (self.plot.shown_ms, self.plot.whole_ms) {
            (Some((a, b)), Some((wa, wb))) => {
                let (lo, hi) = (
                    a.saturating_sub(b - a).max(wa),
                    b.saturating_add(b - a).min(wb),
                );
                if lo <= wa && hi >= wb {
                    None
                } else {
                    TimeWindow::new(lo, hi).ok()
                }
            }
            _ => None,
        };
        self.url(window, self.view.flux)
    }

    pub fn whole(&self) -> String {
        self.url(None, self.view.flux)
    }

    /// The same stretch of time on the other flux axis.
    pub fn other_flux(&self) -> String {
        self.url(self.view.window, self.plot.flux.other())
    }

    /// Where the page's script asks for a dragged stretch of time (it adds
    /// `from` and `to`).
    pub fn base(&self) -> String {
        self.url(None, self.plot.flux)
    }

    /// Said beside the controls: what the axes show.
    pub fn state(&self) -> &'static str {
        match (self.view.flux, self.plot.flux) {
            (FluxScale::Log, FluxScale::Linear) => "linear: no flux above 0 to put on a log axis",
            (_, FluxScale::Log) => "log flux",
            (_, FluxScale::Linear) => "linear flux",
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "light_curve/_chart.html")]
pub struct ChartFragment {
    pub light_curve: Option<LightCurveBox>,
}

#[handler]
pub async fn chart(
    state: Data<&AppState>,
    Path(id): Path<CandidateId>,
    Query(params): Query<ChartParams>,
) -> WebResult<ChartFragment> {
    let view = params.parse()?;
    let mut conn = state.pool.acquire().await?;
    let c = cand::detail(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let light_curve = LightCurveBox::load(&mut conn, id, c.obs_start, view).await?;
    if light_curve.is_none() {
        return Err(AppError::NotFound("light curve"));
    }
    Ok(ChartFragment { light_curve })
}

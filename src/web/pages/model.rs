//! `/projects/{slug}/model`: the project's real/bogus model: how well it
//! does out of fold, what it looks at, how its scores moved, and the
//! models before it. Administrators can train one now.
//!
//! Everything here is a figure over the whole project, none a verdict on
//! one candidate. How many candidates the team called real is a count of
//! others' verdicts, so only a viewer who sees the project's ratings gets
//! it (the blind rule).

use askama::Template;
use askama_web::WebTemplate;
use poem::web::{Data, Path};
use poem::{handler, Request, Response};

use crate::db::models::{self, Stored};
use crate::db::projects::{self, Project};
use crate::model::run;
use crate::model::MIN_PER_CLASS;
use crate::web::pages::admin::Admin;
use crate::web::pages::project;
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// Models listed in the history.
const HISTORY: i64 = 20;

/// A feature and its share of the model's total gain, largest first.
pub struct Importance {
    pub name: String,
    pub percent: f64,
}

#[derive(Template, WebTemplate)]
#[template(path = "model/page.html")]
pub struct ModelPage {
    layout: Layout,
    project: Project,
    current: Option<Stored>,
    importances: Vec<Importance>,
    history: Vec<Stored>,
    /// Labelled candidates now (real, not real), for "needs N more".
    labelled: (usize, usize),
    /// Whether the viewer sees the project's ratings: the counts by verdict.
    sees_verdicts: bool,
    min_per_class: usize,
    retrain_every: i32,
    is_admin: bool,
}

#[handler]
pub async fn page(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> WebResult<ModelPage> {
    let p = project(&state, &slug).await?;
    let mut conn = state.pool.acquire().await?;
    let current = models::current(&mut *conn, p.id).await?;
    let history = models::recent(&mut *conn, p.id, HISTORY).await?;
    let labels = models::labels(&mut conn, p.id).await?;
    let real = labels.iter().filter(|l| l.1 > 0.5).count();
    let rules = projects::review_rules(&mut *conn, p.id).await?;
    let sees_verdicts = crate::db::ratings::visibility(&mut conn, user.id, user.role)
        .await?
        .sees_project(p.id);
    let mut importances: Vec<Importance> = current
        .as_ref()
        .map(|m| {
            m.features
                .iter()
                .zip(m.importances.iter())
                .map(|(name, share)| Importance {
                    name: name.clone(),
                    percent: share * 100.0,
                })
                .collect()
        })
        .unwrap_or_default();
    importances.sort_by(|a, b| b.percent.total_cmp(&a.percent));
    Ok(ModelPage {
        layout: Layout::for_request(req).await?,
        project: p,
        current,
        importances,
        history,
        labelled: (real, labels.len() - real),
        sees_verdicts,
        min_per_class: MIN_PER_CLASS,
        retrain_every: rules.model_retrain_every,
        is_admin: user.is_admin(),
    })
}

/// Starts training and answers at once: the page shows the new model when
/// it is stored.
#[handler]
pub async fn train(
    state: Data<&AppState>,
    session: TypedSession,
    _admin: Admin,
    Path(slug): Path<String>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let message = if run::start(state.pools.long.clone(), p.id) {
        format!(
            "Training {}'s model: it takes seconds to a minute; reload this page to see it.",
            p.name
        )
    } else {
        "A model is being trained or scored now; reload this page in a moment.".to_string()
    };
    session.flash(FlashKind::Success, message).await?;
    Ok(see_other(&paths::project_model(&p.slug)))
}

//! `/admin/projects/{slug}/review`: how a project's queue learns and
//! retires candidates: how often its model is trained, how many agreeing
//! verdicts settle a candidate, and whether disputed candidates are kept
//! to experts.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::db::projects::{self, Project, ReviewRules};
use crate::domain::consensus::ConsensusK;
use crate::domain::Problem;
use crate::web::pages::admin::Admin;
use crate::web::pages::project;
use crate::web::paths;
use crate::web::plumbing::access::see_other;
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// The largest retrain step: beyond it a survey's model would hardly ever
/// learn from its reviewers.
const MAX_RETRAIN_EVERY: i64 = 100_000;

#[derive(Template, WebTemplate)]
#[template(path = "admin/project_review.html")]
pub struct ReviewPage {
    layout: Layout,
    project: Project,
    /// As stored, or as typed.
    retrain_every: String,
    consensus_k: String,
    experts_only: bool,
    problems: Vec<Problem>,
}

#[handler]
pub async fn edit(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> WebResult<ReviewPage> {
    let p = project(&state, &slug).await?;
    let r = projects::review_rules(&state.pool, p.id).await?;
    Ok(ReviewPage {
        layout: Layout::for_request(req).await?,
        project: p,
        retrain_every: r.model_retrain_every.to_string(),
        consensus_k: r.consensus_k.to_string(),
        experts_only: r.disputes_experts_only,
        problems: Vec::new(),
    })
}

#[derive(Deserialize)]
pub struct RulesForm {
    // Missing fields are refused by `parse` with the others' messages.
    #[serde(default)]
    retrain_every: String,
    #[serde(default)]
    consensus_k: String,
    experts_only: Option<String>,
}

fn parse(f: &RulesForm) -> Result<ReviewRules, Vec<Problem>> {
    let mut problems = Vec::new();
    let retrain = match f.retrain_every.trim().parse::<i64>() {
        Ok(n) if (0..=MAX_RETRAIN_EVERY).contains(&n) => n as i32,
        _ => {
            problems.push(Problem::new(
                "retrain_every",
                format!(
                    "Retrain after: a whole number of ratings from 0 (only on demand) to {MAX_RETRAIN_EVERY}, not {:?}.",
                    f.retrain_every
                ),
            ));
            0
        }
    };
    let k = match f
        .consensus_k
        .trim()
        .parse::<i64>()
        .map_err(|_| {
            format!(
                "the verdicts that settle a candidate are a whole number, not {:?}",
                f.consensus_k
            )
        })
        .and_then(ConsensusK::new)
    {
        Ok(k) => k.get(),
        Err(e) => {
            problems.push(Problem::new("consensus_k", format!("Settled after: {e}.")));
            1
        }
    };
    let experts_only = match f.experts_only.as_deref() {
        None => false,
        Some("on") => true,
        Some(other) => {
            problems.push(Problem::new(
                "experts_only",
                format!("Experts only: a checkbox sends \"on\", not {other:?}."),
            ));
            false
        }
    };
    if problems.is_empty() {
        Ok(ReviewRules {
            model_retrain_every: retrain,
            consensus_k: k,
            disputes_experts_only: experts_only,
        })
    } else {
        Err(problems)
    }
}

#[handler]
pub async fn save(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(slug): Path<String>,
    Form(f): Form<RulesForm>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let rules = match parse(&f) {
        Ok(r) => r,
        Err(problems) => {
            let page = ReviewPage {
                layout: Layout::for_request(req).await?,
                project: p,
                retrain_every: f.retrain_every,
                consensus_k: f.consensus_k,
                experts_only: f.experts_only.is_some(),
                problems,
            };
            return Ok(page.with_status(StatusCode::BAD_REQUEST).into_response());
        }
    };
    let mut tx = state.pool.begin().await?;
    if projects::set_review_rules(&mut *tx, p.id, &rules).await? {
        admin
            .audit(
                &mut *tx,
                "project.review_rules",
                &p.slug,
                json!({
                    "retrain_every": rules.model_retrain_every,
                    "consensus_k": rules.consensus_k,
                    "disputes_experts_only": rules.disputes_experts_only,
                }),
            )
            .await?;
    }
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            format!(
                "{}: settled after {} agreeing verdict{}; disputes for {}; {}.",
                p.name,
                rules.consensus_k,
                if rules.consensus_k == 1 { "" } else { "s" },
                if rules.disputes_experts_only {
                    "experts only"
                } else {
                    "everyone"
                },
                if rules.model_retrain_every == 0 {
                    "the model is trained on demand".to_string()
                } else {
                    format!(
                        "the model is trained after every {} ratings",
                        rules.model_retrain_every
                    )
                }
            ),
        )
        .await?;
    Ok(see_other(&paths::admin_project_review(&p.slug)))
}

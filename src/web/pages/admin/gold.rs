//! `/admin/projects/{slug}/gold`: a project's gold candidates, whose true
//! verdict is known. Admins mark candidates gold (or a pipeline flags them
//! at upload), take the mark off, and set the share of "next" draws that
//! offer one (`db::queue::offer`). Reviewers cannot tell a gold candidate
//! from another; `/ratings` measures them on these.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::db::gold::{self, GoldRow, Source};
use crate::db::projects::Project;
use crate::domain::gold::{parse_lines, GoldRate, GoldVerdict};
use crate::domain::text::shown;
use crate::domain::{CandidateId, Problem};
use crate::web::pages::admin::Admin;
use crate::web::pages::project;
use crate::web::paths;
use crate::web::plumbing::access::see_other;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// The page lists this many, most recently marked first; the rest are
/// counted.
const LISTED: i64 = 500;

#[derive(Template, WebTemplate)]
#[template(path = "admin/project_gold.html")]
pub struct GoldPage {
    layout: Layout,
    project: Project,
    rows: Vec<GoldRow>,
    total: i64,
    /// The rate as stored, or as typed.
    rate: String,
    /// The mark form as typed, when it was refused.
    lines: String,
    verdict: String,
    problems: Vec<Problem>,
}

impl GoldPage {
    pub fn verdicts(&self) -> [GoldVerdict; 2] {
        GoldVerdict::ALL
    }
}

/// What the forms leave as typed when a page is drawn again.
#[derive(Default)]
struct Typed {
    rate: Option<String>,
    lines: String,
    verdict: String,
}

async fn gold_page(
    req: &Request,
    state: &AppState,
    project: Project,
    typed: Typed,
    problems: Vec<Problem>,
) -> WebResult<GoldPage> {
    let mut conn = state.pool.acquire().await?;
    let (rows, total) = gold::list(&mut conn, project.id, LISTED).await?;
    let rate = match typed.rate {
        Some(r) => r,
        None => gold::rate(&mut *conn, project.id).await?.to_string(),
    };
    Ok(GoldPage {
        layout: Layout::for_request(req).await?,
        project,
        rows,
        total,
        rate,
        lines: typed.lines,
        verdict: typed.verdict,
        problems,
    })
}

/// A page drawn again with what was wrong, as 400.
async fn refused(
    req: &Request,
    state: &AppState,
    project: Project,
    typed: Typed,
    problems: Vec<Problem>,
) -> WebResult<Response> {
    let drawn = gold_page(req, state, project, typed, problems).await?;
    Ok(drawn.with_status(StatusCode::BAD_REQUEST).into_response())
}

#[handler]
pub async fn page(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> WebResult<GoldPage> {
    let p = project(&state, &slug).await?;
    gold_page(req, &state, p, Typed::default(), Vec::new()).await
}

#[derive(Deserialize)]
pub struct MarkForm {
    #[serde(default)]
    lines: String,
    #[serde(default)]
    verdict: String,
}

/// Marks the listed candidates gold with one true verdict. A line that is
/// malformed, names no candidate of the project, or a bare name found in
/// several observations refuses the whole list, every such line named.
#[handler]
pub async fn mark(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(slug): Path<String>,
    Form(f): Form<MarkForm>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let mut problems = Vec::new();
    let verdict = match f.verdict.parse::<GoldVerdict>() {
        Ok(v) => Some(v),
        Err(_) => {
            problems.push(Problem::new(
                "verdict",
                "Choose the true verdict of the listed candidates: real or not real",
            ));
            None
        }
    };
    let lines = parse_lines(&f.lines).unwrap_or_else(|e| {
        problems.extend(e.into_iter().map(|m| Problem::new("lines", m)));
        Vec::new()
    });
    let mut tx = state.pool.begin().await?;
    let found = gold::find(&mut tx, p.id, &lines).await?;
    let mut chosen = Vec::new();
    for (line, found) in lines.iter().zip(found) {
        match found.as_slice() {
            [] => problems.push(Problem::new(
                "lines",
                format!("{}: no candidate of {} has this name", shown(&line.text), p.name),
            )),
            [one] => chosen.push(one.clone()),
            several => problems.push(Problem::new(
                "lines",
                format!(
                    "{}: a candidate of that name is in {} observations ({}): write observation/name",
                    shown(&line.text),
                    several.len(),
                    several.iter().map(|c| c.observation.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    let Some(verdict) = verdict.filter(|_| problems.is_empty()) else {
        drop(tx);
        let typed = Typed {
            rate: None,
            lines: f.lines,
            verdict: f.verdict,
        };
        return refused(req, &state, p, typed, problems).await;
    };
    // "c01" and "SB1/c01" may name one candidate.
    chosen.sort_by_key(|c| c.id);
    chosen.dedup_by_key(|c| c.id);
    let marks: Vec<(CandidateId, GoldVerdict)> = chosen.iter().map(|c| (c.id, verdict)).collect();
    let (written, n) = gold::mark(&mut tx, p.id, &marks, Source::Admin, admin.user.id).await?;
    let names: Vec<String> = chosen
        .iter()
        .filter(|c| written.contains(&c.id))
        .map(|c| format!("{}/{}", c.observation, c.name))
        .collect();
    admin
        .audit(
            &mut *tx,
            "gold.mark",
            &p.slug,
            json!({"verdict": verdict.as_str(), "candidates": names,
                   "added": n.added, "changed": n.changed, "unchanged": n.unchanged}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            format!(
                "{}: {} candidate{} marked gold ({}): {} new, {} changed, {} already so.",
                p.name,
                marks.len(),
                if marks.len() == 1 { "" } else { "s" },
                verdict.label().to_lowercase(),
                n.added,
                n.changed,
                n.unchanged
            ),
        )
        .await?;
    Ok(see_other(&paths::admin_project_gold(&p.slug)))
}

#[derive(Deserialize)]
pub struct RateForm {
    #[serde(default)]
    gold_rate: String,
}

#[handler]
pub async fn set_rate(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(slug): Path<String>,
    Form(f): Form<RateForm>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let rate = match f.gold_rate.parse::<GoldRate>() {
        Ok(r) => r,
        Err(e) => {
            let typed = Typed {
                rate: Some(f.gold_rate),
                ..Typed::default()
            };
            let problem = Problem::new("gold_rate", capitalised(&e));
            return refused(req, &state, p, typed, vec![problem]).await;
        }
    };
    let mut tx = state.pool.begin().await?;
    let before = gold::set_rate(&mut tx, p.id, rate).await?;
    admin
        .audit(
            &mut *tx,
            "gold.rate",
            &p.slug,
            json!({"from": before, "to": rate.get()}),
        )
        .await?;
    tx.commit().await?;
    let said = if rate.get() > 0.0 {
        format!(
            "about one \"next\" in {:.0} offers a gold candidate",
            1.0 / rate.get()
        )
    } else {
        "gold candidates are walked like any other".into()
    };
    session
        .flash(
            FlashKind::Success,
            format!("{}: gold rate {} ({said}).", p.name, rate.get()),
        )
        .await?;
    Ok(see_other(&paths::admin_project_gold(&p.slug)))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// Takes the gold mark off one candidate.
#[handler]
pub async fn remove(
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path((slug, candidate)): Path<(String, CandidateId)>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let mut tx = state.pool.begin().await?;
    let gone = gold::remove(&mut tx, p.id, candidate)
        .await?
        .ok_or(AppError::NotFound("gold candidate"))?;
    let label = format!("{}/{}", gone.observation, gone.name);
    admin
        .audit(
            &mut *tx,
            "gold.remove",
            &format!("{}/{label}", p.slug),
            json!({"verdict": gone.verdict.as_str(), "source": gone.source}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            format!(
                "{label} is no longer gold (it was {}).",
                gone.verdict.label().to_lowercase()
            ),
        )
        .await?;
    Ok(see_other(&paths::admin_project_gold(&p.slug)))
}

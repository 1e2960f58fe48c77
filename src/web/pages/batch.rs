//! Rating many candidates at once: the whole group of a candidate, or every
//! candidate a table filter selects, with one verdict and tags.
//!
//! `GET /batch` is the panel: first the verdict and tags, then a
//! confirmation that says how many candidates it will change. Only the
//! `POST` writes, in one transaction, and only if the selection still
//! holds as many candidates as the confirmation said. Each candidate gets
//! an ordinary rating of the reviewer (`db::batches`); the batch has an
//! audit entry and can be taken back as a whole.

use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde_json::json;
use sqlx::PgConnection;

use crate::db::audit::{self, Entry};
use crate::db::batches::{self, Applied, BatchRating, Undone, MAX_BATCH};
use crate::db::users::User;
use crate::db::{candidates as cand, groups, ratings, search};
use crate::domain::filter::CandidateFilter;
use crate::domain::rating::RatingInput;
use crate::domain::{BatchId, CandidateId, ProjectId, TagId, Verdict};
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::htmx::is_htmx;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// What the reviewer asked to rate.
#[derive(Debug, Clone)]
enum Selection {
    /// The whole group of this candidate.
    Group(CandidateId),
    /// Every candidate this table query selects.
    Filter(String),
}

/// The panel's and the form's fields, read once.
struct Params {
    selection: Selection,
    verdict: Option<String>,
    tags: Vec<String>,
    expected: Option<usize>,
}

fn params(pairs: Vec<(String, String)>) -> WebResult<Params> {
    let (mut group, mut filter, mut verdict, mut expected) = (None, None, None, None);
    let mut tags = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "group" => {
                group =
                    Some(v.parse::<CandidateId>().map_err(|_| {
                        AppError::BadRequest(format!("{v:?} is not a candidate id"))
                    })?)
            }
            "filter" => filter = Some(v),
            "verdict" if !v.is_empty() => verdict = Some(v),
            "tags" => tags.push(v),
            "expected" => {
                expected = Some(v.parse::<usize>().map_err(|_| {
                    AppError::BadRequest(format!("{v:?} is not a number of candidates"))
                })?)
            }
            _ => {}
        }
    }
    let selection = match (group, filter) {
        (Some(c), None) => Selection::Group(c),
        (None, Some(f)) if f.len() <= 8_000 => Selection::Filter(f),
        (None, Some(_)) => return Err(AppError::BadRequest("the filter is too long".into())),
        _ => {
            return Err(AppError::BadRequest(
                "say what to rate: a group (group=ID) or a table filter (filter=QUERY)".into(),
            ))
        }
    };
    Ok(Params {
        selection,
        verdict,
        tags,
        expected,
    })
}

/// The candidates a selection holds (at most one more than a batch may
/// rate, which is enough to refuse it), with their project.
struct Selected {
    project: ProjectId,
    ids: Vec<CandidateId>,
    /// "the group of c01", "the 40 candidates of the filter".
    what: String,
    /// Where a plain browser returns to.
    back: String,
}

impl Selected {
    fn too_many(&self) -> bool {
        self.ids.len() > MAX_BATCH
    }
}

async fn select(conn: &mut PgConnection, user: &User, s: &Selection) -> WebResult<Selected> {
    let limit = MAX_BATCH as i64 + 1;
    match s {
        Selection::Group(c) => {
            let d = cand::detail(conn, *c)
                .await?
                .ok_or(AppError::NotFound("candidate"))?;
            let (project, group) = groups::group_of(conn, *c)
                .await?
                .ok_or(AppError::NotFound("candidate"))?;
            let ids = groups::member_ids(conn, project, group, limit).await?;
            Ok(Selected {
                project,
                ids,
                what: format!("the group of {}", d.name),
                back: paths::candidate(*c),
            })
        }
        Selection::Filter(query) => {
            let f = CandidateFilter::from_query(query);
            let r = search::resolve(conn, &f).await?;
            if let Some(p) = r.problems.first() {
                return Err(AppError::BadRequest(format!(
                    "the filter cannot be used: {}",
                    p.message
                )));
            }
            let project = r.scope.project_id.ok_or_else(|| {
                AppError::BadRequest(
                    "choose a project in the filter to rate every candidate it shows".into(),
                )
            })?;
            let v = ratings::visibility(conn, user.id, user.role).await?;
            // One row per group is how the table shows them; a batch rates
            // every candidate the filter selects.
            let scope = search::Scope {
                one_per_group: false,
                ..r.scope
            };
            let ids = batches::filter_ids(conn, &scope, &v, limit).await?;
            Ok(Selected {
                project,
                ids,
                what: "every candidate the table filter shows".into(),
                back: format!("{}?{}", paths::CANDIDATES, f.to_query()),
            })
        }
    }
}

fn selection_fields(s: &Selection) -> (&'static str, String) {
    match s {
        Selection::Group(c) => ("group", c.to_string()),
        Selection::Filter(q) => ("filter", q.clone()),
    }
}

pub struct TagChoice {
    pub id: TagId,
    pub name: String,
    pub checked: bool,
}

/// The panel's two steps.
pub enum Step {
    /// Choose a verdict and tags.
    Choose,
    /// "This will rate N candidates as …": confirm or cancel.
    Confirm { verdict: Verdict },
    /// The selection cannot be rated at once (too many, or none).
    Refused(String),
}

#[derive(Template, WebTemplate)]
#[template(path = "batch/_panel.html")]
pub struct PanelFragment {
    step: Step,
    field: &'static str,
    value: String,
    what: String,
    count: usize,
    /// How many of them the reviewer rated before (their own ratings only).
    mine: i64,
    tags: Vec<TagChoice>,
    csrf_token: String,
}

impl PanelFragment {
    fn verdicts(&self) -> [Verdict; 3] {
        Verdict::ALL
    }
    fn chosen_tags(&self) -> Vec<&TagChoice> {
        self.tags.iter().filter(|t| t.checked).collect()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "batch/page.html")]
pub struct PanelPage {
    layout: Layout,
    /// The panel as htmx gets it.
    panel: String,
}

/// The project's tags, `asked` ticked; an id not of the project is refused.
async fn tag_choices(
    conn: &mut PgConnection,
    project: ProjectId,
    verdict: Option<&str>,
    asked: &[String],
) -> WebResult<(Option<Verdict>, Vec<TagChoice>)> {
    let all = cand::tags(conn, project).await?;
    let allowed: Vec<TagId> = all.iter().map(|t| t.0).collect();
    let input = RatingInput::parse(verdict.unwrap_or("real"), asked, "", None, &allowed, false)
        .map_err(AppError::BadRequest)?;
    let tags = all
        .into_iter()
        .map(|(id, name, _)| TagChoice {
            id,
            name,
            checked: input.tag_ids.contains(&id),
        })
        .collect();
    Ok((verdict.map(|_| input.verdict), tags))
}

#[handler]
pub async fn panel(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    let query = req.uri().query().unwrap_or("").as_bytes();
    let p = params(crate::web::plumbing::form::parse(query)?)?;
    let mut conn = state.pool.acquire().await?;
    let selected = select(&mut conn, &user, &p.selection).await?;
    let (verdict, tags) =
        tag_choices(&mut conn, selected.project, p.verdict.as_deref(), &p.tags).await?;
    let count = selected.ids.len();
    let step = if selected.too_many() {
        Step::Refused(format!(
            "That is more than {MAX_BATCH} candidates: narrow the selection to rate them at once."
        ))
    } else if count == 0 {
        Step::Refused("There is no candidate to rate.".into())
    } else {
        match verdict {
            None => Step::Choose,
            Some(verdict) => Step::Confirm { verdict },
        }
    };
    let mine = if selected.too_many() {
        0
    } else {
        batches::already_mine(&mut conn, user.id, &selected.ids).await?
    };
    drop(conn);
    let layout = Layout::for_request(req).await?;
    let (field, value) = selection_fields(&p.selection);
    let panel = PanelFragment {
        step,
        field,
        value,
        what: selected.what,
        count,
        mine,
        tags,
        csrf_token: layout.csrf_token.clone(),
    };
    Ok(if is_htmx(req) {
        panel.into_response()
    } else {
        let panel = panel.render().map_err(|e| AppError::Internal(e.into()))?;
        PanelPage { layout, panel }.into_response()
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "batch/_done.html")]
pub struct DoneFragment {
    message: String,
    /// The batch's undo, while it can still be taken back.
    undo: Option<String>,
    csrf_token: String,
}

fn plural(n: i64, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

fn address(req: &Request, state: &AppState) -> Option<IpAddr> {
    crate::web::pages::login::client_ip(req, req.remote_addr(), state.config.behind_proxy)
}

#[handler]
pub async fn apply(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    body: poem::Body,
) -> WebResult<Response> {
    let bytes = body
        .into_bytes_limit(64 * 1024)
        .await
        .map_err(|_| AppError::TooLarge("the form is too large".into()))?;
    let p = params(crate::web::plumbing::form::parse(&bytes)?)?;
    let verdict = p.verdict.as_deref().ok_or_else(|| {
        AppError::BadRequest("choose a verdict: real (y), not real (n) or unsure (u)".into())
    })?;
    let expected = p.expected.ok_or_else(|| {
        AppError::BadRequest("confirm how many candidates to rate (expected=N)".into())
    })?;
    let mut tx = state.pool.begin().await?;
    let selected = select(&mut tx, &user, &p.selection).await?;
    if selected.too_many() {
        return Err(AppError::BadRequest(format!(
            "a batch rates at most {MAX_BATCH} candidates"
        )));
    }
    if selected.ids.len() != expected {
        return Err(AppError::Conflict(format!(
            "The selection now holds {}, not {expected}: nothing was rated. Open the panel again to confirm.",
            plural(selected.ids.len() as i64, "candidate")
        )));
    }
    let (verdict, tags) = tag_choices(&mut tx, selected.project, Some(verdict), &p.tags).await?;
    let verdict = verdict.ok_or_else(|| AppError::internal("a parsed verdict went away"))?;
    let (field, value) = selection_fields(&p.selection);
    let b = BatchRating {
        project: selected.project,
        verdict,
        tag_ids: tags.iter().filter(|t| t.checked).map(|t| t.id).collect(),
        scope: field,
        selection: value.clone(),
    };
    let applied = batches::apply(&mut tx, user.id, &b, &selected.ids).await?;
    let Applied {
        batch,
        created,
        changed,
        same,
    } = applied;
    let detail = json!({"batch": batch, "scope": field, "selection": value,
        "verdict": verdict.as_str(), "tag_ids": b.tag_ids,
        "created": created, "changed": changed, "same": same});
    let target = format!("{field}:{value}");
    audit::record(
        &mut *tx,
        &Entry {
            actor_id: Some(user.id),
            actor_name: &user.username,
            action: "rating.batch",
            target: &target,
            detail,
            address: address(req, &state),
        },
    )
    .await?;
    tx.commit().await?;
    let mut message = format!(
        "Rated {} as {}",
        plural(created + changed, "candidate"),
        verdict.label()
    );
    if changed > 0 {
        message.push_str(&format!(" ({changed} of them replace a rating of yours)"));
    }
    if same > 0 {
        message.push_str(&format!("; {same} said so already"));
    }
    message.push('.');
    finish(req, message, Some(batch), &selected.back).await
}

/// The answer after a batch or its undo: the panel's last word for htmx,
/// a flash and the page the reviewer came from otherwise.
async fn finish(
    req: &Request,
    message: String,
    batch: Option<BatchId>,
    back: &str,
) -> WebResult<Response> {
    if !is_htmx(req) {
        TypedSession::from_request_ref(req)?
            .flash(FlashKind::Success, message)
            .await?;
        return Ok(see_other(back));
    }
    let layout = Layout::for_request(req).await?;
    Ok(DoneFragment {
        message,
        undo: batch.map(paths::batch_undo),
        csrf_token: layout.csrf_token,
    }
    .into_response())
}

#[handler]
pub async fn undo(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<BatchId>,
) -> WebResult<Response> {
    let mut tx = state.pool.begin().await?;
    // Someone else's batch is as good as none.
    let b = batches::get_for_update(&mut tx, id)
        .await?
        .filter(|b| b.user_id == user.id)
        .ok_or(AppError::NotFound("batch"))?;
    if b.undone_at.is_some() {
        return Err(AppError::Conflict(
            "This batch was taken back already.".into(),
        ));
    }
    let Undone {
        restored,
        removed,
        kept,
    } = batches::undo(&mut tx, &b).await?;
    audit::record(
        &mut *tx,
        &Entry {
            actor_id: Some(user.id),
            actor_name: &user.username,
            action: "rating.batch_undo",
            target: &format!("batch:{}", b.id),
            detail: json!({"batch": b.id, "restored": restored, "removed": removed, "kept": kept}),
            address: address(req, &state),
        },
    )
    .await?;
    tx.commit().await?;
    let mut message = format!(
        "Took back the batch of {}: {restored} got your earlier rating back, {removed} are unrated again",
        plural(i64::from(b.count), "rating")
    );
    if kept > 0 {
        message.push_str(&format!("; {kept} you rated again since keep that rating"));
    }
    message.push('.');
    finish(req, message, None, paths::CANDIDATES).await
}

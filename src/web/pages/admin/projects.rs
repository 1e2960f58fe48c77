//! `/admin/projects`: each project's name, description, metric definitions
//! and settings; deleting a project or an observation, with its rows and
//! media files, after typing its name.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::db::observations::{self, Line};
use crate::db::projects::{self, MetricDef, MetricEdit, Project, Settings, WithCounts};
use crate::db::removal::{self, Contents, Object, Scope};
use crate::domain::decision::{check_key_guard, Bound, GoodRange, GoodRangeError, KEY_GUARD_MS};
use crate::domain::text::shown;
use crate::domain::upload::number_text;
use crate::domain::Problem;
use crate::web::pages::admin::{check_len, check_line, size_text, Admin};
use crate::web::pages::project;
use crate::web::paths;
use crate::web::plumbing::access::see_other;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::FlashKind;
use crate::web::plumbing::session::TypedSession;
use crate::web::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "admin/projects.html")]
pub struct ProjectsPage {
    layout: Layout,
    projects: Vec<WithCounts>,
}

#[handler]
pub async fn list(
    layout: Layout,
    state: Data<&AppState>,
    _admin: Admin,
) -> WebResult<ProjectsPage> {
    Ok(ProjectsPage {
        layout,
        projects: projects::list_with_counts(&state.pool).await?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/project.html")]
pub struct ProjectPage {
    layout: Layout,
    project: Project,
    metrics: Vec<MetricDef>,
    observations: Vec<Line>,
    problems: Vec<Problem>,
}

async fn project_page(
    req: &Request,
    state: &AppState,
    project: Project,
    problems: Vec<Problem>,
) -> WebResult<ProjectPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(ProjectPage {
        layout: Layout::for_request(req).await?,
        metrics: projects::metrics(&mut conn, project.id).await?,
        observations: observations::lines(&mut conn, project.id).await?,
        project,
        problems,
    })
}

#[handler]
pub async fn edit(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> WebResult<ProjectPage> {
    let p = project(&state, &slug).await?;
    project_page(req, &state, p, Vec::new()).await
}

/// The edit form: the project's fields, and per metric `metric.<id>.label`,
/// `.unit`, `.description`, `.precision`, `.shown` and `.headline`
/// (checkboxes), and `.good_min` and `.good_max` (empty for no bound).
fn parse_edit(
    pairs: &[(String, String)],
    project: &Project,
    metrics: &[MetricDef],
) -> Result<(Settings, Vec<MetricEdit>), Vec<Problem>> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim())
    };
    let on = |k: &str| matches!(get(k), Some("on" | "yes" | "true"));
    let mut problems = Vec::new();
    // The blind rule's switches are read strictly: a value the form never
    // sends is refused rather than taken as "off".
    let mut switch = |k: &str, what: &str| match get(k) {
        None | Some("") => false,
        Some("on" | "yes" | "true") => true,
        Some(_) => {
            problems.push(Problem::new(
                k,
                format!("{what} is a checkbox: on or absent"),
            ));
            false
        }
    };
    let open_review = switch("open_review", "Open review");
    let admins_see_all = switch("admins_see_all", "Administrators see all ratings");
    let name = get("name").unwrap_or_default();
    check_line(&mut problems, "name", "The name", name, 200);
    let description = get("description").unwrap_or_default();
    check_len(
        &mut problems,
        "description",
        "The description",
        description,
        0,
        5000,
    );
    // A form without the field (one from before it existed, still open in
    // a tab) leaves the guard alone rather than resetting it.
    let key_guard_ms = match get("key_guard_ms") {
        None => project.key_guard_ms,
        Some(v) => match v.parse::<i64>().map(check_key_guard) {
            Ok(Ok(ms)) => ms,
            _ => {
                problems.push(Problem::new(
                    "key_guard_ms",
                    format!(
                        "The verdict-key guard is a whole number of milliseconds from {} to {}, not {}",
                        KEY_GUARD_MS.start(),
                        KEY_GUARD_MS.end(),
                        shown(v)
                    ),
                ));
                project.key_guard_ms
            }
        },
    };
    let settings = Settings {
        name: name.to_string(),
        description: description.to_string(),
        reviewers_add_tags: on("reviewers_add_tags"),
        score_enabled: on("score_enabled"),
        open_review,
        admins_see_all,
        key_guard_ms,
    };
    let mut edits = Vec::new();
    for m in metrics {
        let field = |f: &str| format!("metric.{}.{f}", m.id);
        // A metric the form did not show (added since) stays as it is.
        let Some(label) = get(&field("label")) else {
            continue;
        };
        let what = format!("{} ({})", m.key, m.label);
        check_line(
            &mut problems,
            &field("label"),
            &format!("The label of {what}"),
            label,
            200,
        );
        let unit = get(&field("unit")).unwrap_or_default();
        if !unit.is_empty() {
            check_line(
                &mut problems,
                &field("unit"),
                &format!("The unit of {what}"),
                unit,
                50,
            );
        }
        let desc = get(&field("description")).unwrap_or_default();
        check_len(
            &mut problems,
            &field("description"),
            &format!("The description of {what}"),
            desc,
            0,
            2000,
        );
        let precision = match get(&field("precision")).map(str::parse::<i16>) {
            Some(Ok(p)) if (0..=12).contains(&p) => p,
            _ => {
                problems.push(Problem::new(
                    field("precision"),
                    format!("The precision of {what} is a whole number of decimals from 0 to 12"),
                ));
                0
            }
        };
        let bound_name = |b: Bound| match b {
            Bound::Min => "good minimum",
            Bound::Max => "good maximum",
        };
        let form_key = |b: Bound| field(&format!("good_{}", b.key()));
        let mut bound = |b: Bound| match get(&form_key(b)) {
            None | Some("") => None,
            Some(v) => match number_text(v) {
                Ok(x) => Some(x),
                Err(e) => {
                    problems.push(Problem::new(
                        form_key(b),
                        format!(
                            "The {} of {what} is a number, or empty for none: {e}",
                            bound_name(b)
                        ),
                    ));
                    None
                }
            },
        };
        let (good_min, good_max) = (bound(Bound::Min), bound(Bound::Max));
        let good = GoodRange::new(good_min, good_max).unwrap_or_else(|e| {
            let message = match e {
                GoodRangeError::NotFinite(b, _) => format!(
                    "The {} of {what} is a finite number, or empty for none",
                    bound_name(b)
                ),
                GoodRangeError::Reversed { min, max } => {
                    format!("The good minimum of {what}, {min}, is above its good maximum, {max}")
                }
            };
            problems.push(Problem::new(form_key(e.bound()), message));
            GoodRange::NONE
        });
        edits.push(MetricEdit {
            id: m.id,
            label: label.to_string(),
            unit: unit.to_string(),
            description: desc.to_string(),
            precision,
            shown_by_default: on(&field("shown")),
            headline: on(&field("headline")),
            good,
        });
    }
    if problems.is_empty() {
        Ok((settings, edits))
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
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let mut tx = state.pool.begin().await?;
    let metrics = projects::metrics(&mut tx, p.id).await?;
    let (settings, edits) = match parse_edit(&pairs, &p, &metrics) {
        Ok(v) => v,
        Err(problems) => {
            drop(tx);
            let page = project_page(req, &state, p, problems).await?;
            return Ok(page.with_status(StatusCode::BAD_REQUEST).into_response());
        }
    };
    let changed = projects::update(&mut tx, p.id, &settings, &edits).await?;
    if changed > 0 {
        // What the decision screen reads, as saved: which metrics are
        // headline and which have a good range.
        let key_of = |id: i64| metrics.iter().find(|m| m.id == id).map(|m| m.key.as_str());
        let headline: Vec<_> = edits
            .iter()
            .filter(|e| e.headline)
            .filter_map(|e| key_of(e.id))
            .collect();
        let good: serde_json::Map<String, serde_json::Value> = edits
            .iter()
            .filter(|e| !e.good.is_none())
            .filter_map(|e| {
                let range = json!({"min": e.good.min(), "max": e.good.max()});
                key_of(e.id).map(|k| (k.to_string(), range))
            })
            .collect();
        admin
            .audit(
                &mut *tx,
                "project.update",
                &p.slug,
                json!({
                    "name": settings.name,
                    "reviewers_add_tags": settings.reviewers_add_tags,
                    "score_enabled": settings.score_enabled,
                    "open_review": settings.open_review,
                    "admins_see_all": settings.admins_see_all,
                    "key_guard_ms": settings.key_guard_ms,
                    "headline": headline,
                    "good": good,
                    "rows_changed": changed,
                }),
            )
            .await?;
    }
    tx.commit().await?;
    let msg = if changed > 0 {
        format!("{} saved.", settings.name)
    } else {
        "Nothing changed.".to_string()
    };
    session.flash(FlashKind::Success, msg).await?;
    Ok(see_other(&paths::admin_project(&p.slug)))
}

/// The confirmation page for deleting a project or an observation.
#[derive(Template, WebTemplate)]
#[template(path = "admin/delete.html")]
pub struct DeletePage {
    layout: Layout,
    /// "project" or "observation".
    kind: &'static str,
    /// What must be typed to confirm.
    name: String,
    /// Shown in the heading (an observation also names its project).
    title: String,
    contents: Contents,
    action: String,
    back: String,
    error: Option<String>,
}

impl DeletePage {
    pub fn bytes(&self) -> String {
        size_text(self.contents.media_bytes)
    }
}

/// What is to be deleted: the scope, the name to type, and the pages.
struct Doomed {
    scope: Scope,
    kind: &'static str,
    name: String,
    title: String,
    action: String,
    project: Project,
}

async fn doomed_project(state: &AppState, slug: &str) -> WebResult<Doomed> {
    let p = project(state, slug).await?;
    Ok(Doomed {
        scope: Scope::Project(p.id),
        kind: "project",
        name: p.name.clone(),
        title: format!("the project {}", p.name),
        action: paths::admin_project_delete(&p.slug),
        project: p,
    })
}

async fn doomed_observation(state: &AppState, slug: &str, external: &str) -> WebResult<Doomed> {
    let p = project(state, slug).await?;
    let mut conn = state.pool.acquire().await?;
    let id = observations::id_of(&mut conn, p.id, external)
        .await?
        .ok_or(AppError::NotFound("observation"))?;
    Ok(Doomed {
        scope: Scope::Observation(id),
        kind: "observation",
        name: external.to_string(),
        title: format!("the observation {external} of {}", p.name),
        action: paths::admin_observation_delete(&p.slug, external),
        project: p,
    })
}

async fn confirm_page(
    req: &Request,
    state: &AppState,
    d: Doomed,
    error: Option<String>,
) -> WebResult<DeletePage> {
    let mut conn = state.pool.acquire().await?;
    let contents = removal::contents(&mut conn, d.scope).await?;
    Ok(DeletePage {
        layout: Layout::for_request(req).await?,
        kind: d.kind,
        name: d.name,
        title: d.title,
        contents,
        action: d.action,
        back: paths::admin_project(&d.project.slug),
        error,
    })
}

#[handler]
pub async fn confirm_delete_project(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> WebResult<DeletePage> {
    let d = doomed_project(&state, &slug).await?;
    confirm_page(req, &state, d, None).await
}

#[handler]
pub async fn confirm_delete_observation(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Path((slug, external)): Path<(String, String)>,
) -> WebResult<DeletePage> {
    let d = doomed_observation(&state, &slug, &external).await?;
    confirm_page(req, &state, d, None).await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    confirm_name: Option<String>,
}

#[handler]
pub async fn delete_project(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(slug): Path<String>,
    Form(f): Form<DeleteForm>,
) -> WebResult<Response> {
    let d = doomed_project(&state, &slug).await?;
    delete(req, &state, &session, &admin, d, f).await
}

#[handler]
pub async fn delete_observation(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path((slug, external)): Path<(String, String)>,
    Form(f): Form<DeleteForm>,
) -> WebResult<Response> {
    let d = doomed_observation(&state, &slug, &external).await?;
    delete(req, &state, &session, &admin, d, f).await
}

/// What happened to the media objects of deleted rows.
struct Swept {
    removed: usize,
    bytes: i64,
    /// Still used by rows elsewhere (identical content in another project).
    kept: usize,
}

/// After the commit: removes the objects that no remaining row refers to.
async fn sweep(state: &AppState, objects: &[Object]) -> WebResult<Swept> {
    let paths: Vec<String> = objects.iter().map(|o| o.storage_path.clone()).collect();
    // Under the media locks, so an upload of the same content that is
    // committing now keeps its file.
    let unused =
        crate::ingest::publish::remove_unreferenced(&state.media, &state.pool, &paths).await;
    let bytes = objects
        .iter()
        .filter(|o| unused.contains(&o.storage_path))
        .map(|o| o.size_bytes)
        .sum();
    Ok(Swept {
        removed: unused.len(),
        bytes,
        kept: paths.len() - unused.len(),
    })
}

async fn delete(
    req: &Request,
    state: &AppState,
    session: &TypedSession,
    admin: &Admin,
    d: Doomed,
    f: DeleteForm,
) -> WebResult<Response> {
    let typed = f.confirm_name.as_deref().map(str::trim).unwrap_or_default();
    if typed != d.name {
        let e = format!(
            "Type the {} name exactly, {}, to confirm. Nothing was deleted.",
            d.kind, d.name
        );
        let page = confirm_page(req, state, d, Some(e)).await?;
        return Ok(page.with_status(StatusCode::BAD_REQUEST).into_response());
    }
    let mut tx = state.pool.begin().await?;
    let Some((contents, objects)) = removal::delete(&mut tx, d.scope).await? else {
        return Err(AppError::NotFound(d.kind));
    };
    let target = match d.scope {
        Scope::Project(_) => d.project.slug.clone(),
        Scope::Observation(_) => format!("{}/{}", d.project.slug, d.name),
    };
    let mut detail = serde_json::to_value(&contents).map_err(anyhow::Error::from)?;
    detail["name"] = json!(d.name);
    admin
        .audit(&mut *tx, &format!("{}.delete", d.kind), &target, detail)
        .await?;
    tx.commit().await?;
    let swept = sweep(state, &objects).await?;
    tracing::info!(admin = %admin.user.username, %target, ?contents, removed_objects = swept.removed, "deleted");
    session
        .flash(FlashKind::Success, report(&d, &contents, &swept))
        .await?;
    let back = match d.scope {
        Scope::Project(_) => paths::ADMIN_PROJECTS.to_string(),
        Scope::Observation(_) => paths::admin_project(&d.project.slug),
    };
    Ok(see_other(&back))
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The sentence that tells the administrator what went.
fn report(d: &Doomed, c: &Contents, s: &Swept) -> String {
    let mut parts = Vec::new();
    if matches!(d.scope, Scope::Project(_)) {
        parts.push(plural(c.observations, "observation", "observations"));
    }
    parts.push(plural(c.beams, "beam", "beams"));
    parts.push(plural(c.candidates, "candidate", "candidates"));
    parts.push(plural(c.ratings, "rating", "ratings"));
    parts.push(plural(
        c.earlier_ratings,
        "earlier rating",
        "earlier ratings",
    ));
    parts.push(plural(c.files, "file record", "file records"));
    if matches!(d.scope, Scope::Project(_)) {
        parts.push(plural(c.tags, "tag", "tags"));
        parts.push(plural(c.metrics, "metric", "metrics"));
    }
    let mut msg = format!(
        "Deleted {}: {}. {} ({}) removed from the media folder",
        d.title,
        parts.join(", "),
        plural(s.removed as i64, "media file", "media files"),
        size_text(s.bytes)
    );
    if s.kept > 0 {
        msg.push_str(&format!(
            "; {} kept because other rows use the same content",
            s.kept
        ));
    }
    msg.push('.');
    msg
}

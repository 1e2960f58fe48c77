//! `/admin/catalogues`: the loaded reference catalogues, and per project
//! the context its candidates get (`/admin/projects/{slug}/catalogues`):
//! which catalogues they are matched against and within what radius, and
//! the radius within which candidates form a group. Catalogues themselves are loaded
//! with `vetter catalogue load` on the server: a file of millions of rows is
//! not an upload for a browser form.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde_json::json;

use crate::db::catalogues::{self, Catalogue, Choice};
use crate::db::groups;
use crate::db::projects::Project;
use crate::domain::{CatalogueId, Problem};
use crate::web::pages::admin::Admin;
use crate::web::pages::project;
use crate::web::paths;
use crate::web::plumbing::access::see_other;
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// A match radius is at most this: beyond it a "counterpart" says little,
/// and the matches of a large project would be many.
pub const MAX_RADIUS_ARCSEC: f64 = 600.0;
/// The radius offered for a catalogue a project does not match yet.
pub const DEFAULT_RADIUS_ARCSEC: f64 = 10.0;

#[derive(Template, WebTemplate)]
#[template(path = "admin/catalogues.html")]
pub struct CataloguesPage {
    layout: Layout,
    catalogues: Vec<Catalogue>,
}

#[handler]
pub async fn list(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
) -> WebResult<CataloguesPage> {
    Ok(CataloguesPage {
        layout: Layout::for_request(req).await?,
        catalogues: catalogues::list(&state.pool).await?,
    })
}

/// One catalogue on a project's form.
pub struct Row {
    pub catalogue: Catalogue,
    pub chosen: bool,
    /// As shown in the form: the stored radius, or what was typed.
    pub radius: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/project_catalogues.html")]
pub struct ProjectCataloguesPage {
    layout: Layout,
    project: Project,
    rows: Vec<Row>,
    /// The group radius as stored, or as typed.
    group_radius: String,
    problems: Vec<Problem>,
}

/// The largest group radius: beyond it friends of friends joins unrelated
/// sources into one chain.
pub const MAX_GROUP_RADIUS_ARCSEC: f64 = 600.0;

fn rows(all: Vec<Catalogue>, choices: &[Choice]) -> Vec<Row> {
    all.into_iter()
        .map(|c| {
            let chosen = choices.iter().find(|x| x.catalogue_id == c.id);
            Row {
                chosen: chosen.is_some(),
                radius: chosen
                    .map_or(DEFAULT_RADIUS_ARCSEC, |x| x.radius_arcsec)
                    .to_string(),
                catalogue: c,
            }
        })
        .collect()
}

#[handler]
pub async fn edit(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> WebResult<ProjectCataloguesPage> {
    let p = project(&state, &slug).await?;
    let mut conn = state.pool.acquire().await?;
    let all = catalogues::list(&mut *conn).await?;
    let choices = catalogues::choices(&mut *conn, p.id).await?;
    let group_radius = groups::radius_arcsec(&mut conn, p.id).await?.to_string();
    Ok(ProjectCataloguesPage {
        layout: Layout::for_request(req).await?,
        rows: rows(all, &choices),
        project: p,
        group_radius,
        problems: Vec::new(),
    })
}

/// What the form asks for: the catalogues with their radii, and the group
/// radius (absent from a form drawn before it existed).
struct Choices {
    catalogues: Vec<(CatalogueId, f64)>,
    group_radius: Option<f64>,
}

/// The form: `use.<catalogue id>` (a checkbox) and `radius.<catalogue id>`
/// (arcseconds) per catalogue. Checked strictly: a catalogue that does not
/// exist or a radius out of range refuses the whole form.
fn parse(pairs: &[(String, String)], all: &[Catalogue]) -> Result<Choices, Vec<Problem>> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim())
    };
    let mut problems = Vec::new();
    for (k, _) in pairs {
        if let Some(id) = k.strip_prefix("use.").or_else(|| k.strip_prefix("radius.")) {
            let known = id
                .parse::<i64>()
                .is_ok_and(|id| all.iter().any(|c| c.id.0 == id));
            if !known {
                problems.push(Problem::new(
                    k,
                    format!("there is no catalogue {id:?} (removed since the form was drawn?)"),
                ));
            }
        }
    }
    let mut chosen = Vec::new();
    for c in all {
        let use_field = format!("use.{}", c.id);
        match get(&use_field) {
            None | Some("") => continue,
            Some("on") => {}
            Some(_) => {
                problems.push(Problem::new(
                    &use_field,
                    format!("{} is a checkbox: on or absent", c.name),
                ));
                continue;
            }
        }
        let field = format!("radius.{}", c.id);
        match get(&field).map(str::parse::<f64>) {
            Some(Ok(r)) if r.is_finite() && r > 0.0 && r <= MAX_RADIUS_ARCSEC => {
                chosen.push((c.id, r))
            }
            _ => problems.push(Problem::new(
                &field,
                format!(
                    "The radius for {} is a number of arcseconds above 0 and at most {MAX_RADIUS_ARCSEC}",
                    c.name
                ),
            )),
        }
    }
    // A form without the field (one drawn before it existed) leaves the
    // radius alone.
    let group_radius = match get("group_radius").map(str::parse::<f64>) {
        None => None,
        Some(Ok(r)) if r.is_finite() && r > 0.0 && r <= MAX_GROUP_RADIUS_ARCSEC => Some(r),
        Some(_) => {
            problems.push(Problem::new(
                "group_radius",
                format!(
                    "The group radius is a number of arcseconds above 0 and at most {MAX_GROUP_RADIUS_ARCSEC}"
                ),
            ));
            None
        }
    };
    if problems.is_empty() {
        Ok(Choices {
            catalogues: chosen,
            group_radius,
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
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let mut tx = state.pool.begin().await?;
    let all = catalogues::list(&mut *tx).await?;
    let Choices {
        catalogues: chosen,
        group_radius,
    } = match parse(&pairs, &all) {
        Ok(c) => c,
        Err(problems) => {
            drop(tx);
            // What was typed stays in the form.
            let rows = all
                .into_iter()
                .map(|c| Row {
                    chosen: pairs.iter().any(|(k, _)| *k == format!("use.{}", c.id)),
                    radius: pairs
                        .iter()
                        .find(|(k, _)| *k == format!("radius.{}", c.id))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                    catalogue: c,
                })
                .collect();
            let page = ProjectCataloguesPage {
                layout: Layout::for_request(req).await?,
                project: p,
                rows,
                group_radius: pairs
                    .iter()
                    .find(|(k, _)| k == "group_radius")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                problems,
            };
            return Ok(page.with_status(StatusCode::BAD_REQUEST).into_response());
        }
    };
    let made = catalogues::set_choices(&mut tx, p.id, &chosen).await?;
    let regroup = match group_radius {
        Some(r) => groups::set_radius(&mut tx, p.id, r).await?,
        None => false,
    };
    let detail: Vec<_> = chosen
        .iter()
        .filter_map(|(id, r)| {
            all.iter()
                .find(|c| c.id == *id)
                .map(|c| json!({"catalogue": c.name, "radius_arcsec": r}))
        })
        .collect();
    admin
        .audit(
            &mut *tx,
            "project.catalogues",
            &p.slug,
            json!({"catalogues": detail, "matches_made": made, "group_radius_arcsec": group_radius}),
        )
        .await?;
    tx.commit().await?;
    // Groups are made again after the commit, in a transaction of their own
    // under the project's grouping lock (as `vetter groups recompute`).
    let regrouped = if regroup {
        let mut conn = state.pool.acquire().await?;
        let r = groups::recompute(&mut conn, p.id).await?;
        format!(
            " Groups made again: {} candidates in {} groups.",
            r.candidates, r.groups
        )
    } else {
        String::new()
    };
    session
        .flash(
            FlashKind::Success,
            format!(
                "{}: {} catalogue{} matched; {made} new match{}.{regrouped}",
                p.name,
                chosen.len(),
                if chosen.len() == 1 { "" } else { "s" },
                if made == 1 { "" } else { "es" }
            ),
        )
        .await?;
    Ok(see_other(&paths::admin_project_catalogues(&p.slug)))
}

//! The rating page's known-sources panel (`/candidates/{id}/nearby`): the
//! candidate's stored catalogue matches with their values, other
//! candidates and catalogue sources within a radius, its association with
//! a known source, and the search that finds one to associate.

use askama::Template;
use askama_web::WebTemplate;
use poem::web::{Data, Path, Query};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use sqlx::PgConnection;

use crate::catalogue::simbad::Answer;
use crate::db::candidates::{self as cand, Detail};
use crate::db::catalogues::{self, Association, FoundSource};
use crate::domain::sexagesimal::parse_position;
use crate::domain::{CandidateId, CatalogueId, SkyPos};
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::htmx::is_htmx;
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// How many sources show before "more".
const SHOWN: usize = 4;
/// Stored matches read for the panel.
const MATCHES: i64 = 50;
/// Results of an association search.
const FOUND: i64 = 20;

pub const MAX_RADIUS_ARCSEC: f64 = 3600.0;
const DEFAULT_RADIUS_ARCSEC: f64 = 60.0;

/// One line of the panel.
pub struct Line {
    pub name: String,
    pub url: String,
    /// A link to a catalogue outside this site.
    pub outside: bool,
    /// "psrcat" or "candidate in VAST demo".
    pub what: String,
    /// The catalogue's values: "P0 0.08933 s · DM 67.97".
    pub values: String,
    pub sep_arcsec: f64,
    /// Whether it is one of the project's stored matches.
    pub matched: bool,
    /// What to post to associate the candidate with it (catalogue sources).
    pub source: Option<(CatalogueId, i32)>,
}

impl Line {
    /// Hundredths of an arcsecond close in, where they decide an
    /// association; tenths further out.
    pub fn sep_text(&self) -> String {
        sep_text(self.sep_arcsec)
    }
}

pub use crate::domain::sky::separation_text as sep_text;

/// Four significant digits, without an exponent for everyday values.
pub fn value_text(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&mag) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - mag).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

fn source_values(s: &FoundSource) -> String {
    // The first three: what fits on the panel's line (all of them are on
    // the catalogue's own page).
    s.values
        .iter()
        .take(3)
        .map(|(c, v)| {
            let mut t = format!("{} {}", c.name, value_text(*v));
            if !c.unit.is_empty() {
                t.push(' ');
                t.push_str(&c.unit);
            }
            t
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Where a catalogue source is described outside this site: the ATNF page
/// of a pulsar, else SIMBAD around its position.
fn source_url(s: &FoundSource) -> String {
    if s.catalogue == catalogues::PULSARS {
        return format!(
            "https://www.atnf.csiro.au/research/pulsar/psrcat/proc_form.php?version=2&JName=JName&startUserDefined=true&pulsar_names={}&table_bottom.x=1&table_bottom.y=1&style=Long+with+errors",
            paths::encode_component(&s.name)
        );
    }
    simbad_url(s.pos, 5.0)
}

pub fn simbad_url(pos: SkyPos, radius_arcsec: f64) -> String {
    format!(
        "https://simbad.cds.unistra.fr/simbad/sim-coo?Coord={:.6}%20{:+.6}&Radius={radius_arcsec}&Radius.unit=arcsec",
        pos.ra.degrees(),
        pos.dec.degrees()
    )
}

pub fn ned_url(pos: SkyPos, radius_arcsec: f64) -> String {
    format!(
        "https://ned.ipac.caltech.edu/conesearch?search_type=Near%20Position%20Search&coordinates={:.6}d%20{:+.6}d&radius={}&in_csys=Equatorial&in_equinox=J2000",
        pos.ra.degrees(),
        pos.dec.degrees(),
        radius_arcsec / 60.0
    )
}

pub fn aladin_url(pos: SkyPos) -> String {
    format!(
        "https://aladin.cds.unistra.fr/AladinLite/?target={:.6}%20{:+.6}&fov=0.1&survey=CDS%2FP%2FDSS2%2Fcolor",
        pos.ra.degrees(),
        pos.dec.degrees()
    )
}

fn catalogue_line(s: FoundSource, matched: bool) -> Line {
    Line {
        url: source_url(&s),
        what: s.catalogue.clone(),
        values: source_values(&s),
        sep_arcsec: s.separation_arcsec.unwrap_or(0.0),
        matched,
        source: Some((s.catalogue_id, s.row_no)),
        outside: true,
        name: s.name,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "known_sources/_panel.html")]
pub struct Panel {
    id: CandidateId,
    radius: f64,
    pos: SkyPos,
    lines: Vec<Line>,
    association: Option<Association>,
    /// "psrcat within 30″, racs within 10″", or empty.
    matched_against: String,
    error: Option<String>,
    csrf_token: String,
    /// Where the panel asks for SIMBAD's cone, when lookups are on.
    simbad_lookup: Option<String>,
}

impl Panel {
    fn shown(&self) -> &[Line] {
        &self.lines[..self.lines.len().min(SHOWN)]
    }
    fn more(&self) -> &[Line] {
        &self.lines[self.lines.len().min(SHOWN)..]
    }
    fn simbad(&self) -> String {
        simbad_url(self.pos, self.radius)
    }
    fn ned(&self) -> String {
        ned_url(self.pos, self.radius)
    }
    fn aladin(&self) -> String {
        aladin_url(self.pos)
    }
}

#[derive(Deserialize)]
pub struct PanelParams {
    radius: Option<f64>,
}

async fn candidate(conn: &mut PgConnection, id: CandidateId) -> WebResult<Detail> {
    cand::detail(conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))
}

async fn panel(
    state: &AppState,
    conn: &mut PgConnection,
    c: &Detail,
    requested: Option<f64>,
    csrf_token: String,
) -> WebResult<Panel> {
    let requested = requested.unwrap_or(DEFAULT_RADIUS_ARCSEC);
    let (radius, error) =
        if requested.is_finite() && requested > 0.0 && requested <= MAX_RADIUS_ARCSEC {
            (requested, None)
        } else {
            (
                DEFAULT_RADIUS_ARCSEC,
                Some(format!(
                    "The radius must be more than 0 and at most {MAX_RADIUS_ARCSEC} arcsec."
                )),
            )
        };
    let matched = catalogues::matches_of(&mut *conn, c.id, MATCHES).await?;
    let near_sources = catalogues::near(&mut *conn, c.pos, radius, 100).await?;
    let near_candidates = cand::near(conn, c.id, c.pos, radius / 3600.0, 100).await?;
    let association = catalogues::association_of(&mut *conn, c.id).await?;
    let choices = catalogues::choices(&mut *conn, c.project_id).await?;

    let is_matched = |s: &FoundSource| {
        matched
            .iter()
            .any(|m| m.catalogue_id == s.catalogue_id && m.row_no == s.row_no)
    };
    let others: Vec<FoundSource> = near_sources
        .into_iter()
        .filter(|s| !is_matched(s))
        .collect();
    let mut lines: Vec<Line> = matched
        .into_iter()
        .map(|s| catalogue_line(s, true))
        .chain(others.into_iter().map(|s| catalogue_line(s, false)))
        .chain(
            near_candidates
                .into_iter()
                .map(|(cid, name, project, _, _, sep)| Line {
                    url: paths::candidate(cid),
                    name,
                    outside: false,
                    what: format!("candidate in {project}"),
                    values: String::new(),
                    sep_arcsec: sep * 3600.0,
                    matched: false,
                    source: None,
                }),
        )
        .collect();
    lines.sort_by(|a, b| a.sep_arcsec.total_cmp(&b.sep_arcsec));
    let matched_against = choices
        .iter()
        .map(|c| format!("{} within {}″", c.name, c.radius_arcsec))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Panel {
        id: c.id,
        radius,
        pos: c.pos,
        lines,
        association,
        matched_against,
        error,
        csrf_token,
        simbad_lookup: state.simbad.as_ref().map(|_| {
            paths::filtered(
                &paths::candidate_simbad(c.id),
                &format!("radius={}", radius.min(MAX_SIMBAD_ARCSEC)),
            )
        }),
    })
}

/// The panel, lazily loaded by the rating page.
#[handler]
pub async fn nearby(
    state: Data<&AppState>,
    session: TypedSession,
    Path(id): Path<CandidateId>,
    Query(p): Query<PanelParams>,
) -> WebResult<Panel> {
    let mut conn = state.pool.acquire().await?;
    let c = candidate(&mut conn, id).await?;
    panel(&state, &mut conn, &c, p.radius, session.csrf_token().await?).await
}

/// The association form: a catalogue source by `catalogue` and `row`, or
/// `remove`.
#[derive(Deserialize)]
pub struct AssociationForm {
    catalogue: Option<CatalogueId>,
    row: Option<i32>,
    remove: Option<String>,
}

/// Associates the candidate with a catalogue source (or removes its
/// association) and answers with the panel as it is now.
#[handler]
pub async fn associate(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Path(id): Path<CandidateId>,
    Form(f): Form<AssociationForm>,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let c = candidate(&mut conn, id).await?;
    let notice = match (f.remove.as_deref(), f.catalogue, f.row) {
        (Some(_), None, None) => {
            if catalogues::dissociate(&mut *conn, id).await? {
                format!("{} is no longer associated with a known source.", c.name)
            } else {
                format!("{} had no association.", c.name)
            }
        }
        (None, Some(cat), Some(row)) => {
            let s = catalogues::source(&mut *conn, cat, row, c.pos)
                .await?
                .ok_or_else(|| {
                    AppError::BadRequest(
                        "that catalogue source does not exist (its catalogue may have been reloaded): search again".into(),
                    )
                })?;
            catalogues::associate(&mut *conn, id, &s, user.id).await?;
            format!(
                "{} is associated with {} ({}, {}).",
                c.name,
                s.name,
                s.catalogue,
                sep_text(s.separation_arcsec.unwrap_or(0.0))
            )
        }
        _ => {
            return Err(AppError::BadRequest(
                "send a catalogue and a row to associate, or remove alone".into(),
            ))
        }
    };
    if !is_htmx(req) {
        session.flash(FlashKind::Success, notice).await?;
        return Ok(see_other(&paths::candidate(id)));
    }
    let p = panel(&state, &mut conn, &c, None, session.csrf_token().await?).await?;
    Ok(p.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "known_sources/_results.html")]
pub struct Results {
    id: CandidateId,
    found: Vec<Line>,
    message: Option<String>,
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
}

/// Longest search text read.
const MAX_QUERY: usize = 200;

/// Catalogue sources to associate: by position (sexagesimal or degrees,
/// within 60″) or by the start of a name, across every catalogue.
#[handler]
pub async fn search(
    state: Data<&AppState>,
    session: TypedSession,
    Path(id): Path<CandidateId>,
    Query(p): Query<SearchParams>,
) -> WebResult<Results> {
    let q = p.q.unwrap_or_default().trim().to_string();
    let mut conn = state.pool.acquire().await?;
    let c = candidate(&mut conn, id).await?;
    let csrf_token = session.csrf_token().await?;
    let answer = |found: Vec<FoundSource>, message: Option<String>| Results {
        id,
        found: found
            .into_iter()
            .map(|s| catalogue_line(s, false))
            .collect(),
        message,
        csrf_token: csrf_token.clone(),
    };
    if q.is_empty() {
        return Ok(answer(
            Vec::new(),
            Some("Type a source name (or its start) or a position.".into()),
        ));
    }
    if q.chars().count() > MAX_QUERY || q.chars().any(char::is_control) {
        return Ok(answer(
            Vec::new(),
            Some(format!(
                "A search is at most {MAX_QUERY} printable characters."
            )),
        ));
    }
    let found = match parse_position(&q) {
        Ok(pos) => {
            let mut f = catalogues::near(&mut *conn, pos, DEFAULT_RADIUS_ARCSEC, FOUND).await?;
            // Separations from the candidate, not from the typed position.
            for s in &mut f {
                s.separation_arcsec =
                    Some(crate::domain::frames::angular_separation_deg(c.pos, s.pos) * 3600.0);
            }
            f
        }
        Err(_) => catalogues::named(&mut *conn, &q, c.pos, FOUND).await?,
    };
    let message = found
        .is_empty()
        .then(|| format!("No catalogue source is named {q:?} or lies near it."));
    Ok(answer(found, message))
}

/// The largest SIMBAD cone asked for.
const MAX_SIMBAD_ARCSEC: f64 = 600.0;

#[derive(Template, WebTemplate)]
#[template(path = "known_sources/_simbad.html")]
pub struct SimbadPart {
    radius: f64,
    answer: std::sync::Arc<Answer>,
    link: String,
}

/// SIMBAD's objects around the candidate, asked for by the panel once it is
/// on the page (never while the page is drawn), within the panel's radius.
#[handler]
pub async fn simbad(
    state: Data<&AppState>,
    Path(id): Path<CandidateId>,
    Query(p): Query<PanelParams>,
) -> WebResult<SimbadPart> {
    let Some(simbad) = state.simbad.clone() else {
        return Err(AppError::NotFound("SIMBAD lookup (they are off)"));
    };
    let radius = p
        .radius
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(DEFAULT_RADIUS_ARCSEC)
        .min(MAX_SIMBAD_ARCSEC);
    let pos = {
        let mut conn = state.pool.acquire().await?;
        candidate(&mut conn, id).await?.pos
        // The connection goes back before SIMBAD is asked.
    };
    Ok(SimbadPart {
        radius,
        answer: simbad.cone(pos, radius).await,
        link: simbad_url(pos, radius),
    })
}

pub fn object_sep(o: &crate::catalogue::simbad::SimbadObject) -> String {
    sep_text(o.sep_arcsec)
}

//! What a VOEvent says about a candidate (`domain::voevent::Facts`), read
//! in a few small statements: the candidate with its project, observation,
//! verdict counts, score and association; its tags; its peak flux.

use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;

use crate::db::groups;
use crate::domain::voevent::{Association, Facts, Flux, FluxSource, ModelScore, Team};
use crate::domain::{CandidateId, ProjectId, SkyPos, UserId};

/// The facts, and what the blind rule needs to decide whether the viewer
/// may read them (they are made of others' verdicts).
pub struct Loaded {
    pub facts: Facts,
    pub project_id: ProjectId,
    /// The viewer has a current rating of the candidate.
    pub viewer_rated: bool,
}

#[derive(FromRow)]
struct Row {
    name: String,
    #[sqlx(flatten)]
    pos: SkyPos,
    project_id: ProjectId,
    project_slug: String,
    project_name: String,
    group_radius_arcsec: f64,
    consensus_k: i16,
    observation: String,
    obs_start: Option<OffsetDateTime>,
    beam: Option<String>,
    n_real: i32,
    n_not_real: i32,
    n_unsure: i32,
    p_real: Option<f32>,
    model_version: Option<i32>,
    known_catalogue: Option<String>,
    known_source: Option<String>,
    known_sep: Option<f64>,
    viewer_rated: bool,
}

/// The facts of candidate `id` as `viewer` asks for them; `None` if there
/// is no such candidate. `link` is the candidate's page.
pub async fn load(
    db: &mut PgConnection,
    id: CandidateId,
    viewer: UserId,
    link: Option<String>,
) -> sqlx::Result<Option<Loaded>> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.name, c.ra, c.dec,
                p.id AS project_id, p.slug AS project_slug, p.name AS project_name,
                p.group_radius_arcsec, p.consensus_k,
                o.external_id AS observation, o.start_time AS obs_start, b.name AS beam,
                coalesce(t.n_real, 0) AS n_real, coalesce(t.n_not_real, 0) AS n_not_real,
                coalesce(t.n_unsure, 0) AS n_unsure,
                s.p_real, m.version AS model_version,
                a.catalogue_name AS known_catalogue, a.source_name AS known_source,
                a.separation_arcsec AS known_sep,
                EXISTS (SELECT 1 FROM ratings r WHERE r.candidate_id = c.id AND r.user_id = $2)
                    AS viewer_rated
           FROM candidates c
           JOIN projects p ON p.id = c.project_id
           JOIN observations o ON o.id = c.observation_id
           LEFT JOIN beams b ON b.id = c.beam_id
           LEFT JOIN candidate_tallies t ON t.candidate_id = c.id
           LEFT JOIN candidate_scores s ON s.candidate_id = c.id
           LEFT JOIN models m ON m.id = s.model_id
           LEFT JOIN candidate_associations a ON a.candidate_id = c.id
          WHERE c.id = $1",
    )
    .bind(id)
    .bind(viewer)
    .fetch_optional(&mut *db)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    // Every tag carried by a current rating; a project has at most a few
    // dozen tags.
    let tags: Vec<(String, i32)> = sqlx::query_as(
        "SELECT g.name, tt.ratings
           FROM candidate_tag_tallies tt JOIN tags g ON g.id = tt.tag_id
          WHERE tt.candidate_id = $1 AND tt.ratings > 0
          ORDER BY tt.ratings DESC, g.position, g.name",
    )
    .bind(id)
    .fetch_all(&mut *db)
    .await?;
    let flux = peak_flux(db, id, r.project_id).await?;
    let association = match (r.known_catalogue, r.known_source, r.known_sep) {
        (Some(catalogue), Some(source), Some(separation_arcsec)) => Some(Association {
            catalogue,
            source,
            separation_arcsec,
        }),
        _ => None,
    };
    let model = match (r.p_real, r.model_version) {
        (Some(p_real), Some(version)) => Some(ModelScore { p_real, version }),
        _ => None,
    };
    Ok(Some(Loaded {
        project_id: r.project_id,
        viewer_rated: r.viewer_rated,
        facts: Facts {
            id,
            name: r.name,
            project_slug: r.project_slug,
            project_name: r.project_name,
            observation: r.observation,
            beam: r.beam,
            pos: r.pos,
            error_radius_arcsec: r.group_radius_arcsec,
            time: r.obs_start,
            flux,
            team: Team {
                n_real: r.n_real,
                n_not_real: r.n_not_real,
                n_unsure: r.n_unsure,
                k: r.consensus_k,
                tags,
            },
            association,
            model,
            link,
        },
    }))
}

/// The candidate's peak flux density: the project's peak-flux metric (the
/// rule the group panel uses, `groups::peak_flux_metric`) when the
/// candidate has a finite value of it, else the brightest finite point of
/// its light curve.
async fn peak_flux(
    db: &mut PgConnection,
    id: CandidateId,
    project: ProjectId,
) -> sqlx::Result<Option<Flux>> {
    if let Some((metric, label, unit)) = groups::peak_flux_metric(&mut *db, project).await? {
        let value: Option<f64> = sqlx::query_scalar(
            "SELECT value FROM candidate_metrics WHERE candidate_id = $1 AND metric_id = $2",
        )
        .bind(id)
        .bind(metric)
        .fetch_optional(&mut *db)
        .await?;
        if let Some(value) = value.filter(|v| v.is_finite()) {
            return Ok(Some(Flux {
                value,
                unit,
                source: FluxSource::Metric(label),
            }));
        }
    }
    // NaN sorts above every number in PostgreSQL, so it is filtered out
    // with the infinities rather than left to the sort.
    let brightest: Option<(f64, OffsetDateTime, String)> = sqlx::query_as(
        "SELECT p.flux, p.at, l.unit
           FROM light_curves l, unnest(l.flux, l.times) AS p(flux, at)
          WHERE l.candidate_id = $1
            AND p.flux > '-Infinity'::float8 AND p.flux < 'Infinity'::float8
          ORDER BY p.flux DESC, p.at LIMIT 1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(brightest.map(|(value, at, unit)| Flux {
        value,
        unit,
        source: FluxSource::LightCurve(at),
    }))
}

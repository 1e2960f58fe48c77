//! Candidates: rows, metrics, extra positions and light curves, written a
//! batch at a time with one statement per table (arrays and UNNEST), so a
//! batch of hundreds costs a handful of round trips.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::db::ratings::MyRating;
use crate::domain::decision::{GoodRange, Standing};
use crate::domain::upload::CandidateSpec;
use crate::domain::{
    BeamId, CandidateId, FileId, ObservationId, ProjectId, SkyPos, TagId, UserId, Verdict,
};

/// What is stored for a candidate name, for deciding what a re-send changes.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: CandidateId,
    pub content_hash: String,
    pub light_curve_hash: Option<String>,
}

pub async fn existing(
    db: &mut PgConnection,
    observation: ObservationId,
    names: &[String],
) -> sqlx::Result<HashMap<String, Existing>> {
    let rows: Vec<(String, CandidateId, String, Option<String>)> = sqlx::query_as(
        "SELECT c.name, c.id, c.content_hash, l.content_hash
         FROM candidates c LEFT JOIN light_curves l ON l.candidate_id = c.id
         WHERE c.observation_id = $1 AND c.name = ANY($2)",
    )
    .bind(observation)
    .bind(names)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, id, content_hash, light_curve_hash)| {
            (
                name,
                Existing {
                    id,
                    content_hash,
                    light_curve_hash,
                },
            )
        })
        .collect())
}

/// A candidate whose core record (position, metrics, attributes) is new or
/// changed, with its beam resolved.
pub struct CoreWrite<'a> {
    pub spec: &'a CandidateSpec,
    pub beam_id: Option<BeamId>,
}

/// Inserts or updates the core records; returns name → id for each.
#[tracing::instrument(skip_all, fields(n = rows.len()))]
pub async fn write_core(
    db: &mut PgConnection,
    project: ProjectId,
    observation: ObservationId,
    user: UserId,
    rows: &[CoreWrite<'_>],
    metric_ids: &HashMap<String, i64>,
) -> sqlx::Result<HashMap<String, CandidateId>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<&str> = rows.iter().map(|r| r.spec.name.as_str()).collect();
    let beams: Vec<Option<BeamId>> = rows.iter().map(|r| r.beam_id).collect();
    let ras: Vec<f64> = rows.iter().map(|r| r.spec.pos.ra.degrees()).collect();
    let decs: Vec<f64> = rows.iter().map(|r| r.spec.pos.dec.degrees()).collect();
    let attrs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::Value::Object(r.spec.attributes.clone()))
        .collect();
    let hashes: Vec<String> = rows.iter().map(|r| r.spec.content_hash()).collect();
    let ids: Vec<(String, CandidateId)> = sqlx::query_as(
        "INSERT INTO candidates (project_id, observation_id, created_by, name, beam_id, ra, dec, attributes, content_hash)
         SELECT $1, $2, $3, * FROM UNNEST($4::text[], $5::bigint[], $6::float8[], $7::float8[], $8::jsonb[], $9::text[])
         ON CONFLICT (observation_id, name) DO UPDATE SET
             beam_id = EXCLUDED.beam_id, ra = EXCLUDED.ra, dec = EXCLUDED.dec,
             attributes = EXCLUDED.attributes, content_hash = EXCLUDED.content_hash, updated_at = now()
         RETURNING name, id",
    )
    .bind(project)
    .bind(observation)
    .bind(user)
    .bind(&names)
    .bind(&beams)
    .bind(&ras)
    .bind(&decs)
    .bind(&attrs)
    .bind(&hashes)
    .fetch_all(&mut *db)
    .await?;
    let ids: HashMap<String, CandidateId> = ids.into_iter().collect();
    let all: Vec<CandidateId> = rows.iter().map(|r| ids[&r.spec.name]).collect();

    // Metrics and positions are replaced whole: they are part of the record.
    sqlx::query("DELETE FROM candidate_metrics WHERE candidate_id = ANY($1)")
        .bind(&all)
        .execute(&mut *db)
        .await?;
    sqlx::query("DELETE FROM candidate_positions WHERE candidate_id = ANY($1)")
        .bind(&all)
        .execute(&mut *db)
        .await?;
    let (mut m_cand, mut m_metric, mut m_value) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p_cand, mut p_kind, mut p_ra, mut p_dec) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        let id = ids[&r.spec.name];
        for (key, value) in &r.spec.metrics {
            m_cand.push(id);
            m_metric.push(metric_ids[key]);
            m_value.push(*value);
        }
        for (kind, pos) in &r.spec.positions {
            p_cand.push(id);
            p_kind.push(kind.as_str());
            p_ra.push(pos.ra.degrees());
            p_dec.push(pos.dec.degrees());
        }
    }
    if !m_cand.is_empty() {
        sqlx::query(
            "INSERT INTO candidate_metrics (candidate_id, metric_id, value)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[])",
        )
        .bind(&m_cand)
        .bind(&m_metric)
        .bind(&m_value)
        .execute(&mut *db)
        .await?;
    }
    if !p_cand.is_empty() {
        sqlx::query(
            "INSERT INTO candidate_positions (candidate_id, kind, ra, dec)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::float8[], $4::float8[])",
        )
        .bind(&p_cand)
        .bind(&p_kind)
        .bind(&p_ra)
        .bind(&p_dec)
        .execute(&mut *db)
        .await?;
    }
    Ok(ids)
}

/// Writes light curves (candidate id, spec) in one statement: the points are
/// sent flat and regrouped by the database.
pub async fn write_light_curves(
    db: &mut PgConnection,
    curves: &[(CandidateId, &CandidateSpec)],
) -> sqlx::Result<()> {
    let (mut cid, mut t, mut f, mut e): (
        Vec<CandidateId>,
        Vec<OffsetDateTime>,
        Vec<f64>,
        Vec<Option<f64>>,
    ) = Default::default();
    let (mut ids, mut units, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for (id, spec) in curves {
        let Some(lc) = &spec.light_curve else {
            continue;
        };
        ids.push(*id);
        units.push(lc.unit.as_str());
        hashes.push(lc.content_hash());
        for i in 0..lc.times.len() {
            cid.push(*id);
            t.push(lc.times[i]);
            f.push(lc.flux[i]);
            e.push(lc.err.as_ref().map(|e| e[i]));
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO light_curves (candidate_id, unit, content_hash, times, flux, flux_err)
         SELECT u.cid, u.unit, u.hash, array_agg(p.t ORDER BY p.ord), array_agg(p.f ORDER BY p.ord),
                CASE WHEN bool_and(p.e IS NULL) THEN NULL ELSE array_agg(p.e ORDER BY p.ord) END
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::float8[], $4::float8[]) WITH ORDINALITY AS p(cid, t, f, e, ord)
         JOIN UNNEST($5::bigint[], $6::text[], $7::text[]) AS u(cid, unit, hash) ON u.cid = p.cid
         GROUP BY u.cid, u.unit, u.hash
         ON CONFLICT (candidate_id) DO UPDATE SET unit = EXCLUDED.unit, content_hash = EXCLUDED.content_hash,
             times = EXCLUDED.times, flux = EXCLUDED.flux, flux_err = EXCLUDED.flux_err",
    )
    .bind(&cid)
    .bind(&t)
    .bind(&f)
    .bind(&e)
    .bind(&ids)
    .bind(&units)
    .bind(&hashes)
    .execute(db)
    .await?;
    Ok(())
}

/// Everything the candidate page shows about the candidate itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Detail {
    pub id: CandidateId,
    pub name: String,
    #[sqlx(flatten)]
    pub pos: SkyPos,
    pub attributes: sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
    pub rating_count: i32,
    pub project_id: ProjectId,
    pub project_slug: String,
    pub project_name: String,
    pub score_enabled: bool,
    pub reviewers_add_tags: bool,
    /// The project's verdict-key guard (`db::projects::Project`).
    pub key_guard_ms: i32,
    pub observation_id: ObservationId,
    pub observation: String,
    pub obs_start: Option<OffsetDateTime>,
    pub beam_id: Option<BeamId>,
    pub beam: Option<String>,
}

pub async fn detail(db: &mut PgConnection, id: CandidateId) -> sqlx::Result<Option<Detail>> {
    sqlx::query_as(
        "SELECT c.id, c.name, c.ra, c.dec, c.attributes, c.rating_count,
                p.id AS project_id, p.slug AS project_slug, p.name AS project_name, p.score_enabled, p.reviewers_add_tags, p.key_guard_ms,
                o.id AS observation_id, o.external_id AS observation, o.start_time AS obs_start,
                b.id AS beam_id, b.name AS beam
         FROM candidates c JOIN projects p ON p.id = c.project_id JOIN observations o ON o.id = c.observation_id
         LEFT JOIN beams b ON b.id = c.beam_id
         WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MetricValue {
    pub key: String,
    pub label: String,
    pub unit: String,
    pub description: String,
    pub precision: i16,
    pub value: Option<f64>,
    pub headline: bool,
    pub good_min: Option<f64>,
    pub good_max: Option<f64>,
}

impl MetricValue {
    /// Whether the value is in the project's good range (see
    /// [`GoodRange::standing`] for NaN and the infinities).
    pub fn standing(&self) -> Standing {
        // The database checks the range as `GoodRange::new` does; a row
        // that somehow broke the rule is judged against no range at all.
        GoodRange::new(self.good_min, self.good_max)
            .unwrap_or_default()
            .standing(self.value)
    }
}

/// The project's metrics with this candidate's values, in the project's
/// order: those shown by default or headline (a headline metric without a
/// value is worth seeing missing), and any other the candidate has.
pub async fn metrics(
    db: &mut PgConnection,
    candidate: CandidateId,
    project: ProjectId,
) -> sqlx::Result<Vec<MetricValue>> {
    sqlx::query_as(
        "SELECT d.key, d.label, d.unit, d.description, d.precision, m.value, d.headline, d.good_min, d.good_max
         FROM metric_defs d LEFT JOIN candidate_metrics m ON m.metric_id = d.id AND m.candidate_id = $1
         WHERE d.project_id = $2 AND (d.shown_by_default OR d.headline OR m.value IS NOT NULL)
         ORDER BY d.position, d.id",
    )
    .bind(candidate)
    .bind(project)
    .fetch_all(db)
    .await
}

/// A further position of a candidate (a deep-image match, a forced fit).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KindPosition {
    pub kind: String,
    #[sqlx(flatten)]
    pub pos: SkyPos,
}

pub async fn positions(
    db: &mut PgConnection,
    candidate: CandidateId,
) -> sqlx::Result<Vec<KindPosition>> {
    sqlx::query_as(
        "SELECT kind, ra, dec FROM candidate_positions WHERE candidate_id = $1 ORDER BY kind",
    )
    .bind(candidate)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredLightCurve {
    pub unit: String,
    pub times: Vec<OffsetDateTime>,
    pub flux: Vec<f64>,
    pub flux_err: Option<Vec<f64>>,
}

pub async fn light_curve(
    db: &mut PgConnection,
    candidate: CandidateId,
) -> sqlx::Result<Option<StoredLightCurve>> {
    sqlx::query_as("SELECT unit, times, flux, flux_err FROM light_curves WHERE candidate_id = $1")
        .bind(candidate)
        .fetch_optional(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct FileRef {
    pub id: FileId,
    pub role: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub storage_path: String,
    pub original_name: String,
    pub derived_from: Option<FileId>,
    /// "candidate", "beam" or "observation".
    pub owner: String,
    /// For an animated GIF: how to cut its `<role>_strip` PNG (frames
    /// stacked top to bottom, each `width` × `height`) and how long to show
    /// each frame.
    pub frames: Option<i32>,
    pub frame_ms: Option<i32>,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

/// The candidate's files, then its beam's and its observation's.
pub async fn files(db: &mut PgConnection, d: &Detail) -> sqlx::Result<Vec<FileRef>> {
    sqlx::query_as(
        "SELECT id, role, content_type, size_bytes, storage_path, original_name, derived_from,
                frames, frame_ms, width, height,
                CASE WHEN candidate_id IS NOT NULL THEN 'candidate'
                     WHEN beam_id IS NOT NULL THEN 'beam' ELSE 'observation' END AS owner
         FROM files WHERE candidate_id = $1 OR beam_id = $2 OR observation_id = $3
         ORDER BY candidate_id IS NULL, beam_id IS NULL, role",
    )
    .bind(d.id)
    .bind(d.beam_id)
    .bind(d.observation_id)
    .fetch_all(db)
    .await
}

/// Other candidates within `radius_deg`, any project, nearest first.
pub async fn near(
    db: &mut PgConnection,
    candidate: CandidateId,
    pos: SkyPos,
    radius_deg: f64,
    limit: i64,
) -> sqlx::Result<Vec<(CandidateId, String, String, f64, f64, f64)>> {
    sqlx::query_as(
        "SELECT c.id, c.name, p.name, c.ra, c.dec, q3c_dist(c.ra, c.dec, $2, $3) AS sep
         FROM candidates c JOIN projects p ON p.id = c.project_id
         WHERE q3c_join($2, $3, c.ra, c.dec, $4) AND c.id <> $1 -- cheaper to plan than q3c_radial_query (db::search)
         ORDER BY sep LIMIT $5",
    )
    .bind(candidate)
    .bind(pos.ra.degrees())
    .bind(pos.dec.degrees())
    .bind(radius_deg)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn tags(
    db: &mut PgConnection,
    project: ProjectId,
) -> sqlx::Result<Vec<(TagId, String, String)>> {
    sqlx::query_as(
        "SELECT id, name, description FROM tags WHERE project_id = $1 ORDER BY position, name",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

/// What a rating of the candidate may hold: whether its project asks for a
/// score, and its project's tags. One query, because every rating asks.
pub async fn rating_rules(
    db: &mut PgConnection,
    candidate: CandidateId,
) -> sqlx::Result<Option<(bool, Vec<TagId>)>> {
    sqlx::query_as(
        "SELECT p.score_enabled, ARRAY(SELECT t.id FROM tags t WHERE t.project_id = p.id)
         FROM candidates c JOIN projects p ON p.id = c.project_id WHERE c.id = $1",
    )
    .bind(candidate)
    .fetch_optional(db)
    .await
}

/// Everything the rating page shows of one candidate for one reviewer, read
/// in one statement (it is the page reviewers load all day; fetched piece
/// by piece it took eight round trips): the candidate, its metrics, files
/// and light curve, the project's tags, the reviewer's own rating and the
/// candidate they were shown before it (recording this showing first, when
/// asked: `db::trail`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Shown {
    pub trail_before: Option<CandidateId>,
    #[sqlx(flatten)]
    pub detail: Detail,
    #[sqlx(flatten)]
    metrics: MetricColumns,
    files: sqlx::types::Json<Vec<FileRef>>,
    lc_unit: Option<String>,
    lc_times: Option<Vec<OffsetDateTime>>,
    lc_flux: Option<Vec<f64>>,
    lc_flux_err: Option<Vec<f64>>,
    tag_ids: Vec<TagId>,
    tag_names: Vec<String>,
    tag_descriptions: Vec<String>,
    my_verdict: Option<Verdict>,
    my_score: Option<i16>,
    my_notes: Option<String>,
    my_rated_at: Option<OffsetDateTime>,
    my_tag_ids: Vec<TagId>,
}

/// [`metrics`] as one array per field (arrays keep NaN and the infinities,
/// which JSON cannot carry as numbers).
#[derive(Debug, Clone, sqlx::FromRow)]
struct MetricColumns {
    m_keys: Option<Vec<String>>,
    m_labels: Option<Vec<String>>,
    m_units: Option<Vec<String>>,
    m_descriptions: Option<Vec<String>>,
    m_precisions: Option<Vec<i16>>,
    m_values: Option<Vec<Option<f64>>>,
    m_headlines: Option<Vec<bool>>,
    m_good_mins: Option<Vec<Option<f64>>>,
    m_good_maxs: Option<Vec<Option<f64>>>,
}

impl Shown {
    /// As [`metrics`] returns them.
    pub fn metrics(&self) -> Vec<MetricValue> {
        let m = &self.metrics;
        let keys = m.m_keys.as_deref().unwrap_or_default();
        let at = |i: usize| MetricValue {
            key: keys[i].clone(),
            label: field(&m.m_labels, i).unwrap_or_default(),
            unit: field(&m.m_units, i).unwrap_or_default(),
            description: field(&m.m_descriptions, i).unwrap_or_default(),
            precision: field(&m.m_precisions, i).unwrap_or_default(),
            value: field(&m.m_values, i).flatten(),
            headline: field(&m.m_headlines, i).unwrap_or_default(),
            good_min: field(&m.m_good_mins, i).flatten(),
            good_max: field(&m.m_good_maxs, i).flatten(),
        };
        (0..keys.len()).map(at).collect()
    }

    /// As [`files`] returns them.
    pub fn files(&self) -> &[FileRef] {
        &self.files.0
    }

    /// As [`light_curve`] returns it.
    pub fn light_curve(&self) -> Option<StoredLightCurve> {
        Some(StoredLightCurve {
            unit: self.lc_unit.clone()?,
            times: self.lc_times.clone()?,
            flux: self.lc_flux.clone()?,
            flux_err: self.lc_flux_err.clone(),
        })
    }

    /// As [`tags`] returns them.
    pub fn tags(&self) -> Vec<(TagId, String, String)> {
        self.tag_ids
            .iter()
            .zip(&self.tag_names)
            .zip(&self.tag_descriptions)
            .map(|((id, name), description)| (*id, name.clone(), description.clone()))
            .collect()
    }

    /// As `ratings::mine` returns it.
    pub fn mine(&self) -> Option<MyRating> {
        Some(MyRating {
            verdict: self.my_verdict?,
            score: self.my_score,
            notes: self.my_notes.clone().unwrap_or_default(),
            tag_ids: self.my_tag_ids.clone(),
            rated_at: self.my_rated_at?,
        })
    }
}

fn field<T: Clone>(column: &Option<Vec<T>>, i: usize) -> Option<T> {
    column.as_ref().and_then(|c| c.get(i).cloned())
}

pub async fn shown(
    db: &mut PgConnection,
    id: CandidateId,
    user: UserId,
    record_in_trail: bool,
) -> sqlx::Result<Option<Shown>> {
    let q = sqlx::query_as(shown_sql(record_in_trail))
        .bind(id)
        .bind(user);
    let q = if record_in_trail {
        q.bind(super::trail::KEPT)
    } else {
        q
    };
    q.fetch_optional(db).await
}

/// The text of [`shown`]'s statement, with the trail step recording or
/// only walking: made once, as the page runs it on every view.
fn shown_sql(record_in_trail: bool) -> &'static str {
    static TEXTS: std::sync::LazyLock<[String; 2]> =
        std::sync::LazyLock::new(|| [false, true].map(shown_text));
    &TEXTS[usize::from(record_in_trail)]
}

fn shown_text(record_in_trail: bool) -> String {
    let trail = super::trail::step(record_in_trail, "$2", "$1", "$3");
    format!(
        "{with}
         SELECT {before} AS trail_before, c.id, c.name, c.ra, c.dec, c.attributes, c.rating_count,
                p.id AS project_id, p.slug AS project_slug, p.name AS project_name, p.score_enabled,
                p.reviewers_add_tags, p.key_guard_ms,
                o.id AS observation_id, o.external_id AS observation, o.start_time AS obs_start,
                b.id AS beam_id, b.name AS beam,
                mt.*,
                coalesce((SELECT json_agg(json_build_object(
                              'id', f.id, 'role', f.role, 'content_type', f.content_type,
                              'size_bytes', f.size_bytes, 'storage_path', f.storage_path,
                              'original_name', f.original_name, 'derived_from', f.derived_from,
                              'frames', f.frames, 'frame_ms', f.frame_ms, 'width', f.width, 'height', f.height,
                              'owner', CASE WHEN f.candidate_id IS NOT NULL THEN 'candidate'
                                            WHEN f.beam_id IS NOT NULL THEN 'beam' ELSE 'observation' END)
                              ORDER BY f.candidate_id IS NULL, f.beam_id IS NULL, f.role)
                          FROM files f
                          WHERE f.candidate_id = c.id OR f.beam_id = c.beam_id
                             OR f.observation_id = c.observation_id), '[]') AS files,
                lc.unit AS lc_unit, lc.times AS lc_times, lc.flux AS lc_flux, lc.flux_err AS lc_flux_err,
                tg.tag_ids, tg.tag_names, tg.tag_descriptions,
                r.verdict AS my_verdict, r.score AS my_score, r.notes AS my_notes, r.rated_at AS my_rated_at,
                ARRAY(SELECT rt.tag_id FROM rating_tags rt
                      WHERE rt.user_id = $2 AND rt.candidate_id = c.id ORDER BY rt.tag_id) AS my_tag_ids
         FROM candidates c JOIN projects p ON p.id = c.project_id
         JOIN observations o ON o.id = c.observation_id
         LEFT JOIN beams b ON b.id = c.beam_id
         LEFT JOIN light_curves lc ON lc.candidate_id = c.id
         LEFT JOIN ratings r ON r.candidate_id = c.id AND r.user_id = $2
         CROSS JOIN LATERAL (
             SELECT array_agg(d.key ORDER BY d.position, d.id) AS m_keys,
                    array_agg(d.label ORDER BY d.position, d.id) AS m_labels,
                    array_agg(d.unit ORDER BY d.position, d.id) AS m_units,
                    array_agg(d.description ORDER BY d.position, d.id) AS m_descriptions,
                    array_agg(d.precision ORDER BY d.position, d.id) AS m_precisions,
                    array_agg(m.value ORDER BY d.position, d.id) AS m_values,
                    array_agg(d.headline ORDER BY d.position, d.id) AS m_headlines,
                    array_agg(d.good_min ORDER BY d.position, d.id) AS m_good_mins,
                    array_agg(d.good_max ORDER BY d.position, d.id) AS m_good_maxs
             FROM metric_defs d
             LEFT JOIN candidate_metrics m ON m.metric_id = d.id AND m.candidate_id = c.id
             WHERE d.project_id = c.project_id AND (d.shown_by_default OR d.headline OR m.value IS NOT NULL)
         ) mt
         CROSS JOIN LATERAL (
             SELECT coalesce(array_agg(t.id ORDER BY t.position, t.name), '{{}}') AS tag_ids,
                    coalesce(array_agg(t.name ORDER BY t.position, t.name), '{{}}') AS tag_names,
                    coalesce(array_agg(t.description ORDER BY t.position, t.name), '{{}}') AS tag_descriptions
             FROM tags t WHERE t.project_id = c.project_id
         ) tg
         WHERE c.id = $1",
        with = trail.with,
        before = trail.before,
    )
}

/// The candidate's own images (for prefetching the next one's).
/// The candidate's own files (not its beam's or observation's), for
/// fetching the pictures of the candidate after the one shown.
pub async fn own_files(
    db: &mut PgConnection,
    candidate: CandidateId,
) -> sqlx::Result<Vec<FileRef>> {
    sqlx::query_as(
        "SELECT id, role, content_type, size_bytes, storage_path, original_name, derived_from,
                'candidate' AS owner, frames, frame_ms, width, height
         FROM files WHERE candidate_id = $1 ORDER BY role",
    )
    .bind(candidate)
    .fetch_all(db)
    .await
}

/// The positions of the first 300 candidates, for the demo to put pulsars
/// beside.
pub async fn first_positions(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<SkyPos>> {
    sqlx::query_as("SELECT ra, dec FROM candidates ORDER BY id LIMIT 300")
        .fetch_all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(value: Option<f64>, good_min: Option<f64>, good_max: Option<f64>) -> MetricValue {
        MetricValue {
            key: "snr".into(),
            label: "S/N".into(),
            unit: "σ".into(),
            description: String::new(),
            precision: 1,
            value,
            headline: true,
            good_min,
            good_max,
        }
    }

    #[test]
    fn a_value_stands_against_its_range_boundaries_included() {
        assert_eq!(value(Some(5.0), Some(5.0), None).standing(), Standing::Good);
        assert_eq!(
            value(Some(4.9), Some(5.0), None).standing(),
            Standing::Outside
        );
        assert_eq!(value(Some(2.0), None, Some(2.0)).standing(), Standing::Good);
        assert_eq!(
            value(Some(2.5), Some(0.0), Some(2.0)).standing(),
            Standing::Outside
        );
    }

    #[test]
    fn no_range_no_value_or_no_finite_value_is_unjudged() {
        assert_eq!(value(Some(5.0), None, None).standing(), Standing::Unjudged);
        assert_eq!(value(None, Some(5.0), None).standing(), Standing::Unjudged);
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                value(Some(x), Some(5.0), None).standing(),
                Standing::Unjudged
            );
        }
        // A reversed range cannot be stored; read anyway, it judges nothing.
        assert_eq!(
            value(Some(5.0), Some(9.0), Some(1.0)).standing(),
            Standing::Unjudged
        );
    }
}

//! Candidates: rows, metrics, extra positions and light curves, written a
//! batch at a time with one statement per table (arrays and UNNEST), so a
//! batch of hundreds costs a handful of round trips.

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::domain::upload::CandidateSpec;
use crate::domain::UserId;

/// What is stored for a candidate name, for deciding what a re-send changes.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: i64,
    pub content_hash: String,
    pub light_curve_hash: Option<String>,
}

pub async fn existing(
    db: &mut PgConnection,
    observation: i64,
    names: &[String],
) -> sqlx::Result<HashMap<String, Existing>> {
    let rows: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
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
    pub beam_id: Option<i64>,
}

/// Inserts or updates the core records; returns name → id for each.
#[tracing::instrument(skip_all, fields(n = rows.len()))]
pub async fn write_core(
    db: &mut PgConnection,
    project: i64,
    observation: i64,
    user: UserId,
    rows: &[CoreWrite<'_>],
    metric_ids: &HashMap<String, i64>,
) -> sqlx::Result<HashMap<String, i64>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<&str> = rows.iter().map(|r| r.spec.name.as_str()).collect();
    let beams: Vec<Option<i64>> = rows.iter().map(|r| r.beam_id).collect();
    let ras: Vec<f64> = rows.iter().map(|r| r.spec.pos.ra.degrees()).collect();
    let decs: Vec<f64> = rows.iter().map(|r| r.spec.pos.dec.degrees()).collect();
    let attrs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::Value::Object(r.spec.attributes.clone()))
        .collect();
    let hashes: Vec<String> = rows.iter().map(|r| r.spec.content_hash()).collect();
    let ids: Vec<(String, i64)> = sqlx::query_as(
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
    let ids: HashMap<String, i64> = ids.into_iter().collect();
    let all: Vec<i64> = rows.iter().map(|r| ids[&r.spec.name]).collect();

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
    curves: &[(i64, &CandidateSpec)],
) -> sqlx::Result<()> {
    let (mut cid, mut t, mut f, mut e): (
        Vec<i64>,
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

//! `GET /api/v1/candidates` (the table's filter, walked by id) and
//! `GET /api/v1/candidates/{id}` (one, with the ratings its reader may see).

use poem::web::{Data, Json, Path};
use poem::{handler, Request};
use serde_json::{json, Map, Value};

use crate::db::projects::MetricDef;
use crate::db::ratings::{self, Kept, OfCandidate};
use crate::db::search::{self, PageSpec, SortSpec, TableRow};
use crate::db::{candidates as cand, catalogues, models};
use crate::domain::filter::{self, CandidateFilter, Cursor};
use crate::domain::paging::{CandidateCursor, Limit};
use crate::domain::CandidateId;
use crate::web::api::read::{number, refuse, timestamp, Query};
use crate::web::paths;
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

fn row_json(r: &TableRow, columns: &[MetricDef]) -> Value {
    let metrics: Map<String, Value> = columns
        .iter()
        .zip(&r.metrics)
        .filter_map(|(m, v)| v.map(|v| (m.key.clone(), number(v))))
        .collect();
    let mut row = json!({
        "id": r.id,
        "name": r.name,
        "project": r.project,
        "observation": r.observation,
        "beam": r.beam,
        "ra": r.pos.ra.degrees(),
        "dec": r.pos.dec.degrees(),
        "rating_count": r.rating_count,
        "my_verdict": r.mine,
        "p_real": r.score,
        "consensus": r.consensus,
        "known_source": r.known,
        "metrics": metrics,
        "page": paths::candidate(r.id),
    });
    if let Some(sep) = r.sep_arcmin {
        row["separation_arcmin"] = json!(sep);
    }
    if let Some((source, sep)) = &r.nearest {
        row["nearest"] = json!({"source": source, "separation_arcsec": sep});
    }
    row
}

/// Candidates matching the table's filter, by id: a page of `limit` after
/// `cursor`. The walk neither skips nor repeats a candidate while others
/// arrive: every candidate there when the walk began comes exactly once.
#[handler]
pub async fn list(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Json<Value>> {
    let q = Query::read(req, |k| {
        filter::selects(k) || matches!(k, "cursor" | "limit")
    })?;
    let mut problems = Vec::new();
    let limit = Limit::parse(q.get("limit"))
        .map_err(|p| problems.push(p))
        .unwrap_or_default();
    let cursor = match q.get("cursor").map(CandidateCursor::parse).transpose() {
        Ok(c) => c,
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let f = CandidateFilter::from_pairs(&q.pairs_where(filter::selects));
    let mut conn = state.pool.acquire().await?;
    let res = search::resolve(&mut conn, &f).await?;
    problems.extend(res.problems.iter().cloned());
    refuse(problems)?;
    let v = ratings::visibility(&mut conn, user.id, user.role).await?;
    let columns = match &res.project {
        Some(_) => res.metrics.clone(),
        None => crate::db::projects::all_metrics(&mut conn).await?,
    };
    let at = match cursor {
        Some(c) => Cursor::After(vec![c.0.to_string()]),
        None => Cursor::First,
    };
    let page = search::page(
        &mut conn,
        &res.scope,
        &v,
        &PageSpec {
            sort: &SortSpec::Id,
            descending: false,
            cursor: &at,
            per: limit.get(),
            columns: &columns,
            score: true,
            consensus: true,
        },
    )
    .await?;
    let next = page
        .next
        .as_ref()
        .and_then(|k| k.first())
        .and_then(|id| id.parse().ok())
        .map(|id| CandidateCursor(CandidateId(id)).encode());
    Ok(Json(json!({
        "candidates": page.rows.iter().map(|r| row_json(r, &columns)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

fn rating_json(r: &OfCandidate) -> Value {
    let v = &r.rating;
    let mut out = json!({
        "reviewer": v.username,
        "verdict": v.verdict,
        "score": v.score,
        "tags": v.tags,
        "notes": v.notes,
        "rated_at": timestamp(v.rated_at),
    });
    if let Some(t) = v.replaced_at {
        out["replaced_at"] = timestamp(t);
    }
    out
}

/// The ratings of `id` among `all` (which are ordered by candidate).
pub fn ratings_of(all: &[OfCandidate], id: CandidateId) -> Vec<Value> {
    all.iter()
        .filter(|r| r.candidate_id == id)
        .map(rating_json)
        .collect()
}

/// One candidate: where and what it is, and the ratings its reader may
/// see (the blind rule: others' only once the reader has rated it, unless
/// the project says otherwise). Nothing says whether it is a gold
/// candidate.
#[handler]
pub async fn one(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<CandidateId>,
) -> WebResult<Json<Value>> {
    Query::read(req, |_| false)?;
    let mut conn = state.pool.acquire().await?;
    let c = cand::detail(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let v = ratings::visibility(&mut conn, user.id, user.role).await?;
    let current = ratings::visible_of(&mut conn, &v, &[id], Kept::Current).await?;
    let history = ratings::visible_of(&mut conn, &v, &[id], Kept::Replaced).await?;
    let rated_it = ratings::mine(&mut conn, user.id, id).await?.is_some();
    let (p_real, model_version, consensus) = if v.sees_others(c.project_id, rated_it) {
        match models::standing(&mut *conn, id).await? {
            Some((p, version, state)) => (p, version, Some(state)),
            None => (None, None, None),
        }
    } else {
        (None, None, None)
    };
    let metrics: Map<String, Value> = cand::metrics(&mut conn, id, c.project_id)
        .await?
        .into_iter()
        .map(|m| (m.key, m.value.map_or(Value::Null, number)))
        .collect();
    let positions: Map<String, Value> = cand::positions(&mut conn, id)
        .await?
        .into_iter()
        .map(|p| {
            (
                p.kind,
                json!({"ra": p.pos.ra.degrees(), "dec": p.pos.dec.degrees()}),
            )
        })
        .collect();
    let association = catalogues::association_of(&mut *conn, id).await?.map(|a| {
        json!({
            "catalogue": a.catalogue_name,
            "source": a.source_name,
            "separation_arcsec": a.separation_arcsec,
            "by": a.associated_by,
            "at": timestamp(a.associated_at),
        })
    });
    Ok(Json(json!({
        "id": c.id,
        "name": c.name,
        "project": c.project_slug,
        "observation": c.observation,
        "observation_start": c.obs_start.map(timestamp),
        "beam": c.beam,
        "ra": c.pos.ra.degrees(),
        "dec": c.pos.dec.degrees(),
        "positions": positions,
        "attributes": c.attributes.0,
        "metrics": metrics,
        "rating_count": c.rating_count,
        "p_real": p_real,
        "model_version": model_version,
        "consensus": consensus,
        "association": association,
        "ratings": ratings_of(&current, id),
        "history": ratings_of(&history, id),
        "page": paths::candidate(id),
    })))
}

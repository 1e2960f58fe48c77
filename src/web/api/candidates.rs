//! `PUT …/candidates/{name}` (one) and `POST …/candidates` (a batch).
//!
//! Both go through `upsert_batch`: parse and check everything, then decide
//! per candidate what changed, render the previews that are needed, and
//! write it all in one transaction. Files reach `objects/` inside that
//! transaction, before its commit (see `media.rs`).

use std::collections::{HashMap, HashSet};

use poem::web::{Data, Json, Path};
use poem::{handler, Body, IntoResponse, Request, Response};
use serde::Serialize;
use serde_json::Value;

use crate::db::candidates::{self, CoreWrite};
use crate::db::files::{self as file_rows, Owner};
use crate::db::observations as obs_rows;
use crate::db::projects::{self, Outcome};
use crate::domain::upload::{check_external_id, CandidateSpec, Problems};
use crate::domain::{Problem, UserId};
use crate::ingest::publish::Publication;
use crate::media::MediaStore;
use crate::web::api::body::UploadBody;
use crate::web::api::observations::{observation, project};
use crate::web::api::{attach, files, finish_files, outcome_response, reject_if_any, settle};
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Serialize)]
pub struct Result1 {
    pub name: String,
    pub status: Outcome,
    pub id: i64,
}

#[handler]
pub async fn put(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, external_id, name)): Path<(String, String, String)>,
) -> WebResult<Response> {
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "candidate").await?;
    let mut p = Problems::default();
    let spec = CandidateSpec::parse(upload.json, Some(&name), "", &mut p);
    reject_if_any(p)?;
    let spec = spec.ok_or_else(|| AppError::internal("a parsed candidate without problems"))?;
    let results = upsert_batch(
        &state,
        user.id,
        &slug,
        &external_id,
        vec![spec],
        vec![String::new()],
        upload.files,
    )
    .await?;
    let r = &results[0];
    Ok(outcome_response(r.status, r.id, "candidate", &r.name))
}

#[handler]
pub async fn post_batch(
    req: &Request,
    body: Body,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, external_id)): Path<(String, String)>,
) -> WebResult<Response> {
    let upload = UploadBody::read(req, &mut poem::RequestBody::new(body), "candidates").await?;
    let list = match upload.json {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("candidates") => {
            o.remove("candidates")
        }
        _ => None,
    };
    let Some(Value::Array(list)) = list else {
        return Err(AppError::invalid(vec![Problem::new(
            "body",
            "expected {\"candidates\": [ ... ]}",
        )]));
    };
    if list.is_empty() || list.len() > MAX_BATCH {
        return Err(AppError::invalid(vec![Problem::new(
            "candidates",
            format!(
                "a batch holds 1 to {MAX_BATCH} candidates, not {}",
                list.len()
            ),
        )]));
    }
    let mut p = Problems::default();
    let mut specs = Vec::with_capacity(list.len());
    let mut prefixes = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        let prefix = format!("candidates[{i}]");
        if let Some(s) = CandidateSpec::parse(v, None, &prefix, &mut p) {
            specs.push(s);
            prefixes.push(format!("{prefix}."));
        }
    }
    reject_if_any(p)?;
    let results = upsert_batch(
        &state,
        user.id,
        &slug,
        &external_id,
        specs,
        prefixes,
        upload.files,
    )
    .await?;
    let count = |o: Outcome| results.iter().filter(|r| r.status == o).count();
    Ok(Json(serde_json::json!({
        "created": count(Outcome::Created),
        "updated": count(Outcome::Updated),
        "unchanged": count(Outcome::Unchanged),
        "candidates": results,
    }))
    .into_response())
}

/// `prefixes[i]` is where problems of candidate `i` are reported
/// (`candidates[3].`, or empty for a single candidate).
pub async fn upsert_batch(
    state: &AppState,
    user: UserId,
    slug: &str,
    external_id: &str,
    specs: Vec<CandidateSpec>,
    prefixes: Vec<String>,
    mut received: HashMap<String, crate::web::api::body::ReceivedFile>,
) -> WebResult<Vec<Result1>> {
    check_external_id(external_id, 128)
        .map_err(|e| AppError::invalid(vec![Problem::new("observation", e)]))?;
    let media = MediaStore::new(&state.config.media_root);
    let mut conn = state.pool.acquire().await?;
    let project = project(&mut conn, slug).await?;
    let observation = observation(&mut conn, &project, external_id).await?;
    let metric_ids = projects::metric_ids(&mut conn, project.id).await?;
    let beam_ids = obs_rows::beam_ids(&mut conn, observation).await?;

    // Everything that can be wrong with the request, all at once.
    let mut p = Problems::default();
    let mut seen = HashSet::new();
    for (spec, prefix) in specs.iter().zip(&prefixes) {
        if !seen.insert(spec.name.as_str()) {
            p.push(
                format!("{prefix}name"),
                format!("{:?} appears twice in this batch", spec.name),
            );
        }
        for key in spec.metrics.keys() {
            if !metric_ids.contains_key(key) {
                p.push(
                    format!("{prefix}metrics.{key}"),
                    format!("project {:?} has no metric {key:?}: define it with PUT /api/v1/projects/{}", project.slug, project.slug),
                );
            }
        }
        if let Some(b) = &spec.beam {
            if !beam_ids.contains_key(b) {
                p.push(
                    format!("{prefix}beam"),
                    format!("observation {external_id:?} has no beam {b:?}: create it first"),
                );
            }
        }
    }
    let owners: Vec<(String, &std::collections::BTreeMap<String, String>)> = specs
        .iter()
        .zip(&prefixes)
        .map(|(s, pre)| (pre.clone(), &s.files))
        .collect();
    let mut taken = files::take(&owners, &mut received, &mut p);
    files::inspect_fits(&taken, &prefixes, &mut p).await;
    reject_if_any(p)?;

    // What is stored already decides what this request changes.
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let existing = candidates::existing(&mut conn, observation, &names).await?;
    let existing_ids: Vec<i64> = existing.values().map(|e| e.id).collect();
    let stored_files = file_rows::shas(&mut conn, Owner::Candidate, &existing_ids).await?;
    drop(conn);
    for (spec, files) in specs.iter().zip(taken.iter_mut()) {
        if let Some(e) = existing.get(&spec.name) {
            files.retain(|(role, f)| {
                stored_files.get(&(e.id, role.clone())) != Some(&f.temp.sha256)
            });
        }
    }
    let prepared = files::prepare(&media, taken, &prefixes).await?;

    let mut core = Vec::new();
    let mut curves_changed = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let e = existing.get(&spec.name);
        if e.is_none_or(|e| e.content_hash != spec.content_hash()) {
            core.push(CoreWrite {
                spec,
                beam_id: spec.beam.as_ref().map(|b| beam_ids[b]),
            });
        }
        if let Some(lc) = &spec.light_curve {
            if e.and_then(|e| e.light_curve_hash.as_deref()) != Some(lc.content_hash().as_str()) {
                curves_changed.push(i);
            }
        }
    }

    let mut tx = state.pool.begin().await?;
    let mut published = Publication::new(&media, &state.pool);
    let written = async {
        // Into objects/ before the commit: a crash leaves at worst an orphan.
        published
            .publish(
                &mut tx,
                prepared.iter().flatten().map(|f| (&f.temp, f.kind)),
            )
            .await?;
        let mut ids =
            candidates::write_core(&mut tx, project.id, observation, user, &core, &metric_ids)
                .await?;
        for (name, e) in &existing {
            ids.entry(name.clone()).or_insert(e.id);
        }
        let curves: Vec<(i64, &CandidateSpec)> = curves_changed
            .iter()
            .map(|&i| (ids[&specs[i].name], &specs[i]))
            .collect();
        candidates::write_light_curves(&mut tx, &curves).await?;
        let mut replaced = Vec::new();
        for (spec, files) in specs.iter().zip(&prepared) {
            if !files.is_empty() {
                attach(
                    &mut tx,
                    Owner::Candidate(ids[&spec.name]),
                    files,
                    &mut replaced,
                )
                .await?;
            }
        }
        Ok::<_, AppError>((ids, replaced))
    }
    .await;
    let (ids, replaced) = settle(published, tx, written).await?;

    let core_names: HashSet<&str> = core.iter().map(|c| c.spec.name.as_str()).collect();
    let results = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let changed = core_names.contains(spec.name.as_str())
                || curves_changed.contains(&i)
                || !prepared[i].is_empty();
            Result1 {
                name: spec.name.clone(),
                id: ids[&spec.name],
                status: match (existing.contains_key(&spec.name), changed) {
                    (false, _) => Outcome::Created,
                    (true, true) => Outcome::Updated,
                    (true, false) => Outcome::Unchanged,
                },
            }
        })
        .collect();
    finish_files(&media, &state.pool, replaced).await;
    Ok(results)
}

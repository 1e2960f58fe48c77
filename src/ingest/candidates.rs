//! Candidates, one or a batch: parse and check everything, then decide per
//! candidate what changed, render the previews that are needed, and write
//! it all in one transaction. Files reach `objects/` inside that
//! transaction, before its commit (see `media.rs`).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::error::refuse_any;
use super::files;
use super::observations::{observation, project};
use super::publish::{self, Publication};
use super::{Ingest, IngestError, Received};
use crate::db::candidates::{self, CoreWrite};
use crate::db::catalogues;
use crate::db::files::{self as file_rows, Owner};
use crate::db::gold;
use crate::db::groups;
use crate::db::observations as obs_rows;
use crate::db::projects::{self, Outcome};
use crate::domain::gold::GoldVerdict;
use crate::domain::names::{ObservationKey, ProjectSlug};
use crate::domain::upload::{CandidateSpec, Problems, MAX_BATCH};
use crate::domain::{CandidateId, UserId};

/// Checked candidates, each with the prefix its problems are reported
/// under (`candidates[3].`, or nothing for a single one).
pub struct Batch {
    specs: Vec<CandidateSpec>,
    prefixes: Vec<String>,
}

impl Batch {
    /// One candidate, named by its URL.
    pub fn one(json: Value, url_name: &str) -> Result<Self, IngestError> {
        let mut p = Problems::default();
        let spec = CandidateSpec::parse(json, Some(url_name), "", &mut p);
        refuse_any(p)?;
        let spec = spec.ok_or_else(|| anyhow::anyhow!("a parsed candidate without problems"))?;
        Ok(Self::of(vec![spec]))
    }

    /// `{"candidates": [ … ]}`, 1 to [`MAX_BATCH`] of them.
    pub fn parse(json: Value) -> Result<Self, IngestError> {
        let list = match json {
            Value::Object(mut o) if o.len() == 1 && o.contains_key("candidates") => {
                o.remove("candidates")
            }
            _ => None,
        };
        let Some(Value::Array(list)) = list else {
            return Err(IngestError::invalid(
                "body",
                "expected {\"candidates\": [ ... ]}",
            ));
        };
        if list.is_empty() || list.len() > MAX_BATCH {
            return Err(IngestError::invalid(
                "candidates",
                format!(
                    "a batch holds 1 to {MAX_BATCH} candidates, not {}",
                    list.len()
                ),
            ));
        }
        let mut p = Problems::default();
        let mut batch = Self {
            specs: Vec::with_capacity(list.len()),
            prefixes: Vec::with_capacity(list.len()),
        };
        for (i, v) in list.into_iter().enumerate() {
            let prefix = format!("candidates[{i}]");
            if let Some(s) = CandidateSpec::parse(v, None, &prefix, &mut p) {
                batch.specs.push(s);
                batch.prefixes.push(format!("{prefix}."));
            }
        }
        refuse_any(p)?;
        Ok(batch)
    }

    /// Candidates already parsed (`vetter demo` makes its own).
    pub fn of(specs: Vec<CandidateSpec>) -> Self {
        let prefixes = vec![String::new(); specs.len()];
        Self { specs, prefixes }
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

/// What became of one candidate of a batch.
#[derive(Debug, Serialize)]
pub struct CandidateOutcome {
    pub name: String,
    pub status: Outcome,
    pub id: CandidateId,
}

impl Ingest {
    pub async fn candidates(
        &self,
        user: UserId,
        slug: &ProjectSlug,
        key: &ObservationKey,
        batch: Batch,
        mut received: Received,
    ) -> Result<Vec<CandidateOutcome>, IngestError> {
        let Batch { specs, prefixes } = batch;
        let mut conn = self.pool.acquire().await?;
        let project = project(&mut conn, slug).await?;
        let observation = observation(&mut conn, &project, key).await?;
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
                        format!(
                            "observation {:?} has no beam {b:?}: create it first",
                            key.as_str()
                        ),
                    );
                }
            }
        }
        let owners: Vec<(String, &BTreeMap<String, String>)> = specs
            .iter()
            .zip(&prefixes)
            .map(|(s, pre)| (pre.clone(), &s.files))
            .collect();
        let mut taken = files::take(&owners, &mut received, &mut p);
        files::inspect_fits(&taken, &prefixes, &mut p).await;
        refuse_any(p)?;

        // What is stored already decides what this request changes.
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let existing = candidates::existing(&mut conn, observation, &names).await?;
        let owners: Vec<Owner> = existing.values().map(|e| Owner::Candidate(e.id)).collect();
        let stored_files = file_rows::shas(&mut conn, &owners).await?;
        drop(conn);
        for (spec, files) in specs.iter().zip(taken.iter_mut()) {
            if let Some(e) = existing.get(&spec.name) {
                files.retain(|(role, f)| {
                    stored_files.get(&(Owner::Candidate(e.id), role.clone()))
                        != Some(&f.temp.sha256)
                });
            }
        }
        let prepared = files::prepare(&self.media, taken, &prefixes).await?;

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
                if e.and_then(|e| e.light_curve_hash.as_deref()) != Some(lc.content_hash().as_str())
                {
                    curves_changed.push(i);
                }
            }
        }

        let mut tx = self.pool.begin().await?;
        let mut published = Publication::new(&self.media, &self.pool);
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
            // New and changed candidates (a position may have moved) are
            // matched against the project's catalogues and grouped in the
            // same commit.
            let written: Vec<CandidateId> = core.iter().map(|c| ids[&c.spec.name]).collect();
            catalogues::match_candidates(&mut tx, project.id, &written).await?;
            groups::attach(&mut tx, project.id, &written).await?;
            for (name, e) in &existing {
                ids.entry(name.clone()).or_insert(e.id);
            }
            let curves: Vec<(CandidateId, &CandidateSpec)> = curves_changed
                .iter()
                .map(|&i| (ids[&specs[i].name], &specs[i]))
                .collect();
            candidates::write_light_curves(&mut tx, &curves).await?;
            // Gold flags in the same commit, into their own table only.
            let marks: Vec<(CandidateId, GoldVerdict)> = specs
                .iter()
                .filter_map(|s| s.gold.map(|g| (ids[&s.name], g)))
                .collect();
            let golden = if marks.is_empty() {
                Vec::new()
            } else {
                gold::mark(&mut tx, project.id, &marks, gold::Source::Upload, user)
                    .await?
                    .0
            };
            let mut replaced = Vec::new();
            for (spec, files) in specs.iter().zip(&prepared) {
                if !files.is_empty() {
                    files::attach(
                        &mut tx,
                        Owner::Candidate(ids[&spec.name]),
                        files,
                        &mut replaced,
                    )
                    .await?;
                }
            }
            Ok::<_, IngestError>((ids, replaced, golden))
        }
        .await;
        let (ids, replaced, golden) = publish::settle(published, tx, written).await?;

        let core_names: HashSet<&str> = core.iter().map(|c| c.spec.name.as_str()).collect();
        let outcomes = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let changed = core_names.contains(spec.name.as_str())
                    || curves_changed.contains(&i)
                    || !prepared[i].is_empty()
                    || golden.contains(&ids[&spec.name]);
                CandidateOutcome {
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
        publish::remove_unreferenced(&self.media, &self.pool, &replaced).await;
        Ok(outcomes)
    }
}

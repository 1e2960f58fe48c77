//! An observation and its beams, each with its own files (a pointing's
//! image, a beam's noise map). Also how a batch finds the project and the
//! observation it belongs to.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::error::refuse_any;
use super::files::{self, Prepared};
use super::publish::{self, Publication};
use super::{Ingest, IngestError, Received, Stored};
use crate::db::files::{self as file_rows, Owner};
use crate::db::projects::{self, Outcome, Project};
use crate::db::{deliveries, observations};
use crate::domain::names::{BeamName, ObservationKey, ProjectSlug};
use crate::domain::upload::{BeamSpec, ObservationSpec, Problems};
use crate::domain::{ObservationId, UserId};

pub(super) async fn project(
    db: &mut PgConnection,
    slug: &ProjectSlug,
) -> Result<Project, IngestError> {
    projects::by_slug(db, slug.as_str()).await?.ok_or_else(|| {
        IngestError::invalid(
            "project",
            format!(
                "there is no project {slug:?}: create it first with PUT /api/v1/projects/{slug}",
                slug = slug.as_str()
            ),
        )
    })
}

pub(super) async fn observation(
    db: &mut PgConnection,
    project: &Project,
    key: &ObservationKey,
) -> Result<ObservationId, IngestError> {
    observations::id_of(db, project.id, key.as_str()).await?.ok_or_else(|| {
        IngestError::invalid(
            "observation",
            format!(
                "there is no observation {:?} in project {:?}: create it first with PUT /api/v1/projects/{}/observations/{key}",
                key.as_str(), project.slug, project.slug
            ),
        )
    })
}

/// What the finishing call did.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    /// False when the upload was finished already and nothing was written
    /// to it since: then nobody is told again.
    pub changed: bool,
    /// Deliveries queued to the project's targets.
    pub notified: i32,
}

impl Ingest {
    /// The pipeline says the observation's upload is complete: marks it,
    /// and queues the "upload finished" notifications in the same
    /// transaction (they are sent after it commits, by the worker).
    pub async fn finish(
        &self,
        slug: &ProjectSlug,
        key: &ObservationKey,
    ) -> Result<Finished, IngestError> {
        let mut tx = self.pool.begin().await?;
        let project = project(&mut tx, slug).await?;
        let observation = observation(&mut tx, &project, key).await?;
        let (before, changed) = observations::finish_upload(&mut tx, observation).await?;
        let notified = if changed {
            let rfc3339 = |t: time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            };
            let subject = serde_json::json!({
                "observation_id": observation,
                "observation": key.as_str(),
                "finished_at": rfc3339(time::OffsetDateTime::now_utc()),
                "since": before.and_then(rfc3339),
            });
            deliveries::queue(&mut tx, project.id, "upload_finished", &subject, None).await?
        } else {
            0
        };
        tx.commit().await?;
        Ok(Finished { changed, notified })
    }

    pub async fn observation(
        &self,
        user: UserId,
        slug: &ProjectSlug,
        key: &ObservationKey,
        spec: &ObservationSpec,
        files: Received,
    ) -> Result<Stored, IngestError> {
        let mut conn = self.pool.acquire().await?;
        let project = project(&mut conn, slug).await?;
        let existing = observations::id_of(&mut conn, project.id, key.as_str()).await?;
        let prepared = self
            .owner_files(
                &mut conn,
                existing.map(Owner::Observation),
                &spec.files,
                files,
            )
            .await?;
        drop(conn);
        self.store_with_files(&prepared, async |db| {
            let (id, outcome) =
                observations::upsert(db, project.id, key.as_str(), spec, user).await?;
            Ok((Owner::Observation(id), outcome))
        })
        .await
    }

    pub async fn beam(
        &self,
        slug: &ProjectSlug,
        key: &ObservationKey,
        beam: &BeamName,
        spec: &BeamSpec,
        files: Received,
    ) -> Result<Stored, IngestError> {
        let mut conn = self.pool.acquire().await?;
        let project = project(&mut conn, slug).await?;
        let observation = observation(&mut conn, &project, key).await?;
        let existing = observations::beam_ids(&mut conn, observation)
            .await?
            .get(beam.as_str())
            .copied();
        let prepared = self
            .owner_files(&mut conn, existing.map(Owner::Beam), &spec.files, files)
            .await?;
        drop(conn);
        self.store_with_files(&prepared, async |db| {
            let (id, outcome) =
                observations::upsert_beam(db, observation, beam.as_str(), spec).await?;
            Ok((Owner::Beam(id), outcome))
        })
        .await
    }

    /// Checks and prepares the files of a single owner; drops those
    /// identical to what is stored under the same role.
    async fn owner_files(
        &self,
        db: &mut PgConnection,
        owner: Option<Owner>,
        roles: &BTreeMap<String, String>,
        mut received: Received,
    ) -> Result<Vec<Prepared>, IngestError> {
        let mut p = Problems::default();
        let mut taken = files::take(&[(String::new(), roles)], &mut received, &mut p);
        files::inspect_fits(&taken, &[String::new()], &mut p).await;
        refuse_any(p)?;
        if let Some(owner) = owner {
            let stored = file_rows::shas(db, &[owner]).await?;
            taken[0].retain(|(role, f)| stored.get(&(owner, role.clone())) != Some(&f.temp.sha256));
        }
        Ok(files::prepare(&self.media, taken, &[String::new()])
            .await?
            .remove(0))
    }

    /// Writes one observation or beam (`upsert`) and its files in one
    /// transaction, then removes the objects of files it replaced. New
    /// files make it an update even when the fields are unchanged.
    async fn store_with_files(
        &self,
        prepared: &[Prepared],
        upsert: impl AsyncFnOnce(&mut PgConnection) -> Result<(Owner, Outcome), IngestError>,
    ) -> Result<Stored, IngestError> {
        let mut tx = self.pool.begin().await?;
        let mut published = Publication::new(&self.media, &self.pool);
        let written = async {
            published
                .publish(&mut tx, prepared.iter().map(|f| (&f.temp, f.kind)))
                .await?;
            let (owner, outcome) = upsert(&mut tx).await?;
            let mut replaced = Vec::new();
            files::attach(&mut tx, owner, prepared, &mut replaced).await?;
            Ok::<_, IngestError>((owner, outcome, replaced))
        }
        .await;
        let (owner, mut outcome, replaced) = publish::settle(published, tx, written).await?;
        if outcome == Outcome::Unchanged && !prepared.is_empty() {
            outcome = Outcome::Updated;
        }
        publish::remove_unreferenced(&self.media, &self.pool, &replaced).await;
        Ok(Stored {
            id: owner.id(),
            outcome,
        })
    }
}

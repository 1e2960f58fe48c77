//! A project: its name, metrics and tags. It has no files.

use super::{Ingest, IngestError, Received, Stored};
use crate::db::projects;
use crate::domain::names::ProjectSlug;
use crate::domain::upload::ProjectSpec;

impl Ingest {
    pub async fn project(
        &self,
        slug: &ProjectSlug,
        spec: &ProjectSpec,
        files: Received,
    ) -> Result<Stored, IngestError> {
        if !files.is_empty() {
            return Err(IngestError::invalid("files", "projects take no files"));
        }
        let mut tx = self.pool.begin().await?;
        let (id, outcome) = projects::upsert(&mut tx, slug.as_str(), spec).await?;
        tx.commit().await?;
        Ok(Stored { id, outcome })
    }
}

//! Receiving a pipeline's data. The upload API, `vetter demo` and the
//! upload client's checks all come through here, so one batch means the
//! same wherever it comes from: the names checked, the files streamed in,
//! checked and published, previews rendered, rows upserted in one
//! transaction, and each item's outcome returned.
//!
//! Imports go one way: web → ingest → domain, db → media, fits.

mod candidates;
mod error;
mod files;
mod observations;
mod projects;
pub mod publish;
mod received;

use sqlx::PgPool;

pub use candidates::{Batch, CandidateOutcome};
pub use error::IngestError;
pub use observations::Finished;
pub use received::{Received, ReceivedFile};

use crate::db::projects::Outcome;
use crate::media::MediaStore;

/// What receiving needs: the database and the media folder.
pub struct Ingest {
    pool: PgPool,
    media: MediaStore,
}

/// One object written: its row's id, and whether it is new, changed or
/// exactly as it was.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    pub id: i64,
    pub outcome: Outcome,
}

impl Ingest {
    pub fn new(pool: PgPool, media: MediaStore) -> Self {
        Self { pool, media }
    }

    /// Where received files are written while they are checked.
    pub fn media(&self) -> &MediaStore {
        &self.media
    }
}

//! The upload API under `/api/v1/`: JSON in and out, bearer tokens, every
//! write an upsert by natural key, every rejection a 4xx that names the
//! field. See docs/upload-api.md.

pub mod body;
pub mod candidates;
pub mod files;
pub mod observations;
pub mod openapi;
pub mod projects;

use poem::web::Json;
use poem::{handler, IntoResponse, Response};
use serde_json::json;
use sqlx::PgConnection;

use crate::db::files::{self as file_rows, NewFile, Owner};
use crate::db::projects::Outcome;
use crate::ingest::publish::{self, Publication};
use crate::media::MediaStore;
use crate::web::api::files::Prepared;
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::AppError;

#[handler]
pub async fn whoami(CurrentUser(user): CurrentUser) -> Json<serde_json::Value> {
    Json(json!({
        "username": user.username,
        "role": user.role,
        "can_upload": user.can_upload || user.is_admin(),
    }))
}

/// The answer to a single-object upsert: 201 when created.
pub fn outcome_response(outcome: Outcome, id: i64, what: &str, name: &str) -> Response {
    let status = match outcome {
        Outcome::Created => poem::http::StatusCode::CREATED,
        _ => poem::http::StatusCode::OK,
    };
    let verb = match outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged: it was already stored exactly so",
    };
    Json(json!({"status": outcome, "id": id, "name": name, "message": format!("{what} {name} {verb}")}))
        .with_status(status)
        .into_response()
}

/// Inserts the file rows of one owner (sources before their previews, and
/// previews of previews, such as a rendered GIF's strip, last) and collects
/// the storage paths they replaced.
pub async fn attach(
    db: &mut PgConnection,
    owner: Owner,
    files: &[Prepared],
    replaced: &mut Vec<String>,
) -> sqlx::Result<()> {
    let mut ids = std::collections::HashMap::new();
    let (sources, mut previews): (Vec<&Prepared>, Vec<&Prepared>) =
        files.iter().partition(|f| f.preview_of.is_none());
    let derived: std::collections::HashSet<&str> =
        previews.iter().map(|f| f.role.as_str()).collect();
    previews.sort_by_key(|f| f.preview_of.as_deref().is_some_and(|r| derived.contains(r)));
    for f in sources.into_iter().chain(previews) {
        let new = NewFile {
            role: &f.role,
            kind: f.kind,
            size: f.temp.size,
            sha256: &f.temp.sha256,
            original_name: &f.original_name,
            derived_from: f.preview_of.as_ref().and_then(|r| ids.get(r).copied()),
            animation: f.animation,
        };
        let (id, old) = file_rows::upsert(db, owner, &new).await?;
        ids.insert(f.role.clone(), id);
        replaced.extend(old);
    }
    Ok(())
}

/// Ends the transaction of a request whose files `publication` put into
/// `objects/`: commits when the writes went through, else rolls back and
/// withdraws the objects this request made (those no other row uses).
pub async fn settle<T>(
    publication: Publication,
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    written: Result<T, AppError>,
) -> Result<T, AppError> {
    let result = match written {
        Ok(v) => tx.commit().await.map(|()| v).map_err(AppError::from),
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    };
    match result {
        Ok(v) => {
            publication.committed();
            Ok(v)
        }
        Err(e) => {
            // Also after a failed COMMIT, whose outcome is unknown: the
            // removal re-reads the references under the bucket locks.
            publication.abandon().await;
            Err(e)
        }
    }
}

/// After the commit: removes the objects that the replaced rows used and no
/// row refers to any more. Failures are logged, not returned: the data is
/// committed, and `vetter check --repair` removes what is left.
pub async fn finish_files(media: &MediaStore, pool: &sqlx::PgPool, replaced: Vec<String>) {
    publish::remove_unreferenced(media, pool, &replaced).await;
}

/// Problems found while parsing become one 400.
pub fn reject_if_any(p: crate::domain::upload::Problems) -> Result<(), AppError> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(AppError::invalid(p.0))
    }
}

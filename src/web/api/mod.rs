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
use crate::media::MediaStore;
use crate::web::access::CurrentUser;
use crate::web::api::files::Prepared;
use crate::web::error::AppError;

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

/// After the commit: moves the files into place and removes objects that no
/// row refers to any more. Failures here are logged, not returned: the data
/// is committed, and `vetter check` repairs what a crash leaves.
pub async fn finish_files(
    media: &MediaStore,
    pool: &sqlx::PgPool,
    files: impl IntoIterator<Item = Prepared>,
    replaced: Vec<String>,
) {
    for f in files {
        if let Err(e) = media.keep(f.temp, f.kind) {
            tracing::error!(error = %e, role = %f.role, "could not move an uploaded file into place");
        }
    }
    if replaced.is_empty() {
        return;
    }
    match pool.acquire().await {
        Ok(mut conn) => match file_rows::unreferenced(&mut conn, &replaced).await {
            Ok(unused) => media.remove_objects(&unused),
            Err(e) => tracing::warn!(error = %e, "could not look for unused media files"),
        },
        Err(e) => tracing::warn!(error = %e, "could not look for unused media files"),
    }
}

/// Problems found while parsing become one 400.
pub fn reject_if_any(p: crate::domain::upload::Problems) -> Result<(), AppError> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(AppError::invalid(p.0))
    }
}

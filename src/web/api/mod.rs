//! The token API under `/api/v1/`: JSON in and out, bearer tokens. The
//! upload API (here) makes every write an upsert by natural key and every
//! rejection a 4xx that names the field (docs/upload-api.md); receiving the
//! data is `crate::ingest`'s. The read API is in `read` (docs/read-api.md).

pub mod body;
pub mod candidates;
pub mod observations;
pub mod openapi;
pub mod projects;
pub mod read;

use poem::web::Json;
use poem::{handler, IntoResponse, Response};
use serde_json::json;

use crate::db::projects::Outcome;
use crate::ingest::{Ingest, Stored};
use crate::web::plumbing::access::CurrentUser;
use crate::web::state::AppState;

#[handler]
pub async fn whoami(CurrentUser(user): CurrentUser) -> Json<serde_json::Value> {
    Json(json!({
        "username": user.username,
        "role": user.role,
        "can_upload": user.can_upload || user.is_admin(),
    }))
}

fn ingest(state: &AppState) -> Ingest {
    Ingest::new(state.pool.clone(), state.media.clone())
}

/// The answer to a single-object upsert: 201 when created.
fn stored_response(stored: Stored, what: &str, name: &str) -> Response {
    let status = match stored.outcome {
        Outcome::Created => poem::http::StatusCode::CREATED,
        _ => poem::http::StatusCode::OK,
    };
    let verb = match stored.outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged: it was already stored exactly so",
    };
    Json(json!({"status": stored.outcome, "id": stored.id, "name": name, "message": format!("{what} {name} {verb}")}))
        .with_status(status)
        .into_response()
}

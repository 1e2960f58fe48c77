//! The upload API under `/api/v1/`: JSON in and out, bearer tokens, every
//! write an upsert by natural key, every rejection a 4xx that names the
//! field. See docs/upload-api.md. The handlers read the request and shape
//! the answer; receiving the data is `crate::ingest`'s.

pub mod body;
pub mod candidates;
pub mod observations;
pub mod openapi;
pub mod projects;

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

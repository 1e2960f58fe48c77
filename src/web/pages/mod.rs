//! One module per page or resource; each one's templates are in the
//! folder of `templates/` with the same name.

pub mod account;
pub mod admin;
pub mod auth_check;
pub mod batch;
pub mod candidate;
pub mod candidate_details;
pub mod candidates;
pub mod exports;
pub mod gif_player;
pub mod group;
pub mod health;
pub mod home;
pub mod known_sources;
pub mod light_curve;
pub mod login;
pub mod media;
pub mod model;
pub mod queue;
pub mod ratings;
pub mod sky;
pub mod views;
pub mod voevent;

use crate::db::projects::{self, Project};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

/// The project a page's `{slug}` names, or "not found".
pub async fn project(state: &AppState, slug: &str) -> WebResult<Project> {
    let mut conn = state.pool.acquire().await?;
    projects::by_slug(&mut conn, slug)
        .await?
        .ok_or(AppError::NotFound("project"))
}

//! The web front: `pages` holds one module per page or resource (its
//! templates are under `templates/` by the same name), `plumbing` what every
//! page shares (errors, sessions, CSRF, access, headers, assets), `api` the
//! upload API; `routes` wires them to `paths`.

pub mod api;
pub mod pages;
pub mod paths;
pub mod plumbing;
pub mod routes;
pub mod state;

use poem::{Endpoint, EndpointExt};
use tower_sessions_sqlx_store::PostgresStore;

use crate::web::state::AppState;

/// The whole site as one endpoint.
pub fn app(state: AppState) -> impl Endpoint<Output = poem::Response> {
    let store = PostgresStore::new(crate::db::session_pool(&state.pool));
    let sessions = plumbing::session_layer::session_layer(&state.config, store);
    let wiring = routes::Wiring {
        sessions: &sessions,
        public_origin: state.config.public_origin(),
        staging: state.config.staging,
    };
    let staging = state.config.staging;
    // Firefly on another origin must be allowed as a frame source.
    let firefly_origin = state
        .config
        .firefly_url
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or("")));
    routes::router(&wiring)
        .with(plumbing::error::pages::ErrorPages { staging })
        .data(state)
        .with(plumbing::headers::SecurityHeaders::new(
            firefly_origin.as_deref(),
        ))
        .with(plumbing::logging::RequestLog)
        .map_to_response()
}

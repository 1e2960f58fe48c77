//! The web front: one module per page or resource, plus the cross-cutting
//! pieces (errors, sessions, CSRF, access, headers, assets).

pub mod access;
pub mod account;
pub mod admin;
pub mod api;
pub mod assets;
pub mod auth_check;
pub mod candidate;
pub mod candidates;
pub mod charts;
pub mod csrf;
pub mod error;
pub mod errors;
pub mod exports;
pub mod filters;
pub mod form;
pub mod gif_player;
pub mod headers;
pub mod health;
pub mod home;
pub mod layout;
pub mod limits;
pub mod logging;
pub mod login;
pub mod media;
pub mod paths;
pub mod queue;
pub mod ratings_summary;
pub mod routes;
pub mod session_layer;
pub mod state;
pub mod tokens;
pub mod views;

use poem::{Endpoint, EndpointExt};
use tower_sessions_sqlx_store::PostgresStore;

use crate::web::state::AppState;

/// Whether htmx sent the request (and so wants a fragment, not a page).
pub fn is_htmx(req: &poem::Request) -> bool {
    req.headers().contains_key("hx-request")
}

/// The whole site as one endpoint.
pub fn app(state: AppState) -> impl Endpoint<Output = poem::Response> {
    let store = PostgresStore::new(crate::db::session_pool(&state.pool));
    let sessions = session_layer::session_layer(&state.config, store);
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
        .with(errors::ErrorPages { staging })
        .data(state)
        .with(headers::SecurityHeaders::new(firefly_origin.as_deref()))
        .with(logging::RequestLog)
        .map_to_response()
}

//! `/auth/check`: asked by nginx (`auth_request`) before it proxies to
//! Firefly, so the viewer is behind the same login as the app. nginx reads
//! only the status: 204 lets the request through, 401 refuses it.

use poem::http::StatusCode;
use poem::{handler, IntoResponse, Response};

use crate::web::plumbing::access::CurrentUser;

#[handler]
pub async fn check(user: Option<CurrentUser>) -> Response {
    match user {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

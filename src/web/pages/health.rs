//! `/healthz`: for container health checks and autoheal. Reports the
//! database, because without it the app can do nothing useful. It asks on
//! a connection of its own, so that a busy server is never reported as a
//! broken one (which would have autoheal restart a healthy container).

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{handler, IntoResponse, Response};

use crate::web::state::AppState;

#[handler]
pub async fn check(state: Data<&AppState>) -> Response {
    if crate::db::ping(&state.pools.health).await {
        Json(serde_json::json!({"status": "ok", "database": "ok"})).into_response()
    } else {
        Json(serde_json::json!({"status": "unavailable", "database": "unreachable"}))
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    }
}

//! `GET /api/v1/openapi.json`: the API's description, kept beside the prose
//! in docs/ and compiled into the binary.

use poem::{handler, IntoResponse, Response};

pub const SPEC: &str = include_str!("../../../docs/openapi.json");

#[handler]
pub fn serve() -> Response {
    SPEC.with_content_type("application/json").into_response()
}

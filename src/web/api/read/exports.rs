//! `GET /api/v1/candidates.csv` and `…/candidates.vot`: the browser's
//! exports (`web::pages::exports`) for a read token, with the same filter,
//! `ratings=` choice and blind rule; the query is read strictly, as the
//! rest of the read API's is.

use poem::web::Data;
use poem::{handler, Request, Response};

use crate::domain::filter;
use crate::web::api::read::Query;
use crate::web::pages::exports::{export, Format};
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::WebResult;
use crate::web::state::AppState;

fn takes(key: &str) -> bool {
    filter::selects(key) || key == "ratings"
}

#[handler]
pub async fn csv(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    Query::read(req, takes)?;
    export(req, &state, &user, Format::Csv).await
}

#[handler]
pub async fn votable(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    Query::read(req, takes)?;
    export(req, &state, &user, Format::VoTable).await
}

//! `/candidates/{id}/voevent.xml`: the VOEvent 2.0 document of a candidate
//! the team has settled as real, for an administrator to download, and
//! `/candidates/{id}/voevent/send`, which queues the same document for the
//! site's broker.

use poem::http::{header, StatusCode};
use poem::web::{Data, Path};
use poem::{handler, Response};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::config::Config;
use serde_json::json;

use crate::db::users::User;
use crate::db::{ratings, voevent as facts};
use crate::domain::voevent::{self, Document};
use crate::domain::{CandidateId, ProjectId};
use crate::notify::{self, QueueError};
use crate::web::pages::admin::Admin;
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// A document ready to hand out, and the project it belongs to.
pub struct Built {
    pub doc: Document,
    pub project: ProjectId,
}

/// The VOEvent of candidate `id` as `user` (an administrator) may have it,
/// made at `issued`. Refused (409, with a sentence saying why) when the
/// site has no VOEvent authority, when the blind rule hides the team's
/// verdicts of it from the user, or when the team has not settled it as
/// real; 404 for no such candidate.
pub async fn build(
    conn: &mut PgConnection,
    config: &Config,
    user: &User,
    id: CandidateId,
    issued: OffsetDateTime,
) -> WebResult<Built> {
    if !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let link = format!("{}{}", config.public_url, paths::candidate(id));
    let loaded = facts::load(&mut *conn, id, user.id, Some(link))
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let Some(settings) = &config.voevent else {
        return Err(AppError::Conflict(
            "VOEvents are not set up on this site: the operator sets VETTER_VOEVENT_AUTHORITY \
             (an IVORN like ivo://example.org/vetter) first."
                .into(),
        ));
    };
    // The document is made of the reviewers' verdicts, so it is hidden
    // exactly as they are (and says nothing of them when refused).
    let visibility = ratings::visibility(&mut *conn, user.id, user.role).await?;
    if !visibility.sees_others(loaded.project_id, loaded.viewer_rated) {
        return Err(AppError::Conflict(
            "This project keeps ratings blind and you have not rated this candidate: rate it \
             first, or let administrators see all ratings on the project's review page."
                .into(),
        ));
    }
    let doc = voevent::document(&loaded.facts, settings, issued)
        .map_err(|refused| AppError::Conflict(refused.to_string()))?;
    Ok(Built {
        doc,
        project: loaded.project_id,
    })
}

/// The document as a download named after the candidate.
#[handler]
pub async fn download(
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<CandidateId>,
) -> WebResult<Response> {
    let Built { doc, .. } = {
        let mut conn = state.pool.acquire().await?;
        build(
            &mut conn,
            &state.config,
            &user,
            id,
            OffsetDateTime::now_utc(),
        )
        .await?
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", doc.file_name),
        )
        .body(doc.xml))
}

/// Queues the candidate's VOEvent for the broker in the transaction that
/// writes the audit line, so a refused or failed request leaves neither;
/// the worker posts it once committed (`notify`), and the deliveries page
/// shows how that went.
#[handler]
pub async fn send(
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<CandidateId>,
) -> WebResult<Response> {
    let mut tx = state.pool.begin().await?;
    let Built { doc, project } = build(
        &mut tx,
        &state.config,
        &admin.user,
        id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    let xml = std::str::from_utf8(&doc.xml)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("the VOEvent is not UTF-8: {e}")))?;
    let delivery =
        match notify::queue_voevent(&mut tx, &state.config.notify, project, id, xml).await {
            Ok(delivery) => delivery,
            Err(QueueError::Database(e)) => return Err(e.into()),
            Err(refused) => {
                return Err(AppError::Conflict(format!(
                    "The VOEvent was not queued: {refused}."
                )))
            }
        };
    admin
        .audit(
            &mut *tx,
            "voevent.send",
            &doc.ivorn,
            json!({"candidate": id, "delivery": delivery}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            format!(
                "The VOEvent {} is queued for the broker as delivery {delivery}; \
                 Admin → Deliveries shows when it arrives.",
                doc.ivorn
            ),
        )
        .await?;
    Ok(see_other(&paths::candidate(id)))
}

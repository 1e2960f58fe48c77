//! `/`: where a reviewer lands after signing in: the projects, how far the
//! team and this reviewer are, and the way into the queue.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;
use poem::web::Data;

use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::layout::Layout;
use crate::web::state::AppState;

pub struct ProjectLine {
    pub name: String,
    pub candidates: i64,
    pub rated: i64,
    pub mine: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "home/page.html")]
pub struct HomePage {
    layout: Layout,
    username: String,
    projects: Vec<ProjectLine>,
    queue: String,
    /// On staging: the operator's release notes (their own HTML).
    release_notes: Option<String>,
}

/// Read on each request, so the notes can change without a restart.
async fn release_notes(state: &AppState) -> Option<String> {
    if !state.config.staging {
        return None;
    }
    match tokio::fs::read_to_string(&state.config.staging_details).await {
        Ok(s) if s.len() <= 256 * 1024 => Some(s),
        Ok(_) => {
            Some("<p>The release notes file is larger than 256 KiB and is not shown.</p>".into())
        }
        Err(e) => {
            tracing::warn!(path = %state.config.staging_details.display(), error = %e, "no staging release notes");
            None
        }
    }
}

#[handler]
pub async fn page(
    layout: Layout,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<HomePage> {
    let mut conn = state.pool.acquire().await?;
    let rows = crate::db::projects::progress(&mut *conn, user.id).await?;
    let q = crate::db::queue::load(&mut conn, user.id, user.role).await?;
    Ok(HomePage {
        layout,
        username: user.username,
        projects: rows
            .into_iter()
            .map(|p| ProjectLine {
                name: p.name,
                candidates: p.candidates,
                rated: p.rated,
                mine: p.mine,
            })
            .collect(),
        queue: crate::web::pages::candidate::queue_label(&q),
        release_notes: release_notes(&state).await,
    })
}

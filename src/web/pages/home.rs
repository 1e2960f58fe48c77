//! `/`: where a reviewer lands after signing in: the projects, how far the
//! team and this reviewer are, the latest observations' progress at a
//! glance (`db::progress`, the read API's figures), and the way into the
//! queue.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;
use poem::web::Data;

use crate::db::progress::{self, ObservationProgress};
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

/// Observations shown at a glance: the latest few, across projects.
const GLANCE: i64 = 12;

/// One observation at a glance, with its bar: settled, disputed and the
/// rest of the rated, as shares (0–100) of its candidates.
pub struct GlanceLine {
    pub progress: ObservationProgress,
    pub settled: i64,
    /// Where each part of the bar starts and how wide it is.
    pub bar_settled: (f64, f64),
    pub bar_disputed: (f64, f64),
    pub bar_rated: (f64, f64),
}

impl GlanceLine {
    fn new(progress: ObservationProgress) -> Self {
        let f = &progress.figures;
        let share = |n: i64| {
            if f.candidates > 0 {
                (n.max(0) as f64 / f.candidates as f64 * 100.0).min(100.0)
            } else {
                0.0
            }
        };
        let settled = share(f.settled());
        let disputed = share(f.disputed).min(100.0 - settled);
        let open = (share(f.rated) - settled - disputed).max(0.0);
        Self {
            settled: f.settled(),
            bar_settled: (0.0, settled),
            bar_disputed: (settled, disputed),
            bar_rated: (settled + disputed, open),
            progress,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "home/page.html")]
pub struct HomePage {
    layout: Layout,
    username: String,
    projects: Vec<ProjectLine>,
    glance: Vec<GlanceLine>,
    /// Some settled/disputed figures count only this reviewer's candidates.
    glance_blind: bool,
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
    let v = crate::db::ratings::visibility(&mut conn, user.id, user.role).await?;
    let glance: Vec<GlanceLine> = progress::observations(&mut conn, &v, None, None, GLANCE)
        .await?
        .into_iter()
        .map(GlanceLine::new)
        .collect();
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
        glance_blind: glance.iter().any(|g| g.progress.figures.own_only),
        glance,
        queue: crate::web::pages::candidate::queue_label(&q),
        release_notes: release_notes(&state).await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::progress::Figures;
    use crate::domain::{ObservationId, ProjectId};

    fn line(candidates: i64, rated: i64, settled: i64, disputed: i64) -> GlanceLine {
        GlanceLine::new(ObservationProgress {
            id: ObservationId(1),
            external_id: "SB1".into(),
            start_time: None,
            project_id: ProjectId(1),
            project: "vast".into(),
            project_name: "VAST".into(),
            figures: Figures {
                candidates,
                rated,
                settled_real: settled,
                disputed,
                ..Figures::default()
            },
        })
    }

    #[test]
    fn the_bar_stacks_settled_disputed_and_the_rest_of_the_rated() {
        let g = line(200, 100, 50, 20);
        assert_eq!(g.bar_settled, (0.0, 25.0));
        assert_eq!(g.bar_disputed, (25.0, 10.0));
        assert_eq!(g.bar_rated, (35.0, 15.0));
        // No candidates, and figures that do not add up, stay in the bar.
        let g = line(0, 0, 0, 0);
        assert_eq!(g.bar_rated, (0.0, 0.0));
        let g = line(10, 5, 8, 8);
        assert!(g.bar_settled.1 + g.bar_disputed.1 + g.bar_rated.1 <= 100.0);
    }
}

//! `GET /api/v1/ratings`: the feed of rating changes, for keeping a copy
//! of the ratings in step (`db::rating_changes` says why its cursor never
//! skips a change).

use std::collections::HashSet;

use poem::web::{Data, Json};
use poem::{handler, Request};
use serde_json::{json, Value};

use crate::db::rating_changes::{self, Start};
use crate::db::ratings::Kept;
use crate::db::{projects, ratings};
use crate::domain::paging::{parse_since, ChangeCursor, Limit};
use crate::domain::{CandidateId, Problem};
use crate::web::api::read::candidates::ratings_of;
use crate::web::api::read::{refuse, timestamp, Query};
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

fn switch(q: &Query, key: &str, problems: &mut Vec<Problem>) -> bool {
    match q.get(key) {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            problems.push(Problem::new(
                key,
                format!("{other:?} is not a choice: 1 or 0"),
            ));
            false
        }
    }
}

/// Changes after `cursor` (or from `since`, or from the start), of one
/// `project` or all, each as the candidate's ratings now; `history=1` adds
/// their replaced ratings.
#[handler]
pub async fn changes(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Json<Value>> {
    let q = Query::read(req, |k| {
        matches!(k, "cursor" | "since" | "project" | "limit" | "history")
    })?;
    let mut problems = Vec::new();
    let limit = Limit::parse(q.get("limit"))
        .map_err(|p| problems.push(p))
        .unwrap_or_default();
    let with_history = switch(&q, "history", &mut problems);
    let start = match (q.get("cursor"), q.get("since")) {
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                "since",
                "give a cursor or a time to start from, not both: the cursor already says where you are",
            ));
            None
        }
        (Some(c), None) => ChangeCursor::parse(c)
            .map(Start::After)
            .map_err(|p| problems.push(p))
            .ok(),
        (None, Some(t)) => parse_since(t)
            .map(Start::Since)
            .map_err(|p| problems.push(p))
            .ok(),
        (None, None) => Some(Start::After(ChangeCursor::START)),
    };
    let mut conn = state.pool.acquire().await?;
    let project = match q.get("project") {
        None => None,
        Some(slug) => match projects::by_slug(&mut conn, slug).await? {
            Some(p) => Some(p.id),
            None => {
                problems.push(Problem::new(
                    "project",
                    format!("there is no project {slug:?}"),
                ));
                None
            }
        },
    };
    refuse(problems)?;
    // Only a refused request lacks a start.
    let start = start.unwrap_or(Start::After(ChangeCursor::START));
    let v = ratings::visibility(&mut conn, user.id, user.role).await?;
    let mut tx = rating_changes::snapshot(&mut conn).await?;
    let Some(page) = rating_changes::page(&mut tx, &v, start, project, limit.get()).await? else {
        return Err(AppError::invalid(vec![Problem::new(
            "cursor",
            "this cursor lies ahead of everything this server has recorded (was its database \
             restored from a backup?): sync again from the start, without a cursor",
        )]));
    };
    // Each candidate once, at its last change on the page: its state is
    // read once, as of this snapshot.
    let mut seen = HashSet::new();
    let mut last_first: Vec<&rating_changes::Change> = page
        .changes
        .iter()
        .rev()
        .filter(|c| seen.insert(c.candidate_id))
        .collect();
    last_first.reverse();
    let ids: Vec<CandidateId> = last_first.iter().map(|c| c.candidate_id).collect();
    let current = ratings::visible_of(&mut tx, &v, &ids, Kept::Current).await?;
    let history = if with_history {
        ratings::visible_of(&mut tx, &v, &ids, Kept::Replaced).await?
    } else {
        Vec::new()
    };
    tx.rollback().await?;
    let changes: Vec<Value> = last_first
        .iter()
        .map(|c| {
            let mut out = json!({
                "cursor": c.cursor.encode(),
                "candidate_id": c.candidate_id,
                "changed_at": timestamp(c.changed_at),
                "deleted": c.candidate.is_none(),
                "candidate": c.candidate.as_ref().map(|h| json!({
                    "name": h.name, "project": h.project, "observation": h.observation,
                })),
                "ratings": ratings_of(&current, c.candidate_id),
            });
            if with_history {
                out["history"] = json!(ratings_of(&history, c.candidate_id));
            }
            out
        })
        .collect();
    Ok(Json(json!({
        "changes": changes,
        "next_cursor": page.next.encode(),
        "more": page.more,
        "waiting": page.waiting,
    })))
}

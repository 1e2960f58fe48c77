//! `/admin/audit`: the audit log, newest first, filtered by actor and
//! action, paged with a keyset cursor (`before`), so a page stays cheap
//! however long the log grows and rows written meanwhile do not shift it.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;
use poem::web::{Data, Query};
use serde::Deserialize;

use crate::db::audit::{self, Actor, Cursor, Filter, Row};
use crate::db::users;
use crate::web::pages::admin::Admin;
use crate::web::paths;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::layout::Layout;
use crate::web::state::AppState;

const PAGE: i64 = 50;

/// The actions the filter offers: whole areas first, then each action.
pub const ACTIONS: &[&str] = &[
    "login",
    "user",
    "token",
    "tag",
    "project",
    "observation",
    "gold",
    "notify_target",
    "delivery",
    "login.success",
    "login.failure",
    "user.create",
    "user.password_reset",
    "user.role",
    "user.upload_grant",
    "user.upload_remove",
    "user.deactivate",
    "user.reactivate",
    "token.revoke",
    "tag.create",
    "tag.update",
    "tag.move",
    "tag.merge",
    "tag.delete",
    "project.update",
    "project.delete",
    "observation.delete",
    "gold.mark",
    "gold.remove",
    "gold.rate",
    "notify_target.create",
    "notify_target.update",
    "notify_target.delete",
    "delivery.retry",
];

#[derive(Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    before: Option<String>,
}

pub struct Line {
    pub row: Row,
    pub when: String,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    layout: Layout,
    lines: Vec<Line>,
    actor: String,
    action: String,
    actions: &'static [&'static str],
    /// The link to the next (older) page, if there is one.
    older: Option<String>,
    /// Whether this is a later page (so "newest" is offered).
    paged: bool,
}

impl AuditPage {
    pub fn is_area(&self, a: &&str) -> bool {
        !a.contains('.')
    }
}

#[handler]
pub async fn page(
    layout: Layout,
    state: Data<&AppState>,
    _admin: Admin,
    Query(q): Query<AuditQuery>,
) -> WebResult<AuditPage> {
    let actor = q.actor.unwrap_or_default().trim().to_string();
    let action = q.action.unwrap_or_default().trim().to_string();
    if !action.is_empty() && !ACTIONS.contains(&action.as_str()) {
        return Err(AppError::BadRequest(format!(
            "{action:?} is not an action in the log"
        )));
    }
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            Cursor::decode(b)
                .ok_or_else(|| AppError::BadRequest("the page link is malformed".into()))?,
        ),
        None => None,
    };
    let mut filter = Filter {
        action: (!action.is_empty()).then(|| action.clone()),
        ..Filter::default()
    };
    if !actor.is_empty() {
        // An account's rows by its id; a name without an account (failed
        // logins under unknown names) by the name.
        filter.actor = Some(match users::id_by_name(&state.pool, &actor).await? {
            Some(id) => Actor::Account(id, actor.clone()),
            None => Actor::Name(actor.clone()),
        });
    }
    let mut rows = audit::page(&state.pool, &filter, before, PAGE + 1).await?;
    let older = if rows.len() as i64 > PAGE {
        rows.truncate(PAGE as usize);
        rows.last()
            .map(|last| paths::admin_audit_before(&actor, &action, &Cursor::of(last).encode()))
    } else {
        None
    };
    let lines = rows
        .into_iter()
        .map(|row| Line {
            when: crate::web::plumbing::filters::utc_second(row.at),
            detail: match &row.detail.0 {
                serde_json::Value::Object(m) if m.is_empty() => String::new(),
                v => v.to_string(),
            },
            row,
        })
        .collect();
    Ok(AuditPage {
        layout,
        lines,
        actor,
        action,
        actions: ACTIONS,
        older,
        paged: before.is_some(),
    })
}

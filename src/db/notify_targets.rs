//! A project's notification targets (`/admin/projects/{slug}/notifications`).

use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::domain::notify::{Event, TargetKind};
use crate::domain::{ProjectId, TargetId, UserId};

#[derive(Debug, Clone, FromRow)]
pub struct TargetRow {
    pub id: TargetId,
    pub project_id: ProjectId,
    pub name: String,
    pub kind: String,
    pub url_hint: String,
    pub addresses: Vec<String>,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    /// Deliveries not yet sent (due or waiting for a retry), and given up.
    pub pending: i64,
    pub failed: i64,
}

impl TargetRow {
    pub fn has(&self, e: &Event) -> bool {
        self.events.iter().any(|x| x == e.as_str())
    }
}

const COLUMNS: &str = "t.id, t.project_id, t.name, t.kind, t.url_hint, t.addresses, t.events, t.enabled, t.created_at,
    (SELECT count(*) FROM notify_deliveries d WHERE d.target_id = t.id AND d.status = 'pending') AS pending,
    (SELECT count(*) FROM notify_deliveries d WHERE d.target_id = t.id AND d.status = 'failed') AS failed";

pub async fn list(db: impl PgExecutor<'_>, project: ProjectId) -> sqlx::Result<Vec<TargetRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notify_targets t WHERE t.project_id = $1 ORDER BY lower(t.name)"
    ))
    .bind(project)
    .fetch_all(db)
    .await
}

pub async fn get(
    db: impl PgExecutor<'_>,
    project: ProjectId,
    id: TargetId,
) -> sqlx::Result<Option<TargetRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notify_targets t WHERE t.project_id = $1 AND t.id = $2"
    ))
    .bind(project)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Whether another target of the project has this name (any case).
pub async fn name_taken(
    db: impl PgExecutor<'_>,
    project: ProjectId,
    name: &str,
    other_than: Option<TargetId>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notify_targets
                        WHERE project_id = $1 AND lower(name) = lower($2) AND id IS DISTINCT FROM $3)",
    )
    .bind(project)
    .bind(name)
    .bind(other_than)
    .fetch_one(db)
    .await
}

/// Where a target sends: a sealed URL with what admins see of it, or
/// e-mail addresses.
pub enum Destination {
    Url { sealed: Vec<u8>, hint: String },
    Addresses(Vec<String>),
}

pub struct NewTarget<'a> {
    pub project: ProjectId,
    pub name: &'a str,
    pub kind: TargetKind,
    pub destination: Destination,
    pub events: &'a [Event],
    pub enabled: bool,
    pub by: UserId,
}

fn event_names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.as_str()).collect()
}

pub async fn insert(db: &mut PgConnection, t: &NewTarget<'_>) -> sqlx::Result<TargetId> {
    let (sealed, hint, addresses) = match &t.destination {
        Destination::Url { sealed, hint } => (Some(sealed.as_slice()), hint.as_str(), Vec::new()),
        Destination::Addresses(a) => (None, "", a.clone()),
    };
    sqlx::query_scalar(
        "INSERT INTO notify_targets (project_id, name, kind, url_sealed, url_hint, addresses, events, enabled, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(t.project)
    .bind(t.name)
    .bind(t.kind.as_str())
    .bind(sealed)
    .bind(hint)
    .bind(addresses)
    .bind(event_names(t.events))
    .bind(t.enabled)
    .bind(t.by)
    .fetch_one(db)
    .await
}

/// Changes a target's name, events and switch, and its destination when a
/// new one is given (a kind never changes). Returns whether it exists.
pub async fn update(
    db: &mut PgConnection,
    project: ProjectId,
    id: TargetId,
    name: &str,
    events: &[Event],
    enabled: bool,
    destination: Option<&Destination>,
) -> sqlx::Result<bool> {
    let (sealed, hint, addresses) = match destination {
        Some(Destination::Url { sealed, hint }) => {
            (Some(sealed.as_slice()), Some(hint.as_str()), None)
        }
        Some(Destination::Addresses(a)) => (None, None, Some(a.clone())),
        None => (None, None, None),
    };
    let n = sqlx::query(
        "UPDATE notify_targets SET name = $3, events = $4, enabled = $5,
             url_sealed = coalesce($6, url_sealed), url_hint = coalesce($7, url_hint),
             addresses = coalesce($8, addresses), updated_at = now()
         WHERE project_id = $1 AND id = $2",
    )
    .bind(project)
    .bind(id)
    .bind(name)
    .bind(event_names(events))
    .bind(enabled)
    .bind(sealed)
    .bind(hint)
    .bind(addresses)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Removes the target with its deliveries; returns its name.
pub async fn delete(
    db: &mut PgConnection,
    project: ProjectId,
    id: TargetId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "DELETE FROM notify_targets WHERE project_id = $1 AND id = $2 RETURNING name",
    )
    .bind(project)
    .bind(id)
    .fetch_optional(db)
    .await
}

//! Notification events and their deliveries: queued in the transaction of
//! the change that caused them, claimed by the workers with a lease, and
//! settled with the outcome (`crate::notify::worker`).

use std::time::Duration;

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::domain::{CandidateId, DeliveryId, ProjectId, TargetId, UserId};

/// Queues `kind` to the project's targets that chose it; how many
/// deliveries were queued (none, and no event, when nobody listens).
pub async fn queue(
    db: &mut PgConnection,
    project: ProjectId,
    kind: &str,
    subject: &Value,
    body: Option<&Value>,
) -> sqlx::Result<i32> {
    sqlx::query_scalar("SELECT notify_queue($1, $2, $3, $4)")
        .bind(project)
        .bind(kind)
        .bind(Json(subject))
        .bind(body.map(Json))
        .fetch_one(db)
        .await
}

/// An event for one receiver only: a target (a test message) or a user
/// (the daily summary).
pub async fn queue_one(
    db: &mut PgConnection,
    project: Option<ProjectId>,
    kind: &str,
    subject: &Value,
    body: &Value,
    to: Receiver,
) -> sqlx::Result<DeliveryId> {
    let (target, user, channel) = match to {
        Receiver::Target(t, channel) => (Some(t), None, channel),
        Receiver::User(u) => (None, Some(u), "email"),
    };
    sqlx::query_scalar(
        "WITH e AS (INSERT INTO notify_events (project_id, kind, subject, body)
                    VALUES ($1, $2, $3, $4) RETURNING id)
         INSERT INTO notify_deliveries (event_id, target_id, user_id, channel)
         SELECT e.id, $5, $6, $7 FROM e RETURNING id",
    )
    .bind(project)
    .bind(kind)
    .bind(Json(subject))
    .bind(Json(body))
    .bind(target)
    .bind(user)
    .bind(channel)
    .fetch_one(db)
    .await
}

pub enum Receiver {
    /// A target, with its kind as the channel.
    Target(TargetId, &'static str),
    User(UserId),
}

/// A VOEvent document for the broker of the settings.
pub async fn queue_voevent(
    db: &mut PgConnection,
    project: ProjectId,
    candidate: CandidateId,
    xml: &str,
) -> sqlx::Result<DeliveryId> {
    sqlx::query_scalar(
        "WITH e AS (INSERT INTO notify_events (project_id, kind, subject, xml)
                    VALUES ($1, 'voevent', jsonb_build_object('candidate_id', $2::bigint), $3)
                    RETURNING id)
         INSERT INTO notify_deliveries (event_id, channel) SELECT e.id, 'broker' FROM e RETURNING id",
    )
    .bind(project)
    .bind(candidate)
    .bind(xml)
    .fetch_one(db)
    .await
}

/// A delivery a worker has claimed, with all it needs to send.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: DeliveryId,
    pub event_id: i64,
    pub channel: String,
    pub attempts: i32,
    pub event: String,
    pub event_at: OffsetDateTime,
    pub project_id: Option<ProjectId>,
    pub project_slug: Option<String>,
    pub project_name: Option<String>,
    pub subject: Json<Value>,
    pub body: Option<Json<Value>>,
    pub xml: Option<String>,
    pub target_id: Option<TargetId>,
    pub target_name: Option<String>,
    pub url_sealed: Option<Vec<u8>>,
    pub addresses: Option<Vec<String>>,
    pub user_email: Option<String>,
}

/// Takes up to `n` due deliveries for this worker: each is stamped with
/// `lease` and not due again for `hold` (so no other worker takes it
/// meanwhile, and a worker that dies leaves it to be tried again), and its
/// attempt is counted. One statement, committed at once: no lock or
/// transaction outlives it.
pub async fn claim(
    db: impl PgExecutor<'_>,
    n: i64,
    lease: i64,
    hold: Duration,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "WITH due AS (
             SELECT id FROM notify_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at, id LIMIT $1
             FOR UPDATE SKIP LOCKED),
         claimed AS (
             UPDATE notify_deliveries d
             SET attempts = d.attempts + 1, lease = $2, last_attempt_at = now(),
                 leased_until = now() + make_interval(secs => $3),
                 next_attempt_at = now() + make_interval(secs => $3)
             FROM due WHERE d.id = due.id
             RETURNING d.id, d.event_id, d.target_id, d.user_id, d.channel, d.attempts)
         SELECT c.id, c.event_id, c.channel, c.attempts, e.kind AS event, e.created_at AS event_at,
                e.project_id, p.slug AS project_slug, p.name AS project_name,
                e.subject, e.body, e.xml, c.target_id, t.name AS target_name, t.url_sealed,
                t.addresses, u.email AS user_email
         FROM claimed c JOIN notify_events e ON e.id = c.event_id
         LEFT JOIN projects p ON p.id = e.project_id
         LEFT JOIN notify_targets t ON t.id = c.target_id
         LEFT JOIN users u ON u.id = c.user_id
         ORDER BY c.id",
    )
    .bind(n)
    .bind(lease)
    .bind(hold.as_secs_f64())
    .fetch_all(db)
    .await
}

/// Records a delivery that went through; false when the lease was lost
/// (another worker took the row after it ran out).
pub async fn delivered(db: impl PgExecutor<'_>, id: DeliveryId, lease: i64) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE notify_deliveries SET status = 'delivered', delivered_at = now(), last_error = '',
             lease = NULL, leased_until = NULL
         WHERE id = $1 AND lease = $2",
    )
    .bind(id)
    .bind(lease)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a failed attempt: tried again after `wait`, or given up after
/// `max_attempts`.
pub async fn failed(
    db: impl PgExecutor<'_>,
    id: DeliveryId,
    lease: i64,
    error: &str,
    wait: Duration,
    max_attempts: u32,
) -> sqlx::Result<bool> {
    let error: String = error.chars().take(2000).collect();
    let n = sqlx::query(
        "UPDATE notify_deliveries
         SET status = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'pending' END,
             next_attempt_at = now() + make_interval(secs => $5),
             last_error = $3, lease = NULL, leased_until = NULL
         WHERE id = $1 AND lease = $2",
    )
    .bind(id)
    .bind(lease)
    .bind(error)
    .bind(max_attempts as i32)
    .bind(wait.as_secs_f64())
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Puts a claimed delivery back, not counting the attempt, until `wait`
/// has passed (an upload waiting for its candidates' scores).
pub async fn defer(
    db: impl PgExecutor<'_>,
    id: DeliveryId,
    lease: i64,
    wait: Duration,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notify_deliveries SET attempts = attempts - 1, lease = NULL, leased_until = NULL,
             next_attempt_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease = $2",
    )
    .bind(id)
    .bind(lease)
    .bind(wait.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// Stores the event's facts unless another worker stored them first;
/// returns the ones stored, so every delivery of the event says the same.
/// Two statements: a worker that waited for another's update reads what
/// that one stored with a snapshot taken after it committed.
pub async fn settle_body(db: &mut PgConnection, event: i64, body: &Value) -> sqlx::Result<Value> {
    sqlx::query("UPDATE notify_events SET body = $2 WHERE id = $1 AND body IS NULL")
        .bind(event)
        .bind(Json(body))
        .execute(&mut *db)
        .await?;
    let Json(v): Json<Value> = sqlx::query_scalar("SELECT body FROM notify_events WHERE id = $1")
        .bind(event)
        .fetch_one(&mut *db)
        .await?;
    Ok(v)
}

/// A delivery as the admin pages list it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub project_slug: Option<String>,
    pub event: String,
    pub subject: Json<Value>,
    pub channel: String,
    /// The target's name, the broker, or the addressee's username.
    pub receiver: String,
    pub status: String,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
    pub next_attempt_at: OffsetDateTime,
    pub in_flight: bool,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
    pub last_error: String,
}

impl DeliveryRow {
    /// What the event was about, in a few words.
    pub fn about(&self) -> String {
        let s = &self.subject.0;
        let field = |k: &str| {
            s.get(k)
                .map(|v| v.to_string().trim_matches('"').to_string())
        };
        match self.event.as_str() {
            "upload_finished" => {
                field("observation").map_or_else(String::new, |o| format!("observation {o}"))
            }
            "consensus_real" | "voevent" => field("candidate_name")
                .or_else(|| field("candidate_id").map(|id| format!("candidate {id}")))
                .unwrap_or_default(),
            "daily_summary" => field("day").unwrap_or_default(),
            _ => String::new(),
        }
    }
}

/// The most recent deliveries of a project (or, with `None`, of every
/// project and none), newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    project: Option<ProjectId>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(
        "SELECT d.id, p.slug AS project_slug, e.kind AS event, e.subject, d.channel,
                coalesce(t.name, u.username, 'VOEvent broker') AS receiver,
                d.status, d.attempts, d.created_at, d.next_attempt_at,
                coalesce(d.leased_until > now(), false) AS in_flight,
                d.last_attempt_at, d.delivered_at, d.last_error
         FROM notify_deliveries d JOIN notify_events e ON e.id = d.event_id
         LEFT JOIN projects p ON p.id = e.project_id
         LEFT JOIN notify_targets t ON t.id = d.target_id
         LEFT JOIN users u ON u.id = d.user_id
         WHERE $1::bigint IS NULL OR e.project_id = $1
         ORDER BY d.id DESC LIMIT $2",
    )
    .bind(project)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Counts by status, of a project or of all.
pub async fn counts(
    db: impl PgExecutor<'_>,
    project: Option<ProjectId>,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT d.status, count(*) FROM notify_deliveries d JOIN notify_events e ON e.id = d.event_id
         WHERE $1::bigint IS NULL OR e.project_id = $1
         GROUP BY d.status ORDER BY d.status",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

/// Why "retry now" did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryRefused {
    NotFound,
    Delivered,
    InFlight,
}

/// Makes a pending or failed delivery due now; a failed one gets one more
/// attempt. Returns its project's slug, if it has a project.
pub async fn retry_now(
    db: &mut PgConnection,
    id: DeliveryId,
) -> sqlx::Result<Result<Option<String>, RetryRefused>> {
    let row: Option<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT d.status, coalesce(d.leased_until > now(), false), p.slug
         FROM notify_deliveries d JOIN notify_events e ON e.id = d.event_id
         LEFT JOIN projects p ON p.id = e.project_id
         WHERE d.id = $1 FOR UPDATE OF d",
    )
    .bind(id)
    .fetch_optional(&mut *db)
    .await?;
    let Some((status, in_flight, slug)) = row else {
        return Ok(Err(RetryRefused::NotFound));
    };
    if status == "delivered" {
        return Ok(Err(RetryRefused::Delivered));
    }
    if in_flight {
        return Ok(Err(RetryRefused::InFlight));
    }
    sqlx::query(
        "UPDATE notify_deliveries SET status = 'pending', next_attempt_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *db)
    .await?;
    Ok(Ok(slug))
}

/// The users whose daily summary for `day` is due and not yet queued.
pub async fn summaries_due(db: impl PgExecutor<'_>, day: time::Date) -> sqlx::Result<Vec<UserId>> {
    sqlx::query_scalar(
        "SELECT u.id FROM users u
         WHERE u.daily_summary AND u.active AND u.email IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM daily_summaries s WHERE s.user_id = u.id AND s.day = $1)
         ORDER BY u.id",
    )
    .bind(day)
    .fetch_all(db)
    .await
}

/// Marks the user's summary for `day` as taken; false when another host
/// took it first (the caller then queues nothing).
pub async fn take_summary(
    db: &mut PgConnection,
    user: UserId,
    day: time::Date,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO daily_summaries (user_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(day)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Forgets events older than `age` whose deliveries are all settled
/// (delivered or given up), with those deliveries, and the record of
/// daily summaries sent before then; returns the events removed.
pub async fn purge_older_than(db: impl PgExecutor<'_>, age: Duration) -> sqlx::Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM notify_events e
             WHERE e.created_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (SELECT 1 FROM notify_deliveries d
                               WHERE d.event_id = e.id AND d.status = 'pending')
             RETURNING 1),
         days AS (
             DELETE FROM daily_summaries WHERE day < (now() - make_interval(secs => $1))::date)
         SELECT count(*) FROM gone",
    )
    .bind(age.as_secs_f64())
    .fetch_one(db)
    .await?;
    Ok(n.max(0) as u64)
}

//! The delivery worker, started by `startup` on every app host that polls
//! (`VETTER_NOTIFY_POLL`).
//!
//! Each pass claims the due deliveries it has room for (one statement:
//! `FOR UPDATE SKIP LOCKED` and a lease, so several hosts never take the
//! same row), then sends each in a task of its own with no database
//! connection or transaction open, and records the outcome in another
//! short statement. A receiver that hangs holds one of this host's
//! [`AT_ONCE`] sending slots until the time-out, nothing else. Failures
//! are tried again after `retry_base`, doubling each time, up to
//! `max_attempts`.
//!
//! Each pass also queues the daily summaries once their time of day has
//! come.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use super::render::{self, Rendered};
use super::smtp::Mail;
use super::{Kit, Links};
use crate::config::NotifySettings;
use crate::db::deliveries::{self, Claimed, Receiver};
use crate::db::{observations, projects, ratings};
use crate::domain::email::EmailAddress;
use crate::domain::{ObservationId, UserId};
use crate::outbound::Failure;

/// Deliveries in flight at once on one host.
pub const AT_ONCE: usize = 8;
/// The longest wait between two tries.
const MAX_WAIT: Duration = Duration::from_secs(6 * 3600);
/// How long a finished upload's message waits for the model to score the
/// new candidates, and how often it looks.
const SCORE_WAIT: Duration = Duration::from_secs(120);
const SCORE_LOOK: Duration = Duration::from_secs(5);
/// Candidates named as the most likely real.
const TOP: i64 = 10;
/// Daily summaries are looked for at most this often.
const SUMMARY_LOOK: Duration = Duration::from_secs(60);

pub struct Worker {
    pool: PgPool,
    kit: Arc<Kit>,
    settings: NotifySettings,
    links: Links,
    slots: Arc<Semaphore>,
}

impl Worker {
    pub fn new(pool: PgPool, kit: Arc<Kit>, settings: NotifySettings, links: Links) -> Arc<Self> {
        Arc::new(Self {
            pool,
            kit,
            settings,
            links,
            slots: Arc::new(Semaphore::new(AT_ONCE)),
        })
    }

    /// Passes every `every`, for ever.
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut summaries_looked: Option<Instant> = None;
        loop {
            tick.tick().await;
            if summaries_looked.is_none_or(|t| t.elapsed() >= SUMMARY_LOOK) {
                summaries_looked = Some(Instant::now());
                if let Err(e) = self.queue_summaries(time::OffsetDateTime::now_utc()).await {
                    tracing::warn!(error = %e, "queueing the daily summaries failed");
                }
            }
            if let Err(e) = self.clone().pass().await {
                tracing::warn!(error = %e, "the notification pass failed");
            }
        }
    }

    /// Claims what there is room for and starts sending it.
    async fn pass(self: Arc<Self>) -> sqlx::Result<()> {
        let room = self.slots.available_permits();
        if room == 0 {
            return Ok(());
        }
        let lease = lease_token();
        // Longer than an attempt can take (reading an upload's facts, within
        // the pool's statement time-out, then the send), so that a lease
        // runs out only when its worker is gone.
        let hold = self.settings.connect_timeout + self.settings.timeout + Duration::from_secs(60);
        let claimed = deliveries::claim(&self.pool, room as i64, lease, hold).await?;
        for c in claimed {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.deliver(c, lease).await;
                drop(permit);
            });
        }
        Ok(())
    }

    async fn deliver(&self, c: Claimed, lease: i64) {
        let recorded = match self.attempt(&c).await {
            Ok(()) => deliveries::delivered(&self.pool, c.id, lease).await,
            Err(Attempt::Later(wait)) => deliveries::defer(&self.pool, c.id, lease, wait)
                .await
                .map(|()| true),
            Err(Attempt::Failed(why)) => {
                let wait = backoff(self.settings.retry_base, c.attempts);
                tracing::info!(delivery = %c.id, attempts = c.attempts, error = %why, "a delivery failed");
                deliveries::failed(
                    &self.pool,
                    c.id,
                    lease,
                    &why,
                    wait,
                    self.settings.max_attempts,
                )
                .await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %c.id, "a delivery's lease ran out before its outcome was recorded")
            }
            Err(e) => {
                tracing::warn!(delivery = %c.id, error = %e, "recording a delivery's outcome failed")
            }
        }
    }

    async fn attempt(&self, c: &Claimed) -> Result<(), Attempt> {
        if c.channel == "broker" {
            let url = self.settings.voevent_broker_url.as_deref().ok_or_else(|| {
                Attempt::Failed(
                    "no VOEvent broker is configured (VETTER_VOEVENT_BROKER_URL)".into(),
                )
            })?;
            let xml = c.xml.clone().unwrap_or_default().into_bytes();
            let headers = [("X-Vetter-Delivery", c.id.to_string())];
            self.kit
                .outbound
                .post(url, "application/xml", &headers, xml)
                .await
                .map_err(failure)?;
            return Ok(());
        }
        let facts = self.facts(c).await?;
        let rendered = render::render(
            &render::Event {
                kind: &c.event,
                delivery: c.id.0,
                project_slug: c.project_slug.as_deref(),
                project_name: c.project_name.as_deref(),
                target_name: c.target_name.as_deref(),
                facts: &facts,
            },
            &self.links,
        );
        match c.channel.as_str() {
            "webhook" => self.webhook(c, &rendered).await,
            "slack" => {
                let body = serde_json::to_vec(&json!({"text": rendered.slack}))
                    .map_err(|e| Attempt::Failed(e.to_string()))?;
                let url = self.url(c)?;
                self.kit
                    .outbound
                    .post(&url, "application/json", &[], body)
                    .await
                    .map_err(failure)?;
                Ok(())
            }
            "email" => self.email(c, &rendered).await,
            other => Err(Attempt::Failed(format!("unknown channel {other:?}"))),
        }
    }

    /// The event's facts: as stored, or for an upload, taken now (once the
    /// model has scored the new candidates, or stopped being waited for).
    async fn facts(&self, c: &Claimed) -> Result<Value, Attempt> {
        if let Some(b) = &c.body {
            return Ok(b.0.clone());
        }
        if c.event != "upload_finished" {
            return Ok(json!({}));
        }
        let subject = &c.subject.0;
        let observation = ObservationId(subject["observation_id"].as_i64().unwrap_or(0));
        let since = subject["since"].as_str().and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        });
        let mut conn = self.pool.acquire().await.map_err(db_failure)?;
        let f = observations::upload_facts(&mut conn, observation, since, TOP)
            .await
            .map_err(db_failure)?;
        let age = (time::OffsetDateTime::now_utc() - c.event_at).unsigned_abs();
        if f.unscored > 0 && age < SCORE_WAIT {
            return Err(Attempt::Later(SCORE_LOOK));
        }
        let facts = json!({
            "observation": {"id": observation, "external_id": subject["observation"]},
            "finished_at": subject["finished_at"],
            "candidates": f.candidates,
            "new": f.new,
            "matched": f.matched,
            "matched_by_catalogue": f
                .matched_by_catalogue
                .iter()
                .map(|(k, n)| (k.clone(), json!(n)))
                .collect::<serde_json::Map<String, Value>>(),
            "top": f.top,
            "unscored": f.unscored,
        });
        deliveries::settle_body(&mut conn, c.event_id, &facts)
            .await
            .map_err(db_failure)
    }

    fn url(&self, c: &Claimed) -> Result<String, Attempt> {
        let sealer = self.kit.sealer.as_ref().ok_or_else(|| {
            Attempt::Failed("VETTER_NOTIFY_KEY is not set: target URLs cannot be opened".into())
        })?;
        let (Some(project), Some(sealed)) = (c.project_id, c.url_sealed.as_deref()) else {
            return Err(Attempt::Failed("the target has no URL".into()));
        };
        sealer
            .open(project, sealed)
            .map_err(|e| Attempt::Failed(e.to_string()))
    }

    /// The JSON POST, signed: `X-Vetter-Signature: sha256=<hex>` is the
    /// HMAC-SHA256, keyed with `VETTER_NOTIFY_SIGNING_SECRET`, of
    /// `<X-Vetter-Timestamp>.<body>`; a receiver recomputes it and checks
    /// the time, so a body cannot be forged or an old one replayed.
    async fn webhook(&self, c: &Claimed, r: &Rendered) -> Result<(), Attempt> {
        let secret = self.settings.signing_secret.as_ref().ok_or_else(|| {
            Attempt::Failed(
                "VETTER_NOTIFY_SIGNING_SECRET is not set: webhooks are not sent unsigned".into(),
            )
        })?;
        let url = self.url(c)?;
        let body = serde_json::to_vec(&r.json).map_err(|e| Attempt::Failed(e.to_string()))?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let headers = [
            ("X-Vetter-Event", c.event.clone()),
            ("X-Vetter-Delivery", c.id.to_string()),
            ("X-Vetter-Timestamp", timestamp.clone()),
            (
                "X-Vetter-Signature",
                signature(secret.expose(), &timestamp, &body),
            ),
        ];
        self.kit
            .outbound
            .post(&url, "application/json", &headers, body)
            .await
            .map_err(failure)?;
        Ok(())
    }

    async fn email(&self, c: &Claimed, r: &Rendered) -> Result<(), Attempt> {
        let relay = self.kit.relay.as_ref().ok_or_else(|| {
            Attempt::Failed("no SMTP relay is configured (VETTER_SMTP_HOST)".into())
        })?;
        let raw: Vec<String> = match (&c.addresses, &c.user_email) {
            (Some(list), _) if c.target_id.is_some() => list.clone(),
            (_, Some(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let to: Vec<EmailAddress> = raw
            .iter()
            .filter_map(|a| EmailAddress::parse(a).ok())
            .collect();
        if to.is_empty() {
            return Err(Attempt::Failed("no e-mail address to send to".into()));
        }
        relay
            .send(
                &Mail {
                    to: &to,
                    subject: &r.subject,
                    body: &r.plain,
                    delivery: c.id.0,
                },
                self.settings.connect_timeout,
                self.settings.timeout,
            )
            .await
            .map_err(|e| Attempt::Failed(e.to_string()))
    }

    /// Queues today's summary for each user who asked for one and has not
    /// had it, once the time of day has come; a user each, in a transaction
    /// that first marks the day taken, so no two hosts queue one twice.
    pub async fn queue_summaries(&self, now: time::OffsetDateTime) -> anyhow::Result<usize> {
        if self.kit.relay.is_none() {
            return Ok(0);
        }
        let (h, m) = self.settings.daily_summary_at;
        let at = time::Time::from_hms(h, m, 0)?;
        let day = now.date();
        if now.time() < at {
            return Ok(0);
        }
        let due = deliveries::summaries_due(&self.pool, day).await?;
        let mut queued = 0;
        for user in due {
            let mut tx = self.pool.begin().await?;
            if !deliveries::take_summary(&mut tx, user, day).await? {
                continue;
            }
            let facts = summary_facts(&mut tx, user, day, at).await?;
            deliveries::queue_one(
                &mut tx,
                None,
                "daily_summary",
                &json!({"user_id": user, "day": day.to_string()}),
                &facts,
                Receiver::User(user),
            )
            .await?;
            tx.commit().await?;
            queued += 1;
        }
        if queued > 0 {
            tracing::info!(day = %day, queued, "daily summaries queued");
        }
        Ok(queued)
    }
}

async fn summary_facts(
    db: &mut sqlx::PgConnection,
    user: UserId,
    day: time::Date,
    at: time::Time,
) -> anyhow::Result<Value> {
    let until = time::PrimitiveDateTime::new(day, at).assume_utc();
    let since = until - time::Duration::days(1);
    let username: String = crate::db::users::by_id(&mut *db, user)
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    let mut rated: Vec<(String, [i64; 3])> = Vec::new();
    for (project, verdict, n) in ratings::given_since(&mut *db, user, since).await? {
        if rated.last().is_none_or(|(p, _)| *p != project) {
            rated.push((project.clone(), [0; 3]));
        }
        let slot = match verdict {
            crate::domain::Verdict::Real => 0,
            crate::domain::Verdict::NotReal => 1,
            crate::domain::Verdict::Unsure => 2,
        };
        if let Some(last) = rated.last_mut() {
            last.1[slot] += n;
        }
    }
    let waiting: Vec<Value> = projects::progress(&mut *db, user)
        .await?
        .into_iter()
        .filter(|p| p.candidates > p.mine)
        .map(|p| {
            json!({
                "project": p.name,
                "candidates": p.candidates,
                "not_rated_by_you": p.candidates - p.mine,
                "not_rated_by_anyone": p.candidates - p.rated,
            })
        })
        .collect();
    Ok(json!({
        "username": username,
        "day": day.to_string(),
        "at": format!("{:02}:{:02}", at.hour(), at.minute()),
        "rated": rated.into_iter().map(|(p, [r, n, u])| json!({
            "project": p, "real": r, "not_real": n, "unsure": u,
        })).collect::<Vec<_>>(),
        "waiting": waiting,
    }))
}

/// Why an attempt did not go through.
enum Attempt {
    /// Not now, and not counted as a try.
    Later(Duration),
    Failed(String),
}

fn failure(f: Failure) -> Attempt {
    Attempt::Failed(f.to_string())
}

fn db_failure(e: sqlx::Error) -> Attempt {
    Attempt::Failed(format!("reading the event's facts: {e}"))
}

/// The wait after the `attempts`-th failed try: the base, doubled for each
/// try before it, at most [`MAX_WAIT`].
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    base.saturating_mul(1u32 << doublings).min(MAX_WAIT)
}

/// `sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", crate::media::hex(ctx.sign().as_ref()))
}

/// A worker's mark on the rows it claims in one pass.
fn lease_token() -> i64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source works");
    i64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_cap() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), base * 2);
        assert_eq!(backoff(base, 4), base * 8);
        assert_eq!(backoff(base, 40), MAX_WAIT);
        assert_eq!(backoff(base, 0), base);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_and_body() {
        // As Python's hmac.new(b"Jefe", b'1700000000.{"event":"test"}',
        // hashlib.sha256).hexdigest() computes it: what a receiver checks.
        assert_eq!(
            signature("Jefe", "1700000000", br#"{"event":"test"}"#),
            "sha256=3ab59f5da3cb69cfbc00193ac2a5189183beab4972986c715de47044ebfe6e9c"
        );
    }
}

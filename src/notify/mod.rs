//! Notifications: a project's webhooks, Slack channels and e-mail lists are
//! told when an observation's upload finishes and when a candidate is
//! settled real; reviewers who ask for it get a daily summary by e-mail;
//! VOEvents go to the broker of the settings.
//!
//! Every message starts as rows (`notify_events`, `notify_deliveries`)
//! written in the transaction of the change that causes it: by the upload
//! API's finishing call, by a trigger on the rating tallies (whichever way
//! a rating is written), by [`queue_voevent`]. A request that rolls back
//! notifies nobody, and no request waits for a receiver. The worker
//! ([`worker`]) sends them.
//!
//! Imports go one way: startup and web → notify → db, domain, outbound.
//! The site's paths come in through [`Links`], built by the caller.

pub mod render;
pub mod seal;
pub mod smtp;
pub mod worker;

use sqlx::PgConnection;

use crate::config::NotifySettings;
use crate::db::deliveries;
use crate::domain::{CandidateId, DeliveryId, ProjectId};
use crate::outbound::Outbound;

/// The largest VOEvent document queued; real ones are a few kB.
pub const MAX_VOEVENT_BYTES: usize = 1 << 20;

/// What sending needs, built once from the settings; shared by the admin
/// pages (to check and seal a URL when it is saved) and the worker.
pub struct Kit {
    pub outbound: Outbound,
    /// `None` without `VETTER_NOTIFY_KEY`: URL targets cannot be saved.
    pub sealer: Option<seal::Sealer>,
    /// `None` without `VETTER_SMTP_HOST`: no e-mail is sent.
    pub relay: Option<smtp::Relay>,
}

impl Kit {
    /// `hello` is the site's host name, said to the SMTP relay.
    pub fn new(settings: &NotifySettings, hello: &str) -> anyhow::Result<Self> {
        Ok(Self {
            outbound: Outbound::new(
                settings.hosts.clone(),
                settings.connect_timeout,
                settings.timeout,
            )?,
            sealer: settings.url_key.as_ref().map(seal::Sealer::new),
            relay: settings
                .smtp
                .clone()
                .map(|s| smtp::Relay::new(s, hello))
                .transpose()?,
        })
    }
}

/// Absolute links to the site's pages, for messages read outside it. The
/// paths are handed in (they are written once, in `web::paths`).
#[derive(Clone)]
pub struct Links {
    base: String,
    candidate: fn(CandidateId) -> String,
    next: &'static str,
    table: &'static str,
}

impl Links {
    pub fn new(
        public_url: &str,
        candidate: fn(CandidateId) -> String,
        next: &'static str,
        table: &'static str,
    ) -> Self {
        Self {
            base: public_url.trim_end_matches('/').to_string(),
            candidate,
            next,
            table,
        }
    }

    pub fn candidate(&self, id: i64) -> String {
        format!("{}{}", self.base, (self.candidate)(CandidateId(id)))
    }

    pub fn next(&self) -> String {
        format!("{}{}", self.base, self.next)
    }

    pub fn project_table(&self, slug: &str) -> String {
        format!("{}{}?project={}", self.base, self.table, encode(slug))
    }

    pub fn observation_table(&self, slug: &str, observation: &str) -> String {
        format!(
            "{}&observation={}",
            self.project_table(slug),
            encode(observation)
        )
    }
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// Why a VOEvent was not queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no VOEvent broker is configured (VETTER_VOEVENT_BROKER_URL)")]
    NoBroker,
    #[error("the document is empty")]
    Empty,
    #[error("the document has {0} bytes; at most {MAX_VOEVENT_BYTES} are sent")]
    TooLarge(usize),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Queues `xml` (a VOEvent document) for the broker at
/// `VETTER_VOEVENT_BROKER_URL`, in the caller's transaction: it is sent
/// (`Content-Type: application/xml`) once that commits, under the outbound
/// policy, retried like any delivery, and listed with the project's
/// deliveries on its notifications page.
pub async fn queue_voevent(
    tx: &mut PgConnection,
    settings: &NotifySettings,
    project: ProjectId,
    candidate: CandidateId,
    xml: &str,
) -> Result<DeliveryId, QueueError> {
    if settings.voevent_broker_url.is_none() {
        return Err(QueueError::NoBroker);
    }
    if xml.trim().is_empty() {
        return Err(QueueError::Empty);
    }
    if xml.len() > MAX_VOEVENT_BYTES {
        return Err(QueueError::TooLarge(xml.len()));
    }
    Ok(deliveries::queue_voevent(tx, project, candidate, xml).await?)
}

//! Typed access to the tower-sessions session that the session layer puts
//! into each request.

use poem::{FromRequest, Request, RequestBody};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::{CandidateId, UserId};
use crate::web::plumbing::error::AppError;

/// A fresh CSRF token: 32 random bytes as hex.
pub fn new_csrf_token() -> String {
    crate::random_hex(32)
}

const USER: &str = "user";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
const RATED: &str = "rated";
const UNDO_ASKED: &str = "undo_asked";
const QUEUE_COUNT: &str = "queue_count";
/// A queue's size is counted again after this long (counting a large
/// survey's queue is real work).
const QUEUE_COUNT_SECS: i64 = 300;
/// Ratings of this session remembered by candidate, for undo: enough to
/// walk back, few enough that the session written on every rating stays
/// small.
const RATED_LEN: usize = 50;
/// How long a pressed-once Undo of an older rating waits for its second press.
const UNDO_CONFIRM_SECS: i64 = 10;

/// The signed-in user as the session remembers them; checked against the
/// database on every request so deactivation and password changes bite at once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionUser {
    pub id: UserId,
    pub epoch: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlashKind {
    Success,
    Error,
}

impl FlashKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlashKind::Success => "success",
            FlashKind::Error => "error",
        }
    }
}

#[derive(Clone)]
pub struct TypedSession(Session);

/// This session's ratings: how many, since when (Unix time), and the
/// latest candidates rated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionRatings {
    pub count: u32,
    pub first: i64,
    pub recent: Vec<CandidateId>,
}

impl TypedSession {
    pub fn from_request_ref(req: &Request) -> Result<Self, AppError> {
        req.extensions()
            .get::<Session>()
            .cloned()
            .map(TypedSession)
            .ok_or_else(|| AppError::internal("the session layer is not installed"))
    }

    pub async fn user(&self) -> Result<Option<SessionUser>, AppError> {
        self.0.get(USER).await.map_err(session_error)
    }

    /// Starts a signed-in session under a new id, so an id planted before
    /// login (session fixation) is worth nothing after it.
    pub async fn log_in(&self, user: SessionUser) -> Result<(), AppError> {
        self.0.cycle_id().await.map_err(session_error)?;
        self.0.insert(USER, user).await.map_err(session_error)?;
        // A fresh CSRF token for the signed-in session.
        self.0
            .insert(CSRF, new_csrf_token())
            .await
            .map_err(session_error)
    }

    pub async fn set_user(&self, user: SessionUser) -> Result<(), AppError> {
        self.0.insert(USER, user).await.map_err(session_error)
    }

    pub async fn log_out(&self) -> Result<(), AppError> {
        self.0.flush().await.map_err(session_error)
    }

    /// The session's CSRF token, made on first use.
    pub async fn csrf_token(&self) -> Result<String, AppError> {
        if let Some(t) = self.0.get::<String>(CSRF).await.map_err(session_error)? {
            return Ok(t);
        }
        let t = new_csrf_token();
        self.0.insert(CSRF, &t).await.map_err(session_error)?;
        Ok(t)
    }

    /// The token without making one: a request that arrives without a
    /// session has no token to match.
    pub async fn existing_csrf_token(&self) -> Result<Option<String>, AppError> {
        self.0.get(CSRF).await.map_err(session_error)
    }

    pub async fn flash(&self, kind: FlashKind, message: impl Into<String>) -> Result<(), AppError> {
        let f = Flash {
            kind,
            message: message.into(),
        };
        self.0.insert(FLASH, f).await.map_err(session_error)
    }

    /// The ratings made in this session.
    pub async fn rated_here(&self) -> Result<SessionRatings, AppError> {
        Ok(self
            .0
            .get(RATED)
            .await
            .map_err(session_error)?
            .unwrap_or_default())
    }

    pub async fn push_rated(&self, candidate: CandidateId) -> Result<(), AppError> {
        let mut r = self.rated_here().await?;
        if r.count == 0 {
            r.first = time::OffsetDateTime::now_utc().unix_timestamp();
        }
        r.count += 1;
        r.recent.push(candidate);
        if r.recent.len() > RATED_LEN {
            r.recent.drain(..r.recent.len() - RATED_LEN);
        }
        self.0.insert(RATED, r).await.map_err(session_error)
    }

    /// Forgets the latest rating of `candidate` (it was undone).
    pub async fn forget_rated(&self, candidate: CandidateId) -> Result<(), AppError> {
        let mut r = self.rated_here().await?;
        if let Some(i) = r.recent.iter().rposition(|c| *c == candidate) {
            r.recent.remove(i);
            r.count = r.count.saturating_sub(1);
            self.0.insert(RATED, r).await.map_err(session_error)?;
        }
        Ok(())
    }

    /// How many candidates the queue described by `label` still holds, from
    /// the last count (if recent and of the same queue) less the ratings
    /// made since.
    pub async fn queue_left(&self, label: &str) -> Result<Option<i64>, AppError> {
        let counted: Option<(String, i64, i64, u32)> =
            self.0.get(QUEUE_COUNT).await.map_err(session_error)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let Some((of, count, at, rated_then)) = counted else {
            return Ok(None);
        };
        if of != label || now - at > QUEUE_COUNT_SECS {
            return Ok(None);
        }
        let rated_now = self.rated_here().await?.count;
        Ok(Some(
            (count - rated_now.saturating_sub(rated_then) as i64).max(0),
        ))
    }

    /// Records a fresh count of the queue described by `label`.
    pub async fn count_queue(&self, label: &str, count: i64) -> Result<(), AppError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let rated = self.rated_here().await?.count;
        self.0
            .insert(QUEUE_COUNT, (label.to_string(), count, now, rated))
            .await
            .map_err(session_error)
    }

    /// Whether an Undo of `candidate`'s older rating was asked for moments
    /// ago (a second press confirms it); if not, records this first ask.
    pub async fn undo_confirmed(&self, candidate: CandidateId) -> Result<bool, AppError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let asked: Option<(CandidateId, i64)> =
            self.0.get(UNDO_ASKED).await.map_err(session_error)?;
        if asked.is_some_and(|(c, t)| c == candidate && now - t <= UNDO_CONFIRM_SECS) {
            self.0
                .remove::<(CandidateId, i64)>(UNDO_ASKED)
                .await
                .map_err(session_error)?;
            return Ok(true);
        }
        self.0
            .insert(UNDO_ASKED, (candidate, now))
            .await
            .map_err(session_error)?;
        Ok(false)
    }

    /// The pending flash message, removed as it is read. Looked at first,
    /// because a removal marks the session changed and so costs a write to
    /// the store at the end of every request that renders a page.
    pub async fn take_flash(&self) -> Result<Option<Flash>, AppError> {
        let pending: Option<Flash> = self.0.get(FLASH).await.map_err(session_error)?;
        if pending.is_some() {
            self.0.remove::<Flash>(FLASH).await.map_err(session_error)?;
        }
        Ok(pending)
    }
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context("session store"))
}

impl<'a> FromRequest<'a> for TypedSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self::from_request_ref(req)?)
    }
}

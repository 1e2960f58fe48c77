//! One error type for every page, named for what the person sees; `pages`
//! turns it into what the client can use.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};

pub mod pages;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in first")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error("{0}")]
    TokenRejected(&'static str),
    #[error("form expired")]
    CsrfRejected,
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Conflict(String),
    /// Input that failed validation, with each problem named.
    #[error("{message}")]
    Invalid {
        message: String,
        problems: Vec<Problem>,
    },
    #[error("{0}")]
    TooLarge(String),
    #[error("database unavailable")]
    Unavailable,
    /// The database cancelled a statement that ran past its time-out.
    #[error("the database took too long")]
    TimedOut,
    /// Every slot for this kind of work is taken; try again shortly.
    #[error("{0}")]
    Busy(&'static str),
    /// The change was committed, then the database stopped answering
    /// before the next page could be made.
    #[error("saved, then the database became unavailable")]
    SavedThenUnavailable,
    /// The database stopped answering while a change was being written: it
    /// may have been committed before the connection broke.
    #[error("the database became unavailable while saving")]
    MaybeSaved,
    #[error(transparent)]
    Internal(anyhow::Error),
}

pub type WebResult<T> = Result<T, AppError>;

pub use crate::domain::Problem;

/// What a person is told about an error: the status, a short title and a
/// sentence on what to do next.
pub struct Described {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl AppError {
    pub fn internal(msg: &'static str) -> Self {
        AppError::Internal(anyhow::anyhow!(msg))
    }

    /// The problems behind an `Invalid`, for the JSON error body.
    pub fn problems(&self) -> &[Problem] {
        match self {
            AppError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }

    pub fn invalid(problems: Vec<Problem>) -> Self {
        let message = match problems.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} problems in the request", many.len()),
        };
        AppError::Invalid { message, problems }
    }

    /// Whether this is, or was caused by, the database being out of reach.
    /// Errors wrapped on the way up (the session store's, anything given
    /// context) count too, so an outage is never shown as a server fault.
    pub fn is_outage(&self) -> bool {
        match self {
            AppError::Unavailable | AppError::SavedThenUnavailable | AppError::MaybeSaved => true,
            AppError::Internal(e) => e.chain().any(|cause| {
                if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
                    return crate::db::is_outage(db);
                }
                // tower-sessions keeps only the text of the store's sqlx error.
                matches!(
                    cause.downcast_ref::<tower_sessions::session::Error>(),
                    Some(tower_sessions::session::Error::Store(
                        tower_sessions::session_store::Error::Backend(msg)
                    )) if crate::db::is_outage_text(msg)
                )
            }),
            _ => false,
        }
    }

    /// Whether a write failed because the disk (the media folder's) is full:
    /// a condition for an administrator, not a bug, and worth saying so.
    pub fn is_disk_full(&self) -> bool {
        match self {
            AppError::Internal(e) => e.chain().any(|cause| {
                cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    io.kind() == std::io::ErrorKind::StorageFull
                        || io.kind() == std::io::ErrorKind::QuotaExceeded
                })
            }),
            _ => false,
        }
    }

    /// Whether this is, or was caused by, a statement time-out.
    fn is_statement_timeout(&self) -> bool {
        match self {
            AppError::TimedOut => true,
            AppError::Internal(e) => e.chain().any(|cause| {
                cause
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(crate::db::is_statement_timeout)
            }),
            _ => false,
        }
    }

    pub fn describe(&self) -> Described {
        if self.is_disk_full() {
            return Described {
                status: StatusCode::INSUFFICIENT_STORAGE,
                title: "Disk full",
                message: "The server's disk is full, so nothing was saved. Tell an administrator; \
                          once space is freed, send it again."
                    .into(),
            };
        }
        if matches!(self, AppError::Internal(e) if crate::media::StoreFailed::in_chain(e)) {
            return Described {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "Media store unavailable",
                message: "The media store, where files are kept, did not answer. Nothing was \
                          changed; try again in a moment, and if this persists, tell an administrator."
                    .into(),
            };
        }
        if self.is_statement_timeout() && !matches!(self, AppError::TimedOut) {
            return AppError::TimedOut.describe();
        }
        if self.is_outage()
            && !matches!(
                self,
                AppError::Unavailable | AppError::SavedThenUnavailable | AppError::MaybeSaved
            )
        {
            return AppError::Unavailable.describe();
        }
        let (status, title, message) = match self {
            AppError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("No such {what}. It may have been removed, or the link is wrong."),
            ),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m.clone()),
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "Please sign in",
                "Your session has ended. Sign in again to go on.".into(),
            ),
            AppError::TokenRejected(m) => (StatusCode::UNAUTHORIZED, "Invalid token", m.to_string()),
            AppError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your account is not allowed to do this. Ask an administrator if you need it.".into(),
            ),
            AppError::CsrfRejected => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or did not come from this site. Reload the page and try again."
                    .into(),
            ),
            AppError::TooManyRequests(m) => {
                (StatusCode::TOO_MANY_REQUESTS, "Too many attempts", m.clone())
            }
            AppError::Conflict(m) => (StatusCode::CONFLICT, "Conflict", m.clone()),
            AppError::Invalid { message, .. } => {
                (StatusCode::BAD_REQUEST, "Bad request", message.clone())
            }
            AppError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "Too large", m.clone()),
            AppError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The database is not answering. Nothing was saved; try again in a moment.".into(),
            ),
            AppError::TimedOut => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Took too long",
                "The database gave up on this request because it took too long. Nothing was saved; try again in a moment, or narrow the filter.".into(),
            ),
            AppError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, "Busy", m.to_string()),
            AppError::SavedThenUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Saved; temporarily unavailable",
                "Your rating was saved, but the database stopped answering before the next candidate could be shown. Try again in a moment: it will not be counted twice.".into(),
            ),
            AppError::MaybeSaved => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The database stopped answering while your rating was being saved, so it may or may not have been saved. Try again in a moment: a rating sent again is not counted twice.".into(),
            ),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not finish this request. It has been logged; try again, and tell an administrator if it keeps happening.".into(),
            ),
        };
        Described {
            status,
            title,
            message,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            e if crate::db::is_statement_timeout(&e) => {
                tracing::warn!(error = %e, "statement time-out");
                AppError::TimedOut
            }
            e if crate::db::is_outage(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                AppError::Unavailable
            }
            // PostgreSQL refuses NUL in text (22021) and in jsonb (22P05):
            // always the client's input, so a 400 rather than a 500.
            sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("22021" | "22P05")) => {
                AppError::BadRequest(
                    "text cannot contain the NUL character (U+0000); nothing was saved".into(),
                )
            }
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::ingest::IngestError> for AppError {
    fn from(e: crate::ingest::IngestError) -> Self {
        use crate::ingest::IngestError;
        match e {
            IngestError::Invalid(problems) => AppError::invalid(problems),
            IngestError::Database(e) => e.into(),
            IngestError::Internal(e) => AppError::Internal(e),
        }
    }
}

/// A value refused where the request was read.
impl From<Problem> for AppError {
    fn from(p: Problem) -> Self {
        AppError::invalid(vec![p])
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(e)
    }
}

impl poem::error::ResponseError for AppError {
    fn status(&self) -> StatusCode {
        self.describe().status
    }

    /// Plain text: every route is wrapped in [`pages::ErrorPages`], which
    /// makes the page, toast or JSON that suits the request. This is only
    /// what an error escaping that would look like.
    fn as_response(&self) -> Response {
        let d = self.describe();
        (d.status, format!("{}: {}", d.title, d.message)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_as_such_not_as_a_fault() {
        let full = std::io::Error::from_raw_os_error(28); // ENOSPC
        let e = AppError::Internal(anyhow::Error::new(full).context("writing an upload"));
        let d = e.describe();
        assert_eq!(d.status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(d.message.contains("disk is full"), "{}", d.message);
        let other = AppError::Internal(anyhow::Error::new(std::io::Error::other("boom")));
        assert_eq!(other.describe().status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

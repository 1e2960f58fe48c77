//! `/admin/...`: the administrators' pages. Every route here is registered
//! with `Access::Admin`, so reviewers get 403 and anonymous visitors the
//! login page before a handler runs. Every change is written to the audit
//! log in the transaction that makes it.

pub mod audit;
pub mod catalogues;
pub mod gold;
pub mod notifications;
pub mod projects;
pub mod review;
pub mod status;
pub mod tags;
pub mod tokens;
pub mod users;

use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use poem::web::Data;
use poem::{handler, FromRequest, Request, RequestBody};
use serde_json::Value;
use sqlx::PgExecutor;

use crate::db::audit::{self as log, Entry};
use crate::db::users::User;
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::AppError;
use crate::web::plumbing::layout::Layout;
use crate::web::state::AppState;

/// The administrator making this request, and from where.
pub struct Admin {
    pub user: User,
    pub address: Option<IpAddr>,
}

impl<'a> FromRequest<'a> for Admin {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let CurrentUser(user) = CurrentUser::from_request(req, body).await?;
        if !user.is_admin() {
            return Err(AppError::Forbidden.into());
        }
        let state = Data::<&AppState>::from_request_without_body(req).await?;
        let address =
            crate::web::pages::login::client_ip(req, req.remote_addr(), state.config.behind_proxy);
        Ok(Self { user, address })
    }
}

impl Admin {
    /// Writes one line to the audit log.
    pub async fn audit(
        &self,
        db: impl PgExecutor<'_>,
        action: &str,
        target: &str,
        detail: Value,
    ) -> sqlx::Result<()> {
        let e = Entry {
            actor_id: Some(self.user.id),
            actor_name: &self.user.username,
            action,
            target,
            detail,
            address: self.address,
        };
        log::record(db, &e).await
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/index.html")]
pub struct IndexPage {
    layout: Layout,
}

#[handler]
pub async fn index(layout: Layout, _admin: Admin) -> IndexPage {
    IndexPage { layout }
}

/// Whether a confirmation checkbox was ticked.
pub fn ticked(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("yes" | "on" | "true"))
}

/// `1.5 MB`, `12 kB`, `3 B`.
pub fn size_text(bytes: i64) -> String {
    match bytes {
        b if b >= 1 << 40 => format!("{:.2} TB", b as f64 / (1u64 << 40) as f64),
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A length check on trimmed text, as the database enforces it.
pub fn check_len(
    problems: &mut Vec<crate::domain::Problem>,
    field: &str,
    label: &str,
    value: &str,
    min: usize,
    max: usize,
) {
    let n = value.chars().count();
    if n < min {
        problems.push(crate::domain::Problem::new(
            field,
            format!("{label} is required"),
        ));
    } else if n > max {
        problems.push(crate::domain::Problem::new(
            field,
            format!("{label} has at most {max} characters"),
        ));
    }
}

/// `check_len` for a name shown on one line: the same rule the upload API
/// applies to the same field.
pub fn check_line(
    problems: &mut Vec<crate::domain::Problem>,
    field: &str,
    label: &str,
    value: &str,
    max: usize,
) {
    if let Err(e) = crate::domain::text::one_line(value, max) {
        problems.push(crate::domain::Problem::new(field, format!("{label} {e}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_sensible_units() {
        assert_eq!(size_text(0), "0 B");
        assert_eq!(size_text(2048), "2 kB");
        assert_eq!(size_text(3 << 20), "3.0 MB");
        assert_eq!(size_text(5 << 30), "5.0 GB");
    }

    #[test]
    fn only_a_ticked_box_confirms() {
        assert!(ticked(&Some("yes".into())));
        assert!(ticked(&Some("on".into())));
        assert!(!ticked(&None));
        assert!(!ticked(&Some(String::new())));
        assert!(!ticked(&Some("no".into())));
    }
}

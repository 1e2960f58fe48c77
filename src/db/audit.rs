//! The audit log: every admin action and every login, with who, what, when
//! and from where. Rows are only ever added.

use std::net::IpAddr;

use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::db::users::User;
use crate::domain::UserId;

/// One thing that happened. `action` is `area.verb` (`user.create`,
/// `login.failure`, ...); `target` names what it was done to.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub actor_id: Option<UserId>,
    pub actor_name: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: Value,
    pub address: Option<IpAddr>,
}

pub async fn record(db: impl PgExecutor<'_>, e: &Entry<'_>) -> sqlx::Result<()> {
    // A typed login name can be anything: keep it printable and short.
    let name: String = e
        .actor_name
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let target: String = e.target.chars().take(500).collect();
    sqlx::query(
        "INSERT INTO audit_log (actor_id, actor_name, action, target, detail, address)
         VALUES ($1, $2, $3, $4, $5, $6::inet)",
    )
    .bind(e.actor_id)
    .bind(name)
    .bind(e.action)
    .bind(target)
    .bind(Json(&e.detail))
    .bind(e.address.map(|a| a.to_string()))
    .execute(db)
    .await
    .map(drop)
}

pub async fn login_succeeded(
    db: impl PgExecutor<'_>,
    user: &User,
    address: Option<IpAddr>,
) -> sqlx::Result<()> {
    let e = Entry {
        actor_id: Some(user.id),
        actor_name: &user.username,
        action: "login.success",
        target: "",
        detail: json!({}),
        address,
    };
    record(db, &e).await
}

/// A failed sign-in under `typed`; `user` is the account of that name, if
/// there is one, so its failures show under it.
pub async fn login_failed(
    db: impl PgExecutor<'_>,
    typed: &str,
    user: Option<&User>,
    password_ok: bool,
    address: Option<IpAddr>,
) -> sqlx::Result<()> {
    let reason = match user {
        None => "unknown user",
        Some(u) if password_ok && !u.active => "account deactivated",
        Some(_) => "wrong password",
    };
    let e = Entry {
        actor_id: user.map(|u| u.id),
        actor_name: user.map_or(typed, |u| u.username.as_str()),
        action: "login.failure",
        target: "",
        detail: json!({ "reason": reason }),
        address,
    };
    record(db, &e).await
}

/// A sign-in refused by the throttle before the password was checked.
pub async fn login_refused(
    db: impl PgExecutor<'_>,
    typed: &str,
    address: Option<IpAddr>,
) -> sqlx::Result<()> {
    let e = Entry {
        actor_id: None,
        actor_name: typed,
        action: "login.failure",
        target: "",
        detail: json!({ "reason": "too many failures" }),
        address,
    };
    record(db, &e).await
}

#[derive(Debug, Clone, FromRow)]
pub struct Row {
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor_id: Option<UserId>,
    pub actor_name: String,
    pub action: String,
    pub target: String,
    pub detail: Json<Value>,
    pub address: Option<String>,
}

/// Where a page of the log starts: just older than this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: OffsetDateTime,
    pub id: i64,
}

impl Cursor {
    pub fn of(row: &Row) -> Self {
        Self {
            at: row.at,
            id: row.id,
        }
    }

    /// `<microseconds since 1970>.<id>`: exact, since PostgreSQL keeps
    /// microseconds.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.unix_timestamp_nanos() / 1000, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (micros, id) = s.split_once('.')?;
        let micros: i128 = micros.parse().ok()?;
        Some(Self {
            at: OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// Whose rows to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An account's rows, and rows under its name written without an
    /// account (sign-ins refused by the throttle before the lookup).
    Account(UserId, String),
    /// Rows under a name that has no account (case-insensitive).
    Name(String),
}

/// Which rows to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<Actor>,
    /// An exact action (`user.create`) or a whole area (`user`).
    pub action: Option<String>,
}

/// Up to `limit` rows, newest first, older than `before`.
pub async fn page(
    db: impl PgExecutor<'_>,
    filter: &Filter,
    before: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Row>> {
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT id, at, actor_id, actor_name, action, target, detail, host(address) AS address
         FROM audit_log WHERE true",
    );
    match &filter.actor {
        Some(Actor::Account(id, name)) => {
            q.push(" AND (actor_id = ")
                .push_bind(*id)
                .push(" OR (actor_id IS NULL AND lower(actor_name) = lower(")
                .push_bind(name.clone())
                .push(")))");
        }
        Some(Actor::Name(name)) => {
            q.push(" AND actor_id IS NULL AND lower(actor_name) = lower(")
                .push_bind(name.clone())
                .push(")");
        }
        None => {}
    }
    match &filter.action {
        Some(a) if a.contains('.') => {
            q.push(" AND action = ").push_bind(a.clone());
        }
        Some(area) => {
            q.push(" AND split_part(action, '.', 1) = ")
                .push_bind(area.clone());
        }
        None => {}
    }
    if let Some(c) = before {
        q.push(" AND (at, id) < (")
            .push_bind(c.at)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    q.push(" ORDER BY at DESC, id DESC LIMIT ").push_bind(limit);
    q.build_query_as().fetch_all(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_to_the_microsecond() {
        let c = Cursor {
            at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap(),
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "x.1", "1", "1.x", "99999999999999999999999999.1"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}

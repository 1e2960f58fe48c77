//! Database access: the pool, the migrations, and one module per aggregate.

pub mod api_tokens;
pub mod audit;
pub mod batches;
pub mod candidates;
pub mod catalogues;
pub mod deliveries;
pub mod files;
pub mod gold;
pub mod groups;
pub mod login_failures;
pub mod maintenance;
pub mod menus;
pub mod models;
pub mod notify_targets;
pub mod observations;
pub mod progress;
pub mod projects;
pub mod pulsars;
pub mod queue;
pub mod rating_changes;
pub mod ratings;
pub mod removal;
pub mod search;
pub mod sessions;
pub mod status;
pub mod tags;
pub mod trail;
pub mod users;
pub mod views;
pub mod voevent;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a connection before it is told the database
/// is unavailable. While PostgreSQL is down, sqlx keeps retrying the connect
/// until this runs out, so it is also how long an outage answer takes.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A pool that connects on first use, so the server starts (and reports the
/// outage on `/healthz`) even while the database is down.
pub fn lazy_pool(url: &str) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url).context("DATABASE_URL cannot be parsed")?;
    Ok(checked_when_idle(
        PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT),
    )
    .connect_lazy_with(opts))
}

/// A connection idle this long is checked before it is handed out.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// After a database restart every idle connection is dead, and handing one
/// out fails its request. Checking every connection before use prevents
/// that, but costs a round trip per acquire: under load, more than a
/// page's own statements. A restart takes PostgreSQL longer than
/// [`CHECK_AFTER_IDLE`], so a connection that was in use more recently than
/// that is one the restart would already have broken in use (and sqlx
/// closes it when it comes back); only the longer idle ones are checked.
fn checked_when_idle(options: PgPoolOptions) -> PgPoolOptions {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// The connection budgets the server draws from. Each kind of work has its
/// own pool and statement time-out, so that one kind cannot starve another:
/// slow reports and stalled exports never hold the connections that pages
/// need, and the health check always has a connection of its own.
#[derive(Clone)]
pub struct Pools {
    /// Pages and the upload API.
    pub web: PgPool,
    /// Reports and bulk admin changes, which legitimately take longer.
    pub long: PgPool,
    /// Sign-in attempts: a flood of them (each one a few statements and an
    /// audit row) waits here, not in front of the reviewers.
    pub auth: PgPool,
    pub exports: PgPool,
    pub health: PgPool,
    /// The notification worker: claims and outcomes, a statement each,
    /// never held across a delivery's network call.
    pub notify: PgPool,
}

impl Pools {
    /// Pools for the same database as `main`, with its settings, each under
    /// its own name (seen in `pg_stat_activity`) and time-out.
    pub fn derive(main: &PgPool, limits: &crate::config::Limits) -> Self {
        // No JIT: PostgreSQL compiles any query whose estimate passes
        // `jit_above_cost`, and a whole-survey export's estimate always does.
        // That took 0.4 s of a core before its first row, every time; four
        // exports starting together held both cores for a second while the
        // reviewers' ratings waited. The queries here are index walks that
        // JIT barely speeds up.
        let with = |name: &str, timeout: Duration| {
            (*main.connect_options())
                .clone()
                .application_name(name)
                .options([
                    ("statement_timeout", format!("{}ms", timeout.as_millis())),
                    ("jit", "off".to_string()),
                ])
        };
        // An export is bulk work that may run for minutes: one core each, so
        // a few of them cannot take every core from the pages' queries.
        //
        // And it is planned for the parameters it runs with. After five runs
        // PostgreSQL may switch a prepared statement to a generic plan, which
        // for "project = $1 ORDER BY id" walks the whole table in id order: a
        // 3-candidate project's export then took a second once another
        // project held 100k candidates. Planning each export afresh costs
        // about a millisecond.
        let export_opts = with("vetter export", limits.long_statement_timeout).options([
            ("max_parallel_workers_per_gather", "0"),
            ("plan_cache_mode", "force_custom_plan"),
        ]);
        // Fresh options with main's settings, not a clone: a clone would keep
        // any parent pool (as tests have), whose connections it would then
        // share, and the health check could again be starved.
        let main_opts = main.options();
        let base = checked_when_idle(
            PgPoolOptions::new()
                .max_connections(main_opts.get_max_connections())
                .acquire_timeout(main_opts.get_acquire_timeout())
                .idle_timeout(limits.pool_idle),
        );
        Self {
            web: base
                .clone()
                .connect_lazy_with(with("vetter", limits.statement_timeout)),
            auth: base
                .clone()
                .max_connections(AUTH_CONNECTIONS)
                .connect_lazy_with(with("vetter auth", limits.statement_timeout)),
            // A report holds at most two connections at once (the ratings
            // summary counts its totals alongside the rest), and no more
            // than `long_connections` reports run at once (their slots).
            long: base
                .clone()
                .max_connections(limits.long_connections * 2)
                .connect_lazy_with(with("vetter long", limits.long_statement_timeout)),
            exports: base
                .clone()
                .max_connections(limits.export_connections)
                .connect_lazy_with(export_opts),
            notify: base
                .clone()
                .max_connections(NOTIFY_CONNECTIONS)
                .connect_lazy_with(with("vetter notify", NOTIFY_STATEMENT_TIMEOUT)),
            // One connection; the probe bounds its own wait.
            health: base
                .max_connections(1)
                .connect_lazy_with(with("vetter health", Duration::from_secs(3))),
        }
    }
}

/// Enough for people signing in at once; a flood only queues longer.
const AUTH_CONNECTIONS: u32 = 4;

/// The worker's statements are single-row updates and a few counts.
const NOTIFY_CONNECTIONS: u32 = 2;
const NOTIFY_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the database cancelled the statement for running past its
/// `statement_timeout` (SQLSTATE 57014): the server is busy or the request
/// asks too much, not out of reach.
pub fn is_statement_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

/// The session store's own pool: the same database and settings, but its
/// writes (a session's flash and its ratings for undo, its expiry) skip
/// waiting for the disk. Losing the last moments of a session in a crash costs a reviewer
/// nothing that matters, and it takes one disk flush out of every
/// rate-and-next; ratings keep the main pool and wait for theirs.
pub fn session_pool(main: &PgPool) -> PgPool {
    let opts = (*main.connect_options())
        .clone()
        .options([("synchronous_commit", "off")]);
    main.options()
        .clone()
        .max_connections(8)
        .connect_lazy_with(opts)
}

/// Whether the error means the database could not be reached or dropped the
/// connection (down, restarting, failing over), rather than refusing the
/// statement: the request may succeed if tried again.
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_outage_sqlstate(&c)),
        _ => false,
    }
}

/// Class 08 is connection exceptions; 57P01..57P03 are the server shutting
/// down or not yet accepting connections.
fn is_outage_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// The same test for an error that only survives as text: the session store
/// turns sqlx errors into strings. Matches what sqlx and PostgreSQL print for
/// the cases `is_outage` accepts.
pub fn is_outage_text(msg: &str) -> bool {
    const SQLX: [&str; 6] = [
        "error communicating with database",
        "error occurred while attempting to establish a TLS connection",
        "encountered unexpected or invalid data",
        "pool timed out while waiting for an open connection",
        "attempted to acquire a connection on a closed pool",
        "attempted to communicate with a crashed background worker",
    ];
    // PostgreSQL's own words for 57P01, 57P02 and 57P03.
    const SERVER: [&str; 5] = [
        "terminating connection due to administrator command",
        "terminating connection because of crash of another server process",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
    ];
    SQLX.iter().any(|p| msg.starts_with(p))
        || msg
            .strip_prefix("error returned from database: ")
            .is_some_and(|m| SERVER.iter().any(|p| m.starts_with(p)))
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db)) => {
            anyhow::anyhow!("migration failed: {db}")
        }
        other => anyhow::Error::new(other).context("applying migrations"),
    })
}

/// Whether the database answers; bounded so a hung server cannot hang the
/// health check.
pub async fn ping(pool: &PgPool) -> bool {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool);
    matches!(
        tokio::time::timeout(Duration::from_secs(3), probe).await,
        Ok(Ok(1))
    )
}

/// A row's `ra` and `dec` columns as one checked position (a struct takes
/// it with `#[sqlx(flatten)]`). The tables' CHECKs keep them in range, so a
/// failure here means the schema and the domain disagree.
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for crate::domain::SkyPos {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        let ra: f64 = row.try_get("ra")?;
        let dec: f64 = row.try_get("dec")?;
        crate::domain::SkyPos::new(ra, dec).map_err(|e| sqlx::Error::ColumnDecode {
            index: "ra, dec".into(),
            source: e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The session store hands on only the text of sqlx's errors: if a sqlx
    /// upgrade rewords them, this fails rather than outages turning into 500s.
    #[test]
    fn outage_text_matches_what_sqlx_prints() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        for e in [
            sqlx::Error::Io(refused),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Protocol("unexpected end of stream".into()),
        ] {
            assert!(is_outage(&e), "{e}");
            assert!(is_outage_text(&e.to_string()), "{e}");
        }
        for e in [
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("x".into()),
        ] {
            assert!(!is_outage(&e), "{e}");
            assert!(!is_outage_text(&e.to_string()), "{e}");
        }
        assert!(is_outage_text(
            "error returned from database: terminating connection due to administrator command"
        ));
        assert!(!is_outage_text(
            "error returned from database: duplicate key value violates unique constraint"
        ));
    }

    #[test]
    fn outage_sqlstates() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03"] {
            assert!(is_outage_sqlstate(code), "{code}");
        }
        for code in ["23505", "40001", "57014", "42P01"] {
            assert!(!is_outage_sqlstate(code), "{code}");
        }
    }
}

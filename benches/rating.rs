//! Rate-and-next latency with concurrent reviewers (`make bench`).
//!
//! The target: with 1,000,000 candidates and 200,000 ratings in the
//! database and 32 reviewers rating at once on the 2-core machine, the
//! rate-and-next request (`POST /candidates/{id}/rating` from htmx, answered
//! with the next candidate's fragment) takes at most 5 ms at the median and
//! 20 ms at p99 on the server.
//!
//! The survey is generated in SQL into the database `vetter_bench_rating`
//! once and reused by later runs (a `bench_meta` row says which generator
//! made it; a different version or size regenerates it). The real server
//! then runs in-process; every reviewer has its own client and session,
//! logs in, sets a queue (its project; name, fewest-ratings or shuffled
//! order), and rates whatever the server shows next, over and over.
//!
//! Two phases: first "paced", each reviewer pausing a random 0.5–1.5 × the
//! think time between ratings as a person at a keyboard does (the target is
//! judged here); then "saturated", no pause at all, which shows the capacity
//! of the machine (there latency is mostly waiting for a core). Each phase
//! reports the server's own time per request (the `elapsed_ms` of its
//! request log) and the time the client saw over loopback. The ratings the
//! bench makes are removed again, so every run starts from the same survey.
//! Afterwards the database queries of one rate-and-next are timed one by one
//! on an idle server, per queue order, to show where the time goes.
//!
//! A missed target prints FAIL; only errors make the exit status non-zero.
//!
//! Settings (environment):
//!   DATABASE_URL                    superuser URL of a server with q3c in template1
//!   VETTER_BENCH_SECONDS            measured seconds of the paced phase (default 60)
//!   VETTER_BENCH_WARMUP             warm-up seconds before each phase (default 5)
//!   VETTER_BENCH_REVIEWERS          concurrent reviewers, at most 40 (default 32)
//!   VETTER_BENCH_THINK_MS           mean pause between ratings when paced (default 1000)
//!   VETTER_BENCH_SATURATE_SECONDS   measured seconds without pauses; 0 skips (default 20)
//!   VETTER_BENCH_POOL               the server's database connections (default 20)
//!   VETTER_BENCH_ORDERS             queue orders handed out in turn
//!                                   (default "name,name,fewest,shuffled"; also metric:KEY:asc|desc)
//!   VETTER_BENCH_RATING_CANDIDATES  survey size (default 1000000)
//!   VETTER_BENCH_RATING_RATINGS     ratings in the survey (default 200000)
//!   RUST_LOG                        set it to see the server's request log

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use reqwest::{redirect, Client, StatusCode};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{oneshot, Barrier};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use vetter::config::Config;
use vetter::db::candidates as cand;
use vetter::db::{queue, ratings};
use vetter::domain::rating::RatingInput;
use vetter::domain::UserId;
use vetter::startup::Application;

/// Bump whenever the generated survey changes: older databases are rebuilt.
const GENERATOR_VERSION: i32 = 1;
const DB_NAME: &str = "vetter_bench_rating";
const TARGET_MEDIAN_MS: f64 = 5.0;
const TARGET_P99_MS: f64 = 20.0;
/// Reviewer accounts in the survey: `reviewer01` …, all with this password.
const USERS: usize = 40;
const PASSWORD: &str = "bench-reviewer-password";
const PROJECTS: [&str; 3] = ["vast", "mkt-trap", "craco"];
const OBSERVATIONS: i64 = 300;
const METRICS_PER_PROJECT: i64 = 6;
const TAGS_PER_PROJECT: i64 = 10;
/// Every rating the bench makes carries a form key with this prefix, so it
/// can be told from the survey's and removed.
const RUN_KEY: &str = "bench-run:";
/// The request log's target and the path of a rating.
const LOG_TARGET: &str = "vetter::web::logging";
/// Rate-and-next sequences timed query by query after the load.
const PHASE_SAMPLES: usize = 200;
/// Ratings per queue order made by one reviewer alone after the load.
const SOLO_RATINGS: usize = 100;

struct Settings {
    seconds: u64,
    warmup: u64,
    reviewers: usize,
    think_ms: u64,
    saturate_seconds: u64,
    pool: u32,
    orders: Vec<String>,
    candidates: i64,
    ratings: i64,
}

fn env_num(key: &str, default: u64, min: u64, max: u64) -> anyhow::Result<u64> {
    match std::env::var(key) {
        Err(_) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => bail!("{key}={v:?}: expected a number from {min} to {max}"),
        },
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let orders: Vec<String> = std::env::var("VETTER_BENCH_ORDERS")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "name,name,fewest,shuffled".into())
            .split(',')
            .map(|o| o.trim().to_string())
            .collect();
        for o in &orders {
            vetter::domain::queue::QueueOrder::parse(o)
                .map_err(|e| anyhow::anyhow!("VETTER_BENCH_ORDERS: {e}"))?;
        }
        let s = Self {
            seconds: env_num("VETTER_BENCH_SECONDS", 60, 1, 3600)?,
            warmup: env_num("VETTER_BENCH_WARMUP", 5, 0, 600)?,
            reviewers: env_num("VETTER_BENCH_REVIEWERS", 32, 1, USERS as u64)? as usize,
            think_ms: env_num("VETTER_BENCH_THINK_MS", 1000, 0, 60_000)?,
            saturate_seconds: env_num("VETTER_BENCH_SATURATE_SECONDS", 20, 0, 3600)?,
            pool: env_num("VETTER_BENCH_POOL", 20, 1, 90)? as u32,
            orders,
            candidates: env_num(
                "VETTER_BENCH_RATING_CANDIDATES",
                1_000_000,
                1000,
                100_000_000,
            )? as i64,
            ratings: env_num("VETTER_BENCH_RATING_RATINGS", 200_000, 100, 100_000_000)? as i64,
        };
        ensure!(
            s.ratings <= s.candidates,
            "VETTER_BENCH_RATING_RATINGS must not exceed VETTER_BENCH_RATING_CANDIDATES"
        );
        Ok(s)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rating bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let admin_url = std::env::var("DATABASE_URL")
        .context("DATABASE_URL is not set: run `make bench`, or give a superuser URL")?;
    let admin = PgConnectOptions::from_str(&admin_url).context("DATABASE_URL is malformed")?;
    let server_log = ServerLog::install();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let media = std::env::temp_dir().join(format!("vetter-bench-rating-{}", std::process::id()));
    std::fs::create_dir_all(&media).with_context(|| format!("creating {}", media.display()))?;
    let result = rt.block_on(bench(&settings, &admin, &media, &server_log));
    let _ = std::fs::remove_dir_all(&media);
    result
}

// ---------------------------------------------------------------------------
// The server's own timing: its request log, captured.

/// One logged rating request: when it was logged, how long the server took.
#[derive(Clone, Copy)]
struct Logged {
    at: Instant,
    ms: f64,
    status: u64,
}

#[derive(Clone, Default)]
struct ServerLog(Arc<Mutex<Vec<Logged>>>);

impl ServerLog {
    /// Installs a subscriber that keeps the rating requests' `elapsed_ms`
    /// (and prints the log too when RUST_LOG is set).
    fn install() -> Self {
        let log = Self::default();
        let capture = log.clone().with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(LOG_TARGET, tracing::Level::INFO),
        );
        let print = std::env::var_os("RUST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_filter(tracing_subscriber::EnvFilter::from_default_env())
        });
        let _ = tracing_subscriber::registry()
            .with(capture)
            .with(print)
            .try_init();
        log
    }

    fn between(&self, from: Instant, to: Instant) -> Vec<Logged> {
        self.0
            .lock()
            .expect("the log lock")
            .iter()
            .filter(|l| l.at >= from && l.at < to)
            .copied()
            .collect()
    }
}

#[derive(Default)]
struct RequestFields {
    path: Option<String>,
    elapsed_ms: Option<f64>,
    status: Option<u64>,
}

impl Visit for RequestFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_ms" {
            self.elapsed_ms = Some(value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "status" {
            self.status = u64::try_from(value).ok();
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "path" {
            self.path = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "path" {
            self.path = Some(format!("{value:?}"));
        }
    }
}

fn is_rating_path(p: &str) -> bool {
    p.strip_prefix("/candidates/")
        .and_then(|rest| rest.strip_suffix("/rating"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

impl<S: tracing::Subscriber> Layer<S> for ServerLog {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut f = RequestFields::default();
        event.record(&mut f);
        if let (Some(path), Some(ms)) = (f.path, f.elapsed_ms) {
            if is_rating_path(&path) {
                let entry = Logged {
                    at: Instant::now(),
                    ms,
                    status: f.status.unwrap_or(0),
                };
                self.0.lock().expect("the log lock").push(entry);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The benchmark database: made once, then reused.

async fn admin_connection(admin: &PgConnectOptions) -> anyhow::Result<PgConnection> {
    PgConnection::connect_with(admin)
        .await
        .context("connecting to DATABASE_URL")
}

/// The bench database, ready: reused if it is this generator's survey of
/// this size, else made anew.
async fn prepare_database(s: &Settings, admin: &PgConnectOptions) -> anyhow::Result<PgPool> {
    let opts = admin.clone().database(DB_NAME);
    let mut c = admin_connection(admin).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DB_NAME)
            .fetch_one(&mut c)
            .await?;
    if exists {
        match reuse(s, &opts).await {
            Ok(Some((pool, when, secs))) => {
                println!(
                    "rating bench: reusing database {DB_NAME} ({} candidates, {} ratings; generated {when} in {secs:.0} s)",
                    thousands(s.candidates),
                    thousands(s.ratings)
                );
                c.close().await?;
                return Ok(pool);
            }
            Ok(None) => {}
            Err(e) => println!("rating bench: database {DB_NAME} cannot be reused ({e:#})"),
        }
    }
    println!(
        "rating bench: generating database {DB_NAME}: {} candidates, {} ratings (once; later runs reuse it)",
        thousands(s.candidates),
        thousands(s.ratings)
    );
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        .execute(&mut c)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {DB_NAME}"))
        .execute(&mut c)
        .await
        .with_context(|| format!("creating database {DB_NAME}"))?;
    c.close().await?;
    let pool = server_pool(s, &opts).await?;
    vetter::db::migrate(&pool).await?;
    generate(s, &opts).await?;
    Ok(pool)
}

async fn server_pool(s: &Settings, opts: &PgConnectOptions) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(s.pool)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts.clone())
        .await
        .with_context(|| format!("connecting to {DB_NAME}"))
}

/// The pool if the database holds this generator's survey of this size
/// (after removing what an earlier run left), with when and how fast it was
/// made; `None` (with the reason printed) if it must be made again.
async fn reuse(
    s: &Settings,
    opts: &PgConnectOptions,
) -> anyhow::Result<Option<(PgPool, String, f64)>> {
    let pool = server_pool(s, opts).await?;
    let meta: Option<(i32, i64, i64, String, f64)> = if sqlx::query_scalar::<_, bool>(
        "SELECT to_regclass('public.bench_meta') IS NOT NULL",
    )
    .fetch_one(&pool)
    .await?
    {
        sqlx::query_as(
            "SELECT version, candidates, ratings, to_char(generated_at, 'YYYY-MM-DD HH24:MI'), seconds
             FROM bench_meta",
        )
        .fetch_optional(&pool)
        .await?
    } else {
        None
    };
    let Some((version, n, r, when, secs)) = meta else {
        println!("rating bench: database {DB_NAME} has no complete survey");
        return Ok(None);
    };
    if (version, n, r) != (GENERATOR_VERSION, s.candidates, s.ratings) {
        println!(
            "rating bench: database {DB_NAME} holds generator {version}'s survey of {n} candidates and {r} ratings; \
             wanted generator {GENERATOR_VERSION}'s of {} and {}",
            s.candidates, s.ratings
        );
        return Ok(None);
    }
    // New migrations apply to it; an edited one makes it unusable.
    vetter::db::migrate(&pool).await?;
    clean_up(&pool).await?;
    let (candidates, ratings, users): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM candidates), (SELECT count(*) FROM ratings),
                (SELECT count(*) FROM users WHERE username LIKE 'reviewer%')",
    )
    .fetch_one(&pool)
    .await?;
    if (candidates, ratings, users) != (s.candidates, s.ratings, USERS as i64) {
        println!(
            "rating bench: database {DB_NAME} has {candidates} candidates, {ratings} ratings and {users} reviewers; \
             expected {}, {} and {USERS}",
            s.candidates, s.ratings
        );
        return Ok(None);
    }
    Ok(Some((pool, when, secs)))
}

/// Removes what a run adds (its ratings, with their tags and counts, and
/// the sessions), so every run starts from the same survey.
async fn clean_up(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(
        "WITH gone AS (DELETE FROM ratings WHERE idempotency_key LIKE $1 RETURNING candidate_id),
              n AS (SELECT candidate_id, count(*)::int AS k FROM gone GROUP BY candidate_id)
         UPDATE candidates c SET rating_count = c.rating_count - n.k FROM n WHERE c.id = n.candidate_id",
    )
    .bind(format!("{RUN_KEY}%"))
    .execute(pool)
    .await
    .context("removing the ratings of earlier runs")?;
    sqlx::query("DELETE FROM tower_sessions.session")
        .execute(pool)
        .await?;
    sqlx::raw_sql("VACUUM (ANALYZE) candidates, ratings, rating_tags, tower_sessions.session")
        .execute(pool)
        .await?;
    Ok(())
}

/// The SQL that makes the survey, step by step. Ids are given explicitly
/// (projects 1–3; project p's metrics (p−1)·6+1 …, tags (p−1)·10+1 …), so
/// the steps can refer to each other's rows by arithmetic.
fn generation_steps(n: i64, r: i64) -> Vec<(&'static str, String)> {
    // Candidates rated three, two and one times: r ratings in all.
    let s3 = r / 10;
    let s2 = r / 5;
    let s1 = r - 3 * s3 - 2 * s2;
    let rated = s3 + s2 + s1;
    let per_project = OBSERVATIONS / PROJECTS.len() as i64;
    let m = METRICS_PER_PROJECT;
    let t = TAGS_PER_PROJECT;
    vec![
        ("projects", format!(
            "INSERT INTO projects (id, slug, name, description, score_enabled) OVERRIDING SYSTEM VALUE VALUES
               (1, '{}', 'VAST transients', 'Variables and slow transients, ASKAP', false),
               (2, '{}', 'MeerKAT TraP', 'Transients pipeline on MeerKAT images', true),
               (3, '{}', 'CRACO', 'Fast imaging transients, ASKAP', false)",
            PROJECTS[0], PROJECTS[1], PROJECTS[2])),
        ("metric definitions", format!(
            "INSERT INTO metric_defs (id, project_id, key, label, unit, precision, position) OVERRIDING SYSTEM VALUE
             SELECT (p - 1) * {m} + d.k, p, d.key, d.label, d.unit, d.prec, d.k
             FROM generate_series(1, 3) p,
                  (VALUES (1, 'snr', 'S/N', '', 1), (2, 'chi_square', 'χ²', '', 2),
                          (3, 'md', 'Modulation index', '', 3), (4, 'eta', 'η', '', 2),
                          (5, 'v', 'V', '', 3), (6, 'peak_flux', 'Peak flux', 'mJy/beam', 2))
                  AS d(k, key, label, unit, prec)")),
        ("tags", format!(
            "INSERT INTO tags (id, project_id, name, description, position) OVERRIDING SYSTEM VALUE
             SELECT (p - 1) * {t} + g.k, p, g.name, 'Candidates that look like: ' || lower(g.name), g.k
             FROM generate_series(1, 3) p,
                  (VALUES (1, 'Pulsar'), (2, 'Noise'), (3, 'Sidelobe'), (4, 'Artefact'),
                          (5, 'Flare star'), (6, 'AGN'), (7, 'Scintillation'), (8, 'Moving object'),
                          (9, 'Extended'), (10, 'Interesting')) AS g(k, name)")),
        ("observations", format!(
            "INSERT INTO observations (id, project_id, external_id, start_time, pointing_ra, pointing_dec, metadata, content_hash)
             OVERRIDING SYSTEM VALUE
             SELECT i, (i - 1) / {per_project} + 1, 'SB' || (50000 + i),
                    timestamptz '2024-01-01 00:00Z' + i * interval '29 hours',
                    least(random() * 360, 359.999999), degrees(asin(2 * random() - 1)),
                    jsonb_build_object('duration_s', 36000, 'frequency_mhz', 887.5),
                    encode(sha256(convert_to('obs:' || i, 'UTF8')), 'hex')
             FROM generate_series(1, {OBSERVATIONS}) i")),
        ("beams", "INSERT INTO beams (id, observation_id, name, centre_ra, centre_dec, content_hash) OVERRIDING SYSTEM VALUE
             SELECT 2 * o.id - 1 + b, o.id, 'beam' || to_char(b, 'FM00'), o.pointing_ra,
                    greatest(-90, least(90, o.pointing_dec + b - 0.5)),
                    encode(sha256(convert_to('beam:' || o.id || ':' || b, 'UTF8')), 'hex')
             FROM observations o CROSS JOIN generate_series(0, 1) b"
            .to_string()),
        // Contiguous ids per observation, as uploads make them; positions
        // uniform on the sphere; IAU-style names from the position.
        ("candidates", format!(
            "INSERT INTO candidates (id, project_id, observation_id, beam_id, name, ra, dec, attributes,
                                     content_hash, created_at, updated_at, shuffle_key)
             OVERRIDING SYSTEM VALUE
             SELECT s.i, o.project_id, s.o, 2 * s.o - 1 + s.i % 2,
                    (ARRAY['VAST', 'MKT', 'CRACO'])[o.project_id::int] || ' J'
                      || to_char(s.cs / 360000, 'FM00') || to_char(s.cs / 6000 % 60, 'FM00')
                      || to_char(s.cs % 6000 / 100, 'FM00') || '.' || to_char(s.cs % 100, 'FM00')
                      || CASE WHEN s.dec < 0 THEN '-' ELSE '+' END
                      || to_char(s.ds / 36000, 'FM00') || to_char(s.ds / 600 % 60, 'FM00')
                      || to_char(s.ds % 600 / 10, 'FM00') || '.' || (s.ds % 10),
                    s.ra, s.dec,
                    CASE WHEN s.i % 4 = 0
                         THEN jsonb_build_object('deep_name', 'RACS J' || (s.i * 7919 % 1000000),
                                                 'nearest_known', 'PSR J' || (s.i % 2400))
                         ELSE '{{}}'::jsonb END,
                    encode(sha256(convert_to('cand:' || s.i, 'UTF8')), 'hex'),
                    o.start_time + interval '12 hours', o.start_time + interval '12 hours',
                    floor(random() * 2147483647)::int
             FROM (SELECT g.i, g.o, g.ra, g.dec,
                          floor(g.ra * 24000)::bigint AS cs, floor(abs(g.dec) * 36000)::bigint AS ds
                   FROM (SELECT i, (i - 1) * {OBSERVATIONS} / {n} + 1 AS o,
                                least(random() * 360, 359.999999) AS ra,
                                degrees(asin(2 * random() - 1)) AS dec
                         FROM generate_series(1::bigint, {n}) i OFFSET 0) g) s
             JOIN observations o ON o.id = s.o")),
        // About 5 of the project's 6 metrics per candidate; a few NaN.
        ("candidate metrics", format!(
            "INSERT INTO candidate_metrics (candidate_id, metric_id, value)
             SELECT c.id, (c.project_id - 1) * {m} + k,
                    CASE WHEN random() < 0.0005 THEN 'NaN'::float8
                         ELSE CASE k WHEN 1 THEN 5 - 4 * ln(1 - random())
                                     WHEN 2 THEN 200 * random() * random()
                                     WHEN 3 THEN 0.6 * random()
                                     WHEN 4 THEN -3 * ln(1 - random())
                                     WHEN 5 THEN 0.5 * random()
                                     ELSE exp(7 * random()) END END
             FROM candidates c CROSS JOIN LATERAL generate_series(1, {m}) k
             WHERE k <> c.id % 7 + 1")),
        ("candidate positions", "INSERT INTO candidate_positions (candidate_id, kind, ra, dec)
             SELECT id, 'deep',
                    CASE WHEN ra + d >= 0 AND ra + d < 360 THEN ra + d ELSE ra END,
                    greatest(-90, least(90, dec + (random() - 0.5) / 1800))
             FROM (SELECT id, ra, dec, (random() - 0.5) / 1800 AS d FROM candidates WHERE id % 2 = 0 OFFSET 0) c"
            .to_string()),
        ("light curves", "INSERT INTO light_curves (candidate_id, unit, times, flux, flux_err, content_hash)
             SELECT c.id, 'mJy/beam',
                    ARRAY(SELECT o.start_time + k * interval '10 minutes' FROM generate_series(0, 11) k),
                    ARRAY(SELECT 1 + 5 * random() + 0 * c.id FROM generate_series(0, 11) k),
                    ARRAY(SELECT 0.1 + 0.2 * random() + 0 * c.id FROM generate_series(0, 11) k),
                    encode(sha256(convert_to('lc:' || c.id, 'UTF8')), 'hex')
             FROM candidates c JOIN observations o ON o.id = c.observation_id
             WHERE c.id % 10 = 3"
            .to_string()),
        // A FITS cutout and its rendered PNG per candidate.
        ("files", "INSERT INTO files (id, candidate_id, role, content_type, size_bytes, sha256, storage_path,
                                original_name, derived_from)
             OVERRIDING SYSTEM VALUE
             SELECT f.id, f.cid, f.role, f.ct, f.size, f.sha,
                    'objects/' || left(f.sha, 2) || '/' || f.sha || f.ext, f.orig, f.derived
             FROM (SELECT 2 * c.id - 1 + k AS id, c.id AS cid,
                          CASE k WHEN 0 THEN 'deep_cutout' ELSE 'deep_cutout_png' END AS role,
                          CASE k WHEN 0 THEN 'application/fits' ELSE 'image/png' END AS ct,
                          CASE k WHEN 0 THEN 20160 ELSE 3000 + c.id % 4000 END AS size,
                          CASE k WHEN 0 THEN '.fits' ELSE '.png' END AS ext,
                          CASE k WHEN 0 THEN 'deep_cutout.fits' ELSE '' END AS orig,
                          CASE k WHEN 0 THEN NULL ELSE 2 * c.id - 1 END AS derived,
                          encode(sha256(convert_to('file:' || (2 * c.id - 1 + k), 'UTF8')), 'hex') AS sha
                   FROM candidates c CROSS JOIN LATERAL generate_series(0, 1) k OFFSET 0) f"
            .to_string()),
        ("rated candidates", format!(
            "CREATE TEMP TABLE bench_rated AS
             SELECT (row_number() OVER () - 1)::bigint AS t, id AS cid, project_id,
                    (CASE WHEN random() < 0.1 THEN 'real' WHEN random() < 0.78 THEN 'not_real' ELSE 'unsure' END)::verdict AS truth
             FROM (SELECT id, project_id FROM candidates ORDER BY random() LIMIT {rated}) x")),
        // Distinct reviewers per candidate: (t + j) mod 40 for j < 3.
        ("ratings", format!(
            "INSERT INTO ratings (candidate_id, user_id, verdict, score, notes, rated_at)
             SELECT b.cid, (b.t + j) % {USERS} + 1,
                    CASE WHEN random() < 0.85 THEN b.truth
                         ELSE (ARRAY['real', 'not_real', 'unsure']::verdict[])[1 + floor(random() * 3)::int] END,
                    CASE WHEN b.project_id = 2 THEN (1 + floor(random() * 5))::smallint END,
                    CASE WHEN random() < 0.1
                         THEN (ARRAY['faint', 'edge of the field', 'sidelobe of a bright source',
                                     'check the light curve', 'probably scintillation'])[1 + floor(random() * 5)::int]
                         ELSE '' END,
                    now() - random() * interval '365 days'
             FROM bench_rated b CROSS JOIN generate_series(0, 2) j
             WHERE j < CASE WHEN b.t < {s3} THEN 3 WHEN b.t < {} THEN 2 ELSE 1 END", s3 + s2)),
        ("rating tags", format!(
            "INSERT INTO rating_tags (user_id, candidate_id, tag_id)
             SELECT r.user_id, r.candidate_id, (c.project_id - 1) * {t} + 1 + (h.off + 3 * k) % 10
             FROM ratings r JOIN candidates c ON c.id = r.candidate_id
             CROSS JOIN LATERAL (SELECT ((r.candidate_id * 7 + r.user_id * 13) % 100)::int AS off) h
             CROSS JOIN generate_series(0, 1) k
             WHERE h.off < 35 AND (k = 0 OR h.off < 10)")),
        ("rating history", "INSERT INTO rating_history (candidate_id, user_id, verdict, score, notes, rated_at, replaced_at)
             SELECT r.candidate_id, r.user_id,
                    (ARRAY['real', 'not_real', 'unsure']::verdict[])[1 + (r.candidate_id % 3)::int],
                    r.score, 'first impression', r.rated_at - interval '3 days', r.rated_at
             FROM ratings r WHERE (r.candidate_id + r.user_id) % 50 = 0"
            .to_string()),
        ("rating counts", "UPDATE candidates c SET rating_count = x.k
             FROM (SELECT candidate_id, count(*)::int AS k FROM ratings GROUP BY candidate_id) x
             WHERE c.id = x.candidate_id"
            .to_string()),
        ("identity sequences", "SELECT setval(pg_get_serial_sequence(tbl, 'id'), mx)
             FROM (VALUES ('users', (SELECT max(id) FROM users)), ('projects', (SELECT max(id) FROM projects)),
                          ('metric_defs', (SELECT max(id) FROM metric_defs)), ('tags', (SELECT max(id) FROM tags)),
                          ('observations', (SELECT max(id) FROM observations)), ('beams', (SELECT max(id) FROM beams)),
                          ('candidates', (SELECT max(id) FROM candidates)), ('files', (SELECT max(id) FROM files))) v(tbl, mx)"
            .to_string()),
    ]
}

/// Tables whose plain indexes are dropped for the bulk load and rebuilt
/// after it (much faster than keeping them up to date row by row).
const BULK_TABLES: [&str; 8] = [
    "candidates",
    "candidate_metrics",
    "candidate_positions",
    "light_curves",
    "files",
    "ratings",
    "rating_tags",
    "rating_history",
];

async fn generate(s: &Settings, opts: &PgConnectOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut c = PgConnection::connect_with(opts).await?;
    // A superuser session: foreign-key triggers off (the rows are consistent
    // by construction), no waiting for the disk, room for index builds.
    for set in [
        "SET session_replication_role = replica",
        "SET synchronous_commit = off",
        "SET maintenance_work_mem = '1GB'",
        "SET work_mem = '256MB'",
        "SELECT setseed(0.20261123)",
    ] {
        sqlx::query(set).execute(&mut c).await?;
    }
    let step =
        |name: &str, t: Instant| println!("  {name:<22} {:6.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let hash =
        tokio::task::spawn_blocking(|| vetter::auth::password::hash_blocking(PASSWORD)).await??;
    sqlx::query(
        "INSERT INTO users (id, username, password_hash) OVERRIDING SYSTEM VALUE
         SELECT i, 'reviewer' || to_char(i, 'FM00'), $1 FROM generate_series(1, $2) i",
    )
    .bind(&hash)
    .bind(USERS as i32)
    .execute(&mut c)
    .await?;
    step("users", t);

    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
         FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
         WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
    )
    .bind(&BULK_TABLES[..])
    .fetch_all(&mut c)
    .await?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX {name}"))
            .execute(&mut c)
            .await?;
    }

    for (name, sql) in generation_steps(s.candidates, s.ratings) {
        let t = Instant::now();
        sqlx::query(&sql)
            .execute(&mut c)
            .await
            .with_context(|| format!("generating {name}"))?;
        step(name, t);
    }
    let t = Instant::now();
    for (name, def) in &indexes {
        sqlx::query(def)
            .execute(&mut c)
            .await
            .with_context(|| format!("rebuilding index {name}"))?;
    }
    step(&format!("{} indexes", indexes.len()), t);
    let t = Instant::now();
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(&mut c).await?;
    sqlx::raw_sql("CHECKPOINT").execute(&mut c).await?;
    step("vacuum, analyze", t);

    let secs = started.elapsed().as_secs_f64();
    sqlx::query(
        "CREATE TABLE bench_meta (version integer NOT NULL, candidates bigint NOT NULL, ratings bigint NOT NULL,
                                  generated_at timestamptz NOT NULL DEFAULT now(), seconds double precision NOT NULL)",
    )
    .execute(&mut c)
    .await?;
    sqlx::query(
        "INSERT INTO bench_meta (version, candidates, ratings, seconds) VALUES ($1, $2, $3, $4)",
    )
    .bind(GENERATOR_VERSION)
    .bind(s.candidates)
    .bind(s.ratings)
    .bind(secs)
    .execute(&mut c)
    .await?;
    let sizes: (i64, i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM candidate_metrics), (SELECT count(*) FROM rating_tags),
                (SELECT count(*) FROM rating_history), pg_size_pretty(pg_database_size(current_database()))",
    )
    .fetch_one(&mut c)
    .await?;
    c.close().await?;
    println!(
        "rating bench: generated in {secs:.1} s: {} candidates, {} metric values, {} ratings, {} rating tags, \
         {} history rows; {} on disk",
        thousands(s.candidates),
        thousands(sizes.0),
        thousands(s.ratings),
        thousands(sizes.1),
        thousands(sizes.2),
        sizes.3
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The load.

/// Stops the server when dropped.
struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    async fn start(pool: &PgPool, media: &std::path::Path) -> anyhow::Result<Self> {
        let config = Config::for_tests("postgres://unused", media.to_path_buf());
        let app = Application::build(config, pool.clone()).await?;
        let (tx, rx) = oneshot::channel::<()>();
        let base = format!("http://127.0.0.1:{}", app.port());
        let task = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Ok(Self {
            base,
            stop: Some(tx),
            task: Some(task),
        })
    }

    async fn shut_down(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.context("the server task")??;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn bench(
    s: &Settings,
    admin: &PgConnectOptions,
    media: &std::path::Path,
    log: &ServerLog,
) -> anyhow::Result<()> {
    let pool = prepare_database(s, admin).await?;
    let server = Server::start(&pool, media).await?;
    let result = measure(s, &pool, &server, log).await;
    server.shut_down().await?;
    let cleaned = clean_up(&pool).await;
    pool.close().await;
    result.and(cleaned)
}

/// One reviewer's settings.
#[derive(Clone)]
struct Assignment {
    username: String,
    project: usize,
    order: String,
}

fn assignments(s: &Settings) -> Vec<Assignment> {
    (0..s.reviewers)
        .map(|i| Assignment {
            username: format!("reviewer{:02}", i + 1),
            project: i % PROJECTS.len(),
            order: s.orders[i % s.orders.len()].clone(),
        })
        .collect()
}

/// One timed rate-and-next, as the client saw it.
struct Sample {
    start: Instant,
    ms: f64,
    order: usize,
}

struct Outcome {
    samples: Vec<Sample>,
    errors: Vec<(Instant, String)>,
    /// The reviewer, for the measurements one at a time afterwards.
    solo: Solo,
}

/// A signed-in reviewer with its own generator and count of ratings.
struct Solo {
    me: Reviewer,
    rng: Rng,
    n: u64,
    a: Assignment,
}

impl Solo {
    async fn rate(&mut self) -> anyhow::Result<f64> {
        self.n += 1;
        let key = format!("{RUN_KEY}{}-{}", self.a.username, self.n);
        self.me.rate(&mut self.rng, self.a.project, &key).await
    }
}

/// What the controller tells the reviewers: how long to pause, when to stop.
struct Control {
    think_ms: AtomicU64,
    stop: AtomicBool,
}

/// A small, fast, seedable generator for pauses and choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The text of `attr="…"` after the first `marker` in `html`.
fn attr_after<'a>(html: &'a str, marker: &str, attr: &str) -> Option<&'a str> {
    let from = html.find(marker)? + marker.len();
    let rest = &html[from..];
    let key = format!("{attr}=\"");
    let start = rest.find(&key)? + key.len();
    let end = rest[start..].find('"')?;
    Some(&rest[start..start + end])
}

fn candidate_id(html: &str) -> Option<i64> {
    attr_after(html, "id=\"candidate\"", "data-candidate-id")?
        .parse()
        .ok()
}

fn csrf_token(html: &str) -> Option<String> {
    attr_after(html, "name=\"csrf_token\"", "value").map(str::to_string)
}

/// A logged-in reviewer with its queue set, looking at its first candidate.
struct Reviewer {
    client: Client,
    base: String,
    token: String,
    current: i64,
}

impl Reviewer {
    async fn sign_in(base: &str, a: &Assignment) -> anyhow::Result<Self> {
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .cookie_store(true)
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()?;
        let page = client.get(format!("{base}/login")).send().await?;
        let token = csrf_token(&page.text().await?).context("no csrf_token on /login")?;
        let r = client
            .post(format!("{base}/login"))
            .form(&[
                ("username", a.username.as_str()),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await?;
        ensure!(
            r.status() == StatusCode::SEE_OTHER,
            "login of {}: {}",
            a.username,
            r.status()
        );
        let page = client.get(format!("{base}/account")).send().await?;
        let token = csrf_token(&page.text().await?).context("no csrf_token on /account")?;
        let r = client
            .post(format!("{base}/queue"))
            .form(&[
                ("project", PROJECTS[a.project]),
                ("order", &a.order),
                ("mode", "unrated_by_me"),
                ("csrf_token", &token),
            ])
            .send()
            .await?;
        let status = r.status();
        ensure!(
            status == StatusCode::SEE_OTHER,
            "setting the queue of {}: {status}: {}",
            a.username,
            r.text().await.unwrap_or_default()
        );
        let mut me = Self {
            client,
            base: base.to_string(),
            token,
            current: 0,
        };
        me.current = me.first().await?;
        Ok(me)
    }

    /// The first candidate of the queue, as htmx asks for it.
    async fn first(&self) -> anyhow::Result<i64> {
        let r = self
            .client
            .get(format!("{}/next", self.base))
            .header("HX-Request", "true")
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        ensure!(status == StatusCode::OK, "GET /next: {status}: {body}");
        candidate_id(&body).context("GET /next showed no candidate (empty queue?)")
    }

    /// Rates the current candidate; returns the milliseconds it took and
    /// moves on to the candidate shown next.
    async fn rate(&mut self, rng: &mut Rng, project: usize, key: &str) -> anyhow::Result<f64> {
        let u = rng.unit();
        let verdict = if u < 0.7 {
            "not_real"
        } else if u < 0.8 {
            "real"
        } else {
            "unsure"
        };
        let mut form: Vec<(&str, String)> = vec![
            ("verdict", verdict.into()),
            ("key", key.into()),
            (
                "notes",
                if rng.unit() < 0.1 {
                    "checked the light curve".into()
                } else {
                    String::new()
                },
            ),
        ];
        if rng.unit() < 0.2 {
            let tag = project as i64 * TAGS_PER_PROJECT + 1 + (rng.next() % 10) as i64;
            form.push(("tags", tag.to_string()));
        }
        let body = serde_urlencoded::to_string(&form)?;
        let url = format!("{}/candidates/{}/rating", self.base, self.current);
        let t = Instant::now();
        let r = self
            .client
            .post(&url)
            .header("HX-Request", "true")
            .header("X-CSRF-Token", &self.token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if status != StatusCode::OK {
            // Carry on from whatever the queue offers now.
            let id = self.current;
            self.current = self.first().await?;
            bail!("POST /candidates/{id}/rating: {status}: {text}");
        }
        self.current = candidate_id(&text).with_context(|| {
            format!(
                "the answer to rating {} shows no candidate: {}",
                self.current,
                text.chars().take(300).collect::<String>()
            )
        })?;
        Ok(ms)
    }
}

async fn reviewer_loop(
    index: usize,
    a: Assignment,
    order: usize,
    base: String,
    ready: Arc<Barrier>,
    control: Arc<Control>,
) -> anyhow::Result<Outcome> {
    let signed_in = Reviewer::sign_in(&base, &a).await;
    // Wait for everyone even on failure, so the others are not stuck.
    ready.wait().await;
    let mut solo = Solo {
        me: signed_in?,
        rng: Rng(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) * 0x2545_F491_4F6C_DD1D)),
        n: 0,
        a,
    };
    let (mut samples, mut errors) = (Vec::new(), Vec::new());
    while !control.stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        match solo.rate().await {
            Ok(ms) => samples.push(Sample { start, ms, order }),
            Err(e) => errors.push((start, format!("{}: {e:#}", solo.a.username))),
        }
        let think = control.think_ms.load(Ordering::Relaxed);
        if think > 0 {
            let pause = think as f64 * (0.5 + solo.rng.unit());
            tokio::time::sleep(Duration::from_secs_f64(pause / 1000.0)).await;
        }
    }
    Ok(Outcome {
        samples,
        errors,
        solo,
    })
}

/// The floor: one reviewer per order rating alone, nothing else running.
async fn one_at_a_time(
    pool: &PgPool,
    solos: &mut [Solo],
    orders: &[String],
    log: &ServerLog,
    errors: &mut Vec<(Instant, String)>,
) {
    println!();
    println!("one reviewer at a time, {SOLO_RATINGS} ratings each, no pause (the floor without contention):");
    for order in orders {
        let Some(solo) = solos.iter_mut().find(|s| &s.a.order == order) else {
            continue;
        };
        let (from, cpu) = (Instant::now(), cpu_snapshot(pool).await);
        let mut client = Vec::with_capacity(SOLO_RATINGS);
        for _ in 0..SOLO_RATINGS {
            let start = Instant::now();
            match solo.rate().await {
                Ok(ms) => client.push(ms),
                Err(e) => errors.push((start, format!("{}: {e:#}", solo.a.username))),
            }
        }
        let mut server: Vec<f64> = log
            .between(from, Instant::now())
            .iter()
            .map(|l| l.ms)
            .collect();
        let (own, db) = cpu_used(&cpu, &cpu_snapshot(pool).await);
        let n = client.len().max(1) as f64;
        println!("  {order:<12} server {}", Stats::of(&mut server));
        println!("  {:<12} client {}", "", Stats::of(&mut client));
        println!(
            "  {:<12} CPU per rating {:.1} ms here, {:.1} ms in PostgreSQL",
            "",
            own / n,
            db / n
        );
    }
}

/// A measured window of the load.
struct Window {
    name: String,
    from: Instant,
    to: Instant,
    /// CPU milliseconds used meanwhile: this process, the database's backends.
    cpu: (f64, f64),
}

/// CPU milliseconds a process has used, from /proc (user + system).
fn process_cpu_ms(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // /proc counts in USER_HZ, 100 on Linux.
    Some(ticks * 10.0)
}

/// CPU used so far by this process and by each backend serving the bench
/// database (PostgreSQL runs on this machine).
async fn cpu_snapshot(pool: &PgPool) -> (f64, BTreeMap<i32, f64>) {
    let own = process_cpu_ms("self").unwrap_or(f64::NAN);
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let backends = pids
        .into_iter()
        .filter_map(|p| process_cpu_ms(&p.to_string()).map(|ms| (p, ms)))
        .collect();
    (own, backends)
}

/// CPU used between two snapshots: (this process, the backends).
fn cpu_used(before: &(f64, BTreeMap<i32, f64>), after: &(f64, BTreeMap<i32, f64>)) -> (f64, f64) {
    let db = after
        .1
        .iter()
        .map(|(pid, ms)| ms - before.1.get(pid).copied().unwrap_or(0.0))
        .sum();
    (after.0 - before.0, db)
}

async fn measure(
    s: &Settings,
    pool: &PgPool,
    server: &Server,
    log: &ServerLog,
) -> anyhow::Result<()> {
    let plan = assignments(s);
    let mut orders: Vec<String> = Vec::new();
    for a in &plan {
        if !orders.contains(&a.order) {
            orders.push(a.order.clone());
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    // TLS to a database on the same machine costs CPU on both ends.
    let tls: bool = sqlx::query_scalar(
        "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
    )
    .fetch_one(pool)
    .await?;
    println!(
        "rating bench: {} reviewers ({}) over {} projects; server pool {} connections ({}); \
         client in-process on {cores} cores; load average {}",
        s.reviewers,
        orders
            .iter()
            .map(|o| format!("{o} ×{}", plan.iter().filter(|a| &a.order == o).count()))
            .collect::<Vec<_>>()
            .join(", "),
        PROJECTS.len(),
        s.pool,
        if tls { "TLS" } else { "no TLS" },
        load_average()
    );

    let control = Arc::new(Control {
        think_ms: AtomicU64::new(s.think_ms),
        stop: AtomicBool::new(false),
    });
    let ready = Arc::new(Barrier::new(s.reviewers + 1));
    let t = Instant::now();
    let tasks: Vec<_> = plan
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let order = orders.iter().position(|o| o == &a.order).unwrap_or(0);
            tokio::spawn(reviewer_loop(
                i,
                a.clone(),
                order,
                server.base.clone(),
                ready.clone(),
                control.clone(),
            ))
        })
        .collect();
    ready.wait().await;
    println!(
        "rating bench: reviewers signed in and queued in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut windows = Vec::new();
    tokio::time::sleep(Duration::from_secs(s.warmup)).await;
    let (from, cpu) = (Instant::now(), cpu_snapshot(pool).await);
    tokio::time::sleep(Duration::from_secs(s.seconds)).await;
    windows.push(Window {
        name: format!(
            "paced (pause {:.2}–{:.2} s between ratings)",
            s.think_ms as f64 * 0.5 / 1000.0,
            s.think_ms as f64 * 1.5 / 1000.0
        ),
        from,
        to: Instant::now(),
        cpu: cpu_used(&cpu, &cpu_snapshot(pool).await),
    });
    if s.saturate_seconds > 0 {
        control.think_ms.store(0, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(s.warmup.min(3))).await;
        let (from, cpu) = (Instant::now(), cpu_snapshot(pool).await);
        tokio::time::sleep(Duration::from_secs(s.saturate_seconds)).await;
        windows.push(Window {
            name: "saturated (no pause)".into(),
            from,
            to: Instant::now(),
            cpu: cpu_used(&cpu, &cpu_snapshot(pool).await),
        });
    }
    control.stop.store(true, Ordering::Relaxed);

    let mut samples = Vec::new();
    let mut errors = Vec::new();
    let mut solos = Vec::new();
    for task in tasks {
        let out = task.await.context("a reviewer task")??;
        samples.extend(out.samples);
        errors.extend(out.errors);
        solos.push(out.solo);
    }

    let mut verdict = None;
    for w in &windows {
        let secs = (w.to - w.from).as_secs_f64();
        let in_window = |at: Instant| at >= w.from && at < w.to;
        let mut client: Vec<f64> = samples
            .iter()
            .filter(|x| in_window(x.start))
            .map(|x| x.ms)
            .collect();
        let errs = errors.iter().filter(|e| in_window(e.0)).count();
        let logged = log.between(w.from, w.to);
        let bad_status = logged.iter().filter(|l| l.status != 200).count();
        let mut server_ms: Vec<f64> = logged.iter().map(|l| l.ms).collect();
        println!();
        println!(
            "{}, {secs:.0} s: {} ratings, {:.1} ratings/s, {errs} errors ({bad_status} non-200 in the server log)",
            w.name,
            thousands(client.len() as i64),
            server_ms.len().max(client.len()) as f64 / secs
        );
        let server_stats = Stats::of(&mut server_ms);
        let done = server_ms.len().max(client.len()).max(1) as f64;
        let per = (w.cpu.0 + w.cpu.1) / done;
        println!(
            "  CPU per rating: {:.1} ms in this process (server and clients), {:.1} ms in PostgreSQL backends; \
             {:.0}% of {cores} cores busy with the bench; {per:.1} ms/rating means at most ~{:.0} ratings/s",
            w.cpu.0 / done,
            w.cpu.1 / done,
            (w.cpu.0 + w.cpu.1) / (secs * 10.0 * cores.max(1) as f64),
            1000.0 * cores.max(1) as f64 / per
        );
        println!("  server (request log)  {server_stats}");
        println!("  client (loopback)     {}", Stats::of(&mut client));
        for (k, o) in orders.iter().enumerate() {
            let mut v: Vec<f64> = samples
                .iter()
                .filter(|x| x.order == k && in_window(x.start))
                .map(|x| x.ms)
                .collect();
            println!("    client, {o:<12}  {}", Stats::of(&mut v));
        }
        if verdict.is_none() {
            let st = if server_stats.n > 0 {
                server_stats
            } else {
                Stats::of(&mut client)
            };
            verdict = Some(st);
        }
    }
    println!("  load average now {}", load_average());

    if !errors.is_empty() {
        println!();
        println!("{} requests failed; the first ones:", errors.len());
        for (_, e) in errors.iter().take(3) {
            println!("  {}", e.chars().take(800).collect::<String>());
        }
    }

    one_at_a_time(pool, &mut solos, &orders, log, &mut errors).await;
    phases(pool, &plan, &orders).await?;

    println!();
    if let Some(st) = verdict {
        let pass = st.median <= TARGET_MEDIAN_MS && st.p99 <= TARGET_P99_MS && errors.is_empty();
        println!(
            "rate-and-next, {} reviewers, {} candidates, {} ratings: median {:.1} ms, p99 {:.1} ms \
             (targets {TARGET_MEDIAN_MS:.0} / {TARGET_P99_MS:.0}, server time, paced): {}",
            s.reviewers,
            thousands(s.candidates),
            thousands(s.ratings),
            st.median,
            st.p99,
            if pass { "PASS" } else { "FAIL" }
        );
    }
    ensure!(errors.is_empty(), "{} requests failed", errors.len());
    Ok(())
}

#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    median: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Stats {
    fn of(v: &mut [f64]) -> Self {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if v.is_empty() {
                f64::NAN
            } else {
                let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
                v[rank - 1]
            }
        };
        Self {
            n: v.len(),
            median: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: v.last().copied().unwrap_or(f64::NAN),
            mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:6.2} ms  p90 {:6.2}  p99 {:6.2}  max {:7.2}  mean {:6.2}  (n = {})",
            self.median, self.p90, self.p99, self.max, self.mean, self.n
        )
    }
}

// ---------------------------------------------------------------------------
// Where the time goes: the queries of one rate-and-next, one by one.

async fn phases(pool: &PgPool, plan: &[Assignment], orders: &[String]) -> anyhow::Result<()> {
    println!();
    println!(
        "queries of one rate-and-next, idle server, one connection, {PHASE_SAMPLES} candidates per queue order \
         (median / p99 ms; the request runs queue::load 2×, queue::next 2×, detail 3×, files 2×, tags 2×):"
    );
    let mut conn = pool.acquire().await?;
    for order in orders {
        let Some(a) = plan.iter().find(|a| &a.order == order) else {
            continue;
        };
        let (user,): (i64,) = sqlx::query_as("SELECT id FROM users WHERE username = $1")
            .bind(&a.username)
            .fetch_one(&mut *conn)
            .await?;
        let user = UserId(user);
        let q = queue::load(&mut conn, user).await?;
        let Some(mut current) = queue::next(&mut conn, user, &q, None).await? else {
            continue;
        };
        let mut times: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        let mut clock;
        let mut lap = |name: &'static str, clock: &mut Instant| {
            times
                .entry(name)
                .or_default()
                .push(clock.elapsed().as_secs_f64() * 1000.0);
            *clock = Instant::now();
        };
        for _ in 0..PHASE_SAMPLES {
            clock = Instant::now();
            let d = cand::detail(&mut conn, current)
                .await?
                .context("candidate vanished")?;
            lap("candidates::detail", &mut clock);
            let allowed: Vec<i64> = cand::tags(&mut conn, d.project_id)
                .await?
                .into_iter()
                .map(|t| t.0)
                .collect();
            lap("candidates::tags", &mut clock);
            let input = RatingInput::parse("not_real", &[], "", None, &allowed, d.score_enabled)
                .map_err(|e| anyhow::anyhow!(e))?;
            let mut tx = conn.begin().await?;
            ratings::save(&mut tx, user, current, &input, None).await?;
            lap("ratings::save (no commit)", &mut clock);
            tx.rollback().await?;
            let mut tx = conn.begin().await?;
            sqlx::query("UPDATE bench_meta SET version = version")
                .execute(&mut *tx)
                .await?;
            clock = Instant::now();
            tx.commit().await?;
            lap("commit (WAL flush)", &mut clock);
            let q = queue::load(&mut conn, user).await?;
            lap("queue::load", &mut clock);
            let next = queue::next(&mut conn, user, &q, Some(current)).await?;
            lap("queue::next", &mut clock);
            let Some(next) = next else { break };
            let d = cand::detail(&mut conn, next)
                .await?
                .context("candidate vanished")?;
            lap("candidates::detail", &mut clock);
            cand::metrics(&mut conn, next, d.project_id).await?;
            lap("candidates::metrics", &mut clock);
            cand::positions(&mut conn, next).await?;
            lap("candidates::positions", &mut clock);
            cand::files(&mut conn, &d).await?;
            lap("candidates::files", &mut clock);
            cand::light_curve(&mut conn, next).await?;
            lap("candidates::light_curve", &mut clock);
            ratings::mine(&mut conn, user, next).await?;
            lap("ratings::mine", &mut clock);
            current = next;
        }
        let mut line = String::new();
        let mut total = 0.0;
        for (name, v) in &mut times {
            let st = Stats::of(v);
            total += st.mean;
            let _ = write!(line, "\n    {name:<26} {:6.2} / {:6.2}", st.median, st.p99);
        }
        println!("  {order} (sum of means {total:.2} ms, each query counted once):{line}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------

/// 1234567 → "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The 1-, 5- and 15-minute load averages, for judging how noisy a run was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

//! What the benches share: the synthetic survey in the database
//! `vetter_bench_rating` (made once in SQL, then reused), the in-process
//! server, and a signed-in reviewer that rates what the queue shows.
//!
//! Each bench uses part of this, hence the allowance for unused items.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use anyhow::{bail, ensure, Context};
use reqwest::{redirect, Client, StatusCode};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::oneshot;
use vetter::config::Config;
use vetter::startup::Application;

/// The survey's size, and the server's connections to it.
#[derive(Clone, Copy)]
pub struct Size {
    pub candidates: i64,
    pub ratings: i64,
    pub pool: u32,
}

impl Size {
    /// From VETTER_BENCH_RATING_CANDIDATES, VETTER_BENCH_RATING_RATINGS
    /// and VETTER_BENCH_POOL.
    pub fn from_env() -> anyhow::Result<Self> {
        let s = Self {
            candidates: env_num(
                "VETTER_BENCH_RATING_CANDIDATES",
                1_000_000,
                1000,
                100_000_000,
            )? as i64,
            ratings: env_num("VETTER_BENCH_RATING_RATINGS", 200_000, 100, 100_000_000)? as i64,
            pool: env_num("VETTER_BENCH_POOL", 20, 1, 90)? as u32,
        };
        ensure!(
            s.ratings <= s.candidates,
            "VETTER_BENCH_RATING_RATINGS must not exceed VETTER_BENCH_RATING_CANDIDATES"
        );
        Ok(s)
    }
}

/// Bump whenever the generated survey changes: older databases are rebuilt.
pub const GENERATOR_VERSION: i32 = 3;
/// The survey database: `vetter_bench_rating`, or VETTER_BENCH_DB (so a
/// branch with its own migrations can keep its own copy).
pub fn db_name() -> String {
    match std::env::var("VETTER_BENCH_DB") {
        Ok(n)
            if !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
        {
            n
        }
        _ => "vetter_bench_rating".to_string(),
    }
}
/// Reviewer accounts in the survey: `reviewer01` …, all with this password.
pub const USERS: usize = 64;
pub const PASSWORD: &str = "bench-reviewer-password";
pub const PROJECTS: [&str; 3] = ["vast", "mkt-trap", "craco"];
pub const OBSERVATIONS: i64 = 300;
pub const METRICS_PER_PROJECT: i64 = 6;
pub const TAGS_PER_PROJECT: i64 = 10;
/// Every rating the bench makes carries a form key with this prefix, so it
/// can be told from the survey's and removed.
pub const RUN_KEY: &str = "bench-run:";

/// The superuser connection options in DATABASE_URL.
pub fn admin_options() -> anyhow::Result<PgConnectOptions> {
    let url = std::env::var("DATABASE_URL")
        .context("DATABASE_URL is not set: run `make bench`, or give a superuser URL")?;
    url.parse().context("DATABASE_URL is malformed")
}

/// The multi-threaded runtime every bench runs in.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

/// How a bench that judges targets ends: each missed one printed as FAIL
/// (still a success: the figures are the result), an error as a failure.
pub fn finish(name: &str, result: anyhow::Result<Vec<String>>) -> std::process::ExitCode {
    match result {
        Ok(failed) => {
            for f in failed {
                println!("FAIL {f}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A number from the environment, or `default` when unset or empty.
pub fn env_num(key: &str, default: u64, min: u64, max: u64) -> anyhow::Result<u64> {
    match std::env::var(key) {
        Err(_) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => bail!("{key}={v:?}: expected a number from {min} to {max}"),
        },
    }
}

// ---------------------------------------------------------------------------
// A fresh database and folder for one run.

/// A fresh database, dropped again when this goes out of scope (kept, to
/// look into with psql, when `VETTER_BENCH_KEEP_DB` is set).
pub struct BenchDb<'rt> {
    rt: &'rt Runtime,
    admin: PgConnectOptions,
    pub name: String,
}

impl<'rt> BenchDb<'rt> {
    pub fn create(rt: &'rt Runtime, admin_url: &str, name: String) -> anyhow::Result<Self> {
        let admin = PgConnectOptions::from_str(admin_url).context("DATABASE_URL is malformed")?;
        rt.block_on(async {
            let mut c = PgConnection::connect_with(&admin)
                .await
                .context("connecting to DATABASE_URL")?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await
                .with_context(|| format!("creating database {name}"))?;
            c.close().await?;
            anyhow::Ok(())
        })?;
        Ok(Self { rt, admin, name })
    }

    pub fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }
}

impl Drop for BenchDb<'_> {
    fn drop(&mut self) {
        if std::env::var_os("VETTER_BENCH_KEEP_DB").is_some() {
            eprintln!("bench: kept database {} (VETTER_BENCH_KEEP_DB)", self.name);
            return;
        }
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let result = self.rt.block_on(async {
            let mut c = PgConnection::connect_with(&self.admin).await?;
            sqlx::query(&sql).execute(&mut c).await?;
            c.close().await
        });
        if let Err(e) = result {
            eprintln!("bench: could not drop database {}: {e}", self.name);
        }
    }
}

/// A folder under the system temp dir (or /tmp when that path has
/// characters cfitsio would misread), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn create(name: &str) -> anyhow::Result<Self> {
        let plain = |p: &Path| {
            p.to_str().is_some_and(|s| {
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-'))
            })
        };
        let mut base = std::env::temp_dir();
        if !plain(&base) {
            base = PathBuf::from("/tmp");
        }
        Self::create_in(&base, name)
    }

    pub fn create_in(base: &Path, name: &str) -> anyhow::Result<Self> {
        let dir = base.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// The benchmark database: made once, then reused.

pub async fn admin_connection(admin: &PgConnectOptions) -> anyhow::Result<PgConnection> {
    PgConnection::connect_with(admin)
        .await
        .context("connecting to DATABASE_URL")
}

/// Lets the machine settle after a bulk load, before anything is timed:
/// PostgreSQL writes out what the load left in its buffers (a checkpoint)
/// and the kernel what it left in the page cache (`sync`). Without this,
/// the first minute of measurements ran beside the writeback of the load's
/// gigabytes (bursts of ~340 MB/s), and every commit's fsync queued
/// behind it: rate-and-next stalled 100-300 ms at a time for reasons that
/// had nothing to do with the app.
pub async fn settle(admin: &PgConnectOptions) -> anyhow::Result<()> {
    let mut c = admin_connection(admin).await?;
    sqlx::query("CHECKPOINT").execute(&mut c).await?;
    let synced = tokio::task::spawn_blocking(|| std::process::Command::new("sync").status())
        .await?
        .context("running sync")?;
    ensure!(synced.success(), "sync failed: {synced}");
    Ok(())
}

/// The bench database, ready: reused if it is this generator's survey of
/// this size, else made anew.
pub async fn prepare_database(s: &Size, admin: &PgConnectOptions) -> anyhow::Result<PgPool> {
    let db_name = db_name();
    let opts = admin.clone().database(&db_name);
    let mut c = admin_connection(admin).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&db_name)
            .fetch_one(&mut c)
            .await?;
    if exists {
        match reuse(s, &opts).await {
            Ok(Some((pool, when, secs))) => {
                println!(
                    "bench: reusing database {db_name} ({} candidates, {} ratings; generated {when} in {secs:.0} s)",
                    thousands(s.candidates),
                    thousands(s.ratings)
                );
                c.close().await?;
                return Ok(pool);
            }
            Ok(None) => {}
            Err(e) => println!("bench: database {db_name} cannot be reused ({e:#})"),
        }
    }
    println!(
        "bench: generating database {db_name}: {} candidates, {} ratings (once; later runs reuse it)",
        thousands(s.candidates),
        thousands(s.ratings)
    );
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(&mut c)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&mut c)
        .await
        .with_context(|| format!("creating database {db_name}"))?;
    c.close().await?;
    let pool = server_pool(s, &opts).await?;
    vetter::db::migrate(&pool).await?;
    generate(s, &opts).await?;
    Ok(pool)
}

pub async fn server_pool(s: &Size, opts: &PgConnectOptions) -> anyhow::Result<PgPool> {
    let db_name = db_name();
    PgPoolOptions::new()
        .max_connections(s.pool)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts.clone())
        .await
        .with_context(|| format!("connecting to {db_name}"))
}

/// The pool if the database holds this generator's survey of this size
/// (after removing what an earlier run left), with when and how fast it was
/// made; `None` (with the reason printed) if it must be made again.
pub async fn reuse(
    s: &Size,
    opts: &PgConnectOptions,
) -> anyhow::Result<Option<(PgPool, String, f64)>> {
    let db_name = db_name();
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
        println!("bench: database {db_name} has no complete survey");
        return Ok(None);
    };
    if (version, n, r) != (GENERATOR_VERSION, s.candidates, s.ratings) {
        println!(
            "bench: database {db_name} holds generator {version}'s survey of {n} candidates and {r} ratings; \
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
            "bench: database {db_name} has {candidates} candidates, {ratings} ratings and {users} reviewers; \
             expected {}, {} and {USERS}",
            s.candidates, s.ratings
        );
        return Ok(None);
    }
    Ok(Some((pool, when, secs)))
}

/// Removes what a run adds (its ratings, with their tags and counts, the
/// sessions and failed logins), so every run starts from the same survey.
pub async fn clean_up(pool: &PgPool) -> anyhow::Result<()> {
    remove_run_ratings(pool).await?;
    sqlx::query("DELETE FROM tower_sessions.session")
        .execute(pool)
        .await?;
    // The soak's login floods would otherwise keep the next run's reviewers,
    // who all sign in from this one address, throttled.
    sqlx::query("DELETE FROM login_failures")
        .execute(pool)
        .await?;
    sqlx::raw_sql("VACUUM (ANALYZE) candidates, ratings, rating_tags, tower_sessions.session")
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes the ratings a run added (their form keys carry `RUN_KEY`), with
/// their tags and counts.
pub async fn remove_run_ratings(pool: &PgPool) -> anyhow::Result<()> {
    let pattern = format!("{RUN_KEY}%");
    let any: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ratings WHERE idempotency_key LIKE $1)")
            .bind(&pattern)
            .fetch_one(pool)
            .await?;
    if !any {
        return Ok(());
    }
    // Without triggers (a run may have rated one candidate several times,
    // which the summary triggers must see one statement at a time), then
    // the summaries made again.
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM rating_tags t USING ratings r
         WHERE r.user_id = t.user_id AND r.candidate_id = t.candidate_id AND r.idempotency_key LIKE $1",
    )
    .bind(&pattern)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH gone AS (DELETE FROM ratings WHERE idempotency_key LIKE $1 RETURNING candidate_id),
              n AS (SELECT candidate_id, count(*)::int AS k FROM gone GROUP BY candidate_id)
         UPDATE candidates c SET rating_count = c.rating_count - n.k FROM n WHERE c.id = n.candidate_id",
    )
    .bind(&pattern)
    .execute(&mut *tx)
    .await
    .context("removing the ratings of earlier runs")?;
    sqlx::query("SELECT refresh_rating_summaries(), refresh_observation_progress()")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The SQL that makes the survey, step by step. Ids are given explicitly
/// (projects 1–3; project p's metrics (p−1)·6+1 …, tags (p−1)·10+1 …), so
/// the steps can refer to each other's rows by arithmetic.
pub fn generation_steps(n: i64, r: i64) -> Vec<(&'static str, String)> {
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
        // The load runs without triggers: the precomputed rating
        // summaries are made from the rows.
        ("rating summaries", "SELECT refresh_rating_summaries()".to_string()),
        ("project counts", "SELECT refresh_project_lists()".to_string()),
        ("observation progress", "SELECT refresh_observation_progress()".to_string()),
        ("rating changes", "SELECT note_every_rating()".to_string()),
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
pub const BULK_TABLES: [&str; 8] = [
    "candidates",
    "candidate_metrics",
    "candidate_positions",
    "light_curves",
    "files",
    "ratings",
    "rating_tags",
    "rating_history",
];

pub async fn generate(s: &Size, opts: &PgConnectOptions) -> anyhow::Result<()> {
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
        "bench: generated in {secs:.1} s: {} candidates, {} metric values, {} ratings, {} rating tags, \
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

/// What a bulk load without triggers runs last: every figure the
/// triggers would have kept, made from the rows.
pub const BULK_REFRESH: [&str; 4] = [
    "SELECT refresh_rating_summaries()",
    "SELECT refresh_project_lists()",
    "SELECT refresh_observation_progress()",
    "SELECT note_every_rating()",
];

/// A connection to a fresh database, migrated and set for a bulk load: its
/// rows without their triggers (the rating summaries would take a lock a
/// row; [`BULK_REFRESH`] makes their figures after), no waiting for the
/// disk, a fixed random seed; with `reviewers` reviewers (`reviewer01` …,
/// password [`PASSWORD`]). Returns the password's hash too.
pub async fn bulk_connection(
    opts: &PgConnectOptions,
    seed: f64,
    reviewers: i32,
) -> anyhow::Result<(PgConnection, String)> {
    let mut c = PgConnection::connect_with(opts).await?;
    vetter::db::MIGRATOR.run(&mut c).await?;
    for set in [
        "SET synchronous_commit = off",
        "SET session_replication_role = replica",
        "SET maintenance_work_mem = '512MB'",
    ] {
        sqlx::query(set).execute(&mut c).await?;
    }
    sqlx::query("SELECT setseed($1)")
        .bind(seed)
        .execute(&mut c)
        .await?;
    let hash =
        tokio::task::spawn_blocking(|| vetter::auth::password::hash_blocking(PASSWORD)).await??;
    sqlx::query(
        "INSERT INTO users (username, password_hash)
         SELECT 'reviewer' || to_char(i, 'FM00'), $1 FROM generate_series(1, $2) i",
    )
    .bind(&hash)
    .bind(reviewers)
    .execute(&mut c)
    .await?;
    Ok((c, hash))
}

/// Runs the statements in turn, naming the one that failed.
pub async fn run_steps(c: &mut PgConnection, steps: &[String]) -> anyhow::Result<()> {
    for sql in steps {
        sqlx::query(sql)
            .execute(&mut *c)
            .await
            .with_context(|| sql.clone())?;
    }
    Ok(())
}

/// Stops the server when dropped.
pub struct Server {
    pub base: String,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(pool: &PgPool, media: &std::path::Path) -> anyhow::Result<Self> {
        Self::start_with(pool, media, |_| {}).await
    }

    /// A server whose settings `tweak` changes first.
    pub async fn start_with(
        pool: &PgPool,
        media: &std::path::Path,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let mut config = Config::for_tests("postgres://unused", media.to_path_buf());
        tweak(&mut config);
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

    pub async fn shut_down(mut self) -> anyhow::Result<()> {
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

/// The release binary serving the bench database in its own process, so
/// that its memory is its own (read from /proc). Killed when dropped.
pub struct ServerProcess {
    pub base: String,
    child: std::process::Child,
    media: std::path::PathBuf,
}

impl ServerProcess {
    pub async fn start(opts: &PgConnectOptions) -> anyhow::Result<Self> {
        Self::start_on(opts, &db_name(), &[]).await
    }

    /// A server on database `db_name` with these settings added.
    pub async fn start_on(
        opts: &PgConnectOptions,
        db_name: &str,
        extra: &[(String, String)],
    ) -> anyhow::Result<Self> {
        Self::start_logged(opts, db_name, extra, None).await
    }

    /// As `start_on`, its log (stdout) written to `log` when given.
    pub async fn start_logged(
        opts: &PgConnectOptions,
        db_name: &str,
        extra: &[(String, String)],
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let media =
            std::env::temp_dir().join(format!("vetter-bench-media-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&media)?;
        let url = format!(
            "postgres://{}@{}:{}/{db_name}",
            opts.get_username(),
            opts.get_host(),
            opts.get_port()
        );
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_vetter"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", url)
            .env("VETTER_BIND", format!("127.0.0.1:{port}"))
            .env("VETTER_MEDIA_ROOT", &media)
            .env("VETTER_SECRET_KEY", secret)
            .env("RUST_LOG", "warn")
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .stdout(match log {
                Some(path) => std::process::Stdio::from(std::fs::File::create(path)?),
                None => std::process::Stdio::null(),
            })
            .spawn()
            .context("starting the vetter binary")?;
        let mut me = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            media,
        };
        let probe = Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = probe.get(format!("{}/healthz", me.base)).send().await {
                if r.status() == StatusCode::OK {
                    return Ok(me);
                }
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("the server exited at start: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "the server did not become healthy in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (resident now, peak resident) in MiB, from /proc/PID/status.
    pub fn memory_mib(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kib = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        Some((kib("VmRSS:")? / 1024.0, kib("VmHWM:")? / 1024.0))
    }

    /// Whether it is still running (it must survive every bench).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.media);
    }
}

/// One reviewer's settings.
#[derive(Clone)]
pub struct Assignment {
    pub username: String,
    pub project: usize,
    pub order: String,
}

/// A small, fast, seedable generator for pauses and choices.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The text of `attr="…"` after the first `marker` in `html`.
pub fn attr_after<'a>(html: &'a str, marker: &str, attr: &str) -> Option<&'a str> {
    let from = html.find(marker)? + marker.len();
    let rest = &html[from..];
    let key = format!("{attr}=\"");
    let start = rest.find(&key)? + key.len();
    let end = rest[start..].find('"')?;
    Some(&rest[start..start + end])
}

pub fn candidate_id(html: &str) -> Option<i64> {
    attr_after(html, "id=\"candidate\"", "data-candidate-id")?
        .parse()
        .ok()
}

pub fn csrf_token(html: &str) -> Option<String> {
    attr_after(html, "name=\"csrf_token\"", "value").map(str::to_string)
}

/// A client signed in as `username` (a survey reviewer), with the CSRF
/// token of its session.
pub async fn log_in(base: &str, username: &str) -> anyhow::Result<(Client, String)> {
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
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::SEE_OTHER,
        "login of {username}: {}",
        r.status()
    );
    let page = client.get(format!("{base}/account")).send().await?;
    let token = csrf_token(&page.text().await?).context("no csrf_token on /account")?;
    Ok((client, token))
}

/// A logged-in reviewer with its queue set, looking at its first candidate.
pub struct Reviewer {
    pub client: Client,
    pub base: String,
    pub token: String,
    pub current: i64,
}

impl Reviewer {
    pub async fn sign_in(base: &str, a: &Assignment) -> anyhow::Result<Self> {
        let (client, token) = log_in(base, &a.username).await?;
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
    pub async fn first(&self) -> anyhow::Result<i64> {
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
    pub async fn rate(&mut self, rng: &mut Rng, project: usize, key: &str) -> anyhow::Result<f64> {
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

#[derive(Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stats {
    pub fn of(v: &mut [f64]) -> Self {
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

/// CPU milliseconds a process has used, from /proc (user + system).
pub fn process_cpu_ms(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // /proc counts in USER_HZ, 100 on Linux.
    Some(ticks * 10.0)
}

/// 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
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
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// What streaming an export cost: its rows and bytes, the time, and the
/// server's resident memory before and at its peak meanwhile.
pub struct Exported {
    pub rows: usize,
    pub bytes: usize,
    pub seconds: f64,
    pub before_mib: f64,
    pub peak_mib: f64,
}

/// Streams an export to nowhere, counting its rows, while another task
/// samples the server's resident memory every 20 ms.
pub async fn export(
    client: &Client,
    server: &ServerProcess,
    path: &str,
) -> anyhow::Result<Exported> {
    let pid = server.pid();
    let before_mib = server.memory_mib().map_or(f64::NAN, |m| m.0);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut peak = 0.0f64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = resident_mib(pid) {
                    peak = peak.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        }
    });
    let t = Instant::now();
    let mut r = client.get(format!("{}{path}", server.base)).send().await?;
    ensure!(r.status() == StatusCode::OK, "GET {path}: {}", r.status());
    // CSV rows are lines after the header; VOTable rows are <TR> elements
    // (which may straddle two chunks).
    let marker: &[u8] = if path.contains(".vot") {
        b"<TR>"
    } else {
        b"\n"
    };
    let (mut rows, mut bytes) = (0usize, 0usize);
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len();
        tail.extend_from_slice(&chunk);
        rows += tail.windows(marker.len()).filter(|w| *w == marker).count();
        let keep = tail.len().min(marker.len() - 1);
        tail.drain(..tail.len() - keep);
    }
    let seconds = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak_mib = sampler.await?.max(before_mib);
    if marker == b"\n" {
        rows = rows.saturating_sub(1);
    }
    Ok(Exported {
        rows,
        bytes,
        seconds,
        before_mib,
        peak_mib,
    })
}

pub fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

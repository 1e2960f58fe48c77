//! The read API at scale (`make bench`).
//!
//! A fresh database (`vetter_bench_read_api`, dropped afterwards) gets one
//! project of 1,000,000 candidates, uniform on the sky, with three metrics
//! each and a tenth of them rated, generated in SQL. The release server
//! runs in its own process (so its memory is its own), and a reviewer's
//! read token asks it:
//!   - `GET /api/v1/candidates` with a cone (3°, around a candidate), a
//!     metric range and a rating state (`rated=none`), every page of each
//!     of 40 cones walked by cursor, 100 rows a page: target median ≤ 20 ms
//!     a page (p50 and p99 reported, as the client sees them);
//!   - `GET /api/v1/candidates.csv` of the whole project (current ratings,
//!     one row per candidate and rating it may see), streamed and counted:
//!     target ≥ 100,000 rows/s, and the server's memory flat: its peak
//!     resident memory while streaming at most 50 MB above what it held
//!     before.
//!
//! A missed target prints FAIL; only errors make the exit status non-zero.
//!
//! Settings (environment):
//!   DATABASE_URL                      superuser URL of a server with q3c in template1
//!   VETTER_BENCH_READ_API_CANDIDATES  candidates (default 1,000,000; a smaller number smoke-runs it)

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{ensure, Context};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use vetter::domain::token::TokenScopes;
use vetter::domain::UserId;

mod survey;
use survey::*;

const PAGE_TARGET_MS: f64 = 20.0;
const EXPORT_TARGET_ROWS_PER_S: f64 = 100_000.0;
const EXPORT_TARGET_MIB: f64 = 50.0;
const CONES: usize = 40;
const CONE_RADIUS_ARCMIN: f64 = 180.0;
const PAGE: u32 = 100;

fn main() -> ExitCode {
    finish("read API bench", run())
}

fn run() -> anyhow::Result<Vec<String>> {
    let n = env_num(
        "VETTER_BENCH_READ_API_CANDIDATES",
        1_000_000,
        1000,
        100_000_000,
    )? as i64;
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    let rt = runtime()?;
    let db = BenchDb::create(&rt, &url, "vetter_bench_read_api".into())?;
    let opts = db.options();
    let mut failed = Vec::new();
    rt.block_on(bench(&opts, &db.name, n, &mut failed))?;
    Ok(failed)
}

/// The project, in SQL and without triggers (`bulk_connection`).
async fn generate(opts: &sqlx::postgres::PgConnectOptions, n: i64) -> anyhow::Result<()> {
    let (mut c, _) = bulk_connection(opts, 0.1219, 8).await?;
    let steps = [
        "INSERT INTO projects (slug, name) VALUES ('sky', 'A million candidates')".to_string(),
        "INSERT INTO metric_defs (project_id, key, label, position)
         VALUES (1, 'snr', 'S/N', 0), (1, 'md', 'Modulation index', 1), (1, 'peak_flux', 'Peak flux', 2)"
            .to_string(),
        "INSERT INTO observations (project_id, external_id, content_hash)
         SELECT 1, 'SB' || (50000 + i), md5(i::text) FROM generate_series(1, 100) i"
            .to_string(),
        format!(
            "INSERT INTO candidates (id, project_id, observation_id, name, ra, dec, content_hash, group_id)
             OVERRIDING SYSTEM VALUE
             SELECT i, 1, 1 + (i - 1) * 100 / {n}, 'c' || i, least(random() * 360, 359.999999),
                    degrees(asin(2 * random() - 1)), md5(i::text), i
               FROM generate_series(1, {n}) i"
        ),
        "SELECT setval(pg_get_serial_sequence('candidates', 'id'), (SELECT max(id) FROM candidates))"
            .to_string(),
        "INSERT INTO candidate_metrics (candidate_id, metric_id, value)
         SELECT c.id, m.id, CASE m.key WHEN 'snr' THEN 5 - 4 * ln(1 - random())
                                       WHEN 'md' THEN 0.6 * random()
                                       ELSE exp(7 * random()) END
           FROM candidates c CROSS JOIN metric_defs m"
            .to_string(),
        format!(
            "INSERT INTO ratings (candidate_id, user_id, verdict, rated_at)
             SELECT c.id, 1 + c.id % 8,
                    (CASE WHEN random() < 0.15 THEN 'real' ELSE 'not_real' END)::verdict,
                    now() - random() * interval '100 days'
               FROM candidates c WHERE c.id % 10 = 0 LIMIT {}",
            n / 10
        ),
        "UPDATE candidates c SET rating_count = 1 WHERE EXISTS (SELECT 1 FROM ratings r WHERE r.candidate_id = c.id)"
            .to_string(),
    ];
    run_steps(&mut c, &steps).await?;
    run_steps(&mut c, &BULK_REFRESH.map(String::from)).await?;
    run_steps(&mut c, &["VACUUM (ANALYZE)".to_string()]).await?;
    c.close().await?;
    Ok(())
}

async fn bench(
    opts: &sqlx::postgres::PgConnectOptions,
    db_name: &str,
    n: i64,
    failed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    generate(opts, n).await?;
    println!(
        "read API bench: {} candidates, {} ratings generated in {:.0} s; load average {}",
        thousands(n),
        thousands(n / 10),
        started.elapsed().as_secs_f64(),
        load_average()
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts.clone())
        .await?;
    // A reviewer's read token: blind, as most are.
    let (token, _) = vetter::db::api_tokens::create(
        &pool,
        UserId(1),
        "bench",
        TokenScopes::new(true, false).map_err(anyhow::Error::msg)?,
    )
    .await?;
    let centres: Vec<(f64, f64)> =
        sqlx::query_as("SELECT ra, dec FROM candidates WHERE id % $1 = 7 ORDER BY id LIMIT $2")
            .bind((n / CONES as i64).max(1))
            .bind(CONES as i64)
            .fetch_all(&pool)
            .await?;
    let server = ServerProcess::start_on(opts, db_name, &[]).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let client = Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()?;
    let api = format!("{}/api/v1", server.base);

    // Warm up: the first requests fill the server's and PostgreSQL's caches.
    for &(ra, dec) in centres.iter().take(3) {
        walk_cone(&client, &api, ra, dec, &mut Vec::new()).await?;
    }
    let mut times = Vec::new();
    let mut rows = 0usize;
    for &(ra, dec) in &centres {
        rows += walk_cone(&client, &api, ra, dec, &mut times).await?;
    }
    let pages = times.len();
    let stats = Stats::of(&mut times);
    let pass = stats.median <= PAGE_TARGET_MS;
    if !pass {
        failed.push(format!(
            "candidate list median {:.2} ms > {PAGE_TARGET_MS} ms",
            stats.median
        ));
    }
    println!(
        "candidate list, cone {CONE_RADIUS_ARCMIN}′ + m.snr.min=6 + rated=none, {PAGE} a page, {} cones:",
        centres.len()
    );
    println!(
        "  {stats}; p50 {:.2} ms, p99 {:.2} ms; {:.1} rows a page over {pages} pages  target median ≤ {PAGE_TARGET_MS} ms: {}",
        stats.median,
        stats.p99,
        rows as f64 / pages.max(1) as f64,
        if pass { "PASS" } else { "FAIL" }
    );

    let idle = server.memory_mib().map_or(f64::NAN, |m| m.0);
    let e = export(&client, &server, "/api/v1/candidates.csv?project=sky").await?;
    let rate = e.rows as f64 / e.seconds;
    let above = e.peak_mib - e.before_mib;
    let pass = rate >= EXPORT_TARGET_ROWS_PER_S && above <= EXPORT_TARGET_MIB;
    if !pass {
        failed.push(format!(
            "export through the API: {} rows/s, {above:.1} MB above idle",
            thousands(rate as i64)
        ));
    }
    ensure!(
        e.rows as i64 >= n,
        "the export held {} rows for {n} candidates",
        e.rows
    );
    println!(
        "CSV export through the API (read token): {} rows, {:.1} MB in {:.2} s: {} rows/s; server resident {:.1} MB idle, \
         {:.1} MB before, {:.1} MB peak while streaming: {above:.1} MB above  target ≥ {} rows/s and ≤ {EXPORT_TARGET_MIB} MB above: {}",
        thousands(e.rows as i64),
        e.bytes as f64 / 1e6,
        e.seconds,
        thousands(rate as i64),
        idle,
        e.before_mib,
        e.peak_mib,
        thousands(EXPORT_TARGET_ROWS_PER_S as i64),
        if pass { "PASS" } else { "FAIL" }
    );
    let mut server = server;
    ensure!(server.alive(), "the server died during the bench");
    println!("load average at the end: {}", load_average());
    drop(server);
    pool.close().await;
    Ok(())
}

/// Every page of one cone's filter, each timed; returns the rows.
async fn walk_cone(
    client: &Client,
    api: &str,
    ra: f64,
    dec: f64,
    times: &mut Vec<f64>,
) -> anyhow::Result<usize> {
    let base = format!(
        "{api}/candidates?project=sky&pos={ra}+{dec}&radius={CONE_RADIUS_ARCMIN}&m.snr.min=6&rated=none&limit={PAGE}"
    );
    let mut cursor: Option<String> = None;
    let mut rows = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.clone(),
        };
        let t = Instant::now();
        let r = client.get(&url).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            status == StatusCode::OK,
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let page: Value = serde_json::from_slice(&body)?;
        rows += page["candidates"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(rows),
        }
    }
}

//! Finding candidates on the 1,000,000-candidate survey (`make bench`).
//!
//! The targets: a table page with a cone search plus one metric
//! range plus a rating-state filter takes at most 50 ms at the median; a CSV
//! export of all 1,000,000 rows runs at 50,000 rows/s or more with the
//! server's peak memory under 100 MB.
//!
//! The release binary serves the survey database `vetter_bench_rating`
//! (made by the rating bench's generator, shared in `survey/`) in its own
//! process, so its memory is read from /proc alone. One signed-in reviewer
//! asks for pages the way htmx does (the table fragment) and times them over
//! loopback, which includes everything the server does for the page:
//! session, filter parsing, the count, the rows and the template.
//!
//! A missed target prints FAIL; only errors make the exit status non-zero.
//!
//! Settings (environment):
//!   DATABASE_URL                superuser URL of a server with q3c in template1
//!   VETTER_BENCH_SEARCH_PAGES   timed requests per kind of page (default 40)
//!   VETTER_BENCH_SUMMARY_RATINGS  current ratings while `/ratings` is timed
//!                               (default 400,000: the survey's are topped
//!                               up for it, and taken away again after)
//!   VETTER_BENCH_DB             the survey database (default vetter_bench_rating)

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use reqwest::{Client, StatusCode};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

mod survey;
use survey::*;

const TARGET_PAGE_MEDIAN_MS: f64 = 50.0;
const TARGET_EXPORT_ROWS_PER_S: f64 = 50_000.0;
const TARGET_EXPORT_PEAK_MIB: f64 = 100.0;
const TARGET_SUMMARY_MEDIAN_MS: f64 = 200.0;
/// The address of the i-th request of a kind of page.
type PageUrl = Box<dyn Fn(usize) -> String>;
/// Untimed requests before each kind of page is timed.
const WARMUP: usize = 3;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("search bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let size = Size::from_env()?;
    let pages = env_num("VETTER_BENCH_SEARCH_PAGES", 40, 5, 10_000)? as usize;
    let summary_ratings = env_num("VETTER_BENCH_SUMMARY_RATINGS", 400_000, 0, 100_000_000)? as i64;
    let admin = admin_options()?;
    let rt = runtime()?;
    rt.block_on(bench(&size, pages, summary_ratings, &admin))
}

async fn bench(
    size: &Size,
    pages: usize,
    summary_ratings: i64,
    admin: &PgConnectOptions,
) -> anyhow::Result<()> {
    let pool = prepare_database(size, admin).await?;
    let mut server = ServerProcess::start(admin).await?;
    let (client, _) = log_in(&server.base, "reviewer01").await?;
    println!(
        "search bench: {} candidates, {} ratings; server pid {}; load average {}",
        thousands(size.candidates),
        thousands(size.ratings),
        server.pid(),
        load_average()
    );
    let mut failed = Vec::new();

    println!();
    println!("table pages as htmx asks for them, {pages} each after {WARMUP} untimed (client time over loopback):");
    let centres = cone_centres(&pool, pages + WARMUP).await?;
    let cone = |radius: u32, rated: &'static str| {
        let centres = centres.clone();
        move |i: usize| {
            let (ra, dec) = centres[i % centres.len()];
            format!(
                "/candidates?project=vast&pos={ra:.5}+{dec:.5}&radius={radius}&m.snr.min=6&rated={rated}"
            )
        }
    };
    let cases: Vec<(String, PageUrl, bool)> = vec![
        (
            "cone 2′ + S/N ≥ 6 + rated by nobody".into(),
            Box::new(cone(2, "none")),
            true,
        ),
        (
            "cone 60′ + S/N ≥ 6 + rated by nobody".into(),
            Box::new(cone(60, "none")),
            true,
        ),
        (
            "cone 60′ + S/N ≥ 6 + not rated by me, by separation".into(),
            Box::new({
                let f = cone(60, "not_mine");
                move |i| format!("{}&sort=sep", f(i))
            }),
            true,
        ),
        (
            "first page, everything".into(),
            Box::new(|_| "/candidates".to_string()),
            false,
        ),
        (
            "page at row 999,000 by name".into(),
            Box::new({
                let q = deep_page(&pool, size.candidates - 1000).await?;
                move |_| q.clone()
            }),
            false,
        ),
        (
            "project, S/N descending, 500 rows".into(),
            Box::new(|_| "/candidates?project=vast&sort=m.snr&dir=desc&per=500".to_string()),
            false,
        ),
    ];
    for (name, url, judged) in &cases {
        let mut times = Vec::with_capacity(pages);
        let mut rows = 0usize;
        for i in 0..pages + WARMUP {
            let (ms, n) = table_page(&client, &server.base, &url(i)).await?;
            if i >= WARMUP {
                times.push(ms);
                rows += n;
            }
        }
        let st = Stats::of(&mut times);
        let verdict = if *judged {
            let pass = st.median <= TARGET_PAGE_MEDIAN_MS;
            if !pass {
                failed.push(name.clone());
            }
            format!(
                "  target median ≤ {TARGET_PAGE_MEDIAN_MS} ms: {}",
                if pass { "PASS" } else { "FAIL" }
            )
        } else {
            String::new()
        };
        println!(
            "  {name:<52} {st}; {:.1} rows a page{verdict}",
            rows as f64 / pages as f64
        );
    }

    println!();
    summary(
        &pool,
        &server.base,
        &client,
        summary_ratings,
        pages,
        &mut failed,
    )
    .await?;

    println!();
    println!("exports of the whole survey, streamed and counted by the client:");
    for (name, path, judged) in [
        (
            "CSV, one row per candidate",
            "/candidates.csv?ratings=none",
            true,
        ),
        (
            "CSV, current ratings",
            "/candidates.csv?ratings=current",
            true,
        ),
        (
            "CSV, rating history",
            "/candidates.csv?ratings=history",
            false,
        ),
        (
            "VOTable, one row per candidate",
            "/candidates.vot?ratings=none",
            false,
        ),
    ] {
        let e = export(&client, &server, path).await?;
        let rate = e.rows as f64 / e.seconds;
        let verdict = if judged {
            let pass = rate >= TARGET_EXPORT_ROWS_PER_S && e.peak_mib < TARGET_EXPORT_PEAK_MIB;
            if !pass {
                failed.push(name.to_string());
            }
            format!(
                "  target ≥ {} rows/s and < {TARGET_EXPORT_PEAK_MIB} MB: {}",
                thousands(TARGET_EXPORT_ROWS_PER_S as i64),
                if pass { "PASS" } else { "FAIL" }
            )
        } else {
            String::new()
        };
        println!(
            "  {name:<32} {} rows, {:.1} MB in {:.2} s: {} rows/s; server resident {:.1} MB before, {:.1} MB peak while streaming{verdict}",
            thousands(e.rows as i64),
            e.bytes as f64 / 1e6,
            e.seconds,
            thousands(rate as i64),
            e.before_mib,
            e.peak_mib
        );
    }
    ensure!(server.alive(), "the server died during the bench");
    if let Some((_, hwm)) = server.memory_mib() {
        println!("server peak resident memory over the whole bench: {hwm:.1} MB");
    }
    println!("load average at the end: {}", load_average());
    if !failed.is_empty() {
        println!("search bench: FAIL: {}", failed.join("; "));
    }
    drop(server);
    pool.close().await;
    Ok(())
}

/// `/ratings` of the whole survey with `want` current ratings (the
/// survey's, topped up with ratings of run-marked form keys that
/// `clean_up` takes away again): as a reviewer and an administrator, both
/// blind (the default: figures over the candidates they rated), and as an
/// administrator that every project exempts (figures over everything).
async fn summary(
    pool: &PgPool,
    base: &str,
    reviewer: &Client,
    want: i64,
    pages: usize,
    failed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings")
        .fetch_one(pool)
        .await?;
    let t = Instant::now();
    let added = top_up(pool, want - have).await?;
    let total = have + added;
    println!(
        "ratings summary of the whole survey (/ratings), {} current ratings ({} added in {:.1} s), {pages} each after {WARMUP} untimed:",
        thousands(total),
        thousands(added),
        t.elapsed().as_secs_f64()
    );
    // reviewer64 is made an administrator for this, and the projects exempt
    // administrators for the last case; both are undone below.
    sqlx::query("UPDATE users SET role = 'admin' WHERE username = 'reviewer64'")
        .execute(pool)
        .await?;
    let result = async {
        let (admin, _) = log_in(base, "reviewer64").await?;
        let mut cases: Vec<(&str, &Client, bool)> = vec![
            ("reviewer, blind", reviewer, false),
            ("administrator, blind", &admin, false),
            ("administrator, admins_see_all", &admin, true),
        ];
        for (name, client, see_all) in cases.drain(..) {
            sqlx::query("UPDATE projects SET admins_see_all = $1")
                .bind(see_all)
                .execute(pool)
                .await?;
            let mut times = Vec::with_capacity(pages);
            for i in 0..pages + WARMUP {
                let t = Instant::now();
                let r = client.get(format!("{base}/ratings")).send().await?;
                ensure!(r.status() == StatusCode::OK, "/ratings: {}", r.status());
                r.bytes().await?;
                if i >= WARMUP {
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            let st = Stats::of(&mut times);
            let pass = st.median <= TARGET_SUMMARY_MEDIAN_MS;
            if !pass {
                failed.push(format!("/ratings as {name}"));
            }
            println!(
                "  {name:<32} {st}  target median ≤ {TARGET_SUMMARY_MEDIAN_MS} ms: {}",
                if pass { "PASS" } else { "FAIL" }
            );
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("UPDATE projects SET admins_see_all = false")
        .execute(pool)
        .await?;
    sqlx::query("UPDATE users SET role = 'reviewer' WHERE username = 'reviewer64'")
        .execute(pool)
        .await?;
    if added > 0 {
        remove_run_ratings(pool).await?;
        sqlx::raw_sql("VACUUM (ANALYZE) candidates, ratings, rating_tags, candidate_tallies")
            .execute(pool)
            .await?;
    }
    result
}

/// Adds up to `n` current ratings, one more on each of `n` candidates
/// spread over the survey (most of them unrated so far, the rest gaining a
/// second or third opinion), with tags on about a third, as the survey's
/// own are. Their form keys carry `RUN_KEY`, so `clean_up` removes them.
async fn top_up(pool: &PgPool, n: i64) -> anyhow::Result<i64> {
    if n <= 0 {
        return Ok(0);
    }
    let key = format!("{RUN_KEY}summary");
    // A bulk load, without triggers; the summaries are made again after.
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    let added = sqlx::query(&format!(
        "WITH picked AS (
             SELECT c.id, c.project_id, c.rating_count,
                    (c.id * 31 + c.rating_count * 17) % {USERS} + 1 AS user_id
             FROM candidates c WHERE c.id % 5 = 2 ORDER BY c.id LIMIT $1),
         added AS (
             INSERT INTO ratings (candidate_id, user_id, verdict, score, notes, idempotency_key, rated_at)
             SELECT p.id, p.user_id,
                    (CASE WHEN random() < 0.1 THEN 'real' WHEN random() < 0.78 THEN 'not_real' ELSE 'unsure' END)::verdict,
                    CASE WHEN p.project_id = 2 THEN (1 + floor(random() * 5))::smallint END,
                    '', $2, now() - random() * interval '30 days'
             FROM picked p
             ON CONFLICT (user_id, candidate_id) DO NOTHING
             RETURNING candidate_id)
         UPDATE candidates c SET rating_count = c.rating_count + 1 FROM added a WHERE c.id = a.candidate_id"
    ))
    .bind(n)
    .bind(&key)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    sqlx::query(&format!(
        "INSERT INTO rating_tags (user_id, candidate_id, tag_id)
         SELECT r.user_id, r.candidate_id, (c.project_id - 1) * {TAGS_PER_PROJECT} + 1 + (r.candidate_id * 7) % 10
         FROM ratings r JOIN candidates c ON c.id = r.candidate_id
         WHERE r.idempotency_key = $1 AND (r.candidate_id * 13) % 100 < 35"
    ))
    .bind(&key)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT refresh_rating_summaries(), refresh_observation_progress()")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::raw_sql("VACUUM (ANALYZE) candidates, ratings, rating_tags, candidate_tallies")
        .execute(pool)
        .await?;
    Ok(added)
}

/// Positions of candidates of the first project, spread over the survey, to
/// centre the cones on (a cone around nothing would be too easy).
async fn cone_centres(pool: &PgPool, n: usize) -> anyhow::Result<Arc<Vec<(f64, f64)>>> {
    let rows: Vec<(f64, f64)> = sqlx::query_as(
        "SELECT ra, dec FROM candidates
         WHERE project_id = 1 AND id % 997 = 0
         ORDER BY id LIMIT $1",
    )
    .bind(n as i64)
    .fetch_all(pool)
    .await?;
    ensure!(
        !rows.is_empty(),
        "the survey has no candidates in project 1"
    );
    Ok(Arc::new(rows))
}

/// The table query whose page starts after row `offset` in name order.
async fn deep_page(pool: &PgPool, offset: i64) -> anyhow::Result<String> {
    let (name, id): (String, i64) =
        sqlx::query_as("SELECT name, id FROM candidates ORDER BY name, id OFFSET $1 LIMIT 1")
            .bind(offset - 1)
            .fetch_one(pool)
            .await?;
    let cursor = serde_json::to_string(&[name, id.to_string()])?;
    Ok(format!(
        "/candidates?sort=name&after={}",
        utf8_percent(&cursor)
    ))
}

/// Percent-encodes everything but unreserved characters.
fn utf8_percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One table fragment: milliseconds and the rows on it.
async fn table_page(client: &Client, base: &str, path: &str) -> anyhow::Result<(f64, usize)> {
    let t = Instant::now();
    let r = client
        .get(format!("{base}{path}"))
        .header("HX-Request", "true")
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    ensure!(
        status == StatusCode::OK,
        "GET {path}: {status}: {}",
        body.chars().take(300).collect::<String>()
    );
    ensure!(
        !body.contains("class=\"field-error"),
        "GET {path} was refused: {}",
        body.chars().take(300).collect::<String>()
    );
    Ok((ms, body.matches("<tr data-id=").count()))
}

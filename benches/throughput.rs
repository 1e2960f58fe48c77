//! Throughput of every page a reviewer uses all day (`make bench`).
//!
//! The targets, each judged as a ratio to `/healthz` measured in the
//! same run at the same number of clients (the machines are noisy; a ratio
//! survives that, requests per second alone do not):
//! - the rating page and its htmx fragment at ≥ 1/3 of `/healthz` at 8 clients;
//! - every table page, with or without a cone, at ≥ 1/5;
//! - the 2′ cone no slower than table page 1;
//! - no page losing more than 20 % from 8 to 32 clients;
//! - the 1,000,000-candidate figures within 20 % of the 100,000-candidate ones.
//!
//! For each survey size the release binary serves the survey database (made
//! by the shared generator in `survey/`, one database per size) in its own
//! process. Every client is a signed-in reviewer of its own; each asks for
//! one kind of page over and over for a few seconds (no pause), as htmx
//! would where htmx asks. Rate-and-next rates through the reviewer's queue;
//! its ratings are removed again afterwards.
//!
//! A missed target prints FAIL; only errors make the exit status non-zero.
//!
//! Settings (environment):
//!   DATABASE_URL                      superuser URL of a server with q3c in template1
//!   VETTER_BENCH_THROUGHPUT_SIZES     survey sizes, comma-separated (default 100000,1000000)
//!   VETTER_BENCH_THROUGHPUT_SECONDS   measured seconds per page and client count (default 5)
//!   VETTER_BENCH_POOL                 the server's database connections (default 20)
//!   VETTER_BENCH_THROUGHPUT_PAGES     only the pages whose names contain one of these words,
//!                                     comma-separated, e.g. `table,ratings` (`/healthz` always runs;
//!                                     `rate` includes rate-and-next); for profiling one page

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use reqwest::{Client, StatusCode};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

mod survey;
use survey::*;

const CLIENTS: [usize; 2] = [8, 32];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let sizes: Vec<i64> = std::env::var("VETTER_BENCH_THROUGHPUT_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .context("VETTER_BENCH_THROUGHPUT_SIZES")
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(
        sizes.iter().all(|&n| (1000..=100_000_000).contains(&n)),
        "survey sizes must be 1,000 to 100,000,000 candidates"
    );
    let seconds = env_num("VETTER_BENCH_THROUGHPUT_SECONDS", 5, 1, 600)?;
    let pool = env_num("VETTER_BENCH_POOL", 20, 1, 90)? as u32;
    let admin = admin_options()?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut by_size = Vec::new();
        for &n in &sizes {
            let size = Size {
                candidates: n,
                ratings: n / 5,
                pool,
            };
            by_size.push((
                n,
                one_size(&size, Duration::from_secs(seconds), &admin).await?,
            ));
        }
        compare_sizes(&by_size);
        Ok(())
    })
}

/// Requests per second of each page at each client count, and `/healthz`'s.
struct Figures {
    rows: Vec<(String, [f64; 2])>,
    healthz: [f64; 2],
}

/// What one kind of request asks for, given the client's number and a
/// running count.
type Ask = Arc<dyn Fn(usize, usize) -> String + Send + Sync>;

async fn one_size(
    size: &Size,
    seconds: Duration,
    admin: &PgConnectOptions,
) -> anyhow::Result<Figures> {
    // One database per size, so that neither size rebuilds the other's.
    if size.candidates != 1_000_000 {
        std::env::set_var(
            "VETTER_BENCH_DB",
            format!("vetter_bench_throughput_{}", size.candidates),
        );
    } else {
        std::env::remove_var("VETTER_BENCH_DB");
    }
    let pool = prepare_database(size, admin).await?;
    let server = ServerProcess::start(admin).await?;
    println!();
    println!(
        "throughput bench: {} candidates, {} ratings, server pool {} connections; {} s per figure; load average {}",
        thousands(size.candidates),
        thousands(size.ratings),
        size.pool,
        seconds.as_secs(),
        load_average()
    );
    let mut clients = Vec::new();
    for i in 0..CLIENTS[1] {
        clients.push(
            log_in(&server.base, &format!("reviewer{:02}", i + 1))
                .await?
                .0,
        );
    }
    let ids = sample_candidates(&pool, 256).await?;
    let centres = ids
        .iter()
        .map(|(_, ra, dec)| (*ra, *dec))
        .collect::<Vec<_>>();
    let ids: Arc<Vec<i64>> = Arc::new(ids.iter().map(|(id, _, _)| *id).collect());
    let centres = Arc::new(centres);
    let cone = |extra: &'static str| -> Ask {
        let centres = centres.clone();
        Arc::new(move |c, k| {
            let (ra, dec) = centres[(c * 31 + k) % centres.len()];
            format!("/candidates?project=vast&pos={ra:.5}+{dec:.5}&radius=2{extra}")
        })
    };
    let per_candidate = |suffix: &'static str| -> Ask {
        let ids = ids.clone();
        Arc::new(move |c, k| format!("/candidates/{}{suffix}", ids[(c * 31 + k) % ids.len()]))
    };
    let pages: Vec<(&str, Ask, bool)> = vec![
        ("/healthz", Arc::new(|_, _| "/healthz".to_string()), false),
        (
            "table, page 1",
            Arc::new(|_, _| "/candidates?project=vast".to_string()),
            true,
        ),
        ("table, 2′ cone", cone(""), true),
        (
            "table, cone + S/N range + rated by nobody",
            cone("&m.snr.min=6&rated=none"),
            true,
        ),
        ("rating page (whole)", per_candidate(""), false),
        ("rating page (htmx fragment)", per_candidate(""), true),
        ("nearby panel", per_candidate("/nearby"), true),
        (
            "/ratings",
            Arc::new(|_, _| "/ratings?project=vast".to_string()),
            false,
        ),
    ];
    let mut figures = Figures {
        rows: Vec::new(),
        healthz: [0.0; 2],
    };
    println!(
        "  {:<44} {:>22} {:>22}   8→32    body",
        "request", "8 clients: req/s (×hz)", "32 clients: req/s (×hz)"
    );
    let wanted = |name: &str| match std::env::var("VETTER_BENCH_THROUGHPUT_PAGES") {
        Ok(words) => name == "/healthz" || words.split(',').any(|w| name.contains(w.trim())),
        Err(_) => true,
    };
    for (name, ask, htmx) in pages.iter().filter(|(name, _, _)| wanted(name)) {
        let mut rates = [0.0; 2];
        let mut body_bytes = 0;
        let mut cells = Vec::new();
        for (j, &n) in CLIENTS.iter().enumerate() {
            let r = load(&clients[..n], &server.base, ask.clone(), *htmx, seconds).await?;
            rates[j] = r.per_second;
            body_bytes = r.body_bytes;
            if *name == "/healthz" {
                figures.healthz[j] = r.per_second;
            }
            cells.push(format!(
                "{:>7.0} ({:>4.2}) p50 {:>5.1}",
                r.per_second,
                r.per_second / figures.healthz[j],
                r.median_ms
            ));
            ensure!(
                r.failed == 0,
                "{name} at {n} clients: {} of {} requests failed ({})",
                r.failed,
                r.failed + r.ok,
                r.first_failure
            );
        }
        println!(
            "  {name:<44} {:>22} {:>22}   {:+4.0} %  {:6.1} kB",
            cells[0],
            cells[1],
            (rates[1] / rates[0] - 1.0) * 100.0,
            body_bytes as f64 / 1000.0
        );
        figures.rows.push((name.to_string(), rates));
    }
    if wanted("rate-and-next (POST)") {
        let rated = rate_and_next(&server.base, seconds).await?;
        println!(
            "  {:<44} {:>7.0} ({:>4.2}) p50 {:>5.1}   (8 reviewers rating through their queues)",
            "rate-and-next (POST)",
            rated.per_second,
            rated.per_second / figures.healthz[0],
            rated.median_ms
        );
        figures
            .rows
            .push(("rate-and-next (POST)".into(), [rated.per_second, f64::NAN]));
        remove_run_ratings(&pool).await?;
    }
    judge(&figures);
    drop(server);
    Ok(figures)
}

/// The ratios for one survey size.
fn judge(f: &Figures) {
    let rate = |name: &str| f.rows.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
    let mut verdicts = Vec::new();
    for (name, need) in [
        ("rating page (whole)", 1.0 / 3.0),
        ("rating page (htmx fragment)", 1.0 / 3.0),
        ("table, page 1", 0.2),
        ("table, 2′ cone", 0.2),
        ("table, cone + S/N range + rated by nobody", 0.2),
    ] {
        if let Some(r) = rate(name) {
            let ratio = r[0] / f.healthz[0];
            verdicts.push((
                format!("{name} ≥ {need:.2} × /healthz at 8 clients ({ratio:.2})"),
                ratio >= need,
            ));
        }
    }
    if let (Some(cone), Some(first)) = (rate("table, 2′ cone"), rate("table, page 1")) {
        verdicts.push((
            format!(
                "2′ cone no slower than table page 1 ({:.0} vs {:.0} req/s)",
                cone[0], first[0]
            ),
            cone[0] >= first[0],
        ));
    }
    for (name, r) in &f.rows {
        if name == "/healthz" || r[1].is_nan() {
            continue;
        }
        let kept = r[1] / r[0];
        verdicts.push((
            format!(
                "{name} keeps ≥ 80 % from 8 to 32 clients ({:.0} %)",
                kept * 100.0
            ),
            kept >= 0.8,
        ));
    }
    for (what, pass) in verdicts {
        println!("  {}: {what}", if pass { "PASS" } else { "FAIL" });
    }
}

fn compare_sizes(by_size: &[(i64, Figures)]) {
    let (Some((small, a)), Some((large, b))) = (by_size.first(), by_size.last()) else {
        return;
    };
    if small == large {
        return;
    }
    println!();
    println!(
        "{} against {} candidates (ratios to /healthz at 8 clients; target within 20 %):",
        thousands(*large),
        thousands(*small)
    );
    for ((name, ra), (_, rb)) in a.rows.iter().zip(&b.rows) {
        if name == "/healthz" {
            continue;
        }
        let (x, y) = (ra[0] / a.healthz[0], rb[0] / b.healthz[0]);
        let change = y / x - 1.0;
        println!(
            "  {}: {name:<44} {x:.2} → {y:.2} ({:+.0} %)",
            if change >= -0.2 { "PASS" } else { "FAIL" },
            change * 100.0
        );
    }
}

struct Load {
    per_second: f64,
    median_ms: f64,
    ok: usize,
    failed: usize,
    first_failure: String,
    /// The size of the last answer's body, in bytes.
    body_bytes: usize,
}

impl Load {
    /// From the times of the requests answered in `seconds`.
    fn of(mut times: Vec<f64>, failed: usize, first_failure: String, seconds: Duration) -> Self {
        let ok = times.len();
        Load {
            per_second: ok as f64 / seconds.as_secs_f64(),
            median_ms: Stats::of(&mut times).median,
            ok,
            failed,
            first_failure,
            body_bytes: 0,
        }
    }
}

/// Each client asks over and over, with no pause, for `seconds` (after a
/// one-second warm-up that is not counted).
async fn load(
    clients: &[Client],
    base: &str,
    ask: Ask,
    htmx: bool,
    seconds: Duration,
) -> anyhow::Result<Load> {
    let warm_until = Instant::now() + Duration::from_secs(1);
    let until = warm_until + seconds;
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        let (client, base, ask) = (client.clone(), base.to_string(), ask.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let (mut failed, mut first) = (0usize, String::new());
            let (mut k, mut body_bytes) = (0, 0);
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                let mut rq = client.get(format!("{base}{}", ask(c, k)));
                if htmx {
                    rq = rq.header("HX-Request", "true");
                }
                k += 1;
                let outcome = match rq.send().await {
                    Ok(r) => {
                        let status = r.status();
                        match r.bytes().await {
                            Ok(b) if status == StatusCode::OK => {
                                body_bytes = b.len();
                                Ok(())
                            }
                            Ok(_) => Err(format!("HTTP {status}")),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                if start < warm_until {
                    continue;
                }
                match outcome {
                    Ok(()) => times.push(start.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => {
                        failed += 1;
                        if first.is_empty() {
                            first = e;
                        }
                    }
                }
            }
            (times, failed, first, body_bytes)
        }));
    }
    let mut all = Vec::new();
    let (mut failed, mut first_failure, mut body_bytes) = (0, String::new(), 0);
    for t in tasks {
        let (times, f, first, bytes) = t.await?;
        body_bytes = body_bytes.max(bytes);
        all.extend(times);
        failed += f;
        if first_failure.is_empty() {
            first_failure = first;
        }
    }
    Ok(Load {
        body_bytes,
        ..Load::of(all, failed, first_failure, seconds)
    })
}

/// Eight reviewers rating through their queues without pause.
async fn rate_and_next(base: &str, seconds: Duration) -> anyhow::Result<Load> {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let a = Assignment {
            username: format!("reviewer{:02}", 40 + i),
            project: i % PROJECTS.len(),
            order: "name".into(),
        };
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let mut r = Reviewer::sign_in(&base, &a).await?;
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ i as u64);
            let until = Instant::now() + seconds;
            let mut times = Vec::new();
            let mut k = 0;
            while Instant::now() < until {
                k += 1;
                times.push(
                    r.rate(&mut rng, a.project, &format!("{RUN_KEY}tp-{i}-{k}"))
                        .await?,
                );
            }
            anyhow::Ok(times)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Load::of(all, 0, String::new(), seconds))
}

/// Candidates of the `vast` project spread over the survey: ids and
/// positions, for the rating page and the cones.
async fn sample_candidates(pool: &PgPool, n: i64) -> anyhow::Result<Vec<(i64, f64, f64)>> {
    let rows: Vec<(i64, f64, f64)> = sqlx::query_as(
        "SELECT c.id, c.ra, c.dec FROM candidates c JOIN projects p ON p.id = c.project_id
         WHERE p.slug = 'vast' AND c.id % 997 = 0 ORDER BY c.id LIMIT $1",
    )
    .bind(n)
    .fetch_all(pool)
    .await?;
    ensure!(!rows.is_empty(), "no vast candidates in the survey");
    Ok(rows)
}

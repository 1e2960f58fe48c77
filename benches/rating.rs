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
//!   VETTER_BENCH_REVIEWERS          concurrent reviewers, at most 64 (default 32)
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgPool};
use tokio::sync::Barrier;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use vetter::db::candidates as cand;
use vetter::db::{queue, ratings};
use vetter::domain::rating::RatingInput;
use vetter::domain::{Role, UserId};

mod survey;
use survey::*;

const TARGET_MEDIAN_MS: f64 = 5.0;
const TARGET_P99_MS: f64 = 20.0;
/// The request log's target.
const LOG_TARGET: &str = "vetter::web::plumbing::logging";
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
    orders: Vec<String>,
    size: Size,
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
        Ok(Self {
            seconds: env_num("VETTER_BENCH_SECONDS", 60, 1, 3600)?,
            warmup: env_num("VETTER_BENCH_WARMUP", 5, 0, 600)?,
            reviewers: env_num("VETTER_BENCH_REVIEWERS", 32, 1, USERS as u64)? as usize,
            think_ms: env_num("VETTER_BENCH_THINK_MS", 1000, 0, 60_000)?,
            saturate_seconds: env_num("VETTER_BENCH_SATURATE_SECONDS", 20, 0, 3600)?,
            orders,
            size: Size::from_env()?,
        })
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
    let admin = admin_options()?;
    let server_log = ServerLog::install();
    let rt = runtime()?;
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
// The load.

async fn bench(
    s: &Settings,
    admin: &PgConnectOptions,
    media: &std::path::Path,
    log: &ServerLog,
) -> anyhow::Result<()> {
    let pool = prepare_database(&s.size, admin).await?;
    let server = Server::start(&pool, media).await?;
    let result = measure(s, &pool, &server, log).await;
    server.shut_down().await?;
    let cleaned = clean_up(&pool).await;
    pool.close().await;
    result.and(cleaned)
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
        s.size.pool,
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
            thousands(s.size.candidates),
            thousands(s.size.ratings),
            st.median,
            st.p99,
            if pass { "PASS" } else { "FAIL" }
        );
    }
    ensure!(errors.is_empty(), "{} requests failed", errors.len());
    Ok(())
}

// ---------------------------------------------------------------------------
// Where the time goes: the queries of one rate-and-next, one by one.

async fn phases(pool: &PgPool, plan: &[Assignment], orders: &[String]) -> anyhow::Result<()> {
    println!();
    println!(
        "queries of one rate-and-next, idle server, one connection, {PHASE_SAMPLES} candidates per queue order \
         (median / p99 ms; besides these the request reads the session and the user, and writes the session):"
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
        let q = queue::load(&mut conn, user, Role::Reviewer).await?;
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
            let (score_enabled, allowed) = cand::rating_rules(&mut conn, current)
                .await?
                .context("candidate vanished")?;
            lap("candidates::rating_rules", &mut clock);
            let input = RatingInput::parse("not_real", &[], "", None, &allowed, score_enabled)
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
            let q = queue::load(&mut conn, user, Role::Reviewer).await?;
            lap("queue::load (with the visibility)", &mut clock);
            let upcoming = queue::upcoming(&mut conn, user, &q, Some(current), 2).await?;
            lap("queue::upcoming (2)", &mut clock);
            let Some(&next) = upcoming.first() else { break };
            cand::shown(&mut conn, next, user, true)
                .await?
                .context("candidate vanished")?;
            lap("candidates::shown (+ trail)", &mut clock);
            if let Some(&following) = upcoming.get(1) {
                cand::own_files(&mut conn, following).await?;
                lap("candidates::own_files", &mut clock);
            }
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

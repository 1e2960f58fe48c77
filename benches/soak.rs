//! A bounded soak (`make bench`): 64 reviewers working for several minutes
//! on the 1,000,000-candidate survey, against the release binary in its own
//! process.
//!
//! The targets: no request fails, and the server's peak memory stays
//! under 150 MB. Reported: throughput, p50/p99 latency per kind of request,
//! the error count, and the server's resident memory (sampled every 250 ms,
//! and the kernel's own peak, VmHWM).
//!
//! Each reviewer does what the rating page makes a browser do: rate and get
//! the next candidate in one request, then load its nearby-sources panel;
//! now and then it reloads the whole candidate page or looks at the candidate
//! table, and pauses between ratings as a person does. The ratings are
//! removed afterwards, like the rating bench's.
//!
//! Alongside them run hostile clients (16 by default), four of each kind:
//! - stalled exports: ask for the whole survey as CSV and never read it,
//!   reconnecting once the server drops them;
//! - slow headers: keep 25 connections each, sending a request head one
//!   byte a second;
//! - big forms: post 200 MiB form bodies, again and again;
//! - login floods: wrong passwords against /login as fast as answered.
//!
//! The reviewers must not notice: rate-and-next p99 at most 50 ms, no
//! errors, and the server's peak memory under 150 MB with the hostile
//! clients included.
//!
//! Missed targets print FAIL and, because failed requests are the point of
//! a soak, any error makes the exit status non-zero.
//!
//! Settings (environment):
//!   DATABASE_URL                  superuser URL of a server with q3c in template1
//!   VETTER_BENCH_SOAK_SECONDS     how long the load runs (default 180)
//!   VETTER_BENCH_SOAK_REVIEWERS   concurrent reviewers, at most 64 (default 64)
//!   VETTER_BENCH_SOAK_HOSTILE     hostile clients (default 16; 0 for none)
//!   VETTER_BENCH_THINK_MS         mean pause between ratings (default 1000)
//!   VETTER_BENCH_SOAK_KINDS       which hostile kinds, comma-separated, of
//!                                 exports, heads, forms, logins (default all)

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use reqwest::StatusCode;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Barrier;

mod survey;
use survey::*;

#[path = "soak/hostile.rs"]
mod hostile;

const TARGET_PEAK_MIB: f64 = 150.0;
const TARGET_RATE_P99_MS: f64 = 50.0;
const ORDERS: [&str; 4] = ["name", "name", "fewest", "shuffled"];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    seconds: u64,
    reviewers: usize,
    think_ms: u64,
    hostile: usize,
    kinds: Vec<usize>,
    size: Size,
}

fn run() -> anyhow::Result<()> {
    let s = Settings {
        seconds: env_num("VETTER_BENCH_SOAK_SECONDS", 180, 5, 24 * 3600)?,
        reviewers: env_num("VETTER_BENCH_SOAK_REVIEWERS", 64, 1, USERS as u64)? as usize,
        think_ms: env_num("VETTER_BENCH_THINK_MS", 1000, 0, 60_000)?,
        hostile: env_num("VETTER_BENCH_SOAK_HOSTILE", 16, 0, 64)? as usize,
        kinds: hostile_kinds()?,
        size: Size::from_env()?,
    };
    let admin = admin_options()?;
    let rt = runtime()?;
    rt.block_on(bench(&s, &admin))
}

fn hostile_kinds() -> anyhow::Result<Vec<usize>> {
    let Ok(list) = std::env::var("VETTER_BENCH_SOAK_KINDS") else {
        return Ok((0..hostile::KINDS.len()).collect());
    };
    list.split(',')
        .map(|k| {
            hostile::KINDS
                .iter()
                .position(|&known| known == k.trim())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "VETTER_BENCH_SOAK_KINDS: {k:?} is not one of {}",
                        hostile::KINDS.join(", ")
                    )
                })
        })
        .collect()
}

/// What one reviewer saw: (kind of request, milliseconds) and its errors.
#[derive(Default)]
struct Seen {
    times: Vec<(&'static str, f64)>,
    errors: Vec<String>,
}

async fn bench(s: &Settings, admin: &PgConnectOptions) -> anyhow::Result<()> {
    let pool = prepare_database(&s.size, admin).await?;
    let mut server = ServerProcess::start(admin).await?;
    println!(
        "soak bench: {} reviewers and {} hostile clients ({}) for {} s, mean pause {} ms, on {} candidates; server pid {}; load average {}",
        s.reviewers,
        s.hostile,
        s.kinds.iter().map(|&k| hostile::KINDS[k]).collect::<Vec<_>>().join(", "),
        s.seconds,
        s.think_ms,
        thousands(s.size.candidates),
        server.pid(),
        load_average()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(s.reviewers + 1));
    let mut tasks = Vec::new();
    for i in 0..s.reviewers {
        let a = Assignment {
            username: format!("reviewer{:02}", i + 1),
            project: i % PROJECTS.len(),
            order: ORDERS[i % ORDERS.len()].to_string(),
        };
        tasks.push(tokio::spawn(reviewer(
            i,
            a,
            server.base.clone(),
            s.think_ms,
            ready.clone(),
            stop.clone(),
        )));
    }
    ready.wait().await;
    let hostile = hostile::start(s.hostile, &s.kinds, &server.base, stop.clone()).await;
    let (started, cpu_before) = (Instant::now(), process_cpu_ms(&server.pid().to_string()));
    let (mut peak_sampled, mut last_rss) = (0.0f64, 0.0f64);
    let mut alive = true;
    while started.elapsed() < Duration::from_secs(s.seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some((rss, _)) = server.memory_mib() {
            peak_sampled = peak_sampled.max(rss);
            last_rss = rss;
        }
        if !server.alive() {
            alive = false;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    for t in tasks {
        let r = t.await?;
        seen.times.extend(r.times);
        seen.errors.extend(r.errors);
    }
    let hostile = hostile::finish(hostile).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_ms(&server.pid().to_string())
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    let hwm = server.memory_mib().map_or(f64::NAN, |m| m.1);
    alive &= server.alive();
    drop(server);
    let cleaned = clean_up(&pool).await;
    pool.close().await;

    let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (kind, ms) in &seen.times {
        by_kind.entry(kind).or_default().push(*ms);
    }
    let ratings = by_kind.get("rate and next").map_or(0, Vec::len);
    println!();
    println!(
        "throughput: {} requests in {elapsed:.0} s = {:.1} requests/s; {ratings} ratings = {:.1} ratings/s",
        seen.times.len(),
        seen.times.len() as f64 / elapsed,
        ratings as f64 / elapsed
    );
    println!("latency as the clients saw it over loopback:");
    let mut all: Vec<f64> = seen.times.iter().map(|t| t.1).collect();
    for (kind, v) in &mut by_kind {
        println!("  {kind:<20} {}", Stats::of(v));
    }
    println!("  {:<20} {}", "every request", Stats::of(&mut all));
    let rate_p99 = by_kind
        .get_mut("rate and next")
        .map_or(f64::NAN, |v| Stats::of(v).p99);
    let latency_ok = rate_p99 <= TARGET_RATE_P99_MS;
    println!(
        "rate and next p99 {rate_p99:.1} ms; target <= {TARGET_RATE_P99_MS} ms{}: {}",
        if s.hostile > 0 {
            " with the hostile clients"
        } else {
            ""
        },
        if latency_ok { "PASS" } else { "FAIL" }
    );
    println!("hostile clients: {hostile}");
    if let Some(ms) = cpu {
        println!(
            "server CPU: {:.1} s in {elapsed:.0} s ({:.2} ms a request)",
            ms / 1000.0,
            ms / seen.times.len().max(1) as f64
        );
    }
    println!(
        "errors: {}{}",
        seen.errors.len(),
        seen.errors
            .iter()
            .take(5)
            .map(|e| format!("\n  {e}"))
            .collect::<String>()
    );
    let memory_ok = hwm < TARGET_PEAK_MIB;
    println!(
        "server memory: resident {last_rss:.1} MB at the end, {peak_sampled:.1} MB peak sampled, {hwm:.1} MB peak (VmHWM); \
         target < {TARGET_PEAK_MIB} MB: {}",
        if memory_ok { "PASS" } else { "FAIL" }
    );
    println!(
        "zero errors: {}; server alive throughout: {}",
        if seen.errors.is_empty() {
            "PASS"
        } else {
            "FAIL"
        },
        if alive { "yes" } else { "NO" }
    );
    println!("load average at the end: {}", load_average());
    cleaned?;
    ensure!(alive, "the server died during the soak");
    ensure!(
        seen.errors.is_empty(),
        "{} requests failed",
        seen.errors.len()
    );
    Ok(())
}

async fn reviewer(
    index: usize,
    a: Assignment,
    base: String,
    think_ms: u64,
    ready: Arc<Barrier>,
    stop: Arc<AtomicBool>,
) -> Seen {
    let signed_in = Reviewer::sign_in(&base, &a).await;
    ready.wait().await;
    let mut seen = Seen::default();
    let mut me = match signed_in {
        Ok(me) => me,
        Err(e) => {
            seen.errors
                .push(format!("{}: signing in: {e:#}", a.username));
            return seen;
        }
    };
    let mut rng = Rng(0x853C_49E6_748F_EA9B ^ ((index as u64 + 1) * 0x2545_F491_4F6C_DD1D));
    // Start at a random point of the pause, so the reviewers do not march
    // in step.
    tokio::time::sleep(Duration::from_secs_f64(
        think_ms as f64 * rng.unit() / 1000.0,
    ))
    .await;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("{RUN_KEY}soak-{}-{n}", a.username);
        match me.rate(&mut rng, a.project, &key).await {
            Ok(ms) => seen.times.push(("rate and next", ms)),
            Err(e) => seen.errors.push(format!("{}: {e:#}", a.username)),
        }
        let nearby = format!("/candidates/{}/nearby", me.current);
        get(&me, &nearby, true, "nearby panel", &mut seen).await;
        if n % 10 == 0 {
            let page = format!("/candidates/{}", me.current);
            get(&me, &page, false, "candidate page", &mut seen).await;
        }
        if n % 25 == 0 {
            let table = format!("/candidates?project={}&rated=not_mine", PROJECTS[a.project]);
            get(&me, &table, true, "candidate table", &mut seen).await;
        }
        if think_ms > 0 {
            let pause = think_ms as f64 * (0.5 + rng.unit());
            tokio::time::sleep(Duration::from_secs_f64(pause / 1000.0)).await;
        }
    }
    seen
}

async fn get(me: &Reviewer, path: &str, htmx: bool, kind: &'static str, seen: &mut Seen) {
    let t = Instant::now();
    let mut req = me.client.get(format!("{}{path}", me.base));
    if htmx {
        req = req.header("HX-Request", "true");
    }
    let outcome = async {
        let r = req.send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        anyhow::Ok((status, body.len()))
    }
    .await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok((StatusCode::OK, len)) if len > 0 => seen.times.push((kind, ms)),
        Ok((status, len)) => seen
            .errors
            .push(format!("GET {path}: {status}, {len} bytes")),
        Err(e) => seen.errors.push(format!("GET {path}: {e:#}")),
    }
}

//! Upload throughput through the HTTP API (`make bench`).
//!
//! The target: on the 2-core machine, at least 200 candidates per
//! second, each with two 64×64 FITS images whose PNG previews the server
//! renders. This starts the real server in-process on a fresh database,
//! uploads `VETTER_BENCH_CANDIDATES` candidates per round in multipart
//! batches through `POST /api/v1/projects/{p}/observations/{o}/candidates`,
//! and reports the median rate over the rounds. A missed target prints FAIL;
//! only errors make the exit status non-zero.
//!
//! The same run uploads to more servers on the same database whose media is
//! in a bucket, rounds interleaved, and reports each bucket's median rate as
//! a share of the folder's (the target is at least 80 %): the Ceph RADOS
//! gateway of the tests (`VETTER_TEST_S3_*`), and s3s-fs
//! (`VETTER_BENCH_LIGHT_S3_ENDPOINT`, same bucket name and keys), both
//! started by `make bench`. Both are real S3 servers on the bench's own two
//! cores, so each figure also pays for the store's CPU: Ceph's is about 3 ms
//! per small PUT, four PUTs per candidate; s3s-fs's a fraction of that, so
//! its figure is the one that shows what keeping media in a bucket costs the
//! app itself (the "server+client CPU" of each line says it directly).
//!
//! The client runs in the same process, so it shares the cores with the
//! server and PostgreSQL: the figure is a lower bound for a remote pipeline.
//!
//! Settings (environment):
//!   DATABASE_URL               superuser URL of a server with q3c in template1
//!   VETTER_BENCH_CANDIDATES    candidates per round (default 2000)
//!   VETTER_BENCH_BATCH         candidates per request (default 100)
//!   VETTER_BENCH_CONCURRENCY   requests in flight (default 2)
//!   VETTER_BENCH_ROUNDS        timed rounds (default 3)
//!   RUST_LOG                   set it to see the server's request log

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use vetter::domain::{Role, Username};

#[path = "../tests/common/s3.rs"]
mod s3;
mod survey;
use survey::{BenchDb, Server, TempDir};

/// The target, candidates per second.
const TARGET: f64 = 200.0;
/// The bucket's rate as a share of the folder's, at least.
const BUCKET_SHARE: f64 = 0.8;
const SIDE: usize = 64;
const PROJECT: &str = "bench";
/// The two FITS roles of every candidate; each gets a rendered `<role>_png`.
const ROLES: [&str; 2] = ["deep_cutout", "slices"];

struct Settings {
    candidates: usize,
    batch: usize,
    concurrency: usize,
    rounds: usize,
}

fn env_usize(key: &str, default: usize, max: usize) -> anyhow::Result<usize> {
    match std::env::var(key) {
        Err(_) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => bail!("{key}={v:?}: expected a number from 1 to {max}"),
        },
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            candidates: env_usize("VETTER_BENCH_CANDIDATES", 2000, 1_000_000)?,
            batch: env_usize("VETTER_BENCH_BATCH", 100, 1000)?,
            concurrency: env_usize("VETTER_BENCH_CONCURRENCY", 2, 64)?,
            rounds: env_usize("VETTER_BENCH_ROUNDS", 3, 100)?,
        })
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upload bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let admin_url = std::env::var("DATABASE_URL")
        .context("DATABASE_URL is not set: run `make bench`, or give a superuser URL")?;
    if std::env::var_os("RUST_LOG").is_some() {
        vetter::telemetry::init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let pid = std::process::id();
    let media = TempDir::create(&format!("vetter-bench-{pid}"))?;
    let db = BenchDb::create(&rt, &admin_url, format!("vetter_bench_{pid}"))?;
    // The guards drop (database, then folder) after this, on success, error
    // or panic alike.
    rt.block_on(bench(&settings, &db, media.path()))
}

async fn bench(s: &Settings, db: &BenchDb<'_>, work: &Path) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(db.options())
        .await
        .with_context(|| format!("connecting to the new database {}", db.name))?;
    vetter::db::migrate(&pool).await?;

    let media_root = work.join("media");
    let scratch = work.join("scratch");
    std::fs::create_dir_all(&media_root)?;
    std::fs::create_dir_all(&scratch)?;
    let server = Server::start(&pool, &media_root).await?;
    // Ceph, the tests' server; and where `make bench` started it, s3s-fs,
    // whose own CPU is small enough to show the app's cost of a bucket.
    let mut stores = vec![("bucket, Ceph RGW", s3::endpoint())];
    if let Ok(light) = std::env::var("VETTER_BENCH_LIGHT_S3_ENDPOINT") {
        stores.push(("bucket, s3s-fs", light));
    }
    let mut buckets = Vec::new();
    for (i, (label, endpoint)) in stores.into_iter().enumerate() {
        let bucket = s3::bucket_at(&endpoint, "upload-bench");
        let root = scratch.join(i.to_string());
        std::fs::create_dir_all(&root)?;
        let server = Server::start_with(&pool, &root, |c| {
            c.media_location = vetter::config::MediaLocation::Bucket(bucket.clone());
        })
        .await?;
        buckets.push((label, server));
    }

    let result = measure(s, &pool, &server, &buckets, work).await;
    server.shut_down().await?;
    for (_, b) in buckets {
        b.shut_down().await?;
    }
    pool.close().await;
    result
}

async fn measure(
    s: &Settings,
    pool: &PgPool,
    server: &Server,
    buckets: &[(&str, Server)],
    work: &Path,
) -> anyhow::Result<()> {
    let api = Api::new(pool, &format!("{}/api/v1", server.base)).await?;
    let bucket_apis: Vec<(&str, Api)> = buckets
        .iter()
        .map(|(label, b)| {
            let api = Api {
                base: format!("{}/api/v1", b.base),
                ..api.clone()
            };
            (*label, api)
        })
        .collect();
    api.put(
        &format!("/projects/{PROJECT}"),
        json!({"name": "Upload benchmark",
               "metrics": [{"key": "snr", "label": "S/N", "precision": 1},
                           {"key": "chi_square", "label": "χ²", "precision": 2},
                           {"key": "md", "label": "Modulation index"}]}),
    )
    .await?;

    // Two distinct images per candidate, new ones every round (as a survey
    // would send, so that no rendered preview is already stored either);
    // made before the clock starts. Round 1's are kept for the re-upload.
    let t = Instant::now();
    let n = s.candidates;
    let first = fits_images(n, 1).await?;
    let fits_size = first.first().map_or(0, Vec::len);
    println!(
        "upload: {n} candidates ({} FITS, {} rendered PNGs) per round, batch {}, {} in flight, {} rounds",
        2 * n,
        2 * n,
        s.batch,
        s.concurrency,
        s.rounds
    );
    println!(
        "        {SIDE}x{SIDE} float32 FITS of {fits_size} bytes each, made in {:.1} s; client in-process on {} cores; load average {}",
        t.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );

    let mut rates = Vec::with_capacity(s.rounds);
    let mut bucket_rates = vec![Vec::with_capacity(s.rounds); buckets.len()];
    for round in 1..=s.rounds {
        let later = match round {
            1 => None,
            _ => Some(fits_images(n, round).await?),
        };
        let folder_forms = batches(later.as_deref().unwrap_or(&first), s.batch);
        drop(later);
        let mut runs = vec![(
            "folder",
            &api,
            observation_id(round),
            folder_forms,
            &mut rates,
        )];
        for (((label, api), rates), b) in bucket_apis.iter().zip(&mut bucket_rates).zip(1..) {
            // Other images for each bucket, so that its previews are new too.
            let forms = batches(&fits_images(n, 1000 * b + round).await?, s.batch);
            runs.push((label, api, format!("S{b}{round:03}"), forms, rates));
        }
        // Interleaved, each first in turn, against drift in the machine's load.
        runs.rotate_left((round - 1) % (bucket_apis.len() + 1));
        for (label, api, obs, forms, rates) in runs {
            api.put(
                &format!("/projects/{PROJECT}/observations/{obs}"),
                json!({"start_time": "2024-05-01T12:00:00Z", "pointing": {"ra": 188.0, "dec": -45.0}}),
            )
            .await?;
            let (t, cpu) = (Instant::now(), process_cpu());
            let counts = api.upload(&obs, forms, s.concurrency).await?;
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_per_candidate(cpu, n);
            ensure!(
                counts == (n, 0, 0),
                "round {round} ({label}): (created, updated, unchanged) = {counts:?}, expected ({n}, 0, 0)"
            );
            verify(pool, &obs, n).await?;
            let rate = n as f64 / secs;
            println!(
                "round {round}, {label}: {secs:.2} s, {rate:.0} candidates/s ({:.0} FITS/s received, {:.0} PNG/s rendered){cpu}",
                2.0 * rate,
                2.0 * rate
            );
            rates.push(rate);
        }
    }

    // The same upload again: everything is found unchanged.
    let obs = observation_id(1);
    let forms = batches(&first, s.batch);
    let (t, cpu) = (Instant::now(), process_cpu());
    let counts = api.upload(&obs, forms, s.concurrency).await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_per_candidate(cpu, n);
    ensure!(
        counts == (0, 0, n),
        "re-upload: (created, updated, unchanged) = {counts:?}, expected (0, 0, {n})"
    );
    verify(pool, &obs, n).await?;
    println!(
        "re-upload of round 1 (all unchanged): {secs:.2} s, {:.0} candidates/s{cpu}",
        n as f64 / secs
    );

    let roots = std::iter::once("media".to_string())
        .chain((0..buckets.len()).map(|i| format!("scratch/{i}")));
    for folder in roots {
        let tmp = media_tmp_files(&work.join(&folder));
        ensure!(tmp == 0, "{tmp} temporary files were left in {folder}/tmp");
    }

    let median_folder = median(&mut rates);
    let verdict = if median_folder >= TARGET {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "median, folder: {median_folder:.0} candidates/s (target ≥ {TARGET:.0}): {verdict}   [load average now {}]",
        load_average()
    );
    for ((label, _), rates) in buckets.iter().zip(&mut bucket_rates) {
        let median_bucket = median(rates);
        let share = median_bucket / median_folder;
        let verdict = if share >= BUCKET_SHARE {
            "PASS"
        } else {
            "FAIL"
        };
        println!(
            "median, {label} on this machine: {median_bucket:.0} candidates/s, {:.0} % of the folder's (target ≥ {:.0} %): {verdict}",
            share * 100.0,
            BUCKET_SHARE * 100.0
        );
    }
    Ok(())
}

fn observation_id(round: usize) -> String {
    format!("R{round:03}")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The 1-, 5- and 15-minute load averages, for judging how noisy a run was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// CPU time used so far by this process (server and client; PostgreSQL is
/// not counted), from /proc: less noisy than the wall clock on a busy machine.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After "pid (comm) ": state is field 0, utime 11 and stime 12, in ticks
    // of USER_HZ, which is 100 on Linux.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// "; server+client CPU 1.23 ms/candidate" since `start`, or nothing
/// without /proc.
fn cpu_per_candidate(start: Option<Duration>, n: usize) -> String {
    match (start, process_cpu()) {
        (Some(a), Some(b)) => format!(
            "; server+client CPU {:.2} ms/candidate",
            b.saturating_sub(a).as_secs_f64() * 1000.0 / n as f64
        ),
        _ => String::new(),
    }
}

/// Two distinct 64×64 float32 FITS images for each of `n` candidates, from
/// the app's own writer; each round has its own.
///
/// Written through a folder in memory (/dev/shm) where there is one: on ext4
/// without a journal, thousands of files just created and deleted make the
/// server's next file creations slow (new inodes skip recently deleted ones,
/// reading each), which would charge the bench's own set-up to the server.
async fn fits_images(n: usize, round: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    tokio::task::spawn_blocking(move || write_fits_images(2 * n, (round * 2 * n) as u64))
        .await
        .context("generating FITS")?
}

fn write_fits_images(count: usize, first_seed: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let name = format!("vetter-bench-{}-fits", std::process::id());
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        TempDir::create_in(shm, &name)?
    } else {
        TempDir::create(&name)?
    };
    let path = dir.path().join("img.fits");
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let peak = 5.0 + (i % 50) as f32;
        let seed = first_seed + i as u64;
        let data = vetter::fits::synth_point_source(SIDE, SIDE, peak, 1.0, seed);
        vetter::fits::write_image(&path, SIDE, SIDE, &data, None)?;
        out.push(std::fs::read(&path)?);
    }
    Ok(out)
}

/// The multipart requests of one round, built before the clock starts.
fn batches(images: &[Vec<u8>], batch: usize) -> Vec<(usize, Form)> {
    let n = images.len() / 2;
    (0..n)
        .step_by(batch)
        .map(|first| {
            let last = (first + batch).min(n);
            let mut list = Vec::with_capacity(last - first);
            let mut form = Form::new();
            let mut parts = Vec::with_capacity(2 * (last - first));
            for i in first..last {
                let mut files = serde_json::Map::new();
                for (k, role) in ROLES.iter().enumerate() {
                    let part = format!("c{i}-{k}");
                    files.insert(role.to_string(), Value::String(part.clone()));
                    parts.push((part, images[2 * i + k].clone()));
                }
                let ra = (188.0 + (i % 1000) as f64 * 0.001) % 360.0;
                let dec = -45.0 + (i / 1000) as f64 * 0.001;
                list.push(json!({
                    "name": format!("J{i:06}"),
                    "ra": ra, "dec": dec,
                    "metrics": {"snr": 5.0 + (i % 40) as f64, "chi_square": 1.5 * (i % 7) as f64,
                                "md": 0.01 * (i % 90) as f64},
                    "files": files,
                }));
            }
            let body = json!({ "candidates": list }).to_string();
            form = form.part(
                "candidates",
                Part::text(body)
                    .mime_str("application/json")
                    .expect("a valid mime type"),
            );
            for (name, bytes) in parts {
                let file_name = format!("{name}.fits");
                form = form.part(name, Part::bytes(bytes).file_name(file_name));
            }
            (last - first, form)
        })
        .collect()
}

/// The uploader: an admin's API token and a client.
#[derive(Clone)]
struct Api {
    client: Client,
    base: String,
    token: String,
}

impl Api {
    async fn new(pool: &PgPool, base: &str) -> anyhow::Result<Self> {
        let hash = tokio::task::spawn_blocking(|| {
            vetter::auth::password::hash_blocking("bench-pipeline-password")
        })
        .await??;
        let name: Username = "pipeline"
            .parse()
            .map_err(|e| anyhow::anyhow!("username: {e:?}"))?;
        let user = vetter::db::users::insert(pool, &name, &hash, Role::Admin).await?;
        let (token, _) = vetter::db::api_tokens::create(
            pool,
            user,
            "bench",
            vetter::domain::token::TokenScopes::UPLOAD,
        )
        .await?;
        let client = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(600))
            .build()?;
        Ok(Self {
            client,
            base: base.to_string(),
            token,
        })
    }

    async fn put(&self, path: &str, body: Value) -> anyhow::Result<()> {
        let r = self
            .client
            .put(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        ensure!(
            status.is_success(),
            "PUT {path}: {status}: {}",
            r.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// Sends the batches, `concurrency` at a time; (created, updated, unchanged).
    async fn upload(
        &self,
        observation: &str,
        forms: Vec<(usize, Form)>,
        concurrency: usize,
    ) -> anyhow::Result<(usize, usize, usize)> {
        let url = format!(
            "{}/projects/{PROJECT}/observations/{observation}/candidates",
            self.base
        );
        let mut replies = futures_util::stream::iter(forms)
            .map(|(size, form)| {
                let request = self
                    .client
                    .post(&url)
                    .bearer_auth(&self.token)
                    .multipart(form);
                let url = &url;
                async move {
                    let r = request.send().await?;
                    let status = r.status();
                    let body = r.text().await?;
                    ensure!(status == StatusCode::OK, "POST {url}: {status}: {body}");
                    let v: Value = serde_json::from_str(&body)?;
                    let count = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
                    let counts = (count("created"), count("updated"), count("unchanged"));
                    ensure!(
                        counts.0 + counts.1 + counts.2 == size,
                        "a batch of {size} answered {body}"
                    );
                    Ok(counts)
                }
            })
            .buffer_unordered(concurrency);
        let mut total = (0, 0, 0);
        while let Some(r) = replies.next().await {
            let (c, u, k) = r?;
            total = (total.0 + c, total.1 + u, total.2 + k);
        }
        Ok(total)
    }
}

/// The round really did the work: `n` candidates, each with its two FITS
/// files and their two rendered PNGs.
async fn verify(pool: &PgPool, observation: &str, n: usize) -> anyhow::Result<()> {
    let (candidates, fits, pngs, derived): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM candidates c WHERE c.observation_id = o.id),
                count(*) FILTER (WHERE f.content_type = 'application/fits'),
                count(*) FILTER (WHERE f.content_type = 'image/png'),
                count(*) FILTER (WHERE f.derived_from IS NOT NULL)
         FROM observations o
         JOIN projects p ON p.id = o.project_id
         LEFT JOIN candidates c ON c.observation_id = o.id
         LEFT JOIN files f ON f.candidate_id = c.id
         WHERE p.slug = $1 AND o.external_id = $2
         GROUP BY o.id",
    )
    .bind(PROJECT)
    .bind(observation)
    .fetch_one(pool)
    .await
    .with_context(|| format!("counting the rows of observation {observation}"))?;
    let n = n as i64;
    ensure!(
        (candidates, fits, pngs, derived) == (n, 2 * n, 2 * n, 2 * n),
        "observation {observation}: {candidates} candidates, {fits} FITS, {pngs} PNGs \
         ({derived} rendered); expected {n}, {}, {} ({})",
        2 * n,
        2 * n,
        2 * n
    );
    Ok(())
}

/// Files left in the media folder's `tmp/` (there should be none but the
/// empty scratch files a bucket's store keeps for reuse).
fn media_tmp_files(media_root: &Path) -> usize {
    std::fs::read_dir(media_root.join("tmp")).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| !vetter::media::is_kept_scratch(&e.path()))
            .count()
    })
}

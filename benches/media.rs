//! Media requests (`make bench`): latency of `/media/...` through the
//! repository's nginx configuration with the objects in the folder and in
//! the S3 server `make bench` starts (a real Ceph RADOS gateway), and the
//! app's memory while it streams a 1 GB object from the bucket itself.
//!
//! Two `vetter serve` processes (release build) on one fresh database, one
//! per backend, each behind its own nginx (X-Accel-Redirect: nginx sends a
//! folder's file itself, and fetches a bucket's object with a presigned
//! request). A signed-in reviewer asks for a 30 kB preview, one request at a
//! time and then eight at a time. Then a 1 GB object is published into the
//! bucket and read through the app without nginx, sampling the process's
//! resident memory as it streams.
//!
//! Settings (environment):
//!   DATABASE_URL                superuser URL of a server with q3c in template1
//!   VETTER_TEST_S3_*            the S3 server (containers/local/objectstore.sh)
//!   VETTER_BENCH_MEDIA_REQUESTS requests per measurement (default 2000)
//!   VETTER_BENCH_MEDIA_BIG_MB   size of the streamed object (default 1024)

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures_util::StreamExt;
use reqwest::{header, Client, StatusCode};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use vetter::config::MediaLocation;
use vetter::db::files::{NewFile, Owner};
use vetter::domain::{ObservationId, Role, Username};
use vetter::media::{ContentKind, MediaStore};

#[path = "../tests/nginx/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../tests/common/s3.rs"]
mod s3;
mod survey;

use harness::{Nginx, Site};
use survey::{env_num, BenchDb, ServerProcess, TempDir};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("media bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let requests = env_num("VETTER_BENCH_MEDIA_REQUESTS", 2000, 10, 1_000_000)? as usize;
    let big_mb = env_num("VETTER_BENCH_MEDIA_BIG_MB", 1024, 1, 16 * 1024)?;
    let admin = survey::admin_options()?;
    let admin_url = std::env::var("DATABASE_URL")?;
    let rt = survey::runtime()?;
    let pid = std::process::id();
    let db = BenchDb::create(&rt, &admin_url, format!("vetter_bench_media_{pid}"))?;
    let work = TempDir::create(&format!("vetter-bench-media-{pid}"))?;
    rt.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(db.options())
            .await?;
        vetter::db::migrate(&pool).await?;
        let result = bench(&pool, &admin, &db.name, work.path(), requests, big_mb).await;
        pool.close().await;
        result
    })
}

/// One backend behind its own nginx.
struct Site2 {
    label: &'static str,
    server: ServerProcess,
    nginx: Nginx,
}

async fn bench(
    pool: &PgPool,
    admin: &sqlx::postgres::PgConnectOptions,
    db_name: &str,
    work: &std::path::Path,
    requests: usize,
    big_mb: u64,
) -> anyhow::Result<()> {
    let bucket = s3::bucket("media-bench");
    let mut sites = Vec::new();
    for label in ["folder", "bucket"] {
        let dir = harness::TempDir::new(&format!("bench-{label}"));
        let mut site = Site::new(dir.path(), "localhost");
        let mut env = vec![
            ("VETTER_BEHIND_PROXY".to_string(), "1".to_string()),
            (
                "VETTER_MEDIA_ACCEL_PREFIX".into(),
                "/protected-media".into(),
            ),
            ("VETTER_PUBLIC_URL".into(), site.public_origin.clone()),
            (
                "VETTER_MEDIA_ROOT".into(),
                site.media_dir.display().to_string(),
            ),
        ];
        if label == "bucket" {
            env.extend(s3::env_of(&bucket));
            site.s3_endpoint = s3::endpoint();
        }
        let server = ServerProcess::start_on(admin, db_name, &env).await?;
        site.app_servers = vec![server.base.rsplit(':').next().unwrap().parse()?];
        let nginx = Nginx::start(dir, site);
        sites.push(Site2 {
            label,
            server,
            nginx,
        });
    }

    // One preview per backend, uploaded through its server.
    let token = pipeline_token(pool).await?;
    let preview = preview_png();
    let mut urls = Vec::new();
    for (i, s) in sites.iter().enumerate() {
        let project = upload_preview(&s.server.base, &token, i, &preview).await?;
        let id: i64 = sqlx::query_scalar(
            "SELECT f.id FROM files f JOIN candidates c ON c.id = f.candidate_id
             JOIN projects p ON p.id = c.project_id WHERE p.slug = $1 AND f.role = 'preview'",
        )
        .bind(&project)
        .fetch_one(pool)
        .await?;
        urls.push(format!("/media/{id}/preview.png"));
    }
    let reviewer = reviewer(pool).await?;

    println!(
        "media: a {} byte PNG through nginx (https, X-Accel-Redirect), {requests} requests per run; load average {}",
        preview.len(),
        load_average()
    );
    // Interleaved: folder, bucket, folder, bucket.
    for round in 1..=2 {
        for (s, url) in sites.iter().zip(&urls) {
            let c = signed_in(&s.nginx, &reviewer).await?;
            let full = s.nginx.https_url(url);
            let (lat, rate) = measure(&c, &full, requests, 1, preview.len()).await?;
            let (_, rate8) = measure(&c, &full, requests, 8, preview.len()).await?;
            println!(
                "round {round}, {:6}: one at a time p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms ({rate:.0} req/s); eight at a time {rate8:.0} req/s",
                s.label,
                lat[0] * 1e3,
                lat[1] * 1e3,
                lat[2] * 1e3
            );
        }
    }

    // A 1 GB object streamed from the bucket by the app itself: a third
    // server, without nginx in front (so on plain http, and no X-Accel).
    drop(sites);
    let big = big_object(pool, &bucket, work, big_mb).await?;
    let direct = ServerProcess::start_on(admin, db_name, &s3::env_of(&bucket)).await?;
    let (c, _) = survey::log_in(&direct.base, &reviewer).await?;
    let before = direct.memory_mib().context("reading /proc")?;
    let t = Instant::now();
    let r = c
        .get(format!("{}/media/{big}/big.csv", direct.base))
        .send()
        .await?;
    ensure!(r.status() == StatusCode::OK, "big object: {}", r.status());
    let mut stream = r.bytes_stream();
    let (mut got, mut peak_rss) = (0u64, before.0);
    let mut next_sample = Instant::now();
    while let Some(chunk) = stream.next().await {
        got += chunk?.len() as u64;
        if Instant::now() >= next_sample {
            if let Some((rss, _)) = direct.memory_mib() {
                peak_rss = peak_rss.max(rss);
            }
            next_sample = Instant::now() + Duration::from_millis(20);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    ensure!(
        got == big_mb << 20,
        "streamed {got} bytes, expected {}",
        big_mb << 20
    );
    let after = direct.memory_mib().context("reading /proc")?;
    let grew = peak_rss - before.0;
    let verdict = if grew < 64.0 { "PASS" } else { "FAIL" };
    println!(
        "streaming {big_mb} MiB from the bucket through the app: {secs:.1} s ({:.0} MiB/s); resident {:.1} MiB before, {:.1} MiB at most while streaming, {:.1} MiB after (+{grew:.1} MiB; flat means < 64 MiB): {verdict}",
        big_mb as f64 / secs,
        before.0,
        peak_rss,
        after.0
    );
    Ok(())
}

/// (p50, p90, p99 in seconds, requests per second) of `n` GETs, `conc` at a time.
async fn measure(
    c: &Client,
    url: &str,
    n: usize,
    conc: usize,
    size: usize,
) -> anyhow::Result<([f64; 3], f64)> {
    let t = Instant::now();
    let mut lat: Vec<f64> = futures_util::stream::iter(0..n)
        .map(|_| async {
            let t = Instant::now();
            let r = c.get(url).send().await?;
            ensure!(r.status() == StatusCode::OK, "GET {url}: {}", r.status());
            let body = r.bytes().await?;
            ensure!(body.len() == size, "GET {url}: {} bytes", body.len());
            anyhow::Ok(t.elapsed().as_secs_f64())
        })
        .buffer_unordered(conc)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Ok(([q(0.5), q(0.9), q(0.99)], rate))
}

async fn pipeline_token(pool: &PgPool) -> anyhow::Result<String> {
    let hash = vetter::auth::password::hash_blocking("bench-pipeline-password")?;
    let name: Username = "pipeline".parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let user = vetter::db::users::insert(pool, &name, &hash, Role::Admin).await?;
    Ok(vetter::db::api_tokens::create(
        pool,
        user,
        "bench",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await?
    .0)
}

/// A reviewer account (named like the survey's, which `log_in` expects).
async fn reviewer(pool: &PgPool) -> anyhow::Result<String> {
    let hash = vetter::auth::password::hash_blocking(survey::PASSWORD)?;
    let name: Username = "reviewer01".parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    vetter::db::users::insert(pool, &name, &hash, Role::Reviewer).await?;
    Ok("reviewer01".into())
}

/// A client signed in through `nginx`.
async fn signed_in(nginx: &Nginx, username: &str) -> anyhow::Result<Client> {
    let c = harness::client_builder()
        .cookie_store(true)
        .pool_max_idle_per_host(16)
        .build()?;
    let page = c
        .get(nginx.https_url("/login"))
        .send()
        .await?
        .text()
        .await?;
    let token = survey::csrf_token(&page).context("no CSRF token on /login")?;
    let r = c
        .post(nginx.https_url("/login"))
        .header(header::ORIGIN, &nginx.site.public_origin)
        .form(&[
            ("username", username),
            ("password", survey::PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await?;
    ensure!(r.status() == StatusCode::SEE_OTHER, "login: {}", r.status());
    Ok(c)
}

fn preview_png() -> Vec<u8> {
    // Noise does not compress: about 30 kB, like a survey's preview.
    let mut x = 12345u32;
    let img = image::GrayImage::from_fn(180, 170, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Luma([(x & 0xff) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG");
    out.into_inner()
}

/// Uploads one candidate with the preview in a project of its own; returns
/// the project's slug.
async fn upload_preview(base: &str, token: &str, i: usize, png: &[u8]) -> anyhow::Result<String> {
    let c = Client::builder().no_proxy().build()?;
    let api = |p: &str| format!("{base}/api/v1{p}");
    let project = format!("bench{i}");
    for (path, body) in [
        (
            format!("/projects/{project}"),
            serde_json::json!({"name": project}),
        ),
        (
            format!("/projects/{project}/observations/1"),
            serde_json::json!({"start_time": "2024-05-01T12:00:00Z"}),
        ),
    ] {
        let r = c
            .put(api(&path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        ensure!(r.status().is_success(), "PUT {path}: {}", r.status());
    }
    let form = reqwest::multipart::Form::new()
        .part(
            "candidate",
            reqwest::multipart::Part::text(
                serde_json::json!({"ra": 1.0, "dec": -2.0, "files": {"preview": "png"}})
                    .to_string(),
            )
            .mime_str("application/json")?,
        )
        .part(
            "png",
            reqwest::multipart::Part::bytes(png.to_vec()).file_name("p.png"),
        );
    let r = c
        .put(api(&format!(
            "/projects/{project}/observations/1/candidates/c1"
        )))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    let status = r.status();
    ensure!(
        status == StatusCode::CREATED,
        "upload: {status}: {}",
        r.text().await.unwrap_or_default()
    );
    Ok(project)
}

/// Publishes `mb` MiB into the bucket (a multipart upload, verified) as a
/// table of observation 1 of the first project; returns its file id.
async fn big_object(
    pool: &PgPool,
    bucket: &vetter::config::BucketSettings,
    work: &std::path::Path,
    mb: u64,
) -> anyhow::Result<i64> {
    let store = MediaStore::open(work, &MediaLocation::Bucket(bucket.clone()))?;
    let line = b"1,2,3,4,5,6,7\n";
    let reader = tokio::io::AsyncReadExt::take(
        tokio_util::io::StreamReader::new(futures_util::stream::repeat_with(move || {
            Ok::<bytes::Bytes, std::io::Error>(line.repeat(4096).into())
        })),
        mb << 20,
    );
    let t = Instant::now();
    let temp = store.write_temp(reader, u64::MAX).await?;
    let mut tx = pool.begin().await?;
    let mut publication = vetter::ingest::publish::Publication::new(&store, pool);
    publication
        .publish(&mut tx, [(&temp, ContentKind::Csv)])
        .await?;
    let obs: i64 = sqlx::query_scalar("SELECT min(id) FROM observations")
        .fetch_one(&mut *tx)
        .await?;
    let id = vetter::db::files::upsert(
        &mut tx,
        Owner::Observation(ObservationId(obs)),
        &NewFile {
            role: "table",
            kind: ContentKind::Csv,
            size: temp.size,
            sha256: &temp.sha256,
            original_name: "big.csv",
            derived_from: None,
            animation: None,
        },
    )
    .await?;
    tx.commit().await?;
    publication.committed();
    println!(
        "published {mb} MiB into the bucket (multipart, ETag verified) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(id.0 .0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

//! Reference catalogues at survey scale (`make bench`):
//! - loading a 3,000,000-row catalogue (RACS-sized) from CSV with
//!   `vetter catalogue load`, target ≤ 60 s;
//! - matching a project of the survey against it (reported);
//! - the rating page's known-sources panel (`/candidates/{id}/nearby`:
//!   stored matches, catalogue sources and candidates within 60″, the
//!   association) on the 1,000,000-candidate survey, median ≤ 5 ms, beside
//!   `/healthz` in the same run for the HTTP floor.
//!
//! The catalogue: a source within 4″ of every tenth candidate of the survey
//! (so matched candidates have something to show), the rest spread evenly
//! over the sky. It is removed again at the end.
//!
//! Settings (environment):
//!   DATABASE_URL                       superuser URL of a server with q3c in template1
//!   VETTER_BENCH_CATALOGUE_ROWS        catalogue rows (default 3000000)
//!   VETTER_BENCH_RATING_CANDIDATES     the survey's size (default 1000000)

use std::io::Write;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

mod survey;
use survey::*;

const CATALOGUE: &str = "bench-racs";
/// Panel requests measured.
const REQUESTS: usize = 400;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("catalogue bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn run() -> anyhow::Result<()> {
    let rows = env_num("VETTER_BENCH_CATALOGUE_ROWS", 3_000_000, 1000, 50_000_000)?;
    let s = Size::from_env()?;
    let rt = runtime()?;
    let admin = admin_options()?;
    let pool = rt.block_on(prepare_database(&s, &admin))?;
    let db_url = {
        let base = std::env::var("DATABASE_URL")?;
        let cut = base.rfind('/').context("DATABASE_URL has no database")?;
        format!("{}/{}", &base[..cut], db_name())
    };

    // The file: near every tenth candidate, then the sky.
    let dir = TempDir::create("catalogue-bench")?;
    let file = dir.path().join("racs.csv");
    let positions: Vec<(f64, f64)> = rt.block_on(
        sqlx::query_as("SELECT ra, dec FROM candidates WHERE id % 10 = 0 ORDER BY id")
            .fetch_all(&pool),
    )?;
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        writeln!(
            out,
            "source_name,ra [deg],dec [deg],total_flux [mJy],peak_flux [mJy/beam],maj_axis [arcsec]"
        )?;
        let mut rng = Rng(7);
        let mut n = 0u64;
        let mut row = |ra: f64, dec: f64, rng: &mut Rng| {
            n += 1;
            writeln!(
                out,
                "RACS-B {n},{ra:.7},{dec:.7},{:.3},{:.3},{:.2}",
                rng.unit() * 100.0,
                rng.unit() * 50.0,
                10.0 + rng.unit() * 30.0
            )
        };
        for (ra, dec) in positions.iter().take(rows as usize) {
            // Up to 4″ away: 0.001° in Dec.
            let d = (rng.unit() - 0.5) * 0.002;
            row(*ra, (dec + d).clamp(-90.0, 90.0), &mut rng)?;
        }
        for _ in positions.len().min(rows as usize)..rows as usize {
            // Even over the sphere: uniform RA, uniform sin(Dec).
            let ra = rng.unit() * 360.0;
            let dec = (rng.unit() * 2.0 - 1.0).asin().to_degrees();
            row(ra, dec, &mut rng)?;
        }
        out.flush()?;
    }
    let size_mb = std::fs::metadata(&file)?.len() as f64 / 1e6;

    let bin = env!("CARGO_BIN_EXE_vetter");
    let load = || -> anyhow::Result<f64> {
        let t = Instant::now();
        let out = Command::new(bin)
            .args(["catalogue", "load", CATALOGUE])
            .arg(&file)
            .env("DATABASE_URL", &db_url)
            .output()?;
        ensure!(
            out.status.success(),
            "vetter catalogue load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(t.elapsed().as_secs_f64())
    };
    let first = load()?;
    // A reload replaces it: the same work plus dropping the old rows.
    let second = load()?;
    let verdict = |ok: bool| if ok { "ok" } else { "FAIL" };
    println!(
        "catalogue: loading {} rows ({size_mb:.0} MB of CSV): {first:.1} s, reloading {second:.1} s (target ≤ 60 s: {})",
        thousands(rows as i64),
        verdict(first.max(second) <= 60.0)
    );

    rt.block_on(async {
        let id: vetter::domain::CatalogueId =
            sqlx::query_scalar("SELECT id FROM catalogues WHERE name = $1")
                .bind(CATALOGUE)
                .fetch_one(&pool)
                .await?;
        let project = vetter::domain::ProjectId(1);
        let t = Instant::now();
        let mut tx = pool.begin().await?;
        let made = vetter::db::catalogues::set_choices(&mut tx, project, &[(id, 10.0)]).await?;
        tx.commit().await?;
        let (n,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM candidates WHERE project_id = 1")
                .fetch_one(&pool)
                .await?;
        println!(
            "catalogue: matching project 1 ({} candidates) within 10″: {made} matches in {:.1} s",
            thousands(n),
            t.elapsed().as_secs_f64()
        );

        // The panel, on candidates that have matches, one request at a time.
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT candidate_id FROM catalogue_nearest WHERE catalogue_id = $1
              ORDER BY candidate_id LIMIT $2",
        )
        .bind(id)
        .bind(REQUESTS as i64)
        .fetch_all(&pool)
        .await?;
        ensure!(!ids.is_empty(), "no candidate was matched");
        let media = TempDir::create("catalogue-bench-media")?;
        let server = Server::start(&pool, media.path()).await?;
        let (client, _) = log_in(&server.base, "reviewer01").await?;
        let time = |url: String| {
            let client = client.clone();
            async move {
                let t = Instant::now();
                let r = client.get(&url).send().await?;
                ensure!(r.status().is_success(), "{url}: {}", r.status());
                let body = r.text().await?;
                Ok::<_, anyhow::Error>((t.elapsed().as_secs_f64() * 1e3, body))
            }
        };
        // Warm both up.
        for i in ids.iter().take(20) {
            time(format!("{}/candidates/{i}/nearby", server.base)).await?;
        }
        let mut panel = Vec::new();
        let mut health = Vec::new();
        for i in &ids {
            let (ms, body) = time(format!("{}/candidates/{i}/nearby", server.base)).await?;
            ensure!(body.contains("★"), "candidate {i}: no stored match shown");
            panel.push(ms);
            health.push(time(format!("{}/healthz", server.base)).await?.0);
        }
        let (p50, p95) = (median(panel.clone()), pct(panel, 0.95));
        let h50 = median(health);
        println!(
            "catalogue: known-sources panel at {} candidates, {} requests: median {p50:.2} ms, p95 {p95:.2} ms \
             (/healthz median {h50:.2} ms; target ≤ 5 ms: {})",
            thousands(s.candidates),
            ids.len(),
            verdict(p50 <= 5.0)
        );
        server.shut_down().await?;
        tokio::time::sleep(Duration::from_millis(10)).await;

        let name = vetter::domain::names::CatalogueName::parse(CATALOGUE)
            .map_err(|p| anyhow::anyhow!(p.message))?;
        vetter::db::catalogues::remove(&pool, &name).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}

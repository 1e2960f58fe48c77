//! The queue that learns (`make bench`): a simulated survey rated over HTTP,
//! and the model at a million candidates.
//!
//! Part 1, the simulation. A synthetic survey whose hidden truth is a known
//! non-linear rule of six metrics (real when x0 > 0.8 and x1 < 0.4, or when
//! x2·x3 > 0.75: about 11 % real) is uploaded twice through the upload API,
//! once per arm, each copy with the same gold candidates (a fifth as many,
//! 70 % real, drawn from the same rule, flagged gold at upload). Three
//! simulated reviewers with known error rates (recall 0.92 / 0.90 / 0.88,
//! false-positive rate 0.08 / 0.10 / 0.12: 10 % label noise on average)
//! take turns: each asks the app for its next candidate (`GET /next`, mode
//! "not rated by me" in projects where one verdict settles a candidate, so
//! each is rated once; gold mixed in at 20 %) and rates it by the truth and
//! its own errors (`POST /candidates/{id}/rating`). The server trains in the background after
//! every 200 ratings. One arm walks "most likely real first", the other the
//! shuffled order; each runs until 90 % of the real survey candidates have
//! been rated. Targets:
//!   - survey ratings to find 90 % of the real ones: shuffled / likely ≥ 3;
//!   - held-out ROC AUC after 1,000 ratings (likely arm; candidates nobody
//!     rated, against the truth) ≥ 0.90;
//!   - each reviewer's recall as the app estimates it from gold (on
//!     `/ratings`) within 5 percentage points of the true rate.
//!
//! Part 2, a million candidates. A fresh database gets one project of
//! 1,000,000 candidates with six metrics and 100,000 ratings, generated in
//! SQL. The release server runs in its own process (so its memory is its
//! own); eight reviewers rate on the "most likely real first" queue, paced
//! 250 ms apart, while an administrator presses "Train now" twice. Targets:
//! training ≤ 60 s, scoring every candidate ≤ 30 s, the server's peak
//! memory during training ≤ 500 MB above its idle memory, and rate-and-next
//! p99 ≤ 20 ms (the server's own time, from its request log; the client's
//! is printed beside it) while training runs.
//!
//! A missed target prints FAIL; only errors make the exit status non-zero.
//!
//! Settings (environment):
//!   DATABASE_URL                  superuser URL of a server with q3c in template1
//!   VETTER_BENCH_MODEL_SURVEY     survey candidates per arm (default 10,000; 0 skips part 1)
//!   VETTER_BENCH_MODEL_CANDIDATES candidates of part 2 (default 1,000,000; 0 skips it)
//!   VETTER_BENCH_MODEL_RATINGS    ratings of part 2 (default 100,000)

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use vetter::domain::{ProjectId, Role, Username};
use vetter::model::run::{self, Outcome};

mod survey;
use survey::*;

const RATIO_TARGET: f64 = 3.0;
const AUC_TARGET: f64 = 0.90;
const RECALL_TOLERANCE: f64 = 0.05;
const TRAIN_TARGET_S: f64 = 60.0;
const SCORE_TARGET_S: f64 = 30.0;
const MEMORY_TARGET_MB: f64 = 500.0;
const P99_TARGET_MS: f64 = 20.0;

const GOLD_RATE: f64 = 0.2;
/// (recall, false-positive rate) of each simulated reviewer.
const REVIEWERS: [(f64, f64); 3] = [(0.92, 0.08), (0.90, 0.10), (0.88, 0.12)];

fn main() -> ExitCode {
    finish("model bench", run())
}

fn run() -> anyhow::Result<Vec<String>> {
    let survey_n = env_num("VETTER_BENCH_MODEL_SURVEY", 10_000, 0, 1_000_000)? as usize;
    let big = env_num("VETTER_BENCH_MODEL_CANDIDATES", 1_000_000, 0, 100_000_000)? as i64;
    let big_ratings = env_num("VETTER_BENCH_MODEL_RATINGS", 100_000, 100, 100_000_000)? as i64;
    let url = std::env::var("DATABASE_URL")?;
    let rt = runtime()?;
    let mut failed = Vec::new();
    if survey_n > 0 {
        let db = BenchDb::create(&rt, &url, "vetter_bench_model_sim".into())?;
        let opts = db.options();
        rt.block_on(simulate(&opts, survey_n, &mut failed))?;
    }
    if big > 0 {
        let db = BenchDb::create(&rt, &url, "vetter_bench_model_1m".into())?;
        let opts = db.options();
        rt.block_on(at_scale(&opts, &db.name, big, big_ratings, &mut failed))?;
    }
    Ok(failed)
}

/// One synthetic candidate: its metrics and the truth.
struct Synthetic {
    name: String,
    metrics: [f64; 6],
    real: bool,
}

fn synthesise(n: usize, rng: &mut Rng, prefix: &str) -> Vec<Synthetic> {
    (0..n)
        .map(|i| {
            let mut m = [0.0; 6];
            for v in &mut m {
                *v = (rng.unit() * 1e4).round() / 1e4;
            }
            let real = (m[0] > 0.8 && m[1] < 0.4) || m[2] * m[3] > 0.75;
            // Names in no particular order, so that walking by name (what
            // the queue does before there are scores) is a fair sample.
            let name = format!("{prefix}{:016x}-{i}", rng.next());
            Synthetic {
                name,
                metrics: m,
                real,
            }
        })
        .collect()
}

struct Uploader {
    client: Client,
    base: String,
    token: String,
}

impl Uploader {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let r = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        ensure!(status.is_success(), "{method} {path}: {status}: {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Uploads the candidates (gold ones flagged); name → id.
    async fn candidates(
        &self,
        project: &str,
        list: &[(&Synthetic, bool)],
    ) -> anyhow::Result<HashMap<String, i64>> {
        let metric_keys = ["x0", "x1", "x2", "x3", "x4", "x5"];
        let mut ids = HashMap::new();
        for (b, batch) in list.chunks(1000).enumerate() {
            let cands: Vec<Value> = batch
                .iter()
                .enumerate()
                .map(|(i, (s, gold))| {
                    let metrics: serde_json::Map<String, Value> = metric_keys
                        .iter()
                        .zip(s.metrics)
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect();
                    let k = b * 1000 + i;
                    let mut c = json!({"name": s.name, "ra": (k as f64 * 0.0137) % 360.0,
                                       "dec": -60.0 + (k as f64 * 0.0071) % 50.0, "metrics": metrics});
                    if *gold {
                        c["gold"] = json!(if s.real { "real" } else { "not_real" });
                    }
                    c
                })
                .collect();
            let body = self
                .send(
                    reqwest::Method::POST,
                    &format!("/projects/{project}/observations/o1/candidates"),
                    json!({ "candidates": cands }),
                )
                .await?;
            for c in body["candidates"]
                .as_array()
                .context("no candidates in the answer")?
            {
                ids.insert(
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["id"].as_i64().unwrap_or_default(),
                );
            }
        }
        Ok(ids)
    }
}

struct SimReviewer {
    client: Client,
    token: String,
    recall: f64,
    fpr: f64,
    rng: Rng,
    user: i64,
}

impl SimReviewer {
    async fn set_queue(&self, base: &str, project: &str, order: &str) -> anyhow::Result<()> {
        let r = self
            .client
            .post(format!("{base}/queue"))
            .form(&[
                ("project", project),
                ("order", order),
                ("mode", "unrated_by_me"),
                ("csrf_token", &self.token),
            ])
            .send()
            .await?;
        ensure!(
            r.status() == StatusCode::SEE_OTHER,
            "setting a queue: {}",
            r.status()
        );
        Ok(())
    }

    /// Asks for the next candidate and rates it; the candidate, or none
    /// when the queue is empty.
    async fn step(
        &mut self,
        base: &str,
        truth: &HashMap<i64, bool>,
    ) -> anyhow::Result<Option<i64>> {
        let r = self
            .client
            .get(format!("{base}/next"))
            .header("HX-Request", "true")
            .send()
            .await?;
        let body = r.text().await?;
        let Some(id) = candidate_id(&body) else {
            return Ok(None);
        };
        let real = *truth
            .get(&id)
            .context("the queue showed an unknown candidate")?;
        let says_real = self.rng.unit() < if real { self.recall } else { self.fpr };
        let verdict = if says_real { "real" } else { "not_real" };
        let key = format!("{:x}", self.rng.next());
        let r = self
            .client
            .post(format!("{base}/candidates/{id}/rating"))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", &self.token)
            .form(&[("verdict", verdict), ("key", &key)])
            .send()
            .await?;
        let status = r.status();
        ensure!(
            status == StatusCode::OK,
            "rating {id}: {status}: {}",
            r.text().await?
        );
        Ok(Some(id))
    }
}

struct ArmResult {
    /// Survey ratings (gold left out) when 90 % of the real ones were rated.
    to_90: usize,
    gold_ratings: usize,
    auc_at_1000: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
async fn arm(
    base: &str,
    pool: &PgPool,
    project: (&str, ProjectId),
    order: &str,
    reviewers: &mut [SimReviewer],
    truth: &HashMap<i64, bool>,
    gold: &HashSet<i64>,
    measure_auc: bool,
) -> anyhow::Result<ArmResult> {
    for r in reviewers.iter() {
        r.set_queue(base, project.0, order).await?;
    }
    let reals = truth
        .iter()
        .filter(|(id, real)| **real && !gold.contains(id))
        .count();
    let mut found = HashSet::new();
    let (mut survey, mut golds) = (0usize, 0usize);
    let mut auc = None;
    let started = Instant::now();
    'walk: loop {
        for r in reviewers.iter_mut() {
            let Some(id) = r.step(base, truth).await? else {
                break 'walk;
            };
            if gold.contains(&id) {
                golds += 1;
                continue;
            }
            survey += 1;
            if truth[&id] {
                found.insert(id);
            }
            if measure_auc && survey == 1000 {
                auc = Some(held_out_auc(pool, project.1, truth, gold).await?);
            }
            if found.len() * 10 >= reals * 9 {
                break 'walk;
            }
        }
    }
    println!(
        "  {order:<9} arm: {} survey ratings ({} gold) found {} of {} real ones in {:.0} s",
        thousands(survey as i64),
        thousands(golds as i64),
        found.len(),
        reals,
        started.elapsed().as_secs_f64()
    );
    Ok(ArmResult {
        to_90: survey,
        gold_ratings: golds,
        auc_at_1000: auc,
    })
}

/// Trains on what has been rated so far and scores the candidates nobody
/// rated against the truth.
async fn held_out_auc(
    pool: &PgPool,
    project: ProjectId,
    truth: &HashMap<i64, bool>,
    gold: &HashSet<i64>,
) -> anyhow::Result<f64> {
    loop {
        match run::train(pool, project).await? {
            Outcome::Busy => tokio::time::sleep(Duration::from_millis(200)).await,
            Outcome::NotEnough(why) => anyhow::bail!("no model after 1,000 ratings: {why}"),
            Outcome::Trained { .. } => break,
        }
    }
    let rows: Vec<(i64, f32)> = sqlx::query_as(
        "SELECT s.candidate_id, s.p_real FROM candidate_scores s JOIN candidates c ON c.id = s.candidate_id
          WHERE s.project_id = $1 AND c.rating_count = 0",
    )
    .bind(project)
    .fetch_all(pool)
    .await?;
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for (id, p) in rows {
        if !gold.contains(&id) {
            scores.push(f64::from(p));
            labels.push(f64::from(u8::from(truth[&id])));
        }
    }
    Ok(vetter::model::auc(&scores, &labels))
}

async fn simulate(
    opts: &sqlx::postgres::PgConnectOptions,
    n: usize,
    failed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect_with(opts.clone())
        .await?;
    vetter::db::MIGRATOR.run(&pool).await?;
    let media = TempDir::create("vetter-bench-model")?;
    let server = Server::start_with(&pool, media.path(), |c| {
        c.model_check = Some(Duration::from_secs(1));
    })
    .await?;
    let base = server.base.clone();
    let hash =
        tokio::task::spawn_blocking(|| vetter::auth::password::hash_blocking(PASSWORD)).await??;
    let name: Username = "pipeline".parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let admin = vetter::db::users::insert(&pool, &name, &hash, Role::Admin).await?;
    let (token, _) = vetter::db::api_tokens::create(
        &pool,
        admin,
        "bench",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await?;
    let up = Uploader {
        client: Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(600))
            .build()?,
        base: format!("{base}/api/v1"),
        token,
    };
    let mut rng = Rng(0x5EED_2026_1207);
    let survey_set = synthesise(n, &mut rng, "J");
    // Gold: injected sources and known artefacts, 70 % real, each drawn
    // from the same rule (an injected source looks like a real one).
    let mut gold_set = Vec::new();
    while gold_set.len() < n / 5 {
        let want_real = gold_set.len() % 10 < 7;
        let s = synthesise(1, &mut rng, "G").remove(0);
        if s.real == want_real {
            gold_set.push(s);
        }
    }
    let list: Vec<(&Synthetic, bool)> = survey_set
        .iter()
        .map(|s| (s, false))
        .chain(gold_set.iter().map(|s| (s, true)))
        .collect();
    let metrics: Vec<Value> = (0..6)
        .map(|k| json!({"key": format!("x{k}"), "label": format!("x{k}")}))
        .collect();
    let mut arms = Vec::new();
    for slug in ["likely", "shuffled"] {
        up.send(
            reqwest::Method::PUT,
            &format!("/projects/{slug}"),
            json!({"name": slug, "metrics": metrics}),
        )
        .await?;
        up.send(
            reqwest::Method::PUT,
            &format!("/projects/{slug}/observations/o1"),
            json!({}),
        )
        .await?;
        let ids = up.candidates(slug, &list).await?;
        let project: i64 = sqlx::query_scalar("SELECT id FROM projects WHERE slug = $1")
            .bind(slug)
            .fetch_one(&pool)
            .await?;
        // One verdict settles a candidate, so each is rated once (as "not
        // rated by anyone" would), and every reviewer can still be offered
        // any gold candidate nobody has rated.
        sqlx::query(
            "UPDATE projects SET gold_rate = $2, model_retrain_every = 200, consensus_k = 1 WHERE id = $1",
        )
            .bind(project)
            .bind(GOLD_RATE as f32)
            .execute(&pool)
            .await?;
        let mut truth = HashMap::new();
        let mut gold = HashSet::new();
        for (s, is_gold) in &list {
            let id = ids[&s.name];
            truth.insert(id, s.real);
            if *is_gold {
                gold.insert(id);
            }
        }
        arms.push((slug, ProjectId(project), truth, gold));
    }
    let real_share = survey_set.iter().filter(|s| s.real).count() as f64 / n as f64;
    println!(
        "model bench, simulation: {} survey candidates per arm ({:.1} % real), {} gold; load average {}",
        thousands(n as i64),
        real_share * 100.0,
        gold_set.len(),
        load_average()
    );
    let mut reviewers = Vec::new();
    for (i, (recall, fpr)) in REVIEWERS.iter().enumerate() {
        let username = format!("sim{i}");
        let uname: Username = username.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let user = vetter::db::users::insert(&pool, &uname, &hash, Role::Reviewer).await?;
        let (client, token) = log_in(&base, &username).await?;
        reviewers.push(SimReviewer {
            client,
            token,
            recall: *recall,
            fpr: *fpr,
            rng: Rng(0x1234_5678 + i as u64),
            user: user.0,
        });
    }
    let (slug, project, truth, gold) = &arms[0];
    let likely = arm(
        &base,
        &pool,
        (slug, *project),
        "likely",
        &mut reviewers,
        truth,
        gold,
        true,
    )
    .await?;
    let (slug, project, truth, gold) = &arms[1];
    let shuffled = arm(
        &base,
        &pool,
        (slug, *project),
        "shuffled",
        &mut reviewers,
        truth,
        gold,
        false,
    )
    .await?;
    let ratio = shuffled.to_90 as f64 / likely.to_90 as f64;
    println!(
        "ratings to find 90 % of the real candidates: most likely first {}, shuffled {}: {ratio:.1}× fewer (target ≥ {RATIO_TARGET}×)",
        thousands(likely.to_90 as i64),
        thousands(shuffled.to_90 as i64)
    );
    if ratio < RATIO_TARGET {
        failed.push(format!(
            "likely-first needs {ratio:.1}× fewer ratings, not ≥ {RATIO_TARGET}×"
        ));
    }
    match likely.auc_at_1000 {
        Some(auc) => {
            println!("held-out ROC AUC after 1,000 ratings: {auc:.3} (target ≥ {AUC_TARGET})");
            if auc < AUC_TARGET {
                failed.push(format!("held-out AUC {auc:.3} < {AUC_TARGET}"));
            }
        }
        None => failed.push("the likely arm ended before 1,000 ratings: no AUC".into()),
    }
    println!(
        "gold shown: {} of {} ratings in the likely arm, {} of {} in the shuffled one (rate {GOLD_RATE})",
        likely.gold_ratings,
        likely.gold_ratings + likely.to_90,
        shuffled.gold_ratings,
        shuffled.gold_ratings + shuffled.to_90
    );
    // Recall as the app estimates it from gold, over both arms' projects.
    for r in &reviewers {
        let projects: Vec<ProjectId> = arms.iter().map(|a| a.1).collect();
        let est = gold_recall(&pool, &projects, r.user).await?;
        let (est, n) = est.context("a reviewer rated no gold real candidate")?;
        let off = (est - r.recall).abs();
        println!(
            "  sim reviewer {}: true recall {:.2}, estimated from {n} gold real candidates {est:.3} ({:+.1} pp)",
            r.user,
            r.recall,
            (est - r.recall) * 100.0
        );
        if off > RECALL_TOLERANCE {
            failed.push(format!(
                "reviewer {}'s recall from gold is {:.1} pp off",
                r.user,
                off * 100.0
            ));
        }
    }
    server.shut_down().await?;
    pool.close().await;
    Ok(())
}

/// The reviewer's recall on gold-real candidates as the app counts it for
/// `/ratings` (`db::gold::per_reviewer`), over both arms' projects, and how
/// many gold-real candidates it rests on.
async fn gold_recall(
    pool: &PgPool,
    projects: &[ProjectId],
    user: i64,
) -> anyhow::Result<Option<(f64, i64)>> {
    let mut conn = pool.acquire().await?;
    let (mut hit, mut n) = (0, 0);
    for p in projects {
        for (_, c) in
            vetter::db::gold::per_reviewer(&mut conn, *p, Some(vetter::domain::UserId(user)), None)
                .await?
        {
            hit += c.real_called_real;
            n += c.real;
        }
    }
    Ok((n > 0).then(|| (hit as f64 / n as f64, n)))
}

/// Part 2: the model of a million-candidate project while reviewers rate.
async fn at_scale(
    opts: &sqlx::postgres::PgConnectOptions,
    db_name: &str,
    n: i64,
    ratings: i64,
    failed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    generate_big(opts, n, ratings).await?;
    settle(opts).await?;
    println!(
        "model bench, scale: {} candidates and {} ratings generated in {:.0} s; load average {}",
        thousands(n),
        thousands(ratings),
        started.elapsed().as_secs_f64(),
        load_average()
    );
    // The server's request log gives its own time per request, as the
    // rating bench judges it; the client's adds this process's own waits
    // for a core.
    let log = TempDir::create("vetter-bench-model-log")?;
    let log_path = log.path().join("server.log");
    let server = ServerProcess::start_logged(
        opts,
        db_name,
        &[
            ("VETTER_MODEL_CHECK_SECS".into(), "0".into()),
            // The model's phases too, to lay the slow requests beside.
            ("RUST_LOG".into(), "info,vetter::model=debug".into()),
        ],
        Some(&log_path),
    )
    .await?;
    let base = server.base.clone();
    let mut reviewers = Vec::new();
    for i in 1..=8 {
        let (client, token) = log_in(&base, &format!("reviewer{i:02}")).await?;
        let r = client
            .post(format!("{base}/queue"))
            .form(&[
                ("project", "big"),
                ("order", "likely"),
                ("mode", "unrated_by_me"),
                ("csrf_token", &token),
            ])
            .send()
            .await?;
        ensure!(r.status() == StatusCode::SEE_OTHER, "queue: {}", r.status());
        reviewers.push((client, token));
    }
    let (admin, admin_token) = log_in(&base, "boss").await?;
    // Warm the server up, then take its idle memory.
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (k, (client, token)) in reviewers.into_iter().enumerate() {
        let (stop, samples, base) = (stop.clone(), samples.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xABCD + k as u64);
            let r = client
                .get(format!("{base}/next"))
                .header("HX-Request", "true")
                .send()
                .await?;
            let mut current = candidate_id(&r.text().await?).context("no first candidate")?;
            while !stop.load(Ordering::Relaxed) {
                let verdict = if rng.unit() < 0.2 { "real" } else { "not_real" };
                let key = format!("{:x}", rng.next());
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/candidates/{current}/rating"))
                    .header("HX-Request", "true")
                    .header("X-CSRF-Token", &token)
                    .form(&[("verdict", verdict), ("key", &key)])
                    .send()
                    .await?;
                let status = r.status();
                let text = r.text().await?;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                ensure!(status == StatusCode::OK, "rating: {status}");
                samples
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push((Instant::now(), ms));
                current = candidate_id(&text).context("no next candidate")?;
                tokio::time::sleep(Duration::from_millis(125 + rng.next() % 250)).await;
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (idle, _) = server.memory_mib().context("no /proc for the server")?;
    // The same load without training, for comparison in this run.
    let quiet_from = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let mut quiet = server_times(&log_path, quiet_from, time::OffsetDateTime::now_utc())?;
    println!(
        "  rate-and-next with no training, server: {}",
        Stats::of(&mut quiet)
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts.clone())
        .await?;
    for round in 1..=2 {
        let token = csrf_token(
            &admin
                .get(format!("{base}/projects/big/model"))
                .send()
                .await?
                .text()
                .await?,
        )
        .unwrap_or(admin_token.clone());
        let t0 = Instant::now();
        let wall0 = time::OffsetDateTime::now_utc();
        let r = admin
            .post(format!("{base}/projects/big/model/train"))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await?;
        ensure!(r.status() == StatusCode::SEE_OTHER, "train: {}", r.status());
        let row: (f64, Option<f64>, f64, i32, bool) = loop {
            let row: Option<(f64, Option<f64>, f64, i32, bool)> = sqlx::query_as(
                // Stored first, put to use when its scores are swapped in:
                // wait for one or the other verdict.
                "SELECT seconds, score_seconds, auc, n_train, accepted FROM models
                  WHERE version = $1 AND (accepted OR verdict_note LIKE '%(kept the last model)%')",
            )
            .bind(round)
            .fetch_optional(&pool)
            .await?;
            if let Some(r) = row {
                break r;
            }
            ensure!(
                t0.elapsed() < Duration::from_secs(600),
                "no model after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let t1 = Instant::now();
        let wall1 = time::OffsetDateTime::now_utc();
        let mut on_server = server_times(&log_path, wall0, wall1)?;
        let server_stats = Stats::of(&mut on_server);
        let (_, peak) = server.memory_mib().context("no /proc for the server")?;
        let mut during: Vec<f64> = samples
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .filter(|(at, _)| *at >= t0 && *at <= t1)
            .map(|s| s.1)
            .collect();
        let stats = Stats::of(&mut during);
        let (train_s, score_s) = (row.0, row.1.unwrap_or(f64::NAN));
        let scored = if row.4 {
            format!(
                "scored {} in {score_s:.1} s (target ≤ {SCORE_TARGET_S})",
                thousands(n)
            )
        } else {
            "not better than the last model, so kept it (nothing scored)".to_string()
        };
        println!(
            "  training {round}: {} labels, AUC {:.3}; trained in {train_s:.1} s (target ≤ {TRAIN_TARGET_S}), {scored}; server memory idle {idle:.0} MiB, peak {peak:.0} MiB (+{:.0}, target ≤ {MEMORY_TARGET_MB})",
            thousands(i64::from(row.3)),
            row.2,
            peak - idle
        );
        println!("  rate-and-next while training, server: {server_stats} (target p99 ≤ {P99_TARGET_MS} ms)");
        println!("  rate-and-next while training, client: {stats}");
        // When the slow ones came, seconds after "Train now".
        let mut slow: Vec<(f64, f64)> = samples
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .filter(|(at, ms)| *at >= t0 && *at <= t1 && *ms > P99_TARGET_MS)
            .map(|(at, ms)| ((*at - t0).as_secs_f64(), *ms))
            .collect();
        slow.sort_by(|a, b| a.0.total_cmp(&b.0));
        let when: Vec<String> = slow
            .iter()
            .map(|(t, ms)| format!("{t:.1}s:{ms:.0}"))
            .collect();
        println!("    over {P99_TARGET_MS} ms at: {}", when.join(" "));
        println!(
            "    on the server, by phase: {}",
            by_phase(&log_path, wall0, wall1, P99_TARGET_MS)?
        );
        if train_s > TRAIN_TARGET_S {
            failed.push(format!("training {round} took {train_s:.1} s"));
        }
        if row.4 && (score_s.is_nan() || score_s > SCORE_TARGET_S) {
            failed.push(format!("scoring {round} took {score_s:.1} s"));
        }
        if peak - idle > MEMORY_TARGET_MB {
            failed.push(format!(
                "training {round} took the server {:.0} MiB above idle",
                peak - idle
            ));
        }
        if server_stats.p99 > P99_TARGET_MS {
            failed.push(format!(
                "rate-and-next p99 {:.1} ms on the server while training {round}",
                server_stats.p99
            ));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    pool.close().await;
    Ok(())
}

/// The training run's phases between `from` and `to` (from the server's log),
/// each with its length and how many ratings answered during it took the
/// server more than `over` ms, of how many: where the slow ones come from.
fn by_phase(
    log: &std::path::Path,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
    over: f64,
) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(log)?;
    let stamp = |line: &str| {
        line.split_whitespace().next().and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let mut phases: Vec<(time::OffsetDateTime, String)> = Vec::new();
    for line in text.lines().filter(|l| l.contains("model phase")) {
        let name = line
            .split("phase=")
            .nth(1)
            .map(|rest| rest.trim_matches('"').split('"').next().unwrap_or(rest));
        if let (Some(at), Some(name)) = (stamp(line), name) {
            if at >= from && at <= to {
                phases.push((at, name.split_whitespace().next().unwrap_or(name).into()));
            }
        }
    }
    let mut counts = vec![(0usize, 0usize); phases.len()];
    for line in text.lines() {
        if !(line.contains("path=/candidates/") && line.contains("/rating ")) {
            continue;
        }
        let ms = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("elapsed_ms="))
            .and_then(|v| v.parse::<f64>().ok());
        let (Some(at), Some(ms)) = (stamp(line), ms) else {
            continue;
        };
        if let Some(i) = phases.iter().rposition(|(p, _)| *p <= at) {
            counts[i].0 += 1;
            counts[i].1 += usize::from(ms > over);
        }
    }
    let parts: Vec<String> = phases
        .iter()
        .enumerate()
        .map(|(i, (at, name))| {
            let end = phases.get(i + 1).map_or(to, |p| p.0);
            format!(
                "{name} {:.1} s ({} of {} slow)",
                (end - *at).as_seconds_f64(),
                counts[i].1,
                counts[i].0
            )
        })
        .collect();
    Ok(parts.join(", "))
}

/// The server's time (`elapsed_ms` of its request log) of each rating
/// answered between `from` and `to`.
fn server_times(
    log: &std::path::Path,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
) -> anyhow::Result<Vec<f64>> {
    let text = std::fs::read_to_string(log)?;
    let mut out = Vec::new();
    for line in text.lines() {
        if !(line.contains("path=/candidates/") && line.contains("/rating ")) {
            continue;
        }
        let Some(stamp) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(at) =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        else {
            continue;
        };
        let ms = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("elapsed_ms="))
            .and_then(|v| v.parse::<f64>().ok());
        if let (Some(ms), true) = (ms, at >= from && at <= to) {
            out.push(ms);
        }
    }
    Ok(out)
}

/// One project "big" of `n` candidates in 100 observations, six uniform
/// metrics, and `ratings` ratings by eight reviewers, the verdict a rule of
/// the metrics with 10 % noise.
async fn generate_big(
    opts: &sqlx::postgres::PgConnectOptions,
    n: i64,
    ratings: i64,
) -> anyhow::Result<()> {
    let (mut c, hash) = bulk_connection(opts, 0.1207, 8).await?;
    sqlx::query("INSERT INTO users (username, password_hash, role) VALUES ('boss', $1, 'admin')")
        .bind(&hash)
        .execute(&mut c)
        .await?;
    let steps = [
        "INSERT INTO projects (slug, name) VALUES ('big', 'A million candidates')".to_string(),
        "INSERT INTO metric_defs (project_id, key, label, position)
         SELECT 1, 'x' || k, 'x' || k, k FROM generate_series(0, 5) k".to_string(),
        "INSERT INTO observations (project_id, external_id, content_hash)
         SELECT 1, 'o' || i, md5(i::text) FROM generate_series(1, 100) i".to_string(),
        format!(
            "INSERT INTO candidates (project_id, observation_id, name, ra, dec, content_hash)
             SELECT 1, 1 + i % 100, 'c' || i, random() * 359.999, degrees(asin(2 * random() - 1)), md5(i::text)
               FROM generate_series(1, {n}) i"
        ),
        "UPDATE candidates SET group_id = id".to_string(),
        "INSERT INTO candidate_metrics (candidate_id, metric_id, value)
         SELECT c.id, m.id, round(random()::numeric, 4)::float8 FROM candidates c CROSS JOIN metric_defs m".to_string(),
        format!(
            "INSERT INTO ratings (candidate_id, user_id, verdict)
             SELECT c.id, 1 + c.id % 8,
                    CASE WHEN ((a.value > 0.8 AND b.value < 0.4) OR d.value * e.value > 0.75) <> (random() < 0.1)
                         THEN 'real'::verdict ELSE 'not_real'::verdict END
               FROM candidates c
               JOIN candidate_metrics a ON a.candidate_id = c.id AND a.metric_id = 1
               JOIN candidate_metrics b ON b.candidate_id = c.id AND b.metric_id = 2
               JOIN candidate_metrics d ON d.candidate_id = c.id AND d.metric_id = 3
               JOIN candidate_metrics e ON e.candidate_id = c.id AND e.metric_id = 4
              WHERE c.id % {step} = 0 LIMIT {ratings}",
            step = (n / ratings).max(1)
        ),
        "UPDATE candidates c SET rating_count = 1 WHERE EXISTS (SELECT 1 FROM ratings r WHERE r.candidate_id = c.id)".to_string(),
    ];
    run_steps(&mut c, &steps).await?;
    run_steps(&mut c, &BULK_REFRESH.map(String::from)).await?;
    // VACUUM, not only ANALYZE: a survey's tables have long been vacuumed
    // by the time a model trains on them. Left unvacuumed (autovacuum is
    // off on the bench's server), the first training's read of six million
    // metric rows set every page's hint bits and so wrote them all again:
    // a 430 MB burst of writeback in the middle of the measurement.
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(&mut c).await?;
    c.close().await?;
    Ok(())
}

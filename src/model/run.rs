//! Training and scoring against the database: on demand (`vetter model
//! train`, the model page's button) and in the background after every N new
//! ratings. The arithmetic runs on a blocking thread, one at a time per
//! process, and each project is trained by one host at a time (an advisory
//! lock), so no request ever waits for it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::db::models::{self, Movement, NewModel};
use crate::domain::{CandidateId, ProjectId};
use crate::model::{self, Features, ModelError, Scorer, Trained, MIN_PER_CLASS};

/// One training or scoring pass at a time in this process: the arithmetic
/// holds a core and the feature matrix memory for its whole run.
static ONE_AT_A_TIME: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(1)));

/// New candidates scored per pass of the background loop.
const SCORE_BATCH: i64 = 50_000;

/// What a training run did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A model was trained and stored; `accepted` says whether it now scores.
    Trained {
        version: i32,
        accepted: bool,
        auc: f64,
        note: String,
        scored: usize,
    },
    /// Not enough labels yet: the message says how many there are.
    NotEnough(String),
    /// Another host or task is training this project now.
    Busy,
}

/// Trains the project's model on its current labels, and scores every
/// candidate with it if it is not worse than the current one.
pub async fn train(pool: &PgPool, project: ProjectId) -> anyhow::Result<Outcome> {
    let _turn = ONE_AT_A_TIME.clone().acquire_owned().await?;
    train_now(pool, project).await
}

/// Starts training in the background unless this process is training or
/// scoring already (then false): a button pressed ten times starts one run.
pub fn start(pool: PgPool, project: ProjectId) -> bool {
    let Ok(turn) = ONE_AT_A_TIME.clone().try_acquire_owned() else {
        return false;
    };
    tokio::spawn(async move {
        match train_now(&pool, project).await {
            Ok(Outcome::Trained { version, .. }) => {
                tracing::info!(project = %project, version, "model trained on request")
            }
            Ok(Outcome::NotEnough(why)) => tracing::info!(project = %project, why, "no model"),
            Ok(Outcome::Busy) => {}
            Err(e) => tracing::warn!(project = %project, error = %e, "training failed"),
        }
        drop(turn);
    });
    true
}

async fn train_now(pool: &PgPool, project: ProjectId) -> anyhow::Result<Outcome> {
    let mut conn = pool.acquire().await?;
    if !models::try_lock(&mut conn, project).await? {
        return Ok(Outcome::Busy);
    }
    // Everything on this one connection (it holds the lock): a task that
    // held one connection while waiting for another could starve the pool.
    // And one core of PostgreSQL's: parallel scans and index builds would
    // take the cores the reviewers' queries need.
    let result = match set_session(&mut conn, "SET", "= 0").await {
        Ok(()) => train_locked(&mut conn, project).await,
        Err(e) => Err(e.into()),
    };
    let cleaned = match set_session(&mut conn, "RESET", "").await {
        Ok(()) => models::unlock(&mut conn, project).await,
        Err(e) => Err(e),
    };
    if cleaned.is_err() {
        // Closing the connection ends its session, and the lock with it, so
        // the project is not left locked on a pooled connection.
        drop(conn.detach());
    }
    result
}

/// Sets (or resets) the settings that keep training to one core.
async fn set_session(conn: &mut sqlx::PgConnection, verb: &str, value: &str) -> sqlx::Result<()> {
    for name in [
        "max_parallel_workers_per_gather",
        "max_parallel_maintenance_workers",
    ] {
        sqlx::query(&format!("{verb} {name} {value}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn train_locked(
    conn: &mut sqlx::PgConnection,
    project: ProjectId,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    phase(project, "labels");
    crate::db::ratings::flush_summaries(&mut *conn).await?;
    let ratings_seen = models::rating_totals(&mut *conn)
        .await?
        .into_iter()
        .find(|(p, _)| *p == project)
        .map_or(0, |(_, n)| n);
    let labels = models::labels(conn, project).await?;
    let real = labels.iter().filter(|l| l.1 > 0.5).count();
    if real < MIN_PER_CLASS || labels.len() - real < MIN_PER_CLASS {
        return Ok(Outcome::NotEnough(
            ModelError::TooFewLabels {
                real,
                not_real: labels.len() - real,
            }
            .to_string(),
        ));
    }
    phase(project, "features");
    let table = models::features(conn, project, None).await?;
    let (ids, x) = (
        table.ids,
        Features::from_columns(table.names, table.columns),
    );
    let current = models::current(&mut *conn, project).await?;
    let current_booster = match &current {
        Some(m) => Some(models::booster(&mut *conn, m.id).await?),
        None => None,
    };
    let rated_since: Vec<CandidateId> = match &current {
        Some(m) => models::labelled_since(&mut *conn, project, m.trained_at).await?,
        None => Vec::new(),
    };
    phase(project, "arithmetic");
    let job = low_priority(move || -> anyhow::Result<_> {
        let rows: Vec<usize> = labels
            .iter()
            .filter_map(|(id, _)| ids.binary_search(id).ok())
            .collect();
        let y: Vec<f64> = labels
            .iter()
            .filter(|(id, _)| ids.binary_search(id).is_ok())
            .map(|l| l.1)
            .collect();
        let train_x = subset(&x, &rows);
        let seed = project.0 as u64;
        let trained = model::train(&train_x, &y, seed)?;
        let old = match (&current, &current_booster) {
            (Some(m), Some(b)) => Some(Scorer::load(b, m.platt_a, m.platt_b)?),
            _ => None,
        };
        let (accepted, note) = judge(
            &trained,
            current.as_ref().map(|m| m.auc),
            old.as_ref(),
            &train_x,
            &y,
            &labels,
            &rated_since,
        );
        let trained_at = Instant::now();
        let scores = accepted
            .then(|| Scorer::load(&trained.booster, trained.platt_a, trained.platt_b))
            .transpose()?
            .map(|s| s.score(&x));
        Ok((trained, accepted, note, scores, ids, x.names, trained_at))
    });
    let (trained, accepted, note, scores, ids, names, trained_at) = job.await??;
    let training_seconds = (trained_at - started).as_secs_f64();
    // Two transactions: the first stores the model (not yet in use) and
    // writes its scores into a table of their own, the bulk of the work;
    // the second swaps that table in and puts the model to use. So the
    // moment the scores table is locked for the swap is short: it does not
    // include flushing a million rows at commit.
    phase(project, "store");
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let (id, version) = models::insert(
        &mut tx,
        &NewModel {
            project,
            ratings_seen,
            n_train: (trained.out_of_fold.len()) as i32,
            n_real: trained.n_real as i32,
            auc: trained.auc,
            precision_at_95: trained.precision_at_95,
            features: &names,
            importances: &trained.importances,
            platt_a: trained.platt_a,
            platt_b: trained.platt_b,
            booster: &trained.booster,
            accepted: accepted && scores.is_none(),
            verdict_note: &note,
            seconds: training_seconds,
        },
    )
    .await?;
    let mut scored = 0;
    let mut moved = None;
    if let Some(p) = &scores {
        phase(project, "old scores");
        let before = models::scores(&mut tx, project).await?;
        moved = Some(movement(&before, &ids, p));
        phase(project, "stage");
        models::stage_scores(&mut tx, project, id, &ids, p).await?;
        phase(project, "analyze");
        models::analyze_staged(&mut tx, project).await?;
        scored = p.len();
    }
    phase(project, "commit");
    tx.commit().await?;
    if let Some(moved) = moved {
        phase(project, "swap");
        swap(conn, project, id, &moved, trained_at).await?;
    }
    tracing::info!(project = %project, version, accepted, auc = trained.auc, scored,
        seconds = started.elapsed().as_secs_f64(), "trained a model");
    Ok(Outcome::Trained {
        version,
        accepted,
        auc: trained.auc,
        note,
        scored,
    })
}

/// Swaps the staged scores in and puts the model to use, in short attempts
/// (each waits `models::SWAP_WAIT` for the scores table) spread over up to
/// a minute, so that a reader holding the table delays the swap rather than
/// every reviewer queued behind a long wait for it.
async fn swap(
    conn: &mut sqlx::PgConnection,
    project: ProjectId,
    model: i64,
    moved: &Movement,
    trained_at: Instant,
) -> anyhow::Result<()> {
    for attempt in 0u64..300 {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if models::swap_scores(&mut tx, project).await? {
            models::set_scored(&mut *tx, model, moved, trained_at.elapsed().as_secs_f64()).await?;
            tx.commit().await?;
            // The new scores are in use whatever happens here; a table
            // left behind is dropped by the next model's staging.
            if let Err(e) = models::drop_retired(&mut *conn, project).await {
                tracing::warn!(project = %project, error = %e, "could not drop the retired scores");
            }
            return Ok(());
        }
        tx.rollback().await?;
        // 50 to 250 ms apart, varied, so retries do not fall into step with
        // a reviewer's rhythm.
        tokio::time::sleep(Duration::from_millis(50 + (attempt * 37) % 200)).await;
    }
    anyhow::bail!("could not swap in the new scores: the scores table stayed busy for a minute")
}

/// Marks in the log where a run is, so that a slow request can be laid
/// beside the part of training it met (the model bench does).
fn phase(project: ProjectId, name: &str) {
    tracing::debug!(project = %project, phase = name, "model phase");
}

/// Runs the arithmetic on a thread of its own at the lowest priority, so
/// that it takes only the CPU the requests leave (a pooled blocking thread
/// could not be given its priority back).
async fn low_priority<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("model".into())
        .spawn(move || {
            crate::lower_thread_priority();
            let _ = tx.send(job());
        })?;
    Ok(rx.await?)
}

fn subset(x: &Features, rows: &[usize]) -> Features {
    Features {
        names: x.names.clone(),
        columns: x
            .columns
            .iter()
            .map(|c| rows.iter().map(|&i| c[i]).collect())
            .collect(),
    }
}

/// Whether the new model replaces the current one: it must not be worse.
/// Where enough candidates were labelled since the current model was
/// trained (at least five of each class), both are judged on those alone,
/// the new one by its out-of-fold scores: neither has learnt from them.
/// Otherwise the new cross-validated AUC is held against the current one's.
fn judge(
    new: &Trained,
    current_auc: Option<f64>,
    current: Option<&Scorer>,
    x: &Features,
    y: &[f64],
    labels: &[(CandidateId, f64)],
    since: &[CandidateId],
) -> (bool, String) {
    let (Some(old_auc), Some(old)) = (current_auc, current) else {
        return (true, format!("the first model: AUC {:.3}", new.auc));
    };
    let fresh: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| since.binary_search(id).is_ok())
        .map(|(i, _)| i)
        .collect();
    let fresh_real = fresh.iter().filter(|&&i| y[i] > 0.5).count();
    if fresh_real >= 5 && fresh.len() - fresh_real >= 5 {
        let fy: Vec<f64> = fresh.iter().map(|&i| y[i]).collect();
        let new_scores: Vec<f64> = fresh.iter().map(|&i| new.out_of_fold[i]).collect();
        let old_scores = old.score(&subset(x, &fresh));
        let (a_new, a_old) = (model::auc(&new_scores, &fy), model::auc(&old_scores, &fy));
        let verdict = a_new >= a_old;
        return (
            verdict,
            format!(
                "on the {} candidates labelled since the last model: AUC {a_new:.3} against {a_old:.3}{}",
                fresh.len(),
                if verdict { "" } else { " (kept the last model)" }
            ),
        );
    }
    let verdict = new.auc >= old_auc;
    (
        verdict,
        format!(
            "cross-validated AUC {:.3} against the last model's {old_auc:.3}{}",
            new.auc,
            if verdict {
                ""
            } else {
                " (kept the last model)"
            }
        ),
    )
}

/// How scores moved: `before` and the new scores are both in candidate order.
fn movement(before: &[(CandidateId, f32)], ids: &[CandidateId], after: &[f64]) -> Movement {
    let tenth = |p: f64| ((p * 10.0) as usize).min(9);
    let mut m = Movement {
        before: vec![0; 10],
        after: vec![0; 10],
        ..Movement::default()
    };
    for &(_, p) in before {
        m.before[tenth(f64::from(p))] += 1;
    }
    for &p in after {
        m.after[tenth(p)] += 1;
    }
    let mut total = 0.0;
    let mut j = 0;
    for (i, id) in ids.iter().enumerate() {
        while j < before.len() && before[j].0 < *id {
            j += 1;
        }
        if j < before.len() && before[j].0 == *id {
            let (old, new) = (f64::from(before[j].1), after[i]);
            m.compared += 1;
            total += (new - old).abs();
            m.moved_much += u64::from((new - old).abs() > 0.1);
            m.became_likely += u64::from(old < 0.5 && new >= 0.5);
            m.became_unlikely += u64::from(old >= 0.5 && new < 0.5);
        }
    }
    if m.compared > 0 {
        m.mean_abs_change = total / m.compared as f64;
    }
    m
}

/// Scores the project's candidates that have no score yet (new uploads)
/// with its current model; returns how many.
pub async fn score_new(pool: &PgPool, project: ProjectId) -> anyhow::Result<usize> {
    let _turn = ONE_AT_A_TIME.clone().acquire_owned().await?;
    let mut conn = pool.acquire().await?;
    let Some(current) = models::current(&mut *conn, project).await? else {
        return Ok(0);
    };
    let ids = models::unscored(&mut *conn, project, SCORE_BATCH).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let booster = models::booster(&mut *conn, current.id).await?;
    let table = models::features(&mut conn, project, Some(&ids)).await?;
    let (ids, x) = (
        table.ids,
        Features::from_columns(table.names, table.columns),
    );
    drop(conn);
    let (a, b) = (current.platt_a, current.platt_b);
    let p = low_priority(move || -> anyhow::Result<Vec<f64>> {
        Ok(Scorer::load(&booster, a, b)?.score(&x))
    })
    .await??;
    let mut conn = pool.acquire().await?;
    let n = models::add_scores(&mut conn, project, current.id, &ids, &p).await?;
    Ok(n as usize)
}

/// The background loop: every `every`, trains the projects that are due
/// and scores what is new. A project that had too few labels is not tried
/// again until its ratings grow.
pub async fn background(pool: PgPool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tried_at: HashMap<ProjectId, i64> = HashMap::new();
    loop {
        tick.tick().await;
        if let Err(e) = pass(&pool, &mut tried_at).await {
            tracing::warn!(error = %e, "the model pass failed");
        }
    }
}

async fn pass(pool: &PgPool, tried_at: &mut HashMap<ProjectId, i64>) -> anyhow::Result<()> {
    crate::db::ratings::flush_summaries(&mut *pool.acquire().await?).await?;
    let totals: HashMap<ProjectId, i64> = models::rating_totals(pool).await?.into_iter().collect();
    for project in models::due(pool).await.context("finding due projects")? {
        let now = totals.get(&project).copied().unwrap_or(0);
        if tried_at.get(&project) == Some(&now) {
            continue;
        }
        tried_at.insert(project, now);
        match train(pool, project).await? {
            Outcome::NotEnough(why) => tracing::debug!(project = %project, why, "no model yet"),
            Outcome::Busy | Outcome::Trained { .. } => {}
        }
    }
    for project in models::with_unscored(pool).await? {
        let n = score_new(pool, project).await?;
        if n > 0 {
            tracing::info!(project = %project, scored = n, "scored new candidates");
        }
    }
    Ok(())
}

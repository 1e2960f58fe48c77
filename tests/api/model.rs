//! The real/bogus model on a survey whose truth is known (real when snr ≥
//! 30), the queue orders that walk its scores, consensus retirement, the
//! disputed queue kept to experts, and the review rules form.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use vetter::db::queue;
use vetter::domain::consensus::Consensus;
use vetter::domain::queue::{QueueMode, QueueOrder, QueueView};
use vetter::domain::visibility::RatingVisibility;
use vetter::domain::{CandidateId, ProjectId, Role};
use vetter::model::run::{self, Outcome};

use crate::candidates::rate;
use crate::helpers::{select_text, TestApp, TestUser};
use crate::upload_api::uploader;

/// Sixty candidates c00..c59: snr is the index, width a scramble of it;
/// real when snr ≥ 30. Returns name → id and the project's id.
async fn survey(app: &TestApp) -> (HashMap<String, i64>, ProjectId) {
    let api = uploader(app).await;
    let (s, body) = api
        .put(
            "/projects/m",
            json!({"name": "M", "metrics": [{"key": "snr", "label": "SNR"}, {"key": "width", "label": "Width"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api.put("/projects/m/observations/o1", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let list: Vec<Value> = (0..60)
        .map(|i| {
            json!({"name": format!("c{i:02}"), "ra": 10.0 + f64::from(i) * 0.01, "dec": -30.0,
                   "metrics": {"snr": i, "width": (i * 7) % 13}})
        })
        .collect();
    let (s, body) = api
        .post(
            "/projects/m/observations/o1/candidates",
            json!({ "candidates": list }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ids = crate::helpers::ids_by_name(&body);
    let project = sqlx::query_scalar("SELECT id FROM projects WHERE slug = 'm'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (ids, ProjectId(project))
}

/// `who` rates c10..c49 by the truth: twenty of each class.
async fn label(app: &TestApp, ids: &HashMap<String, i64>) {
    for i in 10..50 {
        let verdict = if i >= 30 { "real" } else { "not_real" };
        rate(app, ids[&format!("c{i:02}")], verdict, &[], "").await;
    }
}

async fn as_user(app: &TestApp, name: &str, role: Role) -> (TestApp, TestUser) {
    let other = TestApp::spawn(app.pool.clone()).await;
    let user = other.create_user(name, role).await;
    other.login_as(&user).await;
    (other, user)
}

async fn scores(pool: &PgPool) -> HashMap<i64, f32> {
    sqlx::query_as::<_, (i64, f32)>("SELECT candidate_id, p_real FROM candidate_scores")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The first `n` of a queue as the reviewer would walk it.
async fn walk(
    pool: &PgPool,
    user: &TestUser,
    order: QueueOrder,
    mode: QueueMode,
    n: i64,
) -> Vec<i64> {
    let mut conn = pool.acquire().await.unwrap();
    let view = QueueView {
        project: Some("m".into()),
        order,
        mode,
        ..QueueView::default()
    };
    let vis = RatingVisibility::from_columns(user.id, Role::Reviewer, &[], &[], &[]);
    let r = queue::resolve(&mut conn, view, 12345, vis).await.unwrap();
    queue::upcoming(&mut conn, user.id, &r, None, n)
        .await
        .unwrap()
        .into_iter()
        .map(|c: CandidateId| c.0)
        .collect()
}

/// The feature table the trainer reads is the survey as uploaded: each
/// value in its candidate's slot, NaN where a candidate has none, for the
/// whole project and for a subset (as scoring new candidates asks), with
/// another project's candidates interleaved in between.
#[sqlx::test]
async fn the_feature_table_holds_each_candidate_s_own_values(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (ids, project) = survey(&app).await;
    // Another project's candidates, with ids among this one's, once more
    // of this project's arrive after them.
    let api = uploader_again(&app).await;
    let (s, body) = api
        .put(
            "/projects/x",
            json!({"name": "X", "metrics": [{"key": "snr", "label": "SNR"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api.put("/projects/x/observations/o1", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .post(
            "/projects/x/observations/o1/candidates",
            json!({"candidates": [{"name": "x1", "ra": 50.0, "dec": 1.0, "metrics": {"snr": -1}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = api.put("/projects/m/observations/o2", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .post(
            "/projects/m/observations/o2/candidates",
            json!({"candidates": [{"name": "late", "ra": 11.0, "dec": -31.0, "metrics": {"width": 5}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let late = crate::helpers::ids_by_name(&body)["late"];

    let mut conn = pool.acquire().await.unwrap();
    let table = vetter::db::models::features(&mut conn, project, None)
        .await
        .unwrap();
    assert_eq!(table.names[..2], ["snr", "width"]);
    assert_eq!(table.ids.len(), 61);
    assert!(table.ids.windows(2).all(|w| w[0] < w[1]), "in id order");
    let at = |id: i64| table.ids.iter().position(|c| c.0 == id).unwrap();
    for i in 0..60 {
        let slot = at(ids[&format!("c{i:02}")]);
        assert_eq!(table.columns[0][slot], f64::from(i));
        assert_eq!(table.columns[1][slot], f64::from((i * 7) % 13));
    }
    assert!(table.columns[0][at(late)].is_nan(), "no snr: NaN");
    assert_eq!(table.columns[1][at(late)], 5.0);

    let subset = [CandidateId(late), CandidateId(ids["c07"])];
    let some = vetter::db::models::features(&mut conn, project, Some(&subset))
        .await
        .unwrap();
    assert_eq!(some.ids.len(), 2);
    let c07 = some.ids.iter().position(|c| c.0 == ids["c07"]).unwrap();
    assert_eq!((some.columns[0][c07], some.columns[1][c07]), (7.0, 10.0));
    assert!(some.columns[0][1 - c07].is_nan());
    assert_eq!(some.columns[1][1 - c07], 5.0);
}

#[sqlx::test]
async fn a_model_learns_the_truth_and_scores_every_candidate(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (ids, project) = survey(&app).await;
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    // Too few labels: the page says how many there are, to those who may
    // count the team's verdicts (the blind rule: not to a blind admin).
    let html = app.get_html("/projects/m/model").await;
    assert!(!select_text(&html, "#model-none")
        .unwrap()
        .contains("there are"));
    sqlx::query("UPDATE projects SET admins_see_all = true WHERE slug = 'm'")
        .execute(&pool)
        .await
        .unwrap();
    let html = app.get_html("/projects/m/model").await;
    assert!(select_text(&html, "#model-none")
        .unwrap()
        .contains("there are 0 and 0"));
    label(&app, &ids).await;
    let Outcome::Trained {
        version,
        accepted,
        auc,
        scored,
        ..
    } = run::train(&pool, project).await.unwrap()
    else {
        panic!("no model was trained");
    };
    assert_eq!((version, accepted, scored), (1, true, 60));
    assert!(auc > 0.95, "cross-validated AUC {auc}");
    let s = scores(&pool).await;
    assert_eq!(s.len(), 60);
    // The unlabelled ends: c00..c09 are bogus, c50..c59 real.
    for i in 0..10 {
        let low = s[&ids[&format!("c{i:02}")]];
        let high = s[&ids[&format!("c{:02}", i + 50)]];
        assert!(
            low < 0.3 && high > 0.7,
            "c{i:02} {low}, c{:02} {high}",
            i + 50
        );
    }
    // The scores are unlogged (derived data, kept out of the write-ahead
    // log): a crash empties the partition, as TRUNCATE does here, and the
    // background pass scores every candidate again with the current model.
    let persistence: String = sqlx::query_scalar(
        "SELECT relpersistence::text FROM pg_class WHERE relname = 'candidate_scores_' || $1::text",
    )
    .bind(project.0.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(persistence, "u");
    sqlx::query(&format!("TRUNCATE candidate_scores_{}", project.0))
        .execute(&pool)
        .await
        .unwrap();
    assert!(scores(&pool).await.is_empty());
    assert_eq!(
        vetter::db::models::with_unscored(&pool).await.unwrap(),
        vec![project]
    );
    assert_eq!(run::score_new(&pool, project).await.unwrap(), 60);
    assert_eq!(
        scores(&pool).await,
        s,
        "the same model gives the same scores"
    );
    let html = app.get_html("/projects/m/model").await;
    assert!(select_text(&html, "#model-version")
        .unwrap()
        .starts_with('1'));
    assert!(select_text(&html, "#model-size")
        .unwrap()
        .contains("40 candidates, 20 real"));
    let first = select_text(&html, "#importances tbody tr td").unwrap();
    assert_eq!(first, "snr", "snr decides, so it leads the importances");
    // The same labels again: not worse, so it is accepted and the page
    // shows how little the scores moved.
    let Outcome::Trained {
        version, accepted, ..
    } = run::train(&pool, project).await.unwrap()
    else {
        panic!("no second model");
    };
    assert_eq!((version, accepted), (2, true));
    let html = app.get_html("/projects/m/model").await;
    assert!(select_text(&html, "#movement")
        .unwrap()
        .contains("Of 60 candidates"));
    assert_eq!(
        html.select(&scraper::Selector::parse("#model-history tbody tr").unwrap())
            .count(),
        2
    );
}

/// A reader that holds the scores table delays the swap of a new model's
/// scores, not everybody else: the swap waits in short attempts, so other
/// readers are never queued behind it for long, and it lands once the
/// reader lets go.
#[sqlx::test]
async fn a_busy_scores_table_delays_the_swap_not_the_reviewers(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (ids, project) = survey(&app).await;
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    label(&app, &ids).await;
    assert!(matches!(
        run::train(&pool, project).await.unwrap(),
        Outcome::Trained { accepted: true, .. }
    ));
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT count(*) FROM candidate_scores")
        .execute(&mut *holder)
        .await
        .unwrap();
    let training = tokio::spawn({
        let pool = pool.clone();
        async move { run::train(&pool, project).await }
    });
    // Read on until the new model is stored (its scores staged, the swap
    // begun) and for a second and a half after.
    let (mut slowest, mut stored_at) = (Duration::ZERO, None);
    let started = std::time::Instant::now();
    while stored_at.is_none_or(|at: std::time::Instant| at.elapsed() < Duration::from_millis(1500))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no second model"
        );
        if stored_at.is_none() {
            let v2: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM models WHERE version = 2)")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            stored_at = v2.then(std::time::Instant::now);
        }
        let t = std::time::Instant::now();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM candidate_scores")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 60);
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !training.is_finished(),
        "the swap cannot land while the table is held"
    );
    holder.rollback().await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), training)
        .await
        .expect("the swap lands once the reader lets go")
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Trained {
                version: 2,
                accepted: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(
        slowest < Duration::from_millis(1000),
        "a reader waited {slowest:?} behind the swap"
    );
    let in_use: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM candidate_scores s JOIN models m ON m.id = s.model_id WHERE m.version = 2",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(in_use, 60);
    // The swap only changed the catalogue: the partition it put in place
    // brought its own primary key for ATTACH to adopt (no index built
    // under the lock), and the partition it took out is gone since.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index
         WHERE indrelid = format('candidate_scores_%s', $1::bigint)::regclass ORDER BY 1",
    )
    .bind(project)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(indexes.len(), 4, "{indexes:?}");
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint
         WHERE conrelid = format('candidate_scores_%s', $1::bigint)::regclass AND contype = 'p'",
    )
    .bind(project)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(keys, 1);
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relname ~ '^candidate_scores_[0-9]+_(new|old)$'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[sqlx::test]
async fn score_orders_walk_likely_first_and_uncertain_first(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (ids, project) = survey(&app).await;
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    label(&app, &ids).await;
    run::train(&pool, project).await.unwrap();
    let s = scores(&pool).await;
    let (_, bea) = as_user(&app, "bea", Role::Reviewer).await;
    let likely = walk(&pool, &bea, QueueOrder::Likely, QueueMode::UnratedByMe, 60).await;
    assert_eq!(
        likely.len(),
        60,
        "bea has rated nothing and nothing is settled"
    );
    for w in likely.windows(2) {
        assert!(s[&w[0]] >= s[&w[1]], "most likely first");
    }
    let uncertain = walk(
        &pool,
        &bea,
        QueueOrder::Uncertain,
        QueueMode::UnratedByMe,
        60,
    )
    .await;
    for w in uncertain.windows(2) {
        assert!(
            (s[&w[0]] - 0.5).abs() <= (s[&w[1]] - 0.5).abs(),
            "most uncertain first"
        );
    }
    // Ties keep one order for a reviewer, whatever the cursor: walking one
    // at a time from each candidate gives the same sequence.
    let mut conn = pool.acquire().await.unwrap();
    let view = QueueView {
        project: Some("m".into()),
        order: QueueOrder::Likely,
        mode: QueueMode::UnratedByMe,
        ..QueueView::default()
    };
    let vis = RatingVisibility::from_columns(bea.id, Role::Reviewer, &[], &[], &[]);
    let r = queue::resolve(&mut conn, view, 12345, vis).await.unwrap();
    let mut at = None;
    let mut stepped = Vec::new();
    for _ in 0..60 {
        let next = queue::next(&mut conn, bea.id, &r, at)
            .await
            .unwrap()
            .unwrap();
        stepped.push(next.0);
        at = Some(next);
    }
    assert_eq!(stepped, likely);
    // A new candidate, not scored yet, comes after every scored one.
    let api = uploader_again(&app).await;
    let (s2, body) = api
        .post(
            "/projects/m/observations/o1/candidates",
            json!({"candidates": [{"name": "late", "ra": 11.0, "dec": -30.0, "metrics": {"snr": 55, "width": 1}}]}),
        )
        .await;
    assert_eq!(s2, StatusCode::OK, "{body}");
    let walked = walk(&pool, &bea, QueueOrder::Likely, QueueMode::UnratedByMe, 61).await;
    let late = body["candidates"][0]["id"].as_i64().unwrap();
    assert_eq!(walked.last(), Some(&late));
    // The background pass scores it with the current model.
    assert_eq!(run::score_new(&pool, project).await.unwrap(), 1);
    assert!(scores(&pool).await[&late] > 0.7);
}

async fn uploader_again(app: &TestApp) -> crate::upload_api::Api<'_> {
    let admin = app.create_user("pipeline-late", Role::Admin).await;
    crate::upload_api::Api {
        app,
        token: crate::upload_api::token_for(app, &admin).await,
    }
}

#[sqlx::test]
async fn settled_candidates_leave_the_queue_and_disputes_go_to_experts(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (ids, _) = survey(&app).await;
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    let (bea_app, _bea) = as_user(&app, "bea", Role::Reviewer).await;
    let (cid_app, cid) = as_user(&app, "cid", Role::Reviewer).await;
    // c40: real twice (settled with k = 2); c41: real once (open);
    // c42: real and not real (disputed).
    rate(&app, ids["c40"], "real", &[], "").await;
    rate(&bea_app, ids["c40"], "real", &[], "").await;
    rate(&app, ids["c41"], "real", &[], "").await;
    rate(&app, ids["c42"], "real", &[], "").await;
    rate(&bea_app, ids["c42"], "not_real", &[], "").await;
    let queue = walk(&pool, &cid, QueueOrder::Name, QueueMode::UnratedByMe, 100).await;
    assert_eq!(queue.len(), 59, "everything but the settled one");
    assert!(!queue.contains(&ids["c40"]));
    assert!(queue.contains(&ids["c41"]) && queue.contains(&ids["c42"]));
    let others = walk(&pool, &cid, QueueOrder::Name, QueueMode::RatedByOthers, 100).await;
    assert_eq!(others, vec![ids["c41"], ids["c42"]]);
    let disputed = walk(&pool, &cid, QueueOrder::Name, QueueMode::Disputed, 100).await;
    assert_eq!(disputed, vec![ids["c42"]]);
    // k = 1 settles c41 as well (and c42 stays split, one each).
    sqlx::query("UPDATE projects SET consensus_k = 1 WHERE slug = 'm'")
        .execute(&pool)
        .await
        .unwrap();
    let others = walk(&pool, &cid, QueueOrder::Name, QueueMode::RatedByOthers, 100).await;
    assert_eq!(others, vec![ids["c42"]]);
    // Kept to experts: cid is refused the queue and finds nothing in it...
    sqlx::query("UPDATE projects SET disputes_experts_only = true WHERE slug = 'm'")
        .execute(&pool)
        .await
        .unwrap();
    let r = cid_app
        .post_form(
            "/queue",
            &[("project", "m"), ("mode", "disputed"), ("order", "name")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("keeps its disputed candidates to experts"));
    assert!(
        walk(&pool, &cid, QueueOrder::Name, QueueMode::Disputed, 100)
            .await
            .is_empty()
    );
    // ...until an administrator marks them as an expert.
    let r = app
        .post_form(
            &format!("/admin/users/{}/expert", cid.id.0),
            &[("expert", "true")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'user.expert'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);
    let r = cid_app
        .post_form(
            "/queue",
            &[("project", "m"), ("mode", "disputed"), ("order", "name")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        walk(&pool, &cid, QueueOrder::Name, QueueMode::Disputed, 100).await,
        vec![ids["c42"]]
    );
    // A deciding verdict: 2 real to 1 with k = 1 settles it.
    rate(&cid_app, ids["c42"], "real", &[], "").await;
    assert!(
        walk(&pool, &cid, QueueOrder::Name, QueueMode::Disputed, 100)
            .await
            .is_empty()
    );
}

#[sqlx::test]
async fn the_sql_rule_is_the_domain_rule(pool: PgPool) {
    for k in 1..=4 {
        for r in 0..7 {
            for n in 0..7 {
                let sql: String = sqlx::query_scalar("SELECT consensus_state($1, $2, $3)")
                    .bind(r)
                    .bind(n)
                    .bind(k)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(
                    sql,
                    Consensus::of(r, n, k).as_str(),
                    "{r} real, {n} not, k {k}"
                );
            }
        }
    }
}

#[sqlx::test]
async fn review_rules_are_validated_and_audited(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    survey(&app).await;
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    let bad = [
        (("0", "200"), "1 to 20"),
        (("two", "200"), "a whole number, not"),
        (("2", "-5"), "from 0 (only on demand)"),
    ];
    for ((k, every), says) in bad {
        let r = app
            .post_form(
                "/admin/projects/m/review",
                &[("consensus_k", k), ("retrain_every", every)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{k}/{every}: {says}");
    }
    let unchanged: (i16, i32) =
        sqlx::query_as("SELECT consensus_k, model_retrain_every FROM projects WHERE slug = 'm'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(unchanged, (2, 200));
    let r = app
        .post_form(
            "/admin/projects/m/review",
            &[
                ("consensus_k", "3"),
                ("retrain_every", "50"),
                ("experts_only", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let saved: (i16, i32, bool) = sqlx::query_as(
        "SELECT consensus_k, model_retrain_every, disputes_experts_only FROM projects WHERE slug = 'm'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(saved, (3, 50, true));
    let detail: Value =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'project.review_rules'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(detail["consensus_k"], 3);
}

/// The server trains by itself after the project's step of new ratings,
/// and the train button answers at once.
#[sqlx::test]
async fn the_server_trains_after_every_n_ratings(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), |c| {
        c.model_check = Some(Duration::from_secs(1))
    })
    .await;
    let (ids, _) = survey(&app).await;
    sqlx::query("UPDATE projects SET model_retrain_every = 40 WHERE slug = 'm'")
        .execute(&pool)
        .await
        .unwrap();
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    label(&app, &ids).await;
    let mut waited = 0;
    while scores(&pool).await.len() < 60 {
        assert!(waited < 60, "no model after 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
        waited += 1;
    }
    let started = std::time::Instant::now();
    let r = app.post_form("/projects/m/model/train", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the button does not wait for training"
    );
}

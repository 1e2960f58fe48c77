//! Gold standards: the admin page (marking, removing, the rate, each
//! refused whole with its reason and audited), the upload's gold flag,
//! the queue's mixing rate, that nothing a reviewer is sent tells a gold
//! candidate from another, and the figures `/ratings` shows.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use vetter::db::gold as gold_db;
use vetter::db::queue;
use vetter::domain::gold::{roll, GoldVerdict};
use vetter::domain::queue::QueueView;
use vetter::domain::{CandidateId, ProjectId, Role, UserId};

use crate::candidates::{rate, reviewer, survey};
use crate::helpers::{select_text, TestApp, TestUser};
use crate::upload_api::{token_for, Api};

/// A signed-in administrator of its own.
async fn admin(app: &TestApp) -> (TestApp, TestUser) {
    let other = TestApp::spawn(app.pool.clone()).await;
    let user = other.create_user("boss", Role::Admin).await;
    other.login_as(&user).await;
    (other, user)
}

async fn api_of<'a>(app: &'a TestApp, name: &str) -> Api<'a> {
    let user = app.create_user(name, Role::Admin).await;
    Api {
        app,
        token: token_for(app, &user).await,
    }
}

/// Gold marks as (observation/name, verdict, source, marker), by name.
async fn marks(app: &TestApp) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT o.external_id || '/' || c.name, g.verdict::text, g.source, u.username
           FROM gold_candidates g JOIN candidates c ON c.id = g.candidate_id
           JOIN observations o ON o.id = c.observation_id LEFT JOIN users u ON u.id = g.marked_by
          ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The audit log's gold lines, oldest first: action, target, detail.
async fn audited(app: &TestApp) -> Vec<(String, String, Value)> {
    sqlx::query_as(
        "SELECT action, target, detail FROM audit_log WHERE action LIKE 'gold.%' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn gold_rate(app: &TestApp, slug: &str) -> f32 {
    sqlx::query_scalar("SELECT gold_rate FROM projects WHERE slug = $1")
        .bind(slug)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The messages of a refused form.
async fn refusal(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    select_text(&html, ".form-error").unwrap_or_default()
}

#[sqlx::test]
async fn an_admin_marks_and_unmarks_gold_candidates_and_each_change_is_audited(pool: PgPool) {
    let s = survey(pool).await;
    let (boss, _) = admin(&s.app).await;
    let r = boss.get("/admin/projects/vast").await;
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert!(
        crate::helpers::select_attr(&html, "a[href='/admin/projects/vast/gold']", "href").is_some(),
        "the project page links the gold page"
    );
    let r = boss.get("/admin/projects/vast/gold").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert!(select_text(&html, "#no-gold").is_some());

    // A bare name unique in the project, and observation/name; blank lines
    // and a repeat are fine.
    let r = boss
        .post_form(
            "/admin/projects/vast/gold",
            &[
                ("lines", "SB1/c01\n\n c06 \nSB1/c01\n"),
                ("verdict", "real"),
            ],
        )
        .await;
    crate::helpers::assert_redirect_to(&r, "/admin/projects/vast/gold");
    assert_eq!(
        marks(&s.app).await,
        [
            (
                "SB1/c01".into(),
                "real".into(),
                "admin".into(),
                Some("boss".into())
            ),
            (
                "SB2/c06".into(),
                "real".into(),
                "admin".into(),
                Some("boss".into())
            ),
        ]
    );
    let html = boss.get_html("/admin/projects/vast/gold").await;
    let row = select_text(&html, "tr[data-candidate='SB2/c06']").unwrap();
    for part in ["SB2", "c06", "Real", "admin", "boss", "UTC"] {
        assert!(row.contains(part), "{part} in {row}");
    }
    let flash = select_text(&html, "[role=status], .flash").unwrap_or_default();
    assert!(flash.contains("2 new"), "{flash}");

    // Marked again with the other verdict: changed, not added.
    let r = boss
        .post_form(
            "/admin/projects/vast/gold",
            &[("lines", "c01\nc06"), ("verdict", "not_real")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = boss
        .post_form(
            "/admin/projects/vast/gold",
            &[("lines", "c06"), ("verdict", "not_real")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let c06 = s.ids["c06"];
    let r = boss
        .post_form(&format!("/admin/projects/vast/gold/{c06}/remove"), &[])
        .await;
    crate::helpers::assert_redirect_to(&r, "/admin/projects/vast/gold");
    assert_eq!(
        marks(&s.app).await,
        [(
            "SB1/c01".into(),
            "not_real".into(),
            "admin".into(),
            Some("boss".into())
        )]
    );
    // Not gold (any more), or not of this project: not found.
    let r = boss
        .post_form(&format!("/admin/projects/vast/gold/{c06}/remove"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let c01 = s.ids["c01"];
    let r = boss
        .post_form(&format!("/admin/projects/gleam/gold/{c01}/remove"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let log = audited(&s.app).await;
    let actions: Vec<&str> = log.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        actions,
        ["gold.mark", "gold.mark", "gold.mark", "gold.remove"]
    );
    assert_eq!(log[0].1, "vast");
    assert_eq!(log[0].2["verdict"], "real");
    assert_eq!(log[0].2["candidates"], json!(["SB1/c01", "SB2/c06"]));
    assert_eq!(log[0].2["added"], 2);
    assert_eq!(log[1].2["changed"], 2);
    assert_eq!(log[2].2["unchanged"], 1);
    assert_eq!(log[2].2["candidates"], json!([]));
    assert_eq!(log[3].1, "vast/SB2/c06");
    assert_eq!(log[3].2["verdict"], "not_real");
    // The audit page offers the area.
    let r = boss.get("/admin/audit?action=gold").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test]
async fn bad_gold_lists_and_rates_are_refused_whole_naming_what_is_wrong(pool: PgPool) {
    let s = survey(pool).await;
    let (boss, _) = admin(&s.app).await;
    // A second c01, in SB2, makes the bare name ambiguous.
    let api = api_of(&s.app, "pipe2").await;
    let (st, body) = api
        .post(
            "/projects/vast/observations/SB2/candidates",
            json!({"candidates": [{"name": "c01", "ra": 10.0, "dec": 10.0}]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    let cases: &[(&str, &str, &[&str])] = &[
        (
            "c02\nnope\nSB1/c05\nSB9/c02",
            "real",
            &[
                "\"nope\": no candidate",
                "\"SB1/c05\": no candidate",
                "\"SB9/c02\"",
            ],
        ),
        ("c01", "real", &["in 2 observations (SB1, SB2)"]),
        (
            "SB 1/c02\nc02/x/y",
            "real",
            &["Line 1: \"SB 1/c02\"", "Line 2"],
        ),
        ("", "real", &["List at least one candidate"]),
        ("c02", "unsure", &["Choose the true verdict"]),
        ("c02", "", &["Choose the true verdict"]),
        // Another project's candidate is not found here.
        ("g01", "real", &["\"g01\": no candidate of VAST"]),
    ];
    for (lines, verdict, expected) in cases {
        let r = boss
            .post_form(
                "/admin/projects/vast/gold",
                &[("lines", lines), ("verdict", verdict)],
            )
            .await;
        let text = refusal(r).await;
        for e in *expected {
            assert!(
                text.contains(e),
                "{lines:?}/{verdict}: {e:?} not in {text:?}"
            );
        }
    }
    assert!(marks(&s.app).await.is_empty(), "nothing was marked");
    // What was typed stays in the form.
    let r = boss
        .post_form(
            "/admin/projects/vast/gold",
            &[("lines", "c02\nnope"), ("verdict", "not_real")],
        )
        .await;
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert_eq!(
        select_text(&html, "textarea[name=lines]").unwrap(),
        "c02\nnope"
    );
    assert!(
        crate::helpers::select_attr(&html, "input[name=verdict][value=not_real]", "checked")
            .is_some()
    );

    for bad in ["0.6", "-0.1", "abc", "NaN", "inf", "", "20%"] {
        let r = boss
            .post_form("/admin/projects/vast/gold/rate", &[("gold_rate", bad)])
            .await;
        let text = refusal(r).await;
        assert!(text.contains("from 0 to 0.5"), "{bad}: {text}");
        assert_eq!(gold_rate(&s.app, "vast").await, 0.0, "{bad}");
    }
    let r = boss
        .post_form("/admin/projects/vast/gold/rate", &[("gold_rate", "0.25")])
        .await;
    crate::helpers::assert_redirect_to(&r, "/admin/projects/vast/gold");
    assert_eq!(gold_rate(&s.app, "vast").await, 0.25);
    let html = boss.get_html("/admin/projects/vast/gold").await;
    assert_eq!(
        crate::helpers::select_attr(&html, "input[name=gold_rate]", "value").unwrap(),
        "0.25"
    );
    let log = audited(&s.app).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].0, "gold.rate");
    assert_eq!(log[0].2, json!({"from": 0.0, "to": 0.25}));

    // Reviewers are refused every gold route.
    for path in [
        "/admin/projects/vast/gold",
        "/admin/projects/vast/gold/rate",
    ] {
        let r = s.app.post_form(path, &[("gold_rate", "0.5")]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(gold_rate(&s.app, "vast").await, 0.25);
}

#[sqlx::test]
async fn the_upload_flags_gold_candidates_and_a_bad_flag_refuses_the_whole_request(pool: PgPool) {
    let s = survey(pool).await;
    let api = api_of(&s.app, "pipe2").await;
    let path = "/projects/vast/observations/SB1/candidates";
    let c01 = json!({"name": "c01", "beam": "beam00", "ra": 188.70, "dec": -45.20,
                     "metrics": {"snr": 5.0, "md": 0.1, "eta": 1.0},
                     "positions": {"deep": {"ra": 188.70, "dec": -45.21}}, "gold": "real"});
    let c09 = json!({"name": "c09", "ra": 12.0, "dec": 3.0, "gold": "not_real",
                     "attributes": {"note": "injected"}});
    let (st, body) = api
        .post(path, json!({"candidates": [c01.clone(), c09.clone()]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let status: Vec<&str> = body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    // c01's data is as it was: only its new gold mark makes it "updated".
    assert_eq!(status, ["updated", "created"], "{body}");
    assert_eq!(
        marks(&s.app).await,
        [
            (
                "SB1/c01".into(),
                "real".into(),
                "upload".into(),
                Some("pipe2".into())
            ),
            (
                "SB1/c09".into(),
                "not_real".into(),
                "upload".into(),
                Some("pipe2".into())
            ),
        ]
    );
    // The flag is not kept with the candidate.
    let attributes: String =
        sqlx::query_scalar("SELECT attributes::text FROM candidates WHERE name = 'c09'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert!(!attributes.contains("gold"), "{attributes}");
    // Sent again: unchanged; without the flag: the mark stays.
    let (st, body) = api
        .post(path, json!({"candidates": [c01.clone(), c09.clone()]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["unchanged"], 2, "{body}");
    let mut plain = c09.clone();
    plain.as_object_mut().unwrap().remove("gold");
    let (st, body) = api
        .put("/projects/vast/observations/SB1/candidates/c09", plain)
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "unchanged", "{body}");
    assert_eq!(marks(&s.app).await.len(), 2);

    // A bad flag anywhere refuses the whole batch, naming the candidate.
    let count = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT (SELECT count(*) FROM candidates), (SELECT count(*) FROM gold_candidates)",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let before = count(&s.app).await;
    for bad in [
        json!("unsure"),
        json!("REAL"),
        json!(true),
        json!(0.5),
        json!(["real"]),
    ] {
        let (st, body) = api
            .post(
                path,
                json!({"candidates": [
                    {"name": "c10", "ra": 1.0, "dec": 1.0, "gold": "real"},
                    {"name": "c11", "ra": 2.0, "dec": 2.0, "gold": bad.clone()}]}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {body}");
        let problems = body["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{body}");
        assert_eq!(problems[0]["field"], "candidates[1].gold");
        let message = problems[0]["message"].as_str().unwrap();
        assert!(
            message.contains("\"c11\"") && message.contains("not_real"),
            "{message}"
        );
        assert_eq!(
            count(&s.app).await,
            before,
            "{bad}: the database is as it was"
        );
    }
    let (st, body) = api
        .put(
            "/projects/vast/observations/SB1/candidates/c09",
            json!({"ra": 12.0, "dec": 3.0, "gold": "maybe"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["problems"][0]["field"], "gold");
    assert_eq!(marks(&s.app).await[1].1, "not_real");
}

/// Project `mix`: gold candidates g00..g09 (flagged at upload) and others
/// o00..o19, all in observation O1; and a reviewer whose queue is the
/// project, by name, "not rated by me".
struct Mix {
    app: TestApp,
    project: ProjectId,
    gold: Vec<CandidateId>,
    others: Vec<CandidateId>,
    user: UserId,
}

async fn mix(pool: PgPool) -> Mix {
    let app = TestApp::spawn(pool).await;
    let api = api_of(&app, "pipeline").await;
    let (st, body) = api.put("/projects/mix", json!({"name": "Mix"})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = api.put("/projects/mix/observations/O1", json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let mut list = Vec::new();
    for i in 0..10 {
        list.push(
            json!({"name": format!("g{i:02}"), "ra": 10.0 + i as f64, "dec": 0.0, "gold": "real"}),
        );
    }
    for i in 0..20 {
        list.push(json!({"name": format!("o{i:02}"), "ra": 40.0 + i as f64, "dec": 0.0}));
    }
    let (st, body) = api
        .post(
            "/projects/mix/observations/O1/candidates",
            json!({"candidates": list}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let ids: HashMap<String, CandidateId> = body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                CandidateId(c["id"].as_i64().unwrap()),
            )
        })
        .collect();
    let pick = |prefix: char| {
        let mut v: Vec<(&String, &CandidateId)> =
            ids.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        v.sort();
        v.into_iter().map(|(_, id)| *id).collect::<Vec<_>>()
    };
    let project = sqlx::query_scalar("SELECT id FROM projects WHERE slug = 'mix'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let user = app.create_user("rita", Role::Reviewer).await.id;
    let mut conn = app.pool.acquire().await.unwrap();
    let view = QueueView {
        project: Some("mix".into()),
        ..QueueView::default()
    };
    queue::save(&mut conn, user, &view).await.unwrap();
    Mix {
        project,
        gold: pick('g'),
        others: pick('o'),
        user,
        app,
    }
}

async fn set_rate(app: &TestApp, rate: f32) {
    sqlx::query("UPDATE projects SET gold_rate = $1 WHERE slug = 'mix'")
        .bind(rate)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn next_offers_gold_at_the_projects_rate_over_ten_thousand_draws(pool: PgPool) {
    let m = mix(pool).await;
    set_rate(&m.app, 0.2).await;
    let mut conn = m.app.pool.acquire().await.unwrap();
    let r = queue::load(&mut conn, m.user, Role::Reviewer)
        .await
        .unwrap();
    // A reviewer who skips every candidate, so that none leaves the queue.
    const DRAWS: usize = 10_000;
    let (mut gold, mut after) = (0usize, None);
    let mut seen_gold = std::collections::BTreeSet::new();
    for _ in 0..DRAWS {
        let offered = queue::offer(&mut conn, m.user, &r, after, 2, roll())
            .await
            .unwrap();
        let first = offered[0];
        if m.gold.contains(&first) {
            gold += 1;
            seen_gold.insert(first);
            // What is fetched ahead is the walk's, never another gold one.
            assert!(m.others.contains(&offered[1]));
        } else {
            assert!(m.others.contains(&first), "{first:?} is in the project");
        }
        after = Some(first);
    }
    // Each draw is gold with probability 0.2, independently: the count is
    // binomial(10000, 0.2), standard deviation sqrt(10000 × 0.2 × 0.8) = 40
    // draws, 0.004 of the share. ±0.02 is five standard deviations: a
    // correct draw fails this about once in 1.7 million runs.
    let share = gold as f64 / DRAWS as f64;
    assert!((share - 0.2).abs() <= 0.02, "gold share {share}");
    // The gold ones offered are not one and the same.
    assert!(seen_gold.len() > 1, "{seen_gold:?}");
}

#[sqlx::test]
async fn at_rate_zero_gold_candidates_are_walked_like_any_other(pool: PgPool) {
    let m = mix(pool).await;
    let mut conn = m.app.pool.acquire().await.unwrap();
    let r = queue::load(&mut conn, m.user, Role::Reviewer)
        .await
        .unwrap();
    // By name: g00..g09 then o00..o19, whatever the roll.
    let mut walked = Vec::new();
    let mut after = None;
    for _ in 0..30 {
        let first = queue::offer(&mut conn, m.user, &r, after, 1, 0.0)
            .await
            .unwrap()[0];
        walked.push(first);
        after = Some(first);
    }
    let expected: Vec<CandidateId> = m.gold.iter().chain(&m.others).copied().collect();
    assert_eq!(walked, expected);
    assert_eq!(queue::size(&mut conn, m.user, &r).await.unwrap(), 30);

    // Above zero, the walk leaves them out and only draws offer them; the
    // queue's count still holds them.
    set_rate(&m.app, 0.1).await;
    let r = queue::load(&mut conn, m.user, Role::Reviewer)
        .await
        .unwrap();
    let walk = queue::upcoming(&mut conn, m.user, &r, None, 100)
        .await
        .unwrap();
    assert_eq!(walk, m.others);
    assert_eq!(queue::size(&mut conn, m.user, &r).await.unwrap(), 30);
    let no_draw = queue::offer(&mut conn, m.user, &r, None, 1, 0.1)
        .await
        .unwrap();
    assert_eq!(no_draw, [m.others[0]], "a roll of 0.1 is not below 0.1");
    let draw = queue::offer(&mut conn, m.user, &r, None, 1, 0.0999)
        .await
        .unwrap();
    assert!(m.gold.contains(&draw[0]), "{draw:?}");

    // Once the reviewer has rated everything else, the gold left is
    // offered, whatever the roll, and counted until rated.
    sqlx::query(
        "INSERT INTO ratings (candidate_id, user_id, verdict)
         SELECT id, $1, 'real' FROM candidates WHERE name LIKE 'o%'",
    )
    .bind(m.user)
    .execute(&m.app.pool)
    .await
    .unwrap();
    assert_eq!(queue::size(&mut conn, m.user, &r).await.unwrap(), 10);
    let left = queue::offer(&mut conn, m.user, &r, None, 1, 0.99)
        .await
        .unwrap();
    assert!(m.gold.contains(&left[0]), "{left:?}");
    sqlx::query(
        "INSERT INTO ratings (candidate_id, user_id, verdict)
         SELECT id, $1, 'real' FROM candidates WHERE name LIKE 'g%'",
    )
    .bind(m.user)
    .execute(&m.app.pool)
    .await
    .unwrap();
    assert_eq!(queue::size(&mut conn, m.user, &r).await.unwrap(), 0);
    assert!(queue::offer(&mut conn, m.user, &r, None, 1, 0.0)
        .await
        .unwrap()
        .is_empty());
    // Marks made through db::gold are the upload's: all ten, real.
    let (rows, total) = gold_db::list(&mut conn, m.project, 100).await.unwrap();
    assert_eq!(total, 10);
    assert!(rows
        .iter()
        .all(|g| g.verdict == GoldVerdict::Real && g.source == "upload"));
}

#[sqlx::test]
async fn a_gold_draw_leaves_the_walk_where_it_was(pool: PgPool) {
    let m = mix(pool).await;
    set_rate(&m.app, 0.5).await;
    let mut conn = m.app.pool.acquire().await.unwrap();
    let r = queue::load(&mut conn, m.user, Role::Reviewer)
        .await
        .unwrap();
    // The reviewer is shown o00 and o01 (by name), then a gold draw, then
    // walks on: o02, whatever the gold candidate's own place by name.
    let shown = |id: CandidateId| {
        let pool = m.app.pool.clone();
        let user = m.user;
        async move {
            let mut c = pool.acquire().await.unwrap();
            vetter::db::trail::before(&mut c, user, id, true)
                .await
                .unwrap();
        }
    };
    let first = queue::offer(&mut conn, m.user, &r, None, 1, 0.9)
        .await
        .unwrap()[0];
    assert_eq!(first, m.others[0]);
    shown(first).await;
    let second = queue::offer(&mut conn, m.user, &r, Some(first), 1, 0.9)
        .await
        .unwrap()[0];
    assert_eq!(second, m.others[1]);
    shown(second).await;
    let offered = queue::offer(&mut conn, m.user, &r, Some(second), 2, 0.0)
        .await
        .unwrap();
    let gold = offered[0];
    assert!(m.gold.contains(&gold), "{offered:?}");
    assert_eq!(
        offered[1], m.others[2],
        "fetched ahead: where the walk goes on"
    );
    shown(gold).await;
    let next = queue::offer(&mut conn, m.user, &r, Some(gold), 1, 0.9)
        .await
        .unwrap()[0];
    assert_eq!(next, m.others[2]);
    // Another gold draw after the gold one is not the same one again.
    let again = queue::offer(&mut conn, m.user, &r, Some(gold), 1, 0.0)
        .await
        .unwrap()[0];
    assert!(m.gold.contains(&again) && again != gold);
}

/// `body` with what differs between any two answers (CSRF tokens, form
/// keys: runs of 16 or more hex digits) blanked, and the given strings and
/// whole numbers replaced by placeholders.
fn normalise(body: &str, names: &[(&str, &str)], ids: &[(i64, &str)]) -> String {
    let mut text = body.to_string();
    for (from, to) in names {
        text = text.replace(from, to);
    }
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let hex = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        let starts_word = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if hex >= 16 && starts_word {
            out.push_str("HEX");
            i += hex;
            continue;
        }
        let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && (i == 0 || !chars[i - 1].is_ascii_digit()) {
            let run: String = chars[i..i + digits].iter().collect();
            let placeholder = ids
                .iter()
                .find(|(id, _)| run == id.to_string())
                .map(|(_, p)| *p);
            out.push_str(placeholder.unwrap_or(&run));
            i += digits;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `a` and `b` are equal; if not, the first lines where they part.
fn assert_same(label: &str, a: &str, b: &str) {
    if a == b {
        return;
    }
    let at = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or(a.lines().count().min(b.lines().count()));
    let show = |t: &str| t.lines().skip(at).take(3).collect::<Vec<_>>().join("\n");
    panic!(
        "{label}: answers differ at line {at}:\n{}\n----- versus -----\n{}",
        show(a),
        show(b)
    );
}

/// Everything a response says: its status, its headers but the date and
/// cookies, and its body.
async fn whole(app: &TestApp, path: &str, htmx: bool) -> String {
    let mut req = app.client.get(app.url(path));
    if htmx {
        req = req.header("HX-Request", "true");
    }
    let r = req.send().await.unwrap();
    let mut out = format!("{}\n", r.status());
    let mut headers: Vec<String> = r
        .headers()
        .iter()
        .filter(|(k, _)| !["date", "set-cookie", "content-length"].contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
        .collect();
    headers.sort();
    out.push_str(&headers.join("\n"));
    out.push('\n');
    out.push_str(&r.text().await.unwrap());
    out
}

/// What a reviewer can ask about one candidate, and about the survey.
fn candidate_paths(id: i64) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = [
        format!("/candidates/{id}"),
        format!("/candidates/{id}/details"),
        format!("/candidates/{id}/nearby"),
        format!("/candidates/{id}/simbad"),
        format!("/candidates/{id}/association/search?q=c"),
        format!("/candidates/{id}/firefly"),
        format!("/candidates/{id}/group"),
        format!("/candidates/{id}/light-curve"),
        format!("/candidates/{id}/lightcurve.csv"),
        format!("/batch?group={id}"),
        format!("/previous?from={id}"),
    ]
    .into_iter()
    .map(|p| (p, false))
    .collect();
    out.push((format!("/candidates/{id}"), true));
    out
}

fn survey_paths(project: &str) -> Vec<String> {
    let mut out = vec![
        "/".to_string(),
        "/queue".into(),
        "/queue/left".into(),
        "/views".into(),
        "/account".into(),
        format!("/ratings?project={project}"),
        format!("/candidates?project={project}&per=500"),
        format!("/candidates?project={project}&per=500&sort=ratings&dir=desc"),
    ];
    for ratings in ["current", "history", "none"] {
        out.push(format!(
            "/candidates.csv?project={project}&ratings={ratings}"
        ));
        out.push(format!(
            "/candidates.vot?project={project}&ratings={ratings}"
        ));
    }
    out
}

#[sqlx::test]
async fn a_reviewer_is_sent_the_same_whether_or_not_a_candidate_is_gold(pool: PgPool) {
    let s = survey(pool).await;
    let (eve, _) = reviewer(&s.app, "eve").await;
    let (boss, _) = admin(&s.app).await;
    let c05 = s.ids["c05"];
    let mut paths: Vec<(String, bool)> = candidate_paths(c05);
    paths.extend(survey_paths("vast").into_iter().map(|p| (p, false)));
    // alice rated c05; eve has rated nothing. Both are asked before and
    // after c05 becomes gold and the project mixes gold in.
    // A first pass leaves what sessions remember (the queue's count) as it
    // will be in the next two.
    for who in [&s.app, &eve] {
        for (p, htmx) in &paths {
            whole(who, p, *htmx).await;
        }
    }
    let mut before = Vec::new();
    for who in [&s.app, &eve] {
        for (p, htmx) in &paths {
            before.push(normalise(&whole(who, p, *htmx).await, &[], &[]));
        }
    }
    let r = boss
        .post_form(
            "/admin/projects/vast/gold",
            &[("lines", "c05"), ("verdict", "real")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = boss
        .post_form("/admin/projects/vast/gold/rate", &[("gold_rate", "0.3")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut i = 0;
    for who in [&s.app, &eve] {
        for (p, htmx) in &paths {
            let now = normalise(&whole(who, p, *htmx).await, &[], &[]);
            let label = format!("{p} (htmx: {htmx}), before and after c05 became gold");
            assert_same(&label, &before[i], &now);
            i += 1;
        }
    }
}

#[sqlx::test]
async fn a_gold_and_a_plain_candidate_look_alike_and_gold_is_never_mentioned(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = api_of(&app, "pipeline").await;
    let (st, body) = api
        .put(
            "/projects/twins",
            json!({"name": "Twins", "metrics": [{"key": "snr", "label": "S/N"}], "tags": [{"name": "Noise"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = api
        .put(
            "/projects/twins/observations/O1",
            json!({"start_time": "2024-05-01T12:00:00Z"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    // Ids no other number on a page is equal to, for `normalise`.
    sqlx::query("ALTER TABLE candidates ALTER COLUMN id RESTART WITH 900001")
        .execute(&app.pool)
        .await
        .unwrap();
    let twin = |name: &str, gold: Option<&str>| {
        let mut c = json!({"name": name, "ra": 150.0, "dec": -30.0, "metrics": {"snr": 8.5},
                           "attributes": {"field": "A"},
                           "light_curve": {"unit": "mJy", "points": [
                               {"time": "2024-05-01T12:00:00Z", "flux": 1.0, "err": 0.1},
                               {"time": "2024-05-02T12:00:00Z", "flux": 4.0, "err": 0.1}]}});
        if let Some(g) = gold {
            c["gold"] = json!(g);
        }
        c
    };
    let (st, body) = api
        .post(
            "/projects/twins/observations/O1/candidates",
            json!({"candidates": [twin("TWINAAA", Some("real")), twin("TWINBBB", None)]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let id = |i: usize| body["candidates"][i]["id"].as_i64().unwrap();
    let (gold, plain) = (id(0), id(1));
    sqlx::query("UPDATE projects SET gold_rate = 0.5")
        .execute(&app.pool)
        .await
        .unwrap();
    let eve = app.create_user("eve", Role::Reviewer).await;
    app.login_as(&eve).await;

    let compare = |label: &str, a: &str, b: &str| {
        let a = normalise(
            a,
            &[("TWINAAA", "SELF"), ("TWINBBB", "OTHER")],
            &[(gold, "ID"), (plain, "OTHERID")],
        );
        let b = normalise(
            b,
            &[("TWINBBB", "SELF"), ("TWINAAA", "OTHER")],
            &[(plain, "ID"), (gold, "OTHERID")],
        );
        assert_same(label, &a, &b);
    };
    for round in ["unrated", "rated"] {
        // Each page once first, so that each one's "previous" is the other.
        for c in [plain, gold] {
            app.get(&format!("/candidates/{c}")).await;
        }
        for ((g, htmx), (p, _)) in candidate_paths(gold)
            .into_iter()
            .zip(candidate_paths(plain))
        {
            let (a, b) = (whole(&app, &g, htmx).await, whole(&app, &p, htmx).await);
            assert!(!a.to_lowercase().contains("gold"), "{g} mentions gold");
            compare(&format!("{round} {g} (htmx: {htmx})"), &a, &b);
        }
        // Rows of the table and of the exports, side by side.
        for path in survey_paths("twins") {
            let body = whole(&app, &path, false).await;
            assert!(
                path.starts_with("/ratings") || !body.to_lowercase().contains("gold"),
                "{path} mentions gold"
            );
            // One row each: a table row, a VOTable row, a CSV line.
            let rows: Vec<&str> = if path.contains(".vot") {
                body.split("<TR>")
                    .filter_map(|r| r.split("</TR>").next())
                    .collect()
            } else if path.contains(".csv") {
                body.lines().collect()
            } else {
                body.split("<tr")
                    .filter_map(|r| r.split("</tr>").next())
                    .collect()
            };
            let of = |name: &str| -> String {
                rows.iter()
                    .filter(|r| r.contains(name))
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            compare(&format!("{round} {path}"), &of("TWINAAA"), &of("TWINBBB"));
        }
        // Nor does "next", which at rate 0.5 offers the gold twin about
        // every other time (and once both are rated, the empty queue).
        for _ in 0..6 {
            let r = app.get("/next").await;
            let text = if r.status() == StatusCode::SEE_OTHER {
                whole(&app, &crate::helpers::location(&r), false).await
            } else {
                r.text().await.unwrap()
            };
            assert!(!text.to_lowercase().contains("gold"), "{text}");
        }
        for c in [plain, gold] {
            rate(&app, c, "real", &[], "looks real").await;
        }
        // At one and the same time, which the pages and exports show.
        sqlx::query("UPDATE ratings SET rated_at = '2026-01-02T03:04:05Z'")
            .execute(&app.pool)
            .await
            .unwrap();
    }
}

#[sqlx::test]
async fn ratings_show_a_reviewer_their_own_gold_figures_and_an_admin_everyones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = api_of(&app, "pipeline").await;
    let (st, body) = api
        .put("/projects/gp", json!({"name": "Gold project"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = api.put("/projects/gp/observations/O1", json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    // r1..r4 truly real, n1 and n2 truly not real, o1..o4 not gold.
    let mut list = Vec::new();
    for (i, name) in ["r1", "r2", "r3", "r4", "n1", "n2", "o1", "o2", "o3", "o4"]
        .iter()
        .enumerate()
    {
        let mut c = json!({"name": name, "ra": 20.0 + i as f64, "dec": 5.0});
        match name.as_bytes()[0] {
            b'r' => c["gold"] = json!("real"),
            b'n' => c["gold"] = json!("not_real"),
            _ => {}
        }
        list.push(c);
    }
    let (st, body) = api
        .post(
            "/projects/gp/observations/O1/candidates",
            json!({"candidates": list}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let ids: HashMap<String, i64> = body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let (ann, _) = reviewer(&app, "ann").await;
    let (bob, _) = reviewer(&app, "bob").await;
    let (carol, _) = reviewer(&app, "carol").await;
    let (boss, _) = admin(&app).await;
    for (who, name, verdict) in [
        (&ann, "r1", "real"),
        (&ann, "r2", "real"),
        (&ann, "r3", "unsure"),
        (&ann, "r4", "not_real"),
        (&ann, "n1", "real"),
        (&ann, "n2", "not_real"),
        (&ann, "o1", "real"),
        (&bob, "r1", "real"),
        (&bob, "r2", "not_real"),
        (&bob, "r3", "real"),
        (&bob, "n1", "not_real"),
        (&bob, "o2", "not_real"),
    ] {
        rate(who, ids[name], verdict, &[], "").await;
    }
    // Those were two days ago; today ann changes r4 to real and rates o3.
    sqlx::query("UPDATE ratings SET rated_at = now() - interval '2 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    rate(&ann, ids["r4"], "real", &[], "").await;
    rate(&ann, ids["o3"], "real", &[], "").await;

    /// Each gold row: reviewer → (rated, recall, precision, false positives).
    async fn rows(app: &TestApp) -> (Vec<(String, [String; 4])>, scraper::Html) {
        let r = app.get("/ratings?project=gp").await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = scraper::Html::parse_document(&r.text().await.unwrap());
        let tr = scraper::Selector::parse("#gold-reviewers tbody tr").unwrap();
        let td = scraper::Selector::parse("td").unwrap();
        let out = html
            .select(&tr)
            .map(|row| {
                let cells: Vec<String> = row
                    .select(&td)
                    .map(|c| c.text().collect::<String>().trim().to_string())
                    .collect();
                (
                    cells[0].clone(),
                    [
                        cells[1].clone(),
                        cells[2].clone(),
                        cells[3].clone(),
                        cells[4].clone(),
                    ],
                )
            })
            .collect();
        (out, html)
    }
    let line = |n: &str, rated: &str, recall: &str, precision: &str, fp: &str| {
        (
            n.to_string(),
            [rated.into(), recall.into(), precision.into(), fp.into()],
        )
    };

    // ann, on her own ratings of two days ago: r4 was not real then and
    // today's change is not counted yet; so 5 rated, real 2 of 3 called
    // real, 2 of her 3 "real" verdicts right, 1 of 2 not-real called real.
    let (got, html) = rows(&ann).await;
    assert_eq!(
        got,
        [line(
            "ann",
            "5",
            "66.7 % (2/3)",
            "66.7 % (2/3)",
            "50.0 % (1/2)"
        )]
    );
    assert!(select_text(&html, "#gold-completeness").is_none());
    let (got, _) = rows(&bob).await;
    assert_eq!(
        got,
        [line(
            "bob",
            "4",
            "66.7 % (2/3)",
            "100.0 % (2/2)",
            "0.0 % (0/1)"
        )]
    );
    let (got, _) = rows(&carol).await;
    assert_eq!(got, [line("carol", "0", "— (0/0)", "— (0/0)", "— (0/0)")]);

    // The administrator sees everyone, as of now.
    let (got, html) = rows(&boss).await;
    assert_eq!(
        got,
        [
            line("ann", "6", "75.0 % (3/4)", "75.0 % (3/4)", "50.0 % (1/2)"),
            line("bob", "4", "66.7 % (2/3)", "100.0 % (2/2)", "0.0 % (0/1)"),
        ]
    );
    // Others rated: o1, o2, o3 of four. Gold real found (more than half of
    // its ratings real): r1 (2 of 2) and r4 (1 of 1), not r2 or r3 (1 of
    // 2): 2 of 4. Completeness 0.75 × 0.5.
    assert_eq!(
        select_text(&html, "#gold-coverage").unwrap(),
        "75.0 % (3/4)"
    );
    assert_eq!(
        select_text(&html, "#gold-team-recall").unwrap(),
        "50.0 % (2/4)"
    );
    assert_eq!(select_text(&html, "#gold-completeness").unwrap(), "37.5 %");

    // Without a project, the page asks for one.
    let html = ann.get_html("/ratings?reset=1").await;
    assert!(select_text(&html, "#gold-choose").is_some());
}

//! The rating flow on the server: queue order and modes, rating with
//! history, undo, repeated and concurrent submissions, the empty queue.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{assert_redirect_to, location, select_attr, select_text, TestApp, TestUser};
use crate::upload_api::uploader;

/// Project `p` (tags Noise, Pulsar; metric snr) with candidates c01..c06,
/// snr descending with the number. Returns name → id.
async fn survey(app: &TestApp) -> HashMap<String, i64> {
    let api = uploader(app).await;
    let (s, _) = api
        .put("/projects/p", json!({"name": "P", "metrics": [{"key": "snr", "label": "SNR"}], "tags": [{"name": "Noise"}, {"name": "Pulsar"}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api
        .put(
            "/projects/p/observations/o1",
            json!({"start_time": "2024-05-01T12:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let cands: Vec<_> = (1..=6)
        .map(|i| json!({"name": format!("c{i:02}"), "ra": 10.0 + i as f64 * 0.01, "dec": -30.0, "metrics": {"snr": 100.0 - i as f64}}))
        .collect();
    let (s, body) = api
        .post(
            "/projects/p/observations/o1/candidates",
            json!({"candidates": cands}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn tag_ids(app: &TestApp) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT name, id FROM tags")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The candidate `/next` leads to (following the redirect by hand).
async fn next_name(app: &TestApp) -> Option<String> {
    let r = app.get("/next").await;
    if r.status() == StatusCode::OK {
        let html = scraper::Html::parse_document(&r.text().await.unwrap());
        assert!(
            select_text(&html, "#queue-empty").is_some(),
            "an empty queue is a page, not an error"
        );
        return None;
    }
    let to = location(&r);
    let html = app.get_html(&to).await;
    select_attr(&html, "#candidate", "data-candidate-name")
}

/// Rates through the htmx path; returns the name of the candidate shown next.
async fn rate(
    app: &TestApp,
    id: i64,
    verdict: &str,
    tags: &[i64],
    key: Option<&str>,
) -> Option<String> {
    let token = app.csrf_token(&format!("/candidates/{id}")).await;
    let mut form: Vec<(String, String)> = vec![
        ("verdict".into(), verdict.into()),
        ("notes".into(), format!("{verdict} note")),
    ];
    for t in tags {
        form.push(("tags".into(), t.to_string()));
    }
    if let Some(k) = key {
        form.push(("key".into(), k.into()));
    }
    let r = app
        .client
        .post(app.url(&format!("/candidates/{id}/rating")))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", token)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pushed = r
        .headers()
        .get("hx-push-url")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.text().await.unwrap();
    assert!(!body.contains("<html"), "htmx gets a fragment");
    let html = scraper::Html::parse_fragment(&body);
    let name = select_attr(&html, "#candidate", "data-candidate-name");
    if let (Some(_), Some(p)) = (&name, &pushed) {
        let shown = select_attr(&html, "#candidate", "data-candidate-id").unwrap();
        assert_eq!(
            p,
            &format!("/candidates/{shown}"),
            "the pushed URL is the candidate shown"
        );
    }
    name
}

async fn set_queue(app: &TestApp, fields: &[(&str, &str)]) {
    let r = app.post_form("/queue", fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn reviewer(app: &TestApp, name: &str) -> (TestApp, TestUser) {
    let other = TestApp::spawn(app.pool.clone()).await;
    let user = other.create_user(name, Role::Reviewer).await;
    other.login_as(&user).await;
    (other, user)
}

/// The rating page says how the session goes: ratings made, and how many
/// are left, from a count the page asks for once and then keeps current.
#[sqlx::test]
async fn the_rating_page_shows_progress_without_counting_each_time(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    let page = alice.get_html(&format!("/candidates/{}", ids["c01"])).await;
    let progress = select_text(&page, ".cand-nav .progress").unwrap();
    assert!(progress.starts_with("0 rated"), "{progress}");
    // No count yet: the page asks for one.
    assert_eq!(
        select_attr(&page, "#queue-left", "hx-get").as_deref(),
        Some("/queue/left")
    );
    let left = alice.get_html("/queue/left").await;
    assert_eq!(select_text(&left, "#queue-left").unwrap(), "6 left");
    // Asked again, it answers from the session's count, not a new one: a
    // candidate added meanwhile does not show until the count is old.
    sqlx::query(
        "INSERT INTO candidates (project_id, observation_id, name, ra, dec, content_hash)
         SELECT project_id, observation_id, 'c99', ra, dec, 'x' FROM candidates WHERE id = $1",
    )
    .bind(ids["c01"])
    .execute(&app.pool)
    .await
    .unwrap();
    let left = alice.get_html("/queue/left").await;
    assert_eq!(select_text(&left, "#queue-left").unwrap(), "6 left");
    rate(&alice, ids["c01"], "real", &[], None).await;
    rate(&alice, ids["c02"], "real", &[], None).await;
    let page = alice.get_html(&format!("/candidates/{}", ids["c03"])).await;
    let progress = select_text(&page, ".cand-nav .progress").unwrap();
    assert!(
        progress.starts_with("2 rated") && progress.contains("4 left"),
        "{progress}"
    );
    assert!(select_attr(&page, "#queue-left", "hx-get").is_none());
}

#[sqlx::test]
async fn rating_moves_on_to_the_next_unrated_candidate_by_name(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    assert_eq!(next_name(&alice).await.as_deref(), Some("c01"));
    assert_eq!(
        rate(&alice, ids["c01"], "real", &[], None).await.as_deref(),
        Some("c02")
    );
    // c01 is done: the queue starts at c02 now.
    assert_eq!(next_name(&alice).await.as_deref(), Some("c02"));
    for n in ["c02", "c03", "c04", "c05"] {
        rate(&alice, ids[n], "not_real", &[], None).await;
    }
    assert_eq!(
        rate(&alice, ids["c06"], "unsure", &[], None).await,
        None,
        "the queue is empty"
    );
    assert_eq!(next_name(&alice).await, None);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 6);
    let count: i32 = sqlx::query_scalar("SELECT rating_count FROM candidates WHERE name = 'c03'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test]
async fn without_javascript_a_rating_redirects_to_the_next_candidate(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    let token = alice
        .csrf_token(&format!("/candidates/{}", ids["c01"]))
        .await;
    let r = alice
        .client
        .post(alice.url(&format!("/candidates/{}/rating", ids["c01"])))
        .form(&[("verdict", "real"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&r, &format!("/candidates/{}", ids["c02"]));
    // A missing verdict is a clear 400, not a crash.
    let r = alice
        .client
        .post(alice.url(&format!("/candidates/{}/rating", ids["c02"])))
        .form(&[("notes", "x"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("choose a verdict"));
}

#[sqlx::test]
async fn each_order_gives_its_sequence(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    set_queue(&alice, &[("project", "p"), ("order", "metric:snr:desc")]).await;
    assert_eq!(
        next_name(&alice).await.as_deref(),
        Some("c01"),
        "largest snr first"
    );
    set_queue(&alice, &[("project", "p"), ("order", "metric:snr:asc")]).await;
    assert_eq!(
        next_name(&alice).await.as_deref(),
        Some("c06"),
        "smallest snr first"
    );
    // Shuffled: the same for me every time.
    set_queue(&alice, &[("project", "p"), ("order", "shuffled")]).await;
    let first = next_name(&alice).await;
    assert_eq!(next_name(&alice).await, first);
    // Fewest ratings first: once bob rates c01..c05, c06 comes first.
    let (bob, _) = reviewer(&app, "bob").await;
    let ids: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT name, id FROM candidates")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for n in ["c01", "c02", "c03", "c04", "c05"] {
        rate(&bob, ids[n], "real", &[], None).await;
    }
    set_queue(&alice, &[("project", "p"), ("order", "fewest")]).await;
    assert_eq!(next_name(&alice).await.as_deref(), Some("c06"));
    // A bad order is refused with a reason.
    let r = alice
        .post_form("/queue", &[("order", "metric:Bad Key:asc")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[sqlx::test]
async fn each_mode_selects_its_candidates(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    let (bob, _) = reviewer(&app, "bob").await;
    rate(&bob, ids["c01"], "real", &[], None).await;
    rate(&bob, ids["c02"], "real", &[], None).await;
    rate(&alice, ids["c02"], "not_real", &[], None).await;

    set_queue(&alice, &[("mode", "unrated_by_anyone")]).await;
    assert_eq!(next_name(&alice).await.as_deref(), Some("c03"));
    set_queue(&alice, &[("mode", "rated_by_others")]).await;
    assert_eq!(next_name(&alice).await.as_deref(), Some("c01"));
    set_queue(&alice, &[("mode", "disagreements")]).await;
    assert_eq!(next_name(&alice).await.as_deref(), Some("c02"));
    set_queue(&alice, &[("mode", "unrated_by_me")]).await;
    assert_eq!(next_name(&alice).await.as_deref(), Some("c01"));
    // The queue is kept in the database: a new session sees it.
    let again = TestApp::spawn(app.pool.clone()).await;
    again
        .login_as(&TestUser {
            id: vetter::domain::UserId(0),
            username: "alice".into(),
            password: "alice-secret-pw".into(),
        })
        .await;
    let html = again.get_html("/queue").await;
    assert!(select_text(&html, "main")
        .unwrap()
        .contains("not rated by me"));
}

#[sqlx::test]
async fn changing_a_rating_keeps_the_old_one_in_the_history(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let tags = tag_ids(&app).await;
    let (alice, alice_user) = reviewer(&app, "alice").await;
    let (bob, _) = reviewer(&app, "bob").await;
    // Others' ratings are hidden until I have rated.
    rate(&bob, ids["c01"], "unsure", &[], None).await;
    let html = alice.get_html(&format!("/candidates/{}", ids["c01"])).await;
    assert!(
        select_text(&html, "ul.ratings").is_none(),
        "no anchoring on others"
    );

    rate(&alice, ids["c01"], "real", &[tags["Pulsar"]], None).await;
    rate(&alice, ids["c01"], "not_real", &[tags["Noise"]], None).await;
    let current: (String, String) =
        sqlx::query_as("SELECT verdict::text, notes FROM ratings WHERE user_id = $1")
            .bind(alice_user.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(current, ("not_real".into(), "not_real note".into()));
    let hist: (String, Vec<String>) =
        sqlx::query_as("SELECT verdict::text, tag_names FROM rating_history WHERE user_id = $1")
            .bind(alice_user.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(hist, ("real".into(), vec!["Pulsar".to_string()]));
    let html = alice.get_html(&format!("/candidates/{}", ids["c01"])).await;
    let all = select_text(&html, "aside.rating-card").unwrap();
    assert!(all.contains("bob") && all.contains("Unsure"), "{all}");
    let details = alice
        .get_html(&format!("/candidates/{}/details", ids["c01"]))
        .await;
    assert!(select_text(&details, "ul.ratings")
        .unwrap()
        .contains("Pulsar"));
    assert_eq!(
        select_attr(
            &html,
            &format!("input[name=tags][value=\"{}\"]", tags["Noise"]),
            "checked"
        )
        .as_deref(),
        Some("")
    );
    let count: i32 = sqlx::query_scalar("SELECT rating_count FROM candidates WHERE id = $1")
        .bind(ids["c01"])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 2, "two reviewers, whatever the changes");
}

#[sqlx::test]
async fn undo_takes_back_the_last_rating(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, user) = reviewer(&app, "alice").await;
    rate(&alice, ids["c01"], "real", &[], None).await;
    rate(&alice, ids["c02"], "real", &[], None).await;
    rate(&alice, ids["c02"], "unsure", &[], None).await;
    let undo = |a: &TestApp| {
        let c = a.client.clone();
        let u = a.url("/undo");
        async move { c.post(u).header("HX-Request", "true").send().await.unwrap() }
    };
    // Without the CSRF header it is refused; with it, the change is undone.
    assert_eq!(undo(&alice).await.status(), StatusCode::FORBIDDEN);
    let token = alice.csrf_token("/account").await;
    let r = alice
        .client
        .post(alice.url("/undo"))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["hx-push-url"],
        format!("/candidates/{}", ids["c02"]).as_str()
    );
    // It says what it took back, among the page's notices.
    let body = r.text().await.unwrap();
    assert!(
        body.contains(r#"<div id="toasts" hx-swap-oob="beforeend">"#)
            && body.contains("Undid your rating of c02: Unsure → Real."),
        "{body}"
    );
    let v: String = sqlx::query_scalar(
        "SELECT verdict::text FROM ratings WHERE user_id = $1 AND candidate_id = $2",
    )
    .bind(user.id)
    .bind(ids["c02"])
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(v, "real", "the change is undone, the first rating back");
    // Undo again: the first rating of c02 goes.
    alice
        .client
        .post(alice.url("/undo"))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let count: i32 = sqlx::query_scalar("SELECT rating_count FROM candidates WHERE id = $1")
        .bind(ids["c02"])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

/// A rating made in an earlier session (another browser, yesterday) is not
/// taken back by one press of Undo: the first press says what it would
/// undo, a second one within seconds does it.
#[sqlx::test]
async fn undo_reaches_an_earlier_sessions_rating_only_when_pressed_twice(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, user) = reviewer(&app, "alice").await;
    rate(&alice, ids["c01"], "real", &[], None).await;
    let later = TestApp::spawn(app.pool.clone()).await;
    later.login_as(&user).await;
    let token = later.csrf_token("/account").await;
    let undo = || async {
        later
            .client
            .post(later.url("/undo"))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", &token)
            .send()
            .await
            .unwrap()
    };
    let r = undo().await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("earlier session") && body.contains("c01") && body.contains("Real"),
        "{body}"
    );
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "one press undoes nothing");
    let r = undo().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Undid your rating of c01: Real → unrated."));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings WHERE user_id = $1")
        .bind(user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test]
async fn a_repeated_submission_counts_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    rate(&alice, ids["c01"], "real", &[], Some("form-1")).await;
    rate(&alice, ids["c01"], "not_real", &[], Some("form-1")).await;
    let (n, h, v): (i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM ratings), (SELECT count(*) FROM rating_history), (SELECT verdict::text FROM ratings)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (n, h, v.as_str()),
        (1, 0, "real"),
        "the same form twice is one rating"
    );
}

/// A change whose commit went through but whose answer was lost (a timeout,
/// a dropped connection) is sent again with the same key: it is answered as
/// saved, like the first time, and is still one change.
#[sqlx::test]
async fn a_change_sent_again_after_a_lost_answer_counts_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    rate(&alice, ids["c01"], "real", &[], Some("form-1")).await;
    let answered = rate(&alice, ids["c01"], "not_real", &[], Some("form-2")).await;
    let again = rate(&alice, ids["c01"], "not_real", &[], Some("form-2")).await;
    assert_eq!(again, answered, "the resent form is answered as saved");
    assert_eq!(again.as_deref(), Some("c02"));
    // The same from a browser without JavaScript.
    let token = alice
        .csrf_token(&format!("/candidates/{}", ids["c01"]))
        .await;
    let r = alice
        .client
        .post(alice.url(&format!("/candidates/{}/rating", ids["c01"])))
        .form(&[
            ("verdict", "not_real"),
            ("key", "form-2"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&r, &format!("/candidates/{}", ids["c02"]));
    let (n, h, v, count): (i64, i64, String, i32) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM ratings), (SELECT count(*) FROM rating_history),
                (SELECT verdict::text FROM ratings), (SELECT rating_count FROM candidates WHERE id = $1)",
    )
    .bind(ids["c01"])
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (n, h, v.as_str(), count),
        (1, 1, "not_real", 1),
        "one rating, one replaced rating in the history"
    );
}

#[sqlx::test]
async fn reviewers_rating_at_once_do_not_interfere(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, _) = reviewer(&app, "alice").await;
    let (bob, _) = reviewer(&app, "bob").await;
    let names: Vec<String> = (1..=6).map(|i| format!("c{i:02}")).collect();
    async fn run(who: &TestApp, names: &[String], ids: &HashMap<String, i64>, verdict: &str) {
        for n in names {
            rate(who, ids[n], verdict, &[], None).await;
        }
    }
    tokio::join!(
        run(&alice, &names, &ids, "real"),
        run(&bob, &names, &ids, "not_real")
    );
    let bad: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM candidates c WHERE rating_count <> (SELECT count(*) FROM ratings r WHERE r.candidate_id = c.id)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(bad, 0);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 12);
}

#[sqlx::test]
async fn previous_walks_back_through_what_was_seen(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let (alice, alice_user) = reviewer(&app, "alice").await;
    let (bob, _) = reviewer(&app, "bob").await;
    // A reload is not a second step; another reviewer's views are not on
    // alice's trail.
    for n in ["c01", "c02", "c02", "c03"] {
        alice.get(&format!("/candidates/{}", ids[n])).await;
        bob.get(&format!("/candidates/{}", ids["c04"])).await;
    }
    let back = |from: i64| {
        let c = alice.client.clone();
        let u = alice.url(&format!("/previous?from={from}"));
        async move {
            let r = c.get(u).header("HX-Request", "true").send().await.unwrap();
            let html = scraper::Html::parse_fragment(&r.text().await.unwrap());
            select_attr(&html, "#candidate", "data-candidate-id")
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    let one = back(ids["c03"]).await;
    assert_eq!(one, ids["c02"]);
    assert_eq!(back(one).await, ids["c01"]);
    // The first candidate has nowhere further back to go.
    assert_eq!(back(ids["c01"]).await, ids["c01"]);
    // Bob's trail holds only c04: nothing before it.
    let page = bob
        .get(&format!("/candidates/{}", ids["c04"]))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("/previous?from="), "bob has no previous");
    let page = alice
        .get(&format!("/candidates/{}", ids["c03"]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/previous?from={}", ids["c03"])),
        "alice has one"
    );

    // A candidate removed since is stepped over.
    alice.get(&format!("/candidates/{}", ids["c04"])).await;
    sqlx::query("DELETE FROM candidates WHERE id = $1")
        .bind(ids["c03"])
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(back(ids["c04"]).await, ids["c02"]);

    // A view drops the oldest showings past the kept number.
    let alice_id = alice_user.id.0;
    sqlx::query(
        "UPDATE reviewer_trails SET shown = array_fill($2::bigint, ARRAY[300]) WHERE user_id = $1",
    )
    .bind(alice_id)
    .bind(ids["c06"])
    .execute(&app.pool)
    .await
    .unwrap();
    alice.get(&format!("/candidates/{}", ids["c05"])).await;
    let shown: Vec<i64> =
        sqlx::query_scalar("SELECT shown FROM reviewer_trails WHERE user_id = $1")
            .bind(alice_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(shown.len(), vetter::db::trail::KEPT as usize);
    assert_eq!(shown[0], ids["c05"]);
    assert_eq!(back(ids["c05"]).await, ids["c06"]);
}

#[sqlx::test]
async fn the_candidate_page_shows_what_an_expert_needs(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    crate::upload_api::vast_project(&api).await;
    let (s, body) = api
        .post_multipart(
            "/projects/vast/observations/SB50230/candidates",
            "candidates",
            json!({"candidates": [{"name": "J1", "beam": "beam00", "ra": 188.7, "dec": -45.2,
                "positions": {"deep": {"ra": 188.7001, "dec": -45.2}},
                "metrics": {"chi_square": 12.345, "peak_map": "NaN", "md_deep": "Infinity"},
                "attributes": {"deep_name": "<b>VAST</b>"},
                "light_curve": {"unit": "mJy/beam", "points": [{"time": "2024-05-01T12:00:00Z", "flux": 1.5, "err": 0.1}, {"time": "2024-05-01T12:10:00Z", "flux": 9.5, "err": 0.2}]},
                "files": {"deep_cutout": "c"}},
                {"name": "J2", "ra": 188.7002, "dec": -45.2}]}),
            vec![("c", crate::upload_api::fits_bytes(16, 16, 1, 9))],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let id = body["candidates"][0]["id"].as_i64().unwrap();
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    let r = app.get(&format!("/candidates/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let html = scraper::Html::parse_document(&page);
    assert_eq!(select_text(&html, "#candidate h1").as_deref(), Some("J1"));
    assert_eq!(
        select_text(&html, "#pos-hms").as_deref(),
        Some("12:34:48.00 -45:12:00.0")
    );
    // The full measurements, attributes and files are under "All
    // details", fetched when it opens.
    let more = select_attr(&html, "details#more", "hx-get").unwrap();
    assert_eq!(more, format!("/candidates/{id}/details"));
    assert!(html
        .select(&scraper::Selector::parse("table.metrics").unwrap())
        .next()
        .is_none());
    let page = app.get(&more).await.text().await.unwrap();
    let details = scraper::Html::parse_fragment(&page);
    let metrics = select_text(&details, "table.metrics").unwrap();
    assert!(
        metrics.contains("12.35") && metrics.contains("NaN") && metrics.contains("+∞"),
        "{metrics}"
    );
    assert!(
        page.contains("&#60;b&#62;VAST") || page.contains("&lt;b&gt;VAST"),
        "attributes are escaped"
    );
    assert!(!page.contains("<b>VAST</b>"));
    let page = app
        .get(&format!("/candidates/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let html = scraper::Html::parse_document(&page);
    assert!(select_attr(&html, "svg.lightcurve", "aria-label")
        .unwrap()
        .contains("2 points"));
    // The FITS cutout is drawn from its values; its rendered preview is a
    // download, not a second picture.
    let sky = select_attr(&html, "figure.sky", "data-sky").unwrap();
    assert!(sky.starts_with(&format!("/candidates/{id}/sky/")), "{sky}");
    let r = app.get(&sky).await;
    assert_eq!(r.status(), StatusCode::OK);
    let drawn: serde_json::Value = r.json().await.unwrap();
    assert!(drawn["width"].as_u64().unwrap() > 0, "{drawn}");
    assert!(html
        .select(&scraper::Selector::parse(".figures img").unwrap())
        .next()
        .is_none());
    let img = select_attr(
        &details,
        "ul.downloads a[href$='/deep_cutout_png.png']",
        "href",
    )
    .unwrap();
    let r = app.get(&img).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    // Media is behind login.
    assert_eq!(
        crate::helpers::new_client()
            .get(app.url(&img))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );
    // Nearby: J2 is 0.0002° of RA away at Dec −45.2°: 0.51″.
    let r = app.get(&format!("/candidates/{id}/nearby?radius=10")).await;
    let near = scraper::Html::parse_fragment(&r.text().await.unwrap());
    let row = select_text(&near, "table.nearby tbody tr").unwrap();
    assert!(row.contains("J2") && row.contains("0.51"), "{row}");
    let r = app.get(&format!("/candidates/{id}/nearby?radius=-3")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("The radius must be"));
    // Firefly opens the FITS file through its URL API.
    let r = app.get(&format!("/candidates/{id}/firefly")).await;
    let frag = scraper::Html::parse_fragment(&r.text().await.unwrap());
    let src = select_attr(&frag, "iframe", "src").unwrap();
    assert!(
        src.starts_with("/firefly/?api=image&File=/external/objects/"),
        "{src}"
    );
    assert!(src.contains("RangeValues=92%2C-2%2C92%2C10"), "{src}");
}

/// Going back to a candidate with htmx's history (nothing is cached in the
/// browser) asks for the whole page, and gets it, not a fragment.
#[sqlx::test]
async fn a_history_restore_gets_the_whole_page(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let ids = survey(&app).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    let url = app.url(&format!("/candidates/{}", ids["c01"]));
    let ask = |restore: bool| {
        let mut rq = app.client.get(&url).header("HX-Request", "true");
        if restore {
            rq = rq.header("HX-History-Restore-Request", "true");
        }
        async move { rq.send().await.unwrap().text().await.unwrap() }
    };
    let fragment = ask(false).await;
    assert!(!fragment.contains("<html"), "{fragment}");
    let whole = ask(true).await;
    assert!(
        whole.contains("<html") && whole.contains("id=\"candidate\""),
        "{whole}"
    );
}

/// The order `/next?after=…` walks from the first candidate: every name once.
async fn walk(app: &TestApp, ids: &HashMap<String, i64>) -> Vec<String> {
    let mut seen = vec![next_name(app).await.unwrap()];
    loop {
        let r = app
            .get(&format!("/next?after={}", ids[seen.last().unwrap()]))
            .await;
        let html = app.get_html(&location(&r)).await;
        let name = select_attr(&html, "#candidate", "data-candidate-name").unwrap();
        if name == seen[0] {
            return seen;
        }
        seen.push(name);
    }
}

#[sqlx::test]
async fn the_queue_walks_observations_newest_or_oldest_first(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    let (s, _) = api
        .put("/projects/t", json!({"name": "T", "metrics": []}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // o2 is the newest, o3 has no start time.
    for (obs, time, names) in [
        ("o1", json!("2024-05-01T12:00:00Z"), vec!["a2", "a1"]),
        ("o2", json!("2024-05-08T12:00:00Z"), vec!["b1"]),
        ("o3", serde_json::Value::Null, vec!["z1"]),
        ("o0", json!("2024-04-01T12:00:00Z"), vec!["y1"]),
    ] {
        let (s, _) = api
            .put(
                &format!("/projects/t/observations/{obs}"),
                json!({ "start_time": time }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let cands: Vec<_> = names
            .iter()
            .map(|n| json!({"name": n, "ra": 1.0, "dec": 2.0}))
            .collect();
        let (s, _) = api
            .post(
                &format!("/projects/t/observations/{obs}/candidates"),
                json!({ "candidates": cands }),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let ids: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT name, id FROM candidates")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let (alice, _) = reviewer(&app, "alice").await;
    set_queue(&alice, &[("project", "t"), ("order", "newest")]).await;
    assert_eq!(walk(&alice, &ids).await, ["b1", "a1", "a2", "y1", "z1"]);
    set_queue(&alice, &[("project", "t"), ("order", "oldest")]).await;
    assert_eq!(walk(&alice, &ids).await, ["y1", "a1", "a2", "b1", "z1"]);
    // Rated candidates leave the walk; the rest keep their order.
    rate(&alice, ids["a1"], "real", &[], None).await;
    assert_eq!(walk(&alice, &ids).await, ["y1", "a2", "b1", "z1"]);
}

//! The administration pages through HTTP: users, tokens, tags, projects,
//! site status and the audit log, with the refusals for reviewers and
//! anonymous visitors (the access matrix covers every route as well).

use std::collections::HashMap;

use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::json;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{assert_redirect_to, location, select_attr, select_text, TestApp, TestUser};
use crate::upload_api::{token_for, uploader, Api};

/// The app with an administrator "boss" signed in.
async fn admin_app(pool: PgPool) -> (TestApp, TestUser) {
    let app = TestApp::spawn(pool).await;
    let boss = app.create_user("boss", Role::Admin).await;
    app.login_as(&boss).await;
    (app, boss)
}

/// Another browser on the same database, signed in as a new user.
async fn browser_of(app: &TestApp, name: &str, role: Role) -> (TestApp, TestUser) {
    let other = TestApp::spawn(app.pool.clone()).await;
    let user = other.create_user(name, role).await;
    other.login_as(&user).await;
    (other, user)
}

async fn html_of(r: reqwest::Response) -> Html {
    Html::parse_document(&r.text().await.unwrap())
}

fn texts(html: &Html, selector: &str) -> Vec<String> {
    let sel = Selector::parse(selector).unwrap();
    html.select(&sel)
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

fn attrs(html: &Html, selector: &str, attr: &str) -> Vec<String> {
    let sel = Selector::parse(selector).unwrap();
    html.select(&sel)
        .filter_map(|e| e.value().attr(attr).map(str::to_string))
        .collect()
}

/// The flash message shown on the page a redirect leads to.
async fn flash_after(app: &TestApp, r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "expected a redirect");
    let html = app.get_html(&location(&r)).await;
    select_text(&html, "#toasts .toast").unwrap_or_default()
}

/// Every audit row, oldest first: (action, actor name, target).
async fn audit(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT action, actor_name, target FROM audit_log ORDER BY at, id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn audited(app: &TestApp, action: &str, target: &str) -> bool {
    audit(app)
        .await
        .iter()
        .any(|(a, _, t)| a == action && t == target)
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

async fn user_flags(app: &TestApp, name: &str) -> (String, bool, bool, bool) {
    sqlx::query_as(
        "SELECT role::text, active, can_upload, must_change_password FROM users WHERE username = $1",
    )
    .bind(name)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn whoami(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/api/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

// ------------------------------------------------------------------ access

#[sqlx::test]
async fn reviewers_are_refused_and_anonymous_visitors_sent_to_sign_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app.get("/admin/users").await;
    assert_redirect_to(&r, "/login?next=/admin/users");
    let r = app
        .post_form("/admin/users", &[("username", "sneaky"), ("role", "admin")])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let rita = app.create_user("rita", Role::Reviewer).await;
    app.login_as(&rita).await;
    let html = app.get_html("/").await;
    assert!(
        select_text(&html, "#admin-link").is_none(),
        "no Admin link for reviewers"
    );
    for path in [
        "/admin",
        "/admin/users",
        "/admin/tokens",
        "/admin/tags",
        "/admin/projects",
        "/admin/status",
        "/admin/audit",
    ] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // A well-formed admin action from a reviewer changes nothing.
    let r = app
        .post_form("/admin/users", &[("username", "sneaky"), ("role", "admin")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post_form(
            &format!("/admin/users/{}/role", rita.id),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 1);
    assert_eq!(user_flags(&app, "rita").await.0, "reviewer");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action NOT LIKE 'login.%'"
        )
        .await,
        0
    );

    let (admin, _) = browser_of(&app, "boss", Role::Admin).await;
    let html = admin.get_html("/").await;
    assert_eq!(
        select_attr(&html, "#admin-link", "href").as_deref(),
        Some("/admin")
    );
    let html = admin.get_html("/admin").await;
    assert_eq!(
        attrs(&html, ".subnav a", "href"),
        [
            "/admin/users",
            "/admin/tokens",
            "/admin/tags",
            "/admin/projects",
            "/admin/catalogues",
            "/admin/deliveries",
            "/admin/status",
            "/admin/audit"
        ]
    );
    assert!(
        !attrs(&html, ".subnav a[data-key]", "data-key").is_empty(),
        "the sections have keyboard shortcuts"
    );
}

// ------------------------------------------------------------------- users

#[sqlx::test]
async fn an_admin_creates_a_user_who_must_change_the_temporary_password(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let r = app
        .post_form(
            "/admin/users",
            &[
                ("username", "Newbie"),
                ("role", "reviewer"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = html_of(r).await;
    let temporary = select_attr(&html, "input.temp-password", "value").expect("shown once");
    assert!(temporary.len() >= 16, "{temporary}");
    assert_eq!(
        user_flags(&app, "Newbie").await,
        ("reviewer".into(), true, false, true)
    );
    assert!(audited(&app, "user.create", "Newbie").await);
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'Newbie'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "stored hashed");

    // The list shows the new user with role, activity and rating count.
    let html = app.get_html("/admin/users").await;
    assert_eq!(
        select_text(&html, "tr[data-username=Newbie] td.role").as_deref(),
        Some("reviewer")
    );
    assert_eq!(
        select_text(&html, "tr[data-username=Newbie] td.ratings").as_deref(),
        Some("0")
    );

    // Names are unique regardless of case; bad input is named.
    let r = app
        .post_form(
            "/admin/users",
            &[("username", "newbie"), ("role", "reviewer")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = html_of(r).await;
    assert!(select_text(&html, ".form-error")
        .unwrap()
        .contains("already"));
    for (fields, problem) in [
        (
            vec![("username", "bad name"), ("role", "reviewer")],
            "Username",
        ),
        (vec![("username", "ok"), ("role", "root")], "Role"),
        (
            vec![
                ("username", "ok"),
                ("role", "reviewer"),
                ("password", "short"),
            ],
            "password",
        ),
    ] {
        let r = app.post_form("/admin/users", &fields).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{fields:?}");
        let html = html_of(r).await;
        assert!(
            select_text(&html, ".form-error").unwrap().contains(problem),
            "{fields:?}"
        );
    }
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 2);

    // A typed temporary password, an admin role and the upload permission.
    let r = app
        .post_form(
            "/admin/users",
            &[
                ("username", "deputy"),
                ("role", "admin"),
                ("password", "typed-temporary-1"),
                ("can_upload", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = html_of(r).await;
    assert!(select_attr(&html, "input.temp-password", "value").is_none());
    assert_eq!(
        user_flags(&app, "deputy").await,
        ("admin".into(), true, true, true)
    );

    // The new reviewer signs in with the temporary password and is held on
    // the account page until they choose their own.
    let newbie = TestApp::spawn(app.pool.clone()).await;
    let r = newbie.post_login("newbie", &temporary).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_redirect_to(&newbie.get("/").await, "/account");
    assert_redirect_to(&newbie.get("/next").await, "/account");
    let r = newbie
        .post_form(
            "/account/password",
            &[
                ("current", &temporary),
                ("new", "my-own-password"),
                ("confirm", "my-own-password"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/account");
    assert_eq!(newbie.get("/").await.status(), StatusCode::OK);
    assert_eq!(newbie.get("/next").await.status(), StatusCode::OK);
    assert!(!user_flags(&app, "Newbie").await.3);
}

#[sqlx::test]
async fn reset_role_and_upload_permission_take_effect_at_once(pool: PgPool) {
    let (app, boss) = admin_app(pool).await;
    let (rita_app, rita) = browser_of(&app, "rita", Role::Reviewer).await;
    let user = format!("/admin/users/{}", rita.id);

    // A reset ends her session and sets a temporary password.
    let r = app.post_form(&format!("{user}/password"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let temporary = select_attr(&html_of(r).await, "input.temp-password", "value").unwrap();
    assert_redirect_to(&rita_app.get("/").await, "/login?next=/");
    assert_eq!(
        rita_app.post_login("rita", &rita.password).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old password is gone"
    );
    rita_app.post_login("rita", &temporary).await;
    assert_redirect_to(&rita_app.get("/").await, "/account");
    assert!(audited(&app, "user.password_reset", "rita").await);
    let r = app
        .post_form(&format!("{user}/password"), &[("password", "rita")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "too short");

    // Role: an admin in the next request, and back.
    let r = app
        .post_form(&format!("{user}/role"), &[("role", "admin")])
        .await;
    assert!(flash_after(&app, r).await.contains("administrator"));
    rita_app
        .post_form(
            "/account/password",
            &[
                ("current", &temporary),
                ("new", "ritas-own-password"),
                ("confirm", "ritas-own-password"),
            ],
        )
        .await;
    assert_eq!(rita_app.get("/admin/users").await.status(), StatusCode::OK);
    app.post_form(&format!("{user}/role"), &[("role", "reviewer")])
        .await;
    assert_eq!(
        rita_app.get("/admin/users").await.status(),
        StatusCode::FORBIDDEN
    );
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT detail->>'to' FROM audit_log WHERE action = 'user.role' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(roles, ["admin", "reviewer"]);
    let r = app
        .post_form(&format!("{user}/role"), &[("role", "root")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Upload permission, checked on her token.
    let token = token_for(&app, &rita).await;
    let api = Api {
        app: &app,
        token: token.clone(),
    };
    let (s, _) = api.put("/projects/p", json!({"name": "P"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = app
        .post_form(&format!("{user}/upload"), &[("allowed", "true")])
        .await;
    assert!(flash_after(&app, r).await.contains("may upload"));
    let (s, _) = api.put("/projects/p", json!({"name": "P"})).await;
    assert_eq!(s, StatusCode::CREATED);
    app.post_form(&format!("{user}/upload"), &[("allowed", "false")])
        .await;
    let (s, _) = api.put("/projects/p", json!({"name": "P"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(audited(&app, "user.upload_grant", "rita").await);
    assert!(audited(&app, "user.upload_remove", "rita").await);

    // An admin cannot lock themselves out.
    let me = format!("/admin/users/{}", boss.id);
    for (path, fields) in [
        (format!("{me}/role"), vec![("role", "reviewer")]),
        (
            format!("{me}/active"),
            vec![("active", "false"), ("confirm", "yes")],
        ),
        (format!("{me}/password"), vec![]),
    ] {
        let r = app.post_form(&path, &fields).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "{path}");
    }
    assert_eq!(
        user_flags(&app, "boss").await,
        ("admin".into(), true, true, false)
    );
    assert_eq!(
        app.get("/admin/users/999999").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn deactivation_ends_a_live_session_and_a_token_at_once(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let survey = survey(&app).await;
    let (rita_app, rita) = browser_of(&app, "rita", Role::Reviewer).await;
    rate(&rita_app, survey.candidates["c01"], "real", &[]).await;
    let token = token_for(&app, &rita).await;
    assert_eq!(rita_app.get("/").await.status(), StatusCode::OK);
    assert_eq!(whoami(&app, &token).await, StatusCode::OK);

    let active = format!("/admin/users/{}/active", rita.id);
    // Without the confirmation nothing happens.
    let r = app.post_form(&active, &[("active", "false")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(select_text(&html_of(r).await, ".form-error")
        .unwrap()
        .contains("confirm"));
    assert_eq!(rita_app.get("/").await.status(), StatusCode::OK);

    let r = app
        .post_form(&active, &[("active", "false"), ("confirm", "yes")])
        .await;
    assert!(flash_after(&app, r).await.contains("deactivated"));
    // Her open session and her token stop at once.
    assert_redirect_to(&rita_app.get("/").await, "/login?next=/");
    assert_eq!(whoami(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        rita_app.post_login("rita", &rita.password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // She is not deleted: her rating keeps its author.
    let html = app.get_html("/admin/users").await;
    assert_eq!(
        select_text(&html, "tr[data-username=rita] td.active").as_deref(),
        Some("no")
    );
    assert_eq!(
        select_text(&html, "tr[data-username=rita] td.ratings").as_deref(),
        Some("1")
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM ratings r JOIN users u ON u.id = r.user_id WHERE u.username = 'rita'").await,
        1
    );
    assert!(audited(&app, "user.deactivate", "rita").await);

    let r = app.post_form(&active, &[("active", "true")]).await;
    assert!(flash_after(&app, r).await.contains("active again"));
    rita_app.login_as(&rita).await;
    assert_eq!(rita_app.get("/").await.status(), StatusCode::OK);
    // Her old token was revoked by the deactivation and stays so.
    assert_eq!(whoami(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert!(audited(&app, "user.reactivate", "rita").await);
}

// ------------------------------------------------------------------ tokens

#[sqlx::test]
async fn the_admin_sees_and_revokes_any_token(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let rita = app.create_user("rita", Role::Reviewer).await;
    let token = token_for(&app, &rita).await;
    assert_eq!(whoami(&app, &token).await, StatusCode::OK);
    let html = app.get_html("/admin/tokens").await;
    let ids = attrs(&html, "tr[data-token-id]", "data-token-id");
    assert_eq!(ids.len(), 1);
    let row = format!("tr[data-token-id=\"{}\"]", ids[0]);
    let text = select_text(&html, &row).unwrap();
    assert!(
        text.contains("rita") && text.contains(&token[..12]),
        "{text}"
    );
    assert!(!text.contains("never"), "last use is shown: {text}");

    let revoke = format!("/admin/tokens/{}/revoke", ids[0]);
    let r = app.post_form(&revoke, &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "needs the confirmation"
    );
    assert_eq!(whoami(&app, &token).await, StatusCode::OK);
    let r = app.post_form(&revoke, &[("confirm", "yes")]).await;
    assert!(flash_after(&app, r).await.contains("revoked"));
    assert_eq!(whoami(&app, &token).await, StatusCode::UNAUTHORIZED);
    let html = app.get_html("/admin/tokens").await;
    assert!(select_text(&html, &format!("{row}.revoked")).is_some());
    assert!(audited(&app, "token.revoke", "rita/tests").await);
    let r = app.post_form(&revoke, &[("confirm", "yes")]).await;
    assert!(flash_after(&app, r).await.contains("already"));
    let r = app
        .post_form("/admin/tokens/999999/revoke", &[("confirm", "yes")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

// -------------------------------------------------------------------- tags

struct Survey {
    candidates: HashMap<String, i64>,
}

/// Project `p` (tags Noise, Pulsar; metric snr) with candidates c01..c04.
async fn survey(app: &TestApp) -> Survey {
    let api = uploader(app).await;
    let (s, _) = api
        .put("/projects/p", json!({"name": "P", "metrics": [{"key": "snr", "label": "SNR"}], "tags": [{"name": "Noise"}, {"name": "Pulsar"}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api.put("/projects/p/observations/o1", json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let cands: Vec<_> = (1..=4)
        .map(|i| json!({"name": format!("c{i:02}"), "ra": 10.0 + i as f64 * 0.01, "dec": -30.0, "metrics": {"snr": i}}))
        .collect();
    let (s, body) = api
        .post(
            "/projects/p/observations/o1/candidates",
            json!({"candidates": cands}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    Survey {
        candidates: body["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["id"].as_i64().unwrap(),
                )
            })
            .collect(),
    }
}

async fn tag_ids(app: &TestApp) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT name, id FROM tags")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Rates as the browser's user, without JavaScript.
async fn rate(app: &TestApp, candidate: i64, verdict: &str, tags: &[i64]) {
    let tags: Vec<String> = tags.iter().map(i64::to_string).collect();
    let mut form = vec![("verdict", verdict)];
    form.extend(tags.iter().map(|t| ("tags", t.as_str())));
    let notes = format!("{verdict} {}", tags.join(","));
    form.push(("notes", &notes));
    let r = app
        .post_form(&format!("/candidates/{candidate}/rating"), &form)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// The tags on the rating page, in order, with their keys.
async fn rating_page_tags(app: &TestApp, candidate: i64) -> Vec<(String, Option<String>)> {
    let html = app.get_html(&format!("/candidates/{candidate}")).await;
    let sel = Selector::parse("fieldset.tags label").unwrap();
    let input = Selector::parse("input").unwrap();
    let label = Selector::parse(".tag-name").unwrap();
    html.select(&sel)
        .map(|l| {
            let key = l
                .select(&input)
                .next()
                .and_then(|i| i.value().attr("data-key"))
                .map(str::to_string);
            let name = l
                .select(&label)
                .next()
                .map(|n| n.text().collect::<String>().trim().to_string())
                .unwrap_or_default();
            (name, key)
        })
        .collect()
}

#[sqlx::test]
async fn tags_are_created_renamed_described_and_reordered(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let s = survey(&app).await;
    let c = s.candidates["c01"];
    let r = app
        .post_form(
            "/admin/tags",
            &[
                ("project", "p"),
                ("name", " Flare star "),
                ("description", "stellar flare"),
            ],
        )
        .await;
    assert!(flash_after(&app, r).await.contains("Flare star"));
    let html = app.get_html("/admin/tags?project=p").await;
    assert_eq!(
        attrs(&html, "tr.tag", "data-tag-name"),
        ["Noise", "Pulsar", "Flare star"]
    );
    assert!(audited(&app, "tag.create", "p/Flare star").await);
    let r = app
        .post_form("/admin/tags", &[("project", "p"), ("name", "noise")])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .post_form("/admin/tags", &[("project", "p"), ("name", "   ")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .post_form("/admin/tags", &[("project", "nope"), ("name", "x")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let ids = tag_ids(&app).await;
    let r = app
        .post_form(
            &format!("/admin/tags/{}", ids["Pulsar"]),
            &[
                ("name", "Known pulsar"),
                ("description", "in the ATNF catalogue"),
            ],
        )
        .await;
    assert!(flash_after(&app, r).await.contains("Known pulsar"));
    let (name, description): (String, String) =
        sqlx::query_as("SELECT name, description FROM tags WHERE id = $1")
            .bind(ids["Pulsar"])
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (name.as_str(), description.as_str()),
        ("Known pulsar", "in the ATNF catalogue")
    );
    let r = app
        .post_form(
            &format!("/admin/tags/{}", ids["Pulsar"]),
            &[("name", "NOISE")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "names stay unique");

    // The order gives the keys on the rating page.
    let r = app
        .post_form(
            &format!("/admin/tags/{}/move", ids["Flare star"]),
            &[("to", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        rating_page_tags(&app, c).await,
        [
            ("Flare star".to_string(), Some("1".to_string())),
            ("Noise".to_string(), Some("2".to_string())),
            ("Known pulsar".to_string(), Some("3".to_string())),
        ]
    );
    // Down by one, as the ↓ button sends.
    app.post_form(
        &format!("/admin/tags/{}/move", ids["Noise"]),
        &[("to", "3")],
    )
    .await;
    let html = app.get_html("/admin/tags?project=p").await;
    assert_eq!(
        attrs(&html, "tr.tag", "data-tag-name"),
        ["Flare star", "Known pulsar", "Noise"]
    );
    assert_eq!(texts(&html, "tr.tag td.key"), ["1", "2", "3"]);
    assert!(audited(&app, "tag.move", "p/Noise").await);
    let r = app
        .post_form(
            &format!("/admin/tags/{}/move", ids["Noise"]),
            &[("to", "0")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[sqlx::test]
async fn merging_tags_moves_ratings_over_without_duplicates(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let s = survey(&app).await;
    let ids = tag_ids(&app).await;
    let (noise, pulsar) = (ids["Noise"], ids["Pulsar"]);
    let (a, _) = browser_of(&app, "anna", Role::Reviewer).await;
    let (b, _) = browser_of(&app, "ben", Role::Reviewer).await;
    // c01: Noise, replaced by Noise again with other notes (history keeps it);
    // c02: both; c03 (ben): Pulsar; c04: no tags.
    rate(&a, s.candidates["c01"], "not_real", &[noise]).await;
    rate(&a, s.candidates["c01"], "unsure", &[noise]).await;
    rate(&a, s.candidates["c02"], "not_real", &[noise, pulsar]).await;
    rate(&b, s.candidates["c03"], "real", &[pulsar]).await;
    rate(&b, s.candidates["c04"], "real", &[]).await;
    // Ben's queue shows only Noise candidates.
    sqlx::query(
        "INSERT INTO reviewer_queues (user_id, view)
         SELECT id, jsonb_build_object('project', 'p', 'tag', $1::bigint) FROM users WHERE username = 'ben'
         ON CONFLICT (user_id) DO UPDATE SET view = EXCLUDED.view",
    )
        .bind(noise)
        .execute(&app.pool)
        .await
        .unwrap();
    let ratings_before = count(&app, "SELECT count(*) FROM ratings").await;
    let counts_before = count(&app, "SELECT sum(rating_count) FROM candidates").await;

    let merge = format!("/admin/tags/{noise}/merge");
    let into = pulsar.to_string();
    let r = app.post_form(&merge, &[("into", into.as_str())]).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "needs the confirmation"
    );
    let r = app
        .post_form(
            &merge,
            &[("into", noise.to_string().as_str()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "not into itself");
    let r = app
        .post_form(&merge, &[("into", into.as_str()), ("confirm", "yes")])
        .await;
    let msg = flash_after(&app, r).await;
    assert!(
        msg.contains("1 rating moved") && msg.contains("1 had both"),
        "{msg}"
    );

    assert!(!tag_ids(&app).await.contains_key("Noise"));
    let tagged: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.name, count(*) FROM rating_tags t JOIN candidates c ON c.id = t.candidate_id
         WHERE t.tag_id = $1 GROUP BY c.name ORDER BY c.name",
    )
    .bind(pulsar)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        tagged,
        [("c01".into(), 1), ("c02".into(), 1), ("c03".into(), 1)],
        "each rating carries the merged tag once"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM rating_tags").await, 3);
    assert_eq!(
        count(&app, "SELECT count(*) FROM ratings").await,
        ratings_before
    );
    assert_eq!(
        count(&app, "SELECT sum(rating_count) FROM candidates").await,
        counts_before
    );
    let history: Vec<String> = sqlx::query_scalar("SELECT unnest(tag_names) FROM rating_history")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(history, ["Noise"], "the history is a snapshot");
    let queue_tag: i64 = sqlx::query_scalar(
        "SELECT (view->>'tag')::bigint FROM reviewer_queues q JOIN users u ON u.id = q.user_id WHERE u.username = 'ben'",
    )
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queue_tag, pulsar, "a queue on the old tag follows it");
    let detail: serde_json::Value =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'tag.merge'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(detail["moved"], 1);
    assert_eq!(detail["had_both"], 1);
    let html = app.get_html("/admin/tags?project=p").await;
    assert_eq!(texts(&html, "tr.tag td.uses"), ["3"]);
}

#[sqlx::test]
async fn only_a_tag_no_rating_uses_can_be_deleted(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let s = survey(&app).await;
    let ids = tag_ids(&app).await;
    let (rita, _) = browser_of(&app, "rita", Role::Reviewer).await;
    rate(&rita, s.candidates["c01"], "real", &[ids["Pulsar"]]).await;

    let r = app
        .post_form(
            &format!("/admin/tags/{}/delete", ids["Pulsar"]),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let error = select_text(&html_of(r).await, ".form-error").unwrap();
    assert!(
        error.contains("is on 1 rating") && error.contains("Merge"),
        "{error}"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM rating_tags").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM tags").await, 2);

    let delete = format!("/admin/tags/{}/delete", ids["Noise"]);
    let r = app.post_form(&delete, &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "needs the confirmation"
    );
    let r = app.post_form(&delete, &[("confirm", "yes")]).await;
    assert!(flash_after(&app, r).await.contains("deleted"));
    assert_eq!(
        tag_ids(&app).await.into_keys().collect::<Vec<_>>(),
        ["Pulsar"]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM ratings").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM rating_tags").await, 1);
    assert!(audited(&app, "tag.delete", "p/Noise").await);
    let r = app.post_form(&delete, &[("confirm", "yes")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        rating_page_tags(&app, s.candidates["c02"]).await,
        [("Pulsar".to_string(), Some("1".to_string()))],
        "the remaining tag takes key 1"
    );
}

// ---------------------------------------------------------------- projects

#[sqlx::test]
async fn project_settings_and_metric_definitions_are_edited(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    survey(&app).await;
    let html = app.get_html("/admin/projects").await;
    assert_eq!(attrs(&html, "tr[data-project]", "data-project"), ["p"]);
    let html = app.get_html("/admin/projects/p").await;
    let label_field = attrs(&html, "tr[data-metric=snr] input", "name")
        .into_iter()
        .find(|n| n.ends_with(".label"))
        .unwrap();
    let prefix = label_field.trim_end_matches(".label").to_string();
    let f = |s: &str| format!("{prefix}.{s}");
    let (label, unit, precision, description) =
        (f("label"), f("unit"), f("precision"), f("description"));

    // A bad precision is named, and nothing is saved.
    let r = app
        .post_form(
            "/admin/projects/p",
            &[
                ("name", "Renamed"),
                (&label, "Signal/noise"),
                (&precision, "99"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(select_text(&html_of(r).await, ".form-error")
        .unwrap()
        .contains("precision"));
    assert_eq!(
        count(&app, "SELECT count(*) FROM projects WHERE name = 'P'").await,
        1
    );

    let r = app
        .post_form(
            "/admin/projects/p",
            &[
                ("name", "Pilot survey"),
                ("description", "The first fields"),
                ("reviewers_add_tags", "on"),
                ("score_enabled", "on"),
                (&label, "Signal/noise"),
                (&unit, "σ"),
                (&precision, "1"),
                (&description, "peak over rms"),
            ],
        )
        .await;
    assert!(flash_after(&app, r).await.contains("saved"));
    let p: (String, String, bool, bool) = sqlx::query_as(
        "SELECT name, description, reviewers_add_tags, score_enabled FROM projects WHERE slug = 'p'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        p,
        ("Pilot survey".into(), "The first fields".into(), true, true)
    );
    let m: (String, String, i16, bool, String) = sqlx::query_as(
        "SELECT label, unit, precision, shown_by_default, description FROM metric_defs WHERE key = 'snr'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        m,
        (
            "Signal/noise".into(),
            "σ".into(),
            1,
            false,
            "peak over rms".into()
        ),
        "an unticked box hides the metric by default"
    );
    assert!(audited(&app, "project.update", "p").await);
    // Switching both settings off again.
    app.post_form(
        "/admin/projects/p",
        &[
            ("name", "Pilot survey"),
            (&label, "Signal/noise"),
            (&precision, "1"),
            (&f("shown"), "on"),
        ],
    )
    .await;
    let p: (bool, bool, bool) = sqlx::query_as(
        "SELECT p.reviewers_add_tags, p.score_enabled, m.shown_by_default FROM projects p JOIN metric_defs m ON m.project_id = p.id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(p, (false, false, true));
}

/// The form-field prefix (`metric.<id>`) of the metric `key` on the
/// project page.
fn metric_prefix(html: &Html, key: &str) -> String {
    attrs(html, &format!("tr[data-metric={key}] input"), "name")
        .into_iter()
        .find(|n| n.ends_with(".label"))
        .unwrap()
        .trim_end_matches(".label")
        .to_string()
}

type Decision = (bool, Option<f64>, Option<f64>, i32);

/// snr's headline flag and good range, and the project's key guard.
async fn decision(app: &TestApp) -> Decision {
    sqlx::query_as(
        "SELECT m.headline, m.good_min, m.good_max, p.key_guard_ms
         FROM projects p JOIN metric_defs m ON m.project_id = p.id WHERE m.key = 'snr'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn last_project_audit(app: &TestApp) -> serde_json::Value {
    sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'project.update' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn headline_good_range_and_key_guard_are_edited(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    survey(&app).await;
    let html = app.get_html("/admin/projects/p").await;
    let prefix = metric_prefix(&html, "snr");
    let f = |s: &str| format!("{prefix}.{s}");
    let (label, precision, headline, good_min, good_max) = (
        f("label"),
        f("precision"),
        f("headline"),
        f("good_min"),
        f("good_max"),
    );
    assert_eq!(
        select_attr(&html, "input[name=key_guard_ms]", "value").as_deref(),
        Some("250"),
        "a new project has the default guard"
    );
    let sel = |name: &str| format!("input[name=\"{name}\"]");
    assert!(select_attr(&html, &sel(&headline), "checked").is_none());
    assert_eq!(
        select_attr(&html, &sel(&good_min), "value").as_deref(),
        Some("")
    );
    assert_eq!(decision(&app).await, (false, None, None, 250));

    let r = app
        .post_form(
            "/admin/projects/p",
            &[
                ("name", "P"),
                ("key_guard_ms", "400"),
                (&label, "SNR"),
                (&precision, "3"),
                (&f("shown"), "on"),
                (&headline, "on"),
                (&good_min, "5"),
                (&good_max, ""),
            ],
        )
        .await;
    assert!(flash_after(&app, r).await.contains("saved"));
    assert_eq!(decision(&app).await, (true, Some(5.0), None, 400));
    let detail = last_project_audit(&app).await;
    assert_eq!(detail["key_guard_ms"], 400, "{detail}");
    assert_eq!(detail["headline"], json!(["snr"]), "{detail}");
    assert_eq!(
        detail["good"],
        json!({"snr": {"min": 5.0, "max": null}}),
        "{detail}"
    );
    let html = app.get_html("/admin/projects/p").await;
    assert!(select_attr(&html, &sel(&headline), "checked").is_some());
    assert_eq!(
        select_attr(&html, &sel(&good_min), "value").as_deref(),
        Some("5")
    );
    assert_eq!(
        select_attr(&html, "input[name=key_guard_ms]", "value").as_deref(),
        Some("400")
    );
    let audits = audit(&app).await.len();

    // Each bad value is refused with a message, and nothing of the form is
    // saved (not even the name sent with it).
    for (what, fields, message) in [
        (
            "min above max",
            vec![(good_min.as_str(), "10"), (good_max.as_str(), "2")],
            "above its good maximum",
        ),
        (
            "a guard too long",
            vec![("key_guard_ms", "5000")],
            "from 0 to 2000",
        ),
        (
            "a negative guard",
            vec![("key_guard_ms", "-1")],
            "from 0 to 2000",
        ),
        (
            "an infinite bound",
            vec![(good_max.as_str(), "inf")],
            "finite",
        ),
        ("NaN", vec![(good_min.as_str(), "NaN")], "finite"),
        (
            "not a number",
            vec![(good_min.as_str(), "lots")],
            "not a number",
        ),
    ] {
        let mut form = vec![
            ("name", "Renamed"),
            (label.as_str(), "SNR"),
            (precision.as_str(), "3"),
        ];
        form.extend(fields);
        let r = app.post_form("/admin/projects/p", &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
        let error = select_text(&html_of(r).await, ".form-error").unwrap();
        assert!(error.contains(message), "{what}: {error}");
        assert_eq!(decision(&app).await, (true, Some(5.0), None, 400), "{what}");
        assert_eq!(
            count(&app, "SELECT count(*) FROM projects WHERE name = 'P'").await,
            1,
            "{what}"
        );
    }
    assert_eq!(audit(&app).await.len(), audits, "refusals are not audited");

    // A form without the guard (an older page) keeps it; emptied bounds and
    // an unticked box clear the metric's.
    let r = app
        .post_form(
            "/admin/projects/p",
            &[
                ("name", "P"),
                (&label, "SNR"),
                (&precision, "3"),
                (&f("shown"), "on"),
                (&good_min, ""),
                (&good_max, "2.5"),
            ],
        )
        .await;
    assert!(flash_after(&app, r).await.contains("saved"));
    assert_eq!(decision(&app).await, (false, None, Some(2.5), 400));
    let r = app
        .post_form("/admin/projects/p", &[("name", "P"), ("key_guard_ms", "0")])
        .await;
    assert!(flash_after(&app, r).await.contains("saved"));
    assert_eq!(decision(&app).await, (false, None, Some(2.5), 0));
}

/// A small PNG whose content depends on `seed`.
fn png(seed: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(5, 4, |x, y| {
        image::Luma([seed.wrapping_add((x * 7 + y) as u8)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Projects a (two observations, a beam, files on all three levels) and b,
/// whose candidate b1 has a file with exactly the content of a2's.
async fn two_projects(app: &TestApp) -> HashMap<String, i64> {
    let api = uploader(app).await;
    for (slug, name) in [("a", "Alpha"), ("b", "Beta")] {
        let (s, _) = api
            .put(&format!("/projects/{slug}"), json!({"name": name, "metrics": [{"key": "snr", "label": "SNR"}], "tags": [{"name": "Noise"}]}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, body) = api
        .put_multipart(
            "/projects/a/observations/o1",
            "observation",
            json!({"files": {"summary": "s"}}),
            vec![("s", png(1))],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .put_multipart(
            "/projects/a/observations/o1/beams/b0",
            "beam",
            json!({"files": {"map": "m"}}),
            vec![("m", png(2))],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = api.put("/projects/a/observations/o2", json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api.put("/projects/b/observations/o1", json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut ids = HashMap::new();
    for (path, cands, files) in [
        (
            "/projects/a/observations/o1/candidates",
            json!([{"name": "a1", "beam": "b0", "ra": 1.0, "dec": -1.0, "files": {"plot": "p1"}},
                   {"name": "a2", "ra": 1.1, "dec": -1.0, "files": {"plot": "shared"}}]),
            vec![("p1", png(3)), ("shared", png(100))],
        ),
        (
            "/projects/a/observations/o2/candidates",
            json!([{"name": "a3", "ra": 1.2, "dec": -1.0, "files": {"plot": "p3"}}]),
            vec![("p3", png(4))],
        ),
        (
            "/projects/b/observations/o1/candidates",
            json!([{"name": "b1", "ra": 2.0, "dec": -1.0, "files": {"plot": "shared"}},
                   {"name": "b2", "ra": 2.1, "dec": -1.0, "files": {"plot": "p5"}}]),
            vec![("shared", png(100)), ("p5", png(5))],
        ),
    ] {
        let (s, body) = api
            .post_multipart(path, "candidates", json!({"candidates": cands}), files)
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        for c in body["candidates"].as_array().unwrap() {
            ids.insert(
                c["name"].as_str().unwrap().to_string(),
                c["id"].as_i64().unwrap(),
            );
        }
    }
    ids
}

/// Every storage path with a row, and whether its object is on disk.
async fn objects(app: &TestApp) -> Vec<(String, bool)> {
    let paths: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT storage_path FROM files ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    paths
        .into_iter()
        .map(|p| {
            let there = app.media_root.join(&p).exists();
            (p, there)
        })
        .collect()
}

async fn paths_of(app: &TestApp, project: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT f.storage_path FROM files f
           LEFT JOIN candidates c ON c.id = f.candidate_id
           LEFT JOIN beams b ON b.id = f.beam_id
           LEFT JOIN observations o ON o.id = coalesce(f.observation_id, b.observation_id, c.observation_id)
           JOIN projects p ON p.id = o.project_id
         WHERE p.slug = $1 ORDER BY 1",
    )
    .bind(project)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn on_disk(app: &TestApp, path: &str) -> bool {
    app.media_root.join(path).exists()
}

/// Row counts of project b's data, to show it is untouched.
async fn beta(app: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for sql in [
        "SELECT count(*) FROM observations o JOIN projects p ON p.id = o.project_id WHERE p.slug = 'b'",
        "SELECT count(*) FROM candidates c JOIN projects p ON p.id = c.project_id WHERE p.slug = 'b'",
        "SELECT count(*) FROM ratings r JOIN candidates c ON c.id = r.candidate_id JOIN projects p ON p.id = c.project_id WHERE p.slug = 'b'",
        "SELECT count(*) FROM files f JOIN candidates c ON c.id = f.candidate_id JOIN projects p ON p.id = c.project_id WHERE p.slug = 'b'",
        "SELECT count(*) FROM tags t JOIN projects p ON p.id = t.project_id WHERE p.slug = 'b'",
        "SELECT count(*) FROM metric_defs m JOIN projects p ON p.id = m.project_id WHERE p.slug = 'b'",
    ] {
        out.push(count(app, sql).await);
    }
    out
}

#[sqlx::test]
async fn deleting_a_project_removes_exactly_its_rows_and_files(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let ids = two_projects(&app).await;
    let (rita, _) = browser_of(&app, "rita", Role::Reviewer).await;
    rate(&rita, ids["a1"], "real", &[]).await;
    rate(&rita, ids["a1"], "unsure", &[]).await;
    rate(&rita, ids["b1"], "real", &[]).await;
    let a_paths = paths_of(&app, "a").await;
    let b_paths = paths_of(&app, "b").await;
    assert_eq!(a_paths.len(), 5);
    let shared: Vec<&String> = a_paths.iter().filter(|p| b_paths.contains(p)).collect();
    assert_eq!(shared.len(), 1, "one object is shared by both projects");
    assert!(objects(&app).await.iter().all(|(_, there)| *there));
    let beta_before = beta(&app).await;
    let users_before = count(&app, "SELECT count(*) FROM users").await;

    // The confirmation page says what will go.
    let html = app.get_html("/admin/projects/a/delete").await;
    let facts = select_text(&html, "#contents").unwrap();
    for expected in [
        "Observations2",
        "Beams1",
        "Candidates3",
        "1 current, 1 earlier",
        "5 records of 5 stored files",
    ] {
        assert!(
            facts
                .replace([' ', '\n'], "")
                .contains(&expected.replace(' ', "")),
            "{expected} in {facts}"
        );
    }
    // Only the exact name confirms.
    for typed in ["", "alpha", "a", "Beta"] {
        let r = app
            .post_form("/admin/projects/a/delete", &[("confirm_name", typed)])
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{typed:?}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM projects").await, 2);

    let r = app
        .post_form("/admin/projects/a/delete", &[("confirm_name", "Alpha")])
        .await;
    assert_eq!(location(&r), "/admin/projects");
    let report = flash_after(&app, r).await;
    for expected in [
        "2 observations",
        "1 beam",
        "3 candidates",
        "1 rating",
        "1 earlier rating",
        "5 file records",
        "1 tag",
        "1 metric",
        "4 media files",
        "1 kept",
    ] {
        assert!(report.contains(expected), "{expected:?} in {report}");
    }

    // Its rows are gone, everything under it...
    assert_eq!(
        count(&app, "SELECT count(*) FROM projects WHERE slug = 'a'").await,
        0
    );
    for table in [
        "observations",
        "beams",
        "candidates",
        "files",
        "tags",
        "metric_defs",
        "ratings",
        "rating_history",
    ] {
        let n = count(&app, &format!("SELECT count(*) FROM {table}")).await;
        let expected = match table {
            "observations" | "tags" | "metric_defs" | "ratings" => 1,
            "candidates" | "files" => 2,
            _ => 0,
        };
        assert_eq!(n, expected, "{table}");
    }
    // ...and the other project, the users and their other ratings are not.
    assert_eq!(beta(&app).await, beta_before);
    assert_eq!(
        count(&app, "SELECT count(*) FROM users").await,
        users_before
    );
    // Its own objects left the disk; the one b shares stayed.
    for p in &a_paths {
        assert_eq!(on_disk(&app, p), b_paths.contains(p), "{p}");
    }
    assert!(
        objects(&app).await.iter().all(|(_, there)| *there),
        "every remaining row has its file"
    );

    let detail: serde_json::Value = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'project.delete' AND target = 'a'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(detail["candidates"], 3);
    assert_eq!(detail["name"], "Alpha");
    assert_eq!(
        app.get("/admin/projects/a/delete").await.status(),
        StatusCode::NOT_FOUND
    );
}

/// What the candidate table of a whole project says it holds (a count kept
/// as candidates arrive and leave, not counted per page).
async fn table_count(app: &TestApp, project: &str) -> String {
    let html = app
        .get_html(&format!("/candidates?project={project}"))
        .await;
    select_text(&html, "#result-count strong").unwrap_or_default()
}

#[sqlx::test]
async fn deleting_an_observation_removes_only_what_is_under_it(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let ids = two_projects(&app).await;
    assert_eq!(table_count(&app, "a").await, "3 candidates");
    let (rita, _) = browser_of(&app, "rita", Role::Reviewer).await;
    rate(&rita, ids["a1"], "real", &[]).await;
    rate(&rita, ids["a3"], "real", &[]).await;
    let before = objects(&app).await;
    let o2_path: String = sqlx::query_scalar(
        "SELECT f.storage_path FROM files f JOIN candidates c ON c.id = f.candidate_id WHERE c.name = 'a3'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();

    let html = app.get_html("/admin/projects/a").await;
    let link = select_attr(&html, "tr[data-observation=o1] a", "href").unwrap();
    assert_eq!(link, "/admin/projects/a/observations/o1/delete");
    let r = app.post_form(&link, &[("confirm_name", "o2")]).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the other observation's name"
    );
    let r = app.post_form(&link, &[("confirm_name", "o1")]).await;
    assert_eq!(location(&r), "/admin/projects/a");
    let report = flash_after(&app, r).await;
    assert!(
        report.contains("1 beam")
            && report.contains("2 candidates")
            && report.contains("4 file records"),
        "{report}"
    );
    assert!(
        report.contains("3 media files") && report.contains("1 kept"),
        "{report}"
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT name FROM candidates ORDER BY name")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, ["a3", "b1", "b2"]);
    assert_eq!(count(&app, "SELECT count(*) FROM observations").await, 2);
    assert_eq!(count(&app, "SELECT count(*) FROM beams").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM ratings").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM tags").await,
        2,
        "a project's tags stay"
    );
    assert!(on_disk(&app, &o2_path));
    let after = objects(&app).await;
    assert_eq!(after.len(), before.len() - 3);
    assert!(after.iter().all(|(_, there)| *there));
    assert!(audited(&app, "observation.delete", "a/o1").await);
    assert_eq!(
        table_count(&app, "a").await,
        "1 candidate",
        "the table's kept count followed the removal"
    );
    assert_eq!(table_count(&app, "b").await, "2 candidates");
    assert_eq!(
        app.get("/admin/projects/a/observations/o1/delete")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

// ------------------------------------------------------------------ status

#[sqlx::test]
async fn site_status_counts_from_the_database(pool: PgPool) {
    let (app, _) = admin_app(pool).await;
    let ids = two_projects(&app).await;
    let (rita, _) = browser_of(&app, "rita", Role::Reviewer).await;
    rate(&rita, ids["a1"], "real", &[]).await;
    rate(&rita, ids["b1"], "real", &[]).await;
    app.create_user("gone", Role::Reviewer).await;
    sqlx::query("UPDATE users SET active = false WHERE username = 'gone'")
        .execute(&app.pool)
        .await
        .unwrap();

    let html = app.get_html("/admin/status").await;
    let fact = |id: &str| select_text(&html, &format!("#{id}")).unwrap();
    assert_eq!(fact("projects"), "2");
    assert_eq!(fact("observations"), "3");
    assert_eq!(fact("candidates"), "5");
    assert_eq!(fact("ratings"), "2");
    assert_eq!(fact("reviewers"), "1");
    assert_eq!(fact("admins"), "2", "boss and the pipeline's account");
    assert_eq!(fact("deactivated"), "1");
    assert_eq!(fact("version"), vetter::VERSION);
    assert_eq!(fact("build"), vetter::BUILD_COMMIT);
    assert!(
        fact("database-size").ends_with("MB"),
        "{}",
        fact("database-size")
    );
    let free = fact("free-space");
    assert!(
        !free.starts_with("unknown") && free.contains("free"),
        "{free}"
    );
    // Per project: the sizes of its distinct files, as on disk.
    let size_on_disk = |paths: Vec<String>| -> i64 {
        let mut paths = paths;
        paths.sort();
        paths.dedup();
        paths
            .iter()
            .map(|p| std::fs::metadata(app.media_root.join(p)).unwrap().len() as i64)
            .sum()
    };
    let a_bytes = size_on_disk(paths_of(&app, "a").await);
    let b_bytes = size_on_disk(paths_of(&app, "b").await);
    assert_eq!(
        select_attr(&html, "tr[data-project=a]", "data-bytes"),
        Some(a_bytes.to_string())
    );
    assert_eq!(
        select_attr(&html, "tr[data-project=b]", "data-bytes"),
        Some(b_bytes.to_string())
    );
    assert_eq!(
        texts(&html, "tr[data-project=a] td.num")[..2],
        ["5".to_string(), "5".to_string()]
    );
    let total: String = fact("media");
    assert!(
        total.starts_with("6 stored"),
        "a shared file counts once: {total}"
    );
}

// ------------------------------------------------------------------- audit

#[sqlx::test]
async fn the_audit_log_records_logins_and_admin_actions(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let boss = app.create_user("boss", Role::Admin).await;
    let rita = app.create_user("rita", Role::Reviewer).await;
    assert_eq!(
        app.post_login("boss", "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post_login("nobody", "whatever-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_as(&boss).await;
    app.post_form(
        &format!("/admin/users/{}/upload", rita.id),
        &[("allowed", "true")],
    )
    .await;
    let rows: Vec<(String, String, Option<String>, String, serde_json::Value)> = sqlx::query_as(
        "SELECT action, actor_name, host(address), target, detail FROM audit_log ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let summary: Vec<(&str, &str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("login.failure", "boss", Some("127.0.0.1")),
            ("login.failure", "nobody", Some("127.0.0.1")),
            ("login.success", "boss", Some("127.0.0.1")),
            ("user.upload_grant", "boss", Some("127.0.0.1")),
        ]
    );
    assert_eq!(rows[0].4["reason"], "wrong password");
    assert_eq!(rows[1].4["reason"], "unknown user");
    assert_eq!(rows[3].3, "rita");
    let unknown_actor: Option<i64> =
        sqlx::query_scalar("SELECT actor_id FROM audit_log WHERE actor_name = 'nobody'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unknown_actor, None);

    // The page: newest first, filtered by who and what.
    let html = app.get_html("/admin/audit").await;
    assert_eq!(
        attrs(&html, "tr.entry", "data-action"),
        [
            "user.upload_grant",
            "login.success",
            "login.failure",
            "login.failure"
        ]
    );
    let html = app.get_html("/admin/audit?actor=BOSS&action=login").await;
    assert_eq!(
        attrs(&html, "tr.entry", "data-action"),
        ["login.success", "login.failure"]
    );
    let html = app.get_html("/admin/audit?actor=nobody&action=").await;
    assert_eq!(attrs(&html, "tr.entry", "data-actor"), ["nobody"]);
    let html = app.get_html("/admin/audit?action=login.failure").await;
    assert_eq!(attrs(&html, "tr.entry", "data-actor"), ["nobody", "boss"]);

    // A sign-in the throttle refuses is a failure too, and shows under the
    // account it was aimed at.
    let strict = TestApp::spawn_with(app.pool.clone(), |c| {
        // One failure of rita's from this address, and the next is refused.
        c.login_throttle.refuse_after = 1;
        c.login_throttle.slow_after = 100;
    })
    .await;
    assert_eq!(
        strict.post_login("rita", "wrong-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        strict.post_login("rita", &rita.password).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let html = app.get_html("/admin/audit?actor=rita&action=login").await;
    assert_eq!(
        texts(&html, "tr.entry td.detail"),
        [
            r#"{"reason":"too many failures"}"#,
            r#"{"reason":"wrong password"}"#
        ]
    );
    assert_eq!(
        app.get("/admin/audit?action=drop.table").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/admin/audit?before=garbage").await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[sqlx::test]
async fn the_audit_log_pages_by_cursor_without_gaps_or_repeats(pool: PgPool) {
    let (app, boss) = admin_app(pool).await;
    // 120 rows, many sharing a timestamp, so the cursor must use the id too.
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor_name, action, target)
         SELECT timestamptz '2024-01-01 00:00:00+00' + (n / 7) * interval '1 second', $1, 'boss', 'tag.create', 'p/t' || n
         FROM generate_series(1, 120) AS n",
    )
    .bind(boss.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut next = Some("/admin/audit?action=tag".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let html = app.get_html(&path).await;
        let targets = texts(&html, "tr.entry td.target");
        assert!(targets.len() <= 50);
        seen.extend(targets);
        next = select_attr(&html, "#older", "href");
        pages += 1;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (1..=120).rev().map(|n| format!("p/t{n}")).collect();
    assert_eq!(seen, expected, "newest first, every row once");
}

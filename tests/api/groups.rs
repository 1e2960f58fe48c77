//! Groups of candidates (friends of friends within the project's radius)
//! on a hand-made sky with known answers, the rating page's group panel,
//! and rating a whole group or a table filter at once, with its undo.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use vetter::domain::{ProjectId, Role};

use crate::helpers::{TestApp, TestUser};
use crate::upload_api::{uploader, Api};

/// Arcseconds in degrees.
const AS: f64 = 1.0 / 3600.0;

async fn project(api: &Api<'_>) {
    let (s, body) = api
        .put(
            "/projects/p",
            json!({"name": "P", "metrics": [{"key": "snr", "label": "SNR"},
                                            {"key": "peak_flux", "label": "Peak flux", "unit": "mJy"}],
                   "tags": [{"name": "Flare"}, {"name": "Noise"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    for (obs, time) in [
        ("o1", "2024-05-01T12:00:00Z"),
        ("o2", "2024-05-08T12:00:00Z"),
        ("o3", "2024-05-15T12:00:00Z"),
    ] {
        let (s, body) = api
            .put(
                &format!("/projects/p/observations/{obs}"),
                json!({ "start_time": time }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
}

/// Uploads `(name, ra, dec)` into observation `obs`; name → id.
async fn send(api: &Api<'_>, obs: &str, cands: &[(&str, f64, f64)]) -> HashMap<String, i64> {
    let list: Vec<Value> = cands
        .iter()
        .enumerate()
        .map(|(i, (n, ra, dec))| {
            json!({"name": n, "ra": ra, "dec": dec,
                   "metrics": {"snr": 10.0, "peak_flux": 1.0 + i as f64}})
        })
        .collect();
    let (s, body) = api
        .post(
            &format!("/projects/p/observations/{obs}/candidates"),
            json!({ "candidates": list }),
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

/// The hand-made sky, sent in three uploads so that groups must merge:
/// - a, b, c: a chain 8″ apart (a to c 16″, beyond the 10″ radius), b sent
///   last, bridging the groups of a and c;
/// - w1, w2: 5.4″ apart across RA 0/360;
/// - n1, n2: 7.2″ apart across the north pole (RA 10° and 190°);
/// - s1, s2: 10.8″ apart, two groups.
async fn sky(app: &TestApp) -> HashMap<String, i64> {
    let api = uploader(app).await;
    project(&api).await;
    let mut ids = send(
        &api,
        "o1",
        &[
            ("a", 10.0, -30.0),
            ("c", 10.0, -30.0 + 16.0 * AS),
            ("w1", 359.9990, 5.0),
            ("n1", 10.0, 90.0 - 0.0010),
            ("s1", 50.0, 0.0),
        ],
    )
    .await;
    ids.extend(
        send(
            &api,
            "o2",
            &[
                ("w2", 0.0005, 5.0),
                ("n2", 190.0, 90.0 - 0.0010),
                ("s2", 50.0, 0.0030),
            ],
        )
        .await,
    );
    ids.extend(send(&api, "o3", &[("b", 10.0, -30.0 + 8.0 * AS)]).await);
    ids
}

/// The groups as sets of names, sorted.
async fn groups(pool: &PgPool) -> Vec<Vec<String>> {
    let rows: Vec<(i64, Vec<String>)> = sqlx::query_as(
        "SELECT group_id, array_agg(name ORDER BY name) FROM candidates GROUP BY group_id ORDER BY 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(_, names)| names).collect()
}

fn names(groups: &[&[&str]]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = groups
        .iter()
        .map(|g| g.iter().map(|s| s.to_string()).collect())
        .collect();
    out.sort();
    out
}

const EXPECTED: &[&[&str]] = &[
    &["a", "b", "c"],
    &["n1", "n2"],
    &["s1"],
    &["s2"],
    &["w1", "w2"],
];

#[sqlx::test]
async fn uploads_group_friends_of_friends_across_ra_zero_and_the_pole(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = sky(&app).await;
    assert_eq!(groups(&pool).await, names(EXPECTED));
    // A group is named by its smallest member.
    let (g,): (i64,) = sqlx::query_as("SELECT group_id FROM candidates WHERE name = 'b'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(g, ids["a"].min(ids["c"]));
}

#[sqlx::test]
async fn a_candidate_sent_again_elsewhere_leaves_its_group_split(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    sky(&app).await;
    let admin = app.create_user("pipeline2", Role::Admin).await;
    let api = Api {
        app: &app,
        token: crate::upload_api::token_for(&app, &admin).await,
    };
    // b was the only link between a and c (16″ apart).
    send(&api, "o3", &[("b", 100.0, 0.0)]).await;
    assert_eq!(
        groups(&pool).await,
        names(&[
            &["a"],
            &["b"],
            &["c"],
            &["n1", "n2"],
            &["s1"],
            &["s2"],
            &["w1", "w2"]
        ])
    );
    // Back where it was: the chain is whole again.
    send(&api, "o3", &[("b", 10.0, -30.0 + 8.0 * AS)]).await;
    assert_eq!(groups(&pool).await, names(EXPECTED));
}

#[sqlx::test]
async fn a_recompute_finds_the_same_groups_and_follows_the_radius(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    sky(&app).await;
    let (project,): (ProjectId,) = sqlx::query_as("SELECT id FROM projects WHERE slug = 'p'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE candidates SET group_id = id")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let r = vetter::db::groups::recompute(&mut conn, project)
        .await
        .unwrap();
    assert_eq!((r.candidates, r.groups), (9, 5));
    assert_eq!(groups(&pool).await, names(EXPECTED));
    sqlx::query("UPDATE projects SET group_radius_arcsec = 20")
        .execute(&pool)
        .await
        .unwrap();
    vetter::db::groups::recompute(&mut conn, project)
        .await
        .unwrap();
    assert_eq!(
        groups(&pool).await,
        names(&[
            &["a", "b", "c"],
            &["n1", "n2"],
            &["s1", "s2"],
            &["w1", "w2"]
        ])
    );
    // Nothing changed: nothing written.
    let again = vetter::db::groups::recompute(&mut conn, project)
        .await
        .unwrap();
    assert_eq!(again.changed, 0);
}

#[sqlx::test]
async fn an_admin_changes_the_group_radius_and_the_groups_follow(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    sky(&app).await;
    let admin = app.create_user("boss", Role::Admin).await;
    app.login_as(&admin).await;
    let page = app.get_html("/admin/projects/p/catalogues").await;
    assert_eq!(
        crate::helpers::select_attr(&page, "input[name=group_radius]", "value").as_deref(),
        Some("10")
    );
    // Refused whole: nothing changes.
    let r = app
        .post_form("/admin/projects/p/catalogues", &[("group_radius", "0")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The group radius is a number"));
    assert_eq!(groups(&pool).await, names(EXPECTED));
    let r = app
        .post_form("/admin/projects/p/catalogues", &[("group_radius", "12")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // s1 and s2 are 10.8″ apart: one group now.
    assert_eq!(
        groups(&pool).await,
        names(&[
            &["a", "b", "c"],
            &["n1", "n2"],
            &["s1", "s2"],
            &["w1", "w2"]
        ])
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'project.catalogues'
            AND (detail->>'group_radius_arcsec')::float8 = 12",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

async fn alice(app: &TestApp) -> TestUser {
    let u = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&u).await;
    u
}

#[sqlx::test]
async fn the_group_panel_says_how_often_it_was_seen_and_links_the_others(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = sky(&app).await;
    alice(&app).await;
    let r = app.get(&format!("/candidates/{}/group", ids["b"])).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(body.contains("Seen 3 times in 2 observations"), "{body}");
    for other in ["a", "c"] {
        assert!(body.contains(&format!("href=\"/candidates/{}\"", ids[other])));
    }
    assert!(body.contains("<svg"), "a light curve of the peak fluxes");
    assert!(body.contains("Peak flux"));
    assert!(body.contains("data-key=\"G\""));
    let lonely = app.get(&format!("/candidates/{}/group", ids["s1"])).await;
    let body = lonely.text().await.unwrap();
    assert!(body.contains("Seen 1 time in 1 observation"), "{body}");
    // The rating page asks for the panel.
    let page = app.get(&format!("/candidates/{}", ids["b"])).await;
    assert!(page
        .text()
        .await
        .unwrap()
        .contains(&format!("hx-get=\"/candidates/{}/group\"", ids["b"])));
}

async fn rating_of(pool: &PgPool, user: &str, id: i64) -> Option<(String, Vec<String>, String)> {
    sqlx::query_as(
        "SELECT r.verdict::text,
                coalesce(array_agg(t.name ORDER BY t.name) FILTER (WHERE t.id IS NOT NULL), '{}'),
                r.notes
           FROM ratings r JOIN users u ON u.id = r.user_id
           LEFT JOIN rating_tags rt USING (user_id, candidate_id) LEFT JOIN tags t ON t.id = rt.tag_id
          WHERE u.username = $1 AND r.candidate_id = $2
          GROUP BY r.verdict, r.notes",
    )
    .bind(user)
    .bind(id)
    .fetch_optional(pool)
    .await
    .unwrap()
}

async fn tag(pool: &PgPool, name: &str) -> String {
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM tags WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap();
    id.to_string()
}

async fn counts_match(pool: &PgPool) {
    let (wrong,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM candidates c
          WHERE c.rating_count <> (SELECT count(*) FROM ratings r WHERE r.candidate_id = c.id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(wrong, 0, "rating_count follows the ratings");
}

/// The htmx panel's answer to a GET.
async fn panel(app: &TestApp, query: &str) -> String {
    let r = app
        .client
        .get(app.url(&format!("/batch?{query}")))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

#[sqlx::test]
async fn a_whole_group_is_rated_after_a_confirmation_and_taken_back_as_a_whole(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = sky(&app).await;
    alice(&app).await;
    let (flare, noise) = (tag(&pool, "Flare").await, tag(&pool, "Noise").await);
    // An earlier rating of a, with a tag and notes, that the batch replaces.
    let r = app
        .post_form(
            &format!("/candidates/{}/rating", ids["a"]),
            &[
                ("verdict", "not_real"),
                ("tags", &noise),
                ("notes", "sidelobe?"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let choose = panel(&app, &format!("group={}", ids["b"])).await;
    assert!(choose.contains("data-modal"));
    assert!(
        choose.contains("3 candidates, 1 of them rated by you already"),
        "{choose}"
    );
    let confirm = panel(
        &app,
        &format!("group={}&verdict=real&tags={flare}", ids["b"]),
    )
    .await;
    assert!(
        confirm.contains("This will rate <strong>3 candidates</strong> as <strong class=\"verdict-real\">Real</strong>, tagged Flare."),
        "{confirm}"
    );
    assert!(
        rating_of(&pool, "alice", ids["b"]).await.is_none(),
        "nothing written yet"
    );

    let group = ids["b"].to_string();
    // A confirmation for another count is refused, and changes nothing.
    let r = app
        .post_form(
            "/batch",
            &[
                ("group", &group),
                ("verdict", "real"),
                ("tags", &flare),
                ("expected", "2"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(rating_of(&pool, "alice", ids["b"]).await.is_none());

    let r = app
        .client
        .post(app.url("/batch"))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", app.csrf_token("/account").await)
        .form(&[
            ("group", group.as_str()),
            ("verdict", "real"),
            ("tags", &flare),
            ("expected", "3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let done = r.text().await.unwrap();
    assert!(
        done.contains("Rated 3 candidates as Real (1 of them replace a rating of yours)."),
        "{done}"
    );
    for n in ["a", "b", "c"] {
        let (v, tags, _) = rating_of(&pool, "alice", ids[n]).await.unwrap();
        assert_eq!(
            (v.as_str(), tags),
            ("real", vec!["Flare".to_string()]),
            "{n}"
        );
    }
    assert_eq!(
        rating_of(&pool, "alice", ids["a"]).await.unwrap().2,
        "sidelobe?",
        "notes stay"
    );
    assert!(
        rating_of(&pool, "alice", ids["s1"]).await.is_none(),
        "outside the group"
    );
    let (history,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM rating_history WHERE candidate_id = $1 AND verdict = 'not_real' AND batch_id IS NOT NULL",
    )
    .bind(ids["a"])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(history, 1, "the replaced rating is in the history");
    counts_match(&pool).await;
    let (audited,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM audit_log WHERE action = 'rating.batch'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);

    // Someone else cannot take it back, nor learn that it exists.
    let (batch,): (i64,) = sqlx::query_as("SELECT id FROM rating_batches")
        .fetch_one(&pool)
        .await
        .unwrap();
    let bob_app = TestApp::spawn(pool.clone()).await;
    let bob = bob_app.create_user("bob", Role::Reviewer).await;
    bob_app.login_as(&bob).await;
    let r = bob_app
        .post_form(&format!("/batch/{batch}/undo"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // b was rated again since: the undo leaves that rating alone.
    let r = app
        .post_form(
            &format!("/candidates/{}/rating", ids["b"]),
            &[("verdict", "unsure")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app.post_form(&format!("/batch/{batch}/undo"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (v, tags, notes) = rating_of(&pool, "alice", ids["a"]).await.unwrap();
    assert_eq!(
        (v.as_str(), tags, notes.as_str()),
        ("not_real", vec!["Noise".to_string()], "sidelobe?"),
        "a has its rating from before the batch back"
    );
    assert_eq!(
        rating_of(&pool, "alice", ids["b"]).await.unwrap().0,
        "unsure"
    );
    assert!(
        rating_of(&pool, "alice", ids["c"]).await.is_none(),
        "c is unrated again"
    );
    counts_match(&pool).await;
    let (undos,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM audit_log WHERE action = 'rating.batch_undo'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(undos, 1);
    let r = app.post_form(&format!("/batch/{batch}/undo"), &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "once is enough");
}

#[sqlx::test]
async fn a_table_filter_is_rated_at_once_within_its_project_only(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = sky(&app).await;
    alice(&app).await;
    let r = app
        .client
        .get(app.url("/batch?filter=name%3Ds"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a filter without a project"
    );
    let confirm = panel(&app, "filter=project%3Dp%26name%3Ds&verdict=not_real").await;
    assert!(
        confirm.contains("This will rate <strong>2 candidates</strong>"),
        "{confirm}"
    );
    let r = app
        .post_form(
            "/batch",
            &[
                ("filter", "project=p&name=s"),
                ("verdict", "not_real"),
                ("expected", "2"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::helpers::location(&r), "/candidates?project=p&name=s");
    for n in ["s1", "s2"] {
        assert_eq!(
            rating_of(&pool, "alice", ids[n]).await.unwrap().0,
            "not_real"
        );
    }
    assert!(rating_of(&pool, "alice", ids["a"]).await.is_none());
    // A second, identical batch changes nothing.
    let r = app
        .post_form(
            "/batch",
            &[
                ("filter", "project=p&name=s"),
                ("verdict", "not_real"),
                ("expected", "2"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (counts,): (Vec<i32>,) =
        sqlx::query_as("SELECT array_agg(count ORDER BY id) FROM rating_batches")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(counts, vec![2, 0]);
    counts_match(&pool).await;
    // A tag of no project of the selection is refused.
    let r = app
        .post_form(
            "/batch",
            &[
                ("filter", "project=p&name=s"),
                ("verdict", "real"),
                ("tags", "999999"),
                ("expected", "2"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[sqlx::test]
async fn the_table_shows_one_row_per_group_with_its_size(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = sky(&app).await;
    alice(&app).await;
    let html = app.get_html("/candidates?project=p&group=1").await;
    let rows = scraper::Selector::parse("#candidate-table tbody tr").unwrap();
    let first_of_chain = ids["a"].min(ids["c"]).to_string();
    let shown: Vec<(String, String)> = html
        .select(&rows)
        .map(|tr| {
            (
                tr.value().attr("data-id").unwrap().to_string(),
                crate::helpers::texts(tr)[1].clone(),
            )
        })
        .collect();
    assert_eq!(shown.len(), 5, "{shown:?}");
    assert!(
        shown.contains(&(first_of_chain, "3".to_string())),
        "{shown:?}"
    );
    assert!(crate::helpers::select_text(&html, "#result-count")
        .unwrap()
        .contains("5 groups"));
    let every = app.get_html("/candidates?project=p").await;
    assert_eq!(every.select(&rows).count(), 9);
    assert_eq!(
        crate::helpers::select_text(&every, "#group-toggle").unwrap(),
        "One row per group"
    );
    let r = app.get("/candidates?project=p&group=yes").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("one row per group: 1"));
}

//! The candidate table: every filter alone and combined against a survey
//! whose right answers are written down here, cone searches (units, RA
//! wrap, poles, named positions), bad input as inline messages, sorting
//! with NaN and missing values, keyset paging, columns, htmx, saved views
//! and "rate these".

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{location, select_attr, select_text, TestApp, TestUser};
use crate::upload_api::uploader;

/// The survey every test here starts from. Project `vast` (metrics snr and
/// md shown by default, eta not; tags Pulsar, Noise, Flare star) and
/// project `gleam` (one candidate, g01).
///
/// | name | obs | beam   | ra      | dec    | snr | md   | deep position     |
/// |------|-----|--------|---------|--------|-----|------|-------------------|
/// | c01  | SB1 | beam00 | 188.70  | -45.20 | 5   | 0.1  | 188.70, -45.21    |
/// | c02  | SB1 | beam00 | 188.71  | -45.20 | 7.5 | NaN  |                   |
/// | c03  | SB1 | beam01 | 359.995 | 10     | 12  | +∞   | 0.004, 10         |
/// | c04  | SB1 | beam01 | 0.005   | 10     | 3   | −∞   |                   |
/// | c05  | SB2 | beam00 | 45      | 89.99  | NaN | 0.5  |                   |
/// | c06  | SB2 | beam00 | 225     | 89.995 | 20  | –    |                   |
/// | c07  | SB2 | beam00 | 100     | -30    | –   | 0.3  | 188.70, -45.20    |
/// | c08  | SB2 | –      | 188.70  | -45.30 | 9   | 0.2  |                   |
/// | g01  | O1  | –      | 188.70  | -45.20 | 50  |      |                   |
///
/// Current ratings (alice is the signed-in reviewer of `app`):
/// - c01: alice real [Pulsar] (notes with quotes, comma, newline, <&>),
///   bob real [Pulsar, Noise]
/// - c02: alice real, bob not real (replacing his earlier real), carol real
/// - c03: bob unsure [Noise]
/// - c04: carol not real [Flare star]
/// - c05: alice not real, carol not real
/// - g01: bob real
pub struct Survey {
    pub app: TestApp,
    pub ids: HashMap<String, i64>,
    pub alice: TestUser,
    pub bob: TestApp,
    pub carol: TestApp,
}

pub const TRICKY_NOTES: &str = "He said \"bright\", then\nleft <&> ok";

fn cand(
    name: &str,
    beam: Option<&str>,
    ra: f64,
    dec: f64,
    metrics: serde_json::Value,
) -> serde_json::Value {
    let mut c = json!({"name": name, "ra": ra, "dec": dec, "metrics": metrics});
    if let Some(b) = beam {
        c["beam"] = json!(b);
    }
    c
}

pub async fn reviewer(app: &TestApp, name: &str) -> (TestApp, TestUser) {
    let other = TestApp::spawn(app.pool.clone()).await;
    let user = other.create_user(name, Role::Reviewer).await;
    other.login_as(&user).await;
    (other, user)
}

/// Rates through the plain form (a redirect follows).
pub async fn rate(app: &TestApp, id: i64, verdict: &str, tags: &[i64], notes: &str) {
    let mut form: Vec<(&str, &str)> = vec![("verdict", verdict), ("notes", notes)];
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    for t in &tags {
        form.push(("tags", t));
    }
    let r = app
        .post_form(&format!("/candidates/{id}/rating"), &form)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "rating {id} {verdict}");
}

pub async fn survey(pool: PgPool) -> Survey {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    let (s, b) = api
        .put(
            "/projects/vast",
            json!({"name": "VAST", "metrics": [
                    {"key": "snr", "label": "S/N", "precision": 1},
                    {"key": "md", "label": "Modulation index", "precision": 2},
                    {"key": "eta", "label": "η", "shown_by_default": false}],
                   "tags": [{"name": "Pulsar"}, {"name": "Noise"}, {"name": "Flare star"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api
        .put(
            "/projects/gleam",
            json!({"name": "GLEAM-X", "metrics": [{"key": "snr", "label": "S/N"}], "tags": [{"name": "Pulsar"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for (p, o) in [("vast", "SB1"), ("vast", "SB2"), ("gleam", "O1")] {
        let (s, b) = api
            .put(
                &format!("/projects/{p}/observations/{o}"),
                json!({"start_time": "2024-05-01T12:00:00Z"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    for (o, beam) in [("SB1", "beam00"), ("SB1", "beam01"), ("SB2", "beam00")] {
        let (s, b) = api
            .put(
                &format!("/projects/vast/observations/{o}/beams/{beam}"),
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let mut c01 = cand(
        "c01",
        Some("beam00"),
        188.70,
        -45.20,
        json!({"snr": 5.0, "md": 0.1, "eta": 1.0}),
    );
    c01["positions"] = json!({"deep": {"ra": 188.70, "dec": -45.21}});
    c01["light_curve"] = json!({"unit": "mJy/beam", "points": [
        {"time": "2024-05-01T12:00:00Z", "flux": 1.5, "err": 0.1},
        {"time": "2024-05-01T12:10:00Z", "flux": 9.5, "err": 0.25}]});
    let mut c03 = cand(
        "c03",
        Some("beam01"),
        359.995,
        10.0,
        json!({"snr": 12.0, "md": "Infinity"}),
    );
    c03["positions"] = json!({"deep": {"ra": 0.004, "dec": 10.0}});
    let mut c07 = cand("c07", Some("beam00"), 100.0, -30.0, json!({"md": 0.3}));
    c07["positions"] = json!({"deep": {"ra": 188.70, "dec": -45.20}});
    let sb1 = vec![
        c01,
        cand(
            "c02",
            Some("beam00"),
            188.71,
            -45.20,
            json!({"snr": 7.5, "md": "NaN"}),
        ),
        c03,
        cand(
            "c04",
            Some("beam01"),
            0.005,
            10.0,
            json!({"snr": 3.0, "md": "-Infinity"}),
        ),
    ];
    let sb2 = vec![
        cand(
            "c05",
            Some("beam00"),
            45.0,
            89.99,
            json!({"snr": "NaN", "md": 0.5}),
        ),
        cand("c06", Some("beam00"), 225.0, 89.995, json!({"snr": 20.0})),
        c07,
        cand("c08", None, 188.70, -45.30, json!({"snr": 9.0, "md": 0.2})),
    ];
    let mut ids = HashMap::new();
    for (path, cands) in [
        ("/projects/vast/observations/SB1/candidates", sb1),
        ("/projects/vast/observations/SB2/candidates", sb2),
        (
            "/projects/gleam/observations/O1/candidates",
            vec![cand("g01", None, 188.70, -45.20, json!({"snr": 50.0}))],
        ),
    ] {
        let (s, body) = api.post(path, json!({"candidates": cands})).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        for c in body["candidates"].as_array().unwrap() {
            ids.insert(
                c["name"].as_str().unwrap().to_string(),
                c["id"].as_i64().unwrap(),
            );
        }
    }
    let tag = |name: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT t.id FROM tags t JOIN projects p ON p.id = t.project_id WHERE p.slug = 'vast' AND t.name = $1",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (pulsar, noise, flare) = (
        tag("Pulsar").await,
        tag("Noise").await,
        tag("Flare star").await,
    );
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    let (bob, _) = reviewer(&app, "bob").await;
    let (carol, _) = reviewer(&app, "carol").await;
    let id = |n: &str| ids[n];
    rate(&app, id("c01"), "real", &[pulsar], TRICKY_NOTES).await;
    rate(&bob, id("c01"), "real", &[pulsar, noise], "").await;
    rate(&app, id("c02"), "real", &[], "").await;
    rate(&bob, id("c02"), "real", &[], "first look").await;
    rate(&bob, id("c02"), "not_real", &[], "second look").await;
    rate(&carol, id("c02"), "real", &[], "").await;
    rate(&bob, id("c03"), "unsure", &[noise], "").await;
    rate(&carol, id("c04"), "not_real", &[flare], "").await;
    rate(&app, id("c05"), "not_real", &[], "").await;
    rate(&carol, id("c05"), "not_real", &[], "").await;
    rate(&bob, id("g01"), "real", &[], "").await;
    Survey {
        app,
        ids,
        alice,
        bob,
        carol,
    }
}

/// Opens every project's ratings to every reviewer (the blind rule off),
/// for tests of what the figures are rather than who may see them.
pub async fn open_review(app: &TestApp) {
    sqlx::query("UPDATE projects SET open_review = true")
        .execute(&app.pool)
        .await
        .unwrap();
}

/// The candidate names the table shows for `query` (one big page), in order.
pub async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let (names, _) = page(app, &format!("{query}&per=500")).await;
    names
}

/// The names on one page and the page's HTML.
async fn page(app: &TestApp, query: &str) -> (Vec<String>, scraper::Html) {
    let r = app.get(&format!("/candidates?{query}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert!(
        select_text(&html, "#filter-problems").is_none(),
        "{query}: {:?}",
        select_text(&html, "#filter-problems")
    );
    let sel = scraper::Selector::parse("#candidate-table tbody tr td:first-child a").unwrap();
    let names = html
        .select(&sel)
        .map(|e| e.text().collect::<String>())
        .collect();
    (names, html)
}

fn enc(s: &str) -> String {
    vetter::web::paths::encode_component(s)
}

fn list(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[sqlx::test]
async fn each_filter_alone_matches_its_hand_counted_candidates(pool: PgPool) {
    let s = survey(pool).await;
    let all_vast = "c01 c02 c03 c04 c05 c06 c07 c08";
    let cases: &[(&str, &str)] = &[
        ("reset=1", "c01 c02 c03 c04 c05 c06 c07 c08 g01"),
        ("project=vast", all_vast),
        ("project=gleam", "g01"),
        ("observation=SB1", "c01 c02 c03 c04"),
        ("project=vast&observation=SB2", "c05 c06 c07 c08"),
        ("beam=beam00", "c01 c02 c05 c06 c07"),
        ("beam=beam01", "c03 c04"),
        ("observation=SB2&beam=beam00", "c05 c06 c07"),
        ("name=C07", "c07"),
        ("name=c0", all_vast),
        // Wildcards are text: "%" matches only a name with a "%".
        ("name=%25", ""),
        ("name=_", ""),
        // Rating states (alice is "me").
        ("rated=mine", "c01 c02 c05"),
        ("rated=not_mine", "c03 c04 c06 c07 c08 g01"),
        ("rated=any", "c01 c02 c03 c04 c05 g01"),
        ("rated=none", "c06 c07 c08"),
        ("rated=disagree", "c02"),
        // Verdicts and tags: each candidate once, however many ratings match.
        ("verdict=real", "c01 c02 g01"),
        ("verdict=not_real", "c02 c04 c05"),
        ("verdict=unsure", "c03"),
        ("tag=Pulsar", "c01"),
        ("tag=noise", "c01 c03"),
        ("project=vast&tag=Flare+star", "c04"),
        ("reviewer=bob", "c01 c02 c03 g01"),
        ("reviewer=carol", "c02 c04 c05"),
        // Metric ranges (project vast): NaN/±∞ excluded unless asked for.
        ("project=vast&m.snr.min=5", "c01 c02 c03 c06 c08"),
        ("project=vast&m.snr.min=5&m.snr.max=10", "c01 c02 c08"),
        ("project=vast&m.snr.max=4", "c04"),
        (
            "project=vast&m.snr.min=5&m.snr.nf=include",
            "c01 c02 c03 c05 c06 c08",
        ),
        ("project=vast&m.snr.nf=only", "c05"),
        ("project=vast&m.md.min=0.15", "c05 c07 c08"),
        (
            "project=vast&m.md.min=0.15&m.md.nf=include",
            "c02 c03 c04 c05 c07 c08",
        ),
        ("project=vast&m.md.nf=only", "c02 c03 c04"),
        ("project=vast&m.md.max=0.2", "c01 c08"),
        // Bounds include the values on them.
        ("project=vast&m.snr.min=7.5&m.snr.max=7.5", "c02"),
        // "include" alone: any value at all (c07 has no snr, c06 no md).
        (
            "project=vast&m.snr.nf=include",
            "c01 c02 c03 c04 c05 c06 c08",
        ),
        (
            "project=vast&m.md.nf=include",
            "c01 c02 c03 c04 c05 c07 c08",
        ),
        // Cone around the candidate position: 188.7 −45.2, radius 1′ and 7′.
        ("pos=188.7+-45.2&radius=1", "c01 g01 c02"),
        ("project=vast&pos=188.7+-45.2&radius=7", "c01 c02 c08"),
        // Around the deep position instead.
        ("pos=188.7+-45.2&radius=1&around=deep", "c07 c01"),
    ];
    // Blind (the default): alice rated c01, c02 and c05, so the filters on
    // others' ratings see those three only.
    let blind: &[(&str, &str)] = &[
        ("rated=disagree", "c02"),
        ("verdict=real", "c01 c02"),
        ("verdict=not_real", "c02 c05"),
        ("verdict=unsure", ""),
        ("tag=Pulsar", "c01"),
        ("tag=noise", "c01"),
        ("project=vast&tag=Flare+star", ""),
        ("reviewer=bob", "c01 c02"),
        ("reviewer=carol", "c02 c05"),
        ("rated=any", "c01 c02 c03 c04 c05 g01"),
    ];
    for (q, want) in blind {
        assert_eq!(names(&s.app, q).await, list(want), "blind: {q}");
    }
    open_review(&s.app).await;
    for (q, want) in cases {
        assert_eq!(names(&s.app, q).await, list(want), "{q}");
    }
    // The count says the same, and rows are not repeated.
    let (_, html) = page(&s.app, "verdict=real&project=vast").await;
    assert!(
        select_text(&html, "#result-count")
            .unwrap()
            .starts_with("2 candidates"),
        "{:?}",
        select_text(&html, "#result-count")
    );
}

#[sqlx::test]
async fn filters_combine(pool: PgPool) {
    let s = survey(pool).await;
    let cases: &[(&str, &str)] = &[
        // The example: a cone, a metric range and a rating state.
        (
            "project=vast&pos=188.7+-45.2&radius=7&m.snr.min=5&rated=any",
            "c01 c02",
        ),
        ("project=vast&m.md.min=0.15&rated=none", "c07 c08"),
        (
            "observation=SB1&verdict=real&m.snr.max=6&project=vast",
            "c01",
        ),
        ("rated=disagree&reviewer=carol", "c02"),
        // Reviewer, verdict and tag describe one rating: bob's rating of c02
        // is "not real", so "by bob, real" is c01 (and g01) only.
        ("reviewer=bob&verdict=real", "c01 g01"),
        ("reviewer=alice&tag=Noise", ""),
        ("verdict=real&tag=Noise", "c01"),
        ("verdict=not_real&tag=Pulsar", ""),
        ("reviewer=bob&verdict=unsure&tag=Noise", "c03"),
        ("rated=mine&verdict=not_real", "c02 c05"),
        ("rated=not_mine&project=vast&beam=beam01", "c03 c04"),
        (
            "project=vast&m.snr.min=4&m.md.max=0.3&m.md.nf=include",
            "c01 c02 c03 c08",
        ),
        (
            "project=vast&observation=SB2&rated=none&m.snr.min=10",
            "c06",
        ),
        ("pos=0+90&radius=1&rated=mine", "c05"),
    ];
    // Blind: bob's real g01 and unsure c03 are not alice's to see.
    for (q, want) in [
        ("reviewer=bob&verdict=real", "c01"),
        ("reviewer=bob&verdict=unsure&tag=Noise", ""),
        ("verdict=real&tag=Noise", "c01"),
        ("rated=disagree&reviewer=carol", "c02"),
    ] {
        assert_eq!(names(&s.app, q).await, list(want), "blind: {q}");
    }
    open_review(&s.app).await;
    for (q, want) in cases {
        assert_eq!(names(&s.app, q).await, list(want), "{q}");
    }
}

#[sqlx::test]
async fn cone_searches_read_positions_as_astronomers_write_them(pool: PgPool) {
    let s = survey(pool).await;
    let centre = "c01 c02";
    let cases: &[(&str, &str, &str)] = &[
        // Degrees, and the same place in hours-minutes-seconds.
        ("188.7 -45.2", "1", centre),
        ("188.7, -45.2", "1", centre),
        ("12:34:48 -45:12:00", "1", centre),
        ("12h34m48s -45d12m00s", "1", centre),
        ("12 34 48 -45 12 00", "1", centre),
        // A decimal RA is degrees, not hours: 12.58° is far away.
        ("12.58 -45.2", "1", ""),
        // RA wraps at 0/360: c03 (359.995°) and c04 (0.005°) are 0.3′ from 0°.
        ("0 10", "1", "c03 c04"),
        ("359.999 +10", "1", "c03 c04"),
        ("00:00:00 +10:00:00", "1", "c03 c04"),
        ("23:59:59.9 10", "1", "c03 c04"),
        // Poles: RA means little there. c05 is 0.6′ and c06 0.3′ from the pole.
        ("0 90", "0.7", "c05 c06"),
        ("123 +90", "0.7", "c05 c06"),
        ("00:00:00 +90:00:00", "0.7", "c05 c06"),
        // From (0, 89.99): c05 (RA 45) is 0.46′ away, c06 (RA 225) 0.84′.
        ("0 89.99", "0.7", "c05"),
        ("0 89.99", "1", "c05 c06"),
        ("180 -90", "600", ""),
    ];
    for (pos, radius, want) in cases {
        let q = format!("project=vast&pos={}&radius={radius}&sort=name", enc(pos));
        assert_eq!(names(&s.app, &q).await, list(want), "{pos} r={radius}");
    }
    // Without a radius: 2′. The separation column shows arcminutes, nearest first.
    let (names_, html) = page(&s.app, &format!("project=vast&pos={}", enc("188.7 -45.2"))).await;
    assert_eq!(names_, list("c01 c02"));
    let sel = scraper::Selector::parse("#candidate-table tbody td.sep").unwrap();
    let seps: Vec<String> = html.select(&sel).map(|e| e.text().collect()).collect();
    // c02 is 0.01° of RA away at Dec −45.2°: 0.6′ × cos(45.2°) = 0.423′.
    assert_eq!(seps, vec!["0.000".to_string(), "0.423".to_string()]);
    assert_eq!(
        select_attr(&html, "input[name=pos]", "value").unwrap(),
        "188.7 -45.2"
    );
    // Around the deep position: c07's deep position is the centre itself.
    let (n, html) = page(
        &s.app,
        &format!(
            "project=vast&pos={}&radius=1&around=deep",
            enc("188.7 -45.2")
        ),
    )
    .await;
    assert_eq!(n, list("c07 c01"));
    let seps: Vec<String> = html.select(&sel).map(|e| e.text().collect()).collect();
    assert_eq!(seps, vec!["0.000".to_string(), "0.600".to_string()]);
}

/// The message shown beside `field` for `query`, which must be a 200 page
/// with no table.
async fn field_message(app: &TestApp, query: &str, field: &str) -> String {
    let r = app.get(&format!("/candidates?{query}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert!(
        select_text(&html, "#candidate-table").is_none(),
        "{query}: no rows on a bad filter"
    );
    assert!(select_text(&html, "#no-results")
        .unwrap()
        .contains("Fix the marked fields"));
    let summary = select_text(&html, "#filter-problems").unwrap_or_default();
    assert!(summary.contains(field), "{query}: {summary}");
    summary
}

#[sqlx::test]
async fn bad_input_is_a_message_on_its_field_never_an_error(pool: PgPool) {
    let s = survey(pool).await;
    for (pos, want) in [
        ("12:61:00 -45:00:00", "minutes must be below 60"),
        ("400 10", "below 360"),
        ("360 10", "below 360"),
        ("-1 10", "negative"),
        ("10 95", "between -90 and +90"),
        ("10 -90.5", "between -90 and +90"),
        ("25:00:00 10", "hours must be below 24"),
        ("hello world", "'h'"),
        ("188.7", "give RA and Dec"),
        ("1 2 3", "give RA and Dec"),
    ] {
        let q = format!("pos={}&radius=1", enc(pos));
        let r = s.app.get(&format!("/candidates?{q}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{pos}");
        let html = scraper::Html::parse_document(&r.text().await.unwrap());
        let msg = select_text(&html, "#msg-pos").unwrap_or_else(|| panic!("{pos}: no message"));
        assert!(msg.contains(want), "{pos}: {msg}");
        // What was typed stays in the box, marked invalid.
        assert_eq!(select_attr(&html, "input[name=pos]", "value").unwrap(), pos);
        assert_eq!(
            select_attr(&html, "input[name=pos]", "aria-invalid").unwrap(),
            "true"
        );
        assert!(select_text(&html, "#candidate-table").is_none());
    }
    for (q, field) in [
        ("pos=1+2&radius=0", "radius"),
        ("pos=1+2&radius=601", "radius"),
        ("pos=1+2&radius=abc", "radius"),
        ("project=nope", "project"),
        ("project=NOT%20A%20SLUG", "project"),
        ("observation=SB9", "observation"),
        ("project=gleam&observation=SB1", "observation"),
        ("beam=beam99", "beam"),
        ("reviewer=nobody", "reviewer"),
        ("tag=Nothing", "tag"),
        ("verdict=maybe", "verdict"),
        ("rated=sometimes", "rated"),
        ("project=vast&m.snr.min=abc", "m.snr.min"),
        ("project=vast&m.snr.min=inf", "m.snr.min"),
        ("project=vast&m.snr.min=5&m.snr.max=1", "m.snr.min"),
        ("project=vast&m.snr.nf=only&m.snr.min=1", "m.snr.nf"),
        ("project=vast&m.nope.min=1", "m.nope.min"),
        ("m.snr.min=1", "m.snr.min"),
        ("sort=colour", "sort"),
        ("dir=sideways", "dir"),
        ("per=0", "per"),
        ("per=100000", "per"),
        ("after=garbage", "page"),
        ("col=Not%20a%20key", "col"),
    ] {
        field_message(&s.app, q, field).await;
    }
    // The same filters break no export or summary either.
    for path in ["/candidates.csv", "/candidates.vot"] {
        let r = s.app.get(&format!("{path}?pos=12:61:00+-45")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(r.text().await.unwrap().contains("minutes must be below 60"));
    }
    let r = s.app.get("/ratings?pos=12:61:00+-45").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("minutes must be below 60"));
}

#[sqlx::test]
async fn sorting_puts_nan_and_missing_values_last_both_ways(pool: PgPool) {
    let s = survey(pool).await;
    let cases: &[(&str, &str)] = &[
        ("sort=m.snr", "c04 c01 c02 c08 c03 c06 c05 c07"),
        ("sort=m.snr&dir=desc", "c06 c03 c08 c02 c01 c04 c05 c07"),
        ("sort=m.md", "c04 c01 c08 c07 c05 c03 c02 c06"),
        ("sort=m.md&dir=desc", "c03 c05 c07 c08 c01 c04 c02 c06"),
        ("sort=name&dir=desc", "c08 c07 c06 c05 c04 c03 c02 c01"),
        ("sort=ra", "c04 c05 c07 c01 c08 c02 c06 c03"),
        ("sort=dec&dir=desc", "c06 c05 c04 c03 c07 c02 c01 c08"),
        ("sort=ratings", "c06 c07 c08 c03 c04 c01 c05 c02"),
        ("sort=ratings&dir=desc", "c02 c05 c01 c04 c03 c08 c07 c06"),
        ("sort=observation", "c01 c02 c03 c04 c05 c06 c07 c08"),
    ];
    for (q, want) in cases {
        let q = format!("project=vast&{q}");
        assert_eq!(names(&s.app, &q).await, list(want), "{q}");
    }
    // Sort links toggle and say which way they sort.
    let (_, html) = page(&s.app, "project=vast&sort=m.snr&dir=desc").await;
    assert_eq!(
        select_attr(&html, "th[aria-sort=descending] a", "href").unwrap(),
        "/candidates?project=vast&sort=m.snr&dir=asc"
    );
}

/// Walks a query page by page with the next links, then back with the
/// previous links; returns the names seen going forward.
pub async fn walk(app: &TestApp, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut url = format!("/candidates?{query}");
    loop {
        let (names, html) = page(app, url.trim_start_matches("/candidates?")).await;
        assert!(names.len() <= 3, "{url}");
        pages.push(names.clone());
        seen.extend(names);
        match select_attr(&html, "#next-page", "href") {
            Some(next) => url = next,
            None => break,
        }
        assert!(pages.len() < 20, "paging does not end");
    }
    // And back again, page by page.
    let mut back = pages.clone();
    back.pop();
    while let Some(want) = back.pop() {
        let (_, html) = page(app, url.trim_start_matches("/candidates?")).await;
        url = select_attr(&html, "#prev-page", "href").expect("a previous page");
        let (names, _) = page(app, url.trim_start_matches("/candidates?")).await;
        assert_eq!(names, want, "back to {url}");
    }
    let (_, html) = page(app, url.trim_start_matches("/candidates?")).await;
    assert!(select_attr(&html, "#prev-page", "href").is_none() || pages.len() == 1);
    seen
}

#[sqlx::test]
async fn keyset_pages_walk_forward_and_back_without_gaps_or_repeats(pool: PgPool) {
    let s = survey(pool).await;
    for sort in [
        "sort=name",
        "sort=name&dir=desc",
        "sort=m.snr",
        "sort=m.snr&dir=desc",
        "sort=m.md&dir=desc",
        "sort=ratings",
        "sort=ra",
        "sort=observation&dir=desc",
    ] {
        let q = format!("project=vast&{sort}");
        let all = names(&s.app, &q).await;
        assert_eq!(all.len(), 8);
        assert_eq!(walk(&s.app, &format!("{q}&per=3")).await, all, "{sort}");
    }
    // With a cone, by separation.
    let q = format!("pos={}&radius=7", enc("188.7 -45.2"));
    let all = names(&s.app, &q).await;
    assert_eq!(all, list("c01 g01 c02 c08"));
    assert_eq!(walk(&s.app, &format!("{q}&per=3")).await, all);
    // A cursor from another sort starts again at the first page.
    let (_, html) = page(&s.app, "project=vast&sort=m.snr&per=3").await;
    let next = select_attr(&html, "#next-page", "href").unwrap();
    let other = next.replace("sort=m.snr", "sort=name");
    let (n, html) = page(&s.app, other.trim_start_matches("/candidates?")).await;
    assert_eq!(n, list("c01 c02 c03"));
    assert!(select_text(&html, "p.note").unwrap().contains("first page"));
}

#[sqlx::test]
async fn columns_default_to_the_projects_and_can_be_chosen(pool: PgPool) {
    let s = survey(pool).await;
    let headers = |html: &scraper::Html| -> Vec<String> {
        let sel = scraper::Selector::parse("#candidate-table thead th").unwrap();
        html.select(&sel)
            .map(|e| {
                e.text()
                    .collect::<String>()
                    .replace(['▲', '▼'], "")
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let (_, html) = page(&s.app, "project=vast").await;
    let h = headers(&html);
    assert!(
        h.contains(&"S/N".to_string()) && h.contains(&"Modulation index".to_string()),
        "{h:?}"
    );
    assert!(!h.contains(&"η".to_string()));
    assert!(
        !h.contains(&"Project".to_string()),
        "one project: no project column"
    );
    let (_, html) = page(&s.app, "project=vast&col=&col=eta").await;
    let h = headers(&html);
    assert!(
        h.contains(&"η".to_string()) && !h.contains(&"S/N".to_string()),
        "{h:?}"
    );
    let row = select_text(&html, "#candidate-table tbody tr").unwrap();
    assert!(row.contains("1.000"), "{row}");
    let (_, html) = page(&s.app, "project=vast&col=").await;
    assert!(!headers(&html).contains(&"S/N".to_string()));
    // Values as the project shows them, the specials spelled out.
    let (_, html) = page(&s.app, "project=vast&name=c02").await;
    let row = select_text(&html, "#candidate-table tbody tr").unwrap();
    assert!(row.contains("7.5") && row.contains("NaN"), "{row}");
    let (_, html) = page(&s.app, "project=vast&name=c03").await;
    assert!(select_text(&html, "#candidate-table tbody tr")
        .unwrap()
        .contains("+∞"));
    // All projects: a project column, no metric columns.
    let (_, html) = page(&s.app, "reset=1").await;
    let h = headers(&html);
    assert!(
        h.contains(&"Project".to_string()) && !h.contains(&"S/N".to_string()),
        "{h:?}"
    );
    // A form drawn for another project does not carry its metrics over.
    let (n, _) = page(
        &s.app,
        "project=gleam&form_project=vast&m.md.min=0.1&col=md&sort=m.md",
    )
    .await;
    assert_eq!(n, list("g01"));
}

#[sqlx::test]
async fn htmx_gets_the_fragment_and_plain_get_the_page(pool: PgPool) {
    let s = survey(pool).await;
    let r = s
        .app
        .client
        .get(s.app.url("/candidates?project=vast&rated=mine"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The URL pushed is the filter's own, without the form's empty fields.
    assert_eq!(
        r.headers()["hx-push-url"],
        "/candidates?project=vast&rated=mine"
    );
    let body = r.text().await.unwrap();
    assert!(!body.contains("<html"), "a fragment");
    let frag = scraper::Html::parse_fragment(&body);
    assert!(select_text(&frag, "#search #candidate-table").is_some());
    assert_eq!(
        select_attr(&frag, "form#filter", "hx-push-url").as_deref(),
        Some("true")
    );
    // The plain page has the same form as a GET form, so it works without script.
    let html = s.app.get_html("/candidates?project=vast").await;
    assert_eq!(
        select_attr(&html, "form#filter", "method").as_deref(),
        Some("get")
    );
    assert_eq!(
        select_attr(&html, "form#filter", "action").as_deref(),
        Some("/candidates")
    );
    assert!(select_text(&html, "title")
        .unwrap()
        .starts_with("Candidates"));
    // The form keeps what was chosen.
    let html = s
        .app
        .get_html("/candidates?project=vast&rated=mine&verdict=real&tag=Pulsar&reviewer=alice&m.snr.min=2")
        .await;
    assert_eq!(
        select_attr(&html, "select[name=rated] option[selected]", "value").unwrap(),
        "mine"
    );
    assert_eq!(
        select_attr(&html, "select[name=verdict] option[selected]", "value").unwrap(),
        "real"
    );
    assert_eq!(
        select_attr(&html, "input[name=tag]", "value").unwrap(),
        "Pulsar"
    );
    assert_eq!(
        select_attr(&html, "select[name=reviewer] option[selected]", "value").unwrap(),
        "alice"
    );
    assert_eq!(
        select_attr(&html, "input[name='m.snr.min']", "value").unwrap(),
        "2"
    );
}

/// The saved views on `/views`: (name, whether it is the default).
async fn saved(app: &TestApp) -> Vec<(String, bool)> {
    let html = app.get_html("/views").await;
    let sel = scraper::Selector::parse("#views tbody tr").unwrap();
    html.select(&sel)
        .map(|tr| {
            let name = tr.value().attr("data-view").unwrap().to_string();
            let default = tr
                .select(&scraper::Selector::parse(".badge").unwrap())
                .next()
                .is_some();
            (name, default)
        })
        .collect()
}

async fn view_id(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM saved_views WHERE name = $1")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn saved_views_can_be_saved_replaced_made_default_and_deleted(pool: PgPool) {
    let s = survey(pool).await;
    let app = &s.app;
    // The page offers to save the current search, with its query.
    let html = app
        .get_html("/candidates?project=vast&m.snr.min=10&sort=m.snr&after=%5B%22x%22%5D")
        .await;
    let query = select_attr(&html, "#save-view input[name=query]", "value").unwrap();
    assert_eq!(
        query, "project=vast&m.snr.min=10&sort=m.snr",
        "no page cursor"
    );
    let r = app
        .post_form(
            "/views",
            &[("name", "Bright"), ("query", &query), ("default", "1")],
        )
        .await;
    assert_eq!(location(&r), format!("/candidates?{query}"));
    assert_eq!(saved(app).await, vec![("Bright".to_string(), true)]);
    // The default opens on a bare visit to the table and the summary …
    let r = app.get("/candidates").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/candidates?{query}"));
    assert_eq!(names(app, &query).await, list("c03 c06"));
    assert_eq!(
        location(&app.get("/ratings").await),
        format!("/ratings?{query}")
    );
    // … and any query (the Clear link) shows everything.
    assert_eq!(names(app, "reset=1").await.len(), 9);
    // The same name in another case replaces the query; a second default
    // takes over from the first.
    let r = app
        .post_form(
            "/views",
            &[("name", "bright"), ("query", "project=vast&rated=none")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .post_form(
            "/views",
            &[("name", "Mine"), ("query", "rated=mine"), ("default", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        saved(app).await,
        vec![("bright".to_string(), false), ("Mine".to_string(), true)]
    );
    assert_eq!(
        location(&app.get("/candidates").await),
        "/candidates?rated=mine"
    );
    let bright = view_id(app, "bright").await;
    let r = app
        .post_form(&format!("/views/{bright}/default"), &[("on", "1")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        saved(app).await,
        vec![("bright".to_string(), true), ("Mine".to_string(), false)]
    );
    assert_eq!(
        location(&app.get("/candidates").await),
        "/candidates?project=vast&rated=none"
    );
    let r = app
        .post_form(&format!("/views/{bright}/default"), &[("on", "0")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/candidates").await.status(), StatusCode::OK);
    // Views are each reviewer's own.
    assert!(saved(&s.bob).await.is_empty());
    assert_eq!(
        s.bob
            .post_form(&format!("/views/{bright}/delete"), &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.bob
            .post_form(&format!("/views/{bright}/default"), &[("on", "1")])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = s
        .bob
        .post_form("/views", &[("name", "Mine"), ("query", "rated=mine")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "names are per reviewer");
    // A nameless or broken view is not saved.
    let r = app
        .post_form("/views", &[("name", "  "), ("query", "rated=mine")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .post_form("/views", &[("name", "Bad"), ("query", "pos=12:61:00+0")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved(app).await.len(), 2);
    let r = app.post_form(&format!("/views/{bright}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved(app).await, vec![("Mine".to_string(), false)]);
    let _ = &s.alice;
}

/// The candidate `/next` leads to.
async fn next_name(app: &TestApp) -> Option<String> {
    let r = app.get("/next").await;
    if r.status() == StatusCode::OK {
        return None;
    }
    let html = app.get_html(&location(&r)).await;
    select_attr(&html, "#candidate", "data-candidate-name")
}

#[sqlx::test]
async fn rate_these_makes_the_queue_follow_the_view(pool: PgPool) {
    let s = survey(pool).await;
    let app = &s.carol;
    // Unrated by anyone, S/N at least 5: c06 (20) and c08 (9); c07 has no S/N.
    let query = "project=vast&rated=none&m.snr.min=5";
    assert_eq!(names(app, query).await, list("c06 c08"));
    let r = app.post_form("/views/rate", &[("query", query)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/next");
    assert_eq!(next_name(app).await.as_deref(), Some("c06"));
    let html = app.get_html("/queue").await;
    assert_eq!(
        select_attr(&html, "input[name=filter]", "value").as_deref(),
        Some(query)
    );
    assert!(select_text(&html, "main").unwrap().contains("2 candidates"));
    rate(app, s.ids["c06"], "real", &[], "").await;
    assert_eq!(next_name(app).await.as_deref(), Some("c08"));
    rate(app, s.ids["c08"], "unsure", &[], "").await;
    assert_eq!(next_name(app).await, None, "the view is done");
    // Saving the queue form without the filter drops it.
    let r = app
        .post_form("/queue", &[("project", "vast"), ("mode", "unrated_by_me")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = app.get_html("/queue").await;
    assert!(select_attr(&html, "input[name=filter]", "value").is_none());
    assert!(next_name(app).await.is_some());
    // A bad view changes nothing.
    let r = app
        .post_form("/views/rate", &[("query", "project=nope")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_ne!(location(&r), "/next");
}

/// The cone's "around" menu lists every kind of extra position on record,
/// a new kind as soon as a candidate brings it.
#[sqlx::test]
async fn the_around_menu_lists_every_position_kind(pool: PgPool) {
    let s = survey(pool).await;
    let kinds = |html: scraper::Html| -> Vec<String> {
        html.select(&scraper::Selector::parse("select[name=around] option").unwrap())
            .map(|o| o.value().attr("value").unwrap_or_default().to_string())
            .collect()
    };
    let before = kinds(s.app.get_html("/candidates").await);
    assert_eq!(before, ["candidate", "deep"]);
    let pipeline = s.app.create_user("pipeline2", Role::Admin).await;
    let api = crate::upload_api::Api {
        app: &s.app,
        token: crate::upload_api::token_for(&s.app, &pipeline).await,
    };
    let (status, body) = api
        .post(
            "/projects/vast/observations/SB1/candidates",
            json!({"candidates": [{"name": "k01", "ra": 10.0, "dec": -40.0,
                "positions": {"forced": {"ra": 10.0, "dec": -40.0}}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = kinds(s.app.get_html("/candidates").await);
    assert_eq!(after, ["candidate", "deep", "forced"]);
}

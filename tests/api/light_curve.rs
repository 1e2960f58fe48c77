//! The decision screen's light curve: zooming in time and the log flux axis
//! (`/candidates/{id}/light-curve`), and its refusals.

use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::json;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{select_attr, select_text, TestApp};
use crate::upload_api::uploader;

/// Candidate `L` with four points ten minutes apart, one below zero, and
/// candidate `N` without a light curve. Returns their ids.
async fn survey(app: &TestApp) -> (i64, i64) {
    let api = uploader(app).await;
    crate::upload_api::vast_project(&api).await;
    let points = json!([
        {"time": "2024-05-01T12:00:00Z", "flux": 2.0, "err": 0.5},
        {"time": "2024-05-01T12:10:00Z", "flux": 40.0, "err": 1.0},
        {"time": "2024-05-01T12:20:00Z", "flux": 300.0, "err": 5.0},
        {"time": "2024-05-01T12:30:00Z", "flux": -1.5, "err": 0.5}
    ]);
    let (s, body) = api
        .post(
            "/projects/vast/observations/SB50230/candidates",
            json!({"candidates": [
                {"name": "L", "ra": 10.0, "dec": -40.0,
                 "light_curve": {"unit": "mJy", "points": points}},
                {"name": "N", "ra": 11.0, "dec": -40.0}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    (
        body["candidates"][0]["id"].as_i64().unwrap(),
        body["candidates"][1]["id"].as_i64().unwrap(),
    )
}

/// The survey, and alice signed in to look at it.
async fn signed_in(pool: PgPool) -> (TestApp, i64, i64) {
    let app = TestApp::spawn(pool).await;
    let (id, without) = survey(&app).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    (app, id, without)
}

fn count(html: &Html, sel: &str) -> usize {
    html.select(&Selector::parse(sel).unwrap()).count()
}

fn ms(html: &Html, attr: &str) -> i64 {
    select_attr(html, "svg.lightcurve", attr)
        .unwrap()
        .parse()
        .unwrap()
}

async fn fragment(app: &TestApp, url: &str) -> Html {
    let r = app.get(url).await;
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    Html::parse_fragment(&r.text().await.unwrap())
}

/// 2024-05-01 12:00 UTC in Unix milliseconds.
const NOON: i64 = 1_714_564_800_000;
const MINUTE: i64 = 60_000;

#[sqlx::test]
async fn the_light_curve_zooms_in_time_and_back(pool: PgPool) {
    let (app, id, _) = signed_in(pool).await;
    let page = app.get_html(&format!("/candidates/{id}")).await;
    assert_eq!(count(&page, "#light-curve g.lc-pt"), 4);
    let whole = (ms(&page, "data-from-ms"), ms(&page, "data-to-ms"));
    assert!(whole.0 < NOON && whole.1 > NOON + 30 * MINUTE, "{whole:?}");
    assert!(
        select_attr(&page, "#light-curve [data-key=']']", "disabled").is_some(),
        "nothing to zoom out of"
    );

    // The middle half holds the 12:10 and 12:20 points.
    let zoom_in = select_attr(&page, "#light-curve [data-key='[']", "hx-get").unwrap();
    let inner = fragment(&app, &zoom_in).await;
    assert_eq!(count(&inner, "g.lc-pt"), 2);
    let (a, b) = (ms(&inner, "data-from-ms"), ms(&inner, "data-to-ms"));
    assert!(
        a > NOON && a < NOON + 10 * MINUTE && b > NOON + 20 * MINUTE && b < NOON + 30 * MINUTE,
        "{a} {b}"
    );
    let times: Vec<i64> = inner
        .select(&Selector::parse("g.lc-pt").unwrap())
        .map(|g| g.value().attr("data-ms").unwrap().parse().unwrap())
        .collect();
    assert_eq!(times, [NOON + 10 * MINUTE, NOON + 20 * MINUTE]);
    assert!(select_attr(&inner, "[data-lc-whole]", "hx-get").is_some());

    // Out again, twice as wide: that covers the whole curve.
    let out = select_attr(&inner, "[data-key=']']", "hx-get").unwrap();
    assert!(!out.contains("from="), "{out}");
    let back = fragment(&app, &out).await;
    assert_eq!(count(&back, "g.lc-pt"), 4);
    assert_eq!((ms(&back, "data-from-ms"), ms(&back, "data-to-ms")), whole);

    // A dragged stretch, as the page's script asks for it.
    let late = fragment(
        &app,
        &format!(
            "/candidates/{id}/light-curve?from={}&to={}",
            NOON + 25 * MINUTE,
            NOON + 35 * MINUTE
        ),
    )
    .await;
    assert_eq!(count(&late, "g.lc-pt"), 1);
    let none = fragment(
        &app,
        &format!(
            "/candidates/{id}/light-curve?from={}&to={}",
            NOON + 2 * MINUTE,
            NOON + 3 * MINUTE
        ),
    )
    .await;
    assert_eq!(count(&none, "g.lc-pt"), 0);
    assert!(select_text(&none, "svg")
        .unwrap()
        .contains("No points in this time range"));
}

#[sqlx::test]
async fn the_light_curve_switches_to_log_flux(pool: PgPool) {
    let (app, id, _) = signed_in(pool).await;
    let page = app.get_html(&format!("/candidates/{id}")).await;
    assert_eq!(
        select_attr(&page, "#light-curve", "data-lc-flux").as_deref(),
        Some("linear")
    );
    let toggle = select_attr(&page, "[data-lc-flux-toggle]", "hx-get").unwrap();
    assert!(toggle.ends_with("flux=log"), "{toggle}");

    let log = fragment(&app, &toggle).await;
    assert_eq!(
        select_attr(&log, "#light-curve", "data-lc-flux").as_deref(),
        Some("log")
    );
    // Powers of ten up the side, the point below zero at the foot.
    let ticks: Vec<String> = log
        .select(&Selector::parse(".lc-ticks-flux text").unwrap())
        .map(|t| t.text().collect())
        .collect();
    for want in ["10", "100"] {
        assert!(ticks.iter().any(|t| t == want), "{ticks:?}");
    }
    assert_eq!(count(&log, "g.lc-pt .lc-below"), 1);
    assert!(select_text(&log, "svg")
        .unwrap()
        .contains("1 point at or below 0"));
    // Zoomed, it keeps the log axis, and back to linear keeps the zoom.
    let zoom_in = select_attr(&log, "[data-key='[']", "hx-get").unwrap();
    assert!(
        zoom_in.contains("flux=log") && zoom_in.contains("from="),
        "{zoom_in}"
    );
    let zoomed = fragment(&app, &zoom_in).await;
    let linear = select_attr(&zoomed, "[data-lc-flux-toggle]", "hx-get").unwrap();
    assert!(
        linear.contains("from=") && !linear.contains("flux="),
        "{linear}"
    );

    // Only the negative point in view: no log axis to draw, and it says so.
    let neg = fragment(
        &app,
        &format!(
            "/candidates/{id}/light-curve?from={}&to={}&flux=log",
            NOON + 25 * MINUTE,
            NOON + 35 * MINUTE
        ),
    )
    .await;
    assert_eq!(
        select_attr(&neg, "#light-curve", "data-lc-flux").as_deref(),
        Some("linear")
    );
    assert!(select_text(&neg, "[data-lc-state]")
        .unwrap()
        .contains("no flux above 0"));
}

#[sqlx::test]
async fn bad_light_curve_views_are_refused_by_name(pool: PgPool) {
    let (app, id, without) = signed_in(pool).await;
    for (query, says) in [
        ("from=2000&to=1000", "end after it starts"),
        ("from=1000&to=1000", "end after it starts"),
        ("from=1000", "both from and to"),
        ("from=1.5&to=3000", "whole number of milliseconds"),
        ("from=0&to=999999999999999999", "years 1 and 9999"),
        ("flux=sqrt", "flux must be"),
    ] {
        let r = app
            .get(&format!("/candidates/{id}/light-curve?{query}"))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let body = r.text().await.unwrap();
        assert!(body.contains(says), "{query}: {body}");
    }
    let r = app.get(&format!("/candidates/{without}/light-curve")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

//! The VOEvent of a candidate the team settled as real, through the real
//! server: rated to a consensus by reviewers, downloaded by an
//! administrator, validated against the IVOA's schema, and its position,
//! time and flux compared with what was uploaded. Refused to reviewers, to
//! anonymous visitors, for a candidate not settled as real, to an
//! administrator the blind rule keeps from the verdicts, and on a site
//! without a VOEvent authority.

use std::collections::HashMap;

use reqwest::{header, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use vetter::config::Config;
use vetter::domain::Role;

use crate::candidates::{rate, reviewer};
use crate::helpers::{location, new_client, select_attr, select_text, TestApp};
use crate::upload_api::uploader;
use crate::voevent_schema::{assert_valid, xpath};

/// A name with every character XML treats specially.
const ODD: &str = r#"J1 <b>&amp; "odd" 'name'"#;

struct Survey {
    /// Signed in as the administrator adam.
    admin: TestApp,
    r1: TestApp,
    r2: TestApp,
    ids: HashMap<&'static str, i64>,
    tags: HashMap<&'static str, i64>,
}

/// Project `vast` (a `peak_flux` metric in mJy/beam; tags Flare star and
/// Noise), observation SB1 started 2024-05-01T12:34:56.789Z, and
/// candidates: ODD just below RA 360 at a southern Dec with a peak flux;
/// `plain` with neither flux nor light curve; `curve` with only a light
/// curve. Nobody has rated anything.
async fn survey(app: TestApp) -> Survey {
    let api = uploader(&app).await;
    let (s, b) = api
        .put(
            "/projects/vast",
            json!({"name": "VAST & <friends>", "metrics": [
                    {"key": "snr", "label": "S/N"},
                    {"key": "peak_flux", "label": "Peak flux", "unit": "mJy/beam"}],
                   "tags": [{"name": "Flare star"}, {"name": "Noise"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api
        .put(
            "/projects/vast/observations/SB1",
            json!({"start_time": "2024-05-01T12:34:56.789Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, body) = api
        .post(
            "/projects/vast/observations/SB1/candidates",
            json!({"candidates": [
                {"name": ODD, "ra": 359.9999996, "dec": -45.123456789,
                 "metrics": {"snr": 8.0, "peak_flux": 12.5}},
                {"name": "plain", "ra": 10.25, "dec": -0.5, "metrics": {"snr": 6.0}},
                {"name": "curve", "ra": 120.0, "dec": 30.0, "metrics": {"peak_flux": "NaN"},
                 "light_curve": {"unit": "Jy", "points": [
                     {"time": "2024-05-01T12:00:00Z", "flux": 1.5},
                     {"time": "2024-05-01T12:10:00Z", "flux": 9.5},
                     {"time": "2024-05-01T12:20:00Z", "flux": 2.0}]}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut ids = HashMap::new();
    for c in body["candidates"].as_array().unwrap() {
        let name = match c["name"].as_str().unwrap() {
            ODD => "odd",
            "plain" => "plain",
            "curve" => "curve",
            other => panic!("{other}"),
        };
        ids.insert(name, c["id"].as_i64().unwrap());
    }
    let mut tags = HashMap::new();
    for name in ["Flare star", "Noise"] {
        let id: i64 = sqlx::query_scalar("SELECT id FROM tags WHERE name = $1")
            .bind(name)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        tags.insert(name, id);
    }
    let adam = app.create_user("adam", Role::Admin).await;
    app.login_as(&adam).await;
    let (r1, _) = reviewer(&app, "rita").await;
    let (r2, _) = reviewer(&app, "rolf").await;
    Survey {
        admin: app,
        r1,
        r2,
        ids,
        tags,
    }
}

fn voevent(id: i64) -> String {
    format!("/candidates/{id}/voevent.xml")
}

/// The error page's message for a download refused as it must be (409).
async fn refused(app: &TestApp, id: i64) -> String {
    let r = app.get(&voevent(id)).await;
    let status = r.status();
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    let message = select_text(&html, ".error-page").unwrap_or_default();
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    message
}

/// The candidate page's VOEvent link, if it shows one.
async fn link(app: &TestApp, id: i64) -> Option<String> {
    let html = app.get_html(&format!("/candidates/{id}")).await;
    select_attr(&html, "#voevent-link", "href")
}

async fn allow_admins(app: &TestApp) {
    sqlx::query("UPDATE projects SET admins_see_all = true")
        .execute(&app.pool)
        .await
        .unwrap();
}

/// Angular distance in degrees between two positions (small angles).
fn separation(a: (f64, f64), b: (f64, f64)) -> f64 {
    let mut dra = (a.0 - b.0).abs() % 360.0;
    if dra > 180.0 {
        dra = 360.0 - dra;
    }
    let dec = ((a.1 + b.1) / 2.0).to_radians();
    ((dra * dec.cos()).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

#[sqlx::test]
async fn an_admin_downloads_a_valid_voevent_once_the_team_settles_a_candidate_as_real(
    pool: PgPool,
) {
    let s = survey(TestApp::spawn(pool).await).await;
    let odd = s.ids["odd"];
    let flare = s.tags["Flare star"];
    let noise = s.tags["Noise"];
    rate(&s.r1, odd, "real", &[flare], "").await;

    // A blind administrator (no rating of it, admins not exempt) is told
    // why, and nothing of where the team stands.
    let message = refused(&s.admin, odd).await;
    assert!(message.contains("keeps ratings blind"), "{message}");
    assert!(!message.contains("open"), "{message}");
    assert_eq!(link(&s.admin, odd).await, None);

    allow_admins(&s.admin).await;
    let message = refused(&s.admin, odd).await;
    assert!(
        message.contains("settled as real; this one is open"),
        "{message}"
    );
    assert_eq!(link(&s.admin, odd).await, None);

    rate(&s.r2, odd, "real", &[flare, noise], "").await;
    let r = s.admin.get(&voevent(odd)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "application/xml; charset=utf-8"
    );
    assert_eq!(
        r.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"J1__b__amp___odd___name_-voevent.xml\""
    );
    let xml = r.bytes().await.unwrap();
    assert_valid(&xml);
    let at = |expr: &str| xpath(&xml, expr);

    // Where and when, against what is stored.
    let (ra, dec): (f64, f64) = sqlx::query_as("SELECT ra, dec FROM candidates WHERE id = $1")
        .bind(odd)
        .fetch_one(&s.admin.pool)
        .await
        .unwrap();
    let c1: f64 = at("//Position2D/Value2/C1").parse().unwrap();
    let c2: f64 = at("//Position2D/Value2/C2").parse().unwrap();
    assert_eq!(
        at("//Position2D/Value2/C1"),
        "0.000000",
        "RA wraps, never 360"
    );
    assert!(separation((c1, c2), (ra, dec)) < 1e-6, "{c1} {c2}");
    assert_eq!(at("//Position2D/Value2/C2"), "-45.123457");
    assert_eq!(at("//Position2D/@unit"), "deg");
    let radius: f64 = at("//Position2D/Error2Radius").parse().unwrap();
    assert!((radius - 10.0 / 3600.0).abs() < 1e-12, "{radius}");
    assert_eq!(
        at("//ObservationLocation/AstroCoords/@coord_system_id"),
        "UTC-ICRS-TOPO"
    );
    assert_eq!(at("//AstroCoordSystem/@id"), "UTC-ICRS-TOPO");
    let start: time::OffsetDateTime =
        sqlx::query_scalar("SELECT start_time FROM observations WHERE external_id = 'SB1'")
            .fetch_one(&s.admin.pool)
            .await
            .unwrap();
    assert_eq!(
        at("//TimeInstant/ISOTime"),
        vetter::domain::voevent::iso_time(start)
    );
    assert_eq!(at("//TimeInstant/ISOTime"), "2024-05-01T12:34:56.789");

    // Who and what, read back unescaped.
    assert_eq!(
        at("/*/@ivorn"),
        format!("ivo://example.org/vetter-test#vast/{odd}")
    );
    assert_eq!(at("/*/@role"), "observation");
    assert_eq!(at("/*/@version"), "2.0");
    assert_eq!(at("//What/Param[@name='candidate']/@value"), ODD);
    assert_eq!(at("//Why/Inference/Name"), ODD);
    assert_eq!(at("//Who/Author/title"), "VAST & <friends>");
    assert_eq!(at("//Param[@name='peak_flux']/@value"), "12.5");
    assert_eq!(at("//Param[@name='peak_flux']/@unit"), "mJy/beam");
    assert_eq!(
        at("//Group[@name='classification']/Param[@name='consensus']/@value"),
        "settled_real"
    );
    assert_eq!(at("//Param[@name='n_real']/@value"), "2");
    assert_eq!(at("//Param[@name='n_not_real']/@value"), "0");
    assert_eq!(
        at("//Group[@name='tags']/Param[@name='Flare star']/@value"),
        "2"
    );
    assert_eq!(at("//Group[@name='tags']/Param[@name='Noise']/@value"), "1");
    assert_eq!(at("//Why/Inference/Concept[2]"), "Flare star");
    assert_eq!(at("count(//Citations)"), "0");
    assert_eq!(
        at("//What/Reference/@uri"),
        format!("http://127.0.0.1/candidates/{odd}")
    );

    // The page offers it to the administrator, beside where the team
    // stands, and never to a reviewer, who sees the same standing.
    assert_eq!(link(&s.admin, odd).await, Some(voevent(odd)));
    assert_eq!(link(&s.r1, odd).await, None);
    let html = s.r1.get_html(&format!("/candidates/{odd}")).await;
    assert!(select_text(&html, "#standing")
        .unwrap()
        .ends_with("settled: real"));

    // Reviewers and anonymous visitors are refused.
    assert_eq!(
        s.r1.get(&voevent(odd)).await.status(),
        StatusCode::FORBIDDEN
    );
    let anon = new_client()
        .get(s.admin.url(&voevent(odd)))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::SEE_OTHER);
    assert!(location(&anon).starts_with("/login"));
}

#[sqlx::test]
async fn a_candidate_settled_not_real_is_refused_and_a_light_curve_gives_the_flux(pool: PgPool) {
    let s = survey(TestApp::spawn(pool).await).await;
    allow_admins(&s.admin).await;
    let (plain, curve) = (s.ids["plain"], s.ids["curve"]);
    for who in [&s.r1, &s.r2] {
        rate(who, plain, "not_real", &[], "").await;
        rate(who, curve, "real", &[], "").await;
    }
    let message = refused(&s.admin, plain).await;
    assert!(
        message.contains("this one is settled: not real"),
        "{message}"
    );
    assert_eq!(link(&s.admin, plain).await, None);

    // A disputed candidate is no more settled.
    rate(&s.admin, plain, "real", &[], "").await;
    rate(&s.r1, plain, "real", &[], "").await;
    let message = refused(&s.admin, plain).await;
    assert!(message.contains("disputed"), "{message}");

    // The peak-flux metric is NaN: the light curve's brightest point
    // stands in, in the light curve's unit; no tags, no model.
    let r = s.admin.get(&voevent(curve)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.bytes().await.unwrap();
    assert_valid(&xml);
    assert_eq!(xpath(&xml, "//Param[@name='peak_flux']/@value"), "9.5");
    assert_eq!(xpath(&xml, "//Param[@name='peak_flux']/@unit"), "Jy");
    assert!(
        xpath(&xml, "//Param[@name='peak_flux']/Description").contains("2024-05-01T12:10:00.000")
    );
    assert_eq!(xpath(&xml, "count(//Group[@name='tags'])"), "0");
    assert_eq!(xpath(&xml, "count(//Inference/@probability)"), "0");
    assert_eq!(xpath(&xml, "//Position2D/Value2/C2"), "30.000000");
}

#[sqlx::test]
async fn without_an_authority_no_voevent_is_offered_or_made(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c: &mut Config| c.voevent = None).await;
    let s = survey(app).await;
    allow_admins(&s.admin).await;
    let odd = s.ids["odd"];
    rate(&s.r1, odd, "real", &[], "").await;
    rate(&s.r2, odd, "real", &[], "").await;
    assert_eq!(link(&s.admin, odd).await, None);
    let message = refused(&s.admin, odd).await;
    assert!(message.contains("VETTER_VOEVENT_AUTHORITY"), "{message}");
}

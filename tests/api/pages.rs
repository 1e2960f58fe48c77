//! Cross-cutting page behaviour: security headers, error pages.

use reqwest::StatusCode;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{select_text, TestApp};

#[sqlx::test]
async fn every_response_carries_the_security_headers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for path in ["/login", "/healthz", "/no-such-page", "/"] {
        let r = app.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        assert!(h.contains_key("x-request-id"), "{path}");
    }
}

#[sqlx::test]
async fn signed_in_pages_and_exports_are_not_cached(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    for path in [
        "/",
        "/account",
        "/candidates",
        "/candidates.csv",
        "/candidates.vot",
        "/ratings",
        "/queue",
        "/next",
        "/login",
    ] {
        let r = app.get(path).await;
        assert_eq!(
            r.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{path}"
        );
    }
    // Fingerprinted assets stay cacheable.
    let css = app
        .get(&vetter::web::plumbing::assets::url("app.css"))
        .await;
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
}

#[sqlx::test]
async fn an_unknown_page_gets_the_friendly_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app.get("/no-such-page").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert_eq!(select_text(&html, "h1").as_deref(), Some("Not found"));
}

#[sqlx::test]
async fn an_internal_failure_gets_the_friendly_500_without_details(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    // Sabotage: the column the user lookup needs disappears.
    sqlx::query("ALTER TABLE users DROP COLUMN session_epoch")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app.get("/account").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = r.text().await.unwrap();
    let html = scraper::Html::parse_document(&body);
    assert_eq!(
        select_text(&html, "h1").as_deref(),
        Some("Something went wrong")
    );
    assert!(
        !body.contains("session_epoch"),
        "internal details must not leak"
    );
}

#[sqlx::test]
async fn a_staging_site_shows_its_banner(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.staging = true).await;
    let html = app.get_html("/login").await;
    assert!(select_text(&html, ".staging-banner")
        .unwrap()
        .contains("Staging"));
    let plain = TestApp::spawn(app.pool.clone()).await;
    assert!(select_text(&plain.get_html("/login").await, ".staging-banner").is_none());
}

#[sqlx::test]
async fn staging_shows_its_release_notes_read_at_request_time(pool: PgPool) {
    let notes = std::env::temp_dir().join(format!("vetter-notes-{}.html", std::process::id()));
    std::fs::write(&notes, "<p>Release <em>0.2</em> under review</p>").unwrap();
    let path = notes.clone();
    let app = TestApp::spawn_with(pool, move |c| {
        c.staging = true;
        c.staging_details = path;
    })
    .await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    let html = app.get_html("/").await;
    assert!(select_text(&html, "#release-notes")
        .unwrap()
        .contains("Release 0.2 under review"));
    assert!(select_text(&html, ".staging-mark").is_some());
    // Edited without a restart.
    std::fs::write(&notes, "<p>Second release</p>").unwrap();
    let html = app.get_html("/").await;
    assert!(select_text(&html, "#release-notes")
        .unwrap()
        .contains("Second release"));
    assert!(select_text(&html, "footer")
        .unwrap()
        .contains(vetter::VERSION));
    let _ = std::fs::remove_file(&notes);
    // Production never shows notes or the marker.
    let prod = TestApp::spawn(app.pool.clone()).await;
    prod.login_as(&alice).await;
    let html = prod.get_html("/").await;
    assert!(select_text(&html, "#release-notes").is_none());
    assert!(select_text(&html, ".staging-mark").is_none());
}

//! What a staging reviewer sees: the marker, the banner and the release
//! notes on the home page. The screenshot is kept for people to look at.

use sqlx::PgPool;
use vetter::domain::Role;

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp};

#[sqlx::test]
async fn the_staging_home_page_shows_its_banner_and_release_notes(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let notes =
        std::env::temp_dir().join(format!("vetter-staging-notes-{}.html", std::process::id()));
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/staging-details.example.html"),
        &notes,
    )
    .unwrap();
    let path = notes.clone();
    let app = TestApp::spawn_with(pool, move |c| {
        c.staging = true;
        c.staging_details = path;
    })
    .await;
    app.upload_demo(3).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;
    let banner = s.find(".staging-banner").await;
    assert!(s.text(&banner).await.contains("Staging"));
    let mark = s.find(".staging-mark").await;
    assert_eq!(s.text(&mark).await, "[STAGING]");
    let notes_el = s.find("#release-notes").await;
    assert!(s.text(&notes_el).await.contains("Release under review"));
    let shot = screenshot_path("staging-home.png");
    s.screenshot(&shot).await;
    println!("staging screenshot: {}", shot.display());
    let _ = std::fs::remove_file(&notes);
    s.close().await;
}

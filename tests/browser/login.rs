use sqlx::PgPool;
use vetter::domain::Role;

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp};

#[sqlx::test]
async fn login_page_works_in_a_real_browser(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let (_driver, s) = browser().await;

    // Anonymous: the home page sends the browser to the login form.
    s.goto(&app.url("/")).await;
    assert!(
        s.current_path().await.starts_with("/login"),
        "anonymous / should land on /login, not {}",
        s.current_path().await
    );
    let shot = screenshot_path("login.png");
    s.screenshot(&shot).await;
    println!("login screenshot: {}", shot.display());

    login(&s, &app, &alice).await;
    assert_eq!(s.current_path().await, "/");
    let who = s.find(".who a").await;
    assert_eq!(s.text(&who).await, "alice");
    s.close().await;
}

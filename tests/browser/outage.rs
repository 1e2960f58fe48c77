//! What a reviewer sees when the database or the server stops answering in
//! the middle of rating: a message that says nothing was saved, and the
//! candidate still on screen (never a blank or half-swapped page).

use std::time::Duration;

use sqlx::PgPool;
use vetter::domain::Role;

use crate::harness::{browser, browser_lock, login, TestApp};
use crate::webdriver::keys;

const WAIT: Duration = Duration::from_secs(10);

const SHOWN_JS: &str =
    "return (document.querySelector('main#main #candidate h1') || {}).textContent || '';";

const TOASTS_JS: &str =
    "return Array.from(document.querySelectorAll('#toasts .toast-error')).map(t => t.textContent);";

#[sqlx::test]
async fn a_rating_during_an_outage_shows_a_message_and_keeps_the_candidate(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let mut app = TestApp::spawn(pool).await;
    let demo = app.upload_demo(3).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    // The test's own view of the database, apart from the app's pool.
    let check = PgPool::connect_with(app.pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;
    s.goto(&app.url("/next")).await;
    s.wait_for(
        "c01 on /next",
        "return !!document.querySelector('main#main #candidate') && document.querySelector('main#main #candidate h1').textContent.includes('c01');",
        WAIT,
    )
    .await;

    // The database goes away (the pool the app's pages use is closed under
    // it): the key that rates gets the server's 503 toast, and the page
    // stays as it was.
    s.wait_for("c01 painted", crate::harness::READY_TO_RATE_JS, WAIT)
        .await;
    app.server_pools.web.close().await;
    s.press("n").await;
    s.wait_for(
        "an error toast after rating with the database gone",
        "return document.querySelectorAll('#toasts .toast-error').length > 0;",
        WAIT,
    )
    .await;
    let toasts = s.script(TOASTS_JS, vec![]).await;
    let text = toasts.to_string();
    assert!(text.contains("Nothing was saved"), "{text}");
    let shown = s.script(SHOWN_JS, vec![]).await;
    assert!(shown.as_str().unwrap_or("").contains("c01"), "{shown}");
    let ratings: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings")
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(ratings, 0);

    // The server itself goes away (as behind nginx when the app is down):
    // htmx cannot send at all, and the reviewer is told so.
    s.press(keys::ESCAPE).await;
    app.stop_server();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.press("y").await;
    s.wait_for(
        "a could-not-reach toast with the server gone",
        "return Array.from(document.querySelectorAll('#toasts .toast-error')).some(t => t.textContent.includes('Could not reach the server'));",
        WAIT,
    )
    .await;
    let shown = s.script(SHOWN_JS, vec![]).await;
    assert!(shown.as_str().unwrap_or("").contains("c01"), "{shown}");
    let c01 = demo.ids["c01"];
    let ratings: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings WHERE candidate_id = $1")
        .bind(c01)
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(ratings, 0);
    check.close().await;
    s.close().await;
}

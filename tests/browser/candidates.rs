//! The candidate table in a browser: htmx swaps the results in place and
//! pushes the URL (the page is not reloaded), paging follows the cursor, a
//! bad position is a message beside the box, and the ratings summary draws
//! its charts. Screenshots: `candidates-table.png`, `ratings-summary.png`.

use std::time::Duration;

use sqlx::PgPool;
use vetter::domain::Role;

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp};
use crate::webdriver::{keys, Session};

async fn row_names(s: &Session) -> Vec<String> {
    let cells = s
        .find_all("#candidate-table tbody tr td:first-child a")
        .await;
    let mut out = Vec::new();
    for c in &cells {
        out.push(s.text(c).await);
    }
    out
}

const NO_RELOAD: &str = "return window.__sameDocument === true;";

#[sqlx::test]
async fn the_table_updates_in_place_and_the_url_follows(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool).await;
    app.upload_demo(25).await;
    let user = app.create_user("rita", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &user).await;
    s.set_viewport(1400, 1000).await;

    s.goto(&app.url("/candidates?project=demo&per=10")).await;
    assert_eq!(row_names(&s).await.len(), 10);
    // Marks this document: a full page load would lose the mark.
    s.script("window.__sameDocument = true; return true;", vec![])
        .await;

    // Type a name fragment and press Enter: htmx fetches and swaps.
    let name = s.find("input[name=name]").await;
    s.type_into(&name, "1").await;
    s.press(keys::ENTER).await;
    s.wait_for(
        "the filtered rows",
        "return location.search.includes('name=1') && document.querySelectorAll('#candidate-table tbody tr').length === 10;",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        s.script(NO_RELOAD, vec![]).await,
        serde_json::json!(true),
        "swapped in place"
    );
    // The pushed URL is the filter's, without the form's empty fields.
    assert_eq!(
        s.script("return location.search;", vec![]).await,
        serde_json::json!("?project=demo&name=1&per=10&col=snr")
    );
    let names = row_names(&s).await;
    // c01, c10–c19 and c21 have a 1: ten on this page, two on the next.
    assert_eq!(names.first().map(String::as_str), Some("c01"));
    assert!(names.iter().all(|n| n.contains('1')), "{names:?}");

    // The next page carries the cursor in the URL.
    let next = s.find("#next-page").await;
    s.click(&next).await;
    s.wait_for(
        "the second page",
        "return location.search.includes('after=') && !!document.querySelector('#prev-page');",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        row_names(&s).await,
        vec!["c19".to_string(), "c21".to_string()]
    );
    assert_eq!(s.script(NO_RELOAD, vec![]).await, serde_json::json!(true));

    // A position the parser cannot read: a message beside the box, no rows.
    let pos = s.find("input[name=pos]").await;
    s.type_into(&pos, "12:61:00 -45:00:00").await;
    s.press(keys::ENTER).await;
    s.wait_for(
        "the message on the position",
        "return !!document.querySelector('#msg-pos');",
        Duration::from_secs(10),
    )
    .await;
    let msg = s.find("#msg-pos").await;
    assert!(s.text(&msg).await.contains("minutes must be below 60"));
    assert!(s.try_find("#candidate-table").await.is_none());

    // A shared URL opens the same view in a fresh load.
    s.goto(
        &app.url(
            "/candidates?project=demo&m.snr.min=20&sort=m.snr&dir=desc&pos=10.1+-30&radius=30",
        ),
    )
    .await;
    let names = row_names(&s).await;
    assert_eq!(names.first().map(String::as_str), Some("c25"), "{names:?}");
    let shot = screenshot_path("candidates-table.png");
    s.screenshot(&shot).await;
    println!("candidates screenshot: {}", shot.display());

    s.goto(&app.url("/ratings?project=demo")).await;
    assert!(s.try_find("#per-reviewer svg.bar-chart").await.is_some());
    let shot = screenshot_path("ratings-summary.png");
    s.screenshot(&shot).await;
    println!("ratings screenshot: {}", shot.display());
}

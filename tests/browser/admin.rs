//! An admin makes a reviewer, who signs in with the temporary password, is
//! made to choose their own, and reaches the rating page: all in a browser.

use std::time::Duration;

use sqlx::PgPool;
use vetter::domain::Role;

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp};
use crate::webdriver::keys;

#[sqlx::test]
async fn an_admin_creates_a_reviewer_who_changes_the_password_and_rates(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool).await;
    app.upload_demo(3).await;
    let admin = app.create_user("boss", Role::Admin).await;
    let (_driver, s) = browser().await;

    login(&s, &app, &admin).await;
    s.goto(&app.url("/admin/users")).await;
    let name = s
        .find("form[action='/admin/users'] input[name=username]")
        .await;
    s.type_into(&name, "newbie").await;
    let create = s
        .find("form[action='/admin/users'] button[type=submit]")
        .await;
    s.click(&create).await;
    s.wait_for(
        "the temporary password",
        "return !!document.querySelector('#temporary-password .temp-password');",
        Duration::from_secs(10),
    )
    .await;
    let field = s.find("#temporary-password .temp-password").await;
    let temporary = s
        .property(&field, "value")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(temporary.len() >= 10, "{temporary:?}");
    let shot = screenshot_path("admin-new-user.png");
    s.screenshot(&shot).await;
    println!("admin screenshot: {}", shot.display());

    // Sign out, then in as the new reviewer.
    let out = s.find("form[action='/logout'] button").await;
    s.click(&out).await;
    s.wait_for(
        "the login page",
        "return location.pathname === '/login';",
        Duration::from_secs(10),
    )
    .await;
    s.goto(&app.url("/login")).await;
    let u = s.find("input[name=username]").await;
    s.type_into(&u, "newbie").await;
    let p = s.find("input[name=password]").await;
    s.type_into(&p, &temporary).await;
    s.press(keys::ENTER).await;
    // Anywhere they go, they are held on the account page until they choose a password.
    s.wait_for(
        "the account page",
        "return location.pathname === '/account';",
        Duration::from_secs(10),
    )
    .await;
    s.goto(&app.url("/next")).await;
    assert_eq!(s.current_path().await, "/account");
    let mine = "my-own-password-42";
    for (field, value) in [
        ("current", temporary.as_str()),
        ("new", mine),
        ("confirm", mine),
    ] {
        let el = s
            .find(&format!(
                "form[action='/account/password'] input[name={field}]"
            ))
            .await;
        s.type_into(&el, value).await;
    }
    let change = s
        .find("form[action='/account/password'] button[type=submit]")
        .await;
    s.click(&change).await;
    s.wait_for(
        "the password-changed message",
        "return !!document.querySelector('.toast-success');",
        Duration::from_secs(10),
    )
    .await;

    // Now the queue opens, and a key rates.
    s.goto(&app.url("/next")).await;
    s.wait_for(
        "a candidate, painted",
        crate::harness::READY_TO_RATE_JS,
        Duration::from_secs(10),
    )
    .await;
    let first = s.find("#candidate").await;
    let first_name = s.attribute(&first, "data-candidate-name").await.unwrap();
    s.press("y").await;
    s.wait_for(
        "the next candidate",
        &format!("const c = document.querySelector('#candidate'); return !!c && c.dataset.candidateName !== '{first_name}';"),
        Duration::from_secs(10),
    )
    .await;
    let rated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ratings r JOIN users u ON u.id = r.user_id WHERE u.username = 'newbie' AND r.verdict = 'real'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(rated, 1);
    s.close().await;
}

use reqwest::StatusCode;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{assert_redirect_to, new_client, select_text, TestApp};

async fn change(app: &TestApp, current: &str, new: &str, confirm: &str) -> reqwest::Response {
    let token = app.csrf_token("/account").await;
    app.client
        .post(app.url("/account/password"))
        .form(&[
            ("current", current),
            ("new", new),
            ("confirm", confirm),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn changing_the_password_keeps_this_session_and_ends_the_others(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    // A second browser, signed in as the same user.
    let other = TestApp::spawn(app.pool.clone()).await;
    other.login_as(&alice).await;
    assert_eq!(other.get("/").await.status(), StatusCode::OK);

    let r = change(
        &app,
        &alice.password,
        "my-new-password-1",
        "my-new-password-1",
    )
    .await;
    assert_redirect_to(&r, "/account");
    let html = app.get_html("/account").await;
    assert!(select_text(&html, ".toast-success")
        .unwrap()
        .contains("Password changed"));
    assert_eq!(
        app.get("/").await.status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        other.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "the other session ends"
    );

    // The old password no longer works; the new one does.
    let fresh = TestApp::spawn(app.pool.clone()).await;
    assert_eq!(
        fresh.post_login("alice", &alice.password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_redirect_to(&fresh.post_login("alice", "my-new-password-1").await, "/");
}

#[sqlx::test]
async fn bad_password_changes_say_why_and_change_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    let before: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let cases = [
        (
            "wrong-current-pw",
            "my-new-password-1",
            "my-new-password-1",
            "current password is wrong",
        ),
        (
            alice.password.as_str(),
            "my-new-password-1",
            "my-new-password-2",
            "differ",
        ),
        (
            alice.password.as_str(),
            "short",
            "short",
            "at least 10 characters",
        ),
    ];
    for (current, new, confirm, expected) in cases {
        let r = change(&app, current, new, confirm).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{expected}");
        let html = scraper::Html::parse_document(&r.text().await.unwrap());
        let msg = select_text(&html, ".form-error[role=alert]").unwrap();
        assert!(msg.contains(expected), "{msg}");
    }
    let after: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[sqlx::test]
async fn a_temporary_password_must_be_changed_before_anything_else(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    sqlx::query("UPDATE users SET must_change_password = true")
        .execute(&app.pool)
        .await
        .unwrap();
    app.login_as(&alice).await;
    assert_redirect_to(&app.get("/").await, "/account");
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    let r = change(
        &app,
        &alice.password,
        "my-own-password-1",
        "my-own-password-1",
    )
    .await;
    assert_redirect_to(&r, "/account");
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    let _ = new_client();
}

#[sqlx::test]
async fn a_token_made_on_the_account_page_is_shown_once_works_and_can_be_revoked(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Admin).await;
    app.login_as(&alice).await;
    let csrf = app.csrf_token("/account").await;
    // htmx asks for the section only.
    let r = app
        .client
        .post(app.url("/account/tokens"))
        .header("HX-Request", "true")
        .form(&[
            ("name", "vast pipeline"),
            ("upload", "on"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(!body.contains("<html"), "a fragment, not a page");
    let html = scraper::Html::parse_fragment(&body);
    let token = crate::helpers::select_attr(&html, "input.token-value", "value").unwrap();
    assert!(token.starts_with("vet_"));
    assert!(select_text(&html, "table.tokens")
        .unwrap()
        .contains("vast pipeline"));

    // Shown once: the page does not show it again, only its first characters.
    let page = app.get("/account").await.text().await.unwrap();
    assert!(!page.contains(&token));
    assert!(page.contains(&token[..12]));

    let whoami = |t: String| {
        let c = app.client.clone();
        let u = app.url("/api/v1/whoami");
        async move { c.get(u).bearer_auth(t).send().await.unwrap().status() }
    };
    assert_eq!(whoami(token.clone()).await, StatusCode::OK);

    // Without JavaScript the revoke form posts and redirects back.
    let id: i64 = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = app
        .client
        .post(app.url(&format!("/account/tokens/{id}/revoke")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&r, "/account");
    assert_eq!(whoami(token).await, StatusCode::UNAUTHORIZED);
    let html = app.get_html("/account").await;
    assert!(select_text(&html, ".toast-success")
        .unwrap()
        .contains("revoked"));
    assert!(select_text(&html, "tr.revoked").is_some());
}

#[sqlx::test]
async fn nobody_can_revoke_someone_elses_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let bob = app.create_user("bob", Role::Reviewer).await;
    let (_, bobs) = vetter::db::api_tokens::create(
        &app.pool,
        bob.id,
        "bob's",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await
    .unwrap();
    app.login_as(&alice).await;
    let csrf = app.csrf_token("/account").await;
    let r = app
        .client
        .post(app.url(&format!("/account/tokens/{bobs}/revoke")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&r, "/account");
    let revoked: Option<time::OffsetDateTime> =
        sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE id = $1")
            .bind(bobs)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(revoked.is_none());
    let html = app.get_html("/account").await;
    assert!(select_text(&html, ".toast-error")
        .unwrap()
        .contains("No such token"));
}

#[sqlx::test]
async fn a_token_needs_a_name(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    let csrf = app.csrf_token("/account").await;
    let r = app
        .client
        .post(app.url("/account/tokens"))
        .form(&[("name", "   "), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert!(select_text(&html, "#tokens .form-error")
        .unwrap()
        .contains("name"));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

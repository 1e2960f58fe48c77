use reqwest::StatusCode;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::TestApp;

async fn signed_in(pool: PgPool) -> (TestApp, String) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    (app, alice.password)
}

fn password_form<'a>(current: &'a str, token: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("current", current),
        ("new", "a-brand-new-password"),
        ("confirm", "a-brand-new-password"),
    ];
    if let Some(t) = token {
        f.push(("csrf_token", t));
    }
    f
}

#[sqlx::test]
async fn a_form_post_without_a_token_is_refused_and_changes_nothing(pool: PgPool) {
    let (app, pw) = signed_in(pool).await;
    let before: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = app
        .client
        .post(app.url("/account/password"))
        .form(&password_form(&pw, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Form expired"));
    let after: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[sqlx::test]
async fn a_wrong_token_is_refused(pool: PgPool) {
    let (app, pw) = signed_in(pool).await;
    let bad = "0".repeat(64);
    let r = app
        .client
        .post(app.url("/account/password"))
        .form(&password_form(&pw, Some(&bad)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[sqlx::test]
async fn the_token_is_accepted_in_the_form_or_in_the_htmx_header(pool: PgPool) {
    let (app, pw) = signed_in(pool).await;
    let token = app.csrf_token("/account").await;
    let r = app
        .client
        .post(app.url("/account/password"))
        .form(&password_form(&pw, Some(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let token = app.csrf_token("/account").await;
    let r = app
        .client
        .post(app.url("/account/password"))
        .header("X-CSRF-Token", &token)
        .form(&[
            ("current", "a-brand-new-password"),
            ("new", "another-new-password"),
            ("confirm", "another-new-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test]
async fn a_cross_origin_post_is_refused_even_with_the_token(pool: PgPool) {
    let (app, pw) = signed_in(pool).await;
    let token = app.csrf_token("/account").await;
    for origin in ["https://evil.example", "null"] {
        let r = app
            .client
            .post(app.url("/account/password"))
            .header("Origin", origin)
            .form(&password_form(&pw, Some(&token)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    let r = app
        .client
        .post(app.url("/account/password"))
        .header("Origin", &app.address)
        .form(&password_form(&pw, Some(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "our own origin is fine");
}

#[sqlx::test]
async fn login_itself_needs_the_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.get("/login").await;
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("username", "alice"), ("password", alice.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[sqlx::test]
async fn an_htmx_request_refused_for_csrf_gets_a_toast_not_a_page(pool: PgPool) {
    let (app, pw) = signed_in(pool).await;
    let r = app
        .client
        .post(app.url("/account/password"))
        .header("HX-Request", "true")
        .form(&password_form(&pw, None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["hx-retarget"], "#toasts");
    let body = r.text().await.unwrap();
    assert!(body.contains("class=\"toast toast-error\""), "{body}");
    assert!(!body.contains("<html"), "{body}");
}

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::PgPool;
use vetter::config::LoginThrottle;
use vetter::domain::Role;

use crate::helpers::{assert_redirect_to, location, select_text, TestApp};

#[sqlx::test]
async fn the_login_page_renders_a_form_with_a_csrf_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app.get("/login").await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = cookie_named(&r, "vetter_csrf").expect("a pre-session CSRF cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    let token = app.csrf_token("/login").await;
    assert_eq!(token.len(), 64);
    assert!(
        cookie.starts_with(&format!("vetter_csrf={token}")),
        "{cookie}"
    );
}

#[sqlx::test]
async fn looking_at_the_login_page_stores_no_session(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for _ in 0..5 {
        let r = app.get("/login").await;
        assert!(cookie_named(&r, "vetter_session").is_none());
        // A failed sign-in stores none either.
        app.post_login("nobody", "wrong-password").await;
    }
    assert_eq!(session_rows(&app).await, 0);
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    assert_eq!(session_rows(&app).await, 1);
}

async fn session_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn cookie_named(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

#[sqlx::test]
async fn a_login_form_without_its_cookie_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let token = app.csrf_token("/login").await;
    // Another browser (no cookie) with a token copied from the page.
    let r = crate::helpers::new_client()
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", alice.password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[sqlx::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https(pool: PgPool) {
    let app =
        TestApp::spawn_with(pool, |c| c.public_url = "https://vetter.example.org".into()).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let r = app.get("/login").await;
    let cookie = cookie_named(&r, "vetter_csrf").unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    // The client would not send a Secure cookie over http; hand it over.
    let token = app.csrf_token("/login").await;
    let r = crate::helpers::new_client()
        .post(app.url("/login"))
        .header("cookie", format!("vetter_csrf={token}"))
        .form(&[
            ("username", "alice"),
            ("password", alice.password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = cookie_named(&r, "vetter_session").unwrap();
    assert!(session.contains("Secure"), "{session}");
}

#[sqlx::test]
async fn a_good_login_redirects_home_and_shows_the_user(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let r = app.post_login("alice", &alice.password).await;
    assert_redirect_to(&r, "/");
    let html = app.get_html("/").await;
    assert_eq!(select_text(&html, ".who a").as_deref(), Some("alice"));
    let last: Option<time::OffsetDateTime> =
        sqlx::query_scalar("SELECT last_login_at FROM users WHERE id = $1")
            .bind(alice.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(last.is_some());
}

#[sqlx::test]
async fn usernames_are_matched_without_regard_to_case(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("Alice", Role::Reviewer).await;
    assert_redirect_to(&app.post_login("aLiCe", &alice.password).await, "/");
}

#[sqlx::test]
async fn a_wrong_password_or_unknown_user_gets_the_same_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.create_user("alice", Role::Reviewer).await;
    let wrong = app.post_login("alice", "not-her-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_text = wrong.text().await.unwrap();
    let unknown = app.post_login("nobody", "whatever-password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown_text = unknown.text().await.unwrap();
    let msg = |t: &str| select_text(&scraper::Html::parse_document(t), ".form-error");
    assert_eq!(msg(&wrong_text), msg(&unknown_text));
    assert!(msg(&wrong_text)
        .unwrap()
        .contains("Wrong username or password"));
    // Still anonymous.
    assert_eq!(app.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test]
async fn a_malformed_username_is_a_failed_login_not_an_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app.post_login("<script>alert(1)</script>", "x").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("<script>alert(1)"),
        "the username must come back escaped"
    );
}

#[sqlx::test]
async fn a_deactivated_user_cannot_log_in(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let bob = app.create_user("bob", Role::Reviewer).await;
    vetter::db::users::set_active(&app.pool, bob.id, false)
        .await
        .unwrap();
    let r = app.post_login("bob", &bob.password).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test]
async fn the_session_id_changes_at_login(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let first = app.post_login("alice", &alice.password).await;
    let id_first = session_id(&first);
    // Signing in again from the same browser (as after a planted session
    // id) starts a new session: the id held before is worth nothing.
    app.post_form("/logout", &[]).await;
    let again = app.post_login("alice", &alice.password).await;
    assert_ne!(session_id(&again), id_first);
    let planted = crate::helpers::new_client()
        .get(app.url("/"))
        .header("cookie", format!("vetter_session={id_first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), StatusCode::SEE_OTHER);
}

fn session_id(r: &reqwest::Response) -> String {
    cookie_named(r, "vetter_session")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("vetter_session=")
        .to_string()
}

#[sqlx::test]
async fn next_after_login_accepts_local_paths_only(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let cases = [
        ("/account", "/account"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ];
    for (next, expected) in cases {
        let client = crate::helpers::new_client();
        let token = {
            let body = client
                .get(app.url("/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            crate::helpers::select_attr(
                &scraper::Html::parse_document(&body),
                "input[name=csrf_token]",
                "value",
            )
            .unwrap()
        };
        let r = client
            .post(app.url("/login"))
            .form(&[
                ("username", "alice"),
                ("password", alice.password.as_str()),
                ("next", next),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), expected, "next={next}");
    }
}

#[sqlx::test]
async fn the_login_page_keeps_a_local_next_in_its_form(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let html = app.get_html("/login?next=/account").await;
    assert_eq!(
        crate::helpers::select_attr(&html, "input[name=next]", "value").as_deref(),
        Some("/account")
    );
    let html = app.get_html("/login?next=https://evil.example").await;
    assert_eq!(
        crate::helpers::select_attr(&html, "input[name=next]", "value").as_deref(),
        Some("/")
    );
}

#[sqlx::test]
async fn repeated_failures_slow_down_then_refuse_even_the_right_password(pool: PgPool) {
    let policy = LoginThrottle {
        window: Duration::from_secs(600),
        slow_after: 2,
        refuse_after: 4,
        address_refuse_after: 6,
        step: Duration::from_millis(400),
        // The database's count is what this test ages; nothing from memory.
        remember_refusal: Duration::ZERO,
    };
    let app = TestApp::spawn_with(pool, |c| c.login_throttle = policy).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    for _ in 0..2 {
        assert_eq!(
            app.post_login("alice", "bad-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Third and fourth attempts are delayed.
    let t = Instant::now();
    assert_eq!(
        app.post_login("alice", "bad-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        app.post_login("alice", "bad-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // From the refusal threshold on, even the right password is refused.
    let r = app.post_login("alice", &alice.password).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    // Another user from the same address is not locked by alice's pair...
    let bob = app.create_user("bob", Role::Reviewer).await;
    for _ in 0..2 {
        assert_eq!(
            app.post_login("bob", "bad-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // ...until the address as a whole has failed too often.
    assert_eq!(
        app.post_login("bob", &bob.password).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Once the failures age out of the window, the right password works again.
    sqlx::query("UPDATE login_failures SET failed_at = failed_at - interval '1 hour'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_redirect_to(&app.post_login("alice", &alice.password).await, "/");
}

/// A sign-in from `address` (the app trusts X-Real-IP, as behind nginx) in
/// a browser of its own.
async fn login_from(app: &TestApp, address: &str, username: &str, password: &str) -> StatusCode {
    let client = crate::helpers::new_client();
    let token = crate::helpers::login_token(&client, app).await;
    client
        .post(app.url("/login"))
        .header("x-real-ip", address)
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[sqlx::test]
async fn two_hundred_parallel_guesses_get_no_further_than_the_limit(pool: PgPool) {
    let policy = LoginThrottle {
        slow_after: 1000,
        ..LoginThrottle::default()
    };
    let app = TestApp::spawn_with(pool, |c| {
        c.login_throttle = policy;
        c.behind_proxy = true;
    })
    .await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let app = std::sync::Arc::new(app);
    let mut guesses = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        // The last guess is the right password: it must not get through.
        let password = if i == 199 {
            alice.password.clone()
        } else {
            format!("guess-number-{i}")
        };
        guesses.push(tokio::spawn(async move {
            login_from(&app, "203.0.113.7", "alice", &password).await
        }));
    }
    let mut checked = 0;
    for g in guesses {
        match g.await.unwrap() {
            StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected answer {other}"),
        }
    }
    assert!(
        checked <= policy.refuse_after,
        "{checked} guesses reached the password check (limit {})",
        policy.refuse_after
    );
    assert!(checked > 0);
}

#[sqlx::test]
async fn a_user_attacked_from_one_address_still_signs_in_from_another(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.login_throttle.slow_after = 1000;
        c.behind_proxy = true;
    })
    .await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    for i in 0..15 {
        login_from(&app, "198.51.100.66", "alice", &format!("guess-{i}")).await;
    }
    assert_eq!(
        login_from(&app, "198.51.100.66", "alice", &alice.password).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&app, "192.0.2.10", "alice", &alice.password).await,
        StatusCode::SEE_OTHER
    );
    // Colleagues behind the attacker's address (a shared NAT) are not
    // locked out by one account's failures either.
    let bob = app.create_user("bob", Role::Reviewer).await;
    assert_eq!(
        login_from(&app, "198.51.100.66", "bob", &bob.password).await,
        StatusCode::SEE_OTHER
    );
}

#[sqlx::test]
async fn a_password_longer_than_any_allowed_is_not_hashed(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.create_user("alice", Role::Reviewer).await;
    // Under the form limit (64 KiB), far over the password limit.
    let huge = "x".repeat(50_000);
    let t = Instant::now();
    let r = app.post_login("alice", &huge).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Hashing 100 kB with argon2id takes far longer than answering.
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[sqlx::test]
async fn invalid_utf8_in_a_form_field_is_refused_by_name(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let token = app.csrf_token("/login").await;
    let r = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=al%FFice&password=x&csrf_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("username is not valid UTF-8"));
}

#[sqlx::test]
async fn logout_ends_the_session_and_needs_post(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    let r = app.get("/logout").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        app.get("/").await.status(),
        StatusCode::OK,
        "GET /logout must not log out"
    );
    let token = app.csrf_token("/account").await;
    let r = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&r, "/login");
    assert_redirect_to(&app.get("/").await, "/login?next=/");
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tower_sessions.session WHERE convert_from(data, 'UTF8') LIKE '%\"user\"%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap_or(0);
    assert_eq!(rows, 0, "no signed-in session row may remain");
}

#[sqlx::test]
async fn a_user_deactivated_mid_session_is_locked_out_at_once(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let bob = app.create_user("bob", Role::Reviewer).await;
    app.login_as(&bob).await;
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    vetter::db::users::set_active(&app.pool, bob.id, false)
        .await
        .unwrap();
    assert_redirect_to(&app.get("/account").await, "/login?next=/account");
    // Reactivation does not revive the old session.
    vetter::db::users::set_active(&app.pool, bob.id, true)
        .await
        .unwrap();
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test]
async fn an_htmx_request_without_a_session_is_told_to_go_to_login(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app
        .client
        .get(app.url("/account"))
        .header("HX-Request", "true")
        .header("HX-Current-URL", format!("{}/account?tab=1", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["hx-redirect"], "/login?next=/account%3Ftab%3D1");
}

use std::time::Duration;

use reqwest::StatusCode;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::helpers::TestApp;

#[sqlx::test]
async fn healthz_is_ok_while_the_database_answers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert!(
        r_has_no_cookie(&app).await,
        "health checks must not create sessions"
    );
}

async fn r_has_no_cookie(app: &TestApp) -> bool {
    !app.get("/healthz")
        .await
        .headers()
        .contains_key("set-cookie")
}

#[tokio::test]
async fn healthz_is_503_when_the_database_is_gone() {
    // Nothing listens on port 1: the database is unreachable.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let app = TestApp::spawn(pool).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
}

#[sqlx::test]
async fn a_shutdown_lets_the_request_in_flight_finish(pool: PgPool) {
    // A throttled login sleeps before answering: a request still in flight
    // when the shutdown signal arrives.
    let mut app = TestApp::spawn_with(pool, |c| {
        c.login_throttle.slow_after = 0;
        c.login_throttle.step = Duration::from_millis(1500);
    })
    .await;
    let token = app.csrf_token("/login").await;
    let client = app.client.clone();
    let url = app.url("/login");
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .form(&[
                ("username", "x"),
                ("password", "y"),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.stop();
    let r = in_flight
        .await
        .unwrap()
        .expect("the request in flight gets its answer");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let server = app.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(app.url("/healthz")).await.is_err(),
        "no longer listening"
    );
}

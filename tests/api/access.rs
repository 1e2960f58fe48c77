//! The access matrix: every route in the table, tried as an anonymous
//! visitor, a reviewer and an admin. A route added to the table without an
//! entry here fails `every_route_has_an_expectation`.

use reqwest::{Method, StatusCode};
use sqlx::PgPool;
use vetter::domain::Role;
use vetter::web::plumbing::access::Access;
use vetter::web::routes::{self, RouteSpec};

use crate::helpers::{new_client, select_attr, TestApp, TestUser};

/// (method, path as registered, concrete path to request, anonymous, reviewer, admin)
#[rustfmt::skip]
const EXPECTED: &[(&str, &str, &str, u16, u16, u16)] = &[
    ("GET", "/healthz", "/healthz", 200, 200, 200),
    ("GET", "/static/:version/:name", "/static/0/app.css", 200, 200, 200),
    ("HEAD", "/static/:version/:name", "/static/0/app.css", 200, 200, 200),
    ("GET", "/login", "/login", 200, 303, 303),
    ("GET", "/auth/check", "/auth/check", 401, 204, 204),
    // An empty form is a bad request once past the access check.
    ("POST", "/login", "/login", 400, 400, 400),
    ("POST", "/logout", "/logout", 303, 303, 303),
    ("GET", "/", "/", 303, 200, 200),
    ("GET", "/account", "/account", 303, 200, 200),
    ("POST", "/account/password", "/account/password", 401, 400, 400),
    ("POST", "/account/keyboard", "/account/keyboard", 401, 400, 400),
    ("POST", "/account/tokens", "/account/tokens", 401, 400, 400),
    ("POST", "/account/summary", "/account/summary", 401, 400, 400),
    ("GET", "/media/:id/:name", "/media/999999/x.png", 303, 404, 404),
    // The rating flow. No candidates exist here: the queue is empty (200),
    // and a named candidate is a 404 once past the access check.
    ("GET", "/next", "/next", 303, 200, 200),
    ("GET", "/previous", "/previous?from=999999", 303, 303, 303),
    ("POST", "/undo", "/undo", 401, 409, 409),
    ("GET", "/queue", "/queue", 303, 200, 200),
    ("POST", "/queue", "/queue", 401, 303, 303),
    ("GET", "/queue/left", "/queue/left", 303, 200, 200),
    ("GET", "/candidates/:id", "/candidates/999999", 303, 404, 404),
    ("POST", "/candidates/:id/rating", "/candidates/999999/rating", 401, 404, 404),
    ("GET", "/candidates/:id/nearby", "/candidates/999999/nearby", 303, 404, 404),
    ("POST", "/candidates/:id/association", "/candidates/999999/association", 401, 404, 404),
    ("GET", "/candidates/:id/association/search", "/candidates/999999/association/search?q=x", 303, 404, 404),
    ("GET", "/candidates/:id/simbad", "/candidates/999999/simbad", 303, 404, 404),
    ("GET", "/candidates/:id/details", "/candidates/999999/details", 303, 404, 404),
    ("GET", "/candidates/:id/firefly", "/candidates/999999/firefly", 303, 404, 404),
    ("GET", "/candidates/:id/sky/:file", "/candidates/999999/sky/1", 303, 404, 404),
    ("GET", "/candidates/:id/light-curve", "/candidates/999999/light-curve", 303, 404, 404),
    ("POST", "/candidates/:id/tags", "/candidates/999999/tags", 401, 400, 400),
    ("GET", "/candidates/:id/group", "/candidates/999999/group", 303, 404, 404),
    ("GET", "/projects/:slug/model", "/projects/nope/model", 303, 404, 404),
    ("GET", "/batch", "/batch?group=999999", 303, 404, 404),
    ("POST", "/batch", "/batch", 401, 400, 400),
    ("POST", "/batch/:id/undo", "/batch/999999/undo", 401, 404, 404),
    // Finding candidates. An empty survey is an empty table, summary and
    // export; a POST without its form fields is a bad request.
    ("GET", "/candidates", "/candidates", 303, 200, 200),
    ("GET", "/candidates.csv", "/candidates.csv", 303, 200, 200),
    ("GET", "/candidates.vot", "/candidates.vot", 303, 200, 200),
    ("GET", "/candidates/:id/lightcurve.csv", "/candidates/999999/lightcurve.csv", 303, 404, 404),
    // Administrators only; reviewers are refused before the candidate is looked up.
    ("GET", "/candidates/:id/voevent.xml", "/candidates/999999/voevent.xml", 303, 403, 404),
    ("POST", "/candidates/:id/voevent/send", "/candidates/999999/voevent/send", 401, 403, 404),
    ("GET", "/ratings", "/ratings", 303, 200, 200),
    ("GET", "/views", "/views", 303, 200, 200),
    ("POST", "/views", "/views", 401, 400, 400),
    ("POST", "/views/rate", "/views/rate", 401, 400, 400),
    ("POST", "/views/:id/default", "/views/999999/default", 401, 404, 404),
    ("POST", "/views/:id/delete", "/views/999999/delete", 401, 404, 404),
    // Nobody owns token 999999: the user is told so on the account page.
    ("POST", "/account/tokens/:id/revoke", "/account/tokens/999999/revoke", 401, 303, 303),
    // Administration: reviewers are refused, admins get past the check to a
    // list (200), an unknown id or slug (404) or an empty form (400).
    ("GET", "/admin", "/admin", 303, 403, 200),
    ("GET", "/admin/users", "/admin/users", 303, 403, 200),
    ("POST", "/admin/users", "/admin/users", 401, 403, 400),
    ("GET", "/admin/users/:id", "/admin/users/999999", 303, 403, 404),
    ("POST", "/admin/users/:id/password", "/admin/users/999999/password", 401, 403, 404),
    ("POST", "/admin/users/:id/role", "/admin/users/999999/role", 401, 403, 400),
    ("POST", "/admin/users/:id/upload", "/admin/users/999999/upload", 401, 403, 400),
    ("POST", "/admin/users/:id/expert", "/admin/users/999999/expert", 401, 403, 400),
    ("POST", "/admin/users/:id/active", "/admin/users/999999/active", 401, 403, 400),
    ("GET", "/admin/tokens", "/admin/tokens", 303, 403, 200),
    ("POST", "/admin/tokens/:id/revoke", "/admin/tokens/999999/revoke", 401, 403, 404),
    ("GET", "/admin/tags", "/admin/tags", 303, 403, 200),
    ("POST", "/admin/tags", "/admin/tags", 401, 403, 400),
    ("POST", "/admin/tags/:id", "/admin/tags/999999", 401, 403, 400),
    ("POST", "/admin/tags/:id/move", "/admin/tags/999999/move", 401, 403, 400),
    ("POST", "/admin/tags/:id/merge", "/admin/tags/999999/merge", 401, 403, 400),
    ("POST", "/admin/tags/:id/delete", "/admin/tags/999999/delete", 401, 403, 404),
    ("GET", "/admin/projects", "/admin/projects", 303, 403, 200),
    ("GET", "/admin/projects/:slug", "/admin/projects/nope", 303, 403, 404),
    ("POST", "/admin/projects/:slug", "/admin/projects/nope", 401, 403, 404),
    ("GET", "/admin/projects/:slug/delete", "/admin/projects/nope/delete", 303, 403, 404),
    ("GET", "/admin/projects/:slug/catalogues", "/admin/projects/nope/catalogues", 303, 403, 404),
    ("POST", "/admin/projects/:slug/catalogues", "/admin/projects/nope/catalogues", 401, 403, 404),
    ("GET", "/admin/projects/:slug/gold", "/admin/projects/nope/gold", 303, 403, 404),
    ("POST", "/admin/projects/:slug/gold", "/admin/projects/nope/gold", 401, 403, 404),
    ("POST", "/admin/projects/:slug/gold/rate", "/admin/projects/nope/gold/rate", 401, 403, 404),
    ("POST", "/admin/projects/:slug/gold/:candidate/remove", "/admin/projects/nope/gold/999999/remove", 401, 403, 404),
    ("GET", "/admin/catalogues", "/admin/catalogues", 303, 403, 200),
    ("GET", "/admin/projects/:slug/notifications", "/admin/projects/nope/notifications", 303, 403, 404),
    ("POST", "/admin/projects/:slug/notifications", "/admin/projects/nope/notifications", 401, 403, 404),
    ("POST", "/admin/projects/:slug/notifications/:target", "/admin/projects/nope/notifications/999999", 401, 403, 404),
    ("POST", "/admin/projects/:slug/notifications/:target/delete", "/admin/projects/nope/notifications/999999/delete", 401, 403, 404),
    ("POST", "/admin/projects/:slug/notifications/:target/test", "/admin/projects/nope/notifications/999999/test", 401, 403, 404),
    ("GET", "/admin/deliveries", "/admin/deliveries", 303, 403, 200),
    ("POST", "/admin/deliveries/:id/retry", "/admin/deliveries/999999/retry", 401, 403, 404),
    ("GET", "/admin/projects/:slug/review", "/admin/projects/nope/review", 303, 403, 404),
    ("POST", "/admin/projects/:slug/review", "/admin/projects/nope/review", 401, 403, 404),
    ("POST", "/projects/:slug/model/train", "/projects/nope/model/train", 401, 403, 404),
    ("POST", "/admin/projects/:slug/delete", "/admin/projects/nope/delete", 401, 403, 404),
    ("GET", "/admin/projects/:slug/observations/:observation/delete", "/admin/projects/nope/observations/o/delete", 303, 403, 404),
    ("POST", "/admin/projects/:slug/observations/:observation/delete", "/admin/projects/nope/observations/o/delete", 401, 403, 404),
    ("GET", "/admin/status", "/admin/status", 303, 403, 200),
    ("GET", "/admin/audit", "/admin/audit", 303, 403, 200),
    // The API: signed in by token, not session. The reviewer may not upload;
    // the admin gets past the check to a 400 for the empty body.
    ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", 200, 200, 200),
    ("GET", "/api/v1/whoami", "/api/v1/whoami", 401, 200, 200),
    ("PUT", "/api/v1/projects/:project", "/api/v1/projects/p", 401, 403, 400),
    ("PUT", "/api/v1/projects/:project/observations/:observation", "/api/v1/projects/p/observations/o", 401, 403, 400),
    ("PUT", "/api/v1/projects/:project/observations/:observation/beams/:beam", "/api/v1/projects/p/observations/o/beams/b", 401, 403, 400),
    ("PUT", "/api/v1/projects/:project/observations/:observation/candidates/:name", "/api/v1/projects/p/observations/o/candidates/c", 401, 403, 400),
    ("POST", "/api/v1/projects/:project/observations/:observation/candidates", "/api/v1/projects/p/observations/o/candidates", 401, 403, 400),
    // The read API, with a token that may read: an empty survey is an
    // empty list, an unknown id or slug a 404.
    ("GET", "/api/v1/projects", "/api/v1/projects", 401, 200, 200),
    ("GET", "/api/v1/projects/:project", "/api/v1/projects/p", 401, 404, 404),
    ("GET", "/api/v1/projects/:project/observations", "/api/v1/projects/p/observations", 401, 404, 404),
    ("GET", "/api/v1/candidates", "/api/v1/candidates", 401, 200, 200),
    ("GET", "/api/v1/candidates/:id", "/api/v1/candidates/999999", 401, 404, 404),
    ("GET", "/api/v1/candidates.csv", "/api/v1/candidates.csv", 401, 200, 200),
    ("GET", "/api/v1/candidates.vot", "/api/v1/candidates.vot", 401, 200, 200),
    ("GET", "/api/v1/ratings", "/api/v1/ratings", 401, 200, 200),
    // No project p: refused once past the access check.
    ("POST", "/api/v1/projects/:project/observations/:observation/finished", "/api/v1/projects/p/observations/o/finished", 401, 403, 400),
];

fn expectation(
    spec: &RouteSpec,
) -> Option<&'static (&'static str, &'static str, &'static str, u16, u16, u16)> {
    EXPECTED
        .iter()
        .find(|e| e.0 == spec.method.as_str() && e.1 == spec.path)
}

#[test]
fn every_route_has_an_expectation() {
    let missing: Vec<_> = routes::table()
        .into_iter()
        .filter(|s| expectation(s).is_none())
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an access-matrix entry: {missing:?}"
    );
    assert_eq!(
        EXPECTED.len(),
        routes::table().len(),
        "stale entries in EXPECTED"
    );
}

#[test]
fn only_health_and_static_files_are_served_without_a_session() {
    for s in routes::table() {
        if s.access == Access::Open {
            assert!(
                s.path == "/healthz"
                    || s.path.starts_with("/static/")
                    || s.path == "/api/v1/openapi.json",
                "{} is open",
                s.path
            );
        }
    }
}

/// A client signed in as `who` (or anonymous) and the CSRF token of its
/// session; API routes get the user's API token instead.
async fn client_for(app: &TestApp, who: Option<&TestUser>) -> (reqwest::Client, String) {
    let client = new_client();
    let page = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = select_attr(
        &scraper::Html::parse_document(&page),
        "input[name=csrf_token]",
        "value",
    )
    .unwrap();
    let Some(user) = who else {
        return (client, token);
    };
    let r = client
        .post(app.url("/login"))
        .form(&[
            ("username", user.username.as_str()),
            ("password", user.password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = client
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = select_attr(
        &scraper::Html::parse_document(&page),
        "input[name=csrf_token]",
        "value",
    )
    .unwrap();
    (client, token)
}

#[sqlx::test]
async fn each_route_answers_each_role_as_the_matrix_says(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let reviewer = app.create_user("rita", Role::Reviewer).await;
    let admin = app.create_user("adam", Role::Admin).await;
    let mut failures = Vec::new();
    for spec in routes::table() {
        let e = expectation(&spec).expect("checked by every_route_has_an_expectation");
        for (who, expected) in [(None, e.3), (Some(&reviewer), e.4), (Some(&admin), e.5)] {
            // A fresh client per request: POST /logout must not spoil the next one.
            let (client, token) = client_for(&app, who).await;
            let method = Method::from_bytes(spec.method.as_str().as_bytes()).unwrap();
            let mut request = client.request(method, app.url(e.2));
            if let (Some(user), true) = (who, spec.path.starts_with("/api/")) {
                let (api_token, _) = vetter::db::api_tokens::create(
                    &app.pool,
                    user.id,
                    "matrix",
                    vetter::domain::token::TokenScopes::new(true, true).unwrap(),
                )
                .await
                .unwrap();
                request = request.bearer_auth(api_token);
            }
            let r = request
                .header("X-CSRF-Token", &token)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send()
                .await
                .unwrap();
            let got = r.status().as_u16();
            if got != expected {
                let role = who.map_or("anonymous", |u| u.username.as_str());
                failures.push(format!(
                    "{} {} as {role}: expected {expected}, got {got}",
                    spec.method, e.2
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

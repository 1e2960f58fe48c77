//! Every internal URL that a page or fragment links to, posts to or loads
//! (`href`, `action`, `src`, `hx-get`, `hx-post`, ...) names a route of the
//! route table with that method, so a renamed route cannot leave a dead link
//! or a form that posts into a 404 behind. The pages are those of the blind
//! walk (every GET route), fetched whole and as htmx fragments, by an
//! administrator and by a reviewer.

use std::collections::BTreeSet;

use reqwest::Method;
use scraper::{Html, Selector};
use sqlx::PgPool;
use vetter::domain::Role;
use vetter::web::routes::{self, RouteSpec};

use crate::blind::{addresses, blind_survey};
use crate::helpers::TestApp;

/// Where each kind of attribute sends the browser, and with which method.
const ATTRIBUTES: &[(&str, &str, Option<&str>)] = &[
    ("a[href]", "href", Some("GET")),
    ("link[href]", "href", Some("GET")),
    ("img[src]", "src", Some("GET")),
    ("script[src]", "src", Some("GET")),
    ("iframe[src]", "src", Some("GET")),
    // A form's method is its own attribute (GET when absent).
    ("form[action]", "action", None),
    ("[hx-get]", "hx-get", Some("GET")),
    ("[hx-post]", "hx-post", Some("POST")),
    ("[hx-put]", "hx-put", Some("PUT")),
    ("[hx-delete]", "hx-delete", Some("DELETE")),
];

/// Paths served beside the app, not by it: Firefly sits behind the same
/// origin under this prefix (nginx routes it).
const BESIDE_THE_APP: &[&str] = &["/firefly/"];

fn matches(spec: &RouteSpec, method: &str, path: &str) -> bool {
    if spec.method.as_str() != method {
        return false;
    }
    let want: Vec<&str> = spec.path.trim_start_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    want.len() == got.len()
        && want.iter().zip(&got).all(|(w, g)| {
            if w.starts_with(':') {
                !g.is_empty()
            } else {
                w == g
            }
        })
}

/// The internal URLs of one page, as (method, path without query).
fn links(html: &str) -> Vec<(String, String)> {
    let doc = Html::parse_document(html);
    let mut out = Vec::new();
    for (css, attr, method) in ATTRIBUTES {
        let sel = Selector::parse(css).unwrap();
        for el in doc.select(&sel) {
            let Some(url) = el.value().attr(attr) else {
                continue;
            };
            if !url.starts_with('/') || url.starts_with("//") {
                continue;
            }
            let method = match method {
                Some(m) => m.to_string(),
                None => el
                    .value()
                    .attr("method")
                    .unwrap_or("get")
                    .to_ascii_uppercase(),
            };
            let path = url.split(['?', '#']).next().unwrap_or("").to_string();
            out.push((method, path));
        }
    }
    out
}

#[sqlx::test]
async fn every_link_form_and_htmx_url_names_a_route(pool: PgPool) {
    let b = blind_survey(pool).await;
    let admin = TestApp::spawn(b.s.app.pool.clone()).await;
    let root = admin.create_user("root", Role::Admin).await;
    admin.login_as(&root).await;
    // A saved view each, so the views page shows its forms.
    for viewer in [&admin, &b.eve] {
        let r = viewer
            .post_form("/views", &[("name", "Mine"), ("query", "rated=mine")])
            .await;
        assert!(r.status().is_redirection(), "saving a view: {}", r.status());
    }
    let table = routes::table();
    let mut checked = BTreeSet::new();
    let mut dead = BTreeSet::new();
    let mut pages = 0;
    for viewer in [&admin, &b.eve] {
        for spec in table.iter().filter(|s| s.method == Method::GET) {
            for path in addresses(spec.path, &b) {
                for htmx in [false, true] {
                    let mut req = viewer.client.get(viewer.url(&path));
                    if htmx {
                        req = req.header("HX-Request", "true");
                    }
                    let r = req.send().await.unwrap();
                    let html = r
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|t| t.starts_with("text/html"));
                    if !html {
                        continue;
                    }
                    pages += 1;
                    let body = r.text().await.unwrap();
                    for (method, target) in links(&body) {
                        if BESIDE_THE_APP.iter().any(|p| target.starts_with(p)) {
                            continue;
                        }
                        checked.insert((method.clone(), target.clone()));
                        if !table.iter().any(|s| matches(s, &method, &target)) {
                            dead.insert(format!("{method} {target} (on {path})"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        dead.is_empty(),
        "URLs that name no route:\n{}",
        dead.into_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(pages > 100, "only {pages} pages looked at");
    // The walk must see the forms that matter, or it proves little.
    for (method, path) in [
        ("POST", "/logout"),
        ("GET", "/candidates"),
        ("POST", "/admin/users"),
        ("POST", "/views/rate"),
    ] {
        assert!(
            checked.contains(&(method.to_string(), path.to_string())),
            "the walk never met {method} {path}"
        );
    }
}

//! Every internal URL that a page or fragment links to, posts to or loads
//! (`href`, `action`, `src`, `hx-get`, `hx-post`, ...) names a route of the
//! route table with that method, so a renamed route cannot leave a dead link
//! or a form that posts into a 404 behind. The pages are those of the blind
//! walk (every GET route), fetched whole and as htmx fragments, by an
//! administrator and by a reviewer.
//!
//! And templates write none of those URLs by hand: they build them from
//! `web::paths`, so that renaming a route is one edit that the compiler
//! follows everywhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

fn template_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(template_files(&path));
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
    out
}

/// The places in a template that write an internal path out: an attribute
/// value starting with `/`, or a string literal starting with `/` inside
/// `{{ … }}` or `{% … %}` (a path handed to a helper).
fn literal_paths(text: &str) -> Vec<(usize, String)> {
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let excerpt = |at: usize| text[at..].chars().take(60).collect::<String>();
    let mut found = Vec::new();
    for quote in ["=\"/", "='/"] {
        for (at, _) in text.match_indices(quote) {
            found.push((line_of(at), excerpt(at)));
        }
    }
    for (open, close) in [("{{", "}}"), ("{%", "%}")] {
        let mut rest = 0;
        while let Some(start) = text[rest..].find(open).map(|i| rest + i) {
            let end = text[start..].find(close).map_or(text.len(), |i| start + i);
            for (at, _) in text[start..end].match_indices("\"/") {
                found.push((line_of(start + at), excerpt(start + at)));
            }
            rest = end;
        }
    }
    found
}

#[test]
fn the_path_finder_sees_attributes_and_literals() {
    assert!(literal_paths(r#"<a href="{{ paths::QUEUE }}">"#).is_empty());
    assert!(literal_paths(r#"<a href="https://x.example/y">"#).is_empty());
    assert_eq!(literal_paths("<a href=\"/queue\">").len(), 1);
    assert_eq!(literal_paths("<form action='/views'>").len(), 1);
    assert_eq!(
        literal_paths(r#"<a href="{{ s.export("/a.csv") }}">"#).len(),
        1
    );
    assert_eq!(
        literal_paths("x\n{% let u = \"/next\" %}")[0].0,
        2,
        "the line is reported"
    );
}

#[test]
fn no_template_writes_an_internal_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let files = template_files(&root);
    assert!(files.len() > 20, "only {} templates found", files.len());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for (line, excerpt) in literal_paths(&text) {
            found.push(format!("{name}:{line}: {excerpt}"));
        }
    }
    assert!(
        found.is_empty(),
        "templates that write a path instead of using crate::web::paths:\n{}",
        found.join("\n")
    );
}

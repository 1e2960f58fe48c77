use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{select_attr, TestApp};

#[sqlx::test]
async fn pages_link_assets_by_content_hash_and_they_cache_for_a_year(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let html = app.get_html("/login").await;
    let css = select_attr(&html, "link[rel=stylesheet]", "href").unwrap();
    let js = select_attr(&html, "script[src*=htmx]", "src").unwrap();
    for url in [&css, &js] {
        let r = app.get(url).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let again = app
            .client
            .get(app.url(url))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
    let r = app.get(&css).await;
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    let r = app.get(&js).await;
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
}

#[sqlx::test]
async fn an_old_hash_gets_the_current_file_uncached_and_unknown_files_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app.get("/static/000000000000/app.css").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(
        app.get("/static/0/nope.js").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/static/0/..%2FCargo.toml").await.status(),
        StatusCode::NOT_FOUND
    );
}

//! The real nginx, configured from nginx/templates, in front of the real app (started
//! in-process on a fresh database, as in production: behind_proxy, X-Accel-Redirect media,
//! an https public URL) and of a stand-in for Firefly.

use std::net::IpAddr;
use std::path::PathBuf;

use reqwest::multipart::{Form, Part};
use reqwest::{header, Client, Response, StatusCode};
use scraper::{Html, Selector};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use vetter::config::Config;
use vetter::db::users;
use vetter::domain::{Role, UserId, Username};
use vetter::startup::Application;

use crate::harness::{client, client_builder, Nginx, Site, TempDir};
use crate::upstream::Upstream;

/// The app, as `vetter serve` runs it in the prod compose stack.
struct App {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl App {
    async fn spawn(pool: PgPool, media_root: PathBuf, public_url: &str) -> Self {
        if std::env::var("TEST_LOG").is_ok() {
            vetter::telemetry::init();
        }
        let mut config = Config::for_tests("postgres://unused", media_root);
        config.behind_proxy = true;
        config.media_accel_prefix = Some("/protected-media".into());
        config.public_url = public_url.to_string();
        let app = Application::build(config, pool).await.unwrap();
        let port = app.port();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Self {
            port,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server, as SIGTERM would, and waits until it no longer listens.
    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub(crate) struct User {
    pub(crate) id: UserId,
    name: String,
    password: String,
}

pub(crate) async fn create_user(pool: &PgPool, name: &str, role: Role) -> User {
    let password = format!("{name}-secret-pw");
    let hash = vetter::auth::password::hash_blocking(&password).unwrap();
    let username: Username = name.parse().unwrap();
    let id = users::insert(pool, &username, &hash, role).await.unwrap();
    User {
        id,
        name: name.into(),
        password,
    }
}

pub(crate) fn csrf_token(html: &str) -> String {
    let doc = Html::parse_document(html);
    let sel = Selector::parse("input[name=csrf_token]").unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .expect("a csrf_token field")
        .to_string()
}

/// Signs in through nginx as a browser does (the form's token, an Origin header); returns the
/// POST's response.
pub(crate) async fn login(c: &Client, nginx: &Nginx, user: &User) -> Response {
    let page = c.get(nginx.https_url("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let token = csrf_token(&page.text().await.unwrap());
    c.post(nginx.https_url("/login"))
        .header(header::ORIGIN, &nginx.site.public_origin)
        .form(&[
            ("username", user.name.as_str()),
            ("password", user.password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

pub(crate) fn session_cookie(r: &Response) -> String {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("vetter_session="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", r.headers()))
        .to_string()
}

pub(crate) fn png_bytes() -> Vec<u8> {
    let img = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 40 + y * 10) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn gif_bytes() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(4, 3, |x, _| image::Rgba([(x * 60) as u8, 0, 0, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Gif).unwrap();
    out.into_inner()
}

/// A GLEAM-X-shaped candidate with a PNG preview, sent through nginx with an API token; returns
/// the preview's /media URL path.
async fn upload_preview(c: &Client, nginx: &Nginx, pool: &PgPool) -> String {
    let pipeline = create_user(pool, "pipeline", Role::Admin).await;
    let token = vetter::db::api_tokens::create(
        pool,
        pipeline.id,
        "tests",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await
    .unwrap()
    .0;
    let api = |path: &str| nginx.https_url(&format!("/api/v1{path}"));
    let r = c
        .put(api("/projects/gleamx"))
        .bearer_auth(&token)
        .json(&json!({"name": "GLEAM-X", "metrics": [{"key": "flux", "label": "Peak flux", "unit": "Jy"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let r = c
        .put(api("/projects/gleamx/observations/1234567890"))
        .bearer_auth(&token)
        .json(&json!({"start_time": "2023-02-25T00:00:00+00:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let candidate = json!({"ra": 0.5, "dec": -26.7, "metrics": {"flux": 0.42},
                           "files": {"preview": "png", "animation": "gif"}});
    let form = Form::new()
        .part(
            "candidate",
            Part::text(candidate.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part("png", Part::bytes(png_bytes()).file_name("png.bin"))
        .part("gif", Part::bytes(gif_bytes()).file_name("gif.bin"));
    let r = c
        .put(api(
            "/projects/gleamx/observations/1234567890/candidates/tcgm_001",
        ))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let id: i64 = sqlx::query_scalar("SELECT id FROM files WHERE role = 'preview'")
        .fetch_one(pool)
        .await
        .unwrap();
    format!("/media/{id}/preview.png")
}

async fn json_of(r: Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.headers());
    r.json().await.unwrap()
}

fn header_of<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[sqlx::test]
async fn the_app_and_firefly_behind_nginx(pool: PgPool) {
    let dir = TempDir::new("proxy");
    let mut site = Site::new(dir.path(), "localhost");
    let firefly = Upstream::spawn("firefly").await;
    site.firefly = firefly.port;
    let app = App::spawn(pool.clone(), site.media_dir.clone(), &site.public_origin).await;
    site.app_servers = vec![app.port];
    let nginx = Nginx::start(dir, site);
    let c = client();

    // Anonymous: the app's pages redirect to the login page, media too; Firefly is refused.
    let r = c.get(nginx.https_url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(header_of(&r, "location").starts_with("/login"));
    assert_eq!(
        header_of(&r, "strict-transport-security"),
        "max-age=63072000"
    );
    let r = c.get(nginx.https_url("/firefly/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        firefly.hits(),
        0,
        "nothing reaches Firefly without a session"
    );

    // A body larger than a form is refused by nginx itself, whatever the route.
    let r = c
        .post(nginx.https_url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 200 << 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Uploads go through nginx (multipart, token); media is refused anonymously.
    let media = upload_preview(&c, &nginx, &pool).await;
    let r = c.get(nginx.https_url(&media)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "media needs a session");
    assert!(header_of(&r, "location").starts_with("/login"));
    let storage: String =
        sqlx::query_scalar("SELECT storage_path FROM files WHERE role = 'preview'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let r = c
        .get(nginx.https_url(&format!("/protected-media/{storage}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "the internal location is not reachable from outside"
    );

    // Login through the proxy: the session cookie is Secure (the public URL is https).
    let rita = create_user(&pool, "rita", Role::Reviewer).await;
    let r = login(&c, &nginx, &rita).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login through nginx");
    let cookie = session_cookie(&r);
    assert!(cookie.to_ascii_lowercase().contains("secure"), "{cookie}");
    assert_eq!(
        c.get(nginx.https_url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Media for a reviewer: the app checks, nginx sends the bytes (X-Accel-Redirect).
    let r = c.get(nginx.https_url(&media)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-type"), "image/png");
    assert!(r.headers().get("x-accel-redirect").is_none());
    assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png_bytes().as_slice());

    // Firefly when signed in: proxied, with the client's address and scheme, and with none of
    // the app's cookies (nor API credentials), only Firefly's own.
    let r = c
        .get(nginx.https_url("/firefly/?api=image"))
        .bearer_auth("vet_not_for_firefly")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header_of(&r, "content-security-policy"),
        "frame-ancestors 'self'"
    );
    assert_eq!(
        header_of(&r, "strict-transport-security"),
        "max-age=63072000"
    );
    let seen = json_of(r).await;
    assert_eq!(seen["who"], "firefly");
    assert_eq!(seen["request"], "GET /firefly/?api=image HTTP/1.1");
    assert_eq!(seen["cookie"], "", "no cookie but Firefly's own: {seen}");
    assert_eq!(seen["authorization"], "");
    assert_eq!(seen["x_real_ip"], "127.0.0.1");
    assert_eq!(seen["x_forwarded_proto"], "https");
    assert_eq!(
        seen["host"],
        format!("localhost:{}", nginx.site.tls),
        "Firefly sees the port the browser used"
    );
    // Firefly set its usrkey cookie; the browser now sends both cookies, Firefly gets one.
    let seen = json_of(c.get(nginx.https_url("/firefly/")).send().await.unwrap()).await;
    assert_eq!(seen["cookie"], "usrkey=ff-user-1", "{seen}");
    let r = c.get(nginx.https_url("/firefly")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header_of(&r, "location"), "/firefly/");

    // Firefly's admin pages are refused, however the path is spelled.
    let before = firefly.hits();
    for path in [
        "/firefly/admin/",
        "/firefly/admin",
        "/firefly/admin/status",
        "/firefly//admin/db/",
        "/firefly/%61dmin/",
        "/firefly/admin;jsessionid=x/",
        "/firefly/..;/firefly/admin/",
    ] {
        let r = c.get(nginx.https_url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(firefly.hits(), before, "no admin request reached Firefly");

    // The websocket upgrade goes through, and bytes flow both ways.
    let r = c
        .get(nginx.https_url("/firefly/sticky/firefly/events"))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut ws = r.upgrade().await.unwrap();
    ws.write_all(b"ping from the browser").await.unwrap();
    let mut back = [0u8; 21];
    ws.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping from the browser");
    drop(ws);

    // Compression: assets yes, HTML pages (which carry CSRF tokens) no.
    let r = c
        .get(nginx.https_url("/login"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    let html = c
        .get(nginx.https_url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let css = {
        let doc = Html::parse_document(&html);
        let sel = Selector::parse("link[rel=stylesheet]").unwrap();
        doc.select(&sel)
            .next()
            .and_then(|e| e.value().attr("href"))
            .expect("a stylesheet link")
            .to_string()
    };
    let r = c
        .get(nginx.https_url(&css))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-encoding"), "gzip", "{css}");

    // Signed out, Firefly is closed again.
    let token = csrf_token(&html);
    let r = c
        .post(nginx.https_url("/logout"))
        .header(header::ORIGIN, &nginx.site.public_origin)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c.get(nginx.https_url("/firefly/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    drop(app);
}

#[sqlx::test]
async fn two_app_processes_behind_one_upstream_share_sessions(pool: PgPool) {
    let dir = TempDir::new("scale");
    let mut site = Site::new(dir.path(), "localhost");
    let mut a = App::spawn(pool.clone(), site.media_dir.clone(), &site.public_origin).await;
    let b = App::spawn(pool.clone(), site.media_dir.clone(), &site.public_origin).await;
    site.app_servers = vec![a.port, b.port];
    let nginx = Nginx::start(dir, site);
    let c = client();

    let rita = create_user(&pool, "rita", Role::Reviewer).await;
    let r = login(&c, &nginx, &rita).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&r);
    let pair = cookie.split(';').next().unwrap().to_string();

    // The session made through nginx (by whichever process answered) works on each process.
    let direct = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for port in [a.port, b.port] {
        let r = direct
            .get(format!("http://127.0.0.1:{port}/account"))
            .header(header::COOKIE, &pair)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "process on port {port}");
    }
    for _ in 0..4 {
        let r = c.get(nginx.https_url("/account")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // One process goes away (a rolling restart, a crash): nginx uses the other, and the
    // browser stays signed in.
    a.stop().await;
    for _ in 0..4 {
        let r = c.get(nginx.https_url("/account")).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "served by the remaining process"
        );
    }
    drop(b);
}

#[tokio::test]
async fn staging_shares_the_address_through_sni_and_port_80() {
    // Production publishes the ports; staging's nginx listens only where production's
    // forwards to (as over the shared docker network).
    let staging_dir = TempDir::new("staging");
    let mut staging = Site::new(staging_dir.path(), "staging.localhost");
    let staging_app = Upstream::spawn("staging-app").await;
    staging.app_servers = vec![staging_app.port];
    std::fs::write(
        staging
            .acme_dir
            .join(".well-known/acme-challenge/tok-staging"),
        "staging challenge",
    )
    .unwrap();

    let prod_dir = TempDir::new("prod");
    let mut prod = Site::new(prod_dir.path(), "localhost");
    let prod_app = Upstream::spawn("prod-app").await;
    prod.app_servers = vec![prod_app.port];
    prod.passthrough_name = "staging.localhost".into();
    prod.passthrough_http = format!("127.0.0.1:{}", staging.http);
    prod.passthrough_tls = format!("127.0.0.1:{}", staging.https);
    std::fs::write(
        prod.acme_dir.join(".well-known/acme-challenge/tok-prod"),
        "prod challenge",
    )
    .unwrap();
    // The browser reaches staging on production's ports.
    staging.public_origin = format!("https://staging.localhost:{}", prod.tls);
    let (prod_tls, prod_http) = (prod.tls, prod.http);

    let _staging_nginx = Nginx::start(staging_dir, staging);
    let prod_nginx = Nginx::start(prod_dir, prod);
    // A client on another loopback address, to see that address arrive at each app.
    let from: IpAddr = "127.0.0.2".parse().unwrap();
    let c = client_builder()
        .local_address(from)
        .tls_info(true)
        .build()
        .unwrap();

    // Plain HTTP: redirects to https, except ACME challenges, for each site.
    let r = c
        .get(prod_nginx.http_url("/candidates/1?x=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        header_of(&r, "location"),
        format!("https://localhost:{prod_tls}/candidates/1?x=y")
    );
    let r = c
        .get(prod_nginx.http_url("/.well-known/acme-challenge/tok-prod"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "prod challenge");
    let r = c
        .get(prod_nginx.http_url("/nginx-health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let staging_http = |path: &str| format!("http://staging.localhost:{prod_http}{path}");
    let r = c
        .get(staging_http("/.well-known/acme-challenge/tok-staging"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "staging challenge");
    let r = c.get(staging_http("/queue")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        header_of(&r, "location"),
        format!("https://staging.localhost:{prod_tls}/queue")
    );

    // TLS on the one published port: each name reaches its own nginx, with its own
    // certificate, and each app sees the real client address.
    for (host, who) in [
        ("localhost", "prod-app"),
        ("staging.localhost", "staging-app"),
    ] {
        let r = c
            .get(format!("https://{host}:{prod_tls}/"))
            .send()
            .await
            .unwrap();
        let cert = r
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .expect("the server certificate")
            .to_vec();
        let has_staging_name = cert
            .windows(b"staging.localhost".len())
            .any(|w| w == b"staging.localhost");
        assert_eq!(
            has_staging_name,
            host == "staging.localhost",
            "{host} is served its own site's certificate"
        );
        let seen = json_of(r).await;
        assert_eq!(seen["who"], who, "{host}");
        assert_eq!(seen["x_real_ip"], "127.0.0.2", "{host}");
        assert_eq!(seen["x_forwarded_proto"], "https");
    }
}

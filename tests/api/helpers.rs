use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::{header, redirect, Client, Response, StatusCode};
use scraper::{Html, Selector};
use sqlx::PgPool;
use tokio::sync::oneshot;
use vetter::config::Config;
use vetter::db::users;
use vetter::domain::{Role, UserId, Username};
use vetter::startup::Application;

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub client: Client,
    pub media_root: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct TestUser {
    pub id: UserId,
    pub username: String,
    pub password: String,
}

pub fn new_client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vetter-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, |_| {}).await
    }

    pub async fn spawn_with(pool: PgPool, tweak: impl FnOnce(&mut Config)) -> Self {
        if std::env::var("TEST_LOG").is_ok() {
            vetter::telemetry::init();
        }
        let media_root = temp_dir("media");
        let mut config = Config::for_tests("postgres://unused", media_root.clone());
        tweak(&mut config);
        let app = Application::build(config, pool.clone()).await.unwrap();
        let port = app.port();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Self {
            address: format!("http://127.0.0.1:{port}"),
            pool,
            client: new_client(),
            media_root,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Asks the server to stop, as SIGTERM would.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_html(&self, path: &str) -> Html {
        Html::parse_document(&self.get(path).await.text().await.unwrap())
    }

    /// The CSRF token the page at `path` carries in its forms.
    pub async fn csrf_token(&self, path: &str) -> String {
        let r = self.get(path).await;
        let status = r.status();
        let html = Html::parse_document(&r.text().await.unwrap());
        select_attr(&html, "input[name=csrf_token]", "value").unwrap_or_else(|| {
            let title = select_text(&html, "title").unwrap_or_default();
            let said = select_text(&html, ".error-page").unwrap_or_default();
            panic!("no csrf_token on {path}: {status} {title:?} {said:?}")
        })
    }

    /// POSTs a form, adding the session's CSRF token (from the login page,
    /// or from the account page once signed in).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let signed_in = self.get("/login").await.status() == StatusCode::SEE_OTHER;
        let token = self
            .csrf_token(if signed_in { "/account" } else { "/login" })
            .await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.client
            .post(self.url(path))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_login(&self, username: &str, password: &str) -> Response {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }

    pub async fn login_as(&self, user: &TestUser) {
        let r = self.post_login(&user.username, &user.password).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "login of {} failed",
            user.username
        );
    }

    pub async fn create_user(&self, username: &str, role: Role) -> TestUser {
        create_user(&self.pool, username, role).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.media_root);
    }
}

pub async fn create_user(pool: &PgPool, username: &str, role: Role) -> TestUser {
    let password = format!("{username}-secret-pw");
    let hash = vetter::auth::password::hash_blocking(&password).unwrap();
    let name: Username = username.parse().unwrap();
    let id = users::insert(pool, &name, &hash, role).await.unwrap();
    TestUser {
        id,
        username: username.into(),
        password,
    }
}

/// The CSRF token of the login page as `client` (a browser of its own)
/// gets it, with the cookie half left in the client's jar.
pub async fn login_token(client: &Client, app: &TestApp) -> String {
    let page = client.get(app.url("/login")).send().await.unwrap();
    let text = page.text().await.unwrap();
    let html = Html::parse_document(&text);
    select_attr(&html, "input[name=csrf_token]", "value").expect("no csrf_token on /login")
}

pub fn select_attr(html: &Html, selector: &str, attr: &str) -> Option<String> {
    let sel = Selector::parse(selector).unwrap();
    html.select(&sel)
        .next()
        .and_then(|e| e.value().attr(attr))
        .map(str::to_string)
}

pub fn select_text(html: &Html, selector: &str) -> Option<String> {
    let sel = Selector::parse(selector).unwrap();
    html.select(&sel)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_string())
}

/// The non-empty texts inside an element, trimmed, in order (a table
/// row's cells, say).
pub fn texts(el: scraper::ElementRef<'_>) -> Vec<String> {
    el.text()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get(header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

pub fn assert_redirect_to(r: &Response, to: &str) {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {to}"
    );
    assert_eq!(location(r), to);
}

/// What uploads left in a media folder's `tmp/`: every file but the empty
/// scratch files a bucket's store keeps for reuse, sorted.
pub fn upload_leftovers(media_root: &std::path::Path) -> Vec<String> {
    let tmp = media_root.join("tmp");
    list_files(&tmp)
        .into_iter()
        .filter(|f| !vetter::media::is_kept_scratch(&tmp.join(f)))
        .collect()
}

/// Every file under `root`, as paths relative to it, sorted.
pub fn list_files(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The candidates' ids by name, from an upload answer's `candidates`.
pub fn ids_by_name(answer: &serde_json::Value) -> std::collections::HashMap<String, i64> {
    answer["candidates"]
        .as_array()
        .expect("an upload answer lists its candidates")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

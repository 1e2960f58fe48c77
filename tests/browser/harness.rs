//! The app in-process on a random port (as in `tests/api/helpers.rs`), a
//! browser pointed at it, and the data the browser tests need.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::Client;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::{oneshot, Mutex, MutexGuard};
use vetter::config::Config;
use vetter::db::users;
use vetter::domain::{Role, UserId, Username};
use vetter::startup::Application;

use crate::webdriver::{keys, Driver, Session};

pub fn unique() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One browser at a time: the tests measure paint times, and two Chromiums
/// on a small machine would measure each other.
static BROWSER: Mutex<()> = Mutex::const_new(());

pub async fn browser_lock() -> MutexGuard<'static, ()> {
    BROWSER.lock().await
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    /// The server's own pools, derived from `pool`.
    pub server_pools: vetter::db::Pools,
    media_root: PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

pub struct TestUser {
    pub id: UserId,
    pub username: String,
    pub password: String,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, |_| {}).await
    }

    pub async fn spawn_with(pool: PgPool, tweak: impl FnOnce(&mut Config)) -> Self {
        if std::env::var("TEST_LOG").is_ok() {
            vetter::telemetry::init();
        }
        let media_root = std::env::temp_dir().join(format!(
            "vetter-browser-media-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&media_root).unwrap();
        let mut config = Config::for_tests("postgres://unused", media_root.clone());
        tweak(&mut config);
        let app = Application::build(config, pool.clone()).await.unwrap();
        let port = app.port();
        let server_pools = app.pools();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Self {
            address: format!("http://127.0.0.1:{port}"),
            pool,
            server_pools,
            media_root,
            stop: Some(tx),
        }
    }

    /// Shuts the server down (gracefully, as on SIGTERM) while the test
    /// goes on.
    pub fn stop_server(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Where the server keeps its files (for `vetter demo` to fill).
    pub fn media_root(&self) -> &std::path::Path {
        &self.media_root
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn create_user(&self, username: &str, role: Role) -> TestUser {
        let password = format!("{username}-password-1");
        let hash = vetter::auth::password::hash_blocking(&password).unwrap();
        let name: Username = username.parse().unwrap();
        let id = users::insert(&self.pool, &name, &hash, role).await.unwrap();
        TestUser {
            id,
            username: username.into(),
            password,
        }
    }

    /// Uploads project `demo` (tags Noise, Pulsar, Flare, in that order) with
    /// candidates `c01`..`c{n}` through the upload API, as an admin. Returns
    /// the candidates' ids by name and the tag ids in order.
    pub async fn upload_demo(&self, n: usize) -> Demo {
        let admin = self.create_user("admin", Role::Admin).await;
        let (token, _) = vetter::db::api_tokens::create(
            &self.pool,
            admin.id,
            "t",
            vetter::domain::token::TokenScopes::UPLOAD,
        )
        .await
        .unwrap();
        let client = Client::new();
        let put = |path: &str, body: Value| {
            client
                .put(self.url(path))
                .bearer_auth(&token)
                .json(&body)
                .send()
        };
        let r = put(
            "/api/v1/projects/demo",
            json!({"name": "Demo", "metrics": [{"key": "snr", "label": "SNR"}],
                   "tags": [{"name": "Noise"}, {"name": "Pulsar"}, {"name": "Flare"}]}),
        )
        .await
        .unwrap();
        assert!(
            r.status().is_success(),
            "project: {}",
            r.text().await.unwrap()
        );
        let r = put(
            "/api/v1/projects/demo/observations/obs1",
            json!({"start_time": "2024-05-01T12:00:00Z"}),
        )
        .await
        .unwrap();
        assert!(r.status().is_success(), "obs: {}", r.text().await.unwrap());
        let candidates: Vec<Value> = (1..=n)
            .map(|i| {
                json!({"name": format!("c{i:02}"), "ra": 10.0 + i as f64 * 0.01, "dec": -30.0,
                       "metrics": {"snr": 5.0 + i as f64}})
            })
            .collect();
        let r = client
            .post(self.url("/api/v1/projects/demo/observations/obs1/candidates"))
            .bearer_auth(&token)
            .json(&json!({ "candidates": candidates }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "batch upload: {}", r.status());
        let body: Value = r.json().await.unwrap();
        let ids = body["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["id"].as_i64().unwrap(),
                )
            })
            .collect();
        let tags: Vec<(i64, String)> = sqlx::query_as(
            "SELECT t.id, t.name FROM tags t JOIN projects p ON p.id = t.project_id
             WHERE p.slug = 'demo' ORDER BY t.position, t.id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        Demo { ids, tags }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.media_root);
    }
}

pub struct Demo {
    /// Candidate id by name.
    pub ids: std::collections::HashMap<String, i64>,
    /// (id, name) of the project's tags, in the project's order.
    pub tags: Vec<(i64, String)>,
}

/// Signs in through the login form, typing like a person, and waits for
/// the home page.
pub async fn login(s: &Session, app: &TestApp, user: &TestUser) {
    s.goto(&app.url("/login")).await;
    let name = s.find("input[name=username]").await;
    s.type_into(&name, &user.username).await;
    let pw = s.find("input[name=password]").await;
    s.type_into(&pw, &user.password).await;
    s.press(keys::ENTER).await;
    s.wait_for(
        "the home page after signing in",
        "return location.pathname === '/' && !!document.querySelector('.who a');",
        Duration::from_secs(10),
    )
    .await;
}

/// True once the shown candidate is painted and past the guard time in
/// which verdict keys are dropped: when a reviewer's key counts.
pub const READY_TO_RATE_JS: &str = "const c = document.querySelector('main#main #candidate'); \
    return !!c && !!c.dataset.paintedAt && performance.now() - parseFloat(c.dataset.paintedAt) \
    >= (parseInt(c.dataset.guardMs, 10) || 0);";

pub fn screenshot_path(name: &str) -> PathBuf {
    // Integration tests run with the package root as the working directory.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("browser-screenshots").join(name)
}

/// A browser on the app: driver, session and app, for one test.
pub async fn browser() -> (Driver, Session) {
    let driver = Driver::start().await;
    let session = driver.session().await;
    (driver, session)
}

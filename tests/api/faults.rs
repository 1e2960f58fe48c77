//! Faults: reviewers keep rating while PostgreSQL restarts and then stays
//! down for a few seconds. The server must stay up, say so on `/healthz`,
//! answer every request during the outage with something a person can act
//! on (never a blank or a 500), and afterwards hold every rating it answered
//! as saved, exactly once, however often a submission was sent again.
//!
//! The database here is a private cluster this test starts and stops on a
//! free loopback port, so the shared server other tests use is left alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::json;
use vetter::domain::Role;

use crate::helpers::{create_user, select_attr, TestApp, TestUser};
use crate::upload_api::uploader;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const REVIEWERS: usize = 8;
const CANDIDATES: usize = 300;

/// A throwaway PostgreSQL cluster; stopped and deleted on drop, so a failing
/// assertion leaves nothing running.
struct Cluster {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn start() -> Self {
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("vetter-faults-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // From here on the guard cleans up whatever was made.
        let cluster = Self {
            dir,
            port,
            as_postgres,
        };
        if as_postgres {
            // PostgreSQL refuses to run as root (as containers/local/database.sh knows).
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of {} to postgres", cluster.dir.display());
        }
        let data = cluster.data();
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nlc_messages = 'C'\n",
            cluster.dir.join("run").display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        cluster.pg_ctl(&["start", "-w", "-t", "20"]);
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let path = Path::new(BIN).join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.current_dir("/");
        c
    }

    /// Runs pg_ctl and panics with its output if it fails.
    fn pg_ctl(&self, args: &[&str]) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "-t", "10", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// pg_ctl waits for the server; keep that off the runtime's threads, which
/// are serving the app.
async fn pg_ctl(cluster: &Arc<Cluster>, args: &'static [&'static str]) {
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pg_ctl(args))
        .await
        .unwrap();
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// A signed-in browser: its client (with the session cookie) and the
/// session's CSRF token.
async fn sign_in(app: &TestApp, user: &TestUser) -> (Client, String) {
    let c = client();
    let token_on = |html: String| {
        select_attr(
            &scraper::Html::parse_document(&html),
            "input[name=csrf_token]",
            "value",
        )
        .expect("a csrf_token field")
    };
    let page = c.get(app.url("/login")).send().await.unwrap();
    let token = token_on(page.text().await.unwrap());
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("username", user.username.as_str()),
            ("password", user.password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "login of {}",
        user.username
    );
    let page = c.get(app.url("/account")).send().await.unwrap();
    let token = token_on(page.text().await.unwrap());
    (c, token)
}

/// A project with `CANDIDATES` candidates; their ids.
async fn seed(app: &TestApp) -> Vec<i64> {
    let api = uploader(app).await;
    let (s, body) = api
        .put(
            "/projects/f",
            json!({"name": "Faults", "tags": [{"name": "Noise"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .put(
            "/projects/f/observations/o1",
            json!({"start_time": "2024-05-01T12:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let cands: Vec<_> = (0..CANDIDATES)
        .map(|i| json!({"name": format!("f{i:03}"), "ra": 10.0 + i as f64 * 0.01, "dec": -30.0}))
        .collect();
    let (s, body) = api
        .post(
            "/projects/f/observations/o1/candidates",
            json!({"candidates": cands}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

/// One form a reviewer sent, perhaps several times.
#[derive(Debug, Clone)]
struct Submission {
    user: i64,
    candidate: i64,
    key: String,
    verdict: &'static str,
    attempts: u32,
    saved: bool,
}

#[derive(Default)]
struct Tally {
    submissions: Vec<Submission>,
    unavailable: u32,
    transport_errors: u32,
    /// Outage answers given after the handler had finished.
    unconfirmed: u32,
    /// The longest any answer took.
    slowest: Duration,
    /// Anything that is neither "saved" nor a proper outage answer.
    wrong: Vec<String>,
}

const VERDICTS: [&str; 3] = ["real", "not_real", "unsure"];

/// A signed-in reviewer's browser.
struct Browser {
    url: String,
    client: Client,
    csrf: String,
    who: usize,
    user: i64,
}

/// What all reviewers share: the candidates, when to stop starting new
/// ratings, when to give up on one, and the tally.
struct Run {
    ids: Vec<i64>,
    stop: AtomicBool,
    give_up: Instant,
    tally: Mutex<Tally>,
}

/// Sends one rating form until the server answers that it is saved, the
/// same key each time, as a person pressing the key again would.
async fn submit(b: &Browser, run: &Run, candidate: i64, key: String, verdict: &'static str) {
    let (c, csrf, app_url, tally) = (&b.client, &b.csrf, &b.url, &run.tally);
    let mut s = Submission {
        user: b.user,
        candidate,
        key,
        verdict,
        attempts: 0,
        saved: false,
    };
    while Instant::now() < run.give_up {
        s.attempts += 1;
        let sent = Instant::now();
        let r = c
            .post(format!("{app_url}/candidates/{candidate}/rating"))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", csrf)
            .form(&[("verdict", verdict), ("key", s.key.as_str())])
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                tally.lock().unwrap().transport_errors += 1;
                eprintln!("transport error: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let status = r.status();
        let retarget = r
            .headers()
            .get("hx-retarget")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.text().await.unwrap_or_default();
        {
            let mut t = tally.lock().unwrap();
            t.slowest = t.slowest.max(sent.elapsed());
        }
        if status.is_success() && retarget.is_none() && body.contains("id=\"candidate") {
            s.saved = true;
            break;
        }
        let lower = body.to_lowercase();
        if status == StatusCode::SERVICE_UNAVAILABLE
            && retarget.as_deref() == Some("#toasts")
            && lower.contains("toast-error")
            && lower.contains("saved")
            && lower.contains("try again")
            && !lower.contains("<html")
        {
            let mut t = tally.lock().unwrap();
            t.unavailable += 1;
            // The handler ran, its session could not be stored: the
            // rating may be saved, and the retry must then not count twice.
            if lower.contains("before this could be confirmed") {
                t.unconfirmed += 1;
            }
        } else {
            tally.lock().unwrap().wrong.push(format!(
                "{status} retarget={retarget:?} body={:?}",
                body.chars().take(300).collect::<String>()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tally.lock().unwrap().submissions.push(s);
}

/// A reviewer working through the candidates from their own starting point;
/// every fifth rating is changed at once (a second form, a new key).
async fn reviewer(b: Browser, run: Arc<Run>) {
    let ids = &run.ids;
    let who = b.who;
    let start = who * ids.len() / REVIEWERS;
    for i in 0..ids.len() {
        if run.stop.load(Ordering::Relaxed) {
            break;
        }
        let cand = ids[(start + i) % ids.len()];
        let first = VERDICTS[(who + i) % 3];
        submit(&b, &run, cand, format!("r{who}-c{cand}-1"), first).await;
        if i % 5 == 4 {
            let second = VERDICTS[(who + i + 1) % 3];
            submit(&b, &run, cand, format!("r{who}-c{cand}-2"), second).await;
        }
    }
}

/// What `/healthz` said, and when.
#[derive(Debug, Clone)]
struct Probe {
    at: Duration,
    status: Option<StatusCode>,
    database: String,
}

async fn watch_health(
    url: String,
    t0: Instant,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Probe>>>,
) {
    let c = client();
    while !stop.load(Ordering::Relaxed) {
        let r = c.get(&url).send().await;
        let probe = match r {
            Ok(r) => {
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                Probe {
                    at: t0.elapsed(),
                    status: Some(status),
                    database: body["database"].as_str().unwrap_or("").to_string(),
                }
            }
            Err(_) => Probe {
                at: t0.elapsed(),
                status: None,
                database: String::new(),
            },
        };
        seen.lock().unwrap().push(probe);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn wait_healthy(app: &TestApp, within: Duration) {
    let until = Instant::now() + within;
    loop {
        if let Ok(r) = client().get(app.url("/healthz")).send().await {
            if r.status() == StatusCode::OK {
                return;
            }
        }
        assert!(Instant::now() < until, "/healthz not 200 within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_alive(app: &TestApp) {
    assert!(
        !app.server.as_ref().unwrap().is_finished(),
        "the server task ended"
    );
}

/// What the server answers while the database is down, to each kind of
/// client, all at once so the outage need not outlast them. Each answer must
/// come within a few seconds (the pool gives up, the request does not hang).
async fn probe_outage(app: &TestApp, c: &Client) {
    let fast = |started: Instant, what: &str| {
        let took = started.elapsed();
        assert!(took < Duration::from_secs(8), "{what} took {took:?}");
    };
    let health = async {
        let t = Instant::now();
        let r = client().get(app.url("/healthz")).send().await.unwrap();
        fast(t, "/healthz");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["database"], "unreachable", "{body}");
    };
    // htmx: a toast in the toast area, never a blank swap.
    let htmx = async {
        let t = Instant::now();
        let r = c
            .get(app.url("/next"))
            .header("HX-Request", "true")
            .send()
            .await
            .unwrap();
        fast(t, "htmx /next");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["hx-retarget"], "#toasts");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("toast-error") && body.contains("Nothing was saved"),
            "{body}"
        );
    };
    // A plain page load: a whole page that says what happened.
    let plain = async {
        let t = Instant::now();
        let r = c.get(app.url("/next")).send().await.unwrap();
        fast(t, "/next");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("<html") && body.contains("Temporarily unavailable"),
            "{body}"
        );
    };
    // No session yet: the login page needs no database (its CSRF token lives
    // in a cookie), so it still shows; signing in is what fails, with a page
    // that says why.
    let sign_in = |htmx: bool| async move {
        let c = client();
        // The page shows (it would panic on an error page without a form).
        let token = crate::helpers::login_token(&c, app).await;
        let mut post = c.post(app.url("/login")).form(&[
            ("username", "alice"),
            ("password", "whatever-it-is"),
            ("csrf_token", token.as_str()),
        ]);
        if htmx {
            post = post.header("HX-Request", "true");
        }
        let t = Instant::now();
        let r = post.send().await.unwrap();
        fast(t, "POST /login");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        if htmx {
            assert_eq!(r.headers()["hx-retarget"], "#toasts");
        }
        let body = r.text().await.unwrap();
        let expected = if htmx { "toast-error" } else { "<html" };
        assert!(
            body.contains(expected) && body.contains("Temporarily unavailable")
                || body.contains(expected) && body.to_lowercase().contains("try again"),
            "{body}"
        );
    };
    let fresh = sign_in(false);
    let fresh_htmx = sign_in(true);
    tokio::join!(health, htmx, plain, fresh, fresh_htmx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ratings_survive_a_database_restart_and_an_outage() {
    tokio::time::timeout(Duration::from_secs(60), faults())
        .await
        .expect("the fault test finishes in time");
}

async fn faults() {
    let setup = Instant::now();
    let cluster = Arc::new(tokio::task::spawn_blocking(Cluster::start).await.unwrap());
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&cluster.url())
        .await
        .unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS q3c")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    // The app's own pool, with its production settings.
    let pool = vetter::db::lazy_pool(&cluster.url()).unwrap();
    vetter::db::migrate(&pool).await.unwrap();
    let app = TestApp::spawn(pool.clone()).await;
    let ids = seed(&app).await;
    let mut browsers = Vec::new();
    for who in 0..REVIEWERS {
        let user = create_user(&pool, &format!("rev{who}"), Role::Reviewer).await;
        let (c, csrf) = sign_in(&app, &user).await;
        browsers.push(Browser {
            url: app.address.clone(),
            client: c,
            csrf,
            who,
            user: user.id.0,
        });
    }
    let prober = create_user(&pool, "prober", Role::Reviewer).await;
    let (probe_client, _) = sign_in(&app, &prober).await;
    eprintln!("setup took {:?}", setup.elapsed());

    let t0 = Instant::now();
    let run = Arc::new(Run {
        ids,
        stop: AtomicBool::new(false),
        // Past this a reviewer gives up on a form; the checks below then fail.
        give_up: t0 + Duration::from_secs(40),
        tally: Mutex::new(Tally::default()),
    });
    let stop_watch = Arc::new(AtomicBool::new(false));
    let health = Arc::new(Mutex::new(Vec::new()));
    let watcher = tokio::spawn(watch_health(
        app.url("/healthz"),
        t0,
        stop_watch.clone(),
        health.clone(),
    ));
    let workers: Vec<_> = browsers
        .into_iter()
        .map(|b| tokio::spawn(reviewer(b, run.clone())))
        .collect();

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_alive(&app);
    let restart_at = t0.elapsed();
    pg_ctl(&cluster, &["restart", "-m", "fast", "-w", "-t", "20"]).await;
    wait_healthy(&app, Duration::from_secs(15)).await;
    assert_alive(&app);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let down_at = t0.elapsed();
    pg_ctl(&cluster, &["stop", "-m", "fast", "-w", "-t", "20"]).await;
    let down = Instant::now();
    // A real outage window, at least as long as the probes take.
    tokio::join!(
        probe_outage(&app, &probe_client),
        tokio::time::sleep(Duration::from_secs(5))
    );
    assert_alive(&app);
    let down_for = down.elapsed();
    pg_ctl(&cluster, &["start", "-w", "-t", "20"]).await;
    let up_at = t0.elapsed();
    wait_healthy(&app, Duration::from_secs(15)).await;
    let healthy_at = t0.elapsed();
    assert_alive(&app);
    tokio::time::sleep(Duration::from_secs(2)).await;

    run.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    stop_watch.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    assert_alive(&app);
    let load_took = t0.elapsed();

    let tally = std::mem::take(&mut *run.tally.lock().unwrap());
    let health = health.lock().unwrap().clone();

    // What /healthz saw: the longest run of answers that were not 200.
    let mut outage: Option<(Duration, Duration)> = None;
    let mut bad_since: Option<Duration> = None;
    for p in &health {
        match (p.status, bad_since) {
            (Some(StatusCode::OK), Some(since)) => {
                let span = p.at - since;
                if outage.is_none_or(|(a, b)| b - a < span) {
                    outage = Some((since, p.at));
                }
                bad_since = None;
            }
            (Some(StatusCode::OK), None) => {}
            (_, None) => bad_since = Some(p.at),
            _ => {}
        }
    }
    let unreachable = health
        .iter()
        .filter(|p| p.status == Some(StatusCode::SERVICE_UNAVAILABLE))
        .count();
    assert!(
        health
            .iter()
            .filter(|p| p.status == Some(StatusCode::SERVICE_UNAVAILABLE))
            .all(|p| p.database == "unreachable"),
        "a 503 from /healthz says the database is unreachable"
    );
    assert!(
        health.iter().all(|p| p.status.is_some()),
        "/healthz always answered"
    );
    assert_eq!(health.last().unwrap().status, Some(StatusCode::OK));

    // The database against what reviewers were told.
    let saved: Vec<&Submission> = tally.submissions.iter().filter(|s| s.saved).collect();
    let mut last: HashMap<(i64, i64), &Submission> = HashMap::new();
    let mut changes: HashMap<(i64, i64), i64> = HashMap::new();
    for s in &saved {
        if last.insert((s.user, s.candidate), s).is_some() {
            *changes.entry((s.user, s.candidate)).or_default() += 1;
        }
    }
    let rows: Vec<(i64, i64, String, Option<String>)> =
        sqlx::query_as("SELECT user_id, candidate_id, verdict::text, idempotency_key FROM ratings")
            .fetch_all(&pool)
            .await
            .unwrap();
    let history: HashMap<(i64, i64), i64> = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT user_id, candidate_id, count(*) FROM rating_history GROUP BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(u, c, n)| ((u, c), n))
    .collect();
    let in_db: HashMap<(i64, i64), (String, Option<String>)> = rows
        .iter()
        .map(|(u, c, v, k)| ((*u, *c), (v.clone(), k.clone())))
        .collect();
    let found = saved
        .iter()
        .filter(|s| {
            // A saved form is either the current rating or the one a later
            // saved form of the same reviewer replaced.
            let cur = &in_db.get(&(s.user, s.candidate));
            match cur {
                Some((v, k)) if k.as_deref() == Some(s.key.as_str()) => v == s.verdict,
                Some(_) => history.contains_key(&(s.user, s.candidate)),
                None => false,
            }
        })
        .count();
    let mut duplicates = 0i64;
    for (pair, n) in &history {
        duplicates += (n - changes.get(pair).copied().unwrap_or(0)).max(0);
    }
    duplicates += rows.len() as i64 - last.len() as i64;
    let miscounted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM candidates c
         WHERE rating_count <> (SELECT count(*) FROM ratings r WHERE r.candidate_id = c.id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let retried = tally.submissions.iter().filter(|s| s.attempts > 1).count();
    let attempts: u32 = tally.submissions.iter().map(|s| s.attempts).sum();

    eprintln!(
        "faults: {} forms sent in {attempts} requests over {load_took:?}; {} answered saved, \
         {found} of those found in the database, {duplicates} duplicates, {miscounted} candidates \
         miscounted; {retried} forms retried, {} outage answers (503 toasts, {} of them after the handler finished), {} transport errors, \
         {} wrong answers; slowest answer {:?}",
        tally.submissions.len(),
        saved.len(),
        tally.unavailable,
        tally.unconfirmed,
        tally.transport_errors,
        tally.wrong.len(),
        tally.slowest,
    );
    eprintln!(
        "faults: restart at {restart_at:?}; stop at {down_at:?} for {down_for:?}, start at \
         {up_at:?}, healthy at {healthy_at:?}; /healthz: {} probes, {unreachable} answered 503, longest outage seen \
         {:?}",
        health.len(),
        outage.map(|(a, b)| (a, b, b - a)),
    );

    assert!(
        tally.wrong.is_empty(),
        "every answer is saved or a 503 toast: {:#?}",
        &tally.wrong[..tally.wrong.len().min(10)]
    );
    assert_eq!(
        tally.transport_errors, 0,
        "the server never dropped a request"
    );
    assert!(
        tally.submissions.iter().all(|s| s.saved),
        "every form was saved in the end: {:?}",
        tally
            .submissions
            .iter()
            .filter(|s| !s.saved)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(tally.unavailable > 0, "the outage reached the reviewers");
    assert!(unreachable > 0, "/healthz reported the outage");
    let (from, to) = outage.expect("/healthz saw the outage end");
    // /healthz notices within the pool's acquire timeout, so it sees less
    // than the whole window.
    assert!(to - from >= Duration::from_secs(1), "{from:?}..{to:?}");
    assert_eq!(
        found,
        saved.len(),
        "every rating answered as saved is stored"
    );
    for ((u, c), s) in &last {
        assert_eq!(
            in_db.get(&(*u, *c)),
            Some(&(s.verdict.to_string(), Some(s.key.clone()))),
            "the last saved form of reviewer {u} for candidate {c} is the current rating"
        );
    }
    assert_eq!(duplicates, 0, "no form counted twice");
    assert_eq!(
        history.values().sum::<i64>(),
        changes.values().sum::<i64>(),
        "one history entry per change"
    );
    assert_eq!(miscounted, 0, "rating counts match the ratings");
    drop(app);
    pool.close().await;
}

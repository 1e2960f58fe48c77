//! Notifications against real receivers: an HTTP receiver on a tokio
//! listener here, and an SMTP server with STARTTLS in Python's standard
//! library (`tests/common/smtp_receiver.py`), both counting what arrives.
//! The server under test runs its own delivery worker, polling fast.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vetter::config::{Config, Secret, SmtpSecurity, SmtpSettings};
use vetter::domain::{CandidateId, ProjectId, Role};
use vetter::outbound::HostRules;

use crate::candidates::reviewer;
use crate::helpers::{TestApp, TestUser};
use crate::upload_api::{uploader, Api};

const SIGNING: &str = "test-signing-secret-0123456789";

// ---- An HTTP receiver ----

#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

/// Answers by path: `/fail/N` 500 for its first N requests then 200,
/// `/hang` never, `/redirect` 302 to `/redirected`, anything else 200.
struct Receiver {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let recorded = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let hits = recorded.clone();
                tokio::spawn(async move {
                    let Some(hit) = read_request(&mut conn).await else {
                        return;
                    };
                    let path = hit.path.clone();
                    let seen = {
                        let mut h = hits.lock().unwrap();
                        h.push(hit);
                        h.iter().filter(|x| x.path == path).count()
                    };
                    let answer = if path == "/hang" {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    } else if path == "/redirect" {
                        format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/redirected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    } else if let Some(n) = path.strip_prefix("/fail/") {
                        if seen <= n.parse::<usize>().unwrap() {
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\nConnection: close\r\n\r\nbroken".to_string()
                        } else {
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                                .to_string()
                        }
                    } else {
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                            .to_string()
                    };
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Self { port, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, path: &str, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let hits = self.hits(path);
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {n} requests arrived",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Hit> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Hit {
        path,
        headers,
        body,
        at: Instant::now(),
    })
}

// ---- An SMTP receiver (Python), with its own certificate authority ----

struct Smtp {
    child: Child,
    port: u16,
    dir: PathBuf,
    ca: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
fn certificates(dir: &Path) {
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=vetter test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &p("leaf.key"),
            "-out",
            &p("leaf.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("leaf.pem"),
            "-days",
            "2",
            "-extfile",
            &p("leaf.ext"),
        ],
    ] {
        run(Command::new("openssl").args(&args).stdout(Stdio::null()));
    }
}

impl Smtp {
    fn start(starttls: bool) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vetter-smtp-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        certificates(&dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/smtp_receiver.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script)
            .arg(&out)
            .arg(dir.join("leaf.pem"))
            .arg(dir.join("leaf.key"))
            .args(["vetter", "relay-password"]);
        if !starttls {
            cmd.arg("--no-starttls");
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().expect("the SMTP receiver's port");
        Self {
            child,
            port,
            ca: dir.join("ca.pem"),
            dir,
        }
    }

    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            security: SmtpSecurity::StartTls,
            user: Some("vetter".into()),
            password: Some(Secret::new("relay-password")),
            from: "vetter@example.org".into(),
            ca_file: Some(self.ca.clone()),
        }
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("out"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages arrived",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---- The app, a project, targets ----

/// Settings of a server that sends: polls every 50 ms, allows 127.0.0.1
/// (a private address, named as such), retries after 200 ms, gives up a
/// request after a second.
fn sending(c: &mut Config, smtp: Option<SmtpSettings>) {
    c.notify.poll = Some(Duration::from_millis(50));
    c.notify.hosts = HostRules::parse(&[], &["127.0.0.1".into()]).unwrap();
    c.notify.url_key = Some(Secret::new("u".repeat(40)));
    c.notify.signing_secret = Some(Secret::new(SIGNING));
    c.notify.retry_base = Duration::from_millis(200);
    c.notify.max_attempts = 4;
    c.notify.connect_timeout = Duration::from_secs(1);
    c.notify.timeout = Duration::from_secs(1);
    c.notify.smtp = smtp;
}

/// Project `vast` with observation SB1 and candidates c1 and c2 at one
/// position (a group) and c3 apart; `admin` signed in on the app.
struct World {
    app: TestApp,
    admin: TestUser,
    token: String,
    ids: HashMap<String, i64>,
}

impl World {
    fn api(&self) -> Api<'_> {
        Api {
            app: &self.app,
            token: self.token.clone(),
        }
    }

    async fn finish(&self) -> Value {
        let (s, b) = self
            .api()
            .post("/projects/vast/observations/SB1/finished", json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// Adds a target through the admin form, which must take it.
    async fn add_target(&self, name: &str, kind: &str, to: &str, events: &[&str]) {
        let status = self.try_target(name, kind, to, events).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "adding {name}");
    }

    /// Adds a target through the admin form; the answer's status.
    async fn try_target(&self, name: &str, kind: &str, to: &str, events: &[&str]) -> StatusCode {
        let mut form = vec![("name", name), ("kind", kind), ("enabled", "on")];
        form.push(if kind == "email" {
            ("addresses", to)
        } else {
            ("url", to)
        });
        for e in events {
            form.push(("event", e));
        }
        self.app
            .post_form("/admin/projects/vast/notifications", &form)
            .await
            .status()
    }

    /// A webhook target "hook" written straight into the table (a server
    /// that sends nothing has no key to seal a URL with).
    async fn add_target_unchecked(&self) {
        sqlx::query(
            "INSERT INTO notify_targets (project_id, name, kind, url_sealed, events)
             SELECT id, 'hook', 'webhook', '\\x00', '{upload_finished}' FROM projects WHERE slug = 'vast'",
        )
        .execute(&self.app.pool)
        .await
        .unwrap();
    }

    async fn target_id(&self, name: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM notify_targets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn project(&self) -> ProjectId {
        ProjectId(
            sqlx::query_scalar("SELECT id FROM projects WHERE slug = 'vast'")
                .fetch_one(&self.app.pool)
                .await
                .unwrap(),
        )
    }
}

async fn world(pool: PgPool, smtp: Option<SmtpSettings>) -> World {
    world_with(pool, move |c| sending(c, smtp)).await
}

async fn world_with(pool: PgPool, tweak: impl FnOnce(&mut Config)) -> World {
    let app = TestApp::spawn_with(pool, tweak).await;
    let token = uploader(&app).await.token;
    let api = Api {
        app: &app,
        token: token.clone(),
    };
    let (s, b) = api
        .put(
            "/projects/vast",
            json!({"name": "VAST pilot", "metrics": [{"key": "snr", "label": "S/N"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api
        .put(
            "/projects/vast/observations/SB1",
            json!({"start_time": "2024-05-01T12:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api
        .post(
            "/projects/vast/observations/SB1/candidates",
            json!({"candidates": [
                {"name": "c1", "ra": 10.0, "dec": -30.0, "metrics": {"snr": 9.0}},
                {"name": "c2", "ra": 10.0001, "dec": -30.0, "metrics": {"snr": 7.0}},
                {"name": "c3", "ra": 50.0, "dec": 20.0, "metrics": {"snr": 5.0}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ids = crate::helpers::ids_by_name(&b);
    let admin = app.create_user("adam", Role::Admin).await;
    app.login_as(&admin).await;
    World {
        app,
        admin,
        token,
        ids,
    }
}

async fn rate(app: &TestApp, id: i64, verdict: &str) {
    crate::candidates::rate(app, id, verdict, &[], "").await;
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    status: String,
    attempts: i32,
    last_error: String,
}

async fn deliveries(pool: &PgPool) -> Vec<Row> {
    sqlx::query_as("SELECT status, attempts, last_error FROM notify_deliveries ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The first delivery, once an attempt of it has failed.
async fn first_failure(pool: &PgPool) -> Row {
    until("a failure is recorded", async || {
        deliveries(pool)
            .await
            .first()
            .is_some_and(|d| !d.last_error.is_empty())
    })
    .await;
    deliveries(pool).await.remove(0)
}

/// The first delivery, once an attempt of it has failed with an error
/// that says each of `says`.
async fn failed_saying(pool: &PgPool, says: &[&str]) -> Row {
    let d = first_failure(pool).await;
    for part in says {
        assert!(d.last_error.contains(part), "{part:?}: {}", d.last_error);
    }
    d
}

/// Nothing reaches `path`, given the worker time to have tried.
async fn never_reaches(hooks: &Receiver, path: &str) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hooks.hits(path).is_empty(), "{path} was reached");
}

async fn until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signed_ok(hit: &Hit) -> bool {
    let ts = &hit.headers["x-vetter-timestamp"];
    let want = vetter::notify::worker::signature(SIGNING, ts, &hit.body);
    hit.headers["x-vetter-signature"] == want
}

/// Scores c1 0.9, c3 0.4 and c2 0.1 with an accepted model.
async fn score(pool: &PgPool, ids: &HashMap<String, i64>) {
    let scores = [(ids["c1"], 0.9), (ids["c3"], 0.4), (ids["c2"], 0.1)];
    crate::scores::model_scores(pool, "vast", 1, &scores).await;
}

// ---- The tests ----

#[sqlx::test]
async fn a_finished_upload_is_told_once_to_a_webhook_a_slack_channel_and_an_email_list(
    pool: PgPool,
) {
    let hooks = Receiver::start().await;
    let smtp = Smtp::start(true);
    let w = world(pool, Some(smtp.settings())).await;
    score(&w.app.pool, &w.ids).await;
    // c1 has a known source nearby.
    sqlx::raw_sql(
        "INSERT INTO catalogues (name) VALUES ('racs');
         INSERT INTO catalogue_nearest (candidate_id, catalogue_id, row_no, separation_arcsec)
         SELECT c.id, k.id, 1, 2.5 FROM candidates c, catalogues k WHERE c.name = 'c1'",
    )
    .execute(&w.app.pool)
    .await
    .unwrap();
    let ev = ["upload_finished"];
    w.add_target("pipeline hook", "webhook", &hooks.url("/hook"), &ev)
        .await;
    w.add_target(
        "team",
        "slack",
        &hooks.url("/services/T0/B0/SECRETPART"),
        &ev,
    )
    .await;
    w.add_target("mail", "email", "ann@example.org, bob@example.org", &ev)
        .await;
    // Told of something else only: not a receiver of this event.
    w.add_target(
        "other",
        "webhook",
        &hooks.url("/other"),
        &["consensus_real"],
    )
    .await;

    let started = Instant::now();
    let b = w.finish().await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the call waited for the receivers"
    );
    assert_eq!(b["status"], "finished");
    assert_eq!(b["notifications"], 3);

    let hook = hooks.wait_for("/hook", 1).await;
    assert!(signed_ok(&hook[0]), "the signature checks out");
    assert_eq!(hook[0].headers["content-type"], "application/json");
    assert_eq!(hook[0].headers["x-vetter-event"], "upload_finished");
    let j: Value = serde_json::from_slice(&hook[0].body).unwrap();
    assert_eq!(j["event"], "upload_finished");
    assert_eq!(j["project"]["slug"], "vast");
    assert_eq!(j["data"]["observation"]["external_id"], "SB1");
    assert_eq!(j["data"]["candidates"], 3);
    assert_eq!(j["data"]["new"], 3);
    assert_eq!(j["data"]["matched"], 1);
    assert_eq!(j["data"]["matched_by_catalogue"]["racs"], 1);
    let top: Vec<&str> = j["data"]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["c1", "c3", "c2"], "most likely real first");
    assert_eq!(
        j["data"]["top"][0]["url"],
        format!("http://127.0.0.1/candidates/{}", w.ids["c1"])
    );
    let slack = hooks.wait_for("/services/T0/B0/SECRETPART", 1).await;
    let s: Value = serde_json::from_slice(&slack[0].body).unwrap();
    let text = s["text"].as_str().unwrap();
    assert!(
        text.contains("*VAST pilot*") && text.contains("3 candidates"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<http://127.0.0.1/candidates/{}|c1>", w.ids["c1"])),
        "{text}"
    );
    assert_eq!(s.as_object().unwrap().len(), 1, "Slack gets only text");

    let mail = smtp.wait_for(1).await;
    assert_eq!(mail[0]["to"], json!(["ann@example.org", "bob@example.org"]));
    assert_eq!(mail[0]["tls"], true, "sent after STARTTLS");
    assert_eq!(mail[0]["user"], "vetter");
    assert_eq!(mail[0]["subject"], "VAST pilot: upload of SB1 finished");
    let body = mail[0]["body"].as_str().unwrap();
    assert!(
        body.contains("Most likely real") && body.contains("c1 (http://127.0.0.1/candidates/"),
        "{body}"
    );

    // Said again with nothing new: nobody is told twice.
    let b = w.finish().await;
    assert_eq!(b["status"], "unchanged");
    assert_eq!(b["notifications"], 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hooks.hits("/hook").len(), 1);
    assert_eq!(hooks.hits("/services/T0/B0/SECRETPART").len(), 1);
    assert!(hooks.hits("/other").is_empty());
    assert_eq!(smtp.messages().len(), 1);
    let d = deliveries(&w.app.pool).await;
    assert!(
        d.iter().all(|d| d.status == "delivered" && d.attempts == 1),
        "{d:?}"
    );

    // The secret part of the Slack URL is nowhere to be read.
    let page = w
        .app
        .get("/admin/projects/vast/notifications")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("http://127.0.0.1:") && !page.contains("SECRETPART"));
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM notify_targets WHERE position('SECRETPART' in encode(url_sealed, 'escape')) > 0
                   OR url_hint LIKE '%SECRETPART%')
              + (SELECT count(*) FROM audit_log WHERE detail::text LIKE '%SECRETPART%')",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);

    // New candidates since: the next finish is news again.
    let (s, _) = w
        .api()
        .post(
            "/projects/vast/observations/SB1/candidates",
            json!({"candidates": [{"name": "c4", "ra": 80.0, "dec": 0.0}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(w.finish().await["notifications"], 3);
    // c4 has no score yet: the message waits for the model (up to two
    // minutes), and goes once c4 is scored.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hooks.hits("/hook").len(), 1, "waiting for the scores");
    sqlx::query(
        "INSERT INTO candidate_scores (candidate_id, project_id, model_id, p_real)
         SELECT c.id, c.project_id, m.id, 0.95 FROM candidates c JOIN models m ON m.project_id = c.project_id
         WHERE c.name = 'c4'",
    )
    .execute(&w.app.pool)
    .await
    .unwrap();
    let hook = hooks.wait_for("/hook", 2).await;
    let j: Value = serde_json::from_slice(&hook[1].body).unwrap();
    assert_eq!(
        (j["data"]["candidates"].as_i64(), j["data"]["new"].as_i64()),
        (Some(4), Some(1))
    );
    assert_eq!(j["data"]["top"][0]["name"], "c4");
    smtp.wait_for(2).await;
    until("all are recorded", async || {
        deliveries(&w.app.pool)
            .await
            .iter()
            .all(|d| d.status == "delivered")
    })
    .await;
    let d = deliveries(&w.app.pool).await;
    assert!(
        d.iter().all(|d| d.status == "delivered" && d.attempts == 1),
        "waiting is no attempt: {d:?}"
    );
}

#[sqlx::test]
async fn a_candidate_becoming_real_is_announced_once_whichever_way_it_is_rated(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool.clone(), None).await;
    w.add_target("hook", "webhook", &hooks.url("/real"), &["consensus_real"])
        .await;
    let (ann, _) = reviewer(&w.app, "ann").await;
    let (bob, _) = reviewer(&w.app, "bob").await;
    let (cy, _) = reviewer(&w.app, "cy").await;

    // One by one (the project settles at 2 ahead): c3 is real at bob's rating.
    rate(&ann, w.ids["c3"], "real").await;
    rate(&bob, w.ids["c3"], "not_real").await;
    rate(&bob, w.ids["c3"], "real").await;
    let hit = hooks.wait_for("/real", 1).await;
    let j: Value = serde_json::from_slice(&hit[0].body).unwrap();
    assert_eq!(j["data"]["candidate"]["name"], "c3");
    assert_eq!(
        j["data"]["votes"],
        json!({"real": 2, "not_real": 0, "unsure": 0})
    );
    assert!(signed_ok(&hit[0]));
    // Another agreeing verdict, an undo and the same rating again: no news.
    rate(&cy, w.ids["c3"], "real").await;
    let r = cy.post_form("/undo", &[]).await;
    assert!(
        r.status().is_success() || r.status() == StatusCode::SEE_OTHER,
        "{}",
        r.status()
    );
    rate(&cy, w.ids["c3"], "real").await;

    // A group rated at once (c1 and c2) by two reviewers: both settle.
    let group = w.ids["c1"].min(w.ids["c2"]).to_string();
    for app in [&ann, &bob] {
        let r = app
            .post_form(
                "/batch",
                &[("group", &group), ("verdict", "real"), ("expected", "2")],
            )
            .await;
        assert!(
            r.status().is_success() || r.status() == StatusCode::SEE_OTHER,
            "{}",
            r.status()
        );
    }
    let hits = hooks.wait_for("/real", 3).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut named: Vec<String> = hooks
        .hits("/real")
        .iter()
        .map(|h| {
            serde_json::from_slice::<Value>(&h.body).unwrap()["data"]["candidate"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    named.sort();
    assert_eq!(named, ["c1", "c2", "c3"], "each once: {hits:?}");
}

#[sqlx::test]
async fn a_failing_receiver_is_retried_with_growing_waits_and_told_once(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool, None).await;
    w.add_target(
        "flaky",
        "webhook",
        &hooks.url("/fail/2"),
        &["upload_finished"],
    )
    .await;
    w.finish().await;
    let hits = hooks.wait_for("/fail/2", 3).await;
    let (first, second) = (hits[1].at - hits[0].at, hits[2].at - hits[1].at);
    assert!(first >= Duration::from_millis(190), "first wait {first:?}");
    assert!(
        second >= Duration::from_millis(390),
        "second wait {second:?}"
    );
    assert!(second > first, "{first:?} then {second:?}");
    // The same delivery each time: a receiver can tell a retry.
    assert!(hits
        .iter()
        .all(|h| h.headers["x-vetter-delivery"] == hits[0].headers["x-vetter-delivery"]));
    until("the success is recorded", async || {
        deliveries(&w.app.pool).await[0].status == "delivered"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        hooks.hits("/fail/2").len(),
        3,
        "one success, nothing after it"
    );
    let d = &deliveries(&w.app.pool).await[0];
    assert_eq!((d.attempts, d.last_error.as_str()), (3, ""));
}

#[sqlx::test]
async fn a_receiver_that_keeps_failing_is_given_up_and_an_admin_can_retry_it(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool, None).await;
    w.add_target(
        "broken",
        "webhook",
        &hooks.url("/fail/100"),
        &["upload_finished"],
    )
    .await;
    w.finish().await;
    until("it is given up", async || {
        deliveries(&w.app.pool).await[0].status == "failed"
    })
    .await;
    let d = &deliveries(&w.app.pool).await[0];
    assert_eq!(d.attempts, 4, "VETTER_NOTIFY_MAX_ATTEMPTS");
    assert_eq!(d.last_error, "answered 500: broken");
    assert_eq!(hooks.hits("/fail/100").len(), 4);
    let page = w
        .app
        .get("/admin/projects/vast/notifications")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("answered 500: broken") && page.contains("Retry now"));

    let id: i64 = sqlx::query_scalar("SELECT id FROM notify_deliveries")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    let r = w
        .app
        .post_form(&format!("/admin/deliveries/{id}/retry"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    hooks.wait_for("/fail/100", 5).await;
    until("it is given up again", async || {
        let d = &deliveries(&w.app.pool).await[0];
        d.status == "failed" && d.attempts == 5
    })
    .await;
    let logged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'delivery.retry'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(logged, 1);
}

#[sqlx::test]
async fn a_hanging_receiver_times_out_and_holds_no_request_or_connection(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool.clone(), None).await;
    w.add_target("slow", "slack", &hooks.url("/hang"), &["upload_finished"])
        .await;
    let started = Instant::now();
    w.finish().await;
    assert!(started.elapsed() < Duration::from_millis(900));
    hooks.wait_for("/hang", 1).await;
    // While the receiver holds the request: pages answer at once, and no
    // database session is in a transaction or busy for the worker.
    let t = Instant::now();
    assert_eq!(
        w.app
            .get("/admin/projects/vast/notifications")
            .await
            .status(),
        StatusCode::OK
    );
    assert!(t.elapsed() < Duration::from_millis(900));
    let busy: Vec<(String, String)> = sqlx::query_as(
        "SELECT coalesce(application_name, ''), coalesce(state, '') FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND (state LIKE 'idle in transaction%' OR (application_name = 'vetter notify' AND state = 'active'))",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(busy.is_empty(), "{busy:?}");
    let in_flight: bool = sqlx::query_scalar("SELECT leased_until > now() FROM notify_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(in_flight, "the delivery is out, under its lease");
    let d = failed_saying(&pool, &["no answer within 1s"]).await;
    assert_eq!(d.status, "pending", "to be tried again");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[sqlx::test]
async fn redirects_are_not_followed(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool, None).await;
    w.add_target(
        "moved",
        "webhook",
        &hooks.url("/redirect"),
        &["upload_finished"],
    )
    .await;
    w.finish().await;
    hooks.wait_for("/redirect", 1).await;
    failed_saying(&w.app.pool, &["answered 302", "not followed"]).await;
    never_reaches(&hooks, "/redirected").await;
}

#[sqlx::test]
async fn a_host_the_operator_did_not_allow_is_refused_when_saved_and_when_sent(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool.clone(), None).await;
    // Saved while the operator allows 127.0.0.1.
    w.add_target("hook", "webhook", &hooks.url("/hook"), &["upload_finished"])
        .await;

    // Another host that allows localhost as a public host only (it
    // resolves to loopback), and a name that is not this one.
    let narrow = TestApp::spawn_with(pool.clone(), |c| {
        sending(c, None);
        c.notify.poll = None;
        c.notify.hosts =
            HostRules::parse(&["localhost".into(), "hooks.example.org".into()], &[]).unwrap();
    })
    .await;
    narrow.login_as(&w.admin).await;
    let port = hooks.port;
    for (url, why) in [
        (format!("http://127.0.0.1:{port}/x"), "not among the hosts"),
        (
            format!("http://localhost:{port}/x"),
            "VETTER_NOTIFY_PRIVATE_HOSTS",
        ),
        (
            "ftp://hooks.example.org/x".to_string(),
            "use http:// or https://",
        ),
    ] {
        let r = narrow
            .post_form(
                "/admin/projects/vast/notifications",
                &[
                    ("name", "nope"),
                    ("kind", "webhook"),
                    ("url", &url),
                    ("event", "upload_finished"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(r.text().await.unwrap().contains(why), "{url}: {why}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notify_targets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the first one");

    // Sent only by a host whose operator has since taken 127.0.0.1 back.
    let World {
        app: mut first,
        token,
        ..
    } = w;
    first.stop();
    // Its worker goes with it: only the strict one is left to send.
    let _ = first.server.take().unwrap().await;
    drop(first);
    let strict = TestApp::spawn_with(pool.clone(), |c| {
        sending(c, None);
        c.notify.hosts = HostRules::default();
    })
    .await;
    let api = Api {
        app: &strict,
        token,
    };
    let (s, b) = api
        .post("/projects/vast/observations/SB1/finished", json!({}))
        .await;
    assert_eq!((s, b["notifications"].as_i64()), (StatusCode::OK, Some(1)));
    failed_saying(&pool, &["not among the hosts"]).await;
    never_reaches(&hooks, "/hook").await;
}

#[sqlx::test]
async fn two_workers_never_send_one_delivery_twice(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool.clone(), None).await;
    w.add_target("hook", "webhook", &hooks.url("/ok"), &["upload_finished"])
        .await;
    let target = w.target_id("hook").await;
    let fast = |c: &mut Config| {
        sending(c, None);
        c.notify.poll = Some(Duration::from_millis(5));
    };
    let _other = TestApp::spawn_with(pool.clone(), fast).await;
    let _third = TestApp::spawn_with(pool.clone(), fast).await;
    // Forty at once, in one commit, for three workers to race over.
    let mut tx = pool.begin().await.unwrap();
    for i in 0..40 {
        vetter::db::deliveries::queue_one(
            &mut tx,
            Some(w.project().await),
            "test",
            &json!({"n": i}),
            &json!({}),
            vetter::db::deliveries::Receiver::Target(vetter::domain::TargetId(target), "webhook"),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let hits = hooks.wait_for("/ok", 40).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let hits_after = hooks.hits("/ok");
    assert_eq!(
        hits_after.len(),
        40,
        "{} requests for 40 deliveries",
        hits_after.len()
    );
    let mut ids: Vec<&String> = hits
        .iter()
        .map(|h| &h.headers["x-vetter-delivery"])
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    let d = deliveries(&pool).await;
    assert!(
        d.iter().all(|d| d.status == "delivered" && d.attempts == 1),
        "{d:?}"
    );
}

#[sqlx::test]
async fn a_rolled_back_rating_queues_nothing(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool.clone(), None).await;
    w.add_target("hook", "webhook", &hooks.url("/real"), &["consensus_real"])
        .await;
    let ann = w.app.create_user("ann", Role::Reviewer).await;
    let bob = w.app.create_user("bob", Role::Reviewer).await;
    let insert = "INSERT INTO ratings (user_id, candidate_id, verdict) VALUES ($1, $2, 'real')";
    let mut tx = pool.begin().await.unwrap();
    for u in [ann.id, bob.id] {
        sqlx::query(insert)
            .bind(u)
            .bind(w.ids["c3"])
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM notify_deliveries")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(queued, 1, "queued inside the transaction that settles it");
    tx.rollback().await.unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM notify_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hooks.hits("/real").is_empty());

    // The same ratings committed: told once.
    let mut tx = pool.begin().await.unwrap();
    for u in [ann.id, bob.id] {
        sqlx::query(insert)
            .bind(u)
            .bind(w.ids["c3"])
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    hooks.wait_for("/real", 1).await;
}

#[sqlx::test]
async fn the_daily_summary_goes_only_to_those_who_asked_and_once_a_day(pool: PgPool) {
    let smtp = Smtp::start(true);
    // Without a worker: people choose, and rate.
    let w = world_with(pool.clone(), |_| {}).await;
    let (ann, _) = reviewer(&w.app, "ann").await;
    let (bob, _) = reviewer(&w.app, "bob").await;
    let (_cy, _) = reviewer(&w.app, "cy").await;
    let r = ann
        .post_form(
            "/account/summary",
            &[("email", "ann@example.org"), ("daily_summary", "on")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = bob
        .post_form("/account/summary", &[("email", "bob@example.org")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A summary needs a valid address; a refusal changes nothing.
    for form in [
        vec![("email", ""), ("daily_summary", "on")],
        vec![
            ("email", "bob@example.org\r\nBcc: eve@evil.org"),
            ("daily_summary", "on"),
        ],
    ] {
        let r = bob.post_form("/account/summary", &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    rate(&ann, w.ids["c1"], "real").await;
    rate(&ann, w.ids["c3"], "not_real").await;

    // Two servers that send, with the summary due from midnight.
    let due = |c: &mut Config| {
        sending(c, Some(smtp.settings()));
        c.notify.daily_summary_at = (0, 0);
    };
    let _one = TestApp::spawn_with(pool.clone(), due).await;
    let _two = TestApp::spawn_with(pool.clone(), due).await;
    let mail = smtp.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(smtp.messages().len(), 1, "ann's, once");
    assert_eq!(mail[0]["to"], json!(["ann@example.org"]));
    assert!(mail[0]["subject"]
        .as_str()
        .unwrap()
        .starts_with("vetter: your summary for "));
    let body = mail[0]["body"].as_str().unwrap();
    assert!(body.contains("Hello ann"), "{body}");
    assert!(
        body.contains("VAST pilot: 1 real, 1 not real, 0 unsure"),
        "{body}"
    );
    assert!(
        body.contains("VAST pilot: 1 not rated by you (1 not rated by anyone) of 3 candidates"),
        "{body}"
    );
    let days: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_summaries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(days, 1);
}

#[sqlx::test]
async fn email_is_sent_only_over_tls(pool: PgPool) {
    let plain = Smtp::start(false);
    let w = world(pool.clone(), Some(plain.settings())).await;
    w.add_target("mail", "email", "ann@example.org", &["upload_finished"])
        .await;
    w.finish().await;
    failed_saying(&pool, &["does not offer STARTTLS"]).await;
    assert!(plain.messages().is_empty());
}

/// A receiver, and the world of a site whose VOEvent broker it is (at
/// `/broker`).
async fn broker_world(pool: &PgPool) -> (Receiver, World) {
    let hooks = Receiver::start().await;
    let broker = hooks.url("/broker");
    let w = world_with(pool.clone(), move |c| {
        sending(c, None);
        c.notify.voevent_broker_url = Some(broker);
    })
    .await;
    (hooks, w)
}

#[sqlx::test]
async fn a_voevent_is_posted_to_the_broker_as_xml(pool: PgPool) {
    let (hooks, w) = broker_world(&pool).await;
    let xml = r#"<?xml version="1.0"?><voe:VOEvent ivorn="ivo://test/1" role="test" version="2.0"><Who/></voe:VOEvent>"#;
    let settings = vetter::config::NotifySettings {
        voevent_broker_url: Some(hooks.url("/broker")),
        ..Default::default()
    };
    let project = w.project().await;
    let candidate = CandidateId(w.ids["c1"]);
    // Rolled back: nothing goes.
    let mut tx = pool.begin().await.unwrap();
    vetter::notify::queue_voevent(&mut tx, &settings, project, candidate, xml)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    // Committed: posted once, as it was given.
    let mut tx = pool.begin().await.unwrap();
    let id = vetter::notify::queue_voevent(&mut tx, &settings, project, candidate, xml)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let hit = hooks.wait_for("/broker", 1).await;
    assert_eq!(hit[0].headers["content-type"], "application/xml");
    assert_eq!(hit[0].headers["x-vetter-delivery"], id.to_string());
    assert_eq!(hit[0].body, xml.as_bytes());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hooks.hits("/broker").len(), 1);
    let page = w
        .app
        .get("/admin/projects/vast/notifications")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("voevent") && page.contains("VOEvent broker"));

    let mut conn = pool.acquire().await.unwrap();
    let none = vetter::config::NotifySettings::default();
    let e = vetter::notify::queue_voevent(&mut conn, &none, project, candidate, xml)
        .await
        .unwrap_err();
    assert!(matches!(e, vetter::notify::QueueError::NoBroker), "{e}");
    let e = vetter::notify::queue_voevent(&mut conn, &settings, project, candidate, " ")
        .await
        .unwrap_err();
    assert!(matches!(e, vetter::notify::QueueError::Empty), "{e}");
}

/// How many VOEvent events are queued.
async fn voevents(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notify_events WHERE kind = 'voevent'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn an_admin_sends_a_settled_real_candidate_to_the_broker_from_its_page(pool: PgPool) {
    let (hooks, w) = broker_world(&pool).await;
    sqlx::query("UPDATE projects SET admins_see_all = true")
        .execute(&pool)
        .await
        .unwrap();
    let (c1, c3) = (w.ids["c1"], w.ids["c3"]);
    let send = |id: i64| format!("/candidates/{id}/voevent/send");
    let button = |html: &scraper::Html| // Inside the standing line: a form a <p> cannot hold would be
        // moved out of it by the parser, onto a line of its own.
        crate::helpers::select_attr(html, ".standing > #voevent-send", "action");

    // Open: no button, and a forged request is refused whole.
    let page = w.app.get_html(&format!("/candidates/{c1}")).await;
    assert_eq!(button(&page), None);
    let r = w.app.post_form(&send(c1), &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(voevents(&pool).await, 0);

    let (r1, _) = reviewer(&w.app, "rita").await;
    let (r2, _) = reviewer(&w.app, "rolf").await;
    rate(&r1, c3, "real").await;
    rate(&r2, c3, "real").await;

    // Settled real: the page offers it to the administrator only.
    let page = w.app.get_html(&format!("/candidates/{c3}")).await;
    assert_eq!(button(&page), Some(send(c3)));
    assert_eq!(
        button(&r1.get_html(&format!("/candidates/{c3}")).await),
        None
    );
    let r = r1.post_form(&send(c3), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(voevents(&pool).await, 0);

    // Sent: back to the candidate with a message, audited, and the broker
    // gets a valid VOEvent of this candidate once.
    let r = w.app.post_form(&send(c3), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::helpers::location(&r), format!("/candidates/{c3}"));
    let page = w.app.get_html(&format!("/candidates/{c3}")).await;
    let flash = crate::helpers::select_text(&page, ".toast-success").unwrap_or_default();
    assert!(flash.contains("queued for the broker"), "{flash}");
    let hit = hooks.wait_for("/broker", 1).await;
    assert_eq!(hit[0].headers["content-type"], "application/xml");
    crate::voevent_schema::assert_valid(&hit[0].body);
    let ivorn = crate::voevent_schema::xpath(&hit[0].body, "/*/@ivorn");
    assert!(ivorn.ends_with(&format!("#vast/{c3}")), "{ivorn}");
    let audited: String = sqlx::query_scalar(
        "SELECT target FROM audit_log WHERE action = 'voevent.send' AND actor_name = 'adam'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, ivorn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hooks.hits("/broker").len(), 1);

    // A site with no broker offers no button and refuses with the reason.
    let plain = TestApp::spawn_with(pool.clone(), |c| sending(c, None)).await;
    plain.login_as(&w.admin).await;
    let page = plain.get_html(&format!("/candidates/{c3}")).await;
    assert!(crate::helpers::select_attr(&page, "#voevent-link", "href").is_some());
    assert_eq!(button(&page), None);
    let r = plain.post_form(&send(c3), &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let text = r.text().await.unwrap();
    assert!(text.contains("no VOEvent broker is configured"), "{text}");
    assert_eq!(voevents(&pool).await, 1);
}

#[sqlx::test]
async fn targets_are_checked_edited_tested_and_removed_by_admins_only(pool: PgPool) {
    let hooks = Receiver::start().await;
    let w = world(pool.clone(), None).await;
    // Refused forms say why and store nothing.
    for (form, why) in [
        (
            vec![
                ("name", "x"),
                ("kind", "webhook"),
                ("url", ""),
                ("event", "upload_finished"),
            ],
            "Give the URL",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "pager"),
                ("event", "upload_finished"),
            ],
            "a target is a webhook, slack or email",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "slack"),
                ("url", "http://127.0.0.1:9/x"),
            ],
            "at least one event",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "email"),
                ("addresses", "ann@example.org"),
                ("event", "upload_finished"),
            ],
            "VETTER_SMTP_HOST",
        ),
        (
            vec![
                ("name", ""),
                ("kind", "slack"),
                ("url", "http://127.0.0.1:9/x"),
                ("event", "upload_finished"),
            ],
            "name",
        ),
    ] {
        let r = w
            .app
            .post_form("/admin/projects/vast/notifications", &form)
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{form:?}");
        assert!(r.text().await.unwrap().contains(why), "{form:?}: {why}");
    }
    w.add_target("team", "slack", &hooks.url("/a"), &["upload_finished"])
        .await;
    assert_eq!(
        w.try_target("TEAM", "slack", &hooks.url("/b"), &["upload_finished"])
            .await,
        StatusCode::BAD_REQUEST
    );
    let id = w.target_id("team").await;

    // A reviewer can neither see nor change targets.
    let (rita, _) = reviewer(&w.app, "rita").await;
    assert_eq!(
        rita.get("/admin/projects/vast/notifications")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = rita
        .post_form(
            &format!("/admin/projects/vast/notifications/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Renamed, pointed elsewhere, given the other event; the URL kept when
    // none is typed.
    let path = format!("/admin/projects/vast/notifications/{id}");
    let r = w
        .app
        .post_form(
            &path,
            &[
                ("name", "team 2"),
                ("url", &hooks.url("/c")),
                ("event", "consensus_real"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = w
        .app
        .post_form(
            &path,
            &[
                ("name", "team 3"),
                ("event", "consensus_real"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = w.app.post_form(&format!("{path}/test"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let hit = hooks.wait_for("/c", 1).await;
    let text = serde_json::from_slice::<Value>(&hit[0].body).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("test message") && text.contains("team 3"),
        "{text}"
    );
    // Paused (the box unticked): its event happens, it hears nothing.
    let r = w
        .app
        .post_form(&path, &[("name", "team 3"), ("event", "upload_finished")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(w.finish().await["notifications"], 0);
    let r = w.app.post_form(&format!("{path}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM notify_targets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'notify_target.%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "notify_target.create",
            "notify_target.update",
            "notify_target.update",
            "notify_target.update",
            "notify_target.delete"
        ]
    );
    let _ = &w.admin;
}

#[sqlx::test]
async fn settled_deliveries_are_forgotten_after_a_month_and_waiting_ones_kept(pool: PgPool) {
    let w = world_with(pool.clone(), |_| {}).await;
    w.add_target_unchecked().await;
    let project = w.project().await;
    let mut conn = pool.acquire().await.unwrap();
    let target = vetter::domain::TargetId(w.target_id("hook").await);
    for _ in 0..3 {
        vetter::db::deliveries::queue_one(
            &mut conn,
            Some(project),
            "test",
            &json!({}),
            &json!({}),
            vetter::db::deliveries::Receiver::Target(target, "webhook"),
        )
        .await
        .unwrap();
    }
    // The first two are old, one of them delivered; the third is new.
    sqlx::raw_sql(
        "UPDATE notify_events SET created_at = now() - interval '40 days'
          WHERE id IN (SELECT id FROM notify_events ORDER BY id LIMIT 2);
         UPDATE notify_deliveries SET status = 'delivered'
          WHERE id = (SELECT min(id) FROM notify_deliveries)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let month = Duration::from_secs(30 * 86_400);
    let n = vetter::db::deliveries::purge_older_than(&pool, month)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the old delivered one");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM notify_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 2);
}

//! No request can starve or exhaust the server: stalled exports, slow
//! statements, silent connections, huge bodies and floods of parts, each
//! against the real server and PostgreSQL, with the figures asserted.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::StatusCode;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use vetter::domain::Role;

use crate::helpers::{list_files, TestApp, TestUser};
use crate::upload_api::{token_for, uploader, vast_project};

fn host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// A session cookie for `user`, for clients that speak raw HTTP.
async fn session_cookie(app: &TestApp, user: &TestUser) -> String {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let token = crate::helpers::login_token(&client, app).await;
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
    let url: reqwest::Url = app.address.parse().unwrap();
    jar.cookies(&url).unwrap().to_str().unwrap().to_string()
}

/// Export connections in use. A stalled export holds its connection in a
/// transaction (its cursor waits between fetches); a dropped one has rolled
/// back and gone back to the pool, idle.
async fn export_connections(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'vetter export'
           AND backend_type = 'client backend' AND state <> 'idle'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `n` candidates with long names in each observation: far more CSV
/// (about 240 bytes a row) than socket buffers and the export's channel hold.
async fn bulk_candidates(app: &TestApp, n: i32) {
    sqlx::query(
        "INSERT INTO candidates (project_id, observation_id, name, ra, dec, content_hash)
         SELECT o.project_id, o.id, 'bulk' || lpad(i::text, 6, '0') || repeat('x', 180),
                (i % 3600) / 10.0, -30, 'x'
         FROM observations o CROSS JOIN generate_series(1, $1) i",
    )
    .bind(n)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// Sends the request for the whole survey as CSV over a raw connection.
async fn ask_for_export(s: &mut TcpStream, addr: &str, cookie: &str) {
    s.write_all(
        format!(
            "GET /candidates.csv?ratings=none HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
}

async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test]
async fn stalled_exports_neither_starve_pages_nor_keep_their_connections(pool: PgPool) {
    let write_timeout = Duration::from_secs(3);
    let app = TestApp::spawn_with(pool, |c| {
        c.limits.write_timeout = write_timeout;
        c.limits.export_connections = 4;
    })
    .await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    // Far more than the socket buffers and the export's channel hold (about
    // 14 MB of CSV), so a client that does not read really stalls it.
    bulk_candidates(&app, 60_000).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let bob = app.create_user("bob", Role::Reviewer).await;
    let cookie = session_cookie(&app, &alice).await;
    app.login_as(&bob).await;

    let addr = host(&app);
    let mut stalled = Vec::new();
    for _ in 0..32 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(addr.parse().unwrap()).await.unwrap();
        ask_for_export(&mut s, &addr, &cookie).await;
        stalled.push(s);
    }
    wait_for(
        "four exports under way",
        Duration::from_secs(10),
        async || export_connections(&app.pool).await == 4,
    )
    .await;

    // Everyone else is served as usual.
    let started = Instant::now();
    let r = app.get("/candidates?project=vast").await;
    let page = started.elapsed();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(page < Duration::from_secs(1), "the page took {page:?}");
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK, "healthz while exports stall");
    // A further export is told at once that the export slots are taken.
    let started = Instant::now();
    let r = app.get("/candidates.csv?ratings=none").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(r.text().await.unwrap().contains("Too many exports"));
    assert_eq!(export_connections(&app.pool).await, 4, "still stalled");

    // Once the buffers are full and the write time-out passes, the exports
    // are dropped and their connections released.
    let started = Instant::now();
    wait_for(
        "export connections released",
        Duration::from_secs(60),
        async || export_connections(&app.pool).await == 0,
    )
    .await;
    println!(
        "stalled exports released {:?} after the check",
        started.elapsed()
    );
    // A stalled client's transfer ends broken, never as a whole file; the
    // others were told to try again.
    let mut exported = 0;
    for mut s in stalled.drain(..) {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
            .await
            .expect("the server closed the connection");
        if got.starts_with(b"HTTP/1.1 200") {
            exported += 1;
            assert!(!got.ends_with(b"0\r\n\r\n"), "a cut export looks complete");
        } else {
            assert!(got.starts_with(b"HTTP/1.1 503"));
        }
    }
    assert_eq!(exported, 4);
    drop(stalled);
    let r = app.get("/candidates.csv?ratings=none").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap().matches("bulk").count(), 60_000);
}

#[sqlx::test]
async fn an_export_past_its_budget_ends_short_and_says_so(pool: PgPool) {
    // Each fetch of the cursor is its own statement, so the export's budget
    // is kept by the app: past it, the body ends in an error rather than
    // looking like a whole file.
    let app = TestApp::spawn_with(pool, |c| {
        c.limits.export_statement_timeout = Duration::from_millis(1)
    })
    .await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    bulk_candidates(&app, 5_000).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let cookie = session_cookie(&app, &alice).await;
    let addr = host(&app);
    let mut s = TcpStream::connect(&addr).await.unwrap();
    ask_for_export(&mut s, &addr, &cookie).await;
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got).await;
    assert!(got.starts_with(b"HTTP/1.1 200"));
    // Some of the first thousand rows went out, the rest did not, and the
    // body lacks the last chunk that a whole one ends with.
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("bulk000001"), "{} bytes", got.len());
    assert!(!text.contains("bulk004999"));
    assert!(!got.ends_with(b"0\r\n\r\n"), "a cut export looks complete");
    // Its connection rolls back and goes back to the pool just after.
    wait_for(
        "the export connection released",
        Duration::from_secs(10),
        async || export_connections(&app.pool).await == 0,
    )
    .await;
}

#[sqlx::test]
async fn a_statement_time_out_is_a_clear_503_not_an_outage(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.limits.statement_timeout = Duration::from_millis(300)
    })
    .await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    // A statement that cannot finish: the table it reads is locked.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE candidates IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let started = Instant::now();
    let r = app.get("/candidates").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = r.text().await.unwrap();
    assert!(body.contains("took too long"), "{body}");
    assert!(!body.contains("database is not answering"), "{body}");
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    tx.rollback().await.unwrap();
    assert_eq!(app.get("/candidates").await.status(), StatusCode::OK);
}

#[sqlx::test]
async fn slow_reports_queue_on_their_own_connections(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.limits.long_connections = 1;
        c.limits.long_statement_timeout = Duration::from_secs(6);
    })
    .await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    // The ratings summary cannot finish while its table is locked.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE ratings IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let (client, url) = (app.client.clone(), app.url("/ratings"));
    let slow = tokio::spawn(async move { client.get(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The one report slot is taken: the next report is told so, pages and
    // the health check are not held up.
    let started = Instant::now();
    let r = app.get("/ratings").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("Too many reports"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let started = Instant::now();
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(1));

    // The stuck report ends at its own, longer, time-out, with a clear answer.
    let r = slow.await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("took too long"));
    tx.rollback().await.unwrap();
    assert_eq!(app.get("/ratings").await.status(), StatusCode::OK);
}

#[sqlx::test]
async fn silent_trickling_and_idle_connections_are_closed(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| {
        c.limits.header_timeout = Duration::from_secs(1);
        c.limits.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let addr = host(&app);
    let mut silent = Vec::new();
    for _ in 0..500 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut trickler = TcpStream::connect(&addr).await.unwrap();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n".iter().cycle() {
            if trickler.write_all(&[*b]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!()
    });
    // Every silent connection is closed by the server once its head is
    // overdue: reading gives end-of-file (or a reset), not a time-out.
    let mut closed = 0;
    for mut s in silent {
        let mut b = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 500, "silent connections closed");
    assert!(started.elapsed() < Duration::from_secs(5));
    let trickled = tokio::time::timeout(Duration::from_secs(10), trickle)
        .await
        .expect("the trickling client was cut off")
        .unwrap();
    assert!(
        trickled < Duration::from_secs(4),
        "trickled for {trickled:?}"
    );
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the idle keep-alive connection was closed");
    assert!(matches!(n, Ok(0) | Err(_)));
    // The server still serves.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

/// Sends a request head and then up to `total` body bytes in 64 KiB
/// pieces, chunked or not, while reading the answer; returns the status
/// line, the body of the answer and how many body bytes were sent by
/// the time it came.
async fn stream_upload(
    addr: &str,
    head: String,
    mut piece: impl FnMut(usize) -> Vec<u8> + Send + 'static,
    total: u64,
    chunked: bool,
) -> (String, String, u64) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let mut i = 0;
        while counter.load(std::sync::atomic::Ordering::Relaxed) < total {
            let data = piece(i);
            i += 1;
            if chunked {
                wr.write_all(format!("{:x}\r\n", data.len()).as_bytes())
                    .await?;
                wr.write_all(&data).await?;
                wr.write_all(b"\r\n").await?;
            } else {
                wr.write_all(&data).await?;
            }
            counter.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        std::io::Result::Ok(())
    });
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 65536];
    let read = async {
        loop {
            let n = rd.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("an answer within 60 s");
    let at_answer = sent.load(std::sync::atomic::Ordering::Relaxed);
    writer.abort();
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
        at_answer,
    )
}

/// The binary serving the test's database in its own process, so that its
/// memory is its own.
struct Served {
    child: Child,
    addr: String,
    media: std::path::PathBuf,
}

impl Served {
    async fn start(pool: &PgPool) -> Self {
        let url = crate::media_safety::url_of(pool).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let media = std::env::temp_dir().join(format!("vetter-bounds-{port}"));
        let child = Command::new(env!("CARGO_BIN_EXE_vetter"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &url)
            .env("VETTER_BIND", &addr)
            .env("VETTER_MEDIA_ROOT", &media)
            .env("VETTER_SECRET_KEY", "0123456789abcdef0123456789abcdef")
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let served = Self { child, addr, media };
        wait_for("the server up", Duration::from_secs(20), async || {
            reqwest::get(format!("http://{}/healthz", served.addr))
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        served
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The highest resident size seen while `work` runs, sampled.
    async fn peak_rss_during<T>(&self, work: impl std::future::Future<Output = T>) -> (T, u64) {
        let pid = self.child.id();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = tokio::spawn(async move {
            let mut peak = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = s
                        .lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    {
                        peak = peak.max(kib);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        });
        let out = work.await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, sampler.await.unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.media);
    }
}

const MIB: u64 = 1 << 20;

#[sqlx::test]
async fn a_200_mib_form_is_refused_without_the_server_growing(pool: PgPool) {
    let server = Served::start(&pool).await;
    let addr = server.addr.clone();
    // Warm up, so that first-use allocations do not count as growth.
    for _ in 0..3 {
        let _ = reqwest::get(format!("http://{addr}/login")).await.unwrap();
    }
    let before = server.rss_kib();
    for chunked in [true, false] {
        let length = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", 200 * MIB)
        };
        // The token in the header: no form field has to be read to find it.
        let head = format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             X-CSRF-Token: whatever\r\n{length}\r\n\r\n"
        );
        let piece = |_| {
            let mut p = b"username=".to_vec();
            p.resize(64 << 10, b'a');
            p
        };
        let ((status, body, sent), peak) = server
            .peak_rss_during(stream_upload(&addr, head, piece, 200 * MIB, chunked))
            .await;
        assert!(status.starts_with("HTTP/1.1 413"), "{status}: {body}");
        assert!(body.contains("at most"), "{body}");
        assert!(
            sent < 200 * MIB,
            "the answer came only after all {sent} bytes"
        );
        let grew = peak.saturating_sub(before) / 1024;
        println!("200 MiB form, chunked={chunked}: answered 413 after {} KiB sent; server grew {grew} MiB", sent >> 10);
        assert!(grew < 20, "the server grew by {grew} MiB");
    }
}

#[sqlx::test]
async fn a_huge_json_part_and_a_flood_of_parts_are_refused_early(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let admin = app.create_user("pipe2", Role::Admin).await;
    let token = token_for(&app, &admin).await;
    let addr = host(&app);
    let path = "/api/v1/projects/vast/observations/SB50230/candidates";

    // 300 MiB in the JSON part, sent chunked: refused once it passes 64 MiB.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let piece = |i: usize| {
        let mut p = if i == 0 {
            b"--XyZ\r\nContent-Disposition: form-data; name=\"candidates\"\r\n\
              Content-Type: application/json\r\n\r\n{\"candidates\": ["
                .to_vec()
        } else {
            Vec::new()
        };
        p.resize(p.len() + (64 << 10), b' ');
        p
    };
    let started = Instant::now();
    let (status, body, sent) = stream_upload(&addr, head, piece, 300 * MIB, true).await;
    let took = started.elapsed();
    println!(
        "300 MiB JSON part: {status} after {} MiB sent, {took:?}",
        sent / MIB
    );
    assert!(status.starts_with("HTTP/1.1 413"), "{status}: {body}");
    assert!(
        body.contains("\\\"candidates\\\"") || body.contains("candidates"),
        "{body}"
    );
    assert!(body.contains("JSON"), "{body}");
    assert!(sent < 100 * MIB, "refused only after {} MiB", sent / MIB);

    // 20,000 tiny file parts: refused at part 1001, before its temporary
    // file, and every temporary file made is gone.
    let mut multipart = Vec::new();
    multipart.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"candidates\"\r\n\
          Content-Type: application/json\r\n\r\n{\"candidates\": []}\r\n",
    );
    for i in 0..20_000 {
        multipart.extend_from_slice(
            format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"f{i}\"; filename=\"f{i}.png\"\r\n\
                 Content-Type: image/png\r\n\r\nx\r\n"
            )
            .as_bytes(),
        );
    }
    multipart.extend_from_slice(b"--XyZ--\r\n");
    let started = Instant::now();
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(multipart)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let status = r.status();
    let body = r.text().await.unwrap();
    println!("20,000 tiny parts: {status} in {took:?}");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("at most 1000 files"), "{body}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let left: Vec<String> = list_files(&app.media_root);
    assert!(
        left.is_empty(),
        "files left behind: {} ({:?}...)",
        left.len(),
        left.first()
    );
}

/// Many more table and cone requests at once than the pool has connections:
/// each may count on a second connection only if one is free that instant,
/// so none holds one while waiting for another, and all are answered.
#[sqlx::test]
async fn more_table_requests_than_connections_are_all_answered(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    bulk_candidates(&app, 3_000).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    let connections = app.pool.options().get_max_connections() as usize;
    let urls = [
        "/candidates?project=vast",
        "/candidates?project=vast&pos=10+-30&radius=30",
        "/candidates?pos=20+-30&radius=2&rated=mine",
        "/ratings?project=vast",
    ];
    let app = &app;
    let asks = (0..connections * 4).map(|i| {
        let url = urls[i % urls.len()];
        async move { app.get(url).await.status() }
    });
    let statuses = futures_util::future::join_all(asks).await;
    let refused: Vec<_> = statuses.iter().filter(|s| **s != StatusCode::OK).collect();
    assert!(
        refused.is_empty(),
        "{} of {} answered {refused:?} (pool of {connections})",
        refused.len(),
        statuses.len()
    );
}

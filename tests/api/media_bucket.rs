//! Media in a real S3 server (the Ceph RADOS gateway `make test` starts):
//! uploads land in the bucket verified, are served from it, and a store
//! that fails part way fails the request whole, leaving no row and no
//! object behind; links handed to Firefly expire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vetter::config::{BucketSettings, MediaLocation};
use vetter::domain::Role;
use vetter::media::{hex, MediaStore};

use crate::helpers::{select_attr, TestApp};
use crate::upload_api::{fits_bytes, png_bytes, uploader, vast_project, Api};

const BATCH: &str = "/projects/vast/observations/SB50230/candidates";

/// The bucket as the test sees it, straight from the server.
fn store(b: &BucketSettings) -> MediaStore {
    let scratch = std::env::temp_dir().join(format!("vetter-s3-view-{}", vetter::random_hex(6)));
    MediaStore::open(scratch, &MediaLocation::Bucket(b.clone())).unwrap()
}

async fn objects(b: &BucketSettings) -> Vec<String> {
    let mut names: Vec<String> = store(b)
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.path)
        .collect();
    names.sort();
    names
}

async fn app_on(pool: PgPool, b: &BucketSettings) -> TestApp {
    let b = b.clone();
    TestApp::spawn_with(pool, move |c| c.media_location = MediaLocation::Bucket(b)).await
}

fn batch(names: &[&str]) -> serde_json::Value {
    let list: Vec<_> = names
        .iter()
        .map(|n| {
            json!({"name": n, "ra": 188.7, "dec": -45.2,
                   "files": {"deep_cutout": format!("{n}-f"), "still": format!("{n}-p")}})
        })
        .collect();
    json!({ "candidates": list })
}

/// The VAST project, and candidate A with a FITS cutout and a PNG.
async fn upload_a(api: &Api<'_>, fits: Vec<u8>) {
    vast_project(api).await;
    let (s, body) = api
        .post_multipart(
            BATCH,
            "candidates",
            batch(&["A"]),
            vec![("A-f", fits), ("A-p", png_bytes())],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

async fn file_ids(pool: &PgPool) -> Vec<(i64, String, String)> {
    sqlx::query_as("SELECT id, storage_path, sha256 FROM files ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn uploads_land_in_the_bucket_verified_and_are_served_from_it(pool: PgPool) {
    let b = crate::s3::bucket("serve");
    let app = app_on(pool.clone(), &b).await;
    let api = uploader(&app).await;
    upload_a(&api, fits_bytes(40, 30, 1, 11)).await;

    // Each row's object is in the bucket, under its checksum, with those bytes.
    // (Rows for the two files sent and for what was rendered from them.)
    let rows = file_ids(&pool).await;
    assert!(rows.len() >= 2, "{rows:?}");
    let view = store(&b);
    for (_, path, sha) in &rows {
        let (_, got) = view.hash(path).await.unwrap();
        assert_eq!(&got, sha, "{path}");
    }
    assert_eq!(
        objects(&b).await,
        rows.iter()
            .map(|r| r.1.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    // Nothing is left in the scratch folder.
    assert_eq!(
        crate::helpers::upload_leftovers(&app.media_root),
        Vec::<String>::new()
    );

    // Served from the bucket through the app (no nginx here), and read for the sky view.
    let reviewer = app.create_user("rita", Role::Reviewer).await;
    app.login_as(&reviewer).await;
    let (fits_id, _, fits_sha) = rows
        .iter()
        .find(|r| r.1.ends_with(".fits"))
        .unwrap()
        .clone();
    let r = app.get(&format!("/media/{fits_id}/x.fits")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(hex(&Sha256::digest(&bytes)), fits_sha);
    let candidate: i64 = sqlx::query_scalar("SELECT id FROM candidates WHERE name = 'A'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let r = app
        .get(&format!("/candidates/{candidate}/sky/{fits_id}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // The status page names the bucket and says it answers.
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    let html = app.get_html("/admin/status").await;
    let store_line = crate::helpers::select_text(&html, "#media-store").unwrap();
    assert!(store_line.contains(&b.url()), "{store_line}");
    assert!(!store_line.contains("does not answer"), "{store_line}");

    // A request that fails validation after its files arrived publishes nothing.
    let before = objects(&b).await;
    let (s, _) = api
        .post_multipart(
            BATCH,
            "candidates",
            json!({"candidates": [
                {"name": "B", "ra": 10.0, "dec": 5.0, "files": {"deep_cutout": "B-f"}},
                {"name": "C", "ra": 400.0, "dec": 5.0, "files": {}},
            ]}),
            vec![("B-f", fits_bytes(20, 20, 1, 12))],
        )
        .await;
    assert!(s.is_client_error(), "{s}");
    assert_eq!(objects(&b).await, before);
}

/// A TCP relay to the S3 server that, once told to, cuts every connection
/// as soon as an upload (a PUT) starts through it, and refuses new ones.
struct Relay {
    endpoint: String,
    faulty: Arc<AtomicBool>,
}

impl Relay {
    async fn start(upstream: &str) -> Self {
        let target = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let faulty = Arc::new(AtomicBool::new(false));
        let f = faulty.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if f.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, f.clone()));
            }
        });
        Self { endpoint, faulty }
    }
}

async fn relay(client: TcpStream, server: TcpStream, faulty: Arc<AtomicBool>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if faulty.load(Ordering::SeqCst) && chunk.windows(5).any(|w| w == b"PUT /") {
                // Part of the request head reaches the store, then the line goes dead.
                let _ = sw.write_all(&chunk[..chunk.len().min(100)]).await;
                return;
            }
            if sw.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let down = tokio::io::copy(&mut sr, &mut cw);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

#[sqlx::test]
async fn a_store_that_drops_the_line_fails_the_upload_whole(pool: PgPool) {
    let relay = Relay::start(&crate::s3::endpoint()).await;
    let through_relay = crate::s3::bucket_at(&relay.endpoint, "fault");
    let direct = BucketSettings {
        endpoint: Some(crate::s3::endpoint()),
        ..through_relay.clone()
    };
    let app = app_on(pool.clone(), &through_relay).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let files = || {
        vec![
            ("A-f", fits_bytes(32, 32, 1, 21)),
            ("A-p", png_bytes()),
            ("B-f", fits_bytes(32, 32, 1, 22)),
            ("B-p", png_bytes()),
        ]
    };

    relay.faulty.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (s, body) = api
        .post_multipart(BATCH, "candidates", batch(&["A", "B"]), files())
        .await;
    assert!(s.is_server_error(), "{s}: {body}");
    assert!(
        body.to_string().to_lowercase().contains("media") || body.to_string().contains("stor"),
        "the answer says what failed: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the failure came within the store's time-out, not after a hang: {:?}",
        started.elapsed()
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM candidates")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no candidate of the failed batch");
    assert!(file_ids(&pool).await.is_empty(), "no file rows");
    assert_eq!(
        objects(&direct).await,
        Vec::<String>::new(),
        "nothing half-published"
    );
    assert_eq!(
        crate::helpers::upload_leftovers(&app.media_root),
        Vec::<String>::new()
    );

    // The line comes back: the same batch goes through whole.
    relay.faulty.store(false, Ordering::SeqCst);
    let (s, body) = api
        .post_multipart(BATCH, "candidates", batch(&["A", "B"]), files())
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let rows = file_ids(&pool).await;
    assert!(rows.len() >= 4, "{rows:?}");
    let view = store(&direct);
    for (_, path, sha) in &rows {
        assert_eq!(&view.hash(path).await.unwrap().1, sha);
    }
    let mut named: Vec<String> = rows.into_iter().map(|r| r.1).collect();
    named.sort();
    named.dedup();
    assert_eq!(
        objects(&direct).await,
        named,
        "every object in the bucket is a row's"
    );
}

#[sqlx::test]
async fn links_handed_to_firefly_expire_and_media_needs_a_session(pool: PgPool) {
    let b = BucketSettings {
        presign_ttl: Duration::from_secs(2),
        ..crate::s3::bucket("presign")
    };
    let app = app_on(pool.clone(), &b).await;
    let fits = fits_bytes(24, 24, 1, 31);
    upload_a(&uploader(&app).await, fits.clone()).await;
    let (candidate, file): (i64, i64) = sqlx::query_as(
        "SELECT c.id, f.id FROM candidates c JOIN files f ON f.candidate_id = c.id
         WHERE f.content_type = 'application/fits'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let reviewer = app.create_user("rita", Role::Reviewer).await;
    app.login_as(&reviewer).await;
    let html = app
        .get_html(&format!("/candidates/{candidate}/firefly"))
        .await;
    let src = select_attr(&html, "iframe", "src").expect("Firefly's frame");
    let link = src
        .split('&')
        .find_map(|p| p.strip_prefix("URL="))
        .map(percent_decode)
        .unwrap_or_else(|| panic!("Firefly is given a link to fetch: {src}"));
    assert!(link.starts_with(&crate::s3::endpoint()), "{link}");

    // Firefly (any client without credentials) can read it now...
    let plain = reqwest::Client::new();
    let r = plain.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), fits.as_slice());
    // ...and not once it has expired.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let r = plain.get(&link).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "an expired link is refused"
    );

    // The app's own media URL works with the session and not after signing out.
    let path = format!("/media/{file}/a.fits");
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
    let token = app.csrf_token("/account").await;
    let r = app
        .post_form("/logout", &[("csrf_token", token.as_str())])
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let r = app.get(&path).await;
    assert_ne!(r.status(), StatusCode::OK, "no media after signing out");
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The real binary, serving on `port` with media in `b`; killed when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bucket_env<'a>(
    db: &'a str,
    scratch: &'a str,
    b: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("DATABASE_URL", db), ("VETTER_MEDIA_ROOT", scratch)];
    env.extend(b.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    env
}

#[sqlx::test]
async fn a_server_killed_between_the_object_and_the_commit_leaves_only_an_orphan(pool: PgPool) {
    let b = crate::s3::bucket("crash");
    let s3_env = crate::s3::env_of(&b);
    let db = crate::media_safety::url_of(&pool).await;
    let scratch = std::env::temp_dir().join(format!("vetter-crash-{}", vetter::random_hex(6)));
    let scratch_s = scratch.to_str().unwrap().to_string();
    // Every commit that adds a file row waits (up to the app's statement time-out), and
    // PostgreSQL notices a vanished client within 100 ms: the window to kill the server in,
    // after its objects are in the bucket and before its rows are committed.
    for sql in [
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON files
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" SET client_connection_check_interval = '100ms'"
    ))
    .execute(&pool)
    .await
    .unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = bucket_env(&db, &scratch_s, &s3_env);
    env.extend([
        ("VETTER_BIND", bind.as_str()),
        (
            "VETTER_SECRET_KEY",
            "crash-test-secret-key-0123456789abcdef",
        ),
    ]);
    let mut server = Served(
        std::process::Command::new(env!("CARGO_BIN_EXE_vetter"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{bind}");
    let plain = reqwest::Client::new();
    let mut up = false;
    for _ in 0..150 {
        if let Ok(r) = plain.get(format!("{base}/healthz")).send().await {
            up = r.status() == StatusCode::OK;
            if up {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server came up");

    let admin = crate::helpers::create_user(&pool, "pipeline", Role::Admin).await;
    let token = vetter::db::api_tokens::create(
        &pool,
        admin.id,
        "tests",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await
    .unwrap()
    .0;
    let put = |path: &str, body: serde_json::Value| {
        plain
            .put(format!("{base}/api/v1{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    assert!(put("/projects/vast", json!({"name": "VAST"}))
        .await
        .unwrap()
        .status()
        .is_success());
    assert!(put(
        "/projects/vast/observations/SB50230",
        json!({"start_time": "2024-05-01T12:00:00Z"})
    )
    .await
    .unwrap()
    .status()
    .is_success());
    let form = reqwest::multipart::Form::new()
        .part(
            "candidates",
            reqwest::multipart::Part::text(batch(&["A"]).to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "A-f",
            reqwest::multipart::Part::bytes(fits_bytes(16, 16, 1, 41)).file_name("f"),
        )
        .part(
            "A-p",
            reqwest::multipart::Part::bytes(png_bytes()).file_name("p"),
        );
    let upload = tokio::spawn(
        plain
            .post(format!("{base}/api/v1{BATCH}"))
            .bearer_auth(&token)
            .multipart(form)
            .send(),
    );

    // The objects arrive in the bucket; the commit is still waiting. Kill.
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = objects(&b).await;
        if seen.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.len() >= 2,
        "the upload's objects reached the bucket: {seen:?}"
    );
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    assert!(
        upload.await.unwrap().is_err(),
        "the client saw the connection die"
    );

    // PostgreSQL rolls the orphaned transaction back.
    let mut left = i64::MAX;
    for _ in 0..100 {
        left = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
             AND state <> 'idle'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the killed server's transaction ended");
    assert!(file_ids(&pool).await.is_empty(), "no row was committed");
    let orphans = objects(&b).await;
    assert!(!orphans.is_empty(), "the objects stayed behind as orphans");

    // `vetter check` finds them; with --repair (no grace) they go.
    let env = bucket_env(&db, &scratch_s, &s3_env);
    let o = crate::media_safety::vetter(&["check", "--grace", "0"], &env);
    let text = crate::media_safety::out(&o);
    assert!(!o.status.success(), "{text}");
    for p in &orphans {
        assert!(
            text.contains(&format!("orphan {p}")),
            "{p} is reported: {text}"
        );
    }
    assert!(
        !text.lines().any(|l| l.starts_with("dangling row")),
        "no committed row lacks its object: {text}"
    );
    let o = crate::media_safety::vetter(&["check", "--repair", "--grace", "0"], &env);
    assert!(o.status.success(), "{}", crate::media_safety::out(&o));
    assert_eq!(objects(&b).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test]
async fn a_large_file_goes_up_in_parts_and_is_verified() {
    let b = crate::s3::bucket("parts");
    let view = store(&b);
    // Over one part (16 MiB): a multipart upload, checked against the parts' MD5s.
    let mut bytes = vec![0u8; (16 << 20) + 12345];
    for (i, x) in bytes.iter_mut().enumerate() {
        *x = (i * 7 % 251) as u8;
    }
    let temp = view.write_temp_bytes(&bytes).await.unwrap();
    let rel = MediaStore::object_path(&temp.sha256, vetter::media::ContentKind::Csv);
    let (created, result) = view
        .publish(vec![(temp.path().to_path_buf(), rel.clone())])
        .await;
    result.unwrap();
    assert_eq!(created, vec![rel.clone()]);
    assert_eq!(
        view.hash(&rel).await.unwrap(),
        (bytes.len() as u64, temp.sha256.clone())
    );
    // Sent again, it is found there and not made a second time.
    let (created, result) = view
        .publish(vec![(temp.path().to_path_buf(), rel.clone())])
        .await;
    result.unwrap();
    assert!(created.is_empty());
    assert!(view.remove(&rel).await.unwrap());
}

#[sqlx::test]
async fn the_status_page_says_when_the_bucket_does_not_answer(pool: PgPool) {
    // Nothing listens on the discard port.
    let b = crate::s3::bucket_at("http://127.0.0.1:9", "down");
    let app = app_on(pool, &b).await;
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    let html = app.get_html("/admin/status").await;
    let store_line = crate::helpers::select_text(&html, "#media-store").unwrap();
    assert!(store_line.contains(&b.url()), "{store_line}");
    assert!(store_line.contains("does not answer"), "{store_line}");
}

#[sqlx::test]
async fn a_bucket_that_never_answers_does_not_hold_the_status_page(pool: PgPool) {
    // Takes connections and says nothing.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            held.push(c);
        }
    });
    let b = crate::s3::bucket_at(&endpoint, "silent");
    let app = app_on(pool, &b).await;
    let admin = app.create_user("ada", Role::Admin).await;
    app.login_as(&admin).await;
    let started = std::time::Instant::now();
    let html = app.get_html("/admin/status").await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let store_line = crate::helpers::select_text(&html, "#media-store").unwrap();
    assert!(store_line.contains("does not answer"), "{store_line}");
}

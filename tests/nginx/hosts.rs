//! Several app hosts: three `vetter serve` processes, each with its own
//! scratch folder (nothing on disk shared), one database and one bucket on
//! the real S3 server, behind one nginx. A batch is uploaded through the
//! first, rated through the second, and its media read through the third
//! by nginx straight from the bucket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{header, Client, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use vetter::domain::Role;

use crate::harness::{client, free_port, Nginx, Site, TempDir};
use crate::proxy::{create_user, csrf_token, login, png_bytes, session_cookie};

/// A `vetter serve` process, killed when dropped.
struct Host {
    port: u16,
    child: Child,
}

impl Host {
    async fn start(site: &Site, db: &str, scratch: &Path, bucket: &[(String, String)]) -> Self {
        // Not one of the ports nginx is about to bind.
        let port = std::iter::repeat_with(free_port)
            .find(|p| ![site.http, site.tls, site.https].contains(p))
            .unwrap();
        let public = &site.public_origin;
        let child = Command::new(env!("CARGO_BIN_EXE_vetter"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db)
            .env("VETTER_BIND", format!("127.0.0.1:{port}"))
            .env("VETTER_MEDIA_ROOT", scratch)
            .env(
                "VETTER_SECRET_KEY",
                "three-hosts-share-this-secret-key-0123456789",
            )
            .env("VETTER_PUBLIC_URL", public)
            .env("VETTER_BEHIND_PROXY", "1")
            .env("VETTER_MEDIA_ACCEL_PREFIX", "/protected-media")
            .envs(bucket.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut host = Self { port, child };
        let c = Client::new();
        for _ in 0..150 {
            if let Ok(r) = c.get(host.url("/healthz")).send().await {
                if r.status() == StatusCode::OK {
                    return host;
                }
            }
            if let Some(status) = host.child.try_wait().unwrap() {
                panic!("host on {port} exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("host on {port} did not come up");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use crate::testdb::url_of;

#[sqlx::test]
async fn three_hosts_share_one_database_and_one_bucket_behind_nginx(pool: PgPool) {
    let dir = TempDir::new("hosts");
    let mut site = Site::new(dir.path(), "localhost");
    let bucket = crate::s3::bucket("hosts");
    site.s3_endpoint = crate::s3::endpoint();
    let env = crate::s3::env_of(&bucket);
    let db = url_of(&pool).await;
    let mut hosts = Vec::new();
    let mut scratch = Vec::new();
    for name in ["a", "b", "c"] {
        let folder = dir.join(&format!("scratch-{name}"));
        hosts.push(Host::start(&site, &db, &folder, &env).await);
        scratch.push(folder);
    }
    site.app_servers = hosts.iter().map(|h| h.port).collect();
    let nginx = Nginx::start(dir, site);
    let plain = Client::new();

    // Uploaded through the first host, with an API token.
    let pipeline = create_user(&pool, "pipeline", Role::Admin).await;
    let token = vetter::db::api_tokens::create(
        &pool,
        pipeline.id,
        "tests",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await
    .unwrap()
    .0;
    let api = |path: &str| hosts[0].url(&format!("/api/v1{path}"));
    let r = plain
        .put(api("/projects/gleamx"))
        .bearer_auth(&token)
        .json(&json!({"name": "GLEAM-X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = plain
        .put(api("/projects/gleamx/observations/1234567890"))
        .bearer_auth(&token)
        .json(&json!({"start_time": "2023-02-25T00:00:00+00:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let png = png_bytes();
    let form = Form::new()
        .part(
            "candidate",
            Part::text(json!({"ra": 0.5, "dec": -26.7, "files": {"preview": "png"}}).to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part("png", Part::bytes(png.clone()).file_name("png.bin"));
    let r = plain
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
    let (candidate, file): (i64, i64) =
        sqlx::query_as("SELECT candidate_id, id FROM files WHERE role = 'preview'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // Nothing of it stayed on the first host's disk (but the empty scratch
    // files a bucket's store keeps for the next upload to write into).
    let left: Vec<_> = walk(&scratch[0])
        .into_iter()
        .filter(|p| !vetter::media::is_kept_scratch(Path::new(p)))
        .collect();
    assert!(
        left.is_empty(),
        "the first host's scratch folder holds {left:?}"
    );

    // Signed in through nginx; rated through the second host with that session.
    let rita = create_user(&pool, "rita", Role::Reviewer).await;
    let browser = client();
    let r = login(&browser, &nginx, &rita).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&r);
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = plain
        .get(hosts[1].url(&format!("/candidates/{candidate}")))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_token(&page.text().await.unwrap());
    let r = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(hosts[1].url(&format!("/candidates/{candidate}/rating")))
        .header(header::COOKIE, &pair)
        .header(header::ORIGIN, &nginx.site.public_origin)
        .form(&[("verdict", "real"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let rated: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings WHERE candidate_id = $1")
        .bind(candidate)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rated, 1);

    // Only the third host is left: nginx reads the media through it, from the bucket.
    let third = hosts.pop().unwrap();
    drop(hosts);
    let r = browser
        .get(nginx.https_url(&format!("/media/{file}/preview.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers().get(header::CONTENT_TYPE).unwrap(),
        "image/png",
        "{:?}",
        r.headers()
    );
    assert!(
        !r.headers().keys().any(|k| k.as_str().starts_with("x-amz")),
        "nothing of the store leaks: {:?}",
        r.headers()
    );
    let got = r.bytes().await.unwrap();
    assert_eq!(hex(&Sha256::digest(&got)), hex(&Sha256::digest(&png)));

    // The bucket's request is internal: asked for directly, nginx does not serve it.
    let r = browser
        .get(nginx.https_url(&format!("/protected-media/s3/{}/", bucket.bucket)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Signed out, the same URL gives nothing.
    let account = browser
        .get(nginx.https_url("/account"))
        .send()
        .await
        .unwrap();
    let csrf = csrf_token(&account.text().await.unwrap());
    let r = browser
        .post(nginx.https_url("/logout"))
        .header(header::ORIGIN, &nginx.site.public_origin)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser
        .get(nginx.https_url(&format!("/media/{file}/preview.png")))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::OK);
    drop(third);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

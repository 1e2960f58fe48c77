//! The `vetter` binary itself: help, configuration errors, create-admin,
//! gen-secret, healthcheck, and `serve` from migrations to first login.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::{assert_redirect_to, TestApp};

fn vetter(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir();
    Command::new(env!("CARGO_BIN_EXE_vetter"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        // No stray .env file from the repository.
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

use crate::testdb::url_of;

#[test]
fn help_documents_every_command() {
    let o = vetter(&["--help"], &[]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    for cmd in [
        "serve",
        "migrate",
        "create-admin",
        "--noinput",
        "gen-secret",
        "healthcheck",
    ] {
        assert!(text.contains(cmd), "help lacks {cmd}");
    }
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let o = vetter(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown command"));
}

#[test]
fn a_missing_or_malformed_setting_stops_serve_with_one_line_naming_it() {
    let good = [
        ("DATABASE_URL", "postgres://u@127.0.0.1:1/x"),
        ("VETTER_MEDIA_ROOT", "/tmp/vetter-cli-media"),
        ("VETTER_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
    ];
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("DATABASE_URL", None, "DATABASE_URL is not set"),
        ("VETTER_SECRET_KEY", None, "VETTER_SECRET_KEY is not set"),
        (
            "VETTER_STAGING",
            Some("yes"),
            "VETTER_STAGING=\"yes\" is not a boolean",
        ),
        (
            "VETTER_BIND",
            Some("everywhere"),
            "VETTER_BIND=\"everywhere\"",
        ),
    ];
    for (key, value, expected) in cases {
        let mut env: Vec<(&str, &str)> = good.iter().copied().filter(|(k, _)| *k != key).collect();
        if let Some(v) = value {
            env.push((key, v));
        }
        let o = vetter(&["serve"], &env);
        assert_eq!(o.status.code(), Some(78), "{key}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(expected), "{key}: {err}");
    }
}

#[test]
fn gen_secret_prints_a_fresh_long_key() {
    let a = String::from_utf8(vetter(&["gen-secret"], &[]).stdout).unwrap();
    let b = String::from_utf8(vetter(&["gen-secret"], &[]).stdout).unwrap();
    assert_eq!(a.trim().len(), 64);
    assert!(a.trim().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

#[sqlx::test]
async fn create_admin_noinput_reads_the_two_variables(pool: PgPool) {
    let url = url_of(&pool).await;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("VETTER_ADMIN_USERNAME", "chief"),
        ("VETTER_ADMIN_PASSWORD", "a-long-admin-password"),
    ];
    let o = vetter(&["create-admin", "--noinput"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let role: String = sqlx::query_scalar("SELECT role::text FROM users WHERE username = 'chief'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(role, "admin");
    let again = vetter(&["create-admin", "--noinput"], &env);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let short = vetter(
        &["create-admin", "--noinput"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("VETTER_ADMIN_USERNAME", "x"),
            ("VETTER_ADMIN_PASSWORD", "short"),
        ],
    );
    assert_eq!(short.status.code(), Some(78));
    assert!(stderr(&short).contains("VETTER_ADMIN_PASSWORD"));
}

#[sqlx::test]
async fn healthcheck_exits_zero_only_when_the_server_answers(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let url = app.url("/healthz");
    // Off the test's runtime thread, which also runs the server.
    let ok = tokio::task::spawn_blocking(move || vetter(&["healthcheck", "--url", &url], &[]))
        .await
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    let down = vetter(&["healthcheck", "--url", "http://127.0.0.1:1/healthz"], &[]);
    assert!(!down.status.success());
}

#[sqlx::test]
async fn serve_migrates_creates_the_first_admin_and_stops_on_sigterm(pool: PgPool) {
    // `#[sqlx::test]` has migrated this database; start from an empty one
    // instead, as a fresh deployment does.
    sqlx::raw_sql(
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public; CREATE EXTENSION q3c;
         DROP SCHEMA tower_sessions CASCADE;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let url = url_of(&pool).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let media = std::env::temp_dir().join(format!("vetter-serve-{port}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vetter"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &url)
        .env("VETTER_BIND", &bind)
        .env("VETTER_MEDIA_ROOT", &media)
        .env("VETTER_SECRET_KEY", "0123456789abcdef0123456789abcdef")
        .env("VETTER_ADMIN_USERNAME", "root-admin")
        .env("VETTER_ADMIN_PASSWORD", "first-admin-password")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{bind}");
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            up = r.status() == StatusCode::OK;
            if up {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server came up");
    assert!(media.is_dir(), "the media folder is created");

    let client = crate::helpers::new_client();
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::helpers::select_attr(
        &scraper::Html::parse_document(&page),
        "input[name=csrf_token]",
        "value",
    )
    .unwrap();
    let r = client
        .post(format!("{base}/login"))
        .form(&[
            ("username", "root-admin"),
            ("password", "first-admin-password"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&r, "/");

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut code = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            code = s.code();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if code.is_none() {
        let _ = child.kill();
    }
    assert_eq!(code, Some(0), "a clean exit on SIGTERM");
    let _ = std::fs::remove_dir_all(&media);
}

//! Media crash safety: what a crash between file and commit can leave,
//! `vetter check [--repair]` finding and fixing it, a failed request taking
//! back only its own objects (never one a concurrent twin uses), and upload
//! names never reaching the file system.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};
use vetter::ingest::publish::{self, Publication};

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use vetter::db::files::{NewFile, Owner};
use vetter::domain::Role;
use vetter::media::{hex, ContentKind, MediaStore};

use crate::helpers::{list_files, TestApp};
use crate::upload_api::{fits_bytes, gif_bytes, png_bytes, uploader, vast_project, Api};

/// Runs the binary with only the given settings (no stray .env).
pub fn vetter(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vetter"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

pub fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub use crate::testdb::url_of;

pub fn sha_of(path: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(path).unwrap()))
}

fn age(path: &Path, by: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - by)
        .unwrap();
}

/// Puts `bytes` where the object store would, as a crash after the link and
/// before the commit leaves it.
fn plant_object(root: &Path, bytes: &[u8], kind: ContentKind) -> PathBuf {
    let sha = hex(&Sha256::digest(bytes));
    let path = root.join(MediaStore::object_path(&sha, kind));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

pub async fn file_row(pool: &PgPool, candidate: &str, role: &str) -> Option<(i64, String, String)> {
    sqlx::query_as(
        "SELECT f.id, f.storage_path, f.sha256 FROM files f JOIN candidates c ON c.id = f.candidate_id
         WHERE c.name = $1 AND f.role = $2",
    )
    .bind(candidate)
    .bind(role)
    .fetch_optional(pool)
    .await
    .unwrap()
}

const BATCH: &str = "/projects/vast/observations/SB50230/candidates";

pub fn candidate(name: &str, files: serde_json::Value) -> serde_json::Value {
    json!({"name": name, "ra": 188.7, "dec": -45.2, "files": files})
}

/// Three candidates: a FITS cutout (and the preview rendered from it), a
/// PNG as sent, and a GIF (and the strip cut from it). Returns the uploader.
pub async fn upload_three(app: &TestApp) -> Api<'_> {
    let api = uploader(app).await;
    vast_project(&api).await;
    let (s, body) = api
        .post_multipart(
            BATCH,
            "candidates",
            json!({"candidates": [
                candidate("A", json!({"deep_cutout": "f"})),
                candidate("B", json!({"still": "p"})),
                candidate("C", json!({"anim": "g"})),
            ]}),
            vec![
                ("f", fits_bytes(12, 10, 1, 7)),
                ("p", png_bytes()),
                ("g", gif_bytes()),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    api
}

#[sqlx::test]
async fn check_reports_what_a_crash_leaves_and_repair_fixes_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    upload_three(&app).await;
    let root = app.media_root.clone();
    let env_url = url_of(&app.pool).await;
    let env = [
        ("DATABASE_URL", env_url.as_str()),
        ("VETTER_MEDIA_ROOT", root.to_str().unwrap()),
    ];
    let o = vetter(&["check"], &env);
    assert!(o.status.success(), "a fresh upload is clean: {}", out(&o));
    assert!(out(&o).contains("no problems"), "{}", out(&o));

    // A crash after the link, before the commit: an object without a row.
    let orphan = plant_object(&root, &fits_bytes(8, 8, 1, 99), ContentKind::Fits);
    age(&orphan, Duration::from_secs(2 * 3600));
    // A crash while streaming an upload: a stale temporary file.
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let stale = root.join("tmp/0123abcd.part");
    std::fs::write(&stale, b"half an upload").unwrap();
    age(&stale, Duration::from_secs(2 * 3600));
    // Rows whose objects are gone (a lost disk, or a crash under the old
    // order of writes): a rendered preview, whose FITS source is intact...
    let (png_id, png_path, png_sha) = file_row(&app.pool, "A", "deep_cutout_png").await.unwrap();
    std::fs::remove_file(root.join(&png_path)).unwrap();
    // ...a PNG as sent, which nothing can bring back...
    let (_, still_path, _) = file_row(&app.pool, "B", "still").await.unwrap();
    std::fs::remove_file(root.join(&still_path)).unwrap();
    // ...and a damaged GIF (same size, other bytes), with its strip.
    let (_, gif_path, _) = file_row(&app.pool, "C", "anim").await.unwrap();
    let (_, strip_path, _) = file_row(&app.pool, "C", "anim_strip").await.unwrap();
    let mut damaged = std::fs::read(root.join(&gif_path)).unwrap();
    let last = damaged.len() - 2;
    damaged[last] ^= 0xff;
    std::fs::write(root.join(&gif_path), &damaged).unwrap();
    let orphan_rel = orphan.strip_prefix(&root).unwrap().display().to_string();

    let o = vetter(&["check"], &env);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "problems found: {text}");
    assert!(text.contains(&format!("orphan {orphan_rel}")), "{text}");
    assert!(text.contains("orphan tmp/0123abcd.part"), "{text}");
    assert!(text.contains(&format!("{png_path} is missing")), "{text}");
    assert!(text.contains(&format!("{still_path} is missing")), "{text}");
    assert!(
        text.contains(&format!("{gif_path} does not hold")),
        "{text}"
    );
    assert!(text.contains("5 problems left"), "{text}");
    assert!(
        orphan.exists() && stale.exists(),
        "check alone changes nothing"
    );

    let o = vetter(&["check", "--repair"], &env);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("all repaired"), "{text}");
    assert!(!orphan.exists(), "the orphan is removed");
    assert!(!stale.exists(), "the stale temporary file is removed");
    // The preview is rendered again, byte for byte, under the same row.
    assert!(text.contains("rendered again"), "{text}");
    let (id, path, sha) = file_row(&app.pool, "A", "deep_cutout_png").await.unwrap();
    assert_eq!((id, &path, &sha), (png_id, &png_path, &png_sha));
    assert_eq!(sha_of(&root.join(&path)), sha);
    // What cannot be recovered is removed, and said so.
    assert!(file_row(&app.pool, "B", "still").await.is_none());
    assert!(file_row(&app.pool, "C", "anim").await.is_none());
    assert!(file_row(&app.pool, "C", "anim_strip").await.is_none());
    assert!(
        text.contains("removed (its file cannot be recovered)"),
        "{text}"
    );
    assert!(
        text.contains("anim_strip"),
        "the cascaded preview is named: {text}"
    );
    assert!(!root.join(&gif_path).exists(), "the damaged GIF is gone");
    assert!(
        !root.join(&strip_path).exists(),
        "its strip, now unused, too"
    );
    // The intact files are untouched.
    let (_, fits_path, fits_sha) = file_row(&app.pool, "A", "deep_cutout").await.unwrap();
    assert_eq!(sha_of(&root.join(&fits_path)), fits_sha);

    let o = vetter(&["check"], &env);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("no problems"), "{}", out(&o));

    // The app serves the preview rendered again.
    let reviewer = app.create_user("rev", Role::Reviewer).await;
    app.login_as(&reviewer).await;
    let r = app.get(&format!("/media/{png_id}/preview.png")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hex(&Sha256::digest(r.bytes().await.unwrap())), png_sha);
}

#[sqlx::test]
async fn orphans_inside_the_grace_period_are_left_alone(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let root = app.media_root.clone();
    let url = url_of(&app.pool).await;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("VETTER_MEDIA_ROOT", root.to_str().unwrap()),
    ];
    // An upload in flight: just linked, not yet committed.
    let young = plant_object(&root, &png_bytes(), ContentKind::Png);
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let streaming = root.join("tmp/feedbeef.part");
    std::fs::write(&streaming, b"arriving").unwrap();
    // Two hours old, under a three-hour grace period.
    let older = plant_object(&root, &gif_bytes(), ContentKind::Gif);
    age(&older, Duration::from_secs(2 * 3600));

    let o = vetter(&["check", "--repair", "--grace", "3h"], &env);
    let text = out(&o);
    assert!(o.status.success(), "young files are not problems: {text}");
    assert!(text.contains("within the grace period"), "{text}");
    assert!(
        young.exists() && streaming.exists() && older.exists(),
        "{text}"
    );

    // The default hour: the two-hour-old one goes, the young ones stay.
    let o = vetter(&["check", "--repair"], &env);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!older.exists(), "{}", out(&o));
    assert!(young.exists() && streaming.exists(), "{}", out(&o));

    let o = vetter(&["check", "--grace", "soon"], &env);
    assert_eq!(o.status.code(), Some(2), "a bad duration is a usage error");

    let o = vetter(&["check", "--repair", "--grace", "0"], &env);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!young.exists() && !streaming.exists(), "{}", out(&o));
    let o = vetter(&["check"], &env);
    assert!(out(&o).contains("no problems"), "{}", out(&o));
}

#[sqlx::test]
async fn a_request_failing_part_way_leaves_no_files_and_keeps_shared_ones(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let root = app.media_root.clone();
    let (s, body) = api
        .post_multipart(
            BATCH,
            "candidates",
            json!({"candidates": [candidate("KEEP", json!({"still": "p"}))]}),
            vec![("p", png_bytes())],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let before = list_files(&root);
    let (_, shared_path, _) = file_row(&app.pool, "KEEP", "still").await.unwrap();

    // Rejected while checking: the third candidate's GIF cannot be cut into
    // frames, after the first two FITS files were rendered.
    let mut broken_gif = b"GIF89a".to_vec();
    broken_gif.extend_from_slice(&[7u8; 200]);
    let (s, body) = api
        .post_multipart(
            BATCH,
            "candidates",
            json!({"candidates": [
                candidate("X1", json!({"deep_cutout": "f1"})),
                candidate("X2", json!({"deep_cutout": "f2"})),
                candidate("X3", json!({"anim": "g"})),
            ]}),
            vec![
                ("f1", fits_bytes(8, 8, 1, 31)),
                ("f2", fits_bytes(8, 8, 1, 32)),
                ("g", broken_gif),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.to_string().contains("candidates[2].files.anim"),
        "{body}"
    );
    assert_eq!(
        list_files(&root),
        before,
        "no file left, temporary or stored"
    );

    // Failing after its files are in objects/, inside the transaction: a
    // trigger stands in for any database error at that point.
    sqlx::query(
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'boom'; END $$",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER boom BEFORE INSERT ON files FOR EACH ROW WHEN (NEW.role = 'boom') EXECUTE FUNCTION boom()",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (s, body) = api
        .post_multipart(
            BATCH,
            "candidates",
            json!({"candidates": [candidate("Y", json!({"deep_cutout": "f", "boom": "p"}))]}),
            // The PNG is the very content KEEP's row uses.
            vec![("f", fits_bytes(8, 8, 1, 33)), ("p", png_bytes())],
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(
        list_files(&root),
        before,
        "the request's new objects are withdrawn; the shared PNG stays"
    );
    assert!(root.join(&shared_path).exists());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[sqlx::test]
async fn an_abandoned_upload_never_removes_what_its_concurrent_twin_commits(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let media = MediaStore::new(&app.media_root);
    abandoned_twin(&app, &media).await;
}

#[sqlx::test]
async fn in_a_bucket_too_an_abandoned_upload_keeps_what_its_twin_commits(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let bucket = vetter::config::MediaLocation::Bucket(crate::s3::bucket("twin"));
    let media = MediaStore::open(&app.media_root, &bucket).unwrap();
    abandoned_twin(&app, &media).await;
}

/// Two uploads of the same content, A first; A fails while B is committing.
pub async fn abandoned_twin(app: &TestApp, media: &MediaStore) {
    let api = uploader(app).await;
    vast_project(&api).await;
    let obs: i64 = sqlx::query_scalar("SELECT id FROM observations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let content = b"ra,dec\n1,2\n";
    let a = media.write_temp_bytes(content).await.unwrap();
    let b = media.write_temp_bytes(content).await.unwrap();
    let rel = MediaStore::object_path(&a.sha256, ContentKind::Csv);

    // A links the object first; B finds it there and will refer to it.
    let mut tx_a = app.pool.begin().await.unwrap();
    let mut pub_a = Publication::new(media, &app.pool);
    pub_a
        .publish(&mut tx_a, [(&a, ContentKind::Csv)])
        .await
        .unwrap();
    assert_eq!(pub_a.created(), std::slice::from_ref(&rel));
    let mut tx_b = app.pool.begin().await.unwrap();
    let mut pub_b = Publication::new(media, &app.pool);
    pub_b
        .publish(&mut tx_b, [(&b, ContentKind::Csv)])
        .await
        .unwrap();
    assert!(pub_b.created().is_empty(), "B made nothing new");
    vetter::db::files::upsert(
        &mut tx_b,
        Owner::Observation(vetter::domain::ObservationId(obs)),
        &NewFile {
            role: "table",
            kind: ContentKind::Csv,
            size: b.size,
            sha256: &b.sha256,
            original_name: "t.csv",
            derived_from: None,
            animation: None,
        },
    )
    .await
    .unwrap();

    // A fails while B is still open: its clean-up must wait for B.
    tx_a.rollback().await.unwrap();
    let cleanup = tokio::spawn(pub_a.abandon());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!cleanup.is_finished(), "the removal waits for B's commit");
    tx_b.commit().await.unwrap();
    pub_b.committed();
    cleanup.await.unwrap();
    assert!(
        media.size(&rel).await.unwrap().is_some(),
        "B's committed row still has its object"
    );

    // Once no row uses it, it may go.
    sqlx::query("DELETE FROM files")
        .execute(&app.pool)
        .await
        .unwrap();
    let removed = publish::remove_unreferenced(media, &app.pool, std::slice::from_ref(&rel)).await;
    assert_eq!(removed, std::slice::from_ref(&rel));
    assert_eq!(media.size(&rel).await.unwrap(), None);
}

#[sqlx::test]
async fn upload_names_never_reach_the_file_system(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let root = app.media_root.clone();
    let marker = format!("vetter-escape-{}", std::process::id());
    let evil_name = format!("../../../../{marker}.fits");
    let form = Form::new()
        .part(
            "candidates",
            Part::text(
                json!({"candidates": [candidate("E", json!({"deep_cutout": "c"}))]}).to_string(),
            )
            .mime_str("application/json")
            .unwrap(),
        )
        .part(
            "c",
            Part::bytes(fits_bytes(8, 8, 1, 41)).file_name(evil_name.clone()),
        );
    let r = app
        .client
        .post(app.url(&format!("/api/v1{BATCH}")))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // Every stored file is an object named by its checksum.
    let files = list_files(&root);
    assert!(!files.is_empty());
    for f in &files {
        assert!(
            vetter::media::parse_object_path(f).is_some(),
            "{f} is not an object path"
        );
        assert_eq!(
            sha_of(&root.join(f)),
            vetter::media::parse_object_path(f).unwrap().0
        );
    }
    for dir in [
        root.parent().unwrap(),
        &std::env::temp_dir(),
        Path::new("/"),
    ] {
        assert!(!dir.join(format!("{marker}.fits")).exists());
    }
    // The name is kept only as a label, and not offered back as a path.
    let (id, original): (i64, String) =
        sqlx::query_as("SELECT id, original_name FROM files WHERE role = 'deep_cutout'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(original, evil_name);
    let reviewer = app.create_user("rev", Role::Reviewer).await;
    app.login_as(&reviewer).await;
    let r = app.get(&format!("/media/{id}/x.fits")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()["content-disposition"].to_str().unwrap();
    assert!(
        !disposition.contains('/') && !disposition.contains(".."),
        "{disposition}"
    );
    // And the database itself refuses a row pointing anywhere else.
    let err = sqlx::query("UPDATE files SET storage_path = '../../etc/passwd' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check constraint"), "{err}");
}

//! `vetter check`, `backup`, `restore` and `media migrate` against a real
//! S3 server (the Ceph RADOS gateway that `make test` starts and describes
//! in `VETTER_TEST_S3_*`), each test under a key prefix of its own: damage
//! done behind the app's back is found and repaired, what a crash leaves is
//! an orphan and never a dangling row, and every checksum survives a backup,
//! a restore and a migration in either direction, also one that was
//! interrupted.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use futures_util::TryStreamExt;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use vetter::config::{Config, MediaLocation, Source};
use vetter::db::files::{NewFile, Owner};
use vetter::domain::{ObservationId, Role};
use vetter::ingest::publish::Publication;
use vetter::media::{hex, parse_object_path, ContentKind, MediaStore};

use crate::helpers::{list_files, TestApp};
use crate::media_safety::{candidate, file_row, out, sha_of, upload_three, url_of, vetter};
use crate::upload_api::{fits_bytes, png_bytes, uploader, vast_project};

const BATCH: &str = "/projects/vast/observations/SB50230/candidates";

use crate::s3::server_env as s3_env;

/// A prefix of the test bucket no other test uses.
fn fresh_url(tag: &str) -> String {
    crate::s3::bucket(tag).url()
}

/// Where `url` is, read by the same code as the binary's settings.
fn location(url: &str) -> MediaLocation {
    let env = s3_env();
    let src = Source::from_pairs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Config::media_location_at(&src, url).unwrap()
}

/// The store at `url` as the test sees it, straight from the server.
fn store_at(root: &Path, url: &str) -> MediaStore {
    MediaStore::open(root, &location(url)).unwrap()
}

/// The settings of a `vetter` command: the database, the media folder and,
/// with `url`, the bucket as its store.
fn env_for(db: &str, root: &Path, url: Option<&str>) -> Vec<(String, String)> {
    let mut env = s3_env();
    env.push(("DATABASE_URL".into(), db.into()));
    env.push(("VETTER_MEDIA_ROOT".into(), root.to_str().unwrap().into()));
    if let Some(u) = url {
        env.push(("VETTER_MEDIA_URL".into(), u.into()));
    }
    env
}

fn run(args: &[&str], env: &[(String, String)]) -> Output {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vetter(args, &pairs)
}

async fn read_all(store: &MediaStore, rel: &str) -> Vec<u8> {
    let (_, stream) = store.read(rel).await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

/// Puts `bytes` at `rel` in the store, whatever was there and whatever the
/// name says: damage, or an upload no row ever named.
async fn put_at(store: &MediaStore, rel: &str, bytes: &[u8]) {
    store.remove(rel).await.unwrap();
    let temp = store.write_temp_bytes(bytes).await.unwrap();
    let (_, r) = store
        .publish(vec![(temp.path().to_path_buf(), rel.to_string())])
        .await;
    r.unwrap();
}

/// Puts `bytes` into the store under their own name.
async fn put(store: &MediaStore, bytes: &[u8], kind: ContentKind) -> String {
    let rel = MediaStore::object_path(&hex(&Sha256::digest(bytes)), kind);
    put_at(store, &rel, bytes).await;
    rel
}

/// Every object in the store with the sha256 of its content.
async fn contents(store: &MediaStore) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in store.list().await.unwrap() {
        let (_, sha) = store.hash(&l.path).await.unwrap();
        out.insert(l.path, sha);
    }
    out
}

/// Every object a row refers to, with the checksum its name carries (which
/// `contents` must show for a store to be intact).
async fn referenced(pool: &PgPool) -> BTreeMap<String, String> {
    let paths: Vec<String> = sqlx::query_scalar("SELECT DISTINCT storage_path FROM files")
        .fetch_all(pool)
        .await
        .unwrap();
    paths
        .into_iter()
        .map(|p| {
            let sha = parse_object_path(&p).unwrap().0.to_string();
            (p, sha)
        })
        .collect()
}

/// The objects of a media folder with the sha256 of their content.
fn folder_contents(root: &Path) -> BTreeMap<String, String> {
    list_files(root)
        .into_iter()
        .filter(|f| f.starts_with("objects/"))
        .map(|f| {
            let sha = sha_of(&root.join(&f));
            (f, sha)
        })
        .collect()
}

/// Removes what a test left under its prefix.
async fn clean(store: &MediaStore) {
    for l in store.list().await.unwrap_or_default() {
        let _ = store.remove(&l.path).await;
    }
}

/// A database made from template1 (which has q3c), to restore into.
struct FreshDb {
    name: String,
    url: String,
    admin: PgPool,
}

impl FreshDb {
    async fn create(admin: &PgPool) -> Self {
        let name = format!("vetter_store_{}", vetter::random_hex(6));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin)
            .await
            .unwrap();
        let base = std::env::var("DATABASE_URL").unwrap();
        let cut = base.rfind('/').unwrap();
        Self {
            url: format!("{}/{name}", &base[..cut]),
            name,
            admin: admin.clone(),
        }
    }

    async fn drop_it(self) {
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

#[sqlx::test]
async fn check_finds_what_was_done_to_a_bucket_behind_the_apps_back_and_repairs_it(pool: PgPool) {
    let url = fresh_url("check");
    let bucket = location(&url);
    let app = TestApp::spawn_with(pool, |c| c.media_location = bucket.clone()).await;
    let store = store_at(&app.media_root, &url);
    upload_three(&app).await;
    assert!(
        !app.media_root.join("objects").exists(),
        "the objects are in the bucket, not the folder"
    );
    let db = url_of(&app.pool).await;
    let env = env_for(&db, &app.media_root, Some(&url));
    let o = run(&["check"], &env);
    assert!(o.status.success(), "a fresh upload is clean: {}", out(&o));
    assert!(out(&o).contains("no problems"), "{}", out(&o));
    assert!(
        out(&o).contains(&url),
        "names the bucket it checked: {}",
        out(&o)
    );
    let rows = referenced(&app.pool).await;
    assert_eq!(
        contents(&store).await,
        rows,
        "every object checked is there"
    );

    // Gone: a rendered preview (its FITS source is intact) and a PNG as sent.
    let (png_id, png_path, png_sha) = file_row(&app.pool, "A", "deep_cutout_png").await.unwrap();
    assert!(store.remove(&png_path).await.unwrap());
    let (_, still_path, _) = file_row(&app.pool, "B", "still").await.unwrap();
    assert!(store.remove(&still_path).await.unwrap());
    // Damaged: the GIF, same size, other bytes.
    let (_, gif_path, _) = file_row(&app.pool, "C", "anim").await.unwrap();
    let (_, strip_path, _) = file_row(&app.pool, "C", "anim_strip").await.unwrap();
    let mut damaged = read_all(&store, &gif_path).await;
    let last = damaged.len() - 2;
    damaged[last] ^= 0xff;
    put_at(&store, &gif_path, &damaged).await;
    // An orphan: an object no row names.
    let orphan = put(&store, &fits_bytes(8, 8, 1, 99), ContentKind::Fits).await;

    let o = run(&["check"], &env);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "problems found: {text}");
    assert!(text.contains(&format!("{png_path} is missing")), "{text}");
    assert!(text.contains(&format!("{still_path} is missing")), "{text}");
    assert!(
        text.contains(&format!("{gif_path} does not hold")),
        "{text}"
    );
    // Just stored, so inside the default hour of grace: reported, not a
    // problem (it may be an upload whose row is about to commit).
    assert!(text.contains(&format!("orphan {orphan}")), "{text}");
    assert!(text.contains("within the grace period"), "{text}");
    assert!(text.contains("3 problems left"), "{text}");
    assert!(
        store.size(&orphan).await.unwrap().is_some(),
        "check alone changes nothing"
    );

    // A bucket's objects are as old as their upload: no grace for the test.
    let o = run(&["check", "--repair", "--grace", "0"], &env);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("all repaired"), "{text}");
    assert!(store.size(&orphan).await.unwrap().is_none(), "{text}");
    // The preview is rendered again from the FITS in the bucket, byte for
    // byte, under the same row.
    assert!(text.contains("rendered again"), "{text}");
    let (id, path, sha) = file_row(&app.pool, "A", "deep_cutout_png").await.unwrap();
    assert_eq!((id, &path, &sha), (png_id, &png_path, &png_sha));
    assert_eq!(store.hash(&path).await.unwrap().1, sha);
    // What cannot be recovered is removed: the rows, the damaged object and
    // the strip no row uses any more.
    assert!(file_row(&app.pool, "B", "still").await.is_none());
    assert!(file_row(&app.pool, "C", "anim").await.is_none());
    assert!(file_row(&app.pool, "C", "anim_strip").await.is_none());
    assert!(store.size(&gif_path).await.unwrap().is_none(), "{text}");
    assert!(store.size(&strip_path).await.unwrap().is_none(), "{text}");
    assert_eq!(contents(&store).await, referenced(&app.pool).await);

    let o = run(&["check"], &env);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("no problems"), "{}", out(&o));

    // The app serves the preview rendered again, from the bucket.
    let reviewer = app.create_user("rev", Role::Reviewer).await;
    app.login_as(&reviewer).await;
    let r = app.get(&format!("/media/{png_id}/preview.png")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hex(&Sha256::digest(r.bytes().await.unwrap())), png_sha);
    clean(&store).await;
}

/// CSV text whose object falls in none of the advisory-lock buckets of
/// `taken`, so that one held lock does not hold up the others.
fn csv_outside(taken: &[&str], tag: &str) -> Vec<u8> {
    (0..)
        .map(|n| format!("ra,dec,{tag}\n{n},2,3\n").into_bytes())
        .find(|b| {
            let sha = hex(&Sha256::digest(b));
            !taken
                .iter()
                .any(|t| parse_object_path(t).unwrap().0[..2] == sha[..2])
        })
        .unwrap()
}

async fn add_table_row(tx: &mut sqlx::PgConnection, obs: i64, temp: &vetter::media::TempFile) {
    vetter::db::files::upsert(
        tx,
        Owner::Observation(ObservationId(obs)),
        &NewFile {
            role: "table",
            kind: ContentKind::Csv,
            size: temp.size,
            sha256: &temp.sha256,
            original_name: "t.csv",
            derived_from: None,
            animation: None,
        },
    )
    .await
    .unwrap();
}

#[sqlx::test]
async fn what_a_crash_leaves_in_a_bucket_is_an_orphan_and_no_committed_row_dangles(pool: PgPool) {
    let url = fresh_url("crash");
    let bucket = location(&url);
    let app = TestApp::spawn_with(pool, |c| c.media_location = bucket.clone()).await;
    let store = store_at(&app.media_root, &url);
    let api = uploader(&app).await;
    vast_project(&api).await;
    let (s, body) = api
        .post_multipart(
            BATCH,
            "candidates",
            json!({"candidates": [candidate("KEEP", json!({"still": "p"}))]}),
            vec![("p", png_bytes())],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let obs: i64 = sqlx::query_scalar("SELECT id FROM observations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (_, keep_path, _) = file_row(&app.pool, "KEEP", "still").await.unwrap();

    // A crash after the object reached the bucket, before the commit: the
    // transaction dies with the process, and so does the clean-up.
    let crashed = store
        .write_temp_bytes(&csv_outside(&[&keep_path], "crash"))
        .await
        .unwrap();
    let crashed_rel = MediaStore::object_path(&crashed.sha256, ContentKind::Csv);
    {
        let mut tx = app.pool.begin().await.unwrap();
        let mut publication = Publication::new(&store, &app.pool);
        publication
            .publish(&mut tx, [(&crashed, ContentKind::Csv)])
            .await
            .unwrap();
        assert_eq!(publication.created(), std::slice::from_ref(&crashed_rel));
        add_table_row(&mut tx, obs, &crashed).await;
        tx.rollback().await.unwrap();
        // The process is gone, and its clean-up with it: settling the
        // publication without abandoning it stands in for that.
        publication.committed();
    }
    drop(crashed);
    assert!(
        store.size(&crashed_rel).await.unwrap().is_some(),
        "the object outlived its row"
    );
    // An object put straight into the bucket, never named by a row.
    let direct = put(
        &store,
        &csv_outside(&[&keep_path, &crashed_rel], "direct"),
        ContentKind::Csv,
    )
    .await;
    // An upload in flight: its object is in, its row written but not yet
    // committed, and it holds its bucket's lock shared until it commits.
    let inflight = store
        .write_temp_bytes(&csv_outside(&[&keep_path, &crashed_rel, &direct], "flight"))
        .await
        .unwrap();
    let inflight_rel = MediaStore::object_path(&inflight.sha256, ContentKind::Csv);
    let mut tx = app.pool.begin().await.unwrap();
    let mut publication = Publication::new(&store, &app.pool);
    publication
        .publish(&mut tx, [(&inflight, ContentKind::Csv)])
        .await
        .unwrap();
    add_table_row(&mut tx, obs, &inflight).await;

    let db = url_of(&app.pool).await;
    let env = env_for(&db, &app.media_root, Some(&url));
    let o = run(&["check"], &env);
    let text = out(&o);
    assert!(o.status.success(), "young orphans are no problem: {text}");
    for orphan in [&crashed_rel, &direct, &inflight_rel] {
        assert!(
            text.contains(&format!("orphan {orphan}")),
            "{orphan}: {text}"
        );
    }
    assert!(
        !text.lines().any(|l| l.starts_with("dangling row")),
        "{text}"
    );

    // Repair removes the two that no row will ever name, and keeps the one
    // whose row is about to commit: its lock is held.
    let o = run(&["check", "--repair", "--grace", "0"], &env);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("  removed {crashed_rel}")), "{text}");
    assert!(text.contains(&format!("  removed {direct}")), "{text}");
    assert!(text.contains(&format!("  kept {inflight_rel}")), "{text}");
    assert!(store.size(&crashed_rel).await.unwrap().is_none());
    assert!(store.size(&direct).await.unwrap().is_none());
    assert!(store.size(&inflight_rel).await.unwrap().is_some());

    tx.commit().await.unwrap();
    publication.committed();
    drop(inflight);
    // Every committed row has its object, intact.
    let o = run(&["check", "--repair", "--grace", "0"], &env);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("no problems"), "{text}");
    let rows = referenced(&app.pool).await;
    assert!(rows.contains_key(&inflight_rel) && rows.contains_key(&keep_path));
    assert_eq!(contents(&store).await, rows);
    clean(&store).await;
}

#[sqlx::test]
async fn a_backup_of_a_bucket_restores_into_another_bucket_and_into_a_folder(pool: PgPool) {
    let url = fresh_url("backup");
    let bucket = location(&url);
    let app = TestApp::spawn_with(pool, |c| c.media_location = bucket.clone()).await;
    let store = store_at(&app.media_root, &url);
    upload_three(&app).await;
    let orphan = put(&store, b"ra,dec\nstray,1\n", ContentKind::Csv).await;
    let rows = referenced(&app.pool).await;
    assert!(rows.len() >= 5, "{rows:?}");

    let db = url_of(&app.pool).await;
    let work = std::env::temp_dir().join(format!("vetter-store-backup-{}", vetter::random_hex(6)));
    let dir = work.join("backup");
    let o = run(
        &["backup", dir.to_str().unwrap()],
        &env_for(&db, &app.media_root, Some(&url)),
    );
    assert!(o.status.success(), "{}", out(&o));
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    for (p, sha) in &rows {
        let line = manifest
            .lines()
            .find(|l| l.ends_with(&format!("\tmedia/{p}")))
            .unwrap_or_else(|| panic!("{p} not in the manifest:\n{manifest}"));
        assert_eq!(line.split('\t').next().unwrap(), sha);
        assert_eq!(&sha_of(&dir.join("media").join(p)), sha, "{p}");
    }
    assert!(!manifest.contains(&orphan), "orphans are not backed up");

    // Into a fresh database and a fresh prefix.
    let db2 = FreshDb::create(&app.pool).await;
    let url2 = fresh_url("restored");
    let store2 = store_at(&work, &url2);
    let env2 = env_for(&db2.url, &work.join("media-root-2"), Some(&url2));
    let o = run(&["restore", dir.to_str().unwrap()], &env2);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("every checksum verified"), "{}", out(&o));
    assert!(out(&o).contains(&url2), "{}", out(&o));
    assert_eq!(
        contents(&store2).await,
        rows,
        "the bucket holds what rows use"
    );
    let o = run(&["check"], &env2);
    assert!(out(&o).contains("no problems"), "{}", out(&o));

    // Restoring again over damaged copies (same size, and cut short)
    // replaces them.
    let victims: Vec<&String> = rows.keys().take(2).collect();
    let mut bytes = read_all(&store2, victims[0]).await;
    bytes[0] ^= 1;
    put_at(&store2, victims[0], &bytes).await;
    let bytes = read_all(&store2, victims[1]).await;
    put_at(&store2, victims[1], &bytes[..bytes.len() / 2]).await;
    let o = run(&["restore", "--force", dir.to_str().unwrap()], &env2);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("2 of them over a damaged copy"),
        "{}",
        out(&o)
    );
    assert_eq!(contents(&store2).await, rows);

    // Into a fresh database and a media folder.
    let db3 = FreshDb::create(&app.pool).await;
    let folder = work.join("media-root-3");
    let env3 = env_for(&db3.url, &folder, None);
    let o = run(&["restore", dir.to_str().unwrap()], &env3);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(folder_contents(&folder), rows);
    let o = run(&["check"], &env3);
    assert!(out(&o).contains("no problems"), "{}", out(&o));

    clean(&store).await;
    clean(&store2).await;
    db2.drop_it().await;
    db3.drop_it().await;
    let _ = std::fs::remove_dir_all(&work);
}

#[sqlx::test]
async fn media_migrate_copies_folder_to_bucket_and_back_and_resumes_an_interrupted_run(
    pool: PgPool,
) {
    let app = TestApp::spawn(pool).await;
    let api = upload_three(&app).await;
    let root = app.media_root.clone();
    let stray = b"ra,dec\nstray,1\n";
    let orphan = MediaStore::object_path(&hex(&Sha256::digest(stray)), ContentKind::Csv);
    std::fs::create_dir_all(root.join(&orphan).parent().unwrap()).unwrap();
    std::fs::write(root.join(&orphan), stray).unwrap();
    let rows = referenced(&app.pool).await;
    let n = rows.len();
    assert!(n >= 5, "{rows:?}");
    let db = url_of(&app.pool).await;
    let on_folder = env_for(&db, &root, None);

    // What an interrupted run leaves: half the objects in the target, one
    // of them damaged (same size) and one cut short.
    let url = fresh_url("migrate");
    let bucket = store_at(&root, &url);
    let half: Vec<&String> = rows.keys().take(n / 2 + 1).collect();
    for (i, p) in half.iter().enumerate() {
        let mut bytes = std::fs::read(root.join(p)).unwrap();
        match i {
            0 => bytes[10] ^= 0x55,
            1 => bytes.truncate(bytes.len() / 3),
            _ => {}
        }
        put_at(&bucket, p, &bytes).await;
    }
    let o = run(&["media", "migrate", "--to", &url], &on_folder);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let (copied, present) = (n - half.len() + 2, half.len() - 2);
    assert!(
        text.contains(&format!("{copied} copied")),
        "{copied} copied: {text}"
    );
    assert!(
        text.contains("2 of them over a damaged or incomplete copy"),
        "{text}"
    );
    assert!(text.contains(&format!("{present} already there")), "{text}");
    assert!(text.contains("0 failed"), "{text}");
    assert!(text.contains(&format!("replaced {}", half[0])), "{text}");
    assert!(
        text.contains("VETTER_MEDIA_URL") && text.contains("--from folder"),
        "the next steps are spelled out: {text}"
    );
    assert_eq!(contents(&bucket).await, rows, "without --all, no orphans");

    // Run again: everything is there and verified.
    let o = run(&["media", "migrate", "--to", &url], &on_folder);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("0 copied"), "{}", out(&o));
    assert!(
        out(&o).contains(&format!("{n} already there")),
        "{}",
        out(&o)
    );
    // --all takes the objects no row names too.
    let o = run(&["media", "migrate", "--to", &url, "--all"], &on_folder);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("1 copied"), "{}", out(&o));
    assert_eq!(
        bucket.hash(&orphan).await.unwrap().1,
        hex(&Sha256::digest(stray))
    );

    // And back, from the bucket into an empty media folder.
    let back = std::env::temp_dir().join(format!("vetter-store-back-{}", vetter::random_hex(6)));
    let o = run(
        &["media", "migrate", "--to", "folder"],
        &env_for(&db, &back, Some(&url)),
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains(&format!("{n} copied")), "{}", out(&o));
    assert_eq!(folder_contents(&back), rows, "every checksum round-trips");
    assert_eq!(
        folder_contents(&back),
        folder_contents(&root)
            .into_iter()
            .filter(|(p, _)| *p != orphan)
            .collect(),
    );
    let o = run(&["check"], &env_for(&db, &back, None));
    assert!(out(&o).contains("no problems"), "{}", out(&o));

    // The switch: an upload after the first run lands in the folder, so
    // the bucket lacks it until the run --from the old store.
    let (s, body) = api
        .post_multipart(
            BATCH,
            "candidates",
            json!({"candidates": [candidate("LATE", json!({"deep_cutout": "f"}))]}),
            vec![("f", fits_bytes(8, 8, 1, 77))],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let on_bucket = env_for(&db, &root, Some(&url));
    let o = run(&["check"], &on_bucket);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("is missing"), "{}", out(&o));
    let o = run(
        &["media", "migrate", "--from", "folder", "--to", &url],
        &on_bucket,
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("2 copied"),
        "the FITS and its preview: {}",
        out(&o)
    );
    let o = run(&["check"], &on_bucket);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("no problems"), "{}", out(&o));

    // A store onto itself is a usage error.
    let o = run(&["media", "migrate", "--to", "folder"], &on_folder);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    // An object lost from the source fails the run, which says so.
    let url3 = fresh_url("lost");
    let (lost, _) = rows.iter().next().unwrap();
    std::fs::remove_file(root.join(lost)).unwrap();
    let o = run(&["media", "migrate", "--to", &url3], &on_folder);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("failed {lost}: missing from the source")),
        "{text}"
    );
    assert!(text.contains("1 failed"), "{text}");

    clean(&bucket).await;
    clean(&store_at(&root, &url3)).await;
    let _ = std::fs::remove_dir_all(&back);
}

/// With a bucket, a finished upload's scratch file is emptied and written
/// again by the next upload (no new file, so no inode allocated), never
/// with the old bytes showing; the folder keeps nothing, since its scratch
/// file is the published object's other name; the hourly clean-up removes
/// the kept ones.
#[tokio::test]
async fn a_bucket_s_scratch_files_are_emptied_and_reused() {
    use std::os::unix::fs::MetadataExt;
    let root = std::env::temp_dir().join(format!("vetter-scratch-{}", vetter::random_hex(6)));
    let store = store_at(&root, &fresh_url("scratch"));
    let tmp = root.join("tmp");

    let first = store
        .write_temp_bytes(b"the first upload's bytes")
        .await
        .unwrap();
    let inode = std::fs::metadata(first.path()).unwrap().ino();
    drop(first);
    let kept = list_files(&tmp);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        vetter::media::is_kept_scratch(&tmp.join(&kept[0])),
        "{kept:?}"
    );
    assert!(crate::helpers::upload_leftovers(&root).is_empty());

    let second = store.write_temp_bytes(b"short").await.unwrap();
    assert_eq!(std::fs::metadata(second.path()).unwrap().ino(), inode);
    assert_eq!(std::fs::read(second.path()).unwrap(), b"short");
    assert_eq!(second.sha256, hex(&Sha256::digest(b"short")));
    assert_eq!(list_files(&tmp).len(), 1, "taken, not copied");
    // In use, it is an upload's file like any other.
    assert_eq!(crate::helpers::upload_leftovers(&root).len(), 1);
    drop(second);

    assert_eq!(
        store
            .remove_stale_temp(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    assert!(list_files(&tmp).is_empty());

    let folder = MediaStore::new(root.join("folder"));
    drop(folder.write_temp_bytes(b"gone when dropped").await.unwrap());
    assert!(list_files(&root.join("folder/tmp")).is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

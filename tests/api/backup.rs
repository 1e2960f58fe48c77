//! `vetter backup` and `vetter restore`: a round trip into a fresh database
//! and an empty media folder gives back every table and every file, and the
//! app serves the restored candidates.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgPool};
use vetter::domain::Role;
use vetter::media::hex;

use crate::helpers::list_files;
use crate::helpers::TestApp;
use crate::media_safety::{out, sha_of, url_of, vetter};
use crate::upload_api::{fits_bytes, gif_bytes, png_bytes, uploader, vast_project};

/// Row count and a digest of the sorted rows of every table.
async fn tables(pool: &PgPool) -> BTreeMap<String, (i64, String)> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in names {
        let row: (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM {t} AS x"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.insert(t, (row.0, row.1.unwrap_or_default()));
    }
    out
}

fn media_digest(root: &std::path::Path) -> BTreeMap<String, String> {
    list_files(root)
        .into_iter()
        .map(|f| {
            let sha = sha_of(&root.join(&f));
            (f, sha)
        })
        .collect()
}

struct FreshDb {
    name: String,
    url: String,
    admin: PgPool,
}

impl FreshDb {
    /// An empty database made from template1 (which has q3c), as an
    /// operator would make one to restore into.
    async fn create(admin: &PgPool) -> Self {
        let name = format!("vetter_restore_{}", vetter::random_hex(6));
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
async fn backup_and_restore_round_trip_into_a_fresh_database(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let (s, body) = api
        .post_multipart(
            "/projects/vast/observations/SB50230/candidates",
            "candidates",
            json!({"candidates": [
                {"name": "R1", "ra": 188.7, "dec": -45.2, "metrics": {"chi_square": 3.5},
                 "files": {"deep_cutout": "f", "cube": "q"}},
                {"name": "R2", "ra": 188.8, "dec": -45.3, "files": {"still": "p", "anim": "g"}},
            ]}),
            vec![
                ("f", fits_bytes(12, 10, 1, 51)),
                ("q", fits_bytes(8, 8, 3, 52)),
                ("p", png_bytes()),
                ("g", gif_bytes()),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let reviewer = app.create_user("restorer", Role::Reviewer).await;
    // An orphan is not part of a backup: only what rows use.
    let orphan = app.media_root.join("objects/00/stray.part");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"x").unwrap();

    let url = url_of(&app.pool).await;
    let work = std::env::temp_dir().join(format!("vetter-backup-test-{}", vetter::random_hex(6)));
    let dir = work.join("backup");
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("VETTER_MEDIA_ROOT", app.media_root.to_str().unwrap()),
    ];
    let o = vetter(&["backup", dir.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("media files"), "{}", out(&o));

    // The manifest lists the dump and every file a row uses, with the
    // checksums of what is in the folder.
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    let paths: Vec<String> = sqlx::query_scalar("SELECT DISTINCT storage_path FROM files")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(paths.len() >= 6, "{paths:?}");
    for p in &paths {
        let line = manifest
            .lines()
            .find(|l| l.ends_with(&format!("\tmedia/{p}")))
            .unwrap_or_else(|| panic!("{p} not in the manifest:\n{manifest}"));
        let sha = line.split('\t').next().unwrap();
        assert_eq!(sha, sha_of(&dir.join("media").join(p)));
    }
    assert!(manifest.lines().any(|l| l.ends_with("\tdatabase.dump")));
    assert!(!manifest.contains("stray"), "orphans are not backed up");

    // A second backup into the same folder is refused.
    let o = vetter(&["backup", dir.to_str().unwrap()], &env);
    assert!(!o.status.success());
    assert!(out(&o).contains("not empty"), "{}", out(&o));

    // Restore into a fresh database and an empty media folder.
    let fresh = FreshDb::create(&app.pool).await;
    let restored_media = work.join("media");
    let env2 = [
        ("DATABASE_URL", fresh.url.as_str()),
        ("VETTER_MEDIA_ROOT", restored_media.to_str().unwrap()),
    ];
    let o = vetter(&["restore", dir.to_str().unwrap()], &env2);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("every checksum verified"), "{}", out(&o));

    let restored_pool = PgPool::connect(&fresh.url).await.unwrap();
    let original = tables(&app.pool).await;
    assert!(original.contains_key("public.files") && original.contains_key("public.users"));
    assert!(original["public.files"].0 >= 6);
    assert_eq!(
        tables(&restored_pool).await,
        original,
        "every table, row for row"
    );
    let mut expected = media_digest(&app.media_root);
    expected.retain(|p, _| !p.contains("stray"));
    assert_eq!(media_digest(&restored_media), expected, "the media tree");
    for (p, sha) in &expected {
        assert_eq!(vetter::media::parse_object_path(p).unwrap().0, sha);
    }
    let o = vetter(&["check"], &env2);
    assert!(
        o.status.success() && out(&o).contains("no problems"),
        "{}",
        out(&o)
    );

    // Restoring over a database that is no longer empty needs --force.
    let o = vetter(&["restore", dir.to_str().unwrap()], &env2);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("not empty"), "{}", out(&o));
    assert!(out(&o).contains("--force"), "{}", out(&o));
    sqlx::query("DELETE FROM candidates WHERE name = 'R2'")
        .execute(&restored_pool)
        .await
        .unwrap();
    let o = vetter(&["restore", "--force", dir.to_str().unwrap()], &env2);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        tables(&restored_pool).await,
        original,
        "--force puts it back"
    );

    // A damaged backup is refused before anything is touched.
    let victim = dir.join("media").join(&paths[0]);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&victim, &bytes).unwrap();
    let o = vetter(&["restore", "--force", dir.to_str().unwrap()], &env2);
    assert!(!o.status.success());
    assert!(out(&o).contains("do not match the manifest"), "{}", out(&o));

    // The app on the restored database and folder serves a candidate's image.
    let (file_id, sha): (i64, String) = sqlx::query_as(
        "SELECT f.id, f.sha256 FROM files f JOIN candidates c ON c.id = f.candidate_id
         WHERE c.name = 'R1' AND f.role = 'deep_cutout_png'",
    )
    .fetch_one(&restored_pool)
    .await
    .unwrap();
    let restored_app = TestApp::spawn_with(restored_pool.clone(), |c| {
        c.media_root = restored_media.clone()
    })
    .await;
    restored_app.login_as(&reviewer).await;
    let r = restored_app
        .get(&format!("/media/{file_id}/preview.png"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hex(&Sha256::digest(r.bytes().await.unwrap())), sha);

    drop(restored_app);
    restored_pool.close().await;
    fresh.drop_it().await;
    let _ = std::fs::remove_dir_all(&work);
}

#[sqlx::test]
async fn restore_refuses_a_manifest_that_points_outside(pool: PgPool) {
    let url = url_of(&pool).await;
    let work = std::env::temp_dir().join(format!("vetter-backup-evil-{}", vetter::random_hex(6)));
    std::fs::create_dir_all(&work).unwrap();
    let sha = hex(&Sha256::digest(b"x"));
    std::fs::write(
        work.join("manifest.tsv"),
        format!("{sha}\t1\tdatabase.dump\n{sha}\t1\tmedia/../../../etc/evil\n"),
    )
    .unwrap();
    let media = work.join("media-root");
    let o = vetter(
        &["restore", work.to_str().unwrap()],
        &[
            ("DATABASE_URL", url.as_str()),
            ("VETTER_MEDIA_ROOT", media.to_str().unwrap()),
        ],
    );
    assert!(!o.status.success());
    assert!(out(&o).contains("is not valid"), "{}", out(&o));
    assert!(!media.exists(), "nothing was written");
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(users, 0);
    let _ = std::fs::remove_dir_all(&work);
}

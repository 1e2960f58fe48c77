//! `vetter upload` end to end: the client's library entry point against the
//! real server, then what landed in the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::PgPool;
use vetter::cli::upload::{upload_dir, Status, UploadError, UploadOptions};
use vetter::domain::Role;

use crate::helpers::TestApp;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upload")
        .join(name)
}

/// A copy of a fixture folder, to change; removed on drop.
struct Copy(PathBuf);

impl Copy {
    fn of(name: &str) -> Self {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                let dest = to.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    copy(&e.path(), &dest);
                } else {
                    std::fs::copy(e.path(), dest).unwrap();
                }
            }
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vetter-upload-e2e-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        copy(&fixture(name), &dir);
        Self(dir)
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server, and an admin's API token for it.
async fn setup(pool: PgPool) -> (TestApp, String) {
    let app = TestApp::spawn(pool).await;
    let user = app.create_user("pipeline", Role::Admin).await;
    let (token, _id) = vetter::db::api_tokens::create(
        &app.pool,
        user.id,
        "upload test",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await
    .unwrap();
    (app, token)
}

fn options(app: &TestApp, token: &str, dir: &Path) -> UploadOptions {
    UploadOptions {
        progress: false,
        retry_base_delay: Duration::from_millis(10),
        ..UploadOptions::new(&app.address, token, dir)
    }
}

async fn count(pool: &PgPool, sql: &str, slug: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(slug)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn candidates_of(pool: &PgPool, slug: &str) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM candidates c JOIN projects p ON p.id = c.project_id WHERE p.slug = $1",
        slug,
    )
    .await
}

async fn metric(pool: &PgPool, name: &str, key: &str) -> f64 {
    sqlx::query_scalar(
        "SELECT m.value FROM candidate_metrics m
         JOIN metric_defs d ON d.id = m.metric_id
         JOIN candidates c ON c.id = m.candidate_id
         WHERE c.name = $1 AND d.key = $2",
    )
    .bind(name)
    .bind(key)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn light_curve_len(pool: &PgPool, name: &str) -> i32 {
    sqlx::query_scalar(
        "SELECT cardinality(l.times) FROM light_curves l
         JOIN candidates c ON c.id = l.candidate_id WHERE c.name = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Files sent for the project's candidates (not previews the server made).
async fn candidate_files(pool: &PgPool, slug: &str) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM files f
         JOIN candidates c ON c.id = f.candidate_id
         JOIN projects p ON p.id = c.project_id
         WHERE p.slug = $1 AND f.derived_from IS NULL",
        slug,
    )
    .await
}

#[sqlx::test]
async fn a_csv_folder_lands_whole_and_a_rerun_changes_nothing(pool: PgPool) {
    let (app, token) = setup(pool).await;
    let opts = options(&app, &token, &fixture("vast_like"));
    let s = upload_dir(&opts).await.unwrap();
    assert_eq!(
        (s.created, s.updated, s.unchanged),
        (5, 0, 0),
        "{}",
        s.report()
    );
    assert!(s.rejected.is_empty(), "{}", s.report());

    let db = &app.pool;
    assert_eq!(candidates_of(db, "vast").await, 5);
    assert!(metric(db, "J123448-451207", "gaussian_map").await.is_nan());
    assert_eq!(metric(db, "J123448-451207", "chi_square").await, 12.5);
    assert_eq!(metric(db, "J123512-450930", "md_deep").await, f64::INFINITY);
    assert_eq!(
        metric(db, "J123700-451500", "md_deep").await,
        f64::NEG_INFINITY
    );
    assert_eq!(light_curve_len(db, "J123448-451207").await, 4);
    assert_eq!(light_curve_len(db, "J123512-450930").await, 3);
    assert_eq!(candidate_files(db, "vast").await, 8);
    let beam_files: i64 =
        sqlx::query_scalar("SELECT count(*) FROM files WHERE beam_id IS NOT NULL")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(beam_files, 2);
    let deep: i64 =
        sqlx::query_scalar("SELECT count(*) FROM candidate_positions WHERE kind = 'deep'")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(deep, 3);

    let again = upload_dir(&opts).await.unwrap();
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, 5),
        "{}",
        again.report()
    );
    assert_eq!(candidates_of(db, "vast").await, 5);
    assert_eq!(candidate_files(db, "vast").await, 8);
}

#[sqlx::test]
async fn a_json_folder_with_gifs_lands_whole(pool: PgPool) {
    let (app, token) = setup(pool).await;
    let s = upload_dir(&options(&app, &token, &fixture("gleamx_like")))
        .await
        .unwrap();
    assert_eq!(s.created, 3, "{}", s.report());
    let db = &app.pool;
    assert_eq!(candidates_of(db, "gleamx").await, 3);
    assert_eq!(candidate_files(db, "gleamx").await, 6);
    assert!(metric(db, "c001", "mod_index").await.is_nan());
    assert_eq!(metric(db, "c003", "mod_index").await, f64::INFINITY);
    assert_eq!(light_curve_len(db, "c001").await, 3);
    assert_eq!(light_curve_len(db, "c003").await, 3);
    let nks: String =
        sqlx::query_scalar("SELECT attributes->>'nks_name' FROM candidates WHERE name = 'c002'")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(nks, "GLEAM J035200-301500");
}

#[sqlx::test]
async fn an_interrupted_upload_resumes_without_duplicates(pool: PgPool) {
    let (app, token) = setup(pool).await;
    let mut opts = options(&app, &token, &fixture("vast_like"));
    opts.batch_size = 2;
    opts.stop_after_batches = Some(1);
    let first = upload_dir(&opts).await.unwrap();
    assert!(first.stopped_early);
    assert_eq!(first.created, 2);
    assert_eq!(candidates_of(&app.pool, "vast").await, 2);

    opts.stop_after_batches = None;
    let rest = upload_dir(&opts).await.unwrap();
    let statuses: Vec<Status> = rest.outcomes.iter().map(|o| o.status).collect();
    use Status::*;
    assert_eq!(
        statuses,
        [Unchanged, Unchanged, Created, Created, Created],
        "{}",
        rest.report()
    );
    assert_eq!(candidates_of(&app.pool, "vast").await, 5);
    assert_eq!(candidate_files(&app.pool, "vast").await, 8);
}

#[sqlx::test]
async fn bad_rows_are_rejected_with_their_reason_and_the_rest_land(pool: PgPool) {
    let (app, token) = setup(pool).await;
    let dir = Copy::of("vast_like");
    let mut csv = std::fs::read_to_string(dir.0.join("candidates.csv")).unwrap();
    // Caught by the client: RA out of range.
    csv.push_str("SB50230,J999,beam00,400,-45,1,1,1,,,,,,,,\n");
    // Caught by the server: no such beam.
    csv.push_str("SB50230,J998,beam07,10,-45,1,1,1,,,,,,,,\n");
    std::fs::write(dir.0.join("candidates.csv"), csv).unwrap();

    let s = upload_dir(&options(&app, &token, &dir.0)).await.unwrap();
    assert_eq!(s.created, 5, "{}", s.report());
    let rows: Vec<(usize, &str)> = s
        .rejected
        .iter()
        .map(|r| (r.row, r.name.as_str()))
        .collect();
    assert_eq!(rows, [(7, "J999"), (8, "J998")], "{}", s.report());
    assert!(
        s.rejected[0].reason.contains("RA 400"),
        "{}",
        s.rejected[0].reason
    );
    assert!(
        s.rejected[1].reason.starts_with("server: "),
        "{}",
        s.rejected[1].reason
    );
    assert!(
        s.rejected[1].reason.contains("beam"),
        "{}",
        s.rejected[1].reason
    );
    assert_eq!(candidates_of(&app.pool, "vast").await, 5);
}

#[sqlx::test]
async fn what_the_client_passes_the_server_takes_and_the_rest_is_never_sent(pool: PgPool) {
    let (app, token) = setup(pool).await;
    let dir = Copy::of("gleamx_like");
    let obs = "\"observation\": \"1234567890\", \"ra\": 61, \"dec\": -26";
    let long = "x".repeat(1001);
    std::fs::write(
        dir.0.join("candidates.json"),
        format!(
            r#"[
  {{{obs}, "name": "q1",
    "metrics": {{"flux": "12.5", "fluence": "+infinity", "det_stat": "Nan", "mod_index": "-INF"}},
    "light_curve": {{"points": [{{"time": "2024-05-01T22:00:00+10:00", "flux": "1.5", "err": "0.1"}}]}}}},
  {{{obs}, "name": " \u00a0 "}},
  {{{obs}, "name": "q3", "metrics": {{"flux": "-nan"}}}},
  {{{obs}, "name": "q4", "attributes": {{"note": "{long}"}}}},
  {{{obs}, "name": "q5", "metrics": {{"Flux": 1}}}}
]"#
        ),
    )
    .unwrap();

    let s = upload_dir(&options(&app, &token, &dir.0)).await.unwrap();
    assert_eq!(s.created, 1, "{}", s.report());
    let rows: Vec<usize> = s.rejected.iter().map(|r| r.row).collect();
    assert_eq!(rows, [2, 3, 4, 5], "{}", s.report());
    for (r, field) in
        s.rejected
            .iter()
            .zip(["name", "metrics.flux", "attributes.note", "metrics.Flux"])
    {
        assert!(r.reason.starts_with(&format!("{field}: ")), "{r}");
    }
    let db = &app.pool;
    assert_eq!(candidates_of(db, "gleamx").await, 1);
    assert_eq!(metric(db, "q1", "flux").await, 12.5);
    assert_eq!(metric(db, "q1", "fluence").await, f64::INFINITY);
    assert!(metric(db, "q1", "det_stat").await.is_nan());
    assert_eq!(metric(db, "q1", "mod_index").await, f64::NEG_INFINITY);
    assert_eq!(light_curve_len(db, "q1").await, 1);
}

#[sqlx::test]
async fn a_bad_token_is_refused_at_once(pool: PgPool) {
    let (app, _token) = setup(pool).await;
    let opts = options(&app, "vet_0000not0a0real0token", &fixture("vast_like"));
    let e = upload_dir(&opts).await.unwrap_err();
    assert!(matches!(e, UploadError::Unauthorized), "{e}");
    assert!(e
        .to_string()
        .starts_with("the server refused the token (401)"));
    assert_eq!(candidates_of(&app.pool, "vast").await, 0);
}

#[sqlx::test]
async fn finish_marks_the_observations_finished_after_the_upload(pool: PgPool) {
    let (app, token) = setup(pool).await;
    let finished = "SELECT count(*) FROM observations o JOIN projects p ON p.id = o.project_id
                    WHERE p.slug = $1 AND o.upload_finished_at IS NOT NULL";
    upload_dir(&options(&app, &token, &fixture("vast_like")))
        .await
        .unwrap();
    assert_eq!(
        count(&app.pool, finished, "vast").await,
        0,
        "only when asked"
    );
    let opts = UploadOptions {
        finish: true,
        ..options(&app, &token, &fixture("vast_like"))
    };
    upload_dir(&opts).await.unwrap();
    assert_eq!(count(&app.pool, finished, "vast").await, 1);
}

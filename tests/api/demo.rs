//! `vetter demo`: the data a newcomer lands on.

use sqlx::PgPool;
use vetter::media::MediaStore;

#[sqlx::test]
async fn the_demo_fills_an_empty_database_through_the_upload_path(pool: PgPool) {
    let media = std::env::temp_dir().join(format!("vetter-demo-test-{}", std::process::id()));
    let summary = vetter::cli::demo::fill(&pool, MediaStore::new(&media))
        .await
        .unwrap();
    assert!(summary.contains("reviewer logins: alice / "), "{summary}");

    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("SELECT count(*) FROM projects").await, 2);
    assert_eq!(count("SELECT count(*) FROM candidates c JOIN projects p ON p.id = c.project_id WHERE p.slug = 'vast-demo'").await, 240);
    assert_eq!(count("SELECT count(*) FROM candidates c JOIN projects p ON p.id = c.project_id WHERE p.slug = 'gleamx-demo'").await, 75);
    assert_eq!(count("SELECT count(*) FROM light_curves").await, 240);
    assert_eq!(
        count("SELECT count(*) FROM users WHERE role = 'reviewer'").await,
        2
    );
    assert!(count("SELECT count(*) FROM tags").await >= 20);
    // Each VAST candidate: cutout + cube FITS and three rendered previews,
    // plus the GIF's strip of frames; each GLEAM-X GIF gets a strip too.
    assert_eq!(
        count("SELECT count(*) FROM files WHERE derived_from IS NOT NULL").await,
        240 * 4 + 75
    );
    assert_eq!(
        count("SELECT count(*) FROM files WHERE role = 'animation'").await,
        75
    );
    // Some pulsars sit within an arcminute of a candidate.
    assert!(count("SELECT count(*) FROM pulsars p JOIN candidates c ON q3c_join(c.ra, c.dec, p.ra, p.dec, 1.0/60)").await >= 5);
    // NaN and infinite metrics are there to be handled.
    assert!(count("SELECT count(*) FROM candidate_metrics WHERE value = 'NaN'::float8").await > 0);
    assert!(
        count("SELECT count(*) FROM candidate_metrics WHERE value = 'Infinity'::float8").await > 0
    );
    let paths: Vec<String> = sqlx::query_scalar("SELECT storage_path FROM files")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(paths.iter().all(|p| media.join(p).is_file()));
    let _ = std::fs::remove_dir_all(&media);
}

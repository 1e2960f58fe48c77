//! The home page's "Progress at a glance" on the demo data, part rated by
//! its two reviewers (agreeing on most, disagreeing on some): each
//! observation's row and bar fit the screens reviewers use, 1280×720 and
//! 1440×900, without sideways scrolling. Screenshots:
//! `home-progress-{w}x{h}.png`.

use std::time::Duration;

use sqlx::PgPool;
use vetter::domain::rating::{RatingInput, Verdict};
use vetter::domain::{CandidateId, Role, UserId};
use vetter::media::MediaStore;

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp};

/// Rates two of every three demo candidates by both demo reviewers: they
/// agree, except on every seventh, where they disagree.
async fn rate_most(pool: &PgPool) {
    let ids: Vec<CandidateId> = sqlx::query_scalar("SELECT id FROM candidates ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let reviewers: Vec<UserId> =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'reviewer' ORDER BY username")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(reviewers.len(), 2);
    let mut conn = pool.acquire().await.unwrap();
    for (i, &id) in ids.iter().enumerate() {
        if i % 3 == 2 {
            continue;
        }
        let agreed = if i % 11 == 0 {
            Verdict::Real
        } else {
            Verdict::NotReal
        };
        for (n, &user) in reviewers.iter().enumerate() {
            let verdict = match (i % 7 == 0, n) {
                (true, 1) => Verdict::Real,
                (true, _) => Verdict::NotReal,
                _ => agreed,
            };
            let input = RatingInput {
                verdict,
                tag_ids: vec![],
                notes: String::new(),
                score: None,
            };
            vetter::db::ratings::save(&mut conn, user, id, &input, None)
                .await
                .unwrap();
        }
    }
}

#[sqlx::test]
async fn progress_at_a_glance_fits_both_screens(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool.clone()).await;
    let media = std::env::temp_dir().join(format!("vetter-home-demo-{}", std::process::id()));
    vetter::cli::demo::fill(&pool, MediaStore::new(&media))
        .await
        .unwrap();
    rate_most(&pool).await;
    let admin = app.create_user("adam", Role::Admin).await;
    sqlx::query("UPDATE projects SET admins_see_all = true")
        .execute(&pool)
        .await
        .unwrap();
    let observations: i64 = sqlx::query_scalar("SELECT count(*) FROM observations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (_driver, s) = browser().await;
    login(&s, &app, &admin).await;
    for (w, h) in [(1280, 720), (1440, 900)] {
        s.set_viewport(w, h).await;
        s.goto(&app.url("/")).await;
        s.wait_for(
            "the progress panel",
            "return !!document.querySelector('#glance table.glance tbody tr');",
            Duration::from_secs(10),
        )
        .await;
        let seen = s
            .script(
                "const rows = [...document.querySelectorAll('#glance tbody tr')];
                 const bars = rows.map(r => r.querySelector('svg.glance-bar').getBoundingClientRect());
                 const settled = rows.map(r => parseInt(r.querySelector('.glance-settled').textContent.replace(/\\D/g, ''), 10));
                 const real = rows.map(r => parseInt(r.querySelector('.glance-real').textContent.replace(/\\D/g, ''), 10));
                 const disputed = rows.map(r => parseInt(r.querySelector('.glance-disputed').textContent.replace(/\\D/g, ''), 10));
                 return {
                   rows: rows.length,
                   overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
                   panelRight: document.querySelector('#glance').getBoundingClientRect().right,
                   narrowestBar: Math.min(...bars.map(b => b.width)),
                   settled: settled.reduce((a, b) => a + b, 0),
                   disputed: disputed.reduce((a, b) => a + b, 0),
                   real: real.reduce((a, b) => a + b, 0),
                 };",
                vec![],
            )
            .await;
        assert_eq!(seen["rows"].as_i64(), Some(observations.min(12)), "{seen}");
        assert!(seen["overflow"].as_f64().unwrap() <= 0.0, "{w}×{h}: {seen}");
        assert!(seen["panelRight"].as_f64().unwrap() <= w as f64, "{seen}");
        assert!(
            seen["narrowestBar"].as_f64().unwrap() >= 60.0,
            "a bar too narrow to read at {w}×{h}: {seen}"
        );
        assert!(seen["settled"].as_i64().unwrap() > 0, "{seen}");
        assert!(seen["disputed"].as_i64().unwrap() > 0, "{seen}");
        let real = seen["real"].as_i64().unwrap();
        assert!(
            real > 0 && real < seen["settled"].as_i64().unwrap(),
            "{seen}"
        );
        // Each observation opens its candidates in the table.
        let link = s.find("#glance tbody tr td:first-child a").await;
        s.click(&link).await;
        s.wait_for(
            "the observation's candidates",
            "return location.pathname === '/candidates' && location.search.includes('observation=') \
             && document.querySelectorAll('#candidate-table tbody tr').length > 0;",
            Duration::from_secs(10),
        )
        .await;
        s.goto(&app.url("/")).await;
        let shot = screenshot_path(&format!("home-progress-{w}x{h}.png"));
        s.screenshot(&shot).await;
        println!("home screenshot: {}", shot.display());
    }
    let _ = std::fs::remove_dir_all(&media);
}

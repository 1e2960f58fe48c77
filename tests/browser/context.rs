//! Context from the keyboard: rating a candidate's whole group at once
//! (G, a verdict key, y to confirm, z to take it back), and finding a known
//! source to associate (A, type, Enter, then the result's button).

use std::time::Duration;

use sqlx::PgPool;
use vetter::domain::{ProjectId, Role};

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp, READY_TO_RATE_JS};
use crate::webdriver::keys;

const WAIT: Duration = Duration::from_secs(10);

async fn verdicts(app: &TestApp, user: vetter::domain::UserId) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT c.name, r.verdict::text FROM ratings r JOIN candidates c ON c.id = r.candidate_id
          WHERE r.user_id = $1 ORDER BY c.name",
    )
    .bind(user)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_whole_group_is_rated_and_taken_back_from_the_keyboard(pool: PgPool) {
    let _lock = browser_lock().await;
    let app = TestApp::spawn(pool.clone()).await;
    let demo = app.upload_demo(4).await;
    // c01..c04 lie 31″ apart in a row: with a 40″ radius, one chain.
    let project: ProjectId = sqlx::query_scalar("SELECT id FROM projects WHERE slug = 'demo'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projects SET group_radius_arcsec = 40")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    vetter::db::groups::recompute(&mut conn, project)
        .await
        .unwrap();
    drop(conn);
    let alice = app.create_user("alice", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    s.set_viewport(1280, 720).await;
    login(&s, &app, &alice).await;
    s.goto(&app.url(&format!("/candidates/{}", demo.ids["c02"])))
        .await;
    s.wait_for("the candidate, ready", READY_TO_RATE_JS, WAIT)
        .await;
    s.wait_for(
        "the group panel",
        "return !!document.querySelector('#group [data-key=\"G\"]');",
        WAIT,
    )
    .await;

    s.press("G").await;
    s.wait_for(
        "the batch panel's verdicts",
        "return !!document.querySelector('[data-modal] button[name=verdict]');",
        WAIT,
    )
    .await;
    // A verdict key picks the verdict for the batch, not for the candidate
    // behind it, and asks to confirm.
    s.press("n").await;
    s.wait_for(
        "the confirmation",
        "const p = document.querySelector('[data-modal] .batch-confirm'); return !!p && p.textContent.includes('4 candidates');",
        WAIT,
    )
    .await;
    let text = s.text(&s.find("[data-modal] .batch-confirm").await).await;
    assert!(text.contains("as Not real"), "{text}");
    assert!(
        verdicts(&app, alice.id).await.is_empty(),
        "nothing before the confirmation"
    );
    s.screenshot(&screenshot_path("batch-confirm-1280x720.png"))
        .await;

    s.press("y").await;
    s.wait_for(
        "the batch done, with its undo",
        "return !!document.querySelector('[data-modal] [data-key=\"z\"]');",
        WAIT,
    )
    .await;
    let rated = verdicts(&app, alice.id).await;
    assert_eq!(
        rated,
        ["c01", "c02", "c03", "c04"].map(|n| (n.to_string(), "not_real".to_string()))
    );

    s.press("z").await;
    s.wait_for(
        "the batch taken back",
        "const m = document.querySelector('[data-modal]'); return !!m && !m.querySelector('[data-key=\"z\"]');",
        WAIT,
    )
    .await;
    assert!(verdicts(&app, alice.id).await.is_empty());
    s.press(keys::ESCAPE).await;
    s.wait_for(
        "the panel closed",
        "return !document.querySelector('[data-modal]');",
        WAIT,
    )
    .await;
}

//! A reviewer's own keys (WCAG 2.1.4), set on the account page and used on
//! the rating page: a remapped key rates and its old key does nothing; with
//! single-key shortcuts off only Alt+key acts.

use std::time::Duration;

use sqlx::PgPool;
use vetter::domain::Role;

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp};
use crate::webdriver::{keys, Session};

const WAIT: Duration = Duration::from_secs(10);

/// Long enough for a wrongly fired shortcut's round trip to show itself.
const QUIET: Duration = Duration::from_millis(400);

async fn wait_candidate(s: &Session, name: &str, why: &str) {
    s.wait_for(
        &format!("{name} on the rating page ({why})"),
        &format!(
            "const c = document.querySelector('main#main #candidate');
             return !!c && c.dataset.candidateName === '{name}' && !c.classList.contains('htmx-added');"
        ),
        WAIT,
    )
    .await;
}

async fn shown(s: &Session) -> String {
    s.script(
        "const c = document.querySelector('#candidate'); return c ? c.dataset.candidateName : '';",
        vec![],
    )
    .await
    .as_str()
    .unwrap()
    .to_string()
}

async fn verdicts(app: &TestApp, user: vetter::domain::UserId) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT candidate_id, verdict::text FROM ratings WHERE user_id = $1 ORDER BY candidate_id",
    )
    .bind(user)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The text of the `<kbd>` next to the verdict button for `verdict`.
async fn verdict_label(s: &Session, verdict: &str) -> String {
    let b = s
        .find(&format!("#rating-form button[value={verdict}] kbd"))
        .await;
    s.text(&b).await
}

async fn save_account_keyboard(s: &Session, app: &TestApp, fill: &[(&str, &str)], single: bool) {
    s.goto(&app.url("/account")).await;
    for (field, value) in fill {
        let el = s.find(&format!("#keyboard input[name='{field}']")).await;
        s.type_into(&el, value).await;
    }
    let tick = s.find("#keyboard input[type=checkbox]").await;
    if s.property(&tick, "checked").await != serde_json::json!(single) {
        s.click(&tick).await;
    }
    let submit = s.find("#keyboard button[type=submit]").await;
    s.click(&submit).await;
    s.wait_for(
        "the saved notice",
        "return location.pathname === '/account' && !!document.querySelector('.toast-success');",
        WAIT,
    )
    .await;
}

#[sqlx::test]
async fn remapped_keys_and_alt_only_shortcuts_rate_as_the_reviewer_chose(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool).await;
    let demo = app.upload_demo(4).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;

    // Real moves from y to r.
    save_account_keyboard(&s, &app, &[("key:y", "r")], true).await;
    s.screenshot(&screenshot_path("account-keyboard.png")).await;
    s.goto(&app.url("/next")).await;
    wait_candidate(&s, "c01", "GET /next").await;
    assert_eq!(
        verdict_label(&s, "real").await,
        "r",
        "the label shows my key"
    );
    assert_eq!(verdict_label(&s, "not_real").await, "n");

    s.press("y").await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(shown(&s).await, "c01", "y no longer rates");
    assert!(
        verdicts(&app, alice.id).await.is_empty(),
        "y no longer rates"
    );

    s.press("r").await;
    wait_candidate(&s, "c02", "after r on c01").await;
    assert_eq!(
        verdicts(&app, alice.id).await,
        [(demo.ids["c01"], "real".to_string())]
    );
    // The swapped-in candidate is labelled with my key too.
    assert_eq!(verdict_label(&s, "real").await, "r");

    // The key help lists my key.
    s.press("?").await;
    s.wait_for(
        "the key help with r for Real",
        "const h = document.getElementById('shortcut-help');
         return !!h && !h.hidden && Array.from(h.querySelectorAll('tr')).some(function (tr) {
           return tr.cells[0].textContent === 'r' && /Real/.test(tr.cells[1].textContent);
         });",
        WAIT,
    )
    .await;
    s.press(keys::ESCAPE).await;

    // Single-key shortcuts off: n alone does nothing, Alt+n rates.
    save_account_keyboard(&s, &app, &[], false).await;
    s.goto(&app.url("/next")).await;
    wait_candidate(&s, "c02", "GET /next with single keys off").await;
    assert_eq!(verdict_label(&s, "not_real").await, "Alt+n");
    assert_eq!(
        verdict_label(&s, "real").await,
        "Alt+r",
        "the map still applies"
    );

    s.press("n").await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(shown(&s).await, "c02", "n alone no longer rates");
    assert_eq!(verdicts(&app, alice.id).await.len(), 1);

    s.press_with(keys::ALT, "n").await;
    wait_candidate(&s, "c03", "after Alt+n on c02").await;
    assert_eq!(
        verdicts(&app, alice.id).await,
        [
            (demo.ids["c01"], "real".to_string()),
            (demo.ids["c02"], "not_real".to_string())
        ]
    );
    // The key help needs Alt too, and the hint says so.
    let hint = s.find("#candidate .keys-hint kbd").await;
    assert_eq!(s.text(&hint).await, "Alt+?");
    s.press("?").await;
    tokio::time::sleep(QUIET).await;
    let help_open = "const h = document.getElementById('shortcut-help'); return !!h && !h.hidden;";
    assert_eq!(s.script(help_open, vec![]).await, serde_json::json!(false));
    s.press_with(keys::ALT, "?").await;
    s.wait_for("the key help after Alt+?", help_open, WAIT)
        .await;
    let shot = screenshot_path("keyboard-alt-keys.png");
    s.screenshot(&shot).await;
    s.close().await;
}

//! A reviewer's keyboard on the account page (WCAG 2.1.4): single-key
//! shortcuts can be switched off and any rating-page shortcut given another
//! key; every page then carries the settings on `<body>` for `app.js`.

use reqwest::StatusCode;
use scraper::{Html, Selector};
use sqlx::PgPool;
use vetter::domain::Role;

use crate::candidates::survey;
use crate::helpers::{assert_redirect_to, select_attr, select_text, TestApp};

/// What the database holds: single-key shortcuts on, and the map as JSON.
async fn stored(app: &TestApp) -> (bool, serde_json::Value) {
    sqlx::query_as("SELECT single_key_shortcuts, key_map FROM users WHERE username = 'alice'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn alice(pool: PgPool) -> TestApp {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    app
}

/// The form as the account page sends it: the hidden `off`, then `on` if
/// the box is ticked, then the key boxes.
async fn save(app: &TestApp, single: bool, keys: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("single_key_shortcuts", "off")];
    if single {
        form.push(("single_key_shortcuts", "on"));
    }
    form.extend_from_slice(keys);
    app.post_form("/account/keyboard", &form).await
}

/// Key boxes as sent: (field, value).
type Fields<'a> = &'a [(&'a str, &'a str)];

fn body_attr(html: &Html, name: &str) -> Option<String> {
    select_attr(html, "body", name)
}

#[sqlx::test]
async fn the_account_page_lists_every_rating_shortcut_with_its_box(pool: PgPool) {
    let app = alice(pool).await;
    let html = app.get_html("/account").await;
    let boxes = Selector::parse("#keyboard input[name^='key:']").unwrap();
    let names: Vec<String> = html
        .select(&boxes)
        .map(|i| i.value().attr("name").unwrap().to_string())
        .collect();
    let expected: Vec<String> = vetter::domain::keys::RATING_SHORTCUTS
        .iter()
        .map(|s| s.field())
        .collect();
    assert_eq!(names, expected);
    for k in ["key:y", "key:,", "key:.", "key:0", "key:o", "key:i"] {
        assert!(names.iter().any(|n| n == k), "{k}");
    }
    assert_eq!(
        select_attr(&html, "#keyboard input[type=checkbox]", "checked").as_deref(),
        Some(""),
        "single-key shortcuts are on at first"
    );
    assert!(select_text(&html, "#keyboard")
        .unwrap()
        .contains("press Alt together with the key"));
}

#[sqlx::test]
async fn a_saved_map_is_stored_shown_and_put_on_every_page(pool: PgPool) {
    let app = alice(pool).await;
    let r = save(
        &app,
        true,
        &[("key:y", " r "), ("key:n", ""), ("key:.", ">")],
    )
    .await;
    assert_redirect_to(&r, "/account");
    assert_eq!(
        stored(&app).await,
        (true, serde_json::json!({"y": "r", ".": ">"}))
    );
    let html = app.get_html("/account").await;
    assert!(select_text(&html, ".toast-success")
        .unwrap()
        .contains("Keyboard settings saved"));
    assert_eq!(
        select_attr(&html, "input[name='key:y']", "value").as_deref(),
        Some("r")
    );
    assert_eq!(
        select_attr(&html, "input[name='key:n']", "value").as_deref(),
        Some("")
    );

    let home = app.get_html("/").await;
    assert_eq!(body_attr(&home, "data-single-keys").as_deref(), Some("on"));
    let map: serde_json::Value =
        serde_json::from_str(&body_attr(&home, "data-key-map").unwrap()).unwrap();
    assert_eq!(map, serde_json::json!({"y": "r", ".": ">"}));

    // Switching single keys off keeps nothing of the old map that is not sent.
    let r = save(&app, false, &[("key:z", "%")]).await;
    assert_redirect_to(&r, "/account");
    assert_eq!(stored(&app).await, (false, serde_json::json!({"z": "%"})));
    let html = app.get_html("/queue").await;
    assert_eq!(body_attr(&html, "data-single-keys").as_deref(), Some("off"));
    assert_eq!(
        body_attr(&html, "data-key-map").as_deref(),
        Some(r#"{"z":"%"}"#)
    );
    assert_eq!(
        select_attr(
            &app.get_html("/account").await,
            "#keyboard input[type=checkbox]",
            "checked"
        ),
        None
    );
}

#[sqlx::test]
async fn the_map_is_escaped_in_the_body_attribute(pool: PgPool) {
    let app = alice(pool).await;
    let r = save(
        &app,
        true,
        &[("key:y", "\""), ("key:n", "'"), ("key:u", "<")],
    )
    .await;
    assert_redirect_to(&r, "/account");
    let text = app.get("/").await.text().await.unwrap();
    let tag = &text[text.find("<body").unwrap()..];
    let tag = &tag[..tag.find('>').unwrap() + 1];
    assert!(!tag[1..].contains('<'), "{tag}");
    let map: serde_json::Value =
        serde_json::from_str(&body_attr(&Html::parse_document(&text), "data-key-map").unwrap())
            .unwrap();
    assert_eq!(map, serde_json::json!({"y": "\"", "n": "'", "u": "<"}));
}

#[sqlx::test]
async fn a_refused_map_says_why_by_row_and_changes_nothing(pool: PgPool) {
    let app = alice(pool).await;
    assert_redirect_to(&save(&app, true, &[("key:y", "r")]).await, "/account");
    let before = stored(&app).await;
    let cases: &[(Fields, &str, &str)] = &[
        // Two shortcuts on one key.
        (
            &[("key:y", "q"), ("key:n", "q")],
            "key:y",
            "already the key",
        ),
        // A key another shortcut keeps.
        (&[("key:z", "j")], "key:z", "next candidate"),
        // Reserved keys.
        (&[("key:e", "?")], "key:e", "reserved"),
        (&[("key:e", "Escape")], "key:e", "reserved"),
        (&[("key:c", "cc")], "key:c", "one character"),
    ];
    for (keys, field, words) in cases {
        let r = save(&app, false, keys).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{keys:?}");
        let html = Html::parse_document(&r.text().await.unwrap());
        assert!(select_text(&html, "#keyboard .form-error[role=alert]")
            .unwrap()
            .contains("Nothing was saved"));
        let input = Selector::parse(&format!("input[name='{field}']")).unwrap();
        let input = html.select(&input).next().unwrap();
        assert_eq!(input.value().attr("aria-invalid"), Some("true"), "{keys:?}");
        let problem = select_text(
            &html,
            &format!("#{}", input.value().attr("aria-describedby").unwrap()),
        )
        .unwrap();
        assert!(problem.contains(words), "{keys:?}: {problem}");
        // The form comes back as sent, so the reviewer fixes one box.
        assert_eq!(
            input.value().attr("value"),
            keys.iter().find(|(k, _)| k == field).map(|(_, v)| *v)
        );
        assert_eq!(
            select_attr(&html, "#keyboard input[type=checkbox]", "checked"),
            None,
            "the box stays as sent"
        );
        assert_eq!(stored(&app).await, before, "{keys:?} changed the settings");
    }

    // A field of no shortcut, and a form without the checkbox's field.
    let r = save(&app, true, &[("key:~", "%")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = Html::parse_document(&r.text().await.unwrap());
    assert!(select_text(&html, "#keyboard .form-error")
        .unwrap()
        .contains("key:~"));
    let r = app.post_form("/account/keyboard", &[("key:y", "t")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(stored(&app).await, before);
}

#[sqlx::test]
async fn signed_out_pages_carry_no_keyboard(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let html = app.get_html("/login").await;
    assert_eq!(body_attr(&html, "data-key-map"), None);
    assert_eq!(body_attr(&html, "data-single-keys"), None);
}

/// The table's tag keys are the page's: the tenth tag gets 0, an eleventh
/// none.
#[sqlx::test]
async fn the_rating_page_gives_tags_keys_in_order_until_they_run_out(pool: PgPool) {
    let s = survey(pool).await;
    sqlx::query(
        "INSERT INTO tags (project_id, name, position)
         SELECT p.id, 'extra ' || n, 100 + n FROM projects p, generate_series(1, 25) n
         WHERE p.slug = 'vast'",
    )
    .execute(&s.app.pool)
    .await
    .unwrap();
    let html = s
        .app
        .get_html(&format!("/candidates/{}", s.ids["c01"]))
        .await;
    let sel = Selector::parse("#rating-form input[name=tags]").unwrap();
    let keys: Vec<Option<&str>> = html
        .select(&sel)
        .map(|i| i.value().attr("data-key"))
        .collect();
    // Every key in order, then the tags past the last key have none.
    let mut expected: Vec<Option<&str>> = vetter::domain::keys::TAG_KEYS
        .iter()
        .map(|k| Some(*k))
        .collect();
    expected.resize(keys.len(), None);
    assert!(keys.len() > expected.iter().flatten().count(), "{keys:?}");
    assert_eq!(keys, expected);
}

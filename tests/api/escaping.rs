//! Markup, script, template syntax and spreadsheet formulas in everything a
//! person or a pipeline can name: project, metric labels and units, tags,
//! observation metadata, candidate names and attributes, light-curve units,
//! notes, saved views, token names and typed filters. Every page that shows
//! them (and its htmx fragment) shows them as text; the VOTable stays
//! well-formed XML; CSV text cells cannot run as formulas.

use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::json;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::TestApp;
use crate::upload_api::{uploader, Api};

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(1)>";
const SVG: &str = "'><svg onload=alert(1)>";
const JS_URL: &str = "javascript:alert(1)";
const TEMPLATE: &str = "{{7*7}}{% if true %}x{% endif %}";
/// Candidate names cannot hold '/', so they carry the other payloads.
const NAMES: [&str; 5] = [
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)> {{7*7}}",
    "=HYPERLINK(\"http:evil\",\"x\")",
    "-2+3",
    "@SUM(1+1)",
];

/// Raw text that would run if it reached a page unescaped.
const LIVE: [&str; 3] = ["<script>alert", "<img src=x", "<svg onload"];

/// Fails when `html` carries a payload as markup rather than text.
fn assert_inert(what: &str, html: &str) {
    for live in LIVE {
        assert!(!html.contains(live), "{what}: {live:?} appears unescaped");
    }
    let doc = Html::parse_document(html);
    let all = Selector::parse("*").unwrap();
    for el in doc.select(&all) {
        for (name, value) in el.value().attrs() {
            assert!(
                !name.starts_with("on"),
                "{what}: <{} {name}={value:?}>",
                el.value().name()
            );
            if matches!(
                name,
                "href" | "src" | "action" | "formaction" | "hx-get" | "hx-post"
            ) {
                assert!(
                    !value.trim_start().to_lowercase().starts_with("javascript:"),
                    "{what}: {name}={value:?}"
                );
            }
        }
        let tag = el.value().name();
        assert!(
            !matches!(tag, "img" | "svg" if el.value().attr("src") == Some("x")),
            "{what}: an injected <{tag}>"
        );
    }
    let scripts = Selector::parse("script").unwrap();
    for s in doc.select(&scripts) {
        let text: String = s.text().collect();
        assert!(!text.contains("alert"), "{what}: script {text:?}");
    }
}

/// The visible text of a page.
fn text_of(html: &str) -> String {
    Html::parse_document(html)
        .root_element()
        .text()
        .collect::<String>()
}

async fn page(app: &TestApp, path: &str, htmx: bool) -> String {
    let mut rq = app.client.get(app.url(path));
    if htmx {
        rq = rq.header("HX-Request", "true");
    }
    let r = rq.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

async fn seed(api: &Api<'_>) {
    let (s, body) = api
        .put(
            "/projects/xss",
            json!({"name": SCRIPT, "description": IMG,
                   "metrics": [{"key": "snr", "label": IMG, "unit": SCRIPT,
                                "description": SVG, "shown_by_default": true},
                               {"key": "flux", "label": TEMPLATE, "unit": JS_URL,
                                "shown_by_default": true}],
                   "tags": [{"name": SCRIPT, "description": IMG},
                            {"name": SVG, "description": TEMPLATE},
                            {"name": "=1+2"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .put(
            "/projects/xss/observations/SB1",
            json!({"start_time": "2024-05-01T12:00:00Z",
                   "metadata": {"note": SCRIPT, "link": JS_URL}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let candidates: Vec<_> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"name": n, "ra": 188.7 + i as f64 * 1e-4, "dec": -45.2,
                   "positions": {"deep": {"ra": 188.7, "dec": -45.2}},
                   "metrics": {"snr": -1.5, "flux": 2.0},
                   "attributes": {"note": SCRIPT, "link": JS_URL, "tmpl": TEMPLATE, "img": IMG},
                   "light_curve": {"unit": if i == 0 { SCRIPT } else { "=1+1" }, "points": [
                       {"time": "2024-05-01T12:00:00Z", "flux": 1.5},
                       {"time": "2024-05-01T12:10:00Z", "flux": -2.5}]}})
        })
        .collect();
    let (s, body) = api
        .post(
            "/projects/xss/observations/SB1/candidates",
            json!({"candidates": candidates}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[sqlx::test]
async fn names_notes_and_labels_are_shown_as_text_everywhere(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    seed(&api).await;
    let ids: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM candidates ORDER BY name")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let first = ids.iter().find(|(_, n)| n == NAMES[0]).unwrap().0;
    let tag_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM tags ORDER BY position")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projects SET reviewers_add_tags = true")
        .execute(&app.pool)
        .await
        .unwrap();

    let admin = app.create_user("xss_admin", Role::Admin).await;
    app.login_as(&admin).await;
    let notes = format!("{SCRIPT} {IMG} {TEMPLATE}");
    for &(id, _) in &ids {
        let r = app
            .post_form(
                &format!("/candidates/{id}/rating"),
                &[
                    ("verdict", "real"),
                    ("notes", &notes),
                    ("tags", &tag_ids[0].to_string()),
                    ("tags", &tag_ids[2].to_string()),
                ],
            )
            .await;
        assert!(r.status().is_redirection() || r.status().is_success());
    }
    // A second rating replaces the first on one candidate, for the history.
    let r = app
        .post_form(
            &format!("/candidates/{first}/rating"),
            &[("verdict", "not_real"), ("notes", "=cmd")],
        )
        .await;
    assert!(r.status().is_redirection() || r.status().is_success());
    let r = app
        .post_form(&format!("/candidates/{first}/tags"), &[("name", IMG)])
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let r = app
        .post_form(
            "/views",
            &[("name", IMG), ("query", "project=xss&sort=m.snr")],
        )
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let r = app
        .post_form("/account/tokens", &[("name", SCRIPT), ("read", "on")])
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .post_form(
            "/queue",
            &[
                ("project", "xss"),
                ("order", "metric:snr:desc"),
                ("mode", "unrated_by_anyone"),
            ],
        )
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());

    let reflected = |v: &str| -> String {
        serde_urlencoded::to_string([("project", "xss"), ("name", v)]).unwrap()
    };
    // Each page, and what it must show as text (proving the payload was
    // rendered, not left out).
    let pages: Vec<(String, bool, Vec<&str>)> = vec![
        (
            format!("/candidates/{first}"),
            false,
            vec![NAMES[0], SCRIPT, IMG, TEMPLATE, JS_URL],
        ),
        (format!("/candidates/{first}"), true, vec![NAMES[0], SCRIPT]),
        (format!("/candidates/{first}/nearby"), true, vec![NAMES[1]]),
        (format!("/candidates/{first}/firefly"), true, vec![]),
        (
            "/candidates?project=xss".into(),
            false,
            vec![NAMES[0], NAMES[1], NAMES[2]],
        ),
        (
            "/candidates?project=xss&sort=m.snr".into(),
            true,
            vec![NAMES[0]],
        ),
        (
            format!("/candidates?{}", reflected(SCRIPT)),
            false,
            vec![SCRIPT],
        ),
        (format!("/candidates?{}", reflected(IMG)), true, vec![IMG]),
        (
            format!(
                "/candidates?{}",
                serde_urlencoded::to_string([("pos", IMG), ("sort", SVG), ("m.snr.min", SCRIPT)])
                    .unwrap()
            ),
            false,
            vec![],
        ),
        ("/queue".into(), false, vec![SCRIPT, TEMPLATE]),
        ("/ratings?project=xss".into(), false, vec![SCRIPT]),
        ("/ratings?project=xss".into(), true, vec![]),
        ("/views".into(), false, vec![IMG]),
        ("/account".into(), false, vec![SCRIPT]),
        ("/".into(), false, vec![]),
        ("/admin".into(), false, vec![]),
        ("/admin/projects".into(), false, vec![SCRIPT]),
        ("/admin/projects/xss".into(), false, vec![IMG]),
        ("/admin/projects/xss/delete".into(), false, vec![SCRIPT]),
        (
            "/admin/projects/xss/observations/SB1/delete".into(),
            false,
            vec![],
        ),
        ("/admin/tags?project=xss".into(), false, vec![SCRIPT, SVG]),
        ("/admin/tags".into(), false, vec![]),
        ("/admin/users".into(), false, vec![]),
        (format!("/admin/users/{}", admin.id), false, vec![]),
        ("/admin/tokens".into(), false, vec![SCRIPT]),
        ("/admin/audit".into(), false, vec![]),
        ("/admin/status".into(), false, vec![]),
    ];
    let mut shown = 0;
    for (path, htmx, must_show) in &pages {
        let mut rq = app.client.get(app.url(path));
        if *htmx {
            rq = rq.header("HX-Request", "true");
        }
        let r = rq.send().await.unwrap();
        let status = r.status();
        let html = r.text().await.unwrap();
        // Pages that do not exist in this shape (a 404 for a project given
        // by slug) have nothing to escape, but must not be a server error.
        assert!(!status.is_server_error(), "{path}: {status}");
        assert_inert(path, &html);
        if status == StatusCode::OK {
            let text = text_of(&html);
            for s in must_show {
                assert!(text.contains(s), "{path} (htmx {htmx}) does not show {s:?}");
                shown += 1;
            }
        } else {
            assert!(must_show.is_empty(), "{path}: {status}");
        }
    }
    assert!(shown >= 25, "{shown}");
    // The htmx "next" fragment (rate-and-next) too.
    let html = page(&app, "/next", true).await;
    assert_inert("/next (htmx)", &html);

    // CSV: text cells that start like a formula get an apostrophe; numbers
    // (ra, dec, metric values such as -1.5) stay numbers.
    let r = app.get("/candidates.csv?project=xss&ratings=history").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    let body = r.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert!(rows.len() > NAMES.len(), "{body}");
    let text_columns = [
        "project",
        "observation",
        "beam",
        "name",
        "reviewer",
        "verdict",
        "tags",
        "notes",
        "rating_status",
    ];
    for row in &rows {
        for c in text_columns {
            let cell = &row[col(c)];
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{c} = {cell:?} would run as a formula"
            );
        }
        assert_eq!(row[col("snr")], "-1.5");
        assert_eq!(row[col("dec")], "-45.2");
    }
    let names: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r[col("name")].as_str()).collect();
    for n in NAMES {
        let expected = if n.starts_with(['=', '-', '@']) {
            format!("'{n}")
        } else {
            n.to_string()
        };
        assert!(
            names.contains(expected.as_str()),
            "{expected:?} in {names:?}"
        );
    }
    assert!(rows.iter().any(|r| r[col("notes")] == "'=cmd"), "{body}");
    assert!(rows.iter().any(|r| r[col("tags")].starts_with("<script>")));
    assert!(rows.iter().any(|r| r[col("notes")] == notes));

    // The light curve's unit is text too.
    for (id, name) in &ids {
        let r = app.get(&format!("/candidates/{id}/lightcurve.csv")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let disposition = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            !disposition.contains(['<', '>', '/', '\\']),
            "{disposition}"
        );
        assert_eq!(disposition.matches('"').count(), 2, "{disposition}");
        let body = r.text().await.unwrap();
        let mut rd = csv::Reader::from_reader(body.as_bytes());
        for rec in rd.records() {
            let rec = rec.unwrap();
            let unit = &rec[4];
            let expected = if name == NAMES[0] { SCRIPT } else { "'=1+1" };
            assert_eq!(unit, expected, "{body}");
            assert_eq!(
                &rec[2],
                if rec[2].starts_with('-') {
                    "-2.5"
                } else {
                    "1.5"
                }
            );
        }
    }

    // VOTable: well-formed, with every payload as escaped text.
    let r = app.get("/candidates.vot?project=xss&ratings=history").await;
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.text().await.unwrap();
    check_well_formed(&xml).unwrap_or_else(|e| panic!("VOTable not well-formed: {e}\n{xml}"));
    assert!(!xml.contains("<script>") && !xml.contains("<img") && !xml.contains("<svg"));
    assert!(xml.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(xml.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        xml.contains("<TD>-2+3</TD>"),
        "VOTable is not a spreadsheet: values as they are"
    );
}

/// A small XML well-formedness check: balanced, properly nested elements,
/// quoted attributes without `<`, one root, and `&` only in the
/// predefined or numeric references.
fn check_well_formed(xml: &str) -> Result<(), String> {
    fn reference_ok(rest: &str) -> bool {
        let Some(end) = rest.find(';') else {
            return false;
        };
        let name = &rest[1..end];
        matches!(name, "lt" | "gt" | "amp" | "quot" | "apos")
            || name
                .strip_prefix("#x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || name
                .strip_prefix('#')
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
    }
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut i = 0;
    let b = xml.as_bytes();
    while i < b.len() {
        match b[i] {
            b'<' => {
                let end = xml[i..]
                    .find('>')
                    .map(|e| i + e)
                    .ok_or("a tag is not closed")?;
                let tag = &xml[i + 1..end];
                if tag.starts_with('?') || tag.starts_with("!--") {
                    i = end + 1;
                    continue;
                }
                if let Some(name) = tag.strip_prefix('/') {
                    let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                    if open != name.trim() {
                        return Err(format!("<{open}> closed by </{name}>"));
                    }
                } else {
                    let self_closing = tag.ends_with('/');
                    let body = tag.trim_end_matches('/');
                    let name = body.split_whitespace().next().ok_or("an empty tag")?;
                    let attrs = &body[name.len()..];
                    // Attribute values: name="value" with no '<' inside.
                    let mut quotes = 0;
                    for (k, c) in attrs.char_indices() {
                        if c == '"' {
                            quotes += 1;
                        } else if c == '&' && !reference_ok(&attrs[k..]) {
                            return Err(format!("a bare & in <{name}>"));
                        }
                    }
                    if quotes % 2 != 0 {
                        return Err(format!("unbalanced quotes in <{name}>"));
                    }
                    if stack.is_empty() {
                        roots += 1;
                    }
                    if !self_closing {
                        stack.push(name.to_string());
                    }
                }
                i = end + 1;
            }
            b'>' => return Err(format!("a bare > at byte {i}")),
            b'&' => {
                if !reference_ok(&xml[i..]) {
                    return Err(format!("a bare & at byte {i}"));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

#[test]
fn the_well_formedness_check_catches_broken_xml() {
    assert!(check_well_formed("<a><b x=\"1\">t &amp; &#60;</b><c/></a>").is_ok());
    for bad in [
        "<a><b></a></b>",
        "<a>x & y</a>",
        "<a><script>",
        "<a/><b/>",
        "<a x=\"1></a>",
        "<a>1 > 0</a>",
    ] {
        assert!(check_well_formed(bad).is_err(), "{bad}");
    }
}

#[test]
#[should_panic(expected = "appears unescaped")]
fn the_inertness_check_catches_live_markup() {
    assert_inert("sample", "<p>\"><img src=x onerror=alert(1)></p>");
}

#[test]
#[should_panic(expected = "<a onclick")]
fn the_inertness_check_catches_event_attributes() {
    assert_inert("sample", "<a onclick=\"go()\">x</a>");
}

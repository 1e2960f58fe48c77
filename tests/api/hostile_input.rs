//! Hostile input over HTTP: malformed and disguised files through the real
//! upload API, file names that try to leave the media folder or speak
//! cfitsio's syntax, and garbage in every query parameter of the GET pages.
//! Each is a 4xx that says why (or a page with the problem beside its
//! field), in bounded time, with the database and the media folder as they
//! were and the server still healthy.

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{list_files, TestApp};
use crate::upload_api::{fits_bytes, gif_bytes, png_bytes, uploader, vast_project, Api};

const BATCH: &str = "/projects/vast/observations/SB50230/candidates";
/// No single hostile request may take longer than this.
const BOUND: Duration = Duration::from_secs(30);

/// What must not change when a request is refused.
#[derive(Debug, PartialEq, Eq)]
struct State {
    rows: Vec<i64>,
    media: Vec<String>,
}

async fn state(app: &TestApp) -> State {
    let mut rows = Vec::new();
    for table in [
        "projects",
        "observations",
        "beams",
        "candidates",
        "candidate_metrics",
        "candidate_positions",
        "files",
        "tags",
        "metric_defs",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        rows.push(n);
    }
    State {
        rows,
        media: list_files(&app.media_root),
    }
}

async fn assert_healthy(app: &TestApp, after: &str) {
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK, "unhealthy after {after}");
}

/// Sends one candidate with one file part, under a chosen client file name
/// and content type.
async fn send_file(
    api: &Api<'_>,
    name: &str,
    role: &str,
    part: &str,
    file_name: &str,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let body = json!({"candidates": [{"name": name, "ra": 188.7, "dec": -45.2,
                                      "files": {role: part}}]});
    let mut file = Part::bytes(bytes).file_name(file_name.to_string());
    if let Some(ct) = content_type {
        file = file.mime_str(ct).unwrap();
    }
    // Raw names: the server sees exactly what a hostile client would send.
    let form = Form::new()
        .percent_encode_noop()
        .part(
            "candidates",
            Part::text(body.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(part.to_string(), file);
    let started = Instant::now();
    let r = api
        .app
        .client
        .post(api.app.url(&format!("/api/v1{BATCH}")))
        .bearer_auth(&api.token)
        .multipart(form)
        .timeout(BOUND)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name}: no answer within {BOUND:?}: {e}"));
    let status = r.status();
    let body = r.json().await.unwrap_or(Value::Null);
    assert!(
        started.elapsed() < BOUND,
        "{name} took {:?}",
        started.elapsed()
    );
    (status, body)
}

/// A primary header of `cards` (END added when `end`), padded to whole
/// blocks, then `data` bytes.
fn fits_with(cards: &[&str], end: bool, data: usize) -> Vec<u8> {
    let mut h = String::new();
    for c in cards.iter().chain(if end { &["END"][..] } else { &[][..] }) {
        h.push_str(&format!("{c:<80}"));
    }
    let mut bytes = h.into_bytes();
    let blocks = bytes.len().div_ceil(2880).max(1);
    bytes.resize(blocks * 2880, b' ');
    bytes.resize(bytes.len() + data, 0);
    bytes
}

fn image_cards(bitpix: &str, axes: &[&str]) -> Vec<String> {
    let mut v = vec![
        "SIMPLE  =                    T".to_string(),
        format!("BITPIX  = {bitpix:>20}"),
        format!("NAXIS   = {:>20}", axes.len()),
    ];
    for (i, a) in axes.iter().enumerate() {
        v.push(format!("{:<8}= {a:>20}", format!("NAXIS{}", i + 1)));
    }
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A GIF whose logical screen claims `w` × `h`.
fn gif_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut g = gif_bytes();
    g[6..8].copy_from_slice(&w.to_le_bytes());
    g[8..10].copy_from_slice(&h.to_le_bytes());
    g
}

/// Many bytes that compress to almost nothing, behind gzip's magic: the
/// server must judge it by its first bytes and never inflate it.
fn gzip_bombish() -> Vec<u8> {
    let mut g = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
    // A deflate stream of stored-then-repeated zeros is not needed: the
    // body only has to be large and look compressed.
    g.extend(std::iter::repeat_n(0u8, 2 << 20));
    g
}

struct Case {
    what: &'static str,
    file_name: &'static str,
    content_type: Option<&'static str>,
    bytes: Vec<u8>,
    /// Words the problem's message must contain (lower case).
    reason: &'static str,
}

#[sqlx::test]
async fn malformed_files_are_refused_with_the_field_and_change_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let (s, body) = send_file(
        &api,
        "GOOD",
        "deep_cutout",
        "f",
        "good.fits",
        None,
        fits_bytes(8, 8, 1, 1),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let before = state(&app).await;

    let valid = fits_bytes(16, 16, 1, 2);
    let mut header_only = valid.clone();
    header_only.truncate(2880);
    let mut cut_in_header = valid.clone();
    cut_in_header.truncate(1000);
    let mut cut_in_data = valid.clone();
    cut_in_data.truncate(2880 + 100);
    let two31 = (1u64 << 31).to_string();
    let cases = vec![
        Case {
            what: "empty file",
            file_name: "empty.fits",
            content_type: None,
            bytes: Vec::new(),
            reason: "is 0 bytes long",
        },
        Case {
            what: "header only",
            file_name: "header.fits",
            content_type: Some("application/fits"),
            bytes: header_only,
            reason: "truncated",
        },
        Case {
            what: "cut inside the header",
            file_name: "cut.fits",
            content_type: None,
            bytes: cut_in_header,
            reason: "truncated",
        },
        Case {
            what: "cut inside the data",
            file_name: "cut2.fits",
            content_type: None,
            bytes: cut_in_data,
            reason: "truncated",
        },
        Case {
            what: "NAXIS1 = NAXIS2 = 2^31",
            file_name: "huge.fits",
            content_type: None,
            bytes: fits_with(&refs(&image_cards("-32", &[&two31, &two31])), true, 2880),
            reason: "more than the limit",
        },
        Case {
            what: "four axes near i64::MAX",
            file_name: "huge4.fits",
            content_type: None,
            bytes: fits_with(
                &refs(&image_cards("8", &["9000000000000000000"; 4])),
                true,
                0,
            ),
            reason: "more than the limit",
        },
        Case {
            what: "NAXIS1 beyond i64",
            file_name: "overflow.fits",
            content_type: None,
            bytes: fits_with(
                &refs(&image_cards("8", &["99999999999999999999999", "2"])),
                true,
                2880,
            ),
            reason: "out of range",
        },
        Case {
            what: "BITPIX = 7",
            file_name: "bitpix.fits",
            content_type: None,
            bytes: fits_with(&refs(&image_cards("7", &["4", "4"])), true, 2880),
            reason: "bitpix 7",
        },
        Case {
            what: "NAXIS = 999",
            file_name: "naxis.fits",
            content_type: None,
            bytes: fits_with(
                &[
                    "SIMPLE  =                    T",
                    "BITPIX  =                    8",
                    "NAXIS   =                  999",
                ],
                true,
                2880,
            ),
            reason: "naxis 999",
        },
        Case {
            what: "a negative axis",
            file_name: "neg.fits",
            content_type: None,
            bytes: fits_with(&refs(&image_cards("8", &["-5", "4"])), true, 2880),
            reason: "at least one pixel",
        },
        Case {
            what: "5000 planes",
            file_name: "planes.fits",
            content_type: None,
            bytes: fits_with(&refs(&image_cards("8", &["2", "2", "5000"])), true, 23040),
            reason: "planes",
        },
        Case {
            what: "no END card",
            file_name: "noend.fits",
            content_type: None,
            bytes: {
                let mut c = image_cards("8", &["2", "2"]);
                c.extend((0..200).map(|i| format!("COMMENT {i}")));
                fits_with(&refs(&c), false, 0)
            },
            reason: "no end card",
        },
        Case {
            what: "SIMPLE = F",
            file_name: "f.fits",
            content_type: None,
            bytes: {
                let mut c = image_cards("8", &["2", "2"]);
                c[0] = "SIMPLE  =                    F".into();
                fits_with(&refs(&c), true, 2880)
            },
            reason: "does not conform",
        },
        Case {
            what: "NUL bytes where the header should be",
            file_name: "nul.fits",
            content_type: None,
            bytes: {
                let mut b = b"SIMPLE  = ".to_vec();
                b.resize(2880 * 2, 0);
                b
            },
            reason: "simple",
        },
        Case {
            what: "text named .fits",
            file_name: "notes.fits",
            content_type: Some("application/fits"),
            bytes: b"ra,dec\n1,2\n".to_vec(),
            reason: "does not start with simple = t",
        },
        Case {
            what: "a gzip bomb named .fits",
            file_name: "bomb.fits.gz",
            content_type: Some("application/gzip"),
            bytes: gzip_bombish(),
            reason: "gzip-compressed",
        },
        Case {
            what: "binary sent as CSV",
            file_name: "data.csv",
            content_type: Some("text/csv"),
            bytes: vec![0, 159, 146, 150, 0, 1],
            reason: "not a fits, png or gif",
        },
        Case {
            what: "a GIF claiming 65535 × 65535",
            file_name: "bomb.gif",
            content_type: None,
            bytes: gif_claiming(u16::MAX, u16::MAX),
            reason: "more than the limit",
        },
        Case {
            what: "a GIF cut short",
            file_name: "cut.gif",
            content_type: None,
            bytes: gif_bytes()[..14].to_vec(),
            reason: "gif",
        },
    ];
    let n = cases.len();
    for (i, c) in cases.into_iter().enumerate() {
        let name = format!("H{i}");
        let (status, body) = send_file(
            &api,
            &name,
            "deep_cutout",
            "f",
            c.file_name,
            c.content_type,
            c.bytes,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", c.what);
        let problem = body["problems"]
            .as_array()
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p["field"] == "candidates[0].files.deep_cutout")
            })
            .unwrap_or_else(|| panic!("{}: no problem at the file's field: {body}", c.what));
        let message = problem["message"].as_str().unwrap().to_lowercase();
        assert!(
            message.contains(c.reason),
            "{}: {message:?} does not say {:?}",
            c.what,
            c.reason
        );
        assert_eq!(state(&app).await, before, "{} changed something", c.what);
        assert_healthy(&app, c.what).await;
    }
    assert_eq!(n, 19);
}

/// The name a client gives a file is a label only: whatever it says, the
/// file lands under `objects/` by its hash, and the type comes from the
/// bytes.
#[sqlx::test]
async fn client_file_names_never_reach_the_file_system(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let escape = std::env::temp_dir().join(format!("vetter-escape-{}", std::process::id()));
    let escape_name = format!("../../../../../../..{}", escape.display());
    let names = [
        "x.fits[1]",
        "file.fits(other.fits)",
        "x.fits+1",
        "mem://x.fits",
        "compress://x.fits",
        "-",
        "stdin",
        "!x.fits",
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/etc/passwd",
        escape_name.as_str(),
        "a\0b.fits",
        "tab\tand\nnewline.fits",
        "<script>alert(1)</script>.fits",
        "",
    ];
    let long = "a".repeat(5000);
    let mut accepted = 0;
    for (i, file_name) in names.iter().copied().chain([long.as_str()]).enumerate() {
        let name = format!("N{i}");
        let before = state(&app).await;
        let (status, body) = send_file(
            &api,
            &name,
            "deep_cutout",
            "f",
            file_name,
            None,
            fits_bytes(8, 8, 1, 100 + i as u64),
        )
        .await;
        // A line break or NUL inside a part's header breaks the multipart
        // syntax: a 400 is the honest answer there; everything else is
        // stored.
        if file_name.contains(['\n', '\0']) && status == StatusCode::BAD_REQUEST {
            assert!(body["message"].is_string(), "{file_name:?}: {body}");
            assert_eq!(state(&app).await, before, "{file_name:?}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{file_name:?}: {body}");
        accepted += 1;
        let stored: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT f.storage_path, f.original_name, f.role FROM files f
             JOIN candidates c ON c.id = f.candidate_id WHERE c.name = $1 ORDER BY f.role",
        )
        .bind(&name)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        // The FITS file and the preview rendered from it.
        assert_eq!(
            stored.iter().map(|s| s.2.as_str()).collect::<Vec<_>>(),
            ["deep_cutout", "deep_cutout_png"],
            "{file_name:?}"
        );
        for (path, original, _) in &stored {
            assert!(path.starts_with("objects/"), "{path}");
            assert!(!path.contains(".."), "{path}");
            assert!(app.media_root.join(path).is_file(), "{path}");
            assert!(!original.chars().any(char::is_control), "{original:?}");
            assert!(original.chars().count() <= 255);
        }
    }
    assert!(accepted >= names.len() - 2, "{accepted}");
    assert!(!escape.exists(), "a file name escaped the media folder");
    // Nothing outside objects/ (temporary files are all gone).
    for f in list_files(&app.media_root) {
        assert!(f.starts_with("objects/"), "{f} left in the media folder");
    }

    // The bytes decide the type, but a file named or typed as FITS must be
    // FITS: a PNG posing as one is refused, naming the file and what it is.
    for (file_name, declared) in [("really.fits", None), ("cutout", Some("application/fits"))] {
        let before = state(&app).await;
        let (s, body) = send_file(
            &api,
            "PNGFITS",
            "deep_cutout",
            "f",
            file_name,
            declared,
            png_bytes(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        let problem = &body["problems"][0];
        assert_eq!(
            problem["field"], "candidates[0].files.deep_cutout",
            "{body}"
        );
        let message = problem["message"].as_str().unwrap();
        assert!(message.contains("a PNG image, not FITS"), "{message}");
        assert_eq!(state(&app).await, before, "{file_name}");
    }
    // FITS bytes under another name are FITS; a PNG under a PNG name is a PNG.
    let (s, body) = send_file(
        &api,
        "FITSPNG",
        "deep_cutout",
        "f",
        "looks.png",
        Some("image/png"),
        fits_bytes(8, 8, 1, 7),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = send_file(
        &api,
        "PNGPNG",
        "deep_cutout",
        "f",
        "cutout.png",
        None,
        png_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let kinds: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.name, f.role, f.content_type FROM files f JOIN candidates c ON c.id = f.candidate_id
         WHERE c.name IN ('FITSPNG', 'PNGPNG') ORDER BY c.name, f.role",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            (
                "FITSPNG".into(),
                "deep_cutout".into(),
                "application/fits".into()
            ),
            (
                "FITSPNG".into(),
                "deep_cutout_png".into(),
                "image/png".into()
            ),
            ("PNGPNG".into(), "deep_cutout".into(), "image/png".into()),
        ]
    );

    // Roles and part names are checked as names, never used as paths.
    let before = state(&app).await;
    for role in ["../../x", "/abs", "a/b", "x.fits[1]", "Deep", ""] {
        let (s, body) =
            send_file(&api, "R", role, "f", "r.fits", None, fits_bytes(8, 8, 1, 7)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "role {role:?}: {body}");
        let fields: Vec<&str> = body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.iter().any(|f| f.contains("files")),
            "role {role:?}: {body}"
        );
        assert_eq!(state(&app).await, before, "role {role:?}");
    }
    let (s, body) = send_file(
        &api,
        "PARTNAME",
        "deep_cutout",
        "../../../etc/passwd",
        "p.fits",
        None,
        fits_bytes(8, 8, 1, 8),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "an odd part name is only a key: {body}");
    assert_healthy(&app, "file names").await;
}

/// Values for every parameter: wrong types, out of range, too long,
/// control characters, SQL and markup.
const GARBAGE: &[&str] = &[
    "",
    "%00",
    "%FF%FE",
    "%ZZ",
    "-1",
    "0",
    "1e999",
    "NaN",
    "-inf",
    "99999999999999999999999",
    "'%3B DROP TABLE candidates%3B --",
    "%22) OR 1=1 --",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "m.snr",
    "m.Bad Key",
    "%5B%5B%5B",
    "%5B%22a%22%2C%221%22%5D",
    "%E2%80%AE%E2%80%8B",
];

const FILTER_PARAMS: &[&str] = &[
    "project",
    "observation",
    "beam",
    "name",
    "rated",
    "reviewer",
    "verdict",
    "tag",
    "pos",
    "radius",
    "around",
    "sort",
    "dir",
    "per",
    "col",
    "after",
    "before",
    "form_project",
    "m.chi_square.min",
    "m.chi_square.max",
    "m.chi_square.nf",
    "m.x.y",
    "ratings",
    "reset",
];

#[sqlx::test]
async fn garbage_query_parameters_never_cause_a_server_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let (s, body) = send_file(
        &api,
        "Q1",
        "deep_cutout",
        "f",
        "q.fits",
        None,
        fits_bytes(8, 8, 1, 9),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM candidates WHERE name = 'Q1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let admin = app.create_user("hostile_admin", Role::Admin).await;
    app.login_as(&admin).await;
    let before = state(&app).await;

    let filter_pages = [
        "/candidates",
        "/ratings",
        "/candidates.csv",
        "/candidates.vot",
    ];
    let other: Vec<(String, &[&str])> = vec![
        ("/next".into(), &["after"]),
        ("/previous".into(), &["from"]),
        (format!("/candidates/{id}"), &["x"]),
        (format!("/candidates/{id}/nearby"), &["radius"]),
        (format!("/candidates/{id}/firefly"), &["file"]),
        (format!("/candidates/{id}/lightcurve.csv"), &["x"]),
        ("/queue".into(), &["project"]),
        ("/views".into(), &["x"]),
        ("/admin/audit".into(), &["actor", "action", "before"]),
        ("/admin/tags".into(), &["project"]),
        ("/admin/users".into(), &["x"]),
        ("/admin/projects".into(), &["x"]),
        ("/account".into(), &["x"]),
    ];
    let mut urls = Vec::new();
    for (k, page) in filter_pages.into_iter().enumerate() {
        for p in FILTER_PARAMS {
            // Every value on the table; a third of them on the other
            // pages, which read the same filter.
            for v in GARBAGE.iter().skip(k).step_by(if k == 0 { 1 } else { 3 }) {
                urls.push(format!("{page}?{p}={v}"));
            }
        }
        // Everything wrong at once, repeated and very long.
        let all: Vec<String> = FILTER_PARAMS
            .iter()
            .zip(GARBAGE.iter().cycle().skip(3))
            .map(|(p, v)| format!("{p}={v}&{p}={v}"))
            .collect();
        urls.push(format!("{page}?{}", all.join("&")));
        urls.push(format!("{page}?name={}", "x".repeat(20_000)));
        urls.push(format!("{page}?&&&==&=%&%%"));
    }
    for (path, params) in &other {
        for p in params.iter() {
            for v in GARBAGE {
                urls.push(format!("{path}?{p}={v}"));
            }
        }
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut failures = Vec::new();
    for url in &urls {
        let started = Instant::now();
        let r = app
            .client
            .get(app.url(url))
            .timeout(BOUND)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(
            started.elapsed() < BOUND,
            "{url} took {:?}",
            started.elapsed()
        );
        if !(status.is_success() || status.is_redirection() || status.is_client_error()) {
            failures.push(format!("{url}: {status}"));
        }
        if status.is_client_error() && text.trim().is_empty() {
            failures.push(format!("{url}: {status} without a reason"));
        }
        *statuses.entry(status.as_u16()).or_default() += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Both outcomes were reached: refusals and pages with inline errors.
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 10,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 10,
        "{statuses:?}"
    );

    // A bad filter on a page is a message beside its field; on an export,
    // a 400 naming the parameter.
    let page = app.get("/candidates?per=0&pos=nowhere").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("rows per page: a whole number from 1 to 500"),
        "{html}"
    );
    assert!(html.contains("nowhere"));
    for export in ["/candidates.csv", "/candidates.vot"] {
        let r = app
            .client
            .get(app.url(&format!("{export}?per=0")))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{export}");
        let body = r.text().await.unwrap();
        assert!(body.contains("per"), "{export}: {body}");
        let r = app
            .client
            .get(app.url(&format!("{export}?ratings=everything")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{export}");
    }
    // Saving garbage queue settings is refused or dropped, never stored
    // as given.
    for (field, value) in [
        ("order", "metric:x;DROP:asc"),
        ("order", "random"),
        ("mode", "everything"),
        ("tag", "1 OR 1=1"),
    ] {
        let r = app.post_form("/queue", &[(field, value)]).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{field}={value}");
    }
    let r = app
        .post_form(
            "/queue",
            &[
                ("project", "nope'--"),
                ("observation", "<x>"),
                ("filter", "per=0"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let view: Value = sqlx::query_scalar("SELECT view FROM reviewer_queues WHERE user_id = $1")
        .bind(admin.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(view["project"], Value::Null, "{view}");
    assert_eq!(view["observation"], Value::Null, "{view}");
    assert_eq!(view["filter"], Value::Null, "{view}");

    assert_eq!(state(&app).await, before);
    assert_healthy(&app, "garbage queries").await;
    assert!(urls.len() > 400, "{}", urls.len());
}

/// PostgreSQL text and jsonb cannot hold NUL (U+0000): every field that
/// reaches the database must refuse it as a 4xx, not fail as a 500.
#[sqlx::test]
async fn nul_characters_in_text_are_refused_not_server_errors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let nul = "a\u{0}b";
    let mut failures = Vec::new();
    let mut check = |what: &str, status: StatusCode, body: &str| {
        if status.is_server_error() {
            failures.push(format!("{what}: {status}: {body}"));
        }
    };

    // The upload API.
    let puts = [
        ("/projects/vast", json!({"name": nul})),
        (
            "/projects/vast",
            json!({"name": "VAST", "description": nul}),
        ),
        (
            "/projects/vast",
            json!({"name": "VAST", "metrics": [{"key": "chi_square", "label": nul}]}),
        ),
        (
            "/projects/vast",
            json!({"name": "VAST", "metrics": [{"key": "chi_square", "label": "c", "unit": nul, "description": nul}]}),
        ),
        (
            "/projects/vast",
            json!({"name": "VAST", "tags": [{"name": nul}]}),
        ),
        (
            "/projects/vast",
            json!({"name": "VAST", "tags": [{"name": "t", "description": nul}]}),
        ),
        (
            "/projects/vast/observations/SB50230",
            json!({"metadata": {"note": nul}}),
        ),
        (
            "/projects/vast/observations/SB50230",
            json!({"metadata": {nul: 1}}),
        ),
        (
            "/projects/vast/observations/SB50230/beams/beam00",
            json!({"metadata": {"note": nul}}),
        ),
        (
            "/projects/vast/observations/SB50230/candidates/J1",
            json!({"ra": 1, "dec": 1, "attributes": {"note": nul}}),
        ),
        (
            "/projects/vast/observations/SB50230/candidates/J1",
            json!({"ra": 1, "dec": 1, "light_curve": {"unit": nul, "points": [{"time": "2024-05-01T12:00:00Z", "flux": 1}]}}),
        ),
        (
            "/projects/vast/observations/SB50230/candidates/a%00b",
            json!({"ra": 1, "dec": 1}),
        ),
        ("/projects/a%00b", json!({"name": "x"})),
        ("/projects/vast/observations/a%00b", json!({})),
    ];
    for (path, body) in puts {
        let (status, reply) = api.put(path, body.clone()).await;
        check(&format!("PUT {path} {body}"), status, &reply.to_string());
        if status.is_client_error() {
            assert!(reply["message"].is_string(), "{path}: {reply}");
        }
    }
    // The API refused all of them, so nothing with a NUL was stored.
    let stored: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM projects WHERE name LIKE '%b' OR description LIKE '%b')
              + (SELECT count(*) FROM tags)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 2, "only the two tags of vast_project");

    // The forms, signed in as an admin.
    let (s, _) = api
        .put(
            "/projects/vast",
            json!({"name": "VAST", "reviewers_add_tags": true}),
        )
        .await;
    let _ = s;
    sqlx::query("UPDATE projects SET reviewers_add_tags = true")
        .execute(&app.pool)
        .await
        .unwrap();
    let (s, body) = api
        .put(
            "/projects/vast/observations/SB50230/candidates/J2",
            json!({"ra": 1, "dec": 1}),
        )
        .await;
    assert!(s.is_success(), "{body}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM candidates WHERE name = 'J2'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = app.post_login(nul, "whatever").await;
    check("login", r.status(), "");
    let admin = app.create_user("nul_admin", Role::Admin).await;
    app.login_as(&admin).await;
    let project_id: i64 = sqlx::query_scalar("SELECT id FROM projects WHERE slug = 'vast'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let project_id = project_id.to_string();
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/account/tokens".into(), vec![("name", nul)]),
        ("/views".into(), vec![("name", nul), ("query", "")]),
        (
            "/views".into(),
            vec![("name", "v"), ("query", "name=a%00b")],
        ),
        (
            format!("/candidates/{id}/rating"),
            vec![("verdict", "real"), ("notes", nul)],
        ),
        (format!("/candidates/{id}/rating"), vec![("verdict", nul)]),
        (format!("/candidates/{id}/tags"), vec![("name", nul)]),
        (
            "/admin/tags".into(),
            vec![("project", &project_id), ("name", nul)],
        ),
        (
            "/admin/tags".into(),
            vec![
                ("project", &project_id),
                ("name", "t2"),
                ("description", nul),
            ],
        ),
        ("/admin/tags".into(), vec![("project", nul), ("name", "t3")]),
        ("/admin/projects/vast".into(), vec![("name", nul)]),
        (
            "/admin/projects/vast".into(),
            vec![("name", "VAST"), ("description", nul)],
        ),
        (
            "/admin/users".into(),
            vec![("username", nul), ("role", "reviewer")],
        ),
        (
            "/admin/users".into(),
            vec![("username", "u1"), ("role", nul)],
        ),
        (
            "/account/password".into(),
            vec![("current", nul), ("new", nul), ("confirm", nul)],
        ),
        (
            "/queue".into(),
            vec![("project", nul), ("observation", nul)],
        ),
        ("/queue".into(), vec![("filter", "tag=%00")]),
    ];
    for (path, fields) in &forms {
        let r = app.post_form(path, fields).await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        check(
            &format!("POST {path} {fields:?}"),
            status,
            &text[..text.len().min(300)],
        );
    }
    for url in [
        "/candidates?tag=%00",
        "/candidates?after=%5B%22%5Cu0000%22%2C%221%22%5D",
        "/candidates?before=%5B%22%5Cu0000%22%2C%221%22%5D",
        "/candidates.csv?tag=%00",
        "/ratings?tag=%00",
        "/admin/audit?actor=%00",
        "/admin/tags?project=%00",
        "/admin/projects/%00",
        "/admin/projects/a%00b/delete",
        "/admin/projects/vast/observations/a%00b/delete",
    ] {
        let r = app.get(url).await;
        check(&format!("GET {url}"), r.status(), "");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_healthy(&app, "NUL characters").await;
}

/// Found by the property tests: an empty name in a batch passed the
/// checks and failed on the database's constraint.
#[sqlx::test]
async fn an_empty_name_in_a_batch_is_refused_by_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let before = state(&app).await;
    for name in ["", "   "] {
        let (s, body) = api
            .post(
                BATCH,
                json!({"candidates": [{"name": "ok", "ra": 1, "dec": 1},
                                      {"name": name, "ra": 1, "dec": 1}]}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{name:?}: {body}");
        assert!(
            body["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["field"] == "candidates[1].name"),
            "{body}"
        );
        assert_eq!(state(&app).await, before);
    }
}

/// A refused view is sent back to the table with its query in the redirect;
/// an overlong one must be refused outright, so no Location header can
/// outgrow a proxy's limit.
#[sqlx::test]
async fn an_overlong_view_query_is_refused_without_echoing_it(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    app.login_as(&alice).await;
    // Under the form limit (64 KiB), over the saved-query limit.
    let long = format!("project=vast&q={}", "x".repeat(20_000));
    let r = app
        .post_form("/views", &[("name", "Long"), ("query", &long)])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("too long to save"));
}

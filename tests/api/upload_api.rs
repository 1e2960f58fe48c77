//! The upload API end to end: tokens, both survey shapes, idempotency, and
//! every rejection leaving the database and the media folder as they were.

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{list_files, TestApp, TestUser};

pub async fn token_for(app: &TestApp, user: &TestUser) -> String {
    vetter::db::api_tokens::create(
        &app.pool,
        user.id,
        "tests",
        vetter::domain::token::TokenScopes::UPLOAD,
    )
    .await
    .unwrap()
    .0
}

/// FITS bytes made by the app's own writer: a point source on noise, or a
/// cube of `planes` such images.
pub fn fits_bytes(width: usize, height: usize, planes: usize, seed: u64) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!(
        "vetter-fits-{}-{seed}-{planes}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("img.fits");
    let mut data = Vec::new();
    for p in 0..planes {
        data.extend(vetter::fits::synth_point_source(
            width,
            height,
            10.0 + p as f32,
            1.0,
            seed + p as u64,
        ));
    }
    if planes == 1 {
        vetter::fits::write_image(&path, width, height, &data, None).unwrap();
    } else {
        vetter::fits::write_cube(&path, width, height, planes, &data, None).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

pub fn png_bytes() -> Vec<u8> {
    let img = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 40 + y * 10) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn gif_bytes() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(4, 3, |x, _| image::Rgba([(x * 60) as u8, 0, 0, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Gif).unwrap();
    out.into_inner()
}

pub struct Api<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl Api<'_> {
    fn url(&self, path: &str) -> String {
        self.app.url(&format!("/api/v1{path}"))
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .app
            .client
            .put(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .app
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
    pub async fn post_multipart(
        &self,
        path: &str,
        json_part: &str,
        body: Value,
        files: Vec<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let mut form = Form::new().part(
            json_part.to_string(),
            Part::text(body.to_string())
                .mime_str("application/json")
                .unwrap(),
        );
        for (name, bytes) in files {
            form = form.part(
                name.to_string(),
                Part::bytes(bytes).file_name(format!("{name}.bin")),
            );
        }
        let r = self
            .app
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
    pub async fn put_multipart(
        &self,
        path: &str,
        json_part: &str,
        body: Value,
        files: Vec<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let mut form = Form::new().part(
            json_part.to_string(),
            Part::text(body.to_string())
                .mime_str("application/json")
                .unwrap(),
        );
        for (name, bytes) in files {
            form = form.part(
                name.to_string(),
                Part::bytes(bytes).file_name(format!("{name}.bin")),
            );
        }
        let r = self
            .app
            .client
            .put(self.url(path))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
}

pub async fn uploader(app: &TestApp) -> Api<'_> {
    let admin = app.create_user("pipeline", Role::Admin).await;
    Api {
        app,
        token: token_for(app, &admin).await,
    }
}

pub async fn vast_project(api: &Api<'_>) {
    let (s, body) = api
        .put(
            "/projects/vast",
            json!({"name": "VAST", "description": "ASKAP VAST",
                   "metrics": [{"key": "chi_square", "label": "χ²", "precision": 2},
                               {"key": "peak_map", "label": "Peak map", "unit": "σ"},
                               {"key": "md_deep", "label": "Modulation index"}],
                   "tags": [{"name": "Flaring star"}, {"name": "Noise"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .put(
            "/projects/vast/observations/SB50230",
            json!({"start_time": "2024-05-01T12:00:00Z", "pointing": {"ra": 188.0, "dec": -45.0}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .put(
            "/projects/vast/observations/SB50230/beams/beam00",
            json!({"centre": {"ra": 188.5, "dec": -45.1}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

fn vast_candidate(name: &str, chi: Value, files: Value) -> Value {
    json!({"name": name, "beam": "beam00", "ra": 188.7, "dec": -45.2,
           "positions": {"deep": {"ra": 188.70001, "dec": -45.20002}},
           "metrics": {"chi_square": chi, "peak_map": "NaN", "md_deep": "Infinity"},
           "attributes": {"deep_name": "VAST J123448.0-451207"},
           "light_curve": {"unit": "mJy/beam", "points": [
               {"time": "2024-05-01T12:00:00Z", "flux": 1.5, "err": 0.1},
               {"time": "2024-05-01T12:10:00Z", "flux": 9.5, "err": 0.2}]},
           "files": files})
}

pub struct Snapshot {
    candidates: i64,
    files: i64,
    metrics: i64,
    media: Vec<String>,
}

pub async fn snapshot(app: &TestApp) -> Snapshot {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    Snapshot {
        candidates: count("SELECT count(*) FROM candidates").await,
        files: count("SELECT count(*) FROM files").await,
        metrics: count("SELECT count(*) FROM candidate_metrics").await,
        media: list_files(&app.media_root),
    }
}

fn assert_same(a: &Snapshot, b: &Snapshot, what: &str) {
    assert_eq!(a.candidates, b.candidates, "{what}: candidates");
    assert_eq!(a.files, b.files, "{what}: file rows");
    assert_eq!(a.metrics, b.metrics, "{what}: metrics");
    assert_eq!(a.media, b.media, "{what}: media folder");
}

#[sqlx::test]
async fn tokens_are_required_checked_and_revocable(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let r = app
        .client
        .get(app.url("/api/v1/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("Bearer"));

    let rita = app.create_user("rita", Role::Reviewer).await;
    let token = token_for(&app, &rita).await;
    assert!(token.starts_with("vet_"));
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!stored.contains(&token[4..]), "only a hash is stored");
    let who = |t: String| {
        let c = app.client.clone();
        let u = app.url("/api/v1/whoami");
        async move { c.get(u).bearer_auth(t).send().await.unwrap() }
    };
    let r = who(token.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["username"], "rita");
    assert_eq!(body["can_upload"], false);
    assert_eq!(
        who("vet_nonsense".into()).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A reviewer may not upload until allowed.
    let api = Api {
        app: &app,
        token: token.clone(),
    };
    let (s, _) = api.put("/projects/p", json!({"name": "P"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    sqlx::query("UPDATE users SET can_upload = true WHERE id = $1")
        .bind(rita.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let (s, _) = api.put("/projects/p", json!({"name": "P"})).await;
    assert_eq!(s, StatusCode::CREATED);

    // The scheme is case-insensitive.
    let r = app
        .client
        .get(app.url("/api/v1/whoami"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Deactivation stops the token at once, and reactivation does not
    // bring it back: it was revoked.
    vetter::db::users::set_active(&app.pool, rita.id, false)
        .await
        .unwrap();
    assert_eq!(who(token.clone()).await.status(), StatusCode::UNAUTHORIZED);
    vetter::db::users::set_active(&app.pool, rita.id, true)
        .await
        .unwrap();
    assert_eq!(who(token.clone()).await.status(), StatusCode::UNAUTHORIZED);

    // Revocation of a single token.
    let token = token_for(&app, &rita).await;
    assert_eq!(who(token.clone()).await.status(), StatusCode::OK);
    let id: vetter::domain::TokenId =
        sqlx::query_scalar("SELECT id FROM api_tokens WHERE revoked_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(vetter::db::api_tokens::revoke(&app.pool, rita.id, id)
        .await
        .unwrap());
    assert_eq!(who(token).await.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test]
async fn a_vast_shaped_upload_round_trips_with_rendered_previews(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let batch = json!({"candidates": [
        vast_candidate("J1", json!(12.5), json!({"deep_cutout": "c1", "cube": "q1"})),
        vast_candidate("J2", json!("nan"), json!({})),
    ]});
    let (s, body) = api
        .post_multipart(
            "/projects/vast/observations/SB50230/candidates",
            "candidates",
            batch.clone(),
            vec![
                ("c1", fits_bytes(16, 12, 1, 1)),
                ("q1", fits_bytes(8, 8, 4, 2)),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["created"], 2);

    let (chi, peak, md): (f64, f64, f64) = sqlx::query_as(
        "SELECT max(value) FILTER (WHERE d.key = 'chi_square'), max(value) FILTER (WHERE d.key = 'peak_map'),
                max(value) FILTER (WHERE d.key = 'md_deep')
         FROM candidate_metrics m JOIN metric_defs d ON d.id = m.metric_id JOIN candidates c ON c.id = m.candidate_id
         WHERE c.name = 'J1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(chi, 12.5);
    assert!(peak.is_nan());
    assert_eq!(md, f64::INFINITY);
    let roles: Vec<(String, String)> = sqlx::query_as(
        "SELECT f.role, f.content_type FROM files f JOIN candidates c ON c.id = f.candidate_id WHERE c.name = 'J1' ORDER BY role",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let roles: Vec<(&str, &str)> = roles
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            ("cube", "application/fits"),
            ("cube_gif", "image/gif"),
            ("cube_gif_strip", "image/png"),
            ("cube_png", "image/png"),
            ("deep_cutout", "application/fits"),
            ("deep_cutout_png", "image/png"),
        ]
    );
    let derived: i64 =
        sqlx::query_scalar("SELECT count(*) FROM files WHERE derived_from IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(derived, 4);
    // Every row's file is in the media folder, with the bytes it claims.
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT storage_path, sha256, size_bytes FROM files")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for (path, sha, size) in rows {
        let bytes = std::fs::read(app.media_root.join(&path)).unwrap();
        assert_eq!(bytes.len() as i64, size);
        assert_eq!(
            vetter::media::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            sha
        );
    }
    let (n, times): (i32, i32) = sqlx::query_as(
        "SELECT cardinality(flux), cardinality(times) FROM light_curves l JOIN candidates c ON c.id = l.candidate_id WHERE c.name = 'J2'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((n, times), (2, 2));
    let deep: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM candidate_positions WHERE kind = 'deep' AND q3c_radial_query(ra, dec, 188.7, -45.2, 1.0/60)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(deep, 2, "extra positions are cone-searchable");
    assert!(
        list_files(&app.media_root.join("tmp")).is_empty(),
        "no temporary files left"
    );

    // The same again changes nothing.
    let before = snapshot(&app).await;
    let (s, body) = api
        .post_multipart(
            "/projects/vast/observations/SB50230/candidates",
            "candidates",
            batch,
            vec![
                ("c1", fits_bytes(16, 12, 1, 1)),
                ("q1", fits_bytes(8, 8, 4, 2)),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["created"].clone(),
            body["updated"].clone(),
            body["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(2))
    );
    assert_same(&before, &snapshot(&app).await, "re-upload");

    // A changed metric updates that candidate only.
    let (s, body) = api
        .put("/projects/vast/observations/SB50230/candidates/J2", {
            let mut c = vast_candidate("J2", json!(3.0), json!({}));
            c.as_object_mut().unwrap().remove("name");
            c
        })
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "updated");
    let chi: f64 = sqlx::query_scalar(
        "SELECT value FROM candidate_metrics m JOIN metric_defs d ON d.id = m.metric_id JOIN candidates c ON c.id = m.candidate_id
         WHERE c.name = 'J2' AND d.key = 'chi_square'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(chi, 3.0);
}

#[sqlx::test]
async fn a_gleamx_shaped_upload_keeps_its_png_and_gif(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    let (s, _) = api
        .put("/projects/gleamx", json!({"name": "GLEAM-X", "metrics": [
            {"key": "flux", "label": "Peak flux", "unit": "Jy"}, {"key": "fluence", "label": "Fluence", "unit": "Jy s"},
            {"key": "det_stat", "label": "Detection statistic"}, {"key": "mod_index", "label": "Modulation index"}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api
        .put(
            "/projects/gleamx/observations/1234567890",
            json!({"start_time": "2023-02-25T00:00:00+00:00"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = api
        .put_multipart(
            "/projects/gleamx/observations/1234567890/candidates/tcgm_001",
            "candidate",
            json!({"ra": 0.5, "dec": -26.7, "metrics": {"flux": 0.42, "fluence": 3.1, "det_stat": 7.0, "mod_index": 0.8},
                   "attributes": {"nks_name": "GLEAM J000200-264200", "filter": "tcgm"},
                   "files": {"preview": "png", "animation": "gif"}}),
            vec![("png", png_bytes()), ("gif", gif_bytes())],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "created");
    let roles: Vec<String> = sqlx::query_scalar("SELECT role FROM files ORDER BY role")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        roles,
        ["animation", "animation_strip", "preview"],
        "PNG and GIF are kept as sent; only the GIF's strip of frames is made"
    );
    let attr: String = sqlx::query_scalar("SELECT attributes->>'nks_name' FROM candidates")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attr, "GLEAM J000200-264200");
}

#[sqlx::test]
async fn every_rejection_names_the_problem_and_changes_nothing(pool: PgPool) {
    let app = TestApp::spawn_with(pool, |c| c.max_file_bytes = 50_000).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let (s, _) = api
        .post_multipart(
            "/projects/vast/observations/SB50230/candidates",
            "candidates",
            json!({"candidates": [vast_candidate("OK1", json!(1.0), json!({"deep_cutout": "c"}))]}),
            vec![("c", fits_bytes(8, 8, 1, 3))],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let before = snapshot(&app).await;
    let good = |name: &str| vast_candidate(name, json!(1.0), json!({}));
    let mut truncated = fits_bytes(16, 16, 1, 4);
    truncated.truncate(3000);
    let mut absurd = fits_bytes(8, 8, 1, 5);
    let header = String::from_utf8_lossy(&absurd[..2880]).replace(
        "NAXIS1  =                    8",
        "NAXIS1  =           1000000000",
    );
    absurd[..2880].copy_from_slice(header.as_bytes());

    struct Case {
        what: &'static str,
        path: &'static str,
        body: Value,
        files: Vec<(&'static str, Vec<u8>)>,
        status: StatusCode,
        field: &'static str,
    }
    let batch = "/projects/vast/observations/SB50230/candidates";
    let cases = vec![
        Case {
            what: "unknown observation",
            path: "/projects/vast/observations/SB9/candidates",
            body: json!({"candidates": [good("A")]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "observation",
        },
        Case {
            what: "unknown project",
            path: "/projects/nope/observations/SB50230/candidates",
            body: json!({"candidates": [good("A")]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "project",
        },
        Case {
            what: "bad number",
            path: batch,
            body: json!({"candidates": [good("A"), vast_candidate("B", json!("twelve"), json!({}))]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[1].metrics.chi_square",
        },
        Case {
            what: "NaN position",
            path: batch,
            body: json!({"candidates": [{"name": "A", "ra": "NaN", "dec": 0}]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].ra",
        },
        Case {
            what: "unknown metric",
            path: batch,
            body: json!({"candidates": [{"name": "A", "ra": 1, "dec": 1, "metrics": {"sparkle": 1}}]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].metrics.sparkle",
        },
        Case {
            what: "unknown beam",
            path: batch,
            body: json!({"candidates": [{"name": "A", "ra": 1, "dec": 1, "beam": "beam99"}]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].beam",
        },
        Case {
            what: "duplicate names",
            path: batch,
            body: json!({"candidates": [good("A"), good("A")]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[1].name",
        },
        Case {
            what: "not a FITS/PNG/GIF",
            path: batch,
            body: json!({"candidates": [vast_candidate("A", json!(1), json!({"deep_cutout": "f"}))]}),
            files: vec![("f", b"just some text, not an image".to_vec())],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].files.deep_cutout",
        },
        Case {
            what: "truncated FITS",
            path: batch,
            body: json!({"candidates": [vast_candidate("A", json!(1), json!({"deep_cutout": "f"}))]}),
            files: vec![("f", truncated)],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].files.deep_cutout",
        },
        Case {
            what: "absurd NAXIS",
            path: batch,
            body: json!({"candidates": [vast_candidate("A", json!(1), json!({"deep_cutout": "f"}))]}),
            files: vec![("f", absurd)],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].files.deep_cutout",
        },
        Case {
            what: "missing part",
            path: batch,
            body: json!({"candidates": [vast_candidate("A", json!(1), json!({"deep_cutout": "nothere"}))]}),
            files: vec![("other", png_bytes())],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].files.deep_cutout",
        },
        Case {
            what: "unreferenced part",
            path: batch,
            body: json!({"candidates": [good("A")]}),
            files: vec![("stray", png_bytes())],
            status: StatusCode::BAD_REQUEST,
            field: "stray",
        },
        Case {
            what: "too large",
            path: batch,
            body: json!({"candidates": [vast_candidate("A", json!(1), json!({"deep_cutout": "f"}))]}),
            files: vec![("f", vec![b'x'; 60_000])],
            status: StatusCode::PAYLOAD_TOO_LARGE,
            field: "",
        },
        Case {
            what: "RA as a string",
            path: batch,
            body: json!({"candidates": [{"name": "A", "ra": "12.5", "dec": 0}]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].ra",
        },
        Case {
            what: "unknown field",
            path: batch,
            body: json!({"candidates": [{"name": "A", "ra": 1, "dec": 1, "colour": "red"}]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0]",
        },
        Case {
            what: "zone-less time",
            path: batch,
            body: json!({"candidates": [{"name": "A", "ra": 1, "dec": 1, "light_curve": {"points": [{"time": "2024-01-01T00:00:00", "flux": 1}]}}]}),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "candidates[0].light_curve.points[0].time",
        },
        Case {
            what: "not a batch",
            path: batch,
            body: json!([good("A")]),
            files: vec![],
            status: StatusCode::BAD_REQUEST,
            field: "body",
        },
    ];
    for c in cases {
        let (status, body) = if c.files.is_empty() {
            api.post(c.path, c.body).await
        } else {
            api.post_multipart(c.path, "candidates", c.body, c.files)
                .await
        };
        assert_eq!(status, c.status, "{}: {body}", c.what);
        assert!(body["message"].is_string(), "{}: {body}", c.what);
        if !c.field.is_empty() {
            let none = Vec::new();
            let fields: Vec<&str> = body["problems"]
                .as_array()
                .unwrap_or(&none)
                .iter()
                .map(|p| p["field"].as_str().unwrap())
                .collect();
            assert!(
                fields.contains(&c.field),
                "{}: expected a problem at {}, got {body}",
                c.what,
                c.field
            );
        }
        assert_same(&before, &snapshot(&app).await, c.what);
    }
    // A malformed JSON body and a wrong content type are 400s too.
    let r = app
        .client
        .post(app.url(&format!("/api/v1{batch}")))
        .bearer_auth(&api.token)
        .header("Content-Type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .post(app.url(&format!("/api/v1{batch}")))
        .bearer_auth(&api.token)
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_same(&before, &snapshot(&app).await, "malformed bodies");
}

/// An image in the first extension behind an empty primary HDU, plain or
/// tile-compressed (cfitsio compresses what it writes to a name ending in
/// `[compress]`).
fn fits_in_extension(compress: bool) -> Vec<u8> {
    use fitsio::images::{ImageDescription, ImageType};
    let dir =
        std::env::temp_dir().join(format!("vetter-fits-ext-{}-{compress}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("img.fits");
    let name = if compress {
        format!("{}[compress]", path.display())
    } else {
        path.display().to_string()
    };
    let mut f = fitsio::FitsFile::create(name).overwrite().open().unwrap();
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &[12, 16],
    };
    let hdu = f.create_image("IMAGE", &desc).unwrap();
    let data = vetter::fits::synth_point_source(16, 12, 10.0, 1.0, 7);
    hdu.write_image(&mut f, &data).unwrap();
    drop(f);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

#[sqlx::test]
async fn images_in_the_first_extension_and_tile_compressed_ones_are_accepted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let batch = json!({"candidates": [
        vast_candidate("E1", json!(1.0), json!({"deep_cutout": "plain"})),
        vast_candidate("E2", json!(1.0), json!({"deep_cutout": "tiled"})),
    ]});
    let (s, body) = api
        .post_multipart(
            "/projects/vast/observations/SB50230/candidates",
            "candidates",
            batch,
            vec![
                ("plain", fits_in_extension(false)),
                ("tiled", fits_in_extension(true)),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for name in ["E1", "E2"] {
        let path: String = sqlx::query_scalar(
            "SELECT f.storage_path FROM files f JOIN candidates c ON c.id = f.candidate_id
              WHERE c.name = $1 AND f.role = 'deep_cutout_png'",
        )
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let png = image::load_from_memory(&std::fs::read(app.media_root.join(path)).unwrap())
            .unwrap()
            .to_luma8();
        assert_eq!(png.dimensions(), (16, 12), "{name}");
        // The synthetic source makes the brightest pixel white.
        assert!(png.pixels().any(|p| p.0[0] == 255), "{name}");
    }
}

#[sqlx::test]
async fn names_with_line_breaks_are_refused_as_the_admin_forms_refuse_them(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    let (s, body) = api
        .put(
            "/projects/p",
            json!({"name": "Two\r\nlines", "tags": [{"name": "Known\npulsar"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "tags[0].name"], "{body}");
    assert!(body.to_string().contains("one line"), "{body}");
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(projects, 0);
}

#[sqlx::test]
async fn headline_metrics_good_ranges_and_the_key_guard_round_trip(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    let definition = json!({"name": "P", "key_guard_ms": 400, "metrics": [
        {"key": "snr", "label": "S/N", "headline": true, "good": {"min": 5}},
        {"key": "sep", "label": "Separation", "good": {"min": 0, "max": 2.5}},
        {"key": "chi", "label": "χ²"}]});
    let (s, body) = api.put("/projects/p", definition.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    type Row = (String, bool, Option<f64>, Option<f64>);
    let stored = || async {
        let metrics: Vec<Row> = sqlx::query_as(
            "SELECT key, headline, good_min, good_max FROM metric_defs ORDER BY position",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let guard: i32 = sqlx::query_scalar("SELECT key_guard_ms FROM projects WHERE slug = 'p'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (metrics, guard)
    };
    let as_sent: (Vec<Row>, i32) = (
        vec![
            ("snr".into(), true, Some(5.0), None),
            ("sep".into(), false, Some(0.0), Some(2.5)),
            ("chi".into(), false, None, None),
        ],
        400,
    );
    assert_eq!(stored().await, as_sent);

    // The same definition again changes nothing, and so does one without
    // the guard: only a guard that is sent is stored.
    let (_, body) = api.put("/projects/p", definition.clone()).await;
    assert_eq!(body["status"], "unchanged", "{body}");
    let mut without_guard = definition.clone();
    without_guard
        .as_object_mut()
        .unwrap()
        .remove("key_guard_ms");
    let (_, body) = api.put("/projects/p", without_guard).await;
    assert_eq!(body["status"], "unchanged", "{body}");
    assert_eq!(stored().await, as_sent);

    // A changed bound or guard is an update.
    let mut moved = definition.clone();
    moved["metrics"][1]["good"]["max"] = json!(3);
    let (_, body) = api.put("/projects/p", moved).await;
    assert_eq!(body["status"], "updated", "{body}");
    let mut slower = definition.clone();
    slower["key_guard_ms"] = json!(800);
    let (_, body) = api.put("/projects/p", slower).await;
    assert_eq!(body["status"], "updated", "{body}");
    assert_eq!(stored().await.1, 800);

    // The admin page shows what was sent.
    let admin = app.create_user("boss", Role::Admin).await;
    app.login_as(&admin).await;
    let html = app.get_html("/admin/projects/p").await;
    assert_eq!(
        crate::helpers::select_attr(&html, "input[name=key_guard_ms]", "value").as_deref(),
        Some("800")
    );
    let snr_row = scraper::Selector::parse("tr[data-metric=snr] input[type=checkbox]").unwrap();
    let checked: Vec<bool> = html
        .select(&snr_row)
        .map(|e| e.value().attr("checked").is_some())
        .collect();
    assert_eq!(checked, [true, true], "shown by default, headline");

    // A bad range or guard is refused with its field named, and nothing
    // changes.
    let before = stored().await;
    let mut reversed = definition.clone();
    reversed["metrics"][1]["good"] = json!({"min": 3, "max": 1});
    reversed["metrics"][2]["good"] = json!({"max": "Infinity"});
    reversed["key_guard_ms"] = json!(5000);
    let (s, body) = api.put("/projects/p", reversed).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["metrics[1].good.min", "metrics[2].good.max", "key_guard_ms"],
        "{body}"
    );
    assert_eq!(stored().await, before);
}

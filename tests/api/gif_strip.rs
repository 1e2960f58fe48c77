//! Every stored GIF, sent or rendered from a FITS cube, gets a strip of its
//! frames (a PNG, frames stacked top to bottom) for the page's player, and
//! its row says how to cut it.

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgba, RgbaImage};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::TestApp;
use crate::upload_api::{fits_bytes, png_bytes, uploader, vast_project, Api};

/// `frames` frames of w × h, frame k tinted by k, `delay_ms` each.
fn movie(w: u32, h: u32, frames: usize, delay_ms: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for k in 0..frames {
            let img = RgbaImage::from_fn(w, h, |x, y| {
                Rgba([(k * 40) as u8, (x * 20) as u8, (y * 30) as u8, 255])
            });
            let delay = Delay::from_numer_denom_ms(delay_ms, 1);
            enc.encode_frame(Frame::from_parts(img, 0, 0, delay))
                .unwrap();
        }
    }
    out
}

async fn gleamx_observation(api: &Api<'_>) {
    let (s, body) = api.put("/projects/gx", json!({"name": "GX"})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = api
        .put(
            "/projects/gx/observations/1234567890",
            json!({"start_time": "2023-02-25T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

async fn put_candidate(
    api: &Api<'_>,
    files: Value,
    parts: Vec<(&str, Vec<u8>)>,
) -> (StatusCode, Value) {
    api.put_multipart(
        "/projects/gx/observations/1234567890/candidates/c1",
        "candidate",
        json!({"ra": 0.5, "dec": -26.7, "files": files}),
        parts,
    )
    .await
}

fn problem_at<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body["problems"]
        .as_array()?
        .iter()
        .find(|p| p["field"] == field)
        .and_then(|p| p["message"].as_str())
}

type Row = (
    i64,
    String,
    String,
    Option<i64>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    String,
);

async fn rows(app: &TestApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT id, role, content_type, derived_from, frames, frame_ms, width, height, storage_path
         FROM files ORDER BY role",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn an_uploaded_gif_gets_a_strip_of_its_frames(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    gleamx_observation(&api).await;
    let gif = movie(6, 4, 5, 80);
    let (s, body) = put_candidate(
        &api,
        json!({"animation": "gif", "preview": "png"}),
        vec![("gif", gif.clone()), ("png", png_bytes())],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    let files = rows(&app).await;
    let roles: Vec<&str> = files.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(roles, ["animation", "animation_strip", "preview"]);
    let (gif_id, _, gif_type, gif_from, frames, frame_ms, width, height, _) = &files[0];
    assert_eq!(gif_type, "image/gif");
    assert_eq!(*gif_from, None);
    assert_eq!(
        (*frames, *frame_ms, *width, *height),
        (Some(5), Some(80), Some(6), Some(4))
    );
    let (_, _, strip_type, strip_from, sf, _, _, _, strip_path) = &files[1];
    assert_eq!(strip_type, "image/png");
    assert_eq!(*strip_from, Some(*gif_id));
    assert_eq!(*sf, None, "the numbers are on the GIF's row");
    let strip = image::open(app.media_root.join(strip_path))
        .unwrap()
        .to_rgba8();
    assert_eq!(strip.dimensions(), (6, 20));
    assert_eq!(strip.get_pixel(5, 3 * 4 + 2).0, [120, 100, 60, 255]);
    // A still PNG gets nothing.
    assert_eq!(files[2].4, None);

    // Sending the same again changes nothing; a new GIF replaces the strip.
    let (s, body) = put_candidate(&api, json!({"animation": "gif"}), vec![("gif", gif)]).await;
    assert_eq!((s, &body["status"]), (StatusCode::OK, &json!("unchanged")));
    assert_eq!(format!("{:?}", rows(&app).await), format!("{files:?}"));
    let (s, body) = put_candidate(
        &api,
        json!({"animation": "gif"}),
        vec![("gif", movie(10, 10, 3, 200))],
    )
    .await;
    assert_eq!(
        (s, &body["status"]),
        (StatusCode::OK, &json!("updated")),
        "{body}"
    );
    let files = rows(&app).await;
    assert_eq!(files.len(), 3);
    assert_eq!(
        (files[0].4, files[0].5, files[0].6, files[0].7),
        (Some(3), Some(200), Some(10), Some(10))
    );
    assert_eq!(files[1].3, Some(files[0].0));
    let strip = image::open(app.media_root.join(&files[1].8)).unwrap();
    assert_eq!((strip.width(), strip.height()), (10, 30));
    let objects: i64 = sqlx::query_scalar("SELECT count(DISTINCT storage_path) FROM files")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(objects, 3);
}

#[sqlx::test]
async fn unreadable_or_hostile_gifs_are_refused_by_name(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    gleamx_observation(&api).await;
    let mut broken = movie(6, 4, 5, 80);
    broken.truncate(broken.len() / 2);
    let mut huge = b"GIF89a".to_vec();
    huge.extend(60000u16.to_le_bytes());
    huge.extend(60000u16.to_le_bytes());
    huge.extend([0, 0, 0, 0x3B]);
    for (what, bytes, message) in [
        ("truncated", broken, "not a readable GIF: "),
        ("60000 × 60000", huge, "the GIF is 60000 × 60000 pixels"),
    ] {
        let (s, body) =
            put_candidate(&api, json!({"animation": "gif"}), vec![("gif", bytes)]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {body}");
        let msg = problem_at(&body, "files.animation").unwrap_or_default();
        assert!(msg.starts_with(message), "{what}: {body}");
    }
    // The strip's role is the server's.
    let (s, body) = put_candidate(
        &api,
        json!({"animation": "gif", "animation_strip": "png"}),
        vec![("gif", movie(6, 4, 2, 80)), ("png", png_bytes())],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        problem_at(&body, "files.animation_strip").is_some(),
        "{body}"
    );
    assert_eq!(rows(&app).await.len(), 0);
    assert_eq!(
        media_files(&app.media_root),
        0,
        "nothing left in the media folder"
    );
}

fn media_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    media_files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

#[sqlx::test]
async fn a_fits_cube_gets_a_gif_and_its_strip(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    vast_project(&api).await;
    let (s, body) = api
        .post_multipart(
            "/projects/vast/observations/SB50230/candidates",
            "candidates",
            json!({"candidates": [{"name": "J1", "beam": "beam00", "ra": 188.7, "dec": -45.2,
                                    "files": {"cube": "q1"}}]}),
            vec![("q1", fits_bytes(8, 6, 4, 2))],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let files = rows(&app).await;
    let roles: Vec<(&str, &str)> = files.iter().map(|r| (r.1.as_str(), r.2.as_str())).collect();
    assert_eq!(
        roles,
        [
            ("cube", "application/fits"),
            ("cube_gif", "image/gif"),
            ("cube_gif_strip", "image/png"),
            ("cube_png", "image/png"),
        ]
    );
    let (cube, gif, strip) = (&files[0], &files[1], &files[2]);
    assert_eq!(gif.3, Some(cube.0));
    assert_eq!(strip.3, Some(gif.0), "the strip is derived from the GIF");
    assert_eq!(
        (gif.4, gif.5, gif.6, gif.7),
        (
            Some(4),
            Some(vetter::fits::GIF_FRAME_DELAY_MS as i32),
            Some(8),
            Some(6)
        )
    );
    let img = image::open(app.media_root.join(&strip.8)).unwrap();
    assert_eq!((img.width(), img.height()), (8, 24));
}

//! The movie player for animated GIFs on the candidate page.
//!
//! Every stored GIF has a `<role>_strip` PNG beside it (see
//! `ingest::files`): its frames stacked top to bottom. The page shows the
//! GIF itself, which animates without any script; `assets/player.js` then
//! swaps in the strip and shows one frame at a time, with play/pause and a
//! slider. Partial: `templates/candidate/_gif_player.html`, rendering a
//! variable `player: &GifPlayer`.

use crate::db::candidates::FileRef;
use crate::web::paths;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GifPlayer {
    pub gif_url: String,
    pub strip_url: String,
    pub frames: i32,
    pub frame_ms: i32,
    /// Size of one frame of the strip.
    pub width: i32,
    pub height: i32,
    pub label: String,
}

impl GifPlayer {
    /// One player per GIF that has its strip and the numbers to cut it, in
    /// the order of `files`.
    pub fn from_files(files: &[FileRef]) -> Vec<GifPlayer> {
        files
            .iter()
            .filter(|f| f.content_type == "image/gif")
            .filter_map(|gif| {
                let strip_role = format!("{}_strip", gif.role);
                let strip = files.iter().find(|s| {
                    s.role == strip_role
                        && s.derived_from == Some(gif.id)
                        && s.content_type == "image/png"
                })?;
                let (frames, frame_ms, width, height) =
                    (gif.frames?, gif.frame_ms?, gif.width?, gif.height?);
                if frames < 1 || frame_ms < 1 || width < 1 || height < 1 {
                    return None;
                }
                let name = gif.role.replace('_', " ");
                Some(GifPlayer {
                    gif_url: paths::media_named(gif.id, &gif.role, &gif.content_type),
                    strip_url: paths::media_named(strip.id, &strip.role, &strip.content_type),
                    frames,
                    frame_ms,
                    width,
                    height,
                    label: if gif.owner == "candidate" {
                        name
                    } else {
                        format!("{} {name}", gif.owner)
                    },
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileId;
    use askama::Template;

    fn file(id: i64, role: &str, content_type: &str, derived_from: Option<i64>) -> FileRef {
        FileRef {
            id: FileId(id),
            role: role.into(),
            content_type: content_type.into(),
            size_bytes: 10,
            storage_path: String::new(),
            original_name: String::new(),
            derived_from: derived_from.map(FileId),
            owner: "candidate".into(),
            frames: None,
            frame_ms: None,
            width: None,
            height: None,
        }
    }

    fn animated(mut f: FileRef, frames: i32) -> FileRef {
        f.frames = Some(frames);
        f.frame_ms = Some(250);
        f.width = Some(64);
        f.height = Some(48);
        f
    }

    #[test]
    fn a_player_for_each_gif_with_its_own_strip() {
        let mut beam_gif = animated(file(7, "movie", "image/gif", None), 3);
        beam_gif.owner = "beam".into();
        let files = vec![
            animated(file(1, "animation", "image/gif", None), 12),
            file(2, "animation_strip", "image/png", Some(1)),
            file(3, "cube", "application/fits", None),
            animated(file(4, "cube_gif", "image/gif", Some(3)), 5),
            // A strip of another GIF does not count.
            file(5, "cube_gif_strip", "image/png", Some(99)),
            // No numbers: no player.
            file(6, "old", "image/gif", None),
            file(8, "old_strip", "image/png", Some(6)),
            beam_gif,
            file(9, "movie_strip", "image/png", Some(7)),
        ];
        let players = GifPlayer::from_files(&files);
        assert_eq!(
            players,
            [
                GifPlayer {
                    gif_url: "/media/1/animation.gif".into(),
                    strip_url: "/media/2/animation_strip.png".into(),
                    frames: 12,
                    frame_ms: 250,
                    width: 64,
                    height: 48,
                    label: "animation".into(),
                },
                GifPlayer {
                    gif_url: "/media/7/movie.gif".into(),
                    strip_url: "/media/9/movie_strip.png".into(),
                    frames: 3,
                    frame_ms: 250,
                    width: 64,
                    height: 48,
                    label: "beam movie".into(),
                },
            ]
        );
    }

    #[derive(Template)]
    #[template(
        source = r#"{% for player in players %}{% include "candidate/_gif_player.html" %}{% endfor %}"#,
        ext = "html"
    )]
    struct Page<'a> {
        players: &'a [GifPlayer],
    }

    #[test]
    fn the_partial_carries_what_the_script_needs() {
        let p = GifPlayer {
            gif_url: "/media/1/animation.gif".into(),
            strip_url: "/media/2/animation_strip.png".into(),
            frames: 12,
            frame_ms: 250,
            width: 64,
            height: 48,
            label: "a <b>".into(),
        };
        let html = Page {
            players: std::slice::from_ref(&p),
        }
        .render()
        .unwrap();
        for want in [
            r#"class="gif-player tile""#,
            r#"data-strip="/media/2/animation_strip.png""#,
            r#"data-frames="12""#,
            r#"data-frame-ms="250""#,
            r#"data-width="64""#,
            r#"data-height="48""#,
            r#"src="/media/1/animation.gif""#,
            r#"data-key="p""#,
            r#"max="11""#,
            "1 / 12",
        ] {
            assert!(html.contains(want), "{want} not in {html}");
        }
        assert!(!html.contains("<b>"), "the label is escaped: {html}");
        assert!(!html.contains("style="), "{html}");

        let still = GifPlayer { frames: 1, ..p };
        let html = Page {
            players: std::slice::from_ref(&still),
        }
        .render()
        .unwrap();
        assert!(
            !html.contains("gp-toggle"),
            "a still GIF has no controls: {html}"
        );
    }
}

//! Static files, compiled into the binary and served under content-hashed
//! URLs (`/static/<hash>/<name>`), so browsers may cache them for a year and
//! still see a new version the moment it ships.

use std::collections::HashMap;
use std::sync::OnceLock;

use poem::http::{header, Method, StatusCode};
use poem::web::Path;
use poem::{handler, Request, Response};
use rust_embed::RustEmbed;

use crate::web::paths;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Asset name → the full hex sha256 of its bytes.
fn hashes() -> &'static HashMap<String, String> {
    static HASHES: OnceLock<HashMap<String, String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        Assets::iter()
            .filter_map(|name| {
                let file = Assets::get(&name)?;
                let hex: String = file
                    .metadata
                    .sha256_hash()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Some((name.into_owned(), hex))
            })
            .collect()
    })
}

/// The URL to put in a page for asset `name`. An unknown name is a bug in
/// a template, caught by the test that renders every page.
pub fn url(name: &str) -> String {
    match hashes().get(name) {
        Some(h) => paths::static_asset(&h[..12], name),
        None => {
            tracing::error!(asset = name, "template names an asset that does not exist");
            paths::static_asset("missing", name)
        }
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[handler]
pub fn serve(req: &Request, Path((version, name)): Path<(String, String)>) -> Response {
    let (Some(file), Some(hash)) = (Assets::get(&name), hashes().get(&name)) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("no such asset");
    };
    let etag = format!("\"{hash}\"");
    // A page from before a deploy may ask for the old hash: give it today's
    // file but do not let it be cached under the old name for long.
    let cache = if hash.starts_with(&version) && version.len() >= 12 {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, cache)
        .header(header::CONTENT_TYPE, content_type(&name));
    if matches {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    let builder = builder.header(header::CONTENT_LENGTH, file.data.len());
    if req.method() == Method::HEAD {
        builder.finish()
    } else {
        builder.body(file.data.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn vendored_htmx_matches_its_recorded_checksum() {
        let recorded = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/htmx.min.js.sha256"
        ))
        .unwrap();
        let file = Assets::get("htmx.min.js").unwrap();
        let actual: String = Sha256::digest(&file.data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(recorded.split_whitespace().next().unwrap(), actual);
    }

    #[test]
    fn urls_carry_the_content_hash() {
        let u = url("app.css");
        assert!(u.starts_with("/static/") && u.ends_with("/app.css"), "{u}");
        assert_eq!(u.split('/').nth(2).unwrap().len(), 12);
    }
}

//! `Form<T>`: a urlencoded form body, read with a small limit and refused
//! when a field is not valid UTF-8.
//!
//! poem's own `Form` reads the whole body whatever its size, and decodes
//! invalid UTF-8 to U+FFFD, so a stray byte would be stored as a different
//! text than the one sent without a word. Every form handler takes this
//! one instead.

use poem::{FromRequest, Request, RequestBody};
use serde::de::DeserializeOwned;

use crate::web::plumbing::error::AppError;

/// The limit when no configuration is at hand; the server reads forms up to
/// its configured `max_form_bytes` (the route's body limit says the same).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub struct Form<T>(pub T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for Form<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let is_form = req
            .content_type()
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(AppError::BadRequest(
                "send the form as application/x-www-form-urlencoded".into(),
            )
            .into());
        }
        let limit = req
            .data::<crate::web::state::AppState>()
            .map_or(MAX_FORM_BYTES, |s| s.config.limits.max_form_bytes as usize);
        let bytes = body.take()?.into_bytes_limit(limit).await.map_err(|_| {
            AppError::TooLarge(format!(
                "the form is larger than {} KiB; nothing was saved",
                limit / 1024
            ))
        })?;
        Ok(Form(parse(&bytes)?))
    }
}

/// Decodes a urlencoded body into `T`, refusing a field whose decoded bytes
/// are not UTF-8 and naming it.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    for pair in bytes.split(|&b| b == b'&') {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let key = percent_decode(kv.next().unwrap_or_default());
        let value = percent_decode(kv.next().unwrap_or_default());
        let Ok(name) = std::str::from_utf8(&key) else {
            return Err(AppError::BadRequest(
                "a form field's name is not valid UTF-8; nothing was saved".into(),
            ));
        };
        if std::str::from_utf8(&value).is_err() {
            return Err(AppError::BadRequest(format!(
                "the field {name} is not valid UTF-8 text; nothing was saved"
            )));
        }
    }
    serde_urlencoded::from_bytes(bytes).map_err(|e| AppError::BadRequest(format!("{e}")))
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a
/// byte, and a `%` not followed by two hex digits stands for itself.
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let digit = |at: usize| s.get(at).copied().and_then(hex);
                match (digit(i + 1), digit(i + 2)) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Note {
        note: String,
    }

    #[test]
    fn valid_text_is_decoded() {
        let n: Note = parse(b"note=caf%C3%A9+au+lait").unwrap();
        assert_eq!(n.note, "café au lait");
        let n: Note = parse(b"note=100%").unwrap();
        assert_eq!(n.note, "100%");
    }

    #[test]
    fn invalid_utf8_is_refused_by_name() {
        let e = parse::<Note>(b"note=caf%E9").unwrap_err();
        assert!(e.to_string().contains("note"), "{e}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
        assert!(parse::<Note>(b"n%FFote=x").is_err());
    }
}

//! Reading an upload request: JSON alone, or multipart with one JSON part
//! and any number of file parts streamed to temporary files.

use poem::web::Multipart;
use poem::{FromRequest, Request, RequestBody};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::domain::Problem;
use crate::ingest::{Received, ReceivedFile};
use crate::media::WriteError;
use crate::web::plumbing::error::AppError;
use crate::web::state::AppState;

/// JSON documents are small; files travel as their own parts.
const MAX_JSON_BYTES: usize = 64 << 20;

pub struct UploadBody {
    pub json: Value,
    pub files: Received,
}

fn parse_json(bytes: &[u8], field: &str) -> Result<Value, AppError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        AppError::invalid(vec![Problem::new(field, format!("not valid JSON: {e}"))])
    })?;
    let mut problems = Vec::new();
    find_nul(&value, String::new(), &mut problems);
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(AppError::invalid(problems))
    }
}

/// PostgreSQL cannot store U+0000 in text, so a NUL anywhere in the JSON
/// is refused up front, named by its path, rather than by the database
/// half way through the request.
fn find_nul(v: &Value, path: String, problems: &mut Vec<Problem>) {
    const MAX_REPORTED: usize = 20;
    if problems.len() >= MAX_REPORTED {
        return;
    }
    let named = |path: &str| {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.to_string()
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => problems.push(Problem::new(
            named(&path),
            "text cannot contain the NUL character (U+0000)",
        )),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_nul(item, format!("{path}[{i}]"), problems);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    problems.push(Problem::new(
                        named(&path),
                        "a key cannot contain the NUL character (U+0000)",
                    ));
                    continue;
                }
                find_nul(item, child, problems);
            }
        }
        _ => {}
    }
}

impl UploadBody {
    pub async fn read(
        req: &Request,
        body: &mut RequestBody,
        json_part: &str,
    ) -> Result<Self, AppError> {
        let state = req
            .extensions()
            .get::<AppState>()
            .ok_or_else(|| AppError::internal("app state missing"))?;
        let content_type = req.content_type().unwrap_or("").to_string();
        if content_type.starts_with("application/json") {
            let bytes = body
                .take()
                .map_err(|_| AppError::BadRequest("the request body was already read".into()))?
                .into_bytes_limit(MAX_JSON_BYTES)
                .await
                .map_err(|_| {
                    AppError::TooLarge(format!("JSON bodies are limited to {MAX_JSON_BYTES} bytes"))
                })?;
            return Ok(Self {
                json: parse_json(&bytes, "body")?,
                files: Received::new(),
            });
        }
        if !content_type.starts_with("multipart/form-data") {
            return Err(AppError::BadRequest(
                "send Content-Type: application/json, or multipart/form-data with files".into(),
            ));
        }
        let media = &state.media;
        let mut multipart = Multipart::from_request(req, body)
            .await
            .map_err(|e| AppError::BadRequest(format!("not a readable multipart body: {e}")))?;
        let mut json = None;
        let mut files = Received::new();
        let mut total: u64 = 0;
        let max_total = state.config.max_upload_bytes;
        let max_parts = state.config.limits.max_upload_parts;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| AppError::BadRequest(format!("the multipart body is malformed: {e}")))?
        {
            let name = field.name().unwrap_or("").to_string();
            if name.is_empty() {
                return Err(AppError::invalid(vec![Problem::new(
                    "multipart",
                    "every part needs a name",
                )]));
            }
            if name == json_part {
                if json.is_some() {
                    return Err(AppError::invalid(vec![Problem::new(
                        name,
                        "this part name is used twice",
                    )]));
                }
                // Read no further than one byte past the limit: a huge part
                // is refused as soon as it shows itself, never held whole.
                let mut bytes = Vec::new();
                field
                    .into_async_read()
                    .take(MAX_JSON_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(|e| {
                        AppError::BadRequest(format!("part {name:?} could not be read: {e}"))
                    })?;
                if bytes.len() > MAX_JSON_BYTES {
                    return Err(AppError::TooLarge(format!(
                        "part {name:?} is larger than the limit of {MAX_JSON_BYTES} bytes for the JSON"
                    )));
                }
                json = Some(parse_json(&bytes, &name)?);
                continue;
            }
            if files.contains_key(&name) {
                return Err(AppError::invalid(vec![Problem::new(
                    name,
                    "this part name is used twice",
                )]));
            }
            // Counted before its temporary file exists.
            if files.len() >= max_parts {
                return Err(AppError::TooLarge(format!(
                    "a request may carry at most {max_parts} files; send the rest in another request"
                )));
            }
            let declared = field.content_type().map(str::to_string);
            let file_name = field.file_name().map(str::to_string);
            let limit = state
                .config
                .max_file_bytes
                .min(max_total.saturating_sub(total));
            let temp = media
                .write_temp(field.into_async_read(), limit)
                .await
                .map_err(|e| match e {
                    WriteError::TooLarge { .. } if total + limit >= max_total => {
                        AppError::TooLarge(format!(
                            "the upload is larger than the limit of {max_total} bytes per request"
                        ))
                    }
                    WriteError::TooLarge { limit } => AppError::TooLarge(format!(
                        "part {name:?} is larger than the limit of {limit} bytes per file"
                    )),
                    WriteError::Io(e) => {
                        AppError::Internal(anyhow::Error::new(e).context("writing an upload"))
                    }
                })?;
            total += temp.size;
            files.insert(
                name,
                ReceivedFile::new(temp, declared.as_deref(), file_name.as_deref()),
            );
        }
        let json = json.ok_or_else(|| {
            AppError::invalid(vec![Problem::new(
                json_part,
                format!("the multipart body needs a part named {json_part:?} holding the JSON"),
            )])
        })?;
        Ok(Self { json, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_anywhere_in_the_json_is_named_by_its_path() {
        let body = br#"{"candidates": [{"name": "ok"}, {"name": "J1", "attributes": {"note": "a\u0000b"}}],
                        "description": "x\u0000"}"#;
        let err = parse_json(body, "candidates").unwrap_err();
        let fields: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["candidates[1].attributes.note", "description"]);
        assert!(parse_json(br#"{"name": "clean"}"#, "x").is_ok());
        let err = parse_json(br#""\u0000""#, "x").unwrap_err();
        assert_eq!(err.problems()[0].field, "body");
    }
}

//! Reading an upload request: JSON alone, or multipart with one JSON part
//! and any number of file parts streamed to temporary files.

use std::collections::HashMap;

use poem::web::Multipart;
use poem::{FromRequest, Request, RequestBody};
use serde_json::Value;

use crate::domain::Problem;
use crate::media::{ContentKind, MediaStore, TempFile, WriteError};
use crate::web::error::AppError;
use crate::web::state::AppState;

/// JSON documents are small; files travel as their own parts.
const MAX_JSON_BYTES: usize = 64 << 20;

pub struct ReceivedFile {
    pub temp: TempFile,
    pub kind: Option<ContentKind>,
    pub original_name: String,
}

pub struct UploadBody {
    pub json: Value,
    /// Part name → file.
    pub files: HashMap<String, ReceivedFile>,
}

fn parse_json(bytes: &[u8], field: &str) -> Result<Value, AppError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::invalid(vec![Problem::new(field, format!("not valid JSON: {e}"))]))
}

/// File names from clients are kept only as a label, cut to something sane.
fn label(name: Option<&str>) -> String {
    name.unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect()
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
                files: HashMap::new(),
            });
        }
        if !content_type.starts_with("multipart/form-data") {
            return Err(AppError::BadRequest(
                "send Content-Type: application/json, or multipart/form-data with files".into(),
            ));
        }
        let media = MediaStore::new(&state.config.media_root);
        let mut multipart = Multipart::from_request(req, body)
            .await
            .map_err(|e| AppError::BadRequest(format!("not a readable multipart body: {e}")))?;
        let mut json = None;
        let mut files = HashMap::new();
        let mut total: u64 = 0;
        let max_total = state.config.max_upload_bytes;
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
                let bytes = field.bytes().await.map_err(|e| {
                    AppError::BadRequest(format!("part {name:?} could not be read: {e}"))
                })?;
                if bytes.len() > MAX_JSON_BYTES {
                    return Err(AppError::TooLarge(format!(
                        "part {name:?} is larger than {MAX_JSON_BYTES} bytes"
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
            let declared = field.content_type().map(str::to_string);
            let original_name = label(field.file_name());
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
            let kind = crate::media::classify(&temp.head, declared.as_deref());
            files.insert(
                name,
                ReceivedFile {
                    temp,
                    kind,
                    original_name,
                },
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

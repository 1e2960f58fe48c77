//! Files as they arrive with a batch, before anything is decided about them.

use std::collections::HashMap;

use crate::media::{classify, ContentKind, TempFile};

/// The files of one request, by the part name its JSON uses for them.
pub type Received = HashMap<String, ReceivedFile>;

pub struct ReceivedFile {
    pub temp: TempFile,
    /// What the first bytes say; `None` is none of the kinds stored.
    pub kind: Option<ContentKind>,
    pub original_name: String,
    /// Its name or declared type says FITS. The bytes decide the type, but
    /// a pipeline that names a PNG `.fits` has a bug worth hearing about.
    pub claims_fits: bool,
}

impl ReceivedFile {
    /// `declared` is the type the client gave, if any; `name` its file name.
    pub fn new(temp: TempFile, declared: Option<&str>, name: Option<&str>) -> Self {
        let kind = classify(&temp.head, declared);
        let original_name = label(name);
        let lower = original_name.to_ascii_lowercase();
        let claims_fits = [".fits", ".fit", ".fts"].iter().any(|e| lower.ends_with(e))
            || declared
                .is_some_and(|d| d.starts_with("application/fits") || d.starts_with("image/fits"));
        Self {
            temp,
            kind,
            original_name,
            claims_fits,
        }
    }
}

/// File names from clients are kept only as a label, cut to something sane.
fn label(name: Option<&str>) -> String {
    name.unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect()
}

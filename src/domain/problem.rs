//! A named problem with some input.

/// One thing wrong with the input: which field (a JSON-path-like name such
/// as `candidates[3].ra`, or a file's part name) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

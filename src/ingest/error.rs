use crate::domain::upload::Problems;
use crate::domain::Problem;

/// Why a batch was not stored. Nothing of it was: the rows roll back and
/// the files this request published are withdrawn.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch is wrong; each problem names its field.
    #[error("{}", summary(.0))]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The server's fault (a preview could not be written, a job died).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IngestError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Problem::new(field, message)])
    }
}

impl From<Problem> for IngestError {
    fn from(p: Problem) -> Self {
        Self::Invalid(vec![p])
    }
}

fn summary(problems: &[Problem]) -> String {
    match problems {
        [] => "the batch is invalid".into(),
        [one] => format!("{}: {}", one.field, one.message),
        [first, ..] => format!(
            "{} problems, the first: {}: {}",
            problems.len(),
            first.field,
            first.message
        ),
    }
}

/// Problems found while checking become one refusal.
pub(crate) fn refuse_any(p: Problems) -> Result<(), IngestError> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(IngestError::Invalid(p.0))
    }
}

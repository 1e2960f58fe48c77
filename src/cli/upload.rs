//! `vetter upload`: the upload client. (Being written.)

use super::CliError;

pub async fn run(_args: &[String]) -> Result<(), CliError> {
    Err(CliError::Usage("upload is not available yet".into()))
}

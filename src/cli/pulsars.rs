//! `vetter pulsars load FILE`. (Being written.)

use super::CliError;

pub async fn run(_args: &[String]) -> Result<(), CliError> {
    Err(CliError::Usage("pulsars is not available yet".into()))
}

//! `vetter model train PROJECT`: train a project's real/bogus model now,
//! whatever its "retrain every N ratings" says, and score its candidates
//! if the new model is not worse than the current one.

use super::CliError;
use crate::config::Source;
use crate::db::projects;
use crate::model::run::{self, Outcome};

pub const USAGE: &str = "\
vetter model: the real/bogus model of a project

Usage: vetter model train PROJECT

Commands:
  train PROJECT  Train the project's (its slug) model on its current
                 ratings: five-fold cross-validation for its ROC
                 AUC, precision at 95% recall and calibration, then one model
                 on every label. It replaces the current model and scores
                 every candidate only if it is not worse. Prints the
                 outcome. Needs DATABASE_URL; applies pending migrations.
  help           Show this text
";

pub async fn run(args: &[String]) -> Result<(), CliError> {
    match args {
        [cmd] if cmd == "help" => {
            print!("{USAGE}");
            Ok(())
        }
        [cmd, slug] if cmd == "train" => train(slug).await,
        [cmd] if cmd == "train" => Err(usage("model train needs a PROJECT")),
        [] => Err(usage("model needs a command")),
        [other, ..] => Err(usage(&format!("unknown model command {other:?}"))),
    }
}

fn usage(message: &str) -> CliError {
    CliError::Usage(format!("{message}\n\n{USAGE}"))
}

async fn train(slug: &str) -> Result<(), CliError> {
    let src = Source::from_env()?;
    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    let project = {
        let mut conn = pool.acquire().await.map_err(anyhow::Error::from)?;
        projects::by_slug(&mut conn, slug)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| CliError::Usage(format!("no project {slug:?}")))?
    };
    match run::train(&pool, project.id).await? {
        Outcome::Trained {
            version,
            accepted,
            auc,
            note,
            scored,
        } => {
            println!(
                "{slug}: model {version}, cross-validated AUC {auc:.3}, {}; {note}",
                if accepted {
                    format!("accepted, {scored} candidates scored")
                } else {
                    "not accepted".to_string()
                }
            );
            Ok(())
        }
        Outcome::NotEnough(why) => Err(CliError::Failed(anyhow::anyhow!("{slug}: {why}"))),
        Outcome::Busy => Err(CliError::Failed(anyhow::anyhow!(
            "{slug}: another process is training this project now; try again when it is done"
        ))),
    }
}

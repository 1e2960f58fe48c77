//! `vetter groups recompute PROJECT|--all`: make a project's groups of
//! candidates again from their positions (after a migration brought
//! candidates from before groups existed, or to split groups a moved
//! candidate left joined).

use std::time::Instant;

use super::CliError;
use crate::config::Source;
use crate::db::{groups, projects};

pub const USAGE: &str = "\
vetter groups: groups of candidates (within the project's radius of each other)

Usage: vetter groups recompute PROJECT
       vetter groups recompute --all

Commands:
  recompute PROJECT  Make every group of the project (its slug) again from
                     its candidates' positions and its group radius, in one
                     transaction; prints how many candidates changed group.
                     Needs DATABASE_URL; applies pending migrations.
  recompute --all    The same for every project
  help               Show this text
";

pub async fn run(args: &[String]) -> Result<(), CliError> {
    match args {
        [cmd] if cmd == "help" => {
            print!("{USAGE}");
            Ok(())
        }
        [cmd, which] if cmd == "recompute" => recompute(which).await,
        [cmd] if cmd == "recompute" => Err(usage("groups recompute needs a PROJECT or --all")),
        [] => Err(usage("groups needs a command")),
        [other, ..] => Err(usage(&format!("unknown groups command {other:?}"))),
    }
}

fn usage(message: &str) -> CliError {
    CliError::Usage(format!("{message}\n\n{USAGE}"))
}

async fn recompute(which: &str) -> Result<(), CliError> {
    let src = Source::from_env()?;
    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    let mut conn = pool.acquire().await?;
    let chosen: Vec<(crate::domain::ProjectId, String)> = if which == "--all" {
        groups::projects(&mut conn).await?
    } else {
        let p = projects::by_slug(&mut conn, which)
            .await?
            .ok_or_else(|| CliError::Usage(format!("no project {which:?}")))?;
        vec![(p.id, p.slug)]
    };
    for (id, slug) in chosen {
        let started = Instant::now();
        let r = groups::recompute(&mut conn, id).await?;
        println!(
            "{slug}: {} candidates in {} groups; {} changed group ({:.1} s)",
            r.candidates,
            r.groups,
            r.changed,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

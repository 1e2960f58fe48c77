//! `vetter pulsars load FILE`: make the pulsars table match a `psrcat.db`.

use std::path::Path;

use anyhow::Context;

use super::CliError;
use crate::catalogue::psrcat;
use crate::config::Source;
use crate::db::pulsars;

const USAGE: &str = "\
vetter pulsars: the local copy of the ATNF pulsar catalogue

Usage: vetter pulsars load FILE

Commands:
  load FILE   Make the pulsars table match FILE, the catalogue's psrcat.db
              (member psrcat_tar/psrcat.db of psrcat_pkg.tar.gz from the ATNF
              site). In one transaction, new pulsars are added, changed ones
              updated and pulsars no longer in FILE removed; catalogue
              `psrcat` is replaced by the same pulsars. Records without
              a name or a position are skipped and listed on stderr. Prints
              what changed. Needs DATABASE_URL; applies pending migrations.
  help        Show this text
";

pub async fn run(args: &[String]) -> Result<(), CliError> {
    match args {
        [cmd] if cmd == "help" => {
            print!("{USAGE}");
            Ok(())
        }
        [cmd, file] if cmd == "load" => load(file).await,
        [cmd] if cmd == "load" => Err(usage("pulsars load needs a FILE (a psrcat.db)")),
        [cmd, _, extra, ..] if cmd == "load" => Err(usage(&format!(
            "pulsars load takes one FILE; unexpected argument {extra:?}"
        ))),
        [] => Err(usage("pulsars needs a command")),
        [other, ..] => Err(usage(&format!("unknown pulsars command {other:?}"))),
    }
}

fn usage(message: &str) -> CliError {
    CliError::Usage(format!("{message}\n\n{USAGE}"))
}

async fn load(file: &str) -> Result<(), CliError> {
    let src = Source::from_env()?;
    let (found, skipped) =
        psrcat::read(Path::new(file)).with_context(|| format!("reading {file}"))?;
    for s in &skipped {
        eprintln!("vetter: {file}: skipped {s}");
    }
    if found.is_empty() {
        return Err(CliError::Failed(anyhow::anyhow!(
            "{file}: no pulsars found ({} skipped); the pulsars table is unchanged",
            records(skipped.len())
        )));
    }
    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    let s = pulsars::upsert_all(&pool, &found).await?;
    let origin = Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let c = crate::db::catalogues::load_pulsars(&pool, &found, &origin).await?;
    println!(
        "pulsars: {} inserted, {} updated, {} unchanged, {} removed; {} skipped",
        s.inserted,
        s.updated,
        s.unchanged,
        s.removed,
        records(skipped.len())
    );
    println!(
        "catalogue {}: {} rows, {} matches in {} projects",
        crate::db::catalogues::PULSARS,
        c.rows,
        c.matches,
        c.projects
    );
    Ok(())
}

fn records(n: usize) -> String {
    format!("{n} record{}", if n == 1 { "" } else { "s" })
}

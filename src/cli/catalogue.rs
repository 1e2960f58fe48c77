//! `vetter catalogue load|list|remove`: the reference catalogues candidates
//! are matched against.

use std::path::PathBuf;

use tokio::sync::mpsc;

use super::CliError;
use crate::catalogue::table::{ColumnChoice, Source as CatalogueSource, TableReader};
use crate::config::Source;
use crate::db::catalogues::{self, NewCatalogue};
use crate::domain::names::CatalogueName;

const USAGE: &str = "\
vetter catalogue: reference catalogues (RACS, Gaia, PSRCAT, ...) that
candidates are matched against

Usage: vetter catalogue load NAME FILE [--name COL] [--ra COL] [--dec COL]
                            [--description TEXT]
       vetter catalogue list
       vetter catalogue remove NAME

Commands:
  load NAME FILE  Load FILE as catalogue NAME (lowercase letters, digits,
                  '_', '.', '-'), replacing it in one transaction if it
                  exists. FILE is a VOTable (TABLEDATA), a FITS binary table
                  or a CSV (header line; `flux [mJy]` gives a unit). The
                  name, RA and Dec columns are guessed from UCDs and common
                  names unless given; RA/Dec in degrees (or hours/radians by
                  their unit, or sexagesimal text). Every other numeric
                  column is kept as a named value. Any bad row refuses the
                  whole file, naming the row (line, for CSV). The projects
                  that match against NAME are matched again.
  list            The catalogues, their sizes and when they were loaded
  remove NAME     Remove a catalogue and its matches (associations made
                  with it keep their name and position)
  help            Show this text

Needs DATABASE_URL; applies pending migrations.
";

/// Sources per block sent to the database while the file is read.
const BLOCK: usize = 10_000;

pub async fn run(args: &[String]) -> Result<(), CliError> {
    match args.first().map(String::as_str) {
        Some("help") | Some("--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some("load") => load(&args[1..]).await,
        Some("list") if args.len() == 1 => list().await,
        Some("remove") => match &args[1..] {
            [name] => remove(name).await,
            _ => Err(usage("catalogue remove takes one NAME")),
        },
        Some(other) => Err(usage(&format!("unknown catalogue command {other:?}"))),
        None => Err(usage("catalogue needs a command")),
    }
}

fn usage(message: &str) -> CliError {
    CliError::Usage(format!("{message}\n\n{USAGE}"))
}

fn parse_name(s: &str) -> Result<CatalogueName, CliError> {
    CatalogueName::parse(s).map_err(|p| usage(&p.message))
}

struct LoadArgs {
    name: CatalogueName,
    file: PathBuf,
    choice: ColumnChoice,
    description: String,
}

fn parse_load(args: &[String]) -> Result<LoadArgs, CliError> {
    let mut positional = Vec::new();
    let mut choice = ColumnChoice::default();
    let mut description = String::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match a.as_str() {
            "--name" => choice.name = Some(value("--name")?),
            "--ra" => choice.ra = Some(value("--ra")?),
            "--dec" => choice.dec = Some(value("--dec")?),
            "--description" => description = value("--description")?,
            flag if flag.starts_with("--") => return Err(usage(&format!("unknown flag {flag:?}"))),
            _ => positional.push(a.clone()),
        }
    }
    let [name, file] = positional.as_slice() else {
        return Err(usage("catalogue load needs a NAME and a FILE"));
    };
    if description.chars().count() > 2000 {
        return Err(usage("--description is at most 2000 characters"));
    }
    Ok(LoadArgs {
        name: parse_name(name)?,
        file: PathBuf::from(file),
        choice,
        description,
    })
}

async fn load(args: &[String]) -> Result<(), CliError> {
    let a = parse_load(args)?;
    let src = Source::from_env()?;
    let file = a.file.display().to_string();
    // Read on its own thread while the rows are written; opened first, so a
    // file that cannot be read fails before the database is touched.
    let (opened, layout) = tokio::sync::oneshot::channel();
    let (send, blocks) = mpsc::channel(4);
    let (path, choice) = (a.file.clone(), a.choice.clone());
    let reading = std::thread::spawn(move || match TableReader::open(&path, &choice) {
        Err(e) => {
            let _ = opened.send(Err(e.to_string()));
        }
        Ok(reader) => {
            let l = reader.layout();
            let _ = opened.send(Ok((l.kept.clone(), l.chosen.clone())));
            // A reader that panics (cfitsio's bindings can) must not look
            // like the end of the file: that would commit half a catalogue.
            let read_all = std::panic::AssertUnwindSafe(|| read(reader, &send));
            if std::panic::catch_unwind(read_all).is_err() {
                let _ = send.blocking_send(Err("reading the file failed part way".into()));
            }
        }
    });
    let (columns, [name_col, ra_col, dec_col]) = layout
        .await
        .map_err(|_| anyhow::anyhow!("the file reader stopped"))?
        .map_err(|e| CliError::Failed(anyhow::anyhow!("{file}: {e}; nothing was loaded")))?;

    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    let origin = a
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new = NewCatalogue {
        name: &a.name,
        description: &a.description,
        origin: &origin,
        columns: &columns,
    };
    let loaded = catalogues::load(&pool, &new, blocks).await;
    let _ = reading.join();
    let s = loaded.map_err(|e| CliError::Failed(e.context(format!("{file}: not loaded"))))?;
    println!(
        "catalogue {}: {} rows loaded from {file} (name {name_col}, RA {ra_col}, Dec {dec_col}; values {}){}; {} matches in {} project{}",
        a.name,
        s.rows,
        if columns.is_empty() {
            "none".to_string()
        } else {
            columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        },
        s.replaced
            .map(|n| format!(", replacing {n}"))
            .unwrap_or_default(),
        s.matches,
        s.projects,
        if s.projects == 1 { "" } else { "s" },
    );
    Ok(())
}

/// Sends the file's sources in blocks; the first bad row ends it.
fn read(mut reader: TableReader, send: &mpsc::Sender<Result<Vec<CatalogueSource>, String>>) {
    let mut block = Vec::with_capacity(BLOCK);
    while let Some(next) = reader.next_source() {
        match next {
            Ok(s) => block.push(s),
            Err(e) => {
                let _ = send.blocking_send(Err(e.to_string()));
                return;
            }
        }
        if block.len() == BLOCK {
            let full = std::mem::replace(&mut block, Vec::with_capacity(BLOCK));
            if send.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    if !block.is_empty() {
        let _ = send.blocking_send(Ok(block));
    }
}

async fn list() -> Result<(), CliError> {
    let src = Source::from_env()?;
    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    let all = catalogues::list(&pool).await.map_err(anyhow::Error::from)?;
    if all.is_empty() {
        println!("no catalogues: load one with `vetter catalogue load NAME FILE`");
    }
    for c in all {
        println!(
            "{}\t{} rows\tloaded {}\tfrom {}\tvalues: {}",
            c.name,
            c.row_count,
            c.loaded_at.date(),
            if c.origin.is_empty() { "-" } else { &c.origin },
            c.columns
                .iter()
                .map(|k| if k.unit.is_empty() {
                    k.name.clone()
                } else {
                    format!("{} [{}]", k.name, k.unit)
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

async fn remove(name: &str) -> Result<(), CliError> {
    let name = parse_name(name)?;
    let src = Source::from_env()?;
    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    match catalogues::remove(&pool, &name)
        .await
        .map_err(anyhow::Error::from)?
    {
        Some(n) => {
            println!("catalogue {name} removed ({n} rows)");
            Ok(())
        }
        None => Err(CliError::Failed(anyhow::anyhow!(
            "there is no catalogue {name:?}"
        ))),
    }
}

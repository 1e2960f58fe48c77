//! The `vetter` command line. Small enough to parse by hand: each command
//! takes a few flags, and `vetter --help` / `vetter COMMAND --help` document them.

mod admin;
mod backup;
mod catalogue;
mod check;
pub mod demo;
mod groups;
mod healthcheck;
mod media;
mod model;
mod pulsars;
mod restore;
pub mod upload;

use std::process::ExitCode;

use crate::config::{Config, ConfigError, Source};

const USAGE: &str = "\
vetter: rate radio transient candidates

Usage: vetter <COMMAND> [OPTIONS]

Commands:
  serve          Apply pending migrations, create the admin on an empty users
                 table (from VETTER_ADMIN_USERNAME / VETTER_ADMIN_PASSWORD),
                 and serve on VETTER_BIND until SIGINT/SIGTERM
  migrate        Apply pending database migrations and exit
  create-admin   Create an administrator account; asks for the username and
                 password, or with --noinput reads VETTER_ADMIN_USERNAME and
                 VETTER_ADMIN_PASSWORD
  gen-secret     Print a new random value for VETTER_SECRET_KEY
  upload --url URL DIR
                 Send a folder of candidates to a vetter server (see
                 vetter upload --help and docs/upload-client.md)
  demo [--if-empty]
                 Fill an empty database with demo projects, candidates,
                 pulsars and two reviewer accounts (printed)
  healthcheck    Exit 0 if the running server's /healthz answers 200
                 (--url URL, default http://VETTER_BIND/healthz)
  pulsars load FILE
                 Make the pulsars table match FILE, the ATNF catalogue's
                 psrcat.db (adds, updates and removes in one transaction;
                 lists skipped records on stderr)
  catalogue load NAME FILE | list | remove NAME
                 Reference catalogues (VOTable, FITS table or CSV) that
                 candidates are matched against (vetter catalogue help)
  groups recompute PROJECT|--all
                 Make a project's groups of candidates (those within its
                 group radius of each other) again from their positions
  model train PROJECT
                 Train the project's real/bogus model now and score its
                 candidates if it is not worse (vetter model help)
  token create USERNAME [--name LABEL] [--scope read,upload]
                 Print a new API token for that user (for automation); it may
                 upload unless --scope says read, or read,upload
  check [--repair] [--grace DURATION] [--sizes-only]
                 Compare the media store (folder or bucket) with the file
                 rows: orphan files,
                 rows whose file is missing or damaged; --repair fixes them
  backup DIR     Write a consistent copy of the database (pg_dump) and the
                 media files it uses, with a manifest of checksums
  restore DIR [--force]
                 Put a backup back into an empty database and the media
                 store, verifying every checksum
  media migrate --to URL [--from URL]
                 Copy the media objects to another store (folder or
                 s3://bucket/prefix), verified, while the app stays up
  help           Show this text

Settings come from the environment or a .env file in the working directory:
  DATABASE_URL           postgres://user:pass@host:port/db (required)
  VETTER_BIND            address to listen on (default 127.0.0.1:8000)
  VETTER_MEDIA_ROOT      folder for uploaded files (required by serve)
  VETTER_SECRET_KEY      at least 32 characters (required by serve)
  VETTER_PUBLIC_URL      URL people use; https:// turns on secure cookies
  VETTER_STAGING         1/0/true/false: show the staging banner
  VETTER_BEHIND_PROXY    1/0/true/false: trust X-Real-IP from our nginx
  VETTER_ADMIN_USERNAME, VETTER_ADMIN_PASSWORD
  RUST_LOG               log filter (default info)
";

pub async fn main(args: Vec<String>) -> ExitCode {
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let wants_help = rest.iter().any(|a| a == "--help" || a == "-h");
    if wants_help || matches!(command, "help" | "--help" | "-h") {
        match command {
            "upload" => print!("{}", upload::USAGE),
            "check" => print!("{}", check::USAGE),
            "groups" => print!("{}", groups::USAGE),
            "model" => print!("{}", model::USAGE),
            "backup" => print!("{}", backup::USAGE),
            "restore" => print!("{}", restore::USAGE),
            "media" => print!("{}", media::USAGE),
            _ => print!("{USAGE}"),
        }
        return ExitCode::SUCCESS;
    }
    let result = match command {
        "serve" => serve().await,
        "migrate" => migrate().await,
        "create-admin" => admin::create_admin(rest).await,
        "gen-secret" => {
            println!("{}", crate::random_hex(32));
            Ok(())
        }
        "healthcheck" => healthcheck::run(rest).await,
        "upload" => upload::run(rest).await,
        "pulsars" => pulsars::run(rest).await,
        "catalogue" => catalogue::run(rest).await,
        "token" => admin::token(rest).await,
        "demo" => demo::run(rest).await,
        "check" => check::run(rest).await,
        "groups" => groups::run(rest).await,
        "model" => model::run(rest).await,
        "backup" => backup::run(rest).await,
        "restore" => restore::run(rest).await,
        "media" => media::run(rest).await,
        other => Err(CliError::Usage(format!("unknown command {other:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Config(e)) => {
            eprintln!("vetter: configuration: {e}");
            ExitCode::from(78)
        }
        Err(CliError::Usage(m)) => {
            eprintln!("vetter: {m}\nRun `vetter --help` for usage.");
            ExitCode::from(2)
        }
        Err(CliError::Failed(e)) => {
            eprintln!("vetter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
pub enum CliError {
    Config(ConfigError),
    Usage(String),
    Failed(anyhow::Error),
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Config(e)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Failed(e)
    }
}

impl From<sqlx::Error> for CliError {
    fn from(e: sqlx::Error) -> Self {
        CliError::Failed(e.into())
    }
}

/// Flags of the form `--name value`; anything else is refused.
fn flag_value<'a>(args: &'a [String], name: &str) -> Result<Option<&'a str>, CliError> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .map(|v| Some(v.as_str()))
            .ok_or_else(|| CliError::Usage(format!("{name} needs a value"))),
    }
}

async fn connect(src: &Source) -> Result<sqlx::PgPool, CliError> {
    let url = Config::database_url(src)?;
    Ok(crate::db::lazy_pool(&url)?)
}

async fn migrate() -> Result<(), CliError> {
    crate::telemetry::init();
    let src = Source::from_env()?;
    let pool = connect(&src).await?;
    crate::db::migrate(&pool).await?;
    println!("migrations applied");
    Ok(())
}

async fn serve() -> Result<(), CliError> {
    let src = Source::from_env()?;
    let config = Config::from_source(&src)?;
    crate::telemetry::init();
    std::fs::create_dir_all(&config.media_root).map_err(|e| {
        CliError::Config(ConfigError::new(format!(
            "VETTER_MEDIA_ROOT={}: cannot create: {e}",
            config.media_root.display()
        )))
    })?;
    let pool = crate::db::lazy_pool(&config.database_url)?;
    crate::db::migrate(&pool).await?;
    if let Some(name) = admin::ensure_first_admin(&pool, &config).await? {
        tracing::info!(username = %name, "created the first administrator");
    }
    let app = crate::startup::Application::build(config.clone(), pool).await?;
    tracing::info!(url = %config.public_url, port = app.port(), "serving");
    app.run_until(crate::startup::shutdown_signal())
        .await
        .map_err(|e| CliError::Failed(e.into()))
}

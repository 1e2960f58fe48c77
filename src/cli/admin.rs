//! Creating administrators from the command line and at first start.

use std::io::{BufRead, Write};

use anyhow::Context;
use sqlx::PgPool;

use super::CliError;
use crate::config::{Config, ConfigError, Secret, Source};
use crate::db::users;
use crate::domain::token::TokenScopes;
use crate::domain::{NewPassword, Role, Username};

/// On an empty users table, creates the admin named by the settings, so a
/// new deployment can be signed into without a manual step.
pub async fn ensure_first_admin(pool: &PgPool, config: &Config) -> anyhow::Result<Option<String>> {
    let (Some(name), Some(password)) = (&config.admin_username, &config.admin_password) else {
        return Ok(None);
    };
    if users::count(pool).await? > 0 {
        return Ok(None);
    }
    let (username, password) = parse_admin(name, password.expose())?;
    create(pool, &username, &password).await?;
    Ok(Some(username.to_string()))
}

fn parse_admin(name: &str, password: &str) -> Result<(Username, NewPassword), ConfigError> {
    let username = name
        .parse::<Username>()
        .map_err(|e| ConfigError::new(format!("VETTER_ADMIN_USERNAME: {e}")))?;
    let password = NewPassword::parse(password, username.as_str())
        .map_err(|e| ConfigError::new(format!("VETTER_ADMIN_PASSWORD: {e}")))?;
    Ok((username, password))
}

async fn create(pool: &PgPool, username: &Username, password: &NewPassword) -> anyhow::Result<()> {
    let hash = crate::auth::password::hash(Secret::new(password.expose())).await?;
    users::insert(pool, username, &hash, Role::Admin)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                anyhow::anyhow!("a user named {username} already exists")
            }
            other => anyhow::Error::new(other).context("creating the administrator"),
        })?;
    Ok(())
}

pub async fn create_admin(args: &[String]) -> Result<(), CliError> {
    let src = Source::from_env()?;
    let noinput = args.iter().any(|a| a == "--noinput");
    if let Some(extra) = args.iter().find(|a| *a != "--noinput") {
        return Err(CliError::Usage(format!(
            "create-admin: unexpected argument {extra:?}"
        )));
    }
    let (username, password) = if noinput {
        let cfg_name = std::env::var("VETTER_ADMIN_USERNAME").ok();
        let cfg_pass = std::env::var("VETTER_ADMIN_PASSWORD").ok();
        match (cfg_name, cfg_pass) {
            (Some(n), Some(p)) => parse_admin(&n, &p)?,
            (None, _) => {
                return Err(ConfigError::new("VETTER_ADMIN_USERNAME is not set".into()).into())
            }
            (_, None) => {
                return Err(ConfigError::new("VETTER_ADMIN_PASSWORD is not set".into()).into())
            }
        }
    } else {
        let name = prompt("Username: ", false)?;
        let pass = prompt("Password: ", true)?;
        let again = prompt("Password again: ", true)?;
        if pass != again {
            return Err(CliError::Usage("the passwords differ".into()));
        }
        parse_admin(&name, &pass).map_err(|e| CliError::Usage(e.to_string()))?
    };
    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    create(&pool, &username, &password).await?;
    println!("created administrator {username}");
    Ok(())
}

/// Reads one line from the terminal, with echo off for passwords.
fn prompt(label: &str, secret: bool) -> Result<String, CliError> {
    let tty = secret
        && std::process::Command::new("stty")
            .arg("-echo")
            .status()
            .is_ok_and(|s| s.success());
    eprint!("{label}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from the terminal");
    if tty {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `vetter token create USERNAME [--name LABEL] [--scope read,upload]`:
/// prints a new API token (upload only unless told otherwise, as tokens
/// made here always were).
pub async fn token(args: &[String]) -> Result<(), CliError> {
    let (Some(verb), Some(username)) = (args.first(), args.get(1)) else {
        return Err(CliError::Usage(
            "usage: vetter token create USERNAME [--name LABEL] [--scope read,upload]".into(),
        ));
    };
    if verb != "create" {
        return Err(CliError::Usage(format!(
            "unknown token command {verb:?}: use create"
        )));
    }
    let label = super::flag_value(args, "--name")?.unwrap_or("command line");
    let scope = super::flag_value(args, "--scope")?;
    let scopes = match scope {
        None => TokenScopes::UPLOAD,
        Some(s) => TokenScopes::parse_list(s).map_err(CliError::Usage)?,
    };
    if let Some(extra) = args[2..].iter().find(|a| {
        !matches!(a.as_str(), "--name" | "--scope")
            && a.as_str() != label
            && Some(a.as_str()) != scope
    }) {
        return Err(CliError::Usage(format!(
            "token create: unexpected argument {extra:?}"
        )));
    }
    if label.trim().is_empty() || label.chars().count() > 100 {
        return Err(CliError::Usage("--name takes 1 to 100 characters".into()));
    }
    let name: Username = username.parse().map_err(CliError::Usage)?;
    let src = Source::from_env()?;
    let pool = super::connect(&src).await?;
    crate::db::migrate(&pool).await?;
    let (user, _) = users::credentials(&pool, &name)
        .await?
        .ok_or_else(|| CliError::Failed(anyhow::anyhow!("there is no user {name}")))?;
    if !user.active {
        return Err(CliError::Failed(anyhow::anyhow!(
            "user {name} is deactivated"
        )));
    }
    let (token, _) = crate::db::api_tokens::create(&pool, user.id, label.trim(), scopes).await?;
    if scopes.upload() && !(user.can_upload || user.is_admin()) {
        eprintln!("note: {name} may not upload until an administrator allows it");
    }
    println!("{token}");
    Ok(())
}

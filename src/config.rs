//! Settings, read once from the environment (and an optional `.env` file).
//!
//! Every malformed or missing setting is reported as one line naming it, so a
//! start-up failure in a container log says exactly what to fix.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::voevent;

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    /// The media folder: all of media, or with a bucket only the uploads
    /// in flight.
    pub media_root: PathBuf,
    /// Where published media objects live.
    pub media_location: MediaLocation,
    /// Used to derive keys (CSRF tokens are random per session; this keys
    /// anything that must be stable across restarts).
    pub secret_key: Secret,
    /// The URL people use to reach the site; `https` turns on secure cookies.
    pub public_url: String,
    pub staging: bool,
    /// Trust `X-Real-IP` from the reverse proxy for the client address.
    pub behind_proxy: bool,
    pub admin_username: Option<String>,
    pub admin_password: Option<Secret>,
    pub login_throttle: LoginThrottle,
    pub session_idle: Duration,
    /// Largest single uploaded file.
    pub max_file_bytes: u64,
    /// Largest upload request (all its files together).
    pub max_upload_bytes: u64,
    /// Behind nginx: the internal location that serves the media folder
    /// (`X-Accel-Redirect`), so the app checks access and nginx sends bytes.
    pub media_accel_prefix: Option<String>,
    /// Where the browser finds Firefly (its `?api=` URL API), and where
    /// Firefly finds the media folder on its own file system.
    pub firefly_url: String,
    pub firefly_media_path: String,
    /// SIMBAD's TAP service, asked for a cone around each candidate on its
    /// page; `None` (the default) asks nothing outside the site.
    pub simbad_tap_url: Option<String>,
    /// How often the server looks for projects whose model is due for
    /// training and for candidates to score; `None` leaves training to
    /// `vetter model train`.
    pub model_check: Option<Duration>,
    /// Operator-written release notes shown on a staging site's home page.
    pub staging_details: PathBuf,
    /// VOEvents of candidates settled as real; `None` (no authority set)
    /// turns them off.
    pub voevent: Option<voevent::Settings>,
    pub limits: Limits,
    /// Webhooks, Slack, e-mail and the VOEvent broker.
    pub notify: NotifySettings,
}

/// Notifications (`crate::notify`) and the outbound policy every request
/// the server makes on a target's behalf obeys (`crate::outbound`).
#[derive(Clone, Debug)]
pub struct NotifySettings {
    /// How often this host looks for deliveries that are due; `None`: it
    /// sends none (another host may).
    pub poll: Option<Duration>,
    /// The hosts a target may name (`VETTER_NOTIFY_ALLOWED_HOSTS`, reached
    /// only at public addresses; empty: none) and those that may also be
    /// at private, loopback or link-local addresses
    /// (`VETTER_NOTIFY_PRIVATE_HOSTS`, each named exactly).
    pub hosts: crate::outbound::HostRules,
    /// Connecting, and one whole delivery (request and answer, or an SMTP
    /// conversation).
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Tries before a delivery is given up (a retry from the admin page
    /// allows one more).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further one.
    pub retry_base: Duration,
    /// Seals target URLs in the database (`notify::seal`).
    pub url_key: Option<Secret>,
    /// Signs webhook bodies (HMAC-SHA256) so that receivers can check them.
    pub signing_secret: Option<Secret>,
    pub smtp: Option<SmtpSettings>,
    /// Where VOEvents are posted (`notify::queue_voevent`).
    pub voevent_broker_url: Option<String>,
    /// The daily summaries are queued from this time of day (UTC), hours
    /// and minutes.
    pub daily_summary_at: (u8, u8),
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            poll: Some(Duration::from_secs(5)),
            hosts: crate::outbound::HostRules::default(),
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            url_key: None,
            signing_secret: None,
            smtp: None,
            voevent_broker_url: None,
            daily_summary_at: (7, 0),
        }
    }
}

/// How the SMTP relay is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection, then STARTTLS before anything else (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network, and
    /// then without a password.
    None,
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// The From address of every message.
    pub from: String,
    /// A PEM file of extra certificate authorities to trust (a relay with
    /// a private CA), besides the usual public ones.
    pub ca_file: Option<PathBuf>,
}

/// What one request or connection may take, so that no client, hostile or
/// just slow, can hold the server's connections, memory or time.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Pages and the upload API: a statement running longer is cancelled.
    pub statement_timeout: Duration,
    /// Reports and bulk admin changes (the ratings summary, deleting a
    /// project) run on their own few connections with this budget.
    pub long_statement_timeout: Duration,
    pub long_connections: u32,
    /// Exports stream a whole survey, so they get the longest budget, but
    /// only a few connections: beyond that, an export is refused at once.
    pub export_statement_timeout: Duration,
    pub export_connections: u32,
    /// A response the client has not taken any of for this long is dropped.
    pub write_timeout: Duration,
    /// A connection must send a complete request head within this.
    pub header_timeout: Duration,
    /// A keep-alive connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Each connection's kernel send buffer. Left to autotune, it grows to
    /// 4 MiB, and a client that stops reading a streamed export makes the
    /// server encode 4 MiB for it first: sixteen such clients starting at
    /// once held every core for over a second. nginx, in front, reads fast.
    pub send_buffer_bytes: u64,
    /// The largest body of any route but the upload API (forms are small).
    pub max_form_bytes: u64,
    /// File parts per upload request, so that a flood of tiny parts is
    /// refused before it becomes a flood of temporary files.
    pub max_upload_parts: usize,
    /// A pooled database connection unused this long is closed.
    pub pool_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(5),
            long_statement_timeout: Duration::from_secs(120),
            long_connections: 4,
            export_statement_timeout: Duration::from_secs(600),
            export_connections: 4,
            write_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_buffer_bytes: 256 << 10,
            max_form_bytes: 64 << 10,
            max_upload_parts: 1000,
            pool_idle: Duration::from_secs(600),
        }
    }
}

/// Where media objects are kept: the media folder, or an S3-compatible
/// bucket (`VETTER_MEDIA_URL=s3://bucket/prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaLocation {
    Folder,
    Bucket(BucketSettings),
}

/// An S3-compatible bucket and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSettings {
    pub bucket: String,
    /// Keys start with this (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// `None`: AWS S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`:
    /// what Ceph RGW, MinIO and Garage expect, and what nginx can proxy to.
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// How long a link handed to Firefly stays valid.
    pub presign_ttl: Duration,
    /// One request to the store (a part of a large upload, a read) fails
    /// after this, so a stalled store cannot hold a request for ever.
    pub timeout: Duration,
}

impl BucketSettings {
    /// `s3://bucket/prefix`, for messages and the status page.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// How failed logins are slowed down and then refused.
#[derive(Clone, Copy, Debug)]
pub struct LoginThrottle {
    /// Failures counted over this window.
    pub window: Duration,
    /// From this many failures on, every further attempt is delayed.
    pub slow_after: u32,
    /// From this many failures of one account from one address on, that
    /// pair is refused until the window passes. Other addresses are not: a
    /// guesser must not be able to lock the real user out.
    pub refuse_after: u32,
    /// From this many failures from one address (any accounts) on, the
    /// address is refused. Far above `refuse_after`, because a shared NAT puts
    /// many honest users, each mistyping now and then, behind one address.
    pub address_refuse_after: u32,
    /// Delay added per failure beyond `slow_after` (capped at 5 s).
    pub step: Duration,
    /// How long a refusal is repeated from memory before the database is
    /// asked again (`auth::gate`).
    pub remember_refusal: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            slow_after: 3,
            refuse_after: 10,
            address_refuse_after: 100,
            step: Duration::from_millis(500),
            remember_refusal: Duration::from_secs(60),
        }
    }
}

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("media_root", &self.media_root)
            .field("media_location", &self.media_location)
            .field("public_url", &self.public_url)
            .field("staging", &self.staging)
            .field("admin_username", &self.admin_username)
            .finish_non_exhaustive()
    }
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// A setting that could not be used; the message names it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: String) -> Self {
        Self(message)
    }
}

/// Where settings come from: the process environment over a `.env` file.
pub struct Source {
    vars: HashMap<String, String>,
}

impl Source {
    /// The real environment, with `.env` (if present in the working
    /// directory) filling in what the environment does not set.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = match std::fs::read_to_string(".env") {
            Ok(text) => parse_dotenv(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(ConfigError(format!(".env: cannot read: {e}"))),
        };
        vars.extend(std::env::vars());
        Ok(Self { vars })
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn require(&self, key: &str) -> Result<&str, ConfigError> {
        self.get(key)
            .ok_or_else(|| ConfigError(format!("{key} is not set")))
    }

    /// A byte count: a plain number, or with a K, M or G suffix (powers of 1024).
    fn bytes_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let bad = || ConfigError(format!("{key}={v:?} is not a size like 500M or 2G"));
        let t = v.trim();
        let (num, mult) = match t.char_indices().last() {
            Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
            Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
            Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
            _ => (t, 1),
        };
        let n: u64 = num.trim().parse().map_err(|_| bad())?;
        n.checked_mul(mult).filter(|b| *b > 0).ok_or_else(bad)
    }

    /// A duration: a number of seconds, or with an `ms`, `s` or `m` suffix.
    fn duration_or(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let bad = || {
            ConfigError(format!(
                "{key}={v:?} is not a duration like 30s, 500ms or 2m"
            ))
        };
        let t = v.trim();
        let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
            (n, 1)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1000)
        } else if let Some(n) = t.strip_suffix('m') {
            (n, 60_000)
        } else {
            (t, 1000)
        };
        let n: u64 = num.trim().parse().map_err(|_| bad())?;
        n.checked_mul(unit_ms)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(bad)
    }

    fn count_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        v.trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError(format!("{key}={v:?} is not a positive whole number")))
    }

    /// A secret given as `key` or read from the file `file_key` names (a
    /// mounted secret); not both.
    fn secret(&self, key: &str, file_key: &str) -> Result<Option<Secret>, ConfigError> {
        match (self.get(key), self.get(file_key)) {
            (Some(s), None) => Ok(Some(Secret::new(s))),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map(|s| Some(Secret::new(s.trim())))
                .map_err(|e| ConfigError(format!("{file_key}={file:?}: cannot read: {e}"))),
            (Some(_), Some(_)) => Err(ConfigError(format!(
                "{key} and {file_key} are both set: use one"
            ))),
            (None, None) => Ok(None),
        }
    }

    /// A comma-separated list, trimmed, empty items dropped.
    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ConfigError(format!(
                    "{key}={v:?} is not a boolean: use 1, 0, true or false"
                ))
            }),
        }
    }
}

/// Only the four spellings people cannot misread: the apps this replaces
/// treated `DEBUG=0` as true because any non-empty string was truthy.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn parse_dotenv(text: &str) -> Result<HashMap<String, String>, ConfigError> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| ConfigError(format!(".env line {}: expected KEY=value", n + 1)))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

impl Limits {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let d = Limits::default();
        let connections = |key: &str, default: u32| -> Result<u32, ConfigError> {
            let n = src.count_or(key, default.into())?;
            u32::try_from(n)
                .ok()
                .filter(|n| *n <= 64)
                .ok_or_else(|| ConfigError(format!("{key}={n} is more than 64 connections")))
        };
        Ok(Self {
            statement_timeout: src.duration_or("VETTER_STATEMENT_TIMEOUT", d.statement_timeout)?,
            long_statement_timeout: src
                .duration_or("VETTER_LONG_STATEMENT_TIMEOUT", d.long_statement_timeout)?,
            long_connections: connections("VETTER_LONG_CONNECTIONS", d.long_connections)?,
            export_statement_timeout: src.duration_or(
                "VETTER_EXPORT_STATEMENT_TIMEOUT",
                d.export_statement_timeout,
            )?,
            export_connections: connections("VETTER_EXPORT_CONNECTIONS", d.export_connections)?,
            write_timeout: src.duration_or("VETTER_WRITE_TIMEOUT", d.write_timeout)?,
            header_timeout: src.duration_or("VETTER_HEADER_TIMEOUT", d.header_timeout)?,
            idle_timeout: src.duration_or("VETTER_IDLE_TIMEOUT", d.idle_timeout)?,
            send_buffer_bytes: src.bytes_or("VETTER_SEND_BUFFER_BYTES", d.send_buffer_bytes)?,
            max_form_bytes: src.bytes_or("VETTER_MAX_FORM_BYTES", d.max_form_bytes)?,
            max_upload_parts: src.count_or("VETTER_MAX_UPLOAD_PARTS", d.max_upload_parts as u64)?
                as usize,
            // Not a setting: only the tests, with many short-lived apps on
            // one PostgreSQL, want it shorter.
            pool_idle: d.pool_idle,
        })
    }
}

impl NotifySettings {
    fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let d = NotifySettings::default();
        let hosts = crate::outbound::HostRules::parse(
            &src.list("VETTER_NOTIFY_ALLOWED_HOSTS"),
            &src.list("VETTER_NOTIFY_PRIVATE_HOSTS"),
        )
        .map_err(|e| {
            ConfigError(format!(
                "VETTER_NOTIFY_ALLOWED_HOSTS / VETTER_NOTIFY_PRIVATE_HOSTS: {e}"
            ))
        })?;
        let poll = match src.get("VETTER_NOTIFY_POLL").map(str::trim) {
            Some("0") => None,
            _ => Some(src.duration_or("VETTER_NOTIFY_POLL", Duration::from_secs(5))?),
        };
        let max_attempts = src.count_or("VETTER_NOTIFY_MAX_ATTEMPTS", d.max_attempts.into())?;
        if max_attempts > 50 {
            return Err(ConfigError(format!(
                "VETTER_NOTIFY_MAX_ATTEMPTS={max_attempts} is more than 50"
            )));
        }
        let url_key = src.secret("VETTER_NOTIFY_KEY", "VETTER_NOTIFY_KEY_FILE")?;
        if url_key.as_ref().is_some_and(|k| k.expose().len() < 32) {
            return Err(ConfigError(
                "VETTER_NOTIFY_KEY is too short: use at least 32 characters (`vetter gen-secret` makes one)".into(),
            ));
        }
        let signing_secret = src.secret(
            "VETTER_NOTIFY_SIGNING_SECRET",
            "VETTER_NOTIFY_SIGNING_SECRET_FILE",
        )?;
        if signing_secret
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            return Err(ConfigError(
                "VETTER_NOTIFY_SIGNING_SECRET is too short: use at least 16 characters".into(),
            ));
        }
        let voevent_broker_url = match src.get("VETTER_VOEVENT_BROKER_URL").map(str::trim) {
            None | Some("") => None,
            Some(u) => {
                hosts
                    .check_url(u)
                    .map_err(|e| ConfigError(format!("VETTER_VOEVENT_BROKER_URL={u:?}: {e}")))?;
                Some(u.to_string())
            }
        };
        let daily_summary_at = match src.get("VETTER_DAILY_SUMMARY_AT").map(str::trim) {
            None => d.daily_summary_at,
            Some(v) => parse_hh_mm(v).ok_or_else(|| {
                ConfigError(format!(
                    "VETTER_DAILY_SUMMARY_AT={v:?} is not a time of day like 07:00 (UTC)"
                ))
            })?,
        };
        Ok(Self {
            poll,
            hosts,
            connect_timeout: src.duration_or("VETTER_NOTIFY_CONNECT_TIMEOUT", d.connect_timeout)?,
            timeout: src.duration_or("VETTER_NOTIFY_TIMEOUT", d.timeout)?,
            max_attempts: max_attempts as u32,
            retry_base: src.duration_or("VETTER_NOTIFY_RETRY_BASE", d.retry_base)?,
            url_key,
            signing_secret,
            smtp: SmtpSettings::from_source(src)?,
            voevent_broker_url,
            daily_summary_at,
        })
    }
}

fn parse_hh_mm(v: &str) -> Option<(u8, u8)> {
    let (h, m) = v.split_once(':')?;
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

impl SmtpSettings {
    /// `None` without `VETTER_SMTP_HOST`: no e-mail is sent.
    fn from_source(src: &Source) -> Result<Option<Self>, ConfigError> {
        let Some(host) = src.get("VETTER_SMTP_HOST").map(str::trim) else {
            return Ok(None);
        };
        let security = match src.get("VETTER_SMTP_SECURITY").map(str::trim) {
            None | Some("starttls") => SmtpSecurity::StartTls,
            Some("tls") => SmtpSecurity::Tls,
            Some("none") => SmtpSecurity::None,
            Some(v) => {
                return Err(ConfigError(format!(
                    "VETTER_SMTP_SECURITY={v:?} is not one of starttls, tls, none"
                )))
            }
        };
        let port = match src.get("VETTER_SMTP_PORT") {
            None => match security {
                SmtpSecurity::StartTls => 587,
                SmtpSecurity::Tls => 465,
                SmtpSecurity::None => 25,
            },
            Some(v) => v
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    ConfigError(format!("VETTER_SMTP_PORT={v:?} is not a port number"))
                })?,
        };
        let user = src.get("VETTER_SMTP_USER").map(str::to_string);
        let password = src.secret("VETTER_SMTP_PASSWORD", "VETTER_SMTP_PASSWORD_FILE")?;
        if user.is_some() != password.is_some() {
            return Err(ConfigError(
                "VETTER_SMTP_USER and VETTER_SMTP_PASSWORD (or VETTER_SMTP_PASSWORD_FILE) go together".into(),
            ));
        }
        if security == SmtpSecurity::None && user.is_some() {
            return Err(ConfigError(
                "VETTER_SMTP_SECURITY=none would send VETTER_SMTP_PASSWORD in clear: use starttls or tls".into(),
            ));
        }
        let from = src.require("VETTER_SMTP_FROM")?.trim().to_string();
        if crate::domain::email::EmailAddress::parse(&from).is_err() {
            return Err(ConfigError(format!(
                "VETTER_SMTP_FROM={from:?} is not an e-mail address"
            )));
        }
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(ConfigError(format!(
                "VETTER_SMTP_HOST={host:?} is not a host name"
            )));
        }
        Ok(Some(Self {
            host: host.to_string(),
            port,
            security,
            user,
            password,
            from,
            ca_file: src.get("VETTER_SMTP_CA_FILE").map(PathBuf::from),
        }))
    }
}

impl Config {
    /// Settings every command needs: just the database.
    pub fn database_url(src: &Source) -> Result<String, ConfigError> {
        let url = src.require("DATABASE_URL")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError(
                "DATABASE_URL must start with postgres:// or postgresql://".into(),
            ));
        }
        Ok(url.to_string())
    }

    /// The media folder alone, for the commands that need no server settings.
    pub fn media_root(src: &Source) -> Result<PathBuf, ConfigError> {
        let media_raw = src.require("VETTER_MEDIA_ROOT")?;
        // cfitsio reads meaning into file names ([ext], (copy), -, +...), so
        // the folder that FITS files live in is kept to plain characters.
        if !media_raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-'))
        {
            return Err(ConfigError(format!(
                "VETTER_MEDIA_ROOT={media_raw:?} may hold only letters, digits, '/', '_', '.' and '-'"
            )));
        }
        Ok(PathBuf::from(media_raw))
    }

    /// Where media objects live, from `VETTER_MEDIA_URL` and the `VETTER_S3_*`
    /// settings (the folder when it is unset).
    pub fn media_location(src: &Source) -> Result<MediaLocation, ConfigError> {
        match src.get("VETTER_MEDIA_URL") {
            None => Ok(MediaLocation::Folder),
            Some(url) => Self::media_location_at(src, url),
        }
    }

    /// Like [`Config::media_location`], for a URL given elsewhere (`vetter media
    /// migrate --to URL`): `folder` or `s3://bucket[/prefix]`.
    pub fn media_location_at(src: &Source, url: &str) -> Result<MediaLocation, ConfigError> {
        let url = url.trim();
        if url == "folder" {
            return Ok(MediaLocation::Folder);
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(ConfigError(format!(
                "VETTER_MEDIA_URL={url:?} is neither `folder` nor s3://bucket/prefix"
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        // The bucket naming rules S3 and Ceph share.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !bucket_ok {
            return Err(ConfigError(format!(
                "VETTER_MEDIA_URL={url:?}: {bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')"
            )));
        }
        let prefix_ok = prefix.len() <= 200
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-'))
            && !prefix
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..");
        if !prefix.is_empty() && !prefix_ok {
            return Err(ConfigError(format!(
                "VETTER_MEDIA_URL={url:?}: the prefix may hold only letters, digits, '_', '.', '-' and single '/' between names"
            )));
        }
        let endpoint = src
            .get("VETTER_S3_ENDPOINT")
            .map(|e| e.trim_end_matches('/').to_string());
        if let Some(e) = &endpoint {
            let scheme_ok = e.starts_with("http://") || e.starts_with("https://");
            if !scheme_ok || e.contains(['?', '#', ' ']) {
                return Err(ConfigError(format!(
                    "VETTER_S3_ENDPOINT={e:?} must be a URL like https://s3.example.org:7480"
                )));
            }
        }
        let access_key_id = src.require("VETTER_S3_ACCESS_KEY_ID")?.to_string();
        let secret_access_key = src
            .secret(
                "VETTER_S3_SECRET_ACCESS_KEY",
                "VETTER_S3_SECRET_ACCESS_KEY_FILE",
            )?
            .ok_or_else(|| {
                ConfigError(
                    "VETTER_S3_SECRET_ACCESS_KEY (or VETTER_S3_SECRET_ACCESS_KEY_FILE) is not set"
                        .into(),
                )
            })?;
        Ok(MediaLocation::Bucket(BucketSettings {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            path_style: src.bool_or("VETTER_S3_PATH_STYLE", endpoint.is_some())?,
            endpoint,
            region: src
                .get("VETTER_S3_REGION")
                .unwrap_or("us-east-1")
                .to_string(),
            access_key_id,
            secret_access_key,
            presign_ttl: src.duration_or("VETTER_S3_PRESIGN_TTL", Duration::from_secs(600))?,
            timeout: src.duration_or("VETTER_S3_TIMEOUT", Duration::from_secs(30))?,
        }))
    }

    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let database_url = Self::database_url(src)?;
        let bind_raw = src.get("VETTER_BIND").unwrap_or("127.0.0.1:8000");
        let bind = bind_raw.parse().map_err(|_| {
            ConfigError(format!(
                "VETTER_BIND={bind_raw:?} is not an address like 127.0.0.1:8000"
            ))
        })?;
        let media_root = Self::media_root(src)?;
        let media_location = Self::media_location(src)?;
        let secret_key = src.require("VETTER_SECRET_KEY")?;
        if secret_key.len() < 32 {
            return Err(ConfigError(
                "VETTER_SECRET_KEY is too short: use at least 32 characters (`vetter gen-secret` makes one)".into(),
            ));
        }
        let public_url = src
            .get("VETTER_PUBLIC_URL")
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{bind}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "VETTER_PUBLIC_URL={public_url:?} must start with http:// or https://"
            )));
        }
        let admin_username = src.get("VETTER_ADMIN_USERNAME").map(str::to_string);
        let admin_password = src.get("VETTER_ADMIN_PASSWORD").map(Secret::new);
        Ok(Self {
            database_url,
            bind,
            media_root,
            media_location,
            secret_key: Secret::new(secret_key),
            public_url,
            staging: src.bool_or("VETTER_STAGING", false)?,
            behind_proxy: src.bool_or("VETTER_BEHIND_PROXY", false)?,
            admin_username,
            admin_password,
            login_throttle: LoginThrottle::default(),
            session_idle: Duration::from_secs(14 * 24 * 3600),
            max_file_bytes: src.bytes_or("VETTER_MAX_FILE_BYTES", 1 << 30)?,
            max_upload_bytes: src.bytes_or("VETTER_MAX_UPLOAD_BYTES", 4 << 30)?,
            media_accel_prefix: src
                .get("VETTER_MEDIA_ACCEL_PREFIX")
                .map(|p| p.trim_end_matches('/').to_string()),
            firefly_url: src
                .get("VETTER_FIREFLY_URL")
                .unwrap_or("/firefly")
                .trim_end_matches('/')
                .to_string(),
            firefly_media_path: src
                .get("VETTER_FIREFLY_MEDIA_PATH")
                .unwrap_or("/external")
                .trim_end_matches('/')
                .to_string(),
            simbad_tap_url: match src.get("VETTER_SIMBAD_TAP_URL").map(str::trim) {
                None | Some("") => None,
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    Some(u.to_string())
                }
                Some(u) => {
                    return Err(ConfigError(format!(
                        "VETTER_SIMBAD_TAP_URL={u:?} must start with http:// or https://"
                    )))
                }
            },
            model_check: match src.get("VETTER_MODEL_CHECK_SECS").map(str::trim) {
                None | Some("") => Some(Duration::from_secs(10)),
                Some(v) => match v.parse::<u64>() {
                    Ok(0) => None,
                    Ok(n) if n <= 86_400 => Some(Duration::from_secs(n)),
                    _ => {
                        return Err(ConfigError(format!(
                        "VETTER_MODEL_CHECK_SECS={v:?} must be whole seconds from 0 (off) to 86400"
                    )))
                    }
                },
            },
            staging_details: PathBuf::from(
                src.get("VETTER_STAGING_DETAILS")
                    .unwrap_or("staging-details.html"),
            ),
            voevent: Self::voevent(src)?,
            limits: Limits::from_source(src)?,
            notify: NotifySettings::from_source(src)?,
        })
    }

    /// The VOEvent settings: on once an authority is set; the others
    /// without one are a mistake worth stopping for.
    fn voevent(src: &Source) -> Result<Option<voevent::Settings>, ConfigError> {
        let text = |key: &str, max: usize| -> Result<Option<String>, ConfigError> {
            match src.get(key).map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) if v.chars().count() <= max && !v.chars().any(char::is_control) => {
                    Ok(Some(v.to_string()))
                }
                Some(v) => Err(ConfigError(format!(
                    "{key}={v:?} must be one line of at most {max} characters"
                ))),
            }
        };
        let author = voevent::Author {
            short_name: text("VETTER_VOEVENT_AUTHOR", 100)?,
            contact_name: text("VETTER_VOEVENT_CONTACT_NAME", 200)?,
            contact_email: text("VETTER_VOEVENT_CONTACT_EMAIL", 254)?,
        };
        if let Some(e) = &author.contact_email {
            let ok = e
                .split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !e.contains(char::is_whitespace);
            if !ok {
                return Err(ConfigError(format!(
                    "VETTER_VOEVENT_CONTACT_EMAIL={e:?} is not an e-mail address"
                )));
            }
        }
        let role = match src.get("VETTER_VOEVENT_ROLE") {
            None => voevent::Role::default(),
            Some(r) => voevent::Role::parse(r)
                .map_err(|e| ConfigError(format!("VETTER_VOEVENT_ROLE: {e}")))?,
        };
        let Some(authority) = src.get("VETTER_VOEVENT_AUTHORITY").map(str::trim) else {
            let stray = [
                ("VETTER_VOEVENT_AUTHOR", author.short_name.is_some()),
                ("VETTER_VOEVENT_CONTACT_NAME", author.contact_name.is_some()),
                (
                    "VETTER_VOEVENT_CONTACT_EMAIL",
                    author.contact_email.is_some(),
                ),
                (
                    "VETTER_VOEVENT_ROLE",
                    src.get("VETTER_VOEVENT_ROLE").is_some(),
                ),
            ];
            if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(ConfigError(format!(
                    "{key} is set but VETTER_VOEVENT_AUTHORITY is not: VOEvents need the authority"
                )));
            }
            return Ok(None);
        };
        let authority = voevent::IvornBase::parse(authority)
            .map_err(|e| ConfigError(format!("VETTER_VOEVENT_AUTHORITY: {e}")))?;
        Ok(Some(voevent::Settings {
            authority,
            role,
            author,
        }))
    }

    /// Whether cookies must carry `Secure`: whenever people reach us over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The origin (scheme://host[:port]) that browsers send in `Origin`.
    pub fn public_origin(&self) -> &str {
        let after_scheme = self.public_url.find("://").map_or(0, |i| i + 3);
        match self.public_url[after_scheme..].find('/') {
            Some(i) => &self.public_url[..after_scheme + i],
            None => &self.public_url,
        }
    }

    /// A configuration for tests: binds port 0 on loopback.
    pub fn for_tests(database_url: &str, media_root: PathBuf) -> Self {
        Self {
            database_url: database_url.to_string(),
            bind: "127.0.0.1:0".parse().expect("valid address"),
            media_root,
            media_location: MediaLocation::Folder,
            secret_key: Secret::new("test-secret-key-test-secret-key-0123456789"),
            public_url: "http://127.0.0.1".into(),
            staging: false,
            behind_proxy: false,
            admin_username: None,
            admin_password: None,
            login_throttle: LoginThrottle::default(),
            session_idle: Duration::from_secs(3600),
            max_file_bytes: 64 << 20,
            max_upload_bytes: 256 << 20,
            media_accel_prefix: None,
            firefly_url: "/firefly".into(),
            firefly_media_path: "/external".into(),
            simbad_tap_url: None,
            // Tests train when they say so.
            model_check: None,
            staging_details: PathBuf::from("staging-details.html"),
            voevent: Some(voevent::Settings {
                authority: voevent::IvornBase::parse("ivo://example.org/vetter-test")
                    .expect("a valid authority"),
                role: voevent::Role::Observation,
                author: voevent::Author::default(),
            }),
            // Two tests run at once, each with an app per signed-in user
            // sharing one PostgreSQL: with the production pools (eight
            // report connections and four export connections an app, kept
            // open ten minutes) they reached 97 of its 100 connections and
            // were refused. A test that needs more says so.
            limits: Limits {
                long_connections: 1,
                export_connections: 1,
                pool_idle: Duration::from_secs(2),
                ..Limits::default()
            },
            // Tests send notifications when they say so, to receivers
            // they allow.
            notify: NotifySettings {
                poll: None,
                ..NotifySettings::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DATABASE_URL", "postgres://u:p@localhost/vetter"),
            ("VETTER_MEDIA_ROOT", "/tmp/media"),
            ("VETTER_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs = base();
        pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        pairs.extend_from_slice(extra);
        Config::from_source(&Source::from_pairs(pairs))
    }

    #[test]
    fn defaults_apply_when_only_required_settings_are_given() {
        let c = with(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
        assert!(!c.staging);
        assert!(!c.secure_cookies());
    }

    #[test]
    fn booleans_accept_only_the_four_spellings() {
        assert!(with(&[("VETTER_STAGING", "1")]).unwrap().staging);
        assert!(with(&[("VETTER_STAGING", "true")]).unwrap().staging);
        assert!(!with(&[("VETTER_STAGING", "0")]).unwrap().staging);
        assert!(!with(&[("VETTER_STAGING", "false")]).unwrap().staging);
        for bad in ["yes", "TRUE", "on", "2", "off"] {
            let mut pairs = base();
            pairs.push(("VETTER_STAGING", bad));
            let err = Config::from_source(&Source::from_pairs(pairs)).unwrap_err();
            assert!(err.0.starts_with("VETTER_STAGING="), "{bad}: {err}");
        }
    }

    #[test]
    fn each_missing_required_setting_is_named() {
        for key in ["DATABASE_URL", "VETTER_MEDIA_ROOT", "VETTER_SECRET_KEY"] {
            let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != key).collect();
            let err = Config::from_source(&Source::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.0, format!("{key} is not set"));
        }
    }

    #[test]
    fn a_bucket_is_read_from_its_url_and_settings() {
        let keys = [
            ("VETTER_S3_ACCESS_KEY_ID", "AKIA0"),
            ("VETTER_S3_SECRET_ACCESS_KEY", "s3cr3t"),
        ];
        assert_eq!(with(&[]).unwrap().media_location, MediaLocation::Folder);
        let mut pairs = keys.to_vec();
        pairs.extend([
            ("VETTER_MEDIA_URL", "s3://vetter-media/prod/v1/"),
            ("VETTER_S3_ENDPOINT", "https://s3.example.org:7480/"),
        ]);
        let MediaLocation::Bucket(b) = with(&pairs).unwrap().media_location else {
            panic!("a bucket")
        };
        assert_eq!(
            (b.bucket.as_str(), b.prefix.as_str(), b.region.as_str()),
            ("vetter-media", "prod/v1", "us-east-1")
        );
        assert_eq!(b.endpoint.as_deref(), Some("https://s3.example.org:7480"));
        assert!(b.path_style, "path-style by default with an endpoint");
        assert_eq!(b.url(), "s3://vetter-media/prod/v1");
        assert!(
            !format!("{b:?}").contains("s3cr3t"),
            "the key stays out of logs"
        );

        // Without an endpoint (AWS itself), virtual hosts.
        let mut aws = keys.to_vec();
        aws.push(("VETTER_MEDIA_URL", "s3://vetter-media"));
        let MediaLocation::Bucket(b) = with(&aws).unwrap().media_location else {
            panic!("a bucket")
        };
        assert!(!b.path_style && b.prefix.is_empty());
    }

    #[test]
    fn a_bad_bucket_setting_is_named() {
        let keys = [
            ("VETTER_S3_ACCESS_KEY_ID", "AKIA0"),
            ("VETTER_S3_SECRET_ACCESS_KEY", "s3cr3t"),
        ];
        for (url, extra, named) in [
            ("ftp://x/y", None, "VETTER_MEDIA_URL"),
            ("s3://Upper", None, "VETTER_MEDIA_URL"),
            ("s3://ab", None, "VETTER_MEDIA_URL"),
            ("s3://-bucket", None, "VETTER_MEDIA_URL"),
            ("s3://bucket/a/../b", None, "VETTER_MEDIA_URL"),
            ("s3://bucket/a//b", None, "VETTER_MEDIA_URL"),
            ("s3://bucket/with space", None, "VETTER_MEDIA_URL"),
            (
                "s3://bucket",
                Some(("VETTER_S3_ENDPOINT", "s3.example.org")),
                "VETTER_S3_ENDPOINT",
            ),
        ] {
            let mut pairs = keys.to_vec();
            pairs.push(("VETTER_MEDIA_URL", url));
            pairs.extend(extra);
            let err = with(&pairs).unwrap_err();
            assert!(err.0.starts_with(named), "{url}: {err}");
        }
        let err = with(&[("VETTER_MEDIA_URL", "s3://bucket")]).unwrap_err();
        assert_eq!(err.0, "VETTER_S3_ACCESS_KEY_ID is not set");
        let mut both = keys.to_vec();
        both.extend([
            ("VETTER_MEDIA_URL", "s3://bucket"),
            ("VETTER_S3_SECRET_ACCESS_KEY_FILE", "/run/secrets/k"),
        ]);
        assert!(with(&both).unwrap_err().0.contains("both set"));
    }

    #[test]
    fn the_secret_key_can_come_from_a_file() {
        let file = std::env::temp_dir().join(format!("vetter-s3-key-{}", std::process::id()));
        std::fs::write(&file, "from-a-file\n").unwrap();
        let path = file.to_str().unwrap().to_string();
        let pairs = [
            ("VETTER_MEDIA_URL", "s3://bucket"),
            ("VETTER_S3_ACCESS_KEY_ID", "AKIA0"),
            ("VETTER_S3_SECRET_ACCESS_KEY_FILE", path.as_str()),
        ];
        let mut all = base();
        all.extend(pairs);
        let c = Config::from_source(&Source::from_pairs(all)).unwrap();
        let MediaLocation::Bucket(b) = c.media_location else {
            panic!("a bucket")
        };
        assert_eq!(b.secret_access_key.expose(), "from-a-file");
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn malformed_settings_are_named() {
        let cases = [
            ("VETTER_BIND", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("VETTER_SECRET_KEY", "short"),
            ("VETTER_PUBLIC_URL", "ftp://example.org"),
            ("VETTER_MEDIA_ROOT", "/srv/my media"),
        ];
        for (key, value) in cases {
            let err = with(&[(key, value)]).unwrap_err();
            assert!(err.0.starts_with(key), "{key}: {err}");
        }
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(
            with(&[("VETTER_MAX_FILE_BYTES", "500M")])
                .unwrap()
                .max_file_bytes,
            500 << 20
        );
        assert_eq!(
            with(&[("VETTER_MAX_FILE_BYTES", "2G")])
                .unwrap()
                .max_file_bytes,
            2 << 30
        );
        assert_eq!(
            with(&[("VETTER_MAX_FILE_BYTES", "1234")])
                .unwrap()
                .max_file_bytes,
            1234
        );
        for bad in ["lots", "0", "-5M", "1.5G"] {
            let err = with(&[("VETTER_MAX_FILE_BYTES", bad)]).unwrap_err();
            assert!(err.0.starts_with("VETTER_MAX_FILE_BYTES="), "{bad}");
        }
    }

    #[test]
    fn durations_take_suffixes_and_limits_have_defaults() {
        let c = with(&[
            ("VETTER_STATEMENT_TIMEOUT", "2500ms"),
            ("VETTER_WRITE_TIMEOUT", "2m"),
            ("VETTER_HEADER_TIMEOUT", "3"),
            ("VETTER_IDLE_TIMEOUT", "45s"),
        ])
        .unwrap();
        assert_eq!(c.limits.statement_timeout, Duration::from_millis(2500));
        assert_eq!(c.limits.write_timeout, Duration::from_secs(120));
        assert_eq!(c.limits.header_timeout, Duration::from_secs(3));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(45));
        assert_eq!(c.limits.max_form_bytes, 64 << 10);
        assert_eq!(c.limits.export_connections, 4);
        for (key, bad) in [
            ("VETTER_STATEMENT_TIMEOUT", "soon"),
            ("VETTER_WRITE_TIMEOUT", "0"),
            ("VETTER_IDLE_TIMEOUT", "1h"),
            ("VETTER_EXPORT_CONNECTIONS", "0"),
            ("VETTER_EXPORT_CONNECTIONS", "1000"),
            ("VETTER_MAX_UPLOAD_PARTS", "-1"),
        ] {
            let err = with(&[(key, bad)]).unwrap_err();
            assert!(err.0.starts_with(key), "{key}={bad}: {err}");
        }
    }

    #[test]
    fn voevents_are_off_without_an_authority_and_checked_with_one() {
        assert_eq!(with(&[]).unwrap().voevent, None);
        let v = with(&[
            ("VETTER_VOEVENT_AUTHORITY", "ivo://example.org/vetter"),
            ("VETTER_VOEVENT_CONTACT_EMAIL", "ops@example.org"),
        ])
        .unwrap()
        .voevent
        .expect("on");
        assert_eq!(v.authority.as_str(), "ivo://example.org/vetter");
        assert_eq!(v.role, voevent::Role::Observation);
        assert_eq!(v.author.contact_email.as_deref(), Some("ops@example.org"));
        assert_eq!(v.author.short_name, None);
        for (pairs, named) in [
            (
                vec![("VETTER_VOEVENT_AUTHORITY", "http://example.org/vetter")],
                "VETTER_VOEVENT_AUTHORITY",
            ),
            (
                vec![
                    ("VETTER_VOEVENT_AUTHORITY", "ivo://example.org/vetter"),
                    ("VETTER_VOEVENT_ROLE", "utility"),
                ],
                "VETTER_VOEVENT_ROLE",
            ),
            (
                vec![
                    ("VETTER_VOEVENT_AUTHORITY", "ivo://example.org/vetter"),
                    ("VETTER_VOEVENT_CONTACT_EMAIL", "nobody"),
                ],
                "VETTER_VOEVENT_CONTACT_EMAIL",
            ),
            (
                vec![("VETTER_VOEVENT_CONTACT_NAME", "Ada")],
                "VETTER_VOEVENT_CONTACT_NAME",
            ),
        ] {
            let err = with(&pairs).unwrap_err();
            assert!(err.0.starts_with(named), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn https_public_url_turns_on_secure_cookies_and_gives_the_origin() {
        let c = with(&[("VETTER_PUBLIC_URL", "https://vetter.example.org/sub/")]).unwrap();
        assert!(c.secure_cookies());
        assert_eq!(c.public_origin(), "https://vetter.example.org");
    }

    #[test]
    fn dotenv_lines_are_parsed_and_quotes_removed() {
        let vars = parse_dotenv("# c\nA=1\nexport B=\"two words\"\nC='x'\n\n").unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x");
        assert!(parse_dotenv("nonsense").is_err());
    }

    #[test]
    fn notification_settings_are_read_and_checked() {
        let n = with(&[]).unwrap().notify;
        assert_eq!(n.poll, Some(Duration::from_secs(5)));
        assert!(n.hosts.is_empty() && n.smtp.is_none() && n.url_key.is_none());
        assert_eq!(n.daily_summary_at, (7, 0));
        let n = with(&[
            ("VETTER_NOTIFY_POLL", "0"),
            (
                "VETTER_NOTIFY_ALLOWED_HOSTS",
                "hooks.slack.com, *.example.org",
            ),
            ("VETTER_NOTIFY_PRIVATE_HOSTS", "10.0.0.5"),
            ("VETTER_VOEVENT_BROKER_URL", "https://broker.example.org/in"),
            ("VETTER_DAILY_SUMMARY_AT", "18:30"),
            ("VETTER_SMTP_HOST", "smtp.example.org"),
            ("VETTER_SMTP_SECURITY", "tls"),
            ("VETTER_SMTP_FROM", "vetter@example.org"),
        ])
        .unwrap()
        .notify;
        assert_eq!(n.poll, None);
        assert!(n.hosts.check_url("https://hooks.slack.com/x").is_ok());
        assert!(n.hosts.check_url("http://10.0.0.5:9000/x").is_ok());
        assert_eq!(n.daily_summary_at, (18, 30));
        let smtp = n.smtp.unwrap();
        assert_eq!((smtp.port, smtp.security), (465, SmtpSecurity::Tls));
        for (pairs, named) in [
            (
                vec![("VETTER_NOTIFY_ALLOWED_HOSTS", "exa mple.org")],
                "VETTER_NOTIFY_ALLOWED_HOSTS",
            ),
            (
                vec![("VETTER_NOTIFY_PRIVATE_HOSTS", "*.internal")],
                "VETTER_NOTIFY_ALLOWED_HOSTS",
            ),
            (
                vec![("VETTER_VOEVENT_BROKER_URL", "https://nowhere.example.org/")],
                "VETTER_VOEVENT_BROKER_URL",
            ),
            (
                vec![("VETTER_DAILY_SUMMARY_AT", "25:00")],
                "VETTER_DAILY_SUMMARY_AT",
            ),
            (vec![("VETTER_NOTIFY_KEY", "short")], "VETTER_NOTIFY_KEY"),
            (
                vec![("VETTER_NOTIFY_MAX_ATTEMPTS", "500")],
                "VETTER_NOTIFY_MAX_ATTEMPTS",
            ),
            (
                vec![("VETTER_SMTP_HOST", "smtp.example.org")],
                "VETTER_SMTP_FROM",
            ),
            (
                vec![
                    ("VETTER_SMTP_HOST", "h.example.org"),
                    ("VETTER_SMTP_FROM", "v@example.org"),
                    ("VETTER_SMTP_SECURITY", "ssl"),
                ],
                "VETTER_SMTP_SECURITY",
            ),
            (
                vec![
                    ("VETTER_SMTP_HOST", "h.example.org"),
                    ("VETTER_SMTP_FROM", "v@example.org"),
                    ("VETTER_SMTP_USER", "u"),
                ],
                "VETTER_SMTP_USER",
            ),
            (
                vec![
                    ("VETTER_SMTP_HOST", "h.example.org"),
                    ("VETTER_SMTP_FROM", "v@example.org"),
                    ("VETTER_SMTP_SECURITY", "none"),
                    ("VETTER_SMTP_USER", "u"),
                    ("VETTER_SMTP_PASSWORD", "p"),
                ],
                "VETTER_SMTP_SECURITY=none",
            ),
        ] {
            let err = with(&pairs).unwrap_err();
            assert!(err.0.starts_with(named), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = with(&[("DATABASE_URL", "postgres://user:hunter2@db/vetter")]).unwrap();
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"));
        assert!(!s.contains("0123456789abcdef"));
    }
}

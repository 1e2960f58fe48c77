//! `vetter upload`: sends a folder of candidates to a vetter server through
//! its upload API (`docs/upload-api.md`). The folder layout is described in
//! `docs/upload-client.md`.
//!
//! Everything is read and checked first; bad candidates are set aside with
//! the reason and the rest are sent: the project, then observations and
//! beams, then candidates in batches per observation. Every call is an
//! upsert, so running the same upload again after an interruption re-sends
//! what was already stored (the server answers "unchanged") and carries on;
//! no local state is kept.
//!
//! `input` reads the folder, `plan` cuts batches, `api` speaks HTTP with
//! retries, `progress` draws on stderr.

mod api;
mod input;
mod plan;
mod progress;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use self::api::{Api, Reply, RetryPolicy};
use self::input::{Candidate, Dataset};
use self::progress::{Counts, Progress};
use super::CliError;

pub use self::input::mjd_to_rfc3339;

pub const USAGE: &str = "\
vetter upload: send a folder of candidates to a vetter server

Usage: vetter upload --url URL [--token TOKEN] [--project SLUG] [--batch N]
                     [--finish] [--dry-run] DIR

  --url URL        the vetter server, http:// or https://
                   (e.g. https://vetter.example.org)
  --token TOKEN    an API token (make one on your account page). Better:
                   set VETTER_TOKEN instead, so the token stays out of your
                   shell history and the process list
  --project SLUG   the project; needed unless DIR/project.json has a slug
  --batch N        candidates per request, 1 to 1000 (default 50)
  --finish         once everything is sent, say each observation's upload
                   is finished: the project's notification targets hear of
                   it (leave it out while more of an observation is to come)
  --dry-run        read and check everything, print what would be sent,
                   send nothing (needs neither --url nor a token)

DIR holds candidates.csv or candidates.json, and optionally project.json
and observations.json; see docs/upload-client.md for the layout.

Bad candidates are reported and skipped; the rest are sent. Running the
same upload again is safe: what is already on the server is reported as
unchanged. Progress goes to stderr, the summary to stdout.

Exit status: 0 when every candidate was accepted, 1 when some were rejected
or the upload failed, 2 for a usage error.
";

/// What [`upload_dir`] is to do. [`UploadOptions::new`] fills in the
/// defaults.
#[derive(Clone)]
pub struct UploadOptions {
    /// The server's base URL (`https://vetter.example.org`, a path prefix
    /// is kept). Not needed for a dry run.
    pub url: String,
    /// The API token. Not needed for a dry run.
    pub token: String,
    /// The project slug; `None` takes it from `project.json`.
    pub project: Option<String>,
    /// Candidates per request, 1 to 1000.
    pub batch_size: usize,
    /// Read and check only; [`Summary::plan`] says what would be sent.
    pub dry_run: bool,
    /// The upload folder.
    pub dir: PathBuf,
    /// Progress lines on stderr.
    pub progress: bool,
    /// The first wait before a retry; it doubles each time.
    pub retry_base_delay: Duration,
    pub max_retries: u32,
    /// A batch is cut early before its files pass this many bytes.
    pub max_batch_bytes: u64,
    /// For tests of resuming: stop (as if interrupted) after this many
    /// candidate requests.
    pub stop_after_batches: Option<usize>,
    /// After a complete upload, mark each observation that got candidates
    /// finished (`POST …/finished`), which notifies the project's targets.
    pub finish: bool,
}

impl UploadOptions {
    pub fn new(url: impl Into<String>, token: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        let retry = RetryPolicy::default();
        Self {
            url: url.into(),
            token: token.into(),
            project: None,
            batch_size: 50,
            dry_run: false,
            dir: dir.into(),
            progress: true,
            retry_base_delay: retry.base_delay,
            max_retries: retry.max_retries,
            max_batch_bytes: 1 << 30,
            stop_after_batches: None,
            finish: false,
        }
    }
}

impl std::fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadOptions")
            .field("url", &self.url)
            .field("token", &"<hidden>")
            .field("project", &self.project)
            .field("batch_size", &self.batch_size)
            .field("dry_run", &self.dry_run)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What the server did with a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Updated,
    Unchanged,
}

impl Status {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(Self::Created),
            "updated" => Some(Self::Updated),
            "unchanged" => Some(Self::Unchanged),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        }
    }
}

/// A candidate the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub row: usize,
    pub observation: String,
    pub name: String,
    pub status: Status,
}

/// A candidate that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// CSV: the line in candidates.csv (the header is row 1); JSON: the
    /// position in the list, from 1.
    pub row: usize,
    pub observation: String,
    pub name: String,
    pub reason: String,
}

impl Rejection {
    fn new(c: &Candidate, reason: impl Into<String>) -> Self {
        Self {
            row: c.row,
            observation: c.observation.clone(),
            name: c.body.name.clone(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            write!(f, "row {}: {}", self.row, self.reason)
        } else {
            // A refused name may be huge; the row number finds it.
            let name = crate::domain::text::shown(&self.name);
            write!(f, "row {} ({name}): {}", self.row, self.reason)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Sorted by row.
    pub rejected: Vec<Rejection>,
    /// Each accepted candidate, in the order sent.
    pub outcomes: Vec<Outcome>,
    pub dry_run: bool,
    /// Dry run: the requests that would have been made, one line each.
    pub plan: Vec<String>,
    /// Dry run: how many candidates would have been sent.
    pub ready: usize,
    /// `stop_after_batches` cut the upload short.
    pub stopped_early: bool,
}

impl Summary {
    fn counts(&self) -> Counts {
        Counts {
            created: self.created,
            updated: self.updated,
            unchanged: self.unchanged,
            rejected: self.rejected.len(),
        }
    }

    fn record(&mut self, c: &Candidate, status: Status) {
        match status {
            Status::Created => self.created += 1,
            Status::Updated => self.updated += 1,
            Status::Unchanged => self.unchanged += 1,
        }
        self.outcomes.push(Outcome {
            row: c.row,
            observation: c.observation.clone(),
            name: c.body.name.clone(),
            status,
        });
    }

    fn reject(&mut self, c: &Candidate, reason: impl Into<String>) {
        self.rejected.push(Rejection::new(c, reason));
    }

    /// What `vetter upload` prints on stdout.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for line in &self.plan {
            s.push_str(line);
            s.push('\n');
        }
        if self.dry_run {
            s.push_str(&format!(
                "dry run, nothing sent: {} candidates ready, rejected {}\n",
                self.ready,
                self.rejected.len()
            ));
        } else {
            s.push_str(&format!("{}\n", self.counts()));
        }
        if self.stopped_early {
            s.push_str("stopped early (stop_after_batches)\n");
        }
        for r in &self.rejected {
            s.push_str(&format!("  {r}\n"));
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The options are wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The folder or a file in it cannot be used; nothing was sent.
    #[error("{0}")]
    Input(String),
    #[error(
        "the server refused the token (401): check VETTER_TOKEN or --token. \
         A revoked token, or the token of a deactivated user, no longer works; \
         make a new one on your account page"
    )]
    Unauthorized,
    #[error(
        "the server refused this upload (403): {0}. Only admins, and users an admin \
         has allowed to upload, may use the upload API"
    )]
    Forbidden(String),
    #[error(
        "cannot reach {url} after {attempts} attempts: {last}. \
         Run the same upload again to carry on; what was sent is kept"
    )]
    Unreachable {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error(
        "{url} answered {last} {attempts} times; the server is busy or down. \
         Run the same upload again later to carry on; what was sent is kept"
    )]
    Unavailable {
        url: String,
        attempts: u32,
        last: String,
    },
    /// The server refused something every candidate depends on.
    #[error("{0}")]
    Server(String),
}

// --------------------------------------------------------------- the CLI

pub async fn run(args: &[String]) -> Result<(), CliError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(());
    }
    let opts = parse_args(args, std::env::var("VETTER_TOKEN").ok())?;
    if let Some(w) = plain_http_warning(&opts.url) {
        eprintln!("vetter: warning: {w}");
    }
    match upload_dir(&opts).await {
        Ok(summary) => {
            print!("{}", summary.report());
            match summary.rejected.len() {
                0 => Ok(()),
                n => Err(CliError::Failed(anyhow::anyhow!(
                    "{n} candidate{} rejected (listed above)",
                    if n == 1 { "" } else { "s" }
                ))),
            }
        }
        Err(UploadError::Usage(m)) => Err(CliError::Usage(m)),
        Err(e) => Err(CliError::Failed(anyhow::anyhow!("{e}"))),
    }
}

/// `args` are those after `upload`; `env_token` is `VETTER_TOKEN`.
/// Messages never repeat the token, nor an argument that might be one.
pub fn parse_args(args: &[String], env_token: Option<String>) -> Result<UploadOptions, CliError> {
    let usage = |m: String| CliError::Usage(format!("upload: {m}"));
    let (mut url, mut token, mut project, mut batch) = (None, None, None, None);
    let (mut dry_run, mut finish) = (false, false);
    let mut dirs: Vec<&String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg.as_str(), None),
        };
        let slot = match flag {
            "--url" => &mut url,
            "--token" => &mut token,
            "--project" => &mut project,
            "--batch" => &mut batch,
            "--dry-run" if inline.is_none() => {
                dry_run = true;
                continue;
            }
            "--finish" if inline.is_none() => {
                finish = true;
                continue;
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(usage(format!("unknown option {f:?}")))
            }
            _ => {
                dirs.push(arg);
                continue;
            }
        };
        let value = match inline {
            Some(v) => v.to_string(),
            None => it
                .next()
                .cloned()
                .ok_or_else(|| usage(format!("{flag} needs a value")))?,
        };
        if slot.replace(value).is_some() {
            return Err(usage(format!("{flag} is given twice")));
        }
    }
    let dir = match dirs.as_slice() {
        [d] => PathBuf::from(d),
        [] => return Err(usage("which folder? Give it as the last argument".into())),
        _ => {
            return Err(usage(format!(
                "give one folder; {} arguments are not options",
                dirs.len()
            )))
        }
    };
    let batch_size = match batch {
        None => 50,
        Some(b) => match b.parse::<usize>() {
            Ok(n) if (1..=plan::MAX_BATCH).contains(&n) => n,
            _ => return Err(usage("--batch takes a number from 1 to 1000".into())),
        },
    };
    if let Some(p) = &project {
        crate::domain::upload::check_slug(p).map_err(usage)?;
    }
    let url = match url {
        Some(u) => {
            api::parse_base_url(&u).map_err(usage)?;
            u
        }
        None if dry_run => String::new(),
        None => {
            return Err(usage(
                "--url is required: the vetter server, such as https://vetter.example.org".into(),
            ))
        }
    };
    let token = token
        .or(env_token)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let token = match token {
        Some(t) => {
            api::check_token(&t).map_err(usage)?;
            t
        }
        None if dry_run => String::new(),
        None => {
            return Err(usage(
                "no API token: set VETTER_TOKEN (or use --token)".into(),
            ))
        }
    };
    Ok(UploadOptions {
        project,
        batch_size,
        dry_run,
        finish,
        ..UploadOptions::new(url, token, dir)
    })
}

/// A token sent over plain HTTP to another machine can be read on the way.
fn plain_http_warning(url: &str) -> Option<String> {
    let u = api::parse_base_url(url).ok()?;
    let local = matches!(
        u.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    (u.scheme() == "http" && !local).then(|| {
        "the token travels unencrypted over http://; use https:// outside a test setup".into()
    })
}

// ------------------------------------------------------------ the upload

/// Reads `opts.dir`, checks it, and (unless a dry run) sends it. Rejected
/// candidates are in the summary; an error means the upload could not go
/// on at all (bad options or files, bad token, no server).
pub async fn upload_dir(opts: &UploadOptions) -> Result<Summary, UploadError> {
    if !(1..=plan::MAX_BATCH).contains(&opts.batch_size) {
        return Err(UploadError::Usage(
            "the batch size is 1 to 1000 candidates".into(),
        ));
    }
    let api = if opts.dry_run {
        if !opts.url.is_empty() {
            api::parse_base_url(&opts.url).map_err(UploadError::Usage)?;
        }
        None
    } else {
        let retry = RetryPolicy {
            base_delay: opts.retry_base_delay,
            max_retries: opts.max_retries,
        };
        Some(Api::new(&opts.url, &opts.token, retry)?)
    };
    let data = input::read_dir(&opts.dir)?;
    let slug = choose_slug(opts.project.as_deref(), &data)?;
    let batches = plan::batches(&data.candidates, opts.batch_size, opts.max_batch_bytes);
    let mut summary = Summary {
        rejected: data.rejected.clone(),
        dry_run: opts.dry_run,
        ..Summary::default()
    };
    match api {
        None => {
            summary.plan = describe_plan(&slug, &data, &batches);
            summary.ready = data.candidates.len();
        }
        Some(api) => {
            let total = data.candidates.len() + data.rejected.len();
            let mut up = Uploader {
                api: &api,
                slug: &slug,
                data: &data,
                summary,
                progress: Progress::new(opts.progress, total),
            };
            let sent = up
                .send_all(&batches, opts.stop_after_batches, opts.finish)
                .await;
            up.progress.finish();
            sent?;
            summary = up.summary;
        }
    }
    summary.rejected.sort_by_key(|r| r.row);
    Ok(summary)
}

/// `--project` and project.json must agree; one of them must say.
fn choose_slug(flag: Option<&str>, data: &Dataset) -> Result<String, UploadError> {
    let file = data.project.as_ref().and_then(|p| p.slug.as_deref());
    match (flag, file) {
        (Some(f), Some(p)) if f != p => Err(UploadError::Usage(format!(
            "--project {f} disagrees with {p:?}, the slug in project.json"
        ))),
        (Some(s), _) | (None, Some(s)) => {
            crate::domain::upload::check_slug(s).map_err(UploadError::Usage)?;
            Ok(s.to_string())
        }
        (None, None) => Err(UploadError::Usage(
            "which project? Use --project SLUG, or put \"slug\" in project.json".into(),
        )),
    }
}

fn describe_plan(slug: &str, data: &Dataset, batches: &[plan::Batch]) -> Vec<String> {
    let files = |files: &[input::LocalFile]| {
        if files.is_empty() {
            String::new()
        } else {
            let bytes: u64 = files.iter().map(|f| f.size).sum();
            format!(
                " with {} file{} ({})",
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                plan::human_bytes(bytes)
            )
        }
    };
    let mut out = vec![format!(
        "{}: {} candidates to send, {} rejected",
        data.source,
        data.candidates.len(),
        data.rejected.len()
    )];
    if let Some(p) = &data.project {
        let n = |k: &str| p.body.get(k).and_then(Value::as_array).map_or(0, Vec::len);
        out.push(format!(
            "PUT {}  (project.json: {} metrics, {} tags)",
            Api::path(&["projects", slug]),
            n("metrics"),
            n("tags")
        ));
    }
    for o in &data.observations {
        out.push(format!(
            "PUT {}{}",
            Api::path(&["projects", slug, "observations", &o.id]),
            files(&o.files)
        ));
        for b in &o.beams {
            out.push(format!(
                "PUT {}{}",
                Api::path(&["projects", slug, "observations", &o.id, "beams", &b.name]),
                files(&b.files)
            ));
        }
    }
    for b in batches {
        let cands: Vec<&Candidate> = b.items.iter().map(|&i| &data.candidates[i]).collect();
        let all_files: Vec<input::LocalFile> =
            cands.iter().flat_map(|c| c.files.iter().cloned()).collect();
        let mut names: Vec<&str> = cands.iter().take(8).map(|c| c.body.name.as_str()).collect();
        let more = cands.len().saturating_sub(names.len());
        let tail = format!("... ({more} more)");
        if more > 0 {
            names.push(&tail);
        }
        out.push(format!(
            "POST {}  {} candidate{}{}: {}",
            Api::path(&[
                "projects",
                slug,
                "observations",
                &b.observation,
                "candidates"
            ]),
            cands.len(),
            if cands.len() == 1 { "" } else { "s" },
            files(&all_files),
            names.join(", ")
        ));
    }
    out
}

struct Uploader<'a> {
    api: &'a Api,
    slug: &'a str,
    data: &'a Dataset,
    summary: Summary,
    progress: Progress,
}

impl Uploader<'_> {
    async fn send_all(
        &mut self,
        batches: &[plan::Batch],
        stop_after: Option<usize>,
        finish: bool,
    ) -> Result<(), UploadError> {
        self.check_token().await?;
        self.progress.note(&format!(
            "{}: {} candidates to send, {} rejected",
            self.data.source,
            self.data.candidates.len(),
            self.data.rejected.len()
        ));
        if let Some(p) = &self.data.project {
            self.put_project(p).await?;
        }
        // Observation id → why it could not be stored; (observation, beam)
        // likewise. Their candidates are refused without being sent.
        let mut bad_obs: HashMap<&str, String> = HashMap::new();
        let mut bad_beams: HashMap<(&str, &str), String> = HashMap::new();
        for o in &self.data.observations {
            let segs = ["projects", self.slug, "observations", o.id.as_str()];
            match self.put("observation", &segs, &o.body, &o.files).await? {
                Ok(status) => self
                    .progress
                    .note(&format!("observation {}: {status}", o.id)),
                Err(why) => {
                    self.progress
                        .note(&format!("observation {}: refused: {why}", o.id));
                    bad_obs.insert(&o.id, why);
                    continue;
                }
            }
            for b in &o.beams {
                let segs = [
                    "projects",
                    self.slug,
                    "observations",
                    o.id.as_str(),
                    "beams",
                    b.name.as_str(),
                ];
                match self.put("beam", &segs, &b.body, &b.files).await? {
                    Ok(status) => self
                        .progress
                        .note(&format!("beam {}/{}: {status}", o.id, b.name)),
                    Err(why) => {
                        self.progress
                            .note(&format!("beam {}/{}: refused: {why}", o.id, b.name));
                        bad_beams.insert((&o.id, &b.name), why);
                    }
                }
            }
        }
        let cands = &self.data.candidates;
        for (n, batch) in batches.iter().enumerate() {
            if stop_after == Some(n) {
                self.summary.stopped_early = true;
                break;
            }
            let before = self.summary.counts();
            let mut items = Vec::with_capacity(batch.items.len());
            for &i in &batch.items {
                let c = &cands[i];
                let beam_why = c
                    .body
                    .beam
                    .as_deref()
                    .and_then(|b| bad_beams.get(&(c.observation.as_str(), b)));
                if let Some(why) = bad_obs.get(c.observation.as_str()) {
                    self.summary.reject(
                        c,
                        format!("observation {} was refused: {why}", c.observation),
                    );
                } else if let Some(why) = beam_why {
                    let beam = c.body.beam.as_deref().unwrap_or_default();
                    self.summary
                        .reject(c, format!("beam {beam} was refused: {why}"));
                } else {
                    items.push(i);
                }
            }
            self.send_batch(&batch.observation, items).await?;
            let after = self.summary.counts();
            self.progress.batch(
                &format!(
                    "batch {}/{} ({}, {} candidate{})",
                    n + 1,
                    batches.len(),
                    batch.observation,
                    batch.items.len(),
                    if batch.items.len() == 1 { "" } else { "s" }
                ),
                after.minus(&before),
                after,
            );
        }
        if finish && !self.summary.stopped_early {
            self.finish(&bad_obs).await?;
        }
        Ok(())
    }

    /// Says the upload of each observation that had candidates here is
    /// finished (the server tells the project's notification targets).
    async fn finish(&mut self, bad_obs: &HashMap<&str, String>) -> Result<(), UploadError> {
        let mut done: Vec<&str> = Vec::new();
        for c in &self.data.candidates {
            let o = c.observation.as_str();
            if done.contains(&o) || bad_obs.contains_key(o) {
                continue;
            }
            done.push(o);
            let segs = ["projects", self.slug, "observations", o, "finished"];
            let note = match self.api.send(Method::POST, &segs, None, "", &[]).await? {
                Reply::Done { body } => format!(
                    "observation {o}: upload finished, {} notification(s) queued",
                    body["notifications"].as_i64().unwrap_or(0)
                ),
                Reply::Refused(r) => {
                    format!("observation {o}: not marked finished: {}", r.describe())
                }
            };
            self.progress.note(&note);
        }
        Ok(())
    }

    async fn check_token(&mut self) -> Result<(), UploadError> {
        match self
            .api
            .send(Method::GET, &["whoami"], None, "", &[])
            .await?
        {
            Reply::Done { body } => {
                let user = body["username"].as_str().unwrap_or("?");
                if body["can_upload"] == Value::Bool(false) {
                    return Err(UploadError::Forbidden(format!(
                        "user {user} may not upload"
                    )));
                }
                self.progress
                    .note(&format!("uploading to {} as {user}", self.api.base()));
                Ok(())
            }
            Reply::Refused(r) if r.status == 404 => Err(UploadError::Server(format!(
                "{} answered 404: is --url the address of a vetter server?",
                self.api.url(&["whoami"])
            ))),
            Reply::Refused(r) => Err(UploadError::Server(format!(
                "checking the token ({}) failed: {}",
                Api::path(&["whoami"]),
                r.describe()
            ))),
        }
    }

    async fn put_project(&mut self, p: &input::ProjectFile) -> Result<(), UploadError> {
        let segs = ["projects", self.slug];
        match self.put("project", &segs, &p.body, &[]).await? {
            Ok(status) => {
                self.progress
                    .note(&format!("project {}: {status}", self.slug));
                Ok(())
            }
            Err(why) => Err(UploadError::Server(format!(
                "the server refused project.json for project {}: {why}",
                self.slug
            ))),
        }
    }

    /// A PUT of a project, observation or beam: the server's status word,
    /// or why it was refused.
    async fn put(
        &self,
        json_part: &str,
        segments: &[&str],
        body: &serde_json::Map<String, Value>,
        files: &[input::LocalFile],
    ) -> Result<Result<String, String>, UploadError> {
        let (body, parts) = plan::with_files(body, files);
        let reply = self
            .api
            .send(Method::PUT, segments, Some(&body), json_part, &parts)
            .await?;
        Ok(match reply {
            Reply::Done { body } => Ok(body["status"].as_str().unwrap_or("stored").to_string()),
            Reply::Refused(r) => Err(r.describe()),
        })
    }

    /// One batch of one observation. A 400 whose problems point at some
    /// candidates rejects those and sends the rest once more; a 413 splits
    /// the batch in halves.
    async fn send_batch(
        &mut self,
        observation: &str,
        items: Vec<usize>,
    ) -> Result<(), UploadError> {
        let cands = &self.data.candidates;
        let segs = [
            "projects",
            self.slug,
            "observations",
            observation,
            "candidates",
        ];
        let mut queue = VecDeque::from([(items, true)]);
        while let Some((items, may_resend)) = queue.pop_front() {
            if items.is_empty() {
                continue;
            }
            let (body, parts, part_owner) = plan::request(cands, &items);
            let reply = self
                .api
                .send(Method::POST, &segs, Some(&body), "candidates", &parts)
                .await?;
            let refusal = match reply {
                Reply::Done { body } => {
                    self.record_statuses(&items, &body);
                    continue;
                }
                Reply::Refused(r) => r,
            };
            if refusal.status == 413 && items.len() > 1 {
                let (a, b) = items.split_at(items.len() / 2);
                queue.push_front((b.to_vec(), may_resend));
                queue.push_front((a.to_vec(), may_resend));
                continue;
            }
            let placed = (refusal.status == 400)
                .then(|| api::attribute(&refusal.problems, items.len(), &part_owner))
                .flatten();
            let Some(placed) = placed else {
                let why = format!("server: {}", refusal.describe());
                for &i in &items {
                    self.summary.reject(&cands[i], why.clone());
                }
                continue;
            };
            let mut rest = Vec::new();
            for (pos, &i) in items.iter().enumerate() {
                match placed.get(&pos) {
                    Some(msgs) => self
                        .summary
                        .reject(&cands[i], format!("server: {}", msgs.join("; "))),
                    None => rest.push(i),
                }
            }
            if may_resend {
                queue.push_front((rest, false));
            } else {
                for i in rest {
                    self.summary.reject(
                        &cands[i],
                        format!(
                            "server: its batch was refused again after the bad candidates \
                             were taken out ({}); run the upload again to retry",
                            refusal.describe()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// `{"candidates": [{"name": ..., "status": ...}], "created": N, ...}`
    fn record_statuses(&mut self, items: &[usize], body: &Value) {
        let cands = &self.data.candidates;
        let by_name: HashMap<&str, Status> = body["candidates"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|c| {
                        Some((c["name"].as_str()?, Status::parse(c["status"].as_str()?)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if by_name.is_empty() {
            // No per-candidate list: take the totals.
            let n = |k: &str| body[k].as_u64().unwrap_or(0) as usize;
            self.summary.created += n("created");
            self.summary.updated += n("updated");
            self.summary.unchanged += n("unchanged");
            return;
        }
        for &i in items {
            let c = &cands[i];
            match by_name.get(c.body.name.as_str()) {
                Some(&s) => self.summary.record(c, s),
                None => self.summary.reject(
                    c,
                    "server: accepted the batch but did not report this candidate; \
                     run the upload again to check",
                ),
            }
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

//! The HTTP side: one small client for the upload API, with retries.
//!
//! Every call of the API is an upsert, so sending a request twice is
//! harmless: a request whose answer was lost is simply sent again.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Method, Url};
use serde_json::Value;

use super::input::LocalFile;
use super::UploadError;

/// A long upload of a big cube must not be cut off; a dead server must
/// still be noticed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Never wait longer than this, whatever Retry-After says.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait; each further retry waits twice as long.
    pub base_delay: Duration,
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(500),
            max_retries: 5,
        }
    }
}

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// No answer: refused connection, reset, timeout.
    Transport,
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
}

/// Statuses that say "try again later": rate limited, or a proxy in front
/// of the server could not reach it.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl RetryPolicy {
    /// After `retries_done` retries ended in `attempt`: how long to wait
    /// before the next, or `None` to stop.
    pub fn next_delay(&self, attempt: Attempt, retries_done: u32) -> Option<Duration> {
        let retry_after = match attempt {
            Attempt::Transport => None,
            Attempt::Status {
                status,
                retry_after,
            } => {
                if !retryable_status(status) {
                    return None;
                }
                retry_after
            }
        };
        if retries_done >= self.max_retries {
            return None;
        }
        Some(match retry_after {
            Some(d) => d.min(MAX_RETRY_AFTER),
            None => self.base_delay.saturating_mul(1 << retries_done.min(16)),
        })
    }
}

/// Retry-After in seconds; the HTTP-date form is ignored (the backoff is
/// used instead).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// One bad field, as the server names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// A 4xx or 5xx answer that concerns this request only.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub problems: Vec<Problem>,
}

impl Refusal {
    fn from_body(status: u16, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let text = |k: &str| {
            json.as_ref()
                .and_then(|j| j.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let message = text("message")
            .or_else(|| text("error"))
            .unwrap_or_else(|| {
                let t = String::from_utf8_lossy(body);
                let t = t.trim();
                if t.is_empty() {
                    reason_phrase(status)
                } else {
                    t.chars().take(300).collect()
                }
            });
        let problems = json
            .as_ref()
            .and_then(|j| j.get("problems"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|p| Problem {
                        field: p.get("field").and_then(Value::as_str).unwrap_or("").into(),
                        message: p
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status,
            message,
            problems,
        }
    }

    /// `400: 2 problems in the upload: ra: ...; files.cube: ...`
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.status, self.message);
        if !self.problems.is_empty() {
            let list: Vec<String> = self
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            s.push_str(" (");
            s.push_str(&list.join("; "));
            s.push(')');
        }
        s
    }
}

fn reason_phrase(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_string()
}

/// Which candidates of a batch the problems point at: `candidates[i]...`,
/// or the name of a file part. `None` if any problem cannot be placed, or
/// there are none; then the whole batch has to be refused.
pub fn attribute(
    problems: &[Problem],
    batch_len: usize,
    part_owner: &HashMap<String, usize>,
) -> Option<std::collections::BTreeMap<usize, Vec<String>>> {
    if problems.is_empty() {
        return None;
    }
    let mut out: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for p in problems {
        let (i, rest) = candidate_index(&p.field)
            .or_else(|| {
                p.field
                    .split(['.', '[', ']'])
                    .find_map(|t| part_owner.get(t))
                    .map(|&i| (i, p.field.as_str()))
            })
            .filter(|(i, _)| *i < batch_len)?;
        let msg = if rest.is_empty() {
            p.message.clone()
        } else {
            format!("{rest}: {}", p.message)
        };
        out.entry(i).or_default().push(msg);
    }
    Some(out)
}

/// `candidates[12].ra` → (12, "ra"); `candidates[3]` → (3, "").
fn candidate_index(field: &str) -> Option<(usize, &str)> {
    let rest = field.strip_prefix("candidates[")?;
    let (digits, rest) = rest.split_once(']')?;
    let i = digits.parse().ok()?;
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    Some((i, rest))
}

/// A file to send as one multipart part.
pub struct FilePart<'a> {
    pub part: String,
    pub file: &'a LocalFile,
}

/// What the server said to a request, once retries are over.
#[derive(Debug)]
pub enum Reply {
    Done { body: Value },
    Refused(Refusal),
}

pub struct Api {
    base: Url,
    token: String,
    http: Client,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .field("token", &"<hidden>")
            .finish()
    }
}

/// Checks an API base URL: http(s), no credentials, no query.
pub fn parse_base_url(url: &str) -> Result<Url, String> {
    let mut u = Url::parse(url.trim()).map_err(|e| format!("--url {url:?}: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("--url {url:?} must start with http:// or https://"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("--url {url:?} has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "--url must not carry a user or password; give the token with VETTER_TOKEN".into(),
        );
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!("--url {url:?}: remove the ?query or #fragment"));
    }
    // `https://host/vetter` and `https://host/vetter/` are the same place.
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// A token goes into a header: it cannot hold spaces or control characters.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the API token is empty".into());
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) || HeaderValue::from_str(token).is_err() {
        return Err("the API token contains spaces or other characters a token cannot have".into());
    }
    Ok(())
}

impl Api {
    pub fn new(base_url: &str, token: &str, retry: RetryPolicy) -> Result<Self, UploadError> {
        let base = parse_base_url(base_url).map_err(UploadError::Usage)?;
        check_token(token).map_err(UploadError::Usage)?;
        let http = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("vetter-upload/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UploadError::Server(format!("cannot set up HTTP: {e}")))?;
        Ok(Self {
            base,
            token: token.to_string(),
            http,
            retry,
        })
    }

    /// The base URL, for messages.
    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// `api/v1/<segments>` under the base URL, each segment escaped.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.base.clone();
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        u
    }

    /// The path shown in messages: `/api/v1/projects/vast`.
    pub fn path(segments: &[&str]) -> String {
        format!("/api/v1/{}", segments.join("/"))
    }

    /// Sends one request, retrying what is worth retrying. JSON when there
    /// are no files; else multipart, the JSON in the part `json_part` and
    /// each file streamed from disk in a part of its own. Fatal answers
    /// (401, 403, no server) are errors; other refusals are a [`Reply`].
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        json: Option<&Value>,
        json_part: &str,
        files: &[FilePart<'_>],
    ) -> Result<Reply, UploadError> {
        let url = self.url(segments);
        let mut retries = 0;
        loop {
            let outcome = self
                .attempt(method.clone(), url.clone(), json, json_part, files)
                .await;
            let (attempt, failure) = match outcome {
                Ok((status, retry_after, body)) => {
                    if (200..300).contains(&status) {
                        let body = if body.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_slice(&body).unwrap_or(Value::Null)
                        };
                        return Ok(Reply::Done { body });
                    }
                    let refusal = Refusal::from_body(status, &body);
                    match status {
                        401 => return Err(UploadError::Unauthorized),
                        403 => return Err(UploadError::Forbidden(refusal.message)),
                        _ => {}
                    }
                    (
                        Attempt::Status {
                            status,
                            retry_after,
                        },
                        Failure::Refused(refusal),
                    )
                }
                Err(AttemptError::Transport(e)) => (Attempt::Transport, Failure::Transport(e)),
                Err(AttemptError::LocalFile(msg)) => {
                    // A file that vanished or cannot be read since the
                    // check: this request cannot be made.
                    return Ok(Reply::Refused(Refusal {
                        status: 0,
                        message: msg,
                        problems: Vec::new(),
                    }));
                }
            };
            match self.retry.next_delay(attempt, retries) {
                Some(wait) => {
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                None => {
                    return match failure {
                        Failure::Refused(r) if retryable_status(r.status) => {
                            Err(UploadError::Unavailable {
                                url: url.to_string(),
                                attempts: retries + 1,
                                last: r.describe(),
                            })
                        }
                        Failure::Refused(r) => Ok(Reply::Refused(r)),
                        Failure::Transport(e) => Err(UploadError::Unreachable {
                            url: url.to_string(),
                            attempts: retries + 1,
                            last: e,
                        }),
                    };
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: Method,
        url: Url,
        json: Option<&Value>,
        json_part: &str,
        files: &[FilePart<'_>],
    ) -> Result<(u16, Option<Duration>, Vec<u8>), AttemptError> {
        let mut rb = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .header(ACCEPT, "application/json");
        if files.is_empty() {
            if let Some(j) = json {
                rb = rb.json(j);
            }
        } else {
            let text = json.map(Value::to_string).unwrap_or_else(|| "{}".into());
            let mut form = Form::new().part(
                json_part.to_string(),
                Part::text(text)
                    .mime_str("application/json")
                    .expect("a valid MIME type"),
            );
            for f in files {
                // Streamed from disk with its length known, so even a large
                // cube is never held in memory.
                let part = Part::file(&f.file.path)
                    .await
                    .map_err(|e| AttemptError::LocalFile(format!("file {:?}: {e}", f.file.rel)))?
                    .mime_str(mime_for(&f.file.rel))
                    .expect("a valid MIME type");
                form = form.part(f.part.clone(), part);
            }
            rb = rb.multipart(form);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| AttemptError::Transport(describe(&e)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = resp
            .bytes()
            .await
            .map_err(|e| AttemptError::Transport(describe(&e)))?;
        Ok((status, retry_after, body.to_vec()))
    }
}

enum AttemptError {
    Transport(String),
    LocalFile(String),
}

enum Failure {
    Refused(Refusal),
    Transport(String),
}

/// The server decides a file's type from its first bytes, except CSV,
/// which it takes only when the part says text/csv.
pub fn mime_for(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "csv" => "text/csv",
        "png" => "image/png",
        "gif" => "image/gif",
        "fits" | "fit" | "fts" => "application/fits",
        _ => "application/octet-stream",
    }
}

/// A reqwest error in a few words: what failed, and the innermost cause
/// ("Connection refused (os error 111)").
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause: Option<&dyn Error> = e.source();
    while let Some(next) = cause.and_then(Error::source) {
        cause = Some(next);
    }
    match cause {
        Some(c) => format!("{what}: {c}"),
        None => format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(500),
            max_retries: 5,
        }
    }

    fn status(s: u16) -> Attempt {
        Attempt::Status {
            status: s,
            retry_after: None,
        }
    }

    #[test]
    fn only_transient_answers_are_retried() {
        for s in [429, 502, 503, 504] {
            assert!(policy().next_delay(status(s), 0).is_some(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 500, 501] {
            assert_eq!(policy().next_delay(status(s), 0), None, "{s}");
        }
        assert!(policy().next_delay(Attempt::Transport, 0).is_some());
    }

    #[test]
    fn the_backoff_doubles_five_times_then_stops() {
        let waits: Vec<Option<Duration>> = (0..6)
            .map(|n| policy().next_delay(Attempt::Transport, n))
            .collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(
            waits,
            [ms(500), ms(1000), ms(2000), ms(4000), ms(8000), None]
        );
        let quick = RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_retries: 5,
        };
        assert_eq!(quick.next_delay(status(503), 2), ms(40));
    }

    #[test]
    fn retry_after_is_honoured_within_reason() {
        let with = |secs| Attempt::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            policy().next_delay(with(3), 0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy().next_delay(with(86_400), 0), Some(MAX_RETRY_AFTER));
        assert_eq!(
            policy().next_delay(with(3), 5),
            None,
            "still at most 5 retries"
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    fn problem(field: &str, message: &str) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }

    #[test]
    fn problems_are_traced_back_to_candidates() {
        let parts = HashMap::from([("f3".to_string(), 1usize)]);
        let got = attribute(
            &[
                problem("candidates[2].ra", "RA 400 is not in [0, 360) degrees"),
                problem("candidates[0].metrics.chi", "unknown metric"),
                problem(
                    "candidates[2].files.deep_cutout",
                    "not a FITS, PNG or GIF file",
                ),
                problem("f3", "part \"f3\" is not a FITS, PNG or GIF file"),
                problem("candidates[0]", "duplicate"),
            ],
            3,
            &parts,
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[&0], ["metrics.chi: unknown metric", "duplicate"]);
        assert_eq!(got[&1], ["f3: part \"f3\" is not a FITS, PNG or GIF file"]);
        assert_eq!(
            got[&2],
            [
                "ra: RA 400 is not in [0, 360) degrees",
                "files.deep_cutout: not a FITS, PNG or GIF file"
            ]
        );
    }

    #[test]
    fn problems_that_cannot_be_placed_sink_the_batch() {
        let none = HashMap::new();
        assert_eq!(attribute(&[], 3, &none), None);
        assert_eq!(
            attribute(&[problem("candidates", "too many")], 3, &none),
            None
        );
        assert_eq!(
            attribute(&[problem("candidates[7].ra", "x")], 3, &none),
            None
        );
        assert_eq!(
            attribute(&[problem("candidates[x].ra", "x")], 3, &none),
            None
        );
        assert_eq!(
            attribute(
                &[
                    problem("candidates[0].ra", "x"),
                    problem("body", "bad JSON")
                ],
                3,
                &none
            ),
            None,
            "one unplaceable problem is enough"
        );
    }

    #[test]
    fn refusals_read_the_error_body() {
        let r = Refusal::from_body(
            400,
            br#"{"error": "Bad request", "message": "2 problems in the upload",
                 "problems": [{"field": "candidates[3].ra", "message": "bad"}]}"#,
        );
        assert_eq!(r.message, "2 problems in the upload");
        assert_eq!(r.problems, [problem("candidates[3].ra", "bad")]);
        assert_eq!(
            r.describe(),
            "400 2 problems in the upload (candidates[3].ra: bad)"
        );
        let r = Refusal::from_body(502, b"<html>Bad Gateway</html>");
        assert_eq!(r.message, "<html>Bad Gateway</html>");
        let r = Refusal::from_body(404, b"");
        assert_eq!(r.message, "Not Found");
    }

    #[test]
    fn base_urls_are_checked_and_joined() {
        let api = |u: &str| Api::new(u, "vet_abc", RetryPolicy::default()).unwrap();
        for base in ["https://v.example.org", "https://v.example.org/"] {
            assert_eq!(
                api(base).url(&["projects", "vast"]).as_str(),
                "https://v.example.org/api/v1/projects/vast"
            );
        }
        assert_eq!(
            api("http://h:8000/vetter/")
                .url(&["projects", "p", "observations", "1234", "candidates"])
                .as_str(),
            "http://h:8000/vetter/api/v1/projects/p/observations/1234/candidates"
        );
        // Path segments are escaped, not interpreted.
        assert_eq!(
            api("http://h").url(&["projects", "a b", "x?y"]).as_str(),
            "http://h/api/v1/projects/a%20b/x%3Fy"
        );
        for bad in [
            "ftp://h",
            "h.example.org",
            "https://u:p@h/",
            "http://h/?x=1",
            "",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_cannot_break_the_header() {
        assert!(check_token("vet_0123abcd").is_ok());
        assert!(check_token("").is_err());
        assert!(check_token("vet_01 23").is_err());
        assert!(check_token("vet_0123\n").is_err());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let api = Api::new("http://h", "vet_secret", RetryPolicy::default()).unwrap();
        assert!(!format!("{api:?}").contains("secret"));
    }

    #[test]
    fn csv_parts_say_text_csv() {
        assert_eq!(mime_for("lc/J1.CSV"), "text/csv");
        assert_eq!(mime_for("J1.fits"), "application/fits");
        assert_eq!(mime_for("J1"), "application/octet-stream");
    }
}

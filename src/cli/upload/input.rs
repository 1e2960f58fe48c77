//! Reading an upload folder: `project.json`, `observations.json` and
//! `candidates.csv` or `candidates.json`, checked here before anything is
//! sent. A bad candidate becomes a [`Rejection`] and the others go on; a bad
//! project or observation file stops the upload before it starts, because
//! every candidate depends on it.
//!
//! The checks are the server's own (`domain::upload`): values are read with
//! its parsers, and each body is put through its `…Spec::parse` as it will
//! be sent. A second set of rules here would drift from the server's, and
//! then a dry run would pass what the upload then refuses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use super::{Rejection, UploadError};
use crate::domain::upload::{
    self as rules, BeamSpec, CandidateSpec, ObservationSpec, Problems, ProjectSpec,
};
use crate::domain::{Problem, SkyPos};

pub const PROJECT_FILE: &str = "project.json";
pub const OBSERVATIONS_FILE: &str = "observations.json";
pub const CANDIDATES_CSV: &str = "candidates.csv";
pub const CANDIDATES_JSON: &str = "candidates.json";

// ------------------------------------------------------------------ values

/// A metric value. JSON has no NaN or infinity, so those travel as the
/// strings the API accepts.
#[derive(Debug, Clone, Copy)]
pub struct Metric(pub f64);

impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits() || self.0 == other.0
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match rules::ieee_spelling(self.0) {
            Some(word) => s.serialize_str(word),
            None => s.serialize_f64(self.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LightCurve {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub points: Vec<Point>,
    /// Where the points were read from, when from a file: the server's
    /// `points[i]` means little to whoever wrote the file.
    #[serde(skip)]
    pub file: Option<LightCurveFile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LightCurveFile {
    pub rel: String,
    /// The line of each point, in order.
    pub lines: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// RFC 3339, in UTC.
    pub time: String,
    pub flux: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub err: Option<f64>,
}

/// A candidate as the batch endpoint takes it, without `files`: those get
/// part names when a request is built.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateBody {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beam: Option<String>,
    pub ra: f64,
    pub dec: f64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub positions: BTreeMap<String, SkyPos>,
    /// `None` is "no value" (`null`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, Option<Metric>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub light_curve: Option<LightCurve>,
    /// `real` or `not_real`: a gold candidate's known truth, checked by the
    /// server's rule before it is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
}

/// A file on disk, checked to be inside the upload folder.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFile {
    pub role: String,
    /// As written in the data file, relative to the folder.
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// CSV: the line in candidates.csv (the header is row 1). JSON: the
    /// position in the list, from 1.
    pub row: usize,
    pub observation: String,
    pub body: CandidateBody,
    pub files: Vec<LocalFile>,
}

impl Candidate {
    pub fn file_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The candidate as a batch request carries it; `part` names the
    /// multipart part of each file.
    pub fn json<'a>(&'a self, part: impl FnMut(&'a LocalFile) -> String) -> Value {
        let Ok(Value::Object(body)) = serde_json::to_value(&self.body) else {
            unreachable!("a struct of strings, numbers and maps serialises to an object")
        };
        with_parts(body, &self.files, part)
    }
}

/// `body` plus `files`, mapping each file's role to the name `part` gives
/// its multipart part: the JSON of a request with files.
pub fn with_parts<'a>(
    mut body: Map<String, Value>,
    files: &'a [LocalFile],
    mut part: impl FnMut(&'a LocalFile) -> String,
) -> Value {
    if !files.is_empty() {
        let m = files
            .iter()
            .map(|f| (f.role.clone(), Value::String(part(f))))
            .collect();
        body.insert("files".into(), Value::Object(m));
    }
    Value::Object(body)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFile {
    pub slug: Option<String>,
    /// What `PUT /api/v1/projects/{slug}` gets: the file without `slug`.
    pub body: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub id: String,
    /// start_time, pointing and metadata, as the API takes them.
    pub body: Map<String, Value>,
    pub files: Vec<LocalFile>,
    pub beams: Vec<Beam>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Beam {
    pub name: String,
    pub body: Map<String, Value>,
    pub files: Vec<LocalFile>,
}

/// Everything read from an upload folder.
#[derive(Debug)]
pub struct Dataset {
    pub project: Option<ProjectFile>,
    pub observations: Vec<Observation>,
    pub candidates: Vec<Candidate>,
    /// Candidates refused here, never sent.
    pub rejected: Vec<Rejection>,
    /// `candidates.csv` or `candidates.json`.
    pub source: &'static str,
}

// ------------------------------------------------------------- the folder

pub fn read_dir(dir: &Path) -> Result<Dataset, UploadError> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| UploadError::Input(format!("{}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(UploadError::Input(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let project = match read_optional(dir, PROJECT_FILE)? {
        Some(text) => Some(parse_project(&text).map_err(|e| input_error(PROJECT_FILE, e))?),
        None => None,
    };
    let observations = match read_optional(dir, OBSERVATIONS_FILE)? {
        Some(text) => parse_observations(dir, &text)
            .map_err(|errs| input_error(OBSERVATIONS_FILE, errs.join("\n  ")))?,
        None => Vec::new(),
    };
    let csv = dir.join(CANDIDATES_CSV);
    let json = dir.join(CANDIDATES_JSON);
    let (source, parsed) = match (csv.exists(), json.exists()) {
        (true, true) => {
            return Err(UploadError::Input(format!(
                "{} has both {CANDIDATES_CSV} and {CANDIDATES_JSON}; keep only one",
                dir.display()
            )))
        }
        (false, false) => {
            return Err(UploadError::Input(format!(
                "{} has neither {CANDIDATES_CSV} nor {CANDIDATES_JSON}",
                dir.display()
            )))
        }
        (true, false) => {
            let text = read_text(&csv, CANDIDATES_CSV)?;
            let parsed =
                parse_candidates_csv(dir, &text).map_err(|e| input_error(CANDIDATES_CSV, e))?;
            (CANDIDATES_CSV, parsed)
        }
        (false, true) => {
            let text = read_text(&json, CANDIDATES_JSON)?;
            let parsed =
                parse_candidates_json(dir, &text).map_err(|e| input_error(CANDIDATES_JSON, e))?;
            (CANDIDATES_JSON, parsed)
        }
    };
    let (candidates, mut rejected) = without_duplicates(parsed);
    rejected.sort_by_key(|r| r.row);
    Ok(Dataset {
        project,
        observations,
        candidates,
        rejected,
        source,
    })
}

fn input_error(file: &str, e: impl std::fmt::Display) -> UploadError {
    UploadError::Input(format!("{file}: {e}"))
}

fn read_optional(dir: &Path, name: &str) -> Result<Option<String>, UploadError> {
    let path = dir.join(name);
    if path.exists() {
        read_text(&path, name).map(Some)
    } else {
        Ok(None)
    }
}

fn read_text(path: &Path, name: &str) -> Result<String, UploadError> {
    std::fs::read_to_string(path).map_err(|e| input_error(name, e))
}

/// The same (observation, name) twice would make the second silently
/// overwrite the first; refuse the later ones.
fn without_duplicates(
    parsed: Vec<Result<Candidate, Rejection>>,
) -> (Vec<Candidate>, Vec<Rejection>) {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    for item in parsed {
        match item {
            Ok(c) => {
                let key = (c.observation.clone(), c.body.name.clone());
                if let Some(first) = seen.get(&key) {
                    rejected.push(Rejection::new(
                        &c,
                        format!(
                            "row {first} has the same observation ({}) and name",
                            c.observation
                        ),
                    ));
                } else {
                    seen.insert(key, c.row);
                    ok.push(c);
                }
            }
            Err(r) => rejected.push(r),
        }
    }
    (ok, rejected)
}

// -------------------------------------------------------- the server's rules

// Every check the server makes without its database is made here by the
// same code, on the JSON the client is about to send: `CandidateSpec::parse`
// and its siblings are the gate. What the client checks itself is only what
// the server never sees (paths, the CSV layout, duplicates across
// requests) or what turns its input into that JSON.

/// Part names standing in for the real ones, which are only given when a
/// batch is cut; the server's checks do not depend on them.
fn placeholder_parts<'a>() -> impl FnMut(&'a LocalFile) -> String {
    let mut n = 0;
    move |_| {
        n += 1;
        format!("f{n}")
    }
}

/// What the server would refuse in this candidate, in its words. `Err` if
/// anything, with the problems found in reading it (`read`) first; the
/// server's problems with a field already refused here are left out, as
/// they would only repeat it.
fn checked(c: Candidate, read: Vec<Problem>, csv: bool) -> Result<Candidate, Rejection> {
    let mut p = Problems::default();
    CandidateSpec::parse(c.json(placeholder_parts()), None, "", &mut p);
    let under = |field: &str, prefix: &str| {
        field == prefix
            || field
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    let server =
        p.0.into_iter()
            .filter(|g| !read.iter().any(|r| under(&g.field, &r.field)));
    let all: Vec<Problem> = read.iter().cloned().chain(server).collect();
    if all.is_empty() {
        return Ok(c);
    }
    let reason = all
        .iter()
        .map(|p| {
            let label = label(&p.field, c.body.light_curve.as_ref(), csv);
            if label.is_empty() {
                p.message.clone()
            } else {
                format!("{label}: {}", p.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(Rejection::new(&c, reason))
}

/// How a field of the API is called where the user wrote it: a CSV column,
/// or a line of a light-curve file.
fn label(field: &str, lc: Option<&LightCurve>, csv: bool) -> String {
    if let Some(file) = lc.and_then(|lc| lc.file.as_ref()) {
        if field == "light_curve.unit" {
            return "light_curve_unit".into();
        }
        let at_line = field
            .strip_prefix("light_curve.points[")
            .and_then(|rest| rest.split_once(']'))
            .and_then(|(i, rest)| Some((file.lines.get(i.parse::<usize>().ok()?)?, rest)));
        let what = if csv {
            "light_curve"
        } else {
            "light_curve_file"
        };
        if let Some((line, rest)) = at_line {
            let mut l = format!("{what} {:?}, line {line}", file.rel);
            let rest = rest.trim_start_matches('.');
            if !rest.is_empty() {
                l.push_str(": ");
                l.push_str(rest);
            }
            return l;
        }
        if field.starts_with("light_curve.points") {
            return format!("{what} {:?}", file.rel);
        }
    }
    if csv {
        for (api, column) in [
            ("metrics.", "metric:"),
            ("attributes.", "attr:"),
            ("positions.", "pos:"),
            ("files.", "file:"),
        ] {
            if let Some(key) = field.strip_prefix(api) {
                return format!("{column}{key}");
            }
        }
    }
    match field {
        "body" => String::new(),
        f => f.to_string(),
    }
}

/// A problem of the server's with a project, observation or beam, whose
/// fields it names under `body`.
fn problem_text(p: &Problem) -> String {
    match p.field.strip_prefix("body") {
        Some("") => p.message.clone(),
        Some(rest) if rest.starts_with('.') => format!("{}: {}", &rest[1..], p.message),
        _ => format!("{}: {}", p.field, p.message),
    }
}

fn describe(problems: &[Problem]) -> String {
    let list: Vec<String> = problems.iter().map(problem_text).collect();
    list.join("; ")
}

/// A number in a CSV cell, read as the API reads a number in a JSON
/// string; it must be finite.
fn cell_number(cell: &str) -> Result<f64, String> {
    rules::parse_finite(&Value::String(cell.to_string()))
}

/// A metric value from a CSV cell: what the API takes as a string, and an
/// empty cell is "no value".
pub fn parse_metric_cell(s: &str) -> Result<Option<Metric>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    rules::parse_metric(&Value::String(s.to_string())).map(|x| x.map(Metric))
}

/// A time as the API wants it, RFC 3339 in UTC, from RFC 3339 with a zone
/// or from an MJD (UTC), which only the client takes.
pub fn api_time(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Ok(mjd) = s.parse::<f64>() {
        return mjd_to_rfc3339(mjd);
    }
    let t = rules::parse_time(s).map_err(|e| format!("{e}, nor an MJD"))?;
    format_utc(t)
}

fn format_utc(t: OffsetDateTime) -> Result<String, String> {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| format!("cannot write time {t}: {e}"))
}

/// Modified Julian Date (UTC) to RFC 3339, rounded to the microsecond
/// (what PostgreSQL keeps).
pub fn mjd_to_rfc3339(mjd: f64) -> Result<String, String> {
    if !mjd.is_finite() || !(0.0..100_000.0).contains(&mjd) {
        return Err(format!(
            "MJD {mjd} is outside 0 to 100000 (a Julian Date? MJD = JD - 2400000.5)"
        ));
    }
    let day = mjd.floor();
    let micros = ((mjd - day) * 86_400e6).round() as i64;
    // MJD 0 is 1858-11-17, Julian day number 2400001.
    let date =
        Date::from_julian_day(day as i32 + 2_400_001).map_err(|e| format!("MJD {mjd}: {e}"))?;
    let t = date.midnight().assume_utc() + time::Duration::microseconds(micros);
    format_utc(t)
}

/// `rel` (from a data file) resolved inside `dir`; it must name a file.
/// Absolute paths and `..` are refused, so a data file cannot send
/// something from elsewhere on the disk. Symbolic links are followed: making
/// one is a deliberate choice of whoever owns the folder.
pub fn resolve_file(dir: &Path, role: &str, rel: &str) -> Result<LocalFile, String> {
    let rel = rel.trim();
    if rel.is_empty() {
        return Err("the path is empty".into());
    }
    let p = Path::new(rel);
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "path {rel:?} leaves the upload folder ('..' is not allowed)"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "path {rel:?} is absolute; give it relative to the upload folder"
                ))
            }
        }
    }
    let path = dir.join(p);
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("file {rel:?} not found"),
        _ => format!("file {rel:?}: {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!("{rel:?} is not a file"));
    }
    Ok(LocalFile {
        role: role.to_string(),
        rel: rel.to_string(),
        path,
        size: meta.len(),
    })
}

// ---------------------------------------------------------------- project

pub fn parse_project(text: &str) -> Result<ProjectFile, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut body) = v else {
        return Err("must be a JSON object".into());
    };
    // The slug goes in the URL, not the body.
    let slug = match body.remove("slug") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            rules::check_slug(&s).map_err(|e| format!("slug: {e}"))?;
            Some(s)
        }
        Some(other) => return Err(format!("slug: {other} is not a string")),
    };
    ProjectSpec::parse(Value::Object(body.clone())).map_err(|p| describe(&p))?;
    Ok(ProjectFile { slug, body })
}

// ----------------------------------------------------------- observations

/// Every problem in observations.json, or the observations.
pub fn parse_observations(dir: &Path, text: &str) -> Result<Vec<Observation>, Vec<String>> {
    let v: Value = serde_json::from_str(text).map_err(|e| vec![format!("not valid JSON: {e}")])?;
    let Value::Array(list) = v else {
        return Err(vec!["must be a JSON list of observations".into()]);
    };
    let mut errs = Vec::new();
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let label = match item.get("id").and_then(Value::as_str) {
            Some(id) => format!("observation {} ({id})", i + 1),
            None => format!("observation {}", i + 1),
        };
        let mut e = Vec::new();
        if let Some(obs) = parse_observation(dir, item, &mut e) {
            if !ids.insert(obs.id.clone()) {
                e.push(format!("id {:?} is listed twice", obs.id));
            }
            out.push(obs);
        }
        errs.extend(e.into_iter().map(|m| format!("{label}: {m}")));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

fn parse_observation(dir: &Path, v: &Value, errs: &mut Vec<String>) -> Option<Observation> {
    let Some(obj) = v.as_object() else {
        errs.push("must be a JSON object".into());
        return None;
    };
    let before = errs.len();
    let mut id = None;
    let mut body = Map::new();
    let mut files = Vec::new();
    let mut beams = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            // The id goes in the URL, not the body.
            "id" => match v.as_str() {
                Some(s) => match rules::check_external_id(s, 128) {
                    Ok(()) => id = Some(s.to_string()),
                    Err(e) => errs.push(format!("id: {e}")),
                },
                None => errs.push("id: must be text".into()),
            },
            "start_time" => match time_value(v) {
                Ok(t) => {
                    body.insert(k.clone(), Value::String(t));
                }
                Err(e) => errs.push(format!("start_time: {e}")),
            },
            "pointing" => {
                body.insert(k.clone(), v.clone());
            }
            // Checked here because the server's message for a wrong type
            // would not name the field.
            "metadata" => match v {
                Value::Object(_) => {
                    body.insert(k.clone(), v.clone());
                }
                _ => errs.push("metadata: must be a JSON object".into()),
            },
            "files" => files = file_map(dir, v).unwrap_or_else(|e| push_all(errs, e)),
            "beams" => match v.as_array() {
                Some(list) => {
                    let mut names = HashSet::new();
                    for (j, b) in list.iter().enumerate() {
                        let mut e = Vec::new();
                        if let Some(beam) = parse_beam(dir, b, &mut e) {
                            if !names.insert(beam.name.clone()) {
                                e.push(format!("name {:?} is listed twice", beam.name));
                            }
                            beams.push(beam);
                        }
                        errs.extend(e.into_iter().map(|m| format!("beams[{j}]: {m}")));
                    }
                }
                None => errs.push("beams: must be a list".into()),
            },
            other => errs.push(format!(
                "unknown field {other:?} (known: id, start_time, pointing, metadata, files, beams)"
            )),
        }
    }
    if id.is_none() && errs.len() == before {
        errs.push("needs an \"id\"".into());
    }
    let json = with_parts(body.clone(), &files, placeholder_parts());
    if let Err(p) = ObservationSpec::parse(json) {
        errs.extend(p.iter().map(problem_text));
    }
    if errs.len() > before {
        return None;
    }
    Some(Observation {
        id: id?,
        body,
        files,
        beams,
    })
}

fn parse_beam(dir: &Path, v: &Value, errs: &mut Vec<String>) -> Option<Beam> {
    let Some(obj) = v.as_object() else {
        errs.push("must be a JSON object".into());
        return None;
    };
    let before = errs.len();
    let mut name = None;
    let mut body = Map::new();
    let mut files = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            // The name goes in the URL, not the body.
            "name" => match v.as_str() {
                Some(s) => match rules::check_external_id(s, 64) {
                    Ok(()) => name = Some(s.to_string()),
                    Err(e) => errs.push(format!("name: {e}")),
                },
                None => errs.push("name: must be text".into()),
            },
            "centre" => {
                body.insert(k.clone(), v.clone());
            }
            "metadata" => match v {
                Value::Object(_) => {
                    body.insert(k.clone(), v.clone());
                }
                _ => errs.push("metadata: must be a JSON object".into()),
            },
            "files" => files = file_map(dir, v).unwrap_or_else(|e| push_all(errs, e)),
            other => errs.push(format!(
                "unknown field {other:?} (known: name, centre, metadata, files)"
            )),
        }
    }
    if name.is_none() && errs.len() == before {
        errs.push("needs a \"name\"".into());
    }
    let json = with_parts(body.clone(), &files, placeholder_parts());
    if let Err(p) = BeamSpec::parse(json) {
        errs.extend(p.iter().map(problem_text));
    }
    if errs.len() > before {
        return None;
    }
    Some(Beam {
        name: name?,
        body,
        files,
    })
}

fn push_all<T: Default>(errs: &mut Vec<String>, e: Vec<String>) -> T {
    errs.extend(e);
    T::default()
}

/// `{"role": "relative/path", ...}` → files inside the folder. The roles
/// are the server's to check.
fn file_map(dir: &Path, v: &Value) -> Result<Vec<LocalFile>, Vec<String>> {
    let Some(obj) = v.as_object() else {
        return Err(vec!["files: must be an object {\"role\": \"path\"}".into()]);
    };
    let mut errs = Vec::new();
    let mut out = Vec::new();
    for (role, path) in obj {
        let r = path
            .as_str()
            .ok_or_else(|| "the path must be text".to_string())
            .and_then(|rel| resolve_file(dir, role, rel));
        match r {
            Ok(f) => out.push(f),
            Err(e) => errs.push(format!("files.{role}: {e}")),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// A time in JSON: a string for [`api_time`], or a number, an MJD.
fn time_value(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => api_time(s),
        Value::Number(n) => mjd_to_rfc3339(n.as_f64().unwrap_or(f64::NAN)),
        other => Err(format!("{other} is not a time")),
    }
}

// ------------------------------------------------------------ light curves

/// A light-curve CSV: header `time,flux` or `time,flux,err`. What the
/// server checks of the curve as a whole (at least one point, no time
/// twice) it checks on the request; `lc.file` turns its `points[i]` back
/// into lines.
pub fn read_light_curve(file: &LocalFile, unit: Option<String>) -> Result<LightCurve, String> {
    let text = std::fs::read_to_string(&file.path)
        .map_err(|e| format!("light curve {:?}: {e}", file.rel))?;
    let rows =
        parse_light_curve_csv(&text).map_err(|e| format!("light curve {:?}: {e}", file.rel))?;
    let (lines, points) = rows.into_iter().unzip();
    Ok(LightCurve {
        unit,
        points,
        file: Some(LightCurveFile {
            rel: file.rel.clone(),
            lines,
        }),
    })
}

/// Each point with its line in the file.
pub fn parse_light_curve_csv(text: &str) -> Result<Vec<(u64, Point)>, String> {
    if without_bom(text).trim().is_empty() {
        return Err(
            "the file is empty: it needs a header row naming the columns time, flux and \
             optionally err"
                .into(),
        );
    }
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(without_bom(text).as_bytes());
    let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
    let (mut t, mut f, mut e) = (None, None, None);
    for (i, h) in headers.iter().enumerate() {
        let slot = match h {
            "time" => &mut t,
            "flux" => &mut f,
            "err" => &mut e,
            other => {
                return Err(format!(
                    "unknown column {other:?} (the columns are time, flux and optionally err)"
                ))
            }
        };
        if slot.replace(i).is_some() {
            return Err(format!("column {h:?} appears twice"));
        }
    }
    let (Some(t), Some(f)) = (t, f) else {
        return Err("needs the columns time and flux".into());
    };
    let mut points = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        let line = rec.position().map_or(0, |p| p.line());
        let at = |msg: String| format!("line {line}: {msg}");
        let time = api_time(&rec[t]).map_err(|e| at(format!("time: {e}")))?;
        let flux = cell_number(&rec[f]).map_err(|e| at(format!("flux: {e}")))?;
        let err = match e {
            None => None,
            Some(e) => Some(
                rules::parse_error_bar(&Value::String(rec[e].to_string()))
                    .map_err(|e| at(format!("err: {e}")))?,
            ),
        };
        points.push((line, Point { time, flux, err }));
    }
    Ok(points)
}

/// An inline light curve (API shape); a number for `time` is taken as MJD.
/// Its fields are read into [`LightCurve`], so unknown ones are refused
/// here: they would be dropped before the server could see them.
fn parse_light_curve_json(v: &Value) -> Result<LightCurve, Problem> {
    let bad = |field: String, e: String| Problem::new(format!("light_curve{field}"), e);
    let obj = v.as_object().ok_or_else(|| {
        bad(
            String::new(),
            "must be an object {\"unit\": ..., \"points\": [...]}".into(),
        )
    })?;
    let mut unit = None;
    let mut points = None;
    for (k, v) in obj {
        match k.as_str() {
            "unit" => match v {
                Value::String(s) => unit = Some(s.clone()),
                Value::Null => {}
                _ => return Err(bad(".unit".into(), "must be text".into())),
            },
            "points" => match v.as_array() {
                Some(list) => points = Some(list),
                None => return Err(bad(".points".into(), "must be a list".into())),
            },
            other => {
                return Err(bad(
                    String::new(),
                    format!("unknown field {other:?} (known: unit, points)"),
                ))
            }
        }
    }
    let list = points.ok_or_else(|| bad(String::new(), "needs \"points\"".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let at = |name: &str, e: String| bad(format!(".points[{i}]{name}"), e);
        let obj = p
            .as_object()
            .ok_or_else(|| at("", "must be an object".into()))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "time" | "flux" | "err"))
        {
            return Err(at("", format!("unknown field {k:?}")));
        }
        let time =
            time_value(obj.get("time").unwrap_or(&Value::Null)).map_err(|e| at(".time", e))?;
        let flux = rules::parse_finite(obj.get("flux").unwrap_or(&Value::Null))
            .map_err(|e| at(".flux", e))?;
        let err = match obj.get("err") {
            None | Some(Value::Null) => None,
            Some(v) => Some(rules::parse_finite(v).map_err(|e| at(".err", e))?),
        };
        out.push(Point { time, flux, err });
    }
    Ok(LightCurve {
        unit,
        points: out,
        file: None,
    })
}

// ------------------------------------------------------------ candidates.csv

/// Spreadsheets often start a CSV export with a byte-order mark, which
/// would otherwise become part of the first column's name.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// What a column of candidates.csv holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Observation,
    Name,
    Ra,
    Dec,
    Beam,
    Metric(String),
    PosRa(String),
    PosDec(String),
    Attr(String),
    File(String),
    LightCurve,
    LightCurveUnit,
    Gold,
}

const KNOWN_COLUMNS: &str = "observation, name, ra, dec, beam, metric:<key>, pos:<kind>:ra, \
pos:<kind>:dec, attr:<key>, file:<role>, light_curve, light_curve_unit, gold";

pub fn parse_header<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<Column>, String> {
    let mut cols = Vec::new();
    for name in names {
        let col = match name {
            "observation" => Column::Observation,
            "name" => Column::Name,
            "ra" => Column::Ra,
            "dec" => Column::Dec,
            "beam" => Column::Beam,
            "light_curve" => Column::LightCurve,
            "light_curve_unit" => Column::LightCurveUnit,
            "gold" => Column::Gold,
            _ => {
                if let Some(key) = name.strip_prefix("metric:") {
                    rules::check_key(key).map_err(|e| format!("column {name:?}: {e}"))?;
                    Column::Metric(key.into())
                } else if let Some(key) = name.strip_prefix("attr:") {
                    rules::check_key(key).map_err(|e| format!("column {name:?}: {e}"))?;
                    Column::Attr(key.into())
                } else if let Some(role) = name.strip_prefix("file:") {
                    rules::check_key(role).map_err(|e| format!("column {name:?}: {e}"))?;
                    Column::File(role.into())
                } else if let Some(rest) = name.strip_prefix("pos:") {
                    let col = match rest.rsplit_once(':') {
                        Some((kind, "ra")) => Column::PosRa(kind.into()),
                        Some((kind, "dec")) => Column::PosDec(kind.into()),
                        _ => {
                            return Err(format!(
                                "unknown column {name:?}: positions are pos:<kind>:ra and pos:<kind>:dec"
                            ))
                        }
                    };
                    let (Column::PosRa(kind) | Column::PosDec(kind)) = &col else {
                        unreachable!()
                    };
                    rules::check_key(kind).map_err(|e| format!("column {name:?}: {e}"))?;
                    col
                } else {
                    return Err(format!(
                        "unknown column {name:?} (the columns are {KNOWN_COLUMNS})"
                    ));
                }
            }
        };
        if cols.contains(&col) {
            return Err(format!("column {name:?} appears twice"));
        }
        cols.push(col);
    }
    for (col, name) in [
        (Column::Observation, "observation"),
        (Column::Name, "name"),
        (Column::Ra, "ra"),
        (Column::Dec, "dec"),
    ] {
        if !cols.contains(&col) {
            return Err(format!("the required column {name:?} is missing"));
        }
    }
    for col in &cols {
        match col {
            Column::PosRa(k) if !cols.contains(&Column::PosDec(k.clone())) => {
                return Err(format!("column \"pos:{k}:ra\" has no \"pos:{k}:dec\""))
            }
            Column::PosDec(k) if !cols.contains(&Column::PosRa(k.clone())) => {
                return Err(format!("column \"pos:{k}:dec\" has no \"pos:{k}:ra\""))
            }
            _ => {}
        }
    }
    if cols.contains(&Column::LightCurveUnit) && !cols.contains(&Column::LightCurve) {
        return Err("column \"light_curve_unit\" needs a \"light_curve\" column".into());
    }
    Ok(cols)
}

/// Each data row becomes a candidate or a rejection; a bad header is an
/// error for the whole file.
pub fn parse_candidates_csv(
    dir: &Path,
    text: &str,
) -> Result<Vec<Result<Candidate, Rejection>>, String> {
    if without_bom(text).trim().is_empty() {
        return Err(
            "the file is empty: it needs a header row naming at least the columns observation, \
             name, ra and dec"
                .into(),
        );
    }
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(without_bom(text).as_bytes());
    let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
    let cols = parse_header(headers.iter())?;
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut row = 1;
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                row = record.position().map_or(row + 1, |p| p.line() as usize);
                out.push(parse_csv_row(dir, &cols, &record, row));
            }
            Err(e) => {
                row = e.position().map_or(row + 1, |p| p.line() as usize);
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    // Not a problem of one row: the rest cannot be read.
                    return Err(format!("row {row}: {}", csv_error(&e)));
                }
                out.push(Err(Rejection {
                    row,
                    observation: String::new(),
                    name: String::new(),
                    reason: csv_error(&e),
                }));
            }
        }
    }
    Ok(out)
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".into(),
        _ => e.to_string(),
    }
}

fn parse_csv_row(
    dir: &Path,
    cols: &[Column],
    rec: &csv::StringRecord,
    row: usize,
) -> Result<Candidate, Rejection> {
    // Problems in turning cells into the request, named by the API's
    // field; `checked` shows them as columns.
    let mut read: Vec<Problem> = Vec::new();
    let mut observation = String::new();
    let mut name = String::new();
    let (mut ra, mut dec) = (0.0, 0.0);
    let mut beam = None;
    let mut metrics = BTreeMap::new();
    let mut pos: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut attributes = Map::new();
    let mut files = Vec::new();
    let mut lc_path = "";
    let mut lc_unit = "";
    let mut gold = None;
    for (col, cell) in cols.iter().zip(rec.iter()) {
        match col {
            Column::Observation => observation = cell.to_string(),
            Column::Name => name = cell.to_string(),
            Column::Ra => match cell_number(cell) {
                Ok(x) => ra = x,
                Err(e) => read.push(Problem::new("ra", e)),
            },
            Column::Dec => match cell_number(cell) {
                Ok(x) => dec = x,
                Err(e) => read.push(Problem::new("dec", e)),
            },
            Column::Beam if cell.is_empty() => {}
            Column::Beam => beam = Some(cell.to_string()),
            Column::Metric(key) => match parse_metric_cell(cell) {
                Ok(v) => {
                    metrics.insert(key.clone(), v);
                }
                Err(e) => read.push(Problem::new(format!("metrics.{key}"), e)),
            },
            Column::PosRa(kind) => pos.entry(kind).or_default().0 = cell,
            Column::PosDec(kind) => pos.entry(kind).or_default().1 = cell,
            Column::Attr(_) if cell.is_empty() => {}
            Column::Attr(key) => {
                attributes.insert(key.clone(), Value::String(cell.to_string()));
            }
            Column::File(_) if cell.is_empty() => {}
            Column::File(role) => match resolve_file(dir, role, cell) {
                Ok(f) => files.push(f),
                Err(e) => read.push(Problem::new(format!("files.{role}"), e)),
            },
            Column::LightCurve => lc_path = cell,
            Column::LightCurveUnit => lc_unit = cell,
            Column::Gold if cell.is_empty() => {}
            Column::Gold => gold = Some(cell.to_string()),
        }
    }
    // Not part of the body: it goes in the URL.
    if let Err(e) = rules::check_external_id(&observation, 128) {
        read.push(Problem::new("observation", e));
    }
    let mut positions = BTreeMap::new();
    for (kind, (r, d)) in pos {
        let field = format!("positions.{kind}");
        match (r.is_empty(), d.is_empty()) {
            (true, true) => {}
            (false, false) => {
                let p = cell_number(r)
                    .map_err(|e| format!("ra: {e}"))
                    .and_then(|r| Ok((r, cell_number(d).map_err(|e| format!("dec: {e}"))?)))
                    .and_then(|(r, d)| SkyPos::new(r, d));
                match p {
                    Ok(p) => {
                        positions.insert(kind.to_string(), p);
                    }
                    Err(e) => read.push(Problem::new(field, e)),
                }
            }
            _ => read.push(Problem::new(field, "give both ra and dec, or neither")),
        }
    }
    let mut light_curve = None;
    if !lc_path.is_empty() {
        let unit = (!lc_unit.is_empty()).then(|| lc_unit.to_string());
        match resolve_file(dir, "light_curve", lc_path).and_then(|f| read_light_curve(&f, unit)) {
            Ok(lc) => light_curve = Some(lc),
            Err(e) => read.push(Problem::new("light_curve", e)),
        }
    }
    let c = Candidate {
        row,
        observation,
        body: CandidateBody {
            name,
            beam,
            ra,
            dec,
            positions,
            metrics,
            attributes,
            light_curve,
            gold,
        },
        files,
    };
    checked(c, read, true)
}

// ----------------------------------------------------------- candidates.json

pub fn parse_candidates_json(
    dir: &Path,
    text: &str,
) -> Result<Vec<Result<Candidate, Rejection>>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Array(list) = v else {
        return Err("must be a JSON list of candidates".into());
    };
    Ok(list
        .iter()
        .enumerate()
        .map(|(i, v)| parse_json_candidate(dir, v, i + 1))
        .collect())
}

fn parse_json_candidate(dir: &Path, v: &Value, row: usize) -> Result<Candidate, Rejection> {
    let text_of = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let Some(obj) = v.as_object() else {
        return Err(Rejection {
            row,
            observation: String::new(),
            name: String::new(),
            reason: "must be a JSON object".into(),
        });
    };
    // Values are read with the server's parsers, so a refusal here is in
    // its words; its other rules are applied by `checked`.
    let mut read: Vec<Problem> = Vec::new();
    let mut bad = |field: &str, e: String| read.push(Problem::new(field, e));
    let mut observation = None;
    let mut beam = None;
    let mut positions = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    let mut attributes = Map::new();
    let mut light_curve = None;
    let mut lc_file = None;
    let mut lc_unit = None;
    let mut files = Vec::new();
    let mut gold = None;
    for (k, v) in obj {
        match k.as_str() {
            "observation" => match v.as_str() {
                Some(s) => match rules::check_external_id(s, 128) {
                    Ok(()) => observation = Some(s.to_string()),
                    Err(e) => bad(k, e),
                },
                None => bad(k, "must be text".into()),
            },
            "name" if !v.is_string() => bad(k, "must be text".into()),
            "name" | "ra" | "dec" => {}
            "beam" => match v {
                Value::Null => {}
                Value::String(s) => beam = Some(s.clone()),
                _ => bad(k, "must be text".into()),
            },
            "positions" => match v.as_object() {
                Some(m) => {
                    for (kind, p) in m {
                        match rules::parse_position(p) {
                            Ok(p) => {
                                positions.insert(kind.clone(), p);
                            }
                            Err(e) => bad(&format!("positions.{kind}"), e),
                        }
                    }
                }
                None => bad(k, "must be an object".into()),
            },
            "metrics" => match v.as_object() {
                Some(m) => {
                    for (key, x) in m {
                        match rules::parse_metric(x) {
                            Ok(x) => {
                                metrics.insert(key.clone(), x.map(Metric));
                            }
                            Err(e) => bad(&format!("metrics.{key}"), e),
                        }
                    }
                }
                None => bad(k, "must be an object".into()),
            },
            "attributes" => match v.as_object() {
                Some(m) => attributes = m.clone(),
                None => bad(k, "must be an object".into()),
            },
            "light_curve" => match parse_light_curve_json(v) {
                Ok(lc) => light_curve = Some(lc),
                Err(p) => bad(&p.field, p.message),
            },
            "light_curve_file" => match v.as_str() {
                Some(s) => lc_file = Some(s),
                None => bad(k, "must be a path".into()),
            },
            "light_curve_unit" => match v.as_str() {
                Some(s) => lc_unit = Some(s),
                None => bad(k, "must be text".into()),
            },
            "files" => match file_map(dir, v) {
                Ok(f) => files = f,
                Err(e) => e.into_iter().for_each(|e| bad("", e)),
            },
            // Its value is checked with the rest, by the server's rule.
            "gold" => match v {
                Value::Null => {}
                Value::String(s) => gold = Some(s.clone()),
                _ => bad(k, "must be \"real\" or \"not_real\"".into()),
            },
            other => bad(
                "",
                format!(
                    "unknown field {other:?} (known: observation, name, beam, ra, dec, positions, \
                     metrics, attributes, light_curve, light_curve_file, light_curve_unit, files, \
                     gold)"
                ),
            ),
        }
    }
    // A missing or wrong coordinate is refused here rather than sent as a
    // placeholder; the server's parser says why.
    let mut coordinate = |k: &str| match rules::parse_coordinate(obj.get(k)) {
        Ok(x) => x,
        Err(e) => {
            bad(k, e);
            0.0
        }
    };
    let (ra, dec) = (coordinate("ra"), coordinate("dec"));
    if observation.is_none() && !obj.contains_key("observation") {
        bad(
            "observation",
            "every candidate needs the id of its observation".into(),
        );
    }
    match (lc_file, &light_curve) {
        (Some(_), Some(_)) => bad("", "give light_curve or light_curve_file, not both".into()),
        (Some(rel), None) => {
            let unit = lc_unit.map(str::to_string);
            match resolve_file(dir, "light_curve", rel).and_then(|f| read_light_curve(&f, unit)) {
                Ok(lc) => light_curve = Some(lc),
                Err(e) => bad("light_curve_file", e),
            }
        }
        (None, _) if lc_unit.is_some() => {
            bad("", "light_curve_unit goes with light_curve_file".into())
        }
        (None, _) => {}
    }
    let c = Candidate {
        row,
        observation: observation.unwrap_or_else(|| text_of("observation")),
        body: CandidateBody {
            name: text_of("name"),
            beam,
            ra,
            dec,
            positions,
            metrics,
            attributes,
            light_curve,
            gold,
        },
        files,
    };
    checked(c, read, false)
}

#[cfg(test)]
pub(super) mod tests;

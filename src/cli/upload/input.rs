//! Reading an upload folder: `project.json`, `observations.json` and
//! `candidates.csv` or `candidates.json`, checked here before anything is
//! sent. A bad candidate becomes a [`Rejection`] and the others go on; a bad
//! project or observation file stops the upload before it starts, because
//! every candidate depends on it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use super::{Rejection, UploadError};
use crate::domain::{Dec, Ra};

pub const PROJECT_FILE: &str = "project.json";
pub const OBSERVATIONS_FILE: &str = "observations.json";
pub const CANDIDATES_CSV: &str = "candidates.csv";
pub const CANDIDATES_JSON: &str = "candidates.json";

/// The server takes at most this many attributes per candidate.
const MAX_ATTRIBUTES: usize = 64;

// ------------------------------------------------------------------ values

/// A position in degrees, checked against the API's ranges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pos {
    pub ra: f64,
    pub dec: f64,
}

impl Pos {
    pub fn new(ra: f64, dec: f64) -> Result<Self, String> {
        Ra::new(ra)?;
        Dec::new(dec)?;
        Ok(Self { ra, dec })
    }
}

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
        let x = self.0;
        if x.is_nan() {
            s.serialize_str("NaN")
        } else if x == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if x == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(x)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LightCurve {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub points: Vec<Point>,
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
    pub positions: BTreeMap<String, Pos>,
    /// `None` is "no value" (`null`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, Option<Metric>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub light_curve: Option<LightCurve>,
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

// ------------------------------------------------------------ small checks

/// Metric keys, position kinds, file roles, attribute names: the same rule
/// the server applies, so a bad name is caught before anything is sent.
pub fn check_key(what: &str, s: &str) -> Result<(), String> {
    crate::domain::upload::check_key(s).map_err(|e| format!("{what} {e}"))
}

/// Observation ids and beam names: they go into URL paths.
pub fn check_external_id(what: &str, s: &str, max: usize) -> Result<(), String> {
    crate::domain::upload::check_external_id(s, max).map_err(|e| format!("{what} {e}"))
}

pub fn check_slug(s: &str) -> Result<(), String> {
    crate::domain::upload::check_slug(s)
}

/// The server's own rule, so the client refuses exactly what it would.
fn check_name(s: &str) -> Result<(), String> {
    crate::domain::upload::check_candidate_name(s).map_err(|e| format!("name: {e}"))
}

/// A number in a CSV cell. `what` names the column in messages.
fn parse_number(what: &str, s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("{what}: {s:?} is not a number"))
}

/// A metric value from a CSV cell: a number, or NaN / inf / -inf in the
/// spellings the API accepts. Empty is "no value".
pub fn parse_metric_cell(s: &str) -> Result<Option<Metric>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Some(x) = special(s) {
        return Ok(Some(Metric(x)));
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(Metric(x))),
        // "1e999" parses as infinity: more likely a mistake than meant.
        Ok(_) => Err(format!("{s:?} is out of range")),
        Err(_) => Err(format!(
            "{s:?} is not a number (NaN, inf and -inf are allowed; leave the cell empty for no value)"
        )),
    }
}

fn special(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A metric value from JSON: a number, one of the special strings, or null.
fn parse_metric_json(v: &Value) -> Result<Option<Metric>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .map(|x| Some(Metric(x)))
            .ok_or_else(|| format!("{n} is not a number")),
        Value::String(s) => special(s.trim()).map(|x| Some(Metric(x))).ok_or_else(|| {
            format!("{s:?} is not a number (use a JSON number, or \"NaN\", \"Infinity\", \"-Infinity\")")
        }),
        other => Err(format!("{other} is not a number")),
    }
}

fn json_number(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("{v} is not a number"))
}

/// A time as the API wants it, from RFC 3339 with a zone or an MJD (UTC).
pub fn parse_time(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Ok(mjd) = s.parse::<f64>() {
        return mjd_to_rfc3339(mjd);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        format!(
            "time {s:?} is neither RFC 3339 with a zone (2024-05-01T12:34:56Z) nor an MJD number"
        )
    })?;
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
    let slug = match body.remove("slug") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            check_slug(&s)?;
            Some(s)
        }
        Some(other) => return Err(format!("slug: {other} is not a string")),
    };
    // The server checks the rest; a few checks here catch typos in a dry run.
    match body.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => return Err("name: must be non-empty text".into()),
        None => {}
    }
    if let Some(metrics) = body.get("metrics") {
        let list = metrics.as_array().ok_or("metrics: must be a list")?;
        for (i, m) in list.iter().enumerate() {
            let key = m
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("metrics[{i}]: needs a \"key\""))?;
            check_key("metric key", key).map_err(|e| format!("metrics[{i}]: {e}"))?;
        }
    }
    if let Some(tags) = body.get("tags") {
        let list = tags.as_array().ok_or("tags: must be a list")?;
        for (i, t) in list.iter().enumerate() {
            if !t.get("name").is_some_and(Value::is_string) {
                return Err(format!("tags[{i}]: needs a \"name\""));
            }
        }
    }
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
            "id" => match v.as_str() {
                Some(s) => match check_external_id("id", s, 128) {
                    Ok(()) => id = Some(s.to_string()),
                    Err(e) => errs.push(e),
                },
                None => errs.push("id: must be text".into()),
            },
            "start_time" => match time_value(v) {
                Ok(t) => {
                    body.insert(k.clone(), Value::String(t));
                }
                Err(e) => errs.push(format!("start_time: {e}")),
            },
            "pointing" => match position_value(v) {
                Ok(p) => {
                    body.insert(k.clone(), serde_json::to_value(p).unwrap_or_default());
                }
                Err(e) => errs.push(format!("pointing: {e}")),
            },
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
            "name" => match v.as_str() {
                Some(s) => match check_external_id("beam name", s, 64) {
                    Ok(()) => name = Some(s.to_string()),
                    Err(e) => errs.push(e),
                },
                None => errs.push("name: must be text".into()),
            },
            "centre" => match position_value(v) {
                Ok(p) => {
                    body.insert(k.clone(), serde_json::to_value(p).unwrap_or_default());
                }
                Err(e) => errs.push(format!("centre: {e}")),
            },
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

/// `{"role": "relative/path", ...}` → checked files.
fn file_map(dir: &Path, v: &Value) -> Result<Vec<LocalFile>, Vec<String>> {
    let Some(obj) = v.as_object() else {
        return Err(vec!["files: must be an object {\"role\": \"path\"}".into()]);
    };
    let mut errs = Vec::new();
    let mut out = Vec::new();
    for (role, path) in obj {
        let r = check_key("file role", role).and_then(|()| {
            let rel = path.as_str().ok_or("the path must be text")?;
            resolve_file(dir, role, rel)
        });
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

fn time_value(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => parse_time(s),
        Value::Number(n) => mjd_to_rfc3339(n.as_f64().unwrap_or(f64::NAN)),
        other => Err(format!("{other} is not a time")),
    }
}

fn position_value(v: &Value) -> Result<Pos, String> {
    let obj = v
        .as_object()
        .ok_or("must be an object {\"ra\": degrees, \"dec\": degrees}")?;
    if let Some(k) = obj.keys().find(|k| *k != "ra" && *k != "dec") {
        return Err(format!("unknown field {k:?} (a position has ra and dec)"));
    }
    let get = |k: &str| -> Result<f64, String> {
        let v = obj.get(k).ok_or_else(|| format!("{k} is missing"))?;
        json_number(v).map_err(|e| format!("{k}: {e}"))
    };
    Pos::new(get("ra")?, get("dec")?)
}

// ------------------------------------------------------------ light curves

/// A light-curve CSV: header `time,flux` or `time,flux,err`.
pub fn read_light_curve(file: &LocalFile) -> Result<Vec<Point>, String> {
    let text = std::fs::read_to_string(&file.path)
        .map_err(|e| format!("light curve {:?}: {e}", file.rel))?;
    parse_light_curve_csv(&text).map_err(|e| format!("light curve {:?}: {e}", file.rel))
}

pub fn parse_light_curve_csv(text: &str) -> Result<Vec<Point>, String> {
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
    let mut times = HashSet::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        let line = rec.position().map_or(0, |p| p.line());
        let at = |msg: String| format!("line {line}: {msg}");
        let time = parse_time(&rec[t]).map_err(at)?;
        let flux = parse_number("flux", &rec[f]).map_err(at)?;
        if !flux.is_finite() {
            return Err(at(format!("flux {flux} is not finite")));
        }
        let err = match e {
            None => None,
            Some(e) => {
                let x = parse_number("err", &rec[e]).map_err(at)?;
                if !x.is_finite() || x < 0.0 {
                    return Err(at(format!("err {x} must be a finite number, 0 or more")));
                }
                Some(x)
            }
        };
        if !times.insert(time.clone()) {
            return Err(at(format!("time {time} appears twice")));
        }
        points.push(Point { time, flux, err });
    }
    if points.is_empty() {
        return Err("has no points".into());
    }
    Ok(points)
}

/// An inline light curve (API shape); a number for `time` is taken as MJD.
fn parse_light_curve_json(v: &Value) -> Result<LightCurve, String> {
    let obj = v
        .as_object()
        .ok_or("must be an object {\"unit\": ..., \"points\": [...]}")?;
    let mut unit = None;
    let mut points = None;
    for (k, v) in obj {
        match k.as_str() {
            "unit" => match v {
                Value::String(s) => unit = Some(s.clone()),
                Value::Null => {}
                _ => return Err("unit: must be text".into()),
            },
            "points" => points = Some(v.as_array().ok_or("points: must be a list")?),
            other => return Err(format!("unknown field {other:?} (known: unit, points)")),
        }
    }
    let list = points.ok_or("needs \"points\"")?;
    if list.is_empty() {
        return Err("points: a light curve needs at least one point".into());
    }
    let mut out = Vec::with_capacity(list.len());
    let with_err = list.first().is_some_and(|p| p.get("err").is_some());
    for (i, p) in list.iter().enumerate() {
        let at = |m: String| format!("points[{i}].{m}");
        let obj = p
            .as_object()
            .ok_or_else(|| format!("points[{i}]: must be an object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "time" | "flux" | "err"))
        {
            return Err(format!("points[{i}]: unknown field {k:?}"));
        }
        let time = time_value(obj.get("time").unwrap_or(&Value::Null))
            .map_err(|e| at(format!("time: {e}")))?;
        let flux = json_number(obj.get("flux").unwrap_or(&Value::Null))
            .map_err(|e| at(format!("flux: {e}")))?;
        let err = match (obj.get("err"), with_err) {
            (Some(v), true) => Some(json_number(v).map_err(|e| at(format!("err: {e}")))?),
            (None, false) => None,
            _ => return Err(at("err: give err on every point or on none".into())),
        };
        out.push(Point { time, flux, err });
    }
    Ok(LightCurve { unit, points: out })
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
}

const KNOWN_COLUMNS: &str = "observation, name, ra, dec, beam, metric:<key>, pos:<kind>:ra, \
pos:<kind>:dec, attr:<key>, file:<role>, light_curve, light_curve_unit";

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
            _ => {
                if let Some(key) = name.strip_prefix("metric:") {
                    check_key("metric key", key).map_err(|e| format!("column {name:?}: {e}"))?;
                    Column::Metric(key.into())
                } else if let Some(key) = name.strip_prefix("attr:") {
                    check_key("attribute name", key)
                        .map_err(|e| format!("column {name:?}: {e}"))?;
                    Column::Attr(key.into())
                } else if let Some(role) = name.strip_prefix("file:") {
                    check_key("file role", role).map_err(|e| format!("column {name:?}: {e}"))?;
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
                    check_key("position kind", kind)
                        .map_err(|e| format!("column {name:?}: {e}"))?;
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
    let attrs = cols.iter().filter(|c| matches!(c, Column::Attr(_))).count();
    if attrs > MAX_ATTRIBUTES {
        return Err(format!(
            "{attrs} attr: columns; a candidate has at most {MAX_ATTRIBUTES} attributes"
        ));
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
    let mut errs: Vec<String> = Vec::new();
    let mut observation = String::new();
    let mut name = String::new();
    let mut ra = None;
    let mut dec = None;
    let mut beam = None;
    let mut metrics = BTreeMap::new();
    let mut pos: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut attributes = Map::new();
    let mut files = Vec::new();
    let mut lc_path = "";
    let mut lc_unit = "";
    for (col, cell) in cols.iter().zip(rec.iter()) {
        match col {
            Column::Observation => observation = cell.to_string(),
            Column::Name => name = cell.to_string(),
            Column::Ra => match parse_number("ra", cell) {
                Ok(x) => ra = Some(x),
                Err(e) => errs.push(e),
            },
            Column::Dec => match parse_number("dec", cell) {
                Ok(x) => dec = Some(x),
                Err(e) => errs.push(e),
            },
            Column::Beam if cell.is_empty() => {}
            Column::Beam => match check_external_id("beam", cell, 64) {
                Ok(()) => beam = Some(cell.to_string()),
                Err(e) => errs.push(e),
            },
            Column::Metric(key) => match parse_metric_cell(cell) {
                Ok(v) => {
                    metrics.insert(key.clone(), v);
                }
                Err(e) => errs.push(format!("metric:{key}: {e}")),
            },
            Column::PosRa(kind) => pos.entry(kind).or_default().0 = cell,
            Column::PosDec(kind) => pos.entry(kind).or_default().1 = cell,
            Column::Attr(_) if cell.is_empty() => {}
            Column::Attr(key) => {
                if cell.chars().count() > 1000 {
                    errs.push(format!("attr:{key}: at most 1000 characters"));
                } else {
                    attributes.insert(key.clone(), Value::String(cell.to_string()));
                }
            }
            Column::File(_) if cell.is_empty() => {}
            Column::File(role) => match resolve_file(dir, role, cell) {
                Ok(f) => files.push(f),
                Err(e) => errs.push(format!("file:{role}: {e}")),
            },
            Column::LightCurve => lc_path = cell,
            Column::LightCurveUnit => lc_unit = cell,
        }
    }
    if let Err(e) = check_external_id("observation", &observation, 128) {
        errs.push(e);
    }
    if let Err(e) = check_name(&name) {
        errs.push(e);
    }
    let ra_dec = match (ra, dec) {
        (Some(ra), Some(dec)) => match Pos::new(ra, dec) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(e);
                None
            }
        },
        _ => None,
    };
    let mut positions = BTreeMap::new();
    for (kind, (r, d)) in pos {
        match (r.is_empty(), d.is_empty()) {
            (true, true) => {}
            (false, false) => {
                let p = parse_number(&format!("pos:{kind}:ra"), r).and_then(|r| {
                    parse_number(&format!("pos:{kind}:dec"), d).and_then(|d| Pos::new(r, d))
                });
                match p {
                    Ok(p) => {
                        positions.insert(kind.to_string(), p);
                    }
                    Err(e) => errs.push(format!("pos:{kind}: {e}")),
                }
            }
            _ => errs.push(format!("pos:{kind}: give both ra and dec, or neither")),
        }
    }
    let mut light_curve = None;
    if !lc_path.is_empty() {
        match resolve_file(dir, "light_curve", lc_path).and_then(|f| read_light_curve(&f)) {
            Ok(points) => {
                light_curve = Some(LightCurve {
                    unit: (!lc_unit.is_empty()).then(|| lc_unit.to_string()),
                    points,
                })
            }
            Err(e) => errs.push(format!("light_curve: {e}")),
        }
    }
    if !errs.is_empty() {
        return Err(Rejection {
            row,
            observation,
            name,
            reason: errs.join("; "),
        });
    }
    let pos = ra_dec.expect("ra and dec were parsed");
    Ok(Candidate {
        row,
        observation,
        body: CandidateBody {
            name,
            beam,
            ra: pos.ra,
            dec: pos.dec,
            positions,
            metrics,
            attributes,
            light_curve,
        },
        files,
    })
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
    let reject = |reason: String| Rejection {
        row,
        observation: text_of("observation"),
        name: text_of("name"),
        reason,
    };
    let Some(obj) = v.as_object() else {
        return Err(reject("must be a JSON object".into()));
    };
    let mut errs = Vec::new();
    let mut observation = None;
    let mut name = None;
    let mut beam = None;
    let (mut ra, mut dec) = (None, None);
    let mut positions = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    let mut attributes = Map::new();
    let mut light_curve = None;
    let mut lc_file = None;
    let mut lc_unit = None;
    let mut files = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            "observation" => match v.as_str() {
                Some(s) => match check_external_id("observation", s, 128) {
                    Ok(()) => observation = Some(s.to_string()),
                    Err(e) => errs.push(e),
                },
                None => errs.push("observation: must be text".into()),
            },
            "name" => match v.as_str() {
                Some(s) => match check_name(s) {
                    Ok(()) => name = Some(s.to_string()),
                    Err(e) => errs.push(e),
                },
                None => errs.push("name: must be text".into()),
            },
            "beam" => match v {
                Value::Null => {}
                Value::String(s) => match check_external_id("beam", s, 64) {
                    Ok(()) => beam = Some(s.clone()),
                    Err(e) => errs.push(e),
                },
                _ => errs.push("beam: must be text".into()),
            },
            "ra" => match json_number(v) {
                Ok(x) => ra = Some(x),
                Err(e) => errs.push(format!("ra: {e}")),
            },
            "dec" => match json_number(v) {
                Ok(x) => dec = Some(x),
                Err(e) => errs.push(format!("dec: {e}")),
            },
            "positions" => match v.as_object() {
                Some(m) => {
                    for (kind, p) in m {
                        match check_key("position kind", kind).and_then(|()| position_value(p)) {
                            Ok(p) => {
                                positions.insert(kind.clone(), p);
                            }
                            Err(e) => errs.push(format!("positions.{kind}: {e}")),
                        }
                    }
                }
                None => errs.push("positions: must be an object".into()),
            },
            "metrics" => match v.as_object() {
                Some(m) => {
                    for (key, x) in m {
                        match check_key("metric key", key).and_then(|()| parse_metric_json(x)) {
                            Ok(x) => {
                                metrics.insert(key.clone(), x);
                            }
                            Err(e) => errs.push(format!("metrics.{key}: {e}")),
                        }
                    }
                }
                None => errs.push("metrics: must be an object".into()),
            },
            "attributes" => match v.as_object() {
                Some(m) => {
                    if m.len() > MAX_ATTRIBUTES {
                        errs.push(format!("attributes: at most {MAX_ATTRIBUTES}"));
                    }
                    for (key, x) in m {
                        let ok = match x {
                            Value::String(s) => s.chars().count() <= 1000,
                            Value::Number(_) | Value::Bool(_) | Value::Null => true,
                            _ => false,
                        };
                        match check_key("attribute name", key) {
                            Err(e) => errs.push(format!("attributes.{key}: {e}")),
                            Ok(()) if !ok => errs.push(format!(
                                "attributes.{key}: text (up to 1000 characters), a number or true/false"
                            )),
                            Ok(()) => {
                                attributes.insert(key.clone(), x.clone());
                            }
                        }
                    }
                }
                None => errs.push("attributes: must be an object".into()),
            },
            "light_curve" => match parse_light_curve_json(v) {
                Ok(lc) => light_curve = Some(lc),
                Err(e) => errs.push(format!("light_curve: {e}")),
            },
            "light_curve_file" => match v.as_str() {
                Some(s) => lc_file = Some(s),
                None => errs.push("light_curve_file: must be a path".into()),
            },
            "light_curve_unit" => match v.as_str() {
                Some(s) => lc_unit = Some(s),
                None => errs.push("light_curve_unit: must be text".into()),
            },
            "files" => match file_map(dir, v) {
                Ok(f) => files = f,
                Err(e) => errs.extend(e),
            },
            other => errs.push(format!(
                "unknown field {other:?} (known: observation, name, beam, ra, dec, positions, \
                 metrics, attributes, light_curve, light_curve_file, light_curve_unit, files)"
            )),
        }
    }
    for (missing, what) in [
        (observation.is_none(), "observation"),
        (name.is_none(), "name"),
        (ra.is_none(), "ra"),
        (dec.is_none(), "dec"),
    ] {
        if missing && !errs.iter().any(|e| e.starts_with(what)) {
            errs.push(format!("{what} is missing"));
        }
    }
    match (lc_file, &light_curve) {
        (Some(_), Some(_)) => errs.push("give light_curve or light_curve_file, not both".into()),
        (Some(rel), None) => {
            match resolve_file(dir, "light_curve", rel).and_then(|f| read_light_curve(&f)) {
                Ok(points) => {
                    light_curve = Some(LightCurve {
                        unit: lc_unit.map(str::to_string),
                        points,
                    })
                }
                Err(e) => errs.push(format!("light_curve_file: {e}")),
            }
        }
        (None, _) if lc_unit.is_some() => {
            errs.push("light_curve_unit goes with light_curve_file".into())
        }
        (None, _) => {}
    }
    let pos = match (ra, dec) {
        (Some(ra), Some(dec)) => Pos::new(ra, dec).map_err(|e| errs.push(e)).ok(),
        _ => None,
    };
    if !errs.is_empty() {
        return Err(reject(errs.join("; ")));
    }
    let (Some(observation), Some(name), Some(pos)) = (observation, name, pos) else {
        return Err(reject("incomplete".into()));
    };
    Ok(Candidate {
        row,
        observation,
        body: CandidateBody {
            name,
            beam,
            ra: pos.ra,
            dec: pos.dec,
            positions,
            metrics,
            attributes,
            light_curve,
        },
        files,
    })
}

#[cfg(test)]
pub(super) mod tests;

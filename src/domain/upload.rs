//! What an upload may contain, parsed from JSON into values that cannot be
//! wrong. Each `…In` type mirrors the JSON (unknown fields are refused); its
//! `validate` names every problem with a path such as `candidates[3].ra`, so
//! a pipeline author can fix all of them in one go.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::decision::{check_key_guard, Bound, GoodRange};
use crate::domain::gold::GoldVerdict;
use crate::domain::text::{one_line, shown};
use crate::domain::Problem;
use crate::domain::SkyPos;

/// Collects problems under a common path prefix.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(field, message));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn key_ok(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Candidates in one batch request: enough to fill a page of the table at
/// once, few enough that one request's previews render in seconds.
pub const MAX_BATCH: usize = 1000;

/// Metric keys, position kinds, file roles and attribute names: lowercase
/// identifiers, because they end up in URLs, column choosers and CSV headers.
pub fn check_key(s: &str) -> Result<(), String> {
    if key_ok(s) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a valid key: use lowercase letters, digits and '_', starting with a letter, at most 64 characters",
            shown(s)
        ))
    }
}

/// External ids of observations and names of beams: what surveys use
/// (`SB50230`, `1234567890`, `beam00`), and safe in a URL path.
pub fn check_external_id(s: &str, max: usize) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a valid id: letters, digits and _ . : + -, starting with a letter or digit, at most {max} characters",
            shown(s)
        ))
    }
}

pub fn check_slug(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a valid project slug: lowercase letters, digits, '_' and '-', at most 64 characters",
            shown(s)
        ))
    }
}

pub fn check_candidate_name(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("a candidate needs a name".into());
    }
    if s.chars().count() > 200 {
        return Err("a candidate name has at most 200 characters".into());
    }
    if s.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!(
            "{}: a candidate name cannot contain '/' (it is part of the candidate's URL) or control characters",
            shown(s)
        ));
    }
    Ok(())
}

/// The spellings of NaN and the infinities that pipelines write, in any
/// case: `nan`, `inf`, `+inf`, `-inf`, `infinity`, `+infinity` and
/// `-infinity`. A fixed list, because Rust's own float parser takes more
/// (`-nan`, `+NaN`), and whatever the server takes the client must too.
pub fn ieee_special(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// How a value [`ieee_special`] reads is written in JSON, which has no
/// NaN or infinity; `None` for a finite number.
pub fn ieee_spelling(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("NaN")
    } else if x == f64::INFINITY {
        Some("Infinity")
    } else if x == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// A number written as text (a JSON string, a CSV cell): a decimal number
/// or one of the [`ieee_special`] spellings. A decimal too large for a
/// float ("1e999") is refused rather than read as infinity: it is more
/// likely a mistake than meant.
pub fn number_text(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if let Some(x) = ieee_special(t) {
        return Ok(x);
    }
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) if t.bytes().any(|b| b.is_ascii_digit()) => {
            Err(format!("{} is out of range", shown(t)))
        }
        _ => Err(format!("{} is not a number", shown(t))),
    }
}

/// A metric value: a JSON number, or a string [`number_text`] reads. `null`
/// is "no value".
pub fn parse_metric(v: &Value) -> Result<Option<f64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => number_text(s)
            .map(Some)
            .map_err(|e| format!("{e} (NaN, inf and -inf are allowed too)")),
        other => number(other).map(Some),
    }
}

fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("{n} is not representable as a number")),
        Value::String(s) => number_text(s),
        other => Err(format!("{} is not a number", shown(&other.to_string()))),
    }
}

/// A finite value, such as a light curve's flux: a JSON number or a
/// string [`number_text`] reads.
pub fn parse_finite(v: &Value) -> Result<f64, String> {
    if v.is_null() {
        return Err("a value is required".into());
    }
    let x = number(v)?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("{x} is not allowed here: the value must be finite"))
    }
}

/// A light curve's error bar: [`parse_finite`], and not negative.
pub fn parse_error_bar(v: &Value) -> Result<f64, String> {
    let x = parse_finite(v)?;
    if x >= 0.0 {
        Ok(x)
    } else {
        Err(format!("{x}: an error bar cannot be negative"))
    }
}

/// A coordinate in degrees: a finite JSON number. A string is refused: a
/// position has no special values, and "12.5" in quotes is more likely a
/// pipeline bug than meant. The range is [`SkyPos`]'s to check.
pub fn parse_coordinate(v: Option<&Value>) -> Result<f64, String> {
    match v {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{n} is not a finite number")),
        None | Some(Value::Null) => Err("a value is required".into()),
        Some(Value::String(s)) => Err(format!(
            "{} is text: give degrees as a JSON number",
            shown(s)
        )),
        Some(other) => Err(format!(
            "{} is not a number: give degrees as a JSON number",
            shown(&other.to_string())
        )),
    }
}

/// RFC 3339 with an explicit offset: a time without one is ambiguous, and
/// the apps this replaces stored such times in the wrong zone.
pub fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|_| {
        format!(
            "{} is not an RFC 3339 time with a zone, such as 2024-05-01T12:34:56Z",
            shown(s)
        )
    })
}

/// `{"ra": degrees, "dec": degrees}`, in range.
pub fn parse_position(v: &Value) -> Result<SkyPos, String> {
    let obj = v
        .as_object()
        .ok_or("a position is an object {\"ra\": degrees, \"dec\": degrees}")?;
    if let Some(k) = obj.keys().find(|k| *k != "ra" && *k != "dec") {
        return Err(format!("unknown field {k:?} in a position"));
    }
    let ra = parse_coordinate(obj.get("ra")).map_err(|e| format!("ra: {e}"))?;
    let dec = parse_coordinate(obj.get("dec")).map_err(|e| format!("dec: {e}"))?;
    SkyPos::new(ra, dec)
}

fn deserialize<T: for<'de> Deserialize<'de>>(v: Value, field: &str, p: &mut Problems) -> Option<T> {
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            p.push(field, e.to_string());
            None
        }
    }
}

fn files(raw: BTreeMap<String, String>, field: &str, p: &mut Problems) -> BTreeMap<String, String> {
    for role in raw.keys() {
        if let Err(e) = check_key(role) {
            p.push(format!("{field}.files.{role}"), e);
        }
    }
    raw
}

fn metadata(raw: Option<Map<String, Value>>, field: &str, p: &mut Problems) -> Map<String, Value> {
    let m = raw.unwrap_or_default();
    if serde_json::to_vec(&m).map(|b| b.len()).unwrap_or(0) > 64 * 1024 {
        p.push(
            format!("{field}.metadata"),
            "metadata is limited to 64 KiB of JSON",
        );
    }
    m
}

fn sha256_of(v: &Value) -> String {
    crate::media::hex(&Sha256::digest(v.to_string().as_bytes()))
}

/// A number in the canonical form used for content hashes: exact, and NaN
/// and infinities spelled out (JSON cannot hold them).
fn canon(x: f64) -> String {
    format!("{x:?}")
}

// ---------------------------------------------------------------- projects

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectIn {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub metrics: Vec<MetricIn>,
    #[serde(default)]
    pub tags: Vec<TagIn>,
    /// A JSON value rather than an integer, so that a bad one is a problem
    /// of this field and not of the whole body.
    pub key_guard_ms: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricIn {
    pub key: String,
    pub label: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub description: String,
    pub precision: Option<i16>,
    pub shown_by_default: Option<bool>,
    pub headline: Option<bool>,
    /// `{"min": x, "max": y}`, read by [`parse_good`] so that each problem
    /// names its bound.
    pub good: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagIn {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub key: String,
    pub label: String,
    pub unit: String,
    pub description: String,
    pub precision: i16,
    pub shown_by_default: bool,
    /// Read at a glance on the decision screen.
    pub headline: bool,
    pub good: GoodRange,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagSpec {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSpec {
    pub name: String,
    pub description: String,
    pub metrics: Vec<MetricSpec>,
    pub tags: Vec<TagSpec>,
    /// `None` leaves a stored project's guard as it is (a new one gets the
    /// column default): it is a reviewing setting an administrator may have
    /// tuned, and `vetter upload` sends project.json on every run.
    pub key_guard_ms: Option<i32>,
}

/// A metric's good range: an object with an optional `min` and `max`, each
/// a JSON number. A string is refused, as for coordinates: a bound has no
/// special values, and a pipeline that means "no bound" leaves it out.
fn parse_good(v: &Value, f: &str, p: &mut Problems) -> GoodRange {
    let f = format!("{f}.good");
    let obj = match v {
        Value::Null => return GoodRange::NONE,
        Value::Object(obj) => obj,
        _ => {
            p.push(
                f,
                "a good range is an object {\"min\": x, \"max\": y}, either bound optional",
            );
            return GoodRange::NONE;
        }
    };
    if let Some(k) = obj.keys().find(|k| *k != "min" && *k != "max") {
        p.push(
            &f,
            format!("unknown field {k:?} in a good range: only min and max"),
        );
    }
    let before = p.0.len();
    let mut bound = |b: Bound| match obj.get(b.key()) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64().filter(|x| x.is_finite()) {
            Some(x) => Some(x),
            None => {
                p.push(
                    format!("{f}.{}", b.key()),
                    format!("{n} is not a finite number"),
                );
                None
            }
        },
        Some(Value::String(s)) => {
            p.push(
                format!("{f}.{}", b.key()),
                format!(
                    "{} is text: give the bound as a JSON number, or leave it out for no bound",
                    shown(s)
                ),
            );
            None
        }
        Some(other) => {
            p.push(
                format!("{f}.{}", b.key()),
                format!("{} is not a number", shown(&other.to_string())),
            );
            None
        }
    };
    let (min, max) = (bound(Bound::Min), bound(Bound::Max));
    if p.0.len() > before {
        return GoodRange::NONE;
    }
    GoodRange::new(min, max).unwrap_or_else(|e| {
        p.push(format!("{f}.{}", e.bound().key()), e.to_string());
        GoodRange::NONE
    })
}

fn parse_key_guard(v: &Value, p: &mut Problems) -> Option<i32> {
    let checked = match v {
        Value::Null => return None,
        Value::Number(n) => match n.as_i64() {
            Some(ms) => check_key_guard(ms),
            None => Err(format!("{n} is not a whole number of milliseconds")),
        },
        other => Err(format!(
            "{} is not a number: give milliseconds as a JSON integer",
            shown(&other.to_string())
        )),
    };
    checked.map_err(|e| p.push("key_guard_ms", e)).ok()
}

impl ProjectSpec {
    pub fn parse(body: Value) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::default();
        let Some(raw) = deserialize::<ProjectIn>(body, "body", &mut p) else {
            return Err(p.0);
        };
        let name = raw.name.trim().to_string();
        if let Err(e) = one_line(&raw.name, 200) {
            p.push("name", format!("a project name {e}"));
        }
        if raw.description.chars().count() > 5000 {
            p.push("description", "at most 5000 characters");
        }
        let mut seen = std::collections::HashSet::new();
        let metrics = raw
            .metrics
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let f = format!("metrics[{i}]");
                if let Err(e) = check_key(&m.key) {
                    p.push(format!("{f}.key"), e);
                } else if !seen.insert(m.key.clone()) {
                    p.push(format!("{f}.key"), format!("{:?} is listed twice", m.key));
                }
                if let Err(e) = one_line(&m.label, 200) {
                    p.push(format!("{f}.label"), format!("a label {e}"));
                }
                if !m.unit.is_empty() {
                    if let Err(e) = one_line(&m.unit, 50) {
                        p.push(format!("{f}.unit"), format!("a unit {e}"));
                    }
                }
                if m.description.chars().count() > 2000 {
                    p.push(format!("{f}.description"), "at most 2000 characters");
                }
                let precision = m.precision.unwrap_or(3);
                if !(0..=12).contains(&precision) {
                    p.push(
                        format!("{f}.precision"),
                        "precision is 0 to 12 decimal places",
                    );
                }
                let good = m
                    .good
                    .as_ref()
                    .map_or(GoodRange::NONE, |v| parse_good(v, &f, &mut p));
                MetricSpec {
                    key: m.key,
                    label: m.label.trim().to_string(),
                    unit: m.unit,
                    description: m.description,
                    precision,
                    shown_by_default: m.shown_by_default.unwrap_or(true),
                    headline: m.headline.unwrap_or(false),
                    good,
                }
            })
            .collect();
        let mut seen_tags = std::collections::HashSet::new();
        let tags = raw
            .tags
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let name = t.name.trim().to_string();
                if let Err(e) = one_line(&t.name, 64) {
                    p.push(format!("tags[{i}].name"), format!("a tag name {e}"));
                } else if !seen_tags.insert(name.to_lowercase()) {
                    p.push(
                        format!("tags[{i}].name"),
                        format!("{name:?} is listed twice"),
                    );
                }
                if t.description.chars().count() > 1000 {
                    p.push(format!("tags[{i}].description"), "at most 1000 characters");
                }
                TagSpec {
                    name,
                    description: t.description,
                }
            })
            .collect();
        let key_guard_ms = raw
            .key_guard_ms
            .as_ref()
            .and_then(|v| parse_key_guard(v, &mut p));
        if p.is_empty() {
            Ok(Self {
                name,
                description: raw.description,
                metrics,
                tags,
                key_guard_ms,
            })
        } else {
            Err(p.0)
        }
    }
}

// ------------------------------------------------------ observations, beams

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationIn {
    pub start_time: Option<String>,
    pub pointing: Option<Value>,
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservationSpec {
    pub start_time: Option<OffsetDateTime>,
    pub pointing: Option<SkyPos>,
    pub metadata: Map<String, Value>,
    pub files: BTreeMap<String, String>,
}

impl ObservationSpec {
    pub fn parse(body: Value) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::default();
        let Some(raw) = deserialize::<ObservationIn>(body, "body", &mut p) else {
            return Err(p.0);
        };
        let start_time = raw
            .start_time
            .as_deref()
            .and_then(|s| parse_time(s).map_err(|e| p.push("start_time", e)).ok());
        let pointing = raw
            .pointing
            .as_ref()
            .filter(|v| !v.is_null())
            .and_then(|v| parse_position(v).map_err(|e| p.push("pointing", e)).ok());
        let metadata = metadata(raw.metadata, "body", &mut p);
        let files = files(raw.files, "body", &mut p);
        if p.is_empty() {
            Ok(Self {
                start_time,
                pointing,
                metadata,
                files,
            })
        } else {
            Err(p.0)
        }
    }

    pub fn content_hash(&self) -> String {
        sha256_of(&serde_json::json!({
            "start_time": self.start_time.map(|t| t.unix_timestamp_nanos().to_string()),
            "pointing": self.pointing.map(|s| [canon(s.ra.degrees()), canon(s.dec.degrees())]),
            "metadata": self.metadata,
        }))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeamIn {
    pub centre: Option<Value>,
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BeamSpec {
    pub centre: Option<SkyPos>,
    pub metadata: Map<String, Value>,
    pub files: BTreeMap<String, String>,
}

impl BeamSpec {
    pub fn parse(body: Value) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::default();
        let Some(raw) = deserialize::<BeamIn>(body, "body", &mut p) else {
            return Err(p.0);
        };
        let centre = raw
            .centre
            .as_ref()
            .filter(|v| !v.is_null())
            .and_then(|v| parse_position(v).map_err(|e| p.push("centre", e)).ok());
        let metadata = metadata(raw.metadata, "body", &mut p);
        let files = files(raw.files, "body", &mut p);
        if p.is_empty() {
            Ok(Self {
                centre,
                metadata,
                files,
            })
        } else {
            Err(p.0)
        }
    }

    pub fn content_hash(&self) -> String {
        sha256_of(&serde_json::json!({
            "centre": self.centre.map(|s| [canon(s.ra.degrees()), canon(s.dec.degrees())]),
            "metadata": self.metadata,
        }))
    }
}

// -------------------------------------------------------------- candidates

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateIn {
    pub name: Option<String>,
    pub beam: Option<String>,
    pub ra: Value,
    pub dec: Value,
    #[serde(default)]
    pub positions: BTreeMap<String, Value>,
    #[serde(default)]
    pub metrics: BTreeMap<String, Value>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    pub light_curve: Option<LightCurveIn>,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// `"real"` or `"not_real"`: the candidate's known truth (an injected
    /// fake, a known pulsar). Kept apart from everything a reviewer reads.
    pub gold: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightCurveIn {
    #[serde(default)]
    pub unit: String,
    pub points: Vec<PointIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointIn {
    pub time: String,
    pub flux: Value,
    pub err: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LightCurve {
    pub unit: String,
    pub times: Vec<OffsetDateTime>,
    pub flux: Vec<f64>,
    pub err: Option<Vec<f64>>,
}

impl LightCurve {
    pub fn content_hash(&self) -> String {
        sha256_of(&serde_json::json!({
            "unit": self.unit,
            "times": self.times.iter().map(|t| t.unix_timestamp_nanos().to_string()).collect::<Vec<_>>(),
            "flux": self.flux.iter().map(|x| canon(*x)).collect::<Vec<_>>(),
            "err": self.err.as_ref().map(|e| e.iter().map(|x| canon(*x)).collect::<Vec<_>>()),
        }))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CandidateSpec {
    pub name: String,
    pub beam: Option<String>,
    pub pos: SkyPos,
    pub positions: BTreeMap<String, SkyPos>,
    /// Metric key → value; NaN and infinities kept as such.
    pub metrics: BTreeMap<String, f64>,
    pub attributes: Map<String, Value>,
    pub light_curve: Option<LightCurve>,
    /// Role → multipart part name.
    pub files: BTreeMap<String, String>,
    /// The true verdict of a gold candidate. Not part of the content hash:
    /// it is stored in `gold_candidates`, not on the candidate.
    pub gold: Option<GoldVerdict>,
}

const MAX_LIGHT_CURVE_POINTS: usize = 100_000;
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_CHARS: usize = 1000;

impl CandidateSpec {
    /// `name` comes from the URL for a single candidate, from the object in
    /// a batch. `f` is the path prefix for problems (`candidates[3]`, or
    /// empty for a single candidate).
    pub fn parse(body: Value, url_name: Option<&str>, f: &str, p: &mut Problems) -> Option<Self> {
        let field = |name: &str| {
            if f.is_empty() {
                name.to_string()
            } else {
                format!("{f}.{name}")
            }
        };
        let raw: CandidateIn = deserialize(body, if f.is_empty() { "body" } else { f }, p)?;
        let before = p.0.len();
        // A missing name has its own problem; an empty one is checked below.
        let missing = url_name.is_none() && raw.name.is_none();
        let name = match (url_name, raw.name) {
            (Some(u), None) => u.to_string(),
            (Some(u), Some(n)) if n == u => n,
            (Some(u), Some(n)) => {
                p.push(
                    field("name"),
                    format!("{n:?} differs from the name in the URL, {u:?}"),
                );
                n
            }
            (None, Some(n)) => n,
            (None, None) => {
                p.push(field("name"), "each candidate in a batch needs a name");
                String::new()
            }
        };
        if let Err(e) = check_candidate_name(&name) {
            if !missing {
                p.push(field("name"), e);
            }
        }
        if let Some(b) = &raw.beam {
            if let Err(e) = check_external_id(b, 64) {
                p.push(field("beam"), e);
            }
        }
        let ra = parse_coordinate(Some(&raw.ra))
            .map_err(|e| p.push(field("ra"), e))
            .ok();
        let dec = parse_coordinate(Some(&raw.dec))
            .map_err(|e| p.push(field("dec"), e))
            .ok();
        let pos = match (ra, dec) {
            (Some(ra), Some(dec)) => match crate::domain::Ra::new(ra) {
                Err(e) => {
                    p.push(field("ra"), e);
                    None
                }
                Ok(_) => SkyPos::new(ra, dec)
                    .map_err(|e| p.push(field("dec"), e))
                    .ok(),
            },
            _ => None,
        };
        let mut positions = BTreeMap::new();
        for (kind, v) in raw.positions {
            let pf = field(&format!("positions.{kind}"));
            if let Err(e) = check_key(&kind) {
                p.push(pf, e);
                continue;
            }
            match parse_position(&v) {
                Ok(s) => {
                    positions.insert(kind, s);
                }
                Err(e) => p.push(pf, e),
            }
        }
        let mut metrics = BTreeMap::new();
        for (key, v) in raw.metrics {
            // Whether the project has this metric is for the database to
            // say; a key no metric can have is caught without it.
            if let Err(e) = check_key(&key) {
                p.push(field(&format!("metrics.{key}")), e);
                continue;
            }
            match parse_metric(&v) {
                Ok(Some(x)) => {
                    metrics.insert(key, x);
                }
                Ok(None) => {}
                Err(e) => p.push(field(&format!("metrics.{key}")), e),
            }
        }
        if raw.attributes.len() > MAX_ATTRIBUTES {
            p.push(
                field("attributes"),
                format!("at most {MAX_ATTRIBUTES} attributes"),
            );
        }
        for (k, v) in &raw.attributes {
            let af = field(&format!("attributes.{k}"));
            if let Err(e) = check_key(k) {
                p.push(af, e);
            } else if match v {
                Value::String(s) => s.chars().count() > MAX_ATTRIBUTE_CHARS,
                Value::Number(_) | Value::Bool(_) | Value::Null => false,
                _ => true,
            } {
                p.push(
                    af,
                    format!("an attribute is text (up to {MAX_ATTRIBUTE_CHARS} characters), a number or true/false"),
                );
            }
        }
        // Absent or null: not gold (a re-send without it leaves a mark alone).
        let gold = match &raw.gold {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.parse::<GoldVerdict>().is_ok() => s.parse().ok(),
            Some(other) => {
                let said = match other {
                    Value::String(s) => shown(s),
                    v => v.to_string(),
                };
                p.push(
                    field("gold"),
                    format!(
                        "candidate {}: gold is \"real\" or \"not_real\" (or left out), not {said}",
                        shown(&name)
                    ),
                );
                None
            }
        };
        let light_curve = raw
            .light_curve
            .and_then(|lc| parse_light_curve(lc, &field("light_curve"), p));
        let files = files(raw.files, if f.is_empty() { "body" } else { f }, p);
        if p.0.len() > before {
            return None;
        }
        Some(Self {
            name,
            beam: raw.beam,
            pos: pos?,
            positions,
            metrics,
            attributes: raw.attributes,
            light_curve,
            files,
            gold,
        })
    }

    /// The hash of everything but the light curve and the files, which are
    /// compared on their own (they are kept when a re-send leaves them out).
    pub fn content_hash(&self) -> String {
        sha256_of(&serde_json::json!({
            "beam": self.beam,
            "pos": [canon(self.pos.ra.degrees()), canon(self.pos.dec.degrees())],
            "positions": self.positions.iter().map(|(k, s)| (k.clone(), serde_json::json!([canon(s.ra.degrees()), canon(s.dec.degrees())]))).collect::<Map<_, _>>(),
            "metrics": self.metrics.iter().map(|(k, v)| (k.clone(), Value::String(canon(*v)))).collect::<Map<_, _>>(),
            "attributes": self.attributes,
        }))
    }
}

fn parse_light_curve(lc: LightCurveIn, f: &str, p: &mut Problems) -> Option<LightCurve> {
    let before = p.0.len();
    if lc.unit.chars().count() > 50 {
        p.push(format!("{f}.unit"), "at most 50 characters");
    }
    if lc.points.is_empty() {
        p.push(
            format!("{f}.points"),
            "a light curve needs at least one point",
        );
    }
    if lc.points.len() > MAX_LIGHT_CURVE_POINTS {
        p.push(
            format!("{f}.points"),
            format!("at most {MAX_LIGHT_CURVE_POINTS} points"),
        );
        return None;
    }
    let with_err = lc.points.first().is_some_and(|pt| pt.err.is_some());
    let mut times = Vec::with_capacity(lc.points.len());
    let mut flux = Vec::with_capacity(lc.points.len());
    let mut err = Vec::new();
    for (i, pt) in lc.points.iter().enumerate() {
        let pf = format!("{f}.points[{i}]");
        match parse_time(&pt.time) {
            Ok(t) => times.push(t),
            Err(e) => p.push(format!("{pf}.time"), e),
        }
        match parse_finite(&pt.flux) {
            Ok(x) => flux.push(x),
            Err(e) => p.push(format!("{pf}.flux"), e),
        }
        match (&pt.err, with_err) {
            (Some(v), true) => match parse_error_bar(v) {
                Ok(x) => err.push(x),
                Err(e) => p.push(format!("{pf}.err"), e),
            },
            (None, false) => {}
            _ => p.push(
                format!("{pf}.err"),
                "give err on every point of a light curve or on none",
            ),
        }
    }
    if p.0.len() > before {
        return None;
    }
    // Stored in time order, whatever order the points came in.
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| times[i]);
    if let Some(w) = order.windows(2).find(|w| times[w[0]] == times[w[1]]) {
        p.push(
            format!("{f}.points[{}].time", w[0].max(w[1])),
            "an earlier point has the same time",
        );
        return None;
    }
    Some(LightCurve {
        unit: lc.unit,
        times: order.iter().map(|&i| times[i]).collect(),
        flux: order.iter().map(|&i| flux[i]).collect(),
        err: with_err.then(|| order.iter().map(|&i| err[i]).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CandidateSpec, Vec<Problem>> {
        let mut p = Problems::default();
        CandidateSpec::parse(v, None, "candidates[0]", &mut p).ok_or(p.0)
    }

    #[test]
    fn a_full_candidate_parses() {
        let c = parse(json!({
            "name": "J1", "beam": "beam00", "ra": 188.7, "dec": -45.2,
            "positions": {"deep": {"ra": 188.70001, "dec": -45.2}},
            "metrics": {"chi": 1.5, "peak": "NaN", "md": "-inf", "gone": null},
            "attributes": {"nks_name": "PKS 1234-45"},
            "light_curve": {"unit": "mJy", "points": [
                {"time": "2024-05-01T12:00:10Z", "flux": 2.0, "err": 0.1},
                {"time": "2024-05-01T12:00:00Z", "flux": 1.0, "err": 0.2}]},
            "files": {"deep_cutout": "f1"}
        }))
        .unwrap();
        assert!(c.metrics["peak"].is_nan());
        assert_eq!(c.metrics["md"], f64::NEG_INFINITY);
        assert!(!c.metrics.contains_key("gone"));
        let lc = c.light_curve.unwrap();
        assert_eq!(lc.flux, vec![1.0, 2.0], "sorted by time");
        assert_eq!(lc.err, Some(vec![0.2, 0.1]));
    }

    #[test]
    fn every_problem_is_named() {
        let problems = parse(json!({
            "name": "bad/name", "ra": 400, "dec": "x",
            "metrics": {"chi": "lots"},
            "positions": {"Deep": {"ra": 1, "dec": 2}},
            "light_curve": {"points": [{"time": "2024-05-01 12:00:00", "flux": "NaN"}]},
            "files": {"BadRole": "f"}
        }))
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for expected in [
            "candidates[0].name",
            "candidates[0].dec",
            "candidates[0].metrics.chi",
            "candidates[0].positions.Deep",
            "candidates[0].light_curve.points[0].time",
            "candidates[0].light_curve.points[0].flux",
            "candidates[0].files.BadRole",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn out_of_range_ra_is_named_as_ra() {
        let problems = parse(json!({"name": "a", "ra": 400, "dec": 0})).unwrap_err();
        assert_eq!(problems[0].field, "candidates[0].ra");
        let problems = parse(json!({"name": "a", "ra": 10, "dec": 91})).unwrap_err();
        assert_eq!(problems[0].field, "candidates[0].dec");
        let problems = parse(json!({"name": "a", "ra": "NaN", "dec": 0})).unwrap_err();
        assert!(problems[0].message.contains("JSON number"));
        let problems = parse(json!({"name": "a", "ra": "12.5", "dec": 0})).unwrap_err();
        assert_eq!(problems[0].field, "candidates[0].ra");
    }

    #[test]
    fn gold_is_real_or_not_real_and_stays_out_of_the_hash() {
        let plain = parse(json!({"name": "a", "ra": 1, "dec": 1})).unwrap();
        assert_eq!(plain.gold, None);
        let real = parse(json!({"name": "a", "ra": 1, "dec": 1, "gold": "real"})).unwrap();
        assert_eq!(real.gold, Some(GoldVerdict::Real));
        assert_eq!(real.content_hash(), plain.content_hash());
        let not = parse(json!({"name": "a", "ra": 1, "dec": 1, "gold": "not_real"})).unwrap();
        assert_eq!(not.gold, Some(GoldVerdict::NotReal));
        let null = parse(json!({"name": "a", "ra": 1, "dec": 1, "gold": null})).unwrap();
        assert_eq!(null.gold, None);
        for bad in [
            json!("unsure"),
            json!("REAL"),
            json!(true),
            json!(1),
            json!({"v": "real"}),
        ] {
            let problems =
                parse(json!({"name": "J9", "ra": 1, "dec": 1, "gold": bad.clone()})).unwrap_err();
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert_eq!(problems[0].field, "candidates[0].gold");
            assert!(problems[0].message.contains("\"J9\""), "{problems:?}");
            assert!(problems[0].message.contains("not_real"), "{problems:?}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let problems = parse(json!({"name": "a", "ra": 1, "dec": 1, "colour": "red"})).unwrap_err();
        assert!(problems[0].message.contains("colour"), "{problems:?}");
    }

    #[test]
    fn the_hash_changes_with_the_data_and_only_with_it() {
        let a = parse(json!({"name": "a", "ra": 1, "dec": 1, "metrics": {"x": "NaN"}})).unwrap();
        let b = parse(json!({"name": "a", "ra": 1, "dec": 1, "metrics": {"x": "nan"}})).unwrap();
        let c = parse(json!({"name": "a", "ra": 1, "dec": 1, "metrics": {"x": 1}})).unwrap();
        assert_eq!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn the_special_values_have_one_set_of_spellings() {
        for s in ["nan", "NaN", "NAN", "Nan"] {
            assert!(ieee_special(s).is_some_and(f64::is_nan), "{s}");
        }
        for s in [
            "inf",
            "+inf",
            "Inf",
            "INF",
            "infinity",
            "+Infinity",
            "INFINITY",
        ] {
            assert_eq!(ieee_special(s), Some(f64::INFINITY), "{s}");
        }
        for s in ["-inf", "-Inf", "-infinity", "-Infinity"] {
            assert_eq!(ieee_special(s), Some(f64::NEG_INFINITY), "{s}");
        }
        // Rust's float parser reads the first three; they are not ours.
        for s in ["-nan", "+nan", "+NaN", "infinit", "∞", "1.5", ""] {
            assert_eq!(ieee_special(s).map(f64::to_bits), None, "{s}");
        }
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let word = ieee_spelling(x).unwrap();
            assert_eq!(ieee_special(word).map(f64::to_bits), Some(x.to_bits()));
        }
        assert_eq!(ieee_spelling(1.5), None);
    }

    #[test]
    fn metrics_are_numbers_strings_of_numbers_or_the_specials() {
        assert_eq!(parse_metric(&json!(12.5)), Ok(Some(12.5)));
        assert_eq!(parse_metric(&json!("12.5")), Ok(Some(12.5)));
        assert_eq!(parse_metric(&json!(" -3e2 ")), Ok(Some(-300.0)));
        assert_eq!(parse_metric(&json!(null)), Ok(None));
        assert_eq!(parse_metric(&json!("+infinity")), Ok(Some(f64::INFINITY)));
        assert!(parse_metric(&json!("1e999"))
            .unwrap_err()
            .contains("out of range"));
        for bad in [
            json!("-nan"),
            json!("lots"),
            json!(""),
            json!(true),
            json!([1]),
        ] {
            assert!(parse_metric(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metric_keys_no_metric_can_have_are_refused_without_the_database() {
        let problems =
            parse(json!({"name": "a", "ra": 1, "dec": 1, "metrics": {"Chi": 1}})).unwrap_err();
        assert_eq!(problems[0].field, "candidates[0].metrics.Chi");
    }

    #[test]
    fn light_curve_values_are_finite_and_error_bars_not_negative() {
        let lc = |flux: Value, err: Value| {
            parse(
                json!({"name": "a", "ra": 1, "dec": 1, "light_curve": {"points": [
                {"time": "2024-05-01T12:00:00Z", "flux": flux, "err": err}]}}),
            )
        };
        assert!(lc(json!("1.5"), json!("0.1")).is_ok());
        let p = lc(json!("NaN"), json!(0.1)).unwrap_err();
        assert!(p[0].message.contains("finite"), "{p:?}");
        let p = lc(json!(1), json!(-0.5)).unwrap_err();
        assert!(p[0].message.contains("cannot be negative"), "{p:?}");
    }

    #[test]
    fn a_time_given_twice_names_the_later_point() {
        let p = parse(
            json!({"name": "a", "ra": 1, "dec": 1, "light_curve": {"points": [
            {"time": "2024-05-01T12:00:00Z", "flux": 1},
            {"time": "2024-05-01T13:00:00Z", "flux": 1},
            {"time": "2024-05-01T14:00:00+02:00", "flux": 1}]}}),
        )
        .unwrap_err();
        assert_eq!(p[0].field, "candidates[0].light_curve.points[2].time");
    }

    #[test]
    fn times_need_a_zone() {
        assert!(parse_time("2024-05-01T12:00:00Z").is_ok());
        assert!(parse_time("2024-05-01T12:00:00+08:00").is_ok());
        assert!(parse_time("2024-05-01T12:00:00").is_err());
    }

    #[test]
    fn project_specs_check_keys_and_duplicates() {
        let err = ProjectSpec::parse(json!({"name": "P", "metrics": [
            {"key": "chi", "label": "χ²"}, {"key": "chi", "label": "again"}, {"key": "Bad", "label": "x"}],
            "tags": [{"name": "Noise"}, {"name": "noise"}]}))
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["metrics[1].key", "metrics[2].key", "tags[1].name"]);
    }

    #[test]
    fn headline_good_range_and_key_guard_parse_with_their_defaults() {
        let spec = ProjectSpec::parse(json!({"name": "P", "key_guard_ms": 400, "metrics": [
            {"key": "snr", "label": "S/N", "headline": true, "good": {"min": 5}},
            {"key": "sep", "label": "Sep", "good": {"min": 0, "max": 2.5}},
            {"key": "md", "label": "MD", "good": {"max": null}},
            {"key": "chi", "label": "χ²"}]}))
        .unwrap();
        assert_eq!(spec.key_guard_ms, Some(400));
        let m = &spec.metrics;
        assert!(m[0].headline);
        assert_eq!((m[0].good.min(), m[0].good.max()), (Some(5.0), None));
        assert!(!m[1].headline, "headline defaults to false");
        assert_eq!((m[1].good.min(), m[1].good.max()), (Some(0.0), Some(2.5)));
        assert!(m[2].good.is_none());
        assert!(m[3].good.is_none());
        let spec = ProjectSpec::parse(json!({"name": "P"})).unwrap();
        assert_eq!(
            spec.key_guard_ms, None,
            "left out: the stored value is kept"
        );
    }

    #[test]
    fn bad_good_ranges_and_guards_name_their_field() {
        let err = ProjectSpec::parse(json!({"name": "P", "key_guard_ms": 5000, "metrics": [
            {"key": "a", "label": "A", "good": {"min": 3, "max": 1}},
            {"key": "b", "label": "B", "good": {"min": "NaN", "max": [1]}},
            {"key": "c", "label": "C", "good": 5},
            {"key": "d", "label": "D", "good": {"low": 1}}]}))
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metrics[0].good.min",
                "metrics[1].good.min",
                "metrics[1].good.max",
                "metrics[2].good",
                "metrics[3].good",
                "key_guard_ms"
            ],
            "{err:?}"
        );
        assert!(err[0].message.contains("above"), "{err:?}");
        for bad in [json!(-1), json!(250.5), json!("250"), json!(true)] {
            let err = ProjectSpec::parse(json!({"name": "P", "key_guard_ms": bad})).unwrap_err();
            assert_eq!(err[0].field, "key_guard_ms", "{bad}: {err:?}");
        }
    }
}

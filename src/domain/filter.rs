//! The candidate filter: what `/candidates`, `/ratings`, the exports and the
//! rating queue can be limited by, read once from a URL query string.
//!
//! Parsing never fails: each bad value becomes a [`Problem`] named after its
//! query parameter, so the page can show the message beside that field and
//! keep what the person typed. Names (project, observation, reviewer, tag,
//! metric keys) are only checked for shape here; `db::search::resolve` looks
//! them up.
//!
//! Query parameters (all optional, all single-valued except `col`):
//!
//! | parameter | meaning |
//! |---|---|
//! | `project`, `observation`, `beam` | project slug, observation external id, beam name |
//! | `name` | part of the candidate name, case-insensitive |
//! | `rated` | `mine`, `not_mine`, `any`, `none`, `disagree` |
//! | `reviewer`, `verdict`, `tag` | some current rating by that reviewer / with that verdict / carrying that tag; together they describe one and the same rating |
//! | `m.KEY.min`, `m.KEY.max`, `m.KEY.nf` | a range on metric KEY of the project; `nf` = `exclude` (default), `include` or `only` NaN/±∞ |
//! | `pos`, `radius`, `around` | cone search: position text, radius in arcmin (default 2), around `candidate` (default) or a named position kind |
//! | `score_min`, `score_max` | a range on the model's P(real), 0–1 |
//! | `consensus` | `open`, `settled`, `settled_real`, `settled_not_real`, `disputed` |
//! | `sort`, `dir` | `name`, `ra`, `dec`, `observation`, `ratings`, `sep`, `score`, `m.KEY`; `asc` or `desc` |
//! | `col` | columns shown: metric keys, [`SCORE_COLUMN`], [`CONSENSUS_COLUMN`] (repeatable; an empty `col=` alone means none) |
//!
//! The score and the consensus state are learnt from / made of others'
//! verdicts, so they obey the blind rule as the verdict filters do.
//! | `per` | rows per page, 1–500 (default 50) |
//! | `after`, `before` | the keyset cursor of the next / previous page |

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::consensus::Consensus;
use crate::domain::names::CatalogueName;
use crate::domain::rating::Verdict;
use crate::domain::sexagesimal::parse_position;
use crate::domain::upload::{check_external_id, check_key, check_slug};
use crate::domain::{Problem, SkyPos, Username};

pub const DEFAULT_RADIUS_ARCMIN: f64 = 2.0;
/// Ten degrees: a cone is for finding things near a position, not for
/// selecting half the sky (the q3c index makes large cones slow, too).
pub const MAX_RADIUS_ARCMIN: f64 = 600.0;
pub const DEFAULT_PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 500;
const MAX_NAME_CHARS: usize = 200;
/// The `col` values of the score and consensus columns: a leading `_` is
/// never a metric key, so a project's metrics cannot take these names.
pub const SCORE_COLUMN: &str = "_p_real";
pub const CONSENSUS_COLUMN: &str = "_consensus";

/// Which candidates, by where the team stands on them
/// (`domain::consensus`); `Settled` is either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsensusFilter {
    Open,
    Settled,
    SettledReal,
    SettledNotReal,
    Disputed,
}

impl ConsensusFilter {
    pub const ALL: [ConsensusFilter; 5] = [
        ConsensusFilter::Open,
        ConsensusFilter::Settled,
        ConsensusFilter::SettledReal,
        ConsensusFilter::SettledNotReal,
        ConsensusFilter::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsensusFilter::Open => "open",
            ConsensusFilter::Settled => "settled",
            ConsensusFilter::SettledReal => "settled_real",
            ConsensusFilter::SettledNotReal => "settled_not_real",
            ConsensusFilter::Disputed => "disputed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConsensusFilter::Open => "open",
            ConsensusFilter::Settled => "settled",
            ConsensusFilter::SettledReal => "settled: real",
            ConsensusFilter::SettledNotReal => "settled: not real",
            ConsensusFilter::Disputed => "disputed",
        }
    }

    /// The `consensus_state` values it matches.
    pub fn states(self) -> Vec<String> {
        let v: &[Consensus] = match self {
            ConsensusFilter::Open => &[Consensus::Open],
            ConsensusFilter::Settled => &[Consensus::SettledReal, Consensus::SettledNotReal],
            ConsensusFilter::SettledReal => &[Consensus::SettledReal],
            ConsensusFilter::SettledNotReal => &[Consensus::SettledNotReal],
            ConsensusFilter::Disputed => &[Consensus::Disputed],
        };
        v.iter().map(|c| c.as_str().to_string()).collect()
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a consensus state: use open, settled, settled_real, settled_not_real or disputed"
                )
            })
    }
}

/// Which candidates, by who rated them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatedState {
    /// I have a current rating of it.
    Mine,
    /// I have not rated it.
    NotMine,
    /// Someone has rated it.
    Any,
    /// Nobody has rated it.
    Nobody,
    /// Two current ratings of it have different verdicts.
    Disagreement,
}

impl RatedState {
    pub const ALL: [RatedState; 5] = [
        RatedState::Mine,
        RatedState::NotMine,
        RatedState::Any,
        RatedState::Nobody,
        RatedState::Disagreement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RatedState::Mine => "mine",
            RatedState::NotMine => "not_mine",
            RatedState::Any => "any",
            RatedState::Nobody => "none",
            RatedState::Disagreement => "disagree",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RatedState::Mine => "rated by me",
            RatedState::NotMine => "not rated by me",
            RatedState::Any => "rated by anyone",
            RatedState::Nobody => "rated by nobody",
            RatedState::Disagreement => "reviewers disagree",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?} is not a rating state: use mine, not_mine, any, none or disagree")
            })
    }
}

/// What a metric range does with NaN, +∞ and −∞ (which the bounds, being
/// finite numbers, can never describe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinite {
    /// Only finite values within the bounds match.
    #[default]
    Exclude,
    /// Finite values within the bounds, and every NaN/±∞ value.
    Include,
    /// Only NaN/±∞ values (the bounds must be empty).
    Only,
}

impl NonFinite {
    pub const ALL: [NonFinite; 3] = [NonFinite::Exclude, NonFinite::Include, NonFinite::Only];

    pub fn as_str(self) -> &'static str {
        match self {
            NonFinite::Exclude => "exclude",
            NonFinite::Include => "include",
            NonFinite::Only => "only",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NonFinite::Exclude => "finite values only",
            NonFinite::Include => "also NaN/±∞",
            NonFinite::Only => "only NaN/±∞",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "exclude" => Ok(NonFinite::Exclude),
            "include" => Ok(NonFinite::Include),
            "only" => Ok(NonFinite::Only),
            other => Err(format!(
                "{other:?} is not a choice: use exclude, include or only"
            )),
        }
    }
}

/// A range on one metric. Candidates without a value for the metric never
/// match a range.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRange {
    pub key: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub non_finite: NonFinite,
}

impl MetricRange {
    /// Whether `v` (a stored value) lies in the range: the same rule as the SQL.
    pub fn matches(&self, v: f64) -> bool {
        if v.is_finite() {
            self.non_finite != NonFinite::Only
                && self.min.is_none_or(|m| v >= m)
                && self.max.is_none_or(|m| v <= m)
        } else {
            self.non_finite != NonFinite::Exclude
        }
    }
}

/// Which position of a candidate a cone search looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Around {
    /// The candidate's own position.
    Candidate,
    /// One of its extra named positions (`candidate_positions.kind`).
    Kind(String),
}

impl Around {
    pub fn as_param(&self) -> &str {
        match self {
            Around::Candidate => "candidate",
            Around::Kind(k) => k,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cone {
    pub centre: SkyPos,
    pub radius_arcmin: f64,
    pub around: Around,
}

/// "Only observations whose `band` is `88`" or "not ...": a condition on an
/// attribute the pipeline sent with the observation (its metadata), compared
/// as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationAttribute {
    pub key: String,
    pub value: String,
    pub exclude: bool,
}

/// Whether a candidate has a counterpart in a catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchState {
    /// Its nearest source in the catalogue is within the separation.
    Within,
    /// No source of the catalogue is within the separation.
    NoneWithin,
}

impl MatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchState::Within => "within",
            MatchState::NoneWithin => "none",
        }
    }
}

/// "A RACS counterpart within 10″", or "none within 10″". Without a
/// separation, within the project's match radius (every stored match).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchFilter {
    pub catalogue: CatalogueName,
    pub state: MatchState,
    pub within_arcsec: Option<f64>,
}

/// The largest separation a match filter takes: matches are stored within
/// at most 600″ (`web::pages::admin::catalogues`).
pub const MAX_MATCH_ARCSEC: f64 = 600.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Ra,
    Dec,
    /// By observation (in upload order), then name.
    Observation,
    /// By the number of current ratings.
    Ratings,
    /// By separation from the cone's centre (only with a cone).
    Separation,
    /// By the model's P(real); unscored and hidden candidates last.
    Score,
    /// By a metric of the project: numbers (±∞ at their ends), then NaN,
    /// then candidates without the metric, in both directions.
    Metric(String),
    /// By the separation of the nearest source in the match filter's
    /// catalogue; candidates without one last.
    Match,
}

impl SortKey {
    pub fn as_param(&self) -> String {
        match self {
            SortKey::Name => "name".into(),
            SortKey::Ra => "ra".into(),
            SortKey::Dec => "dec".into(),
            SortKey::Observation => "observation".into(),
            SortKey::Ratings => "ratings".into(),
            SortKey::Separation => "sep".into(),
            SortKey::Score => "score".into(),
            SortKey::Metric(k) => format!("m.{k}"),
            SortKey::Match => "match".into(),
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "name" => SortKey::Name,
            "ra" => SortKey::Ra,
            "dec" => SortKey::Dec,
            "observation" => SortKey::Observation,
            "ratings" => SortKey::Ratings,
            "sep" => SortKey::Separation,
            "score" => SortKey::Score,
            "match" => SortKey::Match,
            other => match other.strip_prefix("m.") {
                Some(key) if check_key(key).is_ok() => SortKey::Metric(key.to_string()),
                _ => {
                    return Err(format!(
                        "{other:?} is not a column to sort by: use name, ra, dec, observation, ratings, sep, score, match or m.<metric>"
                    ))
                }
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// Where a page starts: the keyset cursor is the sort key of the row just
/// before (or after) it, as strings in the sort key's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cursor {
    #[default]
    First,
    After(Vec<String>),
    Before(Vec<String>),
}

impl Cursor {
    /// The value of an `after`/`before` parameter.
    pub fn encode(key: &[String]) -> String {
        serde_json::to_string(key).unwrap_or_default()
    }

    fn decode(s: &str) -> Result<Vec<String>, String> {
        serde_json::from_str::<Vec<String>>(s)
            .ok()
            // Bound as text in SQL, which cannot hold NUL.
            .filter(|v| !v.is_empty() && v.len() <= 4 && v.iter().all(|s| !s.contains('\0')))
            .ok_or_else(|| "this page link is damaged: start again from the first page".into())
    }
}

/// The parameters that take one value, in the order `to_query` writes them.
const SINGLE: [&str; 24] = [
    "project",
    "observation",
    "beam",
    "name",
    "rated",
    "reviewer",
    "verdict",
    "tag",
    "score_min",
    "score_max",
    "consensus",
    "pos",
    "radius",
    "around",
    "match",
    "match_state",
    "match_sep",
    "obs_attr",
    "obs_not",
    "obs_value",
    "sort",
    "dir",
    "per",
    "group",
];

/// Whether `key` is a parameter that selects candidates (as opposed to the
/// table's sort, page, columns and form bookkeeping): what the read API
/// takes beside its own paging.
pub fn selects(key: &str) -> bool {
    key.starts_with("m.") || (SINGLE.contains(&key) && !matches!(key, "sort" | "dir" | "per"))
}

/// A filter read from a query string, with what was typed kept for the form.
#[derive(Debug, Clone, Default)]
pub struct CandidateFilter {
    pub project: Option<String>,
    pub observation: Option<String>,
    pub beam: Option<String>,
    pub name: Option<String>,
    pub rated: Option<RatedState>,
    pub reviewer: Option<String>,
    pub verdict: Option<Verdict>,
    pub tag: Option<String>,
    /// Bounds on the model's P(real), within 0–1.
    pub score_min: Option<f64>,
    pub score_max: Option<f64>,
    pub consensus: Option<ConsensusFilter>,
    pub ranges: Vec<MetricRange>,
    pub cone: Option<Cone>,
    pub matching: Option<MatchFilter>,
    pub observation_attribute: Option<ObservationAttribute>,
    /// The sort asked for; `None` means the default (separation with a
    /// cone, else name).
    pub sort: Option<Sort>,
    /// Metric columns; `None` means the project's default ones.
    pub columns: Option<Vec<String>>,
    pub cursor: Cursor,
    pub per_page: u32,
    /// `group=1`: one row per group of candidates (`db::groups`), its
    /// first candidate standing for it.
    pub one_per_group: bool,
    /// One per bad parameter, named after it.
    pub problems: Vec<Problem>,
    /// What was typed, trimmed, by parameter name (single-valued ones and
    /// `m.KEY.*`).
    raw: BTreeMap<String, String>,
}

fn none_if_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

fn parse_bound(s: &str) -> Result<Option<f64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => Err(
            "bounds are finite numbers; choose \"also NaN/±∞\" or \"only NaN/±∞\" for those".into(),
        ),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

impl CandidateFilter {
    /// Reads a query string (`a=1&b=2`, without the `?`).
    pub fn from_query(query: &str) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        Self::from_pairs(&pairs)
    }

    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = CandidateFilter {
            per_page: DEFAULT_PER_PAGE,
            ..Default::default()
        };
        let mut cols: Option<Vec<String>> = None;
        let mut after = None;
        let mut before = None;
        let mut form_project = None;
        for (k, v) in pairs {
            let v = v.trim();
            match k.as_str() {
                "form_project" => form_project = Some(v.to_string()),
                "col" => {
                    let list = cols.get_or_insert_with(Vec::new);
                    if !v.is_empty() {
                        if check_key(v).is_ok() || v == SCORE_COLUMN || v == CONSENSUS_COLUMN {
                            if !list.iter().any(|c| c == v) {
                                list.push(v.to_string());
                            }
                        } else {
                            f.problem("col", format!("{v:?} is not a metric key"));
                        }
                    }
                }
                "after" if !v.is_empty() => after = Some(v.to_string()),
                "before" if !v.is_empty() => before = Some(v.to_string()),
                key if SINGLE.contains(&key) || key.starts_with("m.") => {
                    // The last of repeated values wins, as in most web apps.
                    f.raw.insert(key.to_string(), v.to_string());
                }
                _ => {}
            }
        }
        f.columns = cols;
        match f.value("group") {
            "" | "0" => {}
            "1" => f.one_per_group = true,
            _ => f.problem("group", "one row per group: 1, or leave it out"),
        }
        // The form names the project it was drawn for: when another project
        // was chosen, its metric ranges, columns and metric sort belonged to
        // the old project and are dropped (the new project's form shows
        // none of them, so they could not be seen or fixed).
        if form_project.is_some_and(|fp| fp != f.value("project")) {
            f.raw.retain(|k, _| !k.starts_with("m."));
            if f.value("sort").starts_with("m.") {
                f.raw.remove("sort");
                f.raw.remove("dir");
            }
            f.columns = None;
        }
        f.read_names();
        f.read_ratings();
        f.read_model();
        f.read_ranges();
        f.read_cone();
        f.read_match();
        f.read_observation_attribute();
        f.read_view();
        f.cursor = match (after, before) {
            (Some(a), _) => match Cursor::decode(&a) {
                Ok(k) => Cursor::After(k),
                Err(e) => {
                    f.problem("page", e);
                    Cursor::First
                }
            },
            (None, Some(b)) => match Cursor::decode(&b) {
                Ok(k) => Cursor::Before(k),
                Err(e) => {
                    f.problem("page", e);
                    Cursor::First
                }
            },
            (None, None) => Cursor::First,
        };
        f
    }

    fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(field, message));
    }

    fn raw_owned(&self, key: &str) -> Option<String> {
        self.raw.get(key).filter(|v| !v.is_empty()).cloned()
    }

    fn read_names(&mut self) {
        if let Some(p) = self.raw_owned("project") {
            match check_slug(&p) {
                Ok(()) => self.project = Some(p),
                Err(_) => self.problem("project", format!("there is no project {p:?}")),
            }
        }
        if let Some(o) = self.raw_owned("observation") {
            match check_external_id(&o, 128) {
                Ok(()) => self.observation = Some(o),
                Err(_) => self.problem("observation", format!("there is no observation {o:?}")),
            }
        }
        if let Some(b) = self.raw_owned("beam") {
            match check_external_id(&b, 64) {
                Ok(()) => self.beam = Some(b),
                Err(_) => self.problem("beam", format!("there is no beam {b:?}")),
            }
        }
        if let Some(n) = self.raw_owned("name") {
            if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
                self.problem(
                    "name",
                    format!(
                        "a name has at most {MAX_NAME_CHARS} characters and no control characters"
                    ),
                );
            } else {
                self.name = Some(n);
            }
        }
    }

    fn read_ratings(&mut self) {
        if let Some(r) = self.raw_owned("rated") {
            match RatedState::parse(&r) {
                Ok(s) => self.rated = Some(s),
                Err(e) => self.problem("rated", e),
            }
        }
        if let Some(u) = self.raw_owned("reviewer") {
            match u.parse::<Username>() {
                Ok(name) => self.reviewer = Some(name.as_str().to_string()),
                Err(_) => self.problem("reviewer", format!("there is no reviewer {u:?}")),
            }
        }
        if let Some(v) = self.raw_owned("verdict") {
            match v.parse::<Verdict>() {
                Ok(v) => self.verdict = Some(v),
                Err(e) => self.problem("verdict", e),
            }
        }
        if let Some(t) = self.raw_owned("tag") {
            // PostgreSQL text cannot hold NUL: refused here, not as a 500.
            if t.chars().count() > 64 || t.chars().any(char::is_control) {
                self.problem(
                    "tag",
                    "a tag name has at most 64 characters and no control characters",
                );
            } else {
                self.tag = Some(t);
            }
        }
    }

    fn read_model(&mut self) {
        let mut bound = |key: &str| -> Option<f64> {
            let text = self.raw_owned(key)?;
            match text.parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Some(v),
                _ => {
                    self.problem(
                        key,
                        format!("{text:?} is not a P(real): use a number from 0 to 1"),
                    );
                    None
                }
            }
        };
        let (min, max) = (bound("score_min"), bound("score_max"));
        match (min, max) {
            (Some(a), Some(b)) if a > b => self.problem(
                "score_min",
                format!("the minimum P(real) {a} is above the maximum {b}"),
            ),
            _ => {
                self.score_min = min;
                self.score_max = max;
            }
        }
        if let Some(c) = self.raw_owned("consensus") {
            match ConsensusFilter::parse(&c) {
                Ok(c) => self.consensus = Some(c),
                Err(e) => self.problem("consensus", e),
            }
        }
    }

    fn read_ranges(&mut self) {
        // Group m.KEY.{min,max,nf} by key; the BTreeMap keeps keys sorted.
        let mut by_key: BTreeMap<String, [String; 3]> = BTreeMap::new();
        let mut bad = Vec::new();
        for (k, v) in &self.raw {
            let Some(rest) = k.strip_prefix("m.") else {
                continue;
            };
            let (key, part) = match rest.rsplit_once('.') {
                Some((key, part @ ("min" | "max" | "nf"))) if check_key(key).is_ok() => (key, part),
                _ => {
                    bad.push(k.clone());
                    continue;
                }
            };
            let slot = by_key.entry(key.to_string()).or_default();
            let i = match part {
                "min" => 0,
                "max" => 1,
                _ => 2,
            };
            slot[i] = v.clone();
        }
        for k in bad {
            self.problem(
                &k,
                format!("{k:?} is not a metric range: use m.<metric>.min, .max or .nf"),
            );
        }
        for (key, [min, max, nf]) in by_key {
            let field = |part: &str| format!("m.{key}.{part}");
            let mut ok = true;
            let min_v = parse_bound(&min).unwrap_or_else(|e| {
                self.problem(&field("min"), e);
                ok = false;
                None
            });
            let max_v = parse_bound(&max).unwrap_or_else(|e| {
                self.problem(&field("max"), e);
                ok = false;
                None
            });
            let non_finite = NonFinite::parse(&nf).unwrap_or_else(|e| {
                self.problem(&field("nf"), e);
                ok = false;
                NonFinite::Exclude
            });
            if let (Some(a), Some(b)) = (min_v, max_v) {
                if a > b {
                    self.problem(
                        &field("min"),
                        format!("the minimum {a} is above the maximum {b}"),
                    );
                    ok = false;
                }
            }
            if non_finite == NonFinite::Only && (min_v.is_some() || max_v.is_some()) {
                self.problem(
                    &field("nf"),
                    "\"only NaN/±∞\" takes no bounds: empty the minimum and maximum",
                );
                ok = false;
            }
            // A range does something only with a bound or a NaN/±∞ choice.
            let active = min_v.is_some() || max_v.is_some() || non_finite != NonFinite::Exclude;
            if ok && active {
                self.ranges.push(MetricRange {
                    key,
                    min: min_v,
                    max: max_v,
                    non_finite,
                });
            }
        }
    }

    fn read_cone(&mut self) {
        let Some(pos_text) = self.raw_owned("pos") else {
            return;
        };
        let centre = match parse_position(&pos_text) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem("pos", e.to_string());
                None
            }
        };
        let radius = match self.raw_owned("radius") {
            None => Some(DEFAULT_RADIUS_ARCMIN),
            Some(r) => match r.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_RADIUS_ARCMIN => Some(v),
                Ok(_) => {
                    self.problem(
                        "radius",
                        format!("the radius is more than 0 and at most {MAX_RADIUS_ARCMIN} arcmin"),
                    );
                    None
                }
                Err(_) => {
                    self.problem("radius", format!("{r:?} is not a number of arcminutes"));
                    None
                }
            },
        };
        let around = match self.raw_owned("around").as_deref() {
            None | Some("candidate") => Some(Around::Candidate),
            Some(kind) => match check_key(kind) {
                Ok(()) => Some(Around::Kind(kind.to_string())),
                Err(_) => {
                    self.problem("around", format!("{kind:?} is not a kind of position"));
                    None
                }
            },
        };
        if let (Some(centre), Some(radius_arcmin), Some(around)) = (centre, radius, around) {
            self.cone = Some(Cone {
                centre,
                radius_arcmin,
                around,
            });
        }
    }

    fn read_match(&mut self) {
        let state = match self.raw_owned("match_state").as_deref() {
            None | Some("within") => MatchState::Within,
            Some("none") => MatchState::NoneWithin,
            Some(other) => {
                self.problem(
                    "match_state",
                    format!("{other:?} is not a match state: use within or none"),
                );
                return;
            }
        };
        let within_arcsec = match self.raw_owned("match_sep") {
            None => None,
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 && x <= MAX_MATCH_ARCSEC => Some(x),
                _ => {
                    self.problem(
                        "match_sep",
                        format!("the separation is a number of arcseconds above 0 and at most {MAX_MATCH_ARCSEC}"),
                    );
                    return;
                }
            },
        };
        let Some(name) = self.raw_owned("match") else {
            return;
        };
        match CatalogueName::parse(&name) {
            Ok(catalogue) => {
                self.matching = Some(MatchFilter {
                    catalogue,
                    state,
                    within_arcsec,
                })
            }
            Err(_) => self.problem("match", format!("there is no catalogue {name:?}")),
        }
    }

    fn read_observation_attribute(&mut self) {
        let exclude = match self.raw_owned("obs_not").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                self.problem(
                    "obs_not",
                    format!("{other:?} is not a choice: 1 excludes the matching observations, 0 keeps only them"),
                );
                return;
            }
        };
        let Some(key) = self.raw_owned("obs_attr") else {
            return;
        };
        let printable =
            |s: &str, max: usize| s.chars().count() <= max && !s.chars().any(char::is_control);
        if !printable(&key, 64) {
            self.problem(
                "obs_attr",
                "an observation attribute is at most 64 characters, without control characters",
            );
            return;
        }
        let value = self.raw_owned("obs_value").unwrap_or_default();
        if value.is_empty() {
            self.problem(
                "obs_value",
                format!("give the value of {key} to keep or exclude"),
            );
            return;
        }
        if !printable(&value, 200) {
            self.problem(
                "obs_value",
                "a value is at most 200 characters, without control characters",
            );
            return;
        }
        self.observation_attribute = Some(ObservationAttribute {
            key,
            value,
            exclude,
        });
    }

    fn read_view(&mut self) {
        let descending = match self.raw_owned("dir").as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                self.problem(
                    "dir",
                    format!("{other:?} is not a direction: use asc or desc"),
                );
                false
            }
        };
        if let Some(s) = self.raw_owned("sort") {
            match SortKey::parse(&s) {
                // Separation without a cone: the cone was just removed, so
                // fall back to the default quietly.
                Ok(SortKey::Separation)
                    if self.cone.is_none() && self.raw_owned("pos").is_none() => {}
                // Likewise the match sort without a catalogue.
                Ok(SortKey::Match) if self.raw_owned("match").is_none() => {}
                Ok(key) => self.sort = Some(Sort { key, descending }),
                Err(e) => self.problem("sort", e),
            }
        } else if descending {
            self.sort = Some(Sort {
                key: self.default_sort_key(),
                descending,
            });
        }
        if let Some(p) = self.raw_owned("per") {
            match p.parse::<u32>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => self.per_page = n,
                _ => self.problem(
                    "per",
                    format!("rows per page: a whole number from 1 to {MAX_PER_PAGE}"),
                ),
            }
        }
    }

    fn default_sort_key(&self) -> SortKey {
        if self.cone.is_some() {
            SortKey::Separation
        } else {
            SortKey::Name
        }
    }

    /// The sort in force: the one asked for, or separation with a cone,
    /// else name.
    pub fn effective_sort(&self) -> Sort {
        self.sort.clone().unwrap_or(Sort {
            key: self.default_sort_key(),
            descending: false,
        })
    }

    /// What was typed for parameter `key` (trimmed), or "".
    pub fn value(&self, key: &str) -> &str {
        self.raw.get(key).map_or("", String::as_str)
    }

    /// The first problem with parameter `field`.
    pub fn problem_for(&self, field: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|p| p.field == field)
            .map(|p| p.message.as_str())
    }

    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether anything limits the candidates (as opposed to only sorting,
    /// paging or choosing columns).
    pub fn is_filtering(&self) -> bool {
        self.project.is_some()
            || self.observation.is_some()
            || self.beam.is_some()
            || self.name.is_some()
            || self.rated.is_some()
            || self.reviewer.is_some()
            || self.verdict.is_some()
            || self.tag.is_some()
            || self.score_min.is_some()
            || self.score_max.is_some()
            || self.consensus.is_some()
            || !self.ranges.is_empty()
            || self.cone.is_some()
            || self.matching.is_some()
            || self.observation_attribute.is_some()
    }

    /// The query string that gives this filter back (without the page
    /// cursor): what was typed, minus empty values and the cone's radius
    /// and target when there is no position.
    pub fn to_query(&self) -> String {
        self.query_with(&[])
    }

    /// `to_query` with some single-valued parameters replaced (an empty
    /// value removes one).
    pub fn query_with(&self, replace: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let get = |k: &str| -> Option<String> {
            match replace.iter().find(|(rk, _)| *rk == k) {
                Some((_, v)) => none_if_empty(v).map(str::to_string),
                None => self.raw_owned(k),
            }
        };
        let has_pos = get("pos").is_some();
        let has_match = get("match").is_some();
        let has_attr = get("obs_attr").is_some();
        for k in SINGLE {
            if matches!(k, "radius" | "around") && !has_pos {
                continue;
            }
            // Parts of a condition that is not there, and the defaults the
            // form always sends, stay out of the address.
            if (matches!(k, "match_state" | "match_sep") && !has_match)
                || (matches!(k, "obs_not" | "obs_value") && !has_attr)
                || (k == "obs_not" && get(k).as_deref() == Some("0"))
                || (k == "match_state" && get(k).as_deref() == Some("within"))
            {
                continue;
            }
            if k == "sort" || k == "dir" {
                continue;
            }
            if let Some(v) = get(k) {
                pairs.push((k.into(), v));
            }
        }
        for (k, v) in &self.raw {
            if k.starts_with("m.") && !v.is_empty() && !(k.ends_with(".nf") && v == "exclude") {
                pairs.push((k.clone(), v.clone()));
            }
        }
        for k in ["sort", "dir"] {
            if let Some(v) = get(k) {
                pairs.push((k.into(), v));
            }
        }
        if let Some(cols) = &self.columns {
            if cols.is_empty() {
                pairs.push(("col".into(), String::new()));
            }
            for c in cols {
                pairs.push(("col".into(), c.clone()));
            }
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    /// The query of the page that starts after (or ends before) `key`.
    pub fn query_at(&self, cursor: &Cursor) -> String {
        let base = self.to_query();
        let extra = match cursor {
            Cursor::First => return base,
            Cursor::After(k) => ("after", Cursor::encode(k)),
            Cursor::Before(k) => ("before", Cursor::encode(k)),
        };
        let tail = serde_urlencoded::to_string([extra]).unwrap_or_default();
        if base.is_empty() {
            tail
        } else {
            format!("{base}&{tail}")
        }
    }

    /// The query that sorts by `key`: ascending first, the other way when
    /// it is already the sort.
    pub fn query_sorted_by(&self, key: &SortKey) -> String {
        let now = self.effective_sort();
        let dir = if now.key == *key && !now.descending {
            "desc"
        } else {
            "asc"
        };
        self.query_with(&[("sort", &key.as_param()), ("dir", dir)])
    }

    /// A short description for labels ("VAST · within 2′ of 188.7 -45.2 · rated by me").
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        parts.push(
            self.project
                .clone()
                .unwrap_or_else(|| "all projects".into()),
        );
        if let Some(o) = &self.observation {
            parts.push(format!("observation {o}"));
        }
        if let Some(b) = &self.beam {
            parts.push(format!("beam {b}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name contains {n:?}"));
        }
        if let Some(r) = self.rated {
            parts.push(r.label().into());
        }
        let mut rating = Vec::new();
        if let Some(v) = self.verdict {
            rating.push(v.label().to_lowercase());
        }
        if let Some(t) = &self.tag {
            rating.push(format!("tagged {t}"));
        }
        if let Some(u) = &self.reviewer {
            rating.push(format!("by {u}"));
        }
        if !rating.is_empty() {
            parts.push(format!("rated {}", rating.join(" ")));
        }
        match (self.score_min, self.score_max) {
            (Some(a), Some(b)) => parts.push(format!("{a} ≤ P(real) ≤ {b}")),
            (Some(a), None) => parts.push(format!("P(real) ≥ {a}")),
            (None, Some(b)) => parts.push(format!("P(real) ≤ {b}")),
            (None, None) => {}
        }
        if let Some(c) = self.consensus {
            parts.push(format!("consensus {}", c.label()));
        }
        for r in &self.ranges {
            parts.push(r.to_string());
        }
        if let Some(c) = &self.cone {
            parts.push(format!(
                "{} within {}′ of {}",
                match &c.around {
                    Around::Candidate => "position".to_string(),
                    Around::Kind(k) => format!("{k} position"),
                },
                c.radius_arcmin,
                self.value("pos")
            ));
        }
        if let Some(m) = &self.matching {
            let within = m
                .within_arcsec
                .map(|r| format!(" within {r}″"))
                .unwrap_or_default();
            parts.push(match m.state {
                MatchState::Within => format!("a {} counterpart{within}", m.catalogue),
                MatchState::NoneWithin => format!("no {} counterpart{within}", m.catalogue),
            });
        }
        if let Some(a) = &self.observation_attribute {
            parts.push(format!(
                "observations whose {} {} {}",
                a.key,
                if a.exclude { "is not" } else { "is" },
                a.value
            ));
        }
        parts.join(" · ")
    }
}

impl fmt::Display for MetricRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = match (self.min, self.max) {
            (Some(a), Some(b)) => format!("{a} ≤ {} ≤ {b}", self.key),
            (Some(a), None) => format!("{} ≥ {a}", self.key),
            (None, Some(b)) => format!("{} ≤ {b}", self.key),
            (None, None) => format!("{} any finite value", self.key),
        };
        match self.non_finite {
            NonFinite::Exclude => f.write_str(&range),
            NonFinite::Include => write!(f, "{range} or NaN/±∞"),
            NonFinite::Only => write!(f, "{} NaN/±∞", self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> CandidateFilter {
        CandidateFilter::from_query(q)
    }

    #[test]
    fn counterpart_and_observation_conditions_are_read_and_described() {
        let f = parse("project=p&match=racs&match_state=none&match_sep=10&obs_attr=band&obs_value=88&obs_not=1");
        assert!(f.is_valid(), "{:?}", f.problems);
        assert_eq!(
            f.summary(),
            "p · no racs counterpart within 10″ · observations whose band is not 88"
        );
        // The form's defaults stay out of the address.
        let f = parse("project=p&match=&match_state=within&obs_not=0&obs_value=");
        assert_eq!(f.to_query(), "project=p");
        for (q, field) in [
            ("match=RACS!", "match"),
            ("match=racs&match_state=maybe", "match_state"),
            ("match=racs&match_sep=601", "match_sep"),
            ("obs_attr=band", "obs_value"),
            ("obs_attr=band&obs_value=1&obs_not=2", "obs_not"),
        ] {
            assert!(parse(q).problem_for(field).is_some(), "{q}");
        }
    }

    #[test]
    fn score_and_consensus_are_read_checked_and_described() {
        let f = parse("project=p&score_min=0.5&score_max=0.9&consensus=settled&sort=score&dir=desc&col=_p_real&col=_consensus");
        assert!(f.is_valid(), "{:?}", f.problems);
        assert_eq!((f.score_min, f.score_max), (Some(0.5), Some(0.9)));
        assert_eq!(f.consensus, Some(ConsensusFilter::Settled));
        assert_eq!(f.effective_sort().key, SortKey::Score);
        assert_eq!(
            f.columns,
            Some(vec![SCORE_COLUMN.to_string(), CONSENSUS_COLUMN.to_string()])
        );
        assert_eq!(f.summary(), "p · 0.5 ≤ P(real) ≤ 0.9 · consensus settled");
        assert_eq!(parse(&f.to_query()).to_query(), f.to_query());
        for (q, field) in [
            ("score_min=2", "score_min"),
            ("score_max=-0.1", "score_max"),
            ("score_min=NaN", "score_min"),
            ("score_min=abc", "score_min"),
            ("score_min=0.8&score_max=0.2", "score_min"),
            ("consensus=maybe", "consensus"),
        ] {
            assert!(parse(q).problem_for(field).is_some(), "{q}");
        }
    }

    #[test]
    fn selecting_parameters_are_told_from_the_tables_own() {
        for k in [
            "project",
            "pos",
            "radius",
            "m.snr.min",
            "rated",
            "consensus",
            "group",
        ] {
            assert!(selects(k), "{k}");
        }
        for k in [
            "sort",
            "dir",
            "per",
            "col",
            "after",
            "before",
            "form_project",
            "limit",
        ] {
            assert!(!selects(k), "{k}");
        }
    }

    #[test]
    fn an_empty_query_is_a_valid_empty_filter() {
        let f = parse("");
        assert!(f.is_valid());
        assert!(!f.is_filtering());
        assert_eq!(
            f.effective_sort(),
            Sort {
                key: SortKey::Name,
                descending: false
            }
        );
        assert_eq!(f.per_page, DEFAULT_PER_PAGE);
        assert_eq!(f.columns, None);
        assert_eq!(f.to_query(), "");
    }

    #[test]
    fn every_field_is_read() {
        let f = parse(
            "project=vast&observation=SB1&beam=beam00&name=J12&rated=mine&reviewer=alice&verdict=real&tag=Flare+star\
             &m.snr.min=5&m.snr.max=10&m.md.nf=only&pos=188.7+-45.2&radius=3&around=deep&sort=m.snr&dir=desc&per=20\
             &col=snr&col=md",
        );
        assert!(f.is_valid(), "{:?}", f.problems);
        assert_eq!(f.project.as_deref(), Some("vast"));
        assert_eq!(f.observation.as_deref(), Some("SB1"));
        assert_eq!(f.beam.as_deref(), Some("beam00"));
        assert_eq!(f.name.as_deref(), Some("J12"));
        assert_eq!(f.rated, Some(RatedState::Mine));
        assert_eq!(f.reviewer.as_deref(), Some("alice"));
        assert_eq!(f.verdict, Some(Verdict::Real));
        assert_eq!(f.tag.as_deref(), Some("Flare star"));
        assert_eq!(
            f.ranges,
            vec![
                MetricRange {
                    key: "md".into(),
                    min: None,
                    max: None,
                    non_finite: NonFinite::Only
                },
                MetricRange {
                    key: "snr".into(),
                    min: Some(5.0),
                    max: Some(10.0),
                    non_finite: NonFinite::Exclude
                },
            ]
        );
        let cone = f.cone.clone().unwrap();
        assert_eq!(cone.radius_arcmin, 3.0);
        assert_eq!(cone.around, Around::Kind("deep".into()));
        assert!((cone.centre.ra.degrees() - 188.7).abs() < 1e-12);
        assert_eq!(
            f.sort,
            Some(Sort {
                key: SortKey::Metric("snr".into()),
                descending: true
            })
        );
        assert_eq!(f.per_page, 20);
        assert_eq!(f.columns, Some(vec!["snr".into(), "md".into()]));
        // The query round-trips.
        let again = parse(&f.to_query());
        assert_eq!(again.to_query(), f.to_query());
        assert_eq!(again.ranges, f.ranges);
        assert_eq!(again.cone, f.cone);
        assert_eq!(again.columns, f.columns);
    }

    #[test]
    fn bad_values_become_problems_named_after_their_field() {
        let f = parse(
            "project=Not+A+Slug&rated=sometimes&verdict=maybe&pos=12:61:00+-45:00:00&radius=-1\
             &m.snr.min=abc&m.snr.max=inf&m.md.min=5&m.md.max=1&m.x.nf=only&m.x.min=1&sort=colour&dir=up&per=0\
             &after=garbage&col=Bad+Key&m.Bad.min=1",
        );
        let fields: Vec<&str> = f.problems.iter().map(|p| p.field.as_str()).collect();
        for want in [
            "project",
            "rated",
            "verdict",
            "pos",
            "m.snr.min",
            "m.snr.max",
            "m.md.min",
            "m.x.nf",
            "sort",
            "dir",
            "per",
            "page",
            "col",
            "m.Bad.min",
        ] {
            assert!(fields.contains(&want), "{want} missing from {fields:?}");
        }
        assert!(f
            .problem_for("pos")
            .unwrap()
            .contains("minutes must be below 60"));
        assert!(f.problem_for("m.snr.max").unwrap().contains("finite"));
        assert!(f.ranges.is_empty());
        assert!(f.cone.is_none());
        // What was typed is kept for the form.
        assert_eq!(f.value("pos"), "12:61:00 -45:00:00");
        assert_eq!(f.value("m.snr.min"), "abc");
    }

    #[test]
    fn the_radius_is_checked_and_defaults_to_two_arcmin() {
        assert_eq!(
            parse("pos=10+20").cone.unwrap().radius_arcmin,
            DEFAULT_RADIUS_ARCMIN
        );
        assert_eq!(
            parse("pos=10+20&radius=").cone.unwrap().radius_arcmin,
            DEFAULT_RADIUS_ARCMIN
        );
        for bad in ["0", "-2", "601", "NaN", "inf", "two"] {
            let f = parse(&format!("pos=10+20&radius={bad}"));
            assert!(f.problem_for("radius").is_some(), "{bad}");
            assert!(f.cone.is_none());
        }
        // A radius without a position does nothing and is not written back.
        let f = parse("radius=5&around=deep");
        assert!(f.is_valid() && f.cone.is_none());
        assert_eq!(f.to_query(), "");
    }

    #[test]
    fn positions_are_read_in_every_spelling_with_ra_in_degrees_unless_sexagesimal() {
        for (text, ra, dec) in [
            ("188.7 -45.2", 188.7, -45.2),
            ("12:34:56.7 -45:12:34", 188.736_25, -45.209_444),
            ("12h34m56.7s -45d12m34s", 188.736_25, -45.209_444),
            ("0 -90", 0.0, -90.0),
            ("359.9999 90", 359.9999, 90.0),
        ] {
            let f = parse(&serde_urlencoded::to_string([("pos", text)]).unwrap());
            let c = f.cone.unwrap_or_else(|| panic!("{text}: {:?}", f.problems));
            assert!((c.centre.ra.degrees() - ra).abs() < 1e-5, "{text}");
            assert!((c.centre.dec.degrees() - dec).abs() < 1e-5, "{text}");
        }
        for bad in ["360 0", "10 91", "25:00:00 10", "hello", "188.7"] {
            let f = parse(&serde_urlencoded::to_string([("pos", bad)]).unwrap());
            assert!(f.problem_for("pos").is_some(), "{bad}");
        }
    }

    #[test]
    fn the_default_sort_is_separation_with_a_cone_and_name_without() {
        assert_eq!(parse("pos=1+2").effective_sort().key, SortKey::Separation);
        assert_eq!(parse("").effective_sort().key, SortKey::Name);
        // Separation left over from a removed cone falls back quietly.
        let f = parse("sort=sep&dir=desc");
        assert!(f.is_valid());
        assert_eq!(f.effective_sort().key, SortKey::Name);
        // But with a bad position it stays (the position is the problem).
        let f = parse("pos=bad&sort=sep");
        assert_eq!(f.problems.len(), 1);
    }

    #[test]
    fn ranges_treat_nan_and_infinities_as_chosen() {
        let r = |min, max, nf| MetricRange {
            key: "k".into(),
            min,
            max,
            non_finite: nf,
        };
        let excl = r(Some(1.0), None, NonFinite::Exclude);
        assert!(excl.matches(1.0) && excl.matches(1e300));
        assert!(!excl.matches(f64::INFINITY) && !excl.matches(f64::NAN) && !excl.matches(0.5));
        let incl = r(Some(1.0), Some(2.0), NonFinite::Include);
        assert!(incl.matches(1.5) && incl.matches(f64::NAN) && incl.matches(f64::NEG_INFINITY));
        assert!(!incl.matches(3.0));
        let only = r(None, None, NonFinite::Only);
        assert!(only.matches(f64::NAN) && only.matches(f64::INFINITY) && !only.matches(0.0));
        // A choice alone makes an active range; nothing at all does not.
        assert_eq!(parse("m.k.nf=include").ranges.len(), 1);
        assert!(parse("m.k.nf=exclude&m.k.min=&m.k.max=").ranges.is_empty());
    }

    #[test]
    fn a_form_drawn_for_another_project_drops_that_projects_metrics() {
        let q = "project=b&form_project=a&m.snr.min=5&col=snr&sort=m.snr&dir=desc&name=J1";
        let f = parse(q);
        assert!(f.is_valid());
        assert!(f.ranges.is_empty() && f.columns.is_none() && f.sort.is_none());
        assert_eq!(f.name.as_deref(), Some("J1"));
        // The same project keeps them.
        let f = parse("project=a&form_project=a&m.snr.min=5&col=snr&sort=m.snr");
        assert_eq!(f.ranges.len(), 1);
        assert_eq!(f.columns, Some(vec!["snr".to_string()]));
        assert!(f.sort.is_some());
    }

    #[test]
    fn columns_absent_empty_and_chosen_differ() {
        assert_eq!(parse("").columns, None);
        assert_eq!(parse("col=").columns, Some(vec![]));
        assert_eq!(
            parse("col=&col=snr&col=snr").columns,
            Some(vec!["snr".to_string()])
        );
        assert_eq!(parse("col=").to_query(), "col=");
    }

    #[test]
    fn cursors_round_trip_and_sort_links_toggle() {
        let f = parse("project=vast&sort=name");
        let key = vec!["VAST J1234-45 & co".to_string(), "12".to_string()];
        let q = f.query_at(&Cursor::After(key.clone()));
        let back = parse(&q);
        assert_eq!(back.cursor, Cursor::After(key.clone()));
        assert_eq!(
            parse(&f.query_at(&Cursor::Before(key.clone()))).cursor,
            Cursor::Before(key)
        );
        // Sorting again by the same column flips it; sort links drop the cursor.
        let q = back.query_sorted_by(&SortKey::Name);
        assert!(q.contains("dir=desc") && !q.contains("after"), "{q}");
        let q = parse(&q).query_sorted_by(&SortKey::Name);
        assert!(q.contains("dir=asc"), "{q}");
        assert!(parse("")
            .query_sorted_by(&SortKey::Ra)
            .contains("sort=ra&dir=asc"));
    }
}

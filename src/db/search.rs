//! Finding candidates: one SQL builder for the candidate table, the ratings
//! summary, the exports and the rating queue.
//!
//! A [`CandidateFilter`] (names, as typed) is resolved once into a [`Scope`]
//! (ids), and [`push_conditions`] writes the scope as `AND …` conditions on
//! the alias `c` (candidates). Every condition that looks at other tables
//! is an `EXISTS`/`IN` subquery, never a join, so a candidate matches once
//! whatever its number of ratings, tags or metrics.
//!
//! The table pages by keyset: each page is `WHERE (sort key, id) > cursor
//! ORDER BY sort key, id LIMIT n`, which an index answers without reading
//! the rows before the page (`candidates_project_name_idx`,
//! `candidates_name_idx`, `candidates_count_idx`,
//! `candidates_observation_name_idx`, and `candidate_metrics_sort_idx` for
//! metric sorts), so page 20,000 costs what page 1 does.
//!
//! These queries are sent unprepared (`persistent(false)`): PostgreSQL then
//! plans each with its actual values. A cached prepared statement switches
//! to a generic plan after five runs, and a generic plan cannot tell a
//! 2′ cone from the whole sky: it drove a cone search on a named position
//! from the metric index and took 2 s instead of 20 ms on a million rows.
//! The exception is a page of whole projects in some order, whose plan
//! cannot depend on the values (see `fetch_segment`).

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};

use crate::db::projects::{self, MetricDef, Project};
use crate::db::ratings::{push_rating_visible, push_visible, push_visible_from};
use crate::domain::filter::{
    Around, CandidateFilter, Cone, ConsensusFilter, Cursor, MatchState, MetricRange, NonFinite,
    ObservationAttribute, RatedState, SortKey, CONSENSUS_COLUMN, SCORE_COLUMN,
};
use crate::domain::visibility::RatingVisibility;
use crate::domain::{
    BeamId, CandidateId, CatalogueId, ObservationId, Problem, ProjectId, SkyPos, TagId, UserId,
    Verdict,
};

/// A filter with its names resolved to ids, ready to become SQL.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub project_id: Option<ProjectId>,
    pub observation_ids: Option<Vec<ObservationId>>,
    pub beam_ids: Option<Vec<BeamId>>,
    /// An `ILIKE` pattern (wildcards in the text escaped).
    pub name_pattern: Option<String>,
    pub rated: Option<RatedState>,
    pub reviewer_id: Option<UserId>,
    pub verdict: Option<Verdict>,
    pub tag_ids: Option<Vec<TagId>>,
    pub score_min: Option<f64>,
    pub score_max: Option<f64>,
    pub consensus: Option<ConsensusFilter>,
    pub ranges: Vec<(i64, MetricRange)>,
    pub cone: Option<Cone>,
    /// A condition on the nearest source of a catalogue.
    pub matching: Option<ScopeMatch>,
    pub observation_attribute: Option<ObservationAttribute>,
    /// Only the first candidate of each group (`db::groups`).
    pub one_per_group: bool,
}

/// A match filter with its catalogue resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScopeMatch {
    pub catalogue: CatalogueId,
    pub state: MatchState,
    pub within_arcsec: Option<f64>,
}

impl Scope {
    /// Whether nothing limits the candidates (so queries need not look at
    /// them at all).
    pub fn is_everything(&self) -> bool {
        self.project_id.is_none()
            && self.observation_ids.is_none()
            && self.beam_ids.is_none()
            && self.name_pattern.is_none()
            && self.rated.is_none()
            && self.reviewer_id.is_none()
            && self.verdict.is_none()
            && self.tag_ids.is_none()
            && self.score_min.is_none()
            && self.score_max.is_none()
            && self.consensus.is_none()
            && self.ranges.is_empty()
            && self.cone.is_none()
            && self.matching.is_none()
            && self.observation_attribute.is_none()
            && !self.one_per_group
    }
}

/// The join to the one candidate of each rating row (alias `c`), needed
/// only when the scope has conditions on candidates or the rows are not yet
/// limited to those the viewer may see.
fn candidate_join(scope: &Scope, limited: bool, column: &str) -> String {
    if scope.is_everything() && limited {
        String::new()
    } else {
        format!(" JOIN candidates c ON c.id = {column}")
    }
}

/// How the table is sorted, with the metric resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum SortSpec {
    /// By id alone: the read API's walk, where a candidate's place never
    /// moves, so paging neither skips nor repeats while others arrive.
    Id,
    Name,
    Ra,
    Dec,
    Observation,
    Ratings,
    Separation,
    /// The model's P(real), where the viewer may see it.
    Score,
    Metric {
        id: i64,
        key: String,
    },
    /// The nearest source's separation in a catalogue.
    Match(CatalogueId),
}

/// Everything `resolve` found out about a filter.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub scope: Scope,
    /// Names that do not exist, and the filter's own problems.
    pub problems: Vec<Problem>,
    /// Things done instead of what was asked that do not stop the search.
    pub notes: Vec<String>,
    pub project: Option<Project>,
    /// The project's metrics, in its order.
    pub metrics: Vec<MetricDef>,
    /// The metric columns to show.
    pub columns: Vec<MetricDef>,
    pub sort: Option<(SortSpec, bool)>,
    /// The match filter's catalogue name, for the table's column.
    pub match_catalogue: Option<String>,
    /// Whether the P(real) and consensus columns are shown.
    pub show_score: bool,
    pub show_consensus: bool,
}

impl Resolution {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Escapes `%`, `_` and `\` so the text matches itself inside `ILIKE`.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// Looks up the names of a filter. Unknown names are problems of their
/// field; nothing here fails except the database.
pub async fn resolve(db: &mut PgConnection, f: &CandidateFilter) -> sqlx::Result<Resolution> {
    let mut r = Resolution {
        problems: f.problems.clone(),
        ..Default::default()
    };
    let s = &mut r.scope;
    if let Some(slug) = &f.project {
        match projects::with_metrics(db, slug).await? {
            Some((p, metrics)) => {
                s.project_id = Some(p.id);
                r.metrics = metrics;
                r.project = Some(p);
            }
            None => r.problems.push(Problem::new(
                "project",
                format!("there is no project {slug:?}"),
            )),
        }
    }
    let in_project = match (&r.project, f.project.is_some()) {
        (Some(p), _) => format!(" in {}", p.name),
        _ => String::new(),
    };
    if let Some(ext) = &f.observation {
        let ids: Vec<ObservationId> = sqlx::query_scalar(
            "SELECT id FROM observations WHERE external_id = $1 AND ($2::bigint IS NULL OR project_id = $2)",
        )
        .bind(ext)
        .bind(s.project_id)
        .fetch_all(&mut *db)
        .await?;
        if ids.is_empty() {
            r.problems.push(Problem::new(
                "observation",
                format!("there is no observation {ext:?}{in_project}"),
            ));
        }
        s.observation_ids = Some(ids);
    }
    if let Some(beam) = &f.beam {
        let ids: Vec<BeamId> = sqlx::query_scalar(
            "SELECT b.id FROM beams b JOIN observations o ON o.id = b.observation_id
             WHERE b.name = $1 AND ($2::bigint IS NULL OR o.project_id = $2)
               AND ($3::bigint[] IS NULL OR b.observation_id = ANY($3))",
        )
        .bind(beam)
        .bind(s.project_id)
        .bind(s.observation_ids.as_deref())
        .fetch_all(&mut *db)
        .await?;
        if ids.is_empty() {
            r.problems.push(Problem::new(
                "beam",
                format!("there is no beam {beam:?}{in_project}"),
            ));
        }
        s.beam_ids = Some(ids);
    }
    s.name_pattern = f.name.as_deref().map(like_pattern);
    s.observation_attribute = f.observation_attribute.clone();
    s.rated = f.rated;
    s.verdict = f.verdict;
    s.score_min = f.score_min;
    s.score_max = f.score_max;
    s.consensus = f.consensus;
    if let Some(name) = &f.reviewer {
        let id: Option<UserId> =
            sqlx::query_scalar("SELECT id FROM users WHERE lower(username) = lower($1)")
                .bind(name)
                .fetch_optional(&mut *db)
                .await?;
        match id {
            Some(id) => s.reviewer_id = Some(id),
            None => r.problems.push(Problem::new(
                "reviewer",
                format!("there is no reviewer {name:?}"),
            )),
        }
    }
    if let Some(tag) = &f.tag {
        // Without a project, a tag name means that tag in every project.
        let ids: Vec<TagId> = sqlx::query_scalar(
            "SELECT id FROM tags WHERE lower(name) = lower($1) AND ($2::bigint IS NULL OR project_id = $2)",
        )
        .bind(tag)
        .bind(s.project_id)
        .fetch_all(&mut *db)
        .await?;
        if ids.is_empty() {
            r.problems.push(Problem::new(
                "tag",
                format!("there is no tag {tag:?}{in_project}"),
            ));
        }
        s.tag_ids = Some(ids);
    }
    if let Some(m) = &f.matching {
        let id: Option<CatalogueId> =
            sqlx::query_scalar("SELECT id FROM catalogues WHERE name = $1")
                .bind(m.catalogue.as_str())
                .fetch_optional(&mut *db)
                .await?;
        match id {
            Some(catalogue) => {
                s.matching = Some(ScopeMatch {
                    catalogue,
                    state: m.state,
                    within_arcsec: m.within_arcsec,
                });
                r.match_catalogue = Some(m.catalogue.to_string());
            }
            None => r.problems.push(Problem::new(
                "match",
                format!("there is no catalogue {:?}", m.catalogue.as_str()),
            )),
        }
    }
    let metric = |key: &str| r.metrics.iter().find(|m| m.key == key);
    let mut ranges = Vec::new();
    let mut problems = Vec::new();
    for range in &f.ranges {
        let field = format!("m.{}.min", range.key);
        match (&r.project, metric(&range.key)) {
            (None, _) if f.project.is_none() => problems.push(Problem::new(
                field,
                format!(
                    "choose a project to filter on its metrics ({} belongs to a project)",
                    range.key
                ),
            )),
            (None, _) => {}
            (Some(p), None) => problems.push(Problem::new(
                field,
                format!("{} has no metric {:?}", p.name, range.key),
            )),
            (Some(_), Some(m)) => ranges.push((m.id, range.clone())),
        }
    }
    r.problems.extend(problems);
    r.scope.ranges = ranges;
    r.scope.cone = f.cone.clone();
    r.scope.one_per_group = f.one_per_group;

    let sort = f.effective_sort();
    let spec = match &sort.key {
        SortKey::Name => Some(SortSpec::Name),
        SortKey::Ra => Some(SortSpec::Ra),
        SortKey::Dec => Some(SortSpec::Dec),
        SortKey::Observation => Some(SortSpec::Observation),
        SortKey::Ratings => Some(SortSpec::Ratings),
        SortKey::Score => Some(SortSpec::Score),
        SortKey::Separation if f.cone.is_some() => Some(SortSpec::Separation),
        // Without a catalogue, the catalogue has a problem of its own.
        SortKey::Match => r.scope.matching.map(|m| SortSpec::Match(m.catalogue)),
        // The position has a problem of its own.
        SortKey::Separation => None,
        SortKey::Metric(key) => match metric(key) {
            Some(m) => Some(SortSpec::Metric {
                id: m.id,
                key: m.key.clone(),
            }),
            None => {
                r.notes.push(format!(
                    "Sorted by name: {} has no metric {key:?} to sort by.",
                    r.project
                        .as_ref()
                        .map_or("a search over all projects", |p| p.name.as_str())
                ));
                Some(if f.cone.is_some() {
                    SortSpec::Separation
                } else {
                    SortSpec::Name
                })
            }
        },
    };
    r.sort = spec.map(|s| (s, sort.descending));

    let chosen = |c: &str| f.columns.as_ref().is_some_and(|k| k.iter().any(|k| k == c));
    r.show_score = chosen(SCORE_COLUMN);
    r.show_consensus = chosen(CONSENSUS_COLUMN);
    r.columns = match &f.columns {
        None => r
            .metrics
            .iter()
            .filter(|m| m.shown_by_default)
            .cloned()
            .collect(),
        // Keys the project does not have are left out.
        Some(keys) => keys.iter().filter_map(|k| metric(k).cloned()).collect(),
    };
    Ok(r)
}

/// The centre and radius of a cone in degrees, for binding.
fn cone_binds(c: &Cone) -> (f64, f64, f64) {
    (
        c.centre.ra.degrees(),
        c.centre.dec.degrees(),
        c.radius_arcmin / 60.0,
    )
}

/// Writes the scope as `AND …` conditions on the alias `c`. The viewer is
/// whose ratings "mine" means, and conditions on others' ratings match only
/// the ratings the viewer may see (`domain::visibility`).
pub fn push_conditions(q: &mut QueryBuilder<'_, Postgres>, s: &Scope, v: &RatingVisibility) {
    let me = v.viewer();
    if let Some(p) = s.project_id {
        q.push(" AND c.project_id = ").push_bind(p);
    }
    if s.one_per_group {
        q.push(" AND c.group_id = c.id");
    }
    if let Some(ids) = &s.observation_ids {
        q.push(" AND c.observation_id = ANY(")
            .push_bind(ids.clone())
            .push(")");
    }
    if let Some(ids) = &s.beam_ids {
        q.push(" AND c.beam_id = ANY(")
            .push_bind(ids.clone())
            .push(")");
    }
    if let Some(pattern) = &s.name_pattern {
        q.push(" AND c.name ILIKE ").push_bind(pattern.clone());
    }
    match s.rated {
        None => {}
        Some(RatedState::Mine) => {
            q.push(" AND EXISTS (SELECT 1 FROM ratings rm WHERE rm.candidate_id = c.id AND rm.user_id = ")
                .push_bind(me)
                .push(")");
        }
        Some(RatedState::NotMine) => {
            q.push(" AND NOT EXISTS (SELECT 1 FROM ratings rm WHERE rm.candidate_id = c.id AND rm.user_id = ")
                .push_bind(me)
                .push(")");
        }
        Some(RatedState::Any) => {
            q.push(" AND c.rating_count > 0");
        }
        Some(RatedState::Nobody) => {
            q.push(" AND c.rating_count = 0");
        }
        Some(RatedState::Disagreement) => {
            q.push(
                " AND c.rating_count > 1 AND EXISTS (SELECT 1 FROM ratings rd1 JOIN ratings rd2
                   ON rd2.candidate_id = rd1.candidate_id AND rd2.verdict <> rd1.verdict
                   WHERE rd1.candidate_id = c.id)",
            );
            push_visible(q, v, "c");
        }
    }
    // Reviewer, verdict and tag describe one and the same current rating.
    if s.reviewer_id.is_some() || s.verdict.is_some() || s.tag_ids.is_some() {
        q.push(" AND EXISTS (SELECT 1 FROM ratings rf WHERE rf.candidate_id = c.id");
        if let Some(u) = s.reviewer_id {
            q.push(" AND rf.user_id = ").push_bind(u);
        }
        if let Some(v) = s.verdict {
            q.push(" AND rf.verdict = ").push_bind(v);
        }
        if let Some(tags) = &s.tag_ids {
            q.push(
                " AND EXISTS (SELECT 1 FROM rating_tags rt WHERE rt.user_id = rf.user_id
                   AND rt.candidate_id = rf.candidate_id AND rt.tag_id = ANY(",
            )
            .push_bind(tags.clone())
            .push("))");
        }
        push_rating_visible(q, v, "rf", "c");
        q.push(")");
    }
    // The score and the consensus are known only where the viewer may see
    // the candidate's ratings; elsewhere they match no condition.
    if s.score_min.is_some() || s.score_max.is_some() {
        q.push(" AND EXISTS (SELECT 1 FROM candidate_scores sf WHERE sf.candidate_id = c.id");
        if let Some(min) = s.score_min {
            q.push(" AND sf.p_real >= ").push_bind(min);
        }
        if let Some(max) = s.score_max {
            q.push(" AND sf.p_real <= ").push_bind(max);
        }
        q.push(")");
        push_visible(q, v, "c");
    }
    if let Some(cf) = s.consensus {
        q.push(" AND ");
        push_consensus(q, "c");
        q.push(" = ANY(").push_bind(cf.states()).push(")");
        push_visible(q, v, "c");
    }
    for (metric_id, range) in &s.ranges {
        q.push(" AND EXISTS (SELECT 1 FROM candidate_metrics mr WHERE mr.candidate_id = c.id AND mr.metric_id = ")
            .push_bind(*metric_id)
            .push(" AND ");
        // NaN sorts above +Infinity in PostgreSQL, so "< 'Infinity'" also
        // leaves NaN out.
        let finite = |q: &mut QueryBuilder<'_, Postgres>| {
            q.push("(mr.value > '-Infinity'::float8 AND mr.value < 'Infinity'::float8");
            if let Some(min) = range.min {
                q.push(" AND mr.value >= ").push_bind(min);
            }
            if let Some(max) = range.max {
                q.push(" AND mr.value <= ").push_bind(max);
            }
            q.push(")");
        };
        const NON_FINITE: &str =
            "(mr.value IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))";
        match range.non_finite {
            NonFinite::Exclude => finite(q),
            NonFinite::Include => {
                q.push("(");
                finite(q);
                q.push(" OR ").push(NON_FINITE).push(")");
            }
            NonFinite::Only => {
                q.push(NON_FINITE);
            }
        }
        q.push(")");
    }
    if let Some(a) = &s.observation_attribute {
        q.push(if a.exclude {
            " AND NOT EXISTS"
        } else {
            " AND EXISTS"
        })
        .push(" (SELECT 1 FROM observations oa WHERE oa.id = c.observation_id AND oa.metadata ->> ")
        .push_bind(a.key.clone())
        .push(" = ")
        .push_bind(a.value.clone())
        .push(")");
    }
    if let Some(m) = &s.matching {
        q.push(match m.state {
            MatchState::Within => " AND EXISTS",
            MatchState::NoneWithin => " AND NOT EXISTS",
        })
        .push(" (SELECT 1 FROM catalogue_nearest xn WHERE xn.candidate_id = c.id AND xn.catalogue_id = ")
        .push_bind(m.catalogue);
        if let Some(sep) = m.within_arcsec {
            q.push(" AND xn.separation_arcsec <= ").push_bind(sep);
        }
        q.push(")");
    }
    if let Some(cone) = &s.cone {
        let (ra, dec, r) = cone_binds(cone);
        match &cone.around {
            // `q3c_join(centre, column, r)`, not `q3c_radial_query`: the
            // same exact cone, but as four index ranges rather than a
            // hundred, which PostgreSQL plans in 0.3 ms instead of 4 ms (each
            // table query here is planned afresh) and runs faster too.
            Around::Candidate => {
                q.push(" AND q3c_join(")
                    .push_bind(ra)
                    .push(", ")
                    .push_bind(dec)
                    .push(", c.ra, c.dec, ")
                    .push_bind(r)
                    .push(")");
            }
            Around::Kind(kind) => {
                q.push(" AND c.id IN (SELECT cp.candidate_id FROM candidate_positions cp WHERE cp.kind = ")
                    .push_bind(kind.clone())
                    .push(" AND q3c_join(")
                    .push_bind(ra)
                    .push(", ")
                    .push_bind(dec)
                    .push(", cp.ra, cp.dec, ")
                    .push_bind(r)
                    .push("))");
            }
        }
    }
}

/// The consensus state of candidate `c` (`consensus_state`, text): no
/// tallies row means nobody rated it, which is open.
pub fn push_consensus(q: &mut QueryBuilder<'_, Postgres>, c: &str) {
    q.push(format!(
        "(SELECT consensus_state(coalesce(ct.n_real, 0), coalesce(ct.n_not_real, 0), cp.consensus_k)
          FROM projects cp LEFT JOIN candidate_tallies ct ON ct.candidate_id = {c}.id
          WHERE cp.id = {c}.project_id)"
    ));
}

/// `CASE WHEN <the viewer may see c's ratings> THEN `: close with ` END`.
fn push_when_visible(q: &mut QueryBuilder<'_, Postgres>, v: &RatingVisibility, c: &str) {
    q.push("CASE WHEN true");
    push_visible(q, v, c);
    q.push(" THEN ");
}

/// The separation in arcminutes of the position the cone looks at.
fn push_separation(q: &mut QueryBuilder<'_, Postgres>, cone: &Cone) {
    let (ra, dec, _) = cone_binds(cone);
    match &cone.around {
        Around::Candidate => {
            q.push("(q3c_dist(c.ra, c.dec, ")
                .push_bind(ra)
                .push(", ")
                .push_bind(dec)
                .push(") * 60)");
        }
        Around::Kind(kind) => {
            q.push("((SELECT q3c_dist(sp.ra, sp.dec, ")
                .push_bind(ra)
                .push(", ")
                .push_bind(dec)
                .push(") FROM candidate_positions sp WHERE sp.candidate_id = c.id AND sp.kind = ")
                .push_bind(kind.clone())
                .push(") * 60)");
        }
    }
}

// ---------------------------------------------------------------------------
// The table

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Float,
    Real,
    Int4,
    Int8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expr {
    Sql(&'static str),
    Separation,
}

/// One run of rows in a single index order. Most sorts are one segment;
/// a metric sort is three (numbers, NaN, no value), so that NaN and missing
/// values come last in both directions while each run still walks an index.
#[derive(Debug, Clone)]
struct Segment {
    /// Its number in the cursor (metric sorts only).
    tag: Option<&'static str>,
    join: Option<SegmentJoin>,
    condition: Option<SegmentCondition>,
    parts: Vec<(Expr, Ty)>,
}

/// The one row per candidate a segment's order comes from.
#[derive(Debug, Clone, Copy)]
enum SegmentJoin {
    /// `m`: the candidate's value of a metric.
    Metric(i64),
    /// `xn`: its nearest source in a catalogue.
    Nearest(CatalogueId),
    /// `cs`: its score.
    Score,
}

#[derive(Debug, Clone, Copy)]
enum SegmentCondition {
    NotNan,
    Nan,
    Missing(i64),
    NoMatch(CatalogueId),
    /// The viewer may see the candidate's ratings (so its score).
    Visible,
    /// No score the viewer may see.
    NoScore,
}

fn segments(sort: &SortSpec) -> Vec<Segment> {
    let one = |parts: Vec<(Expr, Ty)>| {
        vec![Segment {
            tag: None,
            join: None,
            condition: None,
            parts,
        }]
    };
    let id = (Expr::Sql("c.id"), Ty::Int8);
    match sort {
        SortSpec::Id => one(vec![id]),
        SortSpec::Name => one(vec![(Expr::Sql("c.name"), Ty::Text), id]),
        SortSpec::Ra => one(vec![(Expr::Sql("c.ra"), Ty::Float), id]),
        SortSpec::Dec => one(vec![(Expr::Sql("c.dec"), Ty::Float), id]),
        SortSpec::Observation => one(vec![
            (Expr::Sql("c.observation_id"), Ty::Int8),
            (Expr::Sql("c.name"), Ty::Text),
            id,
        ]),
        SortSpec::Ratings => one(vec![(Expr::Sql("c.rating_count"), Ty::Int4), id]),
        SortSpec::Separation => one(vec![(Expr::Separation, Ty::Float), id]),
        SortSpec::Score => vec![
            Segment {
                tag: Some("0"),
                join: Some(SegmentJoin::Score),
                condition: Some(SegmentCondition::Visible),
                parts: vec![
                    (Expr::Sql("cs.p_real"), Ty::Real),
                    (Expr::Sql("cs.candidate_id"), Ty::Int8),
                ],
            },
            Segment {
                tag: Some("1"),
                join: None,
                condition: Some(SegmentCondition::NoScore),
                parts: vec![id],
            },
        ],
        SortSpec::Match(catalogue) => vec![
            Segment {
                tag: Some("0"),
                join: Some(SegmentJoin::Nearest(*catalogue)),
                condition: None,
                parts: vec![
                    (Expr::Sql("xs.separation_arcsec"), Ty::Float),
                    (Expr::Sql("xs.candidate_id"), Ty::Int8),
                ],
            },
            Segment {
                tag: Some("1"),
                join: None,
                condition: Some(SegmentCondition::NoMatch(*catalogue)),
                parts: vec![id],
            },
        ],
        SortSpec::Metric { id: metric, .. } => vec![
            Segment {
                tag: Some("0"),
                join: Some(SegmentJoin::Metric(*metric)),
                condition: Some(SegmentCondition::NotNan),
                parts: vec![
                    (Expr::Sql("m.value"), Ty::Float),
                    (Expr::Sql("m.candidate_id"), Ty::Int8),
                ],
            },
            Segment {
                tag: Some("1"),
                join: Some(SegmentJoin::Metric(*metric)),
                condition: Some(SegmentCondition::Nan),
                parts: vec![(Expr::Sql("m.candidate_id"), Ty::Int8)],
            },
            Segment {
                tag: Some("2"),
                join: None,
                condition: Some(SegmentCondition::Missing(*metric)),
                parts: vec![id],
            },
        ],
    }
}

/// A row of the candidate table.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub id: CandidateId,
    pub name: String,
    pub project: String,
    pub observation: String,
    pub beam: Option<String>,
    pub pos: SkyPos,
    pub rating_count: i32,
    /// My current verdict.
    pub mine: Option<Verdict>,
    pub sep_arcmin: Option<f64>,
    /// The match filter catalogue's nearest source: its name and separation
    /// in arcseconds.
    pub nearest: Option<(String, f64)>,
    /// The known source it is associated with.
    pub known: Option<String>,
    /// The values of the chosen metric columns, in their order.
    pub metrics: Vec<Option<f64>>,
    /// P(real) and the consensus state (`consensus_state`), when asked for
    /// and the viewer may see the candidate's ratings.
    pub score: Option<f32>,
    pub consensus: Option<String>,
    /// Its sort key: the cursor of the page after it.
    pub key: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<TableRow>,
    pub next: Option<Vec<String>>,
    pub prev: Option<Vec<String>>,
    /// The cursor could not be used (another sort's); this is the first page.
    pub restarted: bool,
}

enum Bound {
    Text(String),
    Float(f64),
    Real(f32),
    Int4(i32),
    Int8(i64),
}

fn bind_values(parts: &[(Expr, Ty)], values: &[String]) -> Option<Vec<Bound>> {
    if parts.len() != values.len() {
        return None;
    }
    parts
        .iter()
        .zip(values)
        .map(|((_, ty), v)| {
            Some(match ty {
                Ty::Text => Bound::Text(v.clone()),
                Ty::Float => Bound::Float(v.parse().ok()?),
                Ty::Real => Bound::Real(v.parse().ok()?),
                Ty::Int4 => Bound::Int4(v.parse().ok()?),
                Ty::Int8 => Bound::Int8(v.parse().ok()?),
            })
        })
        .collect()
}

fn push_expr(q: &mut QueryBuilder<'_, Postgres>, e: Expr, cone: Option<&Cone>) {
    match (e, cone) {
        (Expr::Sql(s), _) => {
            q.push(s);
        }
        (Expr::Separation, Some(c)) => push_separation(q, c),
        (Expr::Separation, None) => {
            q.push("NULL::float8");
        }
    }
}

fn float_text(v: f64) -> String {
    // Debug prints the shortest text that reads back as the same f64
    // (and NaN, inf, -inf, which `parse` reads back too).
    format!("{v:?}")
}

/// Where a segment query starts: after/before a key, or at its start.
struct Start<'a> {
    key: Option<&'a [Bound]>,
}

async fn fetch_segment(
    db: &mut PgConnection,
    w: &Walk<'_>,
    seg: &Segment,
    start: Start<'_>,
    ascending: bool,
    limit: i64,
) -> sqlx::Result<Vec<TableRow>> {
    let (scope, v, metric_ids) = (w.scope, w.v, w.metric_ids);
    let cone = scope.cone.as_ref();
    let mut q = QueryBuilder::new(
        "SELECT c.id, c.name,
                (SELECT p.slug FROM projects p WHERE p.id = c.project_id) AS project,
                (SELECT o.external_id FROM observations o WHERE o.id = c.observation_id) AS observation,
                (SELECT b.name FROM beams b WHERE b.id = c.beam_id) AS beam,
                c.ra, c.dec, c.rating_count,
                (SELECT a.source_name FROM candidate_associations a WHERE a.candidate_id = c.id) AS known,
                (SELECT rme.verdict FROM ratings rme WHERE rme.candidate_id = c.id AND rme.user_id = ",
    );
    q.push_bind(v.viewer()).push(") AS mine, ");
    if !metric_ids.is_empty() {
        // The candidate's values of the shown metric columns, in this
        // statement rather than a second round trip: its ids and values,
        // each from the candidate's own rows of the primary key.
        for column in ["metric_id", "value"] {
            q.push(format!(
                "(SELECT array_agg(mv.{column} ORDER BY mv.metric_id) FROM candidate_metrics mv
                  WHERE mv.candidate_id = c.id AND mv.metric_id = ANY("
            ))
            .push_bind(metric_ids.to_vec())
            .push(format!(")) AS metric_{column}s, "));
        }
    }
    if let Some(m) = &scope.matching {
        // The nearest source of the filter's catalogue, as a column.
        q.push(
            "(SELECT row(s.name, xv.separation_arcsec) FROM catalogue_nearest xv
               JOIN catalogue_sources s ON s.catalogue_id = xv.catalogue_id AND s.row_no = xv.row_no
              WHERE xv.candidate_id = c.id AND xv.catalogue_id = ",
        )
        .push_bind(m.catalogue)
        .push(") AS nearest, ");
    }
    if w.score {
        push_when_visible(&mut q, v, "c");
        q.push("(SELECT sv.p_real FROM candidate_scores sv WHERE sv.candidate_id = c.id) END AS score, ");
    }
    if w.consensus {
        push_when_visible(&mut q, v, "c");
        push_consensus(&mut q, "c");
        q.push(" END AS consensus, ");
    }
    match cone {
        Some(c) => push_separation(&mut q, c),
        None => {
            q.push("NULL::float8");
        }
    }
    q.push(" AS sep");
    for (i, (e, _)) in seg.parts.iter().enumerate() {
        q.push(", ");
        push_expr(&mut q, *e, cone);
        q.push(format!(" AS k{i}"));
    }
    q.push(
        // The names by subqueries, not joins: planning a join of four
        // tables took twice as long as running the page (0.7 ms).
        " FROM candidates c",
    );
    match seg.join {
        None => {}
        Some(SegmentJoin::Metric(metric)) => {
            q.push(" JOIN candidate_metrics m ON m.candidate_id = c.id AND m.metric_id = ")
                .push_bind(metric);
        }
        Some(SegmentJoin::Nearest(catalogue)) => {
            q.push(" JOIN catalogue_nearest xs ON xs.candidate_id = c.id AND xs.catalogue_id = ")
                .push_bind(catalogue);
        }
        // The project equality lets a project's page walk the scores'
        // (project, p_real) index.
        Some(SegmentJoin::Score) => {
            q.push(
                " JOIN candidate_scores cs ON cs.candidate_id = c.id AND cs.project_id = c.project_id",
            );
        }
    }
    q.push(" WHERE true");
    push_conditions(&mut q, scope, v);
    match seg.condition {
        None => {}
        Some(SegmentCondition::NotNan) => {
            q.push(" AND m.value < 'NaN'::float8");
        }
        Some(SegmentCondition::Nan) => {
            q.push(" AND m.value = 'NaN'::float8");
        }
        Some(SegmentCondition::NoMatch(catalogue)) => {
            q.push(" AND NOT EXISTS (SELECT 1 FROM catalogue_nearest xm WHERE xm.candidate_id = c.id AND xm.catalogue_id = ")
                .push_bind(catalogue)
                .push(")");
        }
        Some(SegmentCondition::Visible) => push_visible(&mut q, v, "c"),
        Some(SegmentCondition::NoScore) => {
            q.push(
                " AND NOT (EXISTS (SELECT 1 FROM candidate_scores cz WHERE cz.candidate_id = c.id)",
            );
            push_visible(&mut q, v, "c");
            q.push(")");
        }
        Some(SegmentCondition::Missing(metric)) => {
            q.push(" AND NOT EXISTS (SELECT 1 FROM candidate_metrics mm WHERE mm.candidate_id = c.id AND mm.metric_id = ")
                .push_bind(metric)
                .push(")");
        }
    }
    if let Some(key) = start.key {
        q.push(" AND (");
        for (i, (e, _)) in seg.parts.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            push_expr(&mut q, *e, cone);
        }
        q.push(if ascending { ") > (" } else { ") < (" });
        for (i, b) in key.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            match b {
                Bound::Text(s) => q.push_bind(s.clone()),
                Bound::Float(f) => q.push_bind(*f),
                Bound::Real(f) => q.push_bind(*f),
                Bound::Int4(n) => q.push_bind(*n),
                Bound::Int8(n) => q.push_bind(*n),
            };
        }
        q.push(")");
    }
    q.push(" ORDER BY ");
    for (i, (e, _)) in seg.parts.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        push_expr(&mut q, *e, cone);
        q.push(if ascending { " ASC" } else { " DESC" });
    }
    // Whole projects in a sort: one plan serves every value (the index on
    // project and sort key), so the statement is prepared once per
    // connection rather than planned on every page (0.7 ms of 1.1).
    let prepared = whole_projects(scope).is_some();
    if prepared {
        // Written out, so that the plan is made for this many rows (a
        // bound limit leaves PostgreSQL guessing, and it plans afresh).
        q.push(format!(" LIMIT {limit}"));
    } else {
        q.push(" LIMIT ").push_bind(limit);
    }
    let rows: Vec<PgRow> = q.build().persistent(prepared).fetch_all(&mut *db).await?;
    rows.iter()
        .map(|row| {
            let mut key = Vec::with_capacity(seg.parts.len() + 1);
            if let Some(tag) = seg.tag {
                key.push(tag.to_string());
            }
            for (i, (_, ty)) in seg.parts.iter().enumerate() {
                let col = format!("k{i}");
                key.push(match ty {
                    Ty::Text => row.try_get::<String, _>(col.as_str())?,
                    Ty::Float => float_text(row.try_get::<f64, _>(col.as_str())?),
                    Ty::Real => format!("{:?}", row.try_get::<f32, _>(col.as_str())?),
                    Ty::Int4 => row.try_get::<i32, _>(col.as_str())?.to_string(),
                    Ty::Int8 => row.try_get::<i64, _>(col.as_str())?.to_string(),
                });
            }
            Ok(TableRow {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                project: row.try_get("project")?,
                observation: row.try_get("observation")?,
                beam: row.try_get("beam")?,
                pos: SkyPos::from_row(row)?,
                rating_count: row.try_get("rating_count")?,
                mine: row.try_get("mine")?,
                sep_arcmin: row.try_get("sep")?,
                known: row.try_get("known")?,
                nearest: if scope.matching.is_some() {
                    row.try_get::<Option<(String, f64)>, _>("nearest")?
                } else {
                    None
                },
                score: if w.score { row.try_get("score")? } else { None },
                consensus: if w.consensus {
                    row.try_get("consensus")?
                } else {
                    None
                },
                metrics: if metric_ids.is_empty() {
                    Vec::new()
                } else {
                    in_column_order(
                        metric_ids,
                        row.try_get("metric_metric_ids")?,
                        row.try_get("metric_values")?,
                    )
                },
                key,
            })
        })
        .collect()
}

/// A row's metric values (`found` ids beside their `values`) as the
/// table's columns: one per id of `columns`, `None` where missing.
fn in_column_order(
    columns: &[i64],
    found: Option<Vec<i64>>,
    values: Option<Vec<f64>>,
) -> Vec<Option<f64>> {
    let (found, values) = (found.unwrap_or_default(), values.unwrap_or_default());
    columns
        .iter()
        .map(|c| {
            found
                .iter()
                .position(|f| f == c)
                .and_then(|i| values.get(i).copied())
        })
        .collect()
}

/// The segment a cursor points into and the key within it.
fn locate(segs: &[Segment], cursor: &[String]) -> Option<(usize, Vec<Bound>)> {
    if segs.len() == 1 {
        return Some((0, bind_values(&segs[0].parts, cursor)?));
    }
    let (tag, rest) = cursor.split_first()?;
    let i = segs.iter().position(|s| s.tag == Some(tag.as_str()))?;
    Some((i, bind_values(&segs[i].parts, rest)?))
}

/// What every segment query of one page shares.
struct Walk<'a> {
    scope: &'a Scope,
    v: &'a RatingVisibility,
    segs: &'a [Segment],
    ascending: bool,
    /// Rows to collect.
    want: i64,
    metric_ids: &'a [i64],
    score: bool,
    consensus: bool,
}

impl Walk<'_> {
    /// Walks the segments from `first` in one direction, collecting up to
    /// `want` rows.
    async fn run(
        &self,
        db: &mut PgConnection,
        first: usize,
        key: Option<Vec<Bound>>,
        forward: bool,
    ) -> sqlx::Result<Vec<TableRow>> {
        let mut out = Vec::new();
        let order: Vec<usize> = if forward {
            (first..self.segs.len()).collect()
        } else {
            (0..=first).rev().collect()
        };
        let mut key = key;
        for i in order {
            let remaining = self.want - out.len() as i64;
            if remaining <= 0 {
                break;
            }
            let start = Start {
                key: key.as_deref(),
            };
            let ascending = self.ascending == forward;
            let mut rows =
                fetch_segment(db, self, &self.segs[i], start, ascending, remaining).await?;
            out.append(&mut rows);
            key = None;
        }
        Ok(out)
    }
}

/// What page of the table to fetch.
#[derive(Debug, Clone, Copy)]
pub struct PageSpec<'a> {
    pub sort: &'a SortSpec,
    pub descending: bool,
    pub cursor: &'a Cursor,
    pub per: u32,
    /// The metric columns to fill in.
    pub columns: &'a [MetricDef],
    /// Whether to fill in P(real) and the consensus state.
    pub score: bool,
    pub consensus: bool,
}

/// One page of the table: `per` rows from the cursor, and the cursors of
/// the pages either side. Metric values are filled in for `columns`.
pub async fn page(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
    spec: &PageSpec<'_>,
) -> sqlx::Result<Page> {
    let PageSpec {
        sort,
        descending,
        cursor,
        per,
        columns,
        score,
        consensus,
    } = *spec;
    let segs = segments(sort);
    let metric_ids: Vec<i64> = columns.iter().map(|m| m.id).collect();
    let per = i64::from(per);
    let walk = Walk {
        scope,
        v,
        segs: &segs,
        ascending: !descending,
        want: per + 1,
        metric_ids: &metric_ids,
        score,
        consensus,
    };
    let mut page = Page::default();
    let located = match cursor {
        Cursor::First => None,
        Cursor::After(k) | Cursor::Before(k) => {
            let l = locate(&segs, k);
            if l.is_none() {
                page.restarted = true;
            }
            l
        }
    };
    match (cursor, located) {
        (Cursor::Before(_), Some((i, key))) => {
            let mut rows = walk.run(db, i, Some(key), false).await?;
            if rows.len() as i64 > per {
                rows.truncate(per as usize);
                rows.reverse();
                page.prev = rows.first().map(|r| r.key.clone());
                page.next = rows.last().map(|r| r.key.clone());
                page.rows = rows;
            } else {
                // Back at the start: show a full first page.
                let mut rows = walk.run(db, 0, None, true).await?;
                if rows.len() as i64 > per {
                    rows.truncate(per as usize);
                    page.next = rows.last().map(|r| r.key.clone());
                }
                page.rows = rows;
            }
        }
        (Cursor::After(_), Some((i, key))) => {
            let mut rows = walk.run(db, i, Some(key), true).await?;
            if rows.len() as i64 > per {
                rows.truncate(per as usize);
                page.next = rows.last().map(|r| r.key.clone());
            }
            page.prev = rows.first().map(|r| r.key.clone());
            page.rows = rows;
        }
        _ => {
            let mut rows = walk.run(db, 0, None, true).await?;
            if rows.len() as i64 > per {
                rows.truncate(per as usize);
                page.next = rows.last().map(|r| r.key.clone());
            }
            page.rows = rows;
        }
    }
    Ok(page)
}

/// How many candidates are in scope, counting no further than `cap` (so a
/// count over a million rows does not cost a full scan); `None` if more.
pub async fn count_capped(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
    cap: i64,
) -> sqlx::Result<Option<i64>> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM candidates c WHERE true");
    push_conditions(&mut q, scope, v);
    q.push(" LIMIT ").push_bind(cap + 1).push(") s");
    let n: i64 = q
        .build_query_scalar()
        .persistent(false)
        .fetch_one(db)
        .await?;
    Ok((n <= cap).then_some(n))
}

// ---------------------------------------------------------------------------
// The ratings summary

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub candidates: i64,
    pub rated: i64,
    /// Candidates with two or more current ratings.
    pub multiply_rated: i64,
    pub ratings: i64,
}

/// Candidates in scope and their current ratings.
pub async fn totals(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
) -> sqlx::Result<Totals> {
    let mut q = QueryBuilder::new(
        "SELECT count(*), count(*) FILTER (WHERE c.rating_count > 0),
                count(*) FILTER (WHERE c.rating_count > 1), coalesce(sum(c.rating_count), 0)::bigint
         FROM candidates c WHERE true",
    );
    push_conditions(&mut q, scope, v);
    let (candidates, rated, multiply_rated, ratings): (i64, i64, i64, i64) =
        q.build_query_as().persistent(false).fetch_one(db).await?;
    Ok(Totals {
        candidates,
        rated,
        multiply_rated,
        ratings,
    })
}

// Each summary query reads rows of one ratings table (`ratings` or
// `rating_tags`), each joined to its one candidate (for the scope's
// conditions): no join can repeat a row, so the counts are counts of
// ratings. They are grouped by ids first and given names after, so the
// names are looked up once per group, not once per rating. For a blind
// viewer the rows come from the candidates they rated (a few thousand,
// through the candidate index: `push_visible_from`); otherwise from every
// rating (hundreds of thousands, still fewer than the million candidates).

/// Current ratings of the candidates in scope, per reviewer and verdict:
/// (username, verdict, ratings), by username.
pub async fn per_reviewer(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
) -> sqlx::Result<Vec<(String, Verdict, i64)>> {
    let mut q = QueryBuilder::new(
        "SELECT u.username, s.verdict, s.n FROM (SELECT r.user_id, r.verdict, count(*) AS n FROM ",
    );
    let limited = push_visible_from(&mut q, v, "ratings", "r");
    q.push(candidate_join(scope, limited, "r.candidate_id"))
        .push(" WHERE true");
    push_conditions(&mut q, scope, v);
    if !limited {
        push_visible(&mut q, v, "c");
    }
    q.push(
        " GROUP BY r.user_id, r.verdict) s JOIN users u ON u.id = s.user_id
          ORDER BY lower(u.username), s.verdict",
    );
    q.build_query_as().persistent(false).fetch_all(db).await
}

/// Tags on the current ratings of the candidates in scope: (tag, project
/// slug, ratings carrying it, distinct candidates), in project tag order.
pub async fn per_tag(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
) -> sqlx::Result<Vec<(String, String, i64, i64)>> {
    let mut q = QueryBuilder::new(
        "SELECT tg.name, p.slug, s.n, s.candidates FROM (
             SELECT rt.tag_id, count(*) AS n, count(DISTINCT rt.candidate_id) AS candidates FROM ",
    );
    let limited = push_visible_from(&mut q, v, "rating_tags", "rt");
    q.push(candidate_join(scope, limited, "rt.candidate_id"))
        .push(" WHERE true");
    push_conditions(&mut q, scope, v);
    if !limited {
        push_visible(&mut q, v, "c");
    }
    q.push(
        " GROUP BY rt.tag_id) s JOIN tags tg ON tg.id = s.tag_id JOIN projects p ON p.id = tg.project_id
          ORDER BY p.slug, tg.position, tg.name",
    );
    q.build_query_as().persistent(false).fetch_all(db).await
}

/// Per candidate in scope with two or more current ratings: its id and how
/// many said real, not real and unsure.
pub async fn verdict_counts(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
) -> sqlx::Result<Vec<(CandidateId, [i64; 3])>> {
    let mut q = QueryBuilder::new(
        "SELECT r.candidate_id, count(*) FILTER (WHERE r.verdict = 'real'),
                count(*) FILTER (WHERE r.verdict = 'not_real'), count(*) FILTER (WHERE r.verdict = 'unsure')
         FROM ",
    );
    let limited = push_visible_from(&mut q, v, "ratings", "r");
    q.push(candidate_join(scope, limited, "r.candidate_id"))
        .push(" WHERE true");
    push_conditions(&mut q, scope, v);
    if !limited {
        push_visible(&mut q, v, "c");
    }
    q.push(" GROUP BY r.candidate_id HAVING count(*) >= 2");
    let rows: Vec<(CandidateId, i64, i64, i64)> =
        q.build_query_as().persistent(false).fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(id, a, b, c)| (id, [a, b, c]))
        .collect())
}

/// For each pair of reviewers, over the candidates in scope both rated:
/// (first, second, both rated, same verdict), by username.
pub async fn reviewer_pairs(
    db: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
) -> sqlx::Result<Vec<(String, String, i64, i64)>> {
    let mut q = QueryBuilder::new(
        "SELECT CASE WHEN lower(ua.username) < lower(ub.username) THEN ua.username ELSE ub.username END,
                CASE WHEN lower(ua.username) < lower(ub.username) THEN ub.username ELSE ua.username END,
                s.both_rated, s.agreed
         FROM (SELECT a.user_id AS user_a, b.user_id AS user_b, count(*) AS both_rated,
                      count(*) FILTER (WHERE a.verdict = b.verdict) AS agreed FROM ",
    );
    let limited = push_visible_from(&mut q, v, "ratings", "a");
    if limited && !v.sees_everything() {
        // The other rating through the index too, as the first.
        q.push(
            " JOIN LATERAL (SELECT x.user_id, x.verdict FROM ratings x
                  WHERE x.candidate_id = a.candidate_id OFFSET 0) b ON b.user_id > a.user_id",
        );
    } else {
        q.push(" JOIN ratings b ON b.candidate_id = a.candidate_id AND b.user_id > a.user_id");
    }
    q.push(candidate_join(scope, limited, "a.candidate_id"))
        .push(" WHERE true");
    push_conditions(&mut q, scope, v);
    if !limited {
        push_visible(&mut q, v, "c");
    }
    q.push(
        " GROUP BY a.user_id, b.user_id) s
          JOIN users ua ON ua.id = s.user_a JOIN users ub ON ub.id = s.user_b",
    );
    let mut rows: Vec<(String, String, i64, i64)> =
        q.build_query_as().persistent(false).fetch_all(db).await?;
    rows.sort_by_key(|r| (r.0.to_lowercase(), r.1.to_lowercase()));
    Ok(rows)
}

/// A candidate whose current ratings disagree.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Disagreement {
    pub id: CandidateId,
    pub name: String,
    pub project: String,
    /// "alice: real", … by username.
    pub verdicts: Vec<String>,
}

/// The first `limit` by name of the candidates `ids` (those whose current
/// ratings disagree, from [`verdict_counts`]), with who said what: only
/// those whose ratings the viewer may see.
pub async fn disagreements(
    db: &mut PgConnection,
    ids: &[CandidateId],
    v: &RatingVisibility,
    limit: i64,
) -> sqlx::Result<Vec<Disagreement>> {
    // The candidates by id first, then sorted: walking the name index and
    // testing each row against thousands of ids took over a second.
    let mut q = QueryBuilder::new(
        "WITH d AS MATERIALIZED (SELECT c.id, c.name, c.project_id FROM candidates c WHERE c.id = ANY(",
    );
    q.push_bind(ids.to_vec()).push(")");
    push_visible(&mut q, v, "c");
    q.push(
        ") SELECT d.id, d.name, p.slug AS project,
                (SELECT array_agg(u.username || ': ' || r.verdict::text ORDER BY lower(u.username))
                 FROM ratings r JOIN users u ON u.id = r.user_id WHERE r.candidate_id = d.id) AS verdicts
         FROM d JOIN projects p ON p.id = d.project_id
         ORDER BY d.name, d.id LIMIT ",
    )
    .push_bind(limit);
    q.build_query_as().persistent(false).fetch_all(db).await
}

// ---------------------------------------------------------------------------
// The ratings summary of whole projects, precomputed
//
// The tables behind these (`project_rating_shapes`,
// `project_reviewer_verdicts`, `project_reviewer_pairs`,
// `tag_rating_counts`) are brought up to date by
// `db::ratings::flush_summaries`, which their readers call first (migration
// 20261221000001_deferred_rating_summaries). They count every rating, so they serve only a viewer who may see
// every rating of the projects asked for. Their `viewer_*` twins count, for
// each reviewer, the ratings of the candidates that reviewer rated: what a
// reviewer blind in those projects may see (migration
// 20261207000003_viewer_summaries).

/// Whether `scope` is whole projects: `Some(Some(p))` for the project
/// `p`, `Some(None)` for every project, `None` when it is narrower.
pub fn whole_projects(scope: &Scope) -> Option<Option<ProjectId>> {
    let mut rest = scope.clone();
    let project = rest.project_id.take();
    rest.is_everything().then_some(project)
}

/// Whose precomputed summary answers a summary of whole projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// Every rating (`project_*` tables): for a viewer who may see them all.
    Everyone,
    /// The ratings of the candidates this viewer rated (`viewer_*` tables):
    /// for a viewer blind in every project asked for.
    Viewer(UserId),
}

/// Which projects' precomputed summary, and whose, answers a summary of
/// `scope` for this viewer: `None` when the scope is narrower than whole
/// projects, or spans projects where the viewer sees every rating of some
/// and is blind in others (the queries above answer those).
pub fn precomputed_for(scope: &Scope, v: &RatingVisibility) -> Option<(Option<ProjectId>, Whose)> {
    let project = whole_projects(scope)?;
    let all_open = match project {
        None => v.sees_everything(),
        Some(p) => v.sees_project(p),
    };
    let all_blind = match project {
        None => v.open_projects().is_empty() && !v.sees_everything(),
        Some(p) => !v.sees_project(p),
    };
    if all_open {
        Some((project, Whose::Everyone))
    } else if all_blind {
        Some((project, Whose::Viewer(v.viewer())))
    } else {
        None
    }
}

/// The table of `whose` summary: `everyone`'s or the `viewer` one.
fn summary_table<'a>(whose: Whose, everyone: &'a str, viewer: &'a str) -> &'a str {
    match whose {
        Whose::Everyone => everyone,
        Whose::Viewer(_) => viewer,
    }
}

/// ` AND {column} = viewer` for a viewer's summary.
fn push_summary_viewer(q: &mut QueryBuilder<'_, Postgres>, whose: Whose, column: &str) {
    if let Whose::Viewer(u) = whose {
        q.push(format!(" AND {column} = ")).push_bind(u);
    }
}

fn push_project(q: &mut QueryBuilder<'_, Postgres>, column: &str, project: Option<ProjectId>) {
    if let Some(p) = project {
        q.push(format!(" AND {column} = ")).push_bind(p);
    }
}

/// [`totals`] of whole projects. Counts of candidates and ratings are not
/// hidden by the blind rule, so these serve every viewer.
pub async fn precomputed_totals(
    db: &mut PgConnection,
    project: Option<ProjectId>,
) -> sqlx::Result<Totals> {
    // The candidates from their kept counts (unrated ones are not in the
    // shapes), the rest from the shapes.
    let mut q = QueryBuilder::new(
        "SELECT (SELECT coalesce(sum(n.candidates), 0)::bigint FROM project_candidate_counts n WHERE true",
    );
    push_project(&mut q, "n.project_id", project);
    q.push(
        "), coalesce(sum(candidates), 0)::bigint,
            coalesce(sum(candidates) FILTER (WHERE n_real + n_not_real + n_unsure > 1), 0)::bigint,
            coalesce(sum(candidates * (n_real + n_not_real + n_unsure)), 0)::bigint
         FROM project_rating_shapes WHERE true",
    );
    push_project(&mut q, "project_id", project);
    let (candidates, rated, multiply_rated, ratings): (i64, i64, i64, i64) =
        q.build_query_as().fetch_one(db).await?;
    Ok(Totals {
        candidates,
        rated,
        multiply_rated,
        ratings,
    })
}

/// [`per_reviewer`] of whole projects.
pub async fn precomputed_per_reviewer(
    db: &mut PgConnection,
    project: Option<ProjectId>,
    whose: Whose,
) -> sqlx::Result<Vec<(String, Verdict, i64)>> {
    let table = summary_table(
        whose,
        "project_reviewer_verdicts",
        "viewer_reviewer_verdicts",
    );
    let mut q = QueryBuilder::new(format!(
        "SELECT u.username, s.verdict, sum(s.ratings)::bigint
         FROM {table} s JOIN users u ON u.id = s.user_id WHERE s.ratings > 0"
    ));
    push_summary_viewer(&mut q, whose, "s.viewer_id");
    push_project(&mut q, "s.project_id", project);
    q.push(" GROUP BY u.username, s.verdict ORDER BY lower(u.username), s.verdict");
    q.build_query_as().fetch_all(db).await
}

/// [`per_tag`] of whole projects.
pub async fn precomputed_per_tag(
    db: &mut PgConnection,
    project: Option<ProjectId>,
    whose: Whose,
) -> sqlx::Result<Vec<(String, String, i64, i64)>> {
    let table = summary_table(whose, "tag_rating_counts", "viewer_tag_counts");
    let mut q = QueryBuilder::new(format!(
        "SELECT tg.name, p.slug, s.ratings, s.candidates
         FROM {table} s JOIN tags tg ON tg.id = s.tag_id JOIN projects p ON p.id = tg.project_id
         WHERE s.ratings > 0"
    ));
    push_summary_viewer(&mut q, whose, "s.viewer_id");
    push_project(&mut q, "tg.project_id", project);
    q.push(" ORDER BY p.slug, tg.position, tg.name");
    q.build_query_as().fetch_all(db).await
}

/// Candidates with two or more current ratings, by how many said real, not
/// real and unsure: (those counts, candidates). [`verdict_counts`] with
/// the candidates of one combination counted together.
pub async fn precomputed_shapes(
    db: &mut PgConnection,
    project: Option<ProjectId>,
    whose: Whose,
) -> sqlx::Result<Vec<([i64; 3], i64)>> {
    let table = summary_table(whose, "project_rating_shapes", "viewer_rating_shapes");
    let mut q = QueryBuilder::new(format!(
        "SELECT n_real::bigint, n_not_real::bigint, n_unsure::bigint, sum(candidates)::bigint
         FROM {table} WHERE n_real + n_not_real + n_unsure > 1"
    ));
    push_summary_viewer(&mut q, whose, "viewer_id");
    push_project(&mut q, "project_id", project);
    q.push(" GROUP BY 1, 2, 3 HAVING sum(candidates) > 0");
    let rows: Vec<(i64, i64, i64, i64)> = q.build_query_as().fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(a, b, c, n)| ([a, b, c], n))
        .collect())
}

/// [`reviewer_pairs`] of whole projects.
pub async fn precomputed_pairs(
    db: &mut PgConnection,
    project: Option<ProjectId>,
    whose: Whose,
) -> sqlx::Result<Vec<(String, String, i64, i64)>> {
    let table = summary_table(whose, "project_reviewer_pairs", "viewer_reviewer_pairs");
    let mut q = QueryBuilder::new(format!(
        "SELECT CASE WHEN lower(ua.username) < lower(ub.username) THEN ua.username ELSE ub.username END AS first,
                CASE WHEN lower(ua.username) < lower(ub.username) THEN ub.username ELSE ua.username END AS second,
                sum(s.both_rated)::bigint, sum(s.agreed)::bigint
         FROM {table} s JOIN users ua ON ua.id = s.user_a JOIN users ub ON ub.id = s.user_b
         WHERE s.both_rated > 0"
    ));
    push_summary_viewer(&mut q, whose, "s.viewer_id");
    push_project(&mut q, "s.project_id", project);
    q.push(" GROUP BY 1, 2");
    let mut rows: Vec<(String, String, i64, i64)> = q.build_query_as().fetch_all(db).await?;
    rows.sort_by_key(|r| (r.0.to_lowercase(), r.1.to_lowercase()));
    Ok(rows)
}

/// The first `limit` by name of the candidates of whole projects whose
/// current ratings disagree, with who said what ([`disagreements`]).
pub async fn precomputed_disagreements(
    db: &mut PgConnection,
    project: Option<ProjectId>,
    whose: Whose,
    limit: i64,
) -> sqlx::Result<Vec<Disagreement>> {
    let mut q = match whose {
        // Walks the names in order (an index-only scan) and probes the
        // small partial index of disagreeing candidates: a hundred found
        // after a few thousand names, instead of fetching every disagreeing
        // candidate to sort them.
        Whose::Everyone => {
            let mut q = QueryBuilder::new(
                "WITH d AS MATERIALIZED (SELECT c.id, c.name FROM candidates c WHERE true",
            );
            push_project(&mut q, "c.project_id", project);
            q.push(
                " AND EXISTS (SELECT 1 FROM candidate_tallies t WHERE t.candidate_id = c.id
                      AND (t.n_real > 0)::int + (t.n_not_real > 0)::int + (t.n_unsure > 0)::int > 1)
                  ORDER BY c.name, c.id LIMIT ",
            );
            q
        }
        // The viewer's own list, by name in its index.
        Whose::Viewer(u) => {
            let mut q = QueryBuilder::new(
                "WITH d AS MATERIALIZED (SELECT x.candidate_id AS id, x.name
                 FROM viewer_disagreements x WHERE x.viewer_id = ",
            );
            q.push_bind(u);
            push_project(&mut q, "x.project_id", project);
            q.push(" ORDER BY x.name, x.candidate_id LIMIT ");
            q
        }
    };
    q.push_bind(limit).push(
        ") SELECT d.id, d.name, p.slug AS project,
                (SELECT array_agg(u.username || ': ' || r.verdict::text ORDER BY lower(u.username))
                 FROM ratings r JOIN users u ON u.id = r.user_id WHERE r.candidate_id = d.id) AS verdicts
          FROM d JOIN candidates c ON c.id = d.id JOIN projects p ON p.id = c.project_id
          ORDER BY d.name, d.id",
    );
    // A viewer's list has one plan whatever the values (its index), so it
    // is prepared; the walk of every name is planned with its values.
    let prepared = matches!(whose, Whose::Viewer(_));
    q.build_query_as().persistent(prepared).fetch_all(db).await
}

// ---------------------------------------------------------------------------
// Exports

/// Which ratings an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingsExport {
    /// One row per candidate, no rating columns.
    None,
    /// One row per candidate and current rating (a candidate nobody rated
    /// has one row with empty rating columns).
    Current,
    /// As `Current`, plus one row per replaced rating from the history.
    History,
}

impl RatingsExport {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "current" => Ok(RatingsExport::Current),
            "history" => Ok(RatingsExport::History),
            "none" => Ok(RatingsExport::None),
            other => Err(format!(
                "{other:?} is not a choice of ratings: use current, history or none"
            )),
        }
    }
}

/// A row of an export: a candidate, its metric values by metric id, and
/// (unless `RatingsExport::None`) one rating.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub candidate_id: CandidateId,
    pub project: String,
    pub observation: String,
    pub beam: Option<String>,
    pub name: String,
    #[sqlx(flatten)]
    pub pos: SkyPos,
    pub rating_count: i32,
    pub metric_ids: Option<Vec<i64>>,
    pub metric_values: Option<Vec<f64>>,
    /// The known source it is associated with, and that source's catalogue.
    pub known_source: Option<String>,
    pub known_catalogue: Option<String>,
    /// Its nearest stored match per catalogue: catalogue ids, source
    /// names and separations (arcsec), side by side.
    pub nearest_catalogues: Option<Vec<CatalogueId>>,
    pub nearest_names: Option<Vec<String>>,
    pub nearest_seps: Option<Vec<f64>>,
    /// The model's P(real), its version and the consensus state: empty
    /// where the viewer may not see the candidate's ratings.
    pub p_real: Option<f32>,
    pub model_version: Option<i32>,
    pub consensus: Option<String>,
    pub reviewer: Option<String>,
    pub verdict: Option<Verdict>,
    pub score: Option<i16>,
    pub tags: Option<Vec<String>>,
    pub notes: Option<String>,
    pub rated_at: Option<time::OffsetDateTime>,
    /// "current" or "replaced" (history exports).
    pub rating_status: Option<String>,
    pub replaced_at: Option<time::OffsetDateTime>,
}

/// Rows a single [`fetch_export`] takes from the export cursor.
pub const EXPORT_BATCH: usize = 1000;

/// Opens the export as a cursor, in the transaction the caller holds open,
/// to be read with [`fetch_export`]. A cursor computes rows only when asked:
/// streamed with `fetch`, PostgreSQL ran ahead until the socket buffers
/// between it and the app were full (megabytes, a second of a core) even
/// for a client that had stopped reading after the first chunk.
pub async fn declare_export(
    conn: &mut PgConnection,
    scope: &Scope,
    v: &RatingVisibility,
    ratings: RatingsExport,
) -> sqlx::Result<()> {
    // Planned for every row, as a plain query is (a cursor is otherwise
    // planned for its first tenth).
    sqlx::query("SET LOCAL cursor_tuple_fraction = 1.0")
        .execute(&mut *conn)
        .await?;
    let mut q = QueryBuilder::new("DECLARE vetter_export NO SCROLL CURSOR FOR ");
    push_export_query(&mut q, scope, v, ratings);
    q.build().persistent(false).execute(conn).await?;
    Ok(())
}

/// The next rows of the cursor [`declare_export`] opened; empty at its end.
pub async fn fetch_export(conn: &mut PgConnection) -> sqlx::Result<Vec<ExportRow>> {
    sqlx::query_as(&format!("FETCH FORWARD {EXPORT_BATCH} FROM vetter_export"))
        .persistent(false)
        .fetch_all(conn)
        .await
}

/// The export's query: candidates in scope by id, each with all its metric
/// values (one index range per candidate) and its ratings as asked.
pub fn export_query(
    scope: &Scope,
    v: &RatingVisibility,
    ratings: RatingsExport,
) -> QueryBuilder<'static, Postgres> {
    let mut q = QueryBuilder::new("");
    push_export_query(&mut q, scope, v, ratings);
    q
}

fn push_export_query(
    q: &mut QueryBuilder<'static, Postgres>,
    scope: &Scope,
    v: &RatingVisibility,
    ratings: RatingsExport,
) {
    q.push(
        "SELECT c.id AS candidate_id, p.slug AS project, o.external_id AS observation, b.name AS beam,
                c.name, c.ra, c.dec, c.rating_count, mx.metric_ids, mx.metric_values,
                ka.source_name AS known_source, ka.catalogue_name AS known_catalogue,
                nx.nearest_catalogues, nx.nearest_names, nx.nearest_seps,
                sx.p_real, sx.model_version, ",
    );
    push_when_visible(q, v, "c");
    push_consensus(q, "c");
    q.push(" END AS consensus, ");
    match ratings {
        RatingsExport::None => {
            q.push(
                "NULL::text AS reviewer, NULL::verdict AS verdict, NULL::smallint AS score,
                 NULL::text[] AS tags, NULL::text AS notes, NULL::timestamptz AS rated_at,
                 NULL::text AS rating_status, NULL::timestamptz AS replaced_at",
            );
        }
        RatingsExport::Current | RatingsExport::History => {
            q.push(
                "x.reviewer, x.verdict, x.score, x.tags, x.notes, x.rated_at, x.rating_status, x.replaced_at",
            );
        }
    }
    q.push(
        " FROM candidates c JOIN projects p ON p.id = c.project_id
          JOIN observations o ON o.id = c.observation_id LEFT JOIN beams b ON b.id = c.beam_id
          LEFT JOIN LATERAL (SELECT array_agg(mv.metric_id) AS metric_ids, array_agg(mv.value) AS metric_values
                             FROM candidate_metrics mv WHERE mv.candidate_id = c.id) mx ON true
          LEFT JOIN candidate_associations ka ON ka.candidate_id = c.id
          LEFT JOIN LATERAL (SELECT array_agg(n.catalogue_id ORDER BY n.catalogue_id) AS nearest_catalogues,
                                    array_agg(ns.name ORDER BY n.catalogue_id) AS nearest_names,
                                    array_agg(n.separation_arcsec ORDER BY n.catalogue_id) AS nearest_seps
                             FROM catalogue_nearest n
                             JOIN catalogue_sources ns ON ns.catalogue_id = n.catalogue_id AND ns.row_no = n.row_no
                             WHERE n.candidate_id = c.id) nx ON true
          LEFT JOIN LATERAL (SELECT cs.p_real, md.version AS model_version
                             FROM candidate_scores cs JOIN models md ON md.id = cs.model_id
                             WHERE cs.candidate_id = c.id",
    );
    push_visible(q, v, "c");
    q.push(") sx ON true");
    let current = "SELECT u.username AS reviewer, r.verdict, r.score,
                          ARRAY(SELECT tg.name FROM rating_tags rt JOIN tags tg ON tg.id = rt.tag_id
                                WHERE rt.user_id = r.user_id AND rt.candidate_id = r.candidate_id
                                ORDER BY tg.position, tg.name) AS tags,
                          r.notes, r.rated_at, 'current'::text AS rating_status, NULL::timestamptz AS replaced_at
                   FROM ratings r JOIN users u ON u.id = r.user_id WHERE r.candidate_id = c.id";
    // A candidate whose ratings are hidden from the viewer still has its
    // row, with only the viewer's own rating (or empty rating columns).
    if ratings != RatingsExport::None {
        q.push(" LEFT JOIN LATERAL (").push(current);
        push_rating_visible(q, v, "r", "c");
        if ratings == RatingsExport::History {
            q.push(
                " UNION ALL
                  SELECT u.username, h.verdict, h.score, h.tag_names, h.notes, h.rated_at,
                         'replaced', h.replaced_at
                  FROM rating_history h JOIN users u ON u.id = h.user_id WHERE h.candidate_id = c.id",
            );
            push_rating_visible(q, v, "h", "c");
        } else {
            // Kept a subquery per candidate: pulled up into a join, it
            // became a hash join of every rating and a sort of the whole
            // export on disk (37 s instead of 20 s for a million rows,
            // and nothing streamed until the sort was done).
            q.push(" OFFSET 0");
        }
        q.push(") x ON true");
    }
    q.push(" WHERE true");
    push_conditions(q, scope, v);
    q.push(" ORDER BY c.id");
    if ratings != RatingsExport::None {
        q.push(", lower(x.reviewer), x.rating_status, x.rated_at");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("J12"), "%J12%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn cursors_fit_their_sort_or_are_refused() {
        let segs = segments(&SortSpec::Name);
        assert!(locate(&segs, &["a".into(), "3".into()]).is_some());
        assert!(locate(&segs, &["a".into()]).is_none());
        assert!(locate(&segs, &["a".into(), "x".into()]).is_none());
        let segs = segments(&SortSpec::Metric {
            id: 1,
            key: "k".into(),
        });
        assert_eq!(
            locate(&segs, &["0".into(), "1.5".into(), "3".into()])
                .unwrap()
                .0,
            0
        );
        assert_eq!(locate(&segs, &["1".into(), "3".into()]).unwrap().0, 1);
        assert_eq!(locate(&segs, &["2".into(), "3".into()]).unwrap().0, 2);
        assert!(locate(&segs, &["0".into(), "3".into()]).is_none());
        assert!(locate(&segs, &["7".into(), "3".into()]).is_none());
        for v in [1.5, -0.0, 1e300, 1e-300, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(float_text(v).parse::<f64>().unwrap(), v);
        }
    }
}

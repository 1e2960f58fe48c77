//! `/candidates`: the candidate table. Every filter, the sort, the columns
//! and the page live in the URL query (see `domain::filter`), so a view can
//! be bookmarked or shared; the filter form is a plain GET form that htmx
//! upgrades to swap `#search` in place and push the URL.
//!
//! A bad value (an unreadable position, an unknown project, a minimum above
//! the maximum) is a message beside its field, and no rows are shown until
//! it is fixed: a table that silently ignored part of the filter would
//! answer a different question than the one asked.

use askama::Template;
use askama_web::WebTemplate;
use poem::web::Data;
use poem::{handler, Request, Response};
use sqlx::{PgConnection, PgPool};

use crate::db;
use crate::db::menus::Menus;
use crate::db::projects::MetricDef;
use crate::db::search::{self, Resolution, SortSpec};
use crate::db::views::{self, SavedView};
use crate::domain::consensus::Consensus;
use crate::domain::filter::{
    CandidateFilter, ConsensusFilter, Cursor, MatchState, NonFinite, RatedState, SortKey,
    CONSENSUS_COLUMN, MAX_MATCH_ARCSEC, MAX_RADIUS_ARCMIN, SCORE_COLUMN,
};
use crate::domain::visibility::RatingVisibility;
use crate::domain::{sexagesimal, CandidateId, Problem, UserId, Verdict};
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::htmx::fragment_or_page;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::TypedSession;
use crate::web::state::AppState;

/// Counting stops here: beyond it the table says "more than 10,000".
pub const COUNT_CAP: i64 = 10_000;

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choice(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Choice {
    Choice {
        value: value.into(),
        label: label.into(),
        selected,
    }
}

/// One metric's range inputs.
pub struct MetricRow {
    pub key: String,
    pub label: String,
    pub unit: String,
    pub min: String,
    pub max: String,
    pub non_finite: Vec<Choice>,
    pub problem: Option<String>,
}

/// Which page the filter form belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormFor {
    Table,
    Summary,
}

/// The filter form, shared by `/candidates` and `/ratings`
/// (`candidates/_form.html`).
pub struct FormView {
    pub action: &'static str,
    pub target: &'static str,
    pub for_table: bool,
    pub f: CandidateFilter,
    pub projects: Vec<Choice>,
    pub observations: Vec<String>,
    pub beams: Vec<String>,
    pub tags: Vec<String>,
    pub reviewers: Vec<Choice>,
    pub rated: Vec<Choice>,
    pub verdicts: Vec<Choice>,
    pub consensus: Vec<Choice>,
    pub around: Vec<Choice>,
    /// The catalogue of the counterpart filter ("" for none), and its states.
    pub catalogues: Vec<Choice>,
    pub match_states: Vec<Choice>,
    pub max_match_sep: f64,
    /// Attributes the project's observations carry, offered as you type.
    pub observation_keys: Vec<String>,
    pub obs_modes: Vec<Choice>,
    pub metrics: Vec<MetricRow>,
    /// Metric columns to tick (the table only).
    pub columns: Vec<Choice>,
    pub per_page: Vec<Choice>,
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
    pub max_radius: f64,
    pub ranges_open: bool,
}

impl FormView {
    pub fn value(&self, key: &str) -> &str {
        self.f.value(key)
    }

    /// The message for a field, if it has one.
    pub fn problem(&self, field: &str) -> Option<&str> {
        self.problems
            .iter()
            .find(|p| p.field == field)
            .map(|p| p.message.as_str())
    }

    /// The field's `aria-invalid`/`aria-describedby` attributes, if it has a problem.
    pub fn invalid(&self, field: &str) -> &'static str {
        if self.problem(field).is_some() {
            "true"
        } else {
            "false"
        }
    }
}

/// What the form offers, from the menus read with the page: projects, the
/// chosen project's observations, beams, tags and metrics, reviewers,
/// position kinds.
pub fn form_view(menus: Menus, f: CandidateFilter, res: &Resolution, which: FormFor) -> FormView {
    let mut projects = vec![choice("", "all projects", f.project.is_none())];
    projects.extend(
        menus
            .project_slugs
            .into_iter()
            .zip(menus.project_names)
            .map(|(slug, name)| {
                let sel = f.project.as_deref() == Some(slug.as_str());
                choice(slug, name, sel)
            }),
    );
    let (observations, beams, tags) = (menus.observations, menus.beams, menus.tags);
    let mut reviewers = vec![choice("", "anyone", f.reviewer.is_none())];
    reviewers.extend(menus.reviewers.into_iter().map(|u| {
        let sel = f.value("reviewer").eq_ignore_ascii_case(&u);
        choice(u.clone(), u, sel)
    }));
    let mut rated = vec![choice("", "any", f.rated.is_none())];
    rated.extend(
        RatedState::ALL
            .iter()
            .map(|r| choice(r.as_str(), r.label(), f.rated == Some(*r))),
    );
    let mut verdicts = vec![choice("", "any", f.verdict.is_none())];
    verdicts.extend(
        Verdict::ALL
            .iter()
            .map(|v| choice(v.as_str(), v.label(), f.verdict == Some(*v))),
    );
    let mut consensus = vec![choice("", "any", f.consensus.is_none())];
    consensus.extend(
        ConsensusFilter::ALL
            .iter()
            .map(|c| choice(c.as_str(), c.label(), f.consensus == Some(*c))),
    );
    // The kinds of extra position on record. A kind typed into the URL
    // works whether listed or not.
    let mut kinds = menus.position_kinds;
    let current_around = f.value("around").to_string();
    if !current_around.is_empty()
        && current_around != "candidate"
        && !kinds.contains(&current_around)
    {
        kinds.push(current_around.clone());
    }
    let mut around = vec![choice(
        "candidate",
        "the candidate position",
        matches!(current_around.as_str(), "" | "candidate"),
    )];
    around.extend(kinds.into_iter().map(|k| {
        let sel = k == current_around;
        let label = format!("its {} position", k.replace('_', " "));
        choice(k, label, sel)
    }));
    let current_cat = f.value("match").to_string();
    let mut names = menus.catalogues;
    if !current_cat.is_empty() && !names.contains(&current_cat) {
        names.push(current_cat.clone());
    }
    let mut catalogues = vec![choice("", "any or none", current_cat.is_empty())];
    catalogues.extend(names.into_iter().map(|n| {
        let sel = n == current_cat;
        choice(n.clone(), n, sel)
    }));
    let state = f.value("match_state");
    let match_states = vec![
        choice(
            MatchState::Within.as_str(),
            "has a counterpart",
            state != MatchState::NoneWithin.as_str(),
        ),
        choice(
            MatchState::NoneWithin.as_str(),
            "has no counterpart",
            state == MatchState::NoneWithin.as_str(),
        ),
    ];
    let excluding = f.value("obs_not") == "1";
    let obs_modes = vec![
        choice("0", "is", !excluding),
        choice("1", "is not", excluding),
    ];
    let metrics = res
        .metrics
        .iter()
        .map(|m| metric_row(&f, &res.problems, m))
        .collect();
    let shown: Vec<&str> = res.columns.iter().map(|m| m.key.as_str()).collect();
    let mut columns: Vec<Choice> = res
        .metrics
        .iter()
        .map(|m| {
            choice(
                m.key.clone(),
                m.label.clone(),
                shown.contains(&m.key.as_str()),
            )
        })
        .collect();
    columns.push(choice(SCORE_COLUMN, "P(real)", res.show_score));
    columns.push(choice(CONSENSUS_COLUMN, "Consensus", res.show_consensus));
    let mut sizes = vec![25u32, 50, 100, 200, 500];
    if !sizes.contains(&f.per_page) {
        sizes.push(f.per_page);
        sizes.sort_unstable();
    }
    let per_page = sizes
        .iter()
        .map(|n| choice(n.to_string(), n.to_string(), f.per_page == *n))
        .collect();
    let ranges_open =
        !f.ranges.is_empty() || res.problems.iter().any(|p| p.field.starts_with("m."));
    let (action, target) = match which {
        FormFor::Table => (paths::CANDIDATES, "#search"),
        FormFor::Summary => (paths::RATINGS, "#summary"),
    };
    FormView {
        action,
        target,
        for_table: which == FormFor::Table,
        projects,
        observations,
        beams,
        tags,
        reviewers,
        rated,
        verdicts,
        consensus,
        around,
        catalogues,
        match_states,
        max_match_sep: MAX_MATCH_ARCSEC,
        observation_keys: menus.observation_keys,
        obs_modes,
        metrics,
        columns,
        per_page,
        problems: res.problems.clone(),
        notes: res.notes.clone(),
        max_radius: MAX_RADIUS_ARCMIN,
        ranges_open,
        f,
    }
}

fn metric_row(f: &CandidateFilter, problems: &[Problem], m: &MetricDef) -> MetricRow {
    let field = |part: &str| format!("m.{}.{part}", m.key);
    let nf = f.value(&field("nf"));
    let problem = ["min", "max", "nf"].iter().find_map(|part| {
        problems
            .iter()
            .find(|p| p.field == field(part))
            .map(|p| p.message.clone())
    });
    MetricRow {
        key: m.key.clone(),
        label: m.label.clone(),
        unit: m.unit.clone(),
        min: f.value(&field("min")).to_string(),
        max: f.value(&field("max")).to_string(),
        non_finite: NonFinite::ALL
            .iter()
            .map(|c| {
                let sel = match nf {
                    "" => *c == NonFinite::Exclude,
                    v => v == c.as_str(),
                };
                choice(c.as_str(), c.label(), sel)
            })
            .collect(),
        problem,
    }
}

/// A column heading; `sort` is the query that sorts by it, if it sorts.
pub struct Header {
    pub label: String,
    pub unit: String,
    pub sort: Option<String>,
    /// "ascending", "descending" or "none", for `aria-sort`.
    pub aria: &'static str,
    pub numeric: bool,
}

pub struct RowView {
    pub id: CandidateId,
    pub name: String,
    pub project: String,
    pub observation: String,
    pub beam: String,
    pub ra: String,
    pub dec: String,
    pub ra_hms: String,
    pub dec_dms: String,
    pub sep: String,
    /// "J0835-4510, 1.23″" for the match filter's catalogue.
    pub nearest: String,
    pub known: String,
    pub ratings: i32,
    pub mine: String,
    pub mine_class: String,
    /// Empty where unscored or hidden by the blind rule.
    pub score: String,
    pub consensus: String,
    pub metrics: Vec<String>,
    /// One row per group: how many candidates the group has.
    pub seen: Option<i64>,
}

pub struct Results {
    pub headers: Vec<Header>,
    pub rows: Vec<RowView>,
    pub show_project: bool,
    pub show_sep: bool,
    pub show_match: bool,
    pub show_known: bool,
    pub show_score: bool,
    pub show_consensus: bool,
    pub count: String,
    pub first: Option<String>,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub restarted: bool,
    pub past_the_end: bool,
    /// The same filter the other way: one row per group, or every candidate.
    pub group_toggle: (String, &'static str),
}

/// A metric value as the table shows it: the project's precision, and
/// NaN and the infinities spelled out.
pub fn number_text(v: Option<f64>, precision: i16) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) if v == f64::INFINITY => "+∞".into(),
        Some(v) if v == f64::NEG_INFINITY => "−∞".into(),
        Some(v) => format!("{:.*}", precision.clamp(0, 12) as usize, v),
    }
}

fn thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The page and how many candidates match, in as few statements as the
/// filter allows: for whole projects the page and their kept count; for a
/// first page that holds every match (a cone, a narrow filter) the page
/// alone, whose rows are the count; otherwise the page and a count capped at
/// [`COUNT_CAP`].
async fn page_and_count(
    db: &mut PgConnection,
    pool: &PgPool,
    f: &CandidateFilter,
    res: &Resolution,
    v: &RatingVisibility,
    spec: &search::PageSpec<'_>,
) -> sqlx::Result<(search::Page, Option<i64>)> {
    if let Some(project) = search::whole_projects(&res.scope) {
        let page = search::page(&mut *db, &res.scope, v, spec).await?;
        let n = db::projects::candidate_count(&mut *db, project).await?;
        return Ok((page, Some(n)));
    }
    if matches!(f.cursor, Cursor::First) {
        let page = search::page(&mut *db, &res.scope, v, spec).await?;
        let n = match page.next {
            None => Some(page.rows.len() as i64),
            Some(_) => search::count_capped(db, &res.scope, v, COUNT_CAP).await?,
        };
        return Ok((page, n));
    }
    // Deeper pages: the count on a second connection, at the same time as
    // the page, when one is free this instant (for a selective filter each
    // can take tens of milliseconds); otherwise after the page on this one.
    // Waiting for a second connection while holding the first would let a
    // crowd of such requests hold the whole pool and wait for each other.
    let (page, count) = match pool.try_acquire() {
        Some(mut c) => {
            let counting = search::count_capped(&mut c, &res.scope, v, COUNT_CAP);
            tokio::join!(search::page(db, &res.scope, v, spec), counting)
        }
        None => {
            let page = search::page(&mut *db, &res.scope, v, spec).await;
            (
                page,
                search::count_capped(db, &res.scope, v, COUNT_CAP).await,
            )
        }
    };
    Ok((page?, count?))
}

async fn results(
    db: &mut PgConnection,
    pool: &PgPool,
    f: &CandidateFilter,
    res: &Resolution,
    v: &RatingVisibility,
) -> sqlx::Result<Results> {
    let (sort, descending) = res.sort.clone().unwrap_or((SortSpec::Name, false));
    let spec = search::PageSpec {
        sort: &sort,
        descending,
        cursor: &f.cursor,
        per: f.per_page,
        columns: &res.columns,
        score: res.show_score,
        consensus: res.show_consensus,
    };
    let (page, count) = page_and_count(db, pool, f, res, v, &spec).await?;
    let (one, many) = if f.one_per_group {
        ("group", "groups")
    } else {
        ("candidate", "candidates")
    };
    let count = match count {
        Some(1) => format!("1 {one}"),
        Some(n) => format!("{} {many}", thousands(n)),
        None => format!("more than {} {many}", thousands(COUNT_CAP)),
    };
    let sizes = if f.one_per_group {
        let ids: Vec<CandidateId> = page.rows.iter().map(|r| r.id).collect();
        Some(db::groups::sizes(db, &ids).await?)
    } else {
        None
    };
    let show_project = f.project.is_none();
    let show_sep = f.cone.is_some();
    let sorted_by = |k: &SortKey| -> &'static str {
        let now = f.effective_sort();
        match (&now.key == k, now.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    };
    let header = |label: &str, unit: &str, key: Option<SortKey>, numeric: bool| Header {
        label: label.into(),
        unit: unit.into(),
        aria: key.as_ref().map_or("none", sorted_by),
        sort: key.map(|k| f.query_sorted_by(&k)),
        numeric,
    };
    let mut headers = vec![header("Name", "", Some(SortKey::Name), false)];
    if f.one_per_group {
        headers.push(header("Seen", "", None, true));
    }
    if show_project {
        headers.push(header("Project", "", None, false));
    }
    headers.push(header("Observation", "", Some(SortKey::Observation), false));
    headers.push(header("Beam", "", None, false));
    headers.push(header("RA", "deg", Some(SortKey::Ra), true));
    headers.push(header("Dec", "deg", Some(SortKey::Dec), true));
    if show_sep {
        headers.push(header(
            "Separation",
            "arcmin",
            Some(SortKey::Separation),
            true,
        ));
    }
    let show_match = res.match_catalogue.is_some();
    if let Some(cat) = &res.match_catalogue {
        headers.push(header(
            &format!("Nearest in {cat}"),
            "arcsec",
            Some(SortKey::Match),
            false,
        ));
    }
    let show_known = page.rows.iter().any(|r| r.known.is_some());
    if show_known {
        headers.push(header("Known source", "", None, false));
    }
    headers.push(header("Ratings", "", Some(SortKey::Ratings), true));
    headers.push(header("Yours", "", None, false));
    if res.show_score {
        headers.push(header("P(real)", "", Some(SortKey::Score), true));
    }
    if res.show_consensus {
        headers.push(header("Consensus", "", None, false));
    }
    for m in &res.columns {
        headers.push(header(
            &m.label,
            &m.unit,
            Some(SortKey::Metric(m.key.clone())),
            true,
        ));
    }
    let past_the_end = page.rows.is_empty() && matches!(f.cursor, Cursor::After(_));
    let rows = page
        .rows
        .iter()
        .map(|r| RowView {
            id: r.id,
            name: r.name.clone(),
            project: r.project.clone(),
            observation: r.observation.clone(),
            beam: r.beam.clone().unwrap_or_default(),
            ra: format!("{:.5}", r.pos.ra.degrees()),
            dec: format!("{:+.5}", r.pos.dec.degrees()),
            ra_hms: sexagesimal::format_ra_hms(r.pos.ra, 2),
            dec_dms: sexagesimal::format_dec_dms(r.pos.dec, 1),
            sep: r.sep_arcmin.map_or_else(String::new, |s| format!("{s:.3}")),
            nearest: r.nearest.as_ref().map_or_else(
                || "none stored".to_string(),
                |(name, sep)| format!("{name}, {}", crate::domain::sky::separation_text(*sep)),
            ),
            known: r.known.clone().unwrap_or_default(),
            ratings: r.rating_count,
            mine: r.mine.map_or_else(String::new, |v| v.label().to_string()),
            mine_class: r
                .mine
                .map_or_else(String::new, |v| format!("verdict-{}", v.as_str())),
            score: r.score.map_or_else(String::new, |p| format!("{p:.2}")),
            consensus: r
                .consensus
                .as_deref()
                .and_then(|c| Consensus::parse(c).ok())
                .map_or_else(String::new, |c| c.label().to_string()),
            metrics: res
                .columns
                .iter()
                .zip(&r.metrics)
                .map(|(m, v)| number_text(*v, m.precision))
                .collect(),
            seen: sizes.as_ref().map(|s| s.get(&r.id).copied().unwrap_or(1)),
        })
        .collect();
    let at = |c: Cursor| paths::filtered(paths::CANDIDATES, &f.query_at(&c));
    Ok(Results {
        headers,
        rows,
        show_project,
        show_sep,
        show_match,
        show_known,
        show_score: res.show_score,
        show_consensus: res.show_consensus,
        count,
        first: (!matches!(f.cursor, Cursor::First)).then(|| at(Cursor::First)),
        prev: page.prev.map(|k| at(Cursor::Before(k))),
        next: page.next.map(|k| at(Cursor::After(k))),
        restarted: page.restarted,
        past_the_end,
        group_toggle: if f.one_per_group {
            (
                paths::filtered(paths::CANDIDATES, &f.query_with(&[("group", "")])),
                "Every candidate",
            )
        } else {
            (
                paths::filtered(paths::CANDIDATES, &f.query_with(&[("group", "1")])),
                "One row per group",
            )
        },
    })
}

/// Everything `candidates/_table.html` shows.
pub struct Search {
    pub csrf_token: String,
    pub form: FormView,
    pub results: Option<Results>,
    pub views: Vec<SavedView>,
    /// The filter as a query string (no page cursor): for saving, exports
    /// and "rate these".
    pub query: String,
    pub summary: String,
    /// The panel that rates every candidate of the filter at once, when the
    /// filter names a project (`web::pages::batch`).
    pub batch: Option<String>,
}

impl Search {
    pub fn export(&self, path: &str, ratings: &str) -> String {
        let mut q = self.query.clone();
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str("ratings=");
        q.push_str(ratings);
        format!("{path}?{q}")
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "candidates/page.html")]
pub struct CandidatesPage {
    layout: Layout,
    s: Search,
}

#[derive(Template, WebTemplate)]
#[template(path = "candidates/_table.html")]
pub struct CandidatesFragment {
    s: Search,
}

/// The raw query string of the request (without `?`).
pub fn raw_query(req: &Request) -> &str {
    req.uri().query().unwrap_or("")
}

/// With no query at all, the reviewer's default view (if any) as a
/// redirect; any query, even `?reset=1`, means "no default".
pub async fn default_view_redirect(
    db: &mut PgConnection,
    req: &Request,
    me: UserId,
    path: &str,
) -> sqlx::Result<Option<Response>> {
    if !raw_query(req).is_empty() {
        return Ok(None);
    }
    Ok(views::default_query(db, me)
        .await?
        .filter(|q| !q.is_empty())
        .map(|q| see_other(&paths::with_query(path, &q))))
}

#[handler]
pub async fn list(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    if let Some(r) = default_view_redirect(&mut conn, req, user.id, paths::CANDIDATES).await? {
        return Ok(r);
    }
    let f = CandidateFilter::from_query(raw_query(req));
    let res = search::resolve(&mut conn, &f).await?;
    let menus = db::menus::load(&mut *conn, res.scope.project_id, user.id).await?;
    let results = if res.is_valid() {
        let v = menus.visibility(user.id, user.role);
        Some(results(&mut conn, &state.pool, &f, &res, &v).await?)
    } else {
        None
    };
    let views = menus.saved_views();
    let query = f.to_query();
    // What htmx pushes: the filter's own query, which a reload must not turn
    // into the default view.
    let canonical = paths::filtered(paths::CANDIDATES, &f.query_at(&f.cursor));
    let summary = f.summary();
    let batch =
        (res.is_valid() && res.scope.project_id.is_some()).then(|| paths::batch_for_filter(&query));
    drop(conn);
    let form = form_view(menus, f, &res, FormFor::Table);
    let csrf_token = TypedSession::from_request_ref(req)?.csrf_token().await?;
    let s = Search {
        csrf_token,
        form,
        results,
        views,
        query,
        summary,
        batch,
    };
    fragment_or_page(
        req,
        canonical,
        s,
        |s| CandidatesFragment { s },
        |layout, s| CandidatesPage { layout, s },
    )
    .await
}

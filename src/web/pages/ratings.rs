//! `/ratings`: how the candidates in the current filter (the same query as
//! `/candidates`) have been rated.
//!
//! Every figure is over the current ratings (one per reviewer and
//! candidate) of the candidates the filter selects. Under the blind rule
//! (`domain::visibility`) only the totals (counts of candidates and
//! ratings, which say nothing of verdicts) cover them all; the rest covers
//! the candidates whose ratings the viewer may see. Whole projects are read
//! from the kept summaries, flushed first (`db::search::precomputed_*`):
//! everyone's for a viewer who may see every rating, the viewer's own for
//! one blind in them all; anything else is counted from the ratings (for a
//! blind viewer, of the candidates they rated). Each count is a
//! count of rows of one table grouped by a key, joined only to rows it has
//! exactly one of (its candidate, user, tag), never through a join that
//! could repeat them: ratings per reviewer and verdict count `ratings`
//! rows, ratings per tag count `rating_tags` rows (a rating carries a tag
//! at most once), and candidates per tag count distinct candidates.
//!
//! Agreement is over the candidates with two or more current ratings:
//! - pairwise agreement: for each candidate, the share of its pairs of
//!   ratings that have the same verdict, averaged over candidates; and per
//!   pair of reviewers, the share of the candidates both rated on which they
//!   agree;
//! - Fleiss' kappa, generalised to a varying number of ratings per
//!   candidate in the usual way: P_i = Σ_j n_ij(n_ij − 1) / (n_i(n_i − 1))
//!   per candidate, P̄ their mean, p_j = Σ_i n_ij / Σ_i n_i, P̄e = Σ_j p_j²,
//!   κ = (P̄ − P̄e) / (1 − P̄e). With the same number of ratings everywhere
//!   this is Fleiss (1971) exactly.
//!
//! Gold standards (with a project chosen): each reviewer's recall,
//! precision and false-positive rate on the project's gold candidates
//! (`db::gold`), and the team's estimated completeness; see [`GoldView`]
//! for who sees what.
//!
//! Charts are SVG drawn here: no script, and colours as presentation
//! attributes (the CSP forbids inline `style`).

use std::fmt::Write as _;

use askama::Template;
use askama_web::WebTemplate;
use poem::web::Data;
use poem::{handler, Request, Response};
use sqlx::{PgConnection, PgPool};

use crate::db::gold;
use crate::db::search::{self, Disagreement, Scope, Totals};
use crate::db::users::User;
use crate::domain::filter::CandidateFilter;
use crate::domain::gold::{Completeness, GoldCounts};
use crate::domain::text::xml_escape;
use crate::domain::visibility::RatingVisibility;
use crate::domain::{CandidateId, ProjectId, Verdict};
use crate::plot::palette::{self, ACCENT, INK, MUTED, PAPER};
use crate::web::pages::candidates::{
    default_view_redirect, form_view, raw_query, FormFor, FormView,
};
use crate::web::paths;
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::htmx::fragment_or_page;
use crate::web::plumbing::layout::Layout;
use crate::web::state::AppState;

/// Disagreements listed on the page; the rest are a link to the table.
const DISAGREEMENTS_SHOWN: i64 = 100;

/// A reviewer's own gold figures cover their ratings at least this old: a
/// figure that moved the moment they rated would tell them the candidate
/// was gold.
pub const GOLD_DELAY: time::Duration = time::Duration::days(1);

/// Agreement over items rated by two or more raters, each item given as
/// its count of ratings per category.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agreement {
    /// Items with two or more ratings.
    pub items: u64,
    /// Items whose ratings are not all in one category.
    pub disagreements: u64,
    /// Mean over items of the share of agreeing pairs (Fleiss' P̄).
    pub observed: Option<f64>,
    /// Agreement expected by chance (P̄e).
    pub expected: Option<f64>,
    /// Fleiss' kappa; `None` with no items, or when every rating is in one
    /// category (P̄e = 1 leaves it undefined).
    pub kappa: Option<f64>,
}

/// Fleiss' kappa and mean pairwise agreement, with items of one rating
/// left out and a varying number of ratings per item allowed.
pub fn agreement<const K: usize>(items: &[[i64; K]]) -> Agreement {
    let weighted: Vec<([i64; K], i64)> = items.iter().map(|i| (*i, 1)).collect();
    agreement_of(&weighted)
}

/// [`agreement`] over items given once per combination of counts, with how
/// many items have it (what the precomputed summary stores).
pub fn agreement_of<const K: usize>(items: &[([i64; K], i64)]) -> Agreement {
    let mut a = Agreement::default();
    let mut sum_p = 0.0;
    let mut totals = [0f64; K];
    let mut all = 0f64;
    for (item, weight) in items {
        let n: i64 = item.iter().sum();
        if n < 2 || *weight <= 0 {
            continue;
        }
        let w = *weight as f64;
        a.items += *weight as u64;
        if item.iter().filter(|&&c| c > 0).count() > 1 {
            a.disagreements += *weight as u64;
        }
        let agreeing: i64 = item.iter().map(|&c| c * (c - 1)).sum();
        sum_p += w * agreeing as f64 / (n * (n - 1)) as f64;
        for (t, &c) in totals.iter_mut().zip(item) {
            *t += w * c as f64;
        }
        all += w * n as f64;
    }
    if a.items == 0 {
        return a;
    }
    let p_bar = sum_p / a.items as f64;
    let p_e: f64 = totals.iter().map(|t| (t / all).powi(2)).sum();
    a.observed = Some(p_bar);
    a.expected = Some(p_e);
    // A rounding hair from 1 is still "everyone used one category".
    a.kappa = (1.0 - p_e > 1e-12).then(|| (p_bar - p_e) / (1.0 - p_e));
    a
}

/// One horizontal bar of a chart: a label and a value per series.
pub struct Bar {
    pub label: String,
    pub values: Vec<i64>,
    /// Where the bar links to, if anywhere.
    pub href: Option<String>,
}

/// A horizontal stacked bar chart as an `<svg>` element. `series` names and
/// colours the values of each bar.
pub fn bar_chart(title: &str, series: &[(&str, &str)], bars: &[Bar]) -> String {
    const W: f64 = 640.0;
    const LABEL_W: f64 = 170.0;
    const BAR_W: f64 = 380.0;
    const ROW: f64 = 24.0;
    const TOP: f64 = 48.0;
    let h = TOP + ROW * bars.len().max(1) as f64 + 12.0;
    let max = bars
        .iter()
        .map(|b| b.values.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"bar-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" \
         width=\"{W}\" height=\"{h}\" font-family=\"system-ui, sans-serif\" role=\"img\" \
         aria-label=\"{t}\"><title>{t}</title>\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{h}\" fill=\"{PAPER}\"/>\
         <text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"600\" fill=\"{INK}\">{t}</text>",
        t = xml_escape(title)
    );
    // Legend, when there is more than one series.
    if series.len() > 1 {
        let mut x = 0.0;
        for (name, colour) in series {
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"26\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
                 <text x=\"{}\" y=\"36\" font-size=\"12\" fill=\"{INK}\">{}</text>",
                x + 16.0,
                xml_escape(name)
            );
            x += 24.0 + 8.0 * name.chars().count() as f64;
        }
    }
    if bars.is_empty() {
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"12\" fill=\"{MUTED}\">nothing to show</text>",
            TOP + 16.0
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let total: i64 = bar.values.iter().sum();
        let label = xml_escape(&bar.label);
        let _ = write!(s, "<g class=\"bar\">");
        let text = format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"{INK}\">{label}</text>",
            LABEL_W - 8.0,
            y + 15.0
        );
        match &bar.href {
            Some(href) => {
                let _ = write!(s, "<a href=\"{}\">{text}</a>", xml_escape(href));
            }
            None => s.push_str(&text),
        }
        let mut x = LABEL_W;
        for (j, &v) in bar.values.iter().enumerate() {
            if v <= 0 {
                continue;
            }
            let w = BAR_W * v as f64 / max;
            let (name, colour) = series.get(j).copied().unwrap_or(("", ACCENT));
            let _ = write!(
                s,
                "<rect x=\"{x:.2}\" y=\"{}\" width=\"{w:.2}\" height=\"{}\" fill=\"{colour}\">\
                 <title>{label}: {} {}</title></rect>",
                y + 3.0,
                ROW - 6.0,
                v,
                xml_escape(name)
            );
            x += w;
        }
        let _ = write!(
            s,
            "<text x=\"{:.2}\" y=\"{}\" font-size=\"12\" fill=\"{INK}\">{total}</text></g>",
            x + 6.0,
            y + 15.0
        );
    }
    s.push_str("</svg>");
    s
}

pub struct ReviewerLine {
    pub name: String,
    /// Real, not real, unsure.
    pub counts: [i64; 3],
    pub total: i64,
    pub href: String,
}

pub struct TagLine {
    pub name: String,
    pub project: String,
    pub ratings: i64,
    pub candidates: i64,
    pub href: String,
}

pub struct PairLine {
    pub a: String,
    pub b: String,
    pub both: i64,
    pub agreed: i64,
    pub percent: String,
}

pub struct Figures {
    pub totals: Totals,
    pub reviewers: Vec<ReviewerLine>,
    /// Ratings per verdict: label, count, link.
    pub verdicts: Vec<(String, i64, String)>,
    pub tags: Vec<TagLine>,
    pub agreement: Agreement,
    pub pairs: Vec<PairLine>,
    pub disagreements: Vec<Disagreement>,
    pub disagreements_href: String,
    pub reviewer_chart: String,
    pub verdict_chart: String,
    pub tag_chart: String,
    pub show_project: bool,
    /// The figures by reviewer, verdict and tag cover only what the blind
    /// rule lets this viewer see.
    pub blind: bool,
    /// With a project chosen.
    pub gold: Option<GoldView>,
}

impl Figures {
    pub fn percent(v: Option<f64>) -> String {
        v.map_or_else(|| "—".into(), |v| format!("{:.1} %", v * 100.0))
    }

    pub fn number(v: Option<f64>) -> String {
        v.map_or_else(|| "—".into(), |v| format!("{v:.3}"))
    }

    pub fn observed(&self) -> String {
        Self::percent(self.agreement.observed)
    }

    pub fn expected(&self) -> String {
        Self::percent(self.agreement.expected)
    }

    pub fn kappa(&self) -> String {
        Self::number(self.agreement.kappa)
    }
}

/// A reviewer's results on the project's gold candidates.
pub struct GoldLine {
    pub name: String,
    pub counts: GoldCounts,
}

impl GoldLine {
    pub fn recall(&self) -> String {
        Figures::percent(self.counts.recall())
    }
    pub fn precision(&self) -> String {
        Figures::percent(self.counts.precision())
    }
    pub fn false_positive_rate(&self) -> String {
        Figures::percent(self.counts.false_positive_rate())
    }
}

/// What `ratings/_gold.html` shows: to an administrator every reviewer's
/// line and the team's completeness; to anyone else their own line, over
/// ratings older than [`GOLD_DELAY`]. Completeness is made of others'
/// verdicts (the blind rule) and of counts that move the moment a gold
/// candidate is first rated, so reviewers do not see it.
pub struct GoldView {
    pub lines: Vec<GoldLine>,
    pub everyone: bool,
    pub delayed: bool,
    pub completeness: Option<Completeness>,
}

impl GoldView {
    pub fn coverage(&self) -> String {
        Figures::percent(self.completeness.and_then(|c| c.coverage()))
    }
    pub fn team_recall(&self) -> String {
        Figures::percent(self.completeness.and_then(|c| c.team_recall()))
    }
    pub fn estimate(&self) -> String {
        Figures::percent(self.completeness.and_then(|c| c.estimate()))
    }
}

async fn gold_view(
    conn: &mut PgConnection,
    project: ProjectId,
    user: &User,
) -> sqlx::Result<GoldView> {
    let everyone = user.is_admin();
    let before = (!everyone).then(|| time::OffsetDateTime::now_utc() - GOLD_DELAY);
    let only = (!everyone).then_some(user.id);
    let mut lines: Vec<GoldLine> = gold::per_reviewer(conn, project, only, before)
        .await?
        .into_iter()
        .map(|(name, counts)| GoldLine { name, counts })
        .collect();
    if lines.is_empty() && !everyone {
        lines.push(GoldLine {
            name: user.username.clone(),
            counts: GoldCounts::default(),
        });
    }
    let completeness = if everyone {
        Some(gold::completeness(conn, project).await?)
    } else {
        None
    };
    Ok(GoldView {
        lines,
        everyone,
        delayed: before.is_some(),
        completeness,
    })
}

/// Everything `ratings/_summary.html` shows.
pub struct SummaryView {
    pub form: FormView,
    pub figures: Option<Figures>,
    pub summary: String,
    pub table_href: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "ratings/page.html")]
pub struct RatingsPage {
    layout: Layout,
    s: SummaryView,
}

#[derive(Template, WebTemplate)]
#[template(path = "ratings/_summary.html")]
pub struct RatingsFragment {
    s: SummaryView,
}

/// The counts a summary is drawn from.
struct Counted {
    totals: Totals,
    per_reviewer: Vec<(String, Verdict, i64)>,
    per_tag: Vec<(String, String, i64, i64)>,
    /// Candidates with two or more current ratings: their counts per
    /// verdict, and how many candidates have those counts.
    shapes: Vec<([i64; 3], i64)>,
    pairs: Vec<(String, String, i64, i64)>,
    /// The first of the candidates whose ratings disagree, by name.
    disagreements: Vec<Disagreement>,
}

/// From the precomputed summaries when the filter is whole projects whose
/// every rating the viewer may see; otherwise from the ratings of the
/// candidates in scope that the viewer may see.
async fn count(
    conn: &mut PgConnection,
    pool: &PgPool,
    s: &Scope,
    v: &RatingVisibility,
) -> sqlx::Result<Counted> {
    // The totals on a second connection, at the same time as the rest, when
    // one is free this instant (for whole projects they count a million
    // candidates through an index); otherwise after the rest on this one.
    // Never wait for a second connection while holding one: a crowd of such
    // requests could hold the whole pool and wait for each other.
    async fn totals(c: &mut PgConnection, s: &Scope, v: &RatingVisibility) -> sqlx::Result<Totals> {
        match search::whole_projects(s) {
            Some(project) => search::precomputed_totals(c, project).await,
            None => search::totals(c, s, v).await,
        }
    }
    let (totals, rest) = match pool.try_acquire() {
        Some(mut c) => tokio::join!(totals(&mut c, s, v), rest(conn, s, v)),
        None => {
            let rest = rest(&mut *conn, s, v).await;
            (totals(conn, s, v).await, rest)
        }
    };
    let mut counted = rest?;
    counted.totals = totals?;
    Ok(counted)
}

/// Everything but the totals.
async fn rest(conn: &mut PgConnection, s: &Scope, v: &RatingVisibility) -> sqlx::Result<Counted> {
    if let Some((project, whose)) = search::precomputed_for(s, v) {
        return Ok(Counted {
            totals: Totals::default(),
            per_reviewer: search::precomputed_per_reviewer(conn, project, whose).await?,
            per_tag: search::precomputed_per_tag(conn, project, whose).await?,
            shapes: search::precomputed_shapes(conn, project, whose).await?,
            pairs: search::precomputed_pairs(conn, project, whose).await?,
            disagreements: search::precomputed_disagreements(
                conn,
                project,
                whose,
                DISAGREEMENTS_SHOWN,
            )
            .await?,
        });
    }
    let counts = search::verdict_counts(conn, s, v).await?;
    let disagreeing: Vec<CandidateId> = counts
        .iter()
        .filter(|(_, c)| c.iter().filter(|&&n| n > 0).count() > 1)
        .map(|(id, _)| *id)
        .collect();
    Ok(Counted {
        totals: Totals::default(),
        per_reviewer: search::per_reviewer(conn, s, v).await?,
        per_tag: search::per_tag(conn, s, v).await?,
        pairs: search::reviewer_pairs(conn, s, v).await?,
        disagreements: search::disagreements(conn, &disagreeing, v, DISAGREEMENTS_SHOWN).await?,
        shapes: counts.into_iter().map(|(_, c)| (c, 1)).collect(),
    })
}

fn link(path: &str, f: &CandidateFilter, replace: &[(&str, &str)]) -> String {
    paths::with_query(path, &f.query_with(replace))
}

#[handler]
pub async fn page(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    let me = user.id;
    let mut conn = state.pool.acquire().await?;
    if let Some(r) = default_view_redirect(&mut conn, req, me, paths::RATINGS).await? {
        return Ok(r);
    }
    let f = CandidateFilter::from_query(raw_query(req));
    let res = search::resolve(&mut conn, &f).await?;
    let menus = crate::db::menus::load(&mut *conn, res.scope.project_id, me).await?;
    let figures = if res.is_valid() {
        let s = &res.scope;
        let v = &menus.visibility(me, user.role);
        // Every rating committed before this request is in the figures.
        crate::db::ratings::flush_summaries(&mut conn).await?;
        let counted = count(&mut conn, &state.pool, s, v).await?;
        let totals = counted.totals;
        let mut reviewers: Vec<ReviewerLine> = Vec::new();
        for (name, verdict, n) in counted.per_reviewer {
            if reviewers.last().is_none_or(|r| r.name != name) {
                reviewers.push(ReviewerLine {
                    href: link(paths::CANDIDATES, &f, &[("reviewer", &name)]),
                    name: name.clone(),
                    counts: [0; 3],
                    total: 0,
                });
            }
            if let Some(line) = reviewers.last_mut() {
                let i = Verdict::ALL.iter().position(|v| *v == verdict).unwrap_or(0);
                line.counts[i] += n;
                line.total += n;
            }
        }
        let verdicts: Vec<(String, i64, String)> = Verdict::ALL
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    v.label().to_string(),
                    reviewers.iter().map(|r| r.counts[i]).sum(),
                    link(paths::CANDIDATES, &f, &[("verdict", v.as_str())]),
                )
            })
            .collect();
        let tags: Vec<TagLine> = counted
            .per_tag
            .into_iter()
            .map(|(name, project, ratings, candidates)| TagLine {
                href: link(
                    paths::CANDIDATES,
                    &f,
                    &[("project", &project), ("tag", &name)],
                ),
                name,
                project,
                ratings,
                candidates,
            })
            .collect();
        let agreement = agreement_of(&counted.shapes);
        let pairs = counted
            .pairs
            .into_iter()
            .map(|(a, b, both, agreed)| PairLine {
                a,
                b,
                both,
                agreed,
                percent: Figures::percent((both > 0).then(|| agreed as f64 / both as f64)),
            })
            .collect();
        let disagreements = counted.disagreements;
        let series: Vec<(&str, &str)> = Verdict::ALL
            .iter()
            .zip(palette::VERDICTS)
            .map(|(v, c)| (v.label(), c))
            .collect();
        let reviewer_chart = bar_chart(
            "Current ratings per reviewer",
            &series,
            &reviewers
                .iter()
                .map(|r| Bar {
                    label: r.name.clone(),
                    values: r.counts.to_vec(),
                    href: Some(r.href.clone()),
                })
                .collect::<Vec<_>>(),
        );
        let verdict_chart = bar_chart(
            "Current ratings per verdict",
            &series,
            &verdicts
                .iter()
                .enumerate()
                .map(|(i, (label, n, href))| {
                    let mut values = vec![0; 3];
                    values[i] = *n;
                    Bar {
                        label: label.clone(),
                        values,
                        href: Some(href.clone()),
                    }
                })
                .collect::<Vec<_>>(),
        );
        let show_project = f.project.is_none();
        let tag_chart = bar_chart(
            "Current ratings carrying each tag",
            &[("ratings", ACCENT)],
            &tags
                .iter()
                .map(|t| Bar {
                    label: if show_project {
                        format!("{} ({})", t.name, t.project)
                    } else {
                        t.name.clone()
                    },
                    values: vec![t.ratings],
                    href: Some(t.href.clone()),
                })
                .collect::<Vec<_>>(),
        );
        Some(Figures {
            totals,
            reviewers,
            verdicts,
            tags,
            agreement,
            pairs,
            disagreements,
            disagreements_href: link(paths::CANDIDATES, &f, &[("rated", "disagree")]),
            reviewer_chart,
            verdict_chart,
            tag_chart,
            show_project,
            blind: !(v.sees_everything() || s.project_id.is_some_and(|p| v.sees_project(p))),
            gold: match s.project_id {
                Some(p) => Some(gold_view(&mut conn, p, &user).await?),
                None => None,
            },
        })
    } else {
        None
    };
    let summary = f.summary();
    let table_href = link(paths::CANDIDATES, &f, &[]);
    let canonical = paths::filtered(paths::RATINGS, &f.to_query());
    drop(conn);
    let form = form_view(menus, f, &res, FormFor::Summary);
    let s = SummaryView {
        form,
        figures,
        summary,
        table_href,
    };
    fragment_or_page(
        req,
        canonical,
        s,
        |s| RatingsFragment { s },
        |layout, s| RatingsPage { layout, s },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    /// The worked example of Fleiss' kappa (10 subjects, 14 raters, five
    /// categories): P̄ = 0.378, P̄e = 0.213, κ = 0.210.
    #[test]
    fn fleiss_kappa_matches_the_worked_example() {
        let items: [[i64; 5]; 10] = [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ];
        let a = agreement(&items);
        assert_eq!(a.items, 10);
        assert!(close(a.observed.unwrap(), 0.378), "{a:?}");
        assert!(close(a.expected.unwrap(), 0.213), "{a:?}");
        assert!(close(a.kappa.unwrap(), 0.210), "{a:?}");
    }

    #[test]
    fn varying_numbers_of_raters_use_the_generalisation() {
        // By hand: P = 1, 0, 1 → P̄ = 2/3; p = (6/7, 1/7) → P̄e = 37/49;
        // κ = (2/3 − 37/49) / (12/49) = −13/36.
        let a = agreement(&[[2, 0, 0], [1, 1, 0], [3, 0, 0], [1, 0, 0]]);
        assert_eq!(a.items, 3, "the item with one rating is left out");
        assert_eq!(a.disagreements, 1);
        assert!((a.observed.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((a.expected.unwrap() - 37.0 / 49.0).abs() < 1e-12);
        assert!((a.kappa.unwrap() + 13.0 / 36.0).abs() < 1e-12);
    }

    #[test]
    fn kappa_is_undefined_without_items_or_with_one_category() {
        assert_eq!(agreement::<3>(&[]).kappa, None);
        let a = agreement(&[[2, 0, 0], [3, 0, 0]]);
        assert_eq!(a.observed, Some(1.0));
        assert_eq!(a.kappa, None);
        // Perfect agreement across categories is κ = 1.
        let a = agreement(&[[2, 0, 0], [0, 2, 0]]);
        assert_eq!(a.kappa, Some(1.0));
    }

    #[test]
    fn charts_are_svg_without_style_attributes_and_escape_labels() {
        let svg = bar_chart(
            "Ratings <per> reviewer",
            &[
                ("Real", palette::VERDICTS[0]),
                ("Not real", palette::VERDICTS[1]),
            ],
            &[
                Bar {
                    label: "a&b".into(),
                    values: vec![3, 1],
                    href: Some("/candidates?reviewer=a&x=1".into()),
                },
                Bar {
                    label: "zero".into(),
                    values: vec![0, 0],
                    href: None,
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("style="));
        assert!(svg.contains("Ratings &lt;per&gt; reviewer"));
        assert!(svg.contains(">a&amp;b<"));
        assert!(svg.contains("href=\"/candidates?reviewer=a&amp;x=1\""));
        // The longest bar spans the whole bar area; the second series follows it.
        assert!(svg.contains("width=\"285.00\""), "{svg}");
        assert!(svg.contains("width=\"95.00\""), "{svg}");
        assert!(bar_chart("empty", &[], &[]).contains("nothing to show"));
    }
}

//! `/ratings`: counts per reviewer, verdict and tag, agreement and
//! disagreements, checked against the hand-counted survey of
//! `candidates::survey`, with and without a filter.

use reqwest::StatusCode;
use scraper::{Html, Selector};
use sqlx::PgPool;

use crate::candidates::{open_review, survey};
use crate::helpers::{select_attr, select_text, TestApp};

async fn summary(app: &TestApp, query: &str) -> Html {
    let r = app.get(&format!("/ratings?{query}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    Html::parse_document(&r.text().await.unwrap())
}

/// The numeric cells of the row with `attr="key"` in `section`.
fn row(html: &Html, section: &str, attr: &str, key: &str) -> Vec<String> {
    let sel = Selector::parse(&format!("{section} tr[{attr}=\"{key}\"] td.num")).unwrap();
    html.select(&sel)
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

/// The `attr` values of the rows of `section`'s table, in order.
pub fn rows(html: &Html, section: &str, attr: &str) -> Vec<String> {
    let sel = Selector::parse(&format!("{section} tr[{attr}]")).unwrap();
    html.select(&sel)
        .filter_map(|e| e.value().attr(attr).map(str::to_string))
        .collect()
}

fn text(html: &Html, sel: &str) -> String {
    select_text(html, sel).unwrap_or_else(|| panic!("no {sel}"))
}

fn cells(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[sqlx::test]
async fn a_blind_reviewer_counts_only_the_candidates_they_rated(pool: PgPool) {
    let s = survey(pool).await;
    let html = summary(&s.app, "project=vast").await;
    assert!(select_text(&html, "#blind-note").is_some());
    // The totals count every rating: they say nothing of verdicts.
    assert_eq!(text(&html, "#total-candidates"), "8");
    assert_eq!(text(&html, "#total-ratings"), "9");
    // alice rated c01, c02 and c05: bob's c03 and carol's c04 are left out.
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "alice"),
        cells("2 1 0 3")
    );
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "bob"),
        cells("1 1 0 2")
    );
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "carol"),
        cells("1 1 0 2")
    );
    assert_eq!(row(&html, "#per-tag", "data-tag", "Noise"), cells("1 1"));
    assert!(row(&html, "#per-tag", "data-tag", "Flare star").is_empty());
    // Agreement was over c01, c02 and c05 all along.
    assert_eq!(text(&html, "#fleiss-kappa"), "0.546");
    assert_eq!(text(&html, "#disagreement-count"), "1");
}

#[sqlx::test]
async fn counts_are_right_with_several_ratings_per_candidate(pool: PgPool) {
    let s = survey(pool).await;
    // Every rating visible: the whole project comes from the precomputed
    // summaries.
    open_review(&s.app).await;
    let html = summary(&s.app, "project=vast").await;
    assert!(select_text(&html, "#blind-note").is_none());
    // 8 candidates; c01–c05 rated; c01, c02 and c05 twice or more; 2+3+1+1+2 ratings.
    assert_eq!(text(&html, "#total-candidates"), "8");
    assert_eq!(text(&html, "#total-rated"), "5");
    assert_eq!(text(&html, "#total-multi"), "3");
    assert_eq!(text(&html, "#total-ratings"), "9");
    // Real, not real, unsure, all.
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "alice"),
        cells("2 1 0 3")
    );
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "bob"),
        cells("1 1 1 3")
    );
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "carol"),
        cells("1 2 0 3")
    );
    assert_eq!(
        row(&html, "#per-verdict", "data-verdict", "Real"),
        cells("4")
    );
    assert_eq!(
        row(&html, "#per-verdict", "data-verdict", "Not real"),
        cells("4")
    );
    assert_eq!(
        row(&html, "#per-verdict", "data-verdict", "Unsure"),
        cells("1")
    );
    // Ratings carrying the tag, and candidates: Pulsar is on two ratings of one candidate.
    assert_eq!(row(&html, "#per-tag", "data-tag", "Pulsar"), cells("2 1"));
    assert_eq!(row(&html, "#per-tag", "data-tag", "Noise"), cells("2 2"));
    assert_eq!(
        row(&html, "#per-tag", "data-tag", "Flare star"),
        cells("1 1")
    );
    // Agreement over c01 [2 real], c02 [2 real, 1 not], c05 [2 not]:
    // P = 1, 1/3, 1 → P̄ = 7/9; p = 4/7, 3/7 → P̄e = 25/49; κ = 118/216.
    assert_eq!(text(&html, "#observed-agreement"), "77.8 %");
    assert_eq!(text(&html, "#expected-agreement"), "51.0 %");
    assert_eq!(text(&html, "#fleiss-kappa"), "0.546");
    assert_eq!(text(&html, "#disagreement-count"), "1");
    // Pairs: alice·bob agree on c01 not c02; alice·carol on c02 and c05; bob·carol not on c02.
    assert_eq!(
        row(&html, "#pairs", "data-pair", "alice/bob"),
        vec!["2", "1", "50.0 %"]
    );
    assert_eq!(
        row(&html, "#pairs", "data-pair", "alice/carol"),
        vec!["2", "2", "100.0 %"]
    );
    assert_eq!(
        row(&html, "#pairs", "data-pair", "bob/carol"),
        vec!["1", "0", "0.0 %"]
    );
    // The disagreement, linked to its candidate, with who said what.
    let d = text(&html, "#disagreements li");
    assert!(
        d.contains("c02") && d.contains("alice: real, bob: not_real, carol: real"),
        "{d}"
    );
    assert_eq!(
        select_attr(&html, "#disagreements li a", "href").unwrap(),
        format!("/candidates/{}", s.ids["c02"])
    );
    // Charts are SVG with presentation attributes only.
    let sel = Selector::parse("#per-reviewer svg.bar-chart").unwrap();
    let svg = html.select(&sel).next().expect("a chart").html();
    assert!(!svg.contains("style="), "{svg}");
    assert!(svg.contains("fill=\"#1c7c3a\""));
    assert_eq!(
        svg.matches("<rect").count(),
        1 + 3 + 7,
        "background, legend, bar parts"
    );
}

#[sqlx::test]
async fn every_figure_respects_the_filter(pool: PgPool) {
    let s = survey(pool).await;
    open_review(&s.app).await;
    // All projects: g01 adds bob's second real rating.
    let html = summary(&s.app, "reset=1").await;
    assert_eq!(text(&html, "#total-candidates"), "9");
    assert_eq!(text(&html, "#total-ratings"), "10");
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "bob"),
        cells("2 1 1 4")
    );
    assert_eq!(
        row(&html, "#per-verdict", "data-verdict", "Real"),
        cells("5")
    );
    // Only the disagreement: c02 and its three ratings.
    let html = summary(&s.app, "rated=disagree").await;
    assert_eq!(text(&html, "#total-candidates"), "1");
    assert_eq!(text(&html, "#total-ratings"), "3");
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "alice"),
        cells("1 0 0 1")
    );
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "bob"),
        cells("0 1 0 1")
    );
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "carol"),
        cells("1 0 0 1")
    );
    assert_eq!(text(&html, "#observed-agreement"), "33.3 %");
    // One candidate with 2 real and 1 not: p = 2/3, 1/3; P̄e = 5/9; κ = (1/3 − 5/9)/(4/9) = −0.5.
    assert_eq!(text(&html, "#fleiss-kappa"), "-0.500");
    // Tagged Pulsar: c01 only, with both its ratings (each reviewer's).
    let html = summary(&s.app, "project=vast&tag=Pulsar").await;
    assert_eq!(text(&html, "#total-candidates"), "1");
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "alice"),
        cells("1 0 0 1")
    );
    assert_eq!(
        row(&html, "#per-reviewer", "data-reviewer", "bob"),
        cells("1 0 0 1")
    );
    assert!(select_text(&html, "#per-reviewer tr[data-reviewer=carol]").is_none());
    assert_eq!(row(&html, "#per-tag", "data-tag", "Noise"), cells("1 1"));
    assert_eq!(
        text(&html, "#fleiss-kappa"),
        "—",
        "one category only: undefined"
    );
    assert!(select_text(&html, "#disagreements")
        .unwrap()
        .contains("None"));
    // A cone: c01 and c02 within 1′ of 188.7 −45.2 in VAST.
    let html = summary(&s.app, "project=vast&pos=188.7+-45.2&radius=1").await;
    assert_eq!(text(&html, "#total-candidates"), "2");
    assert_eq!(text(&html, "#total-ratings"), "5");
    // Nobody rated these.
    let html = summary(&s.app, "rated=none").await;
    assert_eq!(text(&html, "#total-ratings"), "0");
    assert!(select_text(&html, "#per-reviewer tbody tr").is_none());
    assert_eq!(text(&html, "#fleiss-kappa"), "—");
    // Links from the figures keep the filter.
    let html = summary(&s.app, "project=vast&rated=any").await;
    assert_eq!(
        select_attr(&html, "#per-reviewer tr[data-reviewer=bob] a", "href").unwrap(),
        "/candidates?project=vast&rated=any&reviewer=bob"
    );
    // The form is the table's, pointed at /ratings; htmx gets the fragment.
    assert_eq!(
        select_attr(&html, "form#filter", "action").as_deref(),
        Some("/ratings")
    );
    let r = s
        .app
        .client
        .get(s.app.url("/ratings?project=vast"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains("<html") && body.contains("id=\"summary\""));
}

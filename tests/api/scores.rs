//! The model's P(real) and the consensus state in the candidate table, the
//! exports and the candidate page: filters, sort, columns, and the blind
//! rule (both come from others' verdicts, so both hide as ratings do).

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::candidates::{names, open_review, rate, survey, Survey};
use crate::helpers::{select_text, TestApp};

/// Scores from a model (version 4) of vast: c01 0.9, c02 0.5, c03 0.2,
/// c05 0.05, c08 0.7; c04, c06, c07 unscored.
async fn score(s: &Survey) {
    let scores: Vec<(i64, f32)> = [
        ("c01", 0.9f32),
        ("c02", 0.5),
        ("c03", 0.2),
        ("c05", 0.05),
        ("c08", 0.7),
    ]
    .iter()
    .map(|(name, p)| (s.ids[*name], *p))
    .collect();
    model_scores(&s.app.pool, "vast", 4, &scores).await;
}

/// An accepted model (`version`) of the project that scored these
/// candidates; returns its id.
pub async fn model_scores(pool: &PgPool, slug: &str, version: i32, scores: &[(i64, f32)]) -> i64 {
    let model: i64 = sqlx::query_scalar(
        "INSERT INTO models (project_id, version, ratings_seen, n_train, n_real, auc, precision_at_95,
                             features, importances, platt_a, platt_b, booster, accepted, seconds)
         SELECT id, $2, 0, 0, 0, 0.9, 0.8, '[]', '[]', 1, 0, '', true, 0 FROM projects WHERE slug = $1
         RETURNING id",
    )
    .bind(slug)
    .bind(version)
    .fetch_one(pool)
    .await
    .unwrap();
    // Scores live in one partition per project, made by the first model.
    let project: i64 = sqlx::query_scalar("SELECT id FROM projects WHERE slug = $1")
        .bind(slug)
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS candidate_scores_{project} PARTITION OF candidate_scores FOR VALUES IN ({project})"
    ))
    .execute(pool)
    .await
    .unwrap();
    for (id, p) in scores {
        sqlx::query(
            "INSERT INTO candidate_scores (candidate_id, project_id, model_id, p_real)
             SELECT c.id, c.project_id, $2, $3 FROM candidates c WHERE c.id = $1",
        )
        .bind(id)
        .bind(model)
        .bind(p)
        .execute(pool)
        .await
        .unwrap();
    }
    model
}

/// (name, P(real) cell, consensus cell) of each row of the table.
async fn cells(app: &TestApp, query: &str) -> Vec<(String, String, String)> {
    let r = app
        .get(&format!(
            "/candidates?{query}&col=_p_real&col=_consensus&per=500"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    assert!(select_text(&html, "#filter-problems").is_none(), "{query}");
    let row = scraper::Selector::parse("#candidate-table tbody tr").unwrap();
    let cell = |tr: &scraper::ElementRef, css: &str| {
        let sel = scraper::Selector::parse(css).unwrap();
        tr.select(&sel)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_string())
            .unwrap_or_else(|| panic!("{query}: no {css}"))
    };
    html.select(&row)
        .map(|tr| {
            (
                cell(&tr, "td:first-child a"),
                cell(&tr, "td.score"),
                cell(&tr, "td.consensus"),
            )
        })
        .collect()
}

fn row<'a>(rows: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    let r = rows
        .iter()
        .find(|r| r.0 == name)
        .unwrap_or_else(|| panic!("no row {name}"));
    (r.1.as_str(), r.2.as_str())
}

/// The CSV export's (p_real, model_version, consensus) by candidate name.
async fn exported(app: &TestApp, name: &str) -> (String, String, String) {
    let r = app.get("/candidates.csv?project=vast&ratings=none").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_ref());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let at = |h: &str| header.iter().position(|x| x == h).unwrap();
    let (n, p, v, c) = (
        at("name"),
        at("p_real"),
        at("model_version"),
        at("consensus"),
    );
    reader
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[n] == name)
        .map(|r| (r[p].to_string(), r[v].to_string(), r[c].to_string()))
        .unwrap()
}

/// The candidate page's "P(real) … · consensus" line, if shown.
async fn standing(app: &TestApp, id: i64) -> Option<String> {
    let r = app.get(&format!("/candidates/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    select_text(&html, "#standing")
}

#[sqlx::test]
async fn score_and_consensus_filter_sort_and_show(pool: PgPool) {
    let s = survey(pool).await;
    score(&s).await;
    open_review(&s.app).await;
    // One real: open; one real and one not real: disputed.
    rate(&s.bob, s.ids["c07"], "real", &[], "").await;
    rate(&s.carol, s.ids["c08"], "real", &[], "").await;
    rate(&s.bob, s.ids["c08"], "not_real", &[], "").await;
    let app = &s.app;
    assert_eq!(
        names(app, "project=vast&sort=score").await,
        ["c05", "c03", "c02", "c08", "c01", "c04", "c06", "c07"]
    );
    assert_eq!(
        names(app, "project=vast&sort=score&dir=desc").await,
        ["c01", "c08", "c02", "c03", "c05", "c07", "c06", "c04"]
    );
    // Pages of two walk the same order across the two segments.
    assert_eq!(
        crate::candidates::walk(app, "project=vast&sort=score&per=2").await,
        ["c05", "c03", "c02", "c08", "c01", "c04", "c06", "c07"]
    );
    assert_eq!(
        names(app, "project=vast&score_min=0.5").await,
        ["c01", "c02", "c08"]
    );
    assert_eq!(
        names(app, "score_min=0.5&score_max=0.8").await,
        ["c02", "c08"]
    );
    for (state, want) in [
        ("settled_real", vec!["c01"]),
        ("settled_not_real", vec!["c05"]),
        ("settled", vec!["c01", "c05"]),
        ("disputed", vec!["c02", "c08"]),
        ("open", vec!["c03", "c04", "c06", "c07"]),
    ] {
        assert_eq!(
            names(app, &format!("project=vast&consensus={state}")).await,
            want,
            "{state}"
        );
    }
    let rows = cells(app, "project=vast").await;
    assert_eq!(row(&rows, "c01"), ("0.90", "settled: real"));
    assert_eq!(row(&rows, "c02"), ("0.50", "disputed"));
    assert_eq!(row(&rows, "c05"), ("0.05", "settled: not real"));
    assert_eq!(row(&rows, "c07"), ("", "open"));
    assert_eq!(row(&rows, "c08"), ("0.70", "disputed"));
    // The filter's summary names both conditions.
    let r = app
        .get("/candidates?project=vast&score_min=0.5&consensus=settled")
        .await;
    let text = r.text().await.unwrap();
    assert!(text.contains("P(real) ≥ 0.5"), "summary");
    assert!(text.contains("consensus settled"), "summary");
    assert_eq!(
        exported(app, "c01").await,
        ("0.9".into(), "4".into(), "settled_real".into())
    );
    assert_eq!(
        exported(app, "c07").await,
        (String::new(), String::new(), "open".into())
    );
    assert_eq!(
        standing(app, s.ids["c01"]).await.as_deref(),
        Some("P(real) 0.90 (model 4) · settled: real")
    );
}

#[sqlx::test]
async fn bad_score_bounds_and_consensus_states_are_clear_messages(pool: PgPool) {
    let s = survey(pool).await;
    for (q, field, want) in [
        ("score_min=2", "score_min", "from 0 to 1"),
        ("score_max=abc", "score_max", "from 0 to 1"),
        (
            "score_min=0.8&score_max=0.2",
            "score_min",
            "above the maximum",
        ),
        ("consensus=maybe", "consensus", "not a consensus state"),
    ] {
        let r = s.app.get(&format!("/candidates?{q}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{q}");
        let html = scraper::Html::parse_document(&r.text().await.unwrap());
        assert!(select_text(&html, "#candidate-table").is_none(), "{q}");
        let msg = select_text(&html, &format!("#msg-{field}"))
            .unwrap_or_else(|| panic!("{q}: no message"));
        assert!(msg.contains(want), "{q}: {msg}");
        let r = s.app.get(&format!("/candidates.csv?{q}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
    }
}

#[sqlx::test]
async fn a_blind_reviewer_sees_score_and_consensus_only_after_rating(pool: PgPool) {
    let s = survey(pool).await;
    score(&s).await;
    // alice (the app's reviewer) rated c01, c02 and c05, not c08 (0.7).
    let app = &s.app;
    let c08 = s.ids["c08"];
    let rows = cells(app, "project=vast").await;
    assert_eq!(row(&rows, "c01"), ("0.90", "settled: real"));
    assert_eq!(row(&rows, "c08"), ("", ""));
    assert_eq!(row(&rows, "c03"), ("", ""));
    // Filters and the sort treat what is hidden as unknown.
    assert_eq!(names(app, "project=vast&score_min=0.6").await, ["c01"]);
    assert!(names(app, "project=vast&consensus=open").await.is_empty());
    assert_eq!(
        names(app, "project=vast&consensus=settled").await,
        ["c01", "c05"]
    );
    assert_eq!(
        names(app, "project=vast&sort=score&dir=desc").await,
        ["c01", "c02", "c05", "c08", "c07", "c06", "c04", "c03"]
    );
    assert_eq!(
        exported(app, "c08").await,
        (String::new(), String::new(), String::new())
    );
    assert_eq!(standing(app, c08).await, None);
    assert!(standing(app, s.ids["c01"]).await.is_some());
    // bob, who did not rate c05, sees nothing of it.
    assert_eq!(standing(&s.bob, s.ids["c05"]).await, None);

    rate(app, c08, "real", &[], "").await;
    let rows = cells(app, "project=vast").await;
    assert_eq!(row(&rows, "c08"), ("0.70", "open"));
    assert_eq!(
        names(app, "project=vast&score_min=0.6").await,
        ["c01", "c08"]
    );
    assert_eq!(
        exported(app, "c08").await,
        ("0.7".into(), "4".into(), "open".into())
    );
    assert_eq!(
        standing(app, c08).await.as_deref(),
        Some("P(real) 0.70 (model 4) · open")
    );
}

//! "All details" on the decision screen (`/candidates/{id}/details`): the
//! full record of a candidate, with the rating history under the blind rule.

use sqlx::PgPool;

use crate::candidates::{rate, survey};
use crate::helpers::select_text;

#[sqlx::test]
async fn the_history_shows_only_once_i_have_rated(pool: PgPool) {
    let s = survey(pool).await;
    let c03 = s.ids["c03"];
    // Bob changes his mind on c03, which alice has not rated.
    rate(&s.bob, c03, "real", &[], "bob changed his mind").await;
    let details = format!("/candidates/{c03}/details");
    let before = s.app.get(&details).await.text().await.unwrap();
    assert!(before.contains("Measurements"), "{before}");
    assert!(!before.contains("Earlier ratings"), "{before}");
    assert!(!before.contains("bob"), "{before}");

    rate(&s.app, c03, "not_real", &[], "").await;
    let after = s.app.get_html(&details).await;
    let history = select_text(&after, "section:last-of-type").unwrap();
    assert!(history.contains("Earlier ratings (1)"), "{history}");
    assert!(history.contains("bob"), "{history}");
}

#[sqlx::test]
async fn the_details_name_every_measurement_and_file(pool: PgPool) {
    let s = survey(pool).await;
    let c01 = s.ids["c01"];
    let html = s.app.get_html(&format!("/candidates/{c01}/details")).await;
    let metrics = select_text(&html, "table.metrics").unwrap();
    for label in ["S/N", "Modulation index", "η"] {
        assert!(metrics.contains(label), "{metrics}");
    }
    let facts = select_text(&html, "dl.facts").unwrap();
    assert!(
        facts.contains("deep position") && facts.contains("Galactic"),
        "{facts}"
    );
}

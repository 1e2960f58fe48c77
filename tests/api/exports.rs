//! Exports: CSV and VOTable of the filtered candidates read back to the
//! same rows (the VOTable with astropy's parser, strictly), with current
//! ratings or the full history; streaming; the light curve as CSV.
//!
//! The VOTable check runs Debian's `/usr/bin/python3` with its
//! python3-astropy (`containers/local/prepare.sh` installs both from apt);
//! without them it fails, saying so: it is never skipped.

use std::collections::HashMap;
use std::process::Command;

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::candidates::{names, open_review, survey, TRICKY_NOTES};
use crate::helpers::TestApp;

/// Header and rows of a CSV export.
async fn csv_export(app: &TestApp, query: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let r = app.get(&format!("/candidates.csv?{query}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"candidates-"));
    let body = r.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_ref());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn columns(s: &str) -> Vec<String> {
    s.split(',').map(str::to_string).collect()
}

/// Debian's Python, whose python3-astropy the VOTable check reads with.
const PYTHON: &str = "/usr/bin/python3";

/// Panics with what to do when `PYTHON` cannot import astropy's parser.
fn astropy() {
    let o = Command::new(PYTHON)
        .args(["-c", "import astropy.io.votable"])
        .output();
    assert!(
        o.as_ref().is_ok_and(|o| o.status.success()),
        "the VOTable test needs {PYTHON} with astropy (a real VOTable parser): run \
         containers/local/prepare.sh (apt-get install python3-astropy) and the test again ({})",
        match o {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("{PYTHON} could not be run: {e}"),
        }
    );
}

const READ_VOTABLE: &str = r#"
import json, math, sys, warnings
import numpy as np
from astropy.io.votable import parse
# verify="exception": anything astropy would warn about (a bad datatype, a
# malformed value, a broken structure) fails the test.
vot = parse(sys.argv[1], verify="exception")
table = vot.get_first_table()
arr = table.array
names = arr.dtype.names
def text(v, masked):
    # VOTable's floating-point null is NaN: an empty cell and "NaN" both
    # read as a masked NaN, so floats are printed whether masked or not.
    if masked and not isinstance(v, (float, np.floating)):
        return None
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return str(v)
rows = []
for i in range(len(arr)):
    row = []
    for n in names:
        m = arr.mask[n][i]
        row.append(text(arr.data[n][i], bool(np.all(m))))
    rows.append(row)
fields = [{"name": f.name, "datatype": f.datatype, "unit": None if f.unit is None else str(f.unit)}
          for f in table.fields]
print(json.dumps({"fields": fields, "rows": rows, "description": str(vot.resources[0].description)}))
"#;

/// A VOTable export as astropy reads it: (field names, units, rows).
async fn votable_export(app: &TestApp, query: &str) -> serde_json::Value {
    astropy();
    let r = app.get(&format!("/candidates.vot?{query}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    assert_eq!(r.headers()["content-type"], "application/x-votable+xml");
    let body = r.bytes().await.unwrap();
    let path = std::env::temp_dir().join(format!(
        "vetter-test-{}-{}.vot",
        std::process::id(),
        body.len()
    ));
    std::fs::write(&path, &body).unwrap();
    let out = Command::new(PYTHON)
        .args(["-c", READ_VOTABLE])
        .arg(&path)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "astropy could not read the VOTable: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether a CSV cell and a VOTable value (as the script prints it) are
/// the same value: numbers compared as f64 (NaN equal to NaN), empty CSV
/// cells as nulls. VOTable's floating-point null is NaN, so there an empty
/// cell (no value) reads back as NaN, which CSV keeps apart (empty / nan).
fn same(csv: &str, vot: &serde_json::Value, numeric: bool) -> bool {
    match vot.as_str() {
        None => csv.is_empty(),
        Some("nan") if numeric && csv.is_empty() => true,
        Some(v) if numeric => match (csv.parse::<f64>(), v.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => false,
        },
        Some(v) => csv == v,
    }
}

fn assert_same_rows(header: &[String], rows: &[Vec<String>], vot: &serde_json::Value) {
    let fields: Vec<&str> = vot["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, header, "the same columns");
    let numeric: Vec<bool> = vot["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            matches!(
                f["datatype"].as_str().unwrap(),
                "double" | "float" | "int" | "long" | "short"
            )
        })
        .collect();
    let vrows = vot["rows"].as_array().unwrap();
    assert_eq!(vrows.len(), rows.len(), "the same number of rows");
    for (i, (c, v)) in rows.iter().zip(vrows).enumerate() {
        let v = v.as_array().unwrap();
        for (j, cell) in c.iter().enumerate() {
            assert!(
                same(cell, &v[j], numeric[j]),
                "row {i} column {}: CSV {cell:?}, VOTable {}",
                header[j],
                v[j]
            );
        }
    }
}

#[sqlx::test]
async fn csv_has_a_row_per_candidate_and_current_rating(pool: PgPool) {
    let s = survey(pool).await;
    // Blind (the default): bob's c03 and carol's c04 are not alice's to
    // see, so those candidates have a row without a rating.
    let (header, rows) = csv_export(&s.app, "project=vast").await;
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let who: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}", r[col("name")], r[col("reviewer")]))
        .collect();
    assert_eq!(
        who,
        columns(
            "c01:alice,c01:bob,c02:alice,c02:bob,c02:carol,c03:,c04:,c05:alice,c05:carol,c06:,c07:,c08:"
        )
    );
    open_review(&s.app).await;
    let (header, rows) = csv_export(&s.app, "project=vast").await;
    assert_eq!(
        header,
        columns(
            "candidate_id,project,observation,beam,name,ra,dec,rating_count,snr,md,eta,\
             known_source,known_catalogue,p_real,model_version,consensus,reviewer,verdict,score,tags,notes,rated_at"
        )
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let who: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}", r[col("name")], r[col("reviewer")]))
        .collect();
    assert_eq!(
        who,
        columns(
            "c01:alice,c01:bob,c02:alice,c02:bob,c02:carol,c03:bob,c04:carol,c05:alice,c05:carol,c06:,c07:,c08:"
        )
    );
    let find = |name: &str, reviewer: &str| {
        rows.iter()
            .find(|r| r[col("name")] == name && r[col("reviewer")] == reviewer)
            .unwrap_or_else(|| panic!("{name} {reviewer}"))
    };
    let c01a = find("c01", "alice");
    assert_eq!(
        c01a[col("notes")],
        TRICKY_NOTES,
        "quotes, comma, newline survive"
    );
    assert_eq!(c01a[col("tags")], "Pulsar");
    assert_eq!(c01a[col("verdict")], "real");
    assert_eq!(c01a[col("candidate_id")], s.ids["c01"].to_string());
    assert_eq!(c01a[col("observation")], "SB1");
    assert_eq!(c01a[col("beam")], "beam00");
    assert_eq!(c01a[col("ra")], "188.7");
    assert_eq!(c01a[col("dec")], "-45.2");
    assert_eq!(c01a[col("rating_count")], "2");
    assert_eq!(c01a[col("snr")], "5.0");
    assert!(
        c01a[col("rated_at")].ends_with('Z'),
        "{}",
        c01a[col("rated_at")]
    );
    assert_eq!(find("c01", "bob")[col("tags")], "Pulsar; Noise");
    assert_eq!(find("c02", "bob")[col("verdict")], "not_real");
    assert_eq!(find("c02", "bob")[col("notes")], "second look");
    // NaN and the infinities as Python reads them; a missing value is empty.
    assert_eq!(find("c02", "alice")[col("md")], "nan");
    assert_eq!(find("c03", "bob")[col("md")], "inf");
    assert_eq!(find("c04", "carol")[col("md")], "-inf");
    assert_eq!(find("c05", "alice")[col("snr")], "nan");
    let c06 = find("c06", "");
    assert_eq!(c06[col("md")], "");
    assert_eq!(c06[col("verdict")], "");
    assert_eq!(c06[col("rated_at")], "");
    assert_eq!(find("c07", "")[col("snr")], "");
    assert_eq!(find("c08", "")[col("beam")], "");
    assert_eq!(find("c03", "bob")[col("ra")], "359.995");
    // The same candidates as the table, each once per rating.
    let mut exported: Vec<String> = rows.iter().map(|r| r[col("name")].clone()).collect();
    exported.dedup();
    assert_eq!(exported, names(&s.app, "project=vast").await);

    // The filter applies: the disagreement only.
    let (_, rows) = csv_export(&s.app, "rated=disagree").await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r[4] == "c02"));
    // One row per candidate without ratings.
    let (header, rows) = csv_export(&s.app, "project=vast&ratings=none").await;
    assert_eq!(header.len(), 16);
    assert_eq!(rows.len(), 8);
    // All projects: one snr column for both projects' snr.
    let (header, rows) = csv_export(&s.app, "name=g01&ratings=none").await;
    assert_eq!(
        header,
        columns("candidate_id,project,observation,beam,name,ra,dec,rating_count,snr,md,eta,known_source,known_catalogue,p_real,model_version,consensus")
    );
    assert_eq!(rows[0][1], "gleam");
    assert_eq!(rows[0][8], "50.0");
    assert_eq!(rows[0][9], "");
    // A bad choice is a 400 that says why.
    let r = s.app.get("/candidates.csv?ratings=everything").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("current, history or none"));
}

#[sqlx::test]
async fn the_history_adds_each_replaced_rating(pool: PgPool) {
    let s = survey(pool).await;
    let (header, rows) = csv_export(&s.app, "project=vast&ratings=history").await;
    assert_eq!(
        &header[header.len() - 2..],
        &columns("rating_status,replaced_at")[..]
    );
    assert_eq!(
        rows.len(),
        13,
        "12 current ratings and rows, and bob's first look at c02"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let c02_bob: Vec<(String, String, String)> = rows
        .iter()
        .filter(|r| r[col("name")] == "c02" && r[col("reviewer")] == "bob")
        .map(|r| {
            (
                r[col("verdict")].clone(),
                r[col("notes")].clone(),
                r[col("rating_status")].clone(),
            )
        })
        .collect();
    assert_eq!(
        c02_bob,
        vec![
            ("not_real".into(), "second look".into(), "current".into()),
            ("real".into(), "first look".into(), "replaced".into()),
        ]
    );
    let replaced = rows
        .iter()
        .find(|r| r[col("rating_status")] == "replaced")
        .unwrap();
    assert!(!replaced[col("replaced_at")].is_empty());
}

#[sqlx::test]
async fn the_votable_reads_back_with_a_real_parser_to_the_csv_rows(pool: PgPool) {
    let s = survey(pool).await;
    for query in [
        "project=vast",
        "project=vast&ratings=history",
        "ratings=none",
        "project=vast&pos=188.7+-45.2&radius=7&m.snr.min=5",
    ] {
        let (header, rows) = csv_export(&s.app, query).await;
        let vot = votable_export(&s.app, query).await;
        assert_same_rows(&header, &rows, &vot);
    }
    let vot = votable_export(&s.app, "project=vast").await;
    let field = |name: &str| {
        vot["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(field("ra")["unit"], "deg");
    assert_eq!(field("ra")["datatype"], "double");
    assert_eq!(field("md")["datatype"], "double");
    assert_eq!(field("candidate_id")["datatype"], "long");
    assert!(
        vot["description"].as_str().unwrap().contains("VAST")
            || vot["description"].as_str().unwrap().contains("vast")
    );
    // The specials, read by astropy.
    let rows = vot["rows"].as_array().unwrap();
    let names: Vec<&str> = vot["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let col = |n: &str| names.iter().position(|x| *x == n).unwrap();
    let by_name: HashMap<&str, &serde_json::Value> = rows
        .iter()
        .map(|r| (r[col("name")].as_str().unwrap(), r))
        .collect();
    assert_eq!(by_name["c02"][col("md")], "nan");
    assert_eq!(by_name["c03"][col("md")], "inf");
    assert_eq!(by_name["c04"][col("md")], "-inf");
    // A missing value is an empty cell, NaN is written NaN (both read as
    // VOTable's floating-point null).
    assert_eq!(by_name["c06"][col("md")], "nan");
    assert!(matches!(
        by_name["c06"][col("verdict")].as_str(),
        None | Some("")
    ));
    let r = s.app.get("/candidates.vot?project=vast&name=c0").await;
    let xml = r.text().await.unwrap();
    for cell in ["<TD>NaN</TD>", "<TD>+Inf</TD>", "<TD>-Inf</TD>", "<TD/>"] {
        assert!(xml.contains(cell), "{cell}");
    }
    assert!(xml.contains("He said &quot;bright&quot;, then\nleft &lt;&amp;&gt; ok"));
    let notes: Vec<&str> = rows
        .iter()
        .filter_map(|r| r[col("notes")].as_str())
        .collect();
    assert!(notes.contains(&TRICKY_NOTES), "{notes:?}");
}

#[sqlx::test]
async fn exports_stream(pool: PgPool) {
    let s = survey(pool).await;
    // 20,000 more candidates, straight into the database.
    sqlx::query(
        "INSERT INTO candidates (project_id, observation_id, name, ra, dec, content_hash)
         SELECT o.project_id, o.id, 'bulk' || lpad(i::text, 6, '0'), (i % 3600) / 10.0, -30, 'x'
         FROM observations o CROSS JOIN generate_series(1, 20000) i WHERE o.external_id = 'SB2'",
    )
    .execute(&s.app.pool)
    .await
    .unwrap();
    for path in ["/candidates.csv", "/candidates.vot"] {
        let r = s
            .app
            .get(&format!("{path}?project=vast&ratings=none"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        // Streamed: no length known in advance.
        assert!(r.headers().get("content-length").is_none(), "{path}");
        let body = r.text().await.unwrap();
        let rows = body.matches("bulk").count();
        assert_eq!(rows, 20_000, "{path}");
        if path.ends_with(".vot") {
            assert!(body.trim_end().ends_with("</VOTABLE>"));
        }
    }
}

#[sqlx::test]
async fn the_light_curve_downloads_as_csv(pool: PgPool) {
    let s = survey(pool).await;
    let html = s
        .app
        .get_html(&format!("/candidates/{}/details", s.ids["c01"]))
        .await;
    assert_eq!(
        crate::helpers::select_attr(&html, "#lightcurve-csv", "href").unwrap(),
        format!("/candidates/{}/lightcurve.csv", s.ids["c01"])
    );
    let r = s
        .app
        .get(&format!("/candidates/{}/lightcurve.csv", s.ids["c01"]))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("c01-lightcurve.csv"));
    let body = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        vec!["time_utc", "mjd", "flux", "flux_err", "unit"]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            columns("2024-05-01T12:00:00Z,60431.50000000,1.5,0.1,mJy/beam"),
            columns("2024-05-01T12:10:00Z,60431.50694444,9.5,0.25,mJy/beam"),
        ]
    );
    // No light curve, or no candidate: a 404 that says which.
    let r = s
        .app
        .get(&format!("/candidates/{}/lightcurve.csv", s.ids["c02"]))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("light curve"));
    assert_eq!(
        s.app
            .get("/candidates/999999/lightcurve.csv")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// An export of a small project stays fast beside a big one. A connection
/// keeps its prepared statements, and after a few exports of the big
/// project PostgreSQL would switch the statement to a generic plan that
/// walks every candidate in id order; export connections plan each run.
#[sqlx::test]
async fn a_small_project_exports_without_walking_a_big_one(pool: PgPool) {
    sqlx::raw_sql(
        "INSERT INTO projects (slug, name) VALUES ('big', 'Big'), ('small', 'Small');
         INSERT INTO observations (project_id, external_id)
           SELECT id, 'O' || id FROM projects;
         INSERT INTO candidates (project_id, observation_id, name, ra, dec, content_hash)
           SELECT o.project_id, o.id, 'c' || g, g % 360, 0, ''
             FROM observations o, generate_series(1, 20000) g
            WHERE o.project_id = (SELECT id FROM projects WHERE slug = 'big');
         INSERT INTO candidates (project_id, observation_id, name, ra, dec, content_hash)
           SELECT o.project_id, o.id, 's' || g, 1, 1, ''
             FROM observations o, generate_series(1, 3) g
            WHERE o.project_id = (SELECT id FROM projects WHERE slug = 'small');
         ANALYZE;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM projects ORDER BY slug")
        .fetch_all(&pool)
        .await
        .unwrap();
    let (big, small) = (ids[0], ids[1]);
    let config = vetter::config::Config::for_tests("postgres://unused", "/tmp".into());
    let pools = vetter::db::Pools::derive(&pool, &config.limits);
    let mut conn = pools.exports.acquire().await.unwrap();
    // The export's shape: a project's candidates in id order, with joins.
    sqlx::raw_sql(
        "PREPARE export(bigint) AS
           SELECT c.id, p.slug, o.external_id, c.name FROM candidates c
             JOIN projects p ON p.id = c.project_id
             JOIN observations o ON o.id = c.observation_id
            WHERE c.project_id = $1 ORDER BY c.id",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    for _ in 0..6 {
        sqlx::query(&format!("EXECUTE export({big})"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE export({small})"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let removed: u64 = plan
        .iter()
        .filter_map(|l| l.trim().strip_prefix("Rows Removed by Filter: "))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(
        removed < 100,
        "the plan reads the big project:\n{}",
        plan.join("\n")
    );
}

//! Reference catalogues: loading from each format through the command line
//! (a bad file refused whole, the old catalogue kept), the project's choice
//! of catalogues and radius, matches and separations checked against values
//! computed here, matching at ingest and on reload, the table's counterpart
//! filter and sort, associations, and exports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use vetter::domain::Role;

use crate::helpers::{select_text, TestApp};
use crate::testdb;
use crate::upload_api::uploader;

fn vetter(args: &[&str], database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vetter"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "vetter-catalogue-{tag}-{}-{}",
            std::process::id(),
            vetter::random_hex(4)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, body: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The output of a command that must have succeeded.
fn loaded(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Great-circle separation in arcseconds (haversine), independent of q3c.
fn sep_arcsec(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (ra1, d1, ra2, d2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h =
        ((d2 - d1) / 2.0).sin().powi(2) + d1.cos() * d2.cos() * ((ra2 - ra1) / 2.0).sin().powi(2);
    2.0 * h.sqrt().asin().to_degrees() * 3600.0
}

async fn sources(pool: &PgPool, catalogue: &str) -> Vec<(String, f64, f64, Vec<Option<f64>>)> {
    sqlx::query_as(
        "SELECT s.name, s.ra, s.dec, s.vals FROM catalogue_sources s
           JOIN catalogues k ON k.id = s.catalogue_id WHERE k.name = $1 ORDER BY s.row_no",
    )
    .bind(catalogue)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn each_format_loads_and_a_bad_file_leaves_the_catalogue_as_it_was(pool: PgPool) {
    let url = testdb::url_of(&pool).await;
    let d = Dir::new("formats");
    let csv = d.file(
        "racs.csv",
        "# a RACS-like sample\nsource_id,ra [deg],dec [deg],total_flux [mJy]\n\
         RACS_0001,10.0,-30.0,12.5\nRACS_0002,10.01,-30.0,\n",
    );
    let out = loaded(vetter(&["catalogue", "load", "racs", text(&csv)], &url));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("2 rows loaded") && said.contains("total_flux"),
        "{said}"
    );
    assert_eq!(
        sources(&pool, "racs").await,
        vec![
            ("RACS_0001".into(), 10.0, -30.0, vec![Some(12.5)]),
            ("RACS_0002".into(), 10.01, -30.0, vec![None]),
        ]
    );

    let vot = d.file(
        "gleam.xml",
        r#"<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE><TABLE>
<FIELD name="GLEAM" datatype="char" arraysize="*" ucd="meta.id;meta.main"/>
<FIELD name="RAJ2000" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main"/>
<FIELD name="DEJ2000" datatype="double" unit="deg" ucd="pos.eq.dec;meta.main"/>
<FIELD name="Fpwide" datatype="float" unit="Jy"/>
<DATA><TABLEDATA><TR><TD>GLEAM J004000-300000</TD><TD>10.0</TD><TD>-30.0</TD><TD>1.25</TD></TR></TABLEDATA></DATA>
</TABLE></RESOURCE></VOTABLE>"#,
    );
    loaded(vetter(&["catalogue", "load", "gleam", text(&vot)], &url));
    assert_eq!(
        sources(&pool, "gleam").await,
        vec![("GLEAM J004000-300000".into(), 10.0, -30.0, vec![Some(1.25)])]
    );

    let fits = d.0.join("gaia.fits");
    {
        use fitsio::tables::{ColumnDataType, ColumnDescription};
        let mut f = fitsio::FitsFile::create(&fits).open().unwrap();
        let col = |n: &str, t| ColumnDescription::new(n).with_type(t).create().unwrap();
        let hdu = f
            .create_table(
                "GAIA",
                &[
                    col("source_id", ColumnDataType::LongLong),
                    col("ra", ColumnDataType::Double),
                    col("dec", ColumnDataType::Double),
                    col("phot_g_mean_mag", ColumnDataType::Double),
                ],
            )
            .unwrap();
        hdu.write_col(&mut f, "source_id", &[4_295_806_720i64])
            .unwrap();
        hdu.write_col(&mut f, "ra", &[10.0005f64]).unwrap();
        hdu.write_col(&mut f, "dec", &[-30.0f64]).unwrap();
        hdu.write_col(&mut f, "phot_g_mean_mag", &[11.5f64])
            .unwrap();
    }
    loaded(vetter(&["catalogue", "load", "gaia", text(&fits)], &url));
    assert_eq!(
        sources(&pool, "gaia").await,
        vec![("4295806720".into(), 10.0005, -30.0, vec![Some(11.5)])]
    );

    // A reload whose third data row is bad: refused with its line, and the
    // catalogue is still the first one, whole.
    let bad = d.file(
        "racs2.csv",
        "source_id,ra,dec,total_flux\nRACS_0009,11,-31,1\nRACS_0010,11,-31,2\nRACS_0011,11,-95,3\n",
    );
    let out = vetter(&["catalogue", "load", "racs", text(&bad)], &url);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4: dec:"), "{err}");
    assert_eq!(sources(&pool, "racs").await.len(), 2);
    assert_eq!(sources(&pool, "racs").await[0].0, "RACS_0001");

    // A file whose name column cannot be told is refused before the
    // database is touched; a bad name too.
    let nameless = d.file("x.csv", "a,ra,dec\n1,2,3\n");
    let out = vetter(&["catalogue", "load", "x", text(&nameless)], &url);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name"));
    let out = vetter(&["catalogue", "load", "Bad Name", text(&csv)], &url);
    assert_eq!(out.status.code(), Some(2));

    let out = vetter(&["catalogue", "list"], &url);
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in ["gaia", "gleam", "racs"] {
        assert!(listed.contains(name), "{listed}");
    }
    let out = vetter(&["catalogue", "remove", "gleam"], &url);
    assert!(out.status.success());
    assert!(sources(&pool, "gleam").await.is_empty());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM catalogue_sources")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 3);
    let out = vetter(&["catalogue", "remove", "gleam"], &url);
    assert!(!out.status.success());
}

/// Candidates of project `p` at known positions: c1 at (10, −30), c2 at
/// (10.002, −30), c3 far away at (200, 60), c4 just east of RA 0 at the
/// pole-ward (0.0001, 89.999).
async fn survey(app: &TestApp) -> BTreeMap<String, i64> {
    let api = uploader(app).await;
    let (s, body) = api
        .put("/projects/p", json!({"name": "P", "metrics": []}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = api.put("/projects/p/observations/o1", json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    let cands = json!({"candidates": [
        {"name": "c1", "ra": 10.0, "dec": -30.0},
        {"name": "c2", "ra": 10.002, "dec": -30.0},
        {"name": "c3", "ra": 200.0, "dec": 60.0},
        {"name": "c4", "ra": 0.0001, "dec": 89.999},
    ]});
    let (s, body) = api
        .post("/projects/p/observations/o1/candidates", cands)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn load(pool: &PgPool, name: &str, rows: &[(&str, f64, f64, f64)]) {
    use vetter::catalogue::table::{KeptColumn, Source};
    use vetter::db::catalogues::{load_all, NewCatalogue};
    let n = vetter::domain::names::CatalogueName::parse(name).unwrap();
    let columns = vec![KeptColumn {
        name: "flux".into(),
        unit: "mJy".into(),
    }];
    let sources = rows
        .iter()
        .map(|(s, ra, dec, f)| Source {
            name: s.to_string(),
            pos: vetter::domain::SkyPos::new(*ra, *dec).unwrap(),
            vals: vec![Some(*f)],
        })
        .collect();
    let new = NewCatalogue {
        name: &n,
        description: "test",
        origin: "test",
        columns: &columns,
    };
    load_all(pool, &new, sources).await.unwrap();
}

/// (candidate name, source name, separation) of every stored match.
async fn matches(pool: &PgPool) -> Vec<(String, String, f64)> {
    sqlx::query_as(
        "SELECT c.name, s.name, m.separation_arcsec FROM catalogue_matches m
           JOIN candidates c ON c.id = m.candidate_id
           JOIN catalogue_sources s ON s.catalogue_id = m.catalogue_id AND s.row_no = m.row_no
          ORDER BY c.name, m.separation_arcsec",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn catalogue_id(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM catalogues WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The catalogue sources used below: a is 1.8″ east of c1 (at Dec −30,
/// 0.0005° of RA), b 3.6″ north of c1, z across RA 0 from c4 (near the
/// pole: 0.0002° of RA there is a fraction of an arcsecond).
const RACS: &[(&str, f64, f64, f64)] = &[
    ("a", 10.0005, -30.0, 5.0),
    ("b", 10.0, -29.999, 7.0),
    ("far", 100.0, 0.0, 1.0),
    ("z", 359.9999, 89.999, 2.0),
];

#[sqlx::test]
async fn matches_follow_the_projects_choice_ingest_and_reloads(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = survey(&app).await;
    load(&pool, "racs", RACS).await;
    assert!(matches(&pool).await.is_empty(), "nothing chosen yet");

    let admin = app.create_user("boss", Role::Admin).await;
    app.login_as(&admin).await;
    let cat = catalogue_id(&pool, "racs").await;
    let (use_f, radius_f) = (format!("use.{cat}"), format!("radius.{cat}"));
    // A bad radius is refused, naming it, and changes nothing.
    let r = app
        .post_form(
            "/admin/projects/p/catalogues",
            &[(&use_f, "on"), (&radius_f, "0")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("The radius for racs"));
    assert!(matches(&pool).await.is_empty());

    let r = app
        .post_form(
            "/admin/projects/p/catalogues",
            &[(&use_f, "on"), (&radius_f, "10")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let got = matches(&pool).await;
    let pos = |n: &str| RACS.iter().find(|s| s.0 == n).map(|s| (s.1, s.2)).unwrap();
    let want = [
        ("c1", "a", sep_arcsec((10.0, -30.0), pos("a"))),
        ("c1", "b", sep_arcsec((10.0, -30.0), pos("b"))),
        ("c2", "a", sep_arcsec((10.002, -30.0), pos("a"))),
        ("c2", "b", sep_arcsec((10.002, -30.0), pos("b"))),
        ("c4", "z", sep_arcsec((0.0001, 89.999), pos("z"))),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((c, s, sep), (wc, ws, wsep)) in got.iter().zip(want) {
        assert_eq!((c.as_str(), s.as_str()), (wc, ws));
        assert!((sep - wsep).abs() < 1e-3, "{c}-{s}: {sep} against {wsep}");
    }
    // c2 is 4.7″ from a and 7.2″ from b: with a 4″ radius only c1's and
    // c4's remain.
    let r = app
        .post_form(
            "/admin/projects/p/catalogues",
            &[(&use_f, "on"), (&radius_f, "4")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let names: Vec<(String, String)> = matches(&pool)
        .await
        .into_iter()
        .map(|(c, s, _)| (c, s))
        .collect();
    assert_eq!(
        names,
        [("c1", "a"), ("c1", "b"), ("c4", "z")].map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // A new candidate is matched as it arrives.
    let api = crate::upload_api::Api {
        app: &app,
        token: crate::upload_api::token_for(&app, &admin).await,
    };
    let (s, _) = api
        .post(
            "/projects/p/observations/o1/candidates",
            json!({"candidates": [{"name": "c5", "ra": 100.0, "dec": 0.0004}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(matches(&pool)
        .await
        .iter()
        .any(|m| m.0 == "c5" && m.1 == "far"));

    // A reload that moves "a" away rematches: c1 keeps only b.
    let moved: Vec<_> = RACS
        .iter()
        .map(|s| {
            if s.0 == "a" {
                ("a", 50.0, 0.0, 5.0)
            } else {
                *s
            }
        })
        .collect();
    load(&pool, "racs", &moved).await;
    let after: Vec<String> = matches(&pool)
        .await
        .into_iter()
        .map(|(c, s, _)| format!("{c}-{s}"))
        .collect();
    assert_eq!(after, ["c1-b", "c4-z", "c5-far"]);
    // The nearest-match rows agree.
    let nearest: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT candidate_id, separation_arcsec FROM catalogue_nearest ORDER BY candidate_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(nearest.len(), 3);
    assert_eq!(nearest[0].0, ids["c1"]);
    assert!((nearest[0].1 - 3.6).abs() < 1e-3);

    // Unchoosing the catalogue removes the project's matches.
    let r = app.post_form("/admin/projects/p/catalogues", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(matches(&pool).await.is_empty());
}

/// The names in the table, in order.
async fn table(app: &TestApp, query: &str) -> Vec<String> {
    let html = app.get_html(&format!("/candidates?{query}")).await;
    let sel = scraper::Selector::parse("#results tbody tr td:first-child a").unwrap();
    html.select(&sel)
        .map(|e| e.text().collect::<String>())
        .collect()
}

#[sqlx::test]
async fn the_table_filters_and_sorts_on_the_nearest_counterpart(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    survey(&app).await;
    load(&pool, "racs", RACS).await;
    let admin = app.create_user("boss", Role::Admin).await;
    app.login_as(&admin).await;
    let cat = catalogue_id(&pool, "racs").await;
    let r = app
        .post_form(
            "/admin/projects/p/catalogues",
            &[
                (&format!("use.{cat}"), "on"),
                (&format!("radius.{cat}"), "10"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Nearest: c1 1.56″ (a), c2 4.68″ (a), c4 0.00001″ (z); c3 none.
    assert_eq!(
        table(&app, "project=p&match=racs").await,
        ["c1", "c2", "c4"]
    );
    assert_eq!(
        table(&app, "project=p&match=racs&match_state=none").await,
        ["c3"]
    );
    assert_eq!(
        table(&app, "project=p&match=racs&match_state=none&match_sep=3").await,
        ["c2", "c3"]
    );
    assert_eq!(
        table(&app, "project=p&match=racs&sort=match").await,
        ["c4", "c1", "c2"]
    );
    assert_eq!(
        table(
            &app,
            "project=p&match=racs&match_state=none&match_sep=3&sort=match&dir=desc"
        )
        .await,
        ["c2", "c3"],
        "candidates without a counterpart come last in both directions"
    );
    let html = app.get_html("/candidates?project=p&match=racs").await;
    let cell = select_text(&html, "#results tbody tr td.nearest").unwrap();
    assert!(
        cell.starts_with("a, 1.56″") || cell.starts_with("a, 1.5"),
        "{cell}"
    );
    // Unknown catalogue and bad separations are named problems.
    let html = app.get_html("/candidates?project=p&match=nope").await;
    assert!(html.html().contains("there is no catalogue"));
    let html = app
        .get_html("/candidates?project=p&match=racs&match_sep=-1")
        .await;
    assert!(html
        .html()
        .contains("the separation is a number of arcseconds"));

    // Exports carry the nearest match per chosen catalogue.
    let csv = app
        .get("/candidates.csv?project=p&ratings=none")
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |h: &str| {
        head.iter()
            .position(|x| *x == h)
            .unwrap_or_else(|| panic!("{h} in {head:?}"))
    };
    let (name_i, m_i, s_i) = (at("name"), at("match_racs"), at("match_racs_sep"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let c1 = rows.iter().find(|r| r[name_i] == "c1").unwrap();
    assert_eq!(c1[m_i], "a");
    assert!(
        (c1[s_i].parse::<f64>().unwrap() - sep_arcsec((10.0, -30.0), (10.0005, -30.0))).abs()
            < 1e-3
    );
    let c3 = rows.iter().find(|r| r[name_i] == "c3").unwrap();
    assert_eq!((c3[m_i], c3[s_i]), ("", ""));
}

#[sqlx::test]
async fn a_candidate_is_associated_with_a_known_source_by_a_reviewer(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = survey(&app).await;
    load(&pool, "racs", RACS).await;
    let rev = app.create_user("rita", Role::Reviewer).await;
    app.login_as(&rev).await;
    let c1 = ids["c1"];

    // Found by the start of its name, or by position.
    let r = app
        .get(&format!("/candidates/{c1}/association/search?q=B"))
        .await;
    let found = r.text().await.unwrap();
    assert!(found.contains(">b<"), "{found}");
    let r = app
        .get(&format!(
            "/candidates/{c1}/association/search?q=10.0005%20-30.0"
        ))
        .await;
    assert!(r.text().await.unwrap().contains(">a<"));
    let r = app
        .get(&format!("/candidates/{c1}/association/search?q=nothing"))
        .await;
    assert!(r.text().await.unwrap().contains("No catalogue source"));

    let cat = catalogue_id(&pool, "racs").await;
    let path = format!("/candidates/{c1}/association");
    // A source that does not exist is refused; nothing is stored.
    let r = app
        .post_form(&path, &[("catalogue", &cat.to_string()), ("row", "99")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app.post_form(&path, &[("row", "1")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM candidate_associations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    let r = app
        .post_form(&path, &[("catalogue", &cat.to_string()), ("row", "2")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (source, by): (String, i64) = sqlx::query_as(
        "SELECT source_name, associated_by FROM candidate_associations WHERE candidate_id = $1",
    )
    .bind(c1)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((source.as_str(), by), ("b", rev.id.0));
    let panel = app.get_html(&format!("/candidates/{c1}/nearby")).await;
    let assoc = select_text(&panel, "form.association").unwrap();
    assert!(assoc.contains("b") && assoc.contains("rita"), "{assoc}");
    // Shown in the table and exported.
    let html = app.get_html("/candidates?project=p").await;
    assert_eq!(
        select_text(&html, "#results td.known").as_deref(),
        Some("b")
    );
    let csv = app
        .get("/candidates.csv?project=p&ratings=none")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains("known_source,known_catalogue"));
    assert!(
        csv.lines()
            .any(|l| l.contains(",c1,") && l.contains(",b,racs")),
        "{csv}"
    );

    // The association outlives a reload of its catalogue, then is removed.
    load(&pool, "racs", &RACS[..2]).await;
    let panel = app.get_html(&format!("/candidates/{c1}/nearby")).await;
    assert!(select_text(&panel, "form.association").is_some());
    let r = app.post_form(&path, &[("remove", "1")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let panel = app.get_html(&format!("/candidates/{c1}/nearby")).await;
    assert!(select_text(&panel, "form.association").is_none());
}

#[sqlx::test]
async fn the_panel_lists_stored_matches_first_with_their_values(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let ids = survey(&app).await;
    load(&pool, "racs", RACS).await;
    let admin = app.create_user("boss", Role::Admin).await;
    app.login_as(&admin).await;
    let cat = catalogue_id(&pool, "racs").await;
    app.post_form(
        "/admin/projects/p/catalogues",
        &[
            (&format!("use.{cat}"), "on"),
            (&format!("radius.{cat}"), "2"),
        ],
    )
    .await;
    let panel = app
        .get_html(&format!("/candidates/{}/nearby", ids["c1"]))
        .await;
    let sel = scraper::Selector::parse("table.nearby tr").unwrap();
    let rows: Vec<String> = panel
        .select(&sel)
        .map(|r| r.text().collect::<String>())
        .collect();
    // a (1.56″, matched within 2″), then b (3.6″, only within the panel's
    // 60″), then c2 the candidate (6.9″).
    assert!(
        rows[0].contains("★") && rows[0].contains("a") && rows[0].contains("flux 5.000 mJy"),
        "{rows:?}"
    );
    assert!(!rows[1].contains("★") && rows[1].contains("b"), "{rows:?}");
    assert!(
        rows[2].contains("c2") && rows[2].contains("candidate in P"),
        "{rows:?}"
    );
    assert!(panel.html().contains("racs within 2″"));
}

/// A stand-in for SIMBAD's TAP service on a local port: answers every
/// request with `body` after `delay`, counting requests and keeping the
/// last request line.
async fn fake_simbad(
    body: &'static str,
    delay: std::time::Duration,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/tap/sync", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (c, l) = (count.clone(), last.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (c, l) = (c.clone(), l.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&got);
                *l.lock().unwrap() = text.lines().next().unwrap_or_default().to_string();
                tokio::time::sleep(delay).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, count, last)
}

#[sqlx::test]
async fn simbad_is_asked_after_the_page_once_per_cone_and_a_silent_one_times_out(pool: PgPool) {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    let (url, count, last) = fake_simbad(
        "main_id,otype,dist\n\"V* XY Sco\",RotV*,0.0005\n\"NVSS J004000-300000\",Radio,0.01\n",
        Duration::ZERO,
    )
    .await;
    let app = TestApp::spawn_with(pool.clone(), |c| c.simbad_tap_url = Some(url)).await;
    let ids = survey(&app).await;
    let rev = app.create_user("rita", Role::Reviewer).await;
    app.login_as(&rev).await;
    let c1 = ids["c1"];
    // The panel only says where to ask; SIMBAD is not asked while drawing it.
    let panel = app
        .get(&format!("/candidates/{c1}/nearby"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        panel.contains(&format!("/candidates/{c1}/simbad?radius=60")),
        "{panel}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 0);
    let part = app
        .get(&format!("/candidates/{c1}/simbad?radius=60"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        part.contains("SIMBAD: 2 within 60″, nearest V* XY Sco (RotV*, 1.80″)"),
        "{part}"
    );
    assert!(
        last.lock().unwrap().contains("CIRCLE"),
        "{}",
        last.lock().unwrap()
    );
    // The same cone again comes from the cache.
    app.get(&format!("/candidates/{c1}/simbad?radius=60")).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    drop(app);

    // A SIMBAD that does not answer: the part says so after the time-out.
    let (url, _, _) = fake_simbad("", Duration::from_secs(30)).await;
    let app = TestApp::spawn_with(pool.clone(), |c| c.simbad_tap_url = Some(url)).await;
    app.login_as(&rev).await;
    let started = std::time::Instant::now();
    let part = app
        .get(&format!("/candidates/{c1}/simbad"))
        .await
        .text()
        .await
        .unwrap();
    assert!(part.contains("SIMBAD did not answer within 4 s"), "{part}");
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(app);

    // Off by default: nothing on the panel, and the part is not there.
    let app = TestApp::spawn(pool.clone()).await;
    app.login_as(&rev).await;
    let panel = app
        .get(&format!("/candidates/{c1}/nearby"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!panel.contains("id=\"simbad\""));
    assert_eq!(
        app.get(&format!("/candidates/{c1}/simbad")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn an_observation_attribute_is_a_scope_of_the_table_and_the_queue(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let api = uploader(&app).await;
    let (s, _) = api
        .put("/projects/p", json!({"name": "P", "metrics": []}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for (obs, band, field) in [
        ("o88", "88", "A"),
        ("o216", "216", "A"),
        ("o154", "154", "B"),
    ] {
        let (s, b) = api
            .put(
                &format!("/projects/p/observations/{obs}"),
                json!({"metadata": {"band": band, "field": field}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, _) = api
            .post(
                &format!("/projects/p/observations/{obs}/candidates"),
                json!({"candidates": [{"name": format!("x{band}"), "ra": 1.0, "dec": 2.0}]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let rev = app.create_user("rita", Role::Reviewer).await;
    app.login_as(&rev).await;
    // "Exclude 88 MHz", and "only field A".
    assert_eq!(
        table(&app, "project=p&obs_attr=band&obs_value=88&obs_not=1").await,
        ["x154", "x216"]
    );
    assert_eq!(
        table(&app, "project=p&obs_attr=field&obs_value=A").await,
        ["x216", "x88"]
    );
    let html = app.get_html("/candidates?project=p&obs_attr=band").await;
    assert!(html.html().contains("give the value of band"));
    // The attributes are offered as the form is filled in.
    let html = app.get_html("/candidates?project=p").await;
    assert!(html.html().contains("<option value=\"band\">"));

    // The same scope for the queue: "rate these" on the table's filter.
    let r = app
        .post_form(
            "/queue",
            &[
                ("project", "p"),
                ("order", "name"),
                ("mode", "unrated_by_me"),
                ("filter", "project=p&obs_attr=band&obs_value=88&obs_not=1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app.get("/next").await;
    let at = crate::helpers::location(&r);
    let id: i64 = at.rsplit('/').next().unwrap().parse().unwrap();
    let name: String = sqlx::query_scalar("SELECT name FROM candidates WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "x154", "the queue skips band 88 and starts by name");
}

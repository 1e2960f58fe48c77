//! Loading the ATNF pulsar catalogue into the `pulsars` table, and the cone
//! search the candidate page uses.

use std::process::{Command, Output};

use sqlx::PgPool;
use vetter::catalogue::psrcat;
use vetter::db::pulsars::{self, LoadSummary};
use vetter::domain::frames::angular_separation_deg;
use vetter::domain::sexagesimal::parse_position;
use vetter::domain::SkyPos;

const SAMPLE: &str = include_str!("../fixtures/psrcat_sample.db");
const SAMPLE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/psrcat_sample.db"
);

async fn load(pool: &PgPool, text: &str) -> LoadSummary {
    let (found, _) = psrcat::parse(text);
    pulsars::upsert_all(pool, &found).await.unwrap()
}

fn summary(inserted: u64, updated: u64, unchanged: u64, removed: u64) -> LoadSummary {
    LoadSummary {
        inserted,
        updated,
        unchanged,
        removed,
    }
}

fn pos(text: &str) -> SkyPos {
    parse_position(text).unwrap()
}

async fn names(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM pulsars ORDER BY name")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The sample without one record, found by its PSRJ line.
fn without_record(text: &str, psrj: &str) -> String {
    let start = text
        .find(&format!("PSRJ     {psrj} "))
        .expect("record present");
    let end = start + text[start..].find("\n@-").expect("a separator follows");
    let end = end + 1 + text[end + 1..].find('\n').unwrap() + 1;
    format!("{}{}", &text[..start], &text[end..])
}

#[sqlx::test]
async fn loading_the_sample_stores_each_pulsar_at_its_position(pool: PgPool) {
    assert_eq!(load(&pool, SAMPLE).await, summary(10, 0, 0, 0));
    let stored = names(&pool).await;
    assert_eq!(stored.len(), 10);
    assert!(
        !stored.contains(&"J1819-1458".to_string()),
        "no position: skipped"
    );

    let vela = pulsars::by_name(&pool, "J0835-4510")
        .await
        .unwrap()
        .unwrap();
    let want = pos("08:35:20.61149 -45:10:34.8751");
    assert!(angular_separation_deg(vela.pos, want) < 1e-9);
    assert_eq!(vela.period_s, Some(0.089_328_385_024));
    assert_eq!((vela.dm, vela.s400_mjy), (Some(67.97), Some(5000.0)));

    // Only ELONG/ELAT in the file: converted from ecliptic, and lands where
    // psrcat puts it in equatorial coordinates.
    let j0030 = pulsars::by_name(&pool, "J0030+0451")
        .await
        .unwrap()
        .unwrap();
    let want = pos("00:30:27.428 +04:51:39.72");
    assert!(
        angular_separation_deg(j0030.pos, want) < 1e-4,
        "{:?}",
        j0030.pos
    );
    assert!((j0030.period_s.unwrap() - 1.0 / 205.530_699_125_36).abs() < 1e-15);

    // DMEPOCH and DM1 follow DM in the Crab's record and leave it alone.
    let crab = pulsars::by_name(&pool, "J0534+2200")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(crab.dm, Some(56.771_18));

    // No DM, no S400, period from F0.
    let j0002 = pulsars::by_name(&pool, "J0002+6216")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((j0002.dm, j0002.s400_mjy), (None, None));
    assert!((j0002.period_s.unwrap() - 1.0 / 8.668_247_827_4).abs() < 1e-15);
}

#[sqlx::test]
async fn reloading_the_same_catalogue_changes_nothing(pool: PgPool) {
    load(&pool, SAMPLE).await;
    let before: Vec<(String, time::OffsetDateTime)> =
        sqlx::query_as("SELECT name, updated_at FROM pulsars ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(load(&pool, SAMPLE).await, summary(0, 0, 10, 0));
    let after: Vec<(String, time::OffsetDateTime)> =
        sqlx::query_as("SELECT name, updated_at FROM pulsars ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(before, after);
}

#[sqlx::test]
async fn a_changed_catalogue_updates_adds_and_removes(pool: PgPool) {
    load(&pool, SAMPLE).await;
    let ids_before: Vec<(String, i64)> = sqlx::query_as("SELECT name, id FROM pulsars")
        .fetch_all(&pool)
        .await
        .unwrap();
    // Set the clock of the old rows back, to see which rows a load touches.
    sqlx::query("UPDATE pulsars SET updated_at = now() - interval '1 day'")
        .execute(&pool)
        .await
        .unwrap();

    let changed = without_record(SAMPLE, "J0033+57").replace(
        "DM       67.97                    1    smp08",
        "DM       67.99                    1    smp08",
    );
    assert!(changed.contains("67.99") && !changed.contains("J0033+57"));
    let changed = format!(
        "{changed}@-----\nPSRB B1937+21\nPSRJ J1939+2134\nRAJ 19:39:38.561224\n\
         DECJ +21:34:59.12570\nP0 0.0015578064924\nDM 71.02\n"
    );
    assert_eq!(load(&pool, &changed).await, summary(1, 1, 8, 1));

    let stored = names(&pool).await;
    assert!(!stored.contains(&"J0033+57".to_string()));
    assert!(stored.contains(&"J1939+2134".to_string()));
    let vela = pulsars::by_name(&pool, "J0835-4510")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vela.dm, Some(67.99));
    let fresh: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pulsars WHERE updated_at > now() - interval '1 hour' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(fresh, ["J0835-4510", "J1939+2134"]);
    // Kept rows keep their ids (so links to them survive a reload).
    for (name, id) in ids_before {
        if let Some(row) = pulsars::by_name(&pool, &name).await.unwrap() {
            assert_eq!(row.id.0, id, "{name}");
        }
    }
}

#[sqlx::test]
async fn an_empty_or_repetitive_catalogue_is_refused_and_the_table_kept(pool: PgPool) {
    load(&pool, SAMPLE).await;
    let err = pulsars::upsert_all(&pool, &[]).await.unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let (mut found, _) = psrcat::parse(SAMPLE);
    found.push(found[0].clone());
    let err = pulsars::upsert_all(&pool, &found).await.unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    assert_eq!(pulsars::count(&pool).await.unwrap(), 10);
}

#[sqlx::test]
async fn near_lists_the_pulsars_in_a_cone_nearest_first(pool: PgPool) {
    load(&pool, SAMPLE).await;
    // The centre of 47 Tucanae: two of its pulsars lie within a minute or so.
    let centre = pos("00:24:05.67 -72:04:52.62");
    let found = pulsars::near(&pool, centre, 0.1).await.unwrap();
    let got: Vec<&str> = found.iter().map(|(p, _)| p.name.as_str()).collect();
    assert_eq!(got, ["J0024-7204D", "J0024-7204C"]);
    for (p, sep) in &found {
        let want = angular_separation_deg(centre, p.pos);
        assert!((sep - want).abs() < 1e-9, "{}: {sep} vs {want}", p.name);
    }
    let arcsec: Vec<f64> = found.iter().map(|(_, s)| s * 3600.0).collect();
    assert!((arcsec[0] - 38.9).abs() < 0.5, "{arcsec:?}");
    assert!((arcsec[1] - 73.8).abs() < 0.5, "{arcsec:?}");

    // A smaller cone holds only the nearer one.
    let found = pulsars::near(&pool, centre, 50.0 / 3600.0).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0.name, "J0024-7204D");

    // The ecliptic-only pulsar is found at its equatorial position.
    let found = pulsars::near(&pool, pos("00:30:27.43 +04:51:39.7"), 1.0 / 60.0)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0.name, "J0030+0451");
    assert!(found[0].1 < 1e-4);

    // Nothing near an empty patch, or for a nonsense radius.
    assert!(pulsars::near(&pool, pos("12 -10"), 1.0)
        .await
        .unwrap()
        .is_empty());
    assert!(pulsars::near(&pool, centre, -1.0).await.unwrap().is_empty());
    assert!(pulsars::near(&pool, centre, f64::NAN)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        pulsars::near(&pool, centre, 1000.0).await.unwrap().len(),
        10
    );
}

fn vetter(args: &[&str], database_url: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vetter"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir());
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

use crate::testdb::url_of;

#[sqlx::test]
async fn the_load_command_reports_what_changed_and_what_was_skipped(pool: PgPool) {
    let url = url_of(&pool).await;
    let run = {
        let url = url.clone();
        move || vetter(&["pulsars", "load", SAMPLE_PATH], Some(&url))
    };
    let o = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "pulsars: 10 inserted, 0 updated, 0 unchanged, 0 removed; 1 record skipped\n\
         catalogue psrcat: 10 rows, 0 matches in 0 projects\n"
    );
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("psrcat_sample.db: skipped line ")
            && err.contains("(J1819-1458): no position"),
        "{err}"
    );
    assert_eq!(pulsars::count(&pool).await.unwrap(), 10);
    // The same pulsars, as a catalogue like any other.
    let (rows, columns): (i64, serde_json::Value) =
        sqlx::query_as("SELECT row_count, columns FROM catalogues WHERE name = 'psrcat'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 10);
    assert_eq!(columns[0]["name"], "P0");

    let again = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(again.status.success());
    assert!(
        text(&again.stdout).starts_with("pulsars: 0 inserted, 0 updated, 10 unchanged, 0 removed;")
    );
}

#[test]
fn the_pulsars_command_explains_its_usage() {
    let help = vetter(&["pulsars", "help"], None);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("Usage: vetter pulsars load FILE"));

    for args in [
        &["pulsars"][..],
        &["pulsars", "load"],
        &["pulsars", "load", "a", "b"],
        &["pulsars", "frobnicate"],
    ] {
        let o = vetter(args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains("Usage: vetter pulsars load FILE"),
            "{args:?}"
        );
    }

    // A file that cannot be read fails, after the settings are checked.
    let o = vetter(
        &["pulsars", "load", "/nonexistent/psrcat.db"],
        Some("postgres://u@127.0.0.1:1/x"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("reading /nonexistent/psrcat.db"),
        "{}",
        text(&o.stderr)
    );

    // A file with no pulsars in it changes nothing and says so (the database
    // is never reached).
    let empty = std::env::temp_dir().join(format!("vetter-empty-psrcat-{}.db", std::process::id()));
    std::fs::write(&empty, "#CATALOGUE empty\n@-----\nPSRJ J1\nP0 1\n").unwrap();
    let o = vetter(
        &["pulsars", "load", empty.to_str().unwrap()],
        Some("postgres://u@127.0.0.1:1/x"),
    );
    std::fs::remove_file(&empty).ok();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("no pulsars found (1 record skipped)"), "{err}");
    assert!(err.contains("unchanged"), "{err}");
}

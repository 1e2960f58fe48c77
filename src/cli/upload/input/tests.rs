use std::path::{Path, PathBuf};

use super::*;

/// A scratch folder, removed at the end of the test.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vetter-upload-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn csv(dir: &Path, text: &str) -> Vec<Result<Candidate, Rejection>> {
    parse_candidates_csv(dir, text).unwrap()
}

fn ok(r: &Result<Candidate, Rejection>) -> &Candidate {
    r.as_ref().unwrap_or_else(|e| panic!("rejected: {e}"))
}

fn reason(r: &Result<Candidate, Rejection>) -> &str {
    &r.as_ref().expect_err("should be rejected").reason
}

#[test]
fn mjd_becomes_rfc3339() {
    assert_eq!(mjd_to_rfc3339(51544.5).unwrap(), "2000-01-01T12:00:00Z");
    assert_eq!(mjd_to_rfc3339(60000.0).unwrap(), "2023-02-25T00:00:00Z");
    assert_eq!(mjd_to_rfc3339(40587.0).unwrap(), "1970-01-01T00:00:00Z");
    assert_eq!(mjd_to_rfc3339(0.0).unwrap(), "1858-11-17T00:00:00Z");
    // Rounded to the microsecond: no float noise in the last digits.
    assert_eq!(mjd_to_rfc3339(60000.25).unwrap(), "2023-02-25T06:00:00Z");
    assert_eq!(
        mjd_to_rfc3339(60000.0 + 1.5 / 86_400.0).unwrap(),
        "2023-02-25T00:00:01.5Z"
    );
    // A fraction that rounds up to a whole day lands on the next day.
    assert_eq!(
        mjd_to_rfc3339(1_000.999_999_999_999_9).unwrap(),
        "1861-08-14T00:00:00Z"
    );
    for bad in [f64::NAN, f64::INFINITY, -1.0, 2_460_000.5] {
        assert!(mjd_to_rfc3339(bad).is_err(), "{bad}");
    }
    assert!(mjd_to_rfc3339(2_460_000.5)
        .unwrap_err()
        .contains("Julian Date"));
}

#[test]
fn times_are_rfc3339_with_a_zone_or_mjd() {
    assert_eq!(api_time("51544.5").unwrap(), "2000-01-01T12:00:00Z");
    assert_eq!(
        api_time("2024-05-01T22:34:56+10:00").unwrap(),
        "2024-05-01T12:34:56Z",
        "normalised to UTC"
    );
    assert_eq!(
        api_time("2024-05-01T12:34:56.25Z").unwrap(),
        "2024-05-01T12:34:56.25Z"
    );
    let e = api_time("2024-05-01T12:34:56").unwrap_err();
    assert!(e.contains("zone") && e.contains("MJD"), "{e}");
    assert!(api_time("yesterday").is_err());
}

#[test]
fn metric_cells_take_numbers_and_the_special_values() {
    assert_eq!(parse_metric_cell("12.5").unwrap(), Some(Metric(12.5)));
    assert_eq!(parse_metric_cell("-3e2").unwrap(), Some(Metric(-300.0)));
    assert_eq!(parse_metric_cell("").unwrap(), None);
    for s in ["NaN", "nan", "NAN"] {
        assert!(parse_metric_cell(s).unwrap().unwrap().0.is_nan(), "{s}");
    }
    for s in ["inf", "+inf", "Inf", "Infinity", "infinity"] {
        assert_eq!(
            parse_metric_cell(s).unwrap(),
            Some(Metric(f64::INFINITY)),
            "{s}"
        );
    }
    for s in ["-inf", "-Infinity"] {
        assert_eq!(
            parse_metric_cell(s).unwrap(),
            Some(Metric(f64::NEG_INFINITY)),
            "{s}"
        );
    }
    assert!(parse_metric_cell("1e999")
        .unwrap_err()
        .contains("out of range"));
    assert!(parse_metric_cell("12,5").is_err());
    assert!(parse_metric_cell("n/a").is_err());
}

#[test]
fn metrics_travel_as_json_numbers_or_the_api_strings() {
    let v = serde_json::to_value([
        Metric(1.5),
        Metric(f64::NAN),
        Metric(f64::INFINITY),
        Metric(f64::NEG_INFINITY),
    ])
    .unwrap();
    assert_eq!(v, serde_json::json!([1.5, "NaN", "Infinity", "-Infinity"]));
}

#[test]
fn every_column_kind_is_read() {
    let d = Scratch::new("cols");
    d.write("c/J1.png", b"\x89PNG").write(
        "lc/J1.csv",
        "time,flux,err\n60000,1.5,0.1\n2023-02-25T00:00:10Z,2.5,0.2\n",
    );
    let rows = csv(
        &d.0,
        "observation,name,beam,ra,dec,metric:chi,metric:peak,metric:md,metric:gone,\
         pos:deep:ra,pos:deep:dec,attr:deep_name,attr:empty,file:deep_cutout,file:cube,\
         light_curve,light_curve_unit\n\
         SB1,J1,beam00,188.7,-45.2,12.5,NaN,-inf,,188.70001,-45.20002,VAST J1,,c/J1.png,,lc/J1.csv,mJy/beam\n",
    );
    assert_eq!(rows.len(), 1);
    let c = ok(&rows[0]);
    assert_eq!(c.row, 2, "the line in the file; the header is row 1");
    assert_eq!(c.observation, "SB1");
    let v = serde_json::to_value(&c.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "name": "J1", "beam": "beam00", "ra": 188.7, "dec": -45.2,
            "positions": {"deep": {"ra": 188.70001, "dec": -45.20002}},
            "metrics": {"chi": 12.5, "peak": "NaN", "md": "-Infinity", "gone": null},
            "attributes": {"deep_name": "VAST J1"},
            "light_curve": {"unit": "mJy/beam", "points": [
                {"time": "2023-02-25T00:00:00Z", "flux": 1.5, "err": 0.1},
                {"time": "2023-02-25T00:00:10Z", "flux": 2.5, "err": 0.2}]}
        })
    );
    assert_eq!(c.files.len(), 1);
    assert_eq!(c.files[0].role, "deep_cutout");
    assert_eq!(c.files[0].rel, "c/J1.png");
    assert_eq!(c.files[0].size, 4);
}

#[test]
fn a_byte_order_mark_does_not_hide_the_first_column() {
    let rows = csv(
        Path::new("."),
        "\u{feff}observation,name,ra,dec\r\nSB1,J1,1,2\r\n",
    );
    assert_eq!(ok(&rows[0]).observation, "SB1");
}

#[test]
fn optional_columns_can_be_left_out() {
    let d = Scratch::new("min");
    let rows = csv(&d.0, "name,observation,dec,ra\nJ1,SB1,-45,10\n");
    let v = serde_json::to_value(&ok(&rows[0]).body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"name": "J1", "ra": 10.0, "dec": -45.0})
    );
}

#[test]
fn unknown_and_broken_columns_stop_the_file() {
    let bad = [
        ("observation,name,ra,dec,raa", "unknown column \"raa\""),
        (
            "observation,name,ra,dec,metric:Chi",
            "column \"metric:Chi\"",
        ),
        (
            "observation,name,ra,dec,pos:deep:ra",
            "has no \"pos:deep:dec\"",
        ),
        (
            "observation,name,ra,dec,pos:deep:x",
            "unknown column \"pos:deep:x\"",
        ),
        (
            "observation,name,ra,dec,light_curve_unit",
            "needs a \"light_curve\"",
        ),
        ("observation,name,ra", "required column \"dec\""),
        ("observation,name,ra,dec,ra", "\"ra\" appears twice"),
        ("observation,name,ra,dec,Beam", "unknown column \"Beam\""),
        ("observation,name,ra,dec,file:Deep", "column \"file:Deep\""),
    ];
    for (header, expected) in bad {
        let e = parse_candidates_csv(Path::new("."), &format!("{header}\n")).unwrap_err();
        assert!(e.contains(expected), "{header}: {e}");
    }
    for empty in ["", "\u{feff}", " \n\n"] {
        let e = parse_candidates_csv(Path::new("."), empty).unwrap_err();
        assert!(e.contains("the file is empty"), "{empty:?}: {e}");
    }
}

#[test]
fn bad_rows_are_rejected_with_a_reason_and_the_rest_kept() {
    let d = Scratch::new("rows");
    d.write("ok.png", b"x");
    let rows = csv(
        &d.0,
        "observation,name,ra,dec,metric:chi,pos:deep:ra,pos:deep:dec,file:img\n\
         SB1,J1,10,-45,1,,,ok.png\n\
         SB1,J2,ten,-45,1,,,\n\
         SB1,J3,400,-45,1,,,\n\
         SB1,J4,10,-45,lots,,,\n\
         SB1,J5,10,-45,1,10,,\n\
         SB1,J6,10,-45,1,,,missing.png\n\
         SB1,J7,10,-45,1,,,../outside.png\n\
         SB1,J8,10,-45,1,,,/etc/passwd\n\
         SB1,J9,10,-45\n\
         SB 1,J10,10,-45,1,,,\n\
         SB1,,10,-45,1,,,\n\
         SB1,J12,10,-45,1,,,ok.png\n",
    );
    assert_eq!(rows.len(), 12);
    assert_eq!(ok(&rows[0]).body.name, "J1");
    assert!(reason(&rows[1]).contains("ra: \"ten\" is not a number"));
    assert!(reason(&rows[2]).contains("ra: RA 400"));
    assert!(reason(&rows[3]).contains("metric:chi"));
    assert!(reason(&rows[4]).contains("pos:deep: give both ra and dec"));
    assert!(reason(&rows[5]).contains("\"missing.png\" not found"));
    assert!(reason(&rows[6]).contains("leaves the upload folder"));
    assert!(reason(&rows[7]).contains("absolute"));
    assert!(reason(&rows[8]).contains("fields"));
    assert!(reason(&rows[9]).contains("observation: \"SB 1\""));
    assert!(reason(&rows[10]).contains("name: a candidate needs a name"));
    assert_eq!(ok(&rows[11]).body.name, "J12");
    let r = rows[6].as_ref().unwrap_err();
    assert_eq!((r.row, r.name.as_str()), (8, "J7"));
    assert_eq!(r.to_string(), format!("row 8 (\"J7\"): {}", r.reason));
}

#[test]
fn several_problems_of_a_row_are_reported_together() {
    let rows = csv(
        Path::new("."),
        "observation,name,ra,dec,metric:a\nSB1,J1,x,100,y\n",
    );
    let why = reason(&rows[0]);
    assert!(why.contains("ra:") && why.contains("metric:a"), "{why}");
}

#[test]
fn paths_must_stay_inside_the_folder() {
    let d = Scratch::new("paths");
    d.write("a/b.png", b"12345").write("a/../c.png", b"1");
    assert_eq!(resolve_file(&d.0, "r", "a/b.png").unwrap().size, 5);
    assert_eq!(resolve_file(&d.0, "r", "./a/b.png").unwrap().size, 5);
    for bad in ["../x.png", "a/../../x.png", "a/../c.png", "/etc/passwd", ""] {
        assert!(resolve_file(&d.0, "r", bad).is_err(), "{bad}");
    }
    assert!(resolve_file(&d.0, "r", "a")
        .unwrap_err()
        .contains("not a file"));
}

#[test]
fn light_curve_files_are_checked() {
    let pts = parse_light_curve_csv("time,flux\n51544.5,1\n").unwrap();
    assert_eq!(
        pts,
        [(
            2,
            Point {
                time: "2000-01-01T12:00:00Z".into(),
                flux: 1.0,
                err: None
            }
        )]
    );
    let bad = [
        ("time,flux,colour\n", "unknown column \"colour\""),
        ("time,err\n1,1\n", "time and flux"),
        ("time,flux\n2024-05-01T00:00:00,1\n", "line 2: time"),
        (
            "time,flux\n60000,NaN\n",
            "line 2: flux: NaN is not allowed here",
        ),
        ("time,flux,err\n60000,1,\n", "line 2: err"),
        (
            "time,flux,err\n60000,1,-1\n",
            "line 2: err: -1: an error bar cannot be negative",
        ),
    ];
    for (text, expected) in bad {
        let e = parse_light_curve_csv(text).unwrap_err();
        assert!(e.contains(expected), "{text:?}: {e}");
    }
}

#[test]
fn the_server_checks_a_light_curve_file_as_a_whole_and_names_its_lines() {
    let d = Scratch::new("lc-whole");
    d.write("empty.csv", "time,flux\n")
        .write("twice.csv", "time,flux\n60000,1\n60001,2\n60000,3\n")
        .write("long_unit.csv", "time,flux\n60000,1\n");
    let unit = "x".repeat(51);
    let rows = csv(
        &d.0,
        &format!(
            "observation,name,ra,dec,light_curve,light_curve_unit\n\
             SB1,J1,1,1,empty.csv,\n\
             SB1,J2,1,1,twice.csv,\n\
             SB1,J3,1,1,long_unit.csv,{unit}\n"
        ),
    );
    assert_eq!(
        reason(&rows[0]),
        "light_curve \"empty.csv\": a light curve needs at least one point"
    );
    assert_eq!(
        reason(&rows[1]),
        "light_curve \"twice.csv\", line 4: time: an earlier point has the same time"
    );
    assert_eq!(reason(&rows[2]), "light_curve_unit: at most 50 characters");
}

#[test]
fn json_candidates_take_the_api_shape_plus_observation_and_paths() {
    let d = Scratch::new("json");
    d.write("i/c1.png", b"\x89PNG")
        .write("lc.csv", "time,flux\n60000,1\n");
    let rows = parse_candidates_json(
        &d.0,
        r#"[
          {"observation": "123", "name": "c1", "ra": 61.2, "dec": -26.5,
           "metrics": {"flux": 1.2, "mod_index": "NaN", "gone": null},
           "attributes": {"nks_name": "PSR J0403-2640", "n": 3},
           "positions": {"nks": {"ra": 61.3, "dec": -26.6}},
           "light_curve": {"unit": "Jy", "points": [{"time": 60000.5, "flux": 1},
                                                     {"time": "2023-02-25T00:00:00Z", "flux": 2}]},
           "files": {"png": "i/c1.png"}},
          {"observation": "123", "name": "c2", "ra": 1, "dec": 2,
           "light_curve_file": "lc.csv", "light_curve_unit": "Jy"},
          {"observation": "123", "name": "c3", "ra": 1, "dec": 2, "metircs": {}},
          {"observation": "123", "name": "c4", "ra": 1, "dec": 2, "files": {"png": "../x.png"}},
          {"observation": "123", "name": "c5", "dec": 2},
          {"observation": "123", "name": "c6", "ra": 1, "dec": 2, "metrics": {"flux": "lots"}},
          "c7"
        ]"#,
    )
    .unwrap();
    let c1 = ok(&rows[0]);
    assert_eq!(c1.row, 1);
    assert_eq!(
        serde_json::to_value(&c1.body).unwrap(),
        serde_json::json!({
            "name": "c1", "ra": 61.2, "dec": -26.5,
            "positions": {"nks": {"ra": 61.3, "dec": -26.6}},
            "metrics": {"flux": 1.2, "mod_index": "NaN", "gone": null},
            "attributes": {"nks_name": "PSR J0403-2640", "n": 3},
            "light_curve": {"unit": "Jy", "points": [
                {"time": "2023-02-25T12:00:00Z", "flux": 1.0},
                {"time": "2023-02-25T00:00:00Z", "flux": 2.0}]}
        })
    );
    assert_eq!(c1.files[0].rel, "i/c1.png");
    let c2 = ok(&rows[1]);
    assert_eq!(
        c2.body.light_curve.as_ref().unwrap().unit.as_deref(),
        Some("Jy")
    );
    assert!(reason(&rows[2]).contains("unknown field \"metircs\""));
    assert!(reason(&rows[3]).contains("leaves the upload folder"));
    assert!(reason(&rows[4]).contains("ra: a value is required"));
    assert!(reason(&rows[5]).contains("metrics.flux"));
    assert!(reason(&rows[6]).contains("JSON object"));
    assert_eq!(rows[5].as_ref().unwrap_err().name, "c6");
}

#[test]
fn project_json_gives_the_slug_and_the_body() {
    let p = parse_project(
        r#"{"slug": "vast", "name": "VAST", "metrics": [{"key": "chi", "label": "x"}]}"#,
    )
    .unwrap();
    assert_eq!(p.slug.as_deref(), Some("vast"));
    assert!(!p.body.contains_key("slug"), "the slug goes in the URL");
    assert_eq!(p.body["name"], "VAST");
    assert!(parse_project(r#"{"slug": "Vast"}"#).is_err());
    assert!(parse_project(r#"{"metrics": [{"key": "Chi"}]}"#).is_err());
    assert!(parse_project("[]").is_err());
}

#[test]
fn project_json_carries_headline_metrics_good_ranges_and_the_key_guard() {
    let p = parse_project(
        r#"{"name": "VAST", "key_guard_ms": 300, "metrics": [
            {"key": "snr", "label": "S/N", "headline": true, "good": {"min": 5}}]}"#,
    )
    .unwrap();
    assert_eq!(p.body["key_guard_ms"], 300, "sent as written");
    assert_eq!(p.body["metrics"][0]["good"]["min"], 5);
    let e = parse_project(
        r#"{"name": "VAST", "metrics": [{"key": "snr", "label": "S/N", "good": {"min": 5, "max": 1}}]}"#,
    )
    .unwrap_err();
    assert!(e.contains("metrics[0].good.min"), "{e}");
    let e = parse_project(r#"{"name": "VAST", "key_guard_ms": 5000}"#).unwrap_err();
    assert!(e.contains("key_guard_ms"), "{e}");
}

#[test]
fn observations_json_lists_every_problem() {
    let d = Scratch::new("obs");
    d.write("b.png", b"x");
    let obs = parse_observations(
        &d.0,
        r#"[{"id": "SB1", "start_time": "2024-05-01T12:00:00Z", "pointing": {"ra": 1, "dec": 2},
             "metadata": {"f": 887.5}, "files": {"std": "b.png"},
             "beams": [{"name": "beam00", "centre": {"ra": 1, "dec": 2}, "files": {"map": "b.png"}}]}]"#,
    )
    .unwrap();
    assert_eq!(obs[0].id, "SB1");
    assert_eq!(
        Value::Object(obs[0].body.clone()),
        serde_json::json!({"start_time": "2024-05-01T12:00:00Z",
                           "pointing": {"ra": 1, "dec": 2}, "metadata": {"f": 887.5}})
    );
    assert_eq!(obs[0].files[0].role, "std");
    assert_eq!(obs[0].beams[0].name, "beam00");
    assert_eq!(obs[0].beams[0].files[0].role, "map");
    let errs = parse_observations(
        &d.0,
        r#"[{"id": "SB1", "start_time": "2024-05-01 12:00"},
            {"id": "SB2", "pointing": {"ra": 400, "dec": 0}, "beams": [{"name": "b0", "colour": 1}]},
            {"id": "SB1", "files": {"std": "../b.png"}},
            {"start": 1}]"#,
    )
    .unwrap_err();
    let all = errs.join("\n");
    for expected in [
        "observation 1 (SB1): start_time",
        "observation 2 (SB2): pointing: RA 400",
        "observation 2 (SB2): beams[0]: unknown field \"colour\"",
        "observation 3 (SB1): files.std: path \"../b.png\" leaves",
        "observation 4: unknown field \"start\"",
    ] {
        assert!(all.contains(expected), "{expected} missing from:\n{all}");
    }
}

#[test]
fn the_same_candidate_twice_is_rejected_the_second_time() {
    let d = Scratch::new("dup");
    d.write(
        "candidates.csv",
        "observation,name,ra,dec\nSB1,J1,1,1\nSB2,J1,1,1\nSB1,J1,2,2\n",
    );
    let data = read_dir(&d.0).unwrap();
    assert_eq!(data.candidates.len(), 2);
    assert_eq!(data.rejected.len(), 1);
    assert_eq!(data.rejected[0].row, 4);
    assert!(data.rejected[0].reason.contains("row 2"));
}

#[test]
fn the_folder_needs_exactly_one_candidates_file() {
    let d = Scratch::new("files");
    let e = read_dir(&d.0).unwrap_err().to_string();
    assert!(e.contains("neither"), "{e}");
    d.write("candidates.csv", "observation,name,ra,dec\n")
        .write("candidates.json", "[]");
    let e = read_dir(&d.0).unwrap_err().to_string();
    assert!(e.contains("both"), "{e}");
    let e = read_dir(&d.0.join("nope")).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upload")
        .join(name)
}

#[test]
fn the_fixtures_read_cleanly() {
    let vast = read_dir(&fixture("vast_like")).unwrap();
    assert_eq!(vast.source, CANDIDATES_CSV);
    assert!(vast.rejected.is_empty(), "{:?}", vast.rejected);
    assert_eq!(vast.candidates.len(), 5);
    assert_eq!(vast.project.as_ref().unwrap().slug.as_deref(), Some("vast"));
    assert_eq!(vast.observations[0].beams.len(), 2);
    let j1 = &vast.candidates[0];
    assert_eq!(j1.body.light_curve.as_ref().unwrap().points.len(), 4);
    assert!(j1.body.metrics["gaussian_map"].unwrap().0.is_nan());
    assert_eq!(j1.files.len(), 2);

    let gleamx = read_dir(&fixture("gleamx_like")).unwrap();
    assert_eq!(gleamx.source, CANDIDATES_JSON);
    assert!(gleamx.rejected.is_empty(), "{:?}", gleamx.rejected);
    assert_eq!(gleamx.candidates.len(), 3);
    assert!(gleamx.candidates.iter().all(|c| c.files.len() == 2));
}

#[test]
fn the_fixture_images_are_valid_pngs_and_gifs() {
    let mut n = 0;
    for dir in ["vast_like", "gleamx_like"] {
        for c in read_dir(&fixture(dir)).unwrap().candidates {
            for f in &c.files {
                let bytes = std::fs::read(&f.path).unwrap();
                image::load_from_memory(&bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.path.display()));
                n += 1;
            }
        }
    }
    assert_eq!(n, 8 + 6);
}

#[test]
fn a_refused_huge_name_is_not_printed_whole() {
    let r = Rejection {
        row: 3,
        observation: "SB1".into(),
        name: "x".repeat(1_000_000),
        reason: "a candidate name has at most 200 characters".into(),
    };
    let shown = r.to_string();
    assert!(shown.len() < 200, "{} bytes", shown.len());
    assert!(shown.starts_with("row 3 (") && shown.contains("1000000 characters"));
}

//! The client against the stand-in server in `fake.rs`: what is sent, in
//! what order, and what happens when things go wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fake::{Fake, TOKEN};
use super::input::tests::Scratch;
use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upload")
        .join(name)
}

/// A copy of a fixture folder, to change.
fn copy_fixture(name: &str) -> Scratch {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &dest);
            } else {
                std::fs::copy(e.path(), dest).unwrap();
            }
        }
    }
    let s = Scratch::new(name);
    copy(&fixture(name), &s.0);
    s
}

fn opts(fake: &Fake, dir: &Path) -> UploadOptions {
    UploadOptions {
        progress: false,
        retry_base_delay: Duration::from_millis(1),
        ..UploadOptions::new(&fake.url, TOKEN, dir)
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn usage_error(r: Result<UploadOptions, CliError>) -> String {
    match r {
        Err(CliError::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

// ------------------------------------------------------------ arguments

#[test]
fn arguments_are_parsed_with_defaults() {
    let o = parse_args(
        &args(&["--url", "https://v.example.org/", "dir"]),
        Some("vet_x".into()),
    )
    .unwrap();
    assert_eq!(o.url, "https://v.example.org/");
    assert_eq!(o.token, "vet_x", "from VETTER_TOKEN");
    assert_eq!(o.batch_size, 50);
    assert_eq!(o.project, None);
    assert!(!o.dry_run);
    assert_eq!(o.dir, PathBuf::from("dir"));

    let o = parse_args(
        &args(&[
            "dir",
            "--url=http://localhost:8000",
            "--token",
            "vet_flag",
            "--project",
            "vast",
            "--batch",
            "7",
            "--dry-run",
        ]),
        Some("vet_env".into()),
    )
    .unwrap();
    assert_eq!(o.token, "vet_flag", "the flag wins over the environment");
    assert_eq!((o.batch_size, o.dry_run), (7, true));
    assert_eq!(o.project.as_deref(), Some("vast"));

    let o = parse_args(&args(&["--dry-run", "dir"]), None).unwrap();
    assert!(
        o.url.is_empty() && o.token.is_empty(),
        "a dry run needs neither"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let env = || Some("vet_x".to_string());
    let cases: &[(&[&str], &str)] = &[
        (&["dir"], "--url is required"),
        (&["--url", "ftp://h", "dir"], "http:// or https://"),
        (&["--url", "h.example.org", "dir"], "--url"),
        (&["--url", "http://h"], "which folder"),
        (&["--url", "http://h", "a", "b"], "give one folder"),
        (&["--url", "http://h", "--batch", "0", "d"], "--batch"),
        (&["--url", "http://h", "--batch", "1001", "d"], "--batch"),
        (&["--url", "http://h", "--batch", "x", "d"], "--batch"),
        (&["--url", "http://h", "--project", "Bad Slug", "d"], "slug"),
        (
            &["--url", "http://h", "--verbose", "d"],
            "unknown option \"--verbose\"",
        ),
        (&["--url", "http://h", "d", "--url", "http://i"], "twice"),
        (&["--url"], "needs a value"),
    ];
    for (a, expected) in cases {
        let m = usage_error(parse_args(&args(a), env()));
        assert!(m.contains(expected), "{a:?}: {m}");
    }
    let m = usage_error(parse_args(&args(&["--url", "http://h", "d"]), None));
    assert!(m.contains("VETTER_TOKEN"), "{m}");
}

#[test]
fn the_token_is_never_repeated_in_messages() {
    let secret = "vet_topsecret";
    let cases: &[&[&str]] = &[
        &["--url", "http://h", secret, "dir"],
        &["--url", "http://h", "--token", "vet_top secret", "dir"],
        &[
            "--url", "http://h", "--token", secret, "--token", secret, "d",
        ],
    ];
    for a in cases {
        let m = usage_error(parse_args(&args(a), None));
        assert!(!m.contains("topsecret") && !m.contains("top secret"), "{m}");
    }
    let o = parse_args(&args(&["--url", "http://h", "--token", secret, "d"]), None).unwrap();
    assert!(!format!("{o:?}").contains("topsecret"));
}

#[test]
fn plain_http_to_another_host_gets_a_warning() {
    assert!(plain_http_warning("http://vetter.example.org").is_some());
    assert!(plain_http_warning("http://127.0.0.1:8000").is_none());
    assert!(plain_http_warning("http://localhost:8000").is_none());
    assert!(plain_http_warning("https://vetter.example.org").is_none());
}

// ------------------------------------------------------------ dry runs

#[tokio::test]
async fn a_dry_run_reads_everything_and_sends_nothing() {
    let mut o = UploadOptions::new("", "", fixture("vast_like"));
    o.dry_run = true;
    o.progress = false;
    o.batch_size = 3;
    let s = upload_dir(&o).await.unwrap();
    assert!(s.dry_run);
    assert_eq!(s.ready, 5);
    assert!(s.rejected.is_empty());
    let plan = s.plan.join("\n");
    for expected in [
        "PUT /api/v1/projects/vast  (project.json: 4 metrics, 2 tags)",
        "PUT /api/v1/projects/vast/observations/SB50230\n",
        "PUT /api/v1/projects/vast/observations/SB50230/beams/beam00 with 1 file (69 bytes)",
        "POST /api/v1/projects/vast/observations/SB50230/candidates  3 candidates with 6 files",
        "J123448-451207, J123512-450930, J123700-451500",
        "POST /api/v1/projects/vast/observations/SB50230/candidates  2 candidates with 2 files",
    ] {
        assert!(plan.contains(expected), "{expected:?} not in\n{plan}");
    }
    assert!(s
        .report()
        .contains("dry run, nothing sent: 5 candidates ready, rejected 0"));
}

#[tokio::test]
async fn the_project_comes_from_the_flag_or_the_file_and_they_must_agree() {
    let mut o = UploadOptions::new("", "", fixture("vast_like"));
    o.dry_run = true;
    o.project = Some("other".into());
    let e = upload_dir(&o).await.unwrap_err();
    assert!(
        matches!(&e, UploadError::Usage(m) if m.contains("disagrees")),
        "{e}"
    );
    o.project = Some("vast".into());
    assert!(upload_dir(&o).await.is_ok());

    let d = Scratch::new("noslug");
    d.write("candidates.csv", "observation,name,ra,dec\nSB1,J1,1,1\n");
    let mut o = UploadOptions::new("", "", &d.0);
    o.dry_run = true;
    let e = upload_dir(&o).await.unwrap_err();
    assert!(
        matches!(&e, UploadError::Usage(m) if m.contains("--project")),
        "{e}"
    );
    o.project = Some("p".into());
    assert_eq!(upload_dir(&o).await.unwrap().ready, 1);
}

// ------------------------------------------------------------ uploads

#[tokio::test]
async fn a_fixture_is_uploaded_in_order_and_again_unchanged() {
    let fake = Fake::start().await;
    let mut o = opts(&fake, &fixture("vast_like"));
    o.batch_size = 3;
    let s = upload_dir(&o).await.unwrap();
    assert_eq!(
        (s.created, s.updated, s.unchanged),
        (5, 0, 0),
        "{}",
        s.report()
    );
    assert!(s.rejected.is_empty());
    assert_eq!(
        s.report().lines().next(),
        Some("created 5, updated 0, unchanged 0, rejected 0")
    );

    let log = fake.with(|st| st.log.clone());
    assert_eq!(
        log,
        [
            "GET /api/v1/whoami",
            "PUT /api/v1/projects/vast",
            "PUT /api/v1/projects/vast/observations/SB50230",
            "PUT /api/v1/projects/vast/observations/SB50230/beams/beam00",
            "PUT /api/v1/projects/vast/observations/SB50230/beams/beam01",
            "POST /api/v1/projects/vast/observations/SB50230/candidates",
            "POST /api/v1/projects/vast/observations/SB50230/candidates",
        ]
    );
    fake.with(|st| {
        let j1 = &st.candidates[&("SB50230".into(), "J123448-451207".into())];
        assert_eq!(j1["metrics"]["gaussian_map"], "NaN");
        // MJD 60096.42708333, written to 8 decimals: 10:15:00 less 0.3 ms.
        assert_eq!(
            j1["light_curve"]["points"][0]["time"],
            "2023-06-01T10:14:59.999712Z"
        );
        assert_eq!(j1["light_curve"]["points"].as_array().unwrap().len(), 4);
        assert_eq!(j1["positions"]["deep"]["ra"], 188.70001);
        let j5 = &st.candidates[&("SB50230".into(), "J123900-452000".into())];
        assert!(j5.get("files").is_none() && j5.get("beam").is_none());
        // 8 candidate files and 2 beam maps, all PNG.
        assert_eq!(st.parts.len(), 10);
        assert!(st
            .parts
            .iter()
            .all(|(_, ct, head)| ct == "image/png" && head.starts_with(b"\x89PNG")));
        let beam = &st.beams[&("vast".into(), "SB50230".into(), "beam01".into())];
        assert_eq!(beam["metadata"]["rms_mjy"], 0.25);
    });

    let again = upload_dir(&o).await.unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 5));
    assert!(again.outcomes.iter().all(|x| x.status == Status::Unchanged));
}

#[tokio::test]
async fn json_folders_with_gifs_go_as_multipart() {
    let fake = Fake::start().await;
    let s = upload_dir(&opts(&fake, &fixture("gleamx_like")))
        .await
        .unwrap();
    assert_eq!(s.created, 3, "{}", s.report());
    fake.with(|st| {
        assert_eq!(st.parts.iter().filter(|p| p.1 == "image/gif").count(), 3);
        let c3 = &st.candidates[&("1234567890".into(), "c003".into())];
        assert_eq!(c3["metrics"]["mod_index"], "Infinity");
        assert_eq!(c3["metrics"]["fluence"], Value::Null);
        assert_eq!(c3["light_curve"]["unit"], "Jy");
        assert_eq!(c3["light_curve"]["points"][0]["err"], 0.05);
        let c1 = &st.candidates[&("1234567890".into(), "c001".into())];
        assert_eq!(c1["attributes"]["nks_name"], "PSR J0403-2640");
        assert_eq!(
            c1["light_curve"]["points"][2]["time"],
            "2019-02-18T12:41:13.499808Z"
        );
    });
}

#[tokio::test]
async fn an_interrupted_upload_carries_on_without_duplicates() {
    let fake = Fake::start().await;
    let mut o = opts(&fake, &fixture("vast_like"));
    o.batch_size = 2;
    o.stop_after_batches = Some(1);
    let first = upload_dir(&o).await.unwrap();
    assert!(first.stopped_early);
    assert_eq!(first.created, 2);
    assert_eq!(fake.with(|st| st.candidates.len()), 2);

    o.stop_after_batches = None;
    let rest = upload_dir(&o).await.unwrap();
    let statuses: Vec<Status> = rest.outcomes.iter().map(|x| x.status).collect();
    use Status::*;
    assert_eq!(statuses, [Unchanged, Unchanged, Created, Created, Created]);
    assert_eq!(fake.with(|st| st.candidates.len()), 5);
}

#[tokio::test]
async fn finish_says_each_observation_is_done_only_after_a_whole_upload() {
    let fake = Fake::start().await;
    let mut o = opts(&fake, &fixture("vast_like"));
    o.batch_size = 2;
    o.finish = true;
    o.stop_after_batches = Some(1);
    upload_dir(&o).await.unwrap();
    assert!(
        fake.with(|st| st.finished.is_empty()),
        "an interrupted upload is not finished"
    );
    o.stop_after_batches = None;
    upload_dir(&o).await.unwrap();
    assert_eq!(fake.with(|st| st.finished.clone()), ["SB50230"]);
    let last = fake.with(|st| st.log.last().cloned());
    assert_eq!(
        last.as_deref(),
        Some("POST /api/v1/projects/vast/observations/SB50230/finished")
    );
    let parsed = parse_args(
        &args(&["--url", "http://h", "--finish", "d"]),
        Some("vet_x".into()),
    )
    .unwrap();
    assert!(parsed.finish);
    assert!(
        !parse_args(&args(&["--url", "http://h", "d"]), Some("vet_x".into()))
            .unwrap()
            .finish
    );
}

#[tokio::test]
async fn one_bad_candidate_does_not_sink_its_batch() {
    let fake = Fake::start().await;
    let d = copy_fixture("vast_like");
    // Fine here, but the project has no metric "colour": only the server
    // knows. Rows with an empty cell send null, which it lets through.
    let csv = std::fs::read_to_string(d.0.join("candidates.csv")).unwrap();
    let csv = csv.replacen("metric:gaussian_map", "metric:colour", 1);
    std::fs::write(d.0.join("candidates.csv"), csv).unwrap();
    let s = upload_dir(&opts(&fake, &d.0)).await.unwrap();
    let rejected: Vec<usize> = s.rejected.iter().map(|r| r.row).collect();
    assert_eq!(rejected, [2, 3, 5], "{}", s.report());
    assert_eq!(s.created, 2);
    let r = &s.rejected[0];
    assert_eq!(r.name, "J123448-451207");
    assert_eq!(r.reason, "server: metrics.colour: no metric \"colour\"");
    let posts = fake.with(|st| st.log.iter().filter(|l| l.starts_with("POST")).count());
    assert_eq!(posts, 2, "the batch, then the rest of it once");
}

#[tokio::test]
async fn a_locally_bad_row_is_reported_and_the_others_land() {
    let fake = Fake::start().await;
    let d = copy_fixture("vast_like");
    let mut csv = std::fs::read_to_string(d.0.join("candidates.csv")).unwrap();
    csv.push_str("SB50230,J999,beam00,400,-45,1,1,1,,,,,,,,\n");
    csv.push_str("SB50230,J998,beam00,10,-45,1,1,1,,,,,cutouts/gone.png,,,\n");
    std::fs::write(d.0.join("candidates.csv"), csv).unwrap();
    let s = upload_dir(&opts(&fake, &d.0)).await.unwrap();
    assert_eq!(s.created, 5);
    let report = s.report();
    assert!(report.contains("rejected 2"), "{report}");
    assert!(
        report.contains("  row 7 (\"J999\"): ra: RA 400 is not in [0, 360) degrees"),
        "{report}"
    );
    assert!(
        report
            .contains("  row 8 (\"J998\"): file:deep_cutout: file \"cutouts/gone.png\" not found"),
        "{report}"
    );
}

#[tokio::test]
async fn a_refused_observation_rejects_only_its_candidates() {
    let fake = Fake::start().await;
    let d = Scratch::new("refused-obs");
    d.write("project.json", r#"{"slug": "p", "name": "P"}"#)
        .write(
            "observations.json",
            r#"[{"id": "A", "metadata": {"refuse": true}}, {"id": "B"}]"#,
        )
        .write(
            "candidates.csv",
            "observation,name,ra,dec\nA,a1,1,1\nB,b1,1,1\nA,a2,1,1\n",
        );
    let s = upload_dir(&opts(&fake, &d.0)).await.unwrap();
    assert_eq!(s.created, 1);
    assert_eq!(s.outcomes[0].name, "b1");
    assert_eq!(s.rejected.len(), 2);
    assert!(
        s.rejected[0]
            .reason
            .starts_with("observation A was refused: 400"),
        "{}",
        s.rejected[0].reason
    );
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let fake = Fake::start().await;
    fake.with(|st| {
        st.fail_next
            .extend([(503, None), (429, Some(0)), (502, None)])
    });
    let s = upload_dir(&opts(&fake, &fixture("gleamx_like")))
        .await
        .unwrap();
    assert_eq!(s.created, 3);
    let whoami = fake.with(|st| st.log.iter().filter(|l| l.ends_with("whoami")).count());
    assert_eq!(whoami, 4, "three failures, then the answer");
}

#[tokio::test]
async fn a_server_that_stays_down_is_fatal() {
    let fake = Fake::start().await;
    fake.with(|st| st.fail_next.extend([(503, None); 10]));
    let e = upload_dir(&opts(&fake, &fixture("gleamx_like")))
        .await
        .unwrap_err();
    assert!(
        matches!(e, UploadError::Unavailable { attempts: 6, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("again"), "{e}");
}

#[tokio::test]
async fn no_server_is_fatal_after_retries() {
    // Bind, then close: nothing listens on that port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut o = UploadOptions::new(
        format!("http://127.0.0.1:{port}"),
        TOKEN,
        fixture("gleamx_like"),
    );
    o.progress = false;
    o.retry_base_delay = Duration::from_millis(1);
    let e = upload_dir(&o).await.unwrap_err();
    let UploadError::Unreachable {
        attempts, ref last, ..
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!(attempts, 6);
    assert!(last.contains("connect"), "{last}");
}

#[tokio::test]
async fn a_bad_token_stops_at_once_without_showing_it() {
    let fake = Fake::start().await;
    let mut o = opts(&fake, &fixture("gleamx_like"));
    o.token = "vet_wrong_secret".into();
    let e = upload_dir(&o).await.unwrap_err();
    assert!(matches!(e, UploadError::Unauthorized));
    let m = e.to_string();
    assert!(m.starts_with("the server refused the token (401)"), "{m}");
    assert!(!m.contains("wrong_secret"));
    assert_eq!(fake.with(|st| st.log.len()), 1, "401 is not retried");

    fake.with(|st| st.cannot_upload = true);
    let e = upload_dir(&opts(&fake, &fixture("gleamx_like")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("(403)"), "{e}");
}

#[tokio::test]
async fn a_batch_too_large_is_split() {
    let fake = Fake::start().await;
    fake.with(|st| st.max_batch = Some(2));
    let s = upload_dir(&opts(&fake, &fixture("vast_like")))
        .await
        .unwrap();
    assert_eq!(s.created, 5, "{}", s.report());
    let posts = fake.with(|st| st.log.iter().filter(|l| l.starts_with("POST")).count());
    // 5 → 413; 2 ok; 3 → 413; 1 ok; 2 ok.
    assert_eq!(posts, 5);
}

#[tokio::test]
async fn candidates_of_an_unknown_observation_are_refused_by_batch() {
    let fake = Fake::start().await;
    let d = Scratch::new("unknown-obs");
    d.write("project.json", r#"{"slug": "p", "name": "P"}"#)
        .write(
            "candidates.csv",
            "observation,name,ra,dec\nX,a1,1,1\nX,a2,1,1\n",
        );
    let s = upload_dir(&opts(&fake, &d.0)).await.unwrap();
    assert_eq!(s.rejected.len(), 2);
    assert!(
        s.rejected[0].reason.contains("404"),
        "{}",
        s.rejected[0].reason
    );
}

// ------------------------------------------- the server's rules, client side

/// A dry run of a folder holding only `file` with `text`.
async fn dry_run(file: &str, text: &str) -> Summary {
    let d = Scratch::new("dry");
    d.write(file, text);
    let o = UploadOptions {
        project: Some("p".into()),
        dry_run: true,
        ..UploadOptions::new("", "", &d.0)
    };
    upload_dir(&o).await.unwrap()
}

/// What the server's parser says of one candidate of a batch.
fn server_problems(body: &Value) -> Vec<crate::domain::Problem> {
    let mut p = crate::domain::upload::Problems::default();
    crate::domain::upload::CandidateSpec::parse(body.clone(), None, "", &mut p);
    p.0
}

#[tokio::test]
async fn a_blank_name_is_refused_by_the_client_as_by_the_server() {
    for name in ["   ", "\t", "\u{a0}", "\u{3000} "] {
        let body = serde_json::json!({"name": name, "ra": 1, "dec": 1});
        assert!(!server_problems(&body).is_empty(), "{name:?}");

        let mut with_obs = body.clone();
        with_obs["observation"] = "SB1".into();
        let s = dry_run("candidates.json", &Value::from(vec![with_obs]).to_string()).await;
        assert_eq!(s.ready, 0, "json {name:?}");
        assert_eq!(s.rejected[0].row, 1);
        assert_eq!(s.rejected[0].reason, "name: a candidate needs a name");

        let csv = format!("observation,name,ra,dec\nSB1,\"{name}\",1,1\n");
        let s = dry_run("candidates.csv", &csv).await;
        assert_eq!(s.ready, 0, "csv {name:?}");
        assert_eq!(s.rejected[0].row, 2);
        assert_eq!(s.rejected[0].reason, "name: a candidate needs a name");
    }
}

/// Candidates, each `{"name": "J1", "ra": 10, "dec": -45}` changed by one
/// patch, that are easy to get wrong on one side only.
fn tricky_candidates() -> Vec<Value> {
    use serde_json::json;
    let attrs = |n: usize| -> Value {
        (0..n)
            .map(|i| (format!("a{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let point = |time: &str, flux: Value| json!({"time": time, "flux": flux});
    let t0 = "2024-05-01T12:00:00Z";
    let lc = |points: Vec<Value>| json!({"light_curve": {"points": points}});
    let mut patches = vec![];
    for m in [
        json!("NaN"),
        json!("Nan"),
        json!("nAn"),
        json!("-nan"),
        json!("+NaN"),
        json!("infinity"),
        json!("+infinity"),
        json!("-Infinity"),
        json!("+inf"),
        json!("INF"),
        json!("∞"),
        json!("12.5"),
        json!(" 12.5 "),
        json!("1e999"),
        json!("1,5"),
        json!("lots"),
        json!(""),
        json!(true),
        json!([1]),
        json!(null),
        json!(12.5),
    ] {
        patches.push(json!({"metrics": {"chi": m}}));
    }
    patches.push(json!({"metrics": {"Chi": 1}}));
    patches.push(json!({"metrics": {"chi square": 1}}));
    for (ra, dec) in [
        (json!(400), json!(0)),
        (json!(-0.1), json!(0)),
        (json!(360), json!(0)),
        (json!(359.999), json!(90)),
        (json!(0), json!(-90)),
        (json!(10), json!(90.5)),
        (json!(10), json!(-91)),
        (json!("12.5"), json!(0)),
        (json!(10), json!("NaN")),
        (json!(null), json!(0)),
    ] {
        patches.push(json!({"ra": ra, "dec": dec}));
    }
    for p in [
        json!({"deep": {"ra": 400, "dec": 0}}),
        json!({"deep": {"ra": 1}}),
        json!({"deep": {"ra": "1", "dec": 2}}),
        json!({"deep": {"ra": 1, "dec": 2, "x": 3}}),
        json!({"deep": "1,2"}),
        json!({"Deep": {"ra": 1, "dec": 2}}),
        json!({"deep": {"ra": 1, "dec": 2}}),
    ] {
        patches.push(json!({"positions": p}));
    }
    for a in [
        attrs(64),
        attrs(65),
        json!({"k": "x".repeat(1000)}),
        json!({"k": "x".repeat(1001)}),
        json!({"k": "é".repeat(1000)}),
        json!({"Bad": 1}),
        json!({"k": [1]}),
        json!({"k": {"a": 1}}),
        json!({"k": true}),
        json!({"k": null}),
    ] {
        patches.push(json!({"attributes": a}));
    }
    for n in [
        json!(""),
        json!("   "),
        json!("a\nb"),
        json!("a\u{7}b"),
        json!("a/b"),
        json!("PSR J0403-2640 (1)"),
        json!("x".repeat(200)),
        json!("x".repeat(201)),
        json!("é".repeat(200)),
        json!(5),
    ] {
        patches.push(json!({"name": n}));
    }
    for b in [
        json!("beam00"),
        json!("beam 0"),
        json!("beam/0"),
        json!("_beam"),
        json!("b".repeat(64)),
        json!("b".repeat(65)),
        json!(null),
        json!(3),
    ] {
        patches.push(json!({"beam": b}));
    }
    for t in [
        "2024-05-01T12:00:00+10:00",
        "2024-05-01T12:00:00",
        "2024-05-01 12:00:00Z",
        "yesterday",
        "",
    ] {
        patches.push(lc(vec![point(t, json!(1))]));
    }
    for flux in [
        json!("1.5"),
        json!("NaN"),
        json!("inf"),
        json!(null),
        json!("x"),
    ] {
        patches.push(lc(vec![point(t0, flux)]));
    }
    let with_err = |err: Value| json!({"time": t0, "flux": 1, "err": err});
    for err in [json!(0.1), json!("0.1"), json!(-1), json!("NaN")] {
        patches.push(lc(vec![with_err(err)]));
    }
    patches.extend([
        lc(vec![]),
        lc(vec![point(t0, json!(1)), with_err(json!(0.1))]),
        lc(vec![with_err(json!(0.1)), point(t0, json!(1))]),
        lc(vec![
            point(t0, json!(1)),
            point("2024-05-01T14:00:00+02:00", json!(2)),
        ]),
        lc(vec![json!({"time": t0, "flux": 1, "colour": "red"})]),
        json!({"light_curve": {"unit": "x".repeat(50), "points": [point(t0, json!(1))]}}),
        json!({"light_curve": {"unit": "x".repeat(51), "points": [point(t0, json!(1))]}}),
        json!({"light_curve": {"points": "none"}}),
        json!({"colour": "red"}),
    ]);
    patches
        .into_iter()
        .map(|patch| {
            let mut c = json!({"name": "J1", "ra": 10, "dec": -45});
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            c
        })
        .collect()
}

#[test]
fn the_client_refuses_a_json_candidate_exactly_when_the_server_would() {
    let cases = tricky_candidates();
    let list: Vec<Value> = cases
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["observation"] = "SB1".into();
            c
        })
        .collect();
    let rows =
        input::parse_candidates_json(Path::new("."), &Value::from(list).to_string()).unwrap();
    let (mut accepted, mut refused) = (0, 0);
    for (body, row) in cases.iter().zip(&rows) {
        let server = server_problems(body);
        match row {
            Ok(_) => {
                accepted += 1;
                assert!(server.is_empty(), "{body}: the server says {server:?}");
            }
            Err(r) => {
                refused += 1;
                assert!(!server.is_empty(), "{body}: only the client refuses: {r}");
                for p in server.iter().filter(|p| p.field != "body") {
                    assert!(r.reason.contains(&p.field), "{body}: {r} lacks {p:?}");
                }
            }
        }
    }
    assert!(accepted > 20 && refused > 50, "{accepted} {refused}");
}

#[test]
fn the_client_refuses_a_csv_row_exactly_when_the_server_would() {
    use serde_json::json;
    // Cells, and the body the API would get for them: the text of a
    // metric or an attribute travels as a JSON string.
    let rows: &[[&str; 6]] = &[
        // name, ra, dec, beam, metric:chi, attr:note
        ["J1", "10", "-45", "", "", ""],
        ["J1", "400", "-45", "", "", ""],
        ["J1", "10", "-91", "", "", ""],
        ["J1", "359.999", "90", "beam00", "", ""],
        ["J1", "10", "-45", "beam/0", "", ""],
        ["J1", "10", "-45", "beam 0", "", ""],
        ["J1", "10", "-45", "", "Nan", ""],
        ["J1", "10", "-45", "", "+infinity", ""],
        ["J1", "10", "-45", "", "-INF", ""],
        ["J1", "10", "-45", "", "-nan", ""],
        ["J1", "10", "-45", "", "1e999", ""],
        ["J1", "10", "-45", "", "12.5", ""],
        ["J1", "10", "-45", "", "1,5", ""],
        ["a/b", "10", "-45", "", "", ""],
        ["a\u{7}b", "10", "-45", "", "", ""],
        ["\u{a0}", "10", "-45", "", "", ""],
        ["é", "10", "-45", "", "", "x"],
    ];
    let long_name = "x".repeat(201);
    let long_attr = "y".repeat(1001);
    let mut rows: Vec<[&str; 6]> = rows.to_vec();
    rows.push([&long_name, "10", "-45", "", "", ""]);
    rows.push(["J1", "10", "-45", "", "", &long_attr]);
    let mut text = String::from("observation,name,ra,dec,beam,metric:chi,attr:note\n");
    for r in &rows {
        let quoted: Vec<String> = r.iter().map(|c| format!("\"{c}\"")).collect();
        text.push_str(&format!("SB1,{}\n", quoted.join(",")));
    }
    let read = input::parse_candidates_csv(Path::new("."), &text).unwrap();
    for (cells, row) in rows.iter().zip(&read) {
        let [name, ra, dec, beam, chi, note] = *cells;
        let mut body = json!({
            "name": name,
            "ra": ra.parse::<f64>().unwrap(),
            "dec": dec.parse::<f64>().unwrap(),
        });
        if !beam.is_empty() {
            body["beam"] = beam.into();
        }
        if !chi.is_empty() {
            body["metrics"] = json!({ "chi": chi });
        }
        if !note.is_empty() {
            body["attributes"] = json!({ "note": note });
        }
        let server = server_problems(&body);
        assert_eq!(
            row.is_err(),
            !server.is_empty(),
            "{cells:?}: client {row:?}, server {server:?}"
        );
    }
}

#[test]
fn the_attribute_limit_is_per_candidate_not_per_header() {
    let header: Vec<String> = (0..65).map(|i| format!("attr:a{i}")).collect();
    let full = vec!["x"; 65].join(",");
    let sparse = format!("x,y,z{}", ",".repeat(62));
    let text = format!(
        "observation,name,ra,dec,{}\nSB1,J1,1,1,{full}\nSB1,J2,1,1,{sparse}\n",
        header.join(",")
    );
    let rows = input::parse_candidates_csv(Path::new("."), &text).unwrap();
    assert_eq!(
        rows[0].as_ref().unwrap_err().reason,
        "attributes: at most 64 attributes"
    );
    assert_eq!(rows[1].as_ref().unwrap().body.attributes.len(), 3);
}

#[test]
fn gold_is_read_from_its_column_and_field_and_checked_as_the_server_does() {
    let text = "observation,name,ra,dec,gold\nSB1,J1,1,1,real\nSB1,J2,1,1,\nSB1,J3,1,1,unsure\n";
    let rows = input::parse_candidates_csv(Path::new("."), text).unwrap();
    assert_eq!(rows[0].as_ref().unwrap().body.gold.as_deref(), Some("real"));
    assert_eq!(rows[1].as_ref().unwrap().body.gold, None);
    let refused = rows[2].as_ref().unwrap_err();
    assert!(refused.reason.starts_with("gold: "), "{}", refused.reason);
    assert!(refused.reason.contains("not_real"), "{}", refused.reason);
    let sent = rows[0].as_ref().unwrap().json(|_| String::new());
    assert_eq!(sent["gold"], "real");
    assert!(rows[1]
        .as_ref()
        .unwrap()
        .json(|_| String::new())
        .get("gold")
        .is_none());

    let json = r#"[{"observation": "SB1", "name": "J1", "ra": 1, "dec": 1, "gold": "not_real"},
                   {"observation": "SB1", "name": "J2", "ra": 1, "dec": 1, "gold": true}]"#;
    let rows = input::parse_candidates_json(Path::new("."), json).unwrap();
    assert_eq!(
        rows[0].as_ref().unwrap().body.gold.as_deref(),
        Some("not_real")
    );
    assert!(rows[1].as_ref().unwrap_err().reason.contains("gold"));
}

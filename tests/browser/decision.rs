//! The decision screen as a reviewer sees it: on the demo's VAST and
//! GLEAM-X candidates, at three common screen sizes, everything needed to
//! call a candidate is in view without scrolling. Screenshots of each go to
//! `target/browser-screenshots/`.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use vetter::domain::Role;
use vetter::media::MediaStore;

use crate::harness::{browser, browser_lock, login, screenshot_path, TestApp, READY_TO_RATE_JS};

/// Bounding boxes, in viewport pixels, of what must be in view.
const BOXES_JS: &str = r#"
const box = e => { const r = e.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom, w: r.width, h: r.height}; };
const all = s => Array.from(document.querySelectorAll(s)).map(box);
const first = s => { const e = document.querySelector(s); return e ? box(e) : null; };
return {
  vw: innerWidth, vh: innerHeight, scrolled: scrollY,
  pictures: all('#candidate .figures .tile-frame, #candidate .figures .gif-player .gp-screen, #candidate .figures .gif-player > img'),
  light_curve: first('#candidate .lc-box svg'),
  headline: first('#candidate dl.headline'),
  nearest: first('#nearby table.nearby tr'),
  verdicts: all('#candidate .verdicts button'),
};
"#;

/// Resolves once every picture is painted and the nearby list is in.
const READY_JS: &str = r#"
const c = document.getElementById('candidate');
return !!c && !!c.dataset.paintedAt && !!document.getElementById('nearby')
  && !document.querySelector('#nearby[hx-get]');
"#;

/// The candidate of `project` nearest to a known pulsar.
async fn near_a_pulsar(pool: &PgPool, project: &str) -> (i64, String) {
    sqlx::query_as(
        "SELECT c.id, c.name FROM candidates c JOIN projects p ON p.id = c.project_id
           CROSS JOIN LATERAL (SELECT min(q3c_dist(c.ra, c.dec, ps.ra, ps.dec)) AS d FROM pulsars ps) n
          WHERE p.slug = $1 ORDER BY n.d LIMIT 1",
    )
    .bind(project)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn inside(what: &str, b: &Value, vw: f64, vh: f64, failures: &mut Vec<String>) {
    let (l, t, r, bot) = (
        b["l"].as_f64().unwrap(),
        b["t"].as_f64().unwrap(),
        b["r"].as_f64().unwrap(),
        b["b"].as_f64().unwrap(),
    );
    if l < 0.0 || t < 0.0 || r > vw + 0.5 || bot > vh + 0.5 || r - l < 1.0 {
        failures.push(format!(
            "{what} at ({l:.0}, {t:.0})–({r:.0}, {bot:.0}) is not inside {vw}×{vh}"
        ));
    }
}

#[sqlx::test]
async fn everything_needed_to_decide_is_in_view_at_common_sizes(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool.clone()).await;
    vetter::cli::demo::fill(&pool, MediaStore::new(app.media_root()))
        .await
        .unwrap();
    let reviewer = app.create_user("carol", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &reviewer).await;

    let mut failures = Vec::new();
    for project in ["vast-demo", "gleamx-demo"] {
        let (id, name) = near_a_pulsar(&pool, project).await;
        for (w, h) in [(1280, 720), (1440, 900), (1920, 1080)] {
            show_at(&s, &app, (id, &name), project, w, h).await;
            let v = s.script(BOXES_JS, vec![]).await;
            let (vw, vh) = (v["vw"].as_f64().unwrap(), v["vh"].as_f64().unwrap());
            assert_eq!(
                (vw, vh),
                (w as f64, h as f64),
                "the viewport was not resized"
            );
            let at = format!("{project} {name} at {w}×{h}");
            let pictures = v["pictures"].as_array().unwrap();
            assert!(pictures.len() >= 2, "{at}: pictures: {v}");
            for (i, p) in pictures.iter().enumerate() {
                inside(&format!("{at}: picture {i}"), p, vw, vh, &mut failures);
                if p["w"].as_f64().unwrap() < 160.0 {
                    failures.push(format!("{at}: picture {i} is under 160 px wide: {p}"));
                }
            }
            let verdicts = v["verdicts"].as_array().unwrap();
            assert_eq!(verdicts.len(), 3, "{at}: {v}");
            for (i, b) in verdicts.iter().enumerate() {
                inside(
                    &format!("{at}: verdict button {i}"),
                    b,
                    vw,
                    vh,
                    &mut failures,
                );
            }
            for part in ["headline", "nearest"] {
                match &v[part] {
                    Value::Null => failures.push(format!("{at}: no {part}")),
                    b => inside(&format!("{at}: {part}"), b, vw, vh, &mut failures),
                }
            }
            if project == "vast-demo" {
                match &v["light_curve"] {
                    Value::Null => failures.push(format!("{at}: no light curve")),
                    b => inside(&format!("{at}: light curve"), b, vw, vh, &mut failures),
                }
            }
            assert_eq!(v["scrolled"].as_f64(), Some(0.0), "{at}");
        }
        // Narrower than the scanning layout: it stacks, and nothing makes
        // the page scroll sideways.
        for (w, h) in [(1024, 768), (390, 844)] {
            show_at(&s, &app, (id, &name), project, w, h).await;
            let wide = s
                .script(
                    "return [document.documentElement.scrollWidth, innerWidth];",
                    vec![],
                )
                .await;
            let (page, view) = (wide[0].as_f64().unwrap(), wide[1].as_f64().unwrap());
            if page > view + 1.0 {
                failures.push(format!(
                    "{project} {name} at {w}×{h}: the page is {page} px wide in a {view} px window"
                ));
            }
        }
        if project == "vast-demo" {
            colour_bar_matches_the_limits(&s, &name).await;
        }
    }
    s.close().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The candidate at `w` × `h`, painted, and its screenshot taken.
async fn show_at(
    s: &crate::webdriver::Session,
    app: &TestApp,
    (id, name): (i64, &str),
    project: &str,
    w: i64,
    h: i64,
) {
    s.set_viewport(w, h).await;
    s.goto(&app.url(&format!("/candidates/{id}"))).await;
    s.wait_for(
        &format!("{name} painted at {w}×{h}"),
        READY_JS,
        Duration::from_secs(20),
    )
    .await;
    s.screenshot(&screenshot_path(&format!("decision-{project}-{w}x{h}.png")))
        .await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i]
}

/// Rating the VAST demo with the keyboard: from a verdict key to the next
/// candidate with every picture drawn, p50 and p95 (target p95 ≤ 60 ms,
/// checked in `make bench`, VETTER_BENCH_PAINT=1, on an optimised build).
/// Also weighs drawing in the browser against asking the server: the time
/// to redraw every picture in another stretch here, and the round trip for
/// one server-rendered preview.
#[sqlx::test]
async fn rate_the_demo_with_pictures_keyboard_only(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool.clone()).await;
    vetter::cli::demo::fill(&pool, MediaStore::new(app.media_root()))
        .await
        .unwrap();
    // Only the VAST demo, whose candidates each have a cutout and a cube.
    let reviewer = app.create_user("dave", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &reviewer).await;
    s.set_viewport(1440, 900).await;
    s.goto(&app.url("/queue")).await;
    s.script(
        "const p = document.querySelector('form select[name=project]'); p.value = 'vast-demo'; p.form.submit();",
        vec![],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.goto(&app.url("/next")).await;
    let mut names = Vec::new();
    for i in 0..20 {
        s.wait_for(
            "a candidate ready to rate",
            READY_TO_RATE_JS,
            Duration::from_secs(20),
        )
        .await;
        let name = s
            .script(
                "return document.getElementById('candidate').dataset.candidateName;",
                vec![],
            )
            .await;
        names.push(name.as_str().unwrap_or_default().to_string());
        s.press(if i % 2 == 0 { "y" } else { "n" }).await;
        // The next one must arrive before its readiness is waited for.
        s.wait_for(
            "the next candidate",
            &format!(
                "const c = document.getElementById('candidate'); return !!c && c.dataset.candidateName !== {};",
                serde_json::to_string(names.last().unwrap()).unwrap()
            ),
            Duration::from_secs(20),
        )
        .await;
    }
    s.wait_for(
        "the last candidate painted",
        READY_TO_RATE_JS,
        Duration::from_secs(20),
    )
    .await;
    let mut paints: Vec<f64> = serde_json::from_value(
        s.script("return window.__vetterPaints.splice(0);", vec![])
            .await,
    )
    .unwrap();
    paints.sort_by(f64::total_cmp);
    let (p50, p95) = (percentile(&paints, 50.0), percentile(&paints, 95.0));
    println!(
        "demo keypress → next candidate with every picture drawn: p50 {p50:.1} ms, p95 {p95:.1} ms (n = {})",
        paints.len()
    );
    assert_eq!(paints.len(), 20, "one paint per rating: {paints:?}");
    // Where the time went, as medians of each step after the key.
    let steps: Vec<serde_json::Map<String, Value>> = serde_json::from_value(
        s.script("return window.__vetterPaintSteps.splice(0);", vec![])
            .await,
    )
    .unwrap();
    let median = |name: &str| {
        let mut v: Vec<f64> = steps.iter().filter_map(|m| m.get(name)?.as_f64()).collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 50.0)
    };
    println!(
        "  medians after the key: sent {:.1} ms, response {:.1}, swapped {:.1}, settled {:.1}, pictures drawn {:.1}, painted {:.1}",
        median("sent"),
        median("response"),
        median("swapped"),
        median("settled"),
        median("drawn"),
        median("painted")
    );
    // The rating requests as the browser saw them: until sent, and from
    // sent to the first byte back (the server's time, on this machine).
    let timing: Vec<(f64, f64, f64)> = serde_json::from_value(
        s.script(
            "return performance.getEntriesByType('resource').filter(e => /\\/rating$/.test(e.name))
               .map(e => [e.requestStart - e.startTime, e.responseStart - e.requestStart, e.responseEnd - e.responseStart]);",
            vec![],
        )
        .await,
    )
    .unwrap();
    let sorted = |f: fn(&(f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = timing.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (before, server, body) = (sorted(|t| t.0), sorted(|t| t.1), sorted(|t| t.2));
    println!(
        "  rating requests (n = {}): median {:.1} ms to send, {:.1} ms to the first byte back, {:.1} ms for the rest",
        server.len(),
        percentile(&before, 50.0),
        percentile(&server, 50.0),
        percentile(&body, 50.0)
    );
    let rated: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rated, 20);

    // Another stretch, drawn here, for every picture of the page...
    s.script("window.__vetterSkyPaints.splice(0);", vec![])
        .await;
    for _ in 0..8 {
        s.press("s").await;
    }
    let mut redraws: Vec<f64> = serde_json::from_value(
        s.script("return window.__vetterSkyPaints.splice(0);", vec![])
            .await,
    )
    .unwrap();
    redraws.sort_by(f64::total_cmp);
    // ...against one round trip for a picture the server has rendered
    // (its link is under "All details").
    s.press("i").await;
    s.wait_for(
        "the details",
        "return !!document.querySelector('ul.downloads a[href$=\"_png.png\"]');",
        Duration::from_secs(10),
    )
    .await;
    let trip = s
        .script_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('ul.downloads a[href$=\"_png.png\"]');
             const times = [];
             (async () => {
               for (let i = 0; i < 8; i++) {
                 const t0 = performance.now();
                 const r = await fetch(a.href + '?n=' + i, {cache: 'no-store'});
                 await createImageBitmap(await r.blob());
                 times.push(performance.now() - t0);
               }
               done(times.sort((x, y) => x - y));
             })();",
            vec![],
        )
        .await
        .unwrap();
    let trips: Vec<f64> = serde_json::from_value(trip).unwrap();
    println!(
        "redraw one picture in another stretch in the browser: median {:.2} ms (n = {}); \
         fetch and decode one server-rendered preview: median {:.2} ms (n = {})",
        percentile(&redraws, 50.0),
        redraws.len(),
        percentile(&trips, 50.0),
        trips.len()
    );
    if std::env::var("VETTER_BENCH_PAINT").is_ok() {
        let verdict = if p95 <= 60.0 { "PASS" } else { "FAIL" };
        println!("demo paint target (p95 ≤ 60 ms): {verdict}");
        assert!(p95 <= 60.0, "p95 keypress-to-paint {p95:.1} ms > 60 ms");
    }
    s.close().await;
}

/// The light curve zooms by dragging across it and with `]` back out; `l`
/// puts the flux on a log axis, and the next candidate keeps it.
#[sqlx::test]
async fn the_light_curve_zooms_and_goes_log(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool.clone()).await;
    vetter::cli::demo::fill(&pool, MediaStore::new(app.media_root()))
        .await
        .unwrap();
    let reviewer = app.create_user("erin", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &reviewer).await;
    s.set_viewport(1440, 900).await;
    let (id, name) = near_a_pulsar(&pool, "vast-demo").await;
    s.goto(&app.url(&format!("/candidates/{id}"))).await;
    s.wait_for(
        &format!("{name} painted"),
        READY_JS,
        Duration::from_secs(20),
    )
    .await;
    const STATE: &str = r#"
const box = document.getElementById('light-curve');
const svg = box.querySelector('svg.lightcurve');
const r = svg.getBoundingClientRect();
return {flux: box.dataset.lcFlux, points: box.querySelectorAll('g.lc-pt').length,
  from: +svg.dataset.fromMs, to: +svg.dataset.toMs,
  left: r.left, top: r.top, width: r.width, height: r.height,
  candidate: document.getElementById('candidate').dataset.candidateName};
"#;
    let before = s.script(STATE, vec![]).await;
    let points = before["points"].as_u64().unwrap();
    assert!(points >= 6, "{before}");
    let f = |k: &str| before[k].as_f64().unwrap();
    // Across the middle of the plot (its frame runs from 78 to 884 of 900).
    let y = f("top") + f("height") * 0.5;
    let x = |frac: f64| f("left") + f("width") * (78.0 + 806.0 * frac) / 900.0;
    s.drag((x(0.3), y), (x(0.7), y)).await;
    let zoomed_js = format!(
        "const s = document.querySelector('#light-curve svg.lightcurve'); return !!s && +s.dataset.fromMs > {};",
        f("from")
    );
    s.wait_for("the dragged stretch", &zoomed_js, Duration::from_secs(10))
        .await;
    let zoomed = s.script(STATE, vec![]).await;
    let span = f("to") - f("from");
    let got = zoomed["to"].as_f64().unwrap() - zoomed["from"].as_f64().unwrap();
    assert!(
        (got / span - 0.4).abs() < 0.05,
        "dragged 40 % of the axis, got {:.3}: {zoomed}",
        got / span
    );
    let inner = zoomed["points"].as_u64().unwrap();
    assert!(inner > 0 && inner < points, "{zoomed}");
    // Out again with the key, until the whole curve is back.
    for _ in 0..4 {
        s.press("]").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let back = s.script(STATE, vec![]).await;
    assert_eq!(back["points"].as_u64(), Some(points), "{back}");
    assert_eq!(back["from"], before["from"]);
    // Log flux, remembered for the next candidate.
    s.press("l").await;
    s.wait_for(
        "a log axis",
        "return document.getElementById('light-curve').dataset.lcFlux === 'log';",
        Duration::from_secs(10),
    )
    .await;
    s.press("j").await;
    s.wait_for(
        "the next candidate, on a log axis",
        &format!(
            "const c = document.getElementById('candidate'); const b = document.getElementById('light-curve');
             return !!c && c.dataset.candidateName !== {} && !!b && b.dataset.lcFlux === 'log';",
            serde_json::to_string(&name).unwrap()
        ),
        Duration::from_secs(10),
    )
    .await;
    s.screenshot(&screenshot_path("decision-light-curve-log.png"))
        .await;
    s.close().await;
}

/// The colour bar's end labels are the stretch's limits, in the file's
/// unit (mJy shown as such), for each stretch.
async fn colour_bar_matches_the_limits(s: &crate::webdriver::Session, name: &str) {
    for _ in 0..4 {
        let v = s
            .script_async(
                "const done = arguments[arguments.length - 1];
                 const fig = document.querySelector('#candidate figure.sky.sky-ready');
                 fetch(fig.dataset.sky).then(r => r.json()).then(j => done({
                   limits: j.limits, unit: j.unit,
                   stretch: window.__vetterSky.prefs.stretch,
                   lo: fig.querySelector('.sky-lo').textContent,
                   hi: fig.querySelector('.sky-hi').textContent,
                 }));",
                vec![],
            )
            .await
            .unwrap();
        let stretch = v["stretch"].as_str().unwrap();
        let limits = if stretch == "zscale" {
            &v["limits"]["zscale"]
        } else {
            &v["limits"]["percentile"]
        };
        let unit = v["unit"].as_str().unwrap();
        for (end, want) in [("lo", &limits[0]), ("hi", &limits[1])] {
            let label = v[end].as_str().unwrap();
            let want = want.as_f64().unwrap();
            let (number, shown_unit) = label.split_once(' ').unwrap_or((label, ""));
            let got: f64 = number.replace('−', "-").parse().unwrap_or(f64::NAN);
            assert_eq!(shown_unit, unit, "{name} {stretch}: {label}");
            assert!(
                (got - want).abs() <= want.abs() * 0.006 + 1e-9,
                "{name} {stretch}: the {end} label {label:?} is not the limit {want}"
            );
        }
        s.press("s").await;
    }
}

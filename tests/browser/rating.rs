//! The keyboard rating flow: a reviewer rates candidates with single keys,
//! each rating swapping in the next candidate in one round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;
use vetter::domain::{Role, UserId};

use crate::harness::{browser, browser_lock, login, screenshot_path, Demo, TestApp, TestUser};
use crate::webdriver::{keys, Session};

const WAIT: Duration = Duration::from_secs(10);

/// What the page shows: the candidate article's data attributes and the URL.
const STATE_JS: &str = r#"
const c = document.querySelector('main#main #candidate');
const h1 = c && c.querySelector('h1');
return {
  path: location.pathname,
  found: !!c,
  name: c ? (c.dataset.candidateName || null) : null,
  id: c ? (c.dataset.candidateId || null) : null,
  h1: h1 ? h1.textContent.trim() : null,
  empty: !!document.querySelector('#queue-empty'),
  doc: performance.timeOrigin,
  settled: !!c && !c.classList.contains('htmx-added') && !!c.dataset.paintedAt
    && performance.now() - parseFloat(c.dataset.paintedAt) >= (parseInt(c.dataset.guardMs, 10) || 0),
  title: document.title,
  page_h1: (document.querySelector('main h1') || {textContent: ''}).textContent.trim(),
  active: document.activeElement ? document.activeElement.tagName + (document.activeElement.name ? '[name=' + document.activeElement.name + ']' : '') : null,
};
"#;

/// Resolves once `#candidate` is the named one and htmx has settled it (the
/// swapped-in fragment keeps htmx's `htmx-added` class until then), or after
/// a second. Until it settles (htmx's `settleDelay`, 20 ms) htmx has
/// not yet processed the new fragment's `hx-*` attributes, so a key pressed
/// then falls back to a plain link or form: `a_key_pressed_as_the_next_candidate_arrives_is_still_a_swap`
/// covers that; here the flow waits, as a person would.
const WAIT_IN_PAGE_JS: &str = r#"
const name = arguments[0], done = arguments[arguments.length - 1];
const t0 = performance.now();
(function check() {
  const c = document.querySelector('main#main #candidate');
  // Settled, painted, and past the guard time in which verdict keys are
  // dropped: when a reviewer can act on what they see.
  const settled = c && !c.classList.contains('htmx-added') && c.dataset.paintedAt
    && performance.now() - parseFloat(c.dataset.paintedAt) >= (parseInt(c.dataset.guardMs, 10) || 0);
  if (c && c.dataset.candidateName === name && settled) return done(true);
  if (performance.now() - t0 > 1000) return done(false);
  setTimeout(check, 20);
})();
"#;

/// The rating keys and what they store.
fn verdict_of(key: &str) -> &'static str {
    match key {
        "y" => "real",
        "n" => "not_real",
        "u" => "unsure",
        _ => unreachable!(),
    }
}

/// A reviewer's current rating: verdict and tag names.
type Rating = (String, BTreeSet<String>);

struct Flow<'a> {
    s: &'a Session,
    demo: &'a Demo,
    pool: &'a PgPool,
    user: UserId,
    /// What alice's ratings should be, by candidate name.
    expected: BTreeMap<String, Rating>,
    /// Keypress-to-paint times collected from `window.__vetterPaints`.
    paints: Vec<f64>,
    /// Rating keypresses made (each should have produced one paint sample).
    rating_presses: usize,
    /// htmx requests by path shape (`candidates/rating`, `next`, ...): time
    /// to first byte and total, in ms, from the browser's resource timings.
    requests: BTreeMap<String, Vec<(f64, f64)>>,
    /// The current document's `performance.timeOrigin`: it changes on a full
    /// page load, and not on an htmx swap.
    doc: Option<f64>,
    /// Whether the next [`Flow::wait_candidate`] may see a new document
    /// (after a reload, Back or Forward).
    load_allowed: bool,
}

impl<'a> Flow<'a> {
    fn new(s: &'a Session, demo: &'a Demo, pool: &'a PgPool, user: UserId) -> Self {
        Flow {
            s,
            demo,
            pool,
            user,
            expected: BTreeMap::new(),
            paints: Vec::new(),
            rating_presses: 0,
            requests: BTreeMap::new(),
            doc: None,
            load_allowed: true,
        }
    }

    fn id(&self, name: &str) -> i64 {
        self.demo.ids[name]
    }

    async fn state(&self) -> Value {
        self.s.script(STATE_JS, vec![]).await
    }

    /// Waits until `#candidate` is `name` and the URL is its page.
    async fn wait_candidate(&mut self, name: &str, why: &str) {
        let id = self.id(name);
        let want_path = format!("/candidates/{id}");
        let deadline = Instant::now() + WAIT;
        // A swap replaces #candidate at once, so a page without one for a
        // while is not going to get one.
        let mut absent_since: Option<Instant> = None;
        loop {
            // Wait inside the page rather than poll it over WebDriver, which
            // would compete with the page for its main thread.
            let _ = self
                .s
                .script_async(WAIT_IN_PAGE_JS, vec![json!(name)])
                .await;
            let st = self.state().await;
            if st["found"] == false {
                let since = *absent_since.get_or_insert_with(Instant::now);
                assert!(
                    since.elapsed() < Duration::from_secs(3),
                    "{why}: expected #candidate[data-candidate-name={name}], but the page has no \
                     `main#main #candidate`; page state: {st}"
                );
            } else {
                absent_since = None;
            }
            if st["name"] == name && st["settled"] == true {
                let doc = st["doc"].as_f64();
                if self.doc.is_some() && doc != self.doc {
                    println!("{why}: {name} came with a new document (a full page load)");
                    assert!(
                        self.load_allowed,
                        "{why}: {name} came with a full page load, not an htmx swap of #candidate"
                    );
                }
                self.doc = doc;
                self.load_allowed = false;
                assert_eq!(
                    st["id"].as_str(),
                    Some(id.to_string().as_str()),
                    "{why}: #candidate[data-candidate-id] should be {id} for {name}: {st}"
                );
                assert_eq!(
                    st["h1"].as_str(),
                    Some(name),
                    "{why}: `#candidate h1` should be the candidate name: {st}"
                );
                // The URL is pushed with the swap; allow it a moment.
                let path_deadline = Instant::now() + Duration::from_secs(2);
                loop {
                    let path = self.s.current_path().await;
                    if path == want_path {
                        return;
                    }
                    assert!(
                        Instant::now() < path_deadline,
                        "{why}: showing {name}, but the URL is {path}, not {want_path}"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{why}: expected #candidate[data-candidate-name={name}] within {WAIT:?}; page state: {st}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The checked state of the tag checkboxes, by data-key.
    async fn checked_tags(&self) -> BTreeMap<String, bool> {
        let v = self
            .s
            .script(
                "return [...document.querySelectorAll('#rating-form input[name=tags]')]
                   .map(i => [i.dataset.key || '', i.checked]);",
                vec![],
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_bool().unwrap()))
            .collect()
    }

    /// Reloads, Back or Forward: the next page may be a new document. Takes
    /// the paint samples first, which the old document would lose.
    async fn before_page_load(&mut self) {
        self.collect_paints().await;
        self.load_allowed = true;
    }

    /// Moves the page's paint samples into `self.paints` (emptying the
    /// page's array in place, so none is counted twice). Call before any
    /// full page load, which would lose them.
    async fn collect_paints(&mut self) {
        let v = self
            .s
            .script(
                "const p = window.__vetterPaints; return Array.isArray(p) ? p.splice(0) : null;",
                vec![],
            )
            .await;
        let requests = self
            .s
            .script(
                "const r = performance.getEntriesByType('resource')
                   .filter(e => e.initiatorType === 'xmlhttprequest')
                   .map(e => [new URL(e.name).pathname, e.responseStart - e.requestStart, e.responseEnd - e.startTime]);
                 performance.clearResourceTimings();
                 return r;",
                vec![],
            )
            .await;
        for r in requests.as_array().unwrap() {
            let path = r[0].as_str().unwrap();
            let kind = path
                .split('/')
                .filter(|p| !p.is_empty() && !p.bytes().all(|b| b.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join("/");
            self.requests.entry(kind).or_default().push((
                r[1].as_f64().unwrap_or(f64::NAN),
                r[2].as_f64().unwrap_or(f64::NAN),
            ));
        }
        match v.as_array() {
            Some(a) => self.paints.extend(
                a.iter()
                    .map(|x| x.as_f64().expect("paint times are numbers")),
            ),
            None => println!(
                "window.__vetterPaints is missing on {}",
                self.s.current_path().await
            ),
        }
    }

    /// On the page of `name`: toggles the tags with `tag_keys`, checks the
    /// boxes follow, presses `verdict_key`, and waits for `next`.
    async fn rate(&mut self, name: &str, tag_keys: &[&str], verdict_key: &str, next: &str) {
        let before = self.checked_tags().await;
        assert_eq!(
            before.keys().cloned().collect::<Vec<_>>(),
            (1..=self.demo.tags.len())
                .map(|i| i.to_string())
                .collect::<Vec<_>>(),
            "on {name}: `#rating-form input[name=tags]` should carry data-key 1..{} in tag order",
            self.demo.tags.len()
        );
        for k in tag_keys {
            self.s.press(k).await;
        }
        let after = self.checked_tags().await;
        for (k, was) in &before {
            let toggled = tag_keys.iter().filter(|t| *t == k).count() % 2 == 1;
            assert_eq!(
                after[k],
                was ^ toggled,
                "on {name}: key {k:?} should toggle input[name=tags][data-key=\"{k}\"]"
            );
        }
        let tags: BTreeSet<String> = after
            .iter()
            .filter(|(_, on)| **on)
            .map(|(k, _)| self.demo.tags[k.parse::<usize>().unwrap() - 1].1.clone())
            .collect();
        self.s.press(verdict_key).await;
        self.rating_presses += 1;
        self.expected
            .insert(name.into(), (verdict_of(verdict_key).into(), tags));
        self.wait_candidate(next, &format!("after rating {name} with {verdict_key:?}"))
            .await;
    }

    async fn db_ratings(&self) -> BTreeMap<String, Rating> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.name, r.verdict::text FROM ratings r JOIN candidates c ON c.id = r.candidate_id
             WHERE r.user_id = $1",
        )
        .bind(self.user)
        .fetch_all(self.pool)
        .await
        .unwrap();
        let tags: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.name, t.name FROM rating_tags rt
             JOIN candidates c ON c.id = rt.candidate_id JOIN tags t ON t.id = rt.tag_id
             WHERE rt.user_id = $1",
        )
        .bind(self.user)
        .fetch_all(self.pool)
        .await
        .unwrap();
        let mut out: BTreeMap<String, Rating> = BTreeMap::new();
        for (name, verdict) in rows {
            assert!(
                out.insert(name.clone(), (verdict, BTreeSet::new()))
                    .is_none(),
                "two ratings by the same reviewer for {name}"
            );
        }
        for (name, tag) in tags {
            out.get_mut(&name)
                .unwrap_or_else(|| panic!("rating_tags row for {name} without a rating"))
                .1
                .insert(tag);
        }
        out
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn setup(pool: PgPool) -> (TestApp, Demo, TestUser) {
    let app = TestApp::spawn(pool).await;
    let demo = app.upload_demo(25).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    (app, demo, alice)
}

/// The keys for candidate `n` (1-based): a varied mix of tags and verdicts.
fn plan(n: usize) -> (Vec<&'static str>, &'static str) {
    let tags = match n % 3 {
        0 => vec![],
        1 => vec!["1"],
        _ => vec!["2", "3"],
    };
    let verdict = ["y", "n", "u", "y"][n % 4];
    (tags, verdict)
}

fn name(n: usize) -> String {
    format!("c{n:02}")
}

#[sqlx::test]
async fn rate_twenty_candidates_with_the_keyboard_only(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let started = Instant::now();
    let (app, demo, alice) = setup(pool).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;

    s.goto(&app.url("/next")).await;
    let mut f = Flow::new(&s, &demo, &app.pool, alice.id);
    f.wait_candidate("c01", "GET /next with nothing rated")
        .await;

    // c01..c10, then a reload shows the same candidate and the flow goes on.
    for n in 1..=10 {
        let (tags, verdict) = plan(n);
        f.rate(&name(n), &tags, verdict, &name(n + 1)).await;
    }
    f.before_page_load().await;
    s.refresh().await;
    f.wait_candidate("c11", "after reloading the page").await;
    // The screenshot is nicer once the lazily loaded parts are in (not a
    // contract: at most a second, then take it anyway).
    let _ = s
        .script_async(
            "const done = arguments[0], t0 = performance.now();
             (function check() {
               if (!document.querySelector('[hx-trigger=load]') || performance.now() - t0 > 1000) return done(true);
               setTimeout(check, 20);
             })();",
            vec![],
        )
        .await;
    let shot = screenshot_path("candidate.png");
    s.screenshot(&shot).await;
    println!("candidate screenshot (1440×900): {}", shot.display());

    for n in 11..=15 {
        let (tags, verdict) = plan(n);
        f.rate(&name(n), &tags, verdict, &name(n + 1)).await;
    }

    // z: undo the last rating (c15): back on c15, its rating gone.
    s.press("z").await;
    f.wait_candidate("c15", "after z (undo) on c16").await;
    let db = f.db_ratings().await;
    assert!(
        !db.contains_key("c15"),
        "after z the rating of c15 should be removed, found {:?}",
        db.get("c15")
    );
    assert_eq!(db.len(), 14, "after undo: {db:?}");
    assert!(
        f.checked_tags().await.values().all(|on| !on),
        "after undo, c15's tag boxes should be clear"
    );
    f.expected.remove("c15");
    // Re-rate it differently.
    f.rate("c15", &["3"], "n", "c16").await;

    for n in 16..=17 {
        let (tags, verdict) = plan(n);
        f.rate(&name(n), &tags, verdict, &name(n + 1)).await;
    }

    // k, k: walk back through what alice saw: c17, then c16.
    s.press("k").await;
    f.wait_candidate("c17", "after k on c18").await;
    s.press("k").await;
    f.wait_candidate("c16", "after k on c17").await;

    // Browser Back and Forward follow the pushed URLs.
    f.before_page_load().await;
    s.back().await;
    f.wait_candidate("c17", "after browser Back from c16").await;
    f.before_page_load().await;
    s.back().await;
    f.wait_candidate("c18", "after a second browser Back").await;
    f.before_page_load().await;
    s.forward().await;
    f.wait_candidate("c17", "after browser Forward").await;
    f.before_page_load().await;
    s.forward().await;
    f.wait_candidate("c16", "after a second browser Forward")
        .await;

    // j: onwards without rating. From c16 (rated) that is c17 (the walk
    // forward) or c18 (the queue's next unrated); either way, on to c18.
    s.press("j").await;
    let deadline = Instant::now() + WAIT;
    let after_j = loop {
        let st = f.state().await;
        match st["name"].as_str() {
            Some(n @ ("c17" | "c18")) => break n.to_string(),
            _ => assert!(
                Instant::now() < deadline,
                "after j on c16: expected c17 or c18, page state: {st}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!("j on c16 went to {after_j}");
    f.wait_candidate(&after_j, "after j on c16").await;
    if after_j == "c17" {
        s.press("j").await;
        f.wait_candidate("c18", "after j on c17").await;
    }

    for n in 18..=20 {
        let (tags, verdict) = plan(n);
        f.rate(&name(n), &tags, verdict, &name(n + 1)).await;
    }
    f.collect_paints().await;

    // The database holds exactly what was pressed.
    let db = f.db_ratings().await;
    assert_eq!(db, f.expected, "alice's ratings in the database");
    assert_eq!(db.len(), 20);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM ratings WHERE user_id = $1")
        .bind(alice.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total, 20, "no duplicate or stray ratings");
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM rating_history WHERE user_id = $1")
        .bind(alice.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    println!("rating_history rows for alice: {history}");

    // Keypress to next candidate painted: p95 under 100 ms.
    let mut paints = f.paints.clone();
    println!(
        "paint samples: {} for {} rating keypresses: {paints:?}",
        paints.len(),
        f.rating_presses
    );
    assert!(
        paints.len() >= f.rating_presses - 2,
        "window.__vetterPaints should hold one sample per rating keypress \
         ({} presses, {} samples)",
        f.rating_presses,
        paints.len()
    );
    paints.sort_by(f64::total_cmp);
    let (p50, p95) = (percentile(&paints, 50.0), percentile(&paints, 95.0));
    println!(
        "keypress → next candidate painted: p50 {p50:.1} ms, p95 {p95:.1} ms, max {:.1} ms (n = {})",
        paints[paints.len() - 1],
        paints.len()
    );
    for (kind, times) in &f.requests {
        let mut ttfb: Vec<f64> = times.iter().map(|t| t.0).collect();
        let mut total: Vec<f64> = times.iter().map(|t| t.1).collect();
        ttfb.sort_by(f64::total_cmp);
        total.sort_by(f64::total_cmp);
        println!(
            "  htmx {kind:<20} n={:<3} request→first byte p50 {:.1} p95 {:.1} ms; whole request p50 {:.1} p95 {:.1} ms",
            times.len(),
            percentile(&ttfb, 50.0),
            percentile(&ttfb, 95.0),
            percentile(&total, 50.0),
            percentile(&total, 95.0),
        );
    }
    println!(
        "whole test: {:?}; machine: {} CPUs, load average {}",
        started.elapsed(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // The figure is a performance target, met in `make bench` (an optimised
    // build on a quiet machine, VETTER_BENCH_PAINT=1); a debug build under
    // `make test` only reports it.
    if std::env::var("VETTER_BENCH_PAINT").is_ok() {
        assert!(p95 < 100.0, "p95 keypress-to-paint {p95:.1} ms ≥ 100 ms");
        println!("paint target (p95 < 100 ms): PASS");
    }
    s.close().await;
}

#[sqlx::test]
async fn typing_in_notes_does_not_trigger_shortcuts(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let (app, demo, alice) = setup(pool).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;
    s.goto(&app.url("/next")).await;
    let mut f = Flow::new(&s, &demo, &app.pool, alice.id);
    f.wait_candidate("c01", "GET /next").await;

    // e focuses the notes; what is typed there stays there.
    s.press("e").await;
    let st = f.state().await;
    assert_eq!(
        st["active"], "TEXTAREA[name=notes]",
        "e should focus textarea[name=notes]: {st}"
    );
    s.press("yes no 123").await;
    let notes = s.find("#rating-form textarea[name=notes]").await;
    assert_eq!(s.property(&notes, "value").await, "yes no 123");
    // Give a wrongly fired shortcut time to show itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = f.state().await;
    assert_eq!(st["name"], "c01", "typing must not submit: {st}");
    assert!(
        f.checked_tags().await.values().all(|on| !on),
        "typing digits in the notes must not toggle tags"
    );
    assert!(f.db_ratings().await.is_empty(), "no rating while typing");

    // Escape leaves the field; then u submits, with the notes.
    s.press(keys::ESCAPE).await;
    let st = f.state().await;
    assert_ne!(
        st["active"], "TEXTAREA[name=notes]",
        "Escape should leave the notes field: {st}"
    );
    s.press("u").await;
    f.wait_candidate("c02", "after u on c01").await;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT verdict::text, notes FROM ratings WHERE user_id = $1 AND candidate_id = $2",
    )
    .bind(alice.id)
    .bind(demo.ids["c01"])
    .fetch_optional(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        Some(("unsure".to_string(), "yes no 123".to_string())),
        "c01's rating"
    );
    // The notes box of the next candidate starts empty.
    let notes = s.find("#rating-form textarea[name=notes]").await;
    assert_eq!(s.property(&notes, "value").await, "");

    // ? shows the help overlay, Escape closes it.
    s.press("?").await;
    s.wait_for(
        "#shortcut-help shown by ?",
        "const h = document.getElementById('shortcut-help'); return !!h && !h.hidden;",
        WAIT,
    )
    .await;
    s.press(keys::ESCAPE).await;
    s.wait_for(
        "#shortcut-help closed by Escape",
        "const h = document.getElementById('shortcut-help'); return !h || h.hidden;",
        WAIT,
    )
    .await;
    s.close().await;
}

#[sqlx::test]
async fn an_empty_queue_says_so(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let app = TestApp::spawn(pool).await;
    let alice = app.create_user("alice", Role::Reviewer).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;
    s.goto(&app.url("/next")).await;
    s.wait_for(
        "#queue-empty on /next with no candidates",
        "return !!document.querySelector('#queue-empty');",
        WAIT,
    )
    .await;
    s.close().await;
}

/// A key pressed while the next candidate is being swapped in (before htmx
/// has settled and processed the new fragment) must still act through htmx:
/// a fast reviewer's second keypress is not a full page load. The keydown is
/// dispatched in the microtask right after the swap, where a keypress queued
/// during the swap would run (Chromium runs input before timers). A verdict
/// key then would be dropped (see the double-press test), so this presses
/// Skip.
#[sqlx::test]
async fn a_key_pressed_as_the_next_candidate_arrives_is_still_a_swap(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let (app, demo, alice) = setup(pool).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;
    s.goto(&app.url("/next")).await;
    let mut f = Flow::new(&s, &demo, &app.pool, alice.id);
    f.wait_candidate("c01", "GET /next").await;
    s.script(
        r#"
        const obs = new MutationObserver(() => {
          const c = document.querySelector('#candidate');
          if (!c || c.dataset.candidateName !== 'c02') return;
          obs.disconnect();
          window.__vetterRace = {processed: !c.classList.contains('htmx-added')};
          document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j', bubbles: true, cancelable: true}));
        });
        obs.observe(document.getElementById('main'), {childList: true, subtree: true});
        "#,
        vec![],
    )
    .await;
    s.press("y").await;
    f.wait_candidate(
        "c03",
        "after y on c01 and j pressed as c02 arrived (no full page load allowed)",
    )
    .await;
    let db = f.db_ratings().await;
    assert_eq!(db.get("c01").map(|r| r.0.as_str()), Some("real"));
    assert_eq!(db.get("c02"), None, "c02 was skipped, not rated");
    s.close().await;
}

/// Two presses of a verdict key in quick succession rate one candidate: the
/// second lands while the next candidate is on its way or has just been
/// painted, and is dropped with a visible sign rather than rating a
/// candidate nobody has looked at.
#[sqlx::test]
async fn two_quick_verdict_presses_rate_one_candidate(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let (app, demo, alice) = setup(pool).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;
    s.goto(&app.url("/next")).await;
    let mut f = Flow::new(&s, &demo, &app.pool, alice.id);
    let order = ["c01", "c02", "c03", "c04"];
    f.wait_candidate(order[0], "GET /next").await;
    for (i, gap_ms) in [30u64, 100, 200].into_iter().enumerate() {
        let (first, second) = (order[i], order[i + 1]);
        // Both presses from inside the page, so the gap is the page's own.
        s.script(
            r#"
            const gap = arguments[0];
            window.__vetterDropped = false;
            const c0 = document.getElementById('candidate');
            const obs = new MutationObserver(() => {
              const c = document.getElementById('candidate');
              if (c && c.classList.contains('key-dropped')) window.__vetterDropped = true;
            });
            obs.observe(document.getElementById('main'), {subtree: true, attributes: true, attributeFilter: ['class']});
            const press = () => document.dispatchEvent(new KeyboardEvent('keydown', {key: 'y', bubbles: true, cancelable: true}));
            press();
            setTimeout(press, gap);
            "#,
            vec![json!(gap_ms)],
        )
        .await;
        f.wait_candidate(second, &format!("y, y {gap_ms} ms apart on {first}"))
            .await;
        // Long enough for a second rating and its swap to have happened.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let st = f.state().await;
        assert_eq!(
            st["name"].as_str(),
            Some(second),
            "presses {gap_ms} ms apart: {second} should still be on screen: {st}"
        );
        let db = f.db_ratings().await;
        assert_eq!(db.get(first).map(|r| r.0.as_str()), Some("real"));
        assert_eq!(
            db.get(second),
            None,
            "presses {gap_ms} ms apart: the second press rated {second}"
        );
        let dropped = s.script("return window.__vetterDropped;", vec![]).await;
        assert_eq!(
            dropped,
            json!(true),
            "the dropped press left no sign ({gap_ms} ms)"
        );
    }
    s.close().await;
}

/// Back and Forward between candidates reached with the keyboard: htmx keeps
/// no copies of pages (`hx-history="false"`), so each is asked for whole and
/// shown as it is now, and nothing of them is left in the browser's storage.
#[sqlx::test]
async fn back_and_forward_show_the_candidates_seen(pool: PgPool) {
    let _one_browser = browser_lock().await;
    let (app, demo, alice) = setup(pool).await;
    let (_driver, s) = browser().await;
    login(&s, &app, &alice).await;
    s.goto(&app.url("/next")).await;
    let mut f = Flow::new(&s, &demo, &app.pool, alice.id);
    f.wait_candidate("c01", "GET /next").await;
    s.press("j").await;
    f.wait_candidate("c02", "j (skip)").await;
    // Without a copy to restore, the browser loads the page whole.
    let whole = |name: &str| {
        format!(
            "const c = document.querySelector('main#main #candidate'); \
             return !!c && c.dataset.candidateName === '{name}' && !!c.dataset.paintedAt;"
        )
    };
    s.back().await;
    s.wait_for("c01 again after Back", &whole("c01"), WAIT)
        .await;
    assert_eq!(
        s.current_path().await,
        format!("/candidates/{}", f.id("c01"))
    );
    let cached = s
        .script(
            "return sessionStorage.getItem('htmx-history-cache');",
            vec![],
        )
        .await;
    assert!(cached.is_null(), "htmx kept a copy of a page: {cached}");
    s.forward().await;
    s.wait_for("c02 again after Forward", &whole("c02"), WAIT)
        .await;
    assert_eq!(
        s.current_path().await,
        format!("/candidates/{}", f.id("c02"))
    );
    s.close().await;
}

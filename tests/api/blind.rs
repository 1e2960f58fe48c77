//! The blind rule, everywhere: a reviewer sees others' ratings (verdicts,
//! scores, tags, notes, who rated, counts by verdict) only of candidates
//! they have rated, unless the project has open review; administrators
//! only if the project exempts them.
//!
//! The walk requests every GET route of the route table as a reviewer who
//! has rated one candidate, with every ratings-related query (filters,
//! export choices, queue modes), and looks for what must stay hidden. A GET
//! route added to the table without an entry here fails
//! `every_get_route_is_walked`.

use std::collections::{BTreeSet, HashMap};

use reqwest::StatusCode;
use sqlx::PgPool;
use vetter::domain::Role;
use vetter::web::routes;

use crate::candidates::{names, rate, reviewer, survey, Survey};
use crate::helpers::TestApp;

/// The GET (and HEAD) routes the walk covers, as registered.
const WALKED: &[&str] = &[
    "/healthz",
    "/static/:version/:name",
    "/login",
    "/auth/check",
    "/",
    "/account",
    "/media/:id/:name",
    "/next",
    "/previous",
    "/queue",
    "/queue/left",
    "/candidates/:id",
    "/candidates/:id/nearby",
    "/candidates/:id/association/search",
    "/candidates/:id/simbad",
    "/candidates/:id/details",
    "/candidates/:id/firefly",
    "/candidates/:id/sky/:file",
    "/candidates/:id/light-curve",
    "/candidates",
    "/candidates.csv",
    "/candidates.vot",
    "/candidates/:id/lightcurve.csv",
    "/candidates/:id/voevent.xml",
    "/candidates/:id/group",
    "/batch",
    "/ratings",
    "/views",
    "/admin",
    "/admin/users",
    "/admin/users/:id",
    "/admin/tokens",
    "/admin/tags",
    "/admin/projects",
    "/admin/projects/:slug",
    "/admin/projects/:slug/delete",
    "/admin/projects/:slug/catalogues",
    "/admin/projects/:slug/gold",
    "/admin/projects/:slug/review",
    "/admin/projects/:slug/notifications",
    "/admin/deliveries",
    "/projects/:slug/model",
    "/admin/catalogues",
    "/admin/projects/:slug/observations/:observation/delete",
    "/admin/status",
    "/admin/audit",
    "/api/v1/openapi.json",
    "/api/v1/whoami",
    "/api/v1/projects",
    "/api/v1/projects/:project",
    "/api/v1/projects/:project/observations",
    "/api/v1/candidates",
    "/api/v1/candidates/:id",
    "/api/v1/candidates.csv",
    "/api/v1/candidates.vot",
    "/api/v1/ratings",
];

/// Every table filter that looks at ratings, and some that do not.
const FILTERS: &[&str] = &[
    "",
    "project=vast",
    "project=gleam",
    "reviewer=ann",
    "reviewer=ann&verdict=real",
    "reviewer=ann&verdict=unsure",
    "reviewer=alice",
    "reviewer=bob&verdict=not_real",
    "reviewer=carol&tag=Flare+star",
    "reviewer=eve",
    "verdict=real",
    "verdict=not_real",
    "verdict=unsure",
    "tag=Noise",
    "tag=Pulsar",
    "project=vast&tag=Noise&verdict=unsure",
    "rated=disagree",
    "rated=mine",
    "rated=not_mine",
    "rated=any",
    "rated=none",
    "sort=ratings&dir=desc",
];

/// Text only hidden ratings carry: ann's notes, alice's and bob's notes
/// in the survey, and "who: verdict" as the disagreements list writes it.
const SECRETS: &[&str] = &[
    "SECRET-NOTE",
    "He said",
    "first look",
    "second look",
    "alice: ",
    "bob: ",
    "carol: ",
    "<strong>alice</strong>",
    "<strong>bob</strong>",
    "<strong>carol</strong>",
    "<TD>alice</TD>",
    "<TD>bob</TD>",
    "<TD>carol</TD>",
];

/// The survey of `candidates`, plus ann, who rated c03, c06, c07
/// (twice), g01 and c08 with notes that say SECRET (SHARED for c08), and
/// eve, signed in, who rated only c08.
pub struct Blind {
    pub s: Survey,
    pub eve: TestApp,
    pub ann: TestApp,
    /// Tag ids of `vast` by name.
    pub tags: HashMap<&'static str, i64>,
    /// Held while the survey lives (declared last, so dropped last).
    _crowd: tokio::sync::MutexGuard<'static, ()>,
}

/// One blind survey at a time: each runs five or six apps, whose pools
/// together hold about 48 connections, and two at once (the test runner
/// runs two tests in parallel) took PostgreSQL to its 100 and were refused.
static CROWD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn blind_survey(pool: PgPool) -> Blind {
    let crowd = CROWD.lock().await;
    let s = survey(pool).await;
    let mut tags = HashMap::new();
    for name in ["Pulsar", "Noise", "Flare star"] {
        let id: i64 = sqlx::query_scalar(
            "SELECT t.id FROM tags t JOIN projects p ON p.id = t.project_id WHERE p.slug = 'vast' AND t.name = $1",
        )
        .bind(name)
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
        tags.insert(name, id);
    }
    let (ann, _) = reviewer(&s.app, "ann").await;
    let (eve, _) = reviewer(&s.app, "eve").await;
    let id = |n: &str| s.ids[n];
    rate(
        &ann,
        id("c03"),
        "unsure",
        &[tags["Noise"]],
        "SECRET-NOTE-c03",
    )
    .await;
    rate(
        &ann,
        id("c06"),
        "real",
        &[tags["Pulsar"]],
        "SECRET-NOTE-c06",
    )
    .await;
    rate(&ann, id("c07"), "not_real", &[], "SECRET-NOTE-c07-first").await;
    rate(&ann, id("c07"), "real", &[], "SECRET-NOTE-c07").await;
    rate(&ann, id("g01"), "real", &[], "SECRET-NOTE-g01").await;
    rate(&ann, id("c08"), "real", &[tags["Noise"]], "SHARED-NOTE-c08").await;
    rate(&eve, id("c08"), "not_real", &[], "eve's own look").await;
    Blind {
        s,
        eve,
        ann,
        tags,
        _crowd: crowd,
    }
}

fn is_get(spec: &routes::RouteSpec) -> bool {
    spec.method == reqwest::Method::GET || spec.method == reqwest::Method::HEAD
}

#[test]
fn every_get_route_is_walked() {
    let table: BTreeSet<&str> = routes::table()
        .iter()
        .filter(|s| is_get(s))
        .map(|s| s.path)
        .collect();
    let walked: BTreeSet<&str> = WALKED.iter().copied().collect();
    let missing: Vec<_> = table.difference(&walked).collect();
    assert!(
        missing.is_empty(),
        "GET routes the blind walk does not call: {missing:?}"
    );
    let stale: Vec<_> = walked.difference(&table).collect();
    assert!(stale.is_empty(), "stale entries in WALKED: {stale:?}");
}

/// The concrete addresses the walk requests for a route.
pub fn addresses(route: &str, b: &Blind) -> Vec<String> {
    let ids: Vec<i64> = b.s.ids.values().copied().collect();
    let per_candidate = |f: &dyn Fn(i64) -> String| ids.iter().map(|&i| f(i)).collect();
    let filtered = |path: &str, extra: &[&str]| {
        let mut out = Vec::new();
        for f in FILTERS {
            for e in extra {
                let q: Vec<&str> = [*f, *e].into_iter().filter(|s| !s.is_empty()).collect();
                out.push(format!("{path}?{}", q.join("&")));
            }
        }
        out
    };
    match route {
        "/healthz"
        | "/login"
        | "/auth/check"
        | "/"
        | "/account"
        | "/next"
        | "/queue"
        | "/queue/left"
        | "/views"
        | "/admin"
        | "/admin/users"
        | "/admin/tokens"
        | "/admin/tags"
        | "/admin/projects"
        | "/admin/status"
        | "/admin/deliveries"
        | "/admin/catalogues"
        | "/admin/audit"
        | "/api/v1/openapi.json"
        | "/api/v1/whoami"
        | "/api/v1/projects" => vec![route.to_string()],
        "/api/v1/projects/:project" => {
            vec![
                "/api/v1/projects/vast".into(),
                "/api/v1/projects/gleam".into(),
            ]
        }
        "/api/v1/projects/:project/observations" => vec![
            "/api/v1/projects/vast/observations".into(),
            "/api/v1/projects/gleam/observations".into(),
        ],
        // The read API refuses the table's sort (a 400, which leaks nothing).
        "/api/v1/candidates" => filtered(route, &["", "limit=1000"]),
        "/api/v1/candidates/:id" => per_candidate(&|i| format!("/api/v1/candidates/{i}")),
        "/api/v1/candidates.csv" | "/api/v1/candidates.vot" => filtered(
            route,
            &["", "ratings=current", "ratings=history", "ratings=none"],
        ),
        "/api/v1/ratings" => vec![
            "/api/v1/ratings".into(),
            "/api/v1/ratings?history=1".into(),
            "/api/v1/ratings?project=vast&history=1&limit=1".into(),
            "/api/v1/ratings?since=2000-01-01T00:00:00Z&history=1".into(),
        ],
        "/static/:version/:name" => vec!["/static/0/app.css".into()],
        "/media/:id/:name" => vec!["/media/999999/x.png".into()],
        "/previous" => per_candidate(&|i| format!("/previous?from={i}")),
        "/candidates/:id" => per_candidate(&|i| format!("/candidates/{i}")),
        "/candidates/:id/nearby" => per_candidate(&|i| format!("/candidates/{i}/nearby")),
        "/candidates/:id/simbad" => per_candidate(&|i| format!("/candidates/{i}/simbad")),
        "/candidates/:id/association/search" => {
            per_candidate(&|i| format!("/candidates/{i}/association/search?q=J"))
        }
        "/candidates/:id/details" => per_candidate(&|i| format!("/candidates/{i}/details")),
        "/candidates/:id/firefly" => per_candidate(&|i| format!("/candidates/{i}/firefly")),
        "/candidates/:id/sky/:file" => per_candidate(&|i| format!("/candidates/{i}/sky/999999")),
        "/candidates/:id/light-curve" => per_candidate(&|i| {
            format!("/candidates/{i}/light-curve?from=0&to=4000000000000&flux=log")
        }),
        "/candidates/:id/lightcurve.csv" => {
            per_candidate(&|i| format!("/candidates/{i}/lightcurve.csv"))
        }
        "/candidates/:id/voevent.xml" => per_candidate(&|i| format!("/candidates/{i}/voevent.xml")),
        "/candidates" | "/ratings" => filtered(route, &["", "per=500"]),
        "/candidates.csv" | "/candidates.vot" => filtered(
            route,
            &["", "ratings=current", "ratings=history", "ratings=none"],
        ),
        "/candidates/:id/group" => per_candidate(&|i| format!("/candidates/{i}/group")),
        "/batch" => {
            let mut out: Vec<String> = per_candidate(&|i| format!("/batch?group={i}"));
            out.extend(per_candidate(&|i| format!("/batch?group={i}&verdict=real")));
            for f in FILTERS {
                let q = format!("project=vast&{f}")
                    .replace('%', "%25")
                    .replace('&', "%26")
                    .replace('=', "%3D")
                    .replace('+', "%2B");
                out.push(format!("/batch?filter={q}"));
                out.push(format!("/batch?filter={q}&verdict=not_real"));
            }
            out
        }
        "/admin/users/:id" => vec!["/admin/users/1".into()],
        "/admin/projects/:slug" => vec!["/admin/projects/vast".into()],
        "/admin/projects/:slug/delete" => vec!["/admin/projects/vast/delete".into()],
        "/admin/projects/:slug/catalogues" => vec!["/admin/projects/vast/catalogues".into()],
        "/admin/projects/:slug/gold" => vec!["/admin/projects/vast/gold".into()],
        "/admin/projects/:slug/review" => vec!["/admin/projects/vast/review".into()],
        "/admin/projects/:slug/notifications" => {
            vec!["/admin/projects/vast/notifications".into()]
        }
        "/projects/:slug/model" => vec!["/projects/vast/model".into()],
        "/admin/projects/:slug/observations/:observation/delete" => {
            vec!["/admin/projects/vast/observations/SB1/delete".into()]
        }
        other => panic!("no addresses for {other}: add it to WALKED and here"),
    }
}

/// What a body shows that it must not: secret text, and export rows of
/// others' ratings of candidates other than c08.
fn leaks(path: &str, body: &str) -> Vec<String> {
    let mut found: Vec<String> = SECRETS
        .iter()
        .filter(|s| body.contains(*s))
        .map(|s| format!("{path}: shows {s:?}"))
        .collect();
    if body.contains("<strong>ann</strong>") && !body.contains("SHARED-NOTE-c08") {
        found.push(format!(
            "{path}: shows ann's rating of a candidate eve has not rated"
        ));
    }
    if path.starts_with("/api/") {
        for who in ["alice", "bob", "carol"] {
            if body.contains(&format!("\"reviewer\":\"{who}\"")) {
                found.push(format!("{path}: shows a rating of {who}'s"));
            }
        }
        if body.contains("\"reviewer\":\"ann\"") && !body.contains("SHARED-NOTE-c08") {
            found.push(format!(
                "{path}: shows ann's rating of a candidate eve has not rated"
            ));
        }
    }
    if path.contains("/candidates.vot") {
        for row in body.split("<TR>").skip(1) {
            if row.contains("<TD>ann</TD>") && !row.contains("<TD>c08</TD>") {
                found.push(format!("{path}: a row of ann's: {row}"));
            }
        }
    }
    if path.contains("/candidates.csv") {
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        if let (Some(name), Some(who)) = (
            header.iter().position(|h| h == "name"),
            header.iter().position(|h| h == "reviewer"),
        ) {
            for r in reader.records() {
                let r = r.unwrap();
                if !["", "eve"].contains(&&r[who]) && &r[name] != "c08" {
                    found.push(format!("{path}: {}'s rating of {}", &r[who], &r[name]));
                }
            }
        }
    }
    found
}

/// Sets eve's queue, then walks the routes that show it.
async fn walk_queue(b: &Blind, form: &[(&str, &str)], failures: &mut Vec<String>) -> i64 {
    let r = b.eve.post_form("/queue", form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{form:?}");
    let mut size = -1;
    for path in ["/queue", "/next", "/"] {
        let mut r = b.eve.get(path).await;
        if r.status() == StatusCode::SEE_OTHER {
            r = b.eve.get(&crate::helpers::location(&r)).await;
        }
        assert_eq!(r.status(), StatusCode::OK, "{path} with {form:?}");
        let body = r.text().await.unwrap();
        failures.extend(leaks(&format!("{path} with queue {form:?}"), &body));
        if path == "/queue" {
            let html = scraper::Html::parse_document(&body);
            let text = crate::helpers::select_text(&html, "main").unwrap_or_default();
            size = text
                .split(" candidate")
                .next()
                .and_then(|t| t.split_whitespace().last())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no queue size in {text}"));
        }
    }
    size
}

#[sqlx::test]
async fn a_reviewer_sees_no_rating_of_candidates_they_have_not_rated_on_any_route(pool: PgPool) {
    let b = blind_survey(pool).await;
    // The token API's routes, with eve's read token.
    let token = crate::read_api::walk_token(&b.s.app).await;
    let mut failures = Vec::new();
    let mut requests = 0;
    for spec in routes::table().iter().filter(|s| is_get(s)) {
        for path in addresses(spec.path, &b) {
            let method = reqwest::Method::from_bytes(spec.method.as_str().as_bytes()).unwrap();
            let mut request = b.eve.client.request(method, b.eve.url(&path));
            if path.starts_with("/api/") {
                request = request.bearer_auth(&token);
            }
            let r = request.send().await.unwrap();
            requests += 1;
            assert!(
                r.status().as_u16() < 500,
                "{} {path}: {}",
                spec.method,
                r.status()
            );
            let body = r.text().await.unwrap();
            failures.extend(leaks(&path, &body));
        }
    }
    assert!(requests > 300, "only {requests} requests");

    // Every queue mode, with a tag and with a table filter.
    let noise = b.tags["Noise"].to_string();
    let pulsar = b.tags["Pulsar"].to_string();
    let queues: Vec<(Vec<(&str, &str)>, i64)> = vec![
        // How many others rated is not hidden: "not rated by me" and
        // "rated by others" hold every candidate but c08 and the three the
        // team has settled (two agreeing verdicts, the project's k). That
        // they left is what retirement is for; it says the team agrees,
        // not how anyone rated, and the candidate pages stay blind.
        (vec![("mode", "unrated_by_me")], 5),
        (vec![("mode", "unrated_by_anyone")], 0),
        (vec![("mode", "rated_by_others")], 5),
        // c02 (alice and carol real, bob not) is hidden; c08 is eve's own.
        (vec![("mode", "disagreements")], 1),
        (vec![("mode", "disagreements"), ("order", "fewest")], 1),
        (
            vec![
                ("mode", "unrated_by_me"),
                ("project", "vast"),
                ("tag", &noise),
            ],
            0,
        ),
        (
            vec![
                ("mode", "rated_by_others"),
                ("project", "vast"),
                ("tag", &pulsar),
            ],
            0,
        ),
        (
            vec![
                ("mode", "unrated_by_me"),
                ("filter", "reviewer=ann&verdict=real"),
            ],
            0,
        ),
        (
            vec![("mode", "unrated_by_me"), ("filter", "rated=disagree")],
            0,
        ),
        (
            vec![("mode", "rated_by_others"), ("filter", "tag=Noise")],
            0,
        ),
        (
            vec![("mode", "rated_by_others"), ("filter", "verdict=unsure")],
            0,
        ),
    ];
    for (form, expected) in &queues {
        let size = walk_queue(&b, form, &mut failures).await;
        if size != *expected {
            failures.push(format!(
                "queue {form:?} holds {size} candidates, expected {expected}"
            ));
        }
    }

    // The filters find exactly what eve may see: c08 and her own rating.
    for (query, expected) in [
        ("reviewer=ann", vec!["c08"]),
        ("reviewer=ann&verdict=real", vec!["c08"]),
        ("reviewer=ann&verdict=unsure", vec![]),
        ("reviewer=alice", vec![]),
        ("reviewer=bob&verdict=not_real", vec![]),
        ("reviewer=carol&tag=Flare+star", vec![]),
        ("reviewer=eve", vec!["c08"]),
        ("verdict=real", vec!["c08"]),
        ("verdict=not_real", vec!["c08"]),
        ("verdict=unsure", vec![]),
        ("tag=Noise", vec!["c08"]),
        ("tag=Pulsar", vec![]),
        ("project=vast&tag=Noise&verdict=unsure", vec![]),
        ("rated=disagree", vec!["c08"]),
        ("rated=mine", vec!["c08"]),
    ] {
        let got = names(&b.eve, query).await;
        if got != expected {
            failures.push(format!(
                "/candidates?{query} lists {got:?}, expected {expected:?}"
            ));
        }
    }

    // The summary: ann and eve on c08, nothing of alice, bob or carol.
    let html = b.eve.get_html("/ratings").await;
    let reviewers = crate::ratings::rows(&html, "#per-reviewer", "data-reviewer");
    if reviewers != ["ann", "eve"] {
        failures.push(format!("/ratings lists reviewers {reviewers:?}"));
    }
    if crate::helpers::select_text(&html, "#blind-note").is_none() {
        failures.push("/ratings does not say that it is blind".into());
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The rows of the CSV export of `query` as "name:reviewer:notes".
async fn exported(app: &TestApp, query: &str) -> Vec<String> {
    let body = app
        .get(&format!("/candidates.csv?{query}"))
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            format!(
                "{}:{}:{}",
                &r[col("name")],
                &r[col("reviewer")],
                &r[col("notes")]
            )
        })
        .collect()
}

async fn set_review(pool: &PgPool, slug: &str, open_review: bool, admins_see_all: bool) {
    sqlx::query("UPDATE projects SET open_review = $2, admins_see_all = $3 WHERE slug = $1")
        .bind(slug)
        .bind(open_review)
        .bind(admins_see_all)
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn rating_a_candidate_shows_others_ratings_of_that_one_only(pool: PgPool) {
    let b = blind_survey(pool).await;
    let c07 = b.s.ids["c07"];
    let page = b
        .eve
        .get(&format!("/candidates/{c07}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("SECRET-NOTE-c07"));
    assert!(exported(&b.eve, "name=c07&ratings=history").await == ["c07::"]);
    rate(&b.eve, c07, "real", &[], "").await;
    let page = b
        .eve
        .get(&format!("/candidates/{c07}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("SECRET-NOTE-c07"),
        "ann's rating once eve has rated"
    );
    let details = b
        .eve
        .get(&format!("/candidates/{c07}/details"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        details.contains("SECRET-NOTE-c07-first"),
        "and her earlier one, under All details"
    );
    assert_eq!(
        exported(&b.eve, "name=c07&ratings=history").await,
        [
            "c07:ann:SECRET-NOTE-c07",
            "c07:ann:SECRET-NOTE-c07-first",
            "c07:eve:"
        ]
    );
    // Still nothing of the others.
    assert!(!b
        .eve
        .get("/candidates.csv?ratings=history")
        .await
        .text()
        .await
        .unwrap()
        .contains("SECRET-NOTE-c06"));
    assert_eq!(
        names(&b.eve, "reviewer=ann&verdict=real").await,
        ["c07", "c08"]
    );
    // The author always sees their own.
    assert!(exported(&b.ann, "name=c06").await == ["c06:ann:SECRET-NOTE-c06"]);
}

#[sqlx::test]
async fn open_review_shows_a_projects_ratings_to_everyone(pool: PgPool) {
    let b = blind_survey(pool).await;
    set_review(&b.s.app.pool, "vast", true, false).await;
    let rows = exported(&b.eve, "").await;
    assert!(
        rows.contains(&"c06:ann:SECRET-NOTE-c06".to_string()),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.starts_with("c02:bob:")), "{rows:?}");
    // gleam is still blind.
    assert!(rows.contains(&"g01::".to_string()), "{rows:?}");
    let c03 = b.s.ids["c03"];
    let page = b
        .eve
        .get(&format!("/candidates/{c03}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("SECRET-NOTE-c03"));
    assert_eq!(
        names(&b.eve, "reviewer=ann&verdict=real").await,
        ["c06", "c07", "c08"]
    );
    assert_eq!(names(&b.eve, "rated=disagree").await, ["c02", "c08"]);
    let html = b.eve.get_html("/ratings?project=vast").await;
    assert_eq!(
        crate::ratings::rows(&html, "#per-reviewer", "data-reviewer"),
        ["alice", "ann", "bob", "carol", "eve"]
    );
    assert!(crate::helpers::select_text(&html, "#blind-note").is_none());
}

#[sqlx::test]
async fn admins_see_all_only_when_the_project_says_so(pool: PgPool) {
    let b = blind_survey(pool).await;
    let (root, _) = {
        let app = TestApp::spawn(b.s.app.pool.clone()).await;
        let user = app.create_user("root", Role::Admin).await;
        app.login_as(&user).await;
        (app, user)
    };
    // Blind like anyone else by default.
    assert_eq!(exported(&root, "name=c06").await, ["c06::"]);
    assert!(names(&root, "reviewer=ann").await.is_empty());
    let c06 = b.s.ids["c06"];
    let page = root
        .get(&format!("/candidates/{c06}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("SECRET-NOTE-c06"));
    for slug in ["vast", "gleam"] {
        set_review(&b.s.app.pool, slug, false, true).await;
    }
    assert_eq!(
        exported(&root, "name=c06").await,
        ["c06:ann:SECRET-NOTE-c06"]
    );
    assert_eq!(
        names(&root, "reviewer=ann").await,
        ["c03", "c06", "c07", "c08", "g01"]
    );
    let page = root
        .get(&format!("/candidates/{c06}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("SECRET-NOTE-c06"));
    let html = root.get_html("/ratings").await;
    assert!(crate::helpers::select_text(&html, "#blind-note").is_none());
    // The exemption is the administrators' only.
    assert_eq!(exported(&b.eve, "name=c06").await, ["c06::"]);
    assert!(names(&b.eve, "reviewer=ann").await == ["c08"]);
}

#[sqlx::test]
async fn the_admin_project_page_sets_the_two_switches_and_audits_them(pool: PgPool) {
    let b = blind_survey(pool).await;
    let root = TestApp::spawn(b.s.app.pool.clone()).await;
    let user = root.create_user("root", Role::Admin).await;
    root.login_as(&user).await;
    let html = root.get_html("/admin/projects/vast").await;
    assert!(crate::helpers::select_attr(&html, "input[name=open_review]", "type").is_some());
    assert!(crate::helpers::select_attr(&html, "input[name=admins_see_all]", "checked").is_none());
    let r = root
        .post_form(
            "/admin/projects/vast",
            &[
                ("name", "VAST"),
                ("open_review", "on"),
                ("admins_see_all", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (open, admins): (bool, bool) =
        sqlx::query_as("SELECT open_review, admins_see_all FROM projects WHERE slug = 'vast'")
            .fetch_one(&root.pool)
            .await
            .unwrap();
    assert!(open && admins);
    let detail: serde_json::Value = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'project.update' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&root.pool)
    .await
    .unwrap();
    assert_eq!(detail["open_review"], true);
    assert_eq!(detail["admins_see_all"], true);
    // A value the checkbox never sends is refused, and nothing changes.
    let r = root
        .post_form(
            "/admin/projects/vast",
            &[("name", "VAST"), ("open_review", "maybe")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Open review is a checkbox"));
    let open: bool = sqlx::query_scalar("SELECT open_review FROM projects WHERE slug = 'vast'")
        .fetch_one(&root.pool)
        .await
        .unwrap();
    assert!(open);
    // Without the CSRF token the form is refused.
    let r = root
        .client
        .post(root.url("/admin/projects/vast"))
        .form(&[("name", "VAST")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // A reviewer may not change it.
    let r = b
        .eve
        .post_form("/admin/projects/vast", &[("name", "VAST")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Every precomputed summary table, as sorted text rows, once the pending
/// ratings are counted.
async fn summaries(pool: &PgPool) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    vetter::db::ratings::flush_summaries(&mut conn)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT 't ' || candidate_id || ' ' || project_id || ' ' || n_real || ' ' || n_not_real || ' ' || n_unsure
           FROM candidate_tallies
         UNION ALL SELECT 's ' || project_id || ' ' || n_real || ' ' || n_not_real || ' ' || n_unsure || ' ' || candidates
           FROM project_rating_shapes WHERE candidates <> 0
         UNION ALL SELECT 'v ' || project_id || ' ' || user_id || ' ' || verdict || ' ' || ratings
           FROM project_reviewer_verdicts WHERE ratings <> 0
         UNION ALL SELECT 'p ' || project_id || ' ' || user_a || ' ' || user_b || ' ' || both_rated || ' ' || agreed
           FROM project_reviewer_pairs WHERE both_rated <> 0 OR agreed <> 0
         UNION ALL SELECT 'c ' || candidate_id || ' ' || tag_id || ' ' || ratings FROM candidate_tag_tallies
         UNION ALL SELECT 'g ' || tag_id || ' ' || ratings || ' ' || candidates
           FROM tag_rating_counts WHERE ratings <> 0 OR candidates <> 0
         UNION ALL SELECT 'vs ' || viewer_id || ' ' || project_id || ' ' || n_real || ' ' || n_not_real
                          || ' ' || n_unsure || ' ' || candidates
           FROM viewer_rating_shapes WHERE candidates <> 0
         UNION ALL SELECT 'vv ' || viewer_id || ' ' || project_id || ' ' || user_id || ' ' || verdict
                          || ' ' || ratings
           FROM viewer_reviewer_verdicts WHERE ratings <> 0
         UNION ALL SELECT 'vp ' || viewer_id || ' ' || project_id || ' ' || user_a || ' ' || user_b
                          || ' ' || both_rated || ' ' || agreed
           FROM viewer_reviewer_pairs WHERE both_rated <> 0 OR agreed <> 0
         UNION ALL SELECT 'vg ' || viewer_id || ' ' || tag_id || ' ' || ratings || ' ' || candidates
           FROM viewer_tag_counts WHERE ratings <> 0 OR candidates <> 0
         UNION ALL SELECT 'vd ' || viewer_id || ' ' || project_id || ' ' || candidate_id || ' ' || name
           FROM viewer_disagreements
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The summaries as the triggers kept them equal the summaries made again
/// from the rows.
async fn assert_summaries_consistent(pool: &PgPool, after: &str) {
    let kept = summaries(pool).await;
    sqlx::query("SELECT refresh_rating_summaries()")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(kept, summaries(pool).await, "after {after}");
}

/// A rating writes only its candidate's tallies and leaves the shared
/// summaries to a flush: ratings that commit while flushes run, in any
/// order, are each counted once, and the tallies the queue reads are never
/// behind.
#[sqlx::test]
async fn ratings_written_while_the_summaries_are_flushed_are_each_counted_once(pool: PgPool) {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::Arc;
    let b = blind_survey(pool).await;
    let pool = b.s.app.pool.clone();
    let mut users = Vec::new();
    for n in 0..6 {
        let u =
            b.s.app
                .create_user(&format!("rater{n}"), Role::Reviewer)
                .await;
        users.push(u.id.0);
    }
    let candidates: Vec<i64> = b.s.ids.values().copied().collect();
    let tags: Vec<i64> = b.tags.values().copied().collect();
    let stop = Arc::new(AtomicBool::new(false));
    let counted = Arc::new(AtomicI64::new(0));
    let flusher = {
        let (pool, stop, counted) = (pool.clone(), stop.clone(), counted.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // Small batches: each flush takes some pending candidates
                // and leaves the rest, while raters add more.
                let n: i32 = sqlx::query_scalar("SELECT flush_rating_summaries(3)")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert!(n <= 3, "a flush of at most 3 counted {n}");
                counted.fetch_add(i64::from(n), Ordering::Relaxed);
            }
        })
    };
    let mut raters = Vec::new();
    for (k, &u) in users.iter().enumerate() {
        let (pool, candidates, tags) = (pool.clone(), candidates.clone(), tags.clone());
        raters.push(tokio::spawn(async move {
            for round in 0..4usize {
                for (i, &c) in candidates.iter().enumerate() {
                    let pick = (k * 7 + i * 3 + round * 5) % 4;
                    if pick == 3 {
                        sqlx::query("DELETE FROM ratings WHERE user_id = $1 AND candidate_id = $2")
                            .bind(u)
                            .bind(c)
                            .execute(&pool)
                            .await
                            .unwrap();
                        continue;
                    }
                    let verdict = ["real", "not_real", "unsure"][pick];
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query(
                        "INSERT INTO ratings (user_id, candidate_id, verdict) VALUES ($1, $2, $3::verdict)
                         ON CONFLICT (user_id, candidate_id) DO UPDATE SET verdict = EXCLUDED.verdict",
                    )
                    .bind(u)
                    .bind(c)
                    .bind(verdict)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    sqlx::query("DELETE FROM rating_tags WHERE user_id = $1 AND candidate_id = $2")
                        .bind(u)
                        .bind(c)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(
                        "INSERT INTO rating_tags (user_id, candidate_id, tag_id) VALUES ($1, $2, $3)",
                    )
                    .bind(u)
                    .bind(c)
                    .bind(tags[(k + i + round) % tags.len()])
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                }
            }
        }));
    }
    for r in raters {
        r.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    flusher.await.unwrap();
    assert!(
        counted.load(Ordering::Relaxed) > 0,
        "the flushes ran while the ratings arrived"
    );
    // The tallies are written with the rating: right before any flush.
    let behind: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT candidate_id, count(*) FILTER (WHERE verdict = 'real') AS a,
                                      count(*) FILTER (WHERE verdict = 'not_real') AS b,
                                      count(*) FILTER (WHERE verdict = 'unsure') AS c
                               FROM ratings GROUP BY candidate_id) r
         FULL JOIN candidate_tallies t USING (candidate_id)
         WHERE (r.a, r.b, r.c) IS DISTINCT FROM (t.n_real::bigint, t.n_not_real::bigint, t.n_unsure::bigint)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        behind, 0,
        "candidates whose tallies differ from their ratings"
    );
    assert_summaries_consistent(&pool, "ratings written while flushes ran").await;
}

#[sqlx::test]
async fn the_precomputed_summaries_follow_every_write_and_match_the_computed_figures(pool: PgPool) {
    let b = blind_survey(pool).await;
    let pool = b.s.app.pool.clone();
    assert_summaries_consistent(&pool, "the survey").await;
    // A change, an undo of a change and an undo of a first rating.
    let id = |n: &str| b.s.ids[n];
    rate(&b.eve, id("c02"), "unsure", &[b.tags["Noise"]], "").await;
    rate(&b.eve, id("c02"), "real", &[b.tags["Pulsar"]], "").await;
    rate(&b.eve, id("c01"), "real", &[], "").await;
    assert_summaries_consistent(&pool, "eve's ratings").await;
    for _ in 0..2 {
        let r = b.eve.post_form("/undo", &[]).await;
        assert!(r.status().is_redirection(), "{}", r.status());
    }
    assert_summaries_consistent(&pool, "two undos").await;

    // Whole projects come from the precomputed summaries (a blind
    // reviewer's own, then everyone's once every rating is visible) and
    // narrower filters are computed: the same figures.
    let figures = |html: &scraper::Html| {
        [
            "#per-reviewer table",
            "#per-tag table",
            "#pairs",
            "#agreement",
            "#disagreements",
        ]
        .iter()
        .map(|sel| crate::helpers::select_text(html, sel).unwrap_or_default())
        .collect::<Vec<_>>()
    };
    for blind in [true, false] {
        if !blind {
            set_review(&pool, "vast", true, false).await;
            set_review(&pool, "gleam", true, false).await;
        }
        let whole = b.eve.get_html("/ratings?project=vast").await;
        let computed = b.eve.get_html("/ratings?project=vast&name=c0").await;
        assert_eq!(figures(&whole), figures(&computed), "blind: {blind}");
        assert_eq!(
            crate::helpers::select_text(&whole, "#total-ratings"),
            crate::helpers::select_text(&computed, "#total-ratings")
        );
        let everything = b.eve.get_html("/ratings").await;
        let computed = b.eve.get_html("/ratings?name=0").await;
        assert_eq!(figures(&everything), figures(&computed), "blind: {blind}");
    }
    let everything = b.eve.get_html("/ratings").await;
    assert!(figures(&everything)[0].contains("ann"));

    // A tag merged into another, then an observation deleted with its
    // candidates and their ratings.
    let root = TestApp::spawn(pool.clone()).await;
    let admin = root.create_user("root", Role::Admin).await;
    root.login_as(&admin).await;
    let r = root
        .post_form(
            &format!("/admin/tags/{}/merge", b.tags["Noise"]),
            &[("into", &b.tags["Pulsar"].to_string()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_summaries_consistent(&pool, "a tag merge").await;
    let r = root
        .post_form(
            "/admin/projects/vast/observations/SB2/delete",
            &[("confirm_name", "SB2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_summaries_consistent(&pool, "an observation deleted").await;
    let whole = b.eve.get_html("/ratings?project=vast").await;
    let computed = b.eve.get_html("/ratings?project=vast&name=c0").await;
    assert_eq!(figures(&whole), figures(&computed));
    assert_eq!(
        crate::helpers::select_text(&whole, "#total-candidates").as_deref(),
        Some("4")
    );
}

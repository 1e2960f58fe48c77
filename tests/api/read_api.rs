//! The read API against a real server: token scopes, the blind rule, the
//! table's filter language walked by cursor while candidates arrive, the
//! feed of rating changes with a transaction that commits late, progress,
//! exports, strict queries, the OpenAPI description, and the Python example
//! of docs/read-api.md run as written.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use vetter::domain::token::TokenScopes;
use vetter::domain::Role;
use vetter::web::plumbing::access::Access;

use crate::blind::blind_survey;
use crate::candidates::{names, open_review, rate, survey};
use crate::helpers::{select_text, texts, TestApp};
use crate::upload_api::uploader;

/// A token-holding client of the API.
pub struct Reader<'a> {
    app: &'a TestApp,
    pub token: String,
}

impl<'a> Reader<'a> {
    pub async fn new(app: &'a TestApp, username: &str, scopes: TokenScopes) -> Self {
        let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let (token, _) = vetter::db::api_tokens::create(
            &app.pool,
            vetter::domain::UserId(id),
            "read tests",
            scopes,
        )
        .await
        .unwrap();
        Self { app, token }
    }

    pub async fn read(app: &'a TestApp, username: &str) -> Self {
        Self::new(app, username, TokenScopes::new(true, false).unwrap()).await
    }

    pub async fn raw(&self, path: &str) -> reqwest::Response {
        // Cookie-less: the API must not lean on a browser session.
        reqwest::Client::new()
            .get(self.app.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.raw(path).await;
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn ok(&self, path: &str) -> Value {
        let (s, body) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
        body
    }

    /// Every candidate of a filter, page by page (`limit` rows each).
    pub async fn walk(&self, query: &str, limit: u32) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/candidates?limit={limit}");
            if !query.is_empty() {
                path.push('&');
                path.push_str(query);
            }
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.ok(&path).await;
            out.extend(page["candidates"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    /// One pass over the feed from `cursor`: the changes ready now, where
    /// the next pass starts, and whether committed changes were held back.
    pub async fn sync_now(&self, cursor: Option<&str>, extra: &str) -> (Vec<Value>, String, bool) {
        let mut changes = Vec::new();
        let mut cursor = cursor.map(str::to_string);
        loop {
            let mut path = format!("/ratings?limit=3{extra}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.ok(&path).await;
            changes.extend(page["changes"].as_array().unwrap().iter().cloned());
            cursor = Some(page["next_cursor"].as_str().unwrap().to_string());
            if !page["more"].as_bool().unwrap() {
                return (changes, cursor.unwrap(), page["waiting"].as_bool().unwrap());
            }
        }
    }

    /// Follows the feed from `cursor` until it has caught up: other tests'
    /// transactions (xids are the cluster's) may hold it back a moment.
    pub async fn sync(&self, cursor: Option<&str>, extra: &str) -> (Vec<Value>, String) {
        let mut all = Vec::new();
        let mut cursor = cursor.map(str::to_string);
        for _ in 0..600 {
            let (changes, next, waiting) = self.sync_now(cursor.as_deref(), extra).await;
            all.extend(changes);
            if !waiting {
                return (all, next);
            }
            cursor = Some(next);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the feed was still waiting after 30 s");
    }
}

fn names_of(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// "name: reviewer verdict notes, …" per change, for comparing feeds.
fn told(changes: &[Value]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            let name = c["candidate"]["name"].as_str().unwrap_or("(gone)");
            let ratings: Vec<String> = c["ratings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {}",
                        r["reviewer"].as_str().unwrap(),
                        r["verdict"].as_str().unwrap(),
                        r["notes"].as_str().unwrap()
                    )
                    .trim_end()
                    .to_string()
                })
                .collect();
            format!("{name}: {}", ratings.join(", "))
        })
        .collect()
}

#[sqlx::test]
async fn scopes_decide_what_a_token_may_do(pool: PgPool) {
    let s = survey(pool).await;
    let app = &s.app;
    let read = Reader::new(app, "pipeline", TokenScopes::new(true, false).unwrap()).await;
    let upload = Reader::new(app, "pipeline", TokenScopes::UPLOAD).await;
    let both = Reader::new(app, "pipeline", TokenScopes::new(true, true).unwrap()).await;
    let revoked = Reader::new(app, "pipeline", TokenScopes::new(true, true).unwrap()).await;
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE token_hash = encode(sha256($1::bytea), 'hex')")
        .bind(revoked.token.as_bytes())
        .execute(&app.pool)
        .await
        .unwrap();
    let put_project = |t: &Reader| {
        let (client, url, token) = (
            reqwest::Client::new(),
            app.url("/api/v1/projects/vast"),
            t.token.clone(),
        );
        async move {
            client
                .put(url)
                .bearer_auth(token)
                .json(&json!({"name": "VAST"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for (who, reads, uploads) in [
        (&read, StatusCode::OK, StatusCode::FORBIDDEN),
        (&upload, StatusCode::FORBIDDEN, StatusCode::OK),
        (&both, StatusCode::OK, StatusCode::OK),
        (&revoked, StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED),
    ] {
        for path in [
            "/candidates",
            "/projects",
            "/ratings",
            "/candidates.csv",
            "/projects/vast",
        ] {
            assert_eq!(who.get(path).await.0, reads, "{path}");
        }
        assert_eq!(put_project(who).await, uploads);
        let whoami = who.get("/whoami").await.0;
        assert_eq!(
            whoami,
            if reads == StatusCode::UNAUTHORIZED {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            }
        );
    }
    let (_, body) = upload.get("/candidates").await;
    assert_eq!(body["error"], "Not allowed", "{body}");
    // Every read route, as the route table has them.
    let c01 = s.ids["c01"].to_string();
    for spec in vetter::web::routes::table() {
        if spec.access != Access::Reader {
            continue;
        }
        let path = spec.path["/api/v1".len()..]
            .replace(":project", "vast")
            .replace(":id", &c01);
        assert_eq!(read.get(&path).await.0, StatusCode::OK, "{path}");
        assert_eq!(upload.get(&path).await.0, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            revoked.get(&path).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    // A reviewer who may not upload gets nothing from an upload scope.
    let bob_both = Reader::new(app, "bob", TokenScopes::new(true, true).unwrap()).await;
    assert_eq!(put_project(&bob_both).await, StatusCode::FORBIDDEN);
    assert_eq!(bob_both.get("/candidates").await.0, StatusCode::OK);
    // A deactivated user's read token stops working.
    sqlx::query("UPDATE users SET active = false WHERE username = 'bob'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        bob_both.get("/candidates").await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// Whether `token` may read (list candidates) and upload (a project).
async fn may(app: &TestApp, token: &str) -> (bool, bool) {
    let reader = Reader {
        app,
        token: token.to_string(),
    };
    let reads = reader.get("/candidates").await.0 == StatusCode::OK;
    let r = reqwest::Client::new()
        .put(app.url("/api/v1/projects/vast"))
        .bearer_auth(token)
        .json(&json!({"name": "VAST"}))
        .send()
        .await
        .unwrap();
    (reads, r.status() == StatusCode::OK)
}

#[sqlx::test]
async fn token_create_on_the_command_line_takes_scopes(pool: PgPool) {
    let s = survey(pool).await;
    let url = crate::testdb::url_of(&s.app.pool).await;
    let run = |args: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_vetter"))
                .args(args)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", url)
                .env("VETTER_MEDIA_ROOT", std::env::temp_dir())
                .env("VETTER_SECRET_KEY", "0123456789abcdef0123456789abcdef")
                .current_dir(std::env::temp_dir())
                .output()
                .unwrap()
        })
    };
    let mut made = Vec::new();
    for args in [
        &["token", "create", "pipeline", "--scope", "read"][..],
        &["token", "create", "pipeline"][..],
        &[
            "token",
            "create",
            "pipeline",
            "--name",
            "both",
            "--scope",
            "read,upload",
        ][..],
    ] {
        let o = run(args).await.unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        made.push(String::from_utf8(o.stdout).unwrap().trim().to_string());
    }
    assert_eq!(may(&s.app, &made[0]).await, (true, false), "--scope read");
    assert_eq!(
        may(&s.app, &made[1]).await,
        (false, true),
        "no --scope: upload, as before"
    );
    assert_eq!(
        may(&s.app, &made[2]).await,
        (true, true),
        "--scope read,upload"
    );
    let o = run(&["token", "create", "pipeline", "--scope", "write"])
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"write\" is not a scope"));
}

#[sqlx::test]
async fn the_account_page_makes_tokens_with_the_scopes_asked_for(pool: PgPool) {
    let s = survey(pool).await;
    let app = &s.app; // alice: a reviewer who may not upload
    let r = app
        .post_form("/account/tokens", &[("name", "notebook"), ("read", "on")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = scraper::Html::parse_document(&r.text().await.unwrap());
    let token = crate::helpers::select_attr(&html, ".token-value", "value").unwrap();
    assert_eq!(select_text(&html, ".token-scopes").as_deref(), Some("read"));
    let reader = Reader {
        app,
        token: token.clone(),
    };
    assert_eq!(reader.get("/candidates").await.0, StatusCode::OK);
    // The form offers upload only to those who may upload, and refuses it
    // (and a token that may do nothing) otherwise; nothing is made.
    let page = app.get("/account").await.text().await.unwrap();
    assert!(page.contains("name=\"read\"") && !page.contains("name=\"upload\""));
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for form in [
        vec![("name", "pipe"), ("upload", "on")],
        vec![("name", "pipe")],
        vec![("name", "pipe"), ("read", "yes please")],
    ] {
        let r = app.post_form("/account/tokens", &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{form:?}");
        assert!(select_text(
            &scraper::Html::parse_document(&r.text().await.unwrap()),
            ".form-error"
        )
        .is_some());
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    // An administrator sees every token with what it may do.
    let root = TestApp::spawn(app.pool.clone()).await;
    let admin = root.create_user("root", Role::Admin).await;
    root.login_as(&admin).await;
    let page = root
        .post_form(
            "/account/tokens",
            &[("name", "both"), ("read", "on"), ("upload", "on")],
        )
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = root.get_html("/admin/tokens").await;
    let sel = scraper::Selector::parse("#tokens tbody tr").unwrap();
    let rows: BTreeSet<String> = html
        .select(&sel)
        .map(|tr| {
            let cells = texts(tr);
            format!("{} {} {}", cells[0], cells[1], cells[2])
        })
        .collect();
    assert!(rows.contains("alice notebook read"), "{rows:?}");
    assert!(rows.contains("root both read, upload"), "{rows:?}");
    assert!(rows.contains("pipeline tests upload"), "{rows:?}");
}

#[sqlx::test]
async fn the_filter_language_is_the_tables(pool: PgPool) {
    let s = survey(pool).await;
    let alice = Reader::read(&s.app, "alice").await;
    for query in [
        "project=vast",
        "observation=SB1",
        "beam=beam00",
        "name=C0",
        "rated=mine",
        "rated=not_mine",
        "rated=none",
        "rated=disagree",
        "reviewer=bob&verdict=not_real",
        "tag=Pulsar",
        "project=vast&m.snr.min=5&m.snr.max=12",
        "project=vast&m.md.nf=only",
        "pos=188.7+-45.2&radius=2",
        "pos=188.7+-45.2&radius=2&around=deep",
        "project=vast&consensus=settled",
        "project=vast&consensus=disputed",
        "project=vast&pos=188.7+-45.2&radius=10&m.snr.min=6&rated=any",
        "obs_attr=band&obs_value=88&obs_not=1",
    ] {
        let mut table = names(&s.app, query).await;
        table.sort();
        let mut api = names_of(&alice.walk(query, 2).await);
        let by_id = api.clone();
        api.sort();
        assert_eq!(api, table, "{query}");
        // By id, so in upload order here.
        let mut ids = by_id.clone();
        ids.sort_by_key(|n| s.ids[n]);
        assert_eq!(by_id, ids, "{query}");
    }
    // A row carries its metrics, NaN and infinities spelled out, and its
    // separation with a cone.
    let rows = alice
        .walk("project=vast&pos=188.7+-45.2&radius=1", 100)
        .await;
    let c01 = rows.iter().find(|r| r["name"] == "c01").unwrap();
    assert_eq!(c01["metrics"], json!({"snr": 5.0, "md": 0.1, "eta": 1.0}));
    assert_eq!(c01["my_verdict"], "real");
    assert!(c01["separation_arcmin"].as_f64().unwrap() < 0.01);
    assert_eq!(c01["page"], format!("/candidates/{}", s.ids["c01"]));
    let c02 = rows.iter().find(|r| r["name"] == "c02").unwrap();
    assert_eq!(c02["metrics"]["md"], "NaN");
    let all = alice.walk("", 100).await;
    let c03 = all.iter().find(|r| r["name"] == "c03").unwrap();
    assert_eq!(c03["metrics"]["md"], "Infinity");
    assert_eq!(c03["project"], "vast");
    let g01 = all.iter().find(|r| r["name"] == "g01").unwrap();
    assert_eq!(g01["metrics"], json!({"snr": 50.0}));
}

#[sqlx::test]
async fn bad_queries_are_refused_with_the_parameter_named(pool: PgPool) {
    let s = survey(pool).await;
    let alice = Reader::read(&s.app, "alice").await;
    let long = format!("/candidates?name={}", "x".repeat(9000));
    for (path, field) in [
        ("/candidates?projet=vast", "projet"),
        ("/candidates?project=nope", "project"),
        ("/candidates?project=vast&m.snr.min=abc", "m.snr.min"),
        ("/candidates?m.snr.min=5", "m.snr.min"),
        ("/candidates?rated=sometimes", "rated"),
        ("/candidates?pos=12:61:00+-45:00:00", "pos"),
        ("/candidates?pos=1+2&radius=601", "radius"),
        ("/candidates?consensus=maybe", "consensus"),
        ("/candidates?sort=name", "sort"),
        ("/candidates?per=10", "per"),
        ("/candidates?project=vast&project=gleam", "project"),
        ("/candidates?limit=0", "limit"),
        ("/candidates?limit=1001", "limit"),
        ("/candidates?cursor=garbage", "cursor"),
        ("/candidates?cursor=r1.2", "cursor"),
        (long.as_str(), "query"),
        ("/candidates/1?x=1", "x"),
        ("/projects?x=1", "x"),
        ("/projects/vast/observations?cursor=c1", "cursor"),
        ("/ratings?cursor=c1", "cursor"),
        // A cursor of a server whose xids ran ahead of this one's.
        ("/ratings?cursor=r999999999999.1", "cursor"),
        ("/ratings?since=yesterday", "since"),
        ("/ratings?since=2024-01-01T00:00:00Z&cursor=r1.1", "since"),
        ("/ratings?project=nope", "project"),
        ("/ratings?history=maybe", "history"),
        ("/candidates.csv?ratings=all", "ratings"),
        ("/candidates.vot?projet=vast", "projet"),
    ] {
        let (status, body) = alice.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let fields: Vec<&str> = body["problems"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {body}"))
            .iter()
            .map(|p| p["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{path}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    for path in [
        "/candidates/999999",
        "/projects/nope",
        "/projects/nope/observations",
    ] {
        assert_eq!(alice.get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}

#[sqlx::test]
async fn paging_neither_skips_nor_repeats_while_candidates_arrive(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let api = uploader(&app).await;
    let (s, b) = api
        .put(
            "/projects/p",
            json!({"name": "P", "metrics": [{"key": "snr", "label": "S/N"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for path in ["/projects/p/observations/o1", "/projects/q/observations/o2"] {
        if path.contains("/q/") {
            let (s, _) = api.put("/projects/q", json!({"name": "Q"})).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let (s, _) = api.put(path, json!({})).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let batch = |from: usize, n: usize| {
        json!({"candidates": (from..from + n).map(|i| json!({
            "name": format!("c{i:04}"), "ra": (i % 360) as f64, "dec": 0.0, "metrics": {"snr": i as f64}
        })).collect::<Vec<_>>()})
    };
    let (s, _) = api
        .post("/projects/p/observations/o1/candidates", batch(0, 300))
        .await;
    assert_eq!(s, StatusCode::OK);
    let before: Vec<i64> = sqlx::query_scalar("SELECT id FROM candidates ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let reader = Reader::read(&app, "pipeline").await;
    // Uploads keep arriving while the walk goes on, and other candidates
    // are held open meanwhile (ids lower than later ones that commit
    // first; in another project, whose count rows the uploads do not wait
    // for).
    let pool = app.pool.clone();
    let mut held = pool.acquire().await.unwrap();
    let mut held_tx = held.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO candidates (project_id, observation_id, name, ra, dec, content_hash)
         SELECT project_id, id, 'held' || i, 1, 1, md5(i::text)
         FROM observations, generate_series(1, 5) i WHERE external_id = 'o2'",
    )
    .execute(&mut *held_tx)
    .await
    .unwrap();
    let uploads = {
        let base = app.url("/api/v1/projects/p/observations/o1/candidates");
        let token = api.token.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for k in 0..10 {
                let r = client
                    .post(&base)
                    .bearer_auth(&token)
                    .json(&batch(1000 + 20 * k, 20))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let rows = reader.walk("", 7).await;
    uploads.await.unwrap();
    held_tx.commit().await.unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a candidate came twice");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in id order");
    let missing: Vec<&i64> = before.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "skipped {missing:?}");
    // And a walk after it all sees everything once.
    let all = reader.walk("", 50).await;
    assert_eq!(all.len(), 300 + 200 + 5);
}

#[sqlx::test]
async fn the_blind_rule_holds_through_the_api(pool: PgPool) {
    let b = blind_survey(pool).await;
    let eve = Reader::read(&b.s.app, "eve").await;
    let id = |n: &str| b.s.ids[n];
    // c07: ann rated it twice, eve not yet.
    let c07 = eve.ok(&format!("/candidates/{}", id("c07"))).await;
    assert_eq!(c07["ratings"], json!([]));
    assert_eq!(c07["history"], json!([]));
    assert_eq!(c07["consensus"], Value::Null);
    assert_eq!(c07["p_real"], Value::Null);
    assert_eq!(c07["rating_count"], 1);
    let body = c07.to_string();
    assert!(!body.contains("SECRET") && !body.contains("gold"), "{body}");
    // c08: both rated it, so eve sees ann's.
    let c08 = eve.ok(&format!("/candidates/{}", id("c08"))).await;
    let who: BTreeSet<&str> = c08["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reviewer"].as_str().unwrap())
        .collect();
    assert_eq!(who, BTreeSet::from(["ann", "eve"]));
    assert!(c08.to_string().contains("SHARED-NOTE-c08"));
    assert!(c08["consensus"].is_string());
    // Filters on others' ratings match only what eve may see.
    assert_eq!(names_of(&eve.walk("reviewer=ann", 100).await), ["c08"]);
    assert_eq!(names_of(&eve.walk("verdict=real", 100).await), ["c08"]);
    assert!(eve
        .walk("reviewer=ann&project=vast&consensus=settled", 100)
        .await
        .is_empty());
    // The feed tells eve of c08 only.
    let (changes, cursor) = eve.sync(None, "&history=1").await;
    assert_eq!(
        told(&changes),
        ["c08: eve not_real eve's own look, ann real SHARED-NOTE-c08"]
    );
    let everything = serde_json::to_string(&changes).unwrap();
    assert!(!everything.contains("SECRET"), "{everything}");
    // Eve rates c07: its whole state arrives with her own change, ann's
    // earlier rating (in the history) included.
    rate(&b.eve, id("c07"), "unsure", &[], "eve on c07").await;
    let (changes, _) = eve.sync(Some(&cursor), "&history=1").await;
    assert_eq!(
        told(&changes),
        ["c07: eve unsure eve on c07, ann real SECRET-NOTE-c07"]
    );
    assert_eq!(changes[0]["history"][0]["notes"], "SECRET-NOTE-c07-first");
    let c07 = eve.ok(&format!("/candidates/{}", id("c07"))).await;
    assert_eq!(c07["history"][0]["notes"], "SECRET-NOTE-c07-first");
    // An administrator's token is blind too, unless the project says so.
    let root = TestApp::spawn(b.s.app.pool.clone()).await;
    root.create_user("root", Role::Admin).await;
    let admin = Reader::read(&root, "root").await;
    let c06 = admin.ok(&format!("/candidates/{}", id("c06"))).await;
    assert_eq!(c06["ratings"], json!([]));
    assert!(admin.sync(None, "").await.0.is_empty());
    sqlx::query("UPDATE projects SET admins_see_all = true")
        .execute(&root.pool)
        .await
        .unwrap();
    let c06 = admin.ok(&format!("/candidates/{}", id("c06"))).await;
    assert_eq!(c06["ratings"][0]["notes"], "SECRET-NOTE-c06");
    // Gold marks are never told, not even to an administrator.
    sqlx::query(
        "INSERT INTO gold_candidates (candidate_id, project_id, verdict, source)
         SELECT id, project_id, 'real', 'admin' FROM candidates",
    )
    .execute(&root.pool)
    .await
    .unwrap();
    for path in [
        format!("/candidates/{}", id("c06")),
        "/candidates?project=vast".to_string(),
        "/ratings".to_string(),
    ] {
        let (_, body) = admin.get(&path).await;
        assert!(!body.to_string().contains("gold"), "{path}");
    }
}

/// Eve's token for the blind walk (`tests/api/blind.rs`), which calls the
/// read API's routes with it.
pub async fn walk_token(app: &TestApp) -> String {
    Reader::read(app, "eve").await.token
}

/// The changes after `cursor` that a reader who sees everything is told.
async fn feed(reader: &Reader<'_>, cursor: &str) -> (Vec<String>, String) {
    let (changes, next) = reader.sync(Some(cursor), "").await;
    (told(&changes), next)
}

#[sqlx::test]
async fn the_feed_never_skips_a_change_that_commits_late(pool: PgPool) {
    let s = survey(pool).await;
    open_review(&s.app).await;
    let reader = Reader::read(&s.app, "carol").await;
    let (all, cursor) = reader.sync(None, "").await;
    // Every rated candidate, each once with all its ratings.
    let names: BTreeSet<String> = all
        .iter()
        .map(|c| c["candidate"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["c01", "c02", "c03", "c04", "c05", "g01"]
            .map(String::from)
            .into()
    );
    assert!(feed(&reader, &cursor).await.0.is_empty());

    // T1 writes first (a note on c01) and stays open; T2 writes later (a
    // note on c03) and commits first. T2's change has the higher id.
    let (c01, c03) = (s.ids["c01"], s.ids["c03"]);
    let mut t1_conn = s.app.pool.acquire().await.unwrap();
    let mut t1 = t1_conn.begin().await.unwrap();
    sqlx::query("UPDATE ratings r SET notes = 'late' FROM users u WHERE u.id = r.user_id AND u.username = 'bob' AND r.candidate_id = $1")
        .bind(c01)
        .execute(&mut *t1)
        .await
        .unwrap();
    let mut t2 = s.app.pool.begin().await.unwrap();
    sqlx::query("UPDATE ratings r SET notes = 'early' FROM users u WHERE u.id = r.user_id AND u.username = 'bob' AND r.candidate_id = $1")
        .bind(c03)
        .execute(&mut *t2)
        .await
        .unwrap();
    t2.commit().await.unwrap();
    // T2's change is there to be seen, with a higher id than T1's: a
    // cursor by id or by time would hand it out now and step past T1's,
    // which would then never come.
    let t1_id: i64 =
        sqlx::query_scalar("SELECT max(id) FROM rating_changes WHERE candidate_id = $1")
            .bind(c01)
            .fetch_one(&mut *t1)
            .await
            .unwrap();
    let t2_id: i64 =
        sqlx::query_scalar("SELECT max(id) FROM rating_changes WHERE candidate_id = $1")
            .bind(c03)
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    let t1_seen: i64 = sqlx::query_scalar("SELECT count(*) FROM rating_changes WHERE id = $1")
        .bind(t1_id)
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert!(t2_id > t1_id && t1_seen == 0);
    let (held_back, cursor2, waiting) = reader.sync_now(Some(&cursor), "").await;
    assert!(
        held_back.is_empty(),
        "handed out past an open transaction: {held_back:?}"
    );
    assert!(waiting, "T2's change is committed and held back");
    t1.commit().await.unwrap();
    let (late, cursor3) = feed(&reader, &cursor2).await;
    assert_eq!(
        late,
        [
            "c01: bob real late, alice real He said \"bright\", then\nleft <&> ok",
            "c03: bob unsure early"
        ]
    );
    assert!(feed(&reader, &cursor3).await.0.is_empty());

    // A transaction that only holds an xid holds the feed back too.
    let mut t3 = s.app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *t3)
        .await
        .unwrap();
    rate(&s.carol, s.ids["c06"], "real", &[], "").await;
    let (held, cursor4, waiting) = reader.sync_now(Some(&cursor3), "").await;
    assert!(held.is_empty() && waiting, "{held:?}");
    t3.rollback().await.unwrap();
    let (now, cursor5) = feed(&reader, &cursor4).await;
    assert_eq!(now, ["c06: carol real"]);

    // Undo, deletion: a candidate without ratings, one that is gone.
    let r = s.carol.post_form("/undo", &[]).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    sqlx::query("DELETE FROM candidates WHERE id = $1")
        .bind(s.ids["c04"])
        .execute(&s.app.pool)
        .await
        .unwrap();
    let (changes, _) = reader.sync(Some(&cursor5), "").await;
    assert_eq!(told(&changes), ["c06: ", "(gone): "]);
    assert_eq!(changes[1]["deleted"], true);
    assert_eq!(changes[1]["candidate_id"], s.ids["c04"]);

    // `since` starts at the first change written at or after a time.
    let t: String = sqlx::query_scalar(
        "SELECT to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
         FROM rating_changes WHERE candidate_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(s.ids["c06"])
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    let (since, _) = reader.sync(None, &format!("&since={t}")).await;
    assert_eq!(told(&since), ["c06: ", "(gone): "]);
    let (gleam, _) = reader.sync(None, "&project=gleam").await;
    assert_eq!(told(&gleam), ["g01: bob real"]);
}

#[sqlx::test]
async fn a_restored_feed_is_renumbered_and_still_tells_every_rating(pool: PgPool) {
    let s = survey(pool).await;
    open_review(&s.app).await;
    let reader = Reader::read(&s.app, "carol").await;
    let (before, _) = reader.sync(None, "").await;
    let mut conn = s.app.pool.acquire().await.unwrap();
    vetter::db::rating_changes::after_restore(&mut conn)
        .await
        .unwrap();
    let (xids, per_rating): (i64, bool) = sqlx::query_as(
        "SELECT count(DISTINCT xid),
                count(*) = count(DISTINCT (candidate_id, user_id)) FROM rating_changes",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!((xids, per_rating), (1, true));
    let (after, _) = reader.sync(None, "").await;
    // The copy each feed leaves a client with: the last word per candidate.
    let copy = |changes: &[Value]| -> std::collections::BTreeMap<String, String> {
        told(changes)
            .into_iter()
            .map(|t| {
                let (name, ratings) = t.split_once(": ").unwrap();
                (name.to_string(), ratings.to_string())
            })
            .collect()
    };
    assert_eq!(copy(&before), copy(&after));
    assert_eq!(copy(&after).len(), 6);
}

/// Every observation's kept figures.
async fn kept_progress(pool: &PgPool) -> Vec<(i64, i64, i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT observation_id, sum(candidates)::bigint, sum(rated)::bigint, sum(settled_real)::bigint,
                sum(settled_not_real)::bigint, sum(disputed)::bigint
         FROM observation_progress GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn progress_is_the_same_on_the_home_page_and_through_the_api(pool: PgPool) {
    let s = survey(pool).await;
    open_review(&s.app).await;
    let alice = Reader::read(&s.app, "alice").await;
    let obs = alice.ok("/projects/vast/observations").await;
    let line = |o: &str| {
        obs["observations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["observation"] == o)
            .unwrap()["progress"]
            .clone()
    };
    // SB1: c01 (2 real: settled), c02 (2 real, 1 not: disputed), c03 and
    // c04 one rating each (open). SB2: c05 settled not real.
    assert_eq!(
        line("SB1"),
        json!({"candidates": 4, "rated": 4, "settled": 1, "settled_real": 1, "settled_not_real": 0,
               "disputed": 1, "consensus_of_own_ratings_only": false})
    );
    assert_eq!(line("SB2")["rated"], 1);
    assert_eq!(line("SB2")["settled_not_real"], 1);
    // Newest first.
    assert_eq!(obs["observations"][0]["observation"], "SB2");
    let projects = alice.ok("/projects").await;
    let vast = &projects["projects"].as_array().unwrap()[1];
    assert_eq!(vast["slug"], "vast");
    assert_eq!(vast["progress"]["candidates"], 8);
    assert_eq!(vast["progress"]["settled"], 2);
    let one = alice.ok("/projects/vast").await;
    assert_eq!(one["progress"], vast["progress"]);
    let keys: Vec<&str> = one["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["snr", "md", "eta"]);
    // The home page shows the same figures.
    let html = s.app.get_html("/").await;
    let cell = |o: &str, class: &str| {
        select_text(
            &html,
            &format!("#glance tr[data-observation=\"{o}\"] .{class}"),
        )
        .unwrap()
    };
    assert_eq!(cell("SB1", "glance-rated"), "4");
    assert_eq!(cell("SB1", "glance-settled"), "1");
    assert_eq!(cell("SB1", "glance-disputed"), "1");
    assert_eq!(cell("SB2", "glance-settled"), "1");
    // Paging by cursor.
    let first = alice.ok("/projects/vast/observations?limit=1").await;
    let next = first["next_cursor"].as_str().unwrap();
    let second = alice
        .ok(&format!(
            "/projects/vast/observations?limit=1&cursor={next}"
        ))
        .await;
    assert_eq!(second["observations"][0]["observation"], "SB1");
    assert_eq!(second["next_cursor"], Value::Null);

    // The figures follow ratings, the project's rule and deletions.
    rate(&s.carol, s.ids["c03"], "unsure", &[], "").await;
    rate(&s.bob, s.ids["c06"], "real", &[], "").await;
    sqlx::query("UPDATE projects SET consensus_k = 1 WHERE slug = 'vast'")
        .execute(&s.app.pool)
        .await
        .unwrap();
    let obs = alice.ok("/projects/vast/observations").await;
    let sb2 = &obs["observations"][0]["progress"];
    assert_eq!(
        (sb2["rated"].as_i64(), sb2["settled"].as_i64()),
        (Some(2), Some(2))
    );
    let sb1 = &obs["observations"][1]["progress"];
    // k = 1: c01 settled real, c02 (2 to 1) settled real, c04 settled not real.
    assert_eq!(sb1["settled_real"], 2);
    assert_eq!(sb1["settled_not_real"], 1);
    assert_eq!(sb1["disputed"], 0);
    sqlx::query("DELETE FROM candidates WHERE name = 'c02'")
        .execute(&s.app.pool)
        .await
        .unwrap();
    let sb1 = alice.ok("/projects/vast/observations").await["observations"][1]["progress"].clone();
    assert_eq!(
        (
            sb1["candidates"].as_i64(),
            sb1["rated"].as_i64(),
            sb1["settled_real"].as_i64()
        ),
        (Some(3), Some(3), Some(1))
    );
    // The kept figures equal those made again from the rows.
    let kept = kept_progress(&s.app.pool).await;
    sqlx::query("SELECT refresh_observation_progress()")
        .execute(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(kept, kept_progress(&s.app.pool).await);
}

#[sqlx::test]
async fn a_blind_reviewer_sees_the_consensus_of_their_own_candidates_only(pool: PgPool) {
    let b = blind_survey(pool).await;
    let eve = Reader::read(&b.s.app, "eve").await;
    let obs = eve.ok("/projects/vast/observations").await;
    // SB2 holds c08, which eve and ann disagree on; SB1's consensus is
    // hidden from her (she rated nothing there), its rated count is not.
    let sb2 = &obs["observations"][0]["progress"];
    assert_eq!(sb2["consensus_of_own_ratings_only"], true);
    assert_eq!(sb2["disputed"], 1);
    assert_eq!(sb2["settled"], 0);
    let sb1 = &obs["observations"][1]["progress"];
    assert_eq!(sb1["settled"], 0);
    assert_eq!(sb1["disputed"], 0);
    assert_eq!(sb1["rated"], 4);
    let html = b.eve.get_html("/").await;
    assert!(select_text(&html, "#glance")
        .unwrap()
        .contains("settled, real and disputed (marked *) count only the candidates you rated"));
}

#[sqlx::test]
async fn the_exports_through_the_api_are_the_browsers(pool: PgPool) {
    let s = survey(pool).await;
    let alice = Reader::read(&s.app, "alice").await;
    for (route, query) in [
        ("/candidates.csv", "project=vast&ratings=history"),
        ("/candidates.csv", "rated=mine"),
        ("/candidates.vot", "project=vast"),
        ("/candidates.vot", "pos=188.7+-45.2&radius=5&ratings=none"),
    ] {
        let browser = s.app.get(&format!("{route}?{query}")).await;
        assert_eq!(browser.status(), StatusCode::OK);
        let browser_type = browser.headers()["content-type"].clone();
        let browser = browser.text().await.unwrap();
        let api = alice.raw(&format!("{route}?{query}")).await;
        assert_eq!(api.status(), StatusCode::OK, "{route}?{query}");
        assert_eq!(api.headers()["content-type"], browser_type);
        assert_eq!(api.text().await.unwrap(), browser, "{route}?{query}");
    }
}

#[sqlx::test]
async fn the_openapi_description_and_the_routes_agree(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let spec: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let routes: BTreeSet<(String, String)> = vetter::web::routes::table()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/") && !r.path.ends_with("openapi.json"))
        .map(|r| {
            let templ: String = r.path["/api/v1".len()..]
                .split('/')
                .map(|s| {
                    s.strip_prefix(':')
                        .map_or(s.to_string(), |n| format!("{{{n}}}"))
                })
                .collect::<Vec<_>>()
                .join("/");
            (r.method.as_str().to_lowercase(), templ)
        })
        .collect();
    let described: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let undescribed: Vec<_> = routes.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&routes).collect();
    assert!(
        undescribed.is_empty(),
        "routes not in openapi.json: {undescribed:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.json describes no such route: {unrouted:?}"
    );
}

/// The ```python blocks of docs/read-api.md, one after another.
fn python_example() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/read-api.md")).unwrap();
    let mut code = String::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim() == "```python" {
            inside = true;
        } else if inside && line.trim() == "```" {
            inside = false;
            code.push('\n');
        } else if inside {
            code.push_str(line);
            code.push('\n');
        }
    }
    assert!(code.contains("import requests"), "no example found");
    code
}

#[sqlx::test]
async fn the_documented_python_example_runs_against_a_real_server(pool: PgPool) {
    let s = survey(pool).await;
    let alice = Reader::read(&s.app, "alice").await;
    let script =
        std::env::temp_dir().join(format!("vetter-read-example-{}.py", std::process::id()));
    std::fs::write(&script, python_example()).unwrap();
    let python = "/usr/bin/python3";
    // On a thread of its own: the server answers it from this runtime.
    let (url, token, path) = (s.app.address.clone(), alice.token.clone(), script.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(&path)
            .env("VETTER_URL", url)
            .env("VETTER_TOKEN", token)
            .env_remove("PYTHONPATH")
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{python} could not be run: {e}"));
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the example failed (it needs Debian's python3-requests and python3-astropy; \
         containers/local/prepare.sh installs them):\n{stdout}\n{stderr}"
    );
    // snr ≥ 8 in vast: c03 (12), c06 (20), c08 (9). Alice rated c01, c02
    // and c05, so (blind) she is told of those three, with bob's and
    // carol's ratings of them: 2 + 3 + 2.
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "bright: c03 c06 c08",
            "rated candidates: 3 ratings: 7",
            "votable rows: 8 snr column: True",
        ],
        "{stderr}"
    );
}

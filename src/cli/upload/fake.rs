//! A stand-in for the upload API, for the client's own tests: it keeps what
//! it is sent in memory and answers as docs/upload-api.md says, and it can
//! be told to fail on purpose. The real server is tested end to end in
//! tests/api/upload_client.rs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Multipart};
use poem::{handler, Body, EndpointExt, FromRequest, Request, RequestBody, Response, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

pub const TOKEN: &str = "vet_fake0123";

#[derive(Debug, Default)]
pub struct State {
    /// slug → metric keys.
    pub projects: HashMap<String, Vec<String>>,
    pub observations: HashMap<(String, String), Value>,
    pub beams: HashMap<(String, String, String), Value>,
    /// (observation, name) → the candidate as stored, files as sha256.
    pub candidates: BTreeMap<(String, String), Value>,
    /// Answers given before anything else, one per request:
    /// (status, Retry-After seconds).
    pub fail_next: VecDeque<(u16, Option<u64>)>,
    /// Batches larger than this get 413.
    pub max_batch: Option<usize>,
    /// `METHOD /path [parts]` of every request.
    pub log: Vec<String>,
    /// (part name, content type, first bytes) of every file part.
    pub parts: Vec<(String, String, Vec<u8>)>,
    /// Whether whoami says the user may upload.
    pub cannot_upload: bool,
    /// Observations said to be finished, in order.
    pub finished: Vec<String>,
}

pub struct Fake {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Fake {
    pub async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = oneshot::channel::<()>();
        let app = serve.data(state.clone());
        tokio::spawn(
            Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                app,
                async {
                    let _ = rx.await;
                },
                None,
            ),
        );
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            stop: Some(tx),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn answer(status: u16, body: Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(body.to_string())
}

fn problems(list: Vec<(String, String)>) -> Response {
    let list: Vec<Value> = list
        .into_iter()
        .map(|(f, m)| json!({"field": f, "message": m}))
        .collect();
    answer(
        400,
        json!({"error": "Bad request", "message": format!("{} problems in the upload", list.len()),
               "problems": list}),
    )
}

/// The JSON part (or body) and the file parts: name → (content type, bytes).
type Parsed = (Value, HashMap<String, (String, Vec<u8>)>);

async fn read_body(req: &Request, body: Body, json_part: &str) -> Result<Parsed, String> {
    let ct = req.content_type().unwrap_or("").to_string();
    if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &mut RequestBody::new(body))
            .await
            .map_err(|e| e.to_string())?;
        let mut json = None;
        let mut files = HashMap::new();
        while let Some(field) = mp.next_field().await.map_err(|e| e.to_string())? {
            let name = field.name().unwrap_or("").to_string();
            let ct = field.content_type().unwrap_or("").to_string();
            let bytes = field.bytes().await.map_err(|e| e.to_string())?;
            if name == json_part {
                if ct != "application/json" {
                    return Err(format!("part {name} is {ct}"));
                }
                json = Some(serde_json::from_slice(&bytes).map_err(|e| e.to_string())?);
            } else {
                files.insert(name, (ct, bytes));
            }
        }
        Ok((json.ok_or("no JSON part")?, files))
    } else {
        let bytes = body.into_vec().await.map_err(|e| e.to_string())?;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
        };
        Ok((json, HashMap::new()))
    }
}

fn file_ok(ct: &str, bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG")
        || bytes.starts_with(b"GIF8")
        || bytes.starts_with(b"SIMPLE  =")
        || ct == "text/csv"
}

/// Replaces part names by the hash of the part, as a stored record.
fn resolve_files(
    v: &mut Value,
    files: &HashMap<String, (String, Vec<u8>)>,
    field: &str,
    bad: &mut Vec<(String, String)>,
) {
    let Some(map) = v.get_mut("files").and_then(Value::as_object_mut) else {
        return;
    };
    for (role, part) in map.iter_mut() {
        let name = part.as_str().unwrap_or("").to_string();
        match files.get(&name) {
            None => bad.push((format!("{field}files.{role}"), format!("no part {name:?}"))),
            Some((ct, bytes)) if !file_ok(ct, bytes) => bad.push((
                format!("{field}files.{role}"),
                "not a FITS, PNG or GIF file".into(),
            )),
            Some((_, bytes)) => *part = Value::String(format!("{:x}", Sha256::digest(bytes))),
        }
    }
}

fn status_of<K: Ord>(map: &mut BTreeMap<K, Value>, key: K, v: Value) -> &'static str {
    match map.insert(key, v.clone()) {
        None => "created",
        Some(old) if old == v => "unchanged",
        Some(_) => "updated",
    }
}

#[handler]
async fn serve(req: &Request, body: Body, state: Data<&Arc<Mutex<State>>>) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    {
        let mut s = state.lock().unwrap();
        s.log.push(format!("{method} {path}"));
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return answer(
                401,
                json!({"error": "Unauthorized", "message": "bad token"}),
            );
        }
        if let Some((status, retry_after)) = s.fail_next.pop_front() {
            let mut r = answer(
                status,
                json!({"error": "forced", "message": "forced failure"}),
            );
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            return r;
        }
    }
    let segs: Vec<String> = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .map(str::to_string)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let json_part = match segs.as_slice() {
        ["projects", _] => "project",
        ["projects", _, "observations", _] => "observation",
        ["projects", _, "observations", _, "beams", _] => "beam",
        ["projects", _, "observations", _, "candidates"] => "candidates",
        _ => "",
    };
    let (mut json, files) = match read_body(req, body, json_part).await {
        Ok(x) => x,
        Err(e) => return answer(400, json!({"error": "Bad request", "message": e})),
    };
    {
        let mut s = state.lock().unwrap();
        for (name, (ct, bytes)) in &files {
            let head = bytes.iter().take(8).copied().collect();
            s.parts.push((name.clone(), ct.clone(), head));
        }
    }
    let mut s = state.lock().unwrap();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["projects", slug, "observations", obs, "finished"]) => {
            if !s
                .observations
                .contains_key(&(slug.to_string(), obs.to_string()))
            {
                return answer(
                    400,
                    json!({"error": "Bad request", "message": "no such observation"}),
                );
            }
            s.finished.push(obs.to_string());
            answer(200, json!({"status": "finished", "notifications": 0}))
        }
        ("GET", ["whoami"]) => answer(
            200,
            json!({"username": "tester", "role": "admin", "can_upload": !s.cannot_upload}),
        ),
        ("PUT", ["projects", slug]) => {
            let Some(name) = json.get("name").and_then(Value::as_str) else {
                return problems(vec![("name".into(), "required".into())]);
            };
            if name.is_empty() || json.get("slug").is_some() {
                return problems(vec![("name".into(), "bad".into())]);
            }
            let keys: Vec<String> = json["metrics"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|m| m["key"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let existed = s.projects.insert(slug.to_string(), keys).is_some();
            answer(
                if existed { 200 } else { 201 },
                json!({"status": if existed { "unchanged" } else { "created" }}),
            )
        }
        ("PUT", ["projects", slug, "observations", obs]) => {
            if !s.projects.contains_key(*slug) {
                return answer(
                    404,
                    json!({"error": "Not found", "message": "no such project"}),
                );
            }
            if json["metadata"]["refuse"] == json!(true) {
                return problems(vec![("metadata".into(), "refused on purpose".into())]);
            }
            let mut bad = Vec::new();
            resolve_files(&mut json, &files, "", &mut bad);
            if !bad.is_empty() {
                return problems(bad);
            }
            let key = (slug.to_string(), obs.to_string());
            let old = s.observations.insert(key, json.clone());
            let status = match old {
                None => "created",
                Some(o) if o == json => "unchanged",
                Some(_) => "updated",
            };
            answer(200, json!({"status": status}))
        }
        ("PUT", ["projects", slug, "observations", obs, "beams", beam]) => {
            if !s
                .observations
                .contains_key(&(slug.to_string(), obs.to_string()))
            {
                return answer(
                    404,
                    json!({"error": "Not found", "message": "no such observation"}),
                );
            }
            let mut bad = Vec::new();
            resolve_files(&mut json, &files, "", &mut bad);
            if !bad.is_empty() {
                return problems(bad);
            }
            let key = (slug.to_string(), obs.to_string(), beam.to_string());
            let old = s.beams.insert(key, json.clone());
            let status = match old {
                None => "created",
                Some(o) if o == json => "unchanged",
                Some(_) => "updated",
            };
            answer(200, json!({"status": status}))
        }
        ("POST", ["projects", slug, "observations", obs, "candidates"]) => {
            let Some(metrics) = s.projects.get(*slug).cloned() else {
                return answer(
                    404,
                    json!({"error": "Not found", "message": "no such project"}),
                );
            };
            if !s
                .observations
                .contains_key(&(slug.to_string(), obs.to_string()))
            {
                return answer(
                    404,
                    json!({"error": "Not found", "message": "no such observation"}),
                );
            }
            let Some(list) = json.get_mut("candidates").and_then(Value::as_array_mut) else {
                return problems(vec![("candidates".into(), "required".into())]);
            };
            if s.max_batch.is_some_and(|m| list.len() > m) {
                return answer(
                    413,
                    json!({"error": "Payload too large", "message": "too large"}),
                );
            }
            let mut bad = Vec::new();
            for (i, c) in list.iter_mut().enumerate() {
                let f = format!("candidates[{i}].");
                let ra = c["ra"].as_f64().unwrap_or(-1.0);
                if !(0.0..360.0).contains(&ra) {
                    bad.push((
                        format!("{f}ra"),
                        format!("RA {ra} is not in [0, 360) degrees"),
                    ));
                }
                if let Some(m) = c.get("metrics").and_then(Value::as_object) {
                    let given = m.iter().filter(|(_, v)| !v.is_null());
                    for (k, _) in given.filter(|(k, _)| !metrics.contains(k)) {
                        bad.push((format!("{f}metrics.{k}"), format!("no metric {k:?}")));
                    }
                }
                resolve_files(c, &files, &f, &mut bad);
            }
            if !bad.is_empty() {
                return problems(bad);
            }
            let mut out = Vec::new();
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for c in list.iter() {
                let name = c["name"].as_str().unwrap_or("").to_string();
                let st = status_of(
                    &mut s.candidates,
                    (obs.to_string(), name.clone()),
                    c.clone(),
                );
                *counts.entry(st).or_default() += 1;
                out.push(json!({"name": name, "status": st, "id": 1}));
            }
            answer(
                200,
                json!({"created": counts.get("created").copied().unwrap_or(0),
                       "updated": counts.get("updated").copied().unwrap_or(0),
                       "unchanged": counts.get("unchanged").copied().unwrap_or(0),
                       "candidates": out}),
            )
        }
        _ => answer(404, json!({"error": "Not found", "message": path})),
    }
}

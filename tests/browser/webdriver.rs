//! A small W3C WebDriver client over reqwest, enough to drive Chromium
//! through chromedriver: sessions, navigation, elements, keys, scripts and
//! screenshots.

// A general client: not every test uses every command.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::{json, Value};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The key under which WebDriver names an element.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebDriver's code points for special keys.
pub mod keys {
    pub const ENTER: &str = "\u{E007}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const ARROW_LEFT: &str = "\u{E012}";
    pub const ARROW_RIGHT: &str = "\u{E014}";
    pub const ALT: &str = "\u{E00A}";
}

/// An error answered by the driver (`value.error`), or a transport failure.
#[derive(Debug)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

pub type WdResult<T> = Result<T, WdError>;

/// A chromedriver child process on a free port, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
    client: Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

impl Driver {
    /// Starts chromedriver and waits until it says it is ready. Fails (never
    /// skips) when chromedriver or Chromium is not installed.
    pub async fn start() -> Driver {
        for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the browser tests need Debian's `{package}` package. \
                 Run `make test`, which installs it (containers/local/prepare.sh)."
            );
        }
        let port = free_port();
        let log = std::env::var_os("WEBDRIVER_LOG").is_some();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(if log { Stdio::inherit() } else { Stdio::null() })
            .stderr(if log { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}. Run `make test`."));
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = driver
                .client
                .get(format!("{}/status", driver.url))
                .send()
                .await
            {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        return driver;
                    }
                }
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver on port {port} not ready after 15 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A new headless Chromium session with a fresh profile.
    pub async fn session(&self) -> Session {
        let profile = std::env::temp_dir().join(format!(
            "vetter-browser-profile-{}-{}",
            std::process::id(),
            crate::harness::unique()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-quic".into(),
            "--window-size=1440,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"implicit": 0, "pageLoad": 30000, "script": 30000},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let r = self
            .client
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers");
        let v: Value = r.json().await.expect("a JSON answer to new session");
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session failed: {v}"))
            .to_string();
        let session = Session {
            base: format!("{}/session/{id}", self.url),
            client: self.client.clone(),
            profile,
            closed: false,
        };
        session.set_viewport(1440, 900).await;
        session
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session. Call [`Session::close`] at the end of a test; on drop
/// (say after a failed assertion) the driver process is killed anyway.
pub struct Session {
    base: String,
    client: Client,
    profile: PathBuf,
    closed: bool,
}

/// A reference to an element of the current page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(pub String);

impl Session {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> WdResult<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == Method::POST {
            req = req.json(&json!({}));
        }
        let r = req.send().await.map_err(|e| WdError {
            error: "transport".into(),
            message: e.to_string(),
        })?;
        let v: Value = r.json().await.map_err(|e| WdError {
            error: "bad answer".into(),
            message: e.to_string(),
        })?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return Err(WdError {
                error: error.to_string(),
                message: value["message"].as_str().unwrap_or("").to_string(),
            });
        }
        Ok(value)
    }

    async fn get(&self, path: &str) -> WdResult<Value> {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> WdResult<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Resizes the window so that the page itself (the viewport, and so a
    /// screenshot) is `width` × `height` CSS pixels.
    /// Sizes the window so that the page gets `width` × `height` CSS
    /// pixels, correcting once more if the first try missed (after a size
    /// the window could not take, such as narrower than Chromium allows, the
    /// window's frame no longer tells the difference).
    pub async fn set_viewport(&self, width: i64, height: i64) {
        for _ in 0..3 {
            let m = self
                .script(
                    "return [window.outerWidth, window.outerHeight, window.innerWidth, window.innerHeight];",
                    vec![],
                )
                .await;
            let n = |i: usize| m[i].as_i64().unwrap_or(0);
            let (ow, oh, iw, ih) = (n(0), n(1), n(2), n(3));
            if (iw, ih) == (width, height) {
                return;
            }
            self.post(
                "/window/rect",
                json!({"width": ow + width - iw, "height": oh + height - ih}),
            )
            .await
            .unwrap_or_else(|e| panic!("resize the window: {e}"));
        }
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The path (and query) of the current URL.
    pub async fn current_path(&self) -> String {
        let url = self.current_url().await;
        match url.split_once("://") {
            Some((_, rest)) => rest
                .find('/')
                .map_or("/".to_string(), |i| rest[i..].to_string()),
            None => url,
        }
    }

    pub async fn back(&self) {
        self.post("/back", json!({})).await.unwrap();
    }

    pub async fn forward(&self) {
        self.post("/forward", json!({})).await.unwrap();
    }

    pub async fn refresh(&self) {
        self.post("/refresh", json!({})).await.unwrap();
    }

    pub async fn try_find(&self, css: &str) -> Option<Element> {
        match self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await
        {
            Ok(v) => Some(Element(v[ELEMENT_KEY].as_str().unwrap().to_string())),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {css}: {e}"),
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!(
                "no element matches `{css}` on {}",
                self.current_path().await
            ),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .unwrap_or_else(|e| panic!("find all {css}: {e}"));
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| Element(e[ELEMENT_KEY].as_str().unwrap().to_string()))
            .collect()
    }

    pub async fn text(&self, el: &Element) -> String {
        let v = self.get(&format!("/element/{}/text", el.0)).await.unwrap();
        v.as_str().unwrap_or("").to_string()
    }

    pub async fn attribute(&self, el: &Element, name: &str) -> Option<String> {
        let v = self
            .get(&format!("/element/{}/attribute/{name}", el.0))
            .await
            .unwrap();
        v.as_str().map(str::to_string)
    }

    pub async fn property(&self, el: &Element, name: &str) -> Value {
        self.get(&format!("/element/{}/property/{name}", el.0))
            .await
            .unwrap()
    }

    pub async fn click(&self, el: &Element) {
        self.post(&format!("/element/{}/click", el.0), json!({}))
            .await
            .unwrap();
    }

    /// Types into an element (focusing it first), as `/element/{id}/value` does.
    pub async fn type_into(&self, el: &Element, text: &str) {
        self.post(&format!("/element/{}/value", el.0), json!({ "text": text }))
            .await
            .unwrap();
    }

    /// Presses and releases each key of `keys` in turn, through the Actions
    /// API, so they reach whatever has the focus (the body if nothing does),
    /// as a real keyboard would. Special keys are in [`keys`].
    pub async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for k in keys.chars() {
            let k = k.to_string();
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await
        .unwrap_or_else(|e| panic!("press {keys:?}: {e}"));
    }

    /// Drags the mouse with its left button down from one viewport point
    /// to another, in a few steps, as a hand would.
    pub async fn drag(&self, from: (f64, f64), to: (f64, f64)) {
        let mut actions = vec![
            json!({"type": "pointerMove", "duration": 0, "x": from.0.round() as i64, "y": from.1.round() as i64}),
            json!({"type": "pointerDown", "button": 0}),
        ];
        for i in 1..=4 {
            let f = f64::from(i) / 4.0;
            let (x, y) = (from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f);
            actions.push(json!({"type": "pointerMove", "duration": 20, "x": x.round() as i64, "y": y.round() as i64}));
        }
        actions.push(json!({"type": "pointerUp", "button": 0}));
        self.post(
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}]}),
        )
        .await
        .unwrap_or_else(|e| panic!("drag {from:?} to {to:?}: {e}"));
    }

    /// Presses `key` while `modifier` (one of [`keys`]) is held down.
    pub async fn press_with(&self, modifier: &str, key: &str) {
        let actions = json!([
            {"type": "keyDown", "value": modifier},
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
            {"type": "keyUp", "value": modifier},
        ]);
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await
        .unwrap_or_else(|e| panic!("press {modifier:?}+{key:?}: {e}"));
    }

    /// Runs a synchronous script (`return ...;`) and gives its value.
    pub async fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({"script": js, "args": args}))
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{js}"))
    }

    /// Runs an asynchronous script: it gets a callback as its last argument
    /// and the command answers with what the script passes to it.
    pub async fn script_async(&self, js: &str, args: Vec<Value>) -> WdResult<Value> {
        self.post("/execute/async", json!({"script": js, "args": args}))
            .await
    }

    /// Polls a script until it returns `true`; panics with `what` after `timeout`.
    pub async fn wait_for(&self, what: &str, js: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.script(js, vec![]).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what} (on {})",
                    self.current_path().await
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Saves a PNG screenshot of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.get("/screenshot").await.unwrap();
        let png = base64_decode(v.as_str().unwrap());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.call(Method::DELETE, "", None).await;
        self.closed = true;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.closed {
            // A test failed mid-way: end the browser with a plain blocking
            // DELETE, so no Chromium outlives the test.
            delete_blocking(&self.base);
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn delete_blocking(url: &str) {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return;
    };
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return;
    }
    // Read the whole answer (the browser is gone once it arrives), but do not
    // wait for the driver to close the connection.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
}

/// Standard base64 (with or without padding) to bytes.
pub fn base64_decode(s: &str) -> Vec<u8> {
    fn val(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    }
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(base64_decode("aGk"), b"hi");
}

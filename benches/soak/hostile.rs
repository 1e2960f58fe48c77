//! The soak's hostile clients: four kinds, spread evenly over the count,
//! each running until `stop`. What happened to them is counted, so the
//! report shows that they were really there and how the server answered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::survey::{csrf_token, PASSWORD};

#[derive(Default)]
pub struct Counts {
    exports_started: AtomicU64,
    exports_refused: AtomicU64,
    exports_dropped: AtomicU64,
    trickles_cut: AtomicU64,
    forms_refused: AtomicU64,
    forms_other: AtomicU64,
    logins: AtomicU64,
    logins_refused: AtomicU64,
}

pub struct Running {
    counts: Arc<Counts>,
    tasks: Vec<JoinHandle<()>>,
}

/// The kinds, in the order the clients are dealt out.
pub const KINDS: [&str; 4] = ["exports", "heads", "forms", "logins"];

/// `kinds` picks which of `KINDS` to run (to see what one kind costs the
/// reviewers); the clients are dealt out over them in turn.
pub async fn start(n: usize, kinds: &[usize], base: &str, stop: Arc<AtomicBool>) -> Running {
    let kind_of = |i: usize| kinds[i % kinds.len()];
    let counts = Arc::new(Counts::default());
    let addr = base.trim_start_matches("http://").to_string();
    // The exporters sign in before the login floods start, which would
    // soon have this address throttled.
    let mut cookies = std::collections::HashMap::new();
    for i in (0..n).filter(|&i| kind_of(i) == 0) {
        if let Some(c) = session_cookie(base, &format!("reviewer{:02}", i + 1)).await {
            cookies.insert(i, c);
        }
    }
    let mut tasks = Vec::new();
    for i in 0..n {
        let (addr, base, stop, counts) =
            (addr.clone(), base.to_string(), stop.clone(), counts.clone());
        let cookie = cookies.remove(&i);
        let kind = kind_of(i);
        tasks.push(tokio::spawn(async move {
            match kind {
                0 => {
                    if let Some(cookie) = cookie {
                        stalled_exports(&cookie, &addr, &stop, &counts).await
                    }
                }
                1 => slow_headers(&addr, &stop, &counts).await,
                2 => big_forms(&addr, &stop, &counts).await,
                _ => login_flood(i, &base, &stop, &counts).await,
            }
        }));
    }
    Running { counts, tasks }
}

/// Waits for the clients (they stop within a few seconds of `stop`) and
/// describes what they met.
pub async fn finish(r: Running) -> String {
    for t in r.tasks {
        // A client stuck past its stop is no concern of the reviewers'.
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    let c = &r.counts;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    format!(
        "{} stalled exports started, {} refused as too many, {} cut off by the server after 35 s unread; \
         {} trickling heads cut off; {} big forms refused with 413 ({} other answers); \
         {} bad logins sent, {} refused or throttled",
        get(&c.exports_started),
        get(&c.exports_refused),
        get(&c.exports_dropped),
        get(&c.trickles_cut),
        get(&c.forms_refused),
        get(&c.forms_other),
        get(&c.logins),
        get(&c.logins_refused),
    )
}

/// A reviewer's session cookie, for raw requests.
async fn session_cookie(base: &str, username: &str) -> Option<String> {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .no_proxy()
        .build()
        .ok()?;
    let page = client.get(format!("{base}/login")).send().await.ok()?;
    let token = csrf_token(&page.text().await.ok()?)?;
    client
        .post(format!("{base}/login"))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .ok()?;
    let cookie = jar.cookies(&base.parse().ok()?)?;
    Some(cookie.to_str().ok()?.to_string())
}

/// Asks for the whole survey and never reads; once the server drops the
/// connection (its write time-out), asks again.
async fn stalled_exports(cookie: &str, addr: &str, stop: &AtomicBool, c: &Counts) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(socket) = TcpSocket::new_v4() else {
            return;
        };
        let _ = socket.set_recv_buffer_size(4096);
        let Ok(mut s) = socket.connect(addr.parse().expect("an address")).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let head = format!(
            "GET /candidates.csv?ratings=history HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        // Peek at the status line only, then read nothing more.
        let mut first = [0u8; 12];
        if s.read_exact(&mut first).await.is_err() {
            continue;
        }
        if !first.starts_with(b"HTTP/1.1 200") {
            if first.starts_with(b"HTTP/1.1 503") {
                c.exports_refused.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        c.exports_started.fetch_add(1, Ordering::Relaxed);
        // Hold it unread past the server's write time-out (30 s), then see
        // whether the server has given up on it: the rest of what it sent
        // ends, and without the chunked end that a whole file has.
        for _ in 0..35 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut rest = Vec::new();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await
        {
            if !rest.ends_with(b"0\r\n\r\n") {
                c.exports_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Keeps 25 connections, each sending its request head a byte a second.
async fn slow_headers(addr: &str, stop: &AtomicBool, c: &Counts) {
    const HEAD: &[u8] = b"GET /login HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n";
    let mut conns: Vec<(Option<TcpStream>, usize)> = (0..25).map(|_| (None, 0)).collect();
    while !stop.load(Ordering::Relaxed) {
        for (conn, at) in &mut conns {
            if conn.is_none() {
                *conn = TcpStream::connect(addr).await.ok();
                *at = 0;
            }
            if let Some(s) = conn {
                if s.write_all(&HEAD[*at % HEAD.len()..][..1]).await.is_err() {
                    c.trickles_cut.fetch_add(1, Ordering::Relaxed);
                    *conn = None;
                }
                *at += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Posts 200 MiB form bodies (chunked), reading the answer as it comes.
async fn big_forms(addr: &str, stop: &AtomicBool, c: &Counts) {
    let piece = {
        let mut p = b"10000\r\n".to_vec();
        p.extend(std::iter::repeat_n(b'a', 0x10000));
        p.extend_from_slice(b"\r\n");
        p
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok(s) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let (mut rd, mut wr) = s.into_split();
        let head = format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             X-CSRF-Token: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let piece = piece.clone();
        let writer = tokio::spawn(async move {
            wr.write_all(head.as_bytes()).await?;
            for _ in 0..3200 {
                wr.write_all(&piece).await?;
            }
            std::io::Result::Ok(())
        });
        let mut status = [0u8; 12];
        let answered =
            tokio::time::timeout(Duration::from_secs(30), rd.read_exact(&mut status)).await;
        writer.abort();
        match answered {
            Ok(Ok(_)) if status.starts_with(b"HTTP/1.1 413") => {
                c.forms_refused.fetch_add(1, Ordering::Relaxed)
            }
            _ => c.forms_other.fetch_add(1, Ordering::Relaxed),
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wrong passwords for made-up names, as fast as the server answers.
async fn login_flood(i: usize, base: &str, stop: &AtomicBool, c: &Counts) {
    let Ok(client) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .no_proxy()
        .build()
    else {
        return;
    };
    let Some(token) = async {
        let page = client.get(format!("{base}/login")).send().await.ok()?;
        csrf_token(&page.text().await.ok()?)
    }
    .await
    else {
        return;
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let username = format!("intruder{i}x{}", n % 50);
        let r = client
            .post(format!("{base}/login"))
            .form(&[
                ("username", username.as_str()),
                ("password", "guess"),
                ("csrf_token", token.as_str()),
            ])
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        c.logins.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                c.logins_refused.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                let _ = r.bytes().await;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

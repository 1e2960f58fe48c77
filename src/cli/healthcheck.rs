//! `vetter healthcheck`: for container HEALTHCHECKs, which have no curl in a
//! slim image. Speaks just enough HTTP/1.0 to read the status line.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{flag_value, CliError};

pub async fn run(args: &[String]) -> Result<(), CliError> {
    let url = match flag_value(args, "--url")? {
        Some(u) => u.to_string(),
        None => {
            let bind = std::env::var("VETTER_BIND").unwrap_or_else(|_| "127.0.0.1:8000".into());
            // A server bound to all interfaces is reached on loopback.
            let bind = bind
                .replace("0.0.0.0", "127.0.0.1")
                .replace("[::]", "[::1]");
            format!("http://{bind}/healthz")
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(5), probe(&url))
        .await
        .context("no answer within 5 s")??;
    if status == 200 {
        println!("healthy");
        Ok(())
    } else {
        Err(CliError::Failed(anyhow::anyhow!("{url} answered {status}")))
    }
}

async fn probe(url: &str) -> anyhow::Result<u16> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--url must be an http:// URL");
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/healthz"),
    };
    let mut stream = TcpStream::connect(host)
        .await
        .with_context(|| format!("cannot connect to {host}"))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = vec![0u8; 64];
    let n = stream.read(&mut head).await?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer: {line:?}"))
}

//! Sending one plain-text message through the operator's SMTP relay
//! (`VETTER_SMTP_*`).
//!
//! A small client of our own rather than a mail crate: vetter sends only
//! short text messages to a relay the operator names, which is EHLO,
//! STARTTLS or TLS from the start, AUTH PLAIN or LOGIN, one envelope and
//! DATA; the TLS is `tokio-rustls`, already built for HTTPS. With STARTTLS
//! the upgrade is required (a relay that does not offer it is refused, so a
//! man in the middle cannot strip it), the certificate is checked against
//! the host name, anything the server sent after its "ready" reply is
//! treated as an attack (it could be a command injected into the plain
//! part), and EHLO is said again over TLS, forgetting what was offered
//! before. Every reply line and the number of lines are bounded, and the
//! whole conversation has the delivery time-out.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::{SmtpSecurity, SmtpSettings};
use crate::domain::email::EmailAddress;

const MAX_LINE: u64 = 4096;
const MAX_LINES: usize = 100;

/// One message to send.
pub struct Mail<'a> {
    pub to: &'a [EmailAddress],
    pub subject: &'a str,
    pub body: &'a str,
    /// Shown as `X-Vetter-Delivery`, so a receiver can tell a retry.
    pub delivery: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("connecting to {0}: {1}")]
    Connect(String, String),
    #[error("no answer from the relay within {0:?}")]
    TimedOut(Duration),
    #[error("the relay answered {code} to {step}: {text}")]
    Refused {
        step: &'static str,
        code: u16,
        text: String,
    },
    #[error("the relay does not offer STARTTLS; refusing to send in clear")]
    NoStartTls,
    #[error("the relay sent data before the TLS handshake (a possible injection); gave up")]
    Injected,
    #[error("the relay offers no AUTH PLAIN or LOGIN")]
    NoAuth,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the relay's answer is malformed: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The relay, with its TLS settings ready.
pub struct Relay {
    settings: SmtpSettings,
    tls: TlsConnector,
    /// Said in EHLO: the site's host name.
    hello: String,
}

impl Relay {
    pub fn new(settings: SmtpSettings, hello: &str) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(file) = &settings.ca_file {
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| anyhow::anyhow!("VETTER_SMTP_CA_FILE={file:?}: {e}"))?;
            for c in certs {
                let c = c.map_err(|e| anyhow::anyhow!("VETTER_SMTP_CA_FILE={file:?}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| anyhow::anyhow!("VETTER_SMTP_CA_FILE={file:?}: {e}"))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let hello = if hello.is_empty() { "localhost" } else { hello };
        Ok(Self {
            settings,
            tls: TlsConnector::from(Arc::new(config)),
            hello: hello.to_string(),
        })
    }

    pub fn from(&self) -> &str {
        &self.settings.from
    }

    /// Sends `mail`, all of it within `timeout` (connecting within
    /// `connect_timeout`).
    pub async fn send(
        &self,
        mail: &Mail<'_>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<(), SmtpError> {
        match tokio::time::timeout(timeout, self.converse(mail, connect_timeout)).await {
            Ok(r) => r,
            Err(_) => Err(SmtpError::TimedOut(timeout)),
        }
    }

    async fn converse(&self, mail: &Mail<'_>, connect_timeout: Duration) -> Result<(), SmtpError> {
        let s = &self.settings;
        let addr = format!("{}:{}", s.host, s.port);
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| {
                SmtpError::Connect(
                    addr.clone(),
                    format!("no connection within {connect_timeout:?}"),
                )
            })?
            .map_err(|e| SmtpError::Connect(addr.clone(), e.to_string()))?;
        let message = message(mail, &s.from);
        match s.security {
            SmtpSecurity::Tls => {
                let tls = self.handshake(tcp).await?;
                let mut c = Conn::new(tls);
                c.expect("greeting", &[220]).await?;
                let offered = c.ehlo(&self.hello).await?;
                c.deliver(s, &offered, mail, &message).await
            }
            SmtpSecurity::StartTls => {
                let mut c = Conn::new(tcp);
                c.expect("greeting", &[220]).await?;
                let offered = c.ehlo(&self.hello).await?;
                if !offered.iter().any(|o| o.eq_ignore_ascii_case("STARTTLS")) {
                    return Err(SmtpError::NoStartTls);
                }
                c.command("STARTTLS", "STARTTLS", &[220]).await?;
                if !c.stream.buffer().is_empty() {
                    return Err(SmtpError::Injected);
                }
                let tls = self.handshake(c.stream.into_inner()).await?;
                let mut c = Conn::new(tls);
                let offered = c.ehlo(&self.hello).await?;
                c.deliver(s, &offered, mail, &message).await
            }
            SmtpSecurity::None => {
                let mut c = Conn::new(tcp);
                c.expect("greeting", &[220]).await?;
                let offered = c.ehlo(&self.hello).await?;
                c.deliver(s, &offered, mail, &message).await
            }
        }
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SmtpError> {
        let name = ServerName::try_from(self.settings.host.clone())
            .map_err(|e| SmtpError::Tls(format!("{}: {e}", self.settings.host)))?;
        self.tls
            .connect(name, tcp)
            .await
            .map_err(|e| SmtpError::Tls(e.to_string()))
    }
}

struct Conn<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// One reply, its lines' text after the code.
    async fn reply(&mut self) -> Result<(u16, Vec<String>), SmtpError> {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            (&mut self.stream)
                .take(MAX_LINE)
                .read_until(b'\n', &mut buf)
                .await?;
            if buf.is_empty() {
                return Err(SmtpError::Protocol("the connection closed".into()));
            }
            if !buf.ends_with(b"\n") {
                return Err(SmtpError::Protocol("a reply line is too long".into()));
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| SmtpError::Protocol(format!("{:?}", shorten(line))))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Ok((code, lines));
            }
            if lines.len() >= MAX_LINES {
                return Err(SmtpError::Protocol("a reply has too many lines".into()));
            }
        }
    }

    async fn expect(&mut self, step: &'static str, ok: &[u16]) -> Result<Vec<String>, SmtpError> {
        let (code, lines) = self.reply().await?;
        if ok.contains(&code) {
            Ok(lines)
        } else {
            Err(SmtpError::Refused {
                step,
                code,
                text: shorten(&lines.join(" ")),
            })
        }
    }

    async fn command(
        &mut self,
        step: &'static str,
        line: &str,
        ok: &[u16],
    ) -> Result<Vec<String>, SmtpError> {
        let s = self.stream.get_mut();
        s.write_all(line.as_bytes()).await?;
        s.write_all(b"\r\n").await?;
        s.flush().await?;
        self.expect(step, ok).await
    }

    /// EHLO; what the relay offers (`STARTTLS`, `AUTH PLAIN LOGIN`, ...).
    async fn ehlo(&mut self, hello: &str) -> Result<Vec<String>, SmtpError> {
        let lines = self
            .command("EHLO", &format!("EHLO {hello}"), &[250])
            .await?;
        Ok(lines.into_iter().skip(1).collect())
    }

    async fn deliver(
        &mut self,
        s: &SmtpSettings,
        offered: &[String],
        mail: &Mail<'_>,
        message: &str,
    ) -> Result<(), SmtpError> {
        if let (Some(user), Some(password)) = (&s.user, &s.password) {
            let mechanisms: Vec<String> = offered
                .iter()
                .filter_map(|o| {
                    let up = o.to_ascii_uppercase();
                    up.strip_prefix("AUTH ")
                        .or(up.strip_prefix("AUTH="))
                        .map(str::to_string)
                })
                .flat_map(|m| m.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect();
            if mechanisms.iter().any(|m| m == "PLAIN") {
                let token = crate::base64(format!("\0{user}\0{}", password.expose()).as_bytes());
                self.command("AUTH", &format!("AUTH PLAIN {token}"), &[235])
                    .await?;
            } else if mechanisms.iter().any(|m| m == "LOGIN") {
                self.command("AUTH", "AUTH LOGIN", &[334]).await?;
                self.command("AUTH", &crate::base64(user.as_bytes()), &[334])
                    .await?;
                self.command("AUTH", &crate::base64(password.expose().as_bytes()), &[235])
                    .await?;
            } else {
                return Err(SmtpError::NoAuth);
            }
        }
        self.command("MAIL FROM", &format!("MAIL FROM:<{}>", s.from), &[250])
            .await?;
        for to in mail.to {
            self.command("RCPT TO", &format!("RCPT TO:<{to}>"), &[250, 251])
                .await?;
        }
        self.command("DATA", "DATA", &[354]).await?;
        let w = self.stream.get_mut();
        w.write_all(dot_stuffed(message).as_bytes()).await?;
        w.write_all(b".\r\n").await?;
        w.flush().await?;
        self.expect("the message", &[250]).await?;
        // The message is accepted; a relay that then hangs up is no failure.
        let _ = self.command("QUIT", "QUIT", &[221]).await;
        Ok(())
    }
}

fn shorten(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// The message: headers, a blank line, the body in base64 (so that no
/// line of it is long, starts with a dot, or needs 8-bit transport).
pub fn message(mail: &Mail<'_>, from: &str) -> String {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let to: Vec<&str> = mail.to.iter().map(EmailAddress::as_str).collect();
    let mut m = String::new();
    for (k, v) in [
        ("Date", date),
        ("From", format!("vetter <{from}>")),
        ("To", to.join(", ")),
        ("Subject", header_text(mail.subject)),
        (
            "Message-ID",
            format!("<{}.{}@{domain}>", mail.delivery, crate::random_hex(8)),
        ),
        ("MIME-Version", "1.0".into()),
        ("Content-Type", "text/plain; charset=utf-8".into()),
        ("Content-Transfer-Encoding", "base64".into()),
        ("Auto-Submitted", "auto-generated".into()),
        ("X-Vetter-Delivery", mail.delivery.to_string()),
    ] {
        m.push_str(k);
        m.push_str(": ");
        m.push_str(&v);
        m.push_str("\r\n");
    }
    m.push_str("\r\n");
    let body = crate::base64(
        mail.body
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .as_bytes(),
    );
    for chunk in body.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        m.push_str("\r\n");
    }
    m
}

/// A header value: as it is when it is plain printable ASCII, else an
/// RFC 2047 encoded word; line breaks never survive.
fn header_text(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        one_line
    } else {
        format!("=?UTF-8?B?{}?=", crate::base64(one_line.as_bytes()))
    }
}

/// A line that starts with a dot gets another, so the relay does not read
/// it as the end of the message.
fn dot_stuffed(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    for line in message.split_inclusive("\r\n") {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_stay_on_one_line_and_non_ascii_is_encoded() {
        assert_eq!(header_text("Real: J1234"), "Real: J1234");
        assert_eq!(header_text("a\r\nBcc: x"), "a  Bcc: x");
        assert!(header_text("χ² high").starts_with("=?UTF-8?B?"));
    }

    #[test]
    fn lines_starting_with_a_dot_are_stuffed() {
        assert_eq!(
            dot_stuffed("a\r\n.\r\n..b\r\nc"),
            "a\r\n..\r\n...b\r\nc\r\n"
        );
    }

    #[test]
    fn the_message_has_its_headers_and_a_wrapped_body() {
        let to = [EmailAddress::parse("ann@example.org").unwrap()];
        let body = "x".repeat(200);
        let m = message(
            &Mail {
                to: &to,
                subject: "Daily summary",
                body: &body,
                delivery: 42,
            },
            "vetter@example.org",
        );
        assert!(m.contains("\r\nTo: ann@example.org\r\n"));
        assert!(m.contains("\r\nX-Vetter-Delivery: 42\r\n"));
        let (_, b) = m.split_once("\r\n\r\n").unwrap();
        assert!(b.lines().all(|l| l.len() <= 76));
    }
}

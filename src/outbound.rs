//! The outbound policy: what the server may send requests to on behalf of
//! something an administrator typed (a webhook target, the VOEvent broker).
//!
//! A URL must be http(s), to a host the operator listed
//! (`VETTER_NOTIFY_ALLOWED_HOSTS`), reached at a public address unless the
//! operator listed that very host as a private one
//! (`VETTER_NOTIFY_PRIVATE_HOSTS`). The check runs when a URL is saved and
//! again on every request: the resolver below filters the addresses a name
//! resolves to, and the connection goes to exactly those, so a name that
//! changes its answer between the check and the connection (DNS rebinding)
//! gains nothing. No redirect is followed, no proxy from the environment is
//! used, connecting and the whole exchange have time-outs, and at most
//! [`MAX_ANSWER`] bytes of an answer are read.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// The most of a receiver's answer that is read; the rest is dropped with
/// the connection.
pub const MAX_ANSWER: usize = 64 << 10;
/// How much of an answer is kept to explain a failure.
const SNIPPET: usize = 200;

/// One entry of a host list.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// `hooks.slack.com`
    Exact(String),
    /// `*.example.org`: any name under `example.org` (not the name itself).
    Under(String),
    /// `127.0.0.1`, `::1`
    Ip(IpAddr),
}

impl Rule {
    fn parse(entry: &str, wildcard: bool) -> Result<Self, String> {
        let e = entry.trim().to_ascii_lowercase();
        let bare = e.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Rule::Ip(ip));
        }
        let (under, name) = match e.strip_prefix("*.") {
            Some(rest) if wildcard => (true, rest),
            Some(_) => {
                return Err(format!(
                    "{entry:?}: name each private host exactly, without a wildcard"
                ))
            }
            None => (false, e.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!(
                "{entry:?} is not a host name (such as hooks.slack.com or *.example.org) or an IP address"
            ));
        }
        Ok(if under {
            Rule::Under(name.to_string())
        } else {
            Rule::Exact(name.to_string())
        })
    }

    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (Rule::Ip(a), Host::Ip(b)) => a == b,
            (Rule::Exact(a), Host::Name(b)) => a == b,
            (Rule::Under(a), Host::Name(b)) => b
                .strip_suffix(a.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            _ => false,
        }
    }
}

/// A URL's host, as the rules compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    fn of(url: &Url) -> Option<Self> {
        match url.host()? {
            url::Host::Domain(d) => Some(match d.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(d.to_ascii_lowercase()),
            }),
            url::Host::Ipv4(ip) => Some(Host::Ip(IpAddr::V4(ip))),
            url::Host::Ipv6(ip) => Some(Host::Ip(IpAddr::V6(ip))),
        }
    }

    fn from_name(name: &str) -> Self {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(name.to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The operator's lists: hosts reached at public addresses only, and hosts
/// that may also be reached at private ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRules {
    public: Vec<Rule>,
    private: Vec<Rule>,
}

impl HostRules {
    /// From the two settings' entries; the error names the bad entry.
    pub fn parse(public: &[String], private: &[String]) -> Result<Self, String> {
        Ok(Self {
            public: public
                .iter()
                .map(|e| Rule::parse(e, true))
                .collect::<Result<_, _>>()?,
            private: private
                .iter()
                .map(|e| Rule::parse(e, false))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.public.is_empty() && self.private.is_empty()
    }

    fn allows(&self, host: &Host) -> bool {
        self.public
            .iter()
            .chain(&self.private)
            .any(|r| r.matches(host))
    }

    fn private_ok(&self, host: &Host) -> bool {
        self.private.iter().any(|r| r.matches(host))
    }

    /// Whether `addr` may be connected to for `host`.
    fn address_ok(&self, host: &Host, addr: IpAddr) -> bool {
        is_public(addr) || self.private_ok(host)
    }

    /// The checks that need no network: the URL's form, its scheme, its host
    /// in the lists, and an address written as the host.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refused> {
        let raw = raw.trim();
        if raw.len() > 2000 {
            return Err(Refused::Malformed("longer than 2000 characters".into()));
        }
        let mut url = Url::parse(raw).map_err(|e| Refused::Malformed(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme(url.scheme().to_string()));
        }
        let host = Host::of(&url).ok_or_else(|| Refused::Malformed("it names no host".into()))?;
        if !self.allows(&host) {
            return Err(Refused::NotAllowed(host.to_string()));
        }
        if let Host::Ip(ip) = host {
            if !self.address_ok(&host, ip) {
                return Err(Refused::Private {
                    host: host.to_string(),
                    address: ip,
                });
            }
        }
        url.set_fragment(None);
        Ok(url)
    }
}

/// Why a URL may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a URL: {0}")]
    Malformed(String),
    #[error("{0}:// is not allowed: use http:// or https://")]
    Scheme(String),
    #[error("{0} is not among the hosts the operator allows (VETTER_NOTIFY_ALLOWED_HOSTS)")]
    NotAllowed(String),
    #[error("{host} is at {address}, a private, loopback or otherwise non-public address; the operator must list {host} in VETTER_NOTIFY_PRIVATE_HOSTS")]
    Private { host: String, address: IpAddr },
    #[error("{host} cannot be resolved: {why}")]
    Unresolvable { host: String, why: String },
}

/// Whether `ip` is an ordinary address on the internet: not loopback,
/// private, link-local (cloud metadata services live there), shared,
/// multicast, reserved or for documentation, also when wrapped in IPv6.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4 carried in IPv6 (mapped, compatible, NAT64, 6to4): judged by the
    // IPv4 address inside.
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        if s[5] == 0 && s[6] == 0 {
            // :: and ::1 (and the rest of ::/96 below 0.1.0.0)
            return false;
        }
        return is_public_v4(v4(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(v4(s[1], s[2]));
    }
    !((s[0] & 0xfe00) == 0xfc00        // unique local
        || (s[0] & 0xffc0) == 0xfe80   // link-local
        || (s[0] & 0xffc0) == 0xfec0   // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00   // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0)      // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard
}

/// Resolves a name only if the rules allow it, and hands the connector
/// only the addresses the rules allow for it.
struct Guarded {
    rules: Arc<HostRules>,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules.clone();
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = permitted_addresses(&rules, &name).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses `name` resolves to that the rules let us connect to.
async fn permitted_addresses(rules: &HostRules, name: &str) -> Result<Vec<SocketAddr>, Refused> {
    let host = Host::from_name(name);
    if !rules.allows(&host) {
        return Err(Refused::NotAllowed(host.to_string()));
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| Refused::Unresolvable {
            host: host.to_string(),
            why: e.to_string(),
        })?
        .collect();
    let kept: Vec<SocketAddr> = found
        .iter()
        .filter(|a| rules.address_ok(&host, a.ip()))
        .copied()
        .collect();
    match (kept.is_empty(), found.first()) {
        (false, _) => Ok(kept),
        (true, Some(first)) => Err(Refused::Private {
            host: host.to_string(),
            address: first.ip(),
        }),
        (true, None) => Err(Refused::Unresolvable {
            host: host.to_string(),
            why: "no addresses".into(),
        }),
    }
}

/// What a receiver said to a request that went out.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
}

/// Why a request did not succeed, in words for the admin page.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Refused(#[from] Refused),
    #[error("answered {status}, a redirect to {location}: redirects are not followed")]
    Redirect { status: u16, location: String },
    #[error("answered {status}: {snippet}")]
    Status { status: u16, snippet: String },
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("{0}")]
    Transport(String),
}

/// Sends requests under the policy; cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    rules: Arc<HostRules>,
    client: reqwest::Client,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Outbound {
    pub fn new(
        rules: HostRules,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let rules = Arc::new(rules);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would connect for us, past the
            // address check.
            .no_proxy()
            .dns_resolver(Arc::new(Guarded {
                rules: rules.clone(),
            }))
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("vetter/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            rules,
            client,
            connect_timeout,
            timeout,
        })
    }

    pub fn rules(&self) -> &HostRules {
        &self.rules
    }

    /// The checks made when a URL is saved: [`HostRules::check_url`], and
    /// the name resolved (within the connect time-out) to at least one
    /// address the rules allow.
    pub async fn vet(&self, raw: &str) -> Result<Url, Refused> {
        let url = self.rules.check_url(raw)?;
        if let Some(url::Host::Domain(name)) = url.host() {
            let name = name.to_string();
            match tokio::time::timeout(
                self.connect_timeout,
                permitted_addresses(&self.rules, &name),
            )
            .await
            {
                Ok(r) => {
                    r?;
                }
                Err(_) => {
                    return Err(Refused::Unresolvable {
                        host: name,
                        why: format!("no answer within {:?}", self.connect_timeout),
                    })
                }
            }
        }
        Ok(url)
    }

    /// POSTs `body` to `url`; succeeds on a 2xx answer. Reads at most
    /// [`MAX_ANSWER`] bytes of the answer, within the time-out.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, Failure> {
        let url = self.rules.check_url(url)?;
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let sent = req.body(body).send().await.map_err(|e| self.failure(&e))?;
        let status = sent.status().as_u16();
        if sent.status().is_redirection() {
            let location = sent
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere")
                .chars()
                .take(SNIPPET)
                .collect();
            return Err(Failure::Redirect { status, location });
        }
        let head = read_bounded(sent, MAX_ANSWER)
            .await
            .map_err(|e| self.failure(&e))?;
        if !(200..300).contains(&status) {
            let snippet: String = String::from_utf8_lossy(&head)
                .chars()
                .filter(|c| !c.is_control())
                .take(SNIPPET)
                .collect();
            return Err(Failure::Status { status, snippet });
        }
        Ok(Answer { status })
    }

    fn failure(&self, e: &reqwest::Error) -> Failure {
        // Our resolver's refusal travels inside reqwest's error.
        let mut source: Option<&(dyn StdError + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(r) = s.downcast_ref::<Refused>() {
                return Failure::Refused(r.clone());
            }
            source = s.source();
        }
        if e.is_timeout() {
            return Failure::TimedOut(self.timeout);
        }
        Failure::Transport(error_chain(e))
    }
}

/// Up to `max` bytes of the answer's body.
async fn read_bounded(mut r: reqwest::Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while out.len() < max {
        match r.chunk().await? {
            Some(c) => out.extend_from_slice(&c[..c.len().min(max - out.len())]),
            None => break,
        }
    }
    Ok(out)
}

/// An error with its causes, on one line.
pub fn error_chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(public: &[&str], private: &[&str]) -> HostRules {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        HostRules::parse(&v(public), &v(private)).unwrap()
    }

    #[test]
    fn only_listed_hosts_over_http_are_allowed() {
        let r = rules(&["hooks.slack.com", "*.example.org"], &[]);
        assert!(r
            .check_url("https://hooks.slack.com/services/T/B/x")
            .is_ok());
        assert!(r.check_url("http://a.b.example.org:8080/x").is_ok());
        for (url, want) in [
            ("https://example.org/x", "not among"),
            ("https://evil.com/?hooks.slack.com", "not among"),
            ("https://hooks.slack.com.evil.com/", "not among"),
            ("https://xexample.org/", "not among"),
            ("ftp://hooks.slack.com/x", "is not allowed"),
            ("file:///etc/passwd", "is not allowed"),
            ("hooks.slack.com/x", "not a URL"),
        ] {
            let e = r.check_url(url).unwrap_err().to_string();
            assert!(e.contains(want), "{url}: {e}");
        }
        assert!(HostRules::default()
            .check_url("https://hooks.slack.com/")
            .is_err());
    }

    #[test]
    fn private_addresses_need_the_host_named_as_private() {
        let open = rules(&["127.0.0.1", "*.internal"], &[]);
        let e = open.check_url("http://127.0.0.1:9/x").unwrap_err();
        assert!(matches!(e, Refused::Private { .. }), "{e}");
        // The URL parser reads these forms of loopback as 127.0.0.1.
        let private = rules(&[], &["127.0.0.1"]);
        for url in [
            "http://127.0.0.1:9/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
        ] {
            assert!(private.check_url(url).is_ok(), "{url}");
        }
        assert!(private.check_url("http://127.0.0.2/x").is_err());
        assert!(private.check_url("http://[::1]/x").is_err());
        assert!(rules(&[], &["::1"]).check_url("http://[::1]:80/x").is_ok());
        assert!(HostRules::parse(&[], &["*.internal".into()]).is_err());
        assert!(HostRules::parse(&["exa mple.org".into()], &[]).is_err());
    }

    #[test]
    fn addresses_are_judged_public_or_not() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_private() {
        let o = Outbound::new(
            rules(&["localhost"], &[]),
            Duration::from_secs(2),
            Duration::from_secs(2),
        )
        .unwrap();
        let e = o.vet("http://localhost:9/x").await.unwrap_err();
        assert!(matches!(e, Refused::Private { .. }), "{e}");
        let e = o
            .post("http://localhost:9/x", "text/plain", &[], vec![])
            .await
            .unwrap_err();
        assert!(
            matches!(e, Failure::Refused(Refused::Private { .. })),
            "{e}"
        );
        let o = Outbound::new(
            rules(&[], &["localhost"]),
            Duration::from_secs(2),
            Duration::from_secs(2),
        )
        .unwrap();
        assert!(o.vet("http://localhost:9/x").await.is_ok());
    }
}

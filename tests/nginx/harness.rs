//! Running the repository's nginx configuration with the real nginx binary, unprivileged, on
//! loopback: the templates in nginx/templates are rendered the way the nginx image does it
//! (envsubst of the `${VETTER_*}` variables) into a temporary prefix, under a small main
//! configuration that keeps every path (pid, logs, temp folders) inside it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const NGINX: &str = "/usr/sbin/nginx";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The nginx binary, or a failure that says how to get it.
pub fn nginx_bin() -> &'static str {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is missing: run `make test` (containers/local/prepare.sh installs nginx-light, \
         libnginx-mod-stream and openssl)"
    );
    NGINX
}

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vetter-nginx-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago (nginx binds it itself).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway self-signed certificate for `cn`: (certificate, key).
pub fn self_signed(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{cn}.crt"));
    let key = dir.join(format!("{cn}.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .arg("-subj")
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is missing: run `make test` (containers/local/prepare.sh installs it)");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// Every template under nginx/templates: (path relative to it, text).
pub fn templates() -> Vec<(PathBuf, String)> {
    let root = repo().join("nginx/templates");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "template") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p.strip_prefix(&root).unwrap().to_path_buf(), text));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no templates in nginx/templates");
    out
}

/// The `${VETTER_*}` placeholders in a text.
pub fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        // Only what envsubst treats as a variable: `${NAME}` with NAME an identifier.
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 && rest[end..].starts_with('}') {
            out.insert(rest[..end].to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// What the image's envsubst does with NGINX_ENVSUBST_FILTER=^VETTER_: replace `${NAME}` and
/// `$NAME` for the variables given. Every `${...}` must have a value, as a missing one would
/// reach nginx verbatim.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> String {
    let unknown: Vec<_> = placeholders(text)
        .into_iter()
        .filter(|p| !vars.contains_key(p))
        .collect();
    assert!(unknown.is_empty(), "no value for {unknown:?}");
    let mut out = text.to_string();
    // Longest names first, so $VETTER_A does not eat the start of $VETTER_AB.
    let mut names: Vec<_> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out.replace(&format!("${{{name}}}"), &vars[name]);
        out = out.replace(&format!("${name}"), &vars[name]);
    }
    out
}

/// The settings of one site, as the compose files give them to the nginx container.
#[derive(Clone)]
pub struct Site {
    pub server_name: String,
    pub http: u16,
    pub tls: u16,
    pub https: u16,
    pub public_origin: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub app_servers: Vec<u16>,
    pub firefly: u16,
    pub body_size: String,
    pub media_dir: PathBuf,
    /// Where a bucket's objects are fetched from (`http://127.0.0.1:9`: none).
    pub s3_endpoint: String,
    pub acme_dir: PathBuf,
    pub passthrough_name: String,
    pub passthrough_http: String,
    pub passthrough_tls: String,
}

impl Site {
    /// A site named `server_name` with fresh ports, a certificate and empty media and ACME
    /// folders inside `dir`; its browser-facing TLS port is `tls` (that of the nginx that
    /// publishes 443, which forwards to this one when it is the other site).
    pub fn new(dir: &Path, server_name: &str) -> Self {
        let (cert, key) = self_signed(dir, server_name);
        let media_dir = dir.join("media");
        let acme_dir = dir.join("acme");
        std::fs::create_dir_all(&media_dir).unwrap();
        std::fs::create_dir_all(acme_dir.join(".well-known/acme-challenge")).unwrap();
        let tls = free_port();
        Self {
            server_name: server_name.into(),
            http: free_port(),
            tls,
            https: free_port(),
            public_origin: format!("https://{server_name}:{tls}"),
            cert,
            key,
            app_servers: vec![9],
            firefly: 9,
            body_size: "4G".into(),
            media_dir,
            s3_endpoint: "http://127.0.0.1:9".into(),
            acme_dir,
            passthrough_name: "passthrough.invalid".into(),
            passthrough_http: "127.0.0.1:9".into(),
            passthrough_tls: "127.0.0.1:9".into(),
        }
    }

    pub fn vars(&self) -> BTreeMap<String, String> {
        let servers: String = self
            .app_servers
            .iter()
            .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=10s; "))
            .collect();
        [
            ("VETTER_SERVER_NAME", self.server_name.clone()),
            ("VETTER_PUBLIC_ORIGIN", self.public_origin.clone()),
            ("VETTER_TLS_CERT", self.cert.display().to_string()),
            ("VETTER_TLS_KEY", self.key.display().to_string()),
            ("VETTER_LISTEN_HTTP", format!("127.0.0.1:{}", self.http)),
            ("VETTER_LISTEN_TLS", format!("127.0.0.1:{}", self.tls)),
            ("VETTER_LISTEN_HTTPS", format!("127.0.0.1:{}", self.https)),
            ("VETTER_HTTPS_BACKEND", format!("127.0.0.1:{}", self.https)),
            ("VETTER_APP_SERVERS", servers),
            (
                "VETTER_FIREFLY_UPSTREAM",
                format!("127.0.0.1:{}", self.firefly),
            ),
            ("VETTER_CLIENT_MAX_BODY_SIZE", self.body_size.clone()),
            ("VETTER_CLIENT_MAX_FORM_SIZE", "64K".into()),
            ("VETTER_MEDIA_DIR", self.media_dir.display().to_string()),
            ("VETTER_S3_ENDPOINT", self.s3_endpoint.clone()),
            ("VETTER_ACME_ROOT", self.acme_dir.display().to_string()),
            ("VETTER_RESOLVER", "127.0.0.1".into()),
            ("VETTER_PASSTHROUGH_NAME", self.passthrough_name.clone()),
            ("VETTER_PASSTHROUGH_HTTP", self.passthrough_http.clone()),
            ("VETTER_PASSTHROUGH_TLS", self.passthrough_tls.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Whether this nginx has the stream module only as a loadable module (Debian), and where.
fn stream_module() -> Option<&'static str> {
    const SO: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
    let out = Command::new(nginx_bin()).arg("-V").output().unwrap();
    let build = String::from_utf8_lossy(&out.stderr).to_string();
    if build.contains("--with-stream=dynamic") {
        assert!(
            Path::new(SO).exists(),
            "{SO} is missing: run `make test` (containers/local/prepare.sh installs libnginx-mod-stream)"
        );
        Some(SO)
    } else {
        assert!(
            build.contains("--with-stream"),
            "this nginx has no stream module"
        );
        None
    }
}

/// Renders the templates for `site` into `dir` the way the image lays them out (conf.d/ and
/// conf.d/stream/) and writes the main configuration; returns its path.
pub fn write_config(dir: &Path, site: &Site) -> PathBuf {
    let vars = site.vars();
    for (rel, text) in templates() {
        let out = dir.join("conf.d").join(rel.with_extension(""));
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, render(&text, &vars)).unwrap();
    }
    let d = dir.display();
    let load = stream_module()
        .map(|so| format!("load_module {so};\n"))
        .unwrap_or_default();
    let mime = if Path::new("/etc/nginx/mime.types").exists() {
        "include /etc/nginx/mime.types;"
    } else {
        ""
    };
    let conf = format!(
        "{load}daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    {mime}
    default_type application/octet-stream;
    sendfile on;
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/conf.d/*.conf;
}}
stream {{
    include {d}/conf.d/stream/*.conf;
}}
"
    );
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn nginx_cmd(dir: &Path, conf: &Path) -> Command {
    let mut c = Command::new(nginx_bin());
    c.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .arg("-e")
        .arg(dir.join("error.log"));
    c
}

/// `nginx -t` on the configuration; panics with nginx's words if it is refused.
pub fn check_config(dir: &Path, conf: &Path) -> String {
    let out = nginx_cmd(dir, conf).arg("-t").output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "nginx -t refused {}:\n{text}",
        conf.display()
    );
    text
}

/// A running nginx for one site; stopped on drop.
pub struct Nginx {
    pub site: Site,
    pub dir: TempDir,
    conf: PathBuf,
    child: Option<Child>,
}

impl Nginx {
    /// Starts nginx for `site` (whose files live in `dir`) and waits until it listens.
    pub fn start(dir: TempDir, site: Site) -> Self {
        let conf = write_config(dir.path(), &site);
        check_config(dir.path(), &conf);
        let child = nginx_cmd(dir.path(), &conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut me = Self {
            site,
            dir,
            conf,
            child: Some(child),
        };
        me.wait_listening();
        me
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let ports = [self.site.http, self.site.tls, self.site.https];
        loop {
            let up = ports.iter().all(|p| {
                let addr: SocketAddr = format!("127.0.0.1:{p}").parse().unwrap();
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            });
            if up {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nginx exited ({status}):\n{}", self.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx does not listen on {ports:?}:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}:{}{path}", self.site.server_name, self.site.tls)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.site.server_name, self.site.http)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `nginx -s stop` signals the master, which stops its workers; killing the master
        // outright would leave them running.
        let _ = nginx_cmd(self.dir.path(), &self.conf)
            .args(["-s", "stop"])
            .output();
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The test client: no redirects followed, a cookie jar, our throwaway certificates accepted,
/// and the test host names on loopback (IPv4, where nginx listens).
pub fn client() -> reqwest::Client {
    client_builder().build().unwrap()
}

pub fn client_builder() -> reqwest::ClientBuilder {
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .danger_accept_invalid_certs(true)
        .resolve("localhost", lo)
        .resolve("staging.localhost", lo)
        .timeout(Duration::from_secs(30))
}

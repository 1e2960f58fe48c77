//! The nginx templates pass `nginx -t` in both roles (the site that publishes 443 and forwards
//! another's connections, and the forwarded one), and the container scripts work.

use std::process::Command;

use crate::harness::{check_config, render, repo, templates, write_config, Site, TempDir};

/// The rendered http{} configuration of a test site.
fn rendered_http(site: &Site) -> String {
    let (_, text) = templates()
        .into_iter()
        .find(|(p, _)| p.to_str() == Some("vetter.conf.template"))
        .expect("nginx/templates/vetter.conf.template");
    render(&text, &site.vars())
}

/// The body of the first `location <spec> {` block.
fn location<'a>(conf: &'a str, spec: &str) -> &'a str {
    let start = conf
        .find(&format!("location {spec} {{"))
        .unwrap_or_else(|| panic!("no `location {spec}`"));
    let body = &conf[start..];
    let end = body.find("\n    }").expect("a closing brace");
    &body[..end]
}

fn seconds(directive_line: &str) -> u64 {
    directive_line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.trim_end_matches(';').strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a duration in seconds: {directive_line}"))
}

#[test]
fn every_template_passes_nginx_t_in_both_roles() {
    // The site that publishes 443 and forwards staging's connections...
    let dir = TempDir::new("conf-front");
    let mut front = Site::new(dir.path(), "localhost");
    front.app_servers = vec![18000, 18001];
    front.passthrough_name = "staging.localhost".into();
    front.passthrough_http = "127.0.0.1:19080".into();
    front.passthrough_tls = "127.0.0.1:19443".into();
    let conf = write_config(dir.path(), &front);
    check_config(dir.path(), &conf);
    // ...and the one behind it, which forwards nothing.
    let dir = TempDir::new("conf-behind");
    let behind = Site::new(dir.path(), "staging.localhost");
    let conf = write_config(dir.path(), &behind);
    check_config(dir.path(), &conf);
}

#[test]
fn the_configuration_says_what_the_deployment_relies_on() {
    let dir = TempDir::new("conf-text");
    let site = Site::new(dir.path(), "localhost");
    let all = rendered_http(&site);
    // The HTTPS server (the port-80 servers come first and have their own `location /`).
    let conf = &all[all.find("ssl proxy_protocol").expect("the HTTPS server")..];

    // TLS: modern protocols only, HSTS everywhere (also where a location adds headers).
    assert!(conf.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
    assert!(!conf.contains("TLSv1.1") && !conf.contains("TLSv1 "));
    let hsts = "add_header Strict-Transport-Security \"max-age=63072000\" always;";
    assert!(conf.contains(hsts));
    for spec in ["/firefly/", "/protected-media/"] {
        assert!(location(conf, spec).contains(hsts), "{spec} repeats HSTS");
    }

    // Media only through the app's X-Accel-Redirect.
    let media = location(conf, "/protected-media/");
    assert!(media.contains("internal;"));
    assert!(media.contains(&format!("alias {}/;", site.media_dir.display())));

    // Firefly: behind the login, websocket upgrade, idle reads beyond its 5-minute ping, and
    // none of the app's cookies.
    let ff = location(conf, "/firefly/");
    assert!(ff.contains("auth_request /_vetter_auth;"));
    assert!(ff.contains("proxy_set_header Upgrade $http_upgrade;"));
    assert!(ff.contains("proxy_set_header Connection $vetter_connection_upgrade;"));
    assert!(ff.contains("proxy_set_header Cookie $vetter_firefly_cookie;"));
    let read = ff
        .lines()
        .find(|l| l.trim().starts_with("proxy_read_timeout"))
        .expect("proxy_read_timeout on /firefly/");
    assert!(seconds(read.trim()) > 300, "{read}");
    let auth = location(conf, "= /_vetter_auth");
    assert!(auth.contains("internal;"));
    assert!(auth.contains("/auth/check;"));
    assert!(auth.contains("proxy_pass_request_body off;"));

    // The app gets the client's address and scheme; the upload limit is the app's.
    let app = location(conf, "/");
    for h in [
        "X-Real-IP $remote_addr",
        "X-Forwarded-For",
        "X-Forwarded-Proto https",
        "Host",
    ] {
        assert!(app.contains(&format!("proxy_set_header {h}")), "{h}");
    }
    // Bodies: small everywhere (the app's form limit), large only on the upload API.
    let head = &all[..all.find("server {").expect("a server")];
    assert!(
        head.contains("client_max_body_size 64K;"),
        "the default is the form limit"
    );
    assert!(location(conf, "/api/").contains("client_max_body_size 4G;"));
    assert_eq!(
        all.matches("client_max_body_size").count(),
        2,
        "set in two places only"
    );
    // Slow clients: a bound on the head, on each pause in a body or an answer, and on idling.
    for (directive, most) in [
        ("client_header_timeout", 10),
        ("client_body_timeout", 60),
        ("send_timeout", 60),
        ("keepalive_timeout", 75),
    ] {
        let line = head
            .lines()
            .find(|l| l.starts_with(directive))
            .unwrap_or_else(|| panic!("{directive} is set"));
        assert!(seconds(line) <= most, "{line}");
    }
}

#[test]
fn nginx_scripts_parse_and_the_first_start_gets_a_stand_in_certificate() {
    let scripts = repo().join("nginx/entrypoint");
    for e in std::fs::read_dir(&scripts).unwrap().flatten() {
        let out = Command::new("sh").arg("-n").arg(e.path()).output().unwrap();
        assert!(out.status.success(), "{}: {:?}", e.path().display(), out);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = e.metadata().unwrap().permissions().mode();
            assert!(
                mode & 0o111 != 0,
                "{} must be executable",
                e.path().display()
            );
        }
    }
    for e in std::fs::read_dir(repo().join("containers/db"))
        .unwrap()
        .flatten()
    {
        let out = Command::new("bash")
            .arg("-n")
            .arg(e.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {:?}", e.path().display(), out);
    }

    // No certificate yet: the sourced script makes a self-signed one and points the
    // templates at it.
    let dir = TempDir::new("tls-fallback");
    let envsh = scripts.join("15-vetter-tls.envsh");
    let run = |cert: &str, key: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(
                ". \"$1\" >/dev/null; printf '%s\\n%s\\n' \"$VETTER_TLS_CERT\" \"$VETTER_TLS_KEY\"",
            )
            .arg("sh")
            .arg(&envsh)
            .env("VETTER_TLS_CERT", cert)
            .env("VETTER_TLS_KEY", key)
            .env("VETTER_TLS_FALLBACK_DIR", dir.join("fallback"))
            .env("VETTER_SERVER_NAME", "vetter.example.org")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let missing = dir.join("live/fullchain.pem");
    let printed = run(missing.to_str().unwrap(), "/nonexistent/privkey.pem");
    let fallback = dir.join("fallback");
    assert_eq!(
        printed,
        format!(
            "{}\n{}\n",
            fallback.join("fullchain.pem").display(),
            fallback.join("privkey.pem").display()
        )
    );
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(fallback.join("fullchain.pem"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&subject.stdout).contains("vetter.example.org"));

    // Once certbot's files exist they are used as they are.
    let (cert, key) = crate::harness::self_signed(dir.path(), "real");
    let printed = run(cert.to_str().unwrap(), key.to_str().unwrap());
    assert_eq!(printed, format!("{}\n{}\n", cert.display(), key.display()));
}

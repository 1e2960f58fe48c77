//! The compose files, merged the way `make dev|prod|staging` layers them (loosely: maps merge,
//! `ports`/`volumes`/`env_file`/`networks` lists add up, `!reset` and `!override` replace,
//! anything else is replaced by the later file), and checked for what deployment relies on.
//! Variables are interpolated as compose does, from a test `.env`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::harness::{placeholders, repo};

const PROD_NAME: &str = "vetter.example.org";
const STAGING_NAME: &str = "vetter-staging.example.org";

fn env_var(name: &str) -> Option<String> {
    match name {
        "VETTER_SERVER_NAME" => Some(PROD_NAME.into()),
        "VETTER_STAGING_SERVER_NAME" => Some(STAGING_NAME.into()),
        _ => None,
    }
}

/// Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
/// `$$` for a literal `$`.
fn interpolate(text: &str, file: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("${") {
            let end = r
                .find('}')
                .unwrap_or_else(|| panic!("{file}: unclosed ${{"));
            let expr = &r[..end];
            rest = &r[end + 1..];
            let value = if let Some((name, msg)) = expr.split_once(":?") {
                env_var(name).unwrap_or_else(|| panic!("{file}: {name} required: {msg}"))
            } else if let Some((name, default)) = expr.split_once(":-") {
                env_var(name).unwrap_or_else(|| default.to_string())
            } else if let Some((name, default)) = expr.split_once('-') {
                env_var(name).unwrap_or_else(|| default.to_string())
            } else {
                env_var(expr).unwrap_or_default()
            };
            out.push_str(&value);
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

fn load(file: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    serde_yaml::from_str(&interpolate(&text, file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn tag_of(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string()),
        _ => None,
    }
}

fn untag(v: &Value) -> Value {
    match v {
        Value::Tagged(t) => t.value.clone(),
        other => other.clone(),
    }
}

const LIST_MERGED: [&str; 5] = ["ports", "volumes", "env_file", "networks", "expose"];

fn merge(base: &mut Value, over: &Value, key: &str) {
    if let Some(tag) = tag_of(over) {
        assert!(
            tag == "!reset" || tag == "!override",
            "unknown tag {tag} on {key}"
        );
        *base = untag(over);
        return;
    }
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let name = k.as_str().unwrap_or_default().to_string();
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v, &name),
                    None => {
                        b.insert(k.clone(), untag(v));
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if LIST_MERGED.contains(&key) => {
            for v in o {
                if !b.contains(v) {
                    b.push(v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The merged configuration of one environment, as the Makefile's COMPOSE_<env> layers it.
fn stack(env: &str) -> Value {
    let files = makefile_compose_files(env);
    let mut merged = Value::Mapping(Mapping::new());
    for f in &files {
        merge(&mut merged, &load(f), "");
    }
    merged
}

fn makefile() -> String {
    std::fs::read_to_string(repo().join("Makefile")).unwrap()
}

/// The `-f` files of COMPOSE_DEV / COMPOSE_PROD / COMPOSE_STAGING in the Makefile.
fn makefile_compose_files(env: &str) -> Vec<String> {
    let var = format!("COMPOSE_{}", env.to_ascii_uppercase());
    let mk = makefile();
    let line = mk
        .lines()
        .find(|l| l.starts_with(&var) && l.contains("docker compose"))
        .unwrap_or_else(|| panic!("no {var} in the Makefile"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "-f")
        .map(|w| w[1].to_string())
        .collect()
}

fn services(stack: &Value) -> &Mapping {
    stack["services"].as_mapping().expect("services")
}

fn service<'a>(stack: &'a Value, name: &str) -> &'a Value {
    stack["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn names(m: &Mapping) -> Vec<String> {
    m.keys().map(|k| k.as_str().unwrap().to_string()).collect()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(s) => s
            .iter()
            .map(|x| x.as_str().expect("a string").to_string())
            .collect(),
        Value::String(s) => vec![s.clone()],
        Value::Null => vec![],
        other => panic!("not a list of strings: {other:?}"),
    }
}

/// A service's environment as a map (either compose spelling).
fn environment(svc: &Value) -> BTreeMap<String, String> {
    match &svc["environment"] {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    other => panic!("odd value {other:?}"),
                };
                (k.as_str().unwrap().to_string(), v)
            })
            .collect(),
        Value::Sequence(_) => strings(&svc["environment"])
            .into_iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// (source, target, read-only) of a service's short-syntax volumes.
fn mounts(svc: &Value) -> Vec<(String, String, bool)> {
    strings(&svc["volumes"])
        .into_iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            assert!(parts.len() >= 2, "volume {v} has no target");
            (
                parts[0].to_string(),
                parts[1].to_string(),
                parts
                    .get(2)
                    .is_some_and(|o| o.split(',').any(|x| x == "ro")),
            )
        })
        .collect()
}

fn is_bind(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// The Dockerfile a service is built from, if any.
fn dockerfile(svc: &Value) -> Option<std::path::PathBuf> {
    let build = &svc["build"];
    let (context, file) = match build {
        Value::String(c) => (c.clone(), "Dockerfile".to_string()),
        Value::Mapping(_) => (
            build["context"].as_str().unwrap_or(".").to_string(),
            build["dockerfile"]
                .as_str()
                .unwrap_or("Dockerfile")
                .to_string(),
        ),
        _ => return None,
    };
    Some(repo().join(context).join(file))
}

fn has_health_check(svc: &Value) -> bool {
    if !svc["healthcheck"]["test"].is_null() {
        return true;
    }
    dockerfile(svc).is_some_and(|f| {
        std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .any(|l| l.trim_start().starts_with("HEALTHCHECK"))
    })
}

const ENVS: [&str; 3] = ["dev", "prod", "staging"];

#[test]
fn the_makefile_has_the_targets_and_layers_the_files() {
    let mk = makefile();
    for target in [
        "dev",
        "dev-down",
        "prod",
        "prod-down",
        "staging",
        "staging-down",
        "cert-init-prod",
        "cert-init-staging",
        "edge-network",
    ] {
        assert!(
            mk.lines().any(|l| l.starts_with(&format!("{target}:"))),
            "make {target}"
        );
    }
    assert_eq!(makefile_compose_files("dev"), ["docker-compose.yml"]);
    assert_eq!(
        makefile_compose_files("prod"),
        ["docker-compose.yml", "docker-compose.prod.yml"]
    );
    assert_eq!(
        makefile_compose_files("staging"),
        [
            "docker-compose.yml",
            "docker-compose.prod.yml",
            "docker-compose.staging.yml"
        ]
    );
    // `-p` and the staging file's `name:` agree.
    let line = mk
        .lines()
        .find(|l| l.starts_with("COMPOSE_STAGING"))
        .unwrap();
    let p = line
        .split_whitespace()
        .skip_while(|w| *w != "-p")
        .nth(1)
        .expect("-p in COMPOSE_STAGING");
    assert_eq!(stack("staging")["name"].as_str(), Some(p));
    // The shared network exists before a stack that needs it starts.
    for target in ["prod:", "staging:", "cert-init-prod:", "cert-init-staging:"] {
        let line = mk.lines().find(|l| l.starts_with(target)).unwrap();
        assert!(line.contains("edge-network"), "{line}");
    }
}

#[test]
fn every_service_has_an_image_or_a_build_and_named_volumes_are_declared() {
    for env in ENVS {
        let st = stack(env);
        let declared: BTreeSet<String> = st["volumes"]
            .as_mapping()
            .map(names)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for (name, svc) in services(&st) {
            let name = name.as_str().unwrap();
            let image = svc["image"].as_str();
            let file = dockerfile(svc);
            assert!(
                image.is_some() || file.is_some(),
                "{env}: {name} has neither image nor build"
            );
            if let Some(f) = file {
                assert!(f.exists(), "{env}: {name}: {} is missing", f.display());
            }
            if let Some(image) = image {
                let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
                assert!(
                    !["latest", "nightly", "stable", "mainline"].contains(&tag)
                        && !tag.contains('/'),
                    "{env}: {name} uses an unpinned image {image}"
                );
            }
            for (source, _, _) in mounts(svc) {
                if !is_bind(&source) {
                    assert!(
                        declared.contains(&source),
                        "{env}: {name} uses volume {source}, not declared"
                    );
                }
            }
        }
    }
}

#[test]
fn env_files_are_committed_only_as_examples() {
    let gitignore = std::fs::read_to_string(repo().join(".gitignore")).unwrap();
    assert!(gitignore
        .lines()
        .any(|l| l.trim() == "/containers/env/*.env"));
    assert!(gitignore.lines().any(|l| l.trim() == ".env"));
    let mut seen = BTreeSet::new();
    for env in ENVS {
        let st = stack(env);
        for (_, svc) in services(&st) {
            for f in strings(&svc["env_file"]) {
                assert!(
                    f.starts_with("containers/env/") && f.ends_with(".env"),
                    "{f}: keep real env files in containers/env/*.env (git-ignored)"
                );
                let example = repo().join(format!("{f}.example"));
                assert!(example.exists(), "{} is missing", example.display());
                seen.insert(f);
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "containers/env/app.env",
            "containers/env/db.env",
            "containers/env/firefly.env"
        ]
    );
    assert!(repo().join("containers/env/compose.env.example").exists());

    // Every setting the app reads is explained in the example.
    let example = std::fs::read_to_string(repo().join("containers/env/app.env.example")).unwrap();
    let config = std::fs::read_to_string(repo().join("src/config.rs")).unwrap();
    let mut vars: BTreeSet<String> = ["DATABASE_URL", "RUST_LOG"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut rest = config.as_str();
    while let Some(i) = rest.find("\"VETTER_") {
        rest = &rest[i + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        vars.insert(rest[..end].to_string());
    }
    for var in vars {
        assert!(
            example.contains(&format!("{var}=")),
            "containers/env/app.env.example does not explain {var}"
        );
    }
    // The database names agree between the app's URL and the init script's variables.
    let db = std::fs::read_to_string(repo().join("containers/env/db.env.example")).unwrap();
    let get = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}="))
            .to_string()
    };
    let url = get(&example, "DATABASE_URL");
    assert_eq!(
        url,
        format!(
            "postgres://{}:{}@db:5432/{}",
            get(&db, "VETTER_DB_USER"),
            get(&db, "VETTER_DB_PASSWORD"),
            get(&db, "VETTER_DB_NAME")
        )
    );
    let ff = std::fs::read_to_string(repo().join("containers/env/firefly.env.example")).unwrap();
    assert!(!get(&ff, "ADMIN_PASSWORD").is_empty());
}

#[test]
fn the_four_main_services_have_health_checks_and_prod_restarts_them() {
    for env in ENVS {
        let st = stack(env);
        let expected: &[&str] = if env == "dev" {
            &["app", "db", "firefly"]
        } else {
            &["app", "db", "firefly", "nginx"]
        };
        for name in expected {
            assert!(
                has_health_check(service(&st, name)),
                "{env}: {name} has no health check"
            );
        }
        if env != "dev" {
            for (name, svc) in services(&st) {
                let restart = svc["restart"].as_str().unwrap_or_default();
                assert!(
                    ["unless-stopped", "always"].contains(&restart),
                    "{env}: {name:?} has no restart policy"
                );
            }
        }
    }
    let app = std::fs::read_to_string(repo().join("containers/Dockerfile")).unwrap();
    assert!(app.contains("CMD [\"vetter\", \"healthcheck\"]"));
    assert!(app.contains("USER vetter"));
    assert!(app.contains("libcfitsio10 ca-certificates"));
    assert!(app.contains("ARG DEBIAN_RELEASE=bookworm") && app.contains("-slim"));
    assert!(app.contains("VETTER_BUILD_COMMIT=\"${VETTER_BUILD_COMMIT}\" cargo build"));
    let dev = stack("dev");
    let firefly = service(&dev, "firefly");
    let test = strings(&firefly["healthcheck"]["test"]).join(" ");
    assert!(test.contains("/firefly/healthz"), "{test}");
}

#[test]
fn only_nginx_is_published_and_no_source_is_mounted() {
    let dev = stack("dev");
    for (name, svc) in services(&dev) {
        for p in strings(&svc["ports"]) {
            assert!(
                p.starts_with("127.0.0.1:"),
                "dev: {name:?} publishes {p} beyond loopback"
            );
        }
    }
    let prod = stack("prod");
    for (name, svc) in services(&prod) {
        let ports = strings(&svc["ports"]);
        if name.as_str() == Some("nginx") {
            assert_eq!(ports, ["80:80", "443:443"]);
        } else {
            assert!(ports.is_empty(), "prod: {name:?} publishes {ports:?}");
        }
    }
    let staging = stack("staging");
    for (name, svc) in services(&staging) {
        assert!(
            strings(&svc["ports"]).is_empty(),
            "staging: {name:?} publishes ports (production's nginx forwards to it)"
        );
    }
    for (env, st) in [("prod", &prod), ("staging", &staging)] {
        for (name, svc) in services(st) {
            let name = name.as_str().unwrap();
            for (source, target, ro) in mounts(svc) {
                if !is_bind(&source) {
                    continue;
                }
                let allowed = match (name, source.as_str()) {
                    ("autoheal", "/var/run/docker.sock") => true,
                    ("app", "./staging-notes") => env == "staging" && ro,
                    _ => false,
                };
                assert!(allowed, "{env}: {name} bind-mounts {source} at {target}");
            }
        }
    }
}

#[test]
fn firefly_is_pinned_and_reads_only_the_media_under_external() {
    for env in ENVS {
        let st = stack(env);
        let ff = service(&st, "firefly");
        let image = ff["image"].as_str().unwrap();
        let (repo_name, tag) = image.rsplit_once(':').expect("a tag");
        assert_eq!(repo_name, "ipac/firefly");
        assert!(
            tag.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "a release tag, not {tag}"
        );
        let env_vars = environment(ff);
        assert_eq!(
            env_vars
                .get("PROPS_visualize__fits__Security")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(
            env_vars
                .get("PROPS_visualize__fits__search__path")
                .map(String::as_str),
            Some("/external")
        );
        let media: Vec<_> = mounts(ff)
            .into_iter()
            .filter(|(s, _, _)| s == "media")
            .collect();
        assert_eq!(media.len(), 1);
        let (_, target, ro) = &media[0];
        assert!(target.starts_with("/external/") && *ro, "{target}");
        // The app tells Firefly the same path.
        let app = environment(service(&st, "app"));
        assert_eq!(app["VETTER_FIREFLY_MEDIA_PATH"], *target);
        assert!(strings(&ff["env_file"]).contains(&"containers/env/firefly.env".to_string()));
    }
}

#[test]
fn nginx_gets_every_template_variable_and_the_app_matches_it() {
    let mut wanted = BTreeSet::new();
    for (_, text) in crate::harness::templates() {
        wanted.extend(placeholders(&text));
    }
    for (env, server_name) in [("prod", PROD_NAME), ("staging", STAGING_NAME)] {
        let st = stack(env);
        let nginx = environment(service(&st, "nginx"));
        let missing: Vec<_> = wanted.iter().filter(|v| !nginx.contains_key(*v)).collect();
        assert!(missing.is_empty(), "{env}: nginx lacks {missing:?}");
        assert_eq!(nginx["VETTER_SERVER_NAME"], server_name);
        assert_eq!(
            nginx["VETTER_PUBLIC_ORIGIN"],
            format!("https://{server_name}")
        );
        assert_eq!(
            nginx["VETTER_TLS_CERT"],
            format!("/etc/letsencrypt/live/{server_name}/fullchain.pem")
        );
        let app = environment(service(&st, "app"));
        assert_eq!(app["VETTER_PUBLIC_URL"], format!("https://{server_name}"));
        assert_eq!(app["VETTER_BEHIND_PROXY"], "1");
        assert_eq!(app["VETTER_MEDIA_ACCEL_PREFIX"], "/protected-media");
        assert_eq!(app["VETTER_FIREFLY_URL"], "/firefly");
        assert_eq!(
            app["VETTER_S3_ENDPOINT"], nginx["VETTER_S3_ENDPOINT"],
            "nginx fetches a bucket's objects where the app signs for"
        );
        assert_eq!(
            app["VETTER_MAX_UPLOAD_BYTES"], nginx["VETTER_CLIENT_MAX_BODY_SIZE"],
            "one upload limit for the app and nginx"
        );
        assert_eq!(
            app["VETTER_MAX_FORM_BYTES"], nginx["VETTER_CLIENT_MAX_FORM_SIZE"],
            "one form limit for the app and nginx"
        );
        assert_eq!(
            app["VETTER_STAGING"],
            if env == "staging" { "1" } else { "0" }
        );
        // nginx serves the media volume, read-only, where the template's alias points.
        let media = mounts(service(&st, "nginx"))
            .into_iter()
            .find(|(s, _, _)| s == "media")
            .expect("nginx mounts the media volume");
        assert_eq!(media.1, nginx["VETTER_MEDIA_DIR"]);
        assert!(media.2, "read-only");
        let certbot = environment(service(&st, "certbot"));
        assert_eq!(certbot["VETTER_SERVER_NAME"], server_name);
    }
    // Production forwards staging's name to staging's nginx container.
    let prod_stack = stack("prod");
    let prod = environment(service(&prod_stack, "nginx"));
    assert_eq!(prod["VETTER_PASSTHROUGH_NAME"], STAGING_NAME);
    let staging_project = stack("staging")["name"].as_str().unwrap().to_string();
    assert!(prod["VETTER_PASSTHROUGH_TLS"].starts_with(&format!("{staging_project}-nginx-1:")));
    assert!(prod["VETTER_PASSTHROUGH_TLS"].ends_with(&format!(":{}", prod["VETTER_LISTEN_HTTPS"])));
}

#[test]
fn staging_runs_beside_production_without_sharing_anything() {
    let prod = stack("prod");
    let staging = stack("staging");
    let (pn, sn) = (
        prod["name"].as_str().unwrap(),
        staging["name"].as_str().unwrap(),
    );
    assert_ne!(pn, sn);
    assert_ne!(stack("dev")["name"].as_str().unwrap(), pn);
    // Every volume has an explicit name, and none is shared.
    let volume_names = |st: &Value| -> BTreeSet<String> {
        st["volumes"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                v["name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("volume {k:?} has no explicit name"))
                    .to_string()
            })
            .collect()
    };
    let (pv, sv) = (volume_names(&prod), volume_names(&staging));
    assert_eq!(pv.len(), sv.len());
    assert!(pv.is_disjoint(&sv), "{pv:?} / {sv:?}");
    // No fixed container names (compose derives them from the project name).
    for st in [&prod, &staging] {
        for (name, svc) in services(st) {
            assert!(svc["container_name"].is_null(), "{name:?}");
        }
    }
    // Each stack's autoheal watches its own containers only.
    for (st, own, other) in [
        (&prod, "autoheal.vetter-prod", "autoheal.vetter-staging"),
        (&staging, "autoheal.vetter-staging", "autoheal.vetter-prod"),
    ] {
        let autoheal = environment(service(st, "autoheal"));
        assert_eq!(autoheal["AUTOHEAL_CONTAINER_LABEL"], own);
        for name in ["app", "db", "firefly", "nginx"] {
            let labels = &service(st, name)["labels"];
            assert_eq!(labels[own].as_str(), Some("true"), "{own} on {name}");
            assert_ne!(labels[other].as_str(), Some("true"), "{other} on {name}");
        }
    }
    // The shared network is the only thing both use, and it is external to both.
    for st in [&prod, &staging] {
        assert_eq!(st["networks"]["edge"]["name"].as_str(), Some("vetter-edge"));
        assert_eq!(st["networks"]["edge"]["external"].as_bool(), Some(true));
    }
    // Staging's release notes: operator-written, mounted read-only, where the app looks.
    let app = service(&staging, "app");
    let notes = environment(app)["VETTER_STAGING_DETAILS"].clone();
    let (_, dir, ro) = mounts(app)
        .into_iter()
        .find(|(s, _, _)| s == "./staging-notes")
        .expect("the notes folder");
    assert!(
        ro && Path::new(&notes).starts_with(&dir),
        "{notes} in {dir}"
    );
}

/// The images build offline: a `# syntax=` line would make every build pull
/// a frontend image first, and nothing in them needs one.
#[test]
fn dockerfiles_pull_no_frontend_image() {
    for file in [
        "containers/Dockerfile",
        "containers/db.Dockerfile",
        "nginx/Dockerfile",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("# syntax=")),
            "{file} has a # syntax= line"
        );
    }
}

/// nginx's health check asks the port its configuration listens on, in
/// every stack (production listens on 80, staging behind it elsewhere).
#[test]
fn the_nginx_health_check_follows_its_listen_port() {
    let text = std::fs::read_to_string(repo().join("nginx/Dockerfile")).unwrap();
    let check = text
        .split("HEALTHCHECK")
        .nth(1)
        .expect("a HEALTHCHECK in nginx/Dockerfile");
    assert!(
        check.contains("${VETTER_LISTEN_HTTP##*:}/nginx-health"),
        "{check}"
    );
    for env in ["prod", "staging"] {
        let st = stack(env);
        let listen = environment(service(&st, "nginx"))["VETTER_LISTEN_HTTP"].clone();
        let port = listen.rsplit(':').next().unwrap();
        assert!(port.parse::<u16>().is_ok(), "{env}: {listen}");
    }
}

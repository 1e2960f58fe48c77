//! The real S3 server of the tests: a single-node Ceph RADOS gateway that
//! `make test` starts (containers/local/objectstore.sh) and describes in
//! `VETTER_TEST_S3_*`. Each test gets its own prefix in the one bucket.

// Each test binary that includes this uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use vetter::config::{BucketSettings, Secret};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with `make test`, which starts the S3 server \
             (or `eval \"$(containers/local/objectstore.sh start)\"` first)"
        )
    })
}

/// The test bucket under a prefix of its own, reached at `endpoint` (the
/// server's own, unless a test puts something in between).
pub fn bucket_at(endpoint: &str, tag: &str) -> BucketSettings {
    BucketSettings {
        bucket: var("VETTER_TEST_S3_BUCKET"),
        prefix: format!("t-{tag}-{}", vetter::random_hex(6)),
        endpoint: Some(endpoint.to_string()),
        region: var("VETTER_TEST_S3_REGION"),
        path_style: true,
        access_key_id: var("VETTER_TEST_S3_ACCESS_KEY"),
        secret_access_key: Secret::new(var("VETTER_TEST_S3_SECRET_KEY")),
        presign_ttl: Duration::from_secs(600),
        timeout: Duration::from_secs(10),
    }
}

pub fn endpoint() -> String {
    var("VETTER_TEST_S3_ENDPOINT")
}

/// The test bucket under a fresh prefix.
pub fn bucket(tag: &str) -> BucketSettings {
    bucket_at(&endpoint(), tag)
}

/// The settings as environment variables, for the `vetter` binary.
pub fn env_of(b: &BucketSettings) -> Vec<(String, String)> {
    vec![
        ("VETTER_MEDIA_URL".into(), b.url()),
        (
            "VETTER_S3_ENDPOINT".into(),
            b.endpoint.clone().unwrap_or_default(),
        ),
        ("VETTER_S3_REGION".into(), b.region.clone()),
        ("VETTER_S3_ACCESS_KEY_ID".into(), b.access_key_id.clone()),
        (
            "VETTER_S3_SECRET_ACCESS_KEY".into(),
            b.secret_access_key.expose().to_string(),
        ),
    ]
}

/// The server's settings without a media URL: for commands given one
/// (`--to`, `--from`) or none (the folder).
pub fn server_env() -> Vec<(String, String)> {
    env_of(&bucket("env"))
        .into_iter()
        .filter(|(k, _)| k != "VETTER_MEDIA_URL")
        .collect()
}

//! Checks a document against the IVOA's VOEvent 2.0 schema
//! (`tests/fixtures/voevent/`) with `xmllint` (Debian `libxml2-utils`,
//! installed by `containers/local/prepare.sh`). The schema imports nothing,
//! and `--nonet` makes sure nothing is fetched: the tests run offline.
//!
//! Shared by the library's unit tests and the api tests (`#[path]`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/voevent/VOEvent-v2.0.xsd")
}

/// xmllint with `args`, reading the document from its standard input.
fn xmllint(args: &[&std::ffi::OsStr], xml: &[u8]) -> std::process::Output {
    let mut child = Command::new("xmllint")
        .arg("--nonet")
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run xmllint ({e}): install libxml2-utils (containers/local/prepare.sh)")
        });
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(xml)
        .expect("xmllint reads the document");
    child.wait_with_output().expect("xmllint finishes")
}

/// `Ok` when xmllint says the document is valid; xmllint's complaints
/// otherwise.
pub fn validate(xml: &[u8]) -> Result<(), String> {
    let schema = schema();
    let out = xmllint(
        &["--noout".as_ref(), "--schema".as_ref(), schema.as_ref()],
        xml,
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Panics with xmllint's complaints and the document unless it is valid.
pub fn assert_valid(xml: &[u8]) {
    if let Err(e) = validate(xml) {
        panic!(
            "not a valid VOEvent 2.0 document:\n{e}\n{}",
            String::from_utf8_lossy(xml)
        );
    }
}

/// The string value of an XPath expression over the document, as xmllint
/// parses it (entities resolved): `//Position2D/Value2/C1`, `/*/@ivorn`.
pub fn xpath(xml: &[u8], expr: &str) -> String {
    let expr = format!("string({expr})");
    let out = xmllint(&["--xpath".as_ref(), expr.as_ref()], xml);
    let text = String::from_utf8(out.stdout).expect("UTF-8 out");
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

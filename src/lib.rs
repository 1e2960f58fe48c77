//! vetter: a web app for rating radio transient candidates.
//!
//! `main.rs` parses the command line and calls into `cli`; `startup` builds
//! and runs the server; `web` holds one module per page; `db` one module per
//! aggregate; `domain` the values parsed at the edge.

pub mod auth;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod fits;
pub mod ingest;
pub mod media;
pub mod model;
pub mod notify;
pub mod outbound;
pub mod plot;
pub mod startup;
pub mod telemetry;
pub mod transport;
pub mod web;

/// The release, and the commit it was built from (set by the container
/// build; "dev" for a local build).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const BUILD_COMMIT: &str = match option_env!("VETTER_BUILD_COMMIT") {
    Some(c) => c,
    None => "dev",
};

/// `n` random bytes from the OS, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (RFC 4648): what the browser's `atob`
/// reads (the sky images' values) and what SMTP and MIME want.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Lowers the calling thread's priority to nice 19, the lowest: for work
/// that must not take a core from the requests (password hashing, training
/// the model).
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn setpriority(
                which: std::ffi::c_int,
                who: std::ffi::c_uint,
                prio: std::ffi::c_int,
            ) -> std::ffi::c_int;
        }
        const PRIO_PROCESS: std::ffi::c_int = 0;
        // SAFETY: on Linux, nice is per thread and `who = 0` means the
        // calling thread; raising one's own nice value needs no privilege
        // and touches no memory.
        if unsafe { setpriority(PRIO_PROCESS, 0, 19) } != 0 {
            tracing::debug!("could not lower a thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }
}

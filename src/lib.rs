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

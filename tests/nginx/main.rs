//! Deployment checks, run by `make test` with the rest of `cargo test`:
//!
//! - `config`: every nginx template in the repository, rendered with test values, passes
//!   `nginx -t`, and says what the deployment relies on; the container scripts parse.
//! - `proxy`: the real nginx (from Debian: nginx-light, libnginx-mod-stream) on loopback with a
//!   throwaway certificate, in front of the real app started in-process on a fresh database,
//!   and of a stand-in for Firefly.
//! - `compose`: the three compose files, merged as `make dev|prod|staging` merges them, are
//!   consistent (images, volumes, env files, health checks, published ports, staging apart).
//!
//! There is no Docker engine where the tests run; the images themselves are not built here.

mod compose;
mod config;
mod harness;
mod hosts;
mod proxy;
#[path = "../common/s3.rs"]
mod s3;
#[path = "../common/testdb.rs"]
mod testdb;
mod upstream;

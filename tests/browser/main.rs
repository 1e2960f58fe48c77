//! Browser tests: the real app in-process, driven through chromedriver and
//! headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `make test` installs). Without them these tests fail; they never skip.
//!
//! `cargo test --test browser -- --nocapture` prints the paint timings.
//! Screenshots land in `target/browser-screenshots/`.

mod admin;
mod candidates;
mod context;
mod decision;
mod harness;
mod home;
mod keyboard;
mod login;
mod outage;
mod rating;
mod staging;
mod webdriver;

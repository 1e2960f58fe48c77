//! The colours of every chart the server draws, kept here once for all Rust
//! code. `assets/app.css` gives the same values to the pages as custom
//! properties (named after each constant below); change both together.
//! Charts carry them as presentation attributes too, so that a downloaded
//! SVG still reads without the stylesheet.

/// Text and axes (`--fg`).
pub const INK: &str = "#1b1f24";
/// Secondary text and the zero line (`--muted`).
pub const MUTED: &str = "#5b6470";
/// Grid lines (`--grid`).
pub const GRID: &str = "#e3e6eb";
/// Data with no other meaning (`--accent`).
pub const ACCENT: &str = "#1f5fbf";
/// The chart background (`--card`).
pub const PAPER: &str = "#ffffff";
/// One per verdict, in `Verdict::ALL` order: real (`--ok`), not real
/// (`--bad`), unsure (`--warn`).
pub const VERDICTS: [&str; 3] = ["#1c7c3a", "#b42318", "#a15c00"];

//! What every page shares: errors and their pages, sessions, CSRF, who may
//! see what, the strict form extractor, body limits, headers, request logs,
//! the page layout, embedded assets and template filters.

pub mod access;
pub mod assets;
pub mod cache;
pub mod csrf;
pub mod error;
pub mod filters;
pub mod form;
pub mod headers;
pub mod htmx;
pub mod layout;
pub mod limits;
pub mod logging;
pub mod session;
pub mod session_layer;

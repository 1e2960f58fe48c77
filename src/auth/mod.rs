//! Signing in: password hashing, the sign-in gate and its throttle. The
//! session that remembers who signed in is web plumbing
//! (`web::plumbing::session`).

pub mod gate;
pub mod password;
pub mod throttle;

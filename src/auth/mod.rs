//! Who is asking: passwords, sessions, and the signed-in user.

pub mod gate;
pub mod password;
pub mod session;
pub mod throttle;

pub use session::TypedSession;

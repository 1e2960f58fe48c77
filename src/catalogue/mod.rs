//! External catalogues: any reference catalogue read from a file
//! (`table`), and the ATNF pulsar catalogue's own format (`psrcat`).

pub mod psrcat;
pub mod table;

pub use psrcat::{Pulsar, Skipped};

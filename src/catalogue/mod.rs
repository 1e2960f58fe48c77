//! External catalogues: the ATNF pulsar catalogue.

pub mod psrcat;

pub use psrcat::{Pulsar, Skipped};

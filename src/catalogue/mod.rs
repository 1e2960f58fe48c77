//! External catalogues: any reference catalogue read from a file
//! (`table`), the ATNF pulsar catalogue's own format (`psrcat`), and
//! SIMBAD asked for a cone (`simbad`).

pub mod psrcat;
pub mod simbad;
pub mod table;

pub use psrcat::{Pulsar, Skipped};

//! External catalogues: the ATNF pulsar catalogue. (Being written.)

//! FITS files from uploads: checked before cfitsio sees them, and rendered
//! into PNG/GIF previews. (Being written.)

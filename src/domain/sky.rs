//! Positions on the sky. `Ra` and `Dec` hold degrees and cannot hold a
//! value outside their range, NaN or infinity.

use std::fmt;

/// Right ascension in degrees, 0 ≤ ra < 360.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
#[serde(transparent)]
pub struct Ra(f64);

/// Declination in degrees, −90 ≤ dec ≤ 90.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
#[serde(transparent)]
pub struct Dec(f64);

impl Ra {
    /// Accepts any finite angle and wraps it into [0, 360): an RA of 360 or
    /// −0.5 is a real position, just written unusually.
    pub fn from_degrees(deg: f64) -> Result<Self, String> {
        if !deg.is_finite() {
            return Err("RA must be a finite number of degrees".into());
        }
        let mut r = deg.rem_euclid(360.0);
        // rem_euclid can return 360.0 for tiny negative inputs.
        if r >= 360.0 {
            r = 0.0;
        }
        Ok(Self(r))
    }

    /// Strict: for stored values and API input, where a value outside
    /// [0, 360) is more likely a unit mistake (hours, radians) than a wrap.
    pub fn new(deg: f64) -> Result<Self, String> {
        if deg.is_finite() && (0.0..360.0).contains(&deg) {
            Ok(Self(deg))
        } else {
            Err(format!("RA {deg} is not in [0, 360) degrees"))
        }
    }

    pub fn degrees(self) -> f64 {
        self.0
    }
}

impl Dec {
    pub fn new(deg: f64) -> Result<Self, String> {
        if deg.is_finite() && (-90.0..=90.0).contains(&deg) {
            Ok(Self(deg))
        } else {
            Err(format!("Dec {deg} is not in [-90, 90] degrees"))
        }
    }

    pub fn degrees(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Ra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}", self.0)
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:+.6}", self.0)
    }
}

/// A separation as reviewers read it: hundredths of an arcsecond close in,
/// where they decide an association; tenths further out.
pub fn separation_text(arcsec: f64) -> String {
    if arcsec < 10.0 {
        format!("{arcsec:.2}″")
    } else {
        format!("{arcsec:.1}″")
    }
}

/// A position: RA and Dec in degrees (ICRS / J2000).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SkyPos {
    pub ra: Ra,
    pub dec: Dec,
}

impl SkyPos {
    pub fn new(ra: f64, dec: f64) -> Result<Self, String> {
        Ok(Self {
            ra: Ra::new(ra)?,
            dec: Dec::new(dec)?,
        })
    }
}

impl<'de> serde::Deserialize<'de> for SkyPos {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            ra: f64,
            dec: f64,
        }
        let r = Raw::deserialize(d)?;
        SkyPos::new(r.ra, r.dec).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ra_and_dec_reject_out_of_range_and_non_finite() {
        assert!(Ra::new(0.0).is_ok());
        assert!(Ra::new(359.999).is_ok());
        for bad in [360.0, -0.1, f64::NAN, f64::INFINITY] {
            assert!(Ra::new(bad).is_err(), "{bad}");
        }
        assert!(Dec::new(90.0).is_ok() && Dec::new(-90.0).is_ok());
        for bad in [90.0001, -91.0, f64::NAN, f64::NEG_INFINITY] {
            assert!(Dec::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_degrees_wraps_ra_into_range() {
        assert_eq!(Ra::from_degrees(360.0).unwrap().degrees(), 0.0);
        assert_eq!(Ra::from_degrees(-90.0).unwrap().degrees(), 270.0);
        assert_eq!(Ra::from_degrees(725.0).unwrap().degrees(), 5.0);
        let tiny = Ra::from_degrees(-1e-17).unwrap().degrees();
        assert!((0.0..360.0).contains(&tiny));
        assert!(Ra::from_degrees(f64::NAN).is_err());
    }

    #[test]
    fn positions_deserialize_only_when_valid() {
        let ok: SkyPos = serde_json::from_str(r#"{"ra": 10.5, "dec": -30}"#).unwrap();
        assert_eq!(ok.ra.degrees(), 10.5);
        assert!(serde_json::from_str::<SkyPos>(r#"{"ra": 400, "dec": 0}"#).is_err());
        assert!(serde_json::from_str::<SkyPos>(r#"{"ra": 1, "dec": 0, "x": 1}"#).is_err());
    }
}

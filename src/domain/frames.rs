//! Conversions between sky frames, all J2000: ecliptic → equatorial,
//! equatorial → galactic, and the angle between two positions.
//!
//! Good to about a milliarcsecond of arithmetic; precession, nutation and
//! the ICRS–FK5 frame bias (tens of milliarcseconds) are ignored, which is
//! far below what a catalogue cross-match needs.

use super::sky::{Dec, Ra, SkyPos};

/// Mean obliquity of the ecliptic at J2000 (IAU 1980): 84381.448″.
pub const OBLIQUITY_J2000_DEG: f64 = 84381.448 / 3600.0;

/// The north galactic pole in J2000 equatorial coordinates, and the galactic
/// longitude of the north celestial pole (IAU definition, as transformed to
/// J2000).
pub const NGP_RA_DEG: f64 = 192.85948;
pub const NGP_DEC_DEG: f64 = 27.12825;
pub const NCP_L_DEG: f64 = 122.93192;

/// A position from J2000 ecliptic longitude and latitude in degrees (as
/// psrcat's ELONG/ELAT). Any longitude is accepted (it wraps).
///
/// # Panics
/// If either input is NaN or infinite; callers parse their input first.
pub fn ecliptic_to_equatorial(elong_deg: f64, elat_deg: f64) -> SkyPos {
    assert!(
        elong_deg.is_finite() && elat_deg.is_finite(),
        "ecliptic coordinates must be finite: ({elong_deg}, {elat_deg})"
    );
    let (sin_e, cos_e) = OBLIQUITY_J2000_DEG.to_radians().sin_cos();
    let (sin_l, cos_l) = elong_deg.to_radians().sin_cos();
    let (sin_b, cos_b) = elat_deg.to_radians().sin_cos();
    // The unit vector, rotated about the x axis (the equinox) by −ε.
    let x = cos_b * cos_l;
    let y = cos_b * sin_l * cos_e - sin_b * sin_e;
    let z = cos_b * sin_l * sin_e + sin_b * cos_e;
    from_vector(x, y, z)
}

/// A unit-ish vector to a position; atan2 on both angles keeps full
/// precision near the poles, where asin would not.
fn from_vector(x: f64, y: f64, z: f64) -> SkyPos {
    let ra = y.atan2(x).to_degrees();
    let dec = z.atan2(x.hypot(y)).to_degrees();
    SkyPos {
        ra: Ra::from_degrees(ra).expect("atan2 of finite values is finite"),
        dec: Dec::new(dec.clamp(-90.0, 90.0)).expect("clamped"),
    }
}

/// Galactic longitude and latitude in degrees, l in [0, 360), b in [−90, 90].
pub fn equatorial_to_galactic(pos: SkyPos) -> (f64, f64) {
    let (sin_d, cos_d) = pos.dec.degrees().to_radians().sin_cos();
    let (sin_dg, cos_dg) = NGP_DEC_DEG.to_radians().sin_cos();
    let (sin_da, cos_da) = (pos.ra.degrees() - NGP_RA_DEG).to_radians().sin_cos();
    let sin_b = sin_d * sin_dg + cos_d * cos_dg * cos_da;
    // cos b · sin(l_NCP − l) and cos b · cos(l_NCP − l).
    let y = cos_d * sin_da;
    let x = sin_d * cos_dg - cos_d * sin_dg * cos_da;
    let b = sin_b.atan2(x.hypot(y)).to_degrees();
    let mut l = (NCP_L_DEG - y.atan2(x).to_degrees()).rem_euclid(360.0);
    if l >= 360.0 {
        l = 0.0;
    }
    (l, b.clamp(-90.0, 90.0))
}

/// The angle between two positions in degrees, in [0, 180]. Vincenty's
/// formula: accurate at all separations, including tiny and antipodal ones.
pub fn angular_separation_deg(a: SkyPos, b: SkyPos) -> f64 {
    let (sin_d1, cos_d1) = a.dec.degrees().to_radians().sin_cos();
    let (sin_d2, cos_d2) = b.dec.degrees().to_radians().sin_cos();
    let (sin_da, cos_da) = (b.ra.degrees() - a.ra.degrees()).to_radians().sin_cos();
    let num1 = cos_d2 * sin_da;
    let num2 = cos_d1 * sin_d2 - sin_d1 * cos_d2 * cos_da;
    let den = sin_d1 * sin_d2 + cos_d1 * cos_d2 * cos_da;
    num1.hypot(num2).atan2(den).to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ra: f64, dec: f64) -> SkyPos {
        SkyPos::new(ra, dec).unwrap()
    }

    /// The difference of two RAs, across the 0/360 seam.
    fn ra_diff(a: f64, b: f64) -> f64 {
        let d = (a - b).rem_euclid(360.0);
        d.min(360.0 - d)
    }

    #[test]
    fn the_equinox_is_the_origin_of_both_frames() {
        let e = ecliptic_to_equatorial(0.0, 0.0);
        assert!(ra_diff(e.ra.degrees(), 0.0) < 1e-12);
        assert!(e.dec.degrees().abs() < 1e-12);
        // The ecliptic crosses the equator again at 180°.
        let e = ecliptic_to_equatorial(180.0, 0.0);
        assert!(ra_diff(e.ra.degrees(), 180.0) < 1e-9 && e.dec.degrees().abs() < 1e-9);
        // At 90° the ecliptic is ε north of the equator, at RA 6h.
        let e = ecliptic_to_equatorial(90.0, 0.0);
        assert!(ra_diff(e.ra.degrees(), 90.0) < 1e-9);
        assert!((e.dec.degrees() - OBLIQUITY_J2000_DEG).abs() < 1e-9);
    }

    #[test]
    fn the_ecliptic_poles() {
        assert!((OBLIQUITY_J2000_DEG - 23.439_291_1).abs() < 1e-7);
        for elong in [0.0, 45.0, 123.4, 270.0, 359.9] {
            let n = ecliptic_to_equatorial(elong, 90.0);
            assert!(ra_diff(n.ra.degrees(), 270.0) < 1e-6, "{elong}: {n:?}");
            assert!(
                (n.dec.degrees() - 66.560_708_9).abs() < 1e-6,
                "{elong}: {n:?}"
            );
            let s = ecliptic_to_equatorial(elong, -90.0);
            assert!(ra_diff(s.ra.degrees(), 90.0) < 1e-6, "{elong}: {s:?}");
            assert!((s.dec.degrees() + 66.560_708_9).abs() < 1e-6);
        }
    }

    #[test]
    fn longitude_wraps() {
        let a = ecliptic_to_equatorial(-10.0, 5.0);
        let b = ecliptic_to_equatorial(350.0, 5.0);
        assert!(angular_separation_deg(a, b) < 1e-9);
    }

    /// psrcat lists J0437−4715 at RAJ 04:37:15.8961737, DECJ
    /// −47:15:09.110714, and J0030+0451 only in ecliptic coordinates,
    /// ELONG 8.91035630, ELAT +1.4456961, which it shows as RAJ 00:30:27.428,
    /// DECJ +04:51:39.72.
    #[test]
    fn real_pulsars_agree_with_their_catalogued_equatorial_positions() {
        let j0437 = ecliptic_to_equatorial(50.468_256, -67.872_922);
        let ra = (4.0 + 37.0 / 60.0 + 15.896_173_7 / 3600.0) * 15.0;
        let dec = -(47.0 + 15.0 / 60.0 + 9.110_714 / 3600.0);
        assert!(
            angular_separation_deg(j0437, p(ra, dec)) < 1e-4,
            "{j0437:?}"
        );
        // With the two-decimal values from the brief: within 0.01°.
        let rough = ecliptic_to_equatorial(50.47, -67.87);
        assert!(
            angular_separation_deg(rough, p(ra, dec)) < 0.01,
            "{rough:?}"
        );

        let j0030 = ecliptic_to_equatorial(8.910_356_30, 1.445_696_1);
        let ra = (30.0 / 60.0 + 27.428 / 3600.0) * 15.0;
        let dec = 4.0 + 51.0 / 60.0 + 39.72 / 3600.0;
        assert!(
            angular_separation_deg(j0030, p(ra, dec)) < 1e-4,
            "{j0030:?}"
        );
    }

    fn l_diff(a: f64, b: f64) -> f64 {
        ra_diff(a, b)
    }

    #[test]
    fn galactic_centre_and_poles() {
        let (l, b) = equatorial_to_galactic(p(266.404_99, -28.936_17));
        assert!(l_diff(l, 0.0) < 1e-3 && b.abs() < 1e-3, "({l}, {b})");
        assert!((0.0..360.0).contains(&l));

        let (_, b) = equatorial_to_galactic(p(NGP_RA_DEG, NGP_DEC_DEG));
        assert!((b - 90.0).abs() < 1e-9, "{b}");
        // The south galactic pole is the antipode.
        let (_, b) = equatorial_to_galactic(p(NGP_RA_DEG - 180.0, -NGP_DEC_DEG));
        assert!((b + 90.0).abs() < 1e-9, "{b}");
        // The north celestial pole has l = 122.93192°.
        let (l, b) = equatorial_to_galactic(p(0.0, 90.0));
        assert!(l_diff(l, NCP_L_DEG) < 1e-9 && (b - NGP_DEC_DEG).abs() < 1e-9);
    }

    #[test]
    fn galactic_coordinates_of_known_sources() {
        // Crab (l 184.5574, b −5.7844) and Vela (l 263.5518, b −2.7874);
        // values from an independent implementation (astropy, FK5 J2000).
        for (ra, dec, l0, b0) in [
            (83.633_08, 22.014_5, 184.557_448, -5.784_362),
            (128.835_8, -45.176_4, 263.551_826, -2.787_387),
        ] {
            let (l, b) = equatorial_to_galactic(p(ra, dec));
            assert!(l_diff(l, l0) < 1e-4 && (b - b0).abs() < 1e-4, "({l}, {b})");
        }
    }

    #[test]
    fn separations() {
        assert_eq!(angular_separation_deg(p(10.0, 20.0), p(10.0, 20.0)), 0.0);
        assert!((angular_separation_deg(p(0.0, 0.0), p(90.0, 0.0)) - 90.0).abs() < 1e-12);
        assert!((angular_separation_deg(p(0.0, 0.0), p(180.0, 0.0)) - 180.0).abs() < 1e-12);
        assert!((angular_separation_deg(p(0.0, 90.0), p(123.0, -90.0)) - 180.0).abs() < 1e-12);
        assert!((angular_separation_deg(p(0.0, 90.0), p(200.0, 45.0)) - 45.0).abs() < 1e-12);
        // Across the 0/360 seam.
        let s = angular_separation_deg(p(359.9, 0.0), p(0.1, 0.0));
        assert!((s - 0.2).abs() < 1e-12, "{s}");
        // RA difference shrinks with cos(dec): 2·asin(cos 60° · sin 0.5°).
        let s = angular_separation_deg(p(10.0, 60.0), p(11.0, 60.0));
        let want = (2.0 * (0.5 * 0.5f64.to_radians().sin()).asin()).to_degrees();
        assert!(
            (s - want).abs() < 1e-12 && (s - 0.499_995_24).abs() < 1e-8,
            "{s}"
        );
        // Symmetric.
        let (a, b) = (p(12.3, -45.6), p(200.1, 33.3));
        assert_eq!(angular_separation_deg(a, b), angular_separation_deg(b, a));
    }

    #[test]
    fn tiny_separations_keep_their_precision() {
        // One milliarcsecond in Dec, and in RA near the pole.
        let mas = 1.0 / 3_600_000.0;
        let s = angular_separation_deg(p(100.0, -30.0), p(100.0, -30.0 + mas));
        assert!((s / mas - 1.0).abs() < 1e-6, "{}", s / mas);
        let s = angular_separation_deg(p(100.0, 89.0), p(100.0 + mas, 89.0));
        let want = mas * 89f64.to_radians().cos();
        assert!((s / want - 1.0).abs() < 1e-4, "{}", s / want);
    }
}

//! Where on the sky a pixel is, from a header's celestial WCS.
//!
//! Only what survey cutouts use: the zenithal TAN and SIN projections, with
//! the pixel-to-sky matrix given as CD, as PC with CDELT, or as CDELT with
//! the older CROTA2. A header with anything else (another projection, axes
//! that are not RA and Dec) has no `SkyWcs`, and its image is shown without
//! sky decorations rather than with wrong ones.
//!
//! Pixel coordinates here are 0-based: the centre of the first pixel is
//! (0, 0), FITS's (1, 1).

use std::f64::consts::PI;

const RAD: f64 = PI / 180.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Projection {
    Tan,
    Sin,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SkyWcs {
    pub projection: Projection,
    /// RA and Dec of the reference pixel, degrees.
    pub crval: [f64; 2],
    /// The reference pixel, 0-based.
    pub crpix: [f64; 2],
    /// Degrees on the sky per pixel step: `cd[i][j]` is ∂world_i/∂pixel_j.
    pub cd: [[f64; 2]; 2],
}

impl SkyWcs {
    /// The keywords [`SkyWcs::from_header`] may ask for.
    pub const NUMBER_KEYS: [&'static str; 15] = [
        "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CDELT1",
        "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CROTA2",
    ];
    pub const TEXT_KEYS: [&'static str; 4] = ["CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2"];

    /// From header keywords; `number` and `text` read one keyword each.
    pub fn from_header(
        number: impl Fn(&str) -> Option<f64>,
        text: impl Fn(&str) -> Option<String>,
    ) -> Option<SkyWcs> {
        let ctype1 = text("CTYPE1")?;
        let ctype2 = text("CTYPE2")?;
        let projection = match (ctype1.trim(), ctype2.trim()) {
            ("RA---TAN", "DEC--TAN") => Projection::Tan,
            ("RA---SIN", "DEC--SIN") => Projection::Sin,
            _ => return None,
        };
        // Only degrees: CUNIT is optional and degrees by default.
        for key in ["CUNIT1", "CUNIT2"] {
            if let Some(u) = text(key) {
                if !u.trim().eq_ignore_ascii_case("deg") && !u.trim().is_empty() {
                    return None;
                }
            }
        }
        let crval = [number("CRVAL1")?, number("CRVAL2")?];
        let crpix = [number("CRPIX1")? - 1.0, number("CRPIX2")? - 1.0];
        let cd = if let Some(cd11) = number("CD1_1") {
            [
                [cd11, number("CD1_2").unwrap_or(0.0)],
                [
                    number("CD2_1").unwrap_or(0.0),
                    number("CD2_2").unwrap_or(0.0),
                ],
            ]
        } else {
            let (d1, d2) = (number("CDELT1")?, number("CDELT2")?);
            let has_pc = ["PC1_1", "PC1_2", "PC2_1", "PC2_2"]
                .iter()
                .any(|k| number(k).is_some());
            if has_pc {
                let pc = |k: &str, default: f64| number(k).unwrap_or(default);
                [
                    [d1 * pc("PC1_1", 1.0), d1 * pc("PC1_2", 0.0)],
                    [d2 * pc("PC2_1", 0.0), d2 * pc("PC2_2", 1.0)],
                ]
            } else {
                // CROTA2 turns the pixel grid by ρ (AIPS convention).
                let rho = number("CROTA2").unwrap_or(0.0) * RAD;
                let (s, c) = rho.sin_cos();
                [[d1 * c, -d2 * s], [d1 * s, d2 * c]]
            }
        };
        let wcs = SkyWcs {
            projection,
            crval,
            crpix,
            cd,
        };
        let usable = crval.iter().all(|v| v.is_finite())
            && crpix.iter().all(|v| v.is_finite())
            && crval[1].abs() <= 90.0
            && wcs.det().is_finite()
            && wcs.det() != 0.0;
        usable.then_some(wcs)
    }

    fn det(&self) -> f64 {
        self.cd[0][0] * self.cd[1][1] - self.cd[0][1] * self.cd[1][0]
    }

    /// The side of a pixel on the sky, degrees (the square root of its area).
    pub fn pixel_deg(&self) -> f64 {
        self.det().abs().sqrt()
    }

    /// RA and Dec (degrees, RA in [0, 360)) of pixel (x, y).
    pub fn pixel_to_sky(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (dx, dy) = (x - self.crpix[0], y - self.crpix[1]);
        let xi = (self.cd[0][0] * dx + self.cd[0][1] * dy) * RAD;
        let eta = (self.cd[1][0] * dx + self.cd[1][1] * dy) * RAD;
        let (a0, d0) = (self.crval[0] * RAD, self.crval[1] * RAD);
        let (sd0, cd0) = d0.sin_cos();
        let (ra, dec) = match self.projection {
            Projection::Tan => {
                let den = cd0 - eta * sd0;
                (a0 + xi.atan2(den), (sd0 + eta * cd0).atan2(xi.hypot(den)))
            }
            Projection::Sin => {
                let rho = xi.hypot(eta);
                if rho > 1.0 {
                    return None;
                }
                if rho == 0.0 {
                    (a0, d0)
                } else {
                    let c = rho.asin();
                    let (sc, cc) = c.sin_cos();
                    (
                        a0 + (xi * sc).atan2(rho * cd0 * cc - eta * sd0 * sc),
                        (cc * sd0 + eta * sc * cd0 / rho).clamp(-1.0, 1.0).asin(),
                    )
                }
            }
        };
        Some(((ra / RAD).rem_euclid(360.0), dec / RAD))
    }

    /// Pixel (x, y) of a sky position; `None` when it is on the far side of
    /// the projection.
    pub fn sky_to_pixel(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let (a0, d0) = (self.crval[0] * RAD, self.crval[1] * RAD);
        let (a, d) = (ra * RAD, dec * RAD);
        let (sd0, cd0) = d0.sin_cos();
        let (sd, cdd) = d.sin_cos();
        let (sda, cda) = (a - a0).sin_cos();
        let cos_c = sd0 * sd + cd0 * cdd * cda;
        if cos_c <= 0.0 {
            return None;
        }
        let (mut xi, mut eta) = (cdd * sda, cd0 * sd - sd0 * cdd * cda);
        if self.projection == Projection::Tan {
            xi /= cos_c;
            eta /= cos_c;
        }
        let (xi, eta) = (xi / RAD, eta / RAD);
        let det = self.det();
        let dx = (self.cd[1][1] * xi - self.cd[0][1] * eta) / det;
        let dy = (self.cd[0][0] * eta - self.cd[1][0] * xi) / det;
        Some((dx + self.crpix[0], dy + self.crpix[1]))
    }

    /// Whether rows run north and columns west on the sky already (or
    /// mirror images of that), with square pixels: then showing the image
    /// north up needs at most flips, never resampling.
    pub fn is_axis_aligned(&self) -> bool {
        let scale = self.pixel_deg();
        let off = self.cd[0][1].abs().max(self.cd[1][0].abs());
        off <= 1e-6 * scale && (self.cd[0][0].abs() - self.cd[1][1].abs()).abs() <= 1e-3 * scale
    }

    /// The same sky on an image flipped left–right (`x` → `width − 1 − x`)
    /// and/or top–bottom.
    pub fn flipped(&self, width: usize, height: usize, flip_x: bool, flip_y: bool) -> SkyWcs {
        let mut w = *self;
        if flip_x {
            w.crpix[0] = width as f64 - 1.0 - w.crpix[0];
            w.cd[0][0] = -w.cd[0][0];
            w.cd[1][0] = -w.cd[1][0];
        }
        if flip_y {
            w.crpix[1] = height as f64 - 1.0 - w.crpix[1];
            w.cd[0][1] = -w.cd[0][1];
            w.cd[1][1] = -w.cd[1][1];
        }
        w
    }

    /// A grid shown as on the sky: north up and east left in a picture
    /// whose rows run top to bottom, `pixel_deg` square pixels, (ra, dec)
    /// at pixel (cx, cy).
    pub fn north_up(ra: f64, dec: f64, cx: f64, cy: f64, pixel_deg: f64) -> SkyWcs {
        SkyWcs {
            projection: Projection::Tan,
            crval: [ra, dec],
            crpix: [cx, cy],
            cd: [[-pixel_deg, 0.0], [0.0, -pixel_deg]],
        }
    }

    /// The same grid after block-averaging by `factor` (pixel `k` of the
    /// result covers pixels `k·factor .. (k+1)·factor`).
    pub fn binned(&self, factor: usize) -> SkyWcs {
        let f = factor as f64;
        let mut w = *self;
        for i in 0..2 {
            w.crpix[i] = (self.crpix[i] + 0.5) / f - 0.5;
            for j in 0..2 {
                w.cd[i][j] = self.cd[i][j] * f;
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn header(cards: &[(&str, &str)]) -> Option<SkyWcs> {
        let map: HashMap<String, String> = cards
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SkyWcs::from_header(
            |k| map.get(k).and_then(|v| v.parse().ok()),
            |k| map.get(k).cloned(),
        )
    }

    fn close(a: (f64, f64), b: (f64, f64), tol: f64) -> bool {
        (a.0 - b.0).abs() < tol && (a.1 - b.1).abs() < tol
    }

    #[test]
    fn the_reference_pixel_is_the_reference_position_in_both_projections() {
        for proj in ["TAN", "SIN"] {
            let w = header(&[
                ("CTYPE1", &format!("RA---{proj}")),
                ("CTYPE2", &format!("DEC--{proj}")),
                ("CRVAL1", "188.5"),
                ("CRVAL2", "-45"),
                ("CRPIX1", "33"),
                ("CRPIX2", "17"),
                ("CDELT1", "-0.001"),
                ("CDELT2", "0.001"),
            ])
            .unwrap();
            let (ra, dec) = w.pixel_to_sky(32.0, 16.0).unwrap();
            assert!(
                close((ra, dec), (188.5, -45.0), 1e-12),
                "{proj}: {ra} {dec}"
            );
            let (x, y) = w.sky_to_pixel(188.5, -45.0).unwrap();
            assert!(close((x, y), (32.0, 16.0), 1e-9));
        }
    }

    #[test]
    fn a_step_east_is_a_step_left_and_north_is_up_the_rows() {
        // At the equator one pixel of 10″ is 10″ of RA.
        let w = header(&[
            ("CTYPE1", "RA---TAN"),
            ("CTYPE2", "DEC--TAN"),
            ("CRVAL1", "10"),
            ("CRVAL2", "0"),
            ("CRPIX1", "11"),
            ("CRPIX2", "11"),
            ("CDELT1", &(-10.0 / 3600.0).to_string()),
            ("CDELT2", &(10.0 / 3600.0).to_string()),
        ])
        .unwrap();
        let (x, y) = w.sky_to_pixel(10.0 + 30.0 / 3600.0, 0.0).unwrap();
        assert!(close((x, y), (7.0, 10.0), 1e-6), "{x} {y}");
        let (x, y) = w.sky_to_pixel(10.0, 20.0 / 3600.0).unwrap();
        assert!(close((x, y), (10.0, 12.0), 1e-6), "{x} {y}");
    }

    #[test]
    fn round_trips_hold_far_from_the_centre_for_every_matrix_form() {
        let forms: [&[(&str, &str)]; 3] = [
            &[
                ("CD1_1", "-0.002"),
                ("CD1_2", "0.0005"),
                ("CD2_1", "0.0004"),
                ("CD2_2", "0.002"),
            ],
            &[
                ("CDELT1", "-0.002"),
                ("CDELT2", "0.002"),
                ("PC1_1", "0.8"),
                ("PC1_2", "-0.6"),
                ("PC2_1", "0.6"),
                ("PC2_2", "0.8"),
            ],
            &[("CDELT1", "-0.002"), ("CDELT2", "0.002"), ("CROTA2", "30")],
        ];
        for proj in ["TAN", "SIN"] {
            for form in forms {
                let mut cards = vec![
                    ("CTYPE1", format!("RA---{proj}")),
                    ("CTYPE2", format!("DEC--{proj}")),
                    ("CRVAL1", "359.9".into()),
                    ("CRVAL2", "-62.3".into()),
                    ("CRPIX1", "50.5".into()),
                    ("CRPIX2", "40".into()),
                ];
                cards.extend(form.iter().map(|(k, v)| (*k, v.to_string())));
                let cards: Vec<(&str, &str)> =
                    cards.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let w = header(&cards).unwrap();
                for (x, y) in [(0.0, 0.0), (99.0, 79.0), (12.3, 70.1)] {
                    let (ra, dec) = w.pixel_to_sky(x, y).unwrap();
                    assert!((0.0..360.0).contains(&ra));
                    let back = w.sky_to_pixel(ra, dec).unwrap();
                    assert!(close(back, (x, y), 1e-6), "{proj} {form:?}: {back:?}");
                }
            }
        }
    }

    #[test]
    fn crota2_turns_north_away_from_the_rows() {
        // Turned by 90°: north runs along -x.
        let w = header(&[
            ("CTYPE1", "RA---SIN"),
            ("CTYPE2", "DEC--SIN"),
            ("CRVAL1", "100"),
            ("CRVAL2", "20"),
            ("CRPIX1", "21"),
            ("CRPIX2", "21"),
            ("CDELT1", "-0.01"),
            ("CDELT2", "0.01"),
            ("CROTA2", "90"),
        ])
        .unwrap();
        let (x, y) = w.sky_to_pixel(100.0, 20.05).unwrap();
        assert!(close((x, y), (15.0, 20.0), 1e-3), "{x} {y}");
        assert!(!w.is_axis_aligned());
    }

    #[test]
    fn flips_and_binning_keep_every_pixel_on_the_same_sky() {
        let w = SkyWcs {
            projection: Projection::Sin,
            crval: [50.0, -30.0],
            crpix: [10.0, 7.0],
            cd: [[-0.001, 0.0], [0.0, 0.001]],
        };
        let f = w.flipped(20, 16, true, true);
        let a = w.pixel_to_sky(3.0, 4.0).unwrap();
        let b = f.pixel_to_sky(16.0, 11.0).unwrap();
        assert!(close(a, b, 1e-12));
        let binned = w.binned(4);
        // Binned pixel 1 is the mean of pixels 4..8: its centre is 5.5.
        let a = w.pixel_to_sky(5.5, 5.5).unwrap();
        let b = binned.pixel_to_sky(1.0, 1.0).unwrap();
        assert!(close(a, b, 1e-12));
    }

    #[test]
    fn headers_that_are_not_plain_celestial_give_no_wcs() {
        let base = [
            ("CRVAL1", "1"),
            ("CRVAL2", "2"),
            ("CRPIX1", "1"),
            ("CRPIX2", "1"),
            ("CDELT1", "-0.1"),
            ("CDELT2", "0.1"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut cards = base.to_vec();
            cards.extend_from_slice(extra);
            header(&cards)
        };
        assert!(with(&[("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN")]).is_some());
        assert!(with(&[("CTYPE1", "RA---ZEA"), ("CTYPE2", "DEC--ZEA")]).is_none());
        assert!(with(&[("CTYPE1", "GLON-TAN"), ("CTYPE2", "GLAT-TAN")]).is_none());
        assert!(with(&[("CTYPE1", "RA---TAN")]).is_none());
        assert!(with(&[
            ("CTYPE1", "RA---TAN"),
            ("CTYPE2", "DEC--TAN"),
            ("CUNIT1", "arcsec")
        ])
        .is_none());
        assert!(with(&[
            ("CTYPE1", "RA---TAN"),
            ("CTYPE2", "DEC--TAN"),
            ("CD1_1", "0")
        ])
        .is_none());
    }
}

//! A FITS image as the decision screen shows it: its pixel values turned
//! north up and east left, what they are in (BUNIT), where the sky is
//! (a WCS of the shown grid), the restoring beam, and for a cube each
//! plane's time or frequency. The browser colours the values itself, so a
//! change of stretch or colour map needs no round trip, and hovering can
//! show the value under the pointer.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::render::{frame_indices, percentile, Source};
use super::wcs::SkyWcs;
use super::{FitsError, FitsInfo};

/// Longest side shown; larger images are block-averaged down.
pub const SKY_MAX_SIDE: usize = 512;
/// Values sent for one image, all planes together (4 MB of f32).
pub const SKY_MAX_VALUES: usize = 1 << 20;

/// The restoring beam, as the header gives it: full widths at half
/// maximum in degrees, position angle in degrees from north through east.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Beam {
    pub major_deg: f64,
    pub minor_deg: f64,
    pub pa_deg: f64,
}

/// Where one plane of a cube sits along its third axis.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlaneLabel {
    /// For people: `12:04:30 UTC`, `t = +20 s`, `887.5 MHz`, `plane 3`.
    pub label: String,
    /// When the plane was observed, when the header says (RFC 3339, UTC).
    pub time: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SkyImage {
    pub width: usize,
    pub height: usize,
    /// Plane after plane, each row by row from the top (north), each row
    /// from the left (east); NaN where there is no data.
    pub values: Vec<f32>,
    pub planes: Vec<PlaneLabel>,
    /// The sky of the shown grid (not of the file's), if the header has a
    /// celestial WCS this code understands.
    pub wcs: Option<SkyWcs>,
    /// BUNIT, if given.
    pub unit: Option<String>,
    pub beam: Option<Beam>,
    /// Whether the grid had to be resampled (the file's pixels were turned
    /// on the sky) rather than only flipped.
    pub resampled: bool,
}

/// The beam as drawn over the shown grid: axes in shown pixels, and the
/// turn of the major axis for a canvas (radians from +x towards +y, which
/// points down).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BeamShape {
    pub major_px: f64,
    pub minor_px: f64,
    pub rotation_rad: f64,
}

/// Limits of the grey scale for a set of values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Limits {
    /// 0.5 % and 99.5 % percentiles: linear, log and asinh stretch between.
    pub percentile: [f64; 2],
    /// IRAF's zscale: the range around the sky that shows faint structure.
    pub zscale: [f64; 2],
}

/// Reads the image (every plane, at most [`SKY_MAX_VALUES`] values) and
/// turns it north up. `info` must come from [`inspect`](super::inspect) of
/// the same file.
pub fn sky_image(path: &Path, info: &FitsInfo, cancel: &AtomicBool) -> Result<SkyImage, FitsError> {
    let mut src = Source::open(path, info)?;
    let (w0, h0) = (info.width() as usize, info.height() as usize);
    let first = src.plane(0, SKY_MAX_SIDE, cancel)?;
    let (w, h) = (first.w, first.h);
    let factor = w0.max(h0).div_ceil(SKY_MAX_SIDE).max(1);
    let budget = (SKY_MAX_VALUES / (w * h)).max(1);
    let picked = frame_indices(info.planes() as usize, budget);

    let file_wcs = if info.axes.len() >= 2 {
        let numbers: std::collections::HashMap<&str, f64> = SkyWcs::NUMBER_KEYS
            .iter()
            .filter_map(|&k| src.number(k).map(|v| (k, v)))
            .collect();
        let texts: std::collections::HashMap<&str, String> = SkyWcs::TEXT_KEYS
            .iter()
            .filter_map(|&k| src.text(k).map(|v| (k, v)))
            .collect();
        SkyWcs::from_header(|k| numbers.get(k).copied(), |k| texts.get(k).cloned())
            .map(|s| s.binned(factor))
    } else {
        None
    };
    let unit = src
        .text("BUNIT")
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    let beam = match (src.number("BMAJ"), src.number("BMIN")) {
        (Some(major), Some(minor)) if major > 0.0 && minor > 0.0 => Some(Beam {
            major_deg: major.max(minor),
            minor_deg: major.min(minor),
            pa_deg: src.number("BPA").unwrap_or(0.0),
        }),
        _ => None,
    };
    let planes = plane_labels(&mut src, &picked, info.axes.len() >= 3);

    let view = View::new(file_wcs, w, h);
    let mut values = Vec::with_capacity(w * h * picked.len());
    for (n, &p) in picked.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(FitsError::Cancelled);
        }
        let plane = if n == 0 && p == 0 {
            first.data.clone()
        } else {
            src.plane(p, SKY_MAX_SIDE, cancel)?.data
        };
        view.draw(&plane, w, h, &mut values);
    }
    Ok(SkyImage {
        width: w,
        height: h,
        values,
        planes,
        wcs: view.shown,
        unit,
        beam,
        resampled: view.resample.is_some(),
    })
}

/// How file pixels map to shown ones.
struct View {
    flip_x: bool,
    flip_y: bool,
    /// For a turned grid: the file's WCS, to look each shown pixel up in.
    resample: Option<SkyWcs>,
    shown: Option<SkyWcs>,
}

impl View {
    fn new(file: Option<SkyWcs>, w: usize, h: usize) -> View {
        match file {
            // FITS rows run bottom to top.
            None => View {
                flip_x: false,
                flip_y: true,
                resample: None,
                shown: None,
            },
            Some(f) if f.is_axis_aligned() => {
                // East left: RA falls with x. North up: Dec falls down rows.
                let (flip_x, flip_y) = (f.cd[0][0] > 0.0, f.cd[1][1] > 0.0);
                View {
                    flip_x,
                    flip_y,
                    resample: None,
                    shown: Some(f.flipped(w, h, flip_x, flip_y)),
                }
            }
            Some(f) => {
                let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
                match f.pixel_to_sky(cx, cy) {
                    Some((ra, dec)) => View {
                        flip_x: false,
                        flip_y: false,
                        resample: Some(f),
                        shown: Some(SkyWcs::north_up(ra, dec, cx, cy, f.pixel_deg())),
                    },
                    None => View::new(None, w, h),
                }
            }
        }
    }

    /// Appends one plane (FITS order, `w × h`) as shown.
    fn draw(&self, plane: &[f64], w: usize, h: usize, out: &mut Vec<f32>) {
        if let (Some(file), Some(shown)) = (&self.resample, &self.shown) {
            for y in 0..h {
                for x in 0..w {
                    let v = shown
                        .pixel_to_sky(x as f64, y as f64)
                        .and_then(|(ra, dec)| file.sky_to_pixel(ra, dec))
                        .and_then(|(fx, fy)| {
                            let (fx, fy) = (fx.round(), fy.round());
                            let inside = fx >= 0.0 && fy >= 0.0 && fx < w as f64 && fy < h as f64;
                            inside.then(|| plane[fy as usize * w + fx as usize])
                        })
                        .unwrap_or(f64::NAN);
                    out.push(v as f32);
                }
            }
            return;
        }
        for y in 0..h {
            let fy = if self.flip_y { h - 1 - y } else { y };
            let row = &plane[fy * w..(fy + 1) * w];
            if self.flip_x {
                out.extend(row.iter().rev().map(|&v| v as f32));
            } else {
                out.extend(row.iter().map(|&v| v as f32));
            }
        }
    }
}

/// Labels of the planes picked, from the third axis's WCS keywords.
fn plane_labels(src: &mut Source, picked: &[usize], cube: bool) -> Vec<PlaneLabel> {
    let plain = |p: usize| PlaneLabel {
        label: format!("plane {}", p + 1),
        time: None,
    };
    if !cube {
        return picked.iter().map(|&p| plain(p)).collect();
    }
    let ctype = src
        .text("CTYPE3")
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let crval = src.number("CRVAL3").unwrap_or(0.0);
    let cdelt = src.number("CDELT3").unwrap_or(1.0);
    let crpix = src.number("CRPIX3").unwrap_or(1.0);
    let unit = src
        .text("CUNIT3")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let at = |p: usize| crval + (p as f64 + 1.0 - crpix) * cdelt;
    if ctype.starts_with("TIME") || ctype.starts_with("UTC") {
        let seconds = match unit.as_str() {
            "" | "s" => 1.0,
            "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return picked.iter().map(|&p| plain(p)).collect(),
        };
        let start = start_time(src);
        return picked
            .iter()
            .map(|&p| {
                let offset = at(p) * seconds;
                match start.and_then(|t| t.checked_add(time::Duration::seconds_f64(offset))) {
                    Some(t) => PlaneLabel {
                        label: format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second()),
                        time: t.format(&Rfc3339).ok(),
                    },
                    None => PlaneLabel {
                        label: format!("t = {offset:+.1} s"),
                        time: None,
                    },
                }
            })
            .collect();
    }
    if ctype.starts_with("FREQ") {
        let hz = match unit.as_str() {
            "" | "hz" => 1.0,
            "khz" => 1e3,
            "mhz" => 1e6,
            "ghz" => 1e9,
            _ => return picked.iter().map(|&p| plain(p)).collect(),
        };
        return picked
            .iter()
            .map(|&p| PlaneLabel {
                label: format!("{:.2} MHz", at(p) * hz / 1e6),
                time: None,
            })
            .collect();
    }
    picked.iter().map(|&p| plain(p)).collect()
}

/// The start of the observation: DATE-OBS (UTC, with or without a zone),
/// else MJD-OBS.
fn start_time(src: &mut Source) -> Option<OffsetDateTime> {
    if let Some(text) = src.text("DATE-OBS") {
        let text = text.trim();
        if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
            return Some(t);
        }
        let with_zone = format!("{text}Z");
        if let Ok(t) = OffsetDateTime::parse(&with_zone, &Rfc3339) {
            return Some(t);
        }
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        if let Ok(t) = PrimitiveDateTime::parse(text, &format) {
            return Some(t.assume_utc());
        }
    }
    let mjd = src.number("MJD-OBS")?;
    let unix = (mjd - 40587.0) * 86400.0;
    OffsetDateTime::from_unix_timestamp_nanos((unix * 1e9) as i128).ok()
}

impl SkyImage {
    /// Where (ra, dec) falls in the shown grid, in pixels from the centre
    /// of the top-left pixel.
    pub fn pixel_of(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        self.wcs?.sky_to_pixel(ra, dec)
    }

    /// The side of a shown pixel, arcseconds.
    pub fn pixel_arcsec(&self) -> Option<f64> {
        self.wcs.map(|w| w.pixel_deg() * 3600.0)
    }

    /// The beam over the shown grid, which is north up and east left, so
    /// a position angle (north through east) turns counter-clockwise.
    pub fn beam_shape(&self) -> Option<BeamShape> {
        let (beam, px) = (self.beam?, self.wcs?.pixel_deg());
        let pa = beam.pa_deg.to_radians();
        Some(BeamShape {
            major_px: beam.major_deg / px,
            minor_px: beam.minor_deg / px,
            rotation_rad: (-pa.cos()).atan2(-pa.sin()),
        })
    }

    /// Grey-scale limits over every plane.
    pub fn limits(&self) -> Limits {
        let mut finite: Vec<f64> = self
            .values
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| v as f64)
            .collect();
        if finite.is_empty() {
            return Limits {
                percentile: [0.0, 1.0],
                zscale: [0.0, 1.0],
            };
        }
        let zscale = zscale(&finite);
        let lo = percentile(&mut finite, 0.005);
        let hi = percentile(&mut finite, 0.995);
        let percentile = if hi > lo {
            [lo, hi]
        } else {
            let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
            let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max > min {
                [min, max]
            } else {
                [min - 0.5, min + 0.5]
            }
        };
        Limits { percentile, zscale }
    }
}

/// IRAF's zscale: a line is fitted to the sorted values of a sample (with
/// outliers rejected), and the limits are where that line, its slope
/// divided by the contrast, crosses the ends of the sample.
fn zscale(finite: &[f64]) -> [f64; 2] {
    const SAMPLES: usize = 1000;
    const CONTRAST: f64 = 0.25;
    const MAX_REJECT: f64 = 0.5;
    const KREJ: f64 = 2.5;
    let step = finite.len().div_ceil(SAMPLES).max(1);
    let mut s: Vec<f64> = finite.iter().step_by(step).copied().collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let (min, max) = (s[0], s[n - 1]);
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    };
    if n < 5 {
        return [min, max];
    }
    let mut keep = vec![true; n];
    let mut slope = 0.0;
    for _ in 0..5 {
        let (mut sx, mut sy, mut sxx, mut sxy, mut k) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, &v) in s.iter().enumerate() {
            if keep[i] {
                let x = i as f64;
                sx += x;
                sy += v;
                sxx += x * x;
                sxy += x * v;
                k += 1.0;
            }
        }
        let den = k * sxx - sx * sx;
        if k < 2.0 || den == 0.0 {
            break;
        }
        slope = (k * sxy - sx * sy) / den;
        let intercept = (sy - slope * sx) / k;
        let residuals: Vec<f64> = (0..n)
            .filter(|&i| keep[i])
            .map(|i| s[i] - (intercept + slope * i as f64))
            .collect();
        let sigma = (residuals.iter().map(|r| r * r).sum::<f64>() / residuals.len() as f64).sqrt();
        let mut changed = false;
        for i in 0..n {
            let r = s[i] - (intercept + slope * i as f64);
            let ok = r.abs() <= KREJ * sigma;
            if keep[i] && !ok {
                keep[i] = false;
                changed = true;
            }
        }
        if !changed || (keep.iter().filter(|k| !**k).count() as f64) > MAX_REJECT * n as f64 {
            break;
        }
    }
    let centre = (n as f64 - 1.0) / 2.0;
    let slope = slope / CONTRAST;
    let z1 = (median - centre * slope).max(min);
    let z2 = (median + centre * slope).min(max);
    if z2 > z1 {
        [z1, z2]
    } else {
        [min, max]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fits::testutil::TempDir;
    use crate::fits::{inspect, write_image, Limits as InspectLimits};

    #[test]
    fn zscale_brackets_the_noise_not_the_outliers() {
        let mut values: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5)
            .collect();
        values.extend([500.0, 900.0, -300.0]);
        let [lo, hi] = zscale(&values);
        assert!((-0.6..-0.3).contains(&lo), "{lo}");
        assert!(hi <= 0.6 && hi > 0.3, "{hi}");
    }

    use crate::fits::{write_cube, Projection, Wcs};

    fn brightest(sky: &SkyImage) -> (usize, usize) {
        let plane = &sky.values[..sky.width * sky.height];
        let i = (0..plane.len())
            .filter(|&i| plane[i].is_finite())
            .max_by(|&a, &b| plane[a].total_cmp(&plane[b]))
            .unwrap();
        (i % sky.width, i / sky.width)
    }

    /// A `w × h` image of noise-free zeros with one bright pixel at file
    /// pixel (x, y) (0-based, FITS order).
    fn one_source(
        dir: &TempDir,
        name: &str,
        w: usize,
        h: usize,
        at: (usize, usize),
        wcs: &Wcs,
    ) -> SkyImage {
        let path = dir.path(name);
        let mut data = vec![0.0f32; w * h];
        data[at.1 * w + at.0] = 10.0;
        write_image(&path, w, h, &data, Some(wcs)).unwrap();
        let info = inspect(&path, &InspectLimits::default()).unwrap();
        sky_image(&path, &info, &AtomicBool::new(false)).unwrap()
    }

    #[test]
    fn the_crosshair_lands_on_the_candidates_pixel_for_sin_and_tan() {
        let dir = TempDir::new("sky-cross");
        let (w, h) = (41, 31);
        let pixel = 0.5f64; // Large pixels, so that SIN and TAN differ.
        for (projection, offset) in [
            (Projection::Tan, f64::atan as fn(f64) -> f64),
            (Projection::Sin, f64::asin),
        ] {
            // Ten pixels east of the centre, on the equator: the textbook
            // answer is RA0 + atan(ξ) for TAN and RA0 + asin(ξ) for SIN.
            let mut wcs = Wcs::sin(30.0, 0.0, pixel);
            wcs.projection = projection;
            let sky = one_source(&dir, "east.fits", w, h, (10, 15), &wcs);
            let ra = 30.0 + offset((10.0 * pixel).to_radians()).to_degrees();
            let (x, y) = sky.pixel_of(ra, 0.0).unwrap();
            assert!(
                (x - 10.0).abs() < 0.01 && (y - 15.0).abs() < 0.01,
                "{projection:?}: {x} {y}"
            );
            assert_eq!(brightest(&sky), (10, 15));

            // Eight pixels north of the centre at Dec −45°: Dec0 + atan(η)
            // or Dec0 + asin(η), along the meridian.
            let mut wcs = Wcs::sin(200.0, -45.0, pixel);
            wcs.projection = projection;
            let sky = one_source(&dir, "north.fits", w, h, (20, 23), &wcs);
            let dec = -45.0 + offset((8.0 * pixel).to_radians()).to_degrees();
            let (x, y) = sky.pixel_of(200.0, dec).unwrap();
            // FITS row 23 of 31 is shown as row 7 from the top.
            assert!(
                (x - 20.0).abs() < 0.01 && (y - 7.0).abs() < 0.01,
                "{projection:?}: {x} {y}"
            );
            assert_eq!(brightest(&sky), (20, 7));
            assert!(!sky.resampled);
        }
    }

    #[test]
    fn a_turned_header_is_shown_north_up() {
        let dir = TempDir::new("sky-turned");
        let (w, h) = (41, 41);
        let mut wcs = Wcs::sin(150.0, 10.0, 10.0 / 3600.0);
        wcs.rotation_deg = 30.0;
        // With CROTA2 = 30°, north of the centre by 8 pixels lies at file
        // offset (−8 sin 30°, 8 cos 30°) = (−4, 6.9).
        let sky = one_source(&dir, "turned.fits", w, h, (16, 27), &wcs);
        assert!(sky.resampled);
        let nan = sky.values.iter().filter(|v| v.is_nan()).count();
        // Only the corners turned out of the file's square are empty.
        assert!(nan > 0 && nan < w * h / 4, "{nan}");
        let (x, y) = brightest(&sky);
        assert!(x.abs_diff(20) <= 1 && y.abs_diff(20 - 8) <= 1, "({x}, {y})");
        // And the shown grid's WCS agrees with the file's about that pixel.
        let file = SkyWcs::from_header(
            |k| match k {
                "CRVAL1" => Some(150.0),
                "CRVAL2" => Some(10.0),
                "CRPIX1" | "CRPIX2" => Some(21.0),
                "CDELT1" => Some(-10.0 / 3600.0),
                "CDELT2" => Some(10.0 / 3600.0),
                "CROTA2" => Some(30.0),
                _ => None,
            },
            |k| match k {
                "CTYPE1" => Some("RA---SIN".into()),
                "CTYPE2" => Some("DEC--SIN".into()),
                _ => None,
            },
        )
        .unwrap();
        let (ra, dec) = file.pixel_to_sky(16.0, 27.0).unwrap();
        let (sx, sy) = sky.pixel_of(ra, dec).unwrap();
        assert!(
            (sx - x as f64).abs() <= 0.5 && (sy - y as f64).abs() <= 0.5,
            "{sx} {sy}"
        );
    }

    #[test]
    fn the_beam_follows_bmaj_bmin_bpa() {
        let dir = TempDir::new("sky-beam");
        let mut wcs = Wcs::sin(10.0, -30.0, 5.0 / 3600.0);
        wcs.beam = Some(Beam {
            major_deg: 30.0 / 3600.0,
            minor_deg: 15.0 / 3600.0,
            pa_deg: 0.0,
        });
        let sky = one_source(&dir, "beam.fits", 21, 21, (10, 10), &wcs);
        let b = sky.beam_shape().unwrap();
        assert!((b.major_px - 6.0).abs() < 1e-9 && (b.minor_px - 3.0).abs() < 1e-9);
        // PA 0: the major axis points north, straight up the canvas.
        let up = (b.rotation_rad.cos(), b.rotation_rad.sin());
        assert!(up.0.abs() < 1e-12 && (up.1 + 1.0).abs() < 1e-12, "{up:?}");
        // PA 90°: east, which is left.
        let mut turned = sky.clone();
        turned.beam = Some(Beam {
            pa_deg: 90.0,
            ..sky.beam.unwrap()
        });
        let r = turned.beam_shape().unwrap().rotation_rad;
        assert!(
            (r.cos() + 1.0).abs() < 1e-12 && r.sin().abs() < 1e-12,
            "{r}"
        );
        // PA 45°: up and to the left.
        turned.beam.as_mut().unwrap().pa_deg = 45.0;
        let r = turned.beam_shape().unwrap().rotation_rad;
        assert!(r.cos() < -0.7 && r.sin() < -0.7, "{r}");
    }

    #[test]
    fn slices_of_a_cube_carry_their_times() {
        let dir = TempDir::new("sky-times");
        let path = dir.path("cube.fits");
        let mut wcs = Wcs::sin(10.0, -30.0, 5.0 / 3600.0);
        wcs.slices = Some(("2024-05-01T12:00:00".into(), 10.0));
        write_cube(&path, 4, 4, 3, &[1.0; 48], Some(&wcs)).unwrap();
        let info = inspect(&path, &InspectLimits::default()).unwrap();
        let sky = sky_image(&path, &info, &AtomicBool::new(false)).unwrap();
        let labels: Vec<&str> = sky.planes.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["12:00:00 UTC", "12:00:10 UTC", "12:00:20 UTC"]);
        assert_eq!(sky.planes[2].time.as_deref(), Some("2024-05-01T12:00:20Z"));
        assert_eq!(sky.values.len(), 48);
    }

    #[test]
    fn an_image_without_a_wcs_is_shown_with_fits_row_one_at_the_bottom() {
        let dir = TempDir::new("sky-plain");
        let path = dir.path("plain.fits");
        // Row 0 (south) is 0, row 1 is 1.
        write_image(&path, 2, 2, &[0.0, 0.0, 1.0, 1.0], None).unwrap();
        let info = inspect(&path, &InspectLimits::default()).unwrap();
        let sky = sky_image(&path, &info, &AtomicBool::new(false)).unwrap();
        assert_eq!(sky.values, [1.0, 1.0, 0.0, 0.0]);
        assert!(sky.wcs.is_none());
        assert_eq!(sky.unit.as_deref(), Some("Jy/beam"));
    }
}

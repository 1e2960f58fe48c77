//! FITS writers and synthetic cutouts, for demo data and tests.
//!
//! Only for paths the server makes: the same plain-character rule as for
//! reading applies, since cfitsio parses names it creates too (a leading `!`,
//! for one, means "overwrite").

use std::path::Path;

use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;

use super::header::check_path;
use super::sky::Beam;
use super::wcs::Projection;
use super::FitsError;

/// A celestial WCS centred on the image, as survey cutouts carry it, and
/// what else their headers say about the sky: the restoring beam and, for
/// a cube of time slices, when each slice was taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Wcs {
    /// Right ascension of the centre, degrees.
    pub ra: f64,
    /// Declination of the centre, degrees.
    pub dec: f64,
    /// Pixel size, degrees.
    pub pixel_deg: f64,
    pub projection: Projection,
    /// The pixel grid turned on the sky (CROTA2), degrees.
    pub rotation_deg: f64,
    pub beam: Option<Beam>,
    /// For a cube: DATE-OBS of the first slice and seconds between slices.
    pub slices: Option<(String, f64)>,
    /// BUNIT.
    pub unit: &'static str,
}

impl Wcs {
    /// SIN, north up, no beam: what an ASKAP or MWA cutout usually is.
    pub fn sin(ra: f64, dec: f64, pixel_deg: f64) -> Wcs {
        Wcs {
            ra,
            dec,
            pixel_deg,
            projection: Projection::Sin,
            rotation_deg: 0.0,
            beam: None,
            slices: None,
            unit: "Jy/beam",
        }
    }
}

/// Writes a 2-D float32 image; `data` is row by row, FITS row 0 (south) first.
/// An existing file at `path` is replaced.
pub fn write_image(
    path: &Path,
    width: usize,
    height: usize,
    data: &[f32],
    wcs: Option<&Wcs>,
) -> Result<(), FitsError> {
    write(path, &[width, height], data, wcs)
}

/// Writes a 3-D float32 cube (NAXIS3 = `planes`), plane after plane.
/// An existing file at `path` is replaced.
pub fn write_cube(
    path: &Path,
    width: usize,
    height: usize,
    planes: usize,
    data: &[f32],
    wcs: Option<&Wcs>,
) -> Result<(), FitsError> {
    write(path, &[width, height, planes], data, wcs)
}

fn write(path: &Path, axes: &[usize], data: &[f32], wcs: Option<&Wcs>) -> Result<(), FitsError> {
    check_path(path)?;
    let expected = axes
        .iter()
        .try_fold(1usize, |n, &a| n.checked_mul(a))
        .filter(|&n| n > 0)
        .ok_or_else(|| FitsError::BadInput(format!("cannot write an image of shape {axes:?}")))?;
    if data.len() != expected {
        return Err(FitsError::BadInput(format!(
            "{} values given for an image of shape {axes:?} ({expected} pixels)",
            data.len()
        )));
    }
    // fitsio wants the slowest axis first.
    let dimensions: Vec<usize> = axes.iter().rev().copied().collect();
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &dimensions,
    };
    let mut f = FitsFile::create(path)
        .with_custom_primary(&desc)
        .overwrite()
        .open()?;
    let hdu = f.primary_hdu()?;
    hdu.write_image(&mut f, data)?;
    hdu.write_key(&mut f, "BUNIT", wcs.map_or("Jy/beam", |w| w.unit))?;
    if let Some(w) = wcs {
        // FITS pixel coordinates start at 1, so the centre of n pixels is (n + 1) / 2.
        let crpix = |n: usize| (n as f64 + 1.0) / 2.0;
        let (c1, c2) = match w.projection {
            Projection::Sin => ("RA---SIN", "DEC--SIN"),
            Projection::Tan => ("RA---TAN", "DEC--TAN"),
        };
        hdu.write_key(&mut f, "CTYPE1", c1)?;
        hdu.write_key(&mut f, "CTYPE2", c2)?;
        hdu.write_key(&mut f, "CRVAL1", (w.ra, "[deg] RA of the reference pixel"))?;
        hdu.write_key(
            &mut f,
            "CRVAL2",
            (w.dec, "[deg] Dec of the reference pixel"),
        )?;
        hdu.write_key(&mut f, "CRPIX1", crpix(axes[0]))?;
        hdu.write_key(&mut f, "CRPIX2", crpix(axes[1]))?;
        // RA grows to the east, which is to the left with north up.
        hdu.write_key(&mut f, "CDELT1", -w.pixel_deg)?;
        hdu.write_key(&mut f, "CDELT2", w.pixel_deg)?;
        hdu.write_key(&mut f, "CUNIT1", "deg")?;
        hdu.write_key(&mut f, "CUNIT2", "deg")?;
        hdu.write_key(&mut f, "RADESYS", "ICRS")?;
        if w.rotation_deg != 0.0 {
            hdu.write_key(&mut f, "CROTA2", w.rotation_deg)?;
        }
        if let Some(b) = w.beam {
            hdu.write_key(&mut f, "BMAJ", (b.major_deg, "[deg] beam major axis FWHM"))?;
            hdu.write_key(&mut f, "BMIN", (b.minor_deg, "[deg] beam minor axis FWHM"))?;
            hdu.write_key(
                &mut f,
                "BPA",
                (b.pa_deg, "[deg] beam position angle, N through E"),
            )?;
        }
        if let (Some((start, step)), true) = (&w.slices, axes.len() >= 3) {
            hdu.write_key(&mut f, "CTYPE3", "TIME")?;
            hdu.write_key(&mut f, "CUNIT3", "s")?;
            hdu.write_key(&mut f, "CRPIX3", 1.0)?;
            hdu.write_key(&mut f, "CRVAL3", 0.0)?;
            hdu.write_key(&mut f, "CDELT3", *step)?;
            hdu.write_key(&mut f, "DATE-OBS", start.as_str())?;
        }
    }
    hdu.write_key(&mut f, "ORIGIN", "vetter")?;
    Ok(())
}

/// A believable cutout: a Gaussian point source of `peak` at the centre on
/// Gaussian noise of standard deviation `noise`, row by row, FITS order.
/// The same seed gives the same image.
pub fn synth_point_source(
    width: usize,
    height: usize,
    peak: f32,
    noise: f32,
    seed: u64,
) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let (cx, cy) = ((width as f32 - 1.0) / 2.0, (height as f32 - 1.0) / 2.0);
    // Roughly a few pixels per beam, as in survey cutouts.
    let sigma = (width.min(height) as f32 / 24.0).max(1.5);
    let k = -0.5 / (sigma * sigma);
    let mut out = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            out.push(peak * (k * (dx * dx + dy * dy)).exp() + noise * rng.normal());
        }
    }
    out
}

/// Sets a frame `border` pixels wide to NaN, as at the edge of a mosaic.
pub fn nan_border(data: &mut [f32], width: usize, height: usize, border: usize) {
    for (i, v) in data.iter_mut().enumerate().take(width * height) {
        let (x, y) = (i % width, i / width);
        if x < border || y < border || x + border >= width || y + border >= height {
            *v = f32::NAN;
        }
    }
}

/// xorshift64* seeded through SplitMix64 (so that seed 0 works), with
/// Box–Muller normals. Plenty for pictures; not for statistics.
struct Rng {
    state: u64,
    spare: Option<f32>,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng {
            state: z.max(1),
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let t = std::f64::consts::TAU * self.uniform();
        self.spare = Some((r * t.sin()) as f32);
        (r * t.cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TempDir;
    use super::super::{inspect, Limits};
    use super::*;

    #[test]
    fn wcs_keys_read_back() {
        let dir = TempDir::new("wcs");
        let p = dir.path("wcs.fits");
        let wcs = Wcs::sin(187.706_25, -12.391_1, 2.5 / 3600.0);
        write_image(&p, 5, 4, &[0.5; 20], Some(&wcs)).unwrap();
        let mut f = FitsFile::open(&p).unwrap();
        let hdu = f.primary_hdu().unwrap();
        let key = |f: &mut FitsFile, k: &str| hdu.read_key::<f64>(f, k).unwrap();
        assert_eq!(key(&mut f, "CRVAL1"), wcs.ra);
        assert_eq!(key(&mut f, "CRVAL2"), wcs.dec);
        assert!((key(&mut f, "CDELT1") + wcs.pixel_deg).abs() < 1e-15);
        assert!((key(&mut f, "CDELT2") - wcs.pixel_deg).abs() < 1e-15);
        assert_eq!(key(&mut f, "CRPIX1"), 3.0);
        assert_eq!(key(&mut f, "CRPIX2"), 2.5);
        assert_eq!(
            hdu.read_key::<String>(&mut f, "CTYPE1").unwrap(),
            "RA---SIN"
        );
        assert_eq!(
            hdu.read_key::<String>(&mut f, "CTYPE2").unwrap(),
            "DEC--SIN"
        );
        assert_eq!(hdu.read_key::<String>(&mut f, "BUNIT").unwrap(), "Jy/beam");
        let back: Vec<f32> = hdu.read_image(&mut f).unwrap();
        assert_eq!(back, vec![0.5; 20]);
    }

    #[test]
    fn writers_replace_files_and_pass_inspect() {
        let dir = TempDir::new("writers");
        let p = dir.path("a.fits");
        write_image(&p, 3, 2, &[1.0; 6], None).unwrap();
        write_cube(&p, 3, 2, 4, &[1.0; 24], None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        assert_eq!(info.axes, vec![3, 2, 4]);
        assert_eq!(info.bitpix, -32);
        assert_eq!(info.data_bytes, 24 * 4);
    }

    #[test]
    fn writers_refuse_wrong_lengths_and_odd_paths() {
        let dir = TempDir::new("refuse");
        let e = write_image(&dir.path("a.fits"), 3, 2, &[1.0; 5], None).unwrap_err();
        assert!(matches!(e, FitsError::BadInput(_)), "{e}");
        let e = write_image(&dir.path("a.fits"), 0, 2, &[], None).unwrap_err();
        assert!(matches!(e, FitsError::BadInput(_)), "{e}");
        let e = write_image(&dir.path("!a.fits"), 1, 1, &[1.0], None).unwrap_err();
        assert!(matches!(e, FitsError::UnsafePath(_)), "{e}");
    }

    #[test]
    fn synthetic_source_is_deterministic_and_peaks_at_the_centre() {
        let a = synth_point_source(33, 21, 50.0, 1.0, 42);
        assert_eq!(a, synth_point_source(33, 21, 50.0, 1.0, 42));
        assert_ne!(a, synth_point_source(33, 21, 50.0, 1.0, 43));
        let brightest = (0..a.len()).max_by(|&i, &j| a[i].total_cmp(&a[j])).unwrap();
        assert_eq!((brightest % 33, brightest / 33), (16, 10));
        // Far from the source it is noise of about the requested spread.
        let corner: Vec<f32> = (0..5)
            .flat_map(|y| (0..5).map(move |x| (x, y)))
            .map(|(x, y)| a[y * 33 + x])
            .collect();
        let rms = (corner.iter().map(|v| v * v).sum::<f32>() / corner.len() as f32).sqrt();
        assert!((0.4..2.0).contains(&rms), "rms {rms}");
        let big = synth_point_source(200, 200, 0.0, 1.0, 0);
        let mean = big.iter().sum::<f32>() / big.len() as f32;
        let sd = (big.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / big.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.03 && (sd - 1.0).abs() < 0.03,
            "mean {mean} sd {sd}"
        );
    }

    #[test]
    fn nan_border_covers_only_the_edge() {
        let mut d = vec![1.0f32; 5 * 4];
        nan_border(&mut d, 5, 4, 1);
        let inner: Vec<usize> = (0..20).filter(|&i| !d[i].is_nan()).collect();
        assert_eq!(inner, vec![6, 7, 8, 11, 12, 13]);
    }
}

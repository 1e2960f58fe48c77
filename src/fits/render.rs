//! PNG and GIF previews, read through cfitsio after [`inspect`](super::inspect).
//!
//! Pixels are read in bounded chunks and block-averaged on the way in, so
//! memory stays at a few MB whatever the image size, and a cancel flag is
//! checked between chunks.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use fitsio::hdu::{FitsHdu, HduInfo};
use fitsio::FitsFile;
use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::PngEncoder;
use image::{Delay, ExtendedColorType, Frame, ImageEncoder, RgbaImage};

use super::header::check_path;
use super::{FitsError, FitsInfo};

/// Colour of pixels with no data (NaN, ±Inf, or the BLANK value of an
/// integer image): a muted blue, which no grey of the stretch can be, so
/// "no data" is never mistaken for "faint".
pub const NAN_RGB: [u8; 3] = [40, 60, 110];
/// Longest side of a PNG preview; larger images are block-averaged down.
pub const PNG_MAX_SIDE: usize = 1024;
/// Longest side of a GIF frame. Smaller than the PNG's because a GIF holds up
/// to [`GIF_MAX_FRAMES`] frames and noise compresses badly.
pub const GIF_MAX_SIDE: usize = 512;
/// Cubes with more planes are shown by this many evenly spaced planes.
pub const GIF_MAX_FRAMES: usize = 200;
pub const GIF_FRAME_DELAY_MS: u32 = 250;

/// Pixels per cfitsio read (8 MB of f64).
const CHUNK: usize = 1 << 20;
/// Finite values kept for a GIF's common stretch, spread over all frames.
const SAMPLE_BUDGET: usize = 1 << 22;
const LOW_PERCENTILE: f64 = 0.005;
const HIGH_PERCENTILE: f64 = 0.995;

static NEVER: AtomicBool = AtomicBool::new(false);

/// PNG (8-bit RGB) of the first plane, north up, at most [`PNG_MAX_SIDE`]
/// on its longer side. `info` must come from [`inspect`](super::inspect) of
/// the same file.
pub fn render_png(path: &Path, info: &FitsInfo) -> Result<Vec<u8>, FitsError> {
    render_png_with(path, info, &NEVER)
}

/// Animated GIF of the planes of a cube (at most [`GIF_MAX_FRAMES`], evenly
/// spaced), one stretch for all frames so that brightness changes between
/// planes show, [`GIF_FRAME_DELAY_MS`] per frame, looping forever.
pub fn render_gif(path: &Path, info: &FitsInfo) -> Result<Vec<u8>, FitsError> {
    render_gif_with(path, info, &NEVER)
}

pub(crate) fn render_png_with(
    path: &Path,
    info: &FitsInfo,
    cancel: &AtomicBool,
) -> Result<Vec<u8>, FitsError> {
    let mut src = Source::open(path, info)?;
    let plane = src.plane(0, PNG_MAX_SIDE, cancel)?;
    let mut finite: Vec<f64> = plane
        .data
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let stretch = Stretch::new(&mut finite);
    drop(finite);

    let mut rgb = Vec::with_capacity(plane.w * plane.h * 3);
    plane.rows_top_down(|row| {
        for &v in row {
            if v.is_finite() {
                let g = stretch.level(v, 255);
                rgb.extend_from_slice(&[g, g, g]);
            } else {
                rgb.extend_from_slice(&NAN_RGB);
            }
        }
    });
    let mut out = Vec::new();
    PngEncoder::new(Cursor::new(&mut out)).write_image(
        &rgb,
        plane.w as u32,
        plane.h as u32,
        ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

pub(crate) fn render_gif_with(
    path: &Path,
    info: &FitsInfo,
    cancel: &AtomicBool,
) -> Result<Vec<u8>, FitsError> {
    let mut src = Source::open(path, info)?;
    let frames = frame_indices(info.planes() as usize, GIF_MAX_FRAMES);

    // Two passes over the file, so that memory holds one frame at a time
    // rather than up to 200: the first finds the common stretch from a sample
    // of every frame, the second draws.
    let mut sample = Vec::new();
    let per_frame = (SAMPLE_BUDGET / frames.len()).max(1);
    for &p in &frames {
        let plane = src.plane(p, GIF_MAX_SIDE, cancel)?;
        let finite = plane.data.iter().filter(|v| v.is_finite()).count();
        let stride = finite.div_ceil(per_frame).max(1);
        sample.extend(
            plane
                .data
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .step_by(stride),
        );
    }
    let stretch = Stretch::new(&mut sample);
    drop(sample);

    let mut out = Vec::new();
    {
        // A frame's palette is exact when it has at most 256 colours, so the
        // greys are limited to 255 levels, leaving one entry for NAN_RGB.
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(Repeat::Infinite)?;
        for &p in &frames {
            let plane = src.plane(p, GIF_MAX_SIDE, cancel)?;
            let mut rgba = Vec::with_capacity(plane.w * plane.h * 4);
            plane.rows_top_down(|row| {
                for &v in row {
                    if v.is_finite() {
                        let level = stretch.level(v, 254) as u32;
                        let g = ((level * 255 + 127) / 254) as u8;
                        rgba.extend_from_slice(&[g, g, g, 255]);
                    } else {
                        rgba.extend_from_slice(&[NAN_RGB[0], NAN_RGB[1], NAN_RGB[2], 255]);
                    }
                }
            });
            let img = RgbaImage::from_raw(plane.w as u32, plane.h as u32, rgba)
                .expect("buffer is w × h × 4");
            let delay = Delay::from_numer_denom_ms(GIF_FRAME_DELAY_MS, 1);
            enc.encode_frame(Frame::from_parts(img, 0, 0, delay))?;
        }
    }
    Ok(out)
}

/// `count` evenly spaced indices from 0 to n − 1 (all of them if n ≤ count).
pub(super) fn frame_indices(n: usize, count: usize) -> Vec<usize> {
    if n <= count {
        (0..n).collect()
    } else {
        (0..count).map(|i| i * (n - 1) / (count - 1)).collect()
    }
}

/// An open primary HDU whose shape matches what [`inspect`](super::inspect) saw.
pub(super) struct Source {
    file: FitsFile,
    hdu: FitsHdu,
    w: usize,
    h: usize,
    /// The value cfitsio gives for BLANK pixels of an integer image.
    blank: Option<f64>,
}

impl Source {
    /// A numeric header keyword of the image's HDU.
    pub(super) fn number(&mut self, key: &str) -> Option<f64> {
        self.hdu
            .read_key::<f64>(&mut self.file, key)
            .ok()
            .filter(|v| v.is_finite())
    }

    /// A text header keyword of the image's HDU.
    pub(super) fn text(&mut self, key: &str) -> Option<String> {
        self.hdu.read_key::<String>(&mut self.file, key).ok()
    }

    pub(super) fn open(path: &Path, info: &FitsInfo) -> Result<Source, FitsError> {
        check_path(path)?;
        let mut file = FitsFile::open(path)?;
        let hdu = file.hdu(info.hdu)?;
        let checked = info.fitsio_shape();
        match &hdu.info {
            HduInfo::ImageInfo { shape, .. } if *shape == checked => {}
            HduInfo::ImageInfo { shape, .. } => {
                return Err(FitsError::Changed {
                    cfitsio: shape.clone(),
                    checked,
                })
            }
            _ => {
                return Err(FitsError::Changed {
                    cfitsio: Vec::new(),
                    checked,
                })
            }
        }
        // cfitsio is asked for no null checking, so it scales BLANK like any
        // other value; the scaled value is recognised here instead. The
        // arithmetic is cfitsio's (raw × BSCALE + BZERO in double), so the
        // comparison is exact.
        let blank = if info.bitpix > 0 {
            // A compressed image keeps its BLANK as ZBLANK.
            let blank = hdu.read_key::<i64>(&mut file, "BLANK");
            let blank = blank.or_else(|_| hdu.read_key::<i64>(&mut file, "ZBLANK"));
            blank.ok().map(|b| {
                let scale = hdu.read_key::<f64>(&mut file, "BSCALE").unwrap_or(1.0);
                let zero = hdu.read_key::<f64>(&mut file, "BZERO").unwrap_or(0.0);
                b as f64 * scale + zero
            })
        } else {
            None
        };
        Ok(Source {
            file,
            hdu,
            w: info.width() as usize,
            h: info.height() as usize,
            blank,
        })
    }

    /// Plane `index`, block-averaged over finite pixels so that neither side
    /// exceeds `max_side`. A block with no finite pixel is NaN.
    pub(super) fn plane(
        &mut self,
        index: usize,
        max_side: usize,
        cancel: &AtomicBool,
    ) -> Result<Plane, FitsError> {
        let (w, h) = (self.w, self.h);
        let f = w.max(h).div_ceil(max_side).max(1);
        let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
        let plane_px = w * h;
        let base = index * plane_px;
        let mut sums = vec![0f64; ow * oh];
        let mut counts = vec![0u32; ow * oh];
        // Position kept incrementally rather than divided out per pixel:
        // column x lies in output column ox (fx of f along), row y likewise.
        let (mut x, mut ox, mut fx, mut oy, mut fy) = (0usize, 0usize, 0usize, 0usize, 0usize);
        let mut start = 0;
        while start < plane_px {
            if cancel.load(Ordering::Relaxed) {
                return Err(FitsError::Cancelled);
            }
            let end = (start + CHUNK).min(plane_px);
            let chunk: Vec<f64> =
                self.hdu
                    .read_section(&mut self.file, base + start, base + end)?;
            if chunk.len() != end - start {
                return Err(FitsError::Cfitsio(format!(
                    "asked for {} pixels, got {}",
                    end - start,
                    chunk.len()
                )));
            }
            for v in chunk {
                if v.is_finite() && Some(v) != self.blank {
                    let i = oy * ow + ox;
                    sums[i] += v;
                    counts[i] += 1;
                }
                x += 1;
                fx += 1;
                if fx == f {
                    fx = 0;
                    ox += 1;
                }
                if x == w {
                    (x, ox, fx) = (0, 0, 0);
                    fy += 1;
                    if fy == f {
                        fy = 0;
                        oy += 1;
                    }
                }
            }
            start = end;
        }
        let data = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &n)| if n == 0 { f64::NAN } else { s / n as f64 })
            .collect();
        Ok(Plane { w: ow, h: oh, data })
    }
}

/// Pixel values with FITS row order: `data[0..w]` is the bottom row.
pub(super) struct Plane {
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) data: Vec<f64>,
}

impl Plane {
    /// Visits rows top first, i.e. north up, as images are stored.
    fn rows_top_down(&self, mut visit: impl FnMut(&[f64])) {
        for row in self.data.chunks_exact(self.w).rev() {
            visit(row);
        }
    }
}

/// Linear map from data values to grey levels.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stretch {
    Linear {
        lo: f64,
        scale: f64,
    },
    /// All finite pixels are equal (or there are none): mid-grey.
    Flat,
}

impl Stretch {
    /// From the 0.5 % and 99.5 % percentiles of `finite` (which it reorders).
    /// Falls back to min–max when those percentiles are equal, so a flat
    /// background with a few bright pixels still shows them.
    fn new(finite: &mut [f64]) -> Stretch {
        if finite.is_empty() {
            return Stretch::Flat;
        }
        let lo = percentile(finite, LOW_PERCENTILE);
        let hi = percentile(finite, HIGH_PERCENTILE);
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
            let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (min, max)
        };
        let scale = 1.0 / (hi - lo);
        if hi > lo && scale.is_finite() {
            Stretch::Linear { lo, scale }
        } else {
            Stretch::Flat
        }
    }

    /// Level in `0..=top` for a finite value.
    fn level(self, v: f64, top: u8) -> u8 {
        match self {
            Stretch::Linear { lo, scale } => {
                let t = ((v - lo) * scale).clamp(0.0, 1.0);
                (t * top as f64).round() as u8
            }
            Stretch::Flat => top.div_ceil(2),
        }
    }
}

/// Linearly interpolated percentile `q` of a non-empty slice, in O(n)
/// (selection rather than a sort).
pub(super) fn percentile(values: &mut [f64], q: f64) -> f64 {
    let rank = q * (values.len() - 1) as f64;
    let k = rank.floor() as usize;
    let frac = rank - k as f64;
    let (_, &mut at_k, above) = values.select_nth_unstable_by(k, f64::total_cmp);
    if frac == 0.0 || above.is_empty() {
        return at_k;
    }
    let next = above.iter().copied().fold(f64::INFINITY, f64::min);
    at_k + frac * (next - at_k)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TempDir;
    use super::super::{inspect, write_cube, write_image, Limits};
    use super::*;
    use fitsio::images::{ImageDescription, ImageType};
    use image::codecs::gif::GifDecoder;
    use image::{AnimationDecoder, ImageFormat, RgbImage};
    use std::path::PathBuf;
    use std::time::Instant;

    fn png_of(path: &Path) -> RgbImage {
        let info = inspect(path, &Limits::default()).unwrap();
        let png = render_png(path, &info).unwrap();
        image::load_from_memory_with_format(&png, ImageFormat::Png)
            .unwrap()
            .to_rgb8()
    }

    fn grey(img: &RgbImage, x: u32, y: u32) -> u8 {
        let [r, g, b] = img.get_pixel(x, y).0;
        assert!(r == g && g == b, "pixel ({x},{y}) is not grey: {r},{g},{b}");
        r
    }

    /// A 3 × 2 image; FITS row 0 (the bottom) holds the brightest pixel.
    fn small(dir: &TempDir) -> PathBuf {
        let p = dir.path("small.fits");
        #[rustfmt::skip]
        let data = [
            100.0, 2.0, 3.0, // FITS row 0: bottom
            f32::NAN, 0.0, 1.0, // FITS row 1: top
        ];
        write_image(&p, 3, 2, &data, None).unwrap();
        p
    }

    #[test]
    fn png_is_north_up() {
        let dir = TempDir::new("orient");
        let img = png_of(&small(&dir));
        assert_eq!(img.dimensions(), (3, 2));
        // FITS (0, 0) is the bottom-left, so it is in the last PNG row.
        assert_eq!(grey(&img, 0, 1), 255);
        // And the top FITS row is the first PNG row.
        assert_eq!(grey(&img, 1, 0), 0);
    }

    /// `small`'s pixels in the first extension behind an empty primary HDU,
    /// as a plain IMAGE extension or tile-compressed (cfitsio writes the
    /// compressed form when the name it is given ends in `[compress]`).
    fn small_in_extension(dir: &TempDir, compress: bool) -> PathBuf {
        let p = dir.path(if compress { "tiled.fits" } else { "ext.fits" });
        let create = if compress {
            format!("{}[compress]", p.display())
        } else {
            p.display().to_string()
        };
        let mut f = FitsFile::create(create).overwrite().open().unwrap();
        let desc = ImageDescription {
            data_type: ImageType::Float,
            dimensions: &[2, 3],
        };
        let hdu = f.create_image("SCI", &desc).unwrap();
        #[rustfmt::skip]
        let data: [f32; 6] = [
            100.0, 2.0, 3.0,
            f32::NAN, 0.0, 1.0,
        ];
        hdu.write_image(&mut f, &data).unwrap();
        drop(f);
        p
    }

    #[test]
    fn an_image_in_the_first_extension_renders() {
        let dir = TempDir::new("ext");
        for compress in [false, true] {
            let p = small_in_extension(&dir, compress);
            let info = inspect(&p, &Limits::default()).unwrap();
            assert_eq!((info.hdu, info.axes.clone()), (1, vec![3, 2]), "{compress}");
            let img = png_of(&p);
            assert_eq!(img.dimensions(), (3, 2));
            assert_eq!(grey(&img, 0, 1), 255, "compressed: {compress}");
            assert_eq!(grey(&img, 1, 0), 0, "compressed: {compress}");
        }
    }

    #[test]
    fn png_draws_nan_in_its_own_colour() {
        let dir = TempDir::new("nan");
        let img = png_of(&small(&dir));
        assert_eq!(img.get_pixel(0, 0).0, NAN_RGB);
        let inf = dir.path("inf.fits");
        write_image(
            &inf,
            2,
            2,
            &[1.0, f32::INFINITY, f32::NEG_INFINITY, 2.0],
            None,
        )
        .unwrap();
        let img = png_of(&inf);
        assert_eq!(img.get_pixel(1, 1).0, NAN_RGB);
        assert_eq!(img.get_pixel(0, 0).0, NAN_RGB);
        assert_eq!(grey(&img, 0, 1), 0);
        assert_eq!(grey(&img, 1, 0), 255);
    }

    #[test]
    fn png_stretch_is_monotonic() {
        let dir = TempDir::new("mono");
        let p = dir.path("ramp.fits");
        let data: Vec<f32> = (0..16).map(|i| (i * i) as f32).collect();
        write_image(&p, 16, 1, &data, None).unwrap();
        let img = png_of(&p);
        let levels: Vec<u8> = (0..16).map(|x| grey(&img, x, 0)).collect();
        assert!(levels.windows(2).all(|w| w[0] < w[1]), "{levels:?}");
        assert_eq!((levels[0], levels[15]), (0, 255));
    }

    #[test]
    fn png_of_a_flat_image_is_mid_grey() {
        let dir = TempDir::new("flat");
        let p = dir.path("flat.fits");
        write_image(&p, 4, 3, &[5.0; 12], None).unwrap();
        let img = png_of(&p);
        assert!(img.pixels().all(|px| px.0 == [128, 128, 128]));
        let p = dir.path("allnan.fits");
        write_image(&p, 2, 2, &[f32::NAN; 4], None).unwrap();
        assert!(png_of(&p).pixels().all(|px| px.0 == NAN_RGB));
    }

    #[test]
    fn percentile_stretch_ignores_outliers_but_keeps_a_lone_source() {
        let mut noisy: Vec<f64> = (0..1000).map(|i| (i % 100) as f64).collect();
        noisy.push(1e9);
        match Stretch::new(&mut noisy) {
            Stretch::Linear { lo, scale } => {
                assert!(lo < 1.0);
                assert!(
                    1.0 / scale < 200.0,
                    "one outlier set the top: {}",
                    1.0 / scale
                );
            }
            Stretch::Flat => panic!("flat"),
        }
        // Constant background with one source: percentiles are equal, min-max is used.
        let mut lone = vec![0.0; 10_000];
        lone[5] = 7.0;
        assert_eq!(
            Stretch::new(&mut lone),
            Stretch::Linear {
                lo: 0.0,
                scale: 1.0 / 7.0
            }
        );
        assert_eq!(Stretch::new(&mut []), Stretch::Flat);
    }

    #[test]
    fn percentile_interpolates() {
        let mut v = vec![4.0, 0.0, 3.0, 1.0, 2.0];
        assert_eq!(percentile(&mut v, 0.0), 0.0);
        assert_eq!(percentile(&mut v, 1.0), 4.0);
        assert_eq!(percentile(&mut v, 0.5), 2.0);
        assert!((percentile(&mut v, 0.1) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn integer_images_are_scaled_and_blank_is_no_data() {
        let dir = TempDir::new("int");
        let p = dir.path("int16.fits");
        {
            let desc = fitsio::images::ImageDescription {
                data_type: fitsio::images::ImageType::Short,
                dimensions: &[1, 4],
            };
            let mut f = FitsFile::create(&p)
                .with_custom_primary(&desc)
                .open()
                .unwrap();
            let hdu = f.primary_hdu().unwrap();
            // Raw values first: once BSCALE is known cfitsio would scale them.
            hdu.write_image(&mut f, &[0i16, 5, 10, -32768]).unwrap();
            hdu.write_key(&mut f, "BSCALE", -1.0f64).unwrap();
            hdu.write_key(&mut f, "BZERO", 10.0f64).unwrap();
            hdu.write_key(&mut f, "BLANK", -32768i64).unwrap();
        }
        let img = png_of(&p);
        // BSCALE = -1 turns the raw order around: raw 0 is the brightest.
        assert_eq!(grey(&img, 0, 0), 255);
        assert_eq!(grey(&img, 2, 0), 0);
        assert_eq!(img.get_pixel(3, 0).0, NAN_RGB);
    }

    #[test]
    fn hand_written_files_of_every_bitpix_render() {
        let dir = TempDir::new("bitpix");
        for bitpix in [8i32, 16, 32, 64, -32, -64] {
            let mut h = String::new();
            for card in [
                "SIMPLE  =                    T".to_string(),
                format!("BITPIX  = {bitpix:>20}"),
                "NAXIS   =                    2".into(),
                "NAXIS1  =                    3".into(),
                "NAXIS2  =                    1".into(),
                "END".into(),
            ] {
                h.push_str(&format!("{card:<80}"));
            }
            let mut bytes = format!("{h:<2880}").into_bytes();
            for v in [7u8, 1, 4] {
                match bitpix {
                    8 => bytes.push(v),
                    16 => bytes.extend((v as i16).to_be_bytes()),
                    32 => bytes.extend((v as i32).to_be_bytes()),
                    64 => bytes.extend((v as i64).to_be_bytes()),
                    -32 => bytes.extend((v as f32).to_be_bytes()),
                    _ => bytes.extend((v as f64).to_be_bytes()),
                }
            }
            bytes.resize(2 * 2880, 0);
            let p = dir.path(&format!("b{}.fits", bitpix.unsigned_abs()));
            let p = if bitpix < 0 {
                p.with_extension("float.fits")
            } else {
                p
            };
            std::fs::write(&p, &bytes).unwrap();
            let img = png_of(&p);
            let row: Vec<u8> = (0..3).map(|x| grey(&img, x, 0)).collect();
            assert_eq!(row[0], 255, "BITPIX {bitpix}: {row:?}");
            assert_eq!(row[1], 0, "BITPIX {bitpix}: {row:?}");
            assert!(row[2] > 0 && row[2] < 255, "BITPIX {bitpix}: {row:?}");
        }
    }

    #[test]
    fn large_images_are_block_averaged_to_the_size_limit() {
        let dir = TempDir::new("large");
        let p = dir.path("wide.fits");
        let (w, h) = (2050, 6);
        // Left half 0, right half 1, one NaN that its block's average ignores.
        let mut data: Vec<f32> = (0..w * h)
            .map(|i| if i % w < w / 2 { 0.0 } else { 1.0 })
            .collect();
        data[w - 1] = f32::NAN;
        write_image(&p, w, h, &data, None).unwrap();
        let img = png_of(&p);
        // Blocks of 3: 2050 → 684 columns, 6 → 2 rows.
        assert_eq!(img.dimensions(), (684, 2));
        assert_eq!(grey(&img, 0, 0), 0);
        assert_eq!(grey(&img, 683, 1), 255);
        assert_eq!(grey(&img, 683, 0), 255);
    }

    #[test]
    fn a_four_d_radio_image_renders_its_first_plane() {
        let dir = TempDir::new("4d");
        let p = dir.path("radio.fits");
        {
            let desc = fitsio::images::ImageDescription {
                data_type: fitsio::images::ImageType::Float,
                dimensions: &[1, 1, 2, 2],
            };
            let mut f = FitsFile::create(&p)
                .with_custom_primary(&desc)
                .open()
                .unwrap();
            let hdu = f.primary_hdu().unwrap();
            hdu.write_image(&mut f, &[0.0f32, 1.0, 2.0, 3.0]).unwrap();
        }
        let img = png_of(&p);
        assert_eq!(img.dimensions(), (2, 2));
        assert_eq!(grey(&img, 1, 0), 255);
        assert_eq!(grey(&img, 0, 1), 0);
    }

    #[test]
    fn a_file_that_changed_after_inspect_is_refused() {
        let dir = TempDir::new("changed");
        let p = dir.path("c.fits");
        write_image(&p, 4, 4, &[0.0; 16], None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        write_image(&p, 4, 2, &[0.0; 8], None).unwrap();
        let e = render_png(&p, &info).unwrap_err();
        assert!(matches!(e, FitsError::Changed { .. }), "{e}");
    }

    fn gif_frames(gif: &[u8]) -> Vec<RgbaImage> {
        let dec = GifDecoder::new(Cursor::new(gif)).unwrap();
        dec.into_frames()
            .collect_frames()
            .unwrap()
            .into_iter()
            .map(|f| {
                let (n, d) = f.delay().numer_denom_ms();
                assert_eq!(n / d, GIF_FRAME_DELAY_MS);
                f.into_buffer()
            })
            .collect()
    }

    fn mean_grey(img: &RgbaImage) -> f64 {
        let px: Vec<f64> = img
            .pixels()
            .filter(|p| p.0[..3] != NAN_RGB)
            .map(|p| p.0[0] as f64)
            .collect();
        px.iter().sum::<f64>() / px.len() as f64
    }

    #[test]
    fn gif_has_a_frame_per_plane_with_a_common_stretch() {
        let dir = TempDir::new("gif");
        let p = dir.path("cube.fits");
        let (w, h, n) = (6, 4, 5);
        // Each plane is the same gradient, shifted up by 10 per plane.
        let mut data = Vec::new();
        for k in 0..n {
            for i in 0..w * h {
                data.push(i as f32 + 10.0 * k as f32);
            }
        }
        data[w * h * 2] = f32::NAN; // bottom-left pixel of plane 2
        write_cube(&p, w, h, n, &data, None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        assert!(info.is_cube());
        let gif = render_gif(&p, &info).unwrap();
        let frames = gif_frames(&gif);
        assert_eq!(frames.len(), n);
        for f in &frames {
            assert_eq!(f.dimensions(), (w as u32, h as u32));
        }
        let means: Vec<f64> = frames.iter().map(mean_grey).collect();
        assert!(means.windows(2).all(|m| m[0] + 5.0 < m[1]), "{means:?}");
        assert_ne!(frames[0], frames[4]);
        // North up and the NaN colour, as in the PNG.
        assert_eq!(frames[2].get_pixel(0, h as u32 - 1).0, [40, 60, 110, 255]);
        assert_eq!(frames[0].get_pixel(0, h as u32 - 1).0, [0, 0, 0, 255]);
        assert_eq!(frames[4].get_pixel(w as u32 - 1, 0).0, [255, 255, 255, 255]);
    }

    #[test]
    fn gif_takes_evenly_spaced_planes_of_a_long_cube() {
        assert_eq!(frame_indices(3, 200), vec![0, 1, 2]);
        let idx = frame_indices(1000, 200);
        assert_eq!(idx.len(), 200);
        assert_eq!((idx[0], idx[199]), (0, 999));
        assert!(idx.windows(2).all(|w| w[0] < w[1]));

        let dir = TempDir::new("long");
        let p = dir.path("long.fits");
        let n = 250;
        let data: Vec<f32> = (0..n * 4).map(|i| (i / 4) as f32).collect();
        write_cube(&p, 2, 2, n, &data, None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        let frames = gif_frames(&render_gif(&p, &info).unwrap());
        assert_eq!(frames.len(), GIF_MAX_FRAMES);
        assert_eq!(frames[0].get_pixel(0, 0).0, [0, 0, 0, 255]);
        assert_eq!(frames[199].get_pixel(0, 0).0, [255, 255, 255, 255]);
    }

    #[test]
    fn cancelled_render_stops() {
        let dir = TempDir::new("cancel");
        let p = dir.path("c.fits");
        write_image(&p, 8, 8, &[1.0; 64], None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        let cancel = AtomicBool::new(true);
        assert!(matches!(
            render_png_with(&p, &info, &cancel),
            Err(FitsError::Cancelled)
        ));
        assert!(matches!(
            render_gif_with(&p, &info, &cancel),
            Err(FitsError::Cancelled)
        ));
    }

    /// Not a timed assertion: prints how long a typical cutout takes, for
    /// `cargo test --release -- --nocapture`.
    #[test]
    fn render_speed_of_a_64_by_64_cutout() {
        let dir = TempDir::new("speed");
        let p = dir.path("cutout.fits");
        let data = super::super::synth_point_source(64, 64, 20.0, 1.0, 7);
        write_image(&p, 64, 64, &data, None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        let start = Instant::now();
        let runs = 20;
        for _ in 0..runs {
            assert!(!render_png(&p, &info).unwrap().is_empty());
        }
        eprintln!(
            "64×64 inspect-free render_png: {:?} each",
            start.elapsed() / runs
        );
    }
}

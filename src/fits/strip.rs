//! Animated GIFs cut into a strip of frames: one PNG with the frames stacked
//! top to bottom, all the same size, so that a page can show one frame at a
//! time (by moving the background) and pause and scrub without decoding GIF
//! in the browser.
//!
//! GIFs come from clients, so nothing is allocated from what a file claims
//! before it is checked: [`gif_strip`] first walks the GIF's block structure
//! (no decompression, no allocation) to read the logical screen size and
//! count the frames, and refuses a screen larger than [`GIF_MAX_SCREEN`],
//! more than [`GIF_MAX_FRAMES_IN`] frames, or more than
//! [`GIF_MAX_DECODE_PIXELS`] pixels to decode in all. Only then is it
//! decoded, one composited frame at a time.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{
    AnimationDecoder, ExtendedColorType, GenericImage, ImageDecoder, ImageEncoder, RgbaImage,
};

/// Frames kept in a strip; a longer GIF is shown by this many evenly spaced
/// frames.
pub const STRIP_MAX_FRAMES: usize = 200;
/// Longest side of a frame in the strip; larger frames are scaled down.
pub const STRIP_MAX_SIDE: u32 = 512;
/// Pixels in a whole strip (64 MB decoded, in the browser as on the server):
/// a long movie gets smaller frames.
pub const STRIP_MAX_PIXELS: u64 = 1 << 24;
/// Largest logical screen (either side) of a GIF that is accepted.
pub const GIF_MAX_SCREEN: u32 = 4096;
/// Most frames in a GIF that is accepted.
pub const GIF_MAX_FRAMES_IN: usize = 1000;
/// Most pixels decoded for one GIF (frames × screen width × height).
pub const GIF_MAX_DECODE_PIXELS: u64 = 1 << 28;
/// What browsers show a frame for when the GIF says 0 or 10 ms.
pub const DEFAULT_FRAME_MS: u32 = 100;

/// A GIF cut into frames.
pub struct Strip {
    /// PNG, `width` × (`height` · `frames`), frame k at rows k·height ….
    pub png: Vec<u8>,
    /// Frames in the strip (at most [`STRIP_MAX_FRAMES`]).
    pub frames: u32,
    /// How long to show each frame: the median of the GIF's delays.
    pub frame_ms: u32,
    /// Size of one frame in the strip.
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Strip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strip")
            .field("png_bytes", &self.png.len())
            .field("frames", &self.frames)
            .field("frame_ms", &self.frame_ms)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StripError {
    #[error("not a readable GIF: {0}")]
    Unreadable(String),
    #[error(
        "the GIF is {width} × {height} pixels, more than the limit of \
         {GIF_MAX_SCREEN} × {GIF_MAX_SCREEN}"
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the GIF has more than {GIF_MAX_FRAMES_IN} frames")]
    TooManyFrames,
    #[error(
        "the GIF has {frames} frames of {width} × {height} pixels, more than \
         {GIF_MAX_DECODE_PIXELS} pixels in all; send fewer or smaller frames"
    )]
    TooMuchToDecode {
        frames: usize,
        width: u32,
        height: u32,
    },
    #[error("could not encode the strip of frames: {0}")]
    Encode(String),
}

fn unreadable(e: impl std::fmt::Display) -> StripError {
    StripError::Unreadable(e.to_string())
}

/// Cuts an animated (or still) GIF into a strip of at most
/// [`STRIP_MAX_FRAMES`] frames (evenly spaced if the GIF has more), each at
/// most [`STRIP_MAX_SIDE`] on its longer side, the whole at most
/// [`STRIP_MAX_PIXELS`]. Frames are composited as a browser shows them.
pub fn gif_strip(bytes: &[u8]) -> Result<Strip, StripError> {
    let scan = scan(bytes)?;
    let (w, h) = (scan.width, scan.height);

    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(unreadable)?;
    if decoder.dimensions() != (w, h) {
        return Err(unreadable("the decoder disagrees about the screen size"));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(GIF_MAX_SCREEN);
    limits.max_image_height = Some(GIF_MAX_SCREEN);
    limits.max_alloc = Some(256 * 1024 * 1024);
    decoder.set_limits(limits).map_err(unreadable)?;

    let picks = frame_indices(scan.frames, STRIP_MAX_FRAMES);
    let n = picks.len() as u32;
    let (fw, fh) = frame_size(w, h, picks.len());
    let mut strip = RgbaImage::new(fw, fh * n);
    let mut next = 0;
    for (i, frame) in decoder.into_frames().take(scan.frames).enumerate() {
        if next == picks.len() {
            break;
        }
        let frame = frame.map_err(unreadable)?;
        if i != picks[next] {
            continue;
        }
        let buf = frame.into_buffer();
        if buf.dimensions() != (w, h) {
            return Err(unreadable(format!("frame {i} is not {w} × {h}")));
        }
        let buf = if (fw, fh) == (w, h) {
            buf
        } else {
            image::imageops::resize(&buf, fw, fh, FilterType::Triangle)
        };
        strip
            .copy_from(&buf, 0, next as u32 * fh)
            .map_err(|e| StripError::Encode(e.to_string()))?;
        next += 1;
    }
    if next < picks.len() {
        return Err(unreadable(format!(
            "only {next} of its {} frames could be read",
            scan.frames
        )));
    }

    let mut png = Vec::new();
    let encoder = PngEncoder::new(Cursor::new(&mut png));
    let result = if strip.pixels().all(|p| p.0[3] == 255) {
        let rgb: Vec<u8> = strip
            .pixels()
            .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
            .collect();
        encoder.write_image(&rgb, fw, fh * n, ExtendedColorType::Rgb8)
    } else {
        encoder.write_image(strip.as_raw(), fw, fh * n, ExtendedColorType::Rgba8)
    };
    result.map_err(|e| StripError::Encode(e.to_string()))?;
    Ok(Strip {
        png,
        frames: n,
        frame_ms: median_ms(scan.delays_cs),
        width: fw,
        height: fh,
    })
}

/// `count` evenly spaced indices from 0 to n − 1 (all of them if n ≤ count).
fn frame_indices(n: usize, count: usize) -> Vec<usize> {
    if n <= count {
        (0..n).collect()
    } else {
        (0..count).map(|i| i * (n - 1) / (count - 1)).collect()
    }
}

/// Size of a strip frame for `n` frames of w × h, keeping the aspect ratio.
fn frame_size(w: u32, h: u32, n: usize) -> (u32, u32) {
    let (wf, hf, nf) = (w as f64, h as f64, n as f64);
    let scale = 1f64
        .min(STRIP_MAX_SIDE as f64 / wf.max(hf))
        .min((STRIP_MAX_PIXELS as f64 / (nf * wf * hf)).sqrt());
    if scale >= 1.0 {
        return (w, h);
    }
    let fw = ((wf * scale).floor() as u32).max(1);
    let fh = ((hf * scale).floor() as u32).max(1);
    (fw, fh)
}

/// The median delay in ms, with the short delays browsers ignore replaced
/// as they replace them.
fn median_ms(mut delays_cs: Vec<u16>) -> u32 {
    if delays_cs.is_empty() {
        return DEFAULT_FRAME_MS;
    }
    delays_cs.sort_unstable();
    let ms = delays_cs[delays_cs.len() / 2] as u32 * 10;
    if ms <= 10 {
        DEFAULT_FRAME_MS
    } else {
        ms
    }
}

/// What the block structure of a GIF says, read without decoding.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    width: u32,
    height: u32,
    frames: usize,
    /// Each frame's delay in hundredths of a second (0 when none is given).
    delays_cs: Vec<u16>,
}

/// Walks the blocks of a GIF: header, logical screen, colour tables,
/// extensions and images, skipping the compressed data. Refuses oversized
/// screens and frame counts as soon as it sees them.
fn scan(bytes: &[u8]) -> Result<Scan, StripError> {
    let mut r = Reader { bytes, at: 0 };
    let magic = r
        .take(6)
        .map_err(|_| unreadable("it is shorter than a GIF header"))?;
    if magic != b"GIF87a" && magic != b"GIF89a" {
        return Err(unreadable("it does not start with GIF87a or GIF89a"));
    }
    let width = r.u16()? as u32;
    let height = r.u16()? as u32;
    if width > GIF_MAX_SCREEN || height > GIF_MAX_SCREEN {
        return Err(StripError::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(unreadable(format!(
            "its screen is {width} × {height} pixels"
        )));
    }
    let packed = r.u8()?;
    r.take(2)?; // background colour, aspect ratio
    if packed & 0x80 != 0 {
        r.take(3 << ((packed & 7) + 1))?;
    }
    let mut delays_cs = Vec::new();
    let mut pending_delay = 0u16;
    // Without a trailer, browsers show what is there, and so does this.
    while let Some(block) = r.next_u8() {
        match block {
            0x21 => {
                let label = r.u8()?;
                let mut first = true;
                loop {
                    let len = r.u8()? as usize;
                    if len == 0 {
                        break;
                    }
                    let data = r.take(len)?;
                    if label == 0xF9 && first && len >= 3 {
                        pending_delay = u16::from_le_bytes([data[1], data[2]]);
                    }
                    first = false;
                }
            }
            0x2C => {
                r.take(4)?; // left, top
                let fw = r.u16()? as u32;
                let fh = r.u16()? as u32;
                if fw > GIF_MAX_SCREEN || fh > GIF_MAX_SCREEN {
                    return Err(StripError::TooLarge {
                        width: fw,
                        height: fh,
                    });
                }
                let packed = r.u8()?;
                if packed & 0x80 != 0 {
                    r.take(3 << ((packed & 7) + 1))?;
                }
                r.u8()?; // LZW minimum code size
                loop {
                    let len = r.u8()? as usize;
                    if len == 0 {
                        break;
                    }
                    r.take(len)?;
                }
                if delays_cs.len() == GIF_MAX_FRAMES_IN {
                    return Err(StripError::TooManyFrames);
                }
                delays_cs.push(pending_delay);
                pending_delay = 0;
            }
            0x3B => break,
            other => {
                return Err(unreadable(format!(
                    "unknown block 0x{other:02X} at byte {}",
                    r.at - 1
                )))
            }
        }
    }
    let frames = delays_cs.len();
    if frames == 0 {
        return Err(unreadable("it has no frames"));
    }
    if frames as u64 * width as u64 * height as u64 > GIF_MAX_DECODE_PIXELS {
        return Err(StripError::TooMuchToDecode {
            frames,
            width,
            height,
        });
    }
    Ok(Scan {
        width,
        height,
        frames,
        delays_cs,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StripError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(unreadable(format!(
                "it is truncated ({} bytes)",
                self.bytes.len()
            )));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn next_u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn u8(&mut self) -> Result<u8, StripError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, StripError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, ImageFormat, Rgba};

    /// A GIF of `frames` w × h frames, frame k drawn by `pixel(k, x, y)`.
    fn gif(
        w: u32,
        h: u32,
        frames: usize,
        delay_ms: u32,
        pixel: impl Fn(usize, u32, u32) -> [u8; 4],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut out);
            enc.set_repeat(Repeat::Infinite).unwrap();
            for k in 0..frames {
                let img = RgbaImage::from_fn(w, h, |x, y| Rgba(pixel(k, x, y)));
                let delay = Delay::from_numer_denom_ms(delay_ms, 1);
                enc.encode_frame(Frame::from_parts(img, 0, 0, delay))
                    .unwrap();
            }
        }
        out
    }

    fn decode(png: &[u8]) -> RgbaImage {
        image::load_from_memory_with_format(png, ImageFormat::Png)
            .unwrap()
            .to_rgba8()
    }

    fn five_colours(k: usize, x: u32, y: u32) -> [u8; 4] {
        [(k * 50) as u8, (x * 30) as u8, (y * 40) as u8, 255]
    }

    #[test]
    fn five_frames_become_five_stacked_frames() {
        let (w, h) = (6, 4);
        let bytes = gif(w, h, 5, 70, five_colours);
        let s = gif_strip(&bytes).unwrap();
        assert_eq!((s.frames, s.frame_ms, s.width, s.height), (5, 70, w, h));
        let img = decode(&s.png);
        assert_eq!(img.dimensions(), (w, 5 * h));
        for k in 0..5 {
            for (x, y) in [(0, 0), (5, 3), (2, 1)] {
                assert_eq!(
                    img.get_pixel(x, k as u32 * h + y).0,
                    five_colours(k, x, y),
                    "frame {k} at ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn transparency_is_kept() {
        let bytes = gif(3, 3, 2, 100, |k, x, _| {
            if x == 0 {
                [0, 0, 0, 0]
            } else {
                [200, (k * 100) as u8, 0, 255]
            }
        });
        let img = decode(&gif_strip(&bytes).unwrap().png);
        assert_eq!(img.get_pixel(0, 4).0[3], 0);
        assert_eq!(img.get_pixel(1, 4).0, [200, 100, 0, 255]);
    }

    #[test]
    fn a_still_gif_is_one_frame() {
        let img = RgbaImage::from_fn(4, 3, |x, _| Rgba([(x * 60) as u8, 0, 0, 255]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Gif).unwrap();
        let s = gif_strip(out.get_ref()).unwrap();
        assert_eq!((s.frames, s.width, s.height), (1, 4, 3));
        assert_eq!(s.frame_ms, DEFAULT_FRAME_MS);
        assert_eq!(decode(&s.png).get_pixel(3, 2).0, [180, 0, 0, 255]);
    }

    #[test]
    fn garbage_and_truncated_gifs_are_unreadable() {
        for bytes in [
            &b""[..],
            b"not a gif at all",
            b"GIF89a\x04\x00",
            b"\x89PNG\r\n\x1a\n....",
        ] {
            let e = gif_strip(bytes).unwrap_err();
            assert!(matches!(e, StripError::Unreadable(_)), "{bytes:?}: {e}");
            assert!(e.to_string().starts_with("not a readable GIF: "), "{e}");
        }
        let good = gif(4, 4, 3, 100, five_colours);
        let e = gif_strip(&good[..good.len() / 2]).unwrap_err();
        assert!(matches!(e, StripError::Unreadable(_)), "{e}");
        // A header and trailer but no image.
        let e = gif_strip(b"GIF89a\x04\x00\x04\x00\x00\x00\x00\x3B").unwrap_err();
        assert_eq!(e.to_string(), "not a readable GIF: it has no frames");
    }

    #[test]
    fn a_huge_screen_is_refused_before_decoding() {
        // 60000 × 60000 and nothing else: a decoder would want 14 GB.
        let mut bytes = b"GIF89a".to_vec();
        bytes.extend(60000u16.to_le_bytes());
        bytes.extend(60000u16.to_le_bytes());
        bytes.extend([0, 0, 0, 0x3B]);
        let e = gif_strip(&bytes).unwrap_err();
        assert!(
            matches!(
                e,
                StripError::TooLarge {
                    width: 60000,
                    height: 60000
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "the GIF is 60000 × 60000 pixels, more than the limit of 4096 × 4096"
        );
        // A frame larger than a small screen is refused too.
        let mut bytes = b"GIF89a\x04\x00\x04\x00\x00\x00\x00".to_vec();
        bytes.extend([0x2C, 0, 0, 0, 0]);
        bytes.extend(50000u16.to_le_bytes());
        bytes.extend(50000u16.to_le_bytes());
        bytes.extend([0, 2, 0, 0x3B]);
        assert!(matches!(
            gif_strip(&bytes).unwrap_err(),
            StripError::TooLarge { width: 50000, .. }
        ));
    }

    /// A GIF of `n` 1 × 1 frames written by hand (no encoder needed).
    fn tiny_frames(n: usize, w: u16, h: u16) -> Vec<u8> {
        let mut b = b"GIF89a".to_vec();
        b.extend(w.to_le_bytes());
        b.extend(h.to_le_bytes());
        b.extend([0x80, 0, 0]); // global table of 2 colours
        b.extend([0, 0, 0, 255, 255, 255]);
        for _ in 0..n {
            b.extend([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
            // LZW min code size 2: clear, index 0, end.
            b.extend([2, 2, 0x44, 0x01, 0]);
        }
        b.push(0x3B);
        b
    }

    #[test]
    fn too_many_frames_or_pixels_are_refused_before_decoding() {
        let e = gif_strip(&tiny_frames(GIF_MAX_FRAMES_IN + 1, 1, 1)).unwrap_err();
        assert!(matches!(e, StripError::TooManyFrames), "{e}");
        assert_eq!(e.to_string(), "the GIF has more than 1000 frames");
        let e = gif_strip(&tiny_frames(17, 4096, 4096)).unwrap_err();
        assert!(
            matches!(e, StripError::TooMuchToDecode { frames: 17, .. }),
            "{e}"
        );
        // The hand-written frames decode.
        let s = gif_strip(&tiny_frames(3, 1, 1)).unwrap();
        assert_eq!((s.frames, s.width, s.height), (3, 1, 1));
    }

    #[test]
    fn a_long_gif_keeps_two_hundred_evenly_spaced_frames() {
        let n = 250;
        let colour = |k: usize, _, _| [k as u8, (k * 7 % 256) as u8, 9, 255];
        let s = gif_strip(&gif(2, 2, n, 40, colour)).unwrap();
        assert_eq!((s.frames, s.frame_ms, s.width, s.height), (200, 40, 2, 2));
        let img = decode(&s.png);
        assert_eq!(img.dimensions(), (2, 400));
        let picks = frame_indices(n, 200);
        assert_eq!((picks[0], picks[199]), (0, 249));
        for i in [0, 1, 57, 120, 199] {
            assert_eq!(
                img.get_pixel(1, i as u32 * 2 + 1).0,
                colour(picks[i], 0, 0),
                "strip frame {i}"
            );
        }
    }

    #[test]
    fn large_frames_are_scaled_down() {
        assert_eq!(frame_size(100, 50, 10), (100, 50));
        assert_eq!(frame_size(1024, 512, 1), (512, 256));
        assert_eq!(frame_size(600, 4096, 1), (75, 512));
        // 200 frames of 512 × 512 would be 52 M pixels: scaled to fit 16 M.
        let (w, h) = frame_size(512, 512, 200);
        assert!(w == h && w < 512, "{w}");
        assert!(200 * w as u64 * h as u64 <= STRIP_MAX_PIXELS);
        assert_eq!(frame_size(4096, 1, 200), (512, 1));

        let s = gif_strip(&gif(1000, 10, 2, 100, five_colours)).unwrap();
        assert_eq!((s.width, s.height), (512, 5));
        assert_eq!(decode(&s.png).dimensions(), (512, 10));
    }

    #[test]
    fn delays_become_the_median_as_browsers_show_them() {
        assert_eq!(median_ms(vec![5, 5, 100]), 50);
        assert_eq!(median_ms(vec![0, 0]), DEFAULT_FRAME_MS);
        assert_eq!(median_ms(vec![1]), DEFAULT_FRAME_MS);
        assert_eq!(median_ms(vec![2]), 20);
    }
}

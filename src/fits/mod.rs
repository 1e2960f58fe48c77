//! FITS files from uploads: checked before cfitsio sees them, and rendered
//! into PNG/GIF previews.
//!
//! Uploads come from pipelines and possibly hostile users, and cfitsio trusts
//! what it is given: it parses the file name for its own syntax, sizes reads
//! from the header, and decompresses gzip whole at open. So every path
//! goes through [`inspect`] first: a pure-Rust header check with bounded reads
//! that refuses odd file names, oversized or truncated data and unsupported
//! layouts. Only then do [`render_png`] / [`render_gif`] open the file with
//! cfitsio, reading in bounded chunks. The server calls [`previews`], which
//! does both on the blocking pool under a time limit.
//!
//! Previews are drawn north up (FITS row 0 at the bottom), with a 0.5 %–99.5 %
//! percentile stretch in grey; pixels with no data (NaN, ±Inf, BLANK) are
//! drawn in [`NAN_RGB`], a muted blue, so "no data" never looks like "faint".

mod header;
mod render;
mod sky;
mod strip;
mod wcs;
mod write;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use header::{inspect, sniff, MAX_HEADER_BLOCKS};
pub use render::{
    render_gif, render_png, GIF_FRAME_DELAY_MS, GIF_MAX_FRAMES, GIF_MAX_SIDE, NAN_RGB, PNG_MAX_SIDE,
};
pub use sky::{
    sky_image, Beam, BeamShape, Limits as SkyLimits, PlaneLabel, SkyImage, SKY_MAX_SIDE,
    SKY_MAX_VALUES,
};
pub use strip::{gif_strip, Strip, StripError};
pub use wcs::{Projection, SkyWcs};
pub use write::{nan_border, synth_point_source, write_cube, write_image, Wcs};

/// What a file is, judged by its magic bytes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Fits,
    Png,
    Gif,
}

/// Upper bounds on what [`inspect`] accepts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Pixels in the whole data array (all planes).
    pub max_pixels: u64,
    pub max_planes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 256 * 1024 * 1024,
            max_planes: 4096,
        }
    }
}

/// What a checked primary header promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitsInfo {
    pub bitpix: i32,
    /// NAXIS1..NAXISn.
    pub axes: Vec<u64>,
    /// Size of the header, whole 2880-byte blocks.
    pub header_bytes: u64,
    /// Size of the data array, without padding.
    pub data_bytes: u64,
    /// Which HDU holds the image: 0 the primary, 1 the first extension
    /// (behind an empty primary HDU).
    pub hdu: usize,
}

impl FitsInfo {
    pub fn width(&self) -> u64 {
        self.axes.first().copied().unwrap_or(0)
    }

    /// 1 for a one-dimensional array, drawn as a single row.
    pub fn height(&self) -> u64 {
        self.axes.get(1).copied().unwrap_or(1)
    }

    /// Number of image planes: the product of the axes beyond the first two
    /// (radio images are often 4-D with FREQ and STOKES of length 1).
    pub fn planes(&self) -> u64 {
        self.axes.iter().skip(2).product()
    }

    pub fn is_cube(&self) -> bool {
        self.planes() > 1
    }

    /// The shape fitsio reports for this header: slowest axis first.
    fn fitsio_shape(&self) -> Vec<usize> {
        self.axes.iter().rev().map(|&a| a as usize).collect()
    }
}

/// Why a file that should be FITS is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFitsReason {
    Empty,
    Png,
    Gif,
    Gzip,
    Other,
}

impl std::fmt::Display for NotFitsReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotFitsReason::Empty => "the file is empty",
            NotFitsReason::Png => "it is a PNG image",
            NotFitsReason::Gif => "it is a GIF image",
            NotFitsReason::Gzip => "it is gzip-compressed; upload the plain .fits file",
            NotFitsReason::Other => "its first bytes are something else",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FitsError {
    #[error(
        "refusing the file name {0:?}: only A-Z a-z 0-9 / _ . - are allowed \
         (so that cfitsio's extended file-name syntax cannot be reached)"
    )]
    UnsafePath(String),
    #[error("{0:?} is not a regular file")]
    NotAFile(String),
    #[error("could not read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a FITS file: it does not start with SIMPLE = T ({0})")]
    NotFits(NotFitsReason),
    #[error("SIMPLE = F: the file says it does not conform to the FITS standard")]
    NotStandard,
    #[error("the header has no END card within the first {blocks} blocks of 2880 bytes")]
    NoEnd { blocks: usize },
    #[error(
        "truncated: the header ends in a partial 2880-byte block \
         (the file is {file_bytes} bytes)"
    )]
    ShortHeader { file_bytes: u64 },
    #[error("header card {keyword}: {problem}")]
    BadCard { keyword: String, problem: String },
    #[error("BITPIX {0} is not one of 8, 16, 32, 64, -32, -64")]
    Bitpix(i64),
    #[error("no image: the primary HDU is empty (NAXIS = 0) and no image extension follows it")]
    NoImage,
    #[error(
        "no image: the primary HDU is empty and the first extension is a {0}, \
         not an IMAGE or a tile-compressed image"
    )]
    NoImageExtension(String),
    #[error("NAXIS {0} is not supported (1 to 4 axes)")]
    Naxis(i64),
    #[error("NAXIS{axis} = {value}: every axis needs at least one pixel")]
    EmptyAxis { axis: usize, value: i64 },
    #[error(
        "{} = {} pixels is more than the limit of {limit}",
        axes_product(.axes),
        pixel_count(*.pixels)
    )]
    TooManyPixels {
        axes: Vec<u64>,
        /// Saturates at `u128::MAX`.
        pixels: u128,
        limit: u64,
    },
    #[error("{planes} image planes is more than the limit of {limit}")]
    TooManyPlanes { planes: u64, limit: usize },
    #[error(
        "a cube with more than one non-degenerate extra axis is not supported \
         (NAXIS3… = {extra:?})"
    )]
    MultiAxisCube { extra: Vec<u64> },
    #[error(
        "truncated: the header promises {expected} bytes of data \
         but the file has {available} after the header"
    )]
    Truncated { expected: u64, available: u64 },
    #[error(
        "truncated: the data ({data_bytes} bytes) must be padded to a whole number of \
         2880-byte blocks ({padded} bytes), but the file has {available} after the header"
    )]
    Unpadded {
        data_bytes: u64,
        padded: u64,
        available: u64,
    },
    #[error(
        "the file changed after it was checked: cfitsio sees shape {cfitsio:?} \
         (slowest axis first), the check saw {checked:?}"
    )]
    Changed {
        cfitsio: Vec<usize>,
        checked: Vec<usize>,
    },
    #[error("cfitsio: {0}")]
    Cfitsio(String),
    #[error("could not encode the preview: {0}")]
    Encode(String),
    #[error("{0}")]
    BadInput(String),
    #[error("the preview took longer than {0:?} and was abandoned")]
    TimedOut(Duration),
    #[error("the preview was cancelled")]
    Cancelled,
    #[error("the preview failed unexpectedly: {0}")]
    Panicked(String),
}

impl From<fitsio::errors::Error> for FitsError {
    fn from(e: fitsio::errors::Error) -> Self {
        FitsError::Cfitsio(e.to_string())
    }
}

impl From<image::ImageError> for FitsError {
    fn from(e: image::ImageError) -> Self {
        FitsError::Encode(e.to_string())
    }
}

fn axes_product(axes: &[u64]) -> String {
    let names: Vec<String> = (1..=axes.len()).map(|i| format!("NAXIS{i}")).collect();
    let values: Vec<String> = axes.iter().map(u64::to_string).collect();
    format!("{} = {}", names.join(" × "), values.join(" × "))
}

fn pixel_count(p: u128) -> String {
    if p == u128::MAX {
        "more than 3.4e38".into()
    } else if p >= 1_000_000 {
        format!("{:.3e}", p as f64)
    } else {
        p.to_string()
    }
}

/// What the server stores for an uploaded FITS file.
pub struct Previews {
    pub png: Vec<u8>,
    /// Only for cubes.
    pub gif: Option<Vec<u8>>,
    pub info: FitsInfo,
}

impl std::fmt::Debug for Previews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Previews")
            .field("png_bytes", &self.png.len())
            .field("gif_bytes", &self.gif.as_ref().map(Vec::len))
            .field("info", &self.info)
            .finish()
    }
}

/// Checks `path` and renders its previews on tokio's blocking pool.
///
/// After `timeout` the caller gets [`FitsError::TimedOut`] and the job is told
/// to stop; it checks between bounded chunks of work, so the blocking thread
/// is freed soon after. A panic in the job becomes [`FitsError::Panicked`].
pub async fn previews(
    path: PathBuf,
    limits: Limits,
    timeout: Duration,
) -> Result<Previews, FitsError> {
    run_limited(timeout, move |cancel| {
        let info = inspect(&path, &limits)?;
        let png = render::render_png_with(&path, &info, cancel)?;
        let gif = if info.is_cube() {
            Some(render::render_gif_with(&path, &info, cancel)?)
        } else {
            None
        };
        Ok(Previews { png, gif, info })
    })
    .await
}

/// Checks `path` and reads it as the decision screen shows it
/// ([`sky_image`]), on the blocking pool under the same time limit.
pub async fn sky(path: PathBuf, limits: Limits, timeout: Duration) -> Result<SkyImage, FitsError> {
    run_limited(timeout, move |cancel| {
        let info = inspect(&path, &limits)?;
        sky_image(&path, &info, cancel)
    })
    .await
}

/// Runs `job` on the blocking pool with a time limit. `job` should return
/// [`FitsError::Cancelled`] soon after the flag it is given is set.
async fn run_limited<T, F>(timeout: Duration, job: F) -> Result<T, FitsError>
where
    T: Send + 'static,
    F: FnOnce(&AtomicBool) -> Result<T, FitsError> + Send + 'static,
{
    // Raised on timeout, and also when the caller drops this future (say the
    // client went away), so an abandoned job does not run on.
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = Arc::clone(&cancel.0);
    let handle = tokio::task::spawn_blocking(move || job(&flag));
    match tokio::time::timeout(timeout, handle).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            tracing::error!(panic = %msg, "FITS preview job panicked");
            Err(FitsError::Panicked(msg))
        }
        Ok(Err(_)) => Err(FitsError::Cancelled),
        Err(_) => Err(FitsError::TimedOut(timeout)),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("vetter-fits-{tag}-{}", crate::random_hex(6)));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        pub fn root(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::TempDir;
    use super::*;
    use std::time::Instant;

    #[test]
    fn info_accessors_follow_the_axes() {
        let info = FitsInfo {
            bitpix: -32,
            axes: vec![10, 20, 1, 1],
            header_bytes: 2880,
            data_bytes: 800,
            hdu: 0,
        };
        assert_eq!((info.width(), info.height(), info.planes()), (10, 20, 1));
        assert!(!info.is_cube());
        let cube = FitsInfo {
            axes: vec![10, 20, 7],
            ..info.clone()
        };
        assert_eq!(cube.planes(), 7);
        assert!(cube.is_cube());
        let line = FitsInfo {
            axes: vec![10],
            ..info
        };
        assert_eq!((line.width(), line.height(), line.planes()), (10, 1, 1));
    }

    #[test]
    fn error_messages_name_the_problem() {
        let e = FitsError::TooManyPixels {
            axes: vec![1_000_000_000, 1_000_000_000],
            pixels: 1_000_000_000_000_000_000,
            limit: 268_435_456,
        };
        assert_eq!(
            e.to_string(),
            "NAXIS1 × NAXIS2 = 1000000000 × 1000000000 = 1.000e18 pixels \
             is more than the limit of 268435456"
        );
        assert_eq!(
            FitsError::NotFits(NotFitsReason::Png).to_string(),
            "not a FITS file: it does not start with SIMPLE = T (it is a PNG image)"
        );
    }

    #[tokio::test]
    async fn previews_of_an_image_and_a_cube() {
        let dir = TempDir::new("previews");
        let img = dir.path("img.fits");
        write_image(
            &img,
            32,
            24,
            &synth_point_source(32, 24, 10.0, 1.0, 1),
            None,
        )
        .unwrap();
        let p = previews(img, Limits::default(), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(p.png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(p.gif.is_none());
        assert_eq!(p.info.axes, vec![32, 24]);

        let cube = dir.path("cube.fits");
        let data: Vec<f32> = (0..3)
            .flat_map(|k| synth_point_source(16, 16, 5.0, 1.0, k))
            .collect();
        write_cube(&cube, 16, 16, 3, &data, None).unwrap();
        let p = previews(cube, Limits::default(), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(p.gif.as_deref().unwrap().starts_with(b"GIF89a"));
        assert_eq!(p.info.planes(), 3);
    }

    #[tokio::test]
    async fn previews_of_hostile_files_are_errors() {
        let dir = TempDir::new("hostile");
        let huge = dir.path("huge.fits");
        let mut h = String::new();
        for card in [
            "SIMPLE  =                    T",
            "BITPIX  =                  -64",
            "NAXIS   =                    2",
            "NAXIS1  =           1000000000",
            "NAXIS2  =           1000000000",
            "END",
        ] {
            h.push_str(&format!("{card:<80}"));
        }
        std::fs::write(&huge, format!("{h:<2880}")).unwrap();
        let e = previews(huge, Limits::default(), Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(matches!(e, FitsError::TooManyPixels { .. }), "{e}");

        let e = previews(
            dir.path("x.fits[1]"),
            Limits::default(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, FitsError::UnsafePath(_)), "{e}");

        let e = previews(
            dir.path("missing.fits"),
            Limits::default(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, FitsError::Io(_)), "{e}");

        let e = previews(
            dir.root().to_path_buf(),
            Limits::default(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, FitsError::NotAFile(_)), "{e}");
    }

    #[tokio::test]
    async fn previews_time_out_instead_of_hanging() {
        let dir = TempDir::new("timeout");
        let cube = dir.path("big.fits");
        let (w, h, n) = (256, 256, 64);
        let data: Vec<f32> = (0..w * h * n).map(|i| (i % 977) as f32).collect();
        write_cube(&cube, w, h, n, &data, None).unwrap();
        let start = Instant::now();
        let e = previews(cube, Limits::default(), Duration::from_micros(1))
            .await
            .unwrap_err();
        assert!(matches!(e, FitsError::TimedOut(_)), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_timed_out_job_is_told_to_stop() {
        let stopped = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&stopped);
        let start = Instant::now();
        let e = run_limited(Duration::from_millis(20), move |cancel| -> Result<(), _> {
            // A job that would run for a minute unless cancelled.
            while start.elapsed() < Duration::from_secs(60) {
                if cancel.load(Ordering::Relaxed) {
                    seen.store(true, Ordering::Relaxed);
                    return Err(FitsError::Cancelled);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(matches!(e, FitsError::TimedOut(d) if d == Duration::from_millis(20)));
        let waited = Instant::now();
        while !stopped.load(Ordering::Relaxed) && waited.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(
            stopped.load(Ordering::Relaxed),
            "the job never saw the cancel flag"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_not_a_crash() {
        let e = run_limited(Duration::from_secs(5), |_| -> Result<(), FitsError> {
            panic!("boom in the renderer")
        })
        .await
        .unwrap_err();
        match e {
            FitsError::Panicked(msg) => assert!(msg.contains("boom"), "{msg}"),
            other => panic!("expected Panicked, got {other}"),
        }
    }
}

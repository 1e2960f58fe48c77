//! Pure-Rust checks that run before cfitsio is allowed near a file.
//!
//! cfitsio believes the header: it sizes its reads from NAXISn and BITPIX and
//! parses the file *name* for its extended syntax. So the name is restricted
//! to plain characters, and the header is read here with a fixed buffer and a
//! bounded number of blocks, and compared with the real file size.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{FileKind, FitsError, FitsInfo, Limits, NotFitsReason};

pub(crate) const BLOCK: usize = 2880;
const CARD: usize = 80;
/// Headers longer than this are refused; real pipeline headers use a few blocks.
pub const MAX_HEADER_BLOCKS: usize = 100;

const FITS_MAGIC: &[u8] = b"SIMPLE  = ";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The kind of a file from its first bytes, never from its name.
pub fn sniff(head: &[u8]) -> Option<FileKind> {
    if head.starts_with(FITS_MAGIC) {
        Some(FileKind::Fits)
    } else if head.starts_with(PNG_MAGIC) {
        Some(FileKind::Png)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(FileKind::Gif)
    } else {
        None
    }
}

/// Refuses any path cfitsio could read as something other than a plain file
/// name: `[..]` filters, `(..)` output copies, `scheme://`, `+n` HDU suffixes,
/// and `-`/`stdin` (standard input). Non-UTF-8 paths are refused too, because
/// fitsio panics on them.
pub(crate) fn check_path(path: &Path) -> Result<&str, FitsError> {
    let unsafe_path = || FitsError::UnsafePath(path.to_string_lossy().into_owned());
    let s = path.to_str().ok_or_else(unsafe_path)?;
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-'));
    let name = s.rsplit('/').next().unwrap_or("");
    if !plain || name.is_empty() || name.starts_with('-') || name == "stdin" || name == "stdout" {
        return Err(unsafe_path());
    }
    Ok(s)
}

/// Checks the headers of `path` and returns what they promise of its image.
///
/// The image is the primary HDU's, or, when the primary HDU is empty (NAXIS
/// = 0, a standard layout), the first extension's: an IMAGE extension or a
/// tile-compressed image (a BINTABLE with ZIMAGE = T).
///
/// Call this before anything else (cfitsio in particular) touches the file.
/// Reads at most [`MAX_HEADER_BLOCKS`] blocks per header through one
/// 2880-byte buffer, so a hostile header costs neither memory nor time.
pub fn inspect(path: &Path, limits: &Limits) -> Result<FitsInfo, FitsError> {
    check_path(path)?;
    // Checked before opening: opening a FIFO for reading would block.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(FitsError::NotAFile(path.to_string_lossy().into_owned()));
    }
    let mut file = File::open(path)?;
    let file_bytes = file.metadata()?.len();

    let primary = read_header(&mut file, Parser::new(Hdu::Primary), file_bytes)?;
    if primary.naxis > 0 {
        return primary.finish(0, 0, file_bytes, limits);
    }
    // An empty primary HDU has no data: the first extension starts right
    // after its header.
    let offset = primary.header_bytes;
    if file_bytes <= offset {
        return Err(FitsError::NoImage);
    }
    let ext = read_header(&mut file, Parser::new(Hdu::Extension), file_bytes - offset)?;
    ext.finish(1, offset, file_bytes, limits)
}

/// Reads one header from the file's current position, block by block.
fn read_header(file: &mut File, mut parser: Parser, remaining: u64) -> Result<Parser, FitsError> {
    let mut block = [0u8; BLOCK];
    for n in 0..MAX_HEADER_BLOCKS {
        let got = read_full(file, &mut block)?;
        if n == 0 && parser.hdu == Hdu::Primary {
            check_magic(&block[..got])?;
        }
        for card in block[..got].chunks_exact(CARD) {
            if parser.card(card)? {
                if got < BLOCK {
                    return Err(FitsError::ShortHeader {
                        file_bytes: remaining,
                    });
                }
                parser.header_bytes = (n as u64 + 1) * BLOCK as u64;
                return Ok(parser);
            }
        }
        if got < BLOCK {
            return Err(FitsError::NoEnd {
                blocks: n + usize::from(got > 0),
            });
        }
    }
    Err(FitsError::NoEnd {
        blocks: MAX_HEADER_BLOCKS,
    })
}

fn check_magic(head: &[u8]) -> Result<(), FitsError> {
    match sniff(head) {
        Some(FileKind::Fits) => Ok(()),
        Some(FileKind::Png) => Err(FitsError::NotFits(NotFitsReason::Png)),
        Some(FileKind::Gif) => Err(FitsError::NotFits(NotFitsReason::Gif)),
        None if head.is_empty() => Err(FitsError::NotFits(NotFitsReason::Empty)),
        None if head.starts_with(b"\x1f\x8b") => Err(FitsError::NotFits(NotFitsReason::Gzip)),
        None => Err(FitsError::NotFits(NotFitsReason::Other)),
    }
}

/// Fills `buf` unless the file ends first; returns how many bytes were read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hdu {
    Primary,
    Extension,
}

/// The keywords that describe a tile-compressed image; they may stand
/// anywhere after the mandatory cards.
#[derive(Default)]
struct Compressed {
    zimage: bool,
    zbitpix: Option<i64>,
    znaxis: Option<i64>,
    zaxes: [Option<i64>; 4],
}

/// The mandatory cards are checked at their standard positions (SIMPLE or
/// XTENSION, BITPIX, NAXIS, NAXIS1..n, and for an extension PCOUNT and
/// GCOUNT), which is also where cfitsio reads them, so a duplicate NAXIS1
/// further down cannot make the two readers disagree.
struct Parser {
    hdu: Hdu,
    index: usize,
    xtension: String,
    bitpix: i32,
    naxis: usize,
    axes: Vec<u64>,
    pcount: u64,
    compressed: Compressed,
    header_bytes: u64,
}

impl Parser {
    fn new(hdu: Hdu) -> Self {
        Self {
            hdu,
            index: 0,
            xtension: String::new(),
            bitpix: 0,
            naxis: 0,
            axes: Vec::new(),
            pcount: 0,
            compressed: Compressed::default(),
            header_bytes: 0,
        }
    }

    fn is_table(&self) -> bool {
        self.xtension == "BINTABLE"
    }

    /// Takes the next card; true once it is END.
    fn card(&mut self, card: &[u8]) -> Result<bool, FitsError> {
        let i = self.index;
        self.index += 1;
        let after_axes = 3 + self.naxis;
        match (i, self.hdu) {
            (0, Hdu::Primary) => match value(card, "SIMPLE")? {
                "T" => {}
                "F" => return Err(FitsError::NotStandard),
                other => return Err(bad("SIMPLE", format!("value {other:?} is not T"))),
            },
            (0, Hdu::Extension) => {
                let v = value(card, "XTENSION")?;
                self.xtension = v.trim_matches('\'').trim_end().to_string();
                if !matches!(self.xtension.as_str(), "IMAGE" | "BINTABLE") {
                    return Err(FitsError::NoImageExtension(self.xtension.clone()));
                }
            }
            (1, _) => {
                let b = integer(card, "BITPIX")?;
                if self.is_table() {
                    if b != 8 {
                        return Err(bad("BITPIX", format!("{b} in a binary table (must be 8)")));
                    }
                } else if ![8, 16, 32, 64, -32, -64].contains(&b) {
                    return Err(FitsError::Bitpix(b));
                }
                self.bitpix = b as i32;
            }
            (2, _) => {
                let n = integer(card, "NAXIS")?;
                match n {
                    0 if self.hdu == Hdu::Primary => {}
                    0 => return Err(FitsError::NoImage),
                    2 if self.is_table() => self.naxis = 2,
                    _ if self.is_table() => {
                        return Err(bad("NAXIS", format!("{n} in a binary table (must be 2)")))
                    }
                    1..=4 => self.naxis = n as usize,
                    _ => return Err(FitsError::Naxis(n)),
                }
            }
            _ if i < after_axes => {
                let axis = i - 2;
                let key = format!("NAXIS{axis}");
                let v = integer(card, &key)?;
                if v < 1 {
                    return Err(FitsError::EmptyAxis { axis, value: v });
                }
                self.axes.push(v as u64);
            }
            (_, Hdu::Extension) if i == after_axes => {
                let p = integer(card, "PCOUNT")?;
                if p < 0 || (p > 0 && !self.is_table()) {
                    return Err(bad("PCOUNT", format!("value {p} is not allowed here")));
                }
                self.pcount = p as u64;
            }
            (_, Hdu::Extension) if i == after_axes + 1 => {
                if integer(card, "GCOUNT")? != 1 {
                    return Err(bad("GCOUNT", "must be 1".into()));
                }
            }
            _ => {
                let key = keyword(card);
                if key == "END" {
                    return Ok(true);
                }
                if self.is_table() {
                    self.compressed_card(key, card)?;
                }
            }
        }
        Ok(false)
    }

    fn compressed_card(&mut self, key: &str, card: &[u8]) -> Result<(), FitsError> {
        let c = &mut self.compressed;
        match key {
            "ZIMAGE" => c.zimage = value(card, key)? == "T",
            "ZBITPIX" => c.zbitpix = Some(integer(card, key)?),
            "ZNAXIS" => c.znaxis = Some(integer(card, key)?),
            _ => {
                if let Some(n) = key
                    .strip_prefix("ZNAXIS")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    if (1..=4).contains(&n) {
                        c.zaxes[n - 1] = Some(integer(card, key)?);
                    }
                }
            }
        }
        Ok(())
    }

    /// What the header promises, checked against the limits and the file's
    /// size. `hdu` is the header's number (0 primary), `offset` where it
    /// starts in the file.
    fn finish(
        self,
        hdu: usize,
        offset: u64,
        file_bytes: u64,
        limits: &Limits,
    ) -> Result<FitsInfo, FitsError> {
        let header_bytes = offset + self.header_bytes;
        // The bytes stored after the header: the image, or for a compressed
        // image the table of tiles and its heap.
        let stored: u128 = self
            .axes
            .iter()
            .try_fold(self.bitpix.unsigned_abs() as u128 / 8, |acc, &a| {
                acc.checked_mul(a as u128)
            })
            .and_then(|b| b.checked_add(self.pcount as u128))
            .unwrap_or(u128::MAX);
        let (bitpix, axes) = if self.is_table() {
            self.compressed_image()?
        } else {
            (self.bitpix, self.axes)
        };
        let pixels = axes
            .iter()
            .try_fold(1u128, |acc, &a| acc.checked_mul(a as u128))
            .unwrap_or(u128::MAX);
        if pixels > limits.max_pixels as u128 {
            return Err(FitsError::TooManyPixels {
                axes,
                pixels,
                limit: limits.max_pixels,
            });
        }
        let extra = axes.get(2..).unwrap_or(&[]);
        if extra.iter().filter(|&&a| a > 1).count() > 1 {
            return Err(FitsError::MultiAxisCube {
                extra: extra.to_vec(),
            });
        }
        let planes: u64 = extra.iter().product();
        if planes > limits.max_planes as u64 {
            return Err(FitsError::TooManyPlanes {
                planes,
                limit: limits.max_planes,
            });
        }
        let available = file_bytes.saturating_sub(header_bytes);
        let data_bytes = u64::try_from(stored).unwrap_or(u64::MAX);
        if data_bytes > available {
            return Err(FitsError::Truncated {
                expected: data_bytes,
                available,
            });
        }
        // cfitsio reads whole blocks and fails (status 108) on a last one cut
        // short, so the padding the standard requires is required here too.
        let padded = data_bytes.div_ceil(BLOCK as u64) * BLOCK as u64;
        if padded > available {
            return Err(FitsError::Unpadded {
                data_bytes,
                padded,
                available,
            });
        }
        Ok(FitsInfo {
            bitpix,
            axes,
            header_bytes,
            data_bytes,
            hdu,
        })
    }

    /// The image a BINTABLE holds in compressed tiles (ZBITPIX, ZNAXISn).
    fn compressed_image(&self) -> Result<(i32, Vec<u64>), FitsError> {
        let c = &self.compressed;
        if !c.zimage {
            return Err(FitsError::NoImageExtension("BINTABLE".into()));
        }
        let missing = |k: &str| bad(k, "missing from a compressed image".into());
        let b = c.zbitpix.ok_or_else(|| missing("ZBITPIX"))?;
        if ![8, 16, 32, 64, -32, -64].contains(&b) {
            return Err(FitsError::Bitpix(b));
        }
        let n = c.znaxis.ok_or_else(|| missing("ZNAXIS"))?;
        if !(1..=4).contains(&n) {
            return Err(FitsError::Naxis(n));
        }
        let mut axes = Vec::new();
        for (i, a) in c.zaxes.iter().take(n as usize).enumerate() {
            let key = format!("ZNAXIS{}", i + 1);
            let v = a.ok_or_else(|| missing(&key))?;
            if v < 1 {
                return Err(FitsError::EmptyAxis {
                    axis: i + 1,
                    value: v,
                });
            }
            axes.push(v as u64);
        }
        Ok((b as i32, axes))
    }
}

fn bad(keyword: &str, problem: String) -> FitsError {
    FitsError::BadCard {
        keyword: keyword.to_string(),
        problem,
    }
}

fn keyword(card: &[u8]) -> &str {
    // Header bytes outside printable ASCII make the keyword unmatchable.
    std::str::from_utf8(&card[..8])
        .unwrap_or("\u{fffd}")
        .trim_end_matches(' ')
}

/// The value of a `KEY = value / comment` card, checking that it is `key`.
fn value<'a>(card: &'a [u8], key: &str) -> Result<&'a str, FitsError> {
    let found = keyword(card);
    if found != key {
        return Err(bad(
            key,
            format!(
                "found {found:?} where {key} belongs (a header starts SIMPLE or \
                 XTENSION, BITPIX, NAXIS, NAXIS1 … NAXISn, in that order)"
            ),
        ));
    }
    if &card[8..10] != b"= " {
        return Err(bad(key, "has no value (\"= \" in columns 9-10)".into()));
    }
    let field =
        std::str::from_utf8(&card[10..]).map_err(|_| bad(key, "value is not ASCII text".into()))?;
    let v = field.split('/').next().unwrap_or("").trim();
    Ok(v)
}

fn integer(card: &[u8], key: &str) -> Result<i64, FitsError> {
    let v = value(card, key)?;
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(key, format!("value {v:?} is not an integer")));
    }
    v.parse::<i64>()
        .map_err(|_| bad(key, format!("value {v} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TempDir;
    use super::super::{write_cube, write_image};
    use super::*;
    use std::path::PathBuf;

    /// A primary header of `cards` (END added unless `end` is false) and
    /// `data` zero bytes, each padded to whole blocks.
    fn fits_bytes(cards: &[&str], end: bool, data: usize) -> Vec<u8> {
        let mut h = String::new();
        for c in cards.iter().chain(if end { &["END"][..] } else { &[][..] }) {
            h.push_str(&format!("{c:<80}"));
        }
        let blocks = h.len().div_ceil(BLOCK).max(1);
        let mut bytes = h.into_bytes();
        bytes.resize(blocks * BLOCK, b' ');
        bytes.resize(bytes.len() + data.div_ceil(BLOCK) * BLOCK, 0);
        bytes
    }

    fn image_cards<'a>(bitpix: &'a str, axes: &[&'a str]) -> Vec<String> {
        let mut v = vec![
            "SIMPLE  =                    T".to_string(),
            format!("BITPIX  = {bitpix:>20}"),
            format!("NAXIS   = {:>20}", axes.len()),
        ];
        for (i, a) in axes.iter().enumerate() {
            v.push(format!("{:<8}= {a:>20}", format!("NAXIS{}", i + 1)));
        }
        v
    }

    fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn check(dir: &TempDir, name: &str, bytes: &[u8]) -> Result<FitsInfo, FitsError> {
        inspect(&write(dir, name, bytes), &Limits::default())
    }

    fn cards(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn sniff_by_magic_bytes() {
        assert_eq!(
            sniff(b"SIMPLE  =                    T"),
            Some(FileKind::Fits)
        );
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(FileKind::Png));
        assert_eq!(sniff(b"GIF87a\x01\x00"), Some(FileKind::Gif));
        assert_eq!(sniff(b"GIF89a\x01\x00"), Some(FileKind::Gif));
        for junk in [
            &b""[..],
            b"SIMPLE",
            b"SIMPLE =  T",
            b"simple  = T",
            b"XTENSION= 'IMAGE   '",
            b"\x1f\x8b\x08\x00",
            b"GIF88a",
            b"\x89PNG\r\n",
            b"ra,dec\n1,2\n",
        ] {
            assert_eq!(sniff(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn inspect_a_plain_image() {
        let dir = TempDir::new("good");
        let p = dir.path("good.fits");
        write_image(&p, 7, 5, &[0.0; 35], None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        assert_eq!(info.bitpix, -32);
        assert_eq!(info.axes, vec![7, 5]);
        assert_eq!((info.width(), info.height(), info.planes()), (7, 5, 1));
        assert_eq!(info.header_bytes, 2880);
        assert_eq!(info.data_bytes, 35 * 4);
        assert!(!info.is_cube());
    }

    #[test]
    fn inspect_a_4d_radio_image_with_degenerate_axes() {
        let dir = TempDir::new("radio");
        let c = image_cards("-32", &["4", "3", "1", "1"]);
        let mut all = cards(&c);
        all.extend([
            "CTYPE3  = 'FREQ    '",
            "CTYPE4  = 'STOKES  '",
            "BUNIT   = 'Jy/beam '",
        ]);
        let info = check(&dir, "radio.fits", &fits_bytes(&all, true, 4 * 3 * 4)).unwrap();
        assert_eq!(info.axes, vec![4, 3, 1, 1]);
        assert_eq!(info.planes(), 1);
        assert!(!info.is_cube());

        // And as cfitsio writes one.
        let p = dir.path("radio2.fits");
        {
            let desc = fitsio::images::ImageDescription {
                data_type: fitsio::images::ImageType::Double,
                dimensions: &[1, 1, 3, 4],
            };
            let mut f = fitsio::FitsFile::create(&p)
                .with_custom_primary(&desc)
                .open()
                .unwrap();
            let hdu = f.primary_hdu().unwrap();
            hdu.write_image(&mut f, &[0.0f64; 12]).unwrap();
        }
        let info = inspect(&p, &Limits::default()).unwrap();
        assert_eq!(
            (info.axes.clone(), info.bitpix, info.planes()),
            (vec![4, 3, 1, 1], -64, 1)
        );
    }

    #[test]
    fn inspect_a_cube() {
        let dir = TempDir::new("cube");
        let p = dir.path("cube.fits");
        write_cube(&p, 4, 3, 6, &[0.0; 72], None).unwrap();
        let info = inspect(&p, &Limits::default()).unwrap();
        assert_eq!(info.axes, vec![4, 3, 6]);
        assert_eq!(info.planes(), 6);
        assert!(info.is_cube());
        // A 4-D cube whose only long extra axis is the fourth.
        let c = image_cards("16", &["4", "3", "1", "9"]);
        let info = check(
            &dir,
            "cube4.fits",
            &fits_bytes(&cards(&c), true, 4 * 3 * 9 * 2),
        )
        .unwrap();
        assert_eq!(info.planes(), 9);
    }

    #[test]
    fn truncated_data_is_refused() {
        let dir = TempDir::new("trunc");
        let c = image_cards("-32", &["64", "64"]);
        let mut bytes = fits_bytes(&cards(&c), true, 16384);
        bytes.truncate(2880 + 200);
        let e = check(&dir, "t.fits", &bytes).unwrap_err();
        assert!(
            matches!(
                e,
                FitsError::Truncated {
                    expected: 16384,
                    available: 200
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "truncated: the header promises 16384 bytes of data but the file has 200 after the header"
        );
        // All the data but not its padding to a whole block.
        bytes = fits_bytes(&cards(&c), true, 16384);
        bytes.truncate(2880 + 16384);
        let e = check(&dir, "unpadded.fits", &bytes).unwrap_err();
        assert!(
            matches!(
                e,
                FitsError::Unpadded {
                    data_bytes: 16384,
                    padded: 17280,
                    available: 16384
                }
            ),
            "{e}"
        );
        let info = check(&dir, "ok.fits", &fits_bytes(&cards(&c), true, 17280)).unwrap();
        assert_eq!(info.data_bytes, 16384);
    }

    #[test]
    fn a_header_without_end_is_refused() {
        let dir = TempDir::new("noend");
        let c = image_cards("8", &["2", "2"]);
        let e = check(&dir, "n.fits", &fits_bytes(&cards(&c), false, 0)).unwrap_err();
        assert!(matches!(e, FitsError::NoEnd { blocks: 1 }), "{e}");

        // An endless header stops at the block limit, whatever follows.
        let mut many = cards(&c);
        many.extend(std::iter::repeat_n(
            "COMMENT padding",
            36 * (MAX_HEADER_BLOCKS + 5),
        ));
        let e = check(&dir, "long.fits", &fits_bytes(&many, true, 4)).unwrap_err();
        assert!(
            matches!(
                e,
                FitsError::NoEnd {
                    blocks: MAX_HEADER_BLOCKS
                }
            ),
            "{e}"
        );

        // END in a block cut short.
        let mut bytes = fits_bytes(&cards(&c), true, 0);
        bytes.truncate(800);
        let e = check(&dir, "short.fits", &bytes).unwrap_err();
        assert!(
            matches!(e, FitsError::ShortHeader { file_bytes: 800 }),
            "{e}"
        );
    }

    #[test]
    fn a_billion_by_a_billion_image_fails_fast() {
        let dir = TempDir::new("huge");
        let c = image_cards("-64", &["1000000000", "1000000000"]);
        let e = check(&dir, "h.fits", &fits_bytes(&cards(&c), true, 0)).unwrap_err();
        match e {
            FitsError::TooManyPixels { pixels, limit, .. } => {
                assert_eq!(pixels, 1_000_000_000_000_000_000);
                assert_eq!(limit, Limits::default().max_pixels);
            }
            other => panic!("expected TooManyPixels, got {other}"),
        }
        // Four axes near i64::MAX overflow even u128: still refused, not wrapped.
        let big = "9000000000000000000";
        let c = image_cards("8", &[big, big, big, big]);
        let e = check(&dir, "h4.fits", &fits_bytes(&cards(&c), true, 0)).unwrap_err();
        assert!(
            matches!(
                e,
                FitsError::TooManyPixels {
                    pixels: u128::MAX,
                    ..
                }
            ),
            "{e}"
        );
        // A tighter limit is honoured.
        let c = image_cards("8", &["100", "100"]);
        let p = write(&dir, "l.fits", &fits_bytes(&cards(&c), true, 10_000));
        let tight = Limits {
            max_pixels: 9_999,
            ..Limits::default()
        };
        assert!(matches!(
            inspect(&p, &tight),
            Err(FitsError::TooManyPixels { .. })
        ));
        assert!(inspect(&p, &Limits::default()).is_ok());
    }

    #[test]
    fn unsupported_layouts_are_refused() {
        let dir = TempDir::new("layout");
        let c = image_cards("12", &["2", "2"]);
        let e = check(&dir, "b.fits", &fits_bytes(&cards(&c), true, 8)).unwrap_err();
        assert!(matches!(e, FitsError::Bitpix(12)), "{e}");
        assert_eq!(
            e.to_string(),
            "BITPIX 12 is not one of 8, 16, 32, 64, -32, -64"
        );

        let c = image_cards("8", &[]);
        let e = check(&dir, "n0.fits", &fits_bytes(&cards(&c), true, 0)).unwrap_err();
        assert!(matches!(e, FitsError::NoImage), "{e}");

        let c = image_cards("8", &["2"; 7]);
        let e = check(&dir, "n7.fits", &fits_bytes(&cards(&c), true, 128)).unwrap_err();
        assert!(matches!(e, FitsError::Naxis(7)), "{e}");
        assert_eq!(e.to_string(), "NAXIS 7 is not supported (1 to 4 axes)");

        let c = image_cards("8", &["2", "2", "3", "2"]);
        let e = check(&dir, "mc.fits", &fits_bytes(&cards(&c), true, 48)).unwrap_err();
        assert!(matches!(e, FitsError::MultiAxisCube { .. }), "{e}");

        let c = image_cards("8", &["2", "2", "5000"]);
        let e = check(&dir, "tp.fits", &fits_bytes(&cards(&c), true, 20_000)).unwrap_err();
        assert!(
            matches!(
                e,
                FitsError::TooManyPlanes {
                    planes: 5000,
                    limit: 4096
                }
            ),
            "{e}"
        );

        let c = image_cards("8", &["2", "0"]);
        let e = check(&dir, "z.fits", &fits_bytes(&cards(&c), true, 0)).unwrap_err();
        assert!(
            matches!(e, FitsError::EmptyAxis { axis: 2, value: 0 }),
            "{e}"
        );

        let c = image_cards("8", &["2", "2.0"]);
        let e = check(&dir, "f.fits", &fits_bytes(&cards(&c), true, 4)).unwrap_err();
        assert!(
            matches!(&e, FitsError::BadCard { keyword, .. } if keyword == "NAXIS2"),
            "{e}"
        );

        // NAXIS2 missing: the next card is something else.
        let mut c = image_cards("8", &["2", "2"]);
        c[4] = "OBJECT  = 'J1234+56'".into();
        let e = check(&dir, "m.fits", &fits_bytes(&cards(&c), true, 4)).unwrap_err();
        assert!(
            matches!(&e, FitsError::BadCard { keyword, .. } if keyword == "NAXIS2"),
            "{e}"
        );
    }

    #[test]
    fn the_image_may_sit_in_the_first_extension() {
        let dir = TempDir::new("ext");
        let primary = [
            "SIMPLE  =                    T",
            "BITPIX  =                    8",
            "NAXIS   =                    0",
            "EXTEND  =                    T",
        ];
        let ext = |xtension: &str, extra: &[&str], data: usize| {
            let mut lines = vec![
                format!("XTENSION= '{xtension:<8}'"),
                format!(
                    "BITPIX  = {:>20}",
                    if xtension == "IMAGE" { "-32" } else { "8" }
                ),
                "NAXIS   =                    2".to_string(),
                "NAXIS1  =                    3".to_string(),
                "NAXIS2  =                    2".to_string(),
                "PCOUNT  =                    0".to_string(),
                "GCOUNT  =                    1".to_string(),
            ];
            lines.extend(extra.iter().map(|c| c.to_string()));
            let mut bytes = fits_bytes(&primary, true, 0);
            bytes.extend(fits_bytes(&cards(&lines), true, data));
            bytes
        };
        let info = check(&dir, "img.fits", &ext("IMAGE", &[], 24)).unwrap();
        assert_eq!(info.hdu, 1);
        assert_eq!(info.axes, vec![3, 2]);
        assert_eq!(info.header_bytes, 2 * BLOCK as u64);
        assert_eq!(info.data_bytes, 24);

        // A table that is not a compressed image holds no image.
        let e = check(
            &dir,
            "tab.fits",
            &ext("BINTABLE", &["TFIELDS =                    1"], 6),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FitsError::NoImageExtension(x) if x == "BINTABLE"),
            "{e}"
        );

        // A compressed image is checked by its Z keywords.
        let z = [
            "ZIMAGE  =                    T",
            "ZBITPIX =                  -32",
            "ZNAXIS  =                    2",
            "ZNAXIS1 =                 9000",
            "ZNAXIS2 =                 9000",
        ];
        let tight = Limits {
            max_pixels: 1000,
            ..Limits::default()
        };
        let p = write(&dir, "z.fits", &ext("BINTABLE", &z, 6));
        assert!(matches!(
            inspect(&p, &tight),
            Err(FitsError::TooManyPixels { .. })
        ));
        let info = inspect(&p, &Limits::default()).unwrap();
        assert_eq!(
            (info.hdu, info.bitpix, info.axes),
            (1, -32, vec![9000, 9000])
        );

        // An empty primary HDU alone, or with its extension cut short.
        let e = check(&dir, "none.fits", &fits_bytes(&primary, true, 0)).unwrap_err();
        assert!(matches!(e, FitsError::NoImage), "{e}");
        let mut cut = ext("IMAGE", &[], 24);
        cut.truncate(2 * BLOCK + 10);
        assert!(check(&dir, "cut.fits", &cut).is_err());
    }

    #[test]
    fn things_that_are_not_fits_are_refused() {
        let dir = TempDir::new("notfits");
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x00\0\0\0";
        let e = check(&dir, "pic.fits", png).unwrap_err();
        assert!(matches!(e, FitsError::NotFits(NotFitsReason::Png)), "{e}");
        let e = check(&dir, "anim.fits", b"GIF89a\x01\0\x01\0").unwrap_err();
        assert!(matches!(e, FitsError::NotFits(NotFitsReason::Gif)), "{e}");
        let e = check(&dir, "empty.fits", b"").unwrap_err();
        assert!(matches!(e, FitsError::NotFits(NotFitsReason::Empty)), "{e}");
        let e = check(&dir, "notes.fits", b"ra,dec,flux\n12.5,-30.1,0.003\n").unwrap_err();
        assert!(matches!(e, FitsError::NotFits(NotFitsReason::Other)), "{e}");
        let e = check(&dir, "z.fits", b"\x1f\x8b\x08\x00\x00\x00\x00\x00").unwrap_err();
        assert!(matches!(e, FitsError::NotFits(NotFitsReason::Gzip)), "{e}");

        let mut c = image_cards("8", &["2", "2"]);
        c[0] = "SIMPLE  =                    F".into();
        let e = check(&dir, "f.fits", &fits_bytes(&cards(&c), true, 4)).unwrap_err();
        assert!(matches!(e, FitsError::NotStandard), "{e}");
        c[0] = "SIMPLE  =                    X".into();
        let e = check(&dir, "x.fits", &fits_bytes(&cards(&c), true, 4)).unwrap_err();
        assert!(
            matches!(&e, FitsError::BadCard { keyword, .. } if keyword == "SIMPLE"),
            "{e}"
        );
    }

    #[test]
    fn paths_cfitsio_would_interpret_are_refused() {
        let dir = TempDir::new("paths");
        let c = image_cards("8", &["2", "2"]);
        let good = fits_bytes(&cards(&c), true, 4);
        // The file exists under its odd name, so only the name is at fault.
        for name in [
            "a.fits[1]",
            "a.fits(copy.fits)",
            "a.fits+1",
            "a b.fits",
            "-",
            "stdin",
            "!a.fits",
        ] {
            let p = write(&dir, name, &good);
            let e = inspect(&p, &Limits::default()).unwrap_err();
            assert!(matches!(e, FitsError::UnsafePath(_)), "{name}: {e}");
        }
        let e = inspect(Path::new("mem://x.fits"), &Limits::default()).unwrap_err();
        assert!(matches!(e, FitsError::UnsafePath(_)), "{e}");
        let e = inspect(Path::new("compress://x.fits"), &Limits::default()).unwrap_err();
        assert!(matches!(e, FitsError::UnsafePath(_)), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = dir.root().join(std::ffi::OsStr::from_bytes(b"\xff.fits"));
            let e = inspect(&p, &Limits::default()).unwrap_err();
            assert!(matches!(e, FitsError::UnsafePath(_)), "{e}");
        }
        let p = write(&dir, "plain_name-1.fits", &good);
        assert!(inspect(&p, &Limits::default()).is_ok());
    }
}

//! Reading a reference catalogue from a file: a VOTable (TABLEDATA), a FITS
//! binary table or a CSV. Each format yields cells row by row; what is
//! common (which columns are the name and the position, which numeric
//! columns are kept, checking each row) is here, so the three agree.
//!
//! A catalogue is refused whole when any row is bad, with the row (or the
//! CSV's line) named: a half-loaded catalogue would make "no counterpart"
//! mean nothing.

mod csv;
mod fits;
mod votable;

use std::path::Path;

use crate::domain::sexagesimal::{parse_dec_dms, parse_ra_hms};
use crate::domain::SkyPos;

/// A column as the file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnInfo {
    pub name: String,
    pub unit: String,
    pub ucd: String,
    /// Whether its cells are numbers (from the format's type, or for a CSV
    /// from its first rows).
    pub numeric: bool,
}

/// One cell as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Num(f64),
    /// Integers read as such, so a 64-bit source id stays exact as a name.
    Int(i64),
    Text(String),
    Null,
}

/// The columns to use, as given on the command line (`--name`, `--ra`,
/// `--dec`); those not given are guessed.
#[derive(Debug, Clone, Default)]
pub struct ColumnChoice {
    pub name: Option<String>,
    pub ra: Option<String>,
    pub dec: Option<String>,
}

/// A numeric column kept as a named value of every source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptColumn {
    pub name: String,
    pub unit: String,
}

/// One catalogue source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub pos: SkyPos,
    /// In the order of [`Layout::kept`]; `None` for a blank or NaN cell.
    pub vals: Vec<Option<f64>>,
}

/// How an angle column is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AngleUnit {
    Degrees,
    Hours,
    Radians,
}

/// Which columns make a source.
#[derive(Debug, Clone)]
pub struct Layout {
    name: usize,
    ra: (usize, AngleUnit),
    dec: (usize, AngleUnit),
    kept_at: Vec<usize>,
    pub kept: Vec<KeptColumn>,
    /// The columns as chosen, for the summary: name, RA, Dec.
    pub chosen: [String; 3],
}

/// Where a bad row is: CSV files count lines, the others rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Line(u64),
    Row(u64),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Line(n) => write!(f, "line {n}"),
            Place::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// Why a file cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{0}")]
    File(String),
    #[error("{place}: {message}")]
    Row { place: Place, message: String },
}

impl TableError {
    fn row(place: Place, message: impl Into<String>) -> Self {
        TableError::Row {
            place,
            message: message.into(),
        }
    }
}

/// A source of rows of cells, in the file's column order.
trait Cells {
    fn columns(&self) -> &[ColumnInfo];
    fn next_row(&mut self) -> Option<Result<(Place, Vec<Cell>), TableError>>;
}

/// An open catalogue file: its layout, and its sources one at a time.
pub struct TableReader {
    cells: Box<dyn Cells>,
    layout: Layout,
}

/// The formats, by the file's extension or its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Fits,
    VoTable,
}

fn sniff(path: &Path) -> Result<Format, TableError> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| TableError::File(format!("cannot read {}: {e}", path.display())))?;
    let head = &head[..n];
    if head.starts_with(b"SIMPLE  =") {
        return Ok(Format::Fits);
    }
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        if text.contains("VOTABLE") {
            return Ok(Format::VoTable);
        }
        return Err(TableError::File(
            "this XML file is not a VOTable (no VOTABLE element at its start)".into(),
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "fits" | "fit" | "fts" => Err(TableError::File(
            "this file is named FITS but does not start with SIMPLE =".into(),
        )),
        "xml" | "vot" | "votable" => Err(TableError::File(
            "this file is named as a VOTable but does not start with XML".into(),
        )),
        _ => Ok(Format::Csv),
    }
}

impl TableReader {
    /// Opens `path` (its format from its first bytes) and chooses its
    /// columns.
    pub fn open(path: &Path, choice: &ColumnChoice) -> Result<Self, TableError> {
        let cells: Box<dyn Cells> = match sniff(path)? {
            Format::Csv => Box::new(csv::CsvCells::open(path)?),
            Format::Fits => Box::new(fits::FitsCells::open(path)?),
            Format::VoTable => Box::new(votable::VoTableCells::open(path)?),
        };
        let layout = choose(cells.columns(), choice)?;
        Ok(Self { cells, layout })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The next source, or the first bad row.
    pub fn next_source(&mut self) -> Option<Result<Source, TableError>> {
        let (place, cells) = match self.cells.next_row()? {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        Some(source(&self.layout, self.cells.columns(), place, cells))
    }
}

fn source(
    l: &Layout,
    columns: &[ColumnInfo],
    place: Place,
    cells: Vec<Cell>,
) -> Result<Source, TableError> {
    if cells.len() != columns.len() {
        return Err(TableError::row(
            place,
            format!(
                "{} values where the header has {} columns",
                cells.len(),
                columns.len()
            ),
        ));
    }
    let name = match &cells[l.name] {
        Cell::Text(s) => s.trim().to_string(),
        Cell::Num(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => {
            format!("{}", *v as i64)
        }
        Cell::Num(v) => format!("{v}"),
        Cell::Int(v) => v.to_string(),
        Cell::Null => String::new(),
    };
    let name_col = &columns[l.name].name;
    if name.is_empty() {
        return Err(TableError::row(place, format!("{name_col} is blank")));
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(TableError::row(
            place,
            format!("{name_col} is longer than 200 characters or holds control characters"),
        ));
    }
    let ra = angle(&cells[l.ra.0], l.ra.1, true)
        .map_err(|e| TableError::row(place, format!("{}: {e}", columns[l.ra.0].name)))?;
    let dec = angle(&cells[l.dec.0], l.dec.1, false)
        .map_err(|e| TableError::row(place, format!("{}: {e}", columns[l.dec.0].name)))?;
    // An RA of exactly 360 is 0; anything else outside [0, 360) is more
    // likely hours or radians mislabelled than a position.
    let ra = if ra == 360.0 { 0.0 } else { ra + 0.0 };
    let pos = SkyPos::new(ra, dec)
        .map_err(|e| TableError::row(place, format!("{}: {e}", columns[l.dec.0].name)))?;
    let mut vals = Vec::with_capacity(l.kept_at.len());
    for &i in &l.kept_at {
        vals.push(match &cells[i] {
            Cell::Num(v) if v.is_nan() => None,
            Cell::Num(v) => Some(*v),
            Cell::Int(v) => Some(*v as f64),
            Cell::Null => None,
            Cell::Text(t) if t.trim().is_empty() => None,
            Cell::Text(t) => match t.trim().parse::<f64>() {
                Ok(v) if v.is_nan() => None,
                Ok(v) => Some(v),
                Err(_) => {
                    return Err(TableError::row(
                        place,
                        format!("{}: {t:?} is not a number", columns[i].name),
                    ))
                }
            },
        });
    }
    Ok(Source { name, pos, vals })
}

fn angle(cell: &Cell, unit: AngleUnit, is_ra: bool) -> Result<f64, String> {
    let v = match cell {
        Cell::Null => return Err("blank".into()),
        Cell::Num(v) => *v,
        Cell::Int(v) => *v as f64,
        Cell::Text(t) => {
            let t = t.trim();
            if t.is_empty() {
                return Err("blank".into());
            }
            match t.parse::<f64>() {
                Ok(v) => v,
                // Sexagesimal text: hours for RA, degrees for Dec.
                Err(_) if is_ra => return parse_ra_hms(t).map(|r| r.degrees()),
                Err(_) => return parse_dec_dms(t).map(|d| d.degrees()),
            }
        }
    };
    if !v.is_finite() {
        return Err(format!("{v} is not a position"));
    }
    Ok(match unit {
        AngleUnit::Degrees => v,
        AngleUnit::Hours => v * 15.0,
        AngleUnit::Radians => v.to_degrees(),
    })
}

fn angle_unit(c: &ColumnInfo) -> Result<AngleUnit, TableError> {
    let u = c.unit.trim().to_ascii_lowercase();
    match u.as_str() {
        "" | "deg" | "degree" | "degrees" | "d" => Ok(AngleUnit::Degrees),
        "h" | "hr" | "hour" | "hours" | "hourangle" => Ok(AngleUnit::Hours),
        "rad" | "radian" | "radians" => Ok(AngleUnit::Radians),
        // Sexagesimal text columns in VizieR VOTables.
        "\"h:m:s\"" | "h:m:s" | "\"d:m:s\"" | "d:m:s" => Ok(AngleUnit::Degrees),
        other => Err(TableError::File(format!(
            "column {} has unit {other:?}: positions are read in deg, h or rad",
            c.name
        ))),
    }
}

const NAME_GUESSES: &[&str] = &[
    "name",
    "source_name",
    "src_name",
    "main_id",
    "jname",
    "psrj",
    "designation",
    "component_name",
    "component_id",
    "island_id",
    "source_id",
    "id",
    "object",
    "objname",
];
const RA_GUESSES: &[&str] = &[
    "ra", "raj2000", "_raj2000", "ra_icrs", "ra_j2000", "ra_deg", "radeg", "ra_d", "rajd", "ra_hms",
];
const DEC_GUESSES: &[&str] = &[
    "dec",
    "dej2000",
    "decj2000",
    "_dej2000",
    "de_icrs",
    "dec_icrs",
    "dec_j2000",
    "dec_deg",
    "decdeg",
    "dec_d",
    "dejd",
    "dec_dms",
];

/// A column by flag (exact name, else the only case-insensitive match), by
/// UCD (the `meta.main` one first), or by a common name.
fn find(
    columns: &[ColumnInfo],
    given: Option<&str>,
    ucd: &str,
    guesses: &[&str],
    what: &str,
    flag: &str,
) -> Result<usize, TableError> {
    if let Some(g) = given {
        if let Some(i) = columns.iter().position(|c| c.name == g) {
            return Ok(i);
        }
        let folded: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i].name.eq_ignore_ascii_case(g))
            .collect();
        return match folded.as_slice() {
            [i] => Ok(*i),
            _ => Err(TableError::File(format!(
                "{flag} {g:?}: the file has no such column (its columns: {})",
                names(columns)
            ))),
        };
    }
    let by_ucd = |main: bool| {
        columns.iter().position(|c| {
            let parts: Vec<&str> = c.ucd.split(';').map(str::trim).collect();
            parts.first().is_some_and(|p| p.eq_ignore_ascii_case(ucd))
                && (!main || parts.iter().any(|p| p.eq_ignore_ascii_case("meta.main")))
        })
    };
    if let Some(i) = by_ucd(true).or_else(|| by_ucd(false)) {
        return Ok(i);
    }
    for g in guesses {
        if let Some(i) = columns.iter().position(|c| c.name.eq_ignore_ascii_case(g)) {
            return Ok(i);
        }
    }
    Err(TableError::File(format!(
        "cannot tell which column is the {what}: name it with {flag} (the file's columns: {})",
        names(columns)
    )))
}

fn names(columns: &[ColumnInfo]) -> String {
    let mut s: Vec<&str> = columns.iter().take(40).map(|c| c.name.as_str()).collect();
    if columns.len() > 40 {
        s.push("…");
    }
    s.join(", ")
}

/// At most this many numeric columns are kept per source.
pub const MAX_KEPT: usize = 64;

fn choose(columns: &[ColumnInfo], choice: &ColumnChoice) -> Result<Layout, TableError> {
    if columns.is_empty() {
        return Err(TableError::File("the table has no columns".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        if !seen.insert(c.name.as_str()) {
            return Err(TableError::File(format!(
                "column {:?} appears twice in the header",
                c.name
            )));
        }
    }
    let name = find(
        columns,
        choice.name.as_deref(),
        "meta.id",
        NAME_GUESSES,
        "source name",
        "--name",
    )?;
    let ra = find(
        columns,
        choice.ra.as_deref(),
        "pos.eq.ra",
        RA_GUESSES,
        "right ascension",
        "--ra",
    )?;
    let dec = find(
        columns,
        choice.dec.as_deref(),
        "pos.eq.dec",
        DEC_GUESSES,
        "declination",
        "--dec",
    )?;
    if ra == dec {
        return Err(TableError::File(format!(
            "RA and Dec cannot both be column {}",
            columns[ra].name
        )));
    }
    let kept_at: Vec<usize> = (0..columns.len())
        .filter(|&i| i != name && i != ra && i != dec && columns[i].numeric)
        .take(MAX_KEPT)
        .collect();
    let kept = kept_at
        .iter()
        .map(|&i| KeptColumn {
            name: columns[i].name.chars().take(64).collect(),
            unit: columns[i].unit.chars().take(50).collect(),
        })
        .collect();
    Ok(Layout {
        name,
        ra: (ra, angle_unit(&columns[ra])?),
        dec: (dec, angle_unit(&columns[dec])?),
        kept_at,
        kept,
        chosen: [
            columns[name].name.clone(),
            columns[ra].name.clone(),
            columns[dec].name.clone(),
        ],
    })
}

#[cfg(test)]
mod tests;

//! CSV: a header line of column names (a unit may follow a name in
//! brackets, `flux_peak [mJy/beam]` or `flux_peak (mJy)`), lines starting
//! with `#` ignored. Which columns are numeric is read from the first rows.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::{Cell, Cells, ColumnInfo, Place, TableError};

/// Rows read ahead to decide which columns hold numbers.
const SAMPLE_ROWS: usize = 1000;

pub struct CsvCells {
    reader: ::csv::Reader<BufReader<File>>,
    columns: Vec<ColumnInfo>,
    ahead: VecDeque<(Place, Vec<String>)>,
    record: ::csv::StringRecord,
}

fn split_unit(header: &str) -> (String, String) {
    let h = header.trim();
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(stripped) = h.strip_suffix(close) {
            if let Some(at) = stripped.rfind(open) {
                let name = stripped[..at].trim();
                if !name.is_empty() {
                    return (name.to_string(), stripped[at + 1..].trim().to_string());
                }
            }
        }
    }
    (h.to_string(), String::new())
}

impl CsvCells {
    pub fn open(path: &Path) -> Result<Self, TableError> {
        let file = File::open(path)
            .map_err(|e| TableError::File(format!("cannot read {}: {e}", path.display())))?;
        // Comments are skipped here rather than by the csv crate, whose line
        // numbers would then leave them out.
        let reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(BufReader::new(file));
        let mut cells = CsvCells {
            reader,
            columns: Vec::new(),
            ahead: VecDeque::new(),
            record: ::csv::StringRecord::new(),
        };
        let headers = match cells.read_raw()? {
            Some((_, h)) if !h.iter().all(String::is_empty) => h,
            _ => return Err(TableError::File("the file has no header line".into())),
        };
        let mut columns: Vec<ColumnInfo> = headers
            .iter()
            .map(|h| {
                let (name, unit) = split_unit(h.trim_start_matches('\u{feff}'));
                ColumnInfo {
                    name,
                    unit,
                    ucd: String::new(),
                    numeric: true,
                }
            })
            .collect();
        if let Some(at) = columns.iter().position(|c| c.name.is_empty()) {
            return Err(TableError::File(format!(
                "column {} of the header has no name",
                at + 1
            )));
        }
        let mut seen_value = vec![false; columns.len()];
        while cells.ahead.len() < SAMPLE_ROWS {
            match cells.read_raw()? {
                None => break,
                Some((place, row)) => {
                    for (i, v) in row.iter().enumerate().take(columns.len()) {
                        if v.is_empty() {
                            continue;
                        }
                        seen_value[i] = true;
                        if v.parse::<f64>().is_err() {
                            columns[i].numeric = false;
                        }
                    }
                    cells.ahead.push_back((place, row));
                }
            }
        }
        // A column blank in every sampled row says nothing about its type.
        for (c, seen) in columns.iter_mut().zip(seen_value) {
            c.numeric &= seen;
        }
        cells.columns = columns;
        Ok(cells)
    }

    fn read_raw(&mut self) -> Result<Option<(Place, Vec<String>)>, TableError> {
        loop {
            let row = self.read_any()?;
            match &row {
                Some((_, r)) if r.first().is_some_and(|f| f.starts_with('#')) => continue,
                // Blank lines are not rows.
                Some((_, r)) if r.len() == 1 && r[0].is_empty() => continue,
                _ => return Ok(row),
            }
        }
    }

    fn read_any(&mut self) -> Result<Option<(Place, Vec<String>)>, TableError> {
        let line = self.reader.position().line() + 1;
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let line = self.record.position().map_or(line, ::csv::Position::line);
                Ok(Some((
                    Place::Line(line),
                    self.record.iter().map(str::to_string).collect(),
                )))
            }
            Err(e) => {
                let place = e.position().map_or(line, ::csv::Position::line);
                Err(TableError::row(
                    Place::Line(place),
                    format!("cannot be read as CSV: {}", e.kind_text()),
                ))
            }
        }
    }
}

trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for ::csv::Error {
    fn kind_text(&self) -> String {
        match self.kind() {
            ::csv::ErrorKind::Utf8 { .. } => "it is not UTF-8 text".into(),
            ::csv::ErrorKind::Io(e) => e.to_string(),
            _ => self.to_string(),
        }
    }
}

impl Cells for CsvCells {
    fn columns(&self) -> &[ColumnInfo] {
        &self.columns
    }

    fn next_row(&mut self) -> Option<Result<(Place, Vec<Cell>), TableError>> {
        let (place, row) = match self.ahead.pop_front() {
            Some(r) => r,
            None => match self.read_raw() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            },
        };
        let cells = row
            .into_iter()
            .map(|v| {
                if v.is_empty() {
                    Cell::Null
                } else {
                    Cell::Text(v)
                }
            })
            .collect();
        Some(Ok((place, cells)))
    }
}

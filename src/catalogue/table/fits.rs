//! A FITS binary table: the first BINTABLE extension, its columns from
//! TTYPEn/TUNITn/TUCDn, read a block of rows at a time.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;

use fitsio::hdu::{FitsHdu, HduInfo};
use fitsio::tables::{ColumnDataType, ConcreteColumnDescription};
use fitsio::FitsFile;

use super::{Cell, Cells, ColumnInfo, Place, TableError};

/// Rows read per column per block.
const BLOCK: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Float,
    Int,
    Text,
    /// Logical, bit and vector columns: not read.
    Other,
}

pub struct FitsCells {
    file: FitsFile,
    hdu: FitsHdu,
    columns: Vec<ColumnInfo>,
    kinds: Vec<Kind>,
    rows: usize,
    next: usize,
    block: VecDeque<Vec<Cell>>,
}

fn kind(d: &ConcreteColumnDescription) -> Kind {
    use ColumnDataType::*;
    if d.data_type.repeat != 1 && !matches!(d.data_type.typ, String | Text) {
        return Kind::Other;
    }
    match d.data_type.typ {
        Float | Double => Kind::Float,
        Byte | SignedByte | Short | UnsignedShort | Int | Long | UnsignedLong | LongLong => {
            Kind::Int
        }
        String | Text => Kind::Text,
        _ => Kind::Other,
    }
}

fn fits_error(e: impl std::fmt::Display) -> TableError {
    TableError::File(format!("cannot read the FITS table: {e}"))
}

impl FitsCells {
    pub fn open(path: &Path) -> Result<Self, TableError> {
        let mut file = FitsFile::open(path).map_err(fits_error)?;
        let mut found = None;
        // The primary HDU holds no table; take the first binary table after it.
        for n in 1..64 {
            match file.hdu(n) {
                Ok(h) if matches!(h.info, HduInfo::TableInfo { .. }) => {
                    found = Some(h);
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        let hdu = found.ok_or_else(|| {
            TableError::File("the FITS file has no binary table extension".into())
        })?;
        let HduInfo::TableInfo {
            column_descriptions,
            num_rows,
        } = &hdu.info
        else {
            unreachable!("chosen as a table above")
        };
        let mut columns = Vec::with_capacity(column_descriptions.len());
        let mut kinds = Vec::with_capacity(column_descriptions.len());
        for (i, d) in column_descriptions.iter().enumerate() {
            let mut key = |k: &str| -> String {
                hdu.read_key::<String>(&mut file, &format!("{k}{}", i + 1))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let k = kind(d);
            columns.push(ColumnInfo {
                name: d.name.trim().to_string(),
                unit: key("TUNIT"),
                ucd: key("TUCD"),
                numeric: matches!(k, Kind::Float | Kind::Int),
            });
            kinds.push(k);
        }
        let rows = *num_rows;
        Ok(FitsCells {
            file,
            hdu,
            columns,
            kinds,
            rows,
            next: 0,
            block: VecDeque::new(),
        })
    }

    fn read_block(&mut self) -> Result<(), TableError> {
        let range: Range<usize> = self.next..(self.next + BLOCK).min(self.rows);
        let n = range.len();
        let mut rows: Vec<Vec<Cell>> = (0..n)
            .map(|_| Vec::with_capacity(self.columns.len()))
            .collect();
        let HduInfo::TableInfo {
            column_descriptions,
            ..
        } = &self.hdu.info
        else {
            unreachable!("opened as a table")
        };
        for (i, kind) in self.kinds.iter().enumerate() {
            let name = &column_descriptions[i].name;
            match kind {
                Kind::Float => {
                    let v: Vec<f64> = self
                        .hdu
                        .read_col_range(&mut self.file, name, &range)
                        .map_err(fits_error)?;
                    for (row, x) in rows.iter_mut().zip(v) {
                        row.push(Cell::Num(x));
                    }
                }
                Kind::Int => {
                    let v: Vec<i64> = self
                        .hdu
                        .read_col_range(&mut self.file, name, &range)
                        .map_err(fits_error)?;
                    for (row, x) in rows.iter_mut().zip(v) {
                        row.push(Cell::Int(x));
                    }
                }
                Kind::Text => {
                    let v: Vec<String> = self
                        .hdu
                        .read_col_range(&mut self.file, name, &range)
                        .map_err(fits_error)?;
                    for (row, x) in rows.iter_mut().zip(v) {
                        let t = x.trim().to_string();
                        row.push(if t.is_empty() {
                            Cell::Null
                        } else {
                            Cell::Text(t)
                        });
                    }
                }
                Kind::Other => {
                    for row in rows.iter_mut() {
                        row.push(Cell::Null);
                    }
                }
            }
        }
        self.block.extend(rows);
        Ok(())
    }
}

impl Cells for FitsCells {
    fn columns(&self) -> &[ColumnInfo] {
        &self.columns
    }

    fn next_row(&mut self) -> Option<Result<(Place, Vec<Cell>), TableError>> {
        if self.block.is_empty() {
            if self.next >= self.rows {
                return None;
            }
            if let Err(e) = self.read_block() {
                // Reading stops at the first failure.
                self.next = self.rows;
                return Some(Err(e));
            }
        }
        let cells = self.block.pop_front()?;
        self.next += 1;
        Some(Ok((Place::Row(self.next as u64), cells)))
    }
}

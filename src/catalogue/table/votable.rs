//! VOTable (1.x): the first TABLE, its FIELDs (name, unit, UCD, datatype)
//! and its rows in TABLEDATA, read as a stream. BINARY, BINARY2 and FITS
//! serialisations are refused with a way out (astropy writes TABLEDATA by
//! default; `tabledata_format="tabledata"` asks for it).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{Cell, Cells, ColumnInfo, Place, TableError};

/// A cell longer than this is not a catalogue value.
const MAX_CELL: usize = 64 * 1024;

pub struct VoTableCells {
    reader: Reader<BufReader<File>>,
    buf: Vec<u8>,
    columns: Vec<ColumnInfo>,
    /// Each field's declared null value (`<VALUES null="...">`).
    nulls: Vec<Option<String>>,
    row: u64,
    done: bool,
}

fn local(name: &[u8]) -> &[u8] {
    // Elements may carry a namespace prefix (`vot:TD`).
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

fn attr(e: &BytesStart<'_>, key: &str) -> Result<Option<String>, TableError> {
    for a in e.attributes() {
        let a = a.map_err(|err| TableError::File(format!("malformed XML attribute: {err}")))?;
        if a.key.as_ref().eq_ignore_ascii_case(key.as_bytes()) {
            let v = a
                .unescape_value()
                .map_err(|err| TableError::File(format!("malformed XML attribute: {err}")))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn xml_error(reader: &Reader<BufReader<File>>, e: impl std::fmt::Display) -> TableError {
    TableError::File(format!(
        "malformed XML near byte {}: {e}",
        reader.buffer_position()
    ))
}

fn field(e: &BytesStart<'_>) -> Result<ColumnInfo, TableError> {
    let name = match attr(e, "name")? {
        Some(n) if !n.trim().is_empty() => n,
        _ => attr(e, "ID")?.unwrap_or_default(),
    };
    if name.trim().is_empty() {
        return Err(TableError::File("a FIELD has neither name nor ID".into()));
    }
    let datatype = attr(e, "datatype")?.unwrap_or_default();
    let array = attr(e, "arraysize")?.filter(|a| a.trim() != "1");
    let numeric = array.is_none()
        && matches!(
            datatype.as_str(),
            "double" | "float" | "int" | "long" | "short" | "unsignedByte"
        );
    Ok(ColumnInfo {
        name: name.trim().to_string(),
        unit: attr(e, "unit")?.unwrap_or_default(),
        ucd: attr(e, "ucd")?.unwrap_or_default(),
        numeric,
    })
}

impl VoTableCells {
    pub fn open(path: &Path) -> Result<Self, TableError> {
        let file = File::open(path)
            .map_err(|e| TableError::File(format!("cannot read {}: {e}", path.display())))?;
        let mut reader = Reader::from_reader(BufReader::new(file));
        reader.config_mut().trim_text(true);
        let mut buf = Vec::new();
        let mut columns = Vec::new();
        let mut nulls: Vec<Option<String>> = Vec::new();
        let mut in_table = false;
        let mut in_field = false;
        loop {
            buf.clear();
            let ev = reader
                .read_event_into(&mut buf)
                .map_err(|e| xml_error(&reader, e))?;
            let (e, empty) = match ev {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(e) => {
                    match local(e.name().as_ref()) {
                        b"FIELD" => in_field = false,
                        b"TABLE" if in_table => {
                            return Err(TableError::File("the VOTable's TABLE has no data".into()))
                        }
                        _ => {}
                    }
                    continue;
                }
                Event::Eof => {
                    return Err(TableError::File(if in_table {
                        "the VOTable ends before its TABLEDATA".into()
                    } else {
                        "the VOTable has no TABLE".into()
                    }))
                }
                _ => continue,
            };
            match local(e.name().as_ref()) {
                b"TABLE" => in_table = true,
                b"FIELD" if in_table => {
                    columns.push(field(&e)?);
                    nulls.push(None);
                    in_field = !empty;
                }
                b"VALUES" if in_field => {
                    if let Some(last) = nulls.last_mut() {
                        *last = attr(&e, "null")?;
                    }
                }
                b"TABLEDATA" if in_table => break,
                kind @ (b"BINARY" | b"BINARY2" | b"FITS") if in_table => {
                    return Err(TableError::File(format!(
                        "this VOTable's data is in {} serialisation; only TABLEDATA is read (astropy: votable.writeto(..., tabledata_format=\"tabledata\"))",
                        String::from_utf8_lossy(kind)
                    )));
                }
                _ => {}
            }
        }
        if columns.is_empty() {
            return Err(TableError::File("the VOTable's TABLE has no FIELD".into()));
        }
        Ok(VoTableCells {
            reader,
            buf,
            columns,
            nulls,
            row: 0,
            done: false,
        })
    }

    fn read_row(&mut self) -> Result<Option<Vec<Cell>>, TableError> {
        // Find the next TR, or the end of TABLEDATA.
        loop {
            self.buf.clear();
            let ev = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| xml_error(&self.reader, e))?;
            match ev {
                Event::Start(e) if local(e.name().as_ref()) == b"TR" => break,
                Event::Empty(e) if local(e.name().as_ref()) == b"TR" => {
                    return Ok(Some(Vec::new()))
                }
                Event::End(e) if local(e.name().as_ref()) == b"TABLEDATA" => return Ok(None),
                Event::Eof => {
                    return Err(TableError::File(
                        "the VOTable ends inside its TABLEDATA".into(),
                    ))
                }
                _ => {}
            }
        }
        let mut cells = Vec::with_capacity(self.columns.len());
        let mut text: Option<String> = None;
        loop {
            self.buf.clear();
            let ev = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| xml_error(&self.reader, e))?;
            match ev {
                Event::Start(e) if local(e.name().as_ref()) == b"TD" => text = Some(String::new()),
                Event::Empty(e) if local(e.name().as_ref()) == b"TD" => cells.push(Cell::Null),
                Event::Text(t) => {
                    if let Some(s) = text.as_mut() {
                        let piece = t.xml_content().map_err(|e| xml_error(&self.reader, e))?;
                        s.push_str(&piece);
                    }
                }
                Event::CData(t) => {
                    if let Some(s) = text.as_mut() {
                        let piece = t.decode().map_err(|e| xml_error(&self.reader, e))?;
                        s.push_str(&piece);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(s) = text.as_mut() {
                        if let Some(ch) = r
                            .resolve_char_ref()
                            .map_err(|e| xml_error(&self.reader, e))?
                        {
                            s.push(ch);
                        } else {
                            let name = r.decode().map_err(|e| xml_error(&self.reader, e))?;
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(v) => s.push_str(v),
                                None => {
                                    return Err(xml_error(
                                        &self.reader,
                                        format!("unknown entity &{name};"),
                                    ))
                                }
                            }
                        }
                    }
                }
                Event::End(e) => match local(e.name().as_ref()) {
                    b"TD" => {
                        let s = text.take().unwrap_or_default();
                        let i = cells.len();
                        let null = self
                            .nulls
                            .get(i)
                            .and_then(|n| n.as_deref())
                            .is_some_and(|n| n == s.trim());
                        cells.push(if s.trim().is_empty() || null {
                            Cell::Null
                        } else {
                            Cell::Text(s)
                        });
                    }
                    b"TR" => return Ok(Some(cells)),
                    _ => {}
                },
                Event::Eof => return Err(TableError::File("the VOTable ends inside a row".into())),
                _ => {}
            }
            if text.as_ref().is_some_and(|s| s.len() > MAX_CELL) {
                return Err(TableError::row(
                    Place::Row(self.row + 1),
                    format!("a cell is longer than {MAX_CELL} bytes"),
                ));
            }
        }
    }
}

impl Cells for VoTableCells {
    fn columns(&self) -> &[ColumnInfo] {
        &self.columns
    }

    fn next_row(&mut self) -> Option<Result<(Place, Vec<Cell>), TableError>> {
        if self.done {
            return None;
        }
        match self.read_row() {
            Ok(Some(cells)) => {
                self.row += 1;
                Some(Ok((Place::Row(self.row), cells)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

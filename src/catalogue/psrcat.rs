//! The ATNF pulsar catalogue's `psrcat.db`: a text file of records, each a
//! run of `KEY value [error [reference]]` lines, ended by a line starting
//! with `@-`. Lines starting with `#` are comments.
//!
//! What the apps this replaces got wrong, and this does not:
//! - keys are matched exactly, so `DMEPOCH` and `DM1` never overwrite `DM`;
//! - ELONG/ELAT are ecliptic (not galactic), and are used only when the
//!   record has no RAJ/DECJ;
//! - a period is taken from `P0`, else from `1/F0`;
//! - a record without a name or a position is skipped and reported; it does
//!   not stop the load.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::domain::frames::ecliptic_to_equatorial;
use crate::domain::sexagesimal::{parse_dec_dms, parse_ra_hms};
use crate::domain::SkyPos;

/// The longest name the `pulsars` table takes.
pub const MAX_NAME_CHARS: usize = 32;

/// One pulsar, as stored: J2000 position in degrees, period in seconds, DM in
/// cm⁻³ pc, flux density at 400 MHz in mJy.
#[derive(Debug, Clone, PartialEq)]
pub struct Pulsar {
    pub name: String,
    pub pos: SkyPos,
    pub period_s: Option<f64>,
    pub dm: Option<f64>,
    pub s400_mjy: Option<f64>,
}

/// A record that was left out, and why. `line` is 1-based: the line of the
/// offending value, or the record's first line when no single line is at
/// fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub name: Option<String>,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "line {} ({name}): {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// Reads and parses a `psrcat.db` file. Bytes that are not UTF-8 (an odd
/// reference string) are replaced rather than refused.
pub fn read(path: &Path) -> std::io::Result<(Vec<Pulsar>, Vec<Skipped>)> {
    let bytes = std::fs::read(path)?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

/// Parses the text of a `psrcat.db`. Every record ends up in exactly one of
/// the two lists; a name seen before is skipped as a duplicate.
pub fn parse(text: &str) -> (Vec<Pulsar>, Vec<Skipped>) {
    let mut pulsars = Vec::new();
    let mut skipped = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    let mut record = Record::default();

    let mut finish = |record: &mut Record| {
        let Some(start) = record.start else { return };
        match record.to_pulsar() {
            Ok(p) => match first_line_of.get(&p.name) {
                Some(&first) => skipped.push(Skipped {
                    line: start,
                    name: Some(p.name),
                    reason: format!("duplicate of the record at line {first}"),
                }),
                None => {
                    first_line_of.insert(p.name.clone(), start);
                    pulsars.push(p);
                }
            },
            Err(s) => skipped.push(s),
        }
        *record = Record::default();
    };

    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("@-") {
            finish(&mut record);
        } else if !line.is_empty() && !line.starts_with('#') {
            let mut words = line.split_whitespace();
            let key = words.next().unwrap_or_default();
            record.start.get_or_insert(i + 1);
            if let Some(value) = words.next() {
                // The first value for a key counts.
                record.fields.entry(key.to_string()).or_insert(Field {
                    value: value.to_string(),
                    line: i + 1,
                });
            }
        }
    }
    // The last record may lack its closing `@-` line.
    finish(&mut record);
    (pulsars, skipped)
}

#[derive(Debug)]
struct Field {
    value: String,
    line: usize,
}

#[derive(Debug, Default)]
struct Record {
    /// The line of the record's first key, once it has one.
    start: Option<usize>,
    fields: HashMap<String, Field>,
}

/// A finite number, or None for `*`, empty or unparsable text. Accepts the
/// Fortran `D` exponent some old entries use.
fn number(text: &str) -> Option<f64> {
    let v = text
        .parse::<f64>()
        .ok()
        .or_else(|| text.replace(['D', 'd'], "E").parse::<f64>().ok())?;
    v.is_finite().then_some(v)
}

impl Record {
    fn get(&self, key: &str) -> Option<&Field> {
        self.fields.get(key)
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|f| number(&f.value))
    }

    fn to_pulsar(&self) -> Result<Pulsar, Skipped> {
        let start = self.start.unwrap_or(0);
        let named = self.get("PSRJ").or_else(|| self.get("PSRB"));
        let name = named.map(|f| f.value.clone());
        let skip = |line: usize, reason: String| Skipped {
            line,
            name: name.clone(),
            reason,
        };
        let Some(named) = named else {
            return Err(skip(start, "no name (neither PSRJ nor PSRB)".into()));
        };
        if named.value.chars().count() > MAX_NAME_CHARS {
            return Err(skip(
                named.line,
                format!("name is longer than {MAX_NAME_CHARS} characters"),
            ));
        }
        let pos = self
            .position()
            .map_err(|(line, reason)| skip(if line == 0 { start } else { line }, reason))?;
        let period_s = self.number("P0").filter(|p| *p > 0.0).or_else(|| {
            self.number("F0")
                .filter(|f| *f > 0.0)
                .map(|f| 1.0 / f)
                .filter(|p| p.is_finite())
        });
        Ok(Pulsar {
            name: named.value.clone(),
            pos,
            period_s,
            dm: self.number("DM"),
            s400_mjy: self.number("S400"),
        })
    }

    /// RAJ/DECJ when both are there, else ELONG/ELAT (J2000 ecliptic).
    /// The error carries the line at fault (0: the whole record).
    fn position(&self) -> Result<SkyPos, (usize, String)> {
        let value = |key: &str| self.get(key).filter(|f| f.value != "*");
        if let (Some(ra), Some(dec)) = (value("RAJ"), value("DECJ")) {
            let ra_deg = parse_ra_hms(&ra.value)
                .map_err(|e| (ra.line, format!("RAJ {:?} {e}", ra.value)))?;
            let dec_deg = parse_dec_dms(&dec.value)
                .map_err(|e| (dec.line, format!("DECJ {:?} {e}", dec.value)))?;
            return Ok(SkyPos {
                ra: ra_deg,
                dec: dec_deg,
            });
        }
        if let (Some(lon), Some(lat)) = (value("ELONG"), value("ELAT")) {
            let elong = number(&lon.value)
                .ok_or_else(|| (lon.line, format!("ELONG {:?} is not a number", lon.value)))?;
            let elat = number(&lat.value)
                .filter(|b| (-90.0..=90.0).contains(b))
                .ok_or_else(|| {
                    (
                        lat.line,
                        format!("ELAT {:?} is not a latitude in [-90, 90]", lat.value),
                    )
                })?;
            return Ok(ecliptic_to_equatorial(elong, elat));
        }
        let have: Vec<&str> = ["RAJ", "DECJ", "ELONG", "ELAT"]
            .into_iter()
            .filter(|k| value(k).is_some())
            .collect();
        Err((
            0,
            if have.is_empty() {
                "no position (neither RAJ/DECJ nor ELONG/ELAT)".into()
            } else {
                format!(
                    "no position: has only {}, needs RAJ and DECJ or ELONG and ELAT",
                    have.join(" and ")
                )
            },
        ))
    }
}

/// The pulsars as a reference catalogue like any other (`psrcat`), so they
/// are matched, filtered on and associated as RACS or Gaia are.
pub fn as_catalogue(
    pulsars: &[Pulsar],
) -> (Vec<super::table::KeptColumn>, Vec<super::table::Source>) {
    use super::table::{KeptColumn, Source};
    let columns = [("P0", "s"), ("DM", "pc cm-3"), ("S400", "mJy")]
        .map(|(name, unit)| KeptColumn {
            name: name.into(),
            unit: unit.into(),
        })
        .to_vec();
    let sources = pulsars
        .iter()
        .map(|p| Source {
            name: p.name.clone(),
            pos: p.pos,
            vals: vec![p.period_s, p.dm, p.s400_mjy],
        })
        .collect();
    (columns, sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::frames::angular_separation_deg;

    const SAMPLE: &str = include_str!("../../tests/fixtures/psrcat_sample.db");

    fn by_name<'a>(ps: &'a [Pulsar], name: &str) -> &'a Pulsar {
        ps.iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    fn hms(h: f64, m: f64, s: f64) -> f64 {
        (h + m / 60.0 + s / 3600.0) * 15.0
    }

    fn dms(sign: f64, d: f64, m: f64, s: f64) -> f64 {
        sign * (d + m / 60.0 + s / 3600.0)
    }

    #[test]
    fn the_sample_loads_every_record_with_a_name_and_a_position() {
        let (ps, skipped) = parse(SAMPLE);
        let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "J0002+6216",
                "J0014+4746",
                "J0024-7204C",
                "J0024-7204D",
                "J0030+0451",
                "J0033+57",
                "J0437-4715",
                "J0534+2200",
                "J0835-4510",
                "J2241-5236",
            ]
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let s = &skipped[0];
        assert_eq!(s.name.as_deref(), Some("J1819-1458"));
        assert!(s.reason.starts_with("no position"), "{s}");
        // The line of the record's PSRJ.
        let line = SAMPLE.lines().nth(s.line - 1).unwrap();
        assert!(
            line.starts_with("PSRJ") && line.contains("J1819-1458"),
            "{line}"
        );
        assert!(s
            .to_string()
            .starts_with(&format!("line {} (J1819-1458): no position", s.line)));
    }

    #[test]
    fn raj_decj_are_hours_and_degrees() {
        let (ps, _) = parse(SAMPLE);
        let p = by_name(&ps, "J0437-4715");
        assert!((p.pos.ra.degrees() - hms(4.0, 37.0, 15.896_173_7)).abs() < 1e-9);
        assert!((p.pos.dec.degrees() - dms(-1.0, 47.0, 15.0, 9.110_714)).abs() < 1e-9);
        assert_eq!(p.period_s, Some(0.005_757_451_924_362_137));
        assert_eq!(p.dm, Some(2.644_76));
        assert_eq!(p.s400_mjy, Some(550.0));
        // An unsigned DECJ is north.
        let p = by_name(&ps, "J0014+4746");
        assert!((p.pos.dec.degrees() - dms(1.0, 47.0, 46.0, 33.4)).abs() < 1e-9);
        // Low-precision positions: hours and minutes, whole degrees.
        let p = by_name(&ps, "J0033+57");
        assert!((p.pos.ra.degrees() - hms(0.0, 33.0, 0.0)).abs() < 1e-9);
        assert_eq!(p.pos.dec.degrees(), 57.0);
    }

    #[test]
    fn ecliptic_coordinates_are_converted_as_ecliptic() {
        let (ps, _) = parse(SAMPLE);
        let p = by_name(&ps, "J0030+0451");
        // psrcat's own equatorial position for it: 00:30:27.428 +04:51:39.72.
        let want = SkyPos::new(hms(0.0, 30.0, 27.428), dms(1.0, 4.0, 51.0, 39.72)).unwrap();
        assert!(angular_separation_deg(p.pos, want) < 1e-4, "{:?}", p.pos);
        // Read as galactic l/b (the old apps' bug) it would land near
        // RA 270.03°, Dec −20.53°, about 99° away.
        let wrong = SkyPos::new(270.03, -20.53).unwrap();
        assert!(angular_separation_deg(p.pos, wrong) > 90.0);
    }

    #[test]
    fn period_from_p0_else_from_f0() {
        let (ps, _) = parse(SAMPLE);
        assert_eq!(by_name(&ps, "J0534+2200").period_s, Some(0.033_392_412_3));
        let p = by_name(&ps, "J0002+6216");
        assert!((p.period_s.unwrap() - 1.0 / 8.668_247_827_4).abs() < 1e-15);
        assert_eq!((p.dm, p.s400_mjy), (None, None));
        let p = by_name(&ps, "J0030+0451");
        assert!((p.period_s.unwrap() - 1.0 / 205.530_699_125_36).abs() < 1e-15);
    }

    #[test]
    fn dmepoch_and_dm1_do_not_overwrite_dm() {
        assert!(SAMPLE.contains("DMEPOCH") && SAMPLE.contains("DM1 "));
        let (ps, _) = parse(SAMPLE);
        assert_eq!(by_name(&ps, "J0534+2200").dm, Some(56.771_18));
        assert_eq!(by_name(&ps, "J0030+0451").dm, Some(4.332_52));
    }

    #[test]
    fn psrj_is_the_name_even_after_psrb() {
        let (ps, _) = parse(SAMPLE);
        assert!(ps.iter().all(|p| p.name.starts_with('J')));
        let (ps, _) = parse("PSRB B1951+32\nRAJ 19:52:58.2\nDECJ +32:52:40.5\n@-\n");
        assert_eq!(ps[0].name, "B1951+32");
    }

    #[test]
    fn the_last_record_needs_no_separator() {
        assert!(!SAMPLE.trim_end().ends_with('-'));
        let (ps, _) = parse(SAMPLE);
        assert_eq!(ps.last().unwrap().name, "J2241-5236");
    }

    #[test]
    fn bad_records_are_skipped_with_their_line_and_reason() {
        let text = "\
#CATALOGUE test
PSRJ J0001+0001
RAJ 00:01:00
DECJ +00:01:00
@-----
RAJ 01:00:00
DECJ +01:00:00
@-----
PSRJ J0002+0002
RAJ 00:02:00
@-----
PSRJ J0003+0003
RAJ 00:61:00
DECJ +00:03:00
@-----
PSRJ J0004+0004
ELONG 10
ELAT 95
@-----
PSRJ J0001+0001
RAJ 00:01:00
DECJ +00:01:00
@-----
PSRJ J0005+0005
RAJ *
DECJ *
ELONG *
ELAT *
@-----
PSRJ J0123456789012345678901234567890123
RAJ 00:01:00
DECJ +00:01:00
@-----
@-----

PSRJ J0006+0006
RAJ 00:06:00
DECJ -00:06:00
";
        let (ps, skipped) = parse(text);
        let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["J0001+0001", "J0006+0006"]);
        assert_eq!(ps[1].pos.dec.degrees(), -0.1);
        let got: Vec<(usize, Option<&str>, &str)> = skipped
            .iter()
            .map(|s| (s.line, s.name.as_deref(), s.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (6, None, "no name (neither PSRJ nor PSRB)"),
                (
                    9,
                    Some("J0002+0002"),
                    "no position: has only RAJ, needs RAJ and DECJ or ELONG and ELAT"
                ),
                (
                    13,
                    Some("J0003+0003"),
                    "RAJ \"00:61:00\" minutes must be below 60 (got 61)"
                ),
                (
                    18,
                    Some("J0004+0004"),
                    "ELAT \"95\" is not a latitude in [-90, 90]"
                ),
                (20, Some("J0001+0001"), "duplicate of the record at line 2"),
                (
                    24,
                    Some("J0005+0005"),
                    "no position (neither RAJ/DECJ nor ELONG/ELAT)"
                ),
                (
                    30,
                    Some("J0123456789012345678901234567890123"),
                    "name is longer than 32 characters"
                ),
            ]
        );
    }

    #[test]
    fn raj_decj_win_over_elong_elat() {
        // Deliberately inconsistent, to see which is used.
        let (ps, _) = parse("PSRJ J1\nELONG 100\nELAT 10\nRAJ 12:00:00\nDECJ -30:00:00\n");
        assert_eq!(ps[0].pos, SkyPos::new(180.0, -30.0).unwrap());
        // Half an equatorial position falls back to the ecliptic one.
        let (ps, _) = parse("PSRJ J1\nRAJ 12:00:00\nELONG 0\nELAT 0\n");
        assert!(angular_separation_deg(ps[0].pos, SkyPos::new(0.0, 0.0).unwrap()) < 1e-9);
    }

    #[test]
    fn optional_values_that_are_missing_or_garbage_are_none() {
        let text = "PSRJ J1\nRAJ 1\nDECJ 1\nP0 *\nF0 0\nDM abc\nS400 nan\n@-\n\
                    PSRJ J2\nRAJ 1\nDECJ 1\nP0 -1\nF0 2.5\nDM 1.5D+1\nS400 inf\n@-\n\
                    PSRJ J3\nRAJ 1\nDECJ 1\nP0\nDM 3 0.2 ref\n";
        let (ps, skipped) = parse(text);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(
            (ps[0].period_s, ps[0].dm, ps[0].s400_mjy),
            (None, None, None)
        );
        assert_eq!(
            (ps[1].period_s, ps[1].dm, ps[1].s400_mjy),
            (Some(0.4), Some(15.0), None)
        );
        // A key without a value counts as absent; error and reference columns
        // are ignored.
        assert_eq!((ps[2].period_s, ps[2].dm), (None, Some(3.0)));
    }

    #[test]
    fn crlf_and_leading_blank_lines() {
        let text = "\r\n# c\r\nPSRJ J1\r\nRAJ 01:00:00\r\nDECJ +02:00:00\r\n@-\r\n";
        let (ps, skipped) = parse(text);
        assert!(skipped.is_empty());
        assert_eq!(ps[0].pos, SkyPos::new(15.0, 2.0).unwrap());
    }

    #[test]
    fn an_empty_file_has_nothing() {
        assert_eq!(parse(""), (vec![], vec![]));
        assert_eq!(parse("# only\n@-----\n\n"), (vec![], vec![]));
    }
}

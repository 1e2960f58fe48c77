//! Sexagesimal angles: RA in hours (`12:34:56.7`, `12 34 56.7`,
//! `12h34m56.7s`) and Dec in degrees (`-45:12:34`, `-45d12m34s`,
//! `+05°12′34″`), read into `Ra`/`Dec` and written back out.
//!
//! The sign of a declination belongs to the whole angle, not to the degrees
//! field: `-00:30:00` is half a degree south, not half a degree north.

use super::sky::{Dec, Ra, SkyPos};

/// Which angle a sexagesimal string holds; decides the unit letters and the
/// range of the first field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hours,
    Degrees,
}

impl Kind {
    const FIELD_NAMES: [&'static str; 3] = ["", "minutes", "seconds"];

    fn first_field(self) -> &'static str {
        match self {
            Kind::Hours => "hours",
            Kind::Degrees => "degrees",
        }
    }

    fn other(self) -> Kind {
        match self {
            Kind::Hours => Kind::Degrees,
            Kind::Degrees => Kind::Hours,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Kind::Hours => " (RA is written in hours: 12h34m56.7s or 12:34:56.7)",
            Kind::Degrees => " (Dec is written in degrees: -45d12m34s or -45:12:34)",
        }
    }

    /// The field (0, 1 or 2) a unit marker closes, if `c` is one.
    fn unit_field(self, c: char) -> Option<usize> {
        match (self, c.to_ascii_lowercase()) {
            (Kind::Hours, 'h' | 'ʰ') => Some(0),
            (Kind::Hours, 'm' | 'ᵐ') => Some(1),
            (Kind::Hours, 's' | 'ˢ') => Some(2),
            (Kind::Degrees, 'd' | '°' | 'º') => Some(0),
            (Kind::Degrees, 'm' | '\'' | '′' | '’') => Some(1),
            (Kind::Degrees, 's' | '"' | '″' | '”') => Some(2),
            _ => None,
        }
    }
}

/// A sexagesimal string split into its sign and up to three fields.
#[derive(Debug)]
struct Parsed {
    negative: bool,
    /// The first field plus minutes/60 plus seconds/3600, unsigned.
    magnitude: f64,
    first: f64,
}

fn is_sign(c: char) -> Option<bool> {
    match c {
        '-' | '−' | '–' => Some(true),
        '+' => Some(false),
        _ => None,
    }
}

fn parse_sexagesimal(input: &str, kind: Kind) -> Result<Parsed, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("is empty".into());
    }
    let mut chars = s.chars().peekable();
    let negative = match chars.peek().copied().and_then(is_sign) {
        Some(neg) => {
            chars.next();
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            neg
        }
        None => false,
    };

    let mut fields: Vec<String> = Vec::with_capacity(3);
    loop {
        if fields.len() == 3 {
            let rest: String = chars.collect();
            return Err(format!(
                "has more than three fields: {rest:?} follows the seconds"
            ));
        }
        let mut number = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_digit() || *c == '.') {
            number.push(c);
        }
        if number.is_empty() {
            return Err(match chars.peek() {
                Some(c) => format!("has {c:?} where a number was expected"),
                None => "ends where a number was expected".into(),
            });
        }
        fields.push(number);
        let index = fields.len() - 1;

        let mut spaced = false;
        while chars.next_if(|c| c.is_whitespace()).is_some() {
            spaced = true;
        }
        let Some(&c) = chars.peek() else { break };
        if c == ':' {
            chars.next();
        } else if let Some(unit) = kind.unit_field(c) {
            chars.next();
            // Two apostrophes are a common way to type ″.
            let unit = if c == '\'' && chars.next_if_eq(&'\'').is_some() {
                2
            } else {
                unit
            };
            if unit != index {
                let field = match index {
                    0 => kind.first_field(),
                    i => Kind::FIELD_NAMES[i],
                };
                return Err(format!(
                    "has the unit {c:?} on the {field} field{}",
                    kind.hint()
                ));
            }
        } else if kind.other().unit_field(c).is_some() {
            return Err(format!("has the unit {c:?}{}", kind.hint()));
        } else if !spaced {
            return Err(format!("has an unexpected {c:?}"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            if c == ':' {
                return Err("ends with ':'".into());
            }
            break;
        }
    }

    let last = fields.len() - 1;
    let mut values = [0.0; 3];
    for (i, f) in fields.iter().enumerate() {
        let name = match i {
            0 => kind.first_field(),
            i => Kind::FIELD_NAMES[i],
        };
        if f.contains('.') && i != last {
            return Err(format!(
                "only the last field may have a decimal point, not the {name}"
            ));
        }
        values[i] = f
            .parse::<f64>()
            .map_err(|_| format!("{name} {f:?} are not a number"))?;
    }
    if fields.len() > 1 && values[1] >= 60.0 {
        return Err(format!("minutes must be below 60 (got {})", fields[1]));
    }
    if fields.len() > 2 && values[2] >= 60.0 {
        return Err(format!("seconds must be below 60 (got {})", fields[2]));
    }
    Ok(Parsed {
        negative,
        magnitude: values[0] + values[1] / 60.0 + values[2] / 3600.0,
        first: values[0],
    })
}

/// Reads a right ascension written in hours: `12:34:56.7`, `12 34 56.7`,
/// `12h34m56.7s`, or with fewer fields (`12:34`, `12.5`).
pub fn parse_ra_hms(input: &str) -> Result<Ra, String> {
    let p = parse_sexagesimal(input, Kind::Hours)?;
    if p.negative {
        return Err("RA cannot be negative".into());
    }
    if p.first >= 24.0 || p.magnitude >= 24.0 {
        return Err(format!("hours must be below 24 (got {})", p.first));
    }
    // Below 24 h, so only rounding can reach 360°; that wraps to 0.
    Ra::from_degrees(p.magnitude * 15.0)
}

/// Reads a declination written in degrees: `-45:12:34`, `-45 12 34.5`,
/// `-45d12m34s`, `+05°12′34″` (also `'` and `"`), or with fewer fields.
pub fn parse_dec_dms(input: &str) -> Result<Dec, String> {
    let p = parse_sexagesimal(input, Kind::Degrees)?;
    if p.first > 90.0 || p.magnitude > 90.0 {
        return Err("declination must be between -90 and +90 degrees".into());
    }
    let deg = if p.negative {
        -p.magnitude
    } else {
        p.magnitude
    };
    // `+ 0.0` turns −0 into +0.
    Dec::new(deg + 0.0)
}

/// Splits `value` (≥ 0, in units of the last field times 10^decimals, already
/// rounded) into three fields and the fraction.
fn split_ticks(ticks: u64, scale: u64) -> (u64, u64, u64, u64) {
    let first = ticks / (3600 * scale);
    let rem = ticks % (3600 * scale);
    (
        first,
        rem / (60 * scale),
        rem % (60 * scale) / scale,
        rem % scale,
    )
}

fn join(first: u64, min: u64, sec: u64, frac: u64, decimals: usize) -> String {
    if decimals == 0 {
        format!("{first:02}:{min:02}:{sec:02}")
    } else {
        format!("{first:02}:{min:02}:{sec:02}.{frac:0decimals$}")
    }
}

/// At most this many decimals of seconds (beyond it an f64 of degrees has no
/// more to give).
const MAX_DECIMALS: usize = 9;

/// `12:34:56.70` for `decimals = 2`. Rounds once, on the whole angle, so
/// 59.999 s never prints as `60.00` and 23:59:59.999 prints as `00:00:00.00`.
pub fn format_ra_hms(ra: Ra, decimals: usize) -> String {
    let decimals = decimals.min(MAX_DECIMALS);
    let scale = 10u64.pow(decimals as u32);
    let day = 24 * 3600 * scale;
    // 240 seconds of time per degree.
    let mut ticks = (ra.degrees() * 240.0 * scale as f64).round() as u64;
    if ticks >= day {
        ticks -= day;
    }
    let (h, m, s, frac) = split_ticks(ticks, scale);
    join(h, m, s, frac, decimals)
}

/// `-45:12:34.0` for `decimals = 1`; always signed (`+05:…`). A value that
/// rounds to zero prints as `+00:00:00.0`.
pub fn format_dec_dms(dec: Dec, decimals: usize) -> String {
    let decimals = decimals.min(MAX_DECIMALS);
    let scale = 10u64.pow(decimals as u32);
    let deg = dec.degrees();
    let ticks = (deg.abs() * 3600.0 * scale as f64).round() as u64;
    let sign = if deg < 0.0 && ticks > 0 { '-' } else { '+' };
    let (d, m, s, frac) = split_ticks(ticks, scale);
    format!("{sign}{}", join(d, m, s, frac, decimals))
}

/// What is wrong with a typed position, naming the half that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("enter a position, e.g. \"188.7 -45.2\" or \"12:34:56.7 -45:12:34\"")]
    Empty,
    #[error("{0}")]
    Shape(String),
    #[error("RA {input:?} {reason}")]
    Ra { input: String, reason: String },
    #[error("Dec {input:?} {reason}")]
    Dec { input: String, reason: String },
}

const SHAPE_HINT: &str = "give RA and Dec separated by a space or a comma, \
     e.g. \"188.7 -45.2\" or \"12:34:56.7 -45:12:34\"";

/// A plain decimal number (degrees) rather than a sexagesimal angle.
fn looks_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'))
}

fn parse_ra_half(s: &str) -> Result<Ra, String> {
    if !looks_decimal(s) {
        return parse_ra_hms(s);
    }
    let v: f64 = s
        .parse()
        .map_err(|_| "is not a number of degrees".to_string())?;
    if v < 0.0 {
        Err("cannot be negative".into())
    } else if v >= 360.0 {
        Err("must be below 360 degrees (for hours write 12:34:56 or 12h34m56s)".into())
    } else {
        Ra::new(v + 0.0).map_err(|_| "is not a number of degrees".into())
    }
}

fn parse_dec_half(s: &str) -> Result<Dec, String> {
    if !looks_decimal(s) {
        return parse_dec_dms(s);
    }
    let v: f64 = s
        .parse()
        .map_err(|_| "is not a number of degrees".to_string())?;
    Dec::new(v + 0.0).map_err(|_| "must be between -90 and +90 degrees".into())
}

/// Splits a position into its RA and Dec text.
fn split_position(s: &str) -> Result<(String, String), PositionError> {
    let shape = || PositionError::Shape(SHAPE_HINT.into());
    if s.contains(',') {
        let mut parts = s.split(',');
        let (ra, dec) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if parts.next().is_some() {
            return Err(PositionError::Shape(format!(
                "expected one comma between RA and Dec; {SHAPE_HINT}"
            )));
        }
        let (ra, dec) = (ra.trim(), dec.trim());
        if ra.is_empty() || dec.is_empty() {
            return Err(shape());
        }
        return Ok((ra.into(), dec.into()));
    }
    let tokens: Vec<&str> = s.split_whitespace().collect();
    let starts_signed = |t: &&str| t.chars().next().and_then(is_sign).is_some();
    let cut = match tokens.len() {
        0 => return Err(PositionError::Empty),
        1 => {
            // `12:34:56.7-45:12:34`: the Dec starts at a sign that is not an
            // exponent's.
            let mut prev = ' ';
            let at = s.char_indices().skip(1).find_map(|(i, c)| {
                let found = is_sign(c).is_some() && !matches!(prev, 'e' | 'E');
                prev = c;
                found.then_some(i)
            });
            let Some(at) = at else { return Err(shape()) };
            return Ok((s[..at].into(), s[at..].into()));
        }
        2 => 1,
        n => {
            let signed: Vec<usize> = (1..n).filter(|&i| starts_signed(&tokens[i])).collect();
            match signed.as_slice() {
                [i] => *i,
                [] if n % 2 == 0 => n / 2,
                _ => return Err(shape()),
            }
        }
    };
    Ok((tokens[..cut].join(" "), tokens[cut..].join(" ")))
}

/// Reads a position typed into a search box. Decimal numbers are degrees for
/// both RA and Dec (`188.7 -45.2`, `188.7, -45.2`); sexagesimal RA is hours
/// (`12:34:56.7 -45:12:34`, `12h34m56.7s -45d12m34s`). A decimal RA must be
/// in [0, 360): 400 is more likely a typo than a wrap.
pub fn parse_position(input: &str) -> Result<SkyPos, PositionError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(PositionError::Empty);
    }
    let (ra_text, dec_text) = split_position(s)?;
    let ra = parse_ra_half(&ra_text).map_err(|reason| PositionError::Ra {
        input: ra_text.clone(),
        reason,
    })?;
    let dec = parse_dec_half(&dec_text).map_err(|reason| PositionError::Dec {
        input: dec_text.clone(),
        reason,
    })?;
    Ok(SkyPos { ra, dec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra(s: &str) -> f64 {
        parse_ra_hms(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .degrees()
    }

    fn dec(s: &str) -> f64 {
        parse_dec_dms(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .degrees()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    const EXPECTED_RA: f64 = (12.0 + 34.0 / 60.0 + 56.7 / 3600.0) * 15.0;
    const EXPECTED_DEC: f64 = -(45.0 + 12.0 / 60.0 + 34.0 / 3600.0);

    #[test]
    fn ra_in_every_spelling() {
        for s in [
            "12:34:56.7",
            "12 34 56.7",
            "12h34m56.7s",
            "12h 34m 56.7s",
            "12H34M56.7S",
            "  12:34:56.7  ",
            "12h34m56.7",
            "+12:34:56.7",
        ] {
            assert!(close(ra(s), EXPECTED_RA, 1e-9), "{s}: {}", ra(s));
        }
        assert!(close(ra("12:34"), (12.0 + 34.0 / 60.0) * 15.0, 1e-12));
        assert!(close(ra("12"), 180.0, 1e-12));
        assert!(close(ra("12.5"), 187.5, 1e-12));
        assert_eq!(ra("00:00:00"), 0.0);
    }

    #[test]
    fn dec_in_every_spelling() {
        for s in [
            "-45:12:34",
            "-45 12 34",
            "-45d12m34s",
            "-45° 12′ 34″",
            "-45°12'34\"",
            "-45°12'34''",
            "−45:12:34",
        ] {
            assert!(close(dec(s), EXPECTED_DEC, 1e-9), "{s}: {}", dec(s));
        }
        let north = 5.0 + 12.0 / 60.0 + 34.0 / 3600.0;
        for s in ["+05°12′34″", "05:12:34", "+05 12 34", "5d12m34s"] {
            assert!(close(dec(s), north, 1e-9), "{s}");
        }
        assert!(close(
            dec("-45 12 34.5"),
            -(45.0 + 12.0 / 60.0 + 34.5 / 3600.0),
            1e-9
        ));
        assert_eq!(dec("+57"), 57.0);
        assert!(close(dec("+08:10"), 8.0 + 10.0 / 60.0, 1e-12));
    }

    #[test]
    fn negative_zero_degrees_keeps_its_sign() {
        assert_eq!(dec("-00:30:00"), -0.5);
        assert_eq!(dec("-0:30"), -0.5);
        assert_eq!(dec("-00d30m00s"), -0.5);
        assert!(close(dec("-00:00:36"), -0.01, 1e-12));
        assert_eq!(dec("+00:30:00"), 0.5);
        // Zero is zero, not −0.
        assert!(dec("-00:00:00").is_sign_positive());
    }

    #[test]
    fn poles_and_limits() {
        assert_eq!(dec("+90:00:00"), 90.0);
        assert_eq!(dec("-90:00:00"), -90.0);
        assert_eq!(dec("-90"), -90.0);
        assert!(parse_dec_dms("90:00:01").is_err());
        assert!(parse_dec_dms("-91").is_err());
        assert!(close(ra("23:59:59.999"), 360.0 - 0.001 / 240.0, 1e-9));
        assert!(parse_ra_hms("24:00:00").is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: [(&str, bool, &str); 18] = [
            ("12h56s", true, "unit 's' on the minutes field"),
            ("-45d12s", false, "unit 's' on the minutes field"),
            ("12:61:00", true, "minutes must be below 60"),
            ("12:30:60", true, "seconds must be below 60"),
            ("24:00:00", true, "hours must be below 24"),
            ("-01:00:00", true, "cannot be negative"),
            ("12.5:30", true, "decimal point"),
            ("12:34:56:78", true, "more than three fields"),
            ("", true, "empty"),
            ("12:34:", true, "ends with ':'"),
            ("12:x4", true, "'x'"),
            ("12d34m", true, "hours"),
            ("1.2.3", true, "not a number"),
            ("-45:60:00", false, "minutes must be below 60"),
            ("+45:00:60.0", false, "seconds must be below 60"),
            ("95:00:00", false, "between -90 and +90"),
            ("-45h12m", false, "degrees"),
            ("abc", false, "'a'"),
        ];
        for (input, is_ra, want) in cases {
            let err = if is_ra {
                parse_ra_hms(input).unwrap_err()
            } else {
                parse_dec_dms(input).unwrap_err()
            };
            assert!(err.contains(want), "{input:?}: {err:?} lacks {want:?}");
        }
    }

    fn ra_of(deg: f64) -> Ra {
        Ra::new(deg).unwrap()
    }

    fn dec_of(deg: f64) -> Dec {
        Dec::new(deg).unwrap()
    }

    #[test]
    fn formatting() {
        assert_eq!(format_ra_hms(ra_of(EXPECTED_RA), 2), "12:34:56.70");
        assert_eq!(format_ra_hms(ra_of(EXPECTED_RA), 0), "12:34:57");
        assert_eq!(format_ra_hms(ra_of(0.0), 1), "00:00:00.0");
        assert_eq!(format_dec_dms(dec_of(EXPECTED_DEC), 1), "-45:12:34.0");
        assert_eq!(format_dec_dms(dec_of(5.5), 0), "+05:30:00");
        assert_eq!(format_dec_dms(dec_of(-0.5), 1), "-00:30:00.0");
        assert_eq!(format_dec_dms(dec_of(90.0), 2), "+90:00:00.00");
        assert_eq!(format_dec_dms(dec_of(-90.0), 2), "-90:00:00.00");
        assert_eq!(format_dec_dms(dec_of(0.0), 1), "+00:00:00.0");
        assert_eq!(format_dec_dms(dec_of(-1e-9), 1), "+00:00:00.0");
    }

    #[test]
    fn rounding_carries_instead_of_printing_sixty() {
        // 12:34:59.999 → 12:35:00.00, 12:59:59.999 → 13:00:00.00
        let r = ra("12:34:59.999");
        assert_eq!(format_ra_hms(ra_of(r), 2), "12:35:00.00");
        assert_eq!(format_ra_hms(ra_of(ra("12:59:59.999")), 2), "13:00:00.00");
        // Just below 24 h wraps to 0 h rather than printing 24:00:00.
        assert_eq!(format_ra_hms(ra_of(ra("23:59:59.999")), 2), "00:00:00.00");
        assert_eq!(format_ra_hms(ra_of(ra("23:59:59.999")), 3), "23:59:59.999");
        assert_eq!(
            format_dec_dms(dec_of(dec("-45:59:59.96")), 1),
            "-46:00:00.0"
        );
        assert_eq!(
            format_dec_dms(dec_of(dec("+89:59:59.99")), 1),
            "+90:00:00.0"
        );
        assert_eq!(
            format_dec_dms(dec_of(dec("-00:00:59.99")), 1),
            "-00:01:00.0"
        );
    }

    #[test]
    fn decimals_are_capped() {
        assert_eq!(
            format_ra_hms(ra_of(EXPECTED_RA), 20).len(),
            "12:34:56.".len() + 9
        );
    }

    /// Property-style: every point of a grid survives format → parse within
    /// the printed precision, and formatting the parsed value is stable.
    #[test]
    fn round_trips_over_a_grid() {
        for i in 0..=2000 {
            let deg = 360.0 * f64::from(i) / 2000.0 * 0.999_999;
            let r = ra_of(deg);
            for decimals in [0usize, 2, 4] {
                let text = format_ra_hms(r, decimals);
                let back = parse_ra_hms(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                // Half a unit of the last printed digit, in degrees of RA.
                let tol = 0.5 * 10f64.powi(-(decimals as i32)) / 240.0 + 1e-9;
                let diff = (back.degrees() - deg).abs();
                assert!(diff.min(360.0 - diff) <= tol, "{deg} → {text}");
                assert_eq!(format_ra_hms(back, decimals), text);
            }
        }
        for i in 0..=2000 {
            let deg = -90.0 + 180.0 * f64::from(i) / 2000.0;
            let d = dec_of(deg);
            for decimals in [0usize, 1, 3] {
                let text = format_dec_dms(d, decimals);
                let back = parse_dec_dms(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                let tol = 0.5 * 10f64.powi(-(decimals as i32)) / 3600.0 + 1e-9;
                assert!((back.degrees() - deg).abs() <= tol, "{deg} → {text}");
                assert_eq!(format_dec_dms(back, decimals), text);
            }
        }
    }

    #[test]
    fn ra_near_zero_and_twenty_four_hours() {
        for (deg, want) in [
            (0.0, "00:00:00.00"),
            (1e-7, "00:00:00.00"),
            (0.004_166_667, "00:00:01.00"),
            (359.995_833_333, "23:59:59.00"),
            (359.999_999_99, "00:00:00.00"),
        ] {
            assert_eq!(format_ra_hms(ra_of(deg), 2), want, "{deg}");
        }
        assert!(ra("23:59:59.9999999") < 360.0);
    }

    fn pos(s: &str) -> (f64, f64) {
        let p = parse_position(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (p.ra.degrees(), p.dec.degrees())
    }

    #[test]
    fn positions_in_every_spelling() {
        for s in [
            "188.7 -45.2",
            "188.7, -45.2",
            "188.7,-45.2",
            " 188.7   -45.2 ",
            "188.7-45.2",
        ] {
            let (r, d) = pos(s);
            assert!(close(r, 188.7, 1e-12) && close(d, -45.2, 1e-12), "{s}");
        }
        for s in [
            "12:34:56.7 -45:12:34",
            "12h34m56.7s -45d12m34s",
            "12 34 56.7 -45 12 34",
            "12h 34m 56.7s -45d 12m 34s",
            "12:34:56.7, -45:12:34",
            "12:34:56.7-45:12:34",
            "12:34:56.7 −45°12′34″",
        ] {
            let (r, d) = pos(s);
            assert!(close(r, EXPECTED_RA, 1e-9), "{s}: ra {r}");
            assert!(close(d, EXPECTED_DEC, 1e-9), "{s}: dec {d}");
        }
        let (r, d) = pos("12 34 56.7 45 12 34");
        assert!(close(r, EXPECTED_RA, 1e-9) && close(d, -EXPECTED_DEC, 1e-9));
        assert_eq!(pos("0 0"), (0.0, 0.0));
        assert_eq!(pos("10 +20"), (10.0, 20.0));
        // Mixed: decimal degrees for one half, sexagesimal for the other.
        let (r, d) = pos("188.7 -00:30:00");
        assert!(close(r, 188.7, 1e-12) && d == -0.5);
        assert!(pos("-0 0").0.is_sign_positive());
    }

    #[test]
    fn position_errors_say_which_half_and_why() {
        let ra_err = |s: &str| match parse_position(s) {
            Err(PositionError::Ra { reason, .. }) => reason,
            other => panic!("{s}: {other:?}"),
        };
        let dec_err = |s: &str| match parse_position(s) {
            Err(PositionError::Dec { reason, .. }) => reason,
            other => panic!("{s}: {other:?}"),
        };
        assert!(ra_err("360 10").contains("below 360"));
        assert!(ra_err("400.5, 10").contains("below 360"));
        assert!(ra_err("-10 10").contains("negative"));
        assert!(ra_err("12:61:00 -45:00:00").contains("minutes must be below 60"));
        assert!(ra_err("25:00:00 10").contains("hours must be below 24"));
        assert!(ra_err("1.2.3 10").contains("not a number"));
        assert!(dec_err("10 95").contains("between -90 and +90"));
        assert!(dec_err("12:00:00 -45:61:00").contains("minutes must be below 60"));
        assert!(dec_err("10 abc").contains("'a'"));
        assert_eq!(parse_position("   "), Err(PositionError::Empty));
        for s in ["188.7", "1 2 3", "1,2,3", ", 5", "12:34:56"] {
            assert!(
                matches!(parse_position(s), Err(PositionError::Shape(_))),
                "{s}: {:?}",
                parse_position(s)
            );
        }
        let msg = parse_position("12:61:00 -45:00:00")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("RA \"12:61:00\""), "{msg}");
        let msg = parse_position("10 95").unwrap_err().to_string();
        assert!(msg.starts_with("Dec \"95\""), "{msg}");
    }
}

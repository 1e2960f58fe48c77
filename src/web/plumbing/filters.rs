//! Formatting helpers the templates call.

use time::OffsetDateTime;

/// A time, however many references deep templates hand it over.
pub trait AsTime {
    fn time(&self) -> OffsetDateTime;
}

impl AsTime for OffsetDateTime {
    fn time(&self) -> OffsetDateTime {
        *self
    }
}

impl<T: AsTime + ?Sized> AsTime for &T {
    fn time(&self) -> OffsetDateTime {
        (**self).time()
    }
}

/// `2024-05-01 12:34:56 UTC`, for observation times.
pub fn utc_second(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2024-05-01 12:34 UTC`: minutes are precise enough for bookkeeping.
pub fn utc_minute(t: impl AsTime) -> String {
    let t = t.time().to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A count with thin spaces between thousands, as astronomers write them.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3 + 1);
    if n < 0 {
        out.push('−');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod thousands_tests {
    #[test]
    fn groups_of_three() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1\u{2009}000");
        assert_eq!(super::thousands(1234567), "1\u{2009}234\u{2009}567");
        assert_eq!(super::thousands(-12000), "−12\u{2009}000");
    }
}

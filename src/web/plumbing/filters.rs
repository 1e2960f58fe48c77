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

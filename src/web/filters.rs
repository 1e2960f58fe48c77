//! Formatting helpers the templates call.

use time::OffsetDateTime;

/// `2024-05-01 12:34 UTC`: minutes are precise enough for bookkeeping.
pub fn utc_minute(t: impl std::borrow::Borrow<OffsetDateTime>) -> String {
    let t = t.borrow().to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

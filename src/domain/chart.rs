//! How a reviewer is looking at a light curve: which stretch of time and
//! which flux scale. Parsed once from the query string; a [`ChartView`] in
//! hand is a valid one.

use serde::Deserialize;

use crate::domain::Problem;

/// The flux axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FluxScale {
    #[default]
    Linear,
    Log,
}

impl FluxScale {
    pub fn as_str(self) -> &'static str {
        match self {
            FluxScale::Linear => "linear",
            FluxScale::Log => "log",
        }
    }

    pub fn other(self) -> FluxScale {
        match self {
            FluxScale::Linear => FluxScale::Log,
            FluxScale::Log => FluxScale::Linear,
        }
    }
}

/// A stretch of time in Unix milliseconds, `from < to`, both within the
/// years 1 to 9999 (what a light curve can hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    from_ms: i64,
    to_ms: i64,
}

/// 0001-01-01 and 9999-12-31 in Unix milliseconds.
const EARLIEST_MS: i64 = -62_135_596_800_000;
const LATEST_MS: i64 = 253_402_300_799_000;

impl TimeWindow {
    pub fn new(from_ms: i64, to_ms: i64) -> Result<Self, Problem> {
        if !(EARLIEST_MS..=LATEST_MS).contains(&from_ms)
            || !(EARLIEST_MS..=LATEST_MS).contains(&to_ms)
        {
            return Err(Problem::new(
                "from",
                "The time range must lie between the years 1 and 9999.",
            ));
        }
        if from_ms >= to_ms {
            return Err(Problem::new(
                "to",
                "The time range must end after it starts (from < to, in Unix milliseconds).",
            ));
        }
        Ok(TimeWindow { from_ms, to_ms })
    }

    pub fn from_ms(self) -> i64 {
        self.from_ms
    }

    pub fn to_ms(self) -> i64 {
        self.to_ms
    }
}

/// What part of a light curve is drawn, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChartView {
    /// `None`: the whole curve.
    pub window: Option<TimeWindow>,
    pub flux: FluxScale,
}

/// The query string as it arrives: `?from=…&to=…&flux=log`.
#[derive(Debug, Default, Deserialize)]
pub struct ChartParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub flux: Option<String>,
}

impl ChartParams {
    pub fn parse(&self) -> Result<ChartView, Problem> {
        let flux = match self.flux.as_deref().map(str::trim) {
            None | Some("") | Some("linear") => FluxScale::Linear,
            Some("log") => FluxScale::Log,
            Some(_) => return Err(Problem::new("flux", "flux must be \"linear\" or \"log\".")),
        };
        let ms = |name: &str, v: &str| -> Result<i64, Problem> {
            v.trim().parse::<i64>().map_err(|_| {
                Problem::new(
                    name,
                    format!("{name} must be a whole number of milliseconds since 1970-01-01 UTC."),
                )
            })
        };
        let window = match (self.from.as_deref(), self.to.as_deref()) {
            (None, None) => None,
            (Some(f), Some(t)) if f.trim().is_empty() && t.trim().is_empty() => None,
            (Some(f), Some(t)) => Some(TimeWindow::new(ms("from", f)?, ms("to", t)?)?),
            _ => return Err(Problem::new("from", "Give both from and to, or neither.")),
        };
        Ok(ChartView { window, flux })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        from: Option<&str>,
        to: Option<&str>,
        flux: Option<&str>,
    ) -> Result<ChartView, Problem> {
        ChartParams {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            flux: flux.map(str::to_string),
        }
        .parse()
    }

    #[test]
    fn whole_and_linear_by_default() {
        assert_eq!(parse(None, None, None).unwrap(), ChartView::default());
        assert_eq!(
            parse(Some(""), Some(" "), Some("")).unwrap(),
            ChartView::default()
        );
    }

    #[test]
    fn a_window_and_log() {
        let v = parse(Some("1000"), Some("2000"), Some("log")).unwrap();
        assert_eq!(v.flux, FluxScale::Log);
        let w = v.window.unwrap();
        assert_eq!((w.from_ms(), w.to_ms()), (1000, 2000));
    }

    #[test]
    fn refuses_what_cannot_be_drawn() {
        for (f, t, s) in [
            (Some("2000"), Some("1000"), None),
            (Some("1000"), Some("1000"), None),
            (Some("1000"), None, None),
            (None, Some("1000"), None),
            (Some("1e3"), Some("2000"), None),
            (Some("x"), Some("2000"), None),
            (Some("-99999999999999999"), Some("0"), None),
            (Some("0"), Some("9223372036854775807"), None),
            (None, None, Some("Log")),
            (None, None, Some("sqrt")),
        ] {
            assert!(parse(f, t, s).is_err(), "{f:?} {t:?} {s:?}");
        }
    }
}

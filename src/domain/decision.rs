//! What the decision screen reads from a project's definition: which values
//! of a metric are good, and how long a verdict key is ignored after a new
//! candidate is painted. The upload API and the admin page check them with
//! the same rules, so neither can store what the other would refuse.

use std::fmt;

/// The verdict-key guard's bounds, in milliseconds (the database checks the
/// same). Two seconds is already longer than anyone waits on purpose.
pub const KEY_GUARD_MS: std::ops::RangeInclusive<i32> = 0..=2000;

/// A whole number of milliseconds within [`KEY_GUARD_MS`].
pub fn check_key_guard(ms: i64) -> Result<i32, String> {
    match i32::try_from(ms) {
        Ok(ms) if KEY_GUARD_MS.contains(&ms) => Ok(ms),
        _ => Err(format!(
            "{ms} is out of range: the verdict-key guard is {} to {} milliseconds",
            KEY_GUARD_MS.start(),
            KEY_GUARD_MS.end()
        )),
    }
}

/// Which end of a [`GoodRange`] a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Min,
    Max,
}

impl Bound {
    /// The field name, as the upload API and the admin form spell it.
    pub fn key(self) -> &'static str {
        match self {
            Bound::Min => "min",
            Bound::Max => "max",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GoodRangeError {
    NotFinite(Bound, f64),
    Reversed { min: f64, max: f64 },
}

impl GoodRangeError {
    /// The bound a form or an API answer names. A reversed range names the
    /// min: one field to point at, and it is the bound read first.
    pub fn bound(&self) -> Bound {
        match self {
            GoodRangeError::NotFinite(b, _) => *b,
            GoodRangeError::Reversed { .. } => Bound::Min,
        }
    }
}

impl fmt::Display for GoodRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoodRangeError::NotFinite(b, x) => write!(
                f,
                "{x} is not allowed: a good {} is a finite number (leave it out for no bound)",
                b.key()
            ),
            GoodRangeError::Reversed { min, max } => {
                write!(f, "the good min, {min}, is above the good max, {max}")
            }
        }
    }
}

/// The values of a metric a project calls good: at least `min`, at most
/// `max`, either bound optional. Both finite, `min ≤ max`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GoodRange {
    min: Option<f64>,
    max: Option<f64>,
}

impl GoodRange {
    pub const NONE: GoodRange = GoodRange {
        min: None,
        max: None,
    };

    pub fn new(min: Option<f64>, max: Option<f64>) -> Result<Self, GoodRangeError> {
        for (b, x) in [(Bound::Min, min), (Bound::Max, max)] {
            if let Some(x) = x.filter(|x| !x.is_finite()) {
                return Err(GoodRangeError::NotFinite(b, x));
            }
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                return Err(GoodRangeError::Reversed { min: lo, max: hi });
            }
        }
        Ok(Self { min, max })
    }

    pub fn min(&self) -> Option<f64> {
        self.min
    }

    pub fn max(&self) -> Option<f64> {
        self.max
    }

    pub fn is_none(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// Both bounds inclusive: "good from 5 σ" includes 5 σ.
    ///
    /// NaN and the infinities are `Unjudged`, not `Outside`: a pipeline
    /// writes them for a value it could not compute (a fit that failed, a
    /// division by a zero deep flux), so colouring one as bad, or +inf as
    /// good, would claim a judgement the number cannot support.
    pub fn standing(&self, value: Option<f64>) -> Standing {
        let Some(x) = value.filter(|x| x.is_finite()) else {
            return Standing::Unjudged;
        };
        if self.is_none() {
            return Standing::Unjudged;
        }
        let above_min = self.min.is_none_or(|lo| x >= lo);
        let below_max = self.max.is_none_or(|hi| x <= hi);
        if above_min && below_max {
            Standing::Good
        } else {
            Standing::Outside
        }
    }
}

/// How a metric value stands against its project's good range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Good,
    Outside,
    /// No range to judge by, or no finite value to judge.
    Unjudged,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: Option<f64>, max: Option<f64>) -> GoodRange {
        GoodRange::new(min, max).unwrap()
    }

    #[test]
    fn bounds_are_inclusive() {
        let r = range(Some(5.0), Some(10.0));
        assert_eq!(r.standing(Some(5.0)), Standing::Good);
        assert_eq!(r.standing(Some(10.0)), Standing::Good);
        assert_eq!(r.standing(Some(7.5)), Standing::Good);
        assert_eq!(r.standing(Some(4.999)), Standing::Outside);
        assert_eq!(r.standing(Some(10.001)), Standing::Outside);
        let point = range(Some(2.0), Some(2.0));
        assert_eq!(point.standing(Some(2.0)), Standing::Good);
        assert_eq!(point.standing(Some(2.1)), Standing::Outside);
    }

    #[test]
    fn one_bound_is_enough() {
        let at_least = range(Some(5.0), None);
        assert_eq!(at_least.standing(Some(1e300)), Standing::Good);
        assert_eq!(at_least.standing(Some(-5.0)), Standing::Outside);
        let at_most = range(None, Some(2.0));
        assert_eq!(at_most.standing(Some(-1e300)), Standing::Good);
        assert_eq!(at_most.standing(Some(2.0)), Standing::Good);
        assert_eq!(at_most.standing(Some(2.5)), Standing::Outside);
    }

    #[test]
    fn without_a_range_or_a_finite_value_nothing_is_judged() {
        assert_eq!(GoodRange::NONE.standing(Some(1.0)), Standing::Unjudged);
        let r = range(Some(5.0), None);
        assert_eq!(r.standing(None), Standing::Unjudged);
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(r.standing(Some(x)), Standing::Unjudged, "{x}");
            assert_eq!(
                range(Some(-1.0), Some(1.0)).standing(Some(x)),
                Standing::Unjudged,
                "{x}"
            );
        }
    }

    #[test]
    fn a_range_is_finite_and_in_order() {
        assert_eq!(GoodRange::new(None, None), Ok(GoodRange::NONE));
        assert!(GoodRange::new(Some(-0.0), Some(0.0)).is_ok());
        assert_eq!(
            GoodRange::new(Some(3.0), Some(1.0)),
            Err(GoodRangeError::Reversed { min: 3.0, max: 1.0 })
        );
        assert!(matches!(
            GoodRange::new(Some(f64::NAN), None),
            Err(GoodRangeError::NotFinite(Bound::Min, _))
        ));
        assert_eq!(
            GoodRange::new(Some(1.0), Some(f64::INFINITY)),
            Err(GoodRangeError::NotFinite(Bound::Max, f64::INFINITY))
        );
        let e = GoodRange::new(Some(3.0), Some(1.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("above"), "{e}");
    }

    #[test]
    fn the_key_guard_is_0_to_2000_ms() {
        assert_eq!(check_key_guard(0), Ok(0));
        assert_eq!(check_key_guard(2000), Ok(2000));
        assert!(check_key_guard(-1).is_err());
        assert!(check_key_guard(2001).is_err());
        assert!(check_key_guard(i64::MAX).is_err());
    }
}

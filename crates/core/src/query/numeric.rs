//! Numeric range helpers shared by the index back ends: a range written with float
//! bounds, applied to integer-typed values, must select the same integers everywhere.

use std::ops::Bound;

/// The integer lower bound that selects the same integers as a float lower bound.
pub fn integer_lower(bound: Bound<f64>) -> Bound<i64> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(clamp_to_i64(v.ceil())),
        Bound::Excluded(v) if v.fract() == 0.0 => Bound::Excluded(clamp_to_i64(v)),
        Bound::Excluded(v) => Bound::Included(clamp_to_i64(v.ceil())),
    }
}

/// The integer upper bound that selects the same integers as a float upper bound.
pub fn integer_upper(bound: Bound<f64>) -> Bound<i64> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(clamp_to_i64(v.floor())),
        Bound::Excluded(v) if v.fract() == 0.0 => Bound::Excluded(clamp_to_i64(v)),
        Bound::Excluded(v) => Bound::Included(clamp_to_i64(v.floor())),
    }
}

fn clamp_to_i64(value: f64) -> i64 {
    value.clamp(i64::MIN as f64, i64::MAX as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_integer_bounds() {
        assert_eq!(integer_lower(Bound::Included(2.5)), Bound::Included(3));
        assert_eq!(integer_lower(Bound::Excluded(2.0)), Bound::Excluded(2));
        assert_eq!(integer_lower(Bound::Excluded(2.5)), Bound::Included(3));
        assert_eq!(integer_upper(Bound::Included(2.5)), Bound::Included(2));
        assert_eq!(integer_upper(Bound::Excluded(3.0)), Bound::Excluded(3));
        assert_eq!(integer_upper(Bound::Unbounded), Bound::Unbounded);
        assert_eq!(
            integer_upper(Bound::Included(1e300)),
            Bound::Included(i64::MAX)
        );
    }
}

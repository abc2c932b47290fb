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

/// The integer a query value names: written as one, or as a number without a
/// fraction that a double holds exactly (`500.0`, `5e2`). Engines ask integer-typed
/// values for it, so `status:500.0` and a bare `500.0` find 500 everywhere.
pub fn exact_integer(text: &str) -> Option<i64> {
    if let Ok(integer) = text.parse::<i64>() {
        return Some(integer);
    }
    let number = text.parse::<f64>().ok()?;
    (number.fract() == 0.0 && number.abs() < 9.0e15).then_some(number as i64)
}

fn clamp_to_i64(value: f64) -> i64 {
    value.clamp(i64::MIN as f64, i64::MAX as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_exact_integer() {
        assert_eq!(exact_integer("500"), Some(500));
        assert_eq!(exact_integer("500.0"), Some(500));
        assert_eq!(exact_integer("5e2"), Some(500));
        assert_eq!(exact_integer("-7"), Some(-7));
        assert_eq!(exact_integer("500.5"), None);
        assert_eq!(exact_integer("1e20"), None);
        assert_eq!(exact_integer("abc"), None);
    }

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

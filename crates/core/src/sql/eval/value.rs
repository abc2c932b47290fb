//! The values the expression evaluator computes with, and how they compare, hash,
//! convert and print.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use serde_json::Value as Json;

use crate::record::format_time_ns;

/// One SQL value. `Time` is nanoseconds since the epoch (UTC).
#[derive(Debug, Clone)]
pub enum Val {
    /// SQL NULL: missing, or a function over a value of the wrong type.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A string.
    Str(String),
    /// A timestamp in nanoseconds since the epoch.
    Time(i64),
}

impl Val {
    /// Reads a record field's JSON value; objects and arrays become their JSON text.
    pub fn from_json(value: &Json) -> Val {
        match value {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => n.as_f64().map(Val::Float).unwrap_or(Val::Null),
            },
            Json::String(s) => Val::Str(s.clone()),
            other => Val::Str(other.to_string()),
        }
    }

    /// The value as JSON for a result row; times print as RFC 3339.
    pub fn to_json(&self) -> Json {
        match self {
            Val::Null => Json::Null,
            Val::Bool(b) => Json::Bool(*b),
            Val::Int(i) => Json::from(*i),
            Val::Float(x) => serde_json::Number::from_f64(*x)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Val::Str(s) => Json::String(s.clone()),
            Val::Time(t) => Json::String(format_time_ns(*t)),
        }
    }

    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// The value as a number, if it is one or a string holding one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(x) => Some(*x),
            Val::Str(s) => s.trim().parse::<f64>().ok(),
            Val::Bool(_) | Val::Null | Val::Time(_) => None,
        }
    }

    /// The value as an integer: integers, whole doubles and strings holding one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Some(*x as i64),
            Val::Str(s) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| Val::Float(s.trim().parse::<f64>().ok()?).as_i64()),
            _ => None,
        }
    }

    /// The value as text: strings as they are, numbers and booleans printed, times
    /// as RFC 3339. `None` for NULL.
    pub fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Val::Null => None,
            Val::Str(s) => Some(Cow::Borrowed(s)),
            Val::Bool(b) => Some(Cow::Owned(b.to_string())),
            Val::Int(i) => Some(Cow::Owned(i.to_string())),
            Val::Float(x) => Some(Cow::Owned(format_float(*x))),
            Val::Time(t) => Some(Cow::Owned(format_time_ns(*t))),
        }
    }

    /// Bytes the value takes in memory, for budgets.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Val>()
            + match self {
                Val::Str(s) => s.len(),
                _ => 0,
            }
    }

    /// The column type name of a result table.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Int(_) => "long",
            Val::Float(_) => "double",
            Val::Str(_) => "string",
            Val::Time(_) => "timestamp",
        }
    }
}

/// Prints a double as SQL engines do: whole numbers without a fraction.
pub fn format_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// SQL comparison of two non-null values: numbers with numbers (a string holding
/// a number compares as one), strings with strings, times with times. `None` when
/// the types cannot be compared or either side is NULL.
pub fn sql_compare(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Null, _) | (_, Val::Null) => None,
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Str(s)) => Some(x.cmp(&super::functions::parse_time_text(s)?)),
        (Val::Str(s), Val::Time(y)) => Some(super::functions::parse_time_text(s)?.cmp(y)),
        (Val::Int(_) | Val::Float(_) | Val::Str(_), Val::Int(_) | Val::Float(_) | Val::Str(_)) => {
            a.as_f64()?.partial_cmp(&b.as_f64()?)
        }
        _ => None,
    }
}

/// A total order for ORDER BY and window ordering: NULLs first (as the existing
/// group ordering), then booleans, numbers, times and strings.
pub fn sort_compare(a: &Val, b: &Val) -> Ordering {
    fn rank(value: &Val) -> u8 {
        match value {
            Val::Null => 0,
            Val::Bool(_) => 1,
            Val::Int(_) | Val::Float(_) => 2,
            Val::Time(_) => 3,
            Val::Str(_) => 4,
        }
    }
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Time(x), Val::Time(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Group keys: equal when the same value of the same kind (integers and whole
/// doubles are one number).
impl PartialEq for Val {
    fn eq(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::Null, Val::Null) => true,
            (Val::Bool(x), Val::Bool(y)) => x == y,
            (Val::Str(x), Val::Str(y)) => x == y,
            (Val::Time(x), Val::Time(y)) => x == y,
            (Val::Int(x), Val::Int(y)) => x == y,
            (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
                number_bits(self) == number_bits(other)
            }
            _ => false,
        }
    }
}

impl Eq for Val {}

impl Hash for Val {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Val::Null => 0u8.hash(state),
            Val::Bool(b) => {
                1u8.hash(state);
                b.hash(state);
            }
            Val::Int(_) | Val::Float(_) => {
                2u8.hash(state);
                number_bits(self).hash(state);
            }
            Val::Str(s) => {
                3u8.hash(state);
                s.hash(state);
            }
            Val::Time(t) => {
                4u8.hash(state);
                t.hash(state);
            }
        }
    }
}

/// One representation per number: whole values as their integer, others as the
/// bits of the double (with -0 as 0).
fn number_bits(value: &Val) -> (bool, u64) {
    match value {
        Val::Int(i) => (true, *i as u64),
        Val::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => (true, *x as i64 as u64),
        Val::Float(x) => (false, (x + 0.0).to_bits()),
        _ => (false, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers_compare_across_kinds_and_strings_holding_numbers() {
        assert_eq!(
            sql_compare(&Val::Int(2), &Val::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            sql_compare(&Val::Str("10".into()), &Val::Int(9)),
            Some(Ordering::Greater)
        );
        assert_eq!(sql_compare(&Val::Str("x".into()), &Val::Int(9)), None);
        assert_eq!(sql_compare(&Val::Null, &Val::Int(9)), None);
        assert_eq!(Val::Int(3), Val::Float(3.0));
        assert_ne!(Val::Int(3), Val::Str("3".into()));
    }
}

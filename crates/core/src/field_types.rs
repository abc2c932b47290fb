//! Declared field types (a pool's `field_hints`) applied to record values, the same
//! way by every index engine.
//!
//! A value is converted to its field's declared type when that loses nothing: the
//! string `"404"` of a `long` field becomes 404, the number 42 of a `keyword` field
//! becomes `"42"`, `"TRUE"` of a `bool` field becomes `true`. A value that does not
//! fit (`"n/a"` in a `long` field) is a conflict: it is never dropped nor refused, but
//! kept as a string in the field's text (the overflow), where `field:n/a` and bare
//! terms still find it; typed queries (ranges, numeric terms) do not see it. Fields
//! without a hint keep the type of each value as sent.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ingest::parse_time_text;
use crate::record::{FieldValue, Record};
use crate::routing::FieldType;

/// A value after its declared type was applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    /// The value has (or was converted to) the declared type.
    Fits(FieldValue),
    /// The value cannot have the declared type; it is kept as this string.
    Overflow(String),
}

/// Applies `hint` to `value`.
pub fn apply_hint(value: &FieldValue, hint: FieldType) -> Typed {
    let overflow = || Typed::Overflow(value.as_text());
    match (hint, value) {
        (FieldType::Long, FieldValue::Long(_)) => Typed::Fits(value.clone()),
        (FieldType::Long, FieldValue::Double(x)) => {
            // Integral doubles below 2^53 convert exactly.
            if x.fract() == 0.0 && x.abs() < 9.0e15 {
                Typed::Fits(FieldValue::Long(*x as i64))
            } else {
                overflow()
            }
        }
        (FieldType::Long, FieldValue::Str(text)) => text
            .trim()
            .parse::<i64>()
            .map_or_else(|_| overflow(), |n| Typed::Fits(FieldValue::Long(n))),
        (FieldType::Double, FieldValue::Double(_)) => Typed::Fits(value.clone()),
        (FieldType::Double, FieldValue::Long(n)) => Typed::Fits(FieldValue::Double(*n as f64)),
        (FieldType::Double, FieldValue::Str(text)) => match text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Typed::Fits(FieldValue::Double(x)),
            _ => overflow(),
        },
        (FieldType::Bool, FieldValue::Bool(_)) => Typed::Fits(value.clone()),
        (FieldType::Bool, FieldValue::Str(text)) => match text.trim().to_ascii_lowercase().as_str()
        {
            "true" => Typed::Fits(FieldValue::Bool(true)),
            "false" => Typed::Fits(FieldValue::Bool(false)),
            _ => overflow(),
        },
        (FieldType::Text | FieldType::Keyword, _) => Typed::Fits(FieldValue::Str(value.as_text())),
        (FieldType::Ip, _) => {
            let text = value.as_text();
            if text.trim().parse::<IpAddr>().is_ok() {
                Typed::Fits(FieldValue::Str(text.trim().to_string()))
            } else {
                Typed::Overflow(text)
            }
        }
        (FieldType::Timestamp, _) => {
            if parse_time_text(&value.as_text()).is_ok() {
                Typed::Fits(value.clone())
            } else {
                overflow()
            }
        }
        (FieldType::Long | FieldType::Double | FieldType::Bool, _) => overflow(),
    }
}

/// Returns the record with declared types applied: converted values replace the
/// originals and conflicts become strings. Engines that keep one typed copy per value
/// (the embedded index) index this; the hit still shows the record as sent.
pub fn apply_hints(record: &Record, hints: &BTreeMap<String, FieldType>) -> Record {
    if hints.is_empty() {
        return record.clone();
    }
    let mut typed = record.clone();
    for (name, value) in typed.fields.iter_mut() {
        if let Some(hint) = hints.get(name) {
            *value = match apply_hint(value, *hint) {
                Typed::Fits(converted) => converted,
                Typed::Overflow(text) => FieldValue::Str(text),
            };
        }
    }
    typed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_apply_hint_converts_or_overflows() {
        let s = |t: &str| FieldValue::Str(t.to_string());
        let cases = [
            (
                FieldType::Long,
                s("404"),
                Typed::Fits(FieldValue::Long(404)),
            ),
            (FieldType::Long, s("n/a"), Typed::Overflow("n/a".into())),
            (
                FieldType::Long,
                FieldValue::Double(2.0),
                Typed::Fits(FieldValue::Long(2)),
            ),
            (
                FieldType::Long,
                FieldValue::Double(2.5),
                Typed::Overflow("2.5".into()),
            ),
            (
                FieldType::Double,
                FieldValue::Long(3),
                Typed::Fits(FieldValue::Double(3.0)),
            ),
            (
                FieldType::Double,
                s("1e3"),
                Typed::Fits(FieldValue::Double(1000.0)),
            ),
            (
                FieldType::Bool,
                s("TRUE"),
                Typed::Fits(FieldValue::Bool(true)),
            ),
            (
                FieldType::Bool,
                FieldValue::Long(1),
                Typed::Overflow("1".into()),
            ),
            (
                FieldType::Keyword,
                FieldValue::Long(42),
                Typed::Fits(s("42")),
            ),
            (FieldType::Ip, s("10.0.0.1"), Typed::Fits(s("10.0.0.1"))),
            (
                FieldType::Ip,
                s("localhost"),
                Typed::Overflow("localhost".into()),
            ),
            (
                FieldType::Timestamp,
                s("soon"),
                Typed::Overflow("soon".into()),
            ),
            (
                FieldType::Timestamp,
                s("2023-11-14T22:13:20Z"),
                Typed::Fits(s("2023-11-14T22:13:20Z")),
            ),
        ];
        for (hint, value, expected) in cases {
            assert_eq!(apply_hint(&value, hint), expected, "{hint:?} {value:?}");
        }
    }
}

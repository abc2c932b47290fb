//! Declared field types (a pool's `field_hints`) applied to record values, the same
//! way by every index engine.
//!
//! A value is converted to its field's declared type when that loses nothing: the
//! string `"404"` of a `long` field becomes 404, the number 42 of a `keyword` field
//! becomes `"42"`, `"TRUE"` of a `bool` field becomes `true`. A value that does not
//! fit (`"n/a"` in a `long` field) is a conflict: it is never dropped nor refused, but
//! kept as a string in the field's text (the overflow), where `field:n/a` and bare
//! terms still find it; typed queries (ranges, numeric terms) do not see it.
//!
//! A field without a hint takes the type of the first value the pool ever saw for it
//! ([`infer_type`]: integer → `long`, fraction → `double`, bool → `bool`, string →
//! `text`; `message` is always `text`), and that type is then fixed exactly like a
//! hint. The types are control-plane state: loghub finds the new ones of a batch
//! ([`learn_types`]) and fixes them in the metadata store before it indexes the
//! batch (the first writer wins), and the routing snapshot carries them to every
//! service ([`PoolRoute::learned_types`]). Indexing, search, SQL, the live tail and
//! alerts all type values with [`PoolRoute::field_types`]: the learned types
//! overlaid by the hints, so a hint always wins.
//!
//! [`PoolRoute::learned_types`]: crate::routing::PoolRoute::learned_types
//! [`PoolRoute::field_types`]: crate::routing::PoolRoute::field_types

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

/// Whether `value` already has the representation of `hint`, so that
/// [`apply_hint`] answers it unchanged: callers on the indexing path can borrow it
/// instead of taking the copy.
pub fn fits_unchanged(hint: FieldType, value: &FieldValue) -> bool {
    matches!(
        (hint, value),
        (FieldType::Text | FieldType::Keyword, FieldValue::Str(_))
            | (FieldType::Long, FieldValue::Long(_))
            | (FieldType::Double, FieldValue::Double(_))
            | (FieldType::Bool, FieldValue::Bool(_))
    )
}

/// Applies `hint` to `value`.
pub fn apply_hint(value: &FieldValue, hint: FieldType) -> Typed {
    if fits_unchanged(hint, value) {
        return Typed::Fits(value.clone());
    }
    let overflow = || Typed::Overflow(value.as_text());
    match (hint, value) {
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
        (FieldType::Double, FieldValue::Long(n)) => Typed::Fits(FieldValue::Double(*n as f64)),
        (FieldType::Double, FieldValue::Str(text)) => match text.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Typed::Fits(FieldValue::Double(x)),
            _ => overflow(),
        },
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

/// The field that holds the raw line: always full text, whatever its first value.
pub use crate::record::MESSAGE_FIELD;

/// The type field `name` takes from its first value when no hint declares one.
pub fn infer_type(name: &str, value: &FieldValue) -> FieldType {
    if name == MESSAGE_FIELD {
        return FieldType::Text;
    }
    // A pattern id is matched and grouped whole, never searched by its words.
    if name == crate::patterns::PATTERN_FIELD {
        return FieldType::Keyword;
    }
    match value {
        FieldValue::Long(_) => FieldType::Long,
        FieldValue::Double(_) => FieldType::Double,
        FieldValue::Bool(_) => FieldType::Bool,
        FieldValue::Str(_) => FieldType::Text,
    }
}

/// The types `records` teach a pool that already knows `hints` and `learned`: every
/// field with neither gets the type of its first value in `records` order. Returns
/// only the new entries (empty when nothing is new), which the caller persists.
pub fn learn_types<'a>(
    hints: &BTreeMap<String, FieldType>,
    learned: &BTreeMap<String, FieldType>,
    records: impl IntoIterator<Item = &'a Record>,
) -> BTreeMap<String, FieldType> {
    let mut new = BTreeMap::new();
    for record in records {
        for (name, value) in &record.fields {
            if hints.contains_key(name) || learned.contains_key(name) || new.contains_key(name) {
                continue;
            }
            new.insert(name.clone(), infer_type(name, value));
        }
    }
    new
}

/// The types a pool indexes and searches with: learned types overlaid by the hints.
pub fn effective_types(
    hints: &BTreeMap<String, FieldType>,
    learned: &BTreeMap<String, FieldType>,
) -> BTreeMap<String, FieldType> {
    let mut types = learned.clone();
    types.extend(hints.iter().map(|(name, hint)| (name.clone(), *hint)));
    types
}

/// An IP address as one number: IPv4 as its IPv4-mapped IPv6 address, so both
/// families order in one space (as Elasticsearch's `ip` type does).
pub fn ip_number(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The inclusive range of addresses an `ip` query value means: one address
/// (`10.0.0.1`) or a CIDR block (`10.0.0.0/24`, `2001:db8::/32`). `None` when the
/// value is neither.
pub fn ip_query_range(text: &str) -> Option<(u128, u128)> {
    let text = text.trim();
    let Some((address, prefix)) = text.split_once('/') else {
        let number = ip_number(text.parse::<IpAddr>().ok()?);
        return Some((number, number));
    };
    let address: IpAddr = address.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    // An IPv4 prefix counts bits of the last 32 of the mapped address.
    let bits = match address {
        IpAddr::V4(_) if prefix <= 32 => prefix + 96,
        IpAddr::V6(_) if prefix <= 128 => prefix,
        _ => return None,
    };
    let host_mask = u128::MAX.checked_shr(bits).unwrap_or(0);
    let network = ip_number(address) & !host_mask;
    Some((network, network | host_mask))
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

    fn record(fields: &[(&str, FieldValue)]) -> Record {
        Record {
            time_ns: 0,
            fields: fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect(),
        }
    }

    #[test]
    fn test_first_value_decides_and_hints_win() {
        let hints: BTreeMap<String, FieldType> = [("user".to_string(), FieldType::Keyword)].into();
        let first = record(&[
            ("status", FieldValue::Long(200)),
            ("user", FieldValue::Long(7)),
            ("message", FieldValue::Long(1)),
            ("ok", FieldValue::Bool(true)),
        ]);
        let second = record(&[
            ("status", FieldValue::Str("abc".into())),
            ("ratio", FieldValue::Double(0.5)),
        ]);
        let learned = learn_types(&hints, &BTreeMap::new(), [&first, &second]);
        let expected: BTreeMap<String, FieldType> = [
            ("message".to_string(), FieldType::Text),
            ("ok".to_string(), FieldType::Bool),
            ("ratio".to_string(), FieldType::Double),
            ("status".to_string(), FieldType::Long),
        ]
        .into();
        assert_eq!(learned, expected);
        // Known fields are never learned again.
        assert!(learn_types(&hints, &learned, [&second]).is_empty());
        let mut later_hints = hints.clone();
        later_hints.insert("status".to_string(), FieldType::Keyword);
        let types = effective_types(&later_hints, &learned);
        assert_eq!(types["status"], FieldType::Keyword);
        assert_eq!(types["ratio"], FieldType::Double);
    }

    #[test]
    fn test_ip_query_ranges() {
        let v4 = |text: &str| ip_number(text.parse().expect("ip"));
        assert_eq!(
            ip_query_range("10.0.0.7"),
            Some((v4("10.0.0.7"), v4("10.0.0.7")))
        );
        assert_eq!(
            ip_query_range("10.0.0.0/24"),
            Some((v4("10.0.0.0"), v4("10.0.0.255")))
        );
        assert_eq!(
            ip_query_range("10.1.2.3/0"),
            Some((v4("0.0.0.0"), v4("255.255.255.255")))
        );
        assert_eq!(ip_query_range("::/0"), Some((0, u128::MAX)));
        assert_eq!(ip_query_range("10.0.0.0/33"), None);
        assert_eq!(ip_query_range("localhost"), None);
    }

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

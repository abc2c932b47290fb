//! Evaluates a query against one record the way the index engines do once the
//! pool's field types are applied (see [`crate::field_types`]).
//!
//! [`crate::query::eval::matches`] sees each value with the type it was sent with.
//! The engines index a typed field's value converted to the field's type, or as
//! overflow text when it does not convert; this evaluator does the same before
//! matching, so live tail and alerts agree with search for every type:
//!
//! - `keyword`: terms and phrases equal the whole value (case-sensitive), wildcards
//!   match the whole value (ignoring case: the parser lowercases patterns), ranges
//!   compare the raw text.
//! - `ip`: a term is an address or a CIDR block; ranges compare addresses, IPv4 as
//!   IPv4-mapped IPv6.
//! - `timestamp`: terms and range bounds are RFC 3339 or epoch numbers, compared in ns.
//! - `text`, `long`, `double`, `bool`: [`eval::matches`] on the converted value.
//! - An overflow value is text: terms, phrases and wildcards see it; ranges of a
//!   field typed other than text or keyword do not.
//! - Bare terms see each value as the engines index it: a number (after conversion) is
//!   found by equality and never by a wildcard; everything else by its words.
//! - `_exists_` and the event time never depend on field types.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::field_types::{apply_hint, ip_number, ip_query_range, Typed};
use crate::ingest::parse_time_text;
use crate::query::eval::{self, compile_pattern, wildcard_matches};
use crate::query::{is_time_field, Query, RangeBound};
use crate::record::{FieldValue, Record};
use crate::routing::FieldType;

/// Returns whether `record` matches `query` in a pool with field `types`.
pub fn matches(query: &Query, record: &Record, types: &BTreeMap<String, FieldType>) -> bool {
    match query {
        Query::And(queries) => queries.iter().all(|q| matches(q, record, types)),
        Query::Or(queries) => queries.iter().any(|q| matches(q, record, types)),
        Query::Not(inner) => !matches(inner, record, types),
        Query::Term { field: None, .. }
        | Query::Phrase { field: None, .. }
        | Query::Wildcard { field: None, .. } => {
            // Only a record with typed fields is seen differently; most are not copied.
            if record.fields.keys().any(|name| types.contains_key(name)) {
                eval::matches(query, &bare_view(record, types))
            } else {
                eval::matches(query, record)
            }
        }
        _ => match typed_leaf(query, record, types) {
            Some(matched) => matched,
            None => eval::matches(query, record),
        },
    }
}

/// The record as bare terms see it once types apply: a value converted to `long` or
/// `double` is a number (found by equality, never by a wildcard); text, overflow text
/// and bools are words; `keyword`, `ip` and `timestamp` values are the words of the
/// value as sent.
fn bare_view(record: &Record, types: &BTreeMap<String, FieldType>) -> Record {
    let fields = record
        .fields
        .iter()
        .map(|(name, value)| {
            let seen = match types.get(name) {
                None => value.clone(),
                Some(field_type) => match apply_hint(value, *field_type) {
                    Typed::Fits(converted) => match field_type {
                        FieldType::Keyword | FieldType::Ip | FieldType::Timestamp => {
                            FieldValue::Str(value.as_text())
                        }
                        FieldType::Text | FieldType::Long | FieldType::Double | FieldType::Bool => {
                            converted
                        }
                    },
                    Typed::Overflow(text) => FieldValue::Str(text),
                },
            };
            (name.clone(), seen)
        })
        .collect();
    Record {
        time_ns: record.time_ns,
        fields,
    }
}

/// The answer for a leaf on a typed field of the record, `None` when types do not
/// change it.
fn typed_leaf(query: &Query, record: &Record, types: &BTreeMap<String, FieldType>) -> Option<bool> {
    let field = match query {
        Query::Term {
            field: Some(field), ..
        }
        | Query::Phrase {
            field: Some(field), ..
        }
        | Query::Wildcard {
            field: Some(field), ..
        }
        | Query::Range { field, .. } => field,
        _ => return None,
    };
    if is_time_field(field) {
        return None;
    }
    let field_type = *types.get(field)?;
    let value = record.fields.get(field)?;
    if let Query::Wildcard { pattern, .. } = query {
        // `field:*` is "the field has a value", whatever its type.
        if pattern.chars().all(|c| c == '*') {
            return Some(true);
        }
    }
    let converted = match apply_hint(value, field_type) {
        Typed::Fits(converted) => converted,
        Typed::Overflow(text) => {
            if matches!(query, Query::Range { .. })
                && !matches!(field_type, FieldType::Text | FieldType::Keyword)
            {
                return Some(false);
            }
            return Some(eval::matches(query, &single(field, FieldValue::Str(text))));
        }
    };
    let text = converted.as_text();
    Some(match (field_type, query) {
        (FieldType::Keyword, Query::Term { value, .. })
        | (FieldType::Keyword, Query::Phrase { text: value, .. }) => *value == text,
        (FieldType::Keyword, Query::Wildcard { pattern, .. }) => {
            wildcard_matches(&compile_pattern(pattern), &text.to_lowercase())
        }
        (FieldType::Keyword, Query::Range { lower, upper, .. }) => {
            within(lower, upper, |bound| Some(text.as_str().cmp(bound)))
        }
        (FieldType::Ip, Query::Term { value, .. })
        | (FieldType::Ip, Query::Phrase { text: value, .. }) => {
            let Ok(address) = text.parse::<IpAddr>() else {
                return Some(false);
            };
            let number = ip_number(address);
            ip_query_range(value).is_some_and(|(first, last)| first <= number && number <= last)
        }
        (FieldType::Ip, Query::Range { lower, upper, .. }) => {
            let Ok(address) = text.parse::<IpAddr>() else {
                return Some(false);
            };
            let number = ip_number(address);
            within(lower, upper, |bound| {
                bound
                    .trim()
                    .parse::<IpAddr>()
                    .ok()
                    .map(|b| number.cmp(&ip_number(b)))
            })
        }
        (FieldType::Timestamp, Query::Term { value, .. })
        | (FieldType::Timestamp, Query::Phrase { text: value, .. }) => {
            match (parse_time_text(&text), parse_time_text(value)) {
                (Ok(time_ns), Ok(wanted)) => time_ns == wanted,
                _ => false,
            }
        }
        (FieldType::Timestamp, Query::Range { lower, upper, .. }) => {
            let Ok(time_ns) = parse_time_text(&text) else {
                return Some(false);
            };
            within(lower, upper, |bound| {
                parse_time_text(bound).ok().map(|b| time_ns.cmp(&b))
            })
        }
        // Wildcards never match addresses or times (only their overflow text).
        (FieldType::Ip | FieldType::Timestamp, _) => false,
        (FieldType::Text | FieldType::Long | FieldType::Double | FieldType::Bool, _) => {
            eval::matches(query, &single(field, converted))
        }
        (FieldType::Keyword, _) => false,
    })
}

fn single(field: &str, value: FieldValue) -> Record {
    Record {
        time_ns: 0,
        fields: [(field.to_string(), value)].into(),
    }
}

/// Whether a value lies within the bounds; `compare` orders the value against one
/// bound and is `None` when the bound cannot be compared (then nothing matches).
fn within(
    lower: &RangeBound,
    upper: &RangeBound,
    compare: impl Fn(&str) -> Option<Ordering>,
) -> bool {
    let lower_ok = match lower {
        RangeBound::Unbounded => true,
        RangeBound::Inclusive(bound) => compare(bound).is_some_and(|o| o != Ordering::Less),
        RangeBound::Exclusive(bound) => compare(bound) == Some(Ordering::Greater),
    };
    let upper_ok = match upper {
        RangeBound::Unbounded => true,
        RangeBound::Inclusive(bound) => compare(bound).is_some_and(|o| o != Ordering::Greater),
        RangeBound::Exclusive(bound) => compare(bound) == Some(Ordering::Less),
    };
    lower_ok && upper_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{parse_query, DefaultOperator};

    #[test]
    fn test_typed_fields_match_as_the_engines_index_them() {
        let types: BTreeMap<String, FieldType> = [
            ("user".to_string(), FieldType::Keyword),
            ("client".to_string(), FieldType::Ip),
            ("at".to_string(), FieldType::Timestamp),
            ("status".to_string(), FieldType::Long),
        ]
        .into();
        let record = Record {
            time_ns: 0,
            fields: [
                ("user".to_string(), FieldValue::Str("Bob Smith".into())),
                ("client".to_string(), FieldValue::Str("10.0.0.7".into())),
                ("at".to_string(), FieldValue::Long(1_700_000_000_000)),
                ("status".to_string(), FieldValue::Str("abc".into())),
            ]
            .into(),
        };
        let cases = [
            ("user:\"Bob Smith\"", true),
            ("user:bob", false),
            ("user:bob*", true),
            ("bob", true),
            ("client:\"10.0.0.0/24\"", true),
            ("client:[10.0.0.8 TO *]", false),
            ("at:2023-11-14T22:13:20Z", true),
            ("at:>2023-11-14T22:13:20Z", false),
            ("status:abc", true),
            ("status:[a TO z]", false),
            ("NOT user:bob", true),
        ];
        for (query, expected) in cases {
            let parsed = parse_query(query, DefaultOperator::And).expect(query);
            assert_eq!(matches(&parsed, &record, &types), expected, "{query}");
        }
    }
}

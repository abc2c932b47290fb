//! Evaluates a [`Query`] against one [`Record`] in memory, for live tail and alerts.
//!
//! The rules mirror what the search index stores, so that a record matches here exactly
//! when the index would return it:
//!
//! - String fields are full text: their text goes through [`tokenize`], and a term or
//!   phrase matches when its own tokens appear consecutively in the field's tokens
//!   (`"connection reset"` matches `Connection-reset by peer`). A value that tokenises
//!   to nothing (`"--"`) matches nothing.
//! - Numbers and bools are typed: `status:500` is numeric equality (`500.0` matches too),
//!   `ok:true` compares case-insensitively.
//! - The default field (`field: None`) is the text of every field, numbers and bools
//!   included as their text form. A phrase must match within one field's text; it never
//!   spans the end of one field and the start of another.
//! - A wildcard matches when one single token matches the pattern (`*` is any run of
//!   characters, `?` exactly one, `\x` the literal `x`). Tokens hold only alphanumeric
//!   characters, so a pattern with other characters (`10.0.*`) never matches a string
//!   field. A wildcard on a named numeric or bool field matches nothing (`latency:1*`
//!   is not a numeric query; use a range), since both engines keep those values as
//!   numbers, not text; a bare wildcard sees their text like a bare term does.
//! - Ranges compare numerically on numeric fields (a bound that is not a number matches
//!   nothing) and lexicographically on the raw string of string fields (keyword
//!   semantics); bools compare as the text `false` < `true`.
//! - `time` and `@timestamp` always mean the record's event time: ranges and terms
//!   compare [`Record::time_ns`] with bounds parsed by [`parse_time_text`] (RFC 3339 or
//!   epoch seconds / ms / µs / ns; a bound that does not parse matches nothing), `Exists`
//!   is always true, and wildcards never match.
//! - `Exists` is true when the record has that key or a key below it, as for an
//!   object field in Elasticsearch: `_exists_:http` matches a record with `http.status`.
//! - `Not` is a complement, so a top-level `Not(q)` is "every record except q".

use std::cmp::Ordering;

use super::ast::{Query, RangeBound};
use super::numeric::exact_integer;
use super::{is_time_field, text_contains_words, tokenize};
use crate::ingest::parse_time_text;
use crate::record::{FieldValue, Record};

/// Field names that refer to [`Record::time_ns`] rather than to a field of the record.
pub use super::TIME_FIELD_NAMES;

/// Returns whether `record` matches `query`.
pub fn matches(query: &Query, record: &Record) -> bool {
    match query {
        Query::All => true,
        Query::Term { field, value } => matches_text(field.as_deref(), value, record),
        Query::Phrase { field, text } => matches_text(field.as_deref(), text, record),
        Query::Wildcard { field, pattern } => matches_wildcard(field.as_deref(), pattern, record),
        Query::Range {
            field,
            lower,
            upper,
        } => matches_range(field, lower, upper, record),
        Query::Exists { field } => {
            is_time_field(field)
                || record.fields.contains_key(field)
                || record.fields.keys().any(|key| {
                    key.len() > field.len()
                        && key.starts_with(field.as_str())
                        && key.as_bytes()[field.len()] == b'.'
                })
        }
        Query::And(queries) => queries.iter().all(|query| matches(query, record)),
        Query::Or(queries) => queries.iter().any(|query| matches(query, record)),
        Query::Not(query) => !matches(query, record),
    }
}

/// Term and phrase matching: they only differ in how they were written.
fn matches_text(field: Option<&str>, value: &str, record: &Record) -> bool {
    let Some(field) = field else {
        // A bare term finds a number when it is that number (`500`, `500.0`), as
        // `field:value` does; text and bools match by their words.
        let needle = tokenize(value);
        return !needle.is_empty()
            && record.fields.values().any(|field_value| match field_value {
                FieldValue::Long(_) | FieldValue::Double(_) => {
                    value_equals_number(field_value, value)
                }
                FieldValue::Str(text) => text_contains_words(text, &needle),
                FieldValue::Bool(_) => text_contains_words(&field_value.as_text(), &needle),
            });
    };
    if is_time_field(field) {
        return parse_time_text(value).is_ok_and(|time_ns| time_ns == record.time_ns);
    }
    let Some(field_value) = record.fields.get(field) else {
        return false;
    };
    match field_value {
        FieldValue::Str(text) => {
            let needle = tokenize(value);
            !needle.is_empty() && text_contains_words(text, &needle)
        }
        FieldValue::Long(_) | FieldValue::Double(_) => value_equals_number(field_value, value),
        FieldValue::Bool(flag) => value.trim().eq_ignore_ascii_case(&flag.to_string()),
    }
}

/// Whether the query text `value` is the number `number` (a `Long` or `Double`).
fn value_equals_number(number: &FieldValue, value: &str) -> bool {
    let trimmed = value.trim();
    match number {
        // `500.0` still equals 500, exactly as the engines read integer values.
        FieldValue::Long(number) => exact_integer(trimmed) == Some(*number),
        FieldValue::Double(number) => trimmed.parse::<f64>().is_ok_and(|parsed| parsed == *number),
        FieldValue::Str(_) | FieldValue::Bool(_) => false,
    }
}

fn matches_wildcard(field: Option<&str>, pattern: &str, record: &Record) -> bool {
    let pattern = compile_pattern(pattern);
    let Some(field) = field else {
        // Numbers never match a wildcard, bare or on a field.
        return record.fields.values().any(|field_value| match field_value {
            FieldValue::Long(_) | FieldValue::Double(_) => false,
            _ => tokenize(&field_value.as_text())
                .iter()
                .any(|token| wildcard_matches(&pattern, token)),
        });
    };
    if is_time_field(field) {
        return false;
    }
    match record.fields.get(field) {
        None => false,
        Some(FieldValue::Str(text)) => tokenize(text)
            .iter()
            .any(|token| wildcard_matches(&pattern, token)),
        Some(_) => false,
    }
}

/// One element of a compiled wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternPart {
    AnyRun,
    AnyChar,
    Literal(char),
}

pub(crate) fn compile_pattern(pattern: &str) -> Vec<PatternPart> {
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '*' => PatternPart::AnyRun,
            '?' => PatternPart::AnyChar,
            // A trailing lone backslash can only be a literal backslash.
            '\\' => PatternPart::Literal(chars.next().unwrap_or('\\')),
            other => PatternPart::Literal(other),
        });
    }
    parts
}

/// Glob matching with single-point backtracking: linear in practice, and never worse
/// than pattern length × text length.
pub(crate) fn wildcard_matches(pattern: &[PatternPart], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen and the text position it is currently matched up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(PatternPart::AnyRun) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(PatternPart::AnyChar) => {
                p += 1;
                t += 1;
                continue;
            }
            Some(PatternPart::Literal(c)) if *c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((star, matched_to)) => {
                p = star + 1;
                t = matched_to + 1;
                backtrack = Some((star, matched_to + 1));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|part| *part == PatternPart::AnyRun)
}

fn matches_range(field: &str, lower: &RangeBound, upper: &RangeBound, record: &Record) -> bool {
    if is_time_field(field) {
        let time_ns = record.time_ns;
        return within(lower, upper, |bound| {
            parse_time_text(bound)
                .ok()
                .map(|bound_ns| time_ns.cmp(&bound_ns))
        });
    }
    match record.fields.get(field) {
        None => false,
        Some(FieldValue::Long(number)) => {
            within(lower, upper, |bound| compare_long(*number, bound))
        }
        Some(FieldValue::Double(number)) => within(lower, upper, |bound| {
            bound
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|parsed| number.partial_cmp(&parsed))
        }),
        Some(FieldValue::Str(text)) => within(lower, upper, |bound| Some(text.as_str().cmp(bound))),
        Some(FieldValue::Bool(flag)) => {
            let text = flag.to_string();
            within(lower, upper, |bound| Some(text.as_str().cmp(bound)))
        }
    }
}

/// Compares an integer field with a bound, exactly when the bound is an integer too.
fn compare_long(number: i64, bound: &str) -> Option<Ordering> {
    let trimmed = bound.trim();
    match trimmed.parse::<i64>() {
        Ok(parsed) => Some(number.cmp(&parsed)),
        Err(_) => trimmed
            .parse::<f64>()
            .ok()
            .and_then(|parsed| (number as f64).partial_cmp(&parsed)),
    }
}

/// Checks both bounds; `compare` orders the record's value against a bound's text and
/// returns `None` when the bound is not comparable (then nothing matches).
fn within(
    lower: &RangeBound,
    upper: &RangeBound,
    compare: impl Fn(&str) -> Option<Ordering>,
) -> bool {
    let lower_ok = match lower {
        RangeBound::Unbounded => true,
        RangeBound::Inclusive(bound) => compare(bound).is_some_and(Ordering::is_ge),
        RangeBound::Exclusive(bound) => compare(bound).is_some_and(Ordering::is_gt),
    };
    let upper_ok = match upper {
        RangeBound::Unbounded => true,
        RangeBound::Inclusive(bound) => compare(bound).is_some_and(Ordering::is_le),
        RangeBound::Exclusive(bound) => compare(bound).is_some_and(Ordering::is_lt),
    };
    lower_ok && upper_ok
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::query::{parse_query, DefaultOperator};

    /// 2023-11-14T22:13:20Z.
    const WEB_TIME_NS: i64 = 1_700_000_000_000_000_000;

    fn record(time_ns: i64, fields: &[(&str, FieldValue)]) -> Record {
        let fields: BTreeMap<String, FieldValue> = fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        Record { time_ns, fields }
    }

    fn text(value: &str) -> FieldValue {
        FieldValue::Str(value.to_string())
    }

    fn web_error() -> Record {
        record(
            WEB_TIME_NS,
            &[
                (
                    "message",
                    text("Connection-reset by peer while GET /api/v1/users"),
                ),
                ("level", text("ERROR")),
                ("status", FieldValue::Long(503)),
                ("latency", FieldValue::Double(251.5)),
                ("ok", FieldValue::Bool(false)),
                ("http.method", text("GET")),
                ("tags.env", text("prod")),
                ("host", text("web-01.example.com")),
                ("user", text("alice")),
            ],
        )
    }

    fn login_info() -> Record {
        record(
            WEB_TIME_NS + 60_000_000_000,
            &[
                ("message", text("user bob logged in")),
                ("level", text("info")),
                ("status", FieldValue::Long(200)),
                ("latency", FieldValue::Double(12.0)),
                ("ok", FieldValue::Bool(true)),
                ("tags.env", text("staging")),
            ],
        )
    }

    #[test]
    fn test_matches_table() {
        let web = web_error();
        let login = login_info();
        let cases: Vec<(&str, &Record, bool)> = vec![
            // Full text on the message and the default field.
            ("connection", &web, true),
            ("CONNECTION", &web, true),
            ("\"connection reset\"", &web, true),
            ("\"reset connection\"", &web, false),
            ("message:\"reset by peer\"", &web, true),
            ("message:peer", &web, true),
            ("message:alice", &web, false),
            ("alice", &web, true),
            ("prod", &web, true),
            ("web-01", &web, true),
            ("503", &web, true),
            ("\"--\"", &web, false),
            ("logged in", &login, true),
            ("\"logged in\"", &login, true),
            ("\"in logged\"", &login, false),
            ("\"peer alice\"", &web, false),
            ("level:error", &web, true),
            ("http.method:get", &web, true),
            ("missing:x", &web, false),
            // Numbers and bools.
            ("status:503", &web, true),
            ("status:503.0", &web, true),
            ("status:500", &web, false),
            ("status:abc", &web, false),
            ("latency:251.5", &web, true),
            ("ok:false", &web, true),
            ("ok:FALSE", &web, true),
            ("ok:true", &web, false),
            ("status:(200 OR 503) AND tags.env:prod", &web, true),
            // Wildcards.
            ("conn*", &web, true),
            ("ERR*", &web, true),
            ("message:us?rs", &web, true),
            ("message:api*v1", &web, false),
            ("message:*eer", &web, true),
            ("message:?eer", &web, true),
            ("message:??eer", &web, false),
            ("latency:25?.5", &web, false),
            ("ok:tr*", &login, false),
            // A bare number finds a number equal to it; numbers never match a
            // wildcard: latency 251.5 is neither `251` nor `25?`.
            ("25?", &web, false),
            ("251.5", &web, true),
            ("251", &web, false),
            ("503.0", &web, true),
            ("host:*", &web, true),
            ("trace_id:*", &web, false),
            ("*", &web, true),
            // Ranges: inclusive, exclusive, open, lexicographic, time.
            ("status:[500 TO 599]", &web, true),
            ("status:[500 TO 599]", &login, false),
            ("status:{503 TO 599]", &web, false),
            ("status:[* TO 503]", &web, true),
            ("status:[* TO 503}", &web, false),
            ("status:[200 TO 200]", &login, true),
            ("status:[502.5 TO 503.5]", &web, true),
            ("status:>abc", &web, false),
            ("latency:>250", &web, true),
            ("latency:>250", &login, false),
            ("latency:<=12", &login, true),
            ("latency:<12", &login, false),
            ("level:[A TO F]", &web, true),
            ("user:>bob", &web, false),
            ("user:<bob", &web, true),
            ("ok:[false TO false]", &web, true),
            ("missing:[* TO *]", &web, false),
            (
                "time:[2023-11-14T00:00:00Z TO 2023-11-15T00:00:00Z]",
                &web,
                true,
            ),
            ("time:[2023-11-14T22:13:20Z TO *]", &web, true),
            ("time:{2023-11-14T22:13:20Z TO *]", &web, false),
            ("@timestamp:<1700000000", &web, false),
            ("time:<=1700000000", &web, true),
            ("time:>=1700000000000", &login, true),
            ("time:[bogus TO *]", &web, false),
            ("time:\"2023-11-14T22:13:20Z\"", &web, true),
            ("time:2023-11-14T22:13:20Z", &web, true),
            ("time:2023-11-14T22:13:21Z", &web, false),
            // Exists.
            ("_exists_:tags.env", &web, true),
            ("_exists_:trace_id", &web, false),
            ("_exists_:time", &web, true),
            ("_exists_:@timestamp", &login, true),
            // Negation and pure negative queries.
            ("-debug", &web, true),
            ("NOT connection", &web, false),
            ("error AND NOT prod", &web, false),
            ("error -staging", &web, true),
            ("NOT level:info OR status:200", &login, true),
            ("-status:[500 TO 599]", &login, true),
        ];
        assert!(cases.len() >= 30);
        for (input, record, expected) in cases {
            let query = parse_query(input, DefaultOperator::And).expect(input);
            assert_eq!(
                matches(&query, record),
                expected,
                "query {input:?} parsed as {query:?}"
            );
        }
    }

    #[test]
    fn test_wildcard_matches_glob_rules() {
        let cases = [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*b*b*", "abcbd", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("a\\?", "a?", true),
            ("héllo*", "héllos", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                wildcard_matches(&compile_pattern(pattern), text),
                expected,
                "pattern {pattern:?} on {text:?}"
            );
        }
    }

    #[test]
    fn test_term_that_tokenises_to_nothing_matches_nothing() {
        let query = Query::Term {
            field: Some("message".to_string()),
            value: "--".to_string(),
        };
        assert!(!matches(&query, &web_error()));
    }
}

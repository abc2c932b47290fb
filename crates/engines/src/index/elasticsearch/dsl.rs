//! Compiles the query AST to Elasticsearch query DSL.
//!
//! The user's query string never reaches Elasticsearch: it was parsed by the core crate
//! and every node becomes an explicit DSL clause, so the answers follow the rules of
//! [`logpool_core::query::eval`] (the in-memory evaluator used by tail and alerts) and
//! of the embedded index, not Lucene's query-string parser.
//!
//! - A bare term or phrase searches `_lp_all`, the text of every field; its tokens come
//!   from [`tokenize`], so query and index agree on what a word is.
//! - `field:value` asks every typed path that can hold `value`: the long path when it
//!   reads as an integer, the double path when it reads as a number, the boolean path
//!   for `true`/`false` (any case), the text path for its tokens, plus the declared
//!   path of a field hint. A clause is added only when the value is valid for that
//!   type, so a query never fails on a type mismatch; it just does not match there.
//!   A quoted value means the same (`status:"500"` finds the number, as in `eval`).
//! - Ranges compare numbers numerically (integer bounds are rounded inwards for the
//!   long path, so `latency:>250.5` is exact), strings lexicographically on their raw
//!   text (`.keyword`, up to `keyword_ignore_above` characters) and booleans as
//!   `false < true`; `[* TO *]` means the field is present. In a field declared
//!   `long`, `double`, `bool`, `ip` or `timestamp` the text only holds values that
//!   conflicted with that type, and ranges leave it out.
//! - `time` and `@timestamp` are the event time: terms and ranges parse their bounds
//!   with [`parse_time_text`] and compare nanoseconds exactly through the split
//!   (`_lp_time_ms`, `_lp_time_sub`) fields; a bound that does not parse is an
//!   [`IndexError::InvalidQuery`], as in the embedded index. Fields typed `timestamp`
//!   are compared the same exact way, on their own (ms, ns-within-ms) pair.
//! - `_exists_:f` is a term on `_lp_fields`, which lists dotted prefixes too, so
//!   `_exists_:http` finds `http.method` like an object field would.
//! - Wildcards match one token: a bare one on `_lp_all`, a named one on the field's
//!   text, and on a `keyword` field also the whole value (case-insensitively, as the
//!   parser lowercases patterns); `field:*` means the field is present.
//! - The hints given to [`compile`] are the pool's effective types: declared, or
//!   learned from the first value of the field (see [`logpool_core::field_types`]).
//!
//! Everything runs in filter context: logs are sorted by time, never scored.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Bound;

use logpool_core::ingest::parse_time_text;
use logpool_core::query::numeric::{exact_integer, integer_lower, integer_upper};
use logpool_core::query::{is_time_field, tokenize, Query, RangeBound};
use logpool_core::record::MESSAGE_FIELD;
use logpool_core::routing::FieldType;
use serde_json::{json, Map, Value};

use super::mapping::{
    timestamp_parts, TypedPath, ALL_TEXT, FIELD_NAMES, NS_PER_MS, TIEBREAK, TIME_MS, TIME_SUB,
};
use crate::index::{parse_time_bound, IndexResult, SortKey, SortOrder};

/// Field hints of the pool the query runs on.
pub(crate) type Hints = BTreeMap<String, FieldType>;

/// Compiles `query` restricted to `[from_ns, to_ns)`.
pub(crate) fn compile_with_time_range(
    query: &Query,
    hints: &Hints,
    from_ns: i64,
    to_ns: i64,
) -> IndexResult<Value> {
    let lower = if from_ns == i64::MIN {
        Bound::Unbounded
    } else {
        Bound::Included(from_ns)
    };
    let upper = if to_ns == i64::MAX {
        Bound::Unbounded
    } else {
        Bound::Excluded(to_ns)
    };
    let mut filters = vec![compile(query, hints)?];
    if !matches!((lower, upper), (Bound::Unbounded, Bound::Unbounded)) {
        filters.insert(0, time_range(lower, upper));
    }
    Ok(json!({"bool": {"filter": filters}}))
}

/// The sort of every search: by (time, tiebreak), newest first for `desc`, oldest
/// first for `asc` (the tiebreak is fixed-width text, so its text order is its
/// numeric order either way).
pub(crate) fn time_sort(order: SortOrder) -> Value {
    let order = match order {
        SortOrder::Desc => "desc",
        SortOrder::Asc => "asc",
    };
    json!([
        {TIME_MS: {"order": order, "unmapped_type": "long"}},
        {TIME_SUB: {"order": order, "unmapped_type": "long"}},
        {TIEBREAK: {"order": order, "unmapped_type": "keyword"}},
    ])
}

/// The `search_after` values that continue strictly after `key`.
pub(crate) fn search_after(key: SortKey) -> Value {
    json!([
        key.time_ns.div_euclid(NS_PER_MS),
        key.time_ns.rem_euclid(NS_PER_MS),
        super::mapping::tiebreak_text(key.tiebreak),
    ])
}

/// Compiles one AST node.
pub(crate) fn compile(query: &Query, hints: &Hints) -> IndexResult<Value> {
    Ok(match query {
        Query::All => match_all(),
        Query::Term { field: None, value }
        | Query::Phrase {
            field: None,
            text: value,
        } => bare_value(value, hints),
        Query::Term {
            field: Some(field),
            value,
        }
        | Query::Phrase {
            field: Some(field),
            text: value,
        } => field_value(field, value, hints)?,
        Query::Wildcard {
            field: None,
            pattern,
        } => wildcard(ALL_TEXT, pattern),
        Query::Wildcard {
            field: Some(field),
            pattern,
        } => {
            if is_time_field(field) {
                match_none()
            } else if pattern.chars().all(|c| c == '*') {
                present(field, hints)
            } else if hints.get(field) == Some(&FieldType::Keyword) {
                // A keyword matches as one whole value; patterns come lowercased.
                any_of(vec![
                    wildcard(&TypedPath::Text.field(field), pattern),
                    json!({"wildcard": {TypedPath::Keyword.field(field): {
                        "value": pattern,
                        "case_insensitive": true
                    }}}),
                ])
            } else {
                wildcard(&TypedPath::Text.field(field), pattern)
            }
        }
        Query::Range {
            field,
            lower,
            upper,
        } => range(field, lower, upper, hints)?,
        Query::Exists { field } => {
            if is_time_field(field) {
                match_all()
            } else {
                json!({"term": {FIELD_NAMES: field}})
            }
        }
        Query::And(children) => {
            let mut filters = Vec::new();
            let mut must_not = Vec::new();
            for child in children {
                // `a AND NOT b` becomes one clause list instead of a nested match_all.
                match child {
                    Query::Not(inner) => must_not.push(compile(inner, hints)?),
                    _ => filters.push(compile(child, hints)?),
                }
            }
            if filters.is_empty() {
                filters.push(match_all());
            }
            json!({"bool": {"filter": filters, "must_not": must_not}})
        }
        Query::Or(children) => {
            let clauses = children
                .iter()
                .map(|child| compile(child, hints))
                .collect::<IndexResult<Vec<Value>>>()?;
            any_of(clauses)
        }
        Query::Not(inner) => {
            json!({"bool": {"filter": [match_all()], "must_not": [compile(inner, hints)?]}})
        }
    })
}

fn match_all() -> Value {
    json!({"match_all": {}})
}

fn match_none() -> Value {
    json!({"match_none": {}})
}

/// At least one of `clauses`; none matches nothing.
fn any_of(mut clauses: Vec<Value>) -> Value {
    match clauses.len() {
        0 => match_none(),
        1 => clauses.remove(0),
        _ => json!({"bool": {"should": clauses, "minimum_should_match": 1}}),
    }
}

/// A bare term or phrase: the words of every value but numbers (`_lp_all`), or a
/// number equal to it in any field typed `long` or `double` (numbers are not in
/// `_lp_all`; see `mapping::document`).
fn bare_value(value: &str, hints: &Hints) -> Value {
    let trimmed = value.trim();
    let mut clauses = vec![text_clause(ALL_TEXT, value)];
    for (field, field_type) in hints {
        match field_type {
            FieldType::Long => {
                if let Some(integer) = exact_integer(trimmed) {
                    clauses.push(json!({"term": {TypedPath::Long.field(field): integer}}));
                }
            }
            FieldType::Double => {
                if let Some(number) = parse_finite(trimmed) {
                    clauses.push(json!({"term": {TypedPath::Double.field(field): number}}));
                }
            }
            _ => {}
        }
    }
    clauses.retain(|clause| *clause != match_none());
    any_of(clauses)
}

/// A term or phrase over the tokens of `text`; no tokens matches nothing.
///
/// The tokens are sent joined by spaces, so the analyzer sees exactly the tokens
/// [`tokenize`] produced (all lowercase, none over the length limit).
fn text_clause(es_field: &str, text: &str) -> Value {
    let tokens = tokenize(text);
    match tokens.as_slice() {
        [] => match_none(),
        [token] => json!({"term": {es_field: token}}),
        _ => json!({"match_phrase": {es_field: {"query": tokens.join(" ")}}}),
    }
}

/// Turns the AST's wildcard pattern (lowercase, `\*` and `\?` literal) into a wildcard
/// query on the tokens of `es_field`; Elasticsearch reads the same escapes.
fn wildcard(es_field: &str, pattern: &str) -> Value {
    json!({"wildcard": {es_field: {"value": pattern}}})
}

/// `field:value` and `field:"value"`.
fn field_value(field: &str, value: &str, hints: &Hints) -> IndexResult<Value> {
    if is_time_field(field) {
        let time_ns = parse_time_bound(value)?;
        return Ok(time_range(
            Bound::Included(time_ns),
            Bound::Included(time_ns),
        ));
    }
    if field == "_id" {
        return Ok(json!({"ids": {"values": [value]}}));
    }
    let trimmed = value.trim();
    let mut clauses = Vec::new();
    if let Some(integer) = exact_integer(trimmed) {
        clauses.push(json!({"term": {TypedPath::Long.field(field): integer}}));
    }
    if let Some(number) = parse_finite(trimmed) {
        clauses.push(json!({"term": {TypedPath::Double.field(field): number}}));
    }
    if let Some(flag) = parse_bool(trimmed) {
        clauses.push(json!({"term": {TypedPath::Bool.field(field): flag}}));
    }
    let text = text_clause(&TypedPath::Text.field(field), value);
    if text != match_none() {
        clauses.push(text);
    }
    match hints.get(field) {
        Some(FieldType::Keyword) => {
            clauses.push(json!({"term": {TypedPath::Keyword.field(field): value}}));
        }
        Some(FieldType::Ip) if parse_ip_or_cidr(trimmed) => {
            clauses.push(json!({"term": {TypedPath::Ip.field(field): trimmed}}));
        }
        Some(FieldType::Timestamp) => {
            if let Ok(time_ns) = parse_time_text(trimmed) {
                let (ms_field, sub_field) = timestamp_parts(field);
                clauses.push(split_time_range(
                    &ms_field,
                    &sub_field,
                    Bound::Included(time_ns),
                    Bound::Included(time_ns),
                ));
            }
        }
        _ => {}
    }
    Ok(any_of(clauses))
}

/// The field has a value of any type.
fn present(field: &str, hints: &Hints) -> Value {
    let mut paths: Vec<TypedPath> = TypedPath::DYNAMIC.to_vec();
    match hints.get(field) {
        Some(FieldType::Keyword) => paths.push(TypedPath::Keyword),
        Some(FieldType::Ip) => paths.push(TypedPath::Ip),
        Some(FieldType::Timestamp) => paths.push(TypedPath::Timestamp),
        _ => {}
    }
    any_of(
        paths
            .into_iter()
            .map(|path| json!({"exists": {"field": path.field(field)}}))
            .collect(),
    )
}

fn range(field: &str, lower: &RangeBound, upper: &RangeBound, hints: &Hints) -> IndexResult<Value> {
    if is_time_field(field) {
        let convert = |bound: &RangeBound| -> IndexResult<Bound<i64>> {
            Ok(match bound {
                RangeBound::Unbounded => Bound::Unbounded,
                RangeBound::Inclusive(v) => Bound::Included(parse_time_bound(v)?),
                RangeBound::Exclusive(v) => Bound::Excluded(parse_time_bound(v)?),
            })
        };
        let (low, high) = (convert(lower)?, convert(upper)?);
        if matches!((low, high), (Bound::Unbounded, Bound::Unbounded)) {
            return Ok(match_all());
        }
        return Ok(time_range(low, high));
    }
    if matches!(
        (lower, upper),
        (RangeBound::Unbounded, RangeBound::Unbounded)
    ) {
        return Ok(present(field, hints));
    }
    let mut clauses = Vec::new();
    let numeric = |bound: &RangeBound| match bound {
        RangeBound::Unbounded => Some(Bound::Unbounded),
        RangeBound::Inclusive(v) => parse_finite(v.trim()).map(Bound::Included),
        RangeBound::Exclusive(v) => parse_finite(v.trim()).map(Bound::Excluded),
    };
    if let (Some(low), Some(high)) = (numeric(lower), numeric(upper)) {
        clauses.push(range_clause(
            &TypedPath::Double.field(field),
            low.map(Value::from),
            high.map(Value::from),
        ));
        clauses.push(range_clause(
            &TypedPath::Long.field(field),
            integer_lower(low).map(Value::from),
            integer_upper(high).map(Value::from),
        ));
    }
    // Strings compare their raw text, as a keyword would.
    let raw = |bound: &RangeBound| match bound {
        RangeBound::Unbounded => Bound::Unbounded,
        RangeBound::Inclusive(v) => Bound::Included(Value::String(v.clone())),
        RangeBound::Exclusive(v) => Bound::Excluded(Value::String(v.clone())),
    };
    // Except in a field declared non-text: its text holds only values that conflicted
    // with the declared type, which typed queries do not see.
    let declared_typed = matches!(
        hints.get(field),
        Some(
            FieldType::Long
                | FieldType::Double
                | FieldType::Bool
                | FieldType::Ip
                | FieldType::Timestamp
        )
    );
    if field == MESSAGE_FIELD {
        // The raw line has no keyword (see the mapping): its range compares the
        // lowercased tokens, as the embedded index does.
        let token = |bound: &RangeBound| match bound {
            RangeBound::Unbounded => Bound::Unbounded,
            RangeBound::Inclusive(v) => Bound::Included(Value::String(v.to_lowercase())),
            RangeBound::Exclusive(v) => Bound::Excluded(Value::String(v.to_lowercase())),
        };
        clauses.push(range_clause(
            &TypedPath::Text.field(field),
            token(lower),
            token(upper),
        ));
    } else if !declared_typed {
        clauses.push(range_clause(
            &format!("{}.keyword", TypedPath::Text.field(field)),
            raw(lower),
            raw(upper),
        ));
    }
    let boolean = |bound: &RangeBound| match bound {
        RangeBound::Unbounded => Some(Bound::Unbounded),
        RangeBound::Inclusive(v) => exact_bool(v).map(Bound::Included),
        RangeBound::Exclusive(v) => exact_bool(v).map(Bound::Excluded),
    };
    if let (Some(low), Some(high)) = (boolean(lower), boolean(upper)) {
        clauses.push(range_clause(
            &TypedPath::Bool.field(field),
            low.map(Value::from),
            high.map(Value::from),
        ));
    }
    match hints.get(field) {
        Some(FieldType::Keyword) => clauses.push(range_clause(
            &TypedPath::Keyword.field(field),
            raw(lower),
            raw(upper),
        )),
        Some(FieldType::Ip) => {
            let ip = |bound: &RangeBound| match bound {
                RangeBound::Unbounded => Some(Bound::Unbounded),
                RangeBound::Inclusive(v) => v
                    .trim()
                    .parse::<IpAddr>()
                    .ok()
                    .map(|addr| Bound::Included(Value::String(addr.to_string()))),
                RangeBound::Exclusive(v) => v
                    .trim()
                    .parse::<IpAddr>()
                    .ok()
                    .map(|addr| Bound::Excluded(Value::String(addr.to_string()))),
            };
            if let (Some(low), Some(high)) = (ip(lower), ip(upper)) {
                clauses.push(range_clause(&TypedPath::Ip.field(field), low, high));
            }
        }
        Some(FieldType::Timestamp) => {
            let time = |bound: &RangeBound| match bound {
                RangeBound::Unbounded => Some(Bound::Unbounded),
                RangeBound::Inclusive(v) => parse_time_text(v).ok().map(Bound::Included),
                RangeBound::Exclusive(v) => parse_time_text(v).ok().map(Bound::Excluded),
            };
            if let (Some(low), Some(high)) = (time(lower), time(upper)) {
                let (ms_field, sub_field) = timestamp_parts(field);
                clauses.push(match (low, high) {
                    (Bound::Unbounded, Bound::Unbounded) => {
                        json!({"exists": {"field": ms_field}})
                    }
                    _ => split_time_range(&ms_field, &sub_field, low, high),
                });
            }
        }
        _ => {}
    }
    Ok(any_of(clauses))
}

/// A `range` query; both bounds unbounded means the field exists.
fn range_clause(es_field: &str, lower: Bound<Value>, upper: Bound<Value>) -> Value {
    let mut bounds = Map::new();
    match lower {
        Bound::Included(v) => {
            bounds.insert("gte".into(), v);
        }
        Bound::Excluded(v) => {
            bounds.insert("gt".into(), v);
        }
        Bound::Unbounded => {}
    }
    match upper {
        Bound::Included(v) => {
            bounds.insert("lte".into(), v);
        }
        Bound::Excluded(v) => {
            bounds.insert("lt".into(), v);
        }
        Bound::Unbounded => {}
    }
    if bounds.is_empty() {
        return json!({"exists": {"field": es_field}});
    }
    let mut range = Map::new();
    range.insert(es_field.to_string(), Value::Object(bounds));
    json!({ "range": range })
}

/// An exact range over event times in ns, on the (ms, ns-within-ms) pair.
///
/// `t >= L` is `ms > L.ms OR (ms = L.ms AND sub >= L.sub)`, which collapses to
/// `ms >= L.ms` when `L.sub` is 0; the other bounds are alike.
pub(crate) fn time_range(lower: Bound<i64>, upper: Bound<i64>) -> Value {
    split_time_range(TIME_MS, TIME_SUB, lower, upper)
}

/// An exact range over times in ns kept as a (ms, ns-within-ms) pair of fields: the
/// event time, or a field typed `timestamp` (see `mapping::timestamp_parts`).
fn split_time_range(
    ms_field: &str,
    sub_field: &str,
    lower: Bound<i64>,
    upper: Bound<i64>,
) -> Value {
    let mut filters = Vec::new();
    if let Some(clause) = time_bound(ms_field, sub_field, lower, true) {
        filters.push(clause);
    }
    if let Some(clause) = time_bound(ms_field, sub_field, upper, false) {
        filters.push(clause);
    }
    match filters.len() {
        0 => match_all(),
        1 => filters.remove(0),
        _ => json!({"bool": {"filter": filters}}),
    }
}

fn time_bound(ms_field: &str, sub_field: &str, bound: Bound<i64>, is_lower: bool) -> Option<Value> {
    let (time_ns, inclusive) = match bound {
        Bound::Unbounded => return None,
        Bound::Included(t) => (t, true),
        Bound::Excluded(t) => (t, false),
    };
    let ms = time_ns.div_euclid(NS_PER_MS);
    let sub = time_ns.rem_euclid(NS_PER_MS);
    // The bound on the remainder within the same millisecond, if any is needed.
    let (ms_op, sub_op, whole_ms) = match (is_lower, inclusive) {
        (true, true) => ("gt", "gte", sub == 0),
        (true, false) => ("gt", "gt", sub == NS_PER_MS - 1),
        (false, true) => ("lt", "lte", sub == NS_PER_MS - 1),
        (false, false) => ("lt", "lt", sub == 0),
    };
    if whole_ms {
        // The remainder bound admits the whole millisecond (or none of it).
        let op = match (is_lower, inclusive) {
            (true, true) => "gte",
            (true, false) => "gt",
            (false, true) => "lte",
            (false, false) => "lt",
        };
        return Some(json!({"range": {ms_field: {op: ms}}}));
    }
    Some(json!({"bool": {"should": [
        {"range": {ms_field: {ms_op: ms}}},
        {"bool": {"filter": [
            {"term": {ms_field: ms}},
            {"range": {sub_field: {sub_op: sub}}}
        ]}}
    ], "minimum_should_match": 1}}))
}

/// A finite number: JSON has no infinities, and `inf` is no log value anyone means.
fn parse_finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|number| number.is_finite())
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Range bounds compare booleans as text, so only the exact words are booleans there.
fn exact_bool(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// An address or a CIDR block, which a term on an `ip` field accepts.
fn parse_ip_or_cidr(text: &str) -> bool {
    match text.split_once('/') {
        Some((addr, prefix)) => addr.parse::<IpAddr>().is_ok() && prefix.parse::<u8>().is_ok(),
        None => text.parse::<IpAddr>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use logpool_core::query::{parse_query, DefaultOperator};

    use super::*;

    fn compiled(query: &str) -> Value {
        compile(
            &parse_query(query, DefaultOperator::And).expect("query"),
            &Hints::new(),
        )
        .expect("compile")
    }

    #[test]
    fn test_bare_terms_and_phrases_use_core_tokens() {
        assert_eq!(compiled("Reset"), json!({"term": {"_lp_all": "reset"}}));
        assert_eq!(
            compiled("\"Reset by-peer\""),
            json!({"match_phrase": {"_lp_all": {"query": "reset by peer"}}})
        );
        assert_eq!(compiled("\"--\""), json!({"match_none": {}}));
    }

    #[test]
    fn test_field_value_asks_every_type_that_can_hold_it() {
        assert_eq!(
            compiled("status:500"),
            json!({"bool": {"should": [
                {"term": {"_lp_l.status": 500}},
                {"term": {"_lp_d.status": 500.0}},
                {"term": {"_lp_s.status": "500"}}
            ], "minimum_should_match": 1}})
        );
        assert_eq!(
            compiled("http.method:post"),
            json!({"term": {"_lp_s.http%2Emethod": "post"}})
        );
        assert_eq!(
            compiled("ok:TRUE"),
            json!({"bool": {"should": [
                {"term": {"_lp_b.ok": true}},
                {"term": {"_lp_s.ok": "true"}}
            ], "minimum_should_match": 1}})
        );
    }

    #[test]
    fn test_numeric_range_rounds_integer_bounds_inwards() {
        let query = compiled("latency:{250.5 TO 300]");
        let should = query["bool"]["should"].as_array().expect("should");
        assert_eq!(
            should[0],
            json!({"range": {"_lp_d.latency": {"gt": 250.5, "lte": 300.0}}})
        );
        assert_eq!(
            should[1],
            json!({"range": {"_lp_l.latency": {"gte": 251, "lte": 300}}})
        );
        assert_eq!(
            should[2],
            json!({"range": {"_lp_s.latency.keyword": {"gt": "250.5", "lte": "300"}}})
        );
    }

    #[test]
    fn test_time_bounds_are_exact_in_nanoseconds() {
        assert_eq!(
            time_range(Bound::Included(5_000_000), Bound::Excluded(9_000_000)),
            json!({"bool": {"filter": [
                {"range": {"_lp_time_ms": {"gte": 5}}},
                {"range": {"_lp_time_ms": {"lt": 9}}}
            ]}})
        );
        assert_eq!(
            time_range(Bound::Included(5_000_001), Bound::Unbounded),
            json!({"bool": {"should": [
                {"range": {"_lp_time_ms": {"gt": 5}}},
                {"bool": {"filter": [
                    {"term": {"_lp_time_ms": 5}},
                    {"range": {"_lp_time_sub": {"gte": 1}}}
                ]}}
            ], "minimum_should_match": 1}})
        );
        assert_eq!(
            time_range(Bound::Unbounded, Bound::Included(-1)),
            json!({"range": {"_lp_time_ms": {"lte": -1}}})
        );
        assert!(compile(
            &parse_query("time:[bogus TO *]", DefaultOperator::And).expect("query"),
            &Hints::new()
        )
        .is_err());
    }

    #[test]
    fn test_search_after_matches_the_sort() {
        let key = SortKey {
            time_ns: 1_700_000_000_000_000_001,
            tiebreak: 0x10001,
        };
        assert_eq!(
            search_after(key),
            json!([1_700_000_000_000_i64, 1, "0000000000010001"])
        );
    }

    #[test]
    fn test_negations_and_hints() {
        assert_eq!(
            compiled("error -level:info"),
            json!({"bool": {
                "filter": [{"term": {"_lp_all": "error"}}],
                "must_not": [{"term": {"_lp_s.level": "info"}}]
            }})
        );
        let mut hints = Hints::new();
        hints.insert("client".to_string(), FieldType::Ip);
        let query = compile(
            &parse_query("client:10.0.0.0/8", DefaultOperator::And).expect("query"),
            &hints,
        )
        .expect("compile");
        assert!(query
            .to_string()
            .contains(r#"{"term":{"_lp_ip.client":"10.0.0.0/8"}}"#));
    }

    #[test]
    fn test_deepest_accepted_query_compiles_on_a_small_stack() {
        use logpool_core::limits::QueryLimits;
        // `t0 AND NOT (t1 OR NOT (t2 AND …))` as deep as the limits accept.
        let mut text = "x*".to_string();
        for level in 0.. {
            let operator = if level % 2 == 0 { "AND NOT" } else { "OR NOT" };
            let candidate = format!("t{level} {operator} ({text})");
            if parse_query(&candidate, DefaultOperator::And).is_err() {
                break;
            }
            text = candidate;
        }
        let widest = vec!["a:[1 TO 5]"; QueryLimits::default().max_terms].join(" OR ");
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                for text in [text, widest] {
                    let query = parse_query(&text, DefaultOperator::And).expect("accepted");
                    let compiled = compile(&query, &Hints::new()).expect("compile");
                    let body = serde_json::to_string(&compiled).expect("serialise");
                    assert!(!body.is_empty());
                }
            })
            .expect("thread")
            .join()
            .expect("no overflow");
    }
}

//! Compiles the query AST to tantivy queries.
//!
//! Text is matched through the same tokenizer the core crate's in-memory evaluator
//! uses, so `message:"disk full"` means the same thing in search, tail and alerts.
//!
//! Fields typed `keyword`, `ip` or `timestamp` (declared or learned, see
//! [`logpool_core::field_types`]) are also asked in their own JSON field: a keyword
//! by its exact, case-sensitive value (wildcards over the whole value, case-insensitive
//! since query patterns are lowercased), an address or CIDR block as a range of
//! address terms, a time by its nanoseconds. Their overflow text stays findable as text.

use std::collections::BTreeMap;
use std::ops::Bound;

use logpool_core::doc_id::DocIdentity;
use logpool_core::field_types::{ip_number, ip_query_range};
use logpool_core::ingest::parse_time_text;
use logpool_core::query::numeric::{exact_integer, integer_lower, integer_upper};
use logpool_core::query::{is_time_field, tokenize, Query, RangeBound};
use logpool_core::routing::FieldType;
use tantivy::fastfield::FastValue;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, InvertedIndexRangeQuery, Occur, PhraseQuery,
    Query as TantivyQuery, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

use super::line_phrase::phrase_under_path;
use super::schema::{ip_term, LogSchema, MESSAGE};
use crate::index::{parse_time_bound, IndexError, IndexResult};

/// The types of a pool's fields (see [`logpool_core::field_types::effective_types`]).
pub(crate) type FieldTypes = BTreeMap<String, FieldType>;

/// Compiles `query` restricted to `[from_ns, to_ns)`.
pub(crate) fn compile_with_time_range(
    schema: &LogSchema,
    types: &FieldTypes,
    query: &Query,
    from_ns: i64,
    to_ns: i64,
) -> IndexResult<Box<dyn TantivyQuery>> {
    let time_range: Box<dyn TantivyQuery> = Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_i64(schema.time, from_ns)),
        Bound::Excluded(Term::from_field_i64(schema.time, to_ns)),
    ));
    let compiled = compile(schema, types, query)?;
    Ok(Box::new(BooleanQuery::new(vec![
        (Occur::Must, time_range),
        (Occur::Must, compiled),
    ])))
}

/// The record with `identity`: its queue message's key and its tiebreak (which keeps
/// only the low byte of the partition; the key names the whole message). Past the
/// tiebreak's bounds ([`DocIdentity::tiebreak_is_exact`]) two records of one message
/// can share a tiebreak.
pub(crate) fn record_query(schema: &LogSchema, identity: &DocIdentity) -> Box<dyn TantivyQuery> {
    let tiebreak = Term::from_field_u64(schema.tiebreak, identity.tiebreak());
    Box::new(BooleanQuery::new(vec![
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(schema.message_key, &identity.message_key()),
                IndexRecordOption::Basic,
            )) as Box<dyn TantivyQuery>,
        ),
        (
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(tiebreak.clone()),
                Bound::Included(tiebreak),
            )),
        ),
    ]))
}

/// Compiles one AST node.
pub(crate) fn compile(
    schema: &LogSchema,
    types: &FieldTypes,
    query: &Query,
) -> IndexResult<Box<dyn TantivyQuery>> {
    let field_type = |field: &str| types.get(field).copied();
    Ok(match query {
        Query::All => Box::new(AllQuery),
        Query::Term { field: None, value }
        | Query::Phrase {
            field: None,
            text: value,
        } => {
            let tokens = tokenize(value);
            let mut alternatives = vec![text_query(schema.all_text, &tokens, |field, token| {
                Term::from_field_text(field, token)
            })];
            alternatives.extend(
                text_paths(types)
                    .into_iter()
                    .map(|path| json_tokens_query(schema, path, &tokens)),
            );
            alternatives.extend(
                numeric_paths(types).filter_map(|path| number_equals_query(schema, path, value)),
            );
            any_of(alternatives)
        }
        // A quoted value means the same as a bare one (`status:"500"` finds the number),
        // as in the in-memory evaluator and on Elasticsearch.
        Query::Term {
            field: Some(field),
            value,
        }
        | Query::Phrase {
            field: Some(field),
            text: value,
        } => {
            if is_time_field(field) {
                let time_ns = parse_time_bound(value)?;
                time_range(schema, Bound::Included(time_ns), Bound::Included(time_ns))
            } else if field == "_id" {
                match DocIdentity::parse(value) {
                    Some(identity) => record_query(schema, &identity),
                    None => Box::new(EmptyQuery),
                }
            } else {
                with_typed(
                    field_value_query(schema, field, value),
                    typed_value_query(schema, field_type(field), field, value),
                )
            }
        }
        Query::Wildcard {
            field: None,
            pattern,
        } => {
            let regex = wildcard_to_regex(pattern);
            let query = RegexQuery::from_pattern(&regex, schema.all_text)
                .map_err(|e| IndexError::InvalidQuery(format!("wildcard `{pattern}`: {e}")))?;
            any_of(vec![Box::new(query), any_path_text_regex(schema, pattern)?])
        }
        Query::Wildcard {
            field: Some(field),
            pattern,
        } => {
            if is_time_field(field) {
                Box::new(EmptyQuery)
            } else if pattern.chars().all(|c| c == '*') {
                // `field:*` means the field has a value of any type, as on Elasticsearch.
                Box::new(TermQuery::new(
                    Term::from_field_text(schema.field_names, field),
                    IndexRecordOption::Basic,
                ))
            } else {
                let keyword = match field_type(field) {
                    Some(FieldType::Keyword) => {
                        Some(path_regex(schema.keywords, field, pattern, true)?)
                    }
                    _ => None,
                };
                with_typed(
                    path_regex(schema.json_field_of(field), field, pattern, false)?,
                    keyword,
                )
            }
        }
        Query::Range {
            field,
            lower,
            upper,
        } => range_query(schema, field_type(field), field, lower, upper)?,
        Query::Exists { field } => {
            if is_time_field(field) {
                Box::new(AllQuery)
            } else {
                Box::new(TermQuery::new(
                    Term::from_field_text(schema.field_names, field),
                    IndexRecordOption::Basic,
                ))
            }
        }
        Query::And(children) => boolean(schema, types, children, Occur::Must)?,
        Query::Or(children) => boolean(schema, types, children, Occur::Should)?,
        Query::Not(inner) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery) as Box<dyn TantivyQuery>),
            (Occur::MustNot, compile(schema, types, inner)?),
        ])),
    })
}

fn boolean(
    schema: &LogSchema,
    types: &FieldTypes,
    children: &[Query],
    occur: Occur,
) -> IndexResult<Box<dyn TantivyQuery>> {
    let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::with_capacity(children.len());
    let mut has_positive = false;
    for child in children {
        match (occur, child) {
            // `a AND NOT b` becomes one clause list instead of nesting an AllQuery.
            (Occur::Must, Query::Not(inner)) => {
                clauses.push((Occur::MustNot, compile(schema, types, inner)?))
            }
            _ => {
                has_positive = true;
                clauses.push((occur, compile(schema, types, child)?));
            }
        }
    }
    if !has_positive {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// The `fields` paths a bare term is asked in: text values are indexed only under
/// their own path, not in `_all` (see `LogSchema::indexes_in_all_text`). Every field
/// the pool has seen has a learned or declared type, so the pool's types name them
/// all; a path without the term costs one dictionary lookup per segment.
fn text_paths(types: &FieldTypes) -> std::collections::BTreeSet<&str> {
    types
        .keys()
        .map(String::as_str)
        .chain(std::iter::once(MESSAGE))
        .collect()
}

/// The paths that hold numbers: a bare number is asked of each, by value (numbers
/// are not in `_all`, see `LogSchema::indexes_in_all_text`).
fn numeric_paths(types: &FieldTypes) -> impl Iterator<Item = &str> {
    types
        .iter()
        .filter(|(_, field_type)| matches!(field_type, FieldType::Long | FieldType::Double))
        .map(|(path, _)| path.as_str())
}

/// `value` as a number of `path`, when it reads as one: `500`, `500.0` and `5e2` all
/// equal 500, whatever the type of the path's column. Numbers have no terms
/// ([`NUMBERS`](super::schema::NUMBERS)): the range of one value scans the column,
/// and tantivy converts the bound to the column's type (a fraction never equals an
/// integer column's value).
fn number_equals_query(
    schema: &LogSchema,
    path: &str,
    value: &str,
) -> Option<Box<dyn TantivyQuery>> {
    let trimmed = value.trim();
    let term = match exact_integer(trimmed) {
        Some(integer) => number_term(schema, path, integer),
        None => {
            let number = trimmed
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && !below_integer_columns(*x))?;
            number_term(schema, path, number)
        }
    };
    Some(Box::new(RangeQuery::new(
        Bound::Included(term.clone()),
        Bound::Included(term),
    )))
}

/// A bare wildcard over the text values of every path of `fields`: the path part of
/// the term is any run of bytes up to tantivy's end-of-path marker.
fn any_path_text_regex(schema: &LogSchema, pattern: &str) -> IndexResult<Box<dyn TantivyQuery>> {
    let mut regex = String::from("[^\\x00]*\\x00");
    push_literal(&mut regex, char::from(tantivy::schema::Type::Str.to_code()));
    regex.push_str(&wildcard_to_regex(pattern));
    let mut queries: Vec<Box<dyn TantivyQuery>> = Vec::with_capacity(2);
    // The raw line has a JSON field of its own (`LogSchema::json_field_of`).
    for field in [schema.fields, schema.full_text] {
        let query = RegexQuery::from_pattern(&regex, field)
            .map_err(|e| IndexError::InvalidQuery(format!("wildcard `{pattern}`: {e}")))?;
        queries.push(Box::new(query));
    }
    Ok(any_of(queries))
}

/// Bare text lives in `_all` (values that are not text) and under each field's own
/// path (text): a bare query matches any of them.
fn any_of(queries: Vec<Box<dyn TantivyQuery>>) -> Box<dyn TantivyQuery> {
    Box::new(BooleanQuery::new(
        queries
            .into_iter()
            .map(|query| (Occur::Should, query))
            .collect(),
    ))
}

/// A term or phrase over tokens; no tokens matches nothing.
fn text_query(
    field: Field,
    tokens: &[String],
    make_term: impl Fn(Field, &str) -> Term,
) -> Box<dyn TantivyQuery> {
    match tokens {
        [] => Box::new(EmptyQuery),
        [token] => Box::new(TermQuery::new(
            make_term(field, token),
            IndexRecordOption::Basic,
        )),
        _ => Box::new(PhraseQuery::new(
            tokens.iter().map(|token| make_term(field, token)).collect(),
        )),
    }
}

fn json_path_term(schema: &LogSchema, path: &str) -> Term {
    Term::from_field_json_path(schema.json_field_of(path), path, true)
}

/// Whether a float lies below every integer a column can hold. tantivy turns such an
/// upper bound into no bound at all on an integer column, so a range ending there
/// would match every value of it; logpool asks no column for these numbers (a
/// double below -9.2e18 in a log is not something anyone searches for).
fn below_integer_columns(number: f64) -> bool {
    number < i64::MIN as f64
}

/// `value` as a number of `path`: a bound of a range on the path's column.
pub(crate) fn number_term<T: FastValue>(schema: &LogSchema, path: &str, value: T) -> Term {
    let mut term = Term::from_field_json_path(schema.numbers, path, true);
    term.append_type_and_fast_value(value);
    term
}

/// `query`, or it OR the typed clause when the field's type has one.
fn with_typed(
    query: Box<dyn TantivyQuery>,
    typed: Option<Box<dyn TantivyQuery>>,
) -> Box<dyn TantivyQuery> {
    match typed {
        None => query,
        Some(typed) => any_of(vec![query, typed]),
    }
}

fn keyword_term(schema: &LogSchema, path: &str, value: &str) -> Term {
    let mut term = Term::from_field_json_path(schema.keywords, path, true);
    term.append_type_and_str(value);
    term
}

fn ip_path_term(schema: &LogSchema, path: &str, number: u128) -> Term {
    let mut term = Term::from_field_json_path(schema.ips, path, true);
    term.append_type_and_str(&ip_term(number));
    term
}

fn timestamp_term(schema: &LogSchema, path: &str, time_ns: i64) -> Term {
    let mut term = Term::from_field_json_path(schema.timestamps, path, true);
    term.append_type_and_fast_value(time_ns);
    term
}

/// `field:value` in the JSON field of a `keyword`, `ip` or `timestamp` field; `None`
/// for other types or a value that cannot have the type (it may still match the
/// overflow text).
fn typed_value_query(
    schema: &LogSchema,
    field_type: Option<FieldType>,
    path: &str,
    value: &str,
) -> Option<Box<dyn TantivyQuery>> {
    match field_type? {
        FieldType::Keyword => Some(Box::new(TermQuery::new(
            keyword_term(schema, path, value),
            IndexRecordOption::Basic,
        ))),
        FieldType::Ip => {
            let (first, last) = ip_query_range(value)?;
            Some(Box::new(InvertedIndexRangeQuery::new(
                Bound::Included(ip_path_term(schema, path, first)),
                Bound::Included(ip_path_term(schema, path, last)),
            )))
        }
        FieldType::Timestamp => {
            let time_ns = parse_time_text(value).ok()?;
            Some(Box::new(TermQuery::new(
                timestamp_term(schema, path, time_ns),
                IndexRecordOption::Basic,
            )))
        }
        FieldType::Text | FieldType::Long | FieldType::Double | FieldType::Bool => None,
    }
}

/// A range in the JSON field of a `keyword`, `ip` or `timestamp` field. Keywords
/// compare raw (case-sensitive) text, addresses numerically, times in ns; a bound
/// that cannot have the type matches nothing there.
fn typed_range_query(
    schema: &LogSchema,
    field_type: Option<FieldType>,
    path: &str,
    lower: &RangeBound,
    upper: &RangeBound,
) -> Option<Box<dyn TantivyQuery>> {
    fn bound<T>(
        bound: &RangeBound,
        open: T,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<Bound<T>> {
        Some(match bound {
            RangeBound::Unbounded => Bound::Included(open),
            RangeBound::Inclusive(v) => Bound::Included(parse(v)?),
            RangeBound::Exclusive(v) => Bound::Excluded(parse(v)?),
        })
    }
    let range = |low: Bound<Term>, high: Bound<Term>| -> Box<dyn TantivyQuery> {
        Box::new(InvertedIndexRangeQuery::new(low, high))
    };
    match field_type? {
        FieldType::Keyword => {
            let raw = |v: &str| Some(keyword_term(schema, path, v));
            Some(range(
                bound(lower, keyword_term(schema, path, ""), raw)?,
                bound(upper, keyword_term(schema, path, "\u{10ffff}"), raw)?,
            ))
        }
        FieldType::Ip => {
            let address = |v: &str| {
                v.trim()
                    .parse()
                    .ok()
                    .map(|a| ip_path_term(schema, path, ip_number(a)))
            };
            Some(range(
                bound(lower, ip_path_term(schema, path, 0), address)?,
                bound(upper, ip_path_term(schema, path, u128::MAX), address)?,
            ))
        }
        FieldType::Timestamp => {
            let time = |v: &str| {
                parse_time_text(v)
                    .ok()
                    .map(|t| timestamp_term(schema, path, t))
            };
            Some(range(
                bound(lower, timestamp_term(schema, path, i64::MIN), time)?,
                bound(upper, timestamp_term(schema, path, i64::MAX), time)?,
            ))
        }
        FieldType::Text | FieldType::Long | FieldType::Double | FieldType::Bool => None,
    }
}

/// Text of a JSON path, matched through the tokenizer.
fn json_text_query(schema: &LogSchema, path: &str, text: &str) -> Box<dyn TantivyQuery> {
    json_tokens_query(schema, path, &tokenize(text))
}

fn json_tokens_query(schema: &LogSchema, path: &str, tokens: &[String]) -> Box<dyn TantivyQuery> {
    let make_term = |token: &str| {
        let mut term = json_path_term(schema, path);
        term.append_type_and_str(token);
        term
    };
    match tokens {
        [_, _, ..] => {
            let terms = tokens.iter().map(|token| make_term(token)).collect();
            phrase_under_path(schema, path, terms, tokens)
        }
        _ => text_query(schema.json_field_of(path), tokens, |_, token| {
            make_term(token)
        }),
    }
}

/// `field:value`: the value as a number or bool when it reads as one, or as text.
fn field_value_query(schema: &LogSchema, path: &str, value: &str) -> Box<dyn TantivyQuery> {
    let mut alternatives: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
    if let Some(number) = number_equals_query(schema, path, value) {
        alternatives.push((Occur::Should, number));
    }
    if let Ok(flag) = value.trim().parse::<bool>() {
        let mut term = json_path_term(schema, path);
        term.append_type_and_fast_value(flag);
        alternatives.push((
            Occur::Should,
            Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        ));
    }
    alternatives.push((Occur::Should, json_text_query(schema, path, value)));
    Box::new(BooleanQuery::new(alternatives))
}

fn time_range(schema: &LogSchema, lower: Bound<i64>, upper: Bound<i64>) -> Box<dyn TantivyQuery> {
    let to_term = |bound: Bound<i64>| match bound {
        Bound::Included(t) => Bound::Included(Term::from_field_i64(schema.time, t)),
        Bound::Excluded(t) => Bound::Excluded(Term::from_field_i64(schema.time, t)),
        Bound::Unbounded => Bound::Unbounded,
    };
    if matches!((lower, upper), (Bound::Unbounded, Bound::Unbounded)) {
        return Box::new(AllQuery);
    }
    Box::new(RangeQuery::new(to_term(lower), to_term(upper)))
}

fn range_query(
    schema: &LogSchema,
    field_type: Option<FieldType>,
    field: &str,
    lower: &RangeBound,
    upper: &RangeBound,
) -> IndexResult<Box<dyn TantivyQuery>> {
    if is_time_field(field) {
        let convert = |bound: &RangeBound| -> IndexResult<Bound<i64>> {
            Ok(match bound {
                RangeBound::Unbounded => Bound::Unbounded,
                RangeBound::Inclusive(v) => Bound::Included(parse_time_bound(v)?),
                RangeBound::Exclusive(v) => Bound::Excluded(parse_time_bound(v)?),
            })
        };
        return Ok(time_range(schema, convert(lower)?, convert(upper)?));
    }
    if matches!(
        (lower, upper),
        (RangeBound::Unbounded, RangeBound::Unbounded)
    ) {
        return Ok(Box::new(TermQuery::new(
            Term::from_field_text(schema.field_names, field),
            IndexRecordOption::Basic,
        )));
    }
    let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
    let numeric = |bound: &RangeBound| match bound {
        RangeBound::Unbounded => Some(Bound::Unbounded),
        RangeBound::Inclusive(v) => v.parse::<f64>().ok().map(Bound::Included),
        RangeBound::Exclusive(v) => v.parse::<f64>().ok().map(Bound::Excluded),
    };
    // In a field typed other than text or keyword, the text holds only values that
    // conflicted with the type, which typed queries do not see.
    let declared_typed = matches!(
        field_type,
        Some(
            FieldType::Long
                | FieldType::Double
                | FieldType::Bool
                | FieldType::Ip
                | FieldType::Timestamp
        )
    );
    // The raw line is text only and has no column to run a numeric range on: its
    // ranges compare tokens, as on a text field without a keyword in Elasticsearch.
    let full_text_only = schema.json_field_of(field) == schema.full_text;
    let numeric_bounds = if full_text_only {
        None
    } else {
        numeric(lower).zip(numeric(upper))
    };
    if let Some((low, high)) = numeric_bounds {
        let f64_term = |value: f64| number_term(schema, field, value);
        let i64_term = |value: i64| number_term(schema, field, value);
        // Without an explicit bound the range must still stay inside this path and type.
        // `RangeQuery` reads the path's fast column: a wide range over a field with
        // many distinct values (ids, sequence numbers) would otherwise union the
        // postings of every term in it (60x slower at 1 M distinct values).
        let f64_range = RangeQuery::new(
            map_bound(low, f64::MIN, f64_term),
            map_bound(high, f64::MAX, f64_term),
        );
        let i64_range = RangeQuery::new(
            map_bound(integer_lower(low), i64::MIN, i64_term),
            map_bound(integer_upper(high), i64::MAX, i64_term),
        );
        // A field typed long or double (by a hint, or learned from its first value)
        // holds numbers of that type only, so one column is scanned instead of two:
        // a union of both would read every value of both columns, where a single
        // range lets the other clauses' postings drive the match.
        let upper_below_integers = matches!(
            high,
            Bound::Included(v) | Bound::Excluded(v) if below_integer_columns(v)
        );
        if field_type != Some(FieldType::Long) && !upper_below_integers {
            clauses.push((Occur::Should, Box::new(f64_range)));
        }
        if field_type != Some(FieldType::Double) {
            clauses.push((Occur::Should, Box::new(i64_range)));
        }
    } else if !declared_typed {
        // Non-numeric bounds compare the lowercased tokens, as a keyword would.
        let text_term = |value: String| {
            let mut term = json_path_term(schema, field);
            term.append_type_and_str(&value);
            term
        };
        let text_bound = |bound: &RangeBound, open: String| match bound {
            RangeBound::Unbounded => Bound::Included(open),
            RangeBound::Inclusive(v) => Bound::Included(v.to_lowercase()),
            RangeBound::Exclusive(v) => Bound::Excluded(v.to_lowercase()),
        };
        let low = text_bound(lower, String::new());
        let high = text_bound(upper, "\u{10ffff}".to_string());
        clauses.push((
            Occur::Should,
            Box::new(InvertedIndexRangeQuery::new(
                low.map(text_term),
                high.map(text_term),
            )),
        ));
    }
    if let Some(typed) = typed_range_query(schema, field_type, field, lower, upper) {
        clauses.push((Occur::Should, typed));
    }
    Ok(match clauses.len() {
        0 => Box::new(EmptyQuery),
        _ => Box::new(BooleanQuery::new(clauses)),
    })
}

fn map_bound<T: Copy>(bound: Bound<T>, open: T, make: impl Fn(T) -> Term) -> Bound<Term> {
    match bound {
        Bound::Included(v) => Bound::Included(make(v)),
        Bound::Excluded(v) => Bound::Excluded(make(v)),
        Bound::Unbounded => Bound::Included(make(open)),
    }
}

/// `field:pattern`: a regex over the terms of one path of a JSON field (`fields`:
/// the text tokens; `kw`: whole keyword values). A JSON field keeps every path and
/// type in one term dictionary, keyed `path \0 type value`, so the regex is anchored
/// on this path and the string type: numbers and bools never match a wildcard, as in
/// the in-memory evaluator and on Elasticsearch. Patterns come lowercased from the
/// parser, so a whole-value (keyword) match ignores case.
fn path_regex(
    json_field: Field,
    field: &str,
    pattern: &str,
    ignore_case: bool,
) -> IndexResult<Box<dyn TantivyQuery>> {
    let path_term = Term::from_field_json_path(json_field, field, true);
    let path_bytes = path_term.serialized_value_bytes();
    let path = std::str::from_utf8(path_bytes)
        .map_err(|e| IndexError::InvalidQuery(format!("field `{field}`: {e}")))?;
    let mut regex = String::new();
    for c in path.chars() {
        push_literal(&mut regex, c);
    }
    push_literal(&mut regex, char::from(tantivy::schema::Type::Str.to_code()));
    if ignore_case {
        regex.push_str("(?i:");
    }
    regex.push_str(&wildcard_to_regex(pattern));
    if ignore_case {
        regex.push(')');
    }
    let query = RegexQuery::from_pattern(&regex, json_field)
        .map_err(|e| IndexError::InvalidQuery(format!("wildcard `{field}:{pattern}`: {e}")))?;
    Ok(Box::new(query))
}

/// Turns a wildcard pattern into an anchored regex over one token.
fn wildcard_to_regex(pattern: &str) -> String {
    let mut regex = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            '\\' => {
                if let Some(escaped) = chars.next() {
                    push_literal(&mut regex, escaped);
                }
            }
            other => push_literal(&mut regex, other),
        }
    }
    regex
}

fn push_literal(regex: &mut String, c: char) {
    if c.is_alphanumeric() {
        regex.push(c);
    } else {
        // `\x{..}` is valid for every character, including control characters and
        // punctuation that has no escape of its own.
        regex.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
    }
}

#[cfg(test)]
mod stack_tests {
    use logpool_core::limits::QueryLimits;
    use logpool_core::query::limits::measure;
    use logpool_core::query::{parse_query, DefaultOperator};

    use super::*;

    /// `t0 AND NOT (t1 OR NOT (t2 AND …))`: the deepest nesting the limits accept,
    /// with a NOT at every other level.
    fn deepest_accepted() -> Query {
        let limits = QueryLimits::default();
        let mut text = "x*".to_string();
        let mut level = 0;
        loop {
            let operator = if level % 2 == 0 { "AND NOT" } else { "OR NOT" };
            let candidate = format!("t{level} {operator} ({text})");
            match parse_query(&candidate, DefaultOperator::And) {
                Ok(_) => text = candidate,
                Err(_) => break,
            }
            level += 1;
        }
        let query = parse_query(&text, DefaultOperator::And).expect("accepted");
        assert!(measure(&query).depth + 1 >= limits.max_depth);
        query
    }

    #[test]
    fn test_worst_accepted_queries_compile_on_a_small_stack() {
        let limits = QueryLimits::default();
        let queries = [
            deepest_accepted(),
            parse_query(
                &vec!["status:[1 TO 5]"; limits.max_terms].join(" OR "),
                DefaultOperator::And,
            )
            .expect("max_terms"),
            parse_query(
                &vec!["h*llo"; limits.max_wildcards].join(" OR "),
                DefaultOperator::And,
            )
            .expect("max_wildcards"),
        ];
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let schema = LogSchema::new();
                let types = FieldTypes::new();
                for query in queries {
                    let compiled = compile_with_time_range(&schema, &types, &query, 0, i64::MAX)
                        .expect("compiles");
                    drop(compiled);
                }
            })
            .expect("thread")
            .join()
            .expect("no overflow");
    }
}

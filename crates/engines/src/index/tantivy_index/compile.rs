//! Compiles the query AST to tantivy queries.
//!
//! Text is matched through the same tokenizer the core crate's in-memory evaluator
//! uses, so `message:"disk full"` means the same thing in search, tail and alerts.

use std::ops::Bound;

use logpool_core::query::numeric::{integer_lower, integer_upper};
use logpool_core::query::{is_time_field, tokenize, Query, RangeBound};
use tantivy::json_utils::convert_to_fast_value_and_append_to_json_term;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, InvertedIndexRangeQuery, Occur, PhraseQuery,
    Query as TantivyQuery, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

use super::schema::{LogSchema, MESSAGE};
use crate::index::{parse_time_bound, IndexError, IndexResult};

/// Compiles `query` restricted to `[from_ns, to_ns)`.
pub(crate) fn compile_with_time_range(
    schema: &LogSchema,
    query: &Query,
    from_ns: i64,
    to_ns: i64,
) -> IndexResult<Box<dyn TantivyQuery>> {
    let time_range: Box<dyn TantivyQuery> = Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_i64(schema.time, from_ns)),
        Bound::Excluded(Term::from_field_i64(schema.time, to_ns)),
    ));
    let compiled = compile(schema, query)?;
    Ok(Box::new(BooleanQuery::new(vec![
        (Occur::Must, time_range),
        (Occur::Must, compiled),
    ])))
}

/// Compiles one AST node.
pub(crate) fn compile(schema: &LogSchema, query: &Query) -> IndexResult<Box<dyn TantivyQuery>> {
    Ok(match query {
        Query::All => Box::new(AllQuery),
        Query::Term { field: None, value }
        | Query::Phrase {
            field: None,
            text: value,
        } => any_of(vec![
            text_query(schema.all_text, &tokenize(value), |field, token| {
                Term::from_field_text(field, token)
            }),
            json_text_query(schema, MESSAGE, value),
        ]),
        Query::Term {
            field: Some(field),
            value,
        } => {
            if is_time_field(field) {
                let time_ns = parse_time_bound(value)?;
                time_range(schema, Bound::Included(time_ns), Bound::Included(time_ns))
            } else if field == "_id" {
                Box::new(TermQuery::new(
                    Term::from_field_text(schema.id, value),
                    IndexRecordOption::Basic,
                ))
            } else {
                field_value_query(schema, field, value)
            }
        }
        Query::Phrase {
            field: Some(field),
            text,
        } => json_text_query(schema, field, text),
        Query::Wildcard {
            field: None,
            pattern,
        } => {
            let regex = wildcard_to_regex(pattern);
            let query = RegexQuery::from_pattern(&regex, schema.all_text)
                .map_err(|e| IndexError::InvalidQuery(format!("wildcard `{pattern}`: {e}")))?;
            any_of(vec![
                Box::new(query),
                named_wildcard(schema, MESSAGE, pattern)?,
            ])
        }
        Query::Wildcard {
            field: Some(field),
            pattern,
        } => {
            if is_time_field(field) {
                Box::new(EmptyQuery)
            } else {
                named_wildcard(schema, field, pattern)?
            }
        }
        Query::Range {
            field,
            lower,
            upper,
        } => range_query(schema, field, lower, upper)?,
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
        Query::And(children) => boolean(schema, children, Occur::Must)?,
        Query::Or(children) => boolean(schema, children, Occur::Should)?,
        Query::Not(inner) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery) as Box<dyn TantivyQuery>),
            (Occur::MustNot, compile(schema, inner)?),
        ])),
    })
}

fn boolean(
    schema: &LogSchema,
    children: &[Query],
    occur: Occur,
) -> IndexResult<Box<dyn TantivyQuery>> {
    let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::with_capacity(children.len());
    let mut has_positive = false;
    for child in children {
        match (occur, child) {
            // `a AND NOT b` becomes one clause list instead of nesting an AllQuery.
            (Occur::Must, Query::Not(inner)) => {
                clauses.push((Occur::MustNot, compile(schema, inner)?))
            }
            _ => {
                has_positive = true;
                clauses.push((occur, compile(schema, child)?));
            }
        }
    }
    if !has_positive {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Bare text lives in `_all` and, for the message, in `fields.message` only (see
/// `LogSchema::indexes_in_all_text`): a bare query matches either.
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
    Term::from_field_json_path(schema.fields, path, true)
}

/// Text of a JSON path, matched through the tokenizer.
fn json_text_query(schema: &LogSchema, path: &str, text: &str) -> Box<dyn TantivyQuery> {
    text_query(schema.fields, &tokenize(text), |_, token| {
        let mut term = json_path_term(schema, path);
        term.append_type_and_str(token);
        term
    })
}

/// `field:value`: the value as a number or bool when it reads as one, or as text.
fn field_value_query(schema: &LogSchema, path: &str, value: &str) -> Box<dyn TantivyQuery> {
    let mut alternatives: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
    if let Some(typed) =
        convert_to_fast_value_and_append_to_json_term(&json_path_term(schema, path), value, true)
    {
        alternatives.push((
            Occur::Should,
            Box::new(TermQuery::new(typed, IndexRecordOption::Basic)),
        ));
    }
    // Integers are stored as i64 and fractions as f64: `500` must also find 500.0.
    if let Ok(number) = value.parse::<f64>() {
        let mut term = json_path_term(schema, path);
        term.append_type_and_fast_value(number);
        alternatives.push((
            Occur::Should,
            Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        ));
        if number.fract() == 0.0 && number.abs() < 9.0e15 {
            let mut term = json_path_term(schema, path);
            term.append_type_and_fast_value(number as i64);
            alternatives.push((
                Occur::Should,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
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
    let numeric = |bound: &RangeBound| match bound {
        RangeBound::Unbounded => Some(Bound::Unbounded),
        RangeBound::Inclusive(v) => v.parse::<f64>().ok().map(Bound::Included),
        RangeBound::Exclusive(v) => v.parse::<f64>().ok().map(Bound::Excluded),
    };
    if let (Some(low), Some(high)) = (numeric(lower), numeric(upper)) {
        if matches!((low, high), (Bound::Unbounded, Bound::Unbounded)) {
            return Ok(Box::new(TermQuery::new(
                Term::from_field_text(schema.field_names, field),
                IndexRecordOption::Basic,
            )));
        }
        let f64_term = |value: f64| {
            let mut term = json_path_term(schema, field);
            term.append_type_and_fast_value(value);
            term
        };
        let i64_term = |value: i64| {
            let mut term = json_path_term(schema, field);
            term.append_type_and_fast_value(value);
            term
        };
        // Without an explicit bound the range must still stay inside this path and type.
        let f64_range = InvertedIndexRangeQuery::new(
            map_bound(low, f64::MIN, f64_term),
            map_bound(high, f64::MAX, f64_term),
        );
        let i64_range = InvertedIndexRangeQuery::new(
            map_bound(integer_lower(low), i64::MIN, i64_term),
            map_bound(integer_upper(high), i64::MAX, i64_term),
        );
        return Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Should, Box::new(f64_range) as Box<dyn TantivyQuery>),
            (Occur::Should, Box::new(i64_range)),
        ])));
    }
    // Non-numeric bounds compare the lowercased tokens, as a keyword range would.
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
    Ok(Box::new(InvertedIndexRangeQuery::new(
        low.map(text_term),
        high.map(text_term),
    )))
}

fn map_bound<T: Copy>(bound: Bound<T>, open: T, make: impl Fn(T) -> Term) -> Bound<Term> {
    match bound {
        Bound::Included(v) => Bound::Included(make(v)),
        Bound::Excluded(v) => Bound::Excluded(make(v)),
        Bound::Unbounded => Bound::Included(make(open)),
    }
}

/// `field:pattern`: a regex over the field's text tokens. A JSON field keeps every
/// path and type in one term dictionary, keyed `path \0 type value`, so the regex is
/// anchored on this path and the string type: numbers and bools never match a
/// wildcard, as in the in-memory evaluator and on Elasticsearch.
fn named_wildcard(
    schema: &LogSchema,
    field: &str,
    pattern: &str,
) -> IndexResult<Box<dyn TantivyQuery>> {
    let path_term = json_path_term(schema, field);
    let path_bytes = path_term.serialized_value_bytes();
    let path = std::str::from_utf8(path_bytes)
        .map_err(|e| IndexError::InvalidQuery(format!("field `{field}`: {e}")))?;
    let mut regex = String::new();
    for c in path.chars() {
        push_literal(&mut regex, c);
    }
    push_literal(&mut regex, char::from(tantivy::schema::Type::Str.to_code()));
    regex.push_str(&wildcard_to_regex(pattern));
    let query = RegexQuery::from_pattern(&regex, schema.fields)
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

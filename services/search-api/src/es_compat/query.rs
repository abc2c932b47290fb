//! The `query` of a search request, in Elasticsearch's query DSL, as the product's
//! own [`Query`] and a time range.
//!
//! Grafana sends `bool.filter: [{range: {"@timestamp": {gte, lte, format:
//! "epoch_millis"}}}, {query_string: {query}}]`; its ad-hoc filters add
//! `match_phrase`, `exists`, `range` and `must_not`. A `query_string` is the
//! product's query language itself (Lucene syntax) and goes to its parser. A range on
//! the time field (`@timestamp`) that every match must satisfy becomes the search's
//! time range, so the planner skips the partitions outside it.

use logpool_core::query::{
    is_time_field, parse_query, DefaultOperator, Query, RangeBound, TIME_FIELD_NAMES,
};
use logpool_core::record::format_time_ns;
use logpool_core::timeexpr::parse_time_expr;
use serde_json::{Map, Value};

use super::error::EsError;

/// The time field Grafana is told to use; `time` is accepted too.
pub const TIME_FIELD: &str = "@timestamp";

/// A query and the time range every match lies in.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// What records must match.
    pub query: Query,
    /// Inclusive start, ns (`i64::MIN`: open).
    pub from_ns: i64,
    /// Exclusive end, ns (`i64::MAX`: open).
    pub to_ns: i64,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            query: Query::All,
            from_ns: i64::MIN,
            to_ns: i64::MAX,
        }
    }
}

/// Reads a query DSL object (absent: every record).
///
/// # Errors
/// A `parsing_exception` naming the clause or key that is not supported or wrong.
pub fn translate(query: Option<&Value>, now_ns: i64) -> Result<Filter, EsError> {
    let mut filter = Filter::default();
    if let Some(query) = query {
        let translated = Translator { now_ns }.clause(query, true, &mut filter)?;
        filter.query = translated;
    }
    Ok(filter)
}

struct Translator {
    now_ns: i64,
}

impl Translator {
    /// One clause. `required`: every match must satisfy it (it is under `must` or
    /// `filter` only), so a time range in it narrows the search's range.
    fn clause(&self, value: &Value, required: bool, filter: &mut Filter) -> Result<Query, EsError> {
        let object = value
            .as_object()
            .ok_or_else(|| EsError::parsing("a query clause must be an object"))?;
        let mut entries = object.iter();
        let (Some((kind, body)), None) = (entries.next(), entries.next()) else {
            return Err(EsError::parsing(
                "a query clause must have exactly one key, e.g. {\"query_string\": {...}}",
            ));
        };
        match kind.as_str() {
            "match_all" => Ok(Query::All),
            "match_none" => Ok(Query::Not(Box::new(Query::All))),
            "query_string" => query_string(body),
            "bool" => self.boolean(body, required, filter),
            "range" => self.range(body, required, filter),
            "term" => field_value(kind, body, "value").map(|(field, value)| Query::Term {
                field: Some(field),
                value,
            }),
            "match_phrase" => field_value(kind, body, "query").map(|(field, text)| Query::Phrase {
                field: Some(field),
                text,
            }),
            "match" => field_value(kind, body, "query").map(|(field, text)| words(field, &text)),
            "terms" => terms(body),
            "exists" => {
                let field = body
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or_else(|| EsError::parsing("[exists] needs a `field` string"))?;
                Ok(Query::Exists {
                    field: field.to_string(),
                })
            }
            "prefix" => field_value(kind, body, "value").map(|(field, value)| Query::Wildcard {
                field: Some(field),
                pattern: format!("{}*", escape_pattern(&value.to_lowercase())),
            }),
            "wildcard" => field_value(kind, body, "value").map(|(field, value)| Query::Wildcard {
                field: Some(field),
                pattern: value.to_lowercase(),
            }),
            other => Err(EsError::unsupported(
                other,
                "use query_string, bool, range, term, terms, match, match_phrase, exists, \
                 prefix, wildcard or match_all",
            )),
        }
    }

    fn boolean(&self, body: &Value, required: bool, filter: &mut Filter) -> Result<Query, EsError> {
        let object = object_of("bool", body)?;
        let mut all = Vec::new();
        let mut any = Vec::new();
        let mut none = Vec::new();
        for (key, value) in object {
            match key.as_str() {
                "must" | "filter" => {
                    for clause in clauses(value) {
                        all.push(self.clause(clause, required, filter)?);
                    }
                }
                "should" => {
                    for clause in clauses(value) {
                        any.push(self.clause(clause, false, filter)?);
                    }
                }
                "must_not" => {
                    for clause in clauses(value) {
                        none.push(self.clause(clause, false, filter)?);
                    }
                }
                "minimum_should_match" => {
                    if !matches!(value.as_i64(), Some(1)) && value.as_str() != Some("1") {
                        return Err(EsError::unsupported(
                            "bool.minimum_should_match",
                            "only 1 is supported",
                        ));
                    }
                }
                "boost" | "_name" | "adjust_pure_negative" => {}
                other => return Err(EsError::unsupported(&format!("bool.{other}"), "")),
            }
        }
        // `should` only counts when nothing else is required (or it is asked to):
        // without scores, an optional clause changes nothing.
        let should_required = all.is_empty() || object.contains_key("minimum_should_match");
        if !any.is_empty() && should_required {
            all.push(simplify_or(any));
        }
        all.extend(none.into_iter().map(|query| Query::Not(Box::new(query))));
        Ok(simplify_and(all))
    }

    fn range(&self, body: &Value, required: bool, filter: &mut Filter) -> Result<Query, EsError> {
        let (field, bounds) = single_field("range", body)?;
        let bounds = object_of("range", bounds)?;
        let mut lower = RangeBound::Unbounded;
        let mut upper = RangeBound::Unbounded;
        let is_time = is_time_field(&field);
        let format = bounds.get("format").and_then(Value::as_str);
        let mut from_ns = i64::MIN;
        let mut to_ns = i64::MAX;
        for (key, value) in bounds {
            match key.as_str() {
                "gte" | "gt" | "lte" | "lt" | "from" | "to" if value.is_null() => {}
                "gte" | "gt" | "lte" | "lt" | "from" | "to" if is_time => {
                    let (time_ns, step) = self.time_of(&field, value, format)?;
                    match key.as_str() {
                        "gte" | "from" => from_ns = from_ns.max(time_ns),
                        "gt" => from_ns = from_ns.max(time_ns.saturating_add(step)),
                        "lte" | "to" => to_ns = to_ns.min(time_ns.saturating_add(step)),
                        _ => to_ns = to_ns.min(time_ns),
                    }
                }
                "gte" | "gt" | "lte" | "lt" => {
                    let text = scalar_text(value).ok_or_else(|| {
                        EsError::parsing(format!(
                            "[range.{field}.{key}] must be a number or string"
                        ))
                    })?;
                    match key.as_str() {
                        "gte" => lower = RangeBound::Inclusive(text),
                        "gt" => lower = RangeBound::Exclusive(text),
                        "lte" => upper = RangeBound::Inclusive(text),
                        _ => upper = RangeBound::Exclusive(text),
                    }
                }
                "format" | "boost" | "_name" | "include_lower" | "include_upper" => {}
                "time_zone" if is_utc(value) => {}
                other => return Err(EsError::unsupported(&format!("range.{field}.{other}"), "")),
            }
        }
        if !is_time {
            return Ok(Query::Range {
                field,
                lower,
                upper,
            });
        }
        if required {
            filter.from_ns = filter.from_ns.max(from_ns);
            filter.to_ns = filter.to_ns.min(to_ns);
            return Ok(Query::All);
        }
        // Under `should` or `must_not`: a range on the time field in the query itself.
        let bound = |time_ns: i64| {
            (time_ns != i64::MIN && time_ns != i64::MAX).then(|| format_time_ns(time_ns))
        };
        Ok(Query::Range {
            field,
            lower: bound(from_ns).map_or(RangeBound::Unbounded, RangeBound::Inclusive),
            upper: bound(to_ns).map_or(RangeBound::Unbounded, RangeBound::Exclusive),
        })
    }

    /// A time bound and the step that makes an inclusive bound exclusive: one
    /// millisecond for epoch milliseconds (what Elasticsearch's `date` resolves), one
    /// nanosecond for a written time.
    fn time_of(
        &self,
        field: &str,
        value: &Value,
        format: Option<&str>,
    ) -> Result<(i64, i64), EsError> {
        const MS: i64 = 1_000_000;
        let bad = |detail: String| EsError::parsing(format!("[range.{field}]: {detail}"));
        let epoch = |number: i64| match format {
            Some("epoch_second") => Ok((number.saturating_mul(1_000_000_000), 1_000_000_000)),
            _ => Ok((number.saturating_mul(MS), MS)),
        };
        match value {
            Value::Number(number) => match number.as_i64() {
                Some(number) => epoch(number),
                None => Err(bad(format!(
                    "`{number}` is not a whole number of milliseconds"
                ))),
            },
            Value::String(text) => match text.parse::<i64>() {
                Ok(number) => epoch(number),
                Err(_) => parse_time_expr(text, self.now_ns)
                    .map(|time_ns| (time_ns, 1))
                    .map_err(bad),
            },
            _ => Err(bad("a time bound must be a number or a string".to_string())),
        }
    }
}

/// Whether a `time_zone` is UTC (the only zone ranges and buckets are read in).
pub fn is_utc(value: &Value) -> bool {
    matches!(
        value.as_str(),
        Some("UTC" | "utc" | "Z" | "+00:00" | "Etc/UTC" | "GMT")
    )
}

fn query_string(body: &Value) -> Result<Query, EsError> {
    let object = object_of("query_string", body)?;
    let mut operator = DefaultOperator::And;
    let mut text = None;
    for (key, value) in object {
        match key.as_str() {
            "query" => text = value.as_str(),
            "default_operator" => {
                operator = match value.as_str().map(str::to_ascii_lowercase).as_deref() {
                    Some("and") => DefaultOperator::And,
                    Some("or") => DefaultOperator::Or,
                    _ => {
                        return Err(EsError::parsing(
                            "[query_string.default_operator] must be `AND` or `OR`",
                        ))
                    }
                }
            }
            "default_field" | "fields" if is_every_field(value) => {}
            "analyze_wildcard"
            | "lenient"
            | "boost"
            | "_name"
            | "allow_leading_wildcard"
            | "time_zone" => {}
            other => {
                return Err(EsError::unsupported(
                    &format!("query_string.{other}"),
                    "a bare term searches every field; name one with `field:term`",
                ))
            }
        }
    }
    let text = text.ok_or_else(|| EsError::parsing("[query_string] needs a `query` string"))?;
    parse_query(text, operator).map_err(|error| {
        EsError::parsing(format!("[query_string.query] could not be parsed: {error}"))
    })
}

fn is_every_field(value: &Value) -> bool {
    match value {
        Value::String(text) => text == "*",
        Value::Array(items) => items.len() == 1 && items[0].as_str() == Some("*"),
        _ => false,
    }
}

fn clauses(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn object_of<'a>(key: &str, value: &'a Value) -> Result<&'a Map<String, Value>, EsError> {
    value
        .as_object()
        .ok_or_else(|| EsError::parsing(format!("[{key}] must be an object")))
}

/// `{field: body}`, exactly one field.
fn single_field<'a>(key: &str, body: &'a Value) -> Result<(String, &'a Value), EsError> {
    let object = object_of(key, body)?;
    let mut fields = object
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "boost" | "_name"));
    match (fields.next(), fields.next()) {
        (Some((field, value)), None) => Ok((field_name(field), value)),
        _ => Err(EsError::parsing(format!(
            "[{key}] must name exactly one field"
        ))),
    }
}

/// `{field: value}` or `{field: {value_key: value}}` of term-like clauses.
fn field_value(key: &str, body: &Value, value_key: &str) -> Result<(String, String), EsError> {
    let (field, value) = single_field(key, body)?;
    let value = match value {
        Value::Object(options) => {
            for option in options.keys() {
                if option != value_key
                    && !matches!(
                        option.as_str(),
                        "boost" | "_name" | "slop" | "operator" | "case_insensitive"
                    )
                {
                    return Err(EsError::unsupported(&format!("{key}.{field}.{option}"), ""));
                }
            }
            options.get(value_key).unwrap_or(&Value::Null)
        }
        other => other,
    };
    let text = scalar_text(value)
        .ok_or_else(|| EsError::parsing(format!("[{key}.{field}] needs a value")))?;
    Ok((field, text))
}

fn terms(body: &Value) -> Result<Query, EsError> {
    let (field, values) = single_field("terms", body)?;
    let values = values
        .as_array()
        .ok_or_else(|| EsError::parsing(format!("[terms.{field}] must be an array")))?;
    let mut any = Vec::new();
    for value in values {
        let value = scalar_text(value)
            .ok_or_else(|| EsError::parsing(format!("[terms.{field}] holds a non-scalar")))?;
        any.push(Query::Term {
            field: Some(field.clone()),
            value,
        });
    }
    Ok(simplify_or(any))
}

/// `match`: any of the words (Elasticsearch's default operator for `match`).
fn words(field: String, text: &str) -> Query {
    simplify_or(
        text.split_whitespace()
            .map(|word| Query::Term {
                field: Some(field.clone()),
                value: word.to_string(),
            })
            .collect(),
    )
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn escape_pattern(text: &str) -> String {
    text.replace('*', "\\*").replace('?', "\\?")
}

/// A field as the pool knows it: Elasticsearch's `.keyword` sub-field of a text
/// field (what dashboards aggregate on) is the field itself; `time` and
/// `@timestamp` both name the record time.
pub fn field_name(name: &str) -> String {
    if TIME_FIELD_NAMES.contains(&name) {
        return TIME_FIELD.to_string();
    }
    name.strip_suffix(".keyword").unwrap_or(name).to_string()
}

fn simplify_and(mut all: Vec<Query>) -> Query {
    all.retain(|query| *query != Query::All);
    match all.len() {
        0 => Query::All,
        1 => all.remove(0),
        _ => Query::And(all),
    }
}

fn simplify_or(mut any: Vec<Query>) -> Query {
    if any.contains(&Query::All) {
        return Query::All;
    }
    match any.len() {
        0 => Query::Not(Box::new(Query::All)),
        1 => any.remove(0),
        _ => Query::Or(any),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    #[test]
    fn test_grafana_filter_becomes_time_range_and_parsed_query() {
        let query = json!({"bool": {"filter": [
            {"range": {"@timestamp": {"gte": 1_700_000_000_000i64, "lte": 1_700_000_060_000i64, "format": "epoch_millis"}}},
            {"query_string": {"analyze_wildcard": true, "query": "level:error AND web"}}
        ]}});
        let filter = translate(Some(&query), NOW).expect("translate");
        assert_eq!(filter.from_ns, 1_700_000_000_000_000_000);
        // `lte` on milliseconds includes the whole last millisecond.
        assert_eq!(filter.to_ns, 1_700_000_060_001_000_000);
        assert_eq!(
            filter.query,
            parse_query("level:error AND web", DefaultOperator::And).expect("parse")
        );
    }

    #[test]
    fn test_ad_hoc_filters_and_negations() {
        let query = json!({"bool": {
            "must": {"match_phrase": {"host.keyword": {"query": "web-1"}}},
            "must_not": [{"exists": {"field": "error"}}]
        }});
        let filter = translate(Some(&query), NOW).expect("translate");
        assert_eq!(
            filter.query,
            Query::And(vec![
                Query::Phrase {
                    field: Some("host".into()),
                    text: "web-1".into()
                },
                Query::Not(Box::new(Query::Exists {
                    field: "error".into()
                })),
            ])
        );
        assert_eq!((filter.from_ns, filter.to_ns), (i64::MIN, i64::MAX));
    }

    #[test]
    fn test_unsupported_clauses_are_named() {
        let error = translate(Some(&json!({"regexp": {"host": "w.*"}})), NOW).expect_err("regexp");
        assert_eq!(error.kind, "parsing_exception");
        assert!(error.reason.contains("[regexp]"), "{}", error.reason);
        let error = translate(
            Some(&json!({"query_string": {"query": "x", "default_field": "message"}})),
            NOW,
        )
        .expect_err("default_field");
        assert!(
            error.reason.contains("query_string.default_field"),
            "{}",
            error.reason
        );
    }
}

//! The body of one `_search` (and each search of an `_msearch`), checked before any
//! work: `query`, `size`, `sort`, `search_after`, `track_total_hits`, `aggs`.
//!
//! Keys that only shape Elasticsearch's answer in ways logpool's answer already
//! takes (`_source`, `docvalue_fields`, `stored_fields`, an empty `script_fields`,
//! `timeout`, `version`) are accepted and ignored; any other key is a
//! `parsing_exception` naming it.

use logpool_engines::index::SortKey;
use serde_json::{Map, Value};

use super::aggs::{parse_aggs, Agg};
use super::error::EsError;
use super::highlight::{parse_highlight, HighlightTags};
use super::query::{field_name, translate, Filter, TIME_FIELD};

/// Hits per search when the request does not say (Elasticsearch's default).
pub const DEFAULT_SIZE: usize = 10;

/// A checked search request.
#[derive(Debug, Clone)]
pub struct EsSearch {
    /// The query and its time range.
    pub filter: Filter,
    /// Hits wanted (0: only totals and aggregations).
    pub size: usize,
    /// Continue after this hit.
    pub after: Option<SortKey>,
    /// Count every match (`track_total_hits`, default true here: counting is cheap).
    pub track_total: bool,
    /// Aggregations.
    pub aggs: Vec<Agg>,
    /// Mark the matched words of each hit with these tags.
    pub highlight: Option<HighlightTags>,
}

/// The URL parameters a search honours (the rest, e.g. `ignore_unavailable`, do
/// not change a single-pool answer).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SearchUrlParams {
    /// A query string query (`q=`).
    pub q: Option<String>,
    /// Hits wanted.
    pub size: Option<usize>,
    /// Only 0.
    pub from: Option<usize>,
    /// `true`, `false` or a number.
    pub track_total_hits: Option<String>,
    /// `hits.total` as a plain number (Elasticsearch 6 style).
    pub rest_total_hits_as_int: Option<bool>,
}

/// Reads a search body (may be empty) with the URL parameters over it.
///
/// # Errors
/// A `parsing_exception` or `illegal_argument_exception` naming the key.
pub fn parse_search(
    body: &Value,
    url: &SearchUrlParams,
    max_size: usize,
    now_ns: i64,
) -> Result<EsSearch, EsError> {
    let empty = Map::new();
    let object = match body {
        Value::Object(object) => object,
        Value::Null => &empty,
        _ => return Err(EsError::parsing("the search body must be a JSON object")),
    };
    let mut search = EsSearch {
        filter: Filter::default(),
        size: DEFAULT_SIZE,
        after: None,
        track_total: true,
        aggs: Vec::new(),
        highlight: None,
    };
    for (key, value) in object {
        match key.as_str() {
            "query" => search.filter = translate(Some(value), now_ns)?,
            "size" => search.size = size_of(value)?,
            "from" => check_from(value.as_u64())?,
            "sort" => check_sort(value)?,
            "search_after" => search.after = Some(search_after(value)?),
            "track_total_hits" => search.track_total = track_total(value)?,
            "aggs" | "aggregations" => search.aggs = parse_aggs(value, now_ns)?,
            "highlight" => search.highlight = Some(parse_highlight(value)?),
            "script_fields" if value.as_object().is_some_and(Map::is_empty) => {}
            "_source"
            | "docvalue_fields"
            | "stored_fields"
            | "timeout"
            | "version"
            | "seq_no_primary_term"
            | "track_scores"
            | "explain" => {}
            other => {
                return Err(EsError::unsupported(
                    other,
                    "the supported keys are query, size, sort, search_after, track_total_hits \
                     and aggs",
                ))
            }
        }
    }
    if let Some(text) = &url.q {
        let from_url = translate(
            Some(&serde_json::json!({"query_string": {"query": text}})),
            now_ns,
        )?;
        search.filter.query =
            logpool_core::query::Query::And(vec![search.filter.query, from_url.query]);
    }
    if let Some(size) = url.size {
        search.size = size;
    }
    if url.from.is_some() {
        check_from(url.from.map(|from| from as u64))?;
    }
    if let Some(text) = &url.track_total_hits {
        search.track_total =
            track_total(&serde_json::from_str(text).unwrap_or(Value::String(text.clone())))?;
    }
    if search.size > max_size {
        return Err(EsError::illegal(format!(
            "[size] must be at most {max_size}, got {}; page with search_after",
            search.size
        )));
    }
    if search.filter.from_ns >= search.filter.to_ns {
        return Err(EsError::illegal(format!(
            "the range on [{TIME_FIELD}] is empty: its start is not before its end"
        )));
    }
    Ok(search)
}

fn size_of(value: &Value) -> Result<usize, EsError> {
    value
        .as_u64()
        .and_then(|size| usize::try_from(size).ok())
        .ok_or_else(|| EsError::illegal(format!("[size] must be a whole number, got {value}")))
}

fn check_from(from: Option<u64>) -> Result<(), EsError> {
    match from {
        Some(0) => Ok(()),
        _ => Err(EsError::unsupported("from", "page with search_after")),
    }
}

fn track_total(value: &Value) -> Result<bool, EsError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        // A number asks for an exact count up to it: counting all is exact too.
        Value::Number(_) => Ok(true),
        Value::String(text) if text == "true" || text == "false" => Ok(text == "true"),
        _ => Err(EsError::illegal(
            "[track_total_hits] must be a boolean or a number",
        )),
    }
}

/// Hits come newest first: only a descending sort on the time field (with `_doc` or
/// `_score` as tie-breakers, which the record order already is) is accepted.
fn check_sort(value: &Value) -> Result<(), EsError> {
    let entries: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for entry in entries {
        let (field, order) = match entry {
            Value::String(field) => (field.as_str(), None),
            Value::Object(object) if object.len() == 1 => {
                let Some((field, options)) = object.iter().next() else {
                    continue;
                };
                let order = match options {
                    Value::String(order) => Some(order.as_str()),
                    Value::Object(options) => options.get("order").and_then(Value::as_str),
                    _ => None,
                };
                (field.as_str(), order)
            }
            _ => {
                return Err(EsError::parsing(
                    "[sort] entries must be a field name or {field: order}",
                ))
            }
        };
        match (field_name(field).as_str(), order) {
            ("_doc" | "_score", _) => {}
            (TIME_FIELD, None | Some("desc")) => {}
            (TIME_FIELD, Some(other)) => {
                return Err(EsError::unsupported(
                    &format!("sort.{field}.order: {other}"),
                    "hits come newest first (`desc`)",
                ))
            }
            (other, _) => {
                return Err(EsError::unsupported(
                    &format!("sort.{other}"),
                    "hits are sorted by the time field, newest first",
                ))
            }
        }
    }
    Ok(())
}

/// `search_after` is the `sort` of the last hit of the previous page:
/// `[epoch_millis, "<cursor>"]`; the cursor says exactly where the page ended.
fn search_after(value: &Value) -> Result<SortKey, EsError> {
    let cursor = value
        .as_array()
        .and_then(|values| values.last())
        .and_then(Value::as_str)
        .ok_or_else(|| {
            EsError::illegal("[search_after] must be the `sort` array of a hit this API returned")
        })?;
    crate::cursor::decode_for(cursor, logpool_engines::index::SortOrder::Desc).map_err(|_| {
        EsError::illegal("[search_after] must be the `sort` array of a hit this API returned")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn test_grafana_logs_body() {
        let body = json!({"size": 500, "query": {"bool": {"filter": [{"range": {"@timestamp": {"gte": 1, "lte": 2, "format": "epoch_millis"}}}]}},
            "sort": [{"@timestamp": {"order": "desc", "unmapped_type": "boolean"}}, {"_doc": {"order": "desc"}}],
            "script_fields": {}, "highlight": {"fields": {"*": {}}, "pre_tags": ["@HIGHLIGHT@"], "post_tags": ["@/HIGHLIGHT@"], "fragment_size": 2147483647i64}});
        let search = parse_search(&body, &SearchUrlParams::default(), 10_000, 0).expect("parse");
        assert_eq!(search.size, 500);
        assert_eq!(
            (search.filter.from_ns, search.filter.to_ns),
            (1_000_000, 3_000_000)
        );
    }

    #[test]
    fn test_refusals_name_the_key() {
        let url = SearchUrlParams::default();
        for (body, named) in [
            (
                json!({"sort": [{"@timestamp": "asc"}]}),
                "sort.@timestamp.order",
            ),
            (json!({"sort": ["host"]}), "sort.host"),
            (json!({"from": 20}), "[from]"),
            (json!({"post_filter": {}}), "[post_filter]"),
            (json!({"size": 20_000}), "[size]"),
        ] {
            let error = parse_search(&body, &url, 10_000, 0).expect_err("refused");
            assert!(error.reason.contains(named), "{named}: {}", error.reason);
        }
    }
}

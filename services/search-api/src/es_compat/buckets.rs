//! Runs parsed aggregations on the engine and answers them in Elasticsearch's shape:
//! `{"<name>": {"buckets": [{"key", "key_as_string", "doc_count", "<sub>": ...}]}}`
//! for buckets, `{"value": x}` (or `{"values": {"95.0": x}}` for percentiles) for
//! metrics.
//!
//! Each bucket aggregation is one grouped aggregation of the engine (see
//! [`super::aggs`]); its groups are filed under the keys of their parent buckets so
//! that building the nested answer only looks them up.

use std::cmp::Ordering;
use std::collections::HashMap;

use logpool_core::query::Query;
use logpool_core::record::format_time_ns;
use logpool_core::routing::PoolRoute;
use logpool_core::sql::plan::{AggregateFn, AggregateGroup, AggregateValue, GroupKey, KeyValue};
use logpool_engines::index::AggregateRequest;
use serde_json::{json, Map, Value};

use super::aggs::{
    check_bucket_count, Agg, AggKind, BucketSpec, DateHistogram, Metric, MetricKind, Terms,
    TermsOrder,
};
use super::error::EsError;
use crate::limiter::TenantQueries;
use crate::query_sql::MAX_GROUPS;
use crate::SearchState;

/// What the aggregations run over.
pub struct Scope<'a> {
    /// The service.
    pub state: &'a SearchState,
    /// The caller's limits (memory budgets).
    pub limiter: &'a TenantQueries,
    /// The pool.
    pub route: &'a PoolRoute,
    /// The search's query.
    pub query: &'a Query,
    /// Inclusive start, ns.
    pub from_ns: i64,
    /// Exclusive end, ns.
    pub to_ns: i64,
}

/// One group of a bucket aggregation: its own key, `doc_count`, and the values of
/// the metrics directly under it.
#[derive(Debug, Clone)]
struct Row {
    key: KeyValue,
    doc_count: u64,
    metrics: Vec<AggregateValue>,
}

/// The groups of every bucket aggregation (by its path of names), filed by the
/// keys of their parent buckets; and the root metrics.
#[derive(Debug, Default)]
struct Groups {
    by_path: HashMap<String, HashMap<String, Vec<Row>>>,
    root_metrics: Vec<AggregateValue>,
}

/// Runs `aggs` and answers the `aggregations` object.
///
/// # Errors
/// When the engine refuses (too many groups, over the memory budget) or fails, or a
/// histogram would have too many buckets.
pub async fn run(scope: &Scope<'_>, aggs: &[Agg]) -> Result<Map<String, Value>, EsError> {
    let mut groups = Groups::default();
    let root_metrics = metrics_of(aggs);
    if !root_metrics.is_empty() {
        let rows = aggregate(scope, Vec::new(), &root_metrics).await?;
        groups.root_metrics = rows
            .into_iter()
            .next()
            .map(|group| group.values)
            .unwrap_or_default();
    }
    let mut pending: Vec<(String, Vec<GroupKey>, &Agg)> = aggs
        .iter()
        .map(|agg| (agg.name.clone(), Vec::new(), agg))
        .collect();
    while let Some((path, parent_keys, agg)) = pending.pop() {
        let AggKind::Buckets(spec, children) = &agg.kind else {
            continue;
        };
        let mut keys = parent_keys;
        keys.push(spec.group_key());
        let metrics = metrics_of(children);
        let found = aggregate(scope, keys.clone(), &metrics).await?;
        let mut filed: HashMap<String, Vec<Row>> = HashMap::new();
        for mut group in found {
            let Some(key) = group.keys.pop() else {
                continue;
            };
            let doc_count = match group.values.first() {
                Some(AggregateValue::Count(count)) => *count,
                _ => 0,
            };
            filed.entry(key_path(&group.keys)).or_default().push(Row {
                key,
                doc_count,
                metrics: group.values.split_off(1.min(group.values.len())),
            });
        }
        groups.by_path.insert(path.clone(), filed);
        for child in children {
            pending.push((format!("{path}>{}", child.name), keys.clone(), child));
        }
    }
    let mut answer = Map::new();
    build_level(&groups, aggs, "", &[], &groups.root_metrics, &mut answer)?;
    Ok(answer)
}

/// The metrics directly in a list of aggregations.
fn metrics_of(aggs: &[Agg]) -> Vec<&Metric> {
    aggs.iter()
        .filter_map(|agg| match &agg.kind {
            AggKind::Metric(metric) => Some(metric),
            AggKind::Buckets(..) => None,
        })
        .collect()
}

/// One engine aggregation: `count(*)` then each metric's functions.
async fn aggregate(
    scope: &Scope<'_>,
    group_by: Vec<GroupKey>,
    metrics: &[&Metric],
) -> Result<Vec<AggregateGroup>, EsError> {
    let mut aggregates = vec![AggregateFn::Count];
    aggregates.extend(metrics.iter().flat_map(|metric| metric.functions()));
    let request = AggregateRequest {
        query: scope.query.clone(),
        from_ns: scope.from_ns,
        to_ns: scope.to_ns,
        group_by,
        aggregates,
        max_groups: MAX_GROUPS,
        memory: scope.limiter.query_memory(),
    };
    Ok(scope.state.index.aggregate(scope.route, &request).await?)
}

fn key_path(keys: &[KeyValue]) -> String {
    serde_json::to_string(keys).unwrap_or_default()
}

/// Fills `answer` with the aggregations of one level: `path` names the enclosing
/// bucket aggregation, `keys` the enclosing bucket, `metric_values` its metrics.
fn build_level(
    groups: &Groups,
    aggs: &[Agg],
    path: &str,
    keys: &[KeyValue],
    metric_values: &[AggregateValue],
    answer: &mut Map<String, Value>,
) -> Result<(), EsError> {
    let mut offset = 0;
    for agg in aggs {
        match &agg.kind {
            AggKind::Metric(metric) => {
                let width = metric.functions().len();
                let values = metric_values.get(offset..offset + width);
                offset += width;
                answer.insert(agg.name.clone(), metric_answer(metric, values));
            }
            AggKind::Buckets(spec, children) => {
                let child_path = if path.is_empty() {
                    agg.name.clone()
                } else {
                    format!("{path}>{}", agg.name)
                };
                let rows = groups
                    .by_path
                    .get(&child_path)
                    .and_then(|filed| filed.get(&key_path(keys)))
                    .cloned()
                    .unwrap_or_default();
                let buckets = match spec {
                    BucketSpec::DateHistogram(histogram) => {
                        time_buckets(&agg.name, histogram, rows)?
                    }
                    BucketSpec::Terms(terms) => term_buckets(terms, children, rows),
                };
                let (rows, other) = buckets;
                let mut listed = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut bucket = Map::new();
                    match spec {
                        BucketSpec::DateHistogram(histogram) => {
                            let KeyValue::Time(time_ns) = row.key else {
                                continue;
                            };
                            let ms = time_ns.div_euclid(1_000_000);
                            bucket.insert("key".into(), json!(ms));
                            let text = if histogram.epoch_millis_strings {
                                ms.to_string()
                            } else {
                                format_time_ns(time_ns)
                            };
                            bucket.insert("key_as_string".into(), json!(text));
                        }
                        BucketSpec::Terms(_) => {
                            let (key, text) = term_key(&row.key);
                            bucket.insert("key".into(), key);
                            if let Some(text) = text {
                                bucket.insert("key_as_string".into(), json!(text));
                            }
                        }
                    }
                    bucket.insert("doc_count".into(), json!(row.doc_count));
                    let mut inner = keys.to_vec();
                    inner.push(row.key.clone());
                    build_level(
                        groups,
                        children,
                        &child_path,
                        &inner,
                        &row.metrics,
                        &mut bucket,
                    )?;
                    listed.push(Value::Object(bucket));
                }
                let value = match spec {
                    BucketSpec::DateHistogram(_) => json!({ "buckets": listed }),
                    BucketSpec::Terms(_) => json!({
                        "doc_count_error_upper_bound": 0,
                        "sum_other_doc_count": other,
                        "buckets": listed,
                    }),
                };
                answer.insert(agg.name.clone(), value);
            }
        }
    }
    Ok(())
}

/// Time buckets in key order; with `min_doc_count: 0`, the empty ones between the
/// extended bounds (or the first and last bucket) are added.
fn time_buckets(
    name: &str,
    histogram: &DateHistogram,
    mut rows: Vec<Row>,
) -> Result<(Vec<Row>, u64), EsError> {
    let time_of = |row: &Row| match row.key {
        KeyValue::Time(time_ns) => time_ns,
        _ => i64::MIN,
    };
    rows.sort_by_key(time_of);
    if histogram.min_doc_count > 0 {
        rows.retain(|row| row.doc_count >= histogram.min_doc_count);
        return Ok((rows, 0));
    }
    let interval = histogram.interval_ns;
    let align = |time_ns: i64| time_ns.div_euclid(interval).saturating_mul(interval);
    let first = rows.first().map(time_of);
    let last = rows.last().map(time_of);
    let (low, high) = match (histogram.bounds, first, last) {
        (Some((min, max)), first, last) => (
            align(min).min(first.unwrap_or(i64::MAX)),
            align(max).max(last.unwrap_or(i64::MIN)),
        ),
        (None, Some(first), Some(last)) => (first, last),
        (None, _, _) => return Ok((rows, 0)),
    };
    check_bucket_count(name, low, high, interval)?;
    let mut filled = Vec::new();
    let mut existing = rows.into_iter().peekable();
    let mut time_ns = low;
    while time_ns <= high {
        match existing.peek() {
            Some(row) if time_of(row) == time_ns => filled.extend(existing.next()),
            _ => filled.push(Row {
                key: KeyValue::Time(time_ns),
                doc_count: 0,
                metrics: Vec::new(),
            }),
        }
        time_ns = time_ns.saturating_add(interval);
    }
    Ok((filled, 0))
}

/// The kept terms buckets and the records of the others (`sum_other_doc_count`).
fn term_buckets(terms: &Terms, children: &[Agg], mut rows: Vec<Row>) -> (Vec<Row>, u64) {
    // Records without the field are in no terms bucket.
    rows.retain(|row| !matches!(row.key, KeyValue::Null) && row.doc_count >= terms.min_doc_count);
    let metric_at = match &terms.order {
        TermsOrder::Metric(name) => {
            let mut offset = 0;
            let mut found = None;
            for child in children {
                if let AggKind::Metric(metric) = &child.kind {
                    if &child.name == name {
                        found = Some(offset);
                    }
                    offset += metric.functions().len();
                }
            }
            found
        }
        _ => None,
    };
    let metric = |row: &Row| match row.metrics.get(metric_at.unwrap_or(usize::MAX)) {
        Some(AggregateValue::Number(value)) => *value,
        Some(AggregateValue::Count(count)) => Some(*count as f64),
        None => None,
    };
    rows.sort_by(|a, b| {
        let primary = match terms.order {
            TermsOrder::Count => a.doc_count.cmp(&b.doc_count),
            TermsOrder::Key => compare_keys(&a.key, &b.key),
            TermsOrder::Metric(_) => compare_metric(metric(a), metric(b)),
        };
        let primary = if terms.descending {
            primary.reverse()
        } else {
            primary
        };
        primary.then_with(|| compare_keys(&a.key, &b.key))
    });
    let other = rows.iter().skip(terms.size).map(|row| row.doc_count).sum();
    rows.truncate(terms.size);
    (rows, other)
}

/// Missing values order before all numbers (so they come last when descending).
fn compare_metric(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

fn compare_keys(a: &KeyValue, b: &KeyValue) -> Ordering {
    let number = |key: &KeyValue| match key {
        KeyValue::Long(value) => Some(*value as f64),
        KeyValue::Double(value) => Some(*value),
        _ => None,
    };
    match (a, b, number(a), number(b)) {
        (_, _, Some(x), Some(y)) => x.total_cmp(&y),
        (KeyValue::Str(x), KeyValue::Str(y), _, _) => x.cmp(y),
        (KeyValue::Bool(x), KeyValue::Bool(y), _, _) => x.cmp(y),
        _ => key_rank(a).cmp(&key_rank(b)),
    }
}

fn key_rank(key: &KeyValue) -> u8 {
    match key {
        KeyValue::Null => 0,
        KeyValue::Bool(_) => 1,
        KeyValue::Long(_) | KeyValue::Double(_) => 2,
        KeyValue::Time(_) => 3,
        KeyValue::Str(_) => 4,
    }
}

/// A terms key as Elasticsearch writes it: booleans are 1/0 with `key_as_string`.
fn term_key(key: &KeyValue) -> (Value, Option<String>) {
    match key {
        KeyValue::Null => (Value::Null, None),
        KeyValue::Bool(flag) => (json!(u8::from(*flag)), Some(flag.to_string())),
        KeyValue::Long(value) => (json!(value), None),
        KeyValue::Double(value) => (json!(value), None),
        KeyValue::Str(text) => (json!(text), None),
        KeyValue::Time(time_ns) => (
            json!(time_ns.div_euclid(1_000_000)),
            Some(format_time_ns(*time_ns)),
        ),
    }
}

/// A metric's answer; `values` is `None` in a bucket without records.
fn metric_answer(metric: &Metric, values: Option<&[AggregateValue]>) -> Value {
    let number = |value: Option<&AggregateValue>| match value {
        Some(AggregateValue::Number(number)) => json!(number),
        Some(AggregateValue::Count(count)) => json!(count),
        None => Value::Null,
    };
    match &metric.kind {
        MetricKind::Percentiles(percents) => {
            let mut by_percent = Map::new();
            for (index, percent) in percents.iter().enumerate() {
                let value = values.and_then(|values| values.get(index));
                by_percent.insert(percent_name(*percent), number(value));
            }
            json!({ "values": by_percent })
        }
        MetricKind::Cardinality | MetricKind::ValueCount => {
            json!({ "value": number(values.and_then(|v| v.first())).as_u64().unwrap_or(0) })
        }
        MetricKind::Sum => {
            let value = number(values.and_then(|v| v.first()));
            json!({ "value": if value.is_null() { json!(0.0) } else { value } })
        }
        MetricKind::Avg | MetricKind::Min | MetricKind::Max => {
            json!({ "value": number(values.and_then(|v| v.first())) })
        }
    }
}

/// `95` → `"95.0"`, `99.9` → `"99.9"`, as Elasticsearch names percentiles.
fn percent_name(percent: f64) -> String {
    if percent.fract() == 0.0 {
        format!("{percent:.1}")
    } else {
        percent.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, doc_count: u64, avg: Option<f64>) -> Row {
        Row {
            key: KeyValue::Str(key.into()),
            doc_count,
            metrics: vec![AggregateValue::Number(avg)],
        }
    }

    #[test]
    fn test_terms_order_size_and_other_count() {
        let terms = Terms {
            field: "host".into(),
            size: 2,
            min_doc_count: 1,
            order: TermsOrder::Metric("1".into()),
            descending: true,
        };
        let children = vec![Agg {
            name: "1".into(),
            kind: AggKind::Metric(Metric {
                kind: MetricKind::Avg,
                field: "latency".into(),
            }),
        }];
        let rows = vec![
            row("a", 5, Some(1.0)),
            row("b", 3, Some(9.0)),
            row("c", 4, None),
            row("d", 2, Some(5.0)),
        ];
        let (kept, other) = term_buckets(&terms, &children, rows);
        let keys: Vec<&KeyValue> = kept.iter().map(|row| &row.key).collect();
        assert_eq!(
            keys,
            [&KeyValue::Str("b".into()), &KeyValue::Str("d".into())]
        );
        assert_eq!(other, 9);
    }

    #[test]
    fn test_empty_time_buckets_fill_the_bounds() {
        let histogram = DateHistogram {
            interval_ns: 10,
            min_doc_count: 0,
            bounds: Some((5, 41)),
            epoch_millis_strings: true,
        };
        let rows = vec![Row {
            key: KeyValue::Time(20),
            doc_count: 3,
            metrics: Vec::new(),
        }];
        let (filled, _) = time_buckets("2", &histogram, rows).expect("buckets");
        let counts: Vec<(KeyValue, u64)> = filled
            .into_iter()
            .map(|row| (row.key, row.doc_count))
            .collect();
        assert_eq!(
            counts,
            [
                (KeyValue::Time(0), 0),
                (KeyValue::Time(10), 0),
                (KeyValue::Time(20), 3),
                (KeyValue::Time(30), 0),
                (KeyValue::Time(40), 0)
            ]
        );
        assert_eq!(percent_name(95.0), "95.0");
        assert_eq!(percent_name(99.9), "99.9");
    }
}

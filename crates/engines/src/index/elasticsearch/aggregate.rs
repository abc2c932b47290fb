//! Pipe-SQL aggregation on Elasticsearch: a `composite` aggregation paged to the
//! end, with metric sub-aggregations.
//!
//! A record field lives in one typed path per value type (see [`super::mapping`]),
//! so a group key is one composite source per typed path (with `missing_bucket`),
//! and a bucket's key is the one non-null value among them. Numeric aggregates read
//! the long and double paths and combine them: sums and counts add up, minima and
//! maxima compare. `count(f)` counts records whose `_lp_fields` names `f` (exact).
//!
//! Precision: `count(DISTINCT f)` is Elasticsearch's `cardinality` (HyperLogLog++,
//! near exact below its precision threshold of 40 000 values, approximate above),
//! summed over typed paths, whose values never coincide. `percentile` is
//! Elasticsearch's `percentiles` (t-digest); a group whose field holds both integers
//! and fractions cannot be merged from two digests and is refused. Strings longer
//! than the pool's `keyword_ignore_above` have no keyword, so they group as null.

use logpool_core::routing::PoolRoute;
use logpool_core::sql::plan::{AggregateFn, AggregateGroup, AggregateValue, GroupKey, KeyValue};
use serde_json::{json, Map, Value};

use super::mapping::{TypedPath, FIELD_NAMES, NS_PER_MS, TIME_MS};
use super::ElasticsearchIndex;
use crate::index::{group_table_over_budget, AggregateRequest, IndexError, IndexResult};

/// Composite buckets fetched per request.
const PAGE_SIZE: usize = 1_000;

/// Above this many distinct values `cardinality` is approximate (Elasticsearch's
/// maximum threshold).
const CARDINALITY_PRECISION_THRESHOLD: u64 = 40_000;

/// Every typed path a field's values may be in, in the order keys are read.
const KEY_PATHS: [TypedPath; 7] = [
    TypedPath::Text,
    TypedPath::Keyword,
    TypedPath::Long,
    TypedPath::Double,
    TypedPath::Bool,
    TypedPath::Ip,
    TypedPath::Timestamp,
];

/// Typed paths that hold numbers.
const NUMBER_PATHS: [TypedPath; 2] = [TypedPath::Long, TypedPath::Double];

/// The aggregatable (doc-values) field of a typed path.
fn doc_value_field(path: TypedPath, field: &str) -> String {
    match path {
        TypedPath::Text => format!("{}.keyword", path.field(field)),
        _ => path.field(field),
    }
}

fn sources(group_by: &[GroupKey]) -> Vec<Value> {
    let mut sources = Vec::new();
    for (index, key) in group_by.iter().enumerate() {
        match key {
            GroupKey::Field(field) => {
                for (path_index, path) in KEY_PATHS.iter().enumerate() {
                    let mut source = Map::new();
                    source.insert(
                        format!("k{index}_{path_index}"),
                        json!({"terms": {
                            "field": doc_value_field(*path, field),
                            "missing_bucket": true
                        }}),
                    );
                    sources.push(Value::Object(source));
                }
            }
            GroupKey::TimeBucket { interval_ns } => {
                let mut source = Map::new();
                source.insert(
                    format!("k{index}_t"),
                    json!({"histogram": {
                        "field": TIME_MS,
                        "interval": (interval_ns / NS_PER_MS).max(1)
                    }}),
                );
                sources.push(Value::Object(source));
            }
        }
    }
    sources
}

fn metric_aggs(aggregates: &[AggregateFn]) -> Map<String, Value> {
    let mut aggs = Map::new();
    for (index, aggregate) in aggregates.iter().enumerate() {
        match aggregate {
            AggregateFn::Count => {}
            AggregateFn::CountField(field) => {
                aggs.insert(
                    format!("a{index}"),
                    json!({"filter": {"term": {FIELD_NAMES: field}}}),
                );
            }
            AggregateFn::CountDistinct(field) => {
                for (path_index, path) in KEY_PATHS.iter().enumerate() {
                    aggs.insert(
                        format!("a{index}_{path_index}"),
                        json!({"cardinality": {
                            "field": doc_value_field(*path, field),
                            "precision_threshold": CARDINALITY_PRECISION_THRESHOLD
                        }}),
                    );
                }
            }
            AggregateFn::Sum(field)
            | AggregateFn::Avg(field)
            | AggregateFn::Min(field)
            | AggregateFn::Max(field)
            | AggregateFn::Percentile { field, .. } => {
                let metric = match aggregate {
                    AggregateFn::Sum(_) | AggregateFn::Avg(_) => "sum",
                    AggregateFn::Min(_) => "min",
                    AggregateFn::Max(_) => "max",
                    _ => "percentiles",
                };
                for (path_index, path) in NUMBER_PATHS.iter().enumerate() {
                    let name = path.field(field);
                    let body = match aggregate {
                        AggregateFn::Percentile { percent, .. } => {
                            json!({"field": name, "percents": [percent]})
                        }
                        _ => json!({"field": name}),
                    };
                    let mut metric_body = Map::new();
                    metric_body.insert(metric.to_string(), body);
                    aggs.insert(format!("a{index}_{path_index}"), Value::Object(metric_body));
                    aggs.insert(
                        format!("a{index}_{path_index}_n"),
                        json!({"value_count": {"field": name}}),
                    );
                }
            }
        }
    }
    aggs
}

fn bucket_keys(group_by: &[GroupKey], key: &Value) -> Vec<KeyValue> {
    group_by
        .iter()
        .enumerate()
        .map(|(index, group_key)| match group_key {
            GroupKey::TimeBucket { .. } => match key[format!("k{index}_t")].as_f64() {
                Some(ms) => KeyValue::Time((ms as i64).saturating_mul(NS_PER_MS)),
                None => KeyValue::Null,
            },
            GroupKey::Field(_) => KEY_PATHS
                .iter()
                .enumerate()
                .find_map(|(path_index, path)| {
                    key_value(*path, &key[format!("k{index}_{path_index}")])
                })
                .unwrap_or(KeyValue::Null),
        })
        .collect()
}

fn key_value(path: TypedPath, value: &Value) -> Option<KeyValue> {
    match (path, value) {
        (_, Value::Null) => None,
        (TypedPath::Bool, Value::Bool(b)) => Some(KeyValue::Bool(*b)),
        (TypedPath::Bool, Value::Number(n)) => Some(KeyValue::Bool(n.as_f64() != Some(0.0))),
        (TypedPath::Bool, Value::String(s)) => Some(KeyValue::Bool(s == "true")),
        (TypedPath::Double, value) => value.as_f64().map(KeyValue::Double),
        (TypedPath::Long | TypedPath::Timestamp, value) => value
            .as_i64()
            .or_else(|| value.as_f64().map(|x| x as i64))
            .map(KeyValue::Long),
        (_, Value::String(s)) => Some(KeyValue::Str(s.clone())),
        (_, other) => Some(KeyValue::Str(other.to_string())),
    }
}

fn bucket_values(aggregates: &[AggregateFn], bucket: &Value) -> IndexResult<Vec<AggregateValue>> {
    let doc_count = bucket["doc_count"].as_u64().unwrap_or(0);
    aggregates
        .iter()
        .enumerate()
        .map(|(index, aggregate)| {
            let count_of = |name: String| bucket[name]["value"].as_f64().unwrap_or(0.0) as u64;
            let number_parts = || -> Vec<(u64, Option<f64>, &Value)> {
                (0..NUMBER_PATHS.len())
                    .map(|path_index| {
                        let metric = &bucket[format!("a{index}_{path_index}")];
                        (
                            count_of(format!("a{index}_{path_index}_n")),
                            metric["value"].as_f64(),
                            metric,
                        )
                    })
                    .filter(|(count, _, _)| *count > 0)
                    .collect()
            };
            Ok(match aggregate {
                AggregateFn::Count => AggregateValue::Count(doc_count),
                AggregateFn::CountField(_) => AggregateValue::Count(
                    bucket[format!("a{index}")]["doc_count"]
                        .as_u64()
                        .unwrap_or(0),
                ),
                AggregateFn::CountDistinct(_) => AggregateValue::Count(
                    (0..KEY_PATHS.len())
                        .map(|path_index| count_of(format!("a{index}_{path_index}")))
                        .sum(),
                ),
                AggregateFn::Sum(_) => {
                    let parts = number_parts();
                    AggregateValue::Number(
                        (!parts.is_empty())
                            .then(|| parts.iter().filter_map(|(_, sum, _)| *sum).sum()),
                    )
                }
                AggregateFn::Avg(_) => {
                    let parts = number_parts();
                    let count: u64 = parts.iter().map(|(count, _, _)| count).sum();
                    let sum: f64 = parts.iter().filter_map(|(_, sum, _)| *sum).sum();
                    AggregateValue::Number((count > 0).then(|| sum / count as f64))
                }
                AggregateFn::Min(_) => AggregateValue::Number(
                    number_parts()
                        .iter()
                        .filter_map(|(_, value, _)| *value)
                        .reduce(f64::min),
                ),
                AggregateFn::Max(_) => AggregateValue::Number(
                    number_parts()
                        .iter()
                        .filter_map(|(_, value, _)| *value)
                        .reduce(f64::max),
                ),
                AggregateFn::Percentile { field, .. } => match number_parts().as_slice() {
                    [] => AggregateValue::Number(None),
                    [(_, _, metric)] => AggregateValue::Number(percentile_value(metric)),
                    _ => {
                        return Err(IndexError::InvalidQuery(format!(
                            "percentile over `{field}`, which holds both integers and fractions, \
                             is not supported on Elasticsearch"
                        )))
                    }
                },
            })
        })
        .collect()
}

/// Reads the one percentile of a `percentiles` answer, keyed or not.
fn percentile_value(metric: &Value) -> Option<f64> {
    match &metric["values"] {
        Value::Object(values) => values.values().next().and_then(Value::as_f64),
        Value::Array(values) => values.first().and_then(|entry| entry["value"].as_f64()),
        _ => None,
    }
}

/// Estimated heap bytes of one finished group: its key texts plus a fixed cost per
/// group and per key or value.
fn aggregate_group_bytes(group: &logpool_core::sql::plan::AggregateGroup) -> usize {
    use logpool_core::sql::plan::KeyValue;
    let key_text: usize = group
        .keys
        .iter()
        .map(|key| match key {
            KeyValue::Str(text) => text.len(),
            _ => 0,
        })
        .sum();
    96 + 48 * (group.keys.len() + group.values.len()) + key_text
}

impl ElasticsearchIndex {
    pub(super) async fn aggregate_groups(
        &self,
        pool: &PoolRoute,
        request: &AggregateRequest,
    ) -> IndexResult<Vec<AggregateGroup>> {
        let query = self.compile_in_range(
            &request.query,
            &pool.field_hints,
            request.from_ns,
            request.to_ns,
        )?;
        let target = self.search_target(pool, request.from_ns, request.to_ns);
        let metrics = metric_aggs(&request.aggregates);
        if request.group_by.is_empty() {
            let body = json!({
                "size": 0,
                "track_total_hits": false,
                "query": query,
                "aggs": {"lp_all": {"filter": {"match_all": {}}, "aggs": metrics}}
            });
            let Some(response) = self.run_search(&target, body).await? else {
                return Ok(Vec::new());
            };
            let bucket = &response["aggregations"]["lp_all"];
            if bucket["doc_count"].as_u64().unwrap_or(0) == 0 {
                return Ok(Vec::new());
            }
            return Ok(vec![AggregateGroup {
                keys: Vec::new(),
                values: bucket_values(&request.aggregates, bucket)?,
            }]);
        }
        let sources = sources(&request.group_by);
        let mut groups = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let mut composite = json!({"size": PAGE_SIZE, "sources": sources});
            if let Some(after_key) = &after {
                composite["after"] = after_key.clone();
            }
            let body = json!({
                "size": 0,
                "track_total_hits": false,
                "query": query,
                "aggs": {"lp_groups": {"composite": composite, "aggs": metrics}}
            });
            let Some(response) = self.run_search(&target, body).await? else {
                return Ok(groups);
            };
            let answer = &response["aggregations"]["lp_groups"];
            let buckets = answer["buckets"].as_array().ok_or_else(|| {
                IndexError::Internal("composite aggregation answer has no buckets".to_string())
            })?;
            for bucket in buckets {
                if groups.len() >= request.max_groups {
                    return Err(IndexError::LimitExceeded(format!(
                        "the query has more than {} groups; narrow the query or group by fewer keys",
                        request.max_groups
                    )));
                }
                let group = AggregateGroup {
                    keys: bucket_keys(&request.group_by, &bucket["key"]),
                    values: bucket_values(&request.aggregates, bucket)?,
                };
                request
                    .memory
                    .try_charge(aggregate_group_bytes(&group))
                    .map_err(group_table_over_budget)?;
                groups.push(group);
            }
            match answer.get("after_key") {
                Some(after_key) if buckets.len() == PAGE_SIZE => after = Some(after_key.clone()),
                _ => return Ok(groups),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use logpool_core::pool_id::PoolId;
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::index::elasticsearch::ElasticsearchIndexConfig;
    use crate::index::LogIndex;

    #[tokio::test]
    async fn test_aggregate_conformance() {
        let url = std::env::var("LOGPOOL_TEST_ES_URL").unwrap_or_else(|_| {
            panic!(
                "LOGPOOL_TEST_ES_URL is not set: the `elasticsearch` feature tests need an \
                 Elasticsearch-compatible server (see scripts/test-engines.sh)"
            )
        });
        let index = ElasticsearchIndex::connect(ElasticsearchIndexConfig {
            url,
            number_of_replicas: 0,
            request_timeout_ms: 10_000,
            ..ElasticsearchIndexConfig::default()
        })
        .expect("connect");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let pool_id = PoolId::new(2_000_000_000 + (nanos / 1_000 % 1_000_000_000) as i64);
        let pool = PoolRoute {
            pool_id,
            tenant: "default".into(),
            project: format!("p{pool_id}"),
            name: "web".into(),
            partitions: vec![0],
            retention_days: 7,
            field_hints: BTreeMap::new(),
            event_window: Default::default(),
            learned_types: Default::default(),
        };
        tokio::time::timeout(
            Duration::from_secs(120),
            crate::index::aggregate_conformance::check_aggregations(&index, &pool),
        )
        .await
        .expect("aggregate conformance took too long");
        index.drop_pool(pool_id).await.expect("drop pool");
    }
}

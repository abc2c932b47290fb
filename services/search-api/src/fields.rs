//! `GET|POST /v1/projects/{project}/pools/{pool}/fields`: the most common fields of
//! the records matching a query and their top values (the field list of a log
//! console).
//!
//! The field names come from a sample: the newest `field_summary_sample_records`
//! matching records (found by the same planner as search, on either engine). Their
//! counts, distinct counts and top values are then counted over every match in the
//! range ([`crate::field_counts`]), within what is left of the query's time budget;
//! when that pass cannot finish (time, memory), the sample's counts are answered
//! with `counts_exact: false`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::{ApiError, AppParams};
use logpool_core::routing::FieldType;
use logpool_engines::index::{SearchHit, SearchRequest};
use logpool_wire::search::{FieldSummary, FieldsAnswer, ValueCount};
use serde_json::Value;

use crate::field_counts::{count_fields, is_high_cardinality, CountScope, ExactCounts};
use crate::params::{FieldsParams, Resolve};
use crate::planner::PlannedSearch;
use crate::SearchState;

/// Fields listed at most, most frequent first.
pub const MAX_FIELDS: usize = 50;
/// Values listed per field at most, most frequent first.
pub const MAX_VALUES: usize = 10;
/// Longer string values are counted by their first this many characters.
pub const MAX_VALUE_CHARS: usize = 200;

pub(crate) async fn fields(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool)): Path<(String, String)>,
    AppParams(params): AppParams<FieldsParams>,
) -> Result<Json<FieldsAnswer>, ApiError> {
    let started = Instant::now();
    let route = state.routing.pool(limiter.tenant(), &project, &pool)?;
    let types = route.field_types();
    let resolved = params.resolve(&state.config)?;
    limiter.check_range(resolved.from_ns, resolved.to_ns)?;
    let _permit = limiter.try_acquire()?;
    let query = resolved.query.clone();
    let request = SearchRequest {
        query: resolved.query,
        from_ns: resolved.from_ns,
        to_ns: resolved.to_ns,
        limit: resolved.limit,
        after: None,
        order: logpool_engines::index::SortOrder::Desc,
        memory: limiter.query_memory(),
    };
    let mut planned = PlannedSearch::start(
        state.index.clone(),
        route.clone(),
        request,
        resolved.track_total,
        &state.config,
    )
    .await?;
    planned.run().await?;
    let mut fields = summarize(&planned.hits, &types);
    let mut total = planned.total;
    let mut counts_exact = false;
    let budget = Duration::from_millis(state.config.time_budget_ms);
    let left = budget.saturating_sub(started.elapsed());
    // A sample cut short by the budget leaves no time to count.
    if !planned.partial && !fields.is_empty() && !left.is_zero() {
        let scope = CountScope {
            index: state.index.as_ref(),
            limiter: &limiter,
            route: &route,
            query: &query,
            from_ns: resolved.from_ns,
            to_ns: resolved.to_ns,
        };
        let names: Vec<String> = fields.iter().map(|field| field.name.clone()).collect();
        match tokio::time::timeout(left, count_fields(&scope, &names)).await {
            Ok(Ok(exact)) => {
                total = exact.total;
                fields = apply_exact(fields, exact);
                counts_exact = true;
            }
            // The sample's counts stand, flagged as such.
            Ok(Err(error)) => {
                tracing::info!(%error, "field summary: counted over the sample only");
            }
            Err(_) => tracing::info!("field summary: counting every match ran out of time"),
        }
    }
    if !counts_exact {
        flag_sampled_high_cardinality(&mut fields);
    }
    Ok(Json(FieldsAnswer {
        counts_exact,
        fields,
        fields_from_sample: true,
        partial: planned.partial,
        progress: planned.progress(),
        sample_limit: planned.limit(),
        sampled: planned.hits.len(),
        total,
    }))
}

/// The sample's fields with the counts of every match, most frequent first again.
fn apply_exact(sampled: Vec<FieldSummary>, exact: ExactCounts) -> Vec<FieldSummary> {
    let mut counted: HashMap<String, crate::field_counts::FieldCount> = exact
        .fields
        .into_iter()
        .map(|field| (field.name.clone(), field))
        .collect();
    let mut fields: Vec<FieldSummary> = sampled
        .into_iter()
        .map(|mut field| {
            if let Some(exact) = counted.remove(&field.name) {
                field.count = exact.records;
                field.distinct = exact.distinct;
                field.high_cardinality = exact.top.is_none();
                field.top = exact.top.unwrap_or_default();
            }
            field
        })
        .collect();
    fields.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    fields
}

/// Over the sample, a field is flagged as over every match (a sample of 1,000 cannot
/// show more than 1,000 values, but a value per record shows).
fn flag_sampled_high_cardinality(fields: &mut [FieldSummary]) {
    for field in fields {
        if is_high_cardinality(field.count, field.distinct) {
            field.high_cardinality = true;
            field.top.clear();
        }
    }
}

/// What the sample says about one field.
#[derive(Debug, Default)]
struct FieldCounts {
    /// Records with the field.
    records: u64,
    /// Value key (type tag + text) → (count, the value as first seen).
    values: HashMap<String, (u64, Value)>,
}

/// Counts fields and values over `hits`: `[{"name", "count", "distinct", "top":
/// [{"value", "count"}], "type"}]`, most frequent fields first, ties by name, each
/// with its type in `types`.
pub fn summarize(hits: &[SearchHit], types: &BTreeMap<String, FieldType>) -> Vec<FieldSummary> {
    let mut by_field: HashMap<&str, FieldCounts> = HashMap::new();
    for hit in hits {
        for (name, value) in &hit.fields {
            let counts = by_field.entry(name.as_str()).or_default();
            counts.records += 1;
            // The type tag keeps the number 500 and the string "500" apart.
            let (key, shown) = match value.as_str() {
                Some(text) if text.chars().count() > MAX_VALUE_CHARS => {
                    let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
                    (format!("s{cut}"), Value::String(cut))
                }
                Some(text) => (format!("s{text}"), value.clone()),
                None => (format!("v{value}"), value.clone()),
            };
            counts.values.entry(key).or_insert((0, shown)).0 += 1;
        }
    }
    let mut fields: Vec<(&str, FieldCounts)> = by_field.into_iter().collect();
    fields.sort_by(|a, b| b.1.records.cmp(&a.1.records).then(a.0.cmp(b.0)));
    fields.truncate(MAX_FIELDS);
    fields
        .into_iter()
        .map(|(name, counts)| {
            let distinct = counts.values.len();
            let mut top: Vec<(String, u64, Value)> = counts
                .values
                .into_iter()
                .map(|(key, (count, shown))| (key, count, shown))
                .collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(MAX_VALUES);
            FieldSummary {
                count: counts.records,
                distinct,
                high_cardinality: false,
                field_type: types
                    .get(name)
                    .map(|field_type| logpool_api::field_type::to_wire(*field_type)),
                name: name.to_string(),
                top: top
                    .into_iter()
                    .map(|(_, count, value)| ValueCount { count, value })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use logpool_engines::index::SortKey;

    use serde_json::json;

    use super::*;

    fn hit(fields: Value) -> SearchHit {
        SearchHit {
            id: "1-0-0-0".into(),
            time_ns: 0,
            shard: 0,
            sort_key: SortKey {
                time_ns: 0,
                tiebreak: 0,
            },
            fields: fields.as_object().cloned().expect("object"),
        }
    }

    #[test]
    fn test_summarize_counts_fields_and_values() {
        let hits = vec![
            hit(json!({"level": "error", "status": 500})),
            hit(json!({"level": "error", "status": "500"})),
            hit(json!({"level": "info"})),
        ];
        let types = BTreeMap::from([("status".to_string(), FieldType::Long)]);
        let summary = summarize(&hits, &types);
        assert_eq!(summary[0].name, "level");
        assert_eq!(summary[0].count, 3);
        assert_eq!(
            summary[0].top[0],
            ValueCount {
                count: 2,
                value: json!("error")
            }
        );
        assert_eq!(summary[1].name, "status");
        // The number 500 and the string "500" are different values.
        assert_eq!(summary[1].distinct, 2);
        assert_eq!(
            summary[1].field_type,
            Some(logpool_wire::control::FieldType::Long)
        );
        assert_eq!(summary[0].field_type, None, "not typed yet");
    }
}

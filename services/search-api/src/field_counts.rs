//! The counting pass of the field summary: for fields already named (by the
//! sample), their record counts, distinct counts and top values over every match in
//! the range, with the grouped aggregation pipe SQL uses (on either engine).
//!
//! One aggregation counts the matches and, per field, the records holding it and its
//! distinct values (`count(f)`, `count(DISTINCT f)`, the cardinality aggregation on
//! Elasticsearch). A high-cardinality field ([`is_high_cardinality`]) is flagged
//! rather than grouped (its top list would be counts of 1); every other field is
//! grouped by value (`GROUP BY f`), a few fields at a time.

use futures::{StreamExt, TryStreamExt};
use logpool_core::query::Query;
use logpool_core::routing::PoolRoute;
use logpool_core::sql::plan::{AggregateFn, AggregateValue, GroupKey, KeyValue};
use logpool_engines::index::{AggregateRequest, IndexError, IndexResult, LogIndex};
use logpool_wire::search::ValueCount;
use serde_json::Value;

use crate::fields::{MAX_VALUES, MAX_VALUE_CHARS};
use crate::limiter::TenantQueries;

/// Above this many distinct values a field is flagged as high-cardinality and its
/// values are not listed.
pub const HIGH_CARDINALITY_DISTINCT: usize = 1_000;
/// Up to this many distinct values a field is listed, however few records share one.
const FEW_DISTINCT: usize = 20;

/// Whether a field's top list would say nothing: more than
/// [`HIGH_CARDINALITY_DISTINCT`] values, or (past [`FEW_DISTINCT`]) a value for at
/// least every other record holding it (ids, timestamps, lines).
pub fn is_high_cardinality(records: u64, distinct: usize) -> bool {
    distinct > HIGH_CARDINALITY_DISTINCT
        || (distinct > FEW_DISTINCT && (distinct as u64).saturating_mul(2) >= records)
}
/// Fields grouped by value at once.
const CONCURRENT_GROUPINGS: usize = 4;

/// What the counting pass runs over.
pub struct CountScope<'a> {
    /// The index.
    pub index: &'a dyn LogIndex,
    /// The caller's limits (each aggregation gets its own memory budget).
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

/// The counts of one field over every match.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCount {
    /// Field name.
    pub name: String,
    /// Records holding the field.
    pub records: u64,
    /// Distinct values (approximate on Elasticsearch).
    pub distinct: usize,
    /// Most frequent values, most frequent first; `None` for a high-cardinality field.
    pub top: Option<Vec<ValueCount>>,
}

/// The counting pass's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactCounts {
    /// Every match in the range.
    pub total: u64,
    /// The fields asked for, in the order asked.
    pub fields: Vec<FieldCount>,
}

/// Counts `names` over every match of `scope`.
///
/// # Errors
/// When the engine fails or refuses (over the memory budget).
pub async fn count_fields(scope: &CountScope<'_>, names: &[String]) -> IndexResult<ExactCounts> {
    // The distinct values of every field are counted in the same pass: the common
    // case. A range with more distinct values than the query's memory budget holds
    // (millions of unique lines) is counted again field by field, so that only the
    // fields too large to count are flagged rather than the whole answer sampled.
    let (total, totals) = match field_totals(scope, names, true).await {
        Ok(found) => found,
        Err(IndexError::OverMemoryBudget { .. }) => field_totals(scope, names, false).await?,
        Err(error) => return Err(error),
    };
    // The futures are built first, so the stream holds no closure borrowing
    // `names` (which the handler's `Send` bound could not prove general enough).
    let pending: Vec<_> = names
        .iter()
        .zip(totals)
        .map(|(name, (records, distinct))| field_count(scope, name.clone(), records, distinct))
        .collect();
    let fields = futures::stream::iter(pending)
        .buffered(CONCURRENT_GROUPINGS)
        .try_collect()
        .await?;
    Ok(ExactCounts { total, fields })
}

/// Every match, and per field the records holding it and (`with_distinct`) its
/// distinct values.
async fn field_totals(
    scope: &CountScope<'_>,
    names: &[String],
    with_distinct: bool,
) -> IndexResult<(u64, Vec<(u64, Option<usize>)>)> {
    let mut aggregates = vec![AggregateFn::Count];
    for name in names {
        aggregates.push(AggregateFn::CountField(name.clone()));
        if with_distinct {
            aggregates.push(AggregateFn::CountDistinct(name.clone()));
        }
    }
    let groups = aggregate(scope, Vec::new(), aggregates, 1).await?;
    let values = groups
        .into_iter()
        .next()
        .map(|group| group.values)
        .unwrap_or_default();
    let count_at = |index: usize| match values.get(index) {
        Some(AggregateValue::Count(count)) => *count,
        _ => 0,
    };
    let per_field = if with_distinct { 2 } else { 1 };
    let totals = (0..names.len())
        .map(|index| {
            let records = count_at(1 + per_field * index);
            let distinct = with_distinct
                .then(|| usize::try_from(count_at(2 + per_field * index)).unwrap_or(usize::MAX));
            (records, distinct)
        })
        .collect();
    Ok((count_at(0), totals))
}

/// One field's counts, grouping its values unless it has too many. `distinct` is
/// counted here when the shared pass could not.
async fn field_count(
    scope: &CountScope<'_>,
    name: String,
    records: u64,
    distinct: Option<usize>,
) -> IndexResult<FieldCount> {
    let distinct = match distinct {
        Some(distinct) => distinct,
        None => match aggregate(
            scope,
            Vec::new(),
            vec![AggregateFn::CountDistinct(name.clone())],
            1,
        )
        .await
        {
            Ok(groups) => match groups.first().and_then(|group| group.values.first()) {
                Some(AggregateValue::Count(count)) => usize::try_from(*count).unwrap_or(usize::MAX),
                _ => 0,
            },
            // Too many values to hold: flagged, with the records as the bound.
            Err(IndexError::OverMemoryBudget { .. }) => {
                return Ok(FieldCount {
                    name,
                    records,
                    distinct: usize::try_from(records).unwrap_or(usize::MAX),
                    top: None,
                })
            }
            Err(error) => return Err(error),
        },
    };
    let top = if records == 0 {
        Some(Vec::new())
    } else if is_high_cardinality(records, distinct) {
        None
    } else {
        top_values(scope, &name).await?
    };
    Ok(FieldCount {
        name,
        records,
        distinct,
        top,
    })
}

/// The most frequent values of `name`, or `None` when it has more values than a
/// field may have to be listed (the distinct count of Elasticsearch is approximate,
/// so grouping is the final word).
async fn top_values(scope: &CountScope<'_>, name: &str) -> IndexResult<Option<Vec<ValueCount>>> {
    let groups = match aggregate(
        scope,
        vec![GroupKey::Field(name.to_string())],
        vec![AggregateFn::Count],
        // The records without the field form one more group.
        HIGH_CARDINALITY_DISTINCT + 1,
    )
    .await
    {
        Ok(groups) => groups,
        Err(IndexError::LimitExceeded(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut counted: Vec<(Value, u64)> = groups
        .into_iter()
        .filter_map(|group| {
            let count = match group.values.first() {
                Some(AggregateValue::Count(count)) => *count,
                _ => 0,
            };
            let value = key_value(group.keys.into_iter().next()?)?;
            Some((value, count))
        })
        .collect();
    // Most frequent first; ties in a stable order (by the value's JSON text).
    counted.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    counted.truncate(MAX_VALUES);
    Ok(Some(
        counted
            .into_iter()
            .map(|(value, count)| ValueCount { count, value })
            .collect(),
    ))
}

/// A group key as the JSON value it was sent as; `None` for the group of records
/// without the field.
fn key_value(key: KeyValue) -> Option<Value> {
    match key {
        KeyValue::Null => None,
        KeyValue::Bool(value) => Some(Value::Bool(value)),
        KeyValue::Long(value) => Some(Value::from(value)),
        KeyValue::Double(value) => Some(Value::from(value)),
        KeyValue::Str(text) if text.chars().count() > MAX_VALUE_CHARS => {
            Some(Value::String(text.chars().take(MAX_VALUE_CHARS).collect()))
        }
        KeyValue::Str(text) => Some(Value::String(text)),
        KeyValue::Time(ns) => Some(Value::from(ns)),
    }
}

async fn aggregate(
    scope: &CountScope<'_>,
    group_by: Vec<GroupKey>,
    aggregates: Vec<AggregateFn>,
    max_groups: usize,
) -> IndexResult<Vec<logpool_core::sql::plan::AggregateGroup>> {
    let request = AggregateRequest {
        query: scope.query.clone(),
        from_ns: scope.from_ns,
        to_ns: scope.to_ns,
        group_by,
        aggregates,
        max_groups,
        memory: scope.limiter.query_memory(),
    };
    scope.index.aggregate(scope.route, &request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_high_cardinality_is_many_values_or_one_per_record() {
        assert!(!is_high_cardinality(100_000, 20), "few values");
        assert!(
            !is_high_cardinality(100_000, 900),
            "values shared by many records"
        );
        assert!(is_high_cardinality(100_000, 1_001), "too many to list");
        assert!(is_high_cardinality(300, 300), "a value per record");
        assert!(!is_high_cardinality(30, 15), "few values, however rare");
    }

    #[test]
    fn test_key_values_keep_their_json_type_and_drop_missing() {
        assert_eq!(key_value(KeyValue::Null), None);
        assert_eq!(key_value(KeyValue::Long(500)), Some(Value::from(500)));
        assert_eq!(
            key_value(KeyValue::Str("500".into())),
            Some(Value::from("500"))
        );
        let long = "x".repeat(MAX_VALUE_CHARS + 5);
        assert_eq!(
            key_value(KeyValue::Str(long)),
            Some(Value::String("x".repeat(MAX_VALUE_CHARS)))
        );
    }
}

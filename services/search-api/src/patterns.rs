//! `/patterns`: the log patterns of the matching records.
//!
//! Every record carries its pattern id in `_pattern` (a keyword, set at ingest),
//! so the counts are one engine aggregation grouped by `_pattern` and time
//! bucket, on either index engine. The template of each returned pattern is
//! read back from its newest matching records ([`SAMPLES_PER_PATTERN`] of
//! them): their masked tokens, with the positions where they disagree marked.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::Json;
use futures::stream::{self, StreamExt, TryStreamExt};
use logpool_api::time::now_ns;
use logpool_api::{ApiError, AppParams};
use logpool_core::patterns::mask::common_template;
use logpool_core::patterns::PATTERN_FIELD;
use logpool_core::query::Query;
use logpool_core::record::{format_time_ns, MESSAGE_FIELD};
use logpool_core::sql::plan::{AggregateFn, AggregateGroup, AggregateValue, GroupKey, KeyValue};
use logpool_engines::index::{AggregateRequest, SearchRequest, SortOrder};
use logpool_wire::patterns::{PatternChange, PatternSummary, PatternsAnswer, PatternsParams};
use logpool_wire::search::HistogramParams;

use crate::params::{check_range, resolve_time, Resolve};
use crate::query_sql::MAX_GROUPS;
use crate::SearchState;

/// Patterns returned when `limit` is missing, and the most one request may ask.
pub const DEFAULT_LIMIT: usize = 50;
/// The most patterns one request may return.
pub const MAX_LIMIT: usize = 1000;
/// Newest records read per returned pattern to show its template.
pub const SAMPLES_PER_PATTERN: usize = 8;
/// Sample searches run at once.
const SAMPLE_CONCURRENCY: usize = 8;
/// A share that moved by this factor (up or down) is `changed`.
const CHANGED_RATIO: f64 = 1.5;

pub(crate) async fn patterns(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool)): Path<(String, String)>,
    AppParams(params): AppParams<PatternsParams>,
) -> Result<Json<PatternsAnswer>, ApiError> {
    let route = state.routing.pool(limiter.tenant(), &project, &pool)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_LIMIT}, got {limit}"
        ))
        .with_detail("field", "limit")
        .with_detail("limit", MAX_LIMIT));
    }
    let baseline_range = resolve_baseline(&params, &state)?;
    let range = HistogramParams {
        query: params.query.clone(),
        from: params.from.clone(),
        to: params.to.clone(),
        interval: params.interval.clone(),
        default_operator: params.default_operator.clone(),
        wait_for: None,
        wait_timeout_ms: None,
    }
    .resolve(&state.config)?;
    limiter.check_range(range.from_ns, range.to_ns)?;
    let _permit = limiter.try_acquire()?;
    // Records without a pattern (no message, or mining off) form the null group,
    // which is left out.
    let with_pattern = range.query.clone();
    let aggregate = |from_ns: i64, to_ns: i64, group_by: Vec<GroupKey>| AggregateRequest {
        query: with_pattern.clone(),
        from_ns,
        to_ns,
        group_by,
        aggregates: vec![AggregateFn::Count],
        max_groups: MAX_GROUPS,
        memory: limiter.query_memory(),
    };
    let interval_ns = range.interval_ns;
    let first_bucket = range.from_ns.div_euclid(interval_ns) * interval_ns;
    let num_buckets =
        ((range.to_ns - first_bucket + interval_ns - 1) / interval_ns).max(1) as usize;
    let groups = state
        .index
        .aggregate(
            &route,
            &aggregate(
                range.from_ns,
                range.to_ns,
                vec![
                    GroupKey::Field(PATTERN_FIELD.to_owned()),
                    GroupKey::TimeBucket { interval_ns },
                ],
            ),
        )
        .await?;
    let mut counts: HashMap<String, Vec<u64>> = HashMap::new();
    for group in groups {
        let (Some(id), Some(bucket_ns), count) = key_bucket_count(&group) else {
            continue;
        };
        let slot = ((bucket_ns - first_bucket) / interval_ns).clamp(0, num_buckets as i64 - 1);
        counts.entry(id).or_insert_with(|| vec![0; num_buckets])[slot as usize] += count;
    }
    let total: u64 = counts.values().flatten().sum();
    let baseline = match baseline_range {
        Some((from_ns, to_ns)) => {
            let groups = state
                .index
                .aggregate(
                    &route,
                    &aggregate(
                        from_ns,
                        to_ns,
                        vec![GroupKey::Field(PATTERN_FIELD.to_owned())],
                    ),
                )
                .await?;
            let by_id: HashMap<String, u64> = groups
                .iter()
                .filter_map(|group| match key_bucket_count(group) {
                    (Some(id), _, count) => Some((id, count)),
                    _ => None,
                })
                .collect();
            Some((from_ns, to_ns, by_id))
        }
        None => None,
    };
    let mut ranked: Vec<(String, u64)> = counts
        .iter()
        .map(|(id, buckets)| (id.clone(), buckets.iter().sum()))
        .collect();
    ranked.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    let num_patterns = ranked.len();
    ranked.truncate(limit);
    // Patterns of the baseline that no longer occur follow, most frequent first.
    let mut gone: Vec<(String, u64)> = baseline
        .iter()
        .flat_map(|(_, _, by_id)| by_id.iter())
        .filter(|(id, _)| !counts.contains_key(*id))
        .map(|(id, count)| (id.clone(), *count))
        .collect();
    gone.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    gone.truncate(limit);
    let baseline_total = baseline
        .as_ref()
        .map(|(_, _, by_id)| by_id.values().sum::<u64>());

    let wanted: Vec<(String, i64, i64)> = ranked
        .iter()
        .map(|(id, _)| (id.clone(), range.from_ns, range.to_ns))
        .chain(gone.iter().filter_map(|(id, _)| {
            baseline
                .as_ref()
                .map(|(from_ns, to_ns, _)| (id.clone(), *from_ns, *to_ns))
        }))
        .collect();
    let samples: HashMap<String, Sample> = stream::iter(wanted)
        .map(|(id, from_ns, to_ns)| {
            let state = &state;
            let route = &route;
            let query = &range.query;
            let memory = limiter.query_memory();
            async move {
                let request = SearchRequest {
                    query: Query::And(vec![
                        query.clone(),
                        Query::Term {
                            field: Some(PATTERN_FIELD.to_owned()),
                            value: id.clone(),
                        },
                    ]),
                    from_ns,
                    to_ns,
                    limit: SAMPLES_PER_PATTERN,
                    after: None,
                    order: SortOrder::Desc,
                    memory,
                };
                let page = state.index.search(route, &request).await?;
                Ok::<_, ApiError>((id, Sample::of(&page.hits)))
            }
        })
        .buffer_unordered(SAMPLE_CONCURRENCY)
        .try_collect()
        .await?;

    let summary = |id: &str, count: u64, buckets: Vec<u64>| {
        let sample = samples.get(id);
        let first = buckets.iter().position(|count| *count > 0);
        let last = buckets.iter().rposition(|count| *count > 0);
        let bucket_start = |slot: usize| first_bucket + slot as i64 * interval_ns;
        let baseline_count = baseline
            .as_ref()
            .map(|(_, _, by_id)| by_id.get(id).copied().unwrap_or(0));
        let (ratio, change) = compare(count, total, baseline_count, baseline_total);
        PatternSummary {
            id: id.to_owned(),
            template: sample.map(|s| s.template.clone()).unwrap_or_default(),
            count,
            share: if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            },
            first_seen: first.map(|slot| format_time_ns(bucket_start(slot).max(range.from_ns))),
            last_seen: last
                .map(|slot| format_time_ns((bucket_start(slot) + interval_ns).min(range.to_ns))),
            sample_id: sample.and_then(|s| s.id.clone()),
            sample_message: sample.and_then(|s| s.message.clone()),
            counts: buckets,
            baseline_count,
            ratio,
            change,
        }
    };
    let mut patterns: Vec<PatternSummary> = ranked
        .iter()
        .map(|(id, count)| {
            let buckets = counts.get(id).cloned().unwrap_or_default();
            summary(id, *count, buckets)
        })
        .collect();
    patterns.extend(
        gone.iter()
            .map(|(id, _)| summary(id, 0, vec![0; num_buckets])),
    );
    Ok(Json(PatternsAnswer {
        patterns,
        total,
        num_patterns,
        baseline_total,
        buckets: (0..num_buckets)
            .map(|slot| format_time_ns(first_bucket + slot as i64 * interval_ns))
            .collect(),
        interval_ms: interval_ns / 1_000_000,
        from: format_time_ns(range.from_ns),
        to: format_time_ns(range.to_ns),
    }))
}

/// The baseline range, when both of its bounds are given.
fn resolve_baseline(
    params: &PatternsParams,
    state: &SearchState,
) -> Result<Option<(i64, i64)>, ApiError> {
    let now = now_ns();
    let from = resolve_time("compare_from", params.compare_from.as_ref(), now)?;
    let to = resolve_time("compare_to", params.compare_to.as_ref(), now)?;
    match (from, to) {
        (None, None) => Ok(None),
        (Some(from_ns), Some(to_ns)) => {
            check_range(from_ns, to_ns, &state.config)
                .map_err(|error| error.with_detail("field", "compare_from"))?;
            Ok(Some((from_ns, to_ns)))
        }
        (Some(_), None) => Err(ApiError::bad_request("`compare_from` needs `compare_to`")
            .with_detail("field", "compare_to")),
        (None, Some(_)) => Err(ApiError::bad_request("`compare_to` needs `compare_from`")
            .with_detail("field", "compare_from")),
    }
}

/// The pattern id, the bucket start (when grouped by time) and the count of a group.
fn key_bucket_count(group: &AggregateGroup) -> (Option<String>, Option<i64>, u64) {
    let id = match group.keys.first() {
        Some(KeyValue::Str(id)) => Some(id.clone()),
        _ => None,
    };
    let bucket = match group.keys.get(1) {
        Some(KeyValue::Time(bucket_ns) | KeyValue::Long(bucket_ns)) => Some(*bucket_ns),
        _ => None,
    };
    let count = match group.values.first() {
        Some(AggregateValue::Count(count)) => *count,
        _ => 0,
    };
    (id, bucket, count)
}

/// The share ratio against the baseline and what it means.
fn compare(
    count: u64,
    total: u64,
    baseline_count: Option<u64>,
    baseline_total: Option<u64>,
) -> (Option<f64>, Option<PatternChange>) {
    let (Some(baseline_count), Some(baseline_total)) = (baseline_count, baseline_total) else {
        return (None, None);
    };
    match (count, baseline_count) {
        (0, 0) => (None, Some(PatternChange::Same)),
        (_, 0) => (None, Some(PatternChange::New)),
        (0, _) => (None, Some(PatternChange::Gone)),
        _ => {
            let share = count as f64 / total.max(1) as f64;
            let baseline_share = baseline_count as f64 / baseline_total.max(1) as f64;
            let ratio = share / baseline_share;
            let change = if !(1.0 / CHANGED_RATIO..=CHANGED_RATIO).contains(&ratio) {
                PatternChange::Changed
            } else {
                PatternChange::Same
            };
            (Some(ratio), Some(change))
        }
    }
}

/// What the newest records of a pattern show of it.
struct Sample {
    template: String,
    id: Option<String>,
    message: Option<String>,
}

impl Sample {
    fn of(hits: &[logpool_engines::index::SearchHit]) -> Sample {
        let messages: Vec<String> = hits
            .iter()
            .filter_map(|hit| hit.fields.get(MESSAGE_FIELD))
            .map(|value| match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        Sample {
            template: common_template(messages.iter().map(String::as_str)),
            id: hits.first().map(|hit| hit.id.clone()),
            message: messages.into_iter().next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_compare_marks_new_gone_and_changed() {
        assert_eq!(compare(5, 10, None, None), (None, None));
        assert_eq!(
            compare(5, 10, Some(0), Some(10)).1,
            Some(PatternChange::New)
        );
        assert_eq!(
            compare(0, 10, Some(4), Some(10)).1,
            Some(PatternChange::Gone)
        );
        assert_eq!(
            compare(5, 10, Some(5), Some(10)),
            (Some(1.0), Some(PatternChange::Same))
        );
        assert_eq!(
            compare(9, 10, Some(1), Some(10)).1,
            Some(PatternChange::Changed)
        );
        assert_eq!(
            compare(1, 10, Some(9), Some(10)).1,
            Some(PatternChange::Changed)
        );
    }
}

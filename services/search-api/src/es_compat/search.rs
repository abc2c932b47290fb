//! Runs one checked search on a pool: hits through the search planner (newest
//! first, `search_after` as its cursor), aggregations through the engine's grouped
//! aggregation ([`super::buckets`]); answered in Elasticsearch's shape.

use std::time::Instant;

use logpool_api::time::now_ns;
use logpool_core::record::format_time_ns;
use logpool_core::routing::PoolRoute;
use logpool_engines::index::{SearchHit, SearchRequest};
use serde_json::{json, Map, Value};

use super::buckets::{self, Scope};
use super::error::EsError;
use super::query::TIME_FIELD;
use super::request::{parse_search, SearchUrlParams};
use crate::limiter::TenantQueries;
use crate::planner::PlannedSearch;
use crate::SearchState;

/// Searches `route` (named `index` in the answer) with a request body.
///
/// # Errors
/// Elasticsearch-shaped: 400 for what cannot be read or is not supported, 429 when
/// the tenant's query slots are taken, the engine's errors otherwise.
pub async fn search_pool(
    state: &SearchState,
    limiter: &TenantQueries,
    index: &str,
    route: PoolRoute,
    body: &Value,
    url: &SearchUrlParams,
) -> Result<Value, EsError> {
    let started = Instant::now();
    let search = parse_search(body, url, state.config.max_limit, now_ns())?;
    let filter = &search.filter;
    limiter.check_range(filter.from_ns, filter.to_ns)?;
    let _permit = limiter.try_acquire()?;
    // A page of at least one hit: with `size: 0` the planner still counts the total.
    let request = SearchRequest {
        query: filter.query.clone(),
        from_ns: filter.from_ns,
        to_ns: filter.to_ns,
        limit: search.size.max(1),
        after: search.after,
        memory: limiter.query_memory(),
    };
    let mut planned = PlannedSearch::start(
        state.index.clone(),
        route.clone(),
        request,
        search.track_total,
        &state.config,
    )
    .await?;
    planned.run().await?;
    let exact = planned.progress().scanned == planned.progress().total;
    let mut hits: Vec<Value> = Vec::with_capacity(search.size);
    for hit in std::mem::take(&mut planned.hits)
        .into_iter()
        .take(search.size)
    {
        hits.push(hit_json(index, hit));
    }
    let total = if url.rest_total_hits_as_int == Some(true) {
        json!(planned.total)
    } else {
        json!({"value": planned.total, "relation": if exact { "eq" } else { "gte" }})
    };
    let mut answer = Map::new();
    let aggregations = if search.aggs.is_empty() {
        None
    } else {
        let scope = Scope {
            state,
            limiter,
            route: &route,
            query: &filter.query,
            from_ns: filter.from_ns,
            to_ns: filter.to_ns,
        };
        Some(buckets::run(&scope, &search.aggs).await?)
    };
    answer.insert("took".into(), json!(started.elapsed().as_millis() as u64));
    answer.insert("timed_out".into(), json!(planned.partial));
    answer.insert(
        "_shards".into(),
        json!({"total": 1, "successful": 1, "skipped": 0, "failed": 0}),
    );
    answer.insert(
        "hits".into(),
        json!({"total": total, "max_score": null, "hits": hits}),
    );
    if let Some(aggregations) = aggregations {
        answer.insert("aggregations".into(), aggregations);
    }
    Ok(Value::Object(answer))
}

/// A hit: the record's fields with the time as `@timestamp` in `_source`, and
/// `sort` = `[epoch_millis, cursor]` for `search_after`.
fn hit_json(index: &str, hit: SearchHit) -> Value {
    let mut source = hit.fields;
    source.insert(TIME_FIELD.to_string(), json!(format_time_ns(hit.time_ns)));
    json!({
        "_index": index,
        "_type": "_doc",
        "_id": hit.id,
        "_score": null,
        "_source": source,
        "sort": [hit.time_ns.div_euclid(1_000_000), crate::cursor::encode(hit.sort_key)],
    })
}

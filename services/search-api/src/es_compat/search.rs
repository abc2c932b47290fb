//! Runs one checked search on a pool: hits through the search planner (newest
//! first, `search_after` as its cursor), aggregations through the engine's grouped
//! aggregation ([`super::buckets`]); answered in Elasticsearch's shape.

use std::time::Instant;

use logpool_api::time::now_ns;
use logpool_core::query::highlight::Highlighter;
use logpool_core::record::format_time_ns;
use logpool_core::routing::PoolRoute;
use logpool_engines::index::{SearchHit, SearchRequest, SortOrder};
use logpool_wire::es_search::{EsHit, EsHits, EsSearchAnswer, EsShards, EsTotal};
use serde_json::{json, Value};

use super::buckets::{self, Scope};
use super::error::EsError;
use super::highlight::highlight;
use super::query::TIME_FIELD;
use super::request::{parse_search, SearchUrlParams};
use crate::hits::highlight_bytes;
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
) -> Result<EsSearchAnswer, EsError> {
    let started = Instant::now();
    let search = parse_search(body, url, state.config.max_limit, now_ns())?;
    let filter = &search.filter;
    check_span(
        filter.from_ns,
        filter.to_ns,
        state.config.max_time_range_days,
    )?;
    limiter.check_range(filter.from_ns, filter.to_ns)?;
    let _permit = limiter.try_acquire()?;
    // A page of at least one hit: with `size: 0` the planner still counts the total.
    let request = SearchRequest {
        query: filter.query.clone(),
        from_ns: filter.from_ns,
        to_ns: filter.to_ns,
        limit: search.size.max(1),
        after: search.after,
        order: SortOrder::Desc,
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
    let marking = search
        .highlight
        .as_ref()
        .map(|tags| (Highlighter::new(&filter.query), tags));
    let memory = planned.memory().clone();
    let mut hits: Vec<EsHit> = Vec::with_capacity(search.size.min(planned.hits.len()));
    for hit in std::mem::take(&mut planned.hits)
        .into_iter()
        .take(search.size)
    {
        // Highlights count against the page's memory budget, as in the native
        // search; past it, hits come without them.
        let marked = marking
            .as_ref()
            .map(|(highlighter, tags)| highlight(highlighter, &hit.fields, tags))
            .filter(|marked| memory.try_charge(highlight_bytes(marked)).is_ok());
        let mut es_hit = es_hit(index, hit);
        es_hit.highlight = marked;
        hits.push(es_hit);
    }
    let total = if url.rest_total_hits_as_int == Some(true) {
        EsTotal::Plain(planned.total)
    } else {
        EsTotal::Counted {
            value: planned.total,
            relation: if exact { "eq" } else { "gte" }.to_string(),
        }
    };
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
    Ok(EsSearchAnswer {
        took: started.elapsed().as_millis() as u64,
        timed_out: planned.partial,
        shards: EsShards::one(),
        hits: EsHits {
            total,
            max_score: None,
            hits,
        },
        aggregations,
        status: None,
    })
}

/// The longest range a search may cover when both ends are given, as for the
/// native search (`search.max_time_range_days`); an open end is not capped.
fn check_span(from_ns: i64, to_ns: i64, max_days: i64) -> Result<(), EsError> {
    const DAY_NS: i64 = 86_400_000_000_000;
    let bounded = from_ns != i64::MIN && to_ns != i64::MAX;
    if bounded && to_ns.saturating_sub(from_ns) > max_days.saturating_mul(DAY_NS) {
        return Err(EsError::illegal(format!(
            "the range on [{TIME_FIELD}] may span at most {max_days} days \
             (search.max_time_range_days)"
        )));
    }
    Ok(())
}

/// A hit: the record's fields with the time as `@timestamp` in `_source`, and
/// `sort` = `[epoch_millis, cursor]` for `search_after`.
fn es_hit(index: &str, hit: SearchHit) -> EsHit {
    let mut source = hit.fields;
    source.insert(TIME_FIELD.to_string(), json!(format_time_ns(hit.time_ns)));
    EsHit {
        index: index.to_string(),
        doc_type: "_doc".to_string(),
        id: hit.id,
        score: None,
        source,
        sort: vec![
            json!(hit.time_ns.div_euclid(1_000_000)),
            Value::String(crate::cursor::encode(hit.sort_key, SortOrder::Desc)),
        ],
        highlight: None,
    }
}

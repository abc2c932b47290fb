//! search-api: search and histogram over a pool.
//!
//! - `GET|POST /v1/projects/{project}/pools/{pool}/search`: newest first, with an
//!   opaque `cursor` for the next page, `progress` and `partial` from the [`planner`],
//!   and `highlight` on request.
//! - `GET|POST /v1/projects/{project}/pools/{pool}/search/stream`: the same search as
//!   NDJSON, one line per planner step, for progress bars ([`stream`]).
//! - `GET|POST /v1/projects/{project}/pools/{pool}/histogram`: counts per time bucket
//!   with an automatic interval (at most 120 buckets).
//! - `GET|POST /v1/projects/{project}/pools/{pool}/fields`: the most common fields of
//!   the matching records and their top values ([`fields`], counted by
//!   [`field_counts`]).
//! - `GET /v1/projects/{project}/pools/{pool}/schema`: the pool's typed fields
//!   ([`schema`]).
//! - `GET /v1/projects/{project}/pools/{pool}/records/{id}/context`: the records
//!   around a hit in its shard's order ([`context`]).
//! - `GET|POST /v1/projects/{project}/pools/{pool}/export`: every match of the range
//!   as CSV or NDJSON, up to `search.max_export_records` ([`export`]).
//! - `POST /v1/projects/{project}/pools/{pool}/query`: pipe SQL
//!   (`<query> | SELECT ...`), answered as columns and rows ([`query_sql`]).
//!
//! - `/es/_msearch`, `/es/{index}/_search`, `/es/{index}/_mapping`,
//!   `/es/{index}/_field_caps`: an Elasticsearch-compatible read API for Grafana
//!   ([`es_compat`]).
//!
//! Modules: [`params`] (request parameters and their validation), [`cursor`],
//! [`interval`] (automatic histogram intervals), [`planner`] (partition pruning,
//! newest-first steps, time budget), [`limiter`] (concurrent queries per tenant),
//! [`hits`] (the JSON of a hit), [`wait_for`] (read-your-writes: search, its
//! stream, histogram, SQL and context may wait for a PutDatas `write_token`).

pub mod context;
pub mod cursor;
pub mod es_compat;
pub mod export;
pub mod field_counts;
pub mod fields;
pub mod hits;
pub mod interval;
pub mod limiter;
pub mod params;
pub mod patterns;
pub mod planner;
pub(crate) mod query_eval;
pub mod query_sql;
pub mod schema;
pub mod service;
pub mod stream;
pub mod wait_for;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json, Router};
use logpool_api::{ApiError, AppParams, Routes, RoutingView};
use logpool_core::access::Permission;
use logpool_core::query::highlight::Highlighter;
use logpool_core::record::format_time_ns;
use logpool_engines::config::SearchConfig;
use logpool_engines::index::{HistogramRequest, LogIndex, SearchRequest};
use logpool_wire::search::{Bucket, HistogramAnswer, Hit, SearchAnswer};

use crate::hits::{highlight_bytes, hit_with_highlight};
use crate::limiter::TenantLimiter;
use crate::params::{HistogramParams, Resolve, SearchParams};
use crate::planner::PlannedSearch;
use crate::wait_for::WaitFor;

/// What the search handlers need.
#[derive(Debug, Clone)]
pub struct SearchState {
    /// The index to search.
    pub index: Arc<dyn LogIndex>,
    /// Pool routes.
    pub routing: RoutingView,
    /// Limits and defaults.
    pub config: SearchConfig,
}

/// The search-api routes with their permissions.
pub fn routes() -> Routes<SearchState> {
    let pool = "/v1/projects/{project}/pools/{pool}";
    let read = Permission::Read;
    Routes::new()
        .get_or_post(&format!("{pool}/search"), read, search)
        .get_or_post(
            &format!("{pool}/search/stream"),
            read,
            stream::search_stream,
        )
        .get_or_post(&format!("{pool}/histogram"), read, histogram)
        .get_or_post(&format!("{pool}/fields"), read, fields::fields)
        .get_or_post(&format!("{pool}/patterns"), read, patterns::patterns)
        .get(&format!("{pool}/schema"), read, schema::schema)
        .get_or_post(&format!("{pool}/export"), read, export::export)
        .post(&format!("{pool}/query"), read, query_sql::query_post)
        .get(
            &format!("{pool}/records/{{id}}/context"),
            read,
            context::context,
        )
        .merge(es_compat::routes())
}

/// Builds the search-api router.
pub fn router(state: SearchState) -> Router {
    let limiter = TenantLimiter::with_memory(
        state.config.max_concurrent_queries_per_tenant,
        state.routing.clone(),
        state.config.max_query_memory_bytes,
        state.config.max_query_memory_bytes_per_tenant,
    );
    let router = routes()
        .into_router(state.routing.clone())
        .layer(Extension(limiter))
        .with_state(state);
    logpool_api::layers::with_common_layers(router)
}

/// A validated search, ready to run: the planner and what the answer needs.
pub(crate) struct PreparedSearch {
    pub(crate) planned: PlannedSearch,
    pub(crate) highlighter: Option<Highlighter>,
    pub(crate) permit: limiter::QueryPermit,
}

pub(crate) async fn prepare_search(
    state: &SearchState,
    limiter: &crate::limiter::TenantQueries,
    project: &str,
    pool: &str,
    params: SearchParams,
) -> Result<PreparedSearch, ApiError> {
    let route = state.routing.pool(limiter.tenant(), project, pool)?;
    let wait = WaitFor::parse(&route, params.wait_for.as_deref(), params.wait_timeout_ms)?;
    let resolved = params.resolve(&state.config)?;
    limiter.check_range(resolved.from_ns, resolved.to_ns)?;
    // The wait holds the query's slot: the index lookups of the waiting reads of one
    // tenant are bounded like its queries.
    let permit = limiter.try_acquire()?;
    if let Some(wait) = wait {
        wait.until_searchable(&state.index, &route).await?;
    }
    let highlighter = resolved
        .highlight
        .then(|| Highlighter::new(&resolved.query));
    let track_total = resolved.track_total;
    let request = SearchRequest {
        query: resolved.query,
        from_ns: resolved.from_ns,
        to_ns: resolved.to_ns,
        limit: resolved.limit,
        after: resolved.after,
        order: resolved.order,
        memory: limiter.query_memory(),
    };
    let planned = PlannedSearch::start(
        state.index.clone(),
        route,
        request,
        track_total,
        &state.config,
    )
    .await?;
    Ok(PreparedSearch {
        planned,
        highlighter,
        permit,
    })
}

/// The cursor of the next page: after the last hit when the page is full, reached its
/// memory budget or the search stopped early, none when every match has been returned.
pub(crate) fn next_cursor(planned: &PlannedSearch) -> Option<String> {
    let more = planned.hits.len() >= planned.limit() || planned.partial || planned.truncated;
    more.then(|| {
        planned
            .hits
            .last()
            .map(|hit| cursor::encode(hit.sort_key, planned.order()))
    })
    .flatten()
}

async fn search(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool)): Path<(String, String)>,
    AppParams(params): AppParams<SearchParams>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let PreparedSearch {
        mut planned,
        highlighter,
        permit: _permit,
    } = prepare_search(&state, &limiter, &project, &pool, params).await?;
    planned.run().await?;
    let mut cursor = next_cursor(&planned);
    let mut truncated = planned.truncated;
    let memory = planned.memory().clone();
    let mut last_kept = None;
    // The hits move into the answer: a page of large records is held once, not twice.
    let page = std::mem::take(&mut planned.hits);
    let mut hits: Vec<Hit> = Vec::with_capacity(page.len());
    for hit in page {
        let highlight = highlighter
            .as_ref()
            .map(|highlighter| highlighter.highlight(&hit.fields));
        // Highlights count against the page's memory budget too; the page ends
        // before the first hit whose highlight does not fit.
        if let Some(marked) = &highlight {
            let bytes = highlight_bytes(marked);
            if hits.is_empty() {
                memory.charge_anyway(bytes);
            } else if memory.try_charge(bytes).is_err() {
                truncated = true;
                cursor = last_kept.map(|key| cursor::encode(key, planned.order()));
                break;
            }
        }
        last_kept = Some(hit.sort_key);
        hits.push(hit_with_highlight(hit, highlight));
    }
    Ok(Json(SearchAnswer {
        cursor,
        hits,
        partial: planned.partial,
        progress: planned.progress(),
        total: planned.total,
        truncated,
    }))
}

async fn histogram(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool)): Path<(String, String)>,
    AppParams(params): AppParams<HistogramParams>,
) -> Result<Json<HistogramAnswer>, ApiError> {
    let route = state.routing.pool(limiter.tenant(), &project, &pool)?;
    let wait = WaitFor::parse(&route, params.wait_for.as_deref(), params.wait_timeout_ms)?;
    let resolved = params.resolve(&state.config)?;
    limiter.check_range(resolved.from_ns, resolved.to_ns)?;
    let _permit = limiter.try_acquire()?;
    if let Some(wait) = wait {
        wait.until_searchable(&state.index, &route).await?;
    }
    let request = HistogramRequest {
        query: resolved.query,
        from_ns: resolved.from_ns,
        to_ns: resolved.to_ns,
        interval_ns: resolved.interval_ns,
    };
    let counted = state.index.histogram(&route, &request).await?;
    // Every bucket of the range is listed, empty ones with 0, so charts need no gaps logic.
    let mut counts = counted.into_iter().peekable();
    let mut buckets = Vec::new();
    let mut bucket = request
        .from_ns
        .div_euclid(request.interval_ns)
        .saturating_mul(request.interval_ns);
    while bucket < request.to_ns {
        let mut count = 0;
        while let Some(next) = counts.peek() {
            if next.time_ns < bucket {
                counts.next();
            } else if next.time_ns == bucket {
                count = next.count;
                counts.next();
                break;
            } else {
                break;
            }
        }
        buckets.push(Bucket {
            count,
            time: format_time_ns(bucket),
        });
        bucket = bucket.saturating_add(request.interval_ns);
    }
    Ok(Json(HistogramAnswer {
        buckets,
        from: format_time_ns(request.from_ns),
        interval_ms: request.interval_ns / 1_000_000,
        to: format_time_ns(request.to_ns),
    }))
}

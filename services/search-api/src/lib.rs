//! search-api: search and histogram over a pool.
//!
//! - `GET|POST /v1/projects/{project}/pools/{pool}/search`: newest first, with an
//!   opaque `cursor` for the next page.
//! - `GET|POST /v1/projects/{project}/pools/{pool}/histogram`: counts per time bucket
//!   with an automatic interval (at most 120 buckets).
//!
//! Modules: [`params`] (request parameters and their validation), [`cursor`],
//! [`interval`] (automatic histogram intervals).

pub mod cursor;
pub mod interval;
pub mod params;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use logpool_api::{ApiError, AppJson, AppQuery, RoutingView};
use logpool_core::record::format_time_ns;
use logpool_core::routing::DEFAULT_TENANT;
use logpool_engines::config::SearchConfig;
use logpool_engines::index::{HistogramRequest, LogIndex, SearchRequest};
use serde_json::{json, Value};

use crate::params::{HistogramParams, SearchParams};

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

/// Builds the search-api router.
pub fn router(state: SearchState) -> Router {
    let router = Router::new()
        .route(
            "/v1/projects/{project}/pools/{pool}/search",
            get(search_get).post(search_post),
        )
        .route(
            "/v1/projects/{project}/pools/{pool}/histogram",
            get(histogram_get).post(histogram_post),
        )
        .with_state(state);
    logpool_api::layers::with_common_layers(router)
}

async fn search_get(
    State(state): State<SearchState>,
    Path((project, pool)): Path<(String, String)>,
    AppQuery(params): AppQuery<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    search(&state, &project, &pool, params).await
}

async fn search_post(
    State(state): State<SearchState>,
    Path((project, pool)): Path<(String, String)>,
    AppJson(params): AppJson<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    search(&state, &project, &pool, params).await
}

async fn search(
    state: &SearchState,
    project: &str,
    pool: &str,
    params: SearchParams,
) -> Result<Json<Value>, ApiError> {
    let route = state.routing.pool(DEFAULT_TENANT, project, pool)?;
    let resolved = params.resolve(&state.config)?;
    let request = SearchRequest {
        query: resolved.query,
        from_ns: resolved.from_ns,
        to_ns: resolved.to_ns,
        limit: resolved.limit,
        after: resolved.after,
    };
    let page = state.index.search(&route, &request).await?;
    let next_cursor = (page.hits.len() == request.limit && request.limit > 0)
        .then(|| page.hits.last().map(|hit| cursor::encode(hit.sort_key)))
        .flatten();
    let hits: Vec<Value> = page
        .hits
        .into_iter()
        .map(|hit| {
            json!({
                "id": hit.id,
                "time": format_time_ns(hit.time_ns),
                "shard": hit.shard,
                "fields": hit.fields,
            })
        })
        .collect();
    Ok(Json(
        json!({ "hits": hits, "total": page.total, "cursor": next_cursor }),
    ))
}

async fn histogram_get(
    State(state): State<SearchState>,
    Path((project, pool)): Path<(String, String)>,
    AppQuery(params): AppQuery<HistogramParams>,
) -> Result<Json<Value>, ApiError> {
    histogram(&state, &project, &pool, params).await
}

async fn histogram_post(
    State(state): State<SearchState>,
    Path((project, pool)): Path<(String, String)>,
    AppJson(params): AppJson<HistogramParams>,
) -> Result<Json<Value>, ApiError> {
    histogram(&state, &project, &pool, params).await
}

async fn histogram(
    state: &SearchState,
    project: &str,
    pool: &str,
    params: HistogramParams,
) -> Result<Json<Value>, ApiError> {
    let route = state.routing.pool(DEFAULT_TENANT, project, pool)?;
    let resolved = params.resolve(&state.config)?;
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
    let mut bucket = request.from_ns.div_euclid(request.interval_ns) * request.interval_ns;
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
        buckets.push(json!({ "time": format_time_ns(bucket), "count": count }));
        bucket = bucket.saturating_add(request.interval_ns);
    }
    Ok(Json(json!({
        "interval_ms": request.interval_ns / 1_000_000,
        "from": format_time_ns(request.from_ns),
        "to": format_time_ns(request.to_ns),
        "buckets": buckets,
    })))
}

//! An Elasticsearch-compatible read API under `/es`, for Grafana's Elasticsearch
//! data source and Elasticsearch clients:
//!
//! - `GET|POST /es/_msearch` and `/es/{index}/_msearch`: NDJSON header/body pairs,
//!   answered as `{"took", "responses": [...]}`, each with its own `status`;
//! - `GET|POST /es/{index}/_search` (a search reads one pool, so the index is
//!   always named);
//! - `GET /es/{index}/_mapping`, `GET|POST /es/_field_caps` and
//!   `/es/{index}/_field_caps`: the pool's fields with Elasticsearch types.
//!
//! The index is the pool, `{project}.{pool}`, by the same rule as bulk ingest
//! ([`logpool_core::es_index`]); a comma list may repeat one pool, and listings
//! (`_mapping`, `_field_caps`) take several. Reader keys may search; a key limited
//! to a project sees only its pools. Nothing here is a second engine: queries go to
//! the product's query parser ([`query`]), hits to the search planner, aggregations
//! to the engine's grouped aggregation ([`buckets`]). Errors are in Elasticsearch's
//! shape ([`error`]).
//!
//! Modules: [`request`] (the search body), [`query`] (query DSL), [`aggs`]
//! (aggregation requests), [`buckets`] (running them, their answer), [`search`] (one
//! search), [`msearch`] (the NDJSON of `_msearch`), [`mapping`] (field listings).

pub mod aggs;
pub mod buckets;
pub mod error;
pub mod highlight;
pub mod mapping;
pub mod msearch;
pub mod query;
pub mod request;
pub mod search;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use bytes::Bytes;
use logpool_api::{Principal, Routes};
use logpool_core::access::Permission;
use logpool_core::es_index::pool_of_index;
use logpool_core::routing::PoolRoute;
use logpool_wire::es_search::{EsFieldCaps, EsMapping, EsMsearchAnswer, EsSearchAnswer};
use serde_json::Value;

use crate::limiter::TenantQueries;
use crate::SearchState;
use error::EsError;
use request::SearchUrlParams;

/// The Elasticsearch-compatible read routes (the ingest and discovery routes under
/// `/es` are put-datas's).
pub fn routes() -> Routes<SearchState> {
    let read = Permission::Read;
    Routes::new()
        .get_or_post("/es/_msearch", read, msearch_all)
        .get_or_post("/es/{index}/_msearch", read, msearch_index)
        .get_or_post("/es/{index}/_search", read, search_index)
        .get("/es/{index}/_mapping", read, mapping_index)
        .get_or_post("/es/_field_caps", read, field_caps_all)
        .get_or_post("/es/{index}/_field_caps", read, field_caps_index)
}

/// The pools an index expression names, each with the name it was asked by.
///
/// # Errors
/// 400 for wildcards, 404 for a name that is no pool, 403 for a pool of another
/// project than the key's.
pub fn pools_of(
    state: &SearchState,
    principal: &Principal,
    expression: &str,
) -> Result<Vec<(String, PoolRoute)>, EsError> {
    let mut pools: Vec<(String, PoolRoute)> = Vec::new();
    for index in expression
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        if index.contains('*') || index.starts_with('-') || index == "_all" {
            return Err(EsError::unsupported(
                &format!("index {index}"),
                "name the pool as `{project}.{pool}`; wildcards are not supported",
            ));
        }
        let name = pool_of_index(index).map_err(|reason| EsError::no_index(index, &reason))?;
        if !principal.may_see_project(&name.project) {
            return Err(EsError::forbidden(format!(
                "this key is limited to another project than `{}`",
                name.project
            )));
        }
        let route = state
            .routing
            .pool(&principal.tenant, &name.project, &name.pool)
            .map_err(|_| EsError::no_index(index, "no pool has this name"))?;
        if !pools
            .iter()
            .any(|(_, known)| known.pool_id == route.pool_id)
        {
            pools.push((index.to_string(), route));
        }
    }
    if pools.is_empty() {
        return Err(EsError::illegal(
            "name the index to search: `/es/{project}.{pool}/_search`",
        ));
    }
    Ok(pools)
}

/// The one pool a search reads.
///
/// # Errors
/// As [`pools_of`], and 400 when the expression names several pools.
pub fn pool_to_search(
    state: &SearchState,
    principal: &Principal,
    expression: &str,
) -> Result<(String, PoolRoute), EsError> {
    let mut pools = pools_of(state, principal, expression)?;
    if pools.len() > 1 {
        return Err(EsError::illegal(format!(
            "[{expression}] names {} pools; a search reads one pool",
            pools.len()
        )));
    }
    Ok(pools.remove(0))
}

fn url_params(uri: &Uri) -> Result<SearchUrlParams, EsError> {
    axum::extract::Query::<SearchUrlParams>::try_from_uri(uri)
        .map(|query| query.0)
        .map_err(|error| EsError::illegal(format!("URL parameters: {error}")))
}

/// The request body, or the Elasticsearch-shaped refusal of one that could not be
/// read (over the 2 MiB that a search body may have: 413).
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, EsError> {
    body.map_err(|rejection| EsError {
        status: rejection.status().as_u16(),
        kind: "illegal_argument_exception",
        reason: format!("the request body cannot be read: {}", rejection.body_text()),
        retry_after: None,
    })
}

fn json_body(body: &Bytes) -> Result<Value, EsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|error| EsError::parsing(format!("the request body is not JSON: {error}")))
}

async fn search_index(
    State(state): State<SearchState>,
    limiter: TenantQueries,
    principal: Principal,
    Path(index): Path<String>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EsSearchAnswer>, EsError> {
    let url = url_params(&uri)?;
    let body = json_body(&body_bytes(body)?)?;
    let (index, route) = pool_to_search(&state, &principal, &index)?;
    search::search_pool(&state, &limiter, &index, route, &body, &url)
        .await
        .map(Json)
}

async fn msearch_all(
    State(state): State<SearchState>,
    limiter: TenantQueries,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EsMsearchAnswer>, EsError> {
    msearch::msearch(&state, &limiter, &principal, None, &body_bytes(body)?)
        .await
        .map(Json)
}

async fn msearch_index(
    State(state): State<SearchState>,
    limiter: TenantQueries,
    principal: Principal,
    Path(index): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EsMsearchAnswer>, EsError> {
    msearch::msearch(
        &state,
        &limiter,
        &principal,
        Some(&index),
        &body_bytes(body)?,
    )
    .await
    .map(Json)
}

async fn mapping_index(
    State(state): State<SearchState>,
    principal: Principal,
    Path(index): Path<String>,
) -> Result<Json<EsMapping>, EsError> {
    let pools = pools_of(&state, &principal, &index)?;
    Ok(Json(mapping::mapping(&pools)))
}

/// `fields` of `_field_caps`, from the URL (or, as some clients send it, the body).
#[derive(Debug, Default, serde::Deserialize)]
struct FieldCapsParams {
    fields: Option<String>,
}

fn fields_wanted(uri: &Uri, body: &Bytes) -> Result<Option<String>, EsError> {
    let from_url = axum::extract::Query::<FieldCapsParams>::try_from_uri(uri)
        .map(|query| query.0.fields)
        .map_err(|error| EsError::illegal(format!("URL parameters: {error}")))?;
    if from_url.is_some() {
        return Ok(from_url);
    }
    let body = json_body(body)?;
    Ok(match body.get("fields") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Array(names)) => Some(
            names
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    })
}

async fn field_caps_all(
    State(state): State<SearchState>,
    principal: Principal,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EsFieldCaps>, EsError> {
    let wanted = fields_wanted(&uri, &body_bytes(body)?)?;
    // No index: every pool the key may read.
    let snapshot = state.routing.snapshot();
    let pools: Vec<(String, PoolRoute)> = snapshot
        .pools
        .iter()
        .filter(|pool| pool.tenant == principal.tenant && principal.may_see_project(&pool.project))
        .map(|pool| (format!("{}.{}", pool.project, pool.name), pool.clone()))
        .collect();
    Ok(Json(mapping::field_caps(&pools, wanted.as_deref())))
}

async fn field_caps_index(
    State(state): State<SearchState>,
    principal: Principal,
    Path(index): Path<String>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EsFieldCaps>, EsError> {
    let wanted = fields_wanted(&uri, &body_bytes(body)?)?;
    let pools = pools_of(&state, &principal, &index)?;
    Ok(Json(mapping::field_caps(&pools, wanted.as_deref())))
}

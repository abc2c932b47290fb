//! `GET /v1/projects/{project}/pools/{pool}/records/{id}/context`: the records around
//! a hit in its shard's queue order, optionally only those of the hit's `source`.

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::{ApiError, AppQuery};
use logpool_core::doc_id::DocIdentity;
use logpool_core::query::Query;
use logpool_engines::index::{ContextRequest, SearchHit};
use logpool_wire::search::ContextAnswer;
use serde_json::Value;

use crate::hits::hit_of;
use crate::params::{ContextParams, Resolve};
use crate::wait_for::WaitFor;
use crate::SearchState;

/// The field whose value `same_source` compares.
const SOURCE_FIELD: &str = "source";

pub(crate) async fn context(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool, id)): Path<(String, String, String)>,
    AppQuery(params): AppQuery<ContextParams>,
) -> Result<Json<ContextAnswer>, ApiError> {
    let route = state.routing.pool(limiter.tenant(), &project, &pool)?;
    let wait = WaitFor::parse(&route, params.wait_for.as_deref(), params.wait_timeout_ms)?;
    let resolved = params.resolve(&state.config)?;
    let anchor = DocIdentity::parse(&id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`id` `{id}` is not a record id (like `7-0-17-3`, as in search hits)"
        ))
        .with_detail("field", "id")
    })?;
    let not_found = || ApiError::not_found(format!("record `{id}` not found in pool `{pool}`"));
    if anchor.pool_id != route.pool_id {
        return Err(not_found());
    }
    let _permit = limiter.try_acquire()?;
    if let Some(wait) = wait {
        wait.until_searchable(&state.index, &route).await?;
    }
    let mut request = ContextRequest {
        anchor,
        filter: Query::All,
        before: resolved.before,
        after: resolved.after,
    };
    let mut page = state.index.context(&route, &request).await?;
    let anchor_hit = page.anchor.clone().ok_or_else(not_found)?;
    if resolved.same_source {
        let source = anchor_hit.fields.get(SOURCE_FIELD).cloned();
        request.filter = match source.as_ref().and_then(Value::as_str) {
            // The phrase finds the candidates through the index; the exact comparison
            // below drops the rare value that only differs in punctuation or case.
            Some(text) => Query::Phrase {
                field: Some(SOURCE_FIELD.to_string()),
                text: text.to_string(),
            },
            None => Query::Not(Box::new(Query::Exists {
                field: SOURCE_FIELD.to_string(),
            })),
        };
        page = state.index.context(&route, &request).await?;
        let same = |hit: &SearchHit| hit.fields.get(SOURCE_FIELD) == source.as_ref();
        page.before.retain(same);
        page.after.retain(same);
    }
    let list = |hits: &[SearchHit]| hits.iter().map(|hit| hit_of(hit, None)).collect();
    Ok(Json(ContextAnswer {
        after: list(&page.after),
        anchor: hit_of(&anchor_hit, None),
        before: list(&page.before),
    }))
}

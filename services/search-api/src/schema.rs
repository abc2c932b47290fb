//! `GET /v1/projects/{project}/pools/{pool}/schema`: every field the pool has typed
//! (hinted, or learned from its first value) with the type search gives it, so a
//! query box can complete field names and warn about a field the pool never saw
//! without running a search.

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::ApiError;
use logpool_wire::search::{SchemaAnswer, SchemaField};

use crate::SearchState;

pub(crate) async fn schema(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool)): Path<(String, String)>,
) -> Result<Json<SchemaAnswer>, ApiError> {
    let route = state.routing.pool(limiter.tenant(), &project, &pool)?;
    let fields = route
        .field_types()
        .into_iter()
        .map(|(name, field_type)| SchemaField {
            hinted: route.field_hints.contains_key(&name),
            field_type: logpool_api::field_type::to_wire(field_type),
            name,
        })
        .collect();
    Ok(Json(SchemaAnswer { fields }))
}

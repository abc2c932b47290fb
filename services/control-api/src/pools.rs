//! `/v1/projects/{project}/pools` and `/v1/projects/{project}/pools/{pool}`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::Permission;
use logpool_core::ingest::window::EventWindowOverride;
use logpool_core::limits::MAX_EVENT_FUTURE_SECS;
use logpool_core::routing::FieldType;
use logpool_engines::metadata::{NewPool, Pool, PoolPatch, PoolRef};
use logpool_wire::control as wire;

use crate::projects::check_description;
use crate::{check_name, format_ms, ControlState};

/// Shards a pool gets when the request does not say.
pub const DEFAULT_SHARDS: u32 = 2;
/// Most shards one pool may have.
pub const MAX_SHARDS: u32 = 64;
/// Retention when the request does not say.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;
/// Longest retention.
pub const MAX_RETENTION_DAYS: u32 = 3650;

pub(crate) fn routes() -> Routes<ControlState> {
    let pools = "/v1/projects/{project}/pools";
    let pool = "/v1/projects/{project}/pools/{pool}";
    Routes::new()
        .get(pools, Permission::Read, list_pools)
        .post(pools, Permission::ManageProject, create_pool)
        .get(pool, Permission::Read, get_pool)
        .patch(pool, Permission::ManageProject, update_pool)
        .delete(pool, Permission::ManageProject, delete_pool)
}

fn check_shards(shards: u32) -> Result<(), ApiError> {
    if !(1..=MAX_SHARDS).contains(&shards) {
        return Err(ApiError::bad_request(format!(
            "`shards` must be between 1 and {MAX_SHARDS}, got {shards}"
        ))
        .with_detail("field", "shards"));
    }
    Ok(())
}

fn check_retention(days: u32) -> Result<(), ApiError> {
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "`retention_days` must be between 1 and {MAX_RETENTION_DAYS}, got {days}"
        ))
        .with_detail("field", "retention_days"));
    }
    Ok(())
}

/// The oldest accepted event age may be at most the longest retention (it counts
/// as the pool's retention when above it); the lead at most
/// [`MAX_EVENT_FUTURE_SECS`], since each future day is a partition that stays until
/// it expires.
fn check_event_window(
    max_event_age_days: Option<u32>,
    max_event_future_secs: Option<u32>,
) -> Result<(), ApiError> {
    if let Some(days) = max_event_age_days {
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(ApiError::bad_request(format!(
                "`max_event_age_days` must be between 1 and {MAX_RETENTION_DAYS}, got {days}"
            ))
            .with_detail("field", "max_event_age_days"));
        }
    }
    if let Some(secs) = max_event_future_secs {
        if secs > MAX_EVENT_FUTURE_SECS {
            return Err(ApiError::bad_request(format!(
                "`max_event_future_secs` must be between 0 and {MAX_EVENT_FUTURE_SECS}, got {secs}"
            ))
            .with_detail("field", "max_event_future_secs"));
        }
    }
    Ok(())
}

fn check_hints<T>(hints: &BTreeMap<String, T>) -> Result<(), ApiError> {
    for name in hints.keys() {
        if name.is_empty() || name.chars().count() > 128 {
            return Err(ApiError::bad_request(format!(
                "field hint name `{name}` must be 1 to 128 characters"
            ))
            .with_detail("field", "field_hints"));
        }
    }
    Ok(())
}

fn pool_of(pool: &Pool) -> wire::Pool {
    wire::Pool {
        created_at: format_ms(pool.created_at_ms),
        description: pool.description.clone(),
        field_hints: pool
            .field_hints
            .iter()
            .map(|(name, field_type)| (name.clone(), logpool_api::field_type::to_wire(*field_type)))
            .collect(),
        max_event_age_days: pool.event_window.max_event_age_days,
        max_event_future_secs: pool.event_window.max_event_future_secs,
        name: pool.name.clone(),
        project: pool.project.clone(),
        retention_days: pool.retention_days,
        shards: pool.partitions.len(),
        updated_at: format_ms(pool.updated_at_ms),
    }
}

/// The declared types of a request as the pool stores them.
fn field_hints_of(hints: BTreeMap<String, wire::FieldType>) -> BTreeMap<String, FieldType> {
    hints
        .into_iter()
        .map(|(name, field_type)| (name, logpool_api::field_type::from_wire(field_type)))
        .collect()
}

async fn create_pool(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(body): AppJson<wire::CreatePool>,
) -> Result<(StatusCode, Json<wire::Pool>), ApiError> {
    check_name("name", &body.name)?;
    check_description(&body.description)?;
    let shards = body.shards.unwrap_or(DEFAULT_SHARDS);
    check_shards(shards)?;
    let retention_days = body.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
    check_retention(retention_days)?;
    check_hints(&body.field_hints)?;
    check_event_window(body.max_event_age_days, body.max_event_future_secs)?;
    let _guard = state.change_lock.lock().await;
    let new_pool = NewPool {
        name: body.name,
        description: body.description,
        shards,
        retention_days,
        field_hints: field_hints_of(body.field_hints),
        event_window: EventWindowOverride {
            max_event_age_days: body.max_event_age_days,
            max_event_future_secs: body.max_event_future_secs,
        },
    };
    let pool = state
        .metadata
        .create_pool(&principal.tenant, &project, new_pool)
        .await?;
    let route = pool.route();
    // Topics and index first, routing last: no service may route to a shard the
    // broker does not have yet.
    state.queue.prepare_shards(&route.shard_addrs()).await?;
    state.index.ensure_pool(&route).await?;
    state.publish_routing().await?;
    Ok((StatusCode::CREATED, Json(pool_of(&pool))))
}

async fn list_pools(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<wire::PoolList>, ApiError> {
    let pools = state
        .metadata
        .list_pools(&principal.tenant, &project)
        .await?;
    Ok(Json(wire::PoolList {
        pools: pools.iter().map(pool_of).collect(),
    }))
}

async fn get_pool(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
) -> Result<Json<wire::Pool>, ApiError> {
    let pool = state
        .metadata
        .get_pool(&PoolRef::new(&principal.tenant, &project, &pool))
        .await?;
    Ok(Json(pool_of(&pool)))
}

async fn update_pool(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppJson(body): AppJson<wire::UpdatePool>,
) -> Result<Json<wire::Pool>, ApiError> {
    if let Some(shards) = body.shards {
        check_shards(shards)?;
    }
    if let Some(days) = body.retention_days {
        check_retention(days)?;
    }
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    if let Some(hints) = &body.field_hints {
        check_hints(hints)?;
    }
    check_event_window(
        body.max_event_age_days.flatten(),
        body.max_event_future_secs.flatten(),
    )?;
    let _guard = state.change_lock.lock().await;
    let patch = PoolPatch {
        description: body.description,
        shards: body.shards,
        retention_days: body.retention_days,
        field_hints: body.field_hints.map(field_hints_of),
        max_event_age_days: body.max_event_age_days,
        max_event_future_secs: body.max_event_future_secs,
    };
    let pool = state
        .metadata
        .update_pool(&PoolRef::new(&principal.tenant, &project, &pool), patch)
        .await?;
    // A grown pool's new shards must exist on the broker before routing names them.
    state
        .queue
        .prepare_shards(&pool.route().shard_addrs())
        .await?;
    state.publish_routing().await?;
    Ok(Json(pool_of(&pool)))
}

async fn delete_pool(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let _guard = state.change_lock.lock().await;
    let pool = state
        .metadata
        .delete_pool(&PoolRef::new(&principal.tenant, &project, &pool))
        .await?;
    state.publish_routing().await?;
    delete_pool_data(&state, &pool).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the queue shards and the index of a pool that is gone from metadata.
/// Routing no longer names the pool, so no new data can arrive for it.
pub(crate) async fn delete_pool_data(state: &ControlState, pool: &Pool) -> Result<(), ApiError> {
    let route = pool.route();
    state.queue.delete_shards(&route.shard_addrs()).await?;
    state.index.drop_pool(pool.id).await?;
    Ok(())
}

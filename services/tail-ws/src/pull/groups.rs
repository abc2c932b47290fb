//! Consumer groups: create, list, delete, heartbeat, checkpoints.
//!
//! A member calls heartbeat every few seconds (well within `timeout_s`) and reads
//! the shards it gets back; it saves a checkpoint (a cursor) per shard after it has
//! processed records. A member that takes a shard over starts from that shard's
//! checkpoint, so when a member dies the group goes on where it left off: nothing is
//! skipped, and at most the records after its last checkpoint are read twice.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal};
use logpool_core::names::validate_name;
use logpool_engines::metadata::{Checkpoint, ConsumerGroup, NewConsumerGroup, PoolRef};
use logpool_wire::queue as wire;

use super::{parse_shard, PullState, ShardRef};

/// Heartbeat timeout when none is given.
pub const DEFAULT_TIMEOUT_S: u32 = 60;
/// Shortest heartbeat timeout.
pub const MIN_TIMEOUT_S: u32 = 1;
/// Longest heartbeat timeout.
pub const MAX_TIMEOUT_S: u32 = 3600;
/// Longest consumer name.
pub const MAX_CONSUMER_LEN: usize = 128;

/// `POST .../consumer-groups`
pub(super) async fn create(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppJson(body): AppJson<wire::CreateConsumerGroup>,
) -> Result<(StatusCode, Json<wire::ConsumerGroup>), ApiError> {
    let route = state.routing.pool(&principal.tenant, &project, &pool)?;
    let name = body.name.ok_or_else(|| missing("name"))?;
    validate_name(&name).map_err(|message| {
        ApiError::bad_request(format!("`name`: {message}")).with_detail("field", "name")
    })?;
    let timeout_s = body.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    if !(MIN_TIMEOUT_S..=MAX_TIMEOUT_S).contains(&timeout_s) {
        return Err(ApiError::bad_request(format!(
            "`timeout_s` must be between {MIN_TIMEOUT_S} and {MAX_TIMEOUT_S} seconds, got {timeout_s}"
        ))
        .with_detail("field", "timeout_s")
        .with_detail("max", MAX_TIMEOUT_S));
    }
    let group = state
        .metadata
        .create_consumer_group(
            &PoolRef::of(&route),
            NewConsumerGroup {
                name,
                timeout_s,
                in_order: body.in_order.unwrap_or(false),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(group_of(group))))
}

/// `GET .../consumer-groups`
pub(super) async fn list(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
) -> Result<Json<wire::ConsumerGroupList>, ApiError> {
    let route = state.routing.pool(&principal.tenant, &project, &pool)?;
    let groups = state
        .metadata
        .list_consumer_groups(&PoolRef::of(&route))
        .await?;
    Ok(Json(wire::ConsumerGroupList {
        consumer_groups: groups.into_iter().map(group_of).collect(),
    }))
}

/// `DELETE .../consumer-groups/{group}`
pub(super) async fn delete(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool, group)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let route = state.routing.pool(&principal.tenant, &project, &pool)?;
    state
        .metadata
        .delete_consumer_group(&PoolRef::of(&route).group(&group))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../consumer-groups/{group}/heartbeat` → the shards the consumer owns now.
pub(super) async fn heartbeat(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool, group)): Path<(String, String, String)>,
    AppJson(body): AppJson<wire::Heartbeat>,
) -> Result<Json<wire::HeartbeatAnswer>, ApiError> {
    let route = state.routing.pool(&principal.tenant, &project, &pool)?;
    let consumer = body.consumer.ok_or_else(|| missing("consumer"))?;
    validate_consumer(&consumer)?;
    let now_ms = logpool_api::time::now_ns() / 1_000_000;
    let shards = state
        .metadata
        .consumer_group_heartbeat(&PoolRef::of(&route).group(&group), &consumer, now_ms)
        .await?;
    Ok(Json(wire::HeartbeatAnswer { shards }))
}

/// `PUT .../consumer-groups/{group}/checkpoints` `{"shard", "cursor"}`
pub(super) async fn save_checkpoint(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool, group)): Path<(String, String, String)>,
    AppJson(body): AppJson<wire::SaveCheckpoint>,
) -> Result<Json<wire::Checkpoint>, ApiError> {
    let route = state.routing.pool(&principal.tenant, &project, &pool)?;
    let shard_text = match body.shard.ok_or_else(|| missing("shard"))? {
        serde_json::Value::Number(number) => number.to_string(),
        other => other.to_string(),
    };
    let shard = parse_shard(&shard_text, &route)?;
    let cursor = body.cursor.ok_or_else(|| missing("cursor"))?;
    let shard_ref = ShardRef { route, shard };
    // Only a cursor of this very shard is stored: a checkpoint is read back and used
    // as a cursor later, so a foreign or edited one is refused now, not then.
    let key = state.cursor_key().await?;
    key.decode(&shard_ref.scope(), &cursor)
        .map_err(|error| ApiError::bad_request(error.to_string()).with_detail("field", "cursor"))?;
    let checkpoint = state
        .metadata
        .save_checkpoint(&PoolRef::of(&shard_ref.route).group(&group), shard, &cursor)
        .await?;
    Ok(Json(checkpoint_of(checkpoint)))
}

/// `GET .../consumer-groups/{group}/checkpoints`
pub(super) async fn list_checkpoints(
    State(state): State<PullState>,
    principal: Principal,
    Path((project, pool, group)): Path<(String, String, String)>,
) -> Result<Json<wire::CheckpointList>, ApiError> {
    let route = state.routing.pool(&principal.tenant, &project, &pool)?;
    let checkpoints = state
        .metadata
        .list_checkpoints(&PoolRef::of(&route).group(&group))
        .await?;
    Ok(Json(wire::CheckpointList {
        checkpoints: checkpoints.into_iter().map(checkpoint_of).collect(),
    }))
}

fn group_of(group: ConsumerGroup) -> wire::ConsumerGroup {
    wire::ConsumerGroup {
        created_at_ms: group.created_at_ms,
        in_order: group.in_order,
        name: group.name,
        timeout_s: group.timeout_s,
    }
}

fn checkpoint_of(checkpoint: Checkpoint) -> wire::Checkpoint {
    wire::Checkpoint {
        cursor: checkpoint.cursor,
        shard: checkpoint.shard,
        updated_at_ms: checkpoint.updated_at_ms,
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::bad_request(format!("`{field}` is required")).with_detail("field", field)
}

/// Consumer names: 1 to [`MAX_CONSUMER_LEN`] characters of `A-Z a-z 0-9 . _ : -`
/// (host names, pod names, `host:pid`).
fn validate_consumer(consumer: &str) -> Result<(), ApiError> {
    let valid_chars = consumer
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if consumer.is_empty() || consumer.len() > MAX_CONSUMER_LEN || !valid_chars {
        return Err(ApiError::bad_request(format!(
            "`consumer` must be 1 to {MAX_CONSUMER_LEN} characters of A-Z, a-z, 0-9, `.`, `_`, `:` and `-`, got `{}`",
            consumer.escape_debug()
        ))
        .with_detail("field", "consumer")
        .with_detail("max", MAX_CONSUMER_LEN));
    }
    Ok(())
}

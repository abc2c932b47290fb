//! Row decoding and helpers of the SQL metadata store: every dialect keeps the same
//! columns, so one place turns a row into a [`Project`], a [`Pool`], a key, ...
//! `db_error` is the dialect's error mapping ([`super::db_error`]).

use logpool_core::access::{Limits, Role};
use logpool_core::archive::ArchiveSettings;
use logpool_core::ingest::window::EventWindowOverride;
use logpool_core::pool_id::PoolId;
use serde::Serialize;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::metadata::{
    ApiKey, Checkpoint, ConsumerGroup, MetadataError, MetadataResult, Pool, Project, StoredLimits,
    Tenant,
};

/// The `limits.project` value of tenant-wide limits.
pub(crate) const TENANT_WIDE: &str = "";

/// The project columns, in the order [`project_from_row`] reads them.
pub(crate) const SELECT_PROJECTS: &str =
    "SELECT id, tenant, name, description, created_at_ms, updated_at_ms FROM projects";

/// A pool query with its project joined in, for [`pool_from_row`].
pub(crate) const SELECT_POOLS: &str = "SELECT p.id, pr.tenant, pr.name AS project, p.name, \
     p.description, p.partitions, p.retention_days, p.field_hints, p.max_event_age_days, \
     p.max_event_future_secs, p.created_at_ms, p.updated_at_ms \
     FROM pools p JOIN projects pr ON pr.id = p.project_id";

/// The key columns, for [`key_from_row`].
pub(crate) const SELECT_KEYS: &str =
    "SELECT id, tenant, role, project, description, salt, hash, enabled, created_at_ms FROM api_keys";

/// The consumer group columns, for [`group_from_row`].
pub(crate) const SELECT_GROUPS: &str =
    "SELECT id, name, timeout_s, in_order, created_at_ms FROM consumer_groups";

pub(crate) fn not_found(kind: &'static str, name: &str) -> MetadataError {
    MetadataError::NotFound {
        kind,
        name: name.to_string(),
    }
}

pub(crate) fn already_exists(kind: &'static str, name: &str) -> MetadataError {
    MetadataError::AlreadyExists {
        kind,
        name: name.to_string(),
    }
}

/// Milliseconds since the epoch, for `created_at_ms` / `updated_at_ms`.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether an insert failed on a UNIQUE constraint (a duplicate name).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Serialises a JSON column value.
pub(crate) fn to_json(value: &impl Serialize) -> MetadataResult<String> {
    serde_json::to_string(value).map_err(|e| MetadataError::Database(e.to_string()))
}

/// Decodes a project row; `db_error` is the store's own error mapping.
pub(crate) fn project_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<Project>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Project {
        id: row.try_get("id").map_err(db_error)?,
        tenant: row.try_get("tenant").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        description: row.try_get("description").map_err(db_error)?,
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(db_error)?,
    })
}

/// Decodes a pool row (joined with its project); `db_error` is the store's own mapping.
pub(crate) fn pool_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<Pool>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let partitions: String = row.try_get("partitions").map_err(db_error)?;
    let field_hints: String = row.try_get("field_hints").map_err(db_error)?;
    let retention_days: i64 = row.try_get("retention_days").map_err(db_error)?;
    let max_event_age_days: Option<i64> = row.try_get("max_event_age_days").map_err(db_error)?;
    let max_event_future_secs: Option<i64> =
        row.try_get("max_event_future_secs").map_err(db_error)?;
    Ok(Pool {
        id: PoolId::new(row.try_get("id").map_err(db_error)?),
        tenant: row.try_get("tenant").map_err(db_error)?,
        project: row.try_get("project").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        description: row.try_get("description").map_err(db_error)?,
        partitions: serde_json::from_str(&partitions)
            .map_err(|e| MetadataError::Database(format!("bad partitions column: {e}")))?,
        retention_days: u32::try_from(retention_days).unwrap_or(u32::MAX),
        field_hints: serde_json::from_str(&field_hints)
            .map_err(|e| MetadataError::Database(format!("bad field_hints column: {e}")))?,
        event_window: EventWindowOverride {
            max_event_age_days: max_event_age_days.map(|d| u32::try_from(d).unwrap_or(u32::MAX)),
            max_event_future_secs: max_event_future_secs
                .map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
        },
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(db_error)?,
    })
}

/// Decodes a tenant row.
pub(crate) fn tenant_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<Tenant>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Tenant {
        name: row.try_get("name").map_err(db_error)?,
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
    })
}

/// Decodes a key row.
pub(crate) fn key_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<ApiKey>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let role: String = row.try_get("role").map_err(db_error)?;
    let enabled: i64 = row.try_get("enabled").map_err(db_error)?;
    Ok(ApiKey {
        id: row.try_get("id").map_err(db_error)?,
        tenant: row.try_get("tenant").map_err(db_error)?,
        role: Role::parse(&role)
            .ok_or_else(|| MetadataError::Database(format!("bad role column: `{role}`")))?,
        project: row.try_get("project").map_err(db_error)?,
        description: row.try_get("description").map_err(db_error)?,
        salt: row.try_get("salt").map_err(db_error)?,
        hash: row.try_get("hash").map_err(db_error)?,
        enabled: enabled != 0,
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
    })
}

pub(crate) fn limits_from_json(text: &str) -> MetadataResult<Limits> {
    serde_json::from_str(text).map_err(|e| MetadataError::Database(format!("bad limits: {e}")))
}

pub(crate) fn settings_from_json(text: &str) -> MetadataResult<ArchiveSettings> {
    serde_json::from_str(text)
        .map_err(|e| MetadataError::Database(format!("bad archive settings: {e}")))
}

/// Decodes a limits row.
pub(crate) fn stored_limits_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<StoredLimits>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let project: String = row.try_get("project").map_err(db_error)?;
    let limits: String = row.try_get("limits").map_err(db_error)?;
    Ok(StoredLimits {
        tenant: row.try_get("tenant").map_err(db_error)?,
        project: (project != TENANT_WIDE).then_some(project),
        limits: limits_from_json(&limits)?,
    })
}

/// Decodes a consumer group row.
pub(crate) fn group_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<ConsumerGroup>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let timeout_s: i64 = row.try_get("timeout_s").map_err(db_error)?;
    let in_order: i64 = row.try_get("in_order").map_err(db_error)?;
    Ok(ConsumerGroup {
        id: row.try_get("id").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        timeout_s: u32::try_from(timeout_s).unwrap_or(u32::MAX),
        in_order: in_order != 0,
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
    })
}

/// Decodes a checkpoint row.
pub(crate) fn checkpoint_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<Checkpoint>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let shard: i64 = row.try_get("shard").map_err(db_error)?;
    Ok(Checkpoint {
        shard: u32::try_from(shard).unwrap_or(u32::MAX),
        cursor: row.try_get("checkpoint").map_err(db_error)?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(db_error)?,
    })
}

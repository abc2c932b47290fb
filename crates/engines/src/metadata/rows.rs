//! Row decoding and helpers shared by the SQL metadata stores: both keep the same
//! columns, so one place turns a row into a [`Project`] or a [`Pool`].

use logpool_core::ingest::window::EventWindowOverride;
use serde::Serialize;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{MetadataError, MetadataResult, Pool, Project};

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
        id: row.try_get("id").map_err(db_error)?,
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

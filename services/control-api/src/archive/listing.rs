//! `GET /v1/projects/{project}/pools/{pool}/archive?from=&to=`: the archived objects
//! whose records overlap a time range, with key, size, record count and time range.
//!
//! Hour partitions outside the range are skipped by name; the counts come from each
//! object's manifest, and from the object itself when its manifest was never written
//! (the worker stopped between the two uploads).
//!
//! A pool's objects are looked for in its tenant's area and in the legacy layout
//! written before tenant areas existed ([`PoolPrefixes`]); an object found in both
//! (a batch half written before the change and completed after it) is listed once.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::Principal;
use logpool_api::{time::now_ns, ApiError, AppQuery, ErrorCode};
use logpool_core::archive::{self, ObjectManifest, ObjectName};
use logpool_core::record::format_time_ns;
use logpool_core::timeexpr::parse_time_expr;
use logpool_engines::object_store::{ObjectStore, ObjectStoreError};
use logpool_wire::archive as wire;

use super::{object_store, settings_of};
use crate::ControlState;

/// One archived object.
#[derive(Debug, Clone)]
pub(crate) struct ListedObject {
    pub(crate) key: String,
    pub(crate) name: ObjectName,
    pub(crate) manifest: ObjectManifest,
}

/// What identifies an archived object's records: hour, partition, first and last
/// position (not the compression or the place it was written to).
type BatchHour = (i64, u32, u64, u64);

/// Where one pool's objects are: its prefix in the tenant's area (written to), and
/// the legacy layout of the same settings (only read).
#[derive(Debug, Clone)]
pub(crate) struct PoolPrefixes {
    pub(crate) current: String,
    pub(crate) legacy: String,
}

impl PoolPrefixes {
    pub(crate) fn new(prefix: &str, tenant: &str, project: &str, pool: &str) -> PoolPrefixes {
        PoolPrefixes {
            current: archive::pool_prefix(prefix, tenant, project, pool),
            legacy: archive::legacy_pool_prefix(prefix, tenant, project, pool),
        }
    }
}

/// Parses `from`/`to` (any time expression) into ns; `None` is open.
pub(crate) fn time_bound(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            parse_time_expr(text, now_ns()).map_err(|message| {
                ApiError::bad_request(format!("`{field}`: {message}")).with_detail("field", field)
            })
        })
        .transpose()
}

/// Lists the objects of a pool overlapping `[from, to)`, in the order of their names
/// (hour, then partition and positions). Legacy objects come first so that the
/// current copy of a name found in both places wins.
pub(crate) async fn objects_in_range(
    store: &dyn ObjectStore,
    prefixes: &PoolPrefixes,
    from_ns: Option<i64>,
    to_ns: Option<i64>,
) -> Result<Vec<ListedObject>, ApiError> {
    // One object per hour and position range: the same records, whatever the
    // place or the compression they were written with.
    let mut found: BTreeMap<BatchHour, (ObjectName, String, &str)> = BTreeMap::new();
    for pool_prefix in [prefixes.legacy.as_str(), prefixes.current.as_str()] {
        for key in store.list(pool_prefix).await.map_err(store_error)? {
            if let Some(name) = key.strip_prefix(pool_prefix).and_then(ObjectName::parse) {
                let identity = (name.hour_start_s, name.partition, name.first, name.last);
                found.insert(identity, (name, key, pool_prefix));
            }
        }
    }
    let mut out = Vec::new();
    for (name, key, pool_prefix) in found.into_values() {
        let hour_start_ns = name.hour_start_s.saturating_mul(1_000_000_000);
        let hour_end_ns = hour_start_ns.saturating_add(3_600_000_000_000);
        if from_ns.is_some_and(|from| hour_end_ns <= from)
            || to_ns.is_some_and(|to| hour_start_ns >= to)
        {
            continue;
        }
        let manifest = manifest_of(store, pool_prefix, &key, &name).await?;
        if from_ns.is_some_and(|from| manifest.max_time_ns < from)
            || to_ns.is_some_and(|to| manifest.min_time_ns >= to)
        {
            continue;
        }
        out.push(ListedObject {
            key,
            name,
            manifest,
        });
    }
    Ok(out)
}

async fn manifest_of(
    store: &dyn ObjectStore,
    pool_prefix: &str,
    key: &str,
    name: &ObjectName,
) -> Result<ObjectManifest, ApiError> {
    if let Ok(bytes) = store.get(&name.manifest_key(pool_prefix)).await {
        if let Ok(manifest) = serde_json::from_slice::<ObjectManifest>(&bytes) {
            return Ok(manifest);
        }
    }
    let data = store.get(key).await.map_err(store_error)?;
    let records = archive::decompress(&data, name.compression)
        .and_then(|lines| archive::parse_lines(&lines))
        .map_err(|error| {
            tracing::warn!(key, %error, "archived object cannot be read");
            ApiError::internal("an archived object of this pool cannot be read")
        })?;
    Ok(ObjectManifest {
        records: records.len() as u64,
        min_time_ns: records.iter().map(|r| r.time_ns).min().unwrap_or(0),
        max_time_ns: records.iter().map(|r| r.time_ns).max().unwrap_or(0),
        size: data.len() as u64,
    })
}

/// Maps an object store failure to an answer that names no key or path (those go
/// to the log): a missing object is a 404, a store that fails or cannot be reached
/// a 503, and a key the store refuses a 500 (keys are built from checked names, so
/// that is a bug, never the caller's input).
pub(crate) fn store_error(error: ObjectStoreError) -> ApiError {
    tracing::warn!(%error, "object store request failed");
    let (code, message) = describe_store_error(&error);
    ApiError::new(code, format!("object store: {message}"))
}

/// The status and a key-free description of an object store failure.
pub(crate) fn describe_store_error(error: &ObjectStoreError) -> (ErrorCode, &'static str) {
    match error {
        ObjectStoreError::NotFound(_) => (ErrorCode::NotFound, "archived object not found"),
        ObjectStoreError::InvalidKey(_) => (ErrorCode::Internal, "invalid object key"),
        ObjectStoreError::Io(_) => (ErrorCode::Unavailable, "I/O error"),
        ObjectStoreError::Unavailable(_) => (ErrorCode::Unavailable, "unavailable"),
    }
}

pub(crate) async fn list_objects(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppQuery(params): AppQuery<wire::ArchiveListParams>,
) -> Result<Json<wire::ArchiveListing>, ApiError> {
    let from_ns = time_bound("from", params.from.as_deref())?;
    let to_ns = time_bound("to", params.to.as_deref())?;
    let settings = settings_of(&state, &principal.tenant, &project, &pool).await?;
    let store = object_store(&state)?;
    let prefixes = PoolPrefixes::new(&settings.prefix, &principal.tenant, &project, &pool);
    let objects = objects_in_range(store.as_ref(), &prefixes, from_ns, to_ns).await?;
    let listed = objects
        .iter()
        .map(|object| wire::ArchivedObject {
            first_position: object.name.first,
            key: object.key.clone(),
            last_position: object.name.last,
            max_time: format_time_ns(object.manifest.max_time_ns),
            min_time: format_time_ns(object.manifest.min_time_ns),
            records: object.manifest.records,
            shard_partition: object.name.partition,
            size: object.manifest.size,
        })
        .collect();
    Ok(Json(wire::ArchiveListing {
        objects: listed,
        prefix: prefixes.current,
    }))
}

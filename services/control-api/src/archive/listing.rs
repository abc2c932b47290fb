//! `GET /v1/projects/{project}/pools/{pool}/archive?from=&to=`: the archived objects
//! whose records overlap a time range, with key, size, record count and time range.
//!
//! Hour partitions outside the range are skipped by name; the counts come from each
//! object's manifest, and from the object itself when its manifest was never written
//! (the worker stopped between the two uploads).

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::Principal;
use logpool_api::{time::now_ns, ApiError, AppQuery};
use logpool_core::archive::{self, ObjectManifest, ObjectName};
use logpool_core::record::format_time_ns;
use logpool_core::timeexpr::parse_time_expr;
use logpool_engines::object_store::ObjectStore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{object_store, settings_of};
use crate::ControlState;

/// Query string of the listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    from: Option<String>,
    to: Option<String>,
}

/// One archived object.
#[derive(Debug, Clone)]
pub(crate) struct ListedObject {
    pub(crate) key: String,
    pub(crate) name: ObjectName,
    pub(crate) manifest: ObjectManifest,
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

/// Lists the objects of a pool prefix overlapping `[from, to)`, sorted by key.
pub(crate) async fn objects_in_range(
    store: &dyn ObjectStore,
    pool_prefix: &str,
    from_ns: Option<i64>,
    to_ns: Option<i64>,
) -> Result<Vec<ListedObject>, ApiError> {
    let keys = store.list(pool_prefix).await.map_err(store_error)?;
    let mut out = Vec::new();
    for key in keys {
        let Some(name) = key.strip_prefix(pool_prefix).and_then(ObjectName::parse) else {
            continue;
        };
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
        .map_err(ApiError::internal)?;
    Ok(ObjectManifest {
        records: records.len() as u64,
        min_time_ns: records.iter().map(|r| r.time_ns).min().unwrap_or(0),
        max_time_ns: records.iter().map(|r| r.time_ns).max().unwrap_or(0),
        size: data.len() as u64,
    })
}

/// Maps an object store failure to a 503 (the store is an external dependency).
pub(crate) fn store_error(error: logpool_engines::object_store::ObjectStoreError) -> ApiError {
    ApiError::new(
        logpool_api::ErrorCode::Unavailable,
        format!("object store: {error}"),
    )
}

pub(crate) async fn list_objects(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let from_ns = time_bound("from", params.from.as_deref())?;
    let to_ns = time_bound("to", params.to.as_deref())?;
    let settings = settings_of(&state, &principal.tenant, &project, &pool).await?;
    let store = object_store(&state)?;
    let prefix = archive::pool_prefix(&settings.prefix, &principal.tenant, &project, &pool);
    let objects = objects_in_range(store.as_ref(), &prefix, from_ns, to_ns).await?;
    let listed: Vec<Value> = objects
        .iter()
        .map(|object| {
            json!({
                "key": object.key,
                "size": object.manifest.size,
                "records": object.manifest.records,
                "min_time": format_time_ns(object.manifest.min_time_ns),
                "max_time": format_time_ns(object.manifest.max_time_ns),
                "shard_partition": object.name.partition,
                "first_position": object.name.first,
                "last_position": object.name.last,
            })
        })
        .collect();
    Ok(Json(json!({ "prefix": prefix, "objects": listed })))
}

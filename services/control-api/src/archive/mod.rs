//! Archive endpoints of a pool: settings, the list of archived objects and restores.
//!
//! - `GET|PUT /v1/projects/{project}/pools/{pool}/archive/settings`
//! - `GET /v1/projects/{project}/pools/{pool}/archive?from=&to=` ([`listing`])
//! - `POST /v1/projects/{project}/pools/{pool}/archive/restore` and
//!   `GET .../archive/restore/{id}` ([`restore`])
//!
//! Settings are stored in the metadata store and published in the routing
//! snapshot, so loghub's archive worker applies a change within one snapshot
//! propagation (seconds).

pub mod listing;
pub mod restore;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use logpool_api::{ApiError, AppJson};
use logpool_core::archive::{ArchiveCompression, ArchiveFormat, ArchiveSettings};
use logpool_core::routing::DEFAULT_TENANT;
use logpool_engines::object_store::ObjectStore;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ControlState;

pub(crate) fn routes() -> Router<ControlState> {
    Router::new()
        .route(
            "/v1/projects/{project}/pools/{pool}/archive/settings",
            get(get_settings).put(put_settings),
        )
        .route(
            "/v1/projects/{project}/pools/{pool}/archive",
            get(listing::list_objects),
        )
        .route(
            "/v1/projects/{project}/pools/{pool}/archive/restore",
            post(restore::start_restore),
        )
        .route(
            "/v1/projects/{project}/pools/{pool}/archive/restore/{id}",
            get(restore::restore_status),
        )
}

/// A settings change; fields left out keep their stored (or default) values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    enabled: Option<bool>,
    format: Option<ArchiveFormat>,
    compression: Option<ArchiveCompression>,
    max_object_bytes: Option<u64>,
    max_delay_s: Option<u32>,
    prefix: Option<String>,
}

fn settings_json(settings: &ArchiveSettings) -> Value {
    json!({
        "enabled": settings.enabled,
        "format": settings.format,
        "compression": settings.compression,
        "max_object_bytes": settings.max_object_bytes,
        "max_delay_s": settings.max_delay_s,
        "prefix": settings.prefix,
    })
}

/// The stored settings of a pool, or the defaults (archive off).
pub(crate) async fn settings_of(
    state: &ControlState,
    project: &str,
    pool: &str,
) -> Result<ArchiveSettings, ApiError> {
    Ok(state
        .metadata
        .get_archive_settings(DEFAULT_TENANT, project, pool)
        .await?
        .unwrap_or_default())
}

/// The object store, or a 503 when this process was started without one.
pub(crate) fn object_store(state: &ControlState) -> Result<Arc<dyn ObjectStore>, ApiError> {
    state.object_store.clone().ok_or_else(|| {
        ApiError::new(
            logpool_api::error::ErrorCode::Unavailable,
            "this control-api has no object store configured",
        )
    })
}

async fn get_settings(
    State(state): State<ControlState>,
    Path((project, pool)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(settings_json(
        &settings_of(&state, &project, &pool).await?,
    )))
}

async fn put_settings(
    State(state): State<ControlState>,
    Path((project, pool)): Path<(String, String)>,
    AppJson(body): AppJson<SettingsBody>,
) -> Result<Json<Value>, ApiError> {
    let _guard = state.change_lock.lock().await;
    let mut settings = settings_of(&state, &project, &pool).await?;
    if let Some(enabled) = body.enabled {
        settings.enabled = enabled;
    }
    if let Some(format) = body.format {
        settings.format = format;
    }
    if let Some(compression) = body.compression {
        settings.compression = compression;
    }
    if let Some(bytes) = body.max_object_bytes {
        settings.max_object_bytes = bytes;
    }
    if let Some(delay) = body.max_delay_s {
        settings.max_delay_s = delay;
    }
    if let Some(prefix) = body.prefix {
        settings.prefix = prefix;
    }
    settings
        .validate()
        .map_err(|e| ApiError::bad_request(e.message).with_detail("field", e.field))?;
    state
        .metadata
        .set_archive_settings(DEFAULT_TENANT, &project, &pool, &settings)
        .await?;
    state.publish_routing().await?;
    Ok(Json(settings_json(&settings)))
}

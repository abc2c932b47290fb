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
use axum::Json;
use logpool_api::Principal;
use logpool_api::{ApiError, AppJson, Routes};
use logpool_core::access::Permission;
use logpool_core::archive::{ArchiveCompression, ArchiveFormat, ArchiveSettings};
use logpool_engines::metadata::PoolRef;
use logpool_engines::object_store::ObjectStore;
use logpool_wire::archive as wire;

use crate::ControlState;

pub(crate) fn routes() -> Routes<ControlState> {
    let pool = "/v1/projects/{project}/pools/{pool}";
    Routes::new()
        .get(
            &format!("{pool}/archive/settings"),
            Permission::Read,
            get_settings,
        )
        .put(
            &format!("{pool}/archive/settings"),
            Permission::ManageProject,
            put_settings,
        )
        .get(
            &format!("{pool}/archive"),
            Permission::Read,
            listing::list_objects,
        )
        .post(
            &format!("{pool}/archive/restore"),
            Permission::ManageProject,
            restore::start_restore,
        )
        .get(
            &format!("{pool}/archive/restore/{{id}}"),
            Permission::Read,
            restore::restore_status,
        )
}

fn settings_of_pool(settings: &ArchiveSettings) -> wire::ArchiveSettings {
    wire::ArchiveSettings {
        compression: match settings.compression {
            ArchiveCompression::Zstd => wire::ArchiveCompression::Zstd,
            ArchiveCompression::Gzip => wire::ArchiveCompression::Gzip,
        },
        enabled: settings.enabled,
        format: match settings.format {
            ArchiveFormat::Jsonl => wire::ArchiveFormat::Jsonl,
        },
        max_delay_s: settings.max_delay_s,
        max_object_bytes: settings.max_object_bytes,
        prefix: settings.prefix.clone(),
    }
}

/// The stored settings of a pool, or the defaults (archive off).
pub(crate) async fn settings_of(
    state: &ControlState,
    tenant: &str,
    project: &str,
    pool: &str,
) -> Result<ArchiveSettings, ApiError> {
    Ok(state
        .metadata
        .get_archive_settings(&PoolRef::new(tenant, project, pool))
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
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
) -> Result<Json<wire::ArchiveSettings>, ApiError> {
    Ok(Json(settings_of_pool(
        &settings_of(&state, &principal.tenant, &project, &pool).await?,
    )))
}

async fn put_settings(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppJson(body): AppJson<wire::ArchiveSettingsPatch>,
) -> Result<Json<wire::ArchiveSettings>, ApiError> {
    let _guard = state.change_lock.lock().await;
    let mut settings = settings_of(&state, &principal.tenant, &project, &pool).await?;
    if let Some(enabled) = body.enabled {
        settings.enabled = enabled;
    }
    if let Some(format) = body.format {
        settings.format = match format {
            wire::ArchiveFormat::Jsonl => ArchiveFormat::Jsonl,
        };
    }
    if let Some(compression) = body.compression {
        settings.compression = match compression {
            wire::ArchiveCompression::Zstd => ArchiveCompression::Zstd,
            wire::ArchiveCompression::Gzip => ArchiveCompression::Gzip,
        };
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
        .set_archive_settings(&PoolRef::new(&principal.tenant, &project, &pool), &settings)
        .await?;
    state.publish_routing().await?;
    Ok(Json(settings_of_pool(&settings)))
}

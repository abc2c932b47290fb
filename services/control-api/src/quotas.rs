//! Quotas and usage: `/v1/tenants/{tenant}/quotas` (set by operators),
//! `/v1/projects/{project}/quotas` (set by tenant admins), and
//! `/v1/tenants/{tenant}/usage`.
//!
//! Limits are stored in the metadata store and published in the routing snapshot;
//! every service applies them at its next request. Storage is the one quota that
//! needs measuring: [`StorageWatch`] sums each limited project's index storage
//! every few seconds and publishes the set of projects over their quota, whose
//! writes put-datas then refuses with 403 `quota_exceeded`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use logpool_api::jobs::Job;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::{Limits, Permission, ProjectsByTenant};
use logpool_wire::quotas as wire;

use crate::ControlState;

/// How often the storage-quota leader measures the limited projects.
pub const STORAGE_CHECK_INTERVAL: Duration = Duration::from_secs(3);

pub(crate) fn routes() -> Routes<ControlState> {
    let tenant = "/v1/tenants/{tenant}/quotas";
    let project = "/v1/projects/{project}/quotas";
    Routes::new()
        .get(tenant, Permission::ManageTenant, get_tenant_quotas)
        .put(tenant, Permission::Operate, put_tenant_quotas)
        .get(project, Permission::Read, get_project_quotas)
        .put(project, Permission::ManageTenant, put_project_quotas)
        .get(
            "/v1/tenants/{tenant}/usage",
            Permission::ManageTenant,
            get_usage,
        )
}

/// The limits as the API answers them.
fn limits_of(limits: &Limits) -> wire::Limits {
    wire::Limits {
        ingest_records_per_s: limits.ingest_records_per_s,
        ingest_bytes_per_s: limits.ingest_bytes_per_s,
        storage_bytes: limits.storage_bytes,
        concurrent_queries: limits.concurrent_queries,
        queries_per_s: limits.queries_per_s,
        concurrent_tails: limits.concurrent_tails,
        max_query_range_s: limits.max_query_range_s,
        alert_rules: limits.alert_rules,
    }
}

/// The limits a request sets.
fn limits_from(limits: &wire::Limits) -> Limits {
    Limits {
        ingest_records_per_s: limits.ingest_records_per_s,
        ingest_bytes_per_s: limits.ingest_bytes_per_s,
        storage_bytes: limits.storage_bytes,
        concurrent_queries: limits.concurrent_queries,
        queries_per_s: limits.queries_per_s,
        concurrent_tails: limits.concurrent_tails,
        max_query_range_s: limits.max_query_range_s,
        alert_rules: limits.alert_rules,
    }
}

fn check_limits(limits: &Limits) -> Result<(), ApiError> {
    limits.validate().map_err(|field| {
        ApiError::bad_request(format!(
            "`{field}` must be positive; leave it out for no limit"
        ))
        .with_detail("field", field)
    })
}

async fn get_tenant_quotas(
    State(state): State<ControlState>,
    principal: Principal,
) -> Result<Json<wire::Limits>, ApiError> {
    state.metadata.get_tenant(&principal.tenant).await?;
    Ok(Json(limits_of(
        &state.metadata.get_limits(&principal.tenant, None).await?,
    )))
}

async fn put_tenant_quotas(
    State(state): State<ControlState>,
    principal: Principal,
    AppJson(body): AppJson<wire::Limits>,
) -> Result<Json<wire::Limits>, ApiError> {
    let limits = limits_from(&body);
    check_limits(&limits)?;
    let _guard = state.change_lock.lock().await;
    state
        .metadata
        .set_limits(&principal.tenant, None, &limits)
        .await?;
    state.publish_routing().await?;
    Ok(Json(body))
}

async fn get_project_quotas(
    State(state): State<ControlState>,
    principal: Principal,
    axum::extract::Path(project): axum::extract::Path<String>,
) -> Result<Json<wire::Limits>, ApiError> {
    state
        .metadata
        .get_project(&principal.tenant, &project)
        .await?;
    Ok(Json(limits_of(
        &state
            .metadata
            .get_limits(&principal.tenant, Some(&project))
            .await?,
    )))
}

async fn put_project_quotas(
    State(state): State<ControlState>,
    principal: Principal,
    axum::extract::Path(project): axum::extract::Path<String>,
    AppJson(body): AppJson<wire::Limits>,
) -> Result<Json<wire::Limits>, ApiError> {
    let limits = limits_from(&body);
    check_limits(&limits)?;
    let _guard = state.change_lock.lock().await;
    state
        .metadata
        .set_limits(&principal.tenant, Some(&project), &limits)
        .await?;
    state.publish_routing().await?;
    Ok(Json(body))
}

/// Index storage of one project: the sum over its pools.
async fn project_storage_bytes(
    state: &ControlState,
    tenant: &str,
    project: &str,
) -> Result<u64, ApiError> {
    let pools = state.metadata.list_pools(tenant, project).await?;
    let mut total = 0u64;
    for pool in pools {
        total = total.saturating_add(state.index.storage_bytes(&pool.route()).await?);
    }
    Ok(total)
}

async fn get_usage(
    State(state): State<ControlState>,
    principal: Principal,
) -> Result<Json<wire::Usage>, ApiError> {
    let tenant = principal.tenant.as_str();
    state.metadata.get_tenant(tenant).await?;
    let access = state.coordinator.watch().borrow().access.clone();
    let tenant_limits = state.metadata.get_limits(tenant, None).await?;
    let mut projects = Vec::new();
    let mut total_bytes = 0u64;
    let mut total_pools = 0usize;
    for project in state.metadata.list_projects(tenant).await? {
        let pools = state.metadata.list_pools(tenant, &project.name).await?;
        total_pools += pools.len();
        let storage = project_storage_bytes(&state, tenant, &project.name).await?;
        total_bytes = total_bytes.saturating_add(storage);
        projects.push(wire::ProjectUsage {
            over_storage_quota: access.is_over_storage_quota(tenant, &project.name),
            pools: pools.len(),
            quotas: limits_of(&access.limits_for(tenant, Some(&project.name))),
            storage_bytes: storage,
            name: project.name,
        });
    }
    let keys = state.metadata.list_keys(tenant).await?;
    Ok(Json(wire::Usage {
        keys: keys.len(),
        pools: total_pools,
        projects,
        quotas: limits_of(&tenant_limits),
        storage_bytes: total_bytes,
        tenant: tenant.to_string(),
    }))
}

/// The storage-quota watch, a job of the one control-api that leads `storage-quota`:
/// each round measures the projects that have a storage quota and publishes the set
/// that is over it when that set changed.
#[derive(Debug, Clone)]
pub struct StorageWatch(pub ControlState);

impl Job for StorageWatch {
    async fn run_once(&mut self) {
        let state = &self.0;
        match over_storage_quota(state).await {
            Ok(over) => {
                let published = state
                    .coordinator
                    .watch()
                    .borrow()
                    .access
                    .over_storage_quota
                    .clone();
                if over != published {
                    let _guard = state.change_lock.lock().await;
                    state.set_over_storage_quota(over);
                    if let Err(error) = state.publish_routing().await {
                        tracing::warn!(error = %error.message, "could not publish storage quota state");
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %error.message, "could not measure storage for quotas");
            }
        }
    }
}

/// The projects whose index storage is at or over their storage quota.
async fn over_storage_quota(state: &ControlState) -> Result<ProjectsByTenant, ApiError> {
    let mut over: ProjectsByTenant = BTreeMap::new();
    let stored = state.metadata.all_limits().await?;
    let tenant_quota: BTreeMap<&str, u64> = stored
        .iter()
        .filter(|entry| entry.project.is_none())
        .filter_map(|entry| Some((entry.tenant.as_str(), entry.limits.storage_bytes?)))
        .collect();
    // Projects to measure: those with their own storage quota, and every project of a
    // tenant with a tenant-wide one (which binds each project on its own).
    let mut limited: BTreeMap<(String, String), u64> = BTreeMap::new();
    for entry in &stored {
        if let (Some(project), Some(quota)) = (&entry.project, entry.limits.storage_bytes) {
            limited.insert((entry.tenant.clone(), project.clone()), quota);
        }
    }
    for (tenant, quota) in &tenant_quota {
        for project in state.metadata.list_projects(tenant).await? {
            limited
                .entry((tenant.to_string(), project.name))
                .and_modify(|own| *own = (*own).min(*quota))
                .or_insert(*quota);
        }
    }
    for ((tenant, project), quota) in limited {
        let used = match project_storage_bytes(state, &tenant, &project).await {
            Ok(used) => used,
            // A project deleted meanwhile has nothing to refuse.
            Err(error) if error.code == logpool_api::ErrorCode::NotFound => continue,
            Err(error) => return Err(error),
        };
        if used >= quota {
            over.entry(tenant).or_default().insert(project);
        }
    }
    Ok(over)
}

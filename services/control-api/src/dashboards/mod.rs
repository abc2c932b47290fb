//! `/v1/projects/{project}/dashboards`: named grids of panels a project's team
//! shares, with export and import as JSON.
//!
//! Who may do what is as for saved searches: every key that may read the project
//! lists, opens and exports them; keys that may manage the project create, replace,
//! import and delete them. Each dashboard records the ids of the keys that created
//! and last changed it.
//!
//! Every limit is checked before anything is stored ([`checks`]), with a 400 (a 409
//! for a taken name or a full project, checked by the store under the project's lock)
//! naming the field and the limit.

pub mod checks;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::Permission;
use logpool_engines::metadata::{Dashboard, DashboardLimits, MetadataError};
use logpool_wire::dashboards::{self as wire, Refresh, EXPORT_FORMAT};

use crate::{format_ms, ControlState};

/// Most dashboards in one project.
pub const MAX_PER_PROJECT: u32 = 200;

pub(crate) fn routes() -> Routes<ControlState> {
    let list = "/v1/projects/{project}/dashboards";
    let import = "/v1/projects/{project}/dashboards/import";
    let one = "/v1/projects/{project}/dashboards/{id}";
    let export = "/v1/projects/{project}/dashboards/{id}/export";
    Routes::new()
        .get(list, Permission::Read, list_dashboards)
        .post(list, Permission::ManageProject, create_dashboard)
        .post(import, Permission::ManageProject, import_dashboard)
        .get(one, Permission::Read, get_dashboard)
        .put(one, Permission::ManageProject, replace_dashboard)
        .delete(one, Permission::ManageProject, delete_dashboard)
        .get(export, Permission::Read, export_dashboard)
}

/// A store error as an answer; a taken name and a full project say which field or
/// limit refused them.
fn store_refusal(error: MetadataError) -> ApiError {
    let detail = match &error {
        MetadataError::AlreadyExists { .. } => Some(("field", "name")),
        MetadataError::TooMany { .. } => Some(("field", "project")),
        _ => None,
    };
    let answer = ApiError::from(error);
    match detail {
        Some((key, value)) => answer.with_detail(key, value),
        None => answer,
    }
}

/// The id from the path; one that is not a number names no dashboard.
fn dashboard_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("dashboard `{id}` not found")))
}

/// What a stored dashboard holds, as a body that creates it again.
fn body_of(dashboard: &Dashboard) -> Result<wire::DashboardBody, ApiError> {
    // The store holds only panels this module wrote; one it cannot read is a fault
    // of the store, not of the request.
    let panels = serde_json::from_str(&dashboard.fields.panels).map_err(ApiError::internal)?;
    Ok(wire::DashboardBody {
        name: dashboard.fields.name.clone(),
        description: dashboard.fields.description.clone(),
        from: dashboard.fields.from.clone(),
        to: dashboard.fields.to.clone(),
        refresh: Refresh::parse(&dashboard.fields.refresh).unwrap_or_default(),
        panels,
    })
}

fn dashboard_of(dashboard: Dashboard) -> Result<wire::Dashboard, ApiError> {
    let body = body_of(&dashboard)?;
    Ok(wire::Dashboard {
        created_at: format_ms(dashboard.created_at_ms),
        created_by: dashboard.created_by,
        description: body.description,
        from: body.from,
        id: dashboard.id.to_string(),
        name: body.name,
        panels: body.panels,
        refresh: body.refresh,
        to: body.to,
        updated_at: format_ms(dashboard.updated_at_ms),
        updated_by: dashboard.updated_by,
    })
}

async fn list_dashboards(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<wire::DashboardList>, ApiError> {
    let stored = state
        .metadata
        .list_dashboards(&principal.tenant, &project)
        .await?;
    let dashboards = stored
        .into_iter()
        .map(dashboard_of)
        .collect::<Result<_, _>>()?;
    Ok(Json(wire::DashboardList { dashboards }))
}

async fn create(
    state: &ControlState,
    principal: &Principal,
    project: &str,
    body: &wire::DashboardBody,
) -> Result<(StatusCode, Json<wire::Dashboard>), ApiError> {
    let fields = checks::checked_fields(body)?;
    let limits = DashboardLimits {
        max_per_project: MAX_PER_PROJECT,
    };
    let created = state
        .metadata
        .create_dashboard(
            &principal.tenant,
            project,
            &fields,
            &principal.key_id,
            limits,
        )
        .await
        .map_err(store_refusal)?;
    Ok((StatusCode::CREATED, Json(dashboard_of(created)?)))
}

async fn create_dashboard(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(body): AppJson<wire::DashboardBody>,
) -> Result<(StatusCode, Json<wire::Dashboard>), ApiError> {
    create(&state, &principal, &project, &body).await
}

async fn import_dashboard(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(export): AppJson<wire::DashboardExport>,
) -> Result<(StatusCode, Json<wire::Dashboard>), ApiError> {
    if export.logpool_dashboard != EXPORT_FORMAT {
        return Err(ApiError::bad_request(format!(
            "`logpool_dashboard` is format {}; this server reads format {EXPORT_FORMAT}",
            export.logpool_dashboard
        ))
        .with_detail("field", "logpool_dashboard"));
    }
    create(&state, &principal, &project, &export.dashboard).await
}

async fn get_dashboard(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<wire::Dashboard>, ApiError> {
    let stored = state
        .metadata
        .get_dashboard(&principal.tenant, &project, dashboard_id(&id)?)
        .await?;
    Ok(Json(dashboard_of(stored)?))
}

async fn export_dashboard(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<wire::DashboardExport>, ApiError> {
    let stored = state
        .metadata
        .get_dashboard(&principal.tenant, &project, dashboard_id(&id)?)
        .await?;
    Ok(Json(wire::DashboardExport {
        dashboard: body_of(&stored)?,
        logpool_dashboard: EXPORT_FORMAT,
    }))
}

async fn replace_dashboard(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
    AppJson(body): AppJson<wire::DashboardBody>,
) -> Result<Json<wire::Dashboard>, ApiError> {
    let id = dashboard_id(&id)?;
    let fields = checks::checked_fields(&body)?;
    let updated = state
        .metadata
        .update_dashboard(&principal.tenant, &project, id, &fields, &principal.key_id)
        .await
        .map_err(store_refusal)?;
    Ok(Json(dashboard_of(updated)?))
}

async fn delete_dashboard(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .metadata
        .delete_dashboard(&principal.tenant, &project, dashboard_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

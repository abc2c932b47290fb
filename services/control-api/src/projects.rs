//! `/v1/projects` and `/v1/projects/{project}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::Permission;
use logpool_engines::metadata::Project;
use logpool_wire::control as wire;

use crate::{check_name, format_ms, ControlState};

/// Longest accepted description.
const MAX_DESCRIPTION_CHARS: usize = 1024;

pub(crate) fn routes() -> Routes<ControlState> {
    let project = "/v1/projects/{project}";
    Routes::new()
        .get("/v1/projects", Permission::Read, list_projects)
        .post("/v1/projects", Permission::ManageTenant, create_project)
        .get(project, Permission::Read, get_project)
        .patch(project, Permission::ManageProject, update_project)
        .delete(project, Permission::ManageTenant, delete_project)
}

pub(crate) fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::bad_request(format!(
            "`description` is longer than {MAX_DESCRIPTION_CHARS} characters"
        ))
        .with_detail("field", "description"));
    }
    Ok(())
}

fn project_of(project: &Project) -> wire::Project {
    wire::Project {
        created_at: format_ms(project.created_at_ms),
        description: project.description.clone(),
        name: project.name.clone(),
        updated_at: format_ms(project.updated_at_ms),
    }
}

async fn create_project(
    State(state): State<ControlState>,
    principal: Principal,
    AppJson(body): AppJson<wire::CreateProject>,
) -> Result<(StatusCode, Json<wire::Project>), ApiError> {
    check_name("name", &body.name)?;
    check_description(&body.description)?;
    let _guard = state.change_lock.lock().await;
    let project = state
        .metadata
        .create_project(&principal.tenant, &body.name, &body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(project_of(&project))))
}

async fn list_projects(
    State(state): State<ControlState>,
    principal: Principal,
) -> Result<Json<wire::ProjectList>, ApiError> {
    let projects = state.metadata.list_projects(&principal.tenant).await?;
    // A key limited to one project sees only that project.
    let visible = projects
        .iter()
        .filter(|project| principal.may_see_project(&project.name))
        .map(project_of)
        .collect();
    Ok(Json(wire::ProjectList { projects: visible }))
}

async fn get_project(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<wire::Project>, ApiError> {
    let project = state
        .metadata
        .get_project(&principal.tenant, &project)
        .await?;
    Ok(Json(project_of(&project)))
}

async fn update_project(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(body): AppJson<wire::UpdateProject>,
) -> Result<Json<wire::Project>, ApiError> {
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let _guard = state.change_lock.lock().await;
    let project = state
        .metadata
        .update_project(&principal.tenant, &project, body.description)
        .await?;
    Ok(Json(project_of(&project)))
}

/// Deletes a project with all its pools, their queue shards and their indexes.
async fn delete_project(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<StatusCode, ApiError> {
    let _guard = state.change_lock.lock().await;
    let pools = state
        .metadata
        .delete_project(&principal.tenant, &project)
        .await?;
    state.publish_routing().await?;
    for pool in pools {
        crate::pools::delete_pool_data(&state, &pool).await?;
    }
    state
        .queue
        .drop_project(&principal.tenant, &project)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

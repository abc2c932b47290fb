//! `/v1/projects` and `/v1/projects/{project}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use logpool_api::{ApiError, AppJson};
use logpool_core::routing::DEFAULT_TENANT;
use logpool_engines::metadata::Project;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{check_name, format_ms, ControlState};

/// Longest accepted description.
const MAX_DESCRIPTION_CHARS: usize = 1024;

pub(crate) fn routes() -> Router<ControlState> {
    Router::new()
        .route("/v1/projects", get(list_projects).post(create_project))
        .route(
            "/v1/projects/{project}",
            get(get_project)
                .patch(update_project)
                .delete(delete_project),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProject {
    description: Option<String>,
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

fn project_json(project: &Project) -> Value {
    json!({
        "name": project.name,
        "description": project.description,
        "created_at": format_ms(project.created_at_ms),
        "updated_at": format_ms(project.updated_at_ms),
    })
}

async fn create_project(
    State(state): State<ControlState>,
    AppJson(body): AppJson<CreateProject>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_name("name", &body.name)?;
    check_description(&body.description)?;
    let _guard = state.change_lock.lock().await;
    let project = state
        .metadata
        .create_project(DEFAULT_TENANT, &body.name, &body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(project_json(&project))))
}

async fn list_projects(State(state): State<ControlState>) -> Result<Json<Value>, ApiError> {
    let projects = state.metadata.list_projects(DEFAULT_TENANT).await?;
    Ok(Json(
        json!({ "projects": projects.iter().map(project_json).collect::<Vec<_>>() }),
    ))
}

async fn get_project(
    State(state): State<ControlState>,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let project = state.metadata.get_project(DEFAULT_TENANT, &project).await?;
    Ok(Json(project_json(&project)))
}

async fn update_project(
    State(state): State<ControlState>,
    Path(project): Path<String>,
    AppJson(body): AppJson<UpdateProject>,
) -> Result<Json<Value>, ApiError> {
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let _guard = state.change_lock.lock().await;
    let project = state
        .metadata
        .update_project(DEFAULT_TENANT, &project, body.description)
        .await?;
    Ok(Json(project_json(&project)))
}

/// Deletes a project with all its pools, their queue shards and their indexes.
async fn delete_project(
    State(state): State<ControlState>,
    Path(project): Path<String>,
) -> Result<StatusCode, ApiError> {
    let _guard = state.change_lock.lock().await;
    let pools = state
        .metadata
        .delete_project(DEFAULT_TENANT, &project)
        .await?;
    state.publish_routing().await?;
    for pool in pools {
        crate::pools::delete_pool_data(&state, &pool).await?;
    }
    state.queue.drop_project(DEFAULT_TENANT, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

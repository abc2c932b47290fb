//! `/v1/projects/{project}/saved-searches`: named searches a project's team shares.
//!
//! Who may do what: every key that may read the project (readers, project admins,
//! tenant admins, operators) lists and opens them; keys that may manage the project
//! (project admins, tenant admins, operators) create, replace and delete them. Writer
//! keys are ingest-only keys held by log shippers, so they get neither. Each search
//! records the ids of the keys that created and last changed it.
//!
//! Every limit is checked before anything is stored, with a 400 (a 409 for the count
//! per project, checked by the store under the project's lock) naming the field and
//! the limit.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::Permission;
use logpool_core::timeexpr::parse_time_expr;
use logpool_engines::metadata::{MetadataError, SavedSearch, SavedSearchFields, SavedSearchLimits};
use logpool_wire::saved as wire;

use crate::{format_ms, ControlState};

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Longest `from` / `to` expression, in characters.
pub const MAX_TIME_CHARS: usize = 64;
/// Most result columns.
pub const MAX_COLUMNS: usize = 50;
/// Longest column (field) name, in bytes.
pub const MAX_COLUMN_BYTES: usize = 256;
/// Largest chart settings document, in bytes of compact JSON.
pub const MAX_CHART_BYTES: usize = 16 * 1024;
/// Most saved searches in one project.
pub const MAX_PER_PROJECT: u32 = 500;

pub(crate) fn routes() -> Routes<ControlState> {
    let list = "/v1/projects/{project}/saved-searches";
    let one = "/v1/projects/{project}/saved-searches/{id}";
    Routes::new()
        .get(list, Permission::Read, list_saved)
        .post(list, Permission::ManageProject, create_saved)
        .get(one, Permission::Read, get_saved)
        .put(one, Permission::ManageProject, replace_saved)
        .delete(one, Permission::ManageProject, delete_saved)
}

fn too_long(field: &str, what: String, limit: usize) -> ApiError {
    ApiError::bad_request(format!("`{field}` {what}"))
        .with_detail("field", field)
        .with_detail("limit", limit)
}

/// Checks a body against every limit and turns it into what the store keeps.
fn checked_fields(body: wire::SavedSearchBody) -> Result<SavedSearchFields, ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("`name` must not be empty").with_detail("field", "name"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(too_long(
            "name",
            format!("is longer than {MAX_NAME_CHARS} characters"),
            MAX_NAME_CHARS,
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(
            ApiError::bad_request("`name` must not hold control characters")
                .with_detail("field", "name"),
        );
    }
    if body.query.len() > MAX_QUERY_BYTES {
        return Err(too_long(
            "query",
            format!("is longer than {MAX_QUERY_BYTES} bytes"),
            MAX_QUERY_BYTES,
        ));
    }
    for (field, value) in [("from", &body.from), ("to", &body.to)] {
        if value.chars().count() > MAX_TIME_CHARS {
            return Err(too_long(
                field,
                format!("is longer than {MAX_TIME_CHARS} characters"),
                MAX_TIME_CHARS,
            ));
        }
        // Relative times stay relative in storage; parsing now only proves the
        // expression is one the searches accept.
        parse_time_expr(value, logpool_api::time::now_ns()).map_err(|message| {
            ApiError::bad_request(format!("invalid `{field}`: {message}"))
                .with_detail("field", field)
        })?;
    }
    if !body.pool.is_empty() {
        crate::check_name("pool", &body.pool)?;
    }
    if body.columns.len() > MAX_COLUMNS {
        return Err(too_long(
            "columns",
            format!("holds more than {MAX_COLUMNS} columns"),
            MAX_COLUMNS,
        ));
    }
    for column in &body.columns {
        if column.is_empty() || column.len() > MAX_COLUMN_BYTES {
            return Err(too_long(
                "columns",
                format!("holds a name that is empty or longer than {MAX_COLUMN_BYTES} bytes"),
                MAX_COLUMN_BYTES,
            ));
        }
    }
    let chart = match &body.chart {
        Some(chart) => serde_json::to_string(chart).map_err(ApiError::internal)?,
        None => String::new(),
    };
    if chart.len() > MAX_CHART_BYTES {
        return Err(too_long(
            "chart",
            format!("is larger than {MAX_CHART_BYTES} bytes of JSON"),
            MAX_CHART_BYTES,
        ));
    }
    Ok(SavedSearchFields {
        name,
        query: body.query,
        from: body.from,
        to: body.to,
        pool: body.pool,
        columns: body.columns,
        chart,
    })
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

/// The id from the path; one that is not a number names no search.
fn search_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("saved search `{id}` not found")))
}

fn saved_of(saved: SavedSearch) -> wire::SavedSearch {
    // The store holds only documents this module wrote, all JSON objects.
    let chart = serde_json::from_str(&saved.fields.chart).ok();
    wire::SavedSearch {
        id: saved.id.to_string(),
        name: saved.fields.name,
        query: saved.fields.query,
        from: saved.fields.from,
        to: saved.fields.to,
        pool: saved.fields.pool,
        columns: saved.fields.columns,
        chart,
        created_by: saved.created_by,
        updated_by: saved.updated_by,
        created_at: format_ms(saved.created_at_ms),
        updated_at: format_ms(saved.updated_at_ms),
    }
}

async fn list_saved(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<wire::SavedSearchList>, ApiError> {
    let saved = state
        .metadata
        .list_saved_searches(&principal.tenant, &project)
        .await?;
    Ok(Json(wire::SavedSearchList {
        saved_searches: saved.into_iter().map(saved_of).collect(),
    }))
}

async fn create_saved(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(body): AppJson<wire::SavedSearchBody>,
) -> Result<(StatusCode, Json<wire::SavedSearch>), ApiError> {
    let fields = checked_fields(body)?;
    let limits = SavedSearchLimits {
        max_per_project: MAX_PER_PROJECT,
    };
    let saved = state
        .metadata
        .create_saved_search(
            &principal.tenant,
            &project,
            &fields,
            &principal.key_id,
            limits,
        )
        .await
        .map_err(store_refusal)?;
    Ok((StatusCode::CREATED, Json(saved_of(saved))))
}

async fn get_saved(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<wire::SavedSearch>, ApiError> {
    let saved = state
        .metadata
        .get_saved_search(&principal.tenant, &project, search_id(&id)?)
        .await?;
    Ok(Json(saved_of(saved)))
}

async fn replace_saved(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
    AppJson(body): AppJson<wire::SavedSearchBody>,
) -> Result<Json<wire::SavedSearch>, ApiError> {
    let id = search_id(&id)?;
    let fields = checked_fields(body)?;
    let saved = state
        .metadata
        .update_saved_search(&principal.tenant, &project, id, &fields, &principal.key_id)
        .await
        .map_err(store_refusal)?;
    Ok(Json(saved_of(saved)))
}

async fn delete_saved(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .metadata
        .delete_saved_search(&principal.tenant, &project, search_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

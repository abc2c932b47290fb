//! `/v1/projects/{project}/alerts`: alert rules, their state and history.
//!
//! Readers list and open them; keys that manage the project create, replace and
//! delete them. A rule is checked before it is stored: its query and SQL must parse
//! (a 400 names the field and the character position), its schedule must be at
//! least `alerts.min_every_secs` (10 s), its channels must exist in the project, and
//! the tenant must have room under its `alert_rules` quota (a 409).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, AppQuery, Principal, Routes, RoutingView};
use logpool_core::access::Permission;
use logpool_engines::metadata::{AlertObject, AlertObjectKind, MetadataError};
use logpool_wire::alerts as wire;
use serde::{Deserialize, Serialize};

use super::evaluate::compile;
use super::ids::{format_id, parse_id, path_id};
use super::state::{GroupState, TransitionDoc};
use super::{check_display_name, invalid};
use crate::{format_ms, ControlState};

/// Longest window, seconds (7 days).
pub const MAX_WINDOW_SECS: u64 = 7 * 86_400;
/// Longest schedule, seconds (1 day).
pub const MAX_EVERY_SECS: u64 = 86_400;
/// Longest query or SQL, bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Most consecutive breaches a rule may wait for.
pub const MAX_PENDING_EVALUATIONS: u32 = 100;
/// Most matching lines per notification.
pub const MAX_LINES: u32 = 100;
/// Most channels per rule.
pub const MAX_CHANNELS: usize = 10;
/// Most labels per rule or silence.
pub const MAX_LABELS: usize = 20;
/// Longest description template, bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4 * 1024;
/// Most transitions one history request returns.
pub const MAX_HISTORY: u32 = 1_000;

const KIND: AlertObjectKind = AlertObjectKind::Rule;
const CONDITIONS: [&str; 7] = [">", ">=", "<", "<=", "==", "change_pct", "no_data"];
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

pub(crate) fn routes() -> Routes<ControlState> {
    let list = "/v1/projects/{project}/alerts";
    let one = "/v1/projects/{project}/alerts/{id}";
    Routes::new()
        .get(list, Permission::Read, list_rules)
        .post(list, Permission::ManageProject, create_rule)
        .get(one, Permission::Read, get_rule)
        .put(one, Permission::ManageProject, replace_rule)
        .delete(one, Permission::ManageProject, delete_rule)
        .get(
            "/v1/projects/{project}/alerts/{id}/history",
            Permission::Read,
            rule_history,
        )
}

/// What the evaluator writes back to a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// The last evaluation's error.
    pub last_error: Option<String>,
    /// The last evaluation, ms since the epoch (0: never).
    pub last_eval_ms: i64,
}

impl RuleStatus {
    /// Reads a stored status (empty: none yet).
    pub fn parse(text: &str) -> RuleStatus {
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// Reads a stored rule document.
pub fn parse_rule(object: &AlertObject) -> Result<wire::RuleBody, ApiError> {
    serde_json::from_str(&object.doc).map_err(ApiError::internal)
}

/// Labels within their limits, naming `field` when not.
pub(crate) fn check_labels(
    field: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(invalid(
            field,
            format!("`{field}` holds more than {MAX_LABELS} labels"),
        )
        .with_detail("limit", MAX_LABELS));
    }
    for (key, value) in labels {
        if key.is_empty() || key.len() > 100 || value.len() > 256 {
            return Err(invalid(
                field,
                format!("`{field}`: a label name must be 1 to 100 bytes, a value at most 256"),
            ));
        }
    }
    Ok(())
}

fn over(field: &str, what: String, limit: impl Into<serde_json::Value>) -> ApiError {
    invalid(field, format!("`{field}` {what}")).with_detail("limit", limit)
}

/// Checks a rule against every limit and normalises it.
async fn checked_rule(
    state: &ControlState,
    principal: &Principal,
    project: &str,
    mut body: wire::RuleBody,
) -> Result<wire::RuleBody, ApiError> {
    body.name = check_display_name(&body.name)?;
    crate::check_name("pool", &body.pool)?;
    RoutingView::new(state.coordinator.watch()).pool(&principal.tenant, project, &body.pool)?;
    body.query = body.query.trim().to_string();
    if body.query.is_empty() {
        body.query = "*".to_string();
    }
    body.sql = body
        .sql
        .map(|sql| sql.trim().trim_start_matches('|').trim().to_string())
        .filter(|sql| !sql.is_empty());
    for (field, text) in [("query", Some(&body.query)), ("sql", body.sql.as_ref())] {
        if text.is_some_and(|text| text.len() > MAX_QUERY_BYTES) {
            return Err(over(
                field,
                format!("is longer than {MAX_QUERY_BYTES} bytes"),
                MAX_QUERY_BYTES,
            ));
        }
    }
    body.group_by = body
        .group_by
        .map(|group| group.trim().to_string())
        .filter(|group| !group.is_empty());
    if body
        .group_by
        .as_ref()
        .is_some_and(|group| group.len() > 256)
    {
        return Err(over(
            "group_by",
            "is longer than 256 bytes".to_string(),
            256,
        ));
    }
    compile(&body, &body.pool).map_err(|error| {
        let answer = invalid(error.field, error.message);
        match error.position {
            Some(position) => answer.with_detail("position", position),
            None => answer,
        }
    })?;
    if body.window_secs == 0 || body.window_secs > MAX_WINDOW_SECS {
        return Err(over(
            "window_secs",
            format!(
                "must be between 1 and {MAX_WINDOW_SECS}, got {}",
                body.window_secs
            ),
            MAX_WINDOW_SECS,
        ));
    }
    let min_every = state.alerts.min_every_secs;
    if body.every_secs < min_every || body.every_secs > MAX_EVERY_SECS {
        return Err(over(
            "every_secs",
            format!(
                "must be between {min_every} and {MAX_EVERY_SECS}, got {}",
                body.every_secs
            ),
            min_every,
        ));
    }
    if !CONDITIONS.contains(&body.condition.op.as_str()) {
        return Err(invalid(
            "condition.op",
            format!("`condition.op` must be one of {}", CONDITIONS.join(", ")),
        ));
    }
    match body.condition.threshold {
        None if body.condition.op != "no_data" => {
            return Err(invalid(
                "condition.threshold",
                "`condition.threshold` is required for this condition",
            ))
        }
        Some(threshold) if !threshold.is_finite() => {
            return Err(invalid(
                "condition.threshold",
                "`condition.threshold` must be a finite number",
            ))
        }
        _ => {}
    }
    if !SEVERITIES.contains(&body.severity.as_str()) {
        return Err(invalid(
            "severity",
            format!("`severity` must be one of {}", SEVERITIES.join(", ")),
        ));
    }
    check_labels("labels", &body.labels)?;
    if body.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(over(
            "description",
            format!("is longer than {MAX_DESCRIPTION_BYTES} bytes"),
            MAX_DESCRIPTION_BYTES,
        ));
    }
    if body.pending_evaluations == 0 || body.pending_evaluations > MAX_PENDING_EVALUATIONS {
        return Err(over(
            "pending_evaluations",
            format!("must be between 1 and {MAX_PENDING_EVALUATIONS}"),
            MAX_PENDING_EVALUATIONS,
        ));
    }
    if body.renotify_secs > MAX_WINDOW_SECS {
        return Err(over(
            "renotify_secs",
            format!("must be at most {MAX_WINDOW_SECS} (0: never repeat)"),
            MAX_WINDOW_SECS,
        ));
    }
    if body.max_lines > MAX_LINES {
        return Err(over(
            "max_lines",
            format!("must be at most {MAX_LINES}"),
            MAX_LINES,
        ));
    }
    if body.channels.len() > MAX_CHANNELS {
        return Err(over(
            "channels",
            format!("holds more than {MAX_CHANNELS} channels"),
            MAX_CHANNELS,
        ));
    }
    body.channels.sort();
    body.channels.dedup();
    for channel in &body.channels {
        let known = match parse_id(AlertObjectKind::Channel, channel) {
            Some(id) => match state
                .metadata
                .get_alert_object(AlertObjectKind::Channel, &principal.tenant, project, id)
                .await
            {
                Ok(_) => true,
                Err(MetadataError::NotFound { .. }) => false,
                Err(error) => return Err(error.into()),
            },
            None => false,
        };
        if !known {
            return Err(invalid(
                "channels",
                format!("channel `{channel}` is not a channel of this project"),
            ));
        }
    }
    if body
        .saved_search_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > 64)
    {
        return Err(invalid(
            "saved_search_id",
            "`saved_search_id` must be 1 to 64 bytes",
        ));
    }
    Ok(body)
}

/// The wire form of a stored rule with its states.
pub(crate) fn rule_of(
    object: &AlertObject,
    states: Vec<logpool_engines::metadata::AlertGroupState>,
) -> Result<wire::Rule, ApiError> {
    let body = parse_rule(object)?;
    let status = RuleStatus::parse(&object.status);
    let state = states
        .into_iter()
        .filter_map(|stored| {
            let group_state: GroupState = serde_json::from_str(&stored.doc).ok()?;
            Some(wire::RuleGroupState {
                group: stored.group,
                state: group_state.state.as_str().to_string(),
                value: group_state.value,
                since: format_ms(group_state.since_ms),
                last_eval: format_ms(group_state.last_eval_ms),
            })
        })
        .collect();
    Ok(wire::Rule {
        id: format_id(KIND, object.id),
        name: body.name,
        pool: body.pool,
        query: body.query,
        sql: body.sql,
        window_secs: body.window_secs,
        every_secs: body.every_secs,
        condition: body.condition,
        group_by: body.group_by,
        severity: body.severity,
        labels: body.labels,
        description: body.description,
        pending_evaluations: body.pending_evaluations,
        renotify_secs: body.renotify_secs,
        max_lines: body.max_lines,
        channels: body.channels,
        enabled: body.enabled,
        saved_search_id: body.saved_search_id,
        state,
        last_error: status.last_error,
        created_by: object.created_by.clone(),
        updated_by: object.updated_by.clone(),
        created_at: format_ms(object.created_at_ms),
        updated_at: format_ms(object.updated_at_ms),
    })
}

async fn answer(state: &ControlState, object: &AlertObject) -> Result<wire::Rule, ApiError> {
    let states = state.metadata.alert_states(object.id).await?;
    rule_of(object, states)
}

/// The tenant's rule quota: its `alert_rules` limit, else the server's default.
fn rule_quota(state: &ControlState, tenant: &str) -> u32 {
    state
        .coordinator
        .watch()
        .borrow()
        .access
        .tenant_limits
        .get(tenant)
        .and_then(|limits| limits.alert_rules)
        .unwrap_or(state.alerts.max_rules_per_tenant)
}

async fn list_rules(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<wire::RuleList>, ApiError> {
    let objects = state
        .metadata
        .list_alert_objects(KIND, &principal.tenant, &project)
        .await?;
    let mut alerts = Vec::with_capacity(objects.len());
    for object in &objects {
        alerts.push(answer(&state, object).await?);
    }
    Ok(Json(wire::RuleList { alerts }))
}

async fn create_rule(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(body): AppJson<wire::RuleBody>,
) -> Result<(StatusCode, Json<wire::Rule>), ApiError> {
    let body = checked_rule(&state, &principal, &project, body).await?;
    let doc = serde_json::to_string(&body).map_err(ApiError::internal)?;
    let object = state
        .metadata
        .create_alert_object(
            KIND,
            &principal.tenant,
            &project,
            &doc,
            &principal.key_id,
            rule_quota(&state, &principal.tenant),
        )
        .await
        .map_err(|error| match error {
            MetadataError::TooMany { .. } => {
                ApiError::from(error).with_detail("field", "alert_rules")
            }
            other => ApiError::from(other),
        })?;
    Ok((StatusCode::CREATED, Json(answer(&state, &object).await?)))
}

async fn get_rule(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<wire::Rule>, ApiError> {
    let object = state
        .metadata
        .get_alert_object(KIND, &principal.tenant, &project, path_id(KIND, &id)?)
        .await?;
    Ok(Json(answer(&state, &object).await?))
}

async fn replace_rule(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
    AppJson(body): AppJson<wire::RuleBody>,
) -> Result<Json<wire::Rule>, ApiError> {
    let id = path_id(KIND, &id)?;
    // A missing rule is a 404 before the body's checks can be a 400.
    state
        .metadata
        .get_alert_object(KIND, &principal.tenant, &project, id)
        .await?;
    let body = checked_rule(&state, &principal, &project, body).await?;
    let doc = serde_json::to_string(&body).map_err(ApiError::internal)?;
    let object = state
        .metadata
        .update_alert_object(
            KIND,
            &principal.tenant,
            &project,
            id,
            &doc,
            &principal.key_id,
        )
        .await?;
    Ok(Json(answer(&state, &object).await?))
}

async fn delete_rule(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .metadata
        .delete_alert_object(KIND, &principal.tenant, &project, path_id(KIND, &id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?limit=` of the history.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryParams {
    limit: Option<u32>,
}

async fn rule_history(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
    AppQuery(params): AppQuery<HistoryParams>,
) -> Result<Json<wire::History>, ApiError> {
    let id = path_id(KIND, &id)?;
    state
        .metadata
        .get_alert_object(KIND, &principal.tenant, &project, id)
        .await?;
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_HISTORY {
        return Err(over(
            "limit",
            format!("must be between 1 and {MAX_HISTORY}"),
            MAX_HISTORY,
        ));
    }
    let records = state.metadata.alert_history(id, limit).await?;
    let transitions = records
        .into_iter()
        .filter_map(|record| {
            let doc: TransitionDoc = serde_json::from_str(&record.doc).ok()?;
            Some(wire::Transition {
                at: format_ms(record.at_ms),
                group: record.group,
                from: doc.from.as_str().to_string(),
                to: doc.to.as_str().to_string(),
                value: doc.value,
                notified: doc.notified,
                muted: doc.muted,
            })
        })
        .collect();
    Ok(Json(wire::History { transitions }))
}

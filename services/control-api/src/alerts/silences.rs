//! `/v1/projects/{project}/alert-silences`: mute a rule, or every rule carrying some
//! labels, for a period. A muted notification is not sent; the transition that
//! caused it is still recorded in the rule's history, marked `muted`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::Permission;
use logpool_core::timeexpr::parse_time_expr;
use logpool_engines::metadata::{AlertObject, AlertObjectKind, MetadataError};
use logpool_wire::alerts as wire;
use serde::{Deserialize, Serialize};

use super::ids::{format_id, parse_id, path_id};
use super::invalid;
use super::rules::check_labels;
use crate::{format_ms, ControlState};

/// Most silences one tenant may hold.
pub const MAX_SILENCES_PER_TENANT: u32 = 1_000;
/// Longest silence, seconds (90 days).
pub const MAX_SILENCE_SECS: i64 = 90 * 86_400;

const KIND: AlertObjectKind = AlertObjectKind::Silence;

pub(crate) fn routes() -> Routes<ControlState> {
    let list = "/v1/projects/{project}/alert-silences";
    Routes::new()
        .get(list, Permission::Read, list_silences)
        .post(list, Permission::ManageProject, create_silence)
        .delete(
            "/v1/projects/{project}/alert-silences/{id}",
            Permission::ManageProject,
            delete_silence,
        )
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceDoc {
    /// The rule it mutes, if one.
    pub rule_id: Option<i64>,
    /// Labels a muted rule carries (all of them).
    pub labels: BTreeMap<String, String>,
    /// Start, ms since the epoch.
    pub starts_at_ms: i64,
    /// End, ms since the epoch.
    pub ends_at_ms: i64,
    /// Why.
    pub comment: String,
}

impl SilenceDoc {
    /// Whether it mutes rule `rule_id` with `labels` at `now_ms`.
    pub fn mutes(&self, rule_id: i64, labels: &BTreeMap<String, String>, now_ms: i64) -> bool {
        (self.starts_at_ms..self.ends_at_ms).contains(&now_ms)
            && self.rule_id.is_none_or(|muted| muted == rule_id)
            && self
                .labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    }
}

fn time_ms(field: &str, text: &str, now_ns: i64) -> Result<i64, ApiError> {
    parse_time_expr(text, now_ns)
        .map(|ns| ns / 1_000_000)
        .map_err(|message| invalid(field, format!("invalid `{field}`: {message}")))
}

fn silence_of(object: &AlertObject) -> Result<wire::Silence, ApiError> {
    let doc: SilenceDoc = serde_json::from_str(&object.doc).map_err(ApiError::internal)?;
    Ok(wire::Silence {
        id: format_id(KIND, object.id),
        rule_id: doc.rule_id.map(|id| format_id(AlertObjectKind::Rule, id)),
        labels: doc.labels,
        starts_at: format_ms(doc.starts_at_ms),
        ends_at: format_ms(doc.ends_at_ms),
        comment: doc.comment,
        created_by: object.created_by.clone(),
        created_at: format_ms(object.created_at_ms),
    })
}

async fn list_silences(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<wire::SilenceList>, ApiError> {
    let objects = state
        .metadata
        .list_alert_objects(KIND, &principal.tenant, &project)
        .await?;
    let silences = objects.iter().map(silence_of).collect::<Result<_, _>>()?;
    Ok(Json(wire::SilenceList { silences }))
}

async fn create_silence(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(body): AppJson<wire::SilenceBody>,
) -> Result<(StatusCode, Json<wire::Silence>), ApiError> {
    let now_ns = logpool_api::time::now_ns();
    let starts_at_ms = match body.starts_at.as_deref().filter(|text| !text.is_empty()) {
        Some(text) => time_ms("starts_at", text, now_ns)?,
        None => now_ns / 1_000_000,
    };
    let ends_at_ms = time_ms("ends_at", &body.ends_at, now_ns)?;
    if ends_at_ms <= starts_at_ms || ends_at_ms - starts_at_ms > MAX_SILENCE_SECS * 1_000 {
        return Err(invalid(
            "ends_at",
            format!("`ends_at` must be after `starts_at`, by at most {MAX_SILENCE_SECS} s"),
        )
        .with_detail("limit", MAX_SILENCE_SECS));
    }
    check_labels("labels", &body.labels)?;
    if body.comment.len() > 1024 {
        return Err(
            invalid("comment", "`comment` is longer than 1024 bytes").with_detail("limit", 1024)
        );
    }
    let rule_id = match body.rule_id.as_deref().filter(|id| !id.is_empty()) {
        None => None,
        Some(text) => {
            let id = parse_id(AlertObjectKind::Rule, text).ok_or_else(|| {
                invalid("rule_id", format!("`rule_id` `{text}` is not a rule id"))
            })?;
            match state
                .metadata
                .get_alert_object(AlertObjectKind::Rule, &principal.tenant, &project, id)
                .await
            {
                Ok(_) => Some(id),
                Err(MetadataError::NotFound { .. }) => {
                    return Err(invalid(
                        "rule_id",
                        format!("rule `{text}` is not a rule of this project"),
                    ))
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    if rule_id.is_none() && body.labels.is_empty() {
        return Err(invalid(
            "labels",
            "a silence needs a `rule_id` or `labels` (it would mute every rule)",
        ));
    }
    let doc = SilenceDoc {
        rule_id,
        labels: body.labels,
        starts_at_ms,
        ends_at_ms,
        comment: body.comment,
    };
    let doc = serde_json::to_string(&doc).map_err(ApiError::internal)?;
    let object = state
        .metadata
        .create_alert_object(
            KIND,
            &principal.tenant,
            &project,
            &doc,
            &principal.key_id,
            MAX_SILENCES_PER_TENANT,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(silence_of(&object)?)))
}

async fn delete_silence(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_silence_mutes_its_rule_or_labels_within_its_period() {
        let labels = BTreeMap::from([("team".to_string(), "web".to_string())]);
        let by_rule = SilenceDoc {
            rule_id: Some(3),
            labels: BTreeMap::new(),
            starts_at_ms: 100,
            ends_at_ms: 200,
            comment: String::new(),
        };
        assert!(by_rule.mutes(3, &BTreeMap::new(), 150));
        assert!(!by_rule.mutes(4, &BTreeMap::new(), 150));
        assert!(
            !by_rule.mutes(3, &BTreeMap::new(), 200),
            "ends_at is excluded"
        );
        let by_labels = SilenceDoc {
            rule_id: None,
            labels: labels.clone(),
            ..by_rule
        };
        assert!(by_labels.mutes(9, &labels, 150));
        assert!(!by_labels.mutes(9, &BTreeMap::new(), 150));
    }
}

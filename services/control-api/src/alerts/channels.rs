//! `/v1/projects/{project}/alert-channels`: where notifications go, and the "send
//! test" action.
//!
//! Secrets (`secret`, `password`) are write-only: answers show `***` when one is
//! set, and a replace that sends `***` back keeps the stored secret.

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::Json;
use logpool_api::{ApiError, AppJson, Principal, Routes};
use logpool_core::access::Permission;
use logpool_engines::metadata::{AlertObject, AlertObjectKind};
use logpool_wire::alerts::{self as wire, REDACTED};

use super::ids::{format_id, path_id};
use super::notify::{self, DeliveryOutcome};
use super::{check_display_name, invalid, now_ms};
use crate::{format_ms, ControlState};

/// Most channels one tenant may hold.
pub const MAX_CHANNELS_PER_TENANT: u32 = 200;
/// Longest URL, bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Most extra headers of a webhook.
pub const MAX_HEADERS: usize = 20;
/// Most email recipients.
pub const MAX_RECIPIENTS: usize = 50;

const KIND: AlertObjectKind = AlertObjectKind::Channel;
const KINDS: [&str; 5] = ["webhook", "slack", "dingtalk", "feishu", "email"];

pub(crate) fn routes() -> Routes<ControlState> {
    let list = "/v1/projects/{project}/alert-channels";
    let one = "/v1/projects/{project}/alert-channels/{id}";
    Routes::new()
        .get(list, Permission::Read, list_channels)
        .post(list, Permission::ManageProject, create_channel)
        .get(one, Permission::Read, get_channel)
        .put(one, Permission::ManageProject, replace_channel)
        .delete(one, Permission::ManageProject, delete_channel)
        .post(
            "/v1/projects/{project}/alert-channels/{id}/test",
            Permission::ManageProject,
            test_channel,
        )
}

/// Reads a stored channel document.
pub fn parse_channel(object: &AlertObject) -> Result<wire::ChannelBody, ApiError> {
    serde_json::from_str(&object.doc).map_err(ApiError::internal)
}

fn field(name: &str) -> String {
    format!("config.{name}")
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            invalid(
                &field(name),
                format!("`config.{name}` is required for this kind"),
            )
        })
}

/// Checks a channel body; `stored` supplies the secrets a replace sent back as `***`.
fn checked_channel(
    mut body: wire::ChannelBody,
    stored: Option<&wire::ChannelBody>,
) -> Result<wire::ChannelBody, ApiError> {
    body.name = check_display_name(&body.name)?;
    if !KINDS.contains(&body.kind.as_str()) {
        return Err(invalid(
            "kind",
            format!("`kind` must be one of {}", KINDS.join(", ")),
        ));
    }
    let config = &mut body.config;
    if config.secret.as_deref() == Some(REDACTED) {
        config.secret = stored.and_then(|stored| stored.config.secret.clone());
    }
    if config.password.as_deref() == Some(REDACTED) {
        config.password = stored.and_then(|stored| stored.config.password.clone());
    }
    if body.kind == "email" {
        required(&config.smtp_host, "smtp_host")?;
        let from = required(&config.from, "from")?;
        if !from.contains('@') || from.contains(['\r', '\n', '<', '>']) {
            return Err(invalid(
                &field("from"),
                "`config.from` must be an email address",
            ));
        }
        let to = config.to.as_deref().unwrap_or_default();
        if to.is_empty() || to.len() > MAX_RECIPIENTS {
            return Err(invalid(
                &field("to"),
                format!("`config.to` must hold 1 to {MAX_RECIPIENTS} addresses"),
            )
            .with_detail("limit", MAX_RECIPIENTS));
        }
        if to
            .iter()
            .any(|address| !address.contains('@') || address.contains(['\r', '\n', '<', '>', ',']))
        {
            return Err(invalid(
                &field("to"),
                "`config.to` must hold email addresses",
            ));
        }
        match config.smtp_tls.as_deref() {
            None | Some("none" | "starttls" | "tls") => {}
            Some(_) => {
                return Err(invalid(
                    &field("smtp_tls"),
                    "`config.smtp_tls` must be `none`, `starttls` or `tls`",
                ))
            }
        }
        if config.username.is_some() != config.password.is_some() {
            return Err(invalid(
                &field("password"),
                "`config.username` and `config.password` go together",
            ));
        }
        if config.url.is_some() || config.headers.is_some() {
            return Err(invalid(
                &field("url"),
                "an email channel has no `url` or `headers`",
            ));
        }
    } else {
        let url = required(&config.url, "url")?;
        if url.len() > MAX_URL_BYTES {
            return Err(invalid(
                &field("url"),
                format!("`config.url` is longer than {MAX_URL_BYTES} bytes"),
            )
            .with_detail("limit", MAX_URL_BYTES));
        }
        let parsed = reqwest::Url::parse(url).map_err(|error| {
            invalid(&field("url"), format!("`config.url` is not a URL: {error}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(&field("url"), "`config.url` must be http or https"));
        }
        if let Some(headers) = &config.headers {
            if body.kind != "webhook" {
                return Err(invalid(&field("headers"), "only a webhook has `headers`"));
            }
            if headers.len() > MAX_HEADERS {
                return Err(invalid(
                    &field("headers"),
                    format!("`config.headers` holds more than {MAX_HEADERS} headers"),
                )
                .with_detail("limit", MAX_HEADERS));
            }
            for (name, value) in headers {
                if HeaderName::from_bytes(name.as_bytes()).is_err()
                    || HeaderValue::from_str(value).is_err()
                {
                    return Err(invalid(
                        &field("headers"),
                        format!("`config.headers`: `{name}` is not a valid header"),
                    ));
                }
            }
        }
    }
    Ok(body)
}

/// The wire form of a stored channel, secrets redacted.
fn channel_of(object: &AlertObject) -> Result<wire::Channel, ApiError> {
    let body = parse_channel(object)?;
    let mut config = body.config;
    for secret in [&mut config.secret, &mut config.password] {
        if secret.is_some() {
            *secret = Some(REDACTED.to_string());
        }
    }
    Ok(wire::Channel {
        id: format_id(KIND, object.id),
        name: body.name,
        kind: body.kind,
        config,
        last_delivery: serde_json::from_str(&object.status).ok(),
        created_at: format_ms(object.created_at_ms),
        updated_at: format_ms(object.updated_at_ms),
    })
}

/// Records a delivery's outcome as the channel's `last_delivery`.
pub(crate) async fn record_delivery(
    state: &ControlState,
    channel_id: i64,
    outcome: &DeliveryOutcome,
) {
    let delivery = wire::LastDelivery {
        at: format_ms(now_ms()),
        ok: outcome.ok,
        error: outcome.error.clone(),
    };
    let Ok(status) = serde_json::to_string(&delivery) else {
        return;
    };
    if let Err(error) = state
        .metadata
        .set_alert_status(KIND, channel_id, &status)
        .await
    {
        tracing::warn!(%error, channel_id, "failed to record a channel's last delivery");
    }
}

async fn list_channels(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<wire::ChannelList>, ApiError> {
    let objects = state
        .metadata
        .list_alert_objects(KIND, &principal.tenant, &project)
        .await?;
    let channels = objects.iter().map(channel_of).collect::<Result<_, _>>()?;
    Ok(Json(wire::ChannelList { channels }))
}

async fn create_channel(
    State(state): State<ControlState>,
    principal: Principal,
    Path(project): Path<String>,
    AppJson(body): AppJson<wire::ChannelBody>,
) -> Result<(StatusCode, Json<wire::Channel>), ApiError> {
    let body = checked_channel(body, None)?;
    let doc = serde_json::to_string(&body).map_err(ApiError::internal)?;
    let object = state
        .metadata
        .create_alert_object(
            KIND,
            &principal.tenant,
            &project,
            &doc,
            &principal.key_id,
            MAX_CHANNELS_PER_TENANT,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(channel_of(&object)?)))
}

async fn get_channel(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<wire::Channel>, ApiError> {
    let object = state
        .metadata
        .get_alert_object(KIND, &principal.tenant, &project, path_id(KIND, &id)?)
        .await?;
    Ok(Json(channel_of(&object)?))
}

async fn replace_channel(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
    AppJson(body): AppJson<wire::ChannelBody>,
) -> Result<Json<wire::Channel>, ApiError> {
    let id = path_id(KIND, &id)?;
    let stored = state
        .metadata
        .get_alert_object(KIND, &principal.tenant, &project, id)
        .await?;
    let body = checked_channel(body, Some(&parse_channel(&stored)?))?;
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
    Ok(Json(channel_of(&object)?))
}

async fn delete_channel(
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

async fn test_channel(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<wire::ChannelTestAnswer>, ApiError> {
    let id = path_id(KIND, &id)?;
    let object = state
        .metadata
        .get_alert_object(KIND, &principal.tenant, &project, id)
        .await?;
    let channel = parse_channel(&object)?;
    let notification = notify::test_notification(&project, &object, &state.alerts.console_url);
    let outcome = state.notifier.deliver(&channel, &notification).await;
    record_delivery(&state, id, &outcome).await;
    Ok(Json(wire::ChannelTestAnswer {
        ok: outcome.ok,
        status: outcome.status,
        error: outcome.error,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(kind: &str, config: serde_json::Value) -> wire::ChannelBody {
        serde_json::from_value(serde_json::json!({"name": "n", "kind": kind, "config": config}))
            .expect("body")
    }

    #[test]
    fn test_channels_are_checked_per_kind_and_keep_redacted_secrets() {
        let error = checked_channel(body("webhook", serde_json::json!({})), None)
            .expect_err("url required");
        assert_eq!(error.message, "`config.url` is required for this kind");
        assert!(
            checked_channel(body("pager", serde_json::json!({"url": "http://x"})), None).is_err()
        );
        assert!(
            checked_channel(body("slack", serde_json::json!({"url": "ftp://x"})), None).is_err()
        );
        let stored = checked_channel(
            body(
                "webhook",
                serde_json::json!({"url": "http://x", "secret": "s3"}),
            ),
            None,
        )
        .expect("valid");
        let replaced = checked_channel(
            body(
                "webhook",
                serde_json::json!({"url": "http://y", "secret": "***"}),
            ),
            Some(&stored),
        )
        .expect("valid");
        assert_eq!(replaced.config.secret.as_deref(), Some("s3"));
        assert!(checked_channel(
            body(
                "email",
                serde_json::json!({"smtp_host": "h", "from": "a@b", "to": []})
            ),
            None
        )
        .is_err());
        assert!(checked_channel(
            body(
                "email",
                serde_json::json!({"smtp_host": "h", "from": "a@b", "to": ["c@d"], "smtp_tls": "ssl"})
            ),
            None
        )
        .is_err());
        checked_channel(
            body(
                "email",
                serde_json::json!({"smtp_host": "h", "from": "a@b", "to": ["c@d"]}),
            ),
            None,
        )
        .expect("valid email");
    }
}

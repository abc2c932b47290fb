//! Tenants, API keys, projects and pools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The tenant's name (`[a-z0-9][a-z0-9-]{1,62}`).
    pub name: String,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Its name.
    pub name: String,
}

/// `GET /v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    /// Every tenant.
    pub tenants: Vec<Tenant>,
}

/// `POST /v1/tenants/{tenant}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `operator`, `tenant_admin`, `project_admin`, `writer` or `reader`.
    pub role: String,
    /// The only project the key may touch (not for `operator` and `tenant_admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `PATCH /v1/tenants/{tenant}/keys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    /// A disabled key gets 401 everywhere until it is enabled again.
    pub enabled: bool,
}

/// An API key (never its secret, but for the answer to its creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Free text.
    pub description: String,
    /// Whether it is accepted.
    pub enabled: bool,
    /// Its id (the `<id>` of `lpk_<id>_<secret>`).
    pub id: String,
    /// The full key, only in the answer to its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The only project it may touch, if limited to one.
    pub project: Option<String>,
    /// Its role.
    pub role: String,
    /// Its tenant.
    pub tenant: String,
}

/// `GET /v1/tenants/{tenant}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    /// The tenant's keys the caller may see.
    pub keys: Vec<ApiKey>,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Whoami {
    /// The key's id.
    pub key_id: String,
    /// The only project it may touch; `null` when not limited to one.
    pub project: Option<String>,
    /// Its role.
    pub role: String,
    /// The tenant the request acts in.
    pub tenant: String,
}

/// `POST /v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// The project's name (`[a-z0-9][a-z0-9-]{1,62}`).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// `PATCH /v1/projects/{project}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    /// The new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Free text.
    pub description: String,
    /// Its name.
    pub name: String,
    /// When it was last changed, RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    /// The projects the caller may see.
    pub projects: Vec<Project>,
}

/// The declared type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Tokenised full text.
    Text,
    /// Exact string.
    Keyword,
    /// 64-bit integer.
    Long,
    /// 64-bit float.
    Double,
    /// Boolean.
    Bool,
    /// IP address.
    Ip,
    /// A time.
    Timestamp,
}

/// A pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pool {
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Free text.
    pub description: String,
    /// Declared field types by field name.
    pub field_hints: BTreeMap<String, FieldType>,
    /// Oldest accepted event time in days before arrival; `null`: the global setting.
    pub max_event_age_days: Option<u32>,
    /// Furthest accepted event time in seconds after arrival; `null`: the global setting.
    pub max_event_future_secs: Option<u32>,
    /// Its name.
    pub name: String,
    /// Its project.
    pub project: String,
    /// Days a record is kept.
    pub retention_days: u32,
    /// Queue shards.
    pub shards: usize,
    /// When it was last changed, RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/projects/{project}/pools`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolList {
    /// The project's pools.
    pub pools: Vec<Pool>,
}

/// One service process registered with the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// Where it serves HTTP (`host:port`).
    pub address: String,
    /// Unique among the service's instances.
    pub id: String,
    /// `put-datas`, `loghub`, `control-api`, `search-api` or `tail-ws`.
    pub service: String,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// The logpool version it runs.
    pub version: String,
}

/// `GET /v1/cluster/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    /// The service processes running now.
    pub members: Vec<Member>,
}

/// `POST /v1/projects/{project}/pools`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePool {
    /// The pool's name (`[a-z0-9][a-z0-9-]{1,62}`).
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Queue shards, 1 to 64 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// Days a record is kept, 1 to 3650 (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Declared field types by field name (`fields` is accepted too).
    #[serde(default, alias = "fields", skip_serializing_if = "BTreeMap::is_empty")]
    pub field_hints: BTreeMap<String, FieldType>,
    /// Oldest accepted event time in days before arrival (1 to 3650).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_age_days: Option<u32>,
    /// Furthest accepted event time in seconds after arrival (0 to 2592000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_future_secs: Option<u32>,
}

/// `PATCH /v1/projects/{project}/pools/{pool}`: members left out keep their values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePool {
    /// The new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// More shards (a pool never shrinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// The new retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// The declared field types, replacing the old ones (`fields` is accepted too).
    #[serde(default, alias = "fields", skip_serializing_if = "Option::is_none")]
    pub field_hints: Option<BTreeMap<String, FieldType>>,
    /// Left out: unchanged; `null`: back to the global setting.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u32>)]
    pub max_event_age_days: Option<Option<u32>>,
    /// Left out: unchanged; `null`: back to the global setting.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u32>)]
    pub max_event_future_secs: Option<Option<u32>>,
}

/// Tells a member given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_update_pool_tells_null_from_absent() {
        let reset: UpdatePool =
            serde_json::from_str(r#"{"max_event_age_days": null}"#).expect("json");
        assert_eq!(reset.max_event_age_days, Some(None));
        assert_eq!(reset.max_event_future_secs, None);
        let set: UpdatePool =
            serde_json::from_str(r#"{"max_event_future_secs": 60, "fields": {"s": "long"}}"#)
                .expect("json");
        assert_eq!(set.max_event_future_secs, Some(Some(60)));
        assert_eq!(
            set.field_hints.expect("hints")["s"],
            FieldType::Long,
            "`fields` is accepted for `field_hints`"
        );
        // What the client sends reads back the same.
        let text = serde_json::to_string(&reset).expect("json");
        assert_eq!(text, r#"{"max_event_age_days":null}"#);
        assert!(serde_json::from_str::<UpdatePool>(r#"{"colour": 1}"#).is_err());
        assert!(serde_json::from_str::<CreatePool>(
            r#"{"name": "a", "field_hints": {"x": "blob"}}"#
        )
        .is_err());
    }
}

//! Quotas of tenants and projects, and a tenant's usage.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Limits of a tenant or a project (`GET|PUT .../quotas`). A member left out means
/// no limit of its own; every member set must be positive.
///
/// Members are declared in the order the quota answers have always had.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Ingested records per second (token bucket, burst of one second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_records_per_s: Option<u64>,
    /// Ingested uncompressed bytes per second (token bucket, burst of one second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_bytes_per_s: Option<u64>,
    /// Index storage per project; writes are refused with 403 once over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_bytes: Option<u64>,
    /// Searches running at once per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_queries: Option<u32>,
    /// Searches started per second per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries_per_s: Option<u32>,
    /// Live tails open at once per tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_tails: Option<u32>,
    /// Longest time range one search may cover, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_query_range_s: Option<u64>,
    /// Alert rules per tenant, across its projects (the server's default applies
    /// when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_rules: Option<u32>,
}

/// One project in a tenant's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectUsage {
    /// The project's name.
    pub name: String,
    /// Whether its writes are refused for its storage quota.
    pub over_storage_quota: bool,
    /// Its pools.
    pub pools: usize,
    /// The limits that bind it: its own and its tenant's, the tighter of each.
    pub quotas: Limits,
    /// Index storage of its pools.
    pub storage_bytes: u64,
}

/// `GET /v1/tenants/{tenant}/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    /// The tenant's API keys.
    pub keys: usize,
    /// The tenant's pools.
    pub pools: usize,
    /// Per project.
    pub projects: Vec<ProjectUsage>,
    /// The tenant's own limits.
    pub quotas: Limits,
    /// Index storage of every pool.
    pub storage_bytes: u64,
    /// The tenant.
    pub tenant: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_limits_leave_out_what_is_not_limited_and_refuse_unknown_members() {
        let limits = Limits {
            storage_bytes: Some(1000),
            concurrent_tails: Some(2),
            ..Limits::default()
        };
        assert_eq!(
            serde_json::to_string(&limits).expect("json"),
            r#"{"storage_bytes":1000,"concurrent_tails":2}"#
        );
        assert_eq!(
            serde_json::to_string(&Limits::default()).expect("json"),
            "{}"
        );
        assert!(serde_json::from_str::<Limits>(r#"{"storage":1}"#).is_err());
    }
}

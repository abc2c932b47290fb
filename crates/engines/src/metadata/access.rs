//! Stored tenants, API keys and limits (the source of truth for
//! [`logpool_core::access::AccessTable`]).

use logpool_core::access::{KeyEntry, Limits, Role};
use serde::Serialize;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// Unique name.
    pub name: String,
    /// Creation time in milliseconds since the epoch.
    pub created_at_ms: i64,
}

/// A stored API key: its hash, never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Public id.
    pub id: String,
    /// The tenant it acts in.
    pub tenant: String,
    /// Its role.
    pub role: Role,
    /// The only project it may touch, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Free text.
    pub description: String,
    /// Disabled keys are refused.
    pub enabled: bool,
    /// Creation time in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Hex salt (not shown to clients).
    #[serde(skip)]
    pub salt: String,
    /// Hex salted SHA-256 of the secret (not shown to clients).
    #[serde(skip)]
    pub hash: String,
}

impl ApiKey {
    /// The entry every service checks requests against.
    pub fn entry(&self) -> KeyEntry {
        KeyEntry {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            role: self.role,
            project: self.project.clone(),
            salt: self.salt.clone(),
            hash: self.hash.clone(),
            enabled: self.enabled,
        }
    }
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Public id (unique).
    pub id: String,
    /// The tenant (must exist).
    pub tenant: String,
    /// Its role.
    pub role: Role,
    /// Optional project scope.
    pub project: Option<String>,
    /// Free text.
    pub description: String,
    /// Hex salt.
    pub salt: String,
    /// Hex salted hash of the secret.
    pub hash: String,
}

/// Stored limits of a tenant (`project` is `None`) or of one of its projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLimits {
    /// The tenant.
    pub tenant: String,
    /// The project, or `None` for the tenant-wide limits.
    pub project: Option<String>,
    /// The limits.
    pub limits: Limits,
}

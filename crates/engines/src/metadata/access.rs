//! Stored tenants, API keys and limits (the source of truth for
//! [`logpool_core::access::AccessTable`]).

use std::fmt::Debug;

use async_trait::async_trait;
use logpool_core::access::{KeyEntry, Limits, Role};
use serde::Serialize;

use super::MetadataResult;

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

/// Tenants, API keys and limits.
#[async_trait]
pub trait AccessStore: Send + Sync + Debug + 'static {
    /// Creates a tenant. The `default` tenant exists from the first migration.
    ///
    /// # Errors
    /// [`super::MetadataError::AlreadyExists`] when the name is taken.
    async fn create_tenant(&self, name: &str) -> MetadataResult<Tenant>;

    /// Lists tenants sorted by name.
    async fn list_tenants(&self) -> MetadataResult<Vec<Tenant>>;

    /// Reads one tenant.
    ///
    /// # Errors
    /// [`super::MetadataError::NotFound`] (kind `tenant`).
    async fn get_tenant(&self, name: &str) -> MetadataResult<Tenant>;

    /// Stores a new key (enabled).
    ///
    /// # Errors
    /// [`super::MetadataError::NotFound`] (kind `tenant`) when the tenant does not exist;
    /// [`super::MetadataError::AlreadyExists`] (kind `key`) when the id is taken.
    async fn create_key(&self, key: NewApiKey) -> MetadataResult<ApiKey>;

    /// Stores the operator's bootstrap key (id [`logpool_core::access::BOOTSTRAP_KEY_ID`],
    /// tenant `default`, role operator), replacing its salt and hash when it exists and
    /// enabling it. Returns true when it did not exist before.
    async fn save_bootstrap_key(&self, salt: &str, hash: &str) -> MetadataResult<bool>;

    /// Reads one key of a tenant.
    ///
    /// # Errors
    /// [`super::MetadataError::NotFound`] (kind `key`) when no key has that id in that tenant.
    async fn get_key(&self, tenant: &str, id: &str) -> MetadataResult<ApiKey>;

    /// Lists a tenant's keys sorted by creation time, then id.
    async fn list_keys(&self, tenant: &str) -> MetadataResult<Vec<ApiKey>>;

    /// Enables or disables a key of a tenant and returns it.
    ///
    /// # Errors
    /// [`super::MetadataError::NotFound`] (kind `key`).
    async fn set_key_enabled(
        &self,
        tenant: &str,
        id: &str,
        enabled: bool,
    ) -> MetadataResult<ApiKey>;

    /// Deletes a key of a tenant.
    ///
    /// # Errors
    /// [`super::MetadataError::NotFound`] (kind `key`).
    async fn delete_key(&self, tenant: &str, id: &str) -> MetadataResult<()>;

    /// Every key of every tenant (for the routing snapshot).
    async fn all_keys(&self) -> MetadataResult<Vec<ApiKey>>;

    /// Replaces the limits of a tenant (`project` = `None`) or of a project.
    ///
    /// # Errors
    /// [`super::MetadataError::NotFound`] (kind `tenant` or `project`) when it does not exist.
    async fn set_limits(
        &self,
        tenant: &str,
        project: Option<&str>,
        limits: &logpool_core::access::Limits,
    ) -> MetadataResult<()>;

    /// Reads the limits of a tenant or project (all `None` when never set).
    async fn get_limits(
        &self,
        tenant: &str,
        project: Option<&str>,
    ) -> MetadataResult<logpool_core::access::Limits>;

    /// Every stored limit (for the routing snapshot).
    async fn all_limits(&self) -> MetadataResult<Vec<StoredLimits>>;
}

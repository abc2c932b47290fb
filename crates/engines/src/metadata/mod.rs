//! The metadata role: tenants, keys and limits, projects and pools, consumer groups,
//! archive settings, saved searches, alerts.
//!
//! The store is the source of truth; the routing snapshot that services use is
//! rebuilt from it ([`MetadataStore::routing_snapshot`]) after every change.

pub mod access;
pub mod alerts;
pub mod archive;
#[cfg(test)]
pub(crate) mod conformance;
pub mod consumer_groups;
pub mod dashboards;
pub mod keys;
#[cfg(feature = "mysql")]
pub mod mysql;
pub mod saved_searches;
pub mod schema;
pub mod sql;
pub mod sqlite;

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use logpool_core::ingest::window::EventWindowOverride;
use logpool_core::routing::{FieldType, PoolRoute};
use serde::Serialize;

pub use access::{AccessStore, ApiKey, NewApiKey, StoredLimits, Tenant};
pub use alerts::{
    AlertEvaluation, AlertGroupState, AlertObject, AlertObjectKind, AlertStore,
    AlertTransitionRecord, NewOutboxEntry, OutboxEntry, OutboxOutcome,
};
pub use archive::ArchiveStore;
pub use consumer_groups::{Checkpoint, ConsumerGroup, ConsumerGroupStore, NewConsumerGroup};
pub use dashboards::{Dashboard, DashboardFields, DashboardLimits, DashboardStore};
pub use keys::{GroupRef, PoolRef};
pub use saved_searches::{SavedSearch, SavedSearchFields, SavedSearchLimits, SavedSearchStore};
pub use schema::{LearnedTypes, SchemaStore};
pub use sql::{Dialect, SqlMetadataStore};
pub use sqlite::{SqliteMetadataConfig, SqliteMetadataStore};

/// Result alias for metadata operations.
pub type MetadataResult<T> = Result<T, MetadataError>;

/// Errors of the metadata role.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The named object does not exist.
    #[error("{kind} `{name}` not found")]
    NotFound {
        /// "project" or "pool".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// An object with that name exists already.
    #[error("{kind} `{name}` already exists")]
    AlreadyExists {
        /// "project" or "pool".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A count limit would be passed (the object is not stored).
    #[error("a {kind} holds at most {max} {what}")]
    TooMany {
        /// What holds them ("project").
        kind: &'static str,
        /// What it holds ("saved searches").
        what: &'static str,
        /// The limit.
        max: u32,
    },
    /// The request conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (a 503: retry later).
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// The database failed.
    #[error("metadata store error: {0}")]
    Database(String),
}

/// A stored project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// Database id.
    #[serde(skip)]
    pub id: i64,
    /// Owning tenant.
    pub tenant: String,
    /// Name, unique per tenant.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}

/// A stored pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// Database id, never reused.
    pub id: PoolId,
    /// Owning tenant.
    pub tenant: String,
    /// Owning project.
    pub project: String,
    /// Name, unique per project.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Queue partitions owned, in shard order.
    pub partitions: Vec<u32>,
    /// Days of data kept.
    pub retention_days: u32,
    /// Declared field types.
    pub field_hints: BTreeMap<String, FieldType>,
    /// The pool's own event-time window settings; unset ones follow the global ones.
    pub event_window: EventWindowOverride,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}

impl Pool {
    /// Returns the routing view of this pool.
    pub fn route(&self) -> PoolRoute {
        PoolRoute {
            pool_id: self.id,
            tenant: self.tenant.clone(),
            project: self.project.clone(),
            name: self.name.clone(),
            partitions: self.partitions.clone(),
            retention_days: self.retention_days,
            field_hints: self.field_hints.clone(),
            event_window: self.event_window,
            learned_types: BTreeMap::new(),
        }
    }
}

/// Fields of a new pool.
#[derive(Debug, Clone)]
pub struct NewPool {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Number of shards (queue partitions) to allocate.
    pub shards: u32,
    /// Days of data kept.
    pub retention_days: u32,
    /// Declared field types.
    pub field_hints: BTreeMap<String, FieldType>,
    /// The pool's own event-time window settings.
    pub event_window: EventWindowOverride,
}

/// A partial update of a pool; `None` leaves a value unchanged.
#[derive(Debug, Clone, Default)]
pub struct PoolPatch {
    /// New description.
    pub description: Option<String>,
    /// New shard count; may only grow (existing partitions keep their data).
    pub shards: Option<u32>,
    /// New retention.
    pub retention_days: Option<u32>,
    /// Field hints to add or change.
    pub field_hints: Option<BTreeMap<String, FieldType>>,
    /// The pool's oldest accepted event age; `Some(None)` returns to the global one.
    pub max_event_age_days: Option<Option<u32>>,
    /// The pool's furthest accepted event lead; `Some(None)` returns to the global one.
    pub max_event_future_secs: Option<Option<u32>>,
}

impl PoolPatch {
    /// The pool's event-time settings after this patch.
    pub fn event_window(&self, current: EventWindowOverride) -> EventWindowOverride {
        EventWindowOverride {
            max_event_age_days: self
                .max_event_age_days
                .unwrap_or(current.max_event_age_days),
            max_event_future_secs: self
                .max_event_future_secs
                .unwrap_or(current.max_event_future_secs),
        }
    }
}

/// Projects and pools (with the partitions they own), and the server's own state.
#[async_trait]
pub trait CatalogStore: Send + Sync + Debug + 'static {
    /// Creates a project.
    async fn create_project(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> MetadataResult<Project>;
    /// Lists a tenant's projects by name.
    async fn list_projects(&self, tenant: &str) -> MetadataResult<Vec<Project>>;
    /// Gets one project.
    async fn get_project(&self, tenant: &str, name: &str) -> MetadataResult<Project>;
    /// Updates a project's description.
    async fn update_project(
        &self,
        tenant: &str,
        name: &str,
        description: Option<String>,
    ) -> MetadataResult<Project>;
    /// Deletes a project and its pools; returns the pools that were deleted.
    async fn delete_project(&self, tenant: &str, name: &str) -> MetadataResult<Vec<Pool>>;
    /// Creates a pool and allocates its partitions.
    async fn create_pool(&self, tenant: &str, project: &str, pool: NewPool)
        -> MetadataResult<Pool>;
    /// Lists a project's pools by name.
    async fn list_pools(&self, tenant: &str, project: &str) -> MetadataResult<Vec<Pool>>;
    /// Gets one pool.
    async fn get_pool(&self, pool: &PoolRef) -> MetadataResult<Pool>;
    /// Updates a pool.
    async fn update_pool(&self, pool: &PoolRef, patch: PoolPatch) -> MetadataResult<Pool>;
    /// Deletes a pool and returns it.
    async fn delete_pool(&self, pool: &PoolRef) -> MetadataResult<Pool>;
    /// Returns every pool of every tenant, for the routing snapshot.
    async fn all_pools(&self) -> MetadataResult<Vec<Pool>>;
    /// Checks that the store can serve requests (for `/readyz`).
    async fn check_health(&self) -> MetadataResult<()>;

    /// Returns the server secret called `name`, storing `candidate` as that secret
    /// first when there is none yet. Every process sharing the store gets the same
    /// value, also after restarts.
    async fn get_or_create_secret(&self, name: &str, candidate: &str) -> MetadataResult<String>;
}

/// The metadata role: every aggregate's store in one object, so services hold one
/// `Arc<dyn MetadataStore>`. A new aggregate adds its own small trait here.
pub trait MetadataStore:
    CatalogStore
    + AccessStore
    + ConsumerGroupStore
    + ArchiveStore
    + SchemaStore
    + SavedSearchStore
    + AlertStore
    + DashboardStore
{
}

impl<T> MetadataStore for T where
    T: CatalogStore
        + AccessStore
        + ConsumerGroupStore
        + ArchiveStore
        + SchemaStore
        + SavedSearchStore
        + AlertStore
        + DashboardStore
{
}

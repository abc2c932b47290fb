//! Saved searches: named searches a project's team shares (query, time range,
//! columns and chart settings), stored per project so every member sees the same list.
//!
//! The store keeps what it is given; the limits on names, sizes and counts are the
//! API's ([`SavedSearchLimits`] travels with a create so that the count is checked in
//! the same transaction as the insert, and two replicas cannot both pass it).

use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;

use super::MetadataResult;

/// A stored saved search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedSearch {
    /// Database id, never reused; names the search in paths.
    pub id: i64,
    /// Owning tenant.
    pub tenant: String,
    /// Owning project.
    pub project: String,
    /// What the search holds.
    pub fields: SavedSearchFields,
    /// Id of the key that created it.
    pub created_by: String,
    /// Id of the key that changed it last.
    pub updated_by: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}

/// What a saved search holds, as its creator or last editor gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedSearchFields {
    /// Name, unique per project.
    pub name: String,
    /// The query text (search part and optional SQL part).
    pub query: String,
    /// Start of the range as written (`now-24h`, RFC 3339, epoch ms).
    pub from: String,
    /// End of the range as written (`now`, RFC 3339, epoch ms).
    pub to: String,
    /// The pool it searches, empty when any.
    pub pool: String,
    /// Chosen result columns, in order.
    pub columns: Vec<String>,
    /// Chart settings as a JSON document the console reads (stored as given).
    pub chart: String,
}

/// Bounds the store enforces while it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedSearchLimits {
    /// Most saved searches one project may hold.
    pub max_per_project: u32,
}

/// Saved searches, per project. Deleting the project deletes its searches.
#[async_trait]
pub trait SavedSearchStore: Send + Sync + Debug + 'static {
    /// Creates a saved search in `project`, made by key `by`.
    ///
    /// # Errors
    /// `NotFound` for an unknown project, `AlreadyExists` for a taken name,
    /// `TooMany` when the project holds `limits.max_per_project` already.
    async fn create_saved_search(
        &self,
        tenant: &str,
        project: &str,
        fields: &SavedSearchFields,
        by: &str,
        limits: SavedSearchLimits,
    ) -> MetadataResult<SavedSearch>;
    /// Lists a project's saved searches by name.
    async fn list_saved_searches(
        &self,
        tenant: &str,
        project: &str,
    ) -> MetadataResult<Vec<SavedSearch>>;
    /// Gets one saved search of `project`.
    async fn get_saved_search(
        &self,
        tenant: &str,
        project: &str,
        id: i64,
    ) -> MetadataResult<SavedSearch>;
    /// Replaces what a saved search holds, as key `by`.
    async fn update_saved_search(
        &self,
        tenant: &str,
        project: &str,
        id: i64,
        fields: &SavedSearchFields,
        by: &str,
    ) -> MetadataResult<SavedSearch>;
    /// Deletes one saved search.
    async fn delete_saved_search(&self, tenant: &str, project: &str, id: i64)
        -> MetadataResult<()>;
}

//! Dashboards: named grids of panels a project's team shares, each panel a search or
//! a pipe-SQL chart, with a dashboard-wide time range and auto-refresh.
//!
//! The store keeps what it is given: the panels are one JSON document that the API
//! checked and reads back. The limits on names, sizes and counts are the API's
//! ([`DashboardLimits`] travels with a create so that the count is checked in the same
//! transaction as the insert, and two replicas cannot both pass it).

use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;

use super::MetadataResult;

/// A stored dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    /// Database id, never reused; names the dashboard in paths.
    pub id: i64,
    /// Owning tenant.
    pub tenant: String,
    /// Owning project.
    pub project: String,
    /// What the dashboard holds.
    pub fields: DashboardFields,
    /// Id of the key that created it.
    pub created_by: String,
    /// Id of the key that changed it last.
    pub updated_by: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}

/// What a dashboard holds, as its creator or last editor gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DashboardFields {
    /// Name, unique per project.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Start of the dashboard's range as written (`now-24h`, RFC 3339, epoch ms).
    pub from: String,
    /// End of the range as written.
    pub to: String,
    /// Auto-refresh period (`off`, `10s`, `30s`, `1m`, `5m`).
    pub refresh: String,
    /// The panels, a JSON array the API wrote (stored as given).
    pub panels: String,
}

/// Bounds the store enforces while it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardLimits {
    /// Most dashboards one project may hold.
    pub max_per_project: u32,
}

/// Dashboards, per project. Deleting the project deletes its dashboards.
#[async_trait]
pub trait DashboardStore: Send + Sync + Debug + 'static {
    /// Creates a dashboard in `project`, made by key `by`.
    ///
    /// # Errors
    /// `NotFound` for an unknown project, `AlreadyExists` for a taken name,
    /// `TooMany` when the project holds `limits.max_per_project` already.
    async fn create_dashboard(
        &self,
        tenant: &str,
        project: &str,
        fields: &DashboardFields,
        by: &str,
        limits: DashboardLimits,
    ) -> MetadataResult<Dashboard>;
    /// Lists a project's dashboards by name.
    async fn list_dashboards(&self, tenant: &str, project: &str) -> MetadataResult<Vec<Dashboard>>;
    /// Gets one dashboard of `project`.
    async fn get_dashboard(
        &self,
        tenant: &str,
        project: &str,
        id: i64,
    ) -> MetadataResult<Dashboard>;
    /// Replaces what a dashboard holds, as key `by`.
    ///
    /// # Errors
    /// `NotFound` for an unknown project or dashboard, `AlreadyExists` when the new
    /// name is another dashboard's.
    async fn update_dashboard(
        &self,
        tenant: &str,
        project: &str,
        id: i64,
        fields: &DashboardFields,
        by: &str,
    ) -> MetadataResult<Dashboard>;
    /// Deletes one dashboard.
    async fn delete_dashboard(&self, tenant: &str, project: &str, id: i64) -> MetadataResult<()>;
}

//! The live routing view: resolves a project and pool name to its route.

use std::sync::Arc;

use logpool_core::routing::{PoolRoute, RoutingSnapshot};
use tokio::sync::watch;

use crate::error::ApiError;

/// A cheap-to-clone view of the latest published routing snapshot.
#[derive(Debug, Clone)]
pub struct RoutingView {
    receiver: watch::Receiver<Arc<RoutingSnapshot>>,
}

impl RoutingView {
    /// Wraps a coordinator's watch receiver.
    pub fn new(receiver: watch::Receiver<Arc<RoutingSnapshot>>) -> RoutingView {
        RoutingView { receiver }
    }

    /// Returns the current snapshot.
    pub fn snapshot(&self) -> Arc<RoutingSnapshot> {
        self.receiver.borrow().clone()
    }

    /// Resolves a pool or answers 404 naming what is missing.
    ///
    /// # Errors
    /// 404 when the project has no such pool.
    pub fn pool(&self, tenant: &str, project: &str, pool: &str) -> Result<PoolRoute, ApiError> {
        let snapshot = self.snapshot();
        snapshot
            .pool(tenant, project, pool)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(format!("pool `{pool}` not found in project `{project}`"))
                    .with_detail("project", project)
                    .with_detail("pool", pool)
            })
    }

    /// Returns a receiver to wait for changes.
    pub fn receiver(&self) -> watch::Receiver<Arc<RoutingSnapshot>> {
        self.receiver.clone()
    }
}

//! control-api: projects and pools, and the list of running service processes
//! ([`cluster`]).
//!
//! Every change is written to the metadata store first, then a fresh routing
//! snapshot is published through the coordinator, and only then does the request
//! answer, so a pool is usable by every service as soon as its create returns.
//! Deleting a pool also deletes its queue shards and its index.

pub mod archive;
pub mod cluster;
pub mod pools;
pub mod projects;
pub mod republish;
pub mod stats;

use std::sync::Arc;

use axum::Router;
use logpool_api::ApiError;
use logpool_core::names::validate_name;
use logpool_core::routing::RoutingSnapshot;
use logpool_engines::coordination::Coordinator;
use logpool_engines::index::LogIndex;
use logpool_engines::metadata::MetadataStore;
use logpool_engines::object_store::ObjectStore;
use logpool_engines::queue::Queue;

/// What the control handlers need.
#[derive(Debug, Clone)]
pub struct ControlState {
    /// Source of truth for projects and pools.
    pub metadata: Arc<dyn MetadataStore>,
    /// Where routing snapshots are published.
    pub coordinator: Arc<dyn Coordinator>,
    /// Queue, to delete shards of deleted pools.
    pub queue: Arc<dyn Queue>,
    /// Index, to prepare and delete pool indexes.
    pub index: Arc<dyn LogIndex>,
    /// Serialises changes so snapshots are published in the order they were made.
    change_lock: Arc<tokio::sync::Mutex<()>>,
    /// Where pools are archived ([`archive`]); archive endpoints answer 503 without it.
    pub object_store: Option<Arc<dyn ObjectStore>>,
    /// Restores started by this process.
    pub restores: archive::restore::Restores,
    /// Set while a stored change is not published yet ([`republish`]).
    pub routing_stale: republish::RoutingStale,
}

impl ControlState {
    /// Creates the state.
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        coordinator: Arc<dyn Coordinator>,
        queue: Arc<dyn Queue>,
        index: Arc<dyn LogIndex>,
    ) -> ControlState {
        ControlState {
            metadata,
            coordinator,
            queue,
            index,
            change_lock: Arc::new(tokio::sync::Mutex::new(())),
            object_store: None,
            restores: archive::restore::Restores::default(),
            routing_stale: republish::RoutingStale::default(),
        }
    }

    /// Gives the archive endpoints the object store the archive is written to.
    pub fn with_object_store(mut self, object_store: Arc<dyn ObjectStore>) -> ControlState {
        self.object_store = Some(object_store);
        self
    }

    /// Rebuilds the routing snapshot from the metadata store and publishes it. A
    /// failure marks the routing stale, so [`republish::run`] publishes it later.
    ///
    /// # Errors
    /// Fails when the store or the coordinator fails.
    pub async fn publish_routing(&self) -> Result<u64, ApiError> {
        let published = self.build_and_publish_routing().await;
        self.routing_stale.set(published.is_err());
        published
    }

    async fn build_and_publish_routing(&self) -> Result<u64, ApiError> {
        let pools = self.metadata.all_pools().await?;
        let snapshot = RoutingSnapshot {
            version: 0,
            pools: pools.iter().map(|p| p.route()).collect(),
            archives: self.metadata.all_archive_settings().await?,
        };
        Ok(self.coordinator.publish(snapshot).await?)
    }
}

/// Builds the control-api router.
pub fn router(state: ControlState) -> Router {
    let router = Router::new()
        .merge(projects::routes())
        .merge(pools::routes())
        .merge(cluster::routes())
        .merge(archive::routes())
        .merge(stats::routes())
        .with_state(state)
        // The web console is served by the control plane (and so by standalone).
        .merge(logpool_console::router());
    logpool_api::layers::with_common_layers(router)
}

/// Checks a name from a path or body, naming the field in the error.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    validate_name(name)
        .map_err(|message| ApiError::bad_request(message).with_detail("field", field))
}

/// Milliseconds since the epoch as RFC 3339.
pub(crate) fn format_ms(ms: i64) -> String {
    logpool_core::record::format_time_ns(ms.saturating_mul(1_000_000))
}

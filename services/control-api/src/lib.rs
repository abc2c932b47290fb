//! control-api: projects and pools.
//!
//! Every change is written to the metadata store first, then a fresh routing
//! snapshot is published through the coordinator, and only then does the request
//! answer, so a pool is usable by every service as soon as its create returns.
//! Deleting a pool also deletes its queue shards and its index.

pub mod pools;
pub mod projects;

use std::sync::Arc;

use axum::Router;
use logpool_api::ApiError;
use logpool_core::names::validate_name;
use logpool_core::routing::RoutingSnapshot;
use logpool_engines::coordination::Coordinator;
use logpool_engines::index::LogIndex;
use logpool_engines::metadata::MetadataStore;
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
        }
    }

    /// Rebuilds the routing snapshot from the metadata store and publishes it.
    ///
    /// # Errors
    /// Fails when the store or the coordinator fails.
    pub async fn publish_routing(&self) -> Result<u64, ApiError> {
        let pools = self.metadata.all_pools().await?;
        let snapshot = RoutingSnapshot {
            version: 0,
            pools: pools.iter().map(|p| p.route()).collect(),
        };
        Ok(self.coordinator.publish(snapshot).await?)
    }
}

/// Builds the control-api router.
pub fn router(state: ControlState) -> Router {
    let router = Router::new()
        .merge(projects::routes())
        .merge(pools::routes())
        .with_state(state);
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

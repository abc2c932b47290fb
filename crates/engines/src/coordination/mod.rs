//! The coordination role: a versioned routing snapshot that every service watches.
//!
//! control-api publishes a new snapshot after each metadata change; services keep a
//! [`tokio::sync::watch::Receiver`] and route by whatever it holds now. A distributed
//! implementation (etcd) fills the same channel from a watch on a key prefix.

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod local;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use logpool_core::routing::RoutingSnapshot;
use tokio::sync::watch;

pub use local::LocalCoordinator;

/// Result alias for coordination operations.
pub type CoordinationResult<T> = Result<T, CoordinationError>;

/// Errors of the coordination role.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// The coordination service cannot be reached.
    #[error("coordination unavailable: {0}")]
    Unavailable(String),
}

/// Tells whether this process currently leads a singleton job. Dropping it gives the
/// leadership up.
pub trait Leadership: Send + Sync + Debug {
    /// Whether this process leads the job right now. Leadership is advisory (it can be
    /// lost between a check and the work), so singleton jobs stay safe to run twice.
    fn is_leader(&self) -> bool;
}

/// The coordination role.
#[async_trait]
pub trait Coordinator: Send + Sync + Debug + 'static {
    /// Starts campaigning for the leadership of `job` (retention, index
    /// pre-creation) as `candidate`; at most one candidate leads at a time.
    fn campaign(&self, job: &str, candidate: &str) -> Box<dyn Leadership>;

    /// Publishes a snapshot; its version is set to one more than the current one.
    /// Returns the new version.
    async fn publish(&self, snapshot: RoutingSnapshot) -> CoordinationResult<u64>;

    /// Returns a receiver that always holds the latest snapshot.
    fn watch(&self) -> watch::Receiver<Arc<RoutingSnapshot>>;

    /// Checks that the coordination service can be reached (for `/readyz`).
    async fn check_health(&self) -> CoordinationResult<()>;
}

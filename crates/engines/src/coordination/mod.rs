//! The coordination role: a versioned routing snapshot that every service watches.
//!
//! control-api publishes a new snapshot after each metadata change; services keep a
//! [`tokio::sync::watch::Receiver`] and route by whatever it holds now. A distributed
//! implementation (etcd) fills the same channel from a watch on a key prefix.
//!
//! Every running service instance also registers itself as a member
//! ([`Coordinator::register`]) for as long as it lives, so operators can list what is
//! running ([`Coordinator::members`]); and singleton jobs run under a leadership
//! ([`Coordinator::campaign`]).

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod local;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use logpool_core::routing::RoutingSnapshot;
use serde::{Deserialize, Serialize};
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

/// What a running service instance says about itself in its member entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The service it runs: `put-datas`, `loghub`, `control-api`, `search-api` or
    /// `tail-ws`.
    pub service: String,
    /// Unique among the service's instances (its address when it has a usable one);
    /// no `/`.
    pub id: String,
    /// Where it serves HTTP (`host:port`).
    pub address: String,
    /// The logpool version it runs.
    pub version: String,
    /// When it started, in milliseconds since the epoch.
    pub started_at_ms: i64,
}

/// A live member entry. It stays registered (renewed in the background where the
/// engine needs it) until [`Membership::leave`] is called or the handle is dropped;
/// a process that dies without either disappears after the engine's lease TTL.
#[async_trait]
pub trait Membership: Send + Sync + Debug {
    /// Tells whether the entry is registered right now (false while a lost lease is
    /// being renewed).
    fn is_registered(&self) -> bool;

    /// Removes the entry at once and stops renewing it.
    async fn leave(self: Box<Self>);
}

/// The coordination role.
#[async_trait]
pub trait Coordinator: Send + Sync + Debug + 'static {
    /// Registers a running service instance until the returned handle leaves or is
    /// dropped. Registering the same service and id again replaces the entry.
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] when the first registration fails.
    async fn register(&self, member: MemberInfo) -> CoordinationResult<Box<dyn Membership>>;

    /// Lists the registered members of every service, sorted by service and id.
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] when the coordination service cannot answer.
    async fn members(&self) -> CoordinationResult<Vec<MemberInfo>>;

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

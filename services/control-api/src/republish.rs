//! Publishes the routing snapshot again after a change that could not publish it.
//!
//! A change is written to the metadata store before its snapshot is published. When
//! the coordinator is unreachable at that moment the request answers 503, but the
//! change is stored: a client that retries gets 409, and without this task the other
//! services would not learn about the change until some later change published a new
//! snapshot. The failed publish marks the routing stale; this task retries, under the
//! change lock, until a publish succeeds. Every control-api runs it (the stale
//! flag is its own), not only a leader.
//!
//! The same task carries learned field types to the other services: loghub stores
//! the type of a new field in the metadata store before it indexes the field, and
//! each round this task compares the store's learned-types revision with the one
//! its last snapshot was built from, publishing again when they differ. So a learned
//! type reaches search, the tail and alerts about [`INTERVAL`] after it was stored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logpool_api::jobs::Job;

use crate::ControlState;

/// Whether the stored changes are ahead of the last published snapshot.
#[derive(Debug, Clone, Default)]
pub struct RoutingStale(Arc<AtomicBool>);

impl RoutingStale {
    /// Records the outcome of a publish.
    pub(crate) fn set(&self, stale: bool) {
        self.0.store(stale, Ordering::Release);
    }

    /// Returns true when a stored change has not been published yet.
    pub fn is_stale(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The republish job of every control-api: each round, when the routing is stale,
/// publishes it again under the change lock.
#[derive(Debug, Clone)]
pub struct Republish(pub ControlState);

/// How often the job looks: a stale routing is published again, and learned types
/// reach the snapshot, within this. loghub holds a batch with a new field until its
/// type is in the snapshot, so this is also the delay of a field's first batch.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// The learned-types revision before the first publish: no store answers it.
pub(crate) const NEVER_PUBLISHED: i64 = -1;

impl Job for Republish {
    async fn run_once(&mut self) {
        let state = &self.0;
        if !state.routing_stale.is_stale() && !types_learned_since_publish(state).await {
            return;
        }
        let _guard = state.change_lock.lock().await;
        // A request may have published while this job waited for the lock.
        if !state.routing_stale.is_stale() && !types_learned_since_publish(state).await {
            return;
        }
        let was_stale = state.routing_stale.is_stale();
        match state.publish_routing().await {
            Ok(version) if was_stale => {
                tracing::info!(
                    version,
                    "published the routing of changes stored while coordination was unavailable"
                )
            }
            Ok(version) => {
                tracing::debug!(
                    version,
                    "published the routing with newly learned field types"
                )
            }
            Err(error) => {
                tracing::debug!(error = %error.message, "routing still not published; retrying")
            }
        }
    }
}

/// Whether the metadata store learned field types the last published snapshot does
/// not carry. An unreachable store says no: the next round asks again.
async fn types_learned_since_publish(state: &ControlState) -> bool {
    match state.metadata.field_types_revision().await {
        Ok(revision) => revision != state.published_types_revision.load(Ordering::Acquire),
        Err(error) => {
            tracing::debug!(%error, "learned-types revision unavailable; asking again next round");
            false
        }
    }
}

//! Publishes the routing snapshot again after a change that could not publish it.
//!
//! A change is written to the metadata store before its snapshot is published. When
//! the coordinator is unreachable at that moment the request answers 503, but the
//! change is stored: a client that retries gets 409, and without this task the other
//! services would not learn about the change until some later change published a new
//! snapshot. The failed publish marks the routing stale; this task retries, under the
//! change lock, until a publish succeeds.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// Retries publishing every `interval` while the routing is stale, until `shutdown`.
pub async fn run(state: ControlState, interval: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
        if !state.routing_stale.is_stale() {
            continue;
        }
        let _guard = state.change_lock.lock().await;
        // A request may have published while this task waited for the lock.
        if !state.routing_stale.is_stale() {
            continue;
        }
        match state.publish_routing().await {
            Ok(version) => {
                tracing::info!(
                    version,
                    "published the routing of changes stored while coordination was unavailable"
                )
            }
            Err(error) => {
                tracing::debug!(error = %error.message, "routing still not published; retrying")
            }
        }
    }
}

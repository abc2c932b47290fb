//! Index retention: drops whole day partitions older than each pool's retention.
//!
//! Retention is a singleton job: with several loghub processes only the one holding
//! the `retention` leadership runs it (the others wait their turn), which keeps the
//! index server from receiving the same deletions from every process.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use logpool_api::{time::now_ns, RoutingView};
use logpool_engines::coordination::Leadership;
use logpool_engines::index::LogIndex;

/// Runs retention every `interval`, while `leadership` says this process leads,
/// until `shutdown` resolves.
pub async fn run(
    index: Arc<dyn LogIndex>,
    routing: RoutingView,
    leadership: Box<dyn Leadership>,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        if leadership.is_leader() {
            enforce_once(index.as_ref(), &routing).await;
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Applies retention to every pool once; returns the partitions dropped.
pub async fn enforce_once(index: &dyn LogIndex, routing: &RoutingView) -> usize {
    let mut dropped = 0;
    for pool in &routing.snapshot().pools {
        match index.drop_expired(pool, now_ns()).await {
            Ok(count) => {
                if count > 0 {
                    tracing::info!(
                        pool_id = pool.pool_id,
                        partitions = count,
                        "retention dropped expired partitions"
                    );
                }
                dropped += count;
            }
            Err(error) => tracing::warn!(%error, pool_id = pool.pool_id, "retention failed"),
        }
    }
    dropped
}

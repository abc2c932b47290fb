//! Index retention: drops whole day partitions older than each pool's retention.
//!
//! Retention is a singleton job: with several loghub processes only the one holding
//! the `retention` leadership runs it (the others wait their turn), which keeps the
//! index server from receiving the same deletions from every process.

use std::sync::Arc;

use logpool_api::jobs::Job;
use logpool_api::{time::now_ns, RoutingView};
use logpool_engines::index::LogIndex;

/// The retention job: each round applies every pool's retention once.
#[derive(Debug, Clone)]
pub struct Retention {
    /// The index whose partitions expire.
    pub index: Arc<dyn LogIndex>,
    /// Pool routes, with their retention.
    pub routing: RoutingView,
}

impl Job for Retention {
    async fn run_once(&mut self) {
        enforce_once(self.index.as_ref(), &self.routing).await;
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
                        pool_id = %pool.pool_id,
                        partitions = count,
                        "retention dropped expired partitions"
                    );
                }
                dropped += count;
            }
            Err(error) => tracing::warn!(%error, pool_id = %pool.pool_id, "retention failed"),
        }
    }
    dropped
}

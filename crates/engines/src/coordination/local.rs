//! In-process coordination for standalone mode: a watch channel.

use std::sync::Arc;

use async_trait::async_trait;
use logpool_core::routing::RoutingSnapshot;
use tokio::sync::watch;

use super::{CoordinationResult, Coordinator, Leadership};

/// In one process there is one candidate, and it always leads.
#[derive(Debug)]
struct SoleLeader;

impl Leadership for SoleLeader {
    fn is_leader(&self) -> bool {
        true
    }
}

/// The in-process implementation of [`Coordinator`].
#[derive(Debug)]
pub struct LocalCoordinator {
    sender: watch::Sender<Arc<RoutingSnapshot>>,
}

impl LocalCoordinator {
    /// Creates a coordinator holding an empty snapshot (version 0).
    pub fn new() -> LocalCoordinator {
        let (sender, _) = watch::channel(Arc::new(RoutingSnapshot::default()));
        LocalCoordinator { sender }
    }
}

impl Default for LocalCoordinator {
    fn default() -> Self {
        LocalCoordinator::new()
    }
}

#[async_trait]
impl Coordinator for LocalCoordinator {
    fn campaign(&self, _job: &str, _candidate: &str) -> Box<dyn Leadership> {
        Box::new(SoleLeader)
    }

    async fn publish(&self, mut snapshot: RoutingSnapshot) -> CoordinationResult<u64> {
        let mut version = 0;
        self.sender.send_modify(|current| {
            version = current.version + 1;
            snapshot.version = version;
            *current = Arc::new(snapshot);
        });
        Ok(version)
    }

    fn watch(&self) -> watch::Receiver<Arc<RoutingSnapshot>> {
        self.sender.subscribe()
    }

    async fn check_health(&self) -> CoordinationResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_publish_bumps_version_and_wakes_watchers() {
        let coordinator = LocalCoordinator::new();
        let mut receiver = coordinator.watch();
        assert_eq!(receiver.borrow().version, 0);
        let version = coordinator
            .publish(RoutingSnapshot::default())
            .await
            .expect("publish");
        assert_eq!(version, 1);
        receiver.changed().await.expect("changed");
        assert_eq!(receiver.borrow().version, 1);
    }
}

//! In-process coordination for standalone mode: a watch channel, and a member list
//! in memory (every member lives in this process, so none can die without its entry).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use logpool_core::routing::RoutingSnapshot;
use tokio::sync::watch;

use super::{CoordinationResult, Coordinator, Leadership, MemberInfo, Membership};

/// Members by (service, id), each with the serial of the registration that wrote it.
type MemberTable = BTreeMap<(String, String), (u64, MemberInfo)>;

/// The in-process member list.
#[derive(Debug, Default)]
struct Members {
    table: Mutex<MemberTable>,
    next_serial: std::sync::atomic::AtomicU64,
}

impl Members {
    fn with_table<T>(&self, f: impl FnOnce(&mut MemberTable) -> T) -> T {
        // The table holds plain values, so a panic elsewhere cannot leave it half-written.
        f(&mut self.table.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// One registration in the in-process member list; removes its entry when it leaves
/// or is dropped, unless a newer registration of the same member replaced it.
#[derive(Debug)]
struct LocalMembership {
    members: Arc<Members>,
    key: (String, String),
    serial: u64,
}

impl LocalMembership {
    fn remove(&self) {
        self.members.with_table(|table| {
            if table
                .get(&self.key)
                .is_some_and(|(serial, _)| *serial == self.serial)
            {
                table.remove(&self.key);
            }
        });
    }
}

#[async_trait]
impl Membership for LocalMembership {
    fn is_registered(&self) -> bool {
        self.members.with_table(|table| {
            table
                .get(&self.key)
                .is_some_and(|(serial, _)| *serial == self.serial)
        })
    }

    async fn leave(self: Box<Self>) {
        self.remove();
    }
}

impl Drop for LocalMembership {
    fn drop(&mut self) {
        self.remove();
    }
}

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
    members: Arc<Members>,
}

impl LocalCoordinator {
    /// Creates a coordinator holding an empty snapshot (version 0).
    pub fn new() -> LocalCoordinator {
        let (sender, _) = watch::channel(Arc::new(RoutingSnapshot::default()));
        LocalCoordinator {
            sender,
            members: Arc::default(),
        }
    }
}

impl Default for LocalCoordinator {
    fn default() -> Self {
        LocalCoordinator::new()
    }
}

#[async_trait]
impl Coordinator for LocalCoordinator {
    async fn register(&self, member: MemberInfo) -> CoordinationResult<Box<dyn Membership>> {
        let serial = self
            .members
            .next_serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = (member.service.clone(), member.id.clone());
        self.members
            .with_table(|table| table.insert(key.clone(), (serial, member)));
        Ok(Box::new(LocalMembership {
            members: self.members.clone(),
            key,
            serial,
        }))
    }

    async fn members(&self) -> CoordinationResult<Vec<MemberInfo>> {
        Ok(self
            .members
            .with_table(|table| table.values().map(|(_, member)| member.clone()).collect()))
    }

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

    /// A fresh in-process coordinator for one conformance scenario.
    struct LocalFixture(Arc<LocalCoordinator>);

    impl crate::coordination::conformance::CoordinatorFixture for LocalFixture {
        async fn open() -> Option<Self> {
            Some(LocalFixture(Arc::new(LocalCoordinator::new())))
        }

        fn coordinator(&self) -> Arc<dyn Coordinator> {
            self.0.clone()
        }

        async fn close(self) {}
    }

    mod conformance {
        crate::coordination::conformance::coordinator_conformance_tests!(super::LocalFixture);
    }

    fn member(service: &str, id: &str) -> MemberInfo {
        MemberInfo {
            service: service.into(),
            id: id.into(),
            address: id.into(),
            version: "1.2.3".into(),
            started_at_ms: 1,
        }
    }

    /// On top of the conformance scenarios: in one process a replaced registration
    /// knows at once that it no longer owns the entry.
    #[tokio::test]
    async fn test_a_replaced_registration_is_no_longer_registered() {
        let coordinator = LocalCoordinator::new();
        let first = coordinator
            .register(member("search-api", "b:2"))
            .await
            .expect("register");
        assert!(first.is_registered());
        let replacement = coordinator
            .register(member("search-api", "b:2"))
            .await
            .expect("register again");
        assert!(!first.is_registered());
        assert!(replacement.is_registered());
    }
}

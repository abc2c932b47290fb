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

    fn member(service: &str, id: &str) -> MemberInfo {
        MemberInfo {
            service: service.into(),
            id: id.into(),
            address: id.into(),
            version: "1.2.3".into(),
            started_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn test_members_are_listed_until_they_leave_or_drop() {
        let coordinator = LocalCoordinator::new();
        let search = coordinator
            .register(member("search-api", "b:2"))
            .await
            .expect("register");
        let control = coordinator
            .register(member("control-api", "a:1"))
            .await
            .expect("register");
        assert!(search.is_registered());
        let listed = coordinator.members().await.expect("members");
        assert_eq!(
            listed,
            [member("control-api", "a:1"), member("search-api", "b:2")]
        );

        control.leave().await;
        assert_eq!(
            coordinator.members().await.expect("members"),
            [member("search-api", "b:2")]
        );

        // A re-registration replaces the entry; the old handle no longer owns it.
        let mut newer = member("search-api", "b:2");
        newer.version = "2.0.0".into();
        let replacement = coordinator.register(newer.clone()).await.expect("again");
        assert!(!search.is_registered());
        drop(search);
        assert_eq!(coordinator.members().await.expect("members"), [newer]);
        drop(replacement);
        assert!(coordinator.members().await.expect("members").is_empty());
    }
}

//! The conformance suite every [`Coordinator`] implementation runs.
//!
//! The in-process coordinator (standalone) and etcd (distributed) must look the same
//! to one service instance: published snapshots get increasing versions and reach
//! watchers, members are listed until they leave, and a sole candidate leads. Each
//! implementation's test module expands [`coordinator_conformance_tests`] with a
//! [`CoordinatorFixture`] that opens a fresh, empty coordinator: one named test per
//! scenario. What needs several instances or leases (handover between candidates,
//! expiry, reconnection) stays in the etcd tests.

use logpool_core::pool_id::PoolId;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use logpool_core::routing::{PoolRoute, RoutingSnapshot};

use super::{Coordinator, MemberInfo};

pub(crate) use crate::conformance::ScenarioResult;

use crate::conformance::SCENARIO_TIMEOUT;

/// How long a change may take to reach a watcher or the member list.
const PROPAGATION: Duration = Duration::from_secs(5);

/// A fresh coordinator of one implementation for one scenario.
pub(crate) trait CoordinatorFixture: Sized + Send + 'static {
    /// Opens a coordinator with nothing published and no members, or returns `None`
    /// when the engine is not available and its tests are skipped.
    async fn open() -> Option<Self>;
    /// The coordinator the scenario runs against.
    fn coordinator(&self) -> Arc<dyn Coordinator>;
    /// Releases what `open` created.
    async fn close(self);
}

/// Runs one scenario on a fresh coordinator of `F` (or skips it when `F` is not
/// available), closes it whether the scenario passed or not, and fails with the
/// scenario's error or panic.
pub(crate) async fn run_scenario<F, Fut>(
    name: &str,
    scenario: impl FnOnce(Arc<dyn Coordinator>) -> Fut + Send + 'static,
) where
    F: CoordinatorFixture,
    Fut: Future<Output = ScenarioResult> + Send + 'static,
{
    let opened = tokio::time::timeout(SCENARIO_TIMEOUT, F::open())
        .await
        .unwrap_or_else(|_| panic!("{name}: the coordinator opens within {SCENARIO_TIMEOUT:?}"));
    let Some(fixture) = opened else {
        return;
    };
    let coordinator = fixture.coordinator();
    let outcome = tokio::spawn(tokio::time::timeout(
        SCENARIO_TIMEOUT,
        scenario(coordinator),
    ))
    .await;
    fixture.close().await;
    crate::conformance::report(name, outcome);
}

/// Expands to one `#[tokio::test]` per scenario on the fixture `$fixture` (a
/// [`CoordinatorFixture`]), each on a fresh coordinator, so one failing scenario does
/// not hide the others.
macro_rules! coordinator_conformance_tests {
    ($fixture:ty) => {
        $crate::coordination::conformance::coordinator_conformance_tests!(
            @each $fixture;
            scenario_publish_bumps_the_version_and_wakes_watchers,
            scenario_concurrent_publishes_each_get_their_own_version,
            scenario_members_are_listed_until_they_leave_or_drop,
            scenario_registering_again_replaces_the_entry,
            scenario_a_sole_candidate_leads,
            scenario_coordinator_is_healthy,
        );
    };
    (@each $fixture:ty; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                use $crate::coordination::conformance as conformance;
                conformance::run_scenario::<$fixture, _>(
                    stringify!($scenario),
                    conformance::$scenario,
                )
                .await;
            }
        )*
    };
}

pub(crate) use coordinator_conformance_tests;

// --- helpers ------------------------------------------------------------------------

pub(crate) fn snapshot_with_pool(name: &str) -> RoutingSnapshot {
    RoutingSnapshot {
        version: 0,
        access: Default::default(),
        pools: vec![PoolRoute {
            pool_id: PoolId::new(7),
            tenant: "t".into(),
            project: "shop".into(),
            name: name.into(),
            partitions: vec![0, 1],
            retention_days: 7,
            field_hints: Default::default(),
            event_window: Default::default(),
            learned_types: Default::default(),
        }],
        archives: Default::default(),
    }
}

fn member(service: &str, id: &str) -> MemberInfo {
    MemberInfo {
        service: service.into(),
        id: id.into(),
        address: format!("{id}.example:8080"),
        version: "1.2.3".into(),
        started_at_ms: 1_700_000_000_000,
    }
}

/// Polls the member list until `condition` holds on it or [`PROPAGATION`] passes,
/// and returns the last list.
async fn members_when(
    coordinator: &dyn Coordinator,
    condition: impl Fn(&[MemberInfo]) -> bool,
) -> Result<Vec<MemberInfo>, super::CoordinationError> {
    let deadline = tokio::time::Instant::now() + PROPAGATION;
    loop {
        let members = coordinator.members().await?;
        if condition(&members) || tokio::time::Instant::now() >= deadline {
            return Ok(members);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// --- scenarios ----------------------------------------------------------------------

/// A fresh coordinator holds version 0; each publish gets the next version, which
/// the publisher sees at once and a watcher is woken for.
pub(crate) async fn scenario_publish_bumps_the_version_and_wakes_watchers(
    coordinator: Arc<dyn Coordinator>,
) -> ScenarioResult {
    let mut receiver = coordinator.watch();
    assert_eq!(receiver.borrow_and_update().version, 0, "nothing published");
    assert_eq!(coordinator.publish(snapshot_with_pool("web")).await?, 1);
    tokio::time::timeout(PROPAGATION, receiver.changed()).await??;
    {
        let seen = receiver.borrow_and_update();
        assert_eq!(seen.version, 1);
        assert_eq!(seen.pools[0].name, "web");
    }
    assert_eq!(coordinator.publish(snapshot_with_pool("api")).await?, 2);
    // The publisher sees its own change immediately.
    let current = coordinator.watch().borrow().clone();
    assert_eq!(
        (current.version, current.pools[0].name.as_str()),
        (2, "api")
    );
    tokio::time::timeout(PROPAGATION, receiver.changed()).await??;
    assert_eq!(receiver.borrow().version, 2);
    Ok(())
}

/// Publishes racing each other each get a version of their own: no update is lost.
pub(crate) async fn scenario_concurrent_publishes_each_get_their_own_version(
    coordinator: Arc<dyn Coordinator>,
) -> ScenarioResult {
    let publish_many = |coordinator: Arc<dyn Coordinator>, name: &'static str| {
        tokio::spawn(async move {
            let mut versions = Vec::new();
            for _ in 0..10 {
                versions.push(coordinator.publish(snapshot_with_pool(name)).await?);
            }
            Ok::<_, super::CoordinationError>(versions)
        })
    };
    let from_a = publish_many(coordinator.clone(), "a");
    let from_b = publish_many(coordinator.clone(), "b");
    let mut versions = from_a.await??;
    versions.extend(from_b.await??);
    versions.sort_unstable();
    assert_eq!(versions, (1..=20).collect::<Vec<u64>>());
    let receiver = coordinator.watch();
    let deadline = tokio::time::Instant::now() + PROPAGATION;
    while receiver.borrow().version != 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        receiver.borrow().version,
        20,
        "the watch ends on the last version"
    );
    Ok(())
}

/// Members are listed, sorted by service and id, with what they said about
/// themselves, until they leave (at once) or their handle is dropped.
pub(crate) async fn scenario_members_are_listed_until_they_leave_or_drop(
    coordinator: Arc<dyn Coordinator>,
) -> ScenarioResult {
    let coordinator = coordinator.as_ref();
    assert!(coordinator.members().await?.is_empty());
    let search = coordinator.register(member("search-api", "b:2")).await?;
    let control = coordinator.register(member("control-api", "a:1")).await?;
    let loghub = coordinator.register(member("loghub", "c:3")).await?;
    assert!(search.is_registered() && control.is_registered() && loghub.is_registered());
    assert_eq!(
        coordinator.members().await?,
        [
            member("control-api", "a:1"),
            member("loghub", "c:3"),
            member("search-api", "b:2"),
        ]
    );

    control.leave().await;
    assert_eq!(
        coordinator.members().await?,
        [member("loghub", "c:3"), member("search-api", "b:2")],
        "leaving removes the entry at once"
    );
    drop(search);
    let left = members_when(coordinator, |members| members.len() == 1).await?;
    assert_eq!(
        left,
        [member("loghub", "c:3")],
        "a dropped handle removes its entry"
    );
    loghub.leave().await;
    assert!(coordinator.members().await?.is_empty());
    Ok(())
}

/// Registering the same service and id again replaces the entry instead of adding
/// one (a restarted instance), and the older handle going away leaves the newer entry.
pub(crate) async fn scenario_registering_again_replaces_the_entry(
    coordinator: Arc<dyn Coordinator>,
) -> ScenarioResult {
    let coordinator = coordinator.as_ref();
    let first = coordinator.register(member("search-api", "b:2")).await?;
    let newer = MemberInfo {
        version: "2.0.0".into(),
        ..member("search-api", "b:2")
    };
    let replacement = coordinator.register(newer.clone()).await?;
    assert!(replacement.is_registered());
    assert_eq!(coordinator.members().await?, std::slice::from_ref(&newer));
    drop(first);
    // Give a background removal (a lease being revoked) time to happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(coordinator.members().await?, [newer]);
    replacement.leave().await;
    assert!(coordinator.members().await?.is_empty());
    Ok(())
}

/// A candidate alone in its campaign leads (soon), and keeps leading.
pub(crate) async fn scenario_a_sole_candidate_leads(
    coordinator: Arc<dyn Coordinator>,
) -> ScenarioResult {
    let leadership = coordinator.campaign("retention", "node-a");
    let deadline = tokio::time::Instant::now() + PROPAGATION;
    while !leadership.is_leader() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(leadership.is_leader(), "a sole candidate leads");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(leadership.is_leader(), "and keeps leading");
    Ok(())
}

/// A coordinator that is up answers its health check.
pub(crate) async fn scenario_coordinator_is_healthy(
    coordinator: Arc<dyn Coordinator>,
) -> ScenarioResult {
    coordinator.check_health().await?;
    Ok(())
}

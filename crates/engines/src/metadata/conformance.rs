//! The conformance suite every [`MetadataStore`] implementation runs.
//!
//! The SQLite (embedded) and MySQL (distributed) stores must behave identically:
//! the same errors for the same mistakes, the same orderings, and the same partition
//! allocation (numbers are handed out per project and never reused, even after the
//! pool that held them is deleted). Each implementation's test module expands
//! [`metadata_conformance_tests`] with a [`ConformanceFixture`] that opens a fresh,
//! empty store: one named test per scenario, each on a store of its own.
//!
//! Every scenario uses its own tenant and checks `all_pools` only for that tenant, so
//! the scenarios do not depend on each other's leftovers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use logpool_core::ingest::window::EventWindowOverride;
use logpool_core::routing::FieldType;

use logpool_core::access::{Limits, Role, BOOTSTRAP_KEY_ID, DEFAULT_TENANT};

use super::{
    ApiKey, MetadataError, MetadataStore, NewApiKey, NewConsumerGroup, NewPool, PoolPatch, PoolRef,
    StoredLimits,
};

/// Builds a pool definition with 7 days of retention and no hints.
pub(crate) fn new_pool(name: &str, shards: u32) -> NewPool {
    NewPool {
        name: name.into(),
        description: String::new(),
        shards,
        retention_days: 7,
        field_hints: BTreeMap::new(),
        event_window: EventWindowOverride::default(),
    }
}

/// The tenants the pool and project scenarios work in (projects need their tenant).
const SCENARIO_TENANTS: [&str; 19] = [
    "conf-recreate",
    "conf-recreate-b",
    "conf-partitions",
    "conf-projects",
    "conf-projects-other",
    "conf-missing",
    "conf-fields",
    "conf-cascade",
    "conf-all-a",
    "conf-all-b",
    "conf-concurrent",
    "conf-groups",
    "conf-heartbeats",
    "conf-concurrent-heartbeats",
    "conf-archive",
    "conf-schema",
    "conf-saved",
    "conf-alerts",
    "conf-dashboards",
];

use crate::conformance::SCENARIO_TIMEOUT;

/// A fresh, empty store of one implementation for one scenario, and what to do with
/// it once the scenario has run.
pub(crate) trait ConformanceFixture: Sized + Send + 'static {
    /// Opens an empty store.
    async fn open() -> Self;
    /// The store the scenario runs against.
    fn store(&self) -> Arc<dyn MetadataStore>;
    /// Releases what `open` created (a database on a shared server, say).
    async fn close(self);
}

/// What a scenario takes: the store borrowed, or shared (to run tasks at once).
pub(crate) trait ScenarioStore<'a> {
    fn from_store(store: &'a Arc<dyn MetadataStore>) -> Self;
}

impl<'a> ScenarioStore<'a> for &'a dyn MetadataStore {
    fn from_store(store: &'a Arc<dyn MetadataStore>) -> Self {
        store.as_ref()
    }
}

impl ScenarioStore<'_> for Arc<dyn MetadataStore> {
    fn from_store(store: &Arc<dyn MetadataStore>) -> Self {
        store.clone()
    }
}

/// Runs one scenario on a fresh store of `F`, then closes the store whether the
/// scenario passed or not, and passes the scenario's panic on.
pub(crate) async fn run_scenario<F, Fut>(
    name: &str,
    scenario: impl FnOnce(Arc<dyn MetadataStore>) -> Fut + Send + 'static,
) where
    F: ConformanceFixture,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fixture = tokio::time::timeout(SCENARIO_TIMEOUT, F::open())
        .await
        .unwrap_or_else(|_| panic!("{name}: the store opens within {SCENARIO_TIMEOUT:?}"));
    let store = fixture.store();
    let outcome = tokio::spawn(tokio::time::timeout(SCENARIO_TIMEOUT, async move {
        for tenant in SCENARIO_TENANTS {
            store.create_tenant(tenant).await.expect("scenario tenant");
        }
        scenario(store).await;
        Ok(())
    }))
    .await;
    fixture.close().await;
    crate::conformance::report(name, outcome);
}

/// Expands to one `#[tokio::test]` per scenario on the fixture `$fixture` (a
/// [`ConformanceFixture`]), each on a fresh store, so one failing scenario does not
/// hide the others.
macro_rules! metadata_conformance_tests {
    ($fixture:ty) => {
        $crate::metadata::conformance::metadata_conformance_tests!(
            @each $fixture;
            scenario_partitions_are_never_reused,
            scenario_recreated_project_continues_partition_numbers,
            scenario_projects_crud_and_ordering,
            scenario_unknown_objects_are_not_found,
            scenario_pool_fields_and_updates,
            scenario_delete_project_returns_and_cascades_its_pools,
            scenario_all_pools_and_routes,
            scenario_concurrent_pool_creation_allocates_disjoint_partitions,
            scenario_server_secret_is_created_once,
            scenario_consumer_group_crud_and_errors,
            scenario_consumer_group_heartbeats_balance_and_take_over,
            scenario_concurrent_heartbeats_never_share_a_shard,
            scenario_archive_settings_follow_their_pool,
            scenario_learned_types_first_writer_wins,
            scenario_tenants_are_created_listed_and_unique,
            scenario_keys_crud_and_tenant_isolation,
            scenario_bootstrap_key_is_upserted,
            scenario_limits_set_get_and_list,
            scenario_deleting_a_project_removes_its_keys_and_limits,
            scenario_store_is_healthy,
            scenario_saved_searches_crud_limits_and_cascade,
            scenario_alert_objects_crud_quota_and_cascade,
            scenario_alert_evaluation_is_atomic_and_outbox_dedupes,
            scenario_dashboards_crud_limits_and_cascade,
        );
    };
    (@each $fixture:ty; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                use $crate::metadata::conformance::{self as conformance, ScenarioStore};
                conformance::run_scenario::<$fixture, _>(stringify!($scenario), |store| async move {
                    conformance::$scenario(ScenarioStore::from_store(&store)).await
                })
                .await;
            }
        )*
    };
}

pub(crate) use metadata_conformance_tests;

/// A store that is up answers its health check.
pub(crate) async fn scenario_store_is_healthy(store: &dyn MetadataStore) {
    store.check_health().await.expect("health");
}

/// Queue topics are named by tenant, project name and partition number, so a project
/// deleted and created again under the same name must not start at partition 0 again:
/// it would be handed the old project's topics.
pub(crate) async fn scenario_recreated_project_continues_partition_numbers(
    store: &dyn MetadataStore,
) {
    let tenant = "conf-recreate";
    store
        .create_project(tenant, "shop", "d")
        .await
        .expect("project");
    let first = store
        .create_pool(tenant, "shop", new_pool("web", 3))
        .await
        .expect("pool");
    assert_eq!(first.partitions, [0, 1, 2]);
    store.delete_project(tenant, "shop").await.expect("delete");
    store
        .create_project(tenant, "shop", "d")
        .await
        .expect("project again");
    let second = store
        .create_pool(tenant, "shop", new_pool("web", 2))
        .await
        .expect("pool again");
    assert_eq!(
        second.partitions,
        [3, 4],
        "a re-created project continues where the deleted one stopped"
    );
    // Deleting it twice keeps the newest stopping point.
    store
        .delete_project(tenant, "shop")
        .await
        .expect("delete again");
    store
        .create_project(tenant, "shop", "d")
        .await
        .expect("third time");
    let third = store
        .create_pool(tenant, "shop", new_pool("web", 1))
        .await
        .expect("pool third time");
    assert_eq!(third.partitions, [5]);
    // Another project name, or the same name in another tenant, starts at 0.
    store
        .create_project(tenant, "other", "d")
        .await
        .expect("other");
    let other = store
        .create_pool(tenant, "other", new_pool("web", 1))
        .await
        .expect("other pool");
    assert_eq!(other.partitions, [0]);
    store
        .create_project("conf-recreate-b", "shop", "d")
        .await
        .expect("other tenant");
    let foreign = store
        .create_pool("conf-recreate-b", "shop", new_pool("web", 1))
        .await
        .expect("other tenant pool");
    assert_eq!(foreign.partitions, [0]);
}

/// The scenario of the original SQLite test: allocation, duplicates, growth, deletion.
pub(crate) async fn scenario_partitions_are_never_reused(store: &dyn MetadataStore) {
    let tenant = "conf-partitions";
    store
        .create_project(tenant, "shop", "d")
        .await
        .expect("project");
    let web = store
        .create_pool(tenant, "shop", new_pool("web", 2))
        .await
        .expect("pool");
    assert_eq!(web.partitions, [0, 1]);
    store
        .delete_pool(&PoolRef::new(tenant, "shop", "web"))
        .await
        .expect("delete");
    let again = store
        .create_pool(tenant, "shop", new_pool("web", 1))
        .await
        .expect("pool");
    assert_eq!(
        again.partitions,
        [2],
        "partitions of a deleted pool are not reused"
    );
    assert!(
        again.id > web.id,
        "pool ids are never reused: {} then {}",
        web.id,
        again.id
    );
    assert!(matches!(
        store.create_pool(tenant, "shop", new_pool("web", 1)).await,
        Err(MetadataError::AlreadyExists { kind: "pool", .. })
    ));
    assert!(matches!(
        store.get_pool(&PoolRef::new(tenant, "nope", "web")).await,
        Err(MetadataError::NotFound {
            kind: "project",
            ..
        })
    ));
    let grown = store
        .update_pool(
            &PoolRef::new(tenant, "shop", "web"),
            PoolPatch {
                shards: Some(3),
                ..PoolPatch::default()
            },
        )
        .await
        .expect("grow");
    assert_eq!(grown.partitions, [2, 3, 4]);
    let other = store
        .create_pool(tenant, "shop", new_pool("api", 1))
        .await
        .expect("pool after growth");
    assert_eq!(other.partitions, [5], "growth consumed partitions 3 and 4");
    assert!(matches!(
        store
            .update_pool(
                &PoolRef::new(tenant, "shop", "web"),
                PoolPatch {
                    shards: Some(1),
                    ..PoolPatch::default()
                }
            )
            .await,
        Err(MetadataError::Conflict(_))
    ));
    let unchanged = store
        .update_pool(
            &PoolRef::new(tenant, "shop", "web"),
            PoolPatch {
                shards: Some(3),
                ..PoolPatch::default()
            },
        )
        .await
        .expect("same shard count");
    assert_eq!(unchanged.partitions, [2, 3, 4]);
    assert_eq!(
        store
            .delete_project(tenant, "shop")
            .await
            .expect("delete")
            .len(),
        2
    );
    assert!(pools_of(store, tenant).await.is_empty());
}

/// Creation, duplicates, listing order, tenant isolation and description updates.
pub(crate) async fn scenario_projects_crud_and_ordering(store: &dyn MetadataStore) {
    let tenant = "conf-projects";
    for name in ["bravo", "alpha", "charlie"] {
        let project = store
            .create_project(tenant, name, &format!("about {name}"))
            .await
            .expect("project");
        assert_eq!(project.tenant, tenant);
        assert_eq!(project.name, name);
        assert_eq!(project.description, format!("about {name}"));
        assert!(project.created_at_ms > 0);
        assert_eq!(project.created_at_ms, project.updated_at_ms);
    }
    assert!(matches!(
        store.create_project(tenant, "alpha", "again").await,
        Err(MetadataError::AlreadyExists {
            kind: "project",
            ..
        })
    ));
    // The same name under another tenant is a different project.
    store
        .create_project("conf-projects-other", "alpha", "")
        .await
        .expect("same name, other tenant");
    // Names are case-sensitive in every store.
    store
        .create_project(tenant, "Alpha", "")
        .await
        .expect("names differ by case");

    let names: Vec<String> = store
        .list_projects(tenant)
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["Alpha", "alpha", "bravo", "charlie"]);
    assert_eq!(
        store
            .list_projects("conf-projects-other")
            .await
            .expect("list other")
            .len(),
        1
    );
    assert!(store
        .list_projects("conf-projects-nobody")
        .await
        .expect("list empty")
        .is_empty());

    let before = store.get_project(tenant, "bravo").await.expect("get");
    let updated = store
        .update_project(tenant, "bravo", Some("new words".into()))
        .await
        .expect("update");
    assert_eq!(updated.description, "new words");
    assert_eq!(updated.id, before.id);
    assert_eq!(updated.created_at_ms, before.created_at_ms);
    assert!(updated.updated_at_ms >= before.updated_at_ms);
    let untouched = store
        .update_project(tenant, "bravo", None)
        .await
        .expect("no-op update");
    assert_eq!(untouched.description, "new words");
    assert_eq!(
        store
            .get_project(tenant, "bravo")
            .await
            .expect("get")
            .description,
        "new words"
    );
}

/// Every lookup, update and deletion of something missing answers `NotFound`.
pub(crate) async fn scenario_unknown_objects_are_not_found(store: &dyn MetadataStore) {
    let tenant = "conf-missing";
    let is_missing_project = |result| is_not_found(result, "project", "ghost");
    assert!(is_missing_project(
        store.get_project(tenant, "ghost").await.map(drop)
    ));
    assert!(is_missing_project(
        store
            .update_project(tenant, "ghost", Some("x".into()))
            .await
            .map(drop)
    ));
    assert!(is_missing_project(
        store.delete_project(tenant, "ghost").await.map(drop)
    ));
    assert!(is_missing_project(
        store.list_pools(tenant, "ghost").await.map(drop)
    ));
    assert!(is_missing_project(
        store
            .create_pool(tenant, "ghost", new_pool("web", 1))
            .await
            .map(drop)
    ));

    store
        .create_project(tenant, "real", "")
        .await
        .expect("project");
    // A project of another tenant is invisible.
    assert!(matches!(
        store.get_project("conf-missing-other", "real").await,
        Err(MetadataError::NotFound { .. })
    ));
    let is_missing_pool = |result| is_not_found(result, "pool", "ghost");
    assert!(is_missing_pool(
        store
            .get_pool(&PoolRef::new(tenant, "real", "ghost"))
            .await
            .map(drop)
    ));
    assert!(is_missing_pool(
        store
            .update_pool(&PoolRef::new(tenant, "real", "ghost"), PoolPatch::default())
            .await
            .map(drop)
    ));
    assert!(is_missing_pool(
        store
            .delete_pool(&PoolRef::new(tenant, "real", "ghost"))
            .await
            .map(drop)
    ));
    assert!(store
        .list_pools(tenant, "real")
        .await
        .expect("no pools")
        .is_empty());
}

/// Descriptions, retention and field hints round-trip; patches merge hints.
pub(crate) async fn scenario_pool_fields_and_updates(store: &dyn MetadataStore) {
    let tenant = "conf-fields";
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    let mut hints = BTreeMap::new();
    hints.insert("status".to_string(), FieldType::Long);
    hints.insert("message".to_string(), FieldType::Text);
    let created = store
        .create_pool(
            tenant,
            "shop",
            NewPool {
                name: "nginx".into(),
                description: "edge logs".into(),
                shards: 2,
                retention_days: 30,
                field_hints: hints.clone(),
                event_window: EventWindowOverride {
                    max_event_age_days: Some(10),
                    max_event_future_secs: Some(600),
                },
            },
        )
        .await
        .expect("pool");
    assert_eq!(created.tenant, tenant);
    assert_eq!(created.project, "shop");
    assert_eq!(created.name, "nginx");
    assert_eq!(created.description, "edge logs");
    assert_eq!(created.retention_days, 30);
    assert_eq!(created.field_hints, hints);
    assert_eq!(created.event_window.max_event_age_days, Some(10));
    assert_eq!(created.event_window.max_event_future_secs, Some(600));
    assert_eq!(created.route().event_window, created.event_window);
    assert_eq!(created.partitions, [0, 1]);
    assert_eq!(
        store
            .get_pool(&PoolRef::new(tenant, "shop", "nginx"))
            .await
            .expect("get"),
        created
    );

    let mut patch_hints = BTreeMap::new();
    patch_hints.insert("status".to_string(), FieldType::Keyword);
    patch_hints.insert("client_ip".to_string(), FieldType::Ip);
    let updated = store
        .update_pool(
            &PoolRef::new(tenant, "shop", "nginx"),
            PoolPatch {
                description: Some("all edge logs".into()),
                shards: None,
                retention_days: Some(3),
                field_hints: Some(patch_hints),
                // One setting back to the global one, the other left as it is.
                max_event_age_days: Some(None),
                max_event_future_secs: None,
            },
        )
        .await
        .expect("update");
    assert_eq!(
        updated.event_window,
        EventWindowOverride {
            max_event_age_days: None,
            max_event_future_secs: Some(600),
        }
    );
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.description, "all edge logs");
    assert_eq!(updated.retention_days, 3);
    assert_eq!(updated.partitions, [0, 1]);
    assert_eq!(updated.created_at_ms, created.created_at_ms);
    assert!(updated.updated_at_ms >= created.updated_at_ms);
    let expected_hints: BTreeMap<String, FieldType> = [
        ("client_ip".to_string(), FieldType::Ip),
        ("message".to_string(), FieldType::Text),
        ("status".to_string(), FieldType::Keyword),
    ]
    .into_iter()
    .collect();
    assert_eq!(updated.field_hints, expected_hints, "hints are merged");

    // An empty patch changes nothing but the pool is still there.
    let same = store
        .update_pool(&PoolRef::new(tenant, "shop", "nginx"), PoolPatch::default())
        .await
        .expect("empty patch");
    assert_eq!(same.description, "all edge logs");
    assert_eq!(same.field_hints, expected_hints);

    for name in ["zeta", "beta"] {
        store
            .create_pool(tenant, "shop", new_pool(name, 1))
            .await
            .expect("pool");
    }
    let names: Vec<String> = store
        .list_pools(tenant, "shop")
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["beta", "nginx", "zeta"], "pools are listed by name");
}

/// Deleting a project returns its pools and removes them everywhere.
pub(crate) async fn scenario_delete_project_returns_and_cascades_its_pools(
    store: &dyn MetadataStore,
) {
    let tenant = "conf-cascade";
    store
        .create_project(tenant, "gone", "")
        .await
        .expect("project");
    store
        .create_project(tenant, "kept", "")
        .await
        .expect("project");
    for name in ["b", "a"] {
        store
            .create_pool(tenant, "gone", new_pool(name, 1))
            .await
            .expect("pool");
    }
    let kept_pool = store
        .create_pool(tenant, "kept", new_pool("a", 2))
        .await
        .expect("pool");
    assert_eq!(
        kept_pool.partitions,
        [0, 1],
        "partitions are numbered per project"
    );

    let mut deleted: Vec<String> = store
        .delete_project(tenant, "gone")
        .await
        .expect("delete")
        .into_iter()
        .map(|p| {
            assert_eq!(p.project, "gone");
            p.name
        })
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["a", "b"]);
    assert!(matches!(
        store.get_project(tenant, "gone").await,
        Err(MetadataError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_pool(&PoolRef::new(tenant, "gone", "a")).await,
        Err(MetadataError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_project(tenant, "gone").await,
        Err(MetadataError::NotFound { .. })
    ));
    let left = pools_of(store, tenant).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0], kept_pool);
    assert_eq!(
        store
            .delete_project(tenant, "kept")
            .await
            .expect("delete")
            .len(),
        1
    );
    assert!(pools_of(store, tenant).await.is_empty());
}

/// `all_pools` spans projects and tenants, ordered by pool id; routes mirror pools.
pub(crate) async fn scenario_all_pools_and_routes(store: &dyn MetadataStore) {
    let tenants = ["conf-all-a", "conf-all-b"];
    let mut created = Vec::new();
    for tenant in tenants {
        store
            .create_project(tenant, "p", "")
            .await
            .expect("project");
        for name in ["y", "x"] {
            created.push(
                store
                    .create_pool(tenant, "p", new_pool(name, 1))
                    .await
                    .expect("pool"),
            );
        }
    }
    let all: Vec<_> = store
        .all_pools()
        .await
        .expect("all")
        .into_iter()
        .filter(|p| tenants.contains(&p.tenant.as_str()))
        .collect();
    assert_eq!(all, created, "all_pools is ordered by id (creation order)");
    for pool in &all {
        let route = pool.route();
        assert_eq!(route.pool_id, pool.id);
        assert_eq!(route.tenant, pool.tenant);
        assert_eq!(route.project, pool.project);
        assert_eq!(route.name, pool.name);
        assert_eq!(route.partitions, pool.partitions);
        assert_eq!(route.retention_days, pool.retention_days);
    }
    for tenant in tenants {
        store.delete_project(tenant, "p").await.expect("delete");
    }
}

/// Pools created at the same time in one project never share a partition.
pub(crate) async fn scenario_concurrent_pool_creation_allocates_disjoint_partitions(
    store: Arc<dyn MetadataStore>,
) {
    let tenant = "conf-concurrent";
    store
        .create_project(tenant, "busy", "")
        .await
        .expect("project");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_pool(tenant, "busy", new_pool(&format!("pool-{i}"), 2))
                    .await
            })
        })
        .collect();
    let mut partitions = Vec::new();
    for task in tasks {
        let pool = task.await.expect("join").expect("create");
        assert_eq!(pool.partitions.len(), 2);
        partitions.extend(pool.partitions);
    }
    partitions.sort_unstable();
    assert_eq!(
        partitions,
        (0..16).collect::<Vec<u32>>(),
        "each partition is handed out exactly once"
    );
    store.delete_project(tenant, "busy").await.expect("delete");
}

async fn pools_of(store: &dyn MetadataStore, tenant: &str) -> Vec<super::Pool> {
    store
        .all_pools()
        .await
        .expect("all pools")
        .into_iter()
        .filter(|p| p.tenant == tenant)
        .collect()
}

/// Tells whether `result` is the `NotFound` error of `expected_kind` `expected_name`.
fn is_not_found(
    result: Result<(), MetadataError>,
    expected_kind: &str,
    expected_name: &str,
) -> bool {
    matches!(
        result,
        Err(MetadataError::NotFound { kind, name }) if kind == expected_kind && name == expected_name
    )
}

/// The first caller's candidate wins; later candidates get the stored secret.
pub(crate) async fn scenario_server_secret_is_created_once(store: &dyn MetadataStore) {
    let first = store
        .get_or_create_secret("conf-secret", "aa11")
        .await
        .expect("create secret");
    assert_eq!(first, "aa11");
    let again = store
        .get_or_create_secret("conf-secret", "bb22")
        .await
        .expect("read secret");
    assert_eq!(again, "aa11", "an existing secret is never replaced");
}

fn new_group(name: &str, timeout_s: u32, in_order: bool) -> NewConsumerGroup {
    NewConsumerGroup {
        name: name.to_string(),
        timeout_s,
        in_order,
    }
}

/// Groups are per pool, listed by name, 404 when unknown, deleted with their pool.
pub(crate) async fn scenario_consumer_group_crud_and_errors(store: &dyn MetadataStore) {
    let tenant = "conf-groups";
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    store
        .create_pool(tenant, "shop", new_pool("web", 2))
        .await
        .expect("pool");
    store
        .create_pool(tenant, "shop", new_pool("api", 1))
        .await
        .expect("pool");
    let created = store
        .create_consumer_group(
            &PoolRef::new(tenant, "shop", "web"),
            new_group("workers", 30, true),
        )
        .await
        .expect("group");
    assert_eq!(
        (created.name.as_str(), created.timeout_s, created.in_order),
        ("workers", 30, true)
    );
    store
        .create_consumer_group(
            &PoolRef::new(tenant, "shop", "web"),
            new_group("audit", 10, false),
        )
        .await
        .expect("second group");
    assert!(matches!(
        store
            .create_consumer_group(
                &PoolRef::new(tenant, "shop", "web"),
                new_group("workers", 5, false)
            )
            .await,
        Err(MetadataError::AlreadyExists {
            kind: "consumer group",
            ..
        })
    ));
    // The same name in another pool is another group.
    store
        .create_consumer_group(
            &PoolRef::new(tenant, "shop", "api"),
            new_group("workers", 5, false),
        )
        .await
        .expect("same name, other pool");
    let names: Vec<String> = store
        .list_consumer_groups(&PoolRef::new(tenant, "shop", "web"))
        .await
        .expect("list")
        .into_iter()
        .map(|group| group.name)
        .collect();
    assert_eq!(names, ["audit", "workers"]);
    assert!(is_not_found(
        store
            .list_consumer_groups(&PoolRef::new(tenant, "shop", "ghost"))
            .await
            .map(drop),
        "pool",
        "ghost"
    ));
    let missing_group = |result| is_not_found(result, "consumer group", "ghost");
    assert!(missing_group(
        store
            .consumer_group_heartbeat(
                &PoolRef::new(tenant, "shop", "web").group("ghost"),
                "c1",
                1_000
            )
            .await
            .map(drop)
    ));
    assert!(missing_group(
        store
            .save_checkpoint(&PoolRef::new(tenant, "shop", "web").group("ghost"), 0, "x")
            .await
            .map(drop)
    ));
    assert!(missing_group(
        store
            .list_checkpoints(&PoolRef::new(tenant, "shop", "web").group("ghost"))
            .await
            .map(drop)
    ));
    assert!(missing_group(
        store
            .delete_consumer_group(&PoolRef::new(tenant, "shop", "web").group("ghost"))
            .await
    ));

    // Checkpoints replace each other per shard and are listed by shard.
    store
        .save_checkpoint(
            &PoolRef::new(tenant, "shop", "web").group("workers"),
            1,
            "c-1",
        )
        .await
        .expect("checkpoint");
    store
        .save_checkpoint(
            &PoolRef::new(tenant, "shop", "web").group("workers"),
            0,
            "c-0",
        )
        .await
        .expect("checkpoint");
    store
        .save_checkpoint(
            &PoolRef::new(tenant, "shop", "web").group("workers"),
            1,
            "c-1b",
        )
        .await
        .expect("checkpoint again");
    let checkpoints: Vec<(u32, String)> = store
        .list_checkpoints(&PoolRef::new(tenant, "shop", "web").group("workers"))
        .await
        .expect("checkpoints")
        .into_iter()
        .map(|checkpoint| (checkpoint.shard, checkpoint.cursor))
        .collect();
    assert_eq!(
        checkpoints,
        [(0, "c-0".to_string()), (1, "c-1b".to_string())]
    );
    // Other groups do not see them.
    assert!(store
        .list_checkpoints(&PoolRef::new(tenant, "shop", "web").group("audit"))
        .await
        .expect("checkpoints")
        .is_empty());

    store
        .delete_consumer_group(&PoolRef::new(tenant, "shop", "web").group("audit"))
        .await
        .expect("delete group");
    assert_eq!(
        store
            .list_consumer_groups(&PoolRef::new(tenant, "shop", "web"))
            .await
            .expect("list")
            .len(),
        1
    );
    // Deleting the pool deletes its groups: a new pool of that name starts empty.
    store
        .delete_pool(&PoolRef::new(tenant, "shop", "web"))
        .await
        .expect("delete pool");
    store
        .create_pool(tenant, "shop", new_pool("web", 2))
        .await
        .expect("pool again");
    assert!(store
        .list_consumer_groups(&PoolRef::new(tenant, "shop", "web"))
        .await
        .expect("list")
        .is_empty());
    store
        .create_consumer_group(
            &PoolRef::new(tenant, "shop", "web"),
            new_group("workers", 30, true),
        )
        .await
        .expect("the name is free again");
    assert!(store
        .list_checkpoints(&PoolRef::new(tenant, "shop", "web").group("workers"))
        .await
        .expect("checkpoints")
        .is_empty());
    store.delete_project(tenant, "shop").await.expect("delete");
}

/// Two members split four shards; when one stops heart-beating for the timeout,
/// the other owns everything; a member joining later gets its share.
pub(crate) async fn scenario_consumer_group_heartbeats_balance_and_take_over(
    store: &dyn MetadataStore,
) {
    let tenant = "conf-heartbeats";
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    store
        .create_pool(tenant, "shop", new_pool("web", 4))
        .await
        .expect("pool");
    store
        .create_consumer_group(
            &PoolRef::new(tenant, "shop", "web"),
            new_group("g", 10, false),
        )
        .await
        .expect("group");
    let beat = |consumer: &'static str, now_ms: i64| async move {
        store
            .consumer_group_heartbeat(
                &PoolRef::new(tenant, "shop", "web").group("g"),
                consumer,
                now_ms,
            )
            .await
            .expect("heartbeat")
    };
    assert_eq!(beat("c1", 1_000).await, [0, 1, 2, 3]);
    assert_eq!(beat("c2", 2_000).await, [2, 3]);
    assert_eq!(beat("c1", 3_000).await, [0, 1]);
    // c2 goes silent; after its 10 s timeout c1 takes its shards.
    assert_eq!(beat("c1", 11_000).await, [0, 1]);
    assert_eq!(beat("c1", 12_500).await, [0, 1, 2, 3]);
    // A silent member that comes back is a new member and gets a fair share.
    assert_eq!(beat("c2", 13_000).await, [2, 3]);
    assert_eq!(beat("c1", 13_500).await, [0, 1]);

    // In order: a shard never leaves a live member, only one that timed out.
    store
        .create_consumer_group(
            &PoolRef::new(tenant, "shop", "web"),
            new_group("ordered", 10, true),
        )
        .await
        .expect("group");
    let ordered_beat = |consumer: &'static str, now_ms: i64| async move {
        store
            .consumer_group_heartbeat(
                &PoolRef::new(tenant, "shop", "web").group("ordered"),
                consumer,
                now_ms,
            )
            .await
            .expect("heartbeat")
    };
    assert_eq!(ordered_beat("c1", 1_000).await, [0, 1, 2, 3]);
    assert!(ordered_beat("c2", 2_000).await.is_empty());
    assert_eq!(ordered_beat("c1", 5_000).await, [0, 1, 2, 3]);
    assert!(ordered_beat("c2", 10_000).await.is_empty());
    // c1 silent since 5 s: at 15.5 s it has timed out.
    assert_eq!(ordered_beat("c2", 15_500).await, [0, 1, 2, 3]);
    store.delete_project(tenant, "shop").await.expect("delete");
}

/// Heartbeats of many members at once (as from several tail-ws processes) end in an
/// assignment where every shard has exactly one owner.
pub(crate) async fn scenario_concurrent_heartbeats_never_share_a_shard(
    store: Arc<dyn MetadataStore>,
) {
    let tenant = "conf-concurrent-heartbeats";
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    store
        .create_pool(tenant, "shop", new_pool("web", 6))
        .await
        .expect("pool");
    store
        .create_consumer_group(
            &PoolRef::new(tenant, "shop", "web"),
            new_group("g", 60, false),
        )
        .await
        .expect("group");
    let mut tasks = Vec::new();
    for number in 0..3 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let consumer = format!("c{number}");
            for round in 0..3 {
                store
                    .consumer_group_heartbeat(
                        &PoolRef::new(tenant, "shop", "web").group("g"),
                        &consumer,
                        1_000 + round,
                    )
                    .await
                    .expect("heartbeat");
            }
        }));
    }
    for task in tasks {
        task.await.expect("heartbeat task");
    }
    // One more round without concurrency reads the settled assignment.
    let last_round: Vec<Vec<u32>> = {
        let mut again = Vec::new();
        for number in 0..3 {
            let consumer = format!("c{number}");
            again.push(
                store
                    .consumer_group_heartbeat(
                        &PoolRef::new(tenant, "shop", "web").group("g"),
                        &consumer,
                        2_001,
                    )
                    .await
                    .expect("heartbeat"),
            );
        }
        again
    };
    let mut all: Vec<u32> = last_round.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3, 4, 5], "every shard has exactly one owner");
    assert!(
        last_round.iter().all(|shards| shards.len() == 2),
        "{last_round:?}"
    );
    store.delete_project(tenant, "shop").await.expect("delete");
}

/// Archive settings are stored per pool, replaced by a later set, listed by pool id
/// for the routing snapshot, and deleted with their pool.
pub(crate) async fn scenario_archive_settings_follow_their_pool(store: &dyn MetadataStore) {
    use logpool_core::archive::{ArchiveCompression, ArchiveSettings};
    let tenant = "conf-archive";
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    let pool = store
        .create_pool(tenant, "shop", new_pool("web", 1))
        .await
        .expect("pool");
    assert_eq!(
        store
            .get_archive_settings(&PoolRef::new(tenant, "shop", "web"))
            .await
            .expect("get"),
        None
    );
    let mut settings = ArchiveSettings {
        enabled: true,
        ..ArchiveSettings::default()
    };
    store
        .set_archive_settings(&PoolRef::new(tenant, "shop", "web"), &settings)
        .await
        .expect("set");
    settings.compression = ArchiveCompression::Gzip;
    settings.prefix = "logs/v2".to_string();
    store
        .set_archive_settings(&PoolRef::new(tenant, "shop", "web"), &settings)
        .await
        .expect("replace");
    assert_eq!(
        store
            .get_archive_settings(&PoolRef::new(tenant, "shop", "web"))
            .await
            .expect("get"),
        Some(settings.clone())
    );
    let all = store.all_archive_settings().await.expect("all");
    assert_eq!(all.get(&pool.id), Some(&settings));
    assert!(matches!(
        store
            .set_archive_settings(&PoolRef::new(tenant, "shop", "nope"), &settings)
            .await,
        Err(MetadataError::NotFound { .. })
    ));
    store
        .delete_pool(&PoolRef::new(tenant, "shop", "web"))
        .await
        .expect("delete");
    let all = store.all_archive_settings().await.expect("all");
    assert!(!all.contains_key(&pool.id));
}

/// Tenants are unique by exact name, listed by name; `default` exists from the start;
/// projects cannot be created in a tenant that does not exist.
pub(crate) async fn scenario_tenants_are_created_listed_and_unique(store: &dyn MetadataStore) {
    let default = store
        .get_tenant(DEFAULT_TENANT)
        .await
        .expect("default tenant");
    assert_eq!(default.name, DEFAULT_TENANT);
    for name in ["conf-tenants-b", "conf-tenants-a", "Conf-Tenants-A"] {
        let created = store.create_tenant(name).await.expect("tenant");
        assert_eq!(created.name, name);
        assert!(created.created_at_ms > 0);
        assert_eq!(store.get_tenant(name).await.expect("get"), created);
    }
    assert!(matches!(
        store.create_tenant("conf-tenants-a").await,
        Err(MetadataError::AlreadyExists { kind: "tenant", name }) if name == "conf-tenants-a"
    ));
    let names: Vec<String> = store
        .list_tenants()
        .await
        .expect("list")
        .into_iter()
        .map(|tenant| tenant.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "tenants are listed by name");
    for name in [
        DEFAULT_TENANT,
        "conf-tenants-a",
        "conf-tenants-b",
        "Conf-Tenants-A",
    ] {
        assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name}");
    }
    assert!(is_not_found(
        store.get_tenant("conf-tenants-ghost").await.map(drop),
        "tenant",
        "conf-tenants-ghost"
    ));
    assert!(is_not_found(
        store
            .create_project("conf-tenants-ghost", "shop", "")
            .await
            .map(drop),
        "tenant",
        "conf-tenants-ghost"
    ));
    store
        .create_project("conf-tenants-a", "shop", "")
        .await
        .expect("project in a new tenant");
}

fn new_key(id: &str, tenant: &str, role: Role, project: Option<&str>) -> NewApiKey {
    NewApiKey {
        id: id.into(),
        tenant: tenant.into(),
        role,
        project: project.map(Into::into),
        description: format!("key {id}"),
        salt: format!("salt-{id}"),
        hash: format!("hash-{id}"),
    }
}

async fn key_ids(store: &dyn MetadataStore, tenant: &str) -> Vec<String> {
    store
        .list_keys(tenant)
        .await
        .expect("list keys")
        .into_iter()
        .map(|key| key.id)
        .collect()
}

/// Keys round-trip every field and role; a key is only reachable through its own
/// tenant; ids are unique across tenants.
pub(crate) async fn scenario_keys_crud_and_tenant_isolation(store: &dyn MetadataStore) {
    let tenant = "conf-keys";
    let other = "conf-keys-other";
    store.create_tenant(tenant).await.expect("tenant");
    store.create_tenant(other).await.expect("tenant");
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    store
        .create_project(other, "mine", "")
        .await
        .expect("project");

    let scoped = store
        .create_key(new_key("conf-k-scoped", tenant, Role::Reader, Some("shop")))
        .await
        .expect("scoped key");
    assert_eq!(scoped.id, "conf-k-scoped");
    assert_eq!(scoped.tenant, tenant);
    assert_eq!(scoped.role, Role::Reader);
    assert_eq!(scoped.project.as_deref(), Some("shop"));
    assert_eq!(scoped.description, "key conf-k-scoped");
    assert_eq!(scoped.salt, "salt-conf-k-scoped");
    assert_eq!(scoped.hash, "hash-conf-k-scoped");
    assert!(scoped.enabled, "new keys are enabled");
    assert!(scoped.created_at_ms > 0);
    assert_eq!(
        store.get_key(tenant, "conf-k-scoped").await.expect("get"),
        scoped
    );
    for role in Role::ALL {
        let id = format!("conf-k-{role}");
        let key = store
            .create_key(new_key(&id, tenant, role, None))
            .await
            .expect("key");
        let read = store.get_key(tenant, &id).await.expect("get");
        assert_eq!(read, key);
        assert_eq!(read.role, role, "roles round-trip");
        assert_eq!(read.project, None);
    }
    let foreign = store
        .create_key(new_key("conf-k-foreign", other, Role::Reader, Some("mine")))
        .await
        .expect("other tenant's key");

    // Creation errors.
    assert!(is_not_found(
        store
            .create_key(new_key("conf-k-x", "conf-keys-ghost", Role::Reader, None))
            .await
            .map(drop),
        "tenant",
        "conf-keys-ghost"
    ));
    assert!(is_not_found(
        store
            .create_key(new_key("conf-k-x", tenant, Role::Reader, Some("mine")))
            .await
            .map(drop),
        "project",
        "mine"
    ));
    for (id, key_tenant) in [("conf-k-scoped", tenant), ("conf-k-scoped", other)] {
        assert!(matches!(
            store
                .create_key(new_key(id, key_tenant, Role::Writer, None))
                .await,
            Err(MetadataError::AlreadyExists { kind: "key", name }) if name == id
        ));
    }
    assert!(is_not_found(
        store.get_key(tenant, "conf-k-x").await.map(drop),
        "key",
        "conf-k-x"
    ));

    // Listing: this tenant's keys only, by creation time, then id.
    let listed = store.list_keys(tenant).await.expect("list");
    assert_eq!(listed.len(), 1 + Role::ALL.len());
    assert!(listed.iter().all(|key| key.tenant == tenant));
    let order: Vec<(i64, String)> = listed
        .iter()
        .map(|key| (key.created_at_ms, key.id.clone()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "keys are listed by creation time, then id");
    assert_eq!(key_ids(store, other).await, ["conf-k-foreign"]);
    assert!(key_ids(store, "conf-keys-ghost").await.is_empty());

    // A key id of another tenant is not found through this tenant, in any operation.
    let through_wrong_tenant = [
        store.get_key(tenant, "conf-k-foreign").await.map(drop),
        store
            .set_key_enabled(tenant, "conf-k-foreign", false)
            .await
            .map(drop),
        store.delete_key(tenant, "conf-k-foreign").await,
    ];
    for result in through_wrong_tenant {
        assert!(is_not_found(result, "key", "conf-k-foreign"));
    }
    assert_eq!(
        store
            .get_key(other, "conf-k-foreign")
            .await
            .expect("intact"),
        foreign
    );

    // Disabling and enabling, idempotently.
    for _ in 0..2 {
        let disabled = store
            .set_key_enabled(tenant, "conf-k-scoped", false)
            .await
            .expect("disable");
        assert!(!disabled.enabled);
        assert_eq!(
            disabled,
            ApiKey {
                enabled: false,
                ..scoped.clone()
            }
        );
    }
    assert!(
        !store
            .get_key(tenant, "conf-k-scoped")
            .await
            .expect("get")
            .enabled
    );
    assert!(
        store
            .set_key_enabled(tenant, "conf-k-scoped", true)
            .await
            .expect("enable")
            .enabled
    );
    assert!(is_not_found(
        store
            .set_key_enabled(tenant, "conf-k-x", true)
            .await
            .map(drop),
        "key",
        "conf-k-x"
    ));

    // Deleting.
    store
        .delete_key(tenant, "conf-k-scoped")
        .await
        .expect("delete");
    for result in [
        store.get_key(tenant, "conf-k-scoped").await.map(drop),
        store.delete_key(tenant, "conf-k-scoped").await,
    ] {
        assert!(is_not_found(result, "key", "conf-k-scoped"));
    }
    assert!(!key_ids(store, tenant)
        .await
        .contains(&"conf-k-scoped".to_string()));

    // `all_keys` spans tenants and holds exactly what the lists hold.
    let all: Vec<ApiKey> = store
        .all_keys()
        .await
        .expect("all keys")
        .into_iter()
        .filter(|key| key.tenant == tenant || key.tenant == other)
        .collect();
    let mut expected = store.list_keys(tenant).await.expect("list");
    expected.extend(store.list_keys(other).await.expect("list"));
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, expected, "all_keys is ordered by id");
}

/// The bootstrap key is created once, then only gets a new secret and is re-enabled.
pub(crate) async fn scenario_bootstrap_key_is_upserted(store: &dyn MetadataStore) {
    assert!(
        store
            .save_bootstrap_key("salt-1", "hash-1")
            .await
            .expect("save"),
        "the first save creates the key"
    );
    let first = store
        .get_key(DEFAULT_TENANT, BOOTSTRAP_KEY_ID)
        .await
        .expect("bootstrap key");
    assert_eq!(first.tenant, DEFAULT_TENANT);
    assert_eq!(first.role, Role::Operator);
    assert_eq!(first.project, None);
    assert_eq!(first.description, "operator key from first start");
    assert_eq!(
        (first.salt.as_str(), first.hash.as_str()),
        ("salt-1", "hash-1")
    );
    assert!(first.enabled);

    store
        .set_key_enabled(DEFAULT_TENANT, BOOTSTRAP_KEY_ID, false)
        .await
        .expect("disable");
    assert!(
        !store
            .save_bootstrap_key("salt-2", "hash-2")
            .await
            .expect("save again"),
        "a second save replaces the key"
    );
    let second = store
        .get_key(DEFAULT_TENANT, BOOTSTRAP_KEY_ID)
        .await
        .expect("bootstrap key");
    assert_eq!(
        second,
        ApiKey {
            salt: "salt-2".into(),
            hash: "hash-2".into(),
            ..first
        },
        "saving again replaces salt and hash and enables the key"
    );
    let bootstrap_keys = store
        .all_keys()
        .await
        .expect("all")
        .into_iter()
        .filter(|key| key.id == BOOTSTRAP_KEY_ID)
        .count();
    assert_eq!(bootstrap_keys, 1);
    assert!(matches!(
        store
            .create_key(new_key(
                BOOTSTRAP_KEY_ID,
                DEFAULT_TENANT,
                Role::Reader,
                None
            ))
            .await,
        Err(MetadataError::AlreadyExists { kind: "key", .. })
    ));
}

fn limits_of(tenant: &[StoredLimits], wanted: &str) -> Vec<StoredLimits> {
    tenant
        .iter()
        .filter(|stored| stored.tenant == wanted)
        .cloned()
        .collect()
}

/// Limits are replaced as a whole, per tenant and per project, and default to none.
pub(crate) async fn scenario_limits_set_get_and_list(store: &dyn MetadataStore) {
    let tenant = "conf-limits";
    store.create_tenant(tenant).await.expect("tenant");
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    for project in [None, Some("shop"), Some("ghost")] {
        assert_eq!(
            store.get_limits(tenant, project).await.expect("get"),
            Limits::default(),
            "nothing stored means no limits ({project:?})"
        );
    }
    let wide = Limits {
        ingest_records_per_s: Some(100),
        concurrent_queries: Some(4),
        ..Limits::default()
    };
    store
        .set_limits(tenant, None, &wide)
        .await
        .expect("tenant limits");
    assert_eq!(store.get_limits(tenant, None).await.expect("get"), wide);
    let replaced = Limits {
        max_query_range_s: Some(86_400),
        ..Limits::default()
    };
    store
        .set_limits(tenant, None, &replaced)
        .await
        .expect("replace");
    assert_eq!(
        store.get_limits(tenant, None).await.expect("get"),
        replaced,
        "setting limits replaces them as a whole"
    );
    let shop = Limits {
        ingest_records_per_s: Some(u64::MAX),
        ingest_bytes_per_s: Some(1 << 40),
        storage_bytes: Some(5),
        concurrent_queries: Some(1),
        queries_per_s: Some(2),
        concurrent_tails: Some(3),
        max_query_range_s: Some(60),
        alert_rules: Some(7),
    };
    store
        .set_limits(tenant, Some("shop"), &shop)
        .await
        .expect("project limits");
    assert_eq!(
        store.get_limits(tenant, Some("shop")).await.expect("get"),
        shop
    );
    assert_eq!(store.get_limits(tenant, None).await.expect("get"), replaced);

    assert!(is_not_found(
        store.set_limits(tenant, Some("ghost"), &wide).await,
        "project",
        "ghost"
    ));
    assert!(is_not_found(
        store.set_limits("conf-limits-ghost", None, &wide).await,
        "tenant",
        "conf-limits-ghost"
    ));
    assert!(matches!(
        store
            .set_limits("conf-limits-ghost", Some("shop"), &wide)
            .await,
        Err(MetadataError::NotFound { .. })
    ));

    let all = store.all_limits().await.expect("all limits");
    assert_eq!(
        limits_of(&all, tenant),
        [
            StoredLimits {
                tenant: tenant.into(),
                project: None,
                limits: replaced,
            },
            StoredLimits {
                tenant: tenant.into(),
                project: Some("shop".into()),
                limits: shop,
            },
        ]
    );
    assert!(limits_of(&all, "conf-limits-ghost").is_empty());
}

/// A project deleted and created again under its name starts without the old
/// project's scoped keys and limits; other projects and tenant-wide ones stay.
pub(crate) async fn scenario_deleting_a_project_removes_its_keys_and_limits(
    store: &dyn MetadataStore,
) {
    let tenant = "conf-scoped";
    store.create_tenant(tenant).await.expect("tenant");
    for project in ["shop", "other"] {
        store
            .create_project(tenant, project, "")
            .await
            .expect("project");
        store
            .create_key(new_key(
                &format!("conf-scoped-{project}"),
                tenant,
                Role::Reader,
                Some(project),
            ))
            .await
            .expect("scoped key");
        let limits = Limits {
            storage_bytes: Some(1_000),
            ..Limits::default()
        };
        store
            .set_limits(tenant, Some(project), &limits)
            .await
            .expect("project limits");
    }
    store
        .create_key(new_key("conf-scoped-wide", tenant, Role::TenantAdmin, None))
        .await
        .expect("tenant-wide key");
    let wide = Limits {
        queries_per_s: Some(10),
        ..Limits::default()
    };
    store
        .set_limits(tenant, None, &wide)
        .await
        .expect("tenant limits");

    store.delete_project(tenant, "shop").await.expect("delete");
    assert!(is_not_found(
        store.get_key(tenant, "conf-scoped-shop").await.map(drop),
        "key",
        "conf-scoped-shop"
    ));
    assert_eq!(
        key_ids(store, tenant).await,
        ["conf-scoped-other", "conf-scoped-wide"]
    );
    assert_eq!(
        store.get_limits(tenant, Some("shop")).await.expect("get"),
        Limits::default()
    );
    let projects: Vec<Option<String>> = limits_of(&store.all_limits().await.expect("all"), tenant)
        .into_iter()
        .map(|stored| stored.project)
        .collect();
    assert_eq!(projects, [None, Some("other".to_string())]);

    // The re-created project inherits nothing.
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project again");
    assert!(store
        .list_keys(tenant)
        .await
        .expect("list")
        .iter()
        .all(|key| key.project.as_deref() != Some("shop")));
    assert_eq!(
        store.get_limits(tenant, Some("shop")).await.expect("get"),
        Limits::default()
    );
    assert_eq!(store.get_limits(tenant, None).await.expect("get"), wide);
}

/// Learned field types: the first writer of a field wins, also when writers race;
/// names of any length fit; the revision moves with every new type; deleting the
/// pool deletes its types.
pub(crate) async fn scenario_learned_types_first_writer_wins(store: Arc<dyn MetadataStore>) {
    let tenant = "conf-schema";
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("project");
    let pool = store
        .create_pool(tenant, "shop", new_pool("web", 1))
        .await
        .expect("pool");
    let other = store
        .create_pool(tenant, "shop", new_pool("api", 1))
        .await
        .expect("pool");
    let before = store.field_types_revision().await.expect("revision");
    let types = |entries: &[(&str, FieldType)]| -> BTreeMap<String, FieldType> {
        entries
            .iter()
            .map(|(name, field_type)| (name.to_string(), *field_type))
            .collect()
    };
    let long_name = "field.".repeat(200);
    let learned = store
        .learn_field_types(
            pool.id,
            &types(&[("status", FieldType::Long), (&long_name, FieldType::Text)]),
        )
        .await
        .expect("learn");
    assert_eq!(
        learned,
        types(&[("status", FieldType::Long), (&long_name, FieldType::Text)])
    );
    let after_first = store.field_types_revision().await.expect("revision");
    assert_ne!(after_first, before, "a learned type moves the revision");
    // A later writer proposing another type for a known field gets the stored one.
    let learned = store
        .learn_field_types(
            pool.id,
            &types(&[("status", FieldType::Text), ("latency", FieldType::Double)]),
        )
        .await
        .expect("learn");
    assert_eq!(learned["status"], FieldType::Long, "the first writer wins");
    assert_eq!(learned["latency"], FieldType::Double);
    assert_eq!(learned.len(), 3);
    // Nothing new: the revision stays.
    let revision = store.field_types_revision().await.expect("revision");
    store
        .learn_field_types(pool.id, &types(&[("status", FieldType::Bool)]))
        .await
        .expect("learn");
    assert_eq!(
        store.field_types_revision().await.expect("revision"),
        revision
    );
    // Racing writers of one new field all end up with one and the same type.
    let racers = [
        FieldType::Long,
        FieldType::Text,
        FieldType::Bool,
        FieldType::Ip,
    ];
    let tasks: Vec<_> = racers
        .iter()
        .map(|field_type| {
            let store = store.clone();
            let proposal = types(&[("raced", *field_type)]);
            tokio::spawn(async move { store.learn_field_types(pool.id, &proposal).await })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        let learned = task.await.expect("task").expect("learn");
        seen.push(learned["raced"]);
    }
    assert!(seen.windows(2).all(|pair| pair[0] == pair[1]), "{seen:?}");
    // Types belong to their pool.
    let learned = store
        .learn_field_types(other.id, &types(&[("status", FieldType::Keyword)]))
        .await
        .expect("learn");
    assert_eq!(learned, types(&[("status", FieldType::Keyword)]));
    let all = store.all_learned_field_types().await.expect("all");
    assert_eq!(all[&pool.id].len(), 4);
    assert_eq!(all[&pool.id][&long_name], FieldType::Text);
    assert_eq!(all[&other.id]["status"], FieldType::Keyword);
    store
        .delete_pool(&PoolRef::new(tenant, "shop", "web"))
        .await
        .expect("delete");
    let all = store.all_learned_field_types().await.expect("all");
    assert!(
        !all.contains_key(&pool.id),
        "deleting the pool deletes its types"
    );
    assert!(all.contains_key(&other.id));
}

/// Saved searches: created with their author, listed by name, updated (author kept,
/// editor recorded), unique per project, bounded per project, invisible from another
/// project, and deleted with their project.
pub(crate) async fn scenario_saved_searches_crud_limits_and_cascade(store: &dyn MetadataStore) {
    use super::{SavedSearchFields, SavedSearchLimits};
    let tenant = "conf-saved";
    let limits = SavedSearchLimits { max_per_project: 2 };
    for project in ["shop", "bank"] {
        store
            .create_project(tenant, project, "")
            .await
            .expect("project");
    }
    let fields = |name: &str| SavedSearchFields {
        name: name.to_string(),
        query: "level:ERROR | SELECT count(*) AS c".to_string(),
        from: "now-24h".to_string(),
        to: "now".to_string(),
        pool: "web".to_string(),
        columns: vec!["status".to_string(), "path".to_string()],
        chart: r#"{"kind":"bar"}"#.to_string(),
    };
    let errors = store
        .create_saved_search(tenant, "shop", &fields("errors"), "key-a", limits)
        .await
        .expect("create");
    assert_eq!(errors.fields, fields("errors"));
    assert_eq!(
        (errors.created_by.as_str(), errors.updated_by.as_str()),
        ("key-a", "key-a")
    );
    assert_eq!(errors.project, "shop");
    let again = store
        .create_saved_search(tenant, "shop", &fields("errors"), "key-b", limits)
        .await;
    assert!(
        matches!(again, Err(MetadataError::AlreadyExists { .. })),
        "{again:?}"
    );
    // The same name in another project is another search.
    store
        .create_saved_search(tenant, "bank", &fields("errors"), "key-b", limits)
        .await
        .expect("same name elsewhere");
    let alpha = store
        .create_saved_search(tenant, "shop", &fields("alpha"), "key-a", limits)
        .await
        .expect("second");
    let over = store
        .create_saved_search(tenant, "shop", &fields("third"), "key-a", limits)
        .await;
    assert!(
        matches!(over, Err(MetadataError::TooMany { max: 2, .. })),
        "{over:?}"
    );
    let names: Vec<String> = store
        .list_saved_searches(tenant, "shop")
        .await
        .expect("list")
        .into_iter()
        .map(|saved| saved.fields.name)
        .collect();
    assert_eq!(names, ["alpha", "errors"]);

    let mut changed = fields("errors-5xx");
    changed.columns = vec!["message".to_string()];
    changed.from = "2026-01-01T00:00:00Z".to_string();
    let updated = store
        .update_saved_search(tenant, "shop", errors.id, &changed, "key-b")
        .await
        .expect("update");
    assert_eq!(updated.fields, changed);
    assert_eq!(
        (updated.created_by.as_str(), updated.updated_by.as_str()),
        ("key-a", "key-b")
    );
    assert_eq!(
        store
            .get_saved_search(tenant, "shop", errors.id)
            .await
            .expect("get"),
        updated
    );
    let clash = store
        .update_saved_search(tenant, "shop", errors.id, &fields("alpha"), "key-b")
        .await;
    assert!(
        matches!(clash, Err(MetadataError::AlreadyExists { .. })),
        "{clash:?}"
    );
    // Another project's path never reaches the search.
    for result in [
        store
            .get_saved_search(tenant, "bank", errors.id)
            .await
            .map(drop),
        store
            .update_saved_search(tenant, "bank", errors.id, &changed, "key-b")
            .await
            .map(drop),
        store.delete_saved_search(tenant, "bank", errors.id).await,
        store
            .get_saved_search("conf-archive", "shop", errors.id)
            .await
            .map(drop),
    ] {
        assert!(
            matches!(result, Err(MetadataError::NotFound { .. })),
            "{result:?}"
        );
    }
    store
        .delete_saved_search(tenant, "shop", alpha.id)
        .await
        .expect("delete");
    assert!(matches!(
        store.delete_saved_search(tenant, "shop", alpha.id).await,
        Err(MetadataError::NotFound { .. })
    ));
    assert!(matches!(
        store.list_saved_searches(tenant, "nope").await,
        Err(MetadataError::NotFound { .. })
    ));
    store
        .delete_project(tenant, "shop")
        .await
        .expect("delete project");
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("recreate");
    assert!(store
        .list_saved_searches(tenant, "shop")
        .await
        .expect("list")
        .is_empty());
}

/// Alert rules, channels and silences: created with their author, listed oldest
/// first, replaced with the status kept, bounded per tenant (across its projects),
/// invisible from another project, and deleted with their project.
pub(crate) async fn scenario_alert_objects_crud_quota_and_cascade(store: &dyn MetadataStore) {
    use super::AlertObjectKind::{Channel, Rule};
    let tenant = "conf-alerts";
    for project in ["shop", "bank"] {
        store
            .create_project(tenant, project, "")
            .await
            .expect("project");
    }
    let first = store
        .create_alert_object(Rule, tenant, "shop", r#"{"name":"a"}"#, "key-a", 2)
        .await
        .expect("create");
    assert_eq!(
        (
            first.doc.as_str(),
            first.status.as_str(),
            first.project.as_str()
        ),
        (r#"{"name":"a"}"#, "", "shop")
    );
    let second = store
        .create_alert_object(Rule, tenant, "bank", r#"{"name":"b"}"#, "key-a", 2)
        .await
        .expect("second, in another project");
    let over = store
        .create_alert_object(Rule, tenant, "shop", r#"{"name":"c"}"#, "key-a", 2)
        .await;
    assert!(
        matches!(over, Err(MetadataError::TooMany { max: 2, .. })),
        "the quota counts the tenant's rules in every project: {over:?}"
    );
    // Channels have their own count.
    let channel = store
        .create_alert_object(Channel, tenant, "shop", r#"{"kind":"webhook"}"#, "key-a", 2)
        .await
        .expect("channel");
    store
        .set_alert_status(Channel, channel.id, r#"{"ok":true}"#)
        .await
        .expect("status");
    let replaced = store
        .update_alert_object(
            Channel,
            tenant,
            "shop",
            channel.id,
            r#"{"kind":"slack"}"#,
            "key-b",
        )
        .await
        .expect("update");
    assert_eq!(replaced.doc, r#"{"kind":"slack"}"#);
    assert_eq!(
        replaced.status, r#"{"ok":true}"#,
        "an edit keeps the server's status"
    );
    assert_eq!(
        (replaced.created_by.as_str(), replaced.updated_by.as_str()),
        ("key-a", "key-b")
    );
    let listed = store
        .list_alert_objects(Rule, tenant, "shop")
        .await
        .expect("list");
    assert_eq!(listed, std::slice::from_ref(&first));
    assert!(store
        .list_alert_objects(Channel, tenant, "bank")
        .await
        .expect("list")
        .is_empty());
    let all: Vec<i64> = store
        .all_alert_objects(Rule)
        .await
        .expect("all")
        .into_iter()
        .filter(|object| object.tenant == tenant)
        .map(|object| object.id)
        .collect();
    assert_eq!(all, [first.id, second.id]);
    for result in [
        store
            .get_alert_object(Rule, tenant, "bank", first.id)
            .await
            .map(drop),
        store
            .get_alert_object(Channel, tenant, "shop", first.id + 1000)
            .await
            .map(drop),
        store
            .update_alert_object(Rule, tenant, "bank", first.id, "{}", "key-b")
            .await
            .map(drop),
        store
            .delete_alert_object(Rule, tenant, "bank", first.id)
            .await,
    ] {
        assert!(
            matches!(result, Err(MetadataError::NotFound { .. })),
            "{result:?}"
        );
    }
    store
        .delete_alert_object(Rule, tenant, "bank", second.id)
        .await
        .expect("delete");
    store
        .create_alert_object(Rule, tenant, "shop", r#"{"name":"c"}"#, "key-a", 2)
        .await
        .expect("room again after a delete");
    store
        .delete_project(tenant, "shop")
        .await
        .expect("delete project");
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("recreate");
    assert!(store
        .list_alert_objects(Rule, tenant, "shop")
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_alert_objects(Channel, tenant, "shop")
        .await
        .expect("list")
        .is_empty());
}

/// One evaluation writes states, transitions and notifications together; the outbox
/// keeps a dedupe key once per channel; attempts are recorded; deleting the rule
/// deletes its state, history and outbox, and a late evaluation of it writes nothing.
pub(crate) async fn scenario_alert_evaluation_is_atomic_and_outbox_dedupes(
    store: &dyn MetadataStore,
) {
    use super::{
        AlertEvaluation, AlertGroupState, AlertObjectKind::Rule, AlertTransitionRecord,
        NewOutboxEntry, OutboxOutcome,
    };
    let tenant = "conf-alerts";
    store
        .create_project(tenant, "ops", "")
        .await
        .expect("project");
    let rule = store
        .create_alert_object(Rule, tenant, "ops", "{}", "key-a", 10)
        .await
        .expect("rule");
    let notification = |key: &str| NewOutboxEntry {
        channel_id: 7,
        dedupe_key: key.to_string(),
        payload: format!(r#"{{"key":"{key}"}}"#),
    };
    let evaluation = AlertEvaluation {
        rule_id: rule.id,
        status: r#"{"error":null}"#.to_string(),
        states: vec![
            AlertGroupState {
                group: "web-1".to_string(),
                doc: r#"{"state":"firing"}"#.to_string(),
            },
            AlertGroupState {
                group: "web-2".to_string(),
                doc: r#"{"state":"ok"}"#.to_string(),
            },
        ],
        forgotten_groups: Vec::new(),
        transitions: vec![
            AlertTransitionRecord {
                group: "web-1".to_string(),
                doc: "1".to_string(),
                at_ms: 1,
            },
            AlertTransitionRecord {
                group: "web-1".to_string(),
                doc: "2".to_string(),
                at_ms: 2,
            },
        ],
        outbox: vec![notification("r/web-1/1/firing")],
    };
    assert_eq!(
        store
            .record_alert_evaluation(&evaluation)
            .await
            .expect("record"),
        1
    );
    // The same firing enqueued again (a second leader for a moment) is stored once.
    let again = AlertEvaluation {
        states: vec![AlertGroupState {
            group: "web-1".to_string(),
            doc: r#"{"state":"firing","n":2}"#.to_string(),
        }],
        transitions: Vec::new(),
        forgotten_groups: vec!["web-2".to_string()],
        ..evaluation.clone()
    };
    assert_eq!(
        store.record_alert_evaluation(&again).await.expect("again"),
        0
    );
    let states = store.alert_states(rule.id).await.expect("states");
    assert_eq!(
        states,
        [AlertGroupState {
            group: "web-1".to_string(),
            doc: r#"{"state":"firing","n":2}"#.to_string(),
        }]
    );
    let history = store.alert_history(rule.id, 10).await.expect("history");
    let docs: Vec<&str> = history.iter().map(|t| t.doc.as_str()).collect();
    assert_eq!(docs, ["2", "1"], "newest first");
    assert_eq!(
        store.alert_history(rule.id, 1).await.expect("limit").len(),
        1
    );
    let stored = store
        .get_alert_object(Rule, tenant, "ops", rule.id)
        .await
        .expect("rule");
    assert_eq!(stored.status, r#"{"error":null}"#);

    let due = store.due_outbox(i64::MAX, 10).await.expect("due");
    let ours: Vec<_> = due
        .iter()
        .filter(|entry| entry.rule_id == rule.id)
        .collect();
    assert_eq!(ours.len(), 1);
    let entry = ours[0].clone();
    assert_eq!(
        (entry.channel_id, entry.dedupe_key.as_str(), entry.attempts),
        (7, "r/web-1/1/firing", 0)
    );
    store
        .finish_outbox_attempt(
            entry.id,
            &OutboxOutcome::Retry {
                next_attempt_ms: i64::MAX - 1,
                error: "503".to_string(),
            },
        )
        .await
        .expect("retry");
    assert!(
        !store
            .due_outbox(i64::MAX - 2, 10)
            .await
            .expect("due")
            .iter()
            .any(|due| due.id == entry.id),
        "not due before its next attempt"
    );
    let retried = store.due_outbox(i64::MAX, 10).await.expect("due");
    let retried = retried
        .iter()
        .find(|due| due.id == entry.id)
        .expect("due again");
    assert_eq!(retried.attempts, 1);
    store
        .finish_outbox_attempt(entry.id, &OutboxOutcome::Sent { at_ms: 5 })
        .await
        .expect("sent");
    assert!(!store
        .due_outbox(i64::MAX, 10)
        .await
        .expect("due")
        .iter()
        .any(|due| due.id == entry.id));
    // A sent notification is never enqueued again under the same key.
    assert_eq!(
        store
            .record_alert_evaluation(&evaluation)
            .await
            .expect("record"),
        0
    );
    // Pruning keeps pending entries and young history, drops finished old ones.
    let pending = NewOutboxEntry {
        channel_id: 8,
        dedupe_key: "r/web-1/1/resolved".to_string(),
        payload: "{}".to_string(),
    };
    let with_pending = AlertEvaluation {
        outbox: vec![pending],
        transitions: Vec::new(),
        ..evaluation.clone()
    };
    store
        .record_alert_evaluation(&with_pending)
        .await
        .expect("pending");
    let pruned = store.prune_alert_records(i64::MAX, 2).await.expect("prune");
    assert!(
        pruned >= 2,
        "the sent entry and the transition at 1 ms: {pruned}"
    );
    let due = store.due_outbox(i64::MAX, 10).await.expect("due");
    assert!(due
        .iter()
        .any(|entry| entry.dedupe_key == "r/web-1/1/resolved"));
    let kept: Vec<i64> = store
        .alert_history(rule.id, 10)
        .await
        .expect("history")
        .iter()
        .map(|t| t.at_ms)
        .collect();
    assert!(kept.iter().all(|at| *at >= 2), "{kept:?}");

    store
        .delete_alert_object(Rule, tenant, "ops", rule.id)
        .await
        .expect("delete rule");
    assert!(store
        .alert_states(rule.id)
        .await
        .expect("states")
        .is_empty());
    assert!(store
        .alert_history(rule.id, 10)
        .await
        .expect("history")
        .is_empty());
    assert_eq!(
        store
            .record_alert_evaluation(&evaluation)
            .await
            .expect("late"),
        0,
        "a deleted rule's late evaluation writes nothing"
    );
    assert!(store
        .alert_states(rule.id)
        .await
        .expect("states")
        .is_empty());
}

/// Dashboards: created with their author and panels, listed by name, replaced (author
/// kept, editor recorded), unique per project, bounded per project, invisible from
/// another project, and deleted with their project.
pub(crate) async fn scenario_dashboards_crud_limits_and_cascade(store: &dyn MetadataStore) {
    use super::{DashboardFields, DashboardLimits};
    let tenant = "conf-dashboards";
    let limits = DashboardLimits { max_per_project: 2 };
    for project in ["shop", "bank"] {
        store
            .create_project(tenant, project, "")
            .await
            .expect("project");
    }
    let fields = |name: &str| DashboardFields {
        name: name.to_string(),
        description: "the shop's key numbers".to_string(),
        from: "now-24h".to_string(),
        to: "now".to_string(),
        refresh: "30s".to_string(),
        panels: r#"[{"id":"p1","kind":"count","pool":"web","query":"level:ERROR"}]"#.to_string(),
    };
    let overview = store
        .create_dashboard(tenant, "shop", &fields("overview"), "key-a", limits)
        .await
        .expect("create");
    assert_eq!(overview.fields, fields("overview"));
    assert_eq!(
        (overview.created_by.as_str(), overview.updated_by.as_str()),
        ("key-a", "key-a")
    );
    assert_eq!(overview.project, "shop");
    let again = store
        .create_dashboard(tenant, "shop", &fields("overview"), "key-b", limits)
        .await;
    assert!(
        matches!(again, Err(MetadataError::AlreadyExists { .. })),
        "{again:?}"
    );
    store
        .create_dashboard(tenant, "bank", &fields("overview"), "key-b", limits)
        .await
        .expect("same name elsewhere");
    let alpha = store
        .create_dashboard(tenant, "shop", &fields("alpha"), "key-a", limits)
        .await
        .expect("second");
    let over = store
        .create_dashboard(tenant, "shop", &fields("third"), "key-a", limits)
        .await;
    assert!(
        matches!(over, Err(MetadataError::TooMany { max: 2, .. })),
        "{over:?}"
    );
    let names: Vec<String> = store
        .list_dashboards(tenant, "shop")
        .await
        .expect("list")
        .into_iter()
        .map(|dashboard| dashboard.fields.name)
        .collect();
    assert_eq!(names, ["alpha", "overview"]);

    let mut changed = fields("overview-24h");
    changed.refresh = "off".to_string();
    changed.panels = "[]".to_string();
    let updated = store
        .update_dashboard(tenant, "shop", overview.id, &changed, "key-b")
        .await
        .expect("update");
    assert_eq!(updated.fields, changed);
    assert_eq!(
        (updated.created_by.as_str(), updated.updated_by.as_str()),
        ("key-a", "key-b")
    );
    assert_eq!(
        store
            .get_dashboard(tenant, "shop", overview.id)
            .await
            .expect("get"),
        updated
    );
    // Replacing with what it holds already is no change, not a missing dashboard.
    store
        .update_dashboard(tenant, "shop", overview.id, &changed, "key-b")
        .await
        .expect("same again");
    let clash = store
        .update_dashboard(tenant, "shop", overview.id, &fields("alpha"), "key-b")
        .await;
    assert!(
        matches!(clash, Err(MetadataError::AlreadyExists { .. })),
        "{clash:?}"
    );
    for result in [
        store
            .get_dashboard(tenant, "bank", overview.id)
            .await
            .map(drop),
        store
            .update_dashboard(tenant, "bank", overview.id, &changed, "key-b")
            .await
            .map(drop),
        store.delete_dashboard(tenant, "bank", overview.id).await,
        store
            .get_dashboard("conf-saved", "shop", overview.id)
            .await
            .map(drop),
    ] {
        assert!(
            matches!(result, Err(MetadataError::NotFound { .. })),
            "{result:?}"
        );
    }
    store
        .delete_dashboard(tenant, "shop", alpha.id)
        .await
        .expect("delete");
    assert!(matches!(
        store.delete_dashboard(tenant, "shop", alpha.id).await,
        Err(MetadataError::NotFound { .. })
    ));
    assert!(matches!(
        store.list_dashboards(tenant, "nope").await,
        Err(MetadataError::NotFound { .. })
    ));
    store
        .delete_project(tenant, "shop")
        .await
        .expect("delete project");
    store
        .create_project(tenant, "shop", "")
        .await
        .expect("recreate");
    assert!(store
        .list_dashboards(tenant, "shop")
        .await
        .expect("list")
        .is_empty());
}

//! control-api: projects and pools, and the list of running service processes
//! ([`cluster`]).
//!
//! Every change is written to the metadata store first, then a fresh routing
//! snapshot is published through the coordinator, and only then does the request
//! answer, so a pool is usable by every service as soon as its create returns.
//! Deleting a pool also deletes its queue shards and its index.
//!
//! Tenants, API keys and quotas ([`tenants`], [`quotas`]) are published in the same
//! snapshot, so every service checks keys and applies limits from its own copy.
//!
//! Alert rules, channels and silences, and the jobs that evaluate and notify them,
//! are in [`alerts`].

pub mod alerts;
pub mod archive;
pub mod cluster;
pub mod dashboards;
pub mod pools;
pub mod projects;
pub mod quotas;
pub mod republish;
pub mod saved_searches;
pub mod service;
pub mod stats;
pub mod tenants;

use std::sync::{Arc, Mutex};

use axum::Router;
use logpool_api::{ApiError, Routes, RoutingView};
use logpool_core::access::{AccessTable, Permission, ProjectsByTenant};
use logpool_core::names::validate_name;
use logpool_core::routing::RoutingSnapshot;
use logpool_engines::config::AlertsConfig;
use logpool_engines::coordination::Coordinator;
use logpool_engines::index::LogIndex;
use logpool_engines::metadata::MetadataStore;
use logpool_engines::object_store::ObjectStore;
use logpool_engines::queue::Queue;

/// What the control handlers need.
#[derive(Debug, Clone)]
pub struct ControlState {
    /// Source of truth for projects and pools.
    pub metadata: Arc<dyn MetadataStore>,
    /// Where routing snapshots are published.
    pub coordinator: Arc<dyn Coordinator>,
    /// Queue, to delete shards of deleted pools.
    pub queue: Arc<dyn Queue>,
    /// Index, to prepare and delete pool indexes.
    pub index: Arc<dyn LogIndex>,
    /// Serialises changes so snapshots are published in the order they were made.
    change_lock: Arc<tokio::sync::Mutex<()>>,
    /// Where pools are archived ([`archive`]); archive endpoints answer 503 without it.
    pub object_store: Option<Arc<dyn ObjectStore>>,
    /// Restores started by this process.
    pub restores: archive::restore::Restores,
    /// Set while a stored change is not published yet ([`republish`]).
    pub routing_stale: republish::RoutingStale,
    /// The learned-types revision of the metadata store when the last published
    /// snapshot was built: a different one means loghub learned types since
    /// ([`republish`]).
    pub(crate) published_types_revision: Arc<std::sync::atomic::AtomicI64>,
    /// The storage-quota state measured by this process ([`quotas`]), to publish
    /// with the next snapshot; `None` keeps what the current snapshot says.
    over_storage_quota: Arc<Mutex<Option<ProjectsByTenant>>>,
    /// Alert settings ([`alerts`]).
    pub alerts: AlertsConfig,
    /// Sends alert notifications (and channel tests).
    pub notifier: alerts::notify::Notifier,
}

impl ControlState {
    /// Creates the state.
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        coordinator: Arc<dyn Coordinator>,
        queue: Arc<dyn Queue>,
        index: Arc<dyn LogIndex>,
    ) -> ControlState {
        ControlState {
            metadata,
            coordinator,
            queue,
            index,
            change_lock: Arc::new(tokio::sync::Mutex::new(())),
            object_store: None,
            restores: archive::restore::Restores::default(),
            routing_stale: republish::RoutingStale::default(),
            published_types_revision: Arc::new(std::sync::atomic::AtomicI64::new(
                republish::NEVER_PUBLISHED,
            )),
            over_storage_quota: Arc::default(),
            alerts: AlertsConfig::default(),
            notifier: alerts::notify::Notifier::new(std::time::Duration::from_secs(
                AlertsConfig::default().delivery_timeout_secs,
            )),
        }
    }

    /// Uses `config` for alert rules and notifications.
    pub fn with_alerts_config(mut self, config: AlertsConfig) -> ControlState {
        self.notifier = alerts::notify::Notifier::new(std::time::Duration::from_secs(
            config.delivery_timeout_secs.max(1),
        ));
        self.alerts = config;
        self
    }

    /// Gives the archive endpoints the object store the archive is written to.
    pub fn with_object_store(mut self, object_store: Arc<dyn ObjectStore>) -> ControlState {
        self.object_store = Some(object_store);
        self
    }

    /// Rebuilds the routing snapshot from the metadata store and publishes it. A
    /// failure marks the routing stale, so [`republish::run`] publishes it later.
    ///
    /// # Errors
    /// Fails when the store or the coordinator fails.
    pub async fn publish_routing(&self) -> Result<u64, ApiError> {
        let published = self.build_and_publish_routing().await;
        self.routing_stale.set(published.is_err());
        published
    }

    async fn build_and_publish_routing(&self) -> Result<u64, ApiError> {
        // Read before the types themselves: a type learned meanwhile moves the
        // revision past this one, so the next republish round carries it.
        let types_revision = self.metadata.field_types_revision().await?;
        let pools = self.metadata.all_pools().await?;
        let mut learned = self.metadata.all_learned_field_types().await?;
        let snapshot = RoutingSnapshot {
            version: 0,
            pools: pools
                .iter()
                .map(|pool| {
                    let mut route = pool.route();
                    route.learned_types = learned.remove(&pool.id).unwrap_or_default();
                    route
                })
                .collect(),
            archives: self.metadata.all_archive_settings().await?,
            access: self.build_access().await?,
        };
        let version = self.coordinator.publish(snapshot).await?;
        self.published_types_revision
            .store(types_revision, std::sync::atomic::Ordering::Release);
        Ok(version)
    }

    /// Tenants, keys (hashes only) and limits from the store, plus the storage-quota
    /// state (measured by whichever control-api leads that job).
    async fn build_access(&self) -> Result<AccessTable, ApiError> {
        let mut access = AccessTable::default();
        for tenant in self.metadata.list_tenants().await? {
            access.tenants.insert(tenant.name);
        }
        for key in self.metadata.all_keys().await? {
            access.keys.insert(key.id.clone(), key.entry());
        }
        for stored in self.metadata.all_limits().await? {
            match stored.project {
                None => {
                    access.tenant_limits.insert(stored.tenant, stored.limits);
                }
                Some(project) => {
                    access
                        .project_limits
                        .entry(stored.tenant)
                        .or_default()
                        .insert(project, stored.limits);
                }
            }
        }
        let measured = self
            .over_storage_quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        access.over_storage_quota = measured.unwrap_or_else(|| {
            self.coordinator
                .watch()
                .borrow()
                .access
                .over_storage_quota
                .clone()
        });
        Ok(access)
    }

    /// Records the storage-quota state to publish with the next snapshot.
    pub(crate) fn set_over_storage_quota(&self, over: ProjectsByTenant) {
        *self
            .over_storage_quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(over);
    }
}

/// Every control-api route with its permission.
pub fn routes() -> Routes<ControlState> {
    Routes::new()
        .merge(tenants::routes())
        .merge(quotas::routes())
        .merge(projects::routes())
        .merge(pools::routes())
        .merge(saved_searches::routes())
        .merge(alerts::routes())
        .merge(dashboards::routes())
        .merge(cluster::routes())
        .merge(archive::routes())
        .merge(stats::routes())
        // The web console is served by the control plane (and so by standalone); its
        // page and files are public, its API calls carry the user's key.
        .get("/", Permission::Public, logpool_console::index)
        .get(
            "/console/{file}",
            Permission::Public,
            logpool_console::asset,
        )
}

/// Builds the control-api router.
pub fn router(state: ControlState) -> Router {
    let access = RoutingView::new(state.coordinator.watch());
    let router = routes().into_router(access).with_state(state);
    logpool_api::layers::with_common_layers(router)
}

/// Checks a name from a path or body, naming the field in the error.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    validate_name(name)
        .map_err(|message| ApiError::bad_request(message).with_detail("field", field))
}

/// Milliseconds since the epoch as RFC 3339.
pub(crate) fn format_ms(ms: i64) -> String {
    logpool_core::record::format_time_ns(ms.saturating_mul(1_000_000))
}

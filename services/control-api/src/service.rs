//! control-api as a service of a node: the management routes, the bootstrap
//! operator key, the first routing snapshot, and its jobs (routing republish in
//! every process; the storage-quota watch, alert evaluation and delivery in the
//! process leading each).
//!
//! A node starts it before its other services, so that they find a published
//! snapshot.

use logpool_api::health::Readiness;
use logpool_api::node::{Service, ServiceContext, ServiceHandle};
use logpool_engines::EngineNeeds;

use crate::alerts::evaluator::AlertEvaluator;
use crate::quotas::{StorageWatch, STORAGE_CHECK_INTERVAL};
use crate::republish::Republish;
use crate::{router, ControlState};

/// The service's name.
pub const NAME: &str = "control-api";

/// control-api, to run in a node. It manages pools in every engine.
pub fn service() -> Service {
    Service::new(NAME, EngineNeeds::ALL, start)
}

/// Starts control-api.
///
/// # Errors
/// Fails when an engine it needs was not built, the operator key cannot be stored
/// or the routing snapshot cannot be published.
pub async fn start(context: ServiceContext) -> anyhow::Result<ServiceHandle> {
    let engines = &context.engines;
    let state = ControlState::new(
        engines.metadata()?,
        engines.coordinator.clone(),
        engines.queue()?,
        engines.index()?,
    )
    .with_object_store(engines.object_store()?)
    .with_alerts_config(context.config.alerts.clone());
    crate::tenants::announce_operator_key(
        state.metadata.as_ref(),
        context.config.admin_key.as_ref().map(|key| key.expose()),
    )
    .await?;
    // Services that start later load this snapshot; ones already running see it change.
    state
        .publish_routing()
        .await
        .map_err(|e| anyhow::anyhow!("failed to publish the routing snapshot: {}", e.message))?;
    let mut jobs = context.jobs();
    jobs.every(
        "routing-republish",
        crate::republish::INTERVAL,
        Republish(state.clone()),
    );
    jobs.leader_every(
        "storage-quota",
        STORAGE_CHECK_INTERVAL,
        StorageWatch(state.clone()),
    );
    jobs.leader_every(
        "alerts",
        crate::alerts::evaluator::TICK,
        AlertEvaluator::new(state.clone()),
    );
    // The management API answers while the metadata store does.
    let readiness = Readiness::coordination(engines).and_metadata(engines)?;
    Ok(ServiceHandle::new(readiness)
        .with_routes(router(state))
        .with_jobs(jobs))
}

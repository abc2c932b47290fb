//! Runs control-api as its own process (distributed mode):
//! `logpool-control-api --config FILE`. `logpool standalone` runs it with the other
//! services in one process instead.

use anyhow::Context;
use logpool_api::service_main::{init_logging, load_service_config, serve, shutdown_signal};
use logpool_control_api::{router, ControlState};
use logpool_engines::Engines;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let config = load_service_config("control-api")?;
    let engines = Engines::build(&config).await?;
    let state = ControlState::new(
        engines.metadata.clone(),
        engines.coordinator.clone(),
        engines.queue.clone(),
        engines.index.clone(),
    )
    .with_object_store(engines.object_store.clone());
    logpool_control_api::tenants::announce_operator_key(
        engines.metadata.as_ref(),
        config.admin_key.as_ref().map(|key| key.expose()),
    )
    .await?;
    // Services that start later load this snapshot; ones already running see it change.
    state
        .publish_routing()
        .await
        .map_err(|e| anyhow::anyhow!("failed to publish routing: {}", e.message))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    let republish_state = state.clone();
    let quota_state = state.clone();
    let routes = logpool_api::metrics::with_metrics("control-api", router(state), Vec::new());
    let membership = logpool_api::members::register(
        engines.coordinator.as_ref(),
        "control-api",
        config.advertise_address.as_deref(),
        listener.local_addr().context("listener has no address")?,
    )
    .await?;
    let (stop_republish, republish_stopped) = tokio::sync::oneshot::channel::<()>();
    let republish = tokio::spawn(logpool_control_api::republish::run(
        republish_state,
        std::time::Duration::from_secs(1),
        async move {
            let _ = republish_stopped.await;
        },
    ));
    let (stop_quota, quota_stopped) = tokio::sync::oneshot::channel::<()>();
    let member_id = config
        .advertise_address
        .clone()
        .unwrap_or_else(|| config.listen.to_string());
    let storage_quota = tokio::spawn(logpool_control_api::quotas::run_storage_watch(
        quota_state,
        engines.coordinator.campaign("storage-quota", &member_id),
        logpool_control_api::quotas::STORAGE_CHECK_INTERVAL,
        async move {
            let _ = quota_stopped.await;
        },
    ));
    serve(listener, routes, &engines, &config, shutdown_signal()).await?;
    let _ = stop_republish.send(());
    let _ = stop_quota.send(());
    republish.await.context("republish task panicked")?;
    storage_quota.await.context("storage quota task panicked")?;
    membership.leave().await;
    Ok(())
}

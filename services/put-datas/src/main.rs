//! Runs put-datas as its own process (distributed mode):
//! `logpool-put-datas --config FILE`. `logpool standalone` runs it with the other
//! services in one process instead.

use std::sync::Arc;

use anyhow::Context;
use logpool_api::service_main::{init_logging, load_service_config, serve, shutdown_signal};
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_put_datas::{router, PutDatasState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let config = load_service_config("put-datas")?;
    let engines = Engines::build(&config).await?;
    let routing = RoutingView::new(engines.coordinator.watch());
    let state = PutDatasState::new(engines.queue.clone(), routing, config.limits.clone())
        .with_idempotency(engines.idempotency.clone(), &config.idempotency);
    let routes = logpool_api::metrics::with_metrics(
        "put-datas",
        router(state.clone()),
        vec![state.stats.clone() as Arc<_>],
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    let membership = logpool_api::members::register(
        engines.coordinator.as_ref(),
        "put-datas",
        config.advertise_address.as_deref(),
        listener.local_addr().context("listener has no address")?,
    )
    .await?;
    serve(listener, routes, &engines, &config, shutdown_signal()).await?;
    membership.leave().await;
    engines.queue.shutdown().await?;
    Ok(())
}

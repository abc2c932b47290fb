//! Runs tail-ws as its own process (distributed mode): `logpool-tail-ws --config FILE`.
//! `logpool standalone` runs it with the other services in one process instead.

use anyhow::Context;
use logpool_api::service_main::{init_logging, load_service_config, serve, shutdown_signal};
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_tail_ws::pull::PullState;
use logpool_tail_ws::{router, TailState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let config = load_service_config("tail-ws")?;
    let engines = Engines::build(&config).await?;
    let (stop_tails, shutdown) = tokio::sync::watch::channel(false);
    let routing = RoutingView::new(engines.coordinator.watch());
    let pull = PullState::new(
        engines.queue.clone(),
        engines.metadata.clone(),
        routing.clone(),
    );
    let state = TailState::new(
        engines.queue.clone(),
        routing,
        shutdown,
        config.tail.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    let routes = logpool_api::metrics::with_metrics(
        "tail-ws",
        router(state.clone()).merge(logpool_tail_ws::pull::router(pull)),
        vec![state.stats.clone()],
    );
    let membership = logpool_api::members::register(
        engines.coordinator.as_ref(),
        "tail-ws",
        config.advertise_address.as_deref(),
        listener.local_addr().context("listener has no address")?,
    )
    .await?;
    serve(listener, routes, &engines, &config, async move {
        shutdown_signal().await;
        let _ = stop_tails.send(true);
    })
    .await?;
    membership.leave().await;
    Ok(())
}

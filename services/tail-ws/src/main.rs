//! Runs tail-ws as its own process (distributed mode): `logpool-tail-ws --config FILE`.
//! `logpool standalone` runs it with the other services in one process instead.

use anyhow::Context;
use logpool_api::service_main::{init_logging, load_service_config, serve, shutdown_signal};
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_tail_ws::{router, TailState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let config = load_service_config("tail-ws")?;
    let engines = Engines::build(&config).await?;
    let (stop_tails, shutdown) = tokio::sync::watch::channel(false);
    let state = TailState {
        queue: engines.queue.clone(),
        routing: RoutingView::new(engines.coordinator.watch()),
        shutdown,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    serve(listener, router(state), &engines, async move {
        shutdown_signal().await;
        let _ = stop_tails.send(true);
    })
    .await
}

//! Runs search-api as its own process (distributed mode):
//! `logpool-search-api --config FILE`. `logpool standalone` runs it with the other
//! services in one process instead.

use anyhow::Context;
use logpool_api::service_main::{init_logging, load_service_config, serve, shutdown_signal};
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_search_api::{router, SearchState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let config = load_service_config("search-api")?;
    let engines = Engines::build(&config).await?;
    let state = SearchState {
        index: engines.index.clone(),
        routing: RoutingView::new(engines.coordinator.watch()),
        config: config.search.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    let routes = logpool_api::metrics::with_metrics("search-api", router(state), Vec::new());
    let membership = logpool_api::members::register(
        engines.coordinator.as_ref(),
        "search-api",
        config.advertise_address.as_deref(),
        listener.local_addr().context("listener has no address")?,
    )
    .await?;
    serve(listener, routes, &engines, &config, shutdown_signal()).await?;
    membership.leave().await;
    Ok(())
}

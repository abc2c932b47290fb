//! Runs search-api as its own process (distributed mode). `logpool standalone` runs
//! it with the other services in one process instead.

use anyhow::Context;
use logpool_api::service_main::load_service_config;
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_search_api::{run, SearchState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
    run(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

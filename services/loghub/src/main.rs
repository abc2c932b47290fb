//! Runs loghub as its own process (distributed mode). `logpool standalone` runs it
//! with the other services in one process instead.

use std::sync::Arc;

use logpool_api::service_main::load_service_config;
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_loghub::{run, LoghubState, LoghubStats};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = load_service_config("loghub")?;
    let engines = Engines::build(&config).await?;
    let state = LoghubState {
        queue: engines.queue.clone(),
        index: engines.index.clone(),
        object_store: engines.object_store.clone(),
        routing: RoutingView::new(engines.coordinator.watch()),
        config: config.loghub.clone(),
        stats: Arc::new(LoghubStats::default()),
    };
    run(state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    engines.index.shutdown().await?;
    engines.queue.shutdown().await?;
    Ok(())
}

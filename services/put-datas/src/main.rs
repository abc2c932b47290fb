//! Runs put-datas as its own process (distributed mode). `logpool standalone` runs
//! it with the other services in one process instead.

use anyhow::Context;
use logpool_api::service_main::load_service_config;
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_put_datas::{run, PutDatasState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = load_service_config("put-datas")?;
    let engines = Engines::build(&config).await?;
    let routing = RoutingView::new(engines.coordinator.watch());
    let state = PutDatasState::new(engines.queue.clone(), routing, config.limits.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    run(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    engines.queue.shutdown().await?;
    Ok(())
}

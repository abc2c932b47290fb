//! Runs control-api as its own process (distributed mode). `logpool standalone` runs
//! it with the other services in one process instead.

use anyhow::Context;
use logpool_api::service_main::load_service_config;
use logpool_control_api::{run, ControlState};
use logpool_engines::Engines;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = load_service_config("control-api")?;
    let engines = Engines::build(&config).await?;
    let state = ControlState::new(
        engines.metadata.clone(),
        engines.coordinator.clone(),
        engines.queue.clone(),
        engines.index.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    run(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

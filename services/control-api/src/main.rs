//! Runs control-api as its own process (distributed mode):
//! `logpool-control-api --config FILE`. `logpool standalone` runs it with the other
//! services in one process instead.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logpool_api::node::run_service_binary(logpool_control_api::service::service()).await
}

//! Runs put-datas as its own process (distributed mode):
//! `logpool-put-datas --config FILE`. `logpool standalone` runs it with the other
//! services in one process instead.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logpool_api::node::run_service_binary(logpool_put_datas::service::service()).await
}
